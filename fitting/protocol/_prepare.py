"""Preparing a recording for the protocol (step 1 of the recipe in
:mod:`fitting.protocol`): capacitance and area, bridge balance, drift, the analysis
window of the main step; and the digest that identifies a recording's samples
(:func:`recording_digest`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence

import numpy as np

from fitting._data import FitData
from fitting.protocol._settings import AFTER_MS, BEFORE_MS
from hhjax.recordings import (
    CellProperties,
    Recording,
    RecordingError,
    cell_properties,
    correct,
    sweep_baselines,
)


@dataclasses.dataclass(frozen=True, eq=False)
class Prepared:
    """A recording made ready for fitting (see :func:`prepare`).

    Attributes:
        recording: corrected sweeps cropped to the analysis window, current in
            µA/cm² (``i_unit="uA/cm2"``, ``c_pf`` kept for reference).
        raw: the recording as loaded (all sweeps, whole sweeps).
        props: passive properties from the hyperpolarising step, or ``None`` if
            ``c_pf`` and ``series_resistance`` were given.
        c_pf: cell capacitance used for the current density, pF.
        r_series: series resistance removed from V, MΩ.
        offsets: baseline drift removed from each sweep, mV, ``(n_sweeps,)``.
        v_rest: common resting potential after the drift correction, mV.
        step: ``(onset, stop)`` of the main depolarising step, ms.
        window: ``(start, stop)`` of the analysis window, ms.
        amplitudes: step current of each sweep, pA, ``(n_sweeps,)``.
        baseline: the pre-stimulus level every sweep was brought to, mV (``None``
            without the drift correction); ``v_ref`` of :func:`prepare`.
        steps: ``(onset, stop)`` of every depolarising step of the sweep, ms
            (:func:`command_steps`; ``step`` is the first; default ``(step,)``);
            only ``step`` lies in the analysis window, :func:`whole_sweeps`
            covers them all.
    """

    recording: Recording
    raw: Recording
    props: CellProperties | None
    c_pf: float
    r_series: float
    offsets: np.ndarray
    v_rest: float
    step: tuple[float, float]
    window: tuple[float, float]
    amplitudes: np.ndarray
    baseline: float | None = None
    steps: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if not self.steps:  # built without them: the main step is the only one
            object.__setattr__(self, "steps", (tuple(self.step),))

    @property
    def sweeps(self) -> tuple[int, ...]:
        """Index of each sweep in its file (0-based)."""
        return self.recording.sweeps

    def data(self, sweeps: Sequence[int] | None = None) -> FitData:
        """The (selected) sweeps as :class:`FitData` (µA/cm², whole window)."""
        return FitData.from_recording(self.recording, sweeps=sweeps)

    def settings(self) -> dict:
        """JSON-able description, stored in ``params.json`` under ``protocol``."""
        return {
            "c_pF": self.c_pf,
            "area_cm2": self.c_pf * 1e-6,
            "series_resistance_MOhm": self.r_series,
            "v_rest_mV": self.v_rest,
            "baseline_mV": self.baseline,
            "baseline_offsets_mV": [float(x) for x in self.offsets],
            "step_ms": list(self.step),
            "steps_ms": [list(s) for s in self.steps],
            "window_ms": list(self.window),
        }


def command_steps(recording: Recording) -> tuple[tuple[float, float], ...]:
    """``((onset, stop), ...)`` in ms of every depolarising command epoch of the
    sweep with the largest current (ties: the first): the runs of samples at its
    largest level, in time order (one for a plain step family; two for a
    protocol that repeats the step, e.g. after a hyperpolarising pulse).

    Raises:
        RecordingError: no sweep has a depolarising step.
    """
    i = recording.i
    row = int(np.argmax(i.max(axis=1)))
    level = i[row].max()
    on = np.flatnonzero(np.abs(i[row] - level) <= 1e-6 * max(abs(level), 1.0))
    if level <= i[row, 0] or on.size == 0:
        raise RecordingError(
            f"{recording.source or 'recording'}: no depolarising current step found; "
            "the protocol fits current-clamp step families."
        )
    gaps = np.flatnonzero(np.diff(on) > 1)
    starts = [on[0], *on[gaps + 1]]
    stops = [*(on[gaps] + 1), on[-1] + 1]
    return tuple(
        (float(recording.t[a]), float(recording.t0 + b * recording.dt))
        for a, b in zip(starts, stops, strict=True)
    )


def main_step(recording: Recording) -> tuple[float, float]:
    """``(onset, stop)`` in ms of the first depolarising command epoch
    (:func:`command_steps`): the step the protocol fits and scores.

    Raises:
        RecordingError: no sweep has a depolarising step.
    """
    return command_steps(recording)[0]


def step_amplitudes(recording: Recording, step: tuple[float, float]) -> np.ndarray:
    """Mean current of each sweep inside ``step`` (``(start, stop)``, ms) minus its
    first sample, in the recording's current unit, ``(n_sweeps,)``."""
    t = recording.t
    inside = (t >= step[0]) & (t < step[1])
    return recording.i[:, inside].mean(axis=1) - recording.i[:, 0]


