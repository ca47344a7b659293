"""A pyHH-compatible facade on hhjax's jitted core: move over in one line.

Replace ``import pyhh`` by ``from hhjax import pyhh`` and keep the rest::

    import numpy as np
    from hhjax import pyhh

    model = pyhh.HHModel()
    model.gNa = 100.0                      # mS/cm^2, as in pyHH
    stim = np.zeros(20000)
    stim[7000:13000] = 50.0                # uA/cm^2
    sim = pyhh.Simulation(model)
    sim.Run(stimulusWaveform=stim, stepSizeMs=0.01)
    sim.Vm, sim.StateH, sim.INa            # NumPy float64 arrays, one per step

Voltage convention: HH's 1952 one, as pyHH (V measured from rest, rest at 0 mV,
depolarisation positive; plot ``Vm - 70`` for a "real-looking" trace). Units: mV, ms,
µA/cm², mS/cm², µF/cm².

Semantics kept from pyHH: forward Euler with every rate, current and
derivative taken from the state at the start of the step; ``Vm``, ``StateH``,
``StateM``, ``StateN`` hold the state *after* each step and ``INa``, ``IK``,
``IKleak`` the currents computed *before* it (from the same state the step starts
from), with pyHH's sign ``I = g · gates · (V − E)`` (outward positive);
``times[k] = k · stepSizeMs``; a model remembers its state, so a second ``Run``
continues where the first stopped; after a run the model's gates hold the rates
last evaluated (at the V the last step started from), as pyHH's do.

Deliberate differences from pyHH:

1. ``h`` starts at its steady state (pyHH leaves it at 0): all gates start at
   steady state for the starting voltage (default 0 mV, i.e. rest), as HHSharp.
2. Every ``HHModel`` has its own gates and parameters (pyHH shares its gate
   objects between all models as class attributes).
3. The 0/0 points of α_m (V = 25 mV) and α_n (V = 10 mV) give the limit value, not
   NaN.
4. The loop runs as one jitted :func:`hhjax.simulate` call (``lax.scan``), always in
   float64 (a scoped ``jax.enable_x64``, no global switch), not a Python loop.
   ``Run`` prints nothing (pyHH prints "simulating N time points..." and
   "simulation complete"); its step-size advice above 0.05 ms is a
   :class:`hhjax.StepSizeWarning`, a ``UserWarning`` as pyHH's.
5. Inputs are checked: the waveform must be a 1-D finite array in µA/cm² with
   |I| ≤ :data:`hhjax.MAX_PLAUSIBLE_CURRENT` and ``stepSizeMs`` a positive number;
   the parameters (``gNa``, ``ENa``, ``Cm``, ...) and ``Vm`` are checked when set:
   a real number (not a string such as ``"100"``), finite, conductances ≥ 0,
   ``Cm`` > 0, else a ``TypeError`` / ``ValueError`` naming the pyHH attribute. A
   run that becomes NaN or infinite raises :class:`hhjax.NonFiniteSimulationError`
   instead of filling the arrays with NaN.
6. Only pyHH's current call ``Run(stimulusWaveform, stepSizeMs)`` is offered (the
   older ``Run(stimulusCurrent, durationSec, deltaTms)`` with a scalar current is
   not); ``stepSizeMs`` defaults to 0.01 ms.

pyHH's per-step ``HHModel.iterate(stimulusCurrent, deltaTms)`` is kept for
closed-loop scripts (each call one compiled step, ~0.1 ms: use ``Run`` for whole
waveforms), as are the nested name ``HHModel.Gate``, ``Gate.update(deltaTms)`` and
``Gate.setInfiniteState()``, and the three parts of pyHH's ``iterate``:
``HHModel._UpdateGateTimeConstants(Vm)``, ``_UpdateCellVoltage(stimulusCurrent,
deltaTms)`` and ``_UpdateGateStates(deltaTms)`` (in that order they repeat
``iterate`` to rounding, one eager evaluation each, far slower than ``Run``).

Additions: :meth:`HHModel.params` and :meth:`HHModel.state` give the cell as
:class:`hhjax.HHParams` / :class:`hhjax.HHState`, and :meth:`Simulation.trace` the
results as a :class:`hhjax.Trace` for :mod:`hhjax.plot`.
"""

