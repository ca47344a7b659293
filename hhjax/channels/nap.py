"""Persistent (non-inactivating) Na⁺ current I_NaP.

Voltage convention: modern (V in mV, rest ≈ −70 mV). Conductance mS/cm², current
µA/cm² (positive outward).

Activation is taken as instantaneous (it is far faster than the membrane time
constant) and the current does not inactivate, so the channel has no gate in the
state:

    p∞ = 1 / (1 + exp(−(V − v_nap) / 5 mV))
    I_nap = g_nap p∞(V) (V − e_na)

It activates below spike threshold (half-activation around −50 mV in cortical
neurons), adds an inward current that grows with depolarisation, and so raises
the input resistance of depolarised steps over that of hyperpolarised ones and
lets slow ramps reach threshold. The single Boltzmann gate with a slope of a few
mV is the usual description of this current (Crill 1996); ``v_nap`` is a
parameter because it differs between cells and with the liquid-junction
correction, the slope is fixed at 5 mV.

References:
    Crill W.E. (1996) Persistent sodium current in mammalian central neurons.
    Annu. Rev. Physiol. 58:349–362.
    Magistretti J., Alonso A. (1999) Biophysical properties and slow
    voltage-dependent inactivation of a sustained sodium current in entorhinal
    cortex layer-II principal cells. J. Gen. Physiol. 114:491–509.

Parameters read: ``g_nap`` (mS/cm²), ``v_nap`` (mV), ``e_na`` (mV).
"""

from __future__ import annotations

import dataclasses

from hhjax.channels._instantaneous import InstantaneousCurrent

NAP_SLOPE_MV = 5.0  # slope factor of the steady-state activation p∞, mV


@dataclasses.dataclass(frozen=True)
class PersistentSodium(InstantaneousCurrent):
    """Persistent Na⁺ current ``I_nap = g_nap p∞(V) (V − e_na)``, no gate state."""

    name: str = "nap"
    conductance_param: str | None = "g_nap"
    half_param: str = "v_nap"
    reversal_param: str = "e_na"
    slope_mv: float = NAP_SLOPE_MV
