"""The squid giant-axon channels of Hodgkin & Huxley (1952), modern convention.

Rates (1/ms) as functions of the membrane potential V (mV, rest ≈ −65 mV), at 6.3 °C,
evaluated at ``V − v_shift`` so that ``v_shift = 65`` mV gives HH's original
convention (rest at 0 mV):

    α_m = 0.1 (V+40) / (1 − exp(−(V+40)/10))     β_m = 4 exp(−(V+65)/18)
    α_h = 0.07 exp(−(V+65)/20)                   β_h = 1 / (1 + exp(−(V+35)/10))
    α_n = 0.01 (V+55) / (1 − exp(−(V+55)/10))    β_n = 0.125 exp(−(V+65)/80)

Reference: Hodgkin A.L., Huxley A.F. (1952), J. Physiol. 117:500–544, eqs. 12–14,
20–23, rewritten for V = −(V_HH) − 65 mV.

Parameters read (fields of the model's parameter tuple): ``g_na, e_na`` (Sodium),
``g_k, e_k`` (Potassium), ``g_l, e_l`` (Leak), ``v_shift`` (Sodium and Potassium):
conductances mS/cm², potentials mV.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from jax import Array

from hhjax._model import Channel, GateRates
from hhjax.rates import exponential, linoid, sigmoid


@dataclasses.dataclass(frozen=True)
class Sodium(Channel):
    """Fast Na⁺ current ``I_na = g_na m³ h (V − e_na)`` with gates m and h."""

    name: str = "na"
    gates: tuple[str, ...] = ("m", "h")

    def rates(self, v: Array, params: Any) -> dict[str, GateRates]:
        u = v - params.v_shift
        return {
            "m": GateRates(
                linoid(u, 0.1, -40.0, 10.0), exponential(u, 4.0, -65.0, 18.0)
            ),
            "h": GateRates(
                exponential(u, 0.07, -65.0, 20.0), sigmoid(u, 1.0, -35.0, 10.0)
            ),
        }

    def current(self, v: Array, gates: dict[str, Array], params: Any) -> Array:
        m, h = gates["m"], gates["h"]
        return params.g_na * (m * m * m) * h * (v - params.e_na)


@dataclasses.dataclass(frozen=True)
class Potassium(Channel):
    """Delayed-rectifier K⁺ current ``I_k = g_k n⁴ (V − e_k)`` with gate n."""

    name: str = "k"
    gates: tuple[str, ...] = ("n",)

    def rates(self, v: Array, params: Any) -> dict[str, GateRates]:
        u = v - params.v_shift
        return {
            "n": GateRates(
                linoid(u, 0.01, -55.0, 10.0),
                exponential(u, 0.125, -65.0, 80.0),
            )
        }

    def current(self, v: Array, gates: dict[str, Array], params: Any) -> Array:
        n2 = gates["n"] * gates["n"]
        return params.g_k * (n2 * n2) * (v - params.e_k)


@dataclasses.dataclass(frozen=True)
class Leak(Channel):
    """Ohmic leak ``I_l = g_l (V − e_l)``; no gates."""

    name: str = "l"
    gates: tuple[str, ...] = ()

    def current(self, v: Array, gates: dict[str, Array], params: Any) -> Array:
        return params.g_l * (v - params.e_l)