# Largest cell capacitance (pF) and series resistance (MΩ) taken as given: above
# them a value is in a smaller unit (fF; Ω or kΩ) rather than a cell's.
MAX_C_PF = 1e5
MAX_SERIES_RESISTANCE = 1e3


def _check_plausible(
    value: float | None,
    name: str,
    unit: str,
    largest: float,
    typical: str,
    positive: bool = False,
) -> None:
    """A ``RecordingError`` for a given ``value`` that is not a finite number
    > 0 (``positive``) or >= 0, or is above ``largest`` (``unit``)."""
    if value is None:
        return
    array = np.asarray(value) if not isinstance(value, str) else None
    if (
        array is None
        or array.ndim != 0
        or array.dtype.kind not in "iuf"  # not bool, str, object
        or not np.isfinite(array)
        or array < 0
        or (positive and array == 0)
    ):
        raise RecordingError(
            f"`{name}` must be a finite number {'>' if positive else '>='} 0 "
            f"{unit}; got {value!r}."
        )
    if value > largest:
        raise RecordingError(
            f"`{name}` = {value:g} {unit} is above {largest:g} {unit} ({typical}); "
            f"give it in {unit}."
        )


def check_cell_values(
    c_pf: float | None,
    series_resistance: float | None,
    names: tuple[str, str] = ("c_pf", "series_resistance"),
) -> None:
    """A ``RecordingError`` unless each given value is plausible: ``c_pf`` (pF)
    in (0, :data:`MAX_C_PF`], ``series_resistance`` (MΩ) in [0,
    :data:`MAX_SERIES_RESISTANCE`]; ``names`` name them in the message."""
    _check_plausible(
        c_pf, names[0], "pF", MAX_C_PF, "a whole cell is 1 to 10^4 pF", positive=True
    )
    _check_plausible(
        series_resistance, names[1], "MΩ", MAX_SERIES_RESISTANCE,
        "an uncompensated series resistance is 1 to 100 MΩ",
    )  # fmt: skip


