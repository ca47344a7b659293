"""Hyperpolarisation-activated cation current I_h (HCN channels).

Voltage convention: modern (V in mV, rest ≈ −70 mV). Rates in 1/ms, conductance
mS/cm², current µA/cm² (positive outward).

One activation gate ``r`` with a Boltzmann steady state that opens on
hyperpolarisation and a voltage-independent time constant:

    r∞ = 1 / (1 + exp((V − v_h) / 8 mV))      τ_r = tau_h
    I_h = g_h r (V − e_h)

With the defaults (``v_h`` = −80 mV, ``tau_h`` = 50 ms, ``e_h`` = −30 mV) a
hyperpolarising step opens it over tens of ms and the inward current pulls V
back up: the "sag" of pyramidal cells. The form is the usual single-gate HCN
description (e.g. Magee 1998, half-activation −80..−90 mV, slope ≈ 8 mV, reversal
≈ −30 mV); the constant time constant is a simplification. Rates scale with
temperature by ``q10_h`` (default 1).

References:
    Magee J.C. (1998) Dendritic hyperpolarization-activated currents modify the
    integrative properties of hippocampal CA1 pyramidal neurons. J. Neurosci.
    18:7613–7624.

Parameters read: ``g_h`` (mS/cm²), ``e_h`` (mV), ``v_h`` (mV), ``tau_h`` (ms),
``q10_h``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
from jax import Array

from hhjax._model import Channel, GateRates

H_SLOPE_MV = 8.0  # slope factor of r∞, mV (opens on hyperpolarisation)


@dataclasses.dataclass(frozen=True)
class HCurrent(Channel):
    """Hyperpolarisation-activated cation current ``I_h = g_h r (V − e_h)``."""

    name: str = "h"
    gates: tuple[str, ...] = ("r",)
    q10_param: str = "q10_h"
    conductance_param: str | None = "g_h"

    def rates(self, v: Array, params: Any) -> dict[str, GateRates]:
        r_inf = jax.nn.sigmoid(-(v - params.v_h) / H_SLOPE_MV)
        return {"r": GateRates.relaxing_to(r_inf, params.tau_h)}

    def current(self, v: Array, gates: dict[str, Array], params: Any) -> Array:
        return params.g_h * gates["r"] * (v - params.e_h)
