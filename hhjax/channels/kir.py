"""Inward-rectifier K⁺ current I_Kir (Kir2-type).

Voltage convention: modern (V in mV, rest ≈ −70 mV). Conductance mS/cm², current
µA/cm² (positive outward).

Kir channels open on hyperpolarisation (the block by intracellular Mg²⁺ and
polyamines is relieved) within about a millisecond, far faster than the membrane
time constant, so this model takes activation as instantaneous and the channel
has no gate in the state:

    m∞ = 1 / (1 + exp((V − v_kir) / 5 mV))
    I_kir = g_kir m∞(V) (V − e_k)

Well above ``v_kir`` the conductance is small and grows e-fold per 5 mV of
hyperpolarisation; below it, it saturates at ``g_kir``. With ``g_kir`` much
larger than the leak, the membrane conductance rises several-fold over the 20 mV
around ``v_kir``, so stronger hyperpolarising currents move V little further:
the floor of the hyperpolarised steps of fast-spiking interneurons, which
express Kir2 channels. At 15 mV and more above ``v_kir`` it carries less than
5 % of ``g_kir``. Its reversal is the model's K⁺ reversal ``e_k``. The single
Boltzmann with a fixed 5 mV slope and instantaneous activation are this
model's choices (measured and published Kir descriptions differ in slope and
add a fast time constant); ``v_kir`` is a parameter.

References:
    Hibino H. et al. (2010) Inwardly rectifying potassium channels: their
    structure, function, and physiological roles. Physiol. Rev. 90:291–366.

Parameters read: ``g_kir`` (mS/cm²), ``v_kir`` (mV), ``e_k`` (mV).
"""

from __future__ import annotations

import dataclasses

from hhjax.channels._instantaneous import InstantaneousCurrent

# Slope factor of the steady-state activation m∞, mV; negative: it opens on
# hyperpolarisation.
KIR_SLOPE_MV = -5.0


@dataclasses.dataclass(frozen=True)
class InwardRectifier(InstantaneousCurrent):
    """Inward-rectifier K⁺ current ``I_kir = g_kir m∞(V) (V − e_k)``, no gate state."""

    name: str = "kir"
    conductance_param: str | None = "g_kir"
    half_param: str = "v_kir"
    reversal_param: str = "e_k"
    slope_mv: float = KIR_SLOPE_MV
