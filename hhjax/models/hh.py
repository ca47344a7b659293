"""The Hodgkin–Huxley (1952) squid-axon model: parameters, state, trace.

Voltage convention: **modern** by default (rest ≈ −65 mV, depolarisation positive).
:meth:`HHParams.hh1952` gives HH's original convention, as used by pyHH (V measured
from rest, rest at 0 mV; the rates are the modern ones evaluated at ``V − 65`` mV).
"""

from __future__ import annotations

from typing import NamedTuple

from jax import Array
from jax.typing import ArrayLike

from hhjax._model import Model, document_fields
from hhjax.channels.hh import Leak, Potassium, Sodium


@document_fields
class HHParams(NamedTuple):
    """Parameters of the HH model. Every field may be a scalar or an array whose
    shape broadcasts against the batch shape of the simulation.

    Defaults are standard HH in the modern convention (Dayan & Abbott 2001, §5.6;
    ``e_l`` chosen so that rest is ≈ −65 mV: the exact I = 0 fixed point is
    −64.996 mV, see :func:`hhjax.resting_state`).

    Attributes:
        g_na: maximal Na⁺ conductance, mS/cm²
        g_k: maximal K⁺ conductance, mS/cm²
        g_l: leak conductance, mS/cm²
        e_na: Na⁺ reversal potential, mV
        e_k: K⁺ reversal potential, mV
        e_l: leak reversal potential, mV
        c_m: membrane capacitance, µF/cm²
        temperature: temperature of the cell, °C (the rates are given at 6.3 °C)
        q10: factor of the rates per 10 °C, dimensionless
        q10_g: factor of the conductances per 10 °C, dimensionless (1 = off)
        v_shift: shift of the rates' voltage axis, mV: they are evaluated at
            ``V − v_shift`` (65 in the 1952 convention, 0 in the modern one)
    """

    g_na: ArrayLike = 120.0
    g_k: ArrayLike = 36.0
    g_l: ArrayLike = 0.3
    e_na: ArrayLike = 50.0
    e_k: ArrayLike = -77.0
    e_l: ArrayLike = -54.387
    c_m: ArrayLike = 1.0
    temperature: ArrayLike = 6.3
    q10: ArrayLike = 3.0
    q10_g: ArrayLike = 1.0
    v_shift: ArrayLike = 0.0

    @classmethod
    def hh1952(cls, **overrides: ArrayLike) -> HHParams:
        """Parameters in HH's 1952 / pyHH convention: V from rest, rest at 0 mV.

        ``e_na = 115``, ``e_k = −12``, ``e_l = 10.6`` mV and ``v_shift = 65`` mV;
        conductances and ``c_m`` as the defaults. Note ``e_l`` 10.6 ≠ −54.387 + 65,
        so this is not exactly the default cell shifted by 65 mV (it rests at
        +0.0003 mV, where the shifted default cell would rest at +0.004 mV).

        Args:
            **overrides: any field to set differently.
        """
        base = {"e_na": 115.0, "e_k": -12.0, "e_l": 10.6, "v_shift": 65.0}
        base.update(overrides)
        return cls(**base)


@document_fields
class HHState(NamedTuple):
    """State of the HH model; every field has the batch shape ``(*batch)``.

    Attributes:
        v: membrane potential, mV (in the convention of the parameters)
        m: Na⁺ activation, dimensionless in [0, 1]
        h: Na⁺ inactivation, dimensionless in [0, 1]
        n: K⁺ activation, dimensionless in [0, 1]
    """

    v: Array
    m: Array
    h: Array
    n: Array


@document_fields
class Trace(NamedTuple):
    """Recorded output of :func:`hhjax.simulate` for the HH model.

    Sample ``k`` is taken at ``t[k]`` *before* the step that starts there, so
    ``v[0]`` is the initial state and ``i_ext[k]`` acts between ``t[k]`` and the next
    step. Fields that were not requested (see ``simulate(record=...)``) are ``None``.
    Currents are positive outward (``I = g · gates · (V − E)``).

    Attributes:
        t: time, ms, shape ``(samples,)``
        v: membrane potential, mV (in the convention of the parameters: modern
            by default), shape ``(samples, *batch)`` like every field below
        m: Na⁺ activation, dimensionless
        h: Na⁺ inactivation, dimensionless
        n: K⁺ activation, dimensionless
        i_na: Na⁺ current, µA/cm², positive outward
        i_k: K⁺ current, µA/cm², positive outward
        i_l: leak current, µA/cm², positive outward
    """

    t: Array
    v: Array | None
    m: Array | None
    h: Array | None
    n: Array | None
    i_na: Array | None
    i_k: Array | None
    i_l: Array | None


HH = Model(
    name="hh",
    channels=(Sodium(), Potassium(), Leak()),
    params_type=HHParams,
    state_type=HHState,
    trace_type=Trace,
    reference_temperature=6.3,
)
"""Standard Hodgkin–Huxley squid-axon model (modern convention by default)."""
