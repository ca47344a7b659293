"""Channels of the minimal cortical models of Pospischil et al. (2008).

Voltage convention: modern (V in mV, rest ≈ −70 mV). Rates in 1/ms at 36 °C, the
temperature of the published models.

Na⁺ and delayed-rectifier K⁺ follow Traub & Miles (1991), written relative to the
threshold-shift parameter ``v_t`` (mV), ``u = V − v_t``:

    α_m = 0.32 (u−13) / (1 − exp(−(u−13)/4))     β_m = 0.28 (u−40) / (exp((u−40)/5) − 1)
    α_h = 0.128 exp(−(u−17)/18)                  β_h = 4 / (1 + exp(−(u−40)/5))
    α_n = 0.032 (u−15) / (1 − exp(−(u−15)/5))    β_n = 0.5 exp(−(u−10)/40)

    I_na = g_na m³ h (V − e_na)        I_kd = g_kd n⁴ (V − e_k)

The slow non-inactivating K⁺ ("M") current follows Yamada, Koch & Adams (1989):

    p∞ = 1 / (1 + exp(−(V+35)/10))
    τ_p = tau_max / (3.3 exp((V+35)/20) + exp(−(V+35)/20))
    I_m = g_m p (V − e_k)

given here as ``α_p = p∞/τ_p`` and ``β_p = (1 − p∞)/τ_p``. The Na⁺/K⁺ rates scale
with temperature by the model's ``q10`` (3 in the published code) and the M
current by its own ``q10_m`` (2.3), both about 36 °C.

References:
    Pospischil M. et al. (2008) Minimal Hodgkin–Huxley type models for different
    classes of cortical and thalamic neurons. Biol. Cybern. 99:427–441.
    Traub R.D., Miles R. (1991) Neuronal Networks of the Hippocampus. Cambridge UP.
    Yamada W.M., Koch C., Adams P.R. (1989) Multiple channels and calcium dynamics.
    In: Methods in Neuronal Modeling, MIT Press, pp. 97–133.

Parameters read (fields of the model's parameter tuple): ``g_na, e_na, v_t``
(TraubSodium), ``g_kd, e_k, v_t`` (TraubPotassium), ``g_m, e_k, tau_max``
(MCurrent; its rates scale by ``q10_m``); conductances mS/cm², potentials mV, ``tau_max``
ms, ``temperature`` °C. The leak is :class:`hhjax.channels.Leak` (``g_l, e_l``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from hhjax._model import Channel, GateRates
from hhjax.rates import exponential, linoid, sigmoid


@dataclasses.dataclass(frozen=True)
class TraubSodium(Channel):
    """Fast Na⁺ current ``I_na = g_na m³ h (V − e_na)``, rates shifted by ``v_t``."""

    name: str = "na"
    gates: tuple[str, ...] = ("m", "h")

    def rates(self, v: Array, params: Any) -> dict[str, GateRates]:
        u = v - params.v_t
        return {
            "m": GateRates(linoid(u, 0.32, 13.0, 4.0), linoid(u, -0.28, 40.0, -5.0)),
            "h": GateRates(
                exponential(u, 0.128, 17.0, 18.0),
                sigmoid(u, 4.0, 40.0, 5.0),
            ),
        }

    def current(self, v: Array, gates: dict[str, Array], params: Any) -> Array:
        m, h = gates["m"], gates["h"]
        return params.g_na * (m * m * m) * h * (v - params.e_na)


@dataclasses.dataclass(frozen=True)
class TraubPotassium(Channel):
    """Delayed-rectifier K⁺ current ``I_kd = g_kd n⁴ (V − e_k)``, shifted by ``v_t``."""

    name: str = "kd"
    gates: tuple[str, ...] = ("n",)

    def rates(self, v: Array, params: Any) -> dict[str, GateRates]:
        u = v - params.v_t
        return {
            "n": GateRates(
                linoid(u, 0.032, 15.0, 5.0),
                exponential(u, 0.5, 10.0, 40.0),
            )
        }

    def current(self, v: Array, gates: dict[str, Array], params: Any) -> Array:
        n2 = gates["n"] * gates["n"]
        return params.g_kd * (n2 * n2) * (v - params.e_k)


@dataclasses.dataclass(frozen=True)
class MCurrent(Channel):
    """Slow non-inactivating K⁺ current ``I_m = g_m p (V − e_k)`` (adaptation).

    Its rates scale with temperature by the parameter ``q10_m``, not ``q10``.
    """

    name: str = "m"
    gates: tuple[str, ...] = ("p",)
    q10_param: str = "q10_m"
    conductance_param: str | None = "g_m"

    def rates(self, v: Array, params: Any) -> dict[str, GateRates]:
        x = (v + 35.0) / 10.0
        # 1/τ_p = (3.3 e^{x/2} + e^{−x/2}) / tau_max; α = p∞/τ_p, β = (1 − p∞)/τ_p.
        # No factor overflows for |V| below ~1700 mV in float32 (~14000 mV in
        # float64), far beyond any membrane potential; beyond, up * s_down is
        # inf * 0 = NaN.
        up, down = 3.3 * jnp.exp(0.5 * x), jnp.exp(-0.5 * x)
        s_up, s_down = jax.nn.sigmoid(x), jax.nn.sigmoid(-x)
        scale = 1.0 / params.tau_max
        return {
            "p": GateRates(
                scale * (up * s_up + down * s_up),
                scale * (up * s_down + down * s_down),
            )
        }

    def current(self, v: Array, gates: dict[str, Array], params: Any) -> Array:
        return params.g_m * gates["p"] * (v - params.e_k)