# pyHH's camelCase names (Run, stepSizeMs, ...) are the point of this module.
# ruff: noqa: N802, N803

from __future__ import annotations

import dataclasses
import math
import warnings

import jax
import numpy as np
from jax.typing import ArrayLike

from hhjax._checks import check_current, check_params, positive_number
from hhjax._integrators import METHODS
from hhjax._model import model_of
from hhjax._simulate import NonFiniteSimulationError, StepSizeWarning, simulate
from hhjax.models.hh import HHParams, HHState, Trace

__all__ = ["Gate", "HHModel", "Simulation"]

_METHOD = "euler"
_MAX_STEP_MS = METHODS[_METHOD].max_stable_dt  # pyHH warns above 0.05 ms
# pyHH result array -> hhjax trace field, for values after / before each step.
_AFTER_STEP = {"Vm": "v", "StateM": "m", "StateH": "h", "StateN": "n"}
_BEFORE_STEP = {"INa": "i_na", "IK": "i_k", "IKleak": "i_l"}
# pyHH parameter attribute -> HHParams field (units: mV, mS/cm^2, uF/cm^2).
_PARAMETERS = {
    "ENa": "e_na",
    "EK": "e_k",
    "EKleak": "e_l",
    "gNa": "g_na",
    "gK": "g_k",
    "gKleak": "g_l",
    "Cm": "c_m",
}
_GATES = ("m", "h", "n")


@dataclasses.dataclass
class Gate:
    """One gating variable, as pyHH's ``Gate``.

    Attributes:
        alpha: opening rate last evaluated, 1/ms.
        beta: closing rate last evaluated, 1/ms.
        state: open fraction, dimensionless in [0, 1].
    """

    alpha: float = 0.0
    beta: float = 0.0
    state: float = 0.0

    def update(self, deltaTms: float) -> None:
        """Advance ``state`` one forward-Euler step of ``deltaTms`` ms with the
        present rates: ``state += dt · (α (1 − state) − β state)`` (pyHH API)."""
        dt = positive_number(deltaTms, "deltaTms", "ms")
        self.state += dt * (self.alpha * (1.0 - self.state) - self.beta * self.state)

    def setInfiniteState(self) -> None:
        """Set ``state`` to its steady state for the present rates, ``α / (α + β)``
        (pyHH API)."""
        self.state = self.alpha / (self.alpha + self.beta)


def _check_voltage(value: object, name: str) -> None:
    """A clear error for a membrane potential (mV) that is not a finite number."""
    try:
        finite = math.isfinite(float(value))
    except (TypeError, ValueError):
        finite = False
    if not finite:
        raise ValueError(f"`{name}` must be a finite voltage in mV; got {value!r}.")


def _real_number(value: object, name: str) -> float:
    """``value`` as a float; a ``TypeError`` naming ``name`` unless it is one real
    number (a string such as ``"100"``, a bool or an array is refused)."""
    kind = np.asarray(value).dtype.kind if not isinstance(value, str) else "U"
    if kind not in "iuf" or np.ndim(value) != 0:
        raise TypeError(
            f"`{name}` must be a real number; got {type(value).__name__} {value!r}."
        )
    return float(value)


def _checked_parameter(name: str, value: object) -> float:
    """A pyHH parameter (``gNa``, ``ENa``, ``Cm``, ...) as a float, checked as
    :func:`hhjax.simulate` checks its parameters, with the pyHH name in errors."""
    number = _real_number(value, name)
    field = _PARAMETERS[name]
    try:
        check_params(HHParams.hh1952(**{field: number}))
    except ValueError as err:
        raise ValueError(str(err).replace(f"`{field}`", f"`{name}`")) from None
    return number


