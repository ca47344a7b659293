"""Slowly inactivating Kv1-type K⁺ current I_D ("delay" current of cortical interneurons).

Voltage convention: modern (V in mV, rest ≈ −70 mV). Rates in 1/ms, conductance
mS/cm², current µA/cm² (positive outward).

Fast activation ``a`` and slow inactivation ``b``, each relaxing to a Boltzmann
steady state with a voltage-independent time constant (the form of Golomb et al.
2007):

    a∞ = 1 / (1 + exp(−(V + 50 mV) / 20 mV))      τ_a = 2 ms
    b∞ = 1 / (1 + exp((V − v_b) / 6 mV))           τ_b = tau_b
    I_D = g_d a³ b (V − e_k)

with ``e_k`` the model's K⁺ reversal potential. The current activates below spike
threshold but inactivates over ``tau_b`` (150 ms in the paper) at depolarised
potentials; near a typical resting potential it is mostly inactivated (``b∞`` =
0.16 at −60 mV for ``v_b`` = −70 mV). A hyperpolarisation removes the inactivation
(``b∞`` → 1), so a step that follows one meets several times more I_D: the cell
fires later or pauses, then recovers its rate as ``b`` inactivates again. This is
the history dependence of fast-spiking interneurons (e.g. a depolarising step
after a hyperpolarising pulse evokes fewer spikes than the same step from rest).
Rates scale with temperature by ``q10_d`` (default 1).

References:
    Golomb D., Donner K., Shacham L., Shlosberg D., Amitai Y., Hansel D. (2007)
    Mechanisms of firing patterns in fast-spiking cortical interneurons. PLoS
    Comput. Biol. 3:e156.

Parameters read: ``g_d`` (mS/cm²), ``tau_b`` (ms), ``v_b`` (mV), ``e_k`` (mV),
``q10_d``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
from jax import Array

from hhjax._model import Channel, GateRates

D_ACTIVATION_HALF_MV = -50.0  # half-activation of a∞, mV
D_ACTIVATION_SLOPE_MV = 20.0  # slope factor of a∞, mV
D_ACTIVATION_TAU_MS = 2.0  # activation time constant τ_a, ms
D_INACTIVATION_SLOPE_MV = 6.0  # slope factor of b∞ (closes on depolarisation), mV


@dataclasses.dataclass(frozen=True)
class DCurrent(Channel):
    """Kv1-type K⁺ current ``I_D = g_d a³ b (V − e_k)`` with slow inactivation."""

    name: str = "d"
    gates: tuple[str, ...] = ("a", "b")
    q10_param: str = "q10_d"
    conductance_param: str | None = "g_d"

    def rates(self, v: Array, params: Any) -> dict[str, GateRates]:
        a_inf = jax.nn.sigmoid((v - D_ACTIVATION_HALF_MV) / D_ACTIVATION_SLOPE_MV)
        b_inf = jax.nn.sigmoid(-(v - params.v_b) / D_INACTIVATION_SLOPE_MV)
        return {
            "a": GateRates.relaxing_to(a_inf, D_ACTIVATION_TAU_MS),
            "b": GateRates.relaxing_to(b_inf, params.tau_b),
        }

    def current(self, v: Array, gates: dict[str, Array], params: Any) -> Array:
        return params.g_d * gates["a"] ** 3 * gates["b"] * (v - params.e_k)
