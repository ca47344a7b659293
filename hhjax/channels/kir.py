"""Inward-rectifier K⁺ current I_Kir (Kir2-type).

Voltage convention: modern (V in mV, rest ≈ −70 mV). Conductance mS/cm², current
µA/cm² (positive outward).

Kir channels open on hyperpolarisation, within a millisecond (the block by
intracellular Mg²⁺ and polyamines is relieved), so activation is taken as
instantaneous and the channel has no gate in the state:

    m∞ = 1 / (1 + exp((V − v_kir) / 5 mV))
    I_kir = g_kir m∞(V) (V − e_k)

Below ``v_kir`` the conductance grows e-fold every 5 mV, so a cell with a large
``g_kir`` hardly hyperpolarises past it, whatever the injected current: the
flat floor of the hyperpolarised steps of fast-spiking interneurons, which
express Kir2 channels. Above it the current is nearly off, so it does not
touch spiking. Its reversal is the model's K⁺ reversal ``e_k``; the
half-activation ``v_kir`` is a parameter, the slope is fixed at 5 mV (the
usual single-Boltzmann description, e.g. Wolf et al. 2005).

References:
    Hibino H. et al. (2010) Inwardly rectifying potassium channels: their
    structure, function, and physiological roles. Physiol. Rev. 90:291–366.
    Wolf J.A. et al. (2005) NMDA/AMPA ratio impacts state transitions and
    entrainment to oscillations in a computational model of the nucleus
    accumbens medium spiny projection neuron. J. Neurosci. 25:9080–9095.

Parameters read: ``g_kir`` (mS/cm²), ``v_kir`` (mV), ``e_k`` (mV).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
from jax import Array

from hhjax._model import Channel

KIR_SLOPE_MV = 5.0  # slope factor of the steady-state activation m∞, mV


@dataclasses.dataclass(frozen=True)
class InwardRectifier(Channel):
    """Inward-rectifier K⁺ current ``I_kir = g_kir m∞(V) (V − e_k)``, no gate state."""

    name: str = "kir"
    gates: tuple[str, ...] = ()
    conductance_param: str | None = "g_kir"

    def current(self, v: Array, gates: dict[str, Array], params: Any) -> Array:
        m_inf = jax.nn.sigmoid((params.v_kir - v) / KIR_SLOPE_MV)
        return params.g_kir * m_inf * (v - params.e_k)
