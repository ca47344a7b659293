"""Minimal cortical models of Pospischil et al. (2008): regular- and fast-spiking.

Voltage convention: modern (V in mV, rest ≈ −70 mV). One model, ``"pospischil"``
(Traub–Miles Na⁺ and K⁺ with threshold shift ``v_t``, slow M-type K⁺ with
``tau_max``, leak); the cell classes are parameter sets:
:meth:`PospischilParams.rs` (regular spiking, adapting) and
:meth:`PospischilParams.fs` (fast spiking, no M current). Command-line names
``"pospischil-rs"`` / ``"pospischil-fs"`` map to them in :data:`hhjax.MODELS`.

The default parameter sets are those of the authors' published NEURON code for
the paper (ModelDB accession 123623; templates ``sPY`` for RS and ``sIN`` for FS):

=============  ========  ========  ======
field          RS        FS        unit
=============  ========  ========  ======
g_na           50        50        mS/cm²
g_kd           5         10        mS/cm²
g_m            0.07      0         mS/cm²
g_l            0.1       0.15      mS/cm²
e_na           50        50        mV
e_k            −100      −100      mV
e_l            −70       −70       mV
v_t            −55       −55       mV
tau_max        1000      1000      ms
c_m            1         1         µF/cm²
=============  ========  ========  ======

In that code the RS cell is a 96 µm × 96 µm cylinder (area 2.9·10⁻⁴ cm², 290 pF)
and the FS cell 67 µm × 67 µm (1.41·10⁻⁴ cm², 141 pF). The paper also reports
per-cell fits (e.g. an RS cell with g_l = 0.0205, g_na = 56, g_kd = 6,
g_m = 0.075 mS/cm², v_t = −56.2 mV, tau_max = 608 ms, e_l = −70.3 mV); pass them as
overrides if you want those.

Extensions, not in the paper: a spike-activated slow AHP K⁺ current
(:class:`hhjax.channels.SlowAHPCurrent`; ``g_ahp``, ``tau_w``, ``v_w``,
``q10_ahp``), a hyperpolarisation-activated cation current
(:class:`hhjax.channels.HCurrent`; ``g_h``, ``e_h``, ``v_h``, ``tau_h``,
``q10_h``), a persistent Na⁺ current (:class:`hhjax.channels.PersistentSodium`;
``g_nap``, ``v_nap``), a slowly inactivating Kv1-type K⁺ current
(:class:`hhjax.channels.DCurrent`; ``g_d``, ``tau_b``, ``v_b``, ``q10_d``) and an
inward-rectifier K⁺ current (:class:`hhjax.channels.InwardRectifier`; ``g_kir``,
``v_kir``). All five are switched off (``g_ahp = g_h = g_nap = g_d = g_kir = 0``)
in the published sets, which then simulate exactly as the published model (the
currents are zero and V does not depend on their gates ``w``, ``r``, ``a``, ``b``
or on ``v_nap``, ``v_kir``).
"""

from __future__ import annotations

from typing import NamedTuple

from jax import Array
from jax.typing import ArrayLike

from hhjax._model import Model
from hhjax.channels.hh import Leak
from hhjax.channels.ih import HCurrent
from hhjax.channels.kir import InwardRectifier
from hhjax.channels.kv1 import DCurrent
from hhjax.channels.nap import PersistentSodium
from hhjax.channels.pospischil import MCurrent, TraubPotassium, TraubSodium
from hhjax.channels.slow_ahp import SlowAHPCurrent

_FS = {"g_kd": 10.0, "g_m": 0.0, "g_l": 0.15}