def prepare(
    recording: Recording,
    *,
    c_pf: float | None = None,
    series_resistance: float | None = None,
    drift: bool = True,
    v_ref: float | None = None,
    step: tuple[float, float] | None = None,
    before_ms: float = BEFORE_MS,
    after_ms: float = AFTER_MS,
) -> Prepared:
    """Correct a current-clamp recording and crop it to its analysis window.

    Args:
        recording: whole-cell sweeps, current in pA (e.g. from
            :func:`hhjax.recordings.load_recording` on an ``.abf``).
        c_pf: cell capacitance, pF; default from the hyperpolarising step.
        series_resistance: uncompensated series resistance to remove, MΩ; default
            the onset jump of the hyperpolarising step (0 disables). With both
            given, the recording needs no hyperpolarising step.
        drift: remove each sweep's baseline drift (pre-stimulus median).
        v_ref: resting potential the baselines are brought to, mV; default the
            median baseline of the recording (use a fit's ``v_rest`` to predict
            another recording of the same cell on the fit's baseline).
        step: ``(onset, stop)`` of the step to analyse, ms (then the only step);
            default :func:`main_step` (and every step of :func:`command_steps`).
        before_ms, after_ms: margins of the analysis window around the step, ms.

    Returns:
        A :class:`Prepared`.

    Raises:
        RecordingError: a current that is not in pA, no hyperpolarising step to
            measure ``c_pf`` from, no depolarising step, or a ``c_pf`` above
            :data:`MAX_C_PF` or ``series_resistance`` above
            :data:`MAX_SERIES_RESISTANCE`.
    """
    where = recording.source or "recording"
    if recording.i_unit != "pA":
        raise RecordingError(
            f"{where}: the real-cell protocol needs whole-cell currents in pA "
            f"(got {recording.i_unit}); give densities to fitting.fit directly."
        )
    check_cell_values(c_pf, series_resistance)
    # The depolarising step first: a recording without one cannot be fitted, whatever
    # else it has.
    if step is None:
        steps = command_steps(recording)
        step = steps[0]
    else:
        step = (float(step[0]), float(step[1]))
        steps = (step,)
    props = None
    if c_pf is None or series_resistance is None:
        # Only what is missing is measured: given c_pf, the step need only give R_s.
        missing = " and ".join(
            text
            for text, absent in (
                ("the cell capacitance (pF)", c_pf is None),
                (
                    "the series resistance (MΩ; 0 disables the correction)",
                    series_resistance is None,
                ),
            )
            if absent
        )
        try:
            props = cell_properties(recording)
        except RecordingError as err:
            raise RecordingError(
                f"{err} It is needed to measure {missing}; or give them: `hhjax "
                "fit` options --c-pf and --series-resistance, or prepare(recording, "
                "c_pf=..., series_resistance=...) in Python."
            ) from None
        if c_pf is None:
            if not np.isfinite(props.c_pf) or props.c_pf <= 0:
                raise RecordingError(
                    f"{where}: no usable hyperpolarising step to measure the cell "
                    "capacitance; pass c_pf (pF)."
                )
            c_pf = props.c_pf
        if series_resistance is None:
            if not np.isfinite(props.r_series):
                raise RecordingError(
                    f"{where}: no usable hyperpolarising step to measure the series "
                    "resistance; pass series_resistance (MΩ; 0 disables the "
                    "correction)."
                )
            series_resistance = max(float(props.r_series), 0.0)
    baselines = sweep_baselines(recording)
    reference = None
    if drift:
        reference = float(np.median(baselines)) if v_ref is None else float(v_ref)
        offsets = baselines - reference
    else:
        offsets = np.zeros(recording.n_sweeps)
    fixed = correct(recording, series_resistance=series_resistance, offset=offsets)
    window = (
        max(step[0] - before_ms, float(recording.t[0])),
        min(step[1] + after_ms, float(recording.t[-1] + recording.dt)),
    )
    cropped = fixed.crop(*window)
    density = cropped.replace(
        i=cropped.i / c_pf, i_unit="uA/cm2", c_pf=float(c_pf), source=recording.source
    )
    v_rest = float(np.median(sweep_baselines(density, (window[0], step[0]))))
    return Prepared(
        recording=density,
        raw=recording,
        props=props,
        c_pf=float(c_pf),
        r_series=float(series_resistance),
        offsets=np.asarray(offsets, float),
        v_rest=v_rest,
        step=step,
        window=window,
        amplitudes=step_amplitudes(recording, step),
        baseline=reference,
        steps=steps,
    )


def whole_sweeps(prepared: Prepared) -> Prepared:
    """``prepared`` with its analysis window extended to the end of the sweeps
    (same corrections, same start): what the later steps of a multi-step
    protocol (:attr:`Prepared.steps`) are simulated and counted on."""
    whole = prepare(
        prepared.raw,
        c_pf=prepared.c_pf,
        series_resistance=prepared.r_series,
        drift=prepared.baseline is not None,
        v_ref=prepared.baseline,
        step=prepared.step,
        before_ms=prepared.step[0] - prepared.window[0],
        after_ms=math.inf,
    )
    return dataclasses.replace(whole, props=prepared.props, steps=prepared.steps)


def recording_digest(recording: Recording) -> str:
    """A short hash of a recording's samples (V, current, dt, sweep indices): a
    fit stores it, and ``predict`` marks the training sweeps only on a recording
    with the same digest (the same file's data, wherever it lies)."""
    h = hashlib.sha256()
    for array in (recording.v, recording.i, [recording.dt], recording.sweeps):
        h.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]