class HHModel:
    """A Hodgkin–Huxley cell with pyHH's attributes (1952 convention, rest 0 mV).

    Attributes:
        ENa, EK, EKleak: reversal potentials, mV (115, −12, 10.6).
        gNa, gK, gKleak: maximal conductances, mS/cm² (120, 36, 0.3).
        Cm: membrane capacitance, µF/cm² (1).
        Vm: membrane potential, mV (from rest).
        m, h, n: the gates (:class:`Gate`), each this model's own.
        INa, IK, IKleak: currents of the last step, µA/cm²,
            ``g · gates · (V − E)`` (NaN before the first run).

    Setting a parameter or ``Vm`` checks it at once: a ``TypeError`` for what is
    not a real number, a ``ValueError`` for a non-finite value, a negative
    conductance or a ``Cm`` ≤ 0, each naming the attribute.
    """

    Gate = Gate  # pyHH's nested name, HHModel.Gate

    def __setattr__(self, name: str, value: object) -> None:
        if name in _PARAMETERS:
            value = _checked_parameter(name, value)
        elif name == "Vm":
            value = _real_number(value, name)
            _check_voltage(value, name)
        super().__setattr__(name, value)

    def __init__(self, startingVoltage: float = 0.0) -> None:
        """Create a cell at ``startingVoltage`` mV with gates at steady state there.

        Args:
            startingVoltage: initial membrane potential, mV, 1952 convention.

        Raises:
            TypeError: ``startingVoltage`` is not a real number (e.g. ``"5"``).
            ValueError: ``startingVoltage`` is not finite.
        """
        self.ENa, self.EK, self.EKleak = 115.0, -12.0, 10.6  # mV
        self.gNa, self.gK, self.gKleak = 120.0, 36.0, 0.3  # mS/cm^2
        self.Cm = 1.0  # uF/cm^2
        start = _real_number(startingVoltage, "startingVoltage")  # not "Vm"
        _check_voltage(start, "startingVoltage")
        self.Vm = start
        self.INa = self.IK = self.IKleak = math.nan
        for name in _GATES:
            setattr(self, name, Gate())
        # As pyHH: rates at the starting voltage, gates at their steady state.
        self._UpdateGateTimeConstants(self.Vm)
        for name in _GATES:
            getattr(self, name).setInfiniteState()

    def iterate(self, stimulusCurrent: float = 0.0, deltaTms: float = 0.05) -> None:
        """Advance one forward-Euler step under ``stimulusCurrent`` (pyHH API).

        The same step as one sample of :meth:`Simulation.Run`: ``Vm``, the gates,
        their rates and ``INa``, ``IK``, ``IKleak`` are updated as pyHH's
        ``iterate`` updates them.

        Args:
            stimulusCurrent: injected current, µA/cm² (inward, depolarising
                positive).
            deltaTms: step, ms.

        Raises:
            ValueError: as :meth:`Simulation.Run`.
        """
        Simulation(self).Run(np.array([stimulusCurrent]), deltaTms)

    def params(self) -> HHParams:
        """This cell's parameters as :class:`hhjax.HHParams` (1952 convention).

        ``gKleak`` and ``EKleak`` become ``g_l`` and ``e_l``; the temperature is
        HH's 6.3 °C (no rate scaling), as pyHH.
        """
        return HHParams.hh1952(
            **{field: float(getattr(self, name)) for name, field in _PARAMETERS.items()}
        )

    def state(self) -> HHState:
        """The current state (``Vm`` and gate states) as :class:`hhjax.HHState`."""
        return HHState(
            v=np.float64(self.Vm),
            m=np.float64(self.m.state),
            h=np.float64(self.h.state),
            n=np.float64(self.n.state),
        )

    def _UpdateGateTimeConstants(self, Vm: float) -> None:
        """Set each gate's ``alpha`` and ``beta`` (1/ms) to their values at ``Vm``
        (mV, 1952 convention) (pyHH API; finite at α's 0/0 points)."""
        _check_voltage(Vm, "Vm")
        with jax.enable_x64(True):
            params = self.params()
            rates = model_of(params).rates(np.float64(Vm), params)
        for name in _GATES:
            gate = getattr(self, name)
            gate.alpha, gate.beta = float(rates[name].alpha), float(rates[name].beta)

    def _UpdateCellVoltage(self, stimulusCurrent: float, deltaTms: float) -> None:
        """Set ``INa``, ``IK``, ``IKleak`` (µA/cm², outward positive) from the
        present state, then advance ``Vm`` one forward-Euler step of ``deltaTms``
        ms under ``stimulusCurrent`` µA/cm² (inward positive) (pyHH API)."""
        dt = positive_number(deltaTms, "deltaTms", "ms")
        check_current(np.array([stimulusCurrent]), "stimulusCurrent", opt_out=False)
        with jax.enable_x64(True):
            params, state = self.params(), self.state()
            model = model_of(params)
            currents = model.currents(state, params)
            dv_dt = float(model.dv_dt(state, params, np.float64(stimulusCurrent)))
        for name, field in _BEFORE_STEP.items():
            setattr(self, name, float(currents[field]))
        self.Vm = self.Vm + dt * dv_dt

    def _UpdateGateStates(self, deltaTms: float) -> None:
        """Advance every gate one forward-Euler step of ``deltaTms`` ms with its
        present rates (:meth:`Gate.update`) (pyHH API)."""
        for name in _GATES:
            getattr(self, name).update(deltaTms)

    def _set_gates(self, state: HHState, v_rates: ArrayLike) -> None:
        """Set the gates to ``state`` and their rates to those at ``v_rates`` mV."""
        self._UpdateGateTimeConstants(float(v_rates))
        for name in _GATES:
            getattr(self, name).state = float(getattr(state, name))

    def __repr__(self) -> str:
        return (
            f"HHModel(gNa={self.gNa}, gK={self.gK}, gKleak={self.gKleak}, "
            f"ENa={self.ENa}, EK={self.EK}, EKleak={self.EKleak}, Cm={self.Cm}, "
            f"Vm={self.Vm})"
        )