class PospischilParams(NamedTuple):
    """Parameters of the Pospischil et al. (2008) model; defaults: the RS cell.

    Every field may be a scalar or an array broadcasting against the batch shape.
    Rates are given at 36 °C: ``q10`` scales the Na⁺/K⁺ rates, ``q10_m`` the M
    current's, ``q10_ahp`` the slow AHP current's, ``q10_h`` I_h's, ``q10_g``
    every conductance (1 = off). ``g_ahp = 0``, ``g_h = 0``, ``g_nap = 0``,
    ``g_d = 0`` and ``g_kir = 0`` (the defaults) switch the slow AHP current, I_h,
    the persistent Na⁺ current, the Kv1-type D current and the inward rectifier
    off; ``q10_d`` scales the D current's rates.
    """

    g_na: ArrayLike = 50.0  # maximal Na+ conductance, mS/cm^2
    g_kd: ArrayLike = 5.0  # delayed-rectifier K+ conductance, mS/cm^2
    g_m: ArrayLike = 0.07  # slow M-type K+ conductance, mS/cm^2
    g_l: ArrayLike = 0.1  # leak conductance, mS/cm^2
    e_na: ArrayLike = 50.0  # Na+ reversal potential, mV
    e_k: ArrayLike = -100.0  # K+ reversal potential, mV
    e_l: ArrayLike = -70.0  # leak reversal potential, mV
    v_t: ArrayLike = -55.0  # threshold shift of the Na+/K+ rates, mV
    tau_max: ArrayLike = 1000.0  # peak time constant of the M current, ms
    c_m: ArrayLike = 1.0  # membrane capacitance, uF/cm^2
    temperature: ArrayLike = 36.0  # degC; rates are given at 36 degC
    q10: ArrayLike = 3.0  # temperature factor of the Na+/K+ rates per 10 degC
    q10_m: ArrayLike = 2.3  # temperature factor of the M-current rates
    q10_g: ArrayLike = 1.0  # temperature factor of the conductances (1 = off)
    g_ahp: ArrayLike = 0.0  # spike-activated slow AHP K+ conductance, mS/cm^2
    tau_w: ArrayLike = 150.0  # closing time constant of the slow AHP gate, ms
    v_w: ArrayLike = -10.0  # half-activation of the slow AHP opening rate, mV
    q10_ahp: ArrayLike = 1.0  # temperature factor of the slow AHP rates
    g_h: ArrayLike = 0.0  # hyperpolarisation-activated (HCN) conductance, mS/cm^2
    e_h: ArrayLike = -30.0  # reversal potential of I_h, mV
    v_h: ArrayLike = -80.0  # half-activation of I_h, mV
    tau_h: ArrayLike = 50.0  # activation time constant of I_h, ms
    q10_h: ArrayLike = 1.0  # temperature factor of the I_h rates
    g_nap: ArrayLike = 0.0  # persistent Na+ conductance, mS/cm^2
    v_nap: ArrayLike = -50.0  # half-activation of the persistent Na+ current, mV
    g_d: ArrayLike = 0.0  # Kv1-type (D) K+ conductance, mS/cm^2
    tau_b: ArrayLike = 150.0  # inactivation time constant of the D current, ms
    v_b: ArrayLike = -70.0  # half-inactivation of the D current, mV
    q10_d: ArrayLike = 1.0  # temperature factor of the D-current rates
    g_kir: ArrayLike = 0.0  # inward-rectifier (Kir) K+ conductance, mS/cm^2
    v_kir: ArrayLike = -90.0  # half-activation of the inward rectifier, mV

    @classmethod
    def rs(cls, **overrides: ArrayLike) -> PospischilParams:
        """Regular-spiking (adapting) pyramidal cell; ``**overrides`` any field."""
        return cls(**overrides)

    @classmethod
    def fs(cls, **overrides: ArrayLike) -> PospischilParams:
        """Fast-spiking interneuron (no M current, larger g_kd and g_l).

        Args:
            **overrides: any field to set differently.
        """
        return cls(**{**_FS, **overrides})


class PospischilState(NamedTuple):
    """State of the Pospischil model; every field has the batch shape ``(*batch)``."""

    v: Array  # membrane potential, mV
    m: Array  # Na+ activation, dimensionless in [0, 1]
    h: Array  # Na+ inactivation, dimensionless in [0, 1]
    n: Array  # delayed-rectifier K+ activation, dimensionless in [0, 1]
    p: Array  # M-current activation, dimensionless in [0, 1]
    w: Array  # slow AHP activation, dimensionless in [0, 1]
    r: Array  # I_h activation, dimensionless in [0, 1]
    a: Array  # D-current activation, dimensionless in [0, 1]
    b: Array  # D-current inactivation, dimensionless in [0, 1]


class PospischilTrace(NamedTuple):
    """Recorded output of :func:`hhjax.simulate` for the Pospischil model.

    Same sampling convention as :class:`hhjax.Trace`; fields not requested are
    ``None``; currents in µA/cm², positive outward.
    """

    t: Array  # time, ms, shape (samples,)
    v: Array | None  # membrane potential, mV, shape (samples, *batch)
    m: Array | None  # Na+ activation, 1
    h: Array | None  # Na+ inactivation, 1
    n: Array | None  # delayed-rectifier K+ activation, 1
    p: Array | None  # M-current activation, 1
    w: Array | None  # slow AHP activation, 1
    r: Array | None  # I_h activation, 1
    a: Array | None  # D-current activation, 1
    b: Array | None  # D-current inactivation, 1
    i_na: Array | None  # Na+ current, uA/cm^2
    i_kd: Array | None  # delayed-rectifier K+ current, uA/cm^2
    i_m: Array | None  # M current, uA/cm^2
    i_ahp: Array | None  # slow AHP current, uA/cm^2
    i_h: Array | None  # hyperpolarisation-activated current, uA/cm^2
    i_nap: Array | None  # persistent Na+ current, uA/cm^2
    i_d: Array | None  # Kv1-type D current, uA/cm^2
    i_kir: Array | None  # inward-rectifier K+ current, uA/cm^2
    i_l: Array | None  # leak current, uA/cm^2


POSPISCHIL = Model(
    name="pospischil",
    channels=(
        TraubSodium(),
        TraubPotassium(),
        MCurrent(),
        SlowAHPCurrent(),
        HCurrent(),
        PersistentSodium(),
        DCurrent(),
        InwardRectifier(),
        Leak(),
    ),
    params_type=PospischilParams,
    state_type=PospischilState,
    trace_type=PospischilTrace,
    reference_temperature=36.0,
)
"""Pospischil et al. (2008) cortical model; RS/FS are parameter sets."""
