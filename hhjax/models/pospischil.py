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

from hhjax._model import Model, document_fields
from hhjax.channels.hh import Leak
from hhjax.channels.ih import HCurrent
from hhjax.channels.kir import InwardRectifier
from hhjax.channels.kv1 import DCurrent
from hhjax.channels.nap import PersistentSodium
from hhjax.channels.pospischil import MCurrent, TraubPotassium, TraubSodium
from hhjax.channels.slow_ahp import SlowAHPCurrent

_FS = {"g_kd": 10.0, "g_m": 0.0, "g_l": 0.15}


@document_fields
class PospischilParams(NamedTuple):
    """Parameters of the Pospischil et al. (2008) model; defaults: the RS cell.

    Every field may be a scalar or an array broadcasting against the batch shape.
    Rates are given at 36 °C: ``q10`` scales the Na⁺/K⁺ rates, ``q10_m`` the M
    current's, ``q10_ahp`` the slow AHP current's, ``q10_h`` I_h's, ``q10_g``
    every conductance (1 = off). ``g_ahp = 0``, ``g_h = 0``, ``g_nap = 0``,
    ``g_d = 0`` and ``g_kir = 0`` (the defaults) switch the slow AHP current, I_h,
    the persistent Na⁺ current, the Kv1-type D current and the inward rectifier
    off; ``q10_d`` scales the D current's rates. Voltages in the modern convention
    (rest ≈ −70 mV for the RS set).

    Attributes:
        g_na: maximal Na⁺ conductance, mS/cm²
        g_kd: delayed-rectifier K⁺ conductance, mS/cm²
        g_m: slow M-type K⁺ conductance, mS/cm²
        g_l: leak conductance, mS/cm²
        e_na: Na⁺ reversal potential, mV
        e_k: K⁺ reversal potential, mV
        e_l: leak reversal potential, mV
        v_t: threshold shift of the Na⁺/K⁺ rates, mV
        tau_max: peak time constant of the M current, ms
        c_m: membrane capacitance, µF/cm²
        temperature: temperature of the cell, °C (the rates are given at 36 °C)
        q10: factor of the Na⁺/K⁺ rates per 10 °C, dimensionless
        q10_m: factor of the M-current rates per 10 °C, dimensionless
        q10_g: factor of every conductance per 10 °C, dimensionless (1 = off)
        g_ahp: spike-activated slow AHP K⁺ conductance, mS/cm²
        tau_w: closing time constant of the slow AHP gate, ms
        v_w: half-activation of the slow AHP opening rate, mV
        q10_ahp: factor of the slow AHP rates per 10 °C, dimensionless
        g_h: hyperpolarisation-activated (HCN) conductance, mS/cm²
        e_h: reversal potential of I_h, mV
        v_h: half-activation of I_h, mV
        tau_h: activation time constant of I_h, ms
        q10_h: factor of the I_h rates per 10 °C, dimensionless
        g_nap: persistent Na⁺ conductance, mS/cm²
        v_nap: half-activation of the persistent Na⁺ current, mV
        g_d: Kv1-type (D) K⁺ conductance, mS/cm²
        tau_b: inactivation time constant of the D current, ms
        v_b: half-inactivation of the D current, mV
        q10_d: factor of the D-current rates per 10 °C, dimensionless
        g_kir: inward-rectifier (Kir) K⁺ conductance, mS/cm²
        v_kir: half-activation of the inward rectifier, mV
    """

    g_na: ArrayLike = 50.0
    g_kd: ArrayLike = 5.0
    g_m: ArrayLike = 0.07
    g_l: ArrayLike = 0.1
    e_na: ArrayLike = 50.0
    e_k: ArrayLike = -100.0
    e_l: ArrayLike = -70.0
    v_t: ArrayLike = -55.0
    tau_max: ArrayLike = 1000.0
    c_m: ArrayLike = 1.0
    temperature: ArrayLike = 36.0
    q10: ArrayLike = 3.0
    q10_m: ArrayLike = 2.3
    q10_g: ArrayLike = 1.0
    g_ahp: ArrayLike = 0.0
    tau_w: ArrayLike = 150.0
    v_w: ArrayLike = -10.0
    q10_ahp: ArrayLike = 1.0
    g_h: ArrayLike = 0.0
    e_h: ArrayLike = -30.0
    v_h: ArrayLike = -80.0
    tau_h: ArrayLike = 50.0
    q10_h: ArrayLike = 1.0
    g_nap: ArrayLike = 0.0
    v_nap: ArrayLike = -50.0
    g_d: ArrayLike = 0.0
    tau_b: ArrayLike = 150.0
    v_b: ArrayLike = -70.0
    q10_d: ArrayLike = 1.0
    g_kir: ArrayLike = 0.0
    v_kir: ArrayLike = -90.0

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


@document_fields
class PospischilState(NamedTuple):
    """State of the Pospischil model; every field has the batch shape ``(*batch)``.

    Attributes:
        v: membrane potential, mV (modern convention)
        m: Na⁺ activation, dimensionless in [0, 1]
        h: Na⁺ inactivation, dimensionless in [0, 1]
        n: delayed-rectifier K⁺ activation, dimensionless in [0, 1]
        p: M-current activation, dimensionless in [0, 1]
        w: slow AHP activation, dimensionless in [0, 1]
        r: I_h activation, dimensionless in [0, 1]
        a: D-current activation, dimensionless in [0, 1]
        b: D-current inactivation, dimensionless in [0, 1]
    """

    v: Array
    m: Array
    h: Array
    n: Array
    p: Array
    w: Array
    r: Array
    a: Array
    b: Array


@document_fields
class PospischilTrace(NamedTuple):
    """Recorded output of :func:`hhjax.simulate` for the Pospischil model.

    Same sampling convention as :class:`hhjax.Trace`; fields not requested are
    ``None``; currents in µA/cm², positive outward.

    Attributes:
        t: time, ms, shape ``(samples,)``
        v: membrane potential, mV (modern convention), shape
            ``(samples, *batch)`` like every field below
        m: Na⁺ activation, dimensionless
        h: Na⁺ inactivation, dimensionless
        n: delayed-rectifier K⁺ activation, dimensionless
        p: M-current activation, dimensionless
        w: slow AHP activation, dimensionless
        r: I_h activation, dimensionless
        a: D-current activation, dimensionless
        b: D-current inactivation, dimensionless
        i_na: Na⁺ current, µA/cm², positive outward
        i_kd: delayed-rectifier K⁺ current, µA/cm², positive outward
        i_m: M current, µA/cm², positive outward
        i_ahp: slow AHP current, µA/cm², positive outward
        i_h: hyperpolarisation-activated current, µA/cm², positive outward
        i_nap: persistent Na⁺ current, µA/cm², positive outward
        i_d: Kv1-type D current, µA/cm², positive outward
        i_kir: inward-rectifier K⁺ current, µA/cm², positive outward
        i_l: leak current, µA/cm², positive outward
    """

    t: Array
    v: Array | None
    m: Array | None
    h: Array | None
    n: Array | None
    p: Array | None
    w: Array | None
    r: Array | None
    a: Array | None
    b: Array | None
    i_na: Array | None
    i_kd: Array | None
    i_m: Array | None
    i_ahp: Array | None
    i_h: Array | None
    i_nap: Array | None
    i_d: Array | None
    i_kir: Array | None
    i_l: Array | None


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
