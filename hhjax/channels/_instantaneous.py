"""Currents whose gate follows V instantly: no state, one Boltzmann factor."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
from jax import Array

from hhjax._model import Channel


@dataclasses.dataclass(frozen=True)
class InstantaneousCurrent(Channel):
    """``I = g p∞(V) (V − E)``, ``p∞ = 1 / (1 + exp(−(V − v_half) / slope_mv))``.

    For a gate far faster than the membrane time constant: it has no state. The
    fields name the parameters read: ``conductance_param`` (g, mS/cm²; 0 switches
    the channel off), ``half_param`` (v_half, mV) and ``reversal_param`` (E, mV);
    ``slope_mv`` (mV) is fixed, positive for a gate that opens on depolarisation,
    negative for one that opens on hyperpolarisation. Current in µA/cm², positive
    outward.
    """

    gates: tuple[str, ...] = ()
    half_param: str = ""
    reversal_param: str = ""
    slope_mv: float = 5.0

    def current(self, v: Array, gates: dict[str, Array], params: Any) -> Array:
        v_half = getattr(params, self.half_param)
        p_inf = jax.nn.sigmoid((v - v_half) / self.slope_mv)
        g = getattr(params, self.conductance_param)
        return g * p_inf * (v - getattr(params, self.reversal_param))