class Simulation:
    """Runs an :class:`HHModel` under a current waveform and keeps pyHH's arrays.

    After :meth:`Run`, each of ``times`` (ms), ``Vm`` (mV, 1952 convention),
    ``StateH``, ``StateM``, ``StateN`` (1), ``INa``, ``IK``, ``IKleak`` (µA/cm²,
    outward positive) is a NumPy float64 array with one entry per step.
    """

    def __init__(self, model: HHModel) -> None:
        if not isinstance(model, HHModel):
            raise TypeError(
                f"`model` must be a hhjax.pyhh.HHModel; got {type(model).__name__}."
            )
        self.model = model
        self.CreateArrays(0, 0.0)

    def CreateArrays(self, pointCount: int, deltaTms: float) -> None:
        """Reset the result arrays to ``pointCount`` entries (pyHH API)."""
        self.times = np.arange(pointCount) * deltaTms
        for name in ("Vm", "INa", "IK", "IKleak", "StateN", "StateM", "StateH"):
            setattr(self, name, np.full(pointCount, np.nan))

    def trace(self) -> Trace:
        """The results as a :class:`hhjax.Trace` (e.g. for :mod:`hhjax.plot`).

        Same arrays and labelling as pyHH's: sample ``k`` holds ``times[k]``, the
        state after step ``k`` and the currents computed before it; V in the 1952
        convention.
        """
        return Trace(
            t=self.times,
            v=self.Vm,
            m=self.StateM,
            h=self.StateH,
            n=self.StateN,
            i_na=self.INa,
            i_k=self.IK,
            i_l=self.IKleak,
        )

    def Run(
        self,
        stimulusWaveform: ArrayLike,
        stepSizeMs: float = 0.01,
    ) -> None:
        """Advance the model one forward-Euler step per stimulus sample.

        Args:
            stimulusWaveform: injected current per step, µA/cm² (inward,
                depolarising positive), shape ``(steps,)``.
            stepSizeMs: step, ms.

        Raises:
            ValueError: the waveform is not a non-empty 1-D finite real array of
                plausible µA/cm², or ``stepSizeMs`` is not positive.
            hhjax.NonFiniteSimulationError: the run became NaN or infinite (usually
                a too large step).

        Warns:
            hhjax.StepSizeWarning: ``stepSizeMs`` above 0.05 ms (pyHH's advice).
        """
        if np.iscomplexobj(stimulusWaveform):
            raise ValueError("`stimulusWaveform` must be real currents in uA/cm^2.")
        try:
            stim = np.asarray(stimulusWaveform, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                "`stimulusWaveform` must be a 1-D array of currents in uA/cm^2; got "
                f"{type(stimulusWaveform).__name__} {stimulusWaveform!r:.60}."
            ) from None
        if stim.ndim != 1 or stim.size == 0:
            raise ValueError(
                "`stimulusWaveform` must be a non-empty 1-D array of currents in "
                f"uA/cm^2, one per step; got shape {stim.shape}."
            )
        check_current(stim, "stimulusWaveform", opt_out=False)
        dt = positive_number(stepSizeMs, "stepSizeMs", "ms")
        if dt > _MAX_STEP_MS:
            warnings.warn(
                f"stepSizeMs = {dt} ms is large: forward Euler becomes inaccurate or "
                f"unstable above {_MAX_STEP_MS} ms; use 0.01 ms.",
                StepSizeWarning,
                stacklevel=2,
            )
        with jax.enable_x64(True), warnings.catch_warnings():
            warnings.simplefilter("ignore", StepSizeWarning)  # warned above
            trace, final = _simulate_euler(self.model, stim, dt)
            # Sample k of the trace is the state before step k: the states after
            # the steps are samples 1..T-1 and the final state; the currents
            # before the steps are samples 0..T-1.
            v_last_start = float(trace.v[-1])
            self.CreateArrays(stim.size, dt)
            for name, field in _AFTER_STEP.items():
                before = np.asarray(getattr(trace, field), dtype=np.float64)
                last = np.asarray(getattr(final, field), dtype=np.float64)
                setattr(self, name, np.append(before[1:], last))
            for name, field in _BEFORE_STEP.items():
                values = np.asarray(getattr(trace, field), dtype=np.float64)
                setattr(self, name, values)
                setattr(self.model, name, float(values[-1]))
            self.model.Vm = float(final.v)
            self.model._set_gates(final, v_last_start)


def _simulate_euler(model: HHModel, stim: np.ndarray, dt: float) -> tuple:
    """``(trace, final_state)`` of forward Euler from the model's state under
    ``stim`` (µA/cm² per step, ``dt`` ms); a blow-up is reported with advice for
    the facade, whose only method is pyHH's forward Euler."""
    try:
        return simulate(
            model.params(),
            stim,
            dt,
            state0=model.state(),
            method=_METHOD,
            return_state=True,
        )
    except NonFiniteSimulationError:
        raise NonFiniteSimulationError(
            f"The run became non-finite (NaN or inf) with stepSizeMs = {dt:g} ms and "
            f"max |stimulus| = {float(np.max(np.abs(stim))):g} uA/cm^2. pyHH's "
            f"forward Euler (the facade's method) is stable only for small steps: "
            f"use stepSizeMs = 0.01 ms (at most {_MAX_STEP_MS} ms), and check that "
            "the stimulus is in uA/cm^2 and the parameters are physical. Outside "
            "the facade, hhjax.simulate(model.params(), ..., method='exp_euler') "
            "stays stable at larger steps."
        ) from None
