"""A Ca²⁺-independent, spike-activated slow afterhyperpolarisation (AHP) K⁺ current.

Voltage convention: modern (V in mV, rest ≈ −70 mV). Rates in 1/ms, conductance
mS/cm², current µA/cm² (positive outward).

A K⁺ gate ``w`` that opens only at spike voltages and closes slowly at all
voltages:

    α_w = σ((V − v_w) / 5 mV) / (2 ms)      β_w = 1 / tau_w
    I_ahp = g_ahp w (V − e_k)

with σ the logistic function and ``e_k`` the model's K⁺ reversal potential.
With ``v_w`` well above rest the gate is nearly closed
below threshold (``w∞ = α/(α + β)`` is 5·10⁻⁴ at −70 mV and 3·10⁻³ at −60 mV for
the defaults ``v_w`` = −10 mV, ``tau_w`` = 150 ms: almost no conductance at
rest); each spike opens it by a step, and it then closes over ``tau_w``. The
result is an afterhyperpolarisation that relaxes slowly back to threshold (the
interspike voltage ramps) and builds up over a train when the interspike
interval is shorter than ``tau_w`` (spike-frequency adaptation). The rates scale
with temperature by the parameter ``q10_ahp`` (default 1: ``tau_w`` is the time
constant at any temperature).

This is a phenomenological stand-in for the slow AHP of cortical pyramidal cells
(Ca²⁺-activated K⁺ channels in the cell, e.g. Madison & Nicoll 1984), written
with voltage-gated kinetics so that the model needs no Ca²⁺ concentration state;
it is not a model of that Ca²⁺ dependence.

References:
    Madison D.V., Nicoll R.A. (1984) Control of the repetitive discharge of rat
    CA1 pyramidal neurones in vitro. J. Physiol. 354:319–331.

Parameters read (fields of the model's parameter tuple): ``g_ahp`` (mS/cm²),
``tau_w`` (ms), ``v_w`` (mV), ``e_k`` (mV), ``q10_ahp``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from hhjax._model import Channel, GateRates

AHP_SLOPE_MV = 5.0  # slope factor of the opening rate's voltage dependence, mV
AHP_OPEN_TAU_MS = 2.0  # time constant of the opening rate at spike voltages, ms


@dataclasses.dataclass(frozen=True)
class SlowAHPCurrent(Channel):
    """Spike-activated slow K⁺ current ``I_ahp = g_ahp w (V − e_k)``.

    Its rates scale with temperature by the parameter ``q10_ahp``.
    """

    name: str = "ahp"
    gates: tuple[str, ...] = ("w",)
    q10_param: str = "q10_ahp"
    conductance_param: str | None = "g_ahp"

    def rates(self, v: Array, params: Any) -> dict[str, GateRates]:
        opening = jax.nn.sigmoid((v - params.v_w) / AHP_SLOPE_MV) / AHP_OPEN_TAU_MS
        closing = jnp.zeros_like(opening) + 1.0 / params.tau_w  # V-independent
        return {"w": GateRates(opening, closing)}

    def current(self, v: Array, gates: dict[str, Array], params: Any) -> Array:
        return params.g_ahp * gates["w"] * (v - params.e_k)
