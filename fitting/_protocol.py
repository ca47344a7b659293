"""The real-cell protocol: fit a cortical model to current-clamp steps of one cell
and predict the sweeps it was not fitted to.

Voltage convention: modern (mV, rest ≈ −65 mV). Units: ms, mV, pA for whole-cell
currents, pF, µA/cm² for current densities, mS/cm², µF/cm².

The recipe (measured on the shipped recordings in ``docs/real_cells.md``):

1. **Prepare** (:func:`prepare`): the passive properties of the hyperpolarising
   step (:func:`hhjax.recordings.cell_properties`) give the cell capacitance
   ``C`` (pF), which fixes the membrane area ``C / (1 µF/cm²)`` and turns pA into
   µA/cm²; the onset jump gives the uncompensated series resistance, removed from
   V (``V − R_s·I``, bridge balance); each sweep's pre-stimulus baseline is
   brought to a common resting potential (drift). Only the main depolarising
   step and its surroundings (the *analysis window*, ``[onset − 50, stop + 150)``
   ms) are fitted and scored: a single-compartment model with a linear leak cannot
   match the hyperpolarising pulse and the depolarised responses at once when the
   cell rectifies (inward rectifier, I_h).
2. **Choose training sweeps** (:func:`select_sweeps`): the strongest sweep
   without spikes, the rheobase sweep and sweeps spread evenly up to the largest
   current. Where the step family has hyperpolarising steps the RS model also
   gets I_h and a persistent Na⁺ current, the FS model an inward rectifier
   (:data:`HYPERPOLARISED`), and the most hyperpolarising step is trained on:
   with responses on both sides of rest scored, the leak, the sag (I_h), the
   floor of the hyperpolarised steps (I_Kir) and the amplification of
   depolarising steps (I_NaP) can be told apart.
3. **Search** (:func:`search`): a cross-entropy / separable-CMA search over the
   free parameters (log scale except for potentials and temperature), each
   generation one batched, jitted, forward-only simulation of every candidate on
   every training sweep. The cost is what the protocol is judged by, measured on
   the training sweeps only: spike-count errors (relative to ``1 + 0.1·n``),
   subthreshold RMSE outside ±3 ms of any spike, and first-spike latency. ``e_l``
   is not searched: it is set so that the model rests exactly at the recorded
   resting potential.
4. **Polish** (:func:`fit_recording`): Levenberg–Marquardt (:func:`fitting.fit`)
   on :class:`SpikeFeatureLoss` (soft spike counts plus V capped below spikes)
   from the search optimum and a few perturbed copies; kept only if the search
   cost on the training sweeps does not get worse. It also gives the Laplace
   standard errors of the parameter table.
5. **Predict and score** (:func:`evaluate`): every sweep simulated from rest
   under its current; per sweep the counts, subthreshold RMSE and latencies of
   :func:`fitting.metrics` and the RMSE of the onset response
   (:func:`onset_rmse`), and per recording the fraction of held-out sweeps
   within ±1 spike, the rheobase of data and model, the mean subthreshold RMSE,
   its onset part and the mean coincidence factor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import math
import operator
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import hhjax
from fitting._data import FitArrays, FitData
from fitting._fit import FitInterrupted, in_worker, mismatched_checkpoint
from fitting._io import load_checkpoint, save_checkpoint
from fitting._losses import Loss, Stage
from fitting._metrics import (
    HYSTERESIS_MV,
    SPIKE_EXCLUSION_MS,
    THRESHOLD_MV,
    metrics,
    spike_times,
)
from fitting._metrics import simulate_sweeps as _simulate_sweeps
from fitting._params import ParamSpace, integer_at_least, real_in
from hhjax.analysis import soft_spike_count
from hhjax.recordings import (
    CellProperties,
    Recording,
    RecordingError,
    cell_properties,
    correct,
    sweep_baselines,
)

BEFORE_MS = 50.0  # analysis window starts this long before the step onset
AFTER_MS = 150.0  # ... and ends this long after the step
LATENCY_SCALE_MS = 20.0  # a first-spike latency error of this size costs 1
COUNT_SCALE = 0.1  # spike-count errors are divided by 1 + COUNT_SCALE * n_data
# The model's steady response to the hyperpolarising step may differ from the
# measured one by this factor (rectification) before it costs PASSIVE_WEIGHT per
# squared log-unit beyond it; keeps the leak sane where no sweep constrains it.
PASSIVE_FACTOR = 2.0
PASSIVE_WEIGHT = 10.0
ONSET_WEIGHT = 3.0  # extra cost of a sweep that spikes in model xor data (rheobase)
SIGMA_MV = 1.0  # a subthreshold RMSE of this size costs 1
CAP_MV = -30.0  # the polish loss compares V capped smoothly at this level

# Free parameters of the search per model, and the log-scaled ones.
FREE = {
    "pospischil-rs": (
        "g_na",
        "g_kd",
        "g_m",
        "g_l",
        "v_t",
        "tau_max",
        "c_m",
        "e_k",
        "temperature",
    ),
    "pospischil-fs": ("g_na", "g_kd", "g_l", "v_t", "c_m", "e_k", "temperature"),
}
# Opt-in: the slow AHP current of the Pospischil model (off in the published sets);
# pass ``free=(*FREE["pospischil-rs"], *SLOW_AHP)`` to search it too (measured in
# docs/real_cells.md: it does not lower the held-out RMSE of the shipped cells).
SLOW_AHP = ("g_ahp", "tau_w", "v_w")
# The persistent Na+ current of the Pospischil model (off in the published sets):
# free by default where hyperpolarising steps are scored (next), opt-in otherwise.
PERSISTENT_NA = ("g_nap", "v_nap")
# The inward rectifier of the Pospischil model (off in the published sets).
INWARD_RECTIFIER = ("g_kir", "v_kir")
# Free too when the scored step family has hyperpolarising steps (and the most
# hyperpolarising one is trained on), all off in the published sets: for RS cells
# I_h and the persistent Na+ current (measured on 171116sh_0018), for FS cells the
# inward rectifier (measured on the FSI; docs/real_cells.md).
HYPERPOLARISED = {
    "pospischil-rs": ("g_h", "v_h", *PERSISTENT_NA),
    "pospischil-fs": INWARD_RECTIFIER,
}
# Fitted, after the search and polish on the main step, to the spike counts in every
# step of a multi-step protocol (the others fixed): the Kv1-type D current of the
# Pospischil model, which a hyperpolarising pulse de-inactivates, so that a step after
# it evokes fewer spikes than the same step from rest. Measured on the FSI in
# docs/real_cells.md ("Both steps of the FSI").
LATER_STEPS = {"pospischil-fs": ("g_d", "tau_b", "v_b")}
_LINEAR = frozenset(
    {"v_t", "e_k", "e_na", "e_l", "temperature", "v_w", "v_h", "v_nap", "v_b", "v_kir"}
)
# Search box (physical units): candidates are clipped into it.
BOUNDS = {
    "g_na": (1.0, 500.0),
    "g_kd": (0.1, 100.0),
    "g_m": (1e-4, 2.0),
    "g_l": (1e-3, 1.0),
    "v_t": (-75.0, -25.0),
    "tau_max": (20.0, 1e4),
    "c_m": (0.3, 5.0),
    "e_k": (-110.0, -55.0),
    "e_l": (-100.0, -20.0),
    "temperature": (20.0, 40.0),
    "g_ahp": (1e-3, 2.0),
    "tau_w": (20.0, 2000.0),
    "v_w": (-30.0, 20.0),
    "g_h": (1e-4, 1.0),
    "v_h": (-100.0, -60.0),
    "g_nap": (1e-4, 0.5),
    "v_nap": (-70.0, -40.0),
    "g_d": (1e-3, 30.0),
    "tau_b": (20.0, 2000.0),
    "v_b": (-90.0, -50.0),
    "g_kir": (1e-4, 5.0),
    "v_kir": (-120.0, -70.0),
}
# Starting values of parameters whose model default switches a channel off
# (g_ahp = g_h = g_nap = g_d = g_kir = 0 in the published RS/FS sets), physical
# units.
START = {"g_ahp": 0.1, "g_h": 0.01, "g_nap": 0.01, "g_d": 1.0, "g_kir": 0.05}
# Search spread per parameter: log units for positive ones, mV or degC otherwise.
SPREAD = {
    "g_na": 0.7,
    "g_kd": 0.7,
    "g_m": 0.7,
    "g_l": 0.5,
    "v_t": 5.0,
    "tau_max": 0.7,
    "c_m": 0.3,
    "e_k": 8.0,
    "temperature": 4.0,
    "g_ahp": 0.7,
    "tau_w": 0.7,
    "v_w": 6.0,
    "g_h": 0.7,
    "v_h": 6.0,
    "g_nap": 0.7,
    "v_nap": 5.0,
    "g_d": 1.0,
    "tau_b": 0.7,
    "v_b": 6.0,
    "g_kir": 1.0,
    "v_kir": 6.0,
}


# ----------------------------------------------------------------- preparation
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
    """Mean current of each sweep inside ``step`` minus its first sample, in the
    recording's current unit, ``(n_sweeps,)``."""
    t = recording.t
    inside = (t >= step[0]) & (t < step[1])
    return recording.i[:, inside].mean(axis=1) - recording.i[:, 0]


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
            measure ``c_pf`` from, or no depolarising step.
    """
    where = recording.source or "recording"
    if recording.i_unit != "pA":
        raise RecordingError(
            f"{where}: the real-cell protocol needs whole-cell currents in pA "
            f"(got {recording.i_unit}); give densities to fitting.fit directly."
        )
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


# ------------------------------------------------------------ spikes and sweeps
def _in_step(times: np.ndarray, prepared: Prepared) -> np.ndarray:
    """The spike ``times`` (ms) inside the main step, ``[onset, stop)``."""
    return times[(times >= prepared.step[0]) & (times < prepared.step[1])]


def spike_counts(prepared: Prepared, v: np.ndarray | None = None) -> np.ndarray:
    """Spikes per sweep inside the main step, ``[onset, stop)`` (upward 0 mV
    crossings re-armed 10 mV below, as :func:`fitting.metrics`); spontaneous or
    rebound spikes after the step do not count.

    Args:
        prepared: the recording.
        v: voltages to count in, mV, ``(n_sweeps, n_samples)``; default the data.
    """
    return step_counts(prepared, v)[:, 0]  # the main step is the first


def step_counts(prepared: Prepared, v: np.ndarray | None = None) -> np.ndarray:
    """Spikes per sweep inside each of :attr:`Prepared.steps` (those inside the
    recording's window), ``(n_sweeps, n_steps)``; as :func:`spike_counts`."""
    rec = prepared.recording
    v = rec.v if v is None else v
    out = np.zeros((len(v), len(prepared.steps)), int)
    for k, row in enumerate(v):
        times = spike_times(row, rec.dt, t0=rec.t0)
        for j, (onset, stop) in enumerate(prepared.steps):
            out[k, j] = np.count_nonzero((times >= onset) & (times < stop))
    return out


def first_latencies(prepared: Prepared, v: np.ndarray | None = None) -> np.ndarray:
    """First-spike latency after the step onset per sweep, ms (NaN: no spike in
    the step)."""
    rec = prepared.recording
    v = rec.v if v is None else v
    out = []
    for row in v:
        times = _in_step(spike_times(row, rec.dt, t0=rec.t0), prepared)
        out.append(times[0] - prepared.step[0] if times.size else np.nan)
    return np.array(out)


# The onset response of a sweep is scored only if the step lasts this long (ms)
# before the data's first spike (less its exclusion zone).
MIN_ONSET_MS = 5.0


def onset_rmse(prepared: Prepared, v_model: np.ndarray) -> np.ndarray:
    """RMSE of the model's response to the step onset, per sweep, mV.

    Scored from the step onset to :data:`SPIKE_EXCLUSION_MS` before the data's
    first spike in the step (the whole step if it has none), leaving out the
    samples within that distance of any spike of either trace, as the
    subthreshold RMSE does: the charging and the ramp to the first spike,
    without the interspike voltage. The span is set by the data alone, so a
    model that fires too early is not scored over a shorter span.

    Args:
        prepared: the recording.
        v_model: simulated V, mV, ``(n_sweeps, n_samples)`` (a non-finite row:
            a failed simulation).

    Returns:
        ``(n_sweeps,)``, mV; NaN for a failed simulation or where the span is
        shorter than :data:`MIN_ONSET_MS`.
    """
    rec = prepared.recording
    t = rec.t
    onset, stop = prepared.step
    latency = first_latencies(prepared)
    out = np.full(len(v_model), np.nan)
    for k, (v_data, v_sim) in enumerate(zip(rec.v, v_model, strict=True)):
        end = stop if np.isnan(latency[k]) else onset + latency[k] - SPIKE_EXCLUSION_MS
        if end - onset < MIN_ONSET_MS or not np.all(np.isfinite(v_sim)):
            continue
        keep = (t >= onset) & (t < end)
        for v in (v_data, v_sim):
            for spike in spike_times(v, rec.dt, t0=rec.t0):
                keep &= np.abs(t - spike) > SPIKE_EXCLUSION_MS
        if keep.any():
            out[k] = np.sqrt(np.mean((v_sim - v_data)[keep] ** 2))
    return out


def rheobase(amplitudes: np.ndarray, counts: np.ndarray) -> float | None:
    """Smallest depolarising (> 0) step current with at least one spike, in the
    unit of ``amplitudes`` (``None`` if none spikes); spontaneous spikes at zero
    or negative current do not count."""
    amplitudes, counts = np.asarray(amplitudes), np.asarray(counts)
    spiking = amplitudes[(counts > 0) & (amplitudes > 0)]
    return float(spiking.min()) if spiking.size else None


def select_sweeps(
    amplitudes: np.ndarray,
    counts: np.ndarray,
    n: int,
    include_negative: bool = False,
) -> list[int]:
    """Training sweeps: the strongest depolarising sweep without spikes, the
    rheobase sweep, then sweeps spread evenly in current up to the largest; with
    ``include_negative`` also the most hyperpolarising step (if any; n >= 4).

    Args:
        amplitudes: step current per sweep, pA, ``(n_sweeps,)``.
        counts: spikes per sweep in the data, ``(n_sweeps,)``.
        n: number of sweeps to choose (>= 2).
        include_negative: also train on the most hyperpolarising step. With a
            linear leak this trades spiking accuracy for the hyperpolarised
            response when the cell rectifies (measured in docs/real_cells.md).

    Returns:
        Row indices (0-based), ascending in current.

    Raises:
        ValueError: ``n < 2`` or no sweep spikes.
    """
    amplitudes, counts = np.asarray(amplitudes, float), np.asarray(counts)
    if n < 2:
        raise ValueError(f"Choose at least 2 training sweeps; got n={n}.")
    rheo = rheobase(amplitudes, counts)
    if rheo is None:
        raise ValueError("No sweep has a spike: nothing to fit spiking to.")
    order = np.argsort(amplitudes, kind="stable")
    below = [k for k in order if amplitudes[k] < rheo and counts[k] == 0]
    # The strongest subthreshold sweep, if the depolarising steps reach one.
    chosen = [below[-1]] if below and amplitudes[below[-1]] > 0 else []
    if include_negative and n >= 4 and amplitudes[order[0]] < 0:
        chosen.insert(0, int(order[0]))
    spiking = [k for k in order if amplitudes[k] >= rheo]
    want = n - len(chosen)
    targets = np.linspace(amplitudes[spiking[0]], amplitudes[spiking[-1]], want)
    for target in targets:
        left = [k for k in spiking if k not in chosen]
        if not left:
            break
        chosen.append(min(left, key=lambda k: abs(amplitudes[k] - target)))
    return sorted(chosen, key=lambda k: (amplitudes[k], k))


# ---------------------------------------------------------- batched features
def _counts_with_hysteresis(v, threshold, hysteresis):
    """Crossings of ``threshold`` re-armed below ``threshold − hysteresis``.

    ``v`` is ``(T, *batch)``; returns the boolean spike onsets ``(T − 1, *batch)``.
    """
    up = (v[:-1] < threshold) & (v[1:] >= threshold)
    low = v[1:] < threshold - hysteresis

    def step(armed, x):
        cross, is_low = x
        spike = armed & cross
        return (armed & ~spike) | is_low, spike

    _, spikes = lax.scan(step, jnp.ones(v.shape[1:], bool), (up, low))
    return spikes


def _dilate(events, half_width):
    """True within ``half_width`` samples of any event, ``(T, *batch)``."""
    cs = jnp.cumsum(events, axis=0)
    zeros = jnp.zeros((half_width + 1,) + cs.shape[1:], cs.dtype)
    tail = jnp.repeat(cs[-1:], half_width, axis=0)
    padded = jnp.concatenate([zeros, cs, tail])
    return (padded[2 * half_width + 1 :] - padded[: -2 * half_width - 1]) > 0


def _jit_with_compiled_fields(features: Callable) -> Callable:
    """``jax.jit(features)`` for ``features(params, *arrays)``, with the fields of
    ``params`` that :func:`hhjax.simulate` compiles in (:func:`hhjax.compiled_fields`:
    defaults, and 0 for a switchable channel's conductance) passed as static
    values rather than traced, as ``simulate`` takes them when called directly:
    it then skips the channels they switch off (``g_ahp = g_h = g_nap = g_d =
    g_kir = 0``, and the FS set's ``g_m = 0``: half the gates of the Pospischil
    model; measured in docs/real_cells.md). Other fixed values stay traced (compiled
    in, the fitted values of a later-step fit made its cost 1.2–2× slower)."""

    @functools.partial(jax.jit, static_argnums=0)
    def run(constants, varying, *arrays):
        return features(varying._replace(**dict(constants)), *arrays)

    def call(params, *arrays):
        constants = hhjax.compiled_fields(params)
        return run(
            constants, params._replace(**dict.fromkeys(dict(constants))), *arrays
        )

    return call


def _simulate_candidates(params, i_ext, dt, method):
    """V of every candidate (``params`` leaves ``(K,)``) on every sweep (``i_ext``
    ``(T, S)``, µA/cm²), simulated from rest: ``(T, S, K)`` mV with 0 where it
    is not finite, and the failed simulations, ``(S, K)`` bool."""
    batch = jax.tree.map(
        lambda x: jnp.asarray(x)[None, :] if jnp.ndim(x) else x, params
    )
    v = hhjax.simulate(
        batch, i_ext[:, :, None], dt, method=method, record=("v",), check_inputs=False
    ).v
    bad = ~jnp.all(jnp.isfinite(v), axis=0)
    return jnp.where(jnp.isfinite(v), v, 0.0), bad


def _window_features(v, bad, spikes, v_data, onset_index, half, dt):
    """:func:`batch_features`' features of simulated ``v`` ``(T, S, K)`` (with
    its spike onsets ``spikes`` ``(T − 1, S, K)`` and failures ``bad``) against
    the data ``v_data`` ``(T, S)``."""
    d_spikes = _counts_with_hysteresis(v_data, THRESHOLD_MV, HYSTERESIS_MV)
    after = spikes[onset_index:]
    counts = jnp.sum(after, axis=0)
    first = jnp.where(jnp.any(after, 0), (jnp.argmax(after, 0) + 1) * dt, jnp.nan)
    events = jnp.concatenate(
        [jnp.zeros((1,) + spikes.shape[1:], bool), spikes | d_spikes[:, :, None]]
    )
    keep = ~_dilate(events, half)
    sq = jnp.where(keep, (v - v_data[:, :, None]) ** 2, 0.0)
    rmse = jnp.sqrt(jnp.sum(sq, 0) / jnp.maximum(jnp.sum(keep, 0), 1))
    rmse = jnp.where(bad, jnp.inf, rmse)
    return counts.T, first.T, rmse.T


def batch_features(dt: float, onset_index: int, method: str = "rk4") -> Callable:
    """A jitted ``features(params, i, v) -> (counts, first, rmse)`` (the fields
    :func:`hhjax.compiled_fields` names compiled in).

    ``params`` leaves have shape ``(K,)`` (K candidates), ``i`` and ``v`` are the
    training sweeps, ``(T, S)``, in µA/cm² and mV. Each candidate is simulated from
    rest on each sweep; returned arrays are ``(S, K)``: spikes from
    ``onset_index`` to the end (so a model that fires after the step, e.g. a
    rebound, is charged for it when compared with the data's spikes in the step,
    :func:`spike_counts`), first-spike latency after the onset (ms, NaN if none)
    and the subthreshold RMSE (mV) outside ±3 ms of a data or model spike.
    """
    half = max(int(round(SPIKE_EXCLUSION_MS / dt)), 1)

    def features(params, i_ext, v_data):
        v, bad = _simulate_candidates(params, i_ext, dt, method)
        spikes = _counts_with_hysteresis(v, THRESHOLD_MV, HYSTERESIS_MV)
        return _window_features(v, bad, spikes, v_data, onset_index, half, dt)

    return _jit_with_compiled_fields(features)


def batch_step_features(
    dt: float, onset_index: int, in_steps: np.ndarray, method: str = "rk4"
) -> Callable:
    """A jitted ``features(params, i, v) -> (counts, first, rmse, steps)`` for
    whole sweeps ``i`` ``(T, S)`` whose first ``len(v)`` samples are the analysis
    window (``v``: the data there): :func:`batch_features`' three features on
    that window and the spikes inside each step, ``(n_steps, S, K)``
    (``in_steps``, ``(T − 1, n_steps)`` bool: the spike onsets at samples
    1 … T − 1 that lie in each step), from one simulation."""
    half = max(int(round(SPIKE_EXCLUSION_MS / dt)), 1)
    mask = jnp.asarray(in_steps, jnp.int32)

    def features(params, i_ext, v_data):
        v, bad = _simulate_candidates(params, i_ext, dt, method)
        spikes = _counts_with_hysteresis(v, THRESHOLD_MV, HYSTERESIS_MV)
        n = v_data.shape[0]
        window = _window_features(
            v[:n], bad, spikes[: n - 1], v_data, onset_index, half, dt
        )
        steps = jnp.einsum("tsk,tn->nsk", spikes.astype(jnp.int32), mask)
        return (*window, steps)

    return _jit_with_compiled_fields(features)


def feature_cost(counts, first, rmse, counts_data, first_data, sigma=SIGMA_MV):
    """The search cost per candidate (lower is better).

    Args:
        counts, first, rmse: model features ``(..., S)`` (see
            :func:`batch_features`, transposed to candidates first).
        counts_data, first_data: the data's, ``(S,)``.
        sigma: subthreshold RMSE (mV) that costs as much as one spike at n = 0.

    Returns:
        ``Σ_s ((n − n_d)/(1 + 0.1 n_d))² + 3·#(sweeps spiking in only one of
        model and data) + mean_s RMSE²/σ² + mean_s ((lat − lat_d)/20 ms)²``
        (latency where both spike), ``(...)``; ``inf`` for failed simulations.
    """
    scale = 1.0 + COUNT_SCALE * np.asarray(counts_data, float)
    count_term = np.sum(((counts - counts_data) / scale) ** 2, axis=-1)
    onset = np.sum((counts > 0) != (np.asarray(counts_data) > 0), axis=-1)
    count_term = count_term + ONSET_WEIGHT * onset
    both = np.isfinite(first) & np.isfinite(first_data)
    lat = np.where(both, (first - np.nan_to_num(first_data)) / LATENCY_SCALE_MS, 0.0)
    cost = count_term + np.mean(rmse**2, axis=-1) / sigma**2 + np.mean(lat**2, -1)
    return np.where(np.isfinite(cost), cost, np.inf)


# ----------------------------------------------------------------- parameters
def rest_leak(params: Any, v_rest: float) -> Any:
    """``params`` with ``e_l`` set so that the model rests at ``v_rest`` (mV):
    ``e_l = v_rest + Σ I_other(v_rest) / g_l`` with the other currents at their
    steady state. Works on batched leaves."""
    model = hhjax.model_of(params)
    state = model.steady_state(jnp.asarray(v_rest), params)
    currents = model.currents(state, params)
    scale = model.conductance_factor(params)
    other = sum(v for k, v in currents.items() if k != "i_l")
    return params._replace(e_l=v_rest + other / (scale * params.g_l))


def initial_values(
    prepared: Prepared, base: Any, names: Sequence[str], train: Sequence[int]
) -> dict[str, float]:
    """Starting point of the search from the cell's properties.

    ``g_l`` from the depolarised input resistance of the strongest training sweep
    without spikes (steady ΔV over the last 100 ms of the step), else from
    ``R_in`` of the hyperpolarising step: ``g_l = c_m / (R·C)``; ``v_t`` 5 mV
    below the voltage where the first training spike takes off (dV/dt > 10
    mV/ms); the rest from ``base``, except that a conductance that is zero in
    ``base`` (a channel switched off) starts at :data:`START`.
    """
    rec = prepared.recording
    t, dt = rec.t, rec.dt
    values = {n: float(np.asarray(getattr(base, n))) for n in names}
    values.update({n: START[n] for n in names if n in START and values[n] == 0.0})
    counts = spike_counts(prepared)
    rows = [rec.sweeps.index(s) for s in train]
    quiet = [r for r in rows if counts[r] == 0 and prepared.amplitudes[r] > 0]
    r_mohm = prepared.props.r_in if prepared.props is not None else None
    if quiet:
        r = max(quiet, key=lambda k: prepared.amplitudes[k])
        tail = (t >= prepared.step[1] - 100.0) & (t < prepared.step[1])
        dv = float(np.median(rec.v[r, tail])) - prepared.v_rest
        if dv > 0.5:
            r_mohm = dv / prepared.amplitudes[r] * 1e3
    if "g_l" in values and r_mohm:
        values["g_l"] = float(values.get("c_m", 1.0) * 1e3 / (r_mohm * prepared.c_pf))
    spiking = [r for r in rows if counts[r] > 0]
    if "v_t" in values and spiking:
        r = spiking[0]
        first = spike_times(rec.v[r], dt, t0=rec.t0)
        first = first[first >= prepared.step[0]][0]
        slope = np.diff(rec.v[r]) / dt
        near = (t[:-1] >= first - 3.0) & (t[:-1] <= first) & (slope > 10.0)
        if near.any():
            values["v_t"] = float(rec.v[r, int(np.argmax(near))]) - 5.0
    return {
        n: float(np.clip(v, *BOUNDS.get(n, (-np.inf, np.inf))))
        for n, v in values.items()
    }


def _box(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The search box in the transformed space."""
    lo = _to_z({n: BOUNDS[n][0] for n in names}, names)
    hi = _to_z({n: BOUNDS[n][1] for n in names}, names)
    return lo, hi


def _to_z(values: dict, names: Sequence[str]) -> np.ndarray:
    return np.array([values[n] if n in _LINEAR else np.log(values[n]) for n in names])


def _from_z(z: Any, names: Sequence[str]) -> dict:
    out = {}
    for k, n in enumerate(names):
        lo, hi = BOUNDS.get(n, (-np.inf, np.inf))
        x = z[..., k] if n in _LINEAR else jnp.exp(z[..., k])
        out[n] = jnp.clip(x, lo, hi)
    return out


# ---------------------------------------------------------------------- search
@dataclasses.dataclass(frozen=True)
class SearchResult:
    """Outcome of :func:`search`.

    Attributes:
        params: best parameters (scalar leaves), ``e_l`` set for the resting
            potential.
        cost: its search cost on the training sweeps.
        history: best cost of each generation.
        evaluations: candidates simulated.
        elapsed_s: wall time, s.
    """

    params: Any
    cost: float
    history: tuple[float, ...]
    evaluations: int
    elapsed_s: float


class _Chunked:
    """Cost of search coordinates ``z`` ``(n, n_free)``, simulated in batches of
    ``self.chunk`` (the last padded); subclasses define ``params(z)`` and
    ``cost_of(params)``."""

    chunk: int

    def __call__(self, z: np.ndarray) -> np.ndarray:
        out = []
        for k in range(0, z.shape[0], self.chunk):
            part = z[k : k + self.chunk]
            pad = self.chunk - part.shape[0]
            full = np.concatenate([part, np.repeat(part[-1:], pad, 0)]) if pad else part
            # In a worker thread (the first call compiles): Ctrl-C stops the wait.
            cost = in_worker(lambda z: self.cost_of(self.params(z)), full)
            out.append(cost[: part.shape[0]])
        return np.concatenate(out)


class _Evaluator(_Chunked):
    """Feature cost of candidate parameters on the training sweeps."""

    def __init__(
        self, prepared, train, base, names, method, chunk, sigma, guard, v_rest=None
    ):
        data = prepared.data(train)
        self.v_rest = prepared.v_rest if v_rest is None else v_rest  # candidates' rest
        self.base, self.names = base, tuple(names)
        self.chunk, self.sigma = chunk, sigma
        onset = int(round((prepared.step[0] - prepared.window[0]) / data.dt))
        self.features = batch_features(data.dt, onset, method)
        self.i = jnp.asarray(data.i.T)
        self.v = jnp.asarray(data.v.T)
        sub = dataclasses.replace(prepared, recording=data.recording)
        self.counts = spike_counts(sub)
        self.first = first_latencies(sub)
        self.passive = None
        props = prepared.props
        if (
            guard
            and props is not None
            and props.step_pa < 0
            and np.isfinite(props.r_in)
        ):
            i_hyp = props.step_pa / prepared.c_pf  # uA/cm^2
            dv = props.r_in * props.step_pa * 1e-3  # mV, negative
            self.passive = (i_hyp, dv)
            v_rest = self.v_rest
            self._hyp = jax.jit(lambda p: hhjax.resting_state(p, i_hyp).v - v_rest)

    def passive_penalty(self, params: Any) -> np.ndarray:
        """:data:`PASSIVE_WEIGHT` · max(0, |ln(ΔV_model / ΔV_data)| − ln 2)² for
        the steady response to the hyperpolarising step (0 if not measured)."""
        if self.passive is None:
            return 0.0
        ratio = np.asarray(self._hyp(params)) / self.passive[1]
        with np.errstate(invalid="ignore", divide="ignore"):
            excess = np.maximum(np.abs(np.log(ratio)) - np.log(PASSIVE_FACTOR), 0.0)
        return np.where(
            np.isfinite(excess) & (ratio > 0), PASSIVE_WEIGHT * excess**2, np.inf
        )

    def params(self, z: np.ndarray) -> Any:
        p = self.base._replace(**_from_z(jnp.asarray(z), self.names))
        return rest_leak(p, self.v_rest)

    def cost_of(self, params: Any) -> np.ndarray:
        """The cost of a batch of parameter sets (leaves with a leading axis)."""
        c, f, r = (np.asarray(a) for a in self.features(params, self.i, self.v))
        cost = feature_cost(c, f, r, self.counts, self.first, self.sigma)
        return cost + self.passive_penalty(params)


class _StepsEvaluator(_Evaluator):
    """The search cost (:class:`_Evaluator`, on the analysis window) plus the
    spike-count errors in the later steps, from one simulation of the whole
    training sweeps (:func:`whole_sweeps`); ``e_l`` keeps ``fitted``'s resting
    potential."""

    def __init__(self, prepared, train, fitted, names, method, chunk, sigma, guard):
        v_rest = float(hhjax.resting_state(fitted).v)
        super().__init__(
            prepared, train, fitted, names, method, chunk, sigma, guard, v_rest
        )
        whole = whole_sweeps(prepared)
        data = whole.data(train)
        rows = [whole.sweeps.index(s) for s in train]
        self.later_data = step_counts(whole)[rows][:, 1:]  # (S, n_steps - 1)
        onsets = data.t[:-1] + 0.5 * data.dt  # a spike onset k lies in [t_k, t_k+1)
        later = [(onsets >= a) & (onsets < b) for a, b in whole.steps[1:]]
        onset = int(round((prepared.step[0] - prepared.window[0]) / data.dt))
        self.features = batch_step_features(data.dt, onset, np.stack(later, 1), method)
        self.i = jnp.asarray(data.i.T)

    def cost_at(self, params: Any) -> float:
        """The cost of one parameter set (scalar leaves), evaluated as a batch of
        candidates is (same compiled program)."""
        varying = (*self.names, "e_l")
        batch = params._replace(
            **{n: jnp.full(self.chunk, float(getattr(params, n))) for n in varying}
        )
        return float(in_worker(self.cost_of, batch)[0])

    def cost_of(self, params: Any) -> np.ndarray:
        """:meth:`_Evaluator.cost_of` + ``Σ_sweeps Σ_later steps ((n − n_d)/(1 +
        0.1 n_d))²`` per candidate."""
        c, f, r, n = (np.asarray(a) for a in self.features(params, self.i, self.v))
        cost = feature_cost(c, f, r, self.counts, self.first, self.sigma)
        n, d = np.moveaxis(n, 0, -1), self.later_data[:, None, :]  # (S, K, steps)
        later = np.sum(((n - d) / (1.0 + COUNT_SCALE * d)) ** 2, axis=(0, 2))
        return cost + later + self.passive_penalty(params)


def search(
    prepared: Prepared,
    train: Sequence[int],
    base: Any,
    names: Sequence[str],
    init: dict[str, float],
    *,
    generations: int = 16,
    population: int = 64,
    restarts: int = 4,
    elite: float = 0.2,
    screen: int = 512,
    seed: int = 0,
    method: str = "rk4",
    chunk: int = 64,
    sigma: float = SIGMA_MV,
    passive_guard: bool = False,
    log: Callable[[str], Any] | None = None,
    checkpoint: str | os.PathLike | None = None,
    fingerprint: str = "",
) -> SearchResult:
    """Cross-entropy search (separable CMA-style) on the feature cost, several
    independent Gaussians at once.

    A broad first generation (``screen`` candidates uniform over the search box
    :data:`BOUNDS`, log scale except for potentials and temperature, plus ``init``)
    is simulated; ``restarts`` Gaussians start at its best point (``init`` unless
    the screen found a better one) with the spreads :data:`SPREAD`. Each generation
    draws ``population`` candidates from every Gaussian, simulates all of them on
    all training sweeps in batches of ``chunk`` (one jitted, forward-only call
    each), and moves each Gaussian to the log-rank-weighted mean and spread of its
    best ``elite`` fraction (the spread smoothed 9:1 with the previous one). The
    Gaussians start alike; their own draws lead them into different basins of this
    rugged cost, and the best point any of them found is the result. (Gaussians
    started at distinct screen candidates instead wasted their draws in poor basins:
    see docs/real_cells.md, "Search reliability".)

    Args:
        prepared: the recording (:func:`prepare`).
        train: training sweeps (indices in the file).
        base: parameters of the model (fixed fields; ``e_l`` is derived).
        names: free parameters (not ``e_l``).
        init: a starting point, ``{name: value}`` in physical units (part of the
            screen; the start of every Gaussian if ``screen`` is 0).
        generations: generations after the screen.
        population: candidates per Gaussian and generation.
        restarts: number of Gaussians (independent restarts).
        elite, seed: search settings.
        screen: size of the broad first generation.
        method: integrator; the step is the sampling interval.
        chunk: candidates per compiled simulation.
        sigma: see :func:`feature_cost`.
        passive_guard: add the passive penalty (steady response to the
            hyperpolarising step within :data:`PASSIVE_FACTOR` of the measured
            one) to the cost.
        log: called with a progress line per generation.
        checkpoint: file the search state is saved to after the screen and after
            every generation (atomically); an existing one with the same
            ``fingerprint`` is resumed from, and the resumed search ends where an
            uninterrupted one would (the random generator's state is saved too).
        fingerprint: identifies the search (data and settings) in the checkpoint.

    Returns:
        A :class:`SearchResult`.

    Raises:
        FitInterrupted: on Ctrl-C (anywhere in the search); the checkpoint holds
            the last generation.
    """
    if "e_l" in names:
        raise ValueError("`e_l` is set from the resting potential; do not search it.")
    _check_search_settings(generations, population, restarts, screen, elite)
    chunk = integer_at_least(chunk, "`chunk`", 1)
    t0 = time.perf_counter()
    with _resumable(" in the search", checkpoint):
        evaluate_cost = _Evaluator(
            prepared, train, base, names, method, chunk, sigma, passive_guard
        )
        return _search(
            evaluate_cost, names, init, generations, population, restarts, elite,
            screen, seed, log, checkpoint, fingerprint, t0,
        )  # fmt: skip


def _check_search_settings(generations, population, restarts, screen, elite=None):
    """A clear error for a search that could not run as asked (before any
    simulation); ``elite`` is not checked when ``None``."""
    integer_at_least(generations, "`generations`", 0)
    integer_at_least(restarts, "`restarts`", 1)
    integer_at_least(screen, "`screen`", 0)
    population = integer_at_least(population, "`population`", 2)
    if elite is None:
        return
    real_in(elite, "`elite`", "a fraction in (0, 1]", lambda x: 0.0 < x <= 1.0)
    if max(int(population * elite), 2) > population:
        raise ValueError(
            f"`population` {population} is too small for `elite` {elite}: each "
            "generation keeps at least 2 candidates."
        )


def _search(
    evaluate_cost, names, init, generations, population, restarts, elite, screen,
    seed, log, checkpoint, fingerprint, t0,
) -> SearchResult:  # fmt: skip
    """The body of :func:`search` (there with Ctrl-C made resumable)."""
    rng = np.random.default_rng(seed)
    spread0 = np.array([SPREAD.get(n, 0.5) for n in names])
    lo, hi = _box(names)
    n_elite = max(int(population * elite), 2)
    w = np.log(n_elite + 0.5) - np.log(np.arange(1, n_elite + 1))
    w /= w.sum()
    state = _load_search(checkpoint, fingerprint)
    if state is None:
        z = _to_z(init, names)[None]
        if screen:
            z = np.concatenate([z, lo + (hi - lo) * rng.random((screen, lo.size))])
        cost = _interruptible(evaluate_cost, z, checkpoint, "screen")
        best = int(np.argsort(cost)[0])  # NaN last
        n_gaussians = max(restarts, 1)
        state = _SearchState(
            generation=0,
            centres=np.repeat(z[best][None], n_gaussians, 0),
            spreads=np.repeat(spread0[None], n_gaussians, 0),
            best_cost=float(cost[best]),
            best_z=z[best].copy(),
            history=[float(cost[best])],
            evaluations=z.shape[0],
            elapsed_s=time.perf_counter() - t0,
        )
        _save_search(checkpoint, fingerprint, state, rng)
    else:
        rng.bit_generator.state = state.rng
        t0 -= state.elapsed_s
        if log is not None:
            log(f"resuming {checkpoint} at search generation {state.generation}")
    centres, spreads = state.centres, state.spreads
    best_cost, best_z = state.best_cost, state.best_z
    history, evaluations = list(state.history), state.evaluations
    for g in range(state.generation, generations):
        noise = rng.standard_normal((len(centres), population, lo.size))
        z = centres[:, None] + spreads[:, None] * noise
        z = np.clip(z, lo, hi)
        cost = _interruptible(
            evaluate_cost, z.reshape(-1, lo.size), checkpoint, f"generation {g + 1}"
        ).reshape(len(centres), population)
        evaluations += cost.size
        for r in range(len(centres)):
            order = np.argsort(cost[r])
            if cost[r, order[0]] < best_cost:
                best_cost, best_z = float(cost[r, order[0]]), z[r, order[0]].copy()
            top = z[r, order[:n_elite]]
            spreads[r] = 0.9 * np.sqrt(w @ (top - centres[r]) ** 2) + 0.1 * spreads[r]
            centres[r] = w @ top
        history.append(best_cost)
        state = _SearchState(
            g + 1, centres, spreads, best_cost, best_z, history, evaluations,
            time.perf_counter() - t0,
        )  # fmt: skip
        _save_search(checkpoint, fingerprint, state, rng)
        if log is not None:
            per = ", ".join(f"{c:.3g}" for c in cost.min(axis=1))
            log(
                f"search generation {g + 1}/{generations}: best cost {best_cost:.4g} "
                f"(restarts: {per}; {time.perf_counter() - t0:.0f} s)"
            )
    best = evaluate_cost.params(best_z)
    return SearchResult(
        params=jax.tree.map(lambda x: float(np.asarray(x)), best),
        cost=best_cost,
        history=tuple(history),
        evaluations=evaluations,
        elapsed_s=time.perf_counter() - t0,
    )


def fit_later_steps(
    prepared: Prepared,
    train: Sequence[int],
    fitted: Any,
    names: Sequence[str],
    *,
    generations: int = 6,
    population: int = 32,
    screen: int = 64,
    seed: int = 0,
    method: str = "rk4",
    chunk: int = 64,
    sigma: float = SIGMA_MV,
    passive_guard: bool = False,
    log: Callable[[str], Any] | None = None,
) -> tuple[Any, dict]:
    """Fit ``names`` to the later steps of the training sweeps
    (:attr:`Prepared.steps`), every other parameter fixed at ``fitted``'s values
    and ``e_l`` moved so that the resting potential stays ``fitted``'s: the
    search of :func:`search` (one Gaussian) on its cost (the analysis window)
    plus ``Σ_sweeps Σ_later steps ((n − n_d)/(1 + 0.1 n_d))²``, from one
    simulation of the whole sweeps.

    Args:
        prepared: the recording (:func:`prepare`); needs more than one step.
        train: training sweeps (indices in the file).
        fitted: the fit of the main step (scalar leaves).
        names: parameters to fit, e.g. :data:`LATER_STEPS` of the model.
        generations, population, screen, seed, method, chunk, sigma,
            passive_guard, log: as for :func:`search`.

    Returns:
        ``(params, info)``: ``fitted`` with ``names`` (and ``e_l``) changed if
        that lowered the cost, else ``fitted``; ``info`` has ``free``,
        ``cost_before`` (at ``fitted``), ``cost``, ``kept``, ``evaluations``,
        ``elapsed_s``.

    Raises:
        ValueError: ``prepared`` has a single step.
        FitInterrupted: on Ctrl-C (nothing of this stage is saved).
    """
    if len(prepared.steps) < 2:
        raise ValueError(
            "The recording has a single depolarising step: no later steps."
        )
    t0 = time.perf_counter()
    with _resumable(" in the later-step fit"):
        evaluate_cost = _StepsEvaluator(
            prepared, train, fitted, names, method, chunk, sigma, passive_guard
        )
        before = evaluate_cost.cost_at(fitted)
        init = {n: float(getattr(fitted, n)) for n in names}
        init.update(  # a switched-off channel's conductance starts at START
            {n: START[n] for n in names if n in START and init[n] == 0.0}
        )
        found = _search(
            evaluate_cost,
            tuple(names),
            init,
            generations=generations,
            population=population,
            restarts=1,
            elite=0.2,
            screen=screen,
            seed=seed,
            log=None if log is None else (lambda line: log(f"later steps: {line}")),
            checkpoint=None,
            fingerprint="",
            t0=t0,
        )
    kept = found.cost < before
    info = {
        "free": list(names),
        "cost_before": before,
        "cost": min(found.cost, before),
        "kept": bool(kept),
        "evaluations": found.evaluations,
        "elapsed_s": time.perf_counter() - t0,
    }
    return (found.params if kept else fitted), info


class _SearchState(NamedTuple):
    """Where :func:`search` is: the next generation to draw and everything the
    remaining generations depend on (with the random generator's state)."""

    generation: int
    centres: np.ndarray  # (restarts, n_free), search coordinates
    spreads: np.ndarray  # (restarts, n_free)
    best_cost: float
    best_z: np.ndarray  # (n_free,)
    history: list  # best cost after the screen and each generation
    evaluations: int
    elapsed_s: float
    rng: dict | None = None  # numpy bit generator state (when loaded)


def _save_search(checkpoint, fingerprint: str, state: _SearchState, rng) -> None:
    if checkpoint is None:
        return
    meta = {
        "kind": "search",
        "fingerprint": fingerprint,
        "generation": state.generation,
        "best_cost": state.best_cost,
        "history": list(state.history),
        "evaluations": state.evaluations,
        "elapsed_s": state.elapsed_s,
        "rng": rng.bit_generator.state,
    }
    arrays = {
        "centres": state.centres,
        "spreads": state.spreads,
        "best_z": state.best_z,
    }
    save_checkpoint(checkpoint, meta, arrays)


def _load_search(checkpoint, fingerprint: str) -> _SearchState | None:
    loaded = None if checkpoint is None else load_checkpoint(checkpoint)
    if loaded is None:
        return None
    meta, arrays = loaded
    if meta.get("kind") != "search" or meta.get("fingerprint") != fingerprint:
        raise mismatched_checkpoint(
            checkpoint,
            "this checkpoint belongs to a different fit (data, settings or seed "
            "differ)",
            resume_option=False,
        )
    return _SearchState(
        generation=int(meta["generation"]),
        centres=arrays["centres"],
        spreads=arrays["spreads"],
        best_cost=_cost(meta["best_cost"]),
        best_z=arrays["best_z"],
        history=[_cost(c) for c in meta["history"]],
        evaluations=int(meta["evaluations"]),
        elapsed_s=float(meta["elapsed_s"]),
        rng=meta["rng"],
    )


def _cost(value) -> float:
    """A cost read back from JSON (where an infinite cost was written as null)."""
    return math.inf if value is None else float(value)


def _interruptible(evaluate_cost, z, checkpoint, where: str) -> np.ndarray:
    """``evaluate_cost(z)``, with Ctrl-C turned into :class:`FitInterrupted`."""
    with _resumable(f" in the search ({where})", checkpoint):
        return evaluate_cost(z)


@contextlib.contextmanager
def _resumable(where: str, *files):
    """Turn Ctrl-C (a plain ``KeyboardInterrupt``) into :class:`FitInterrupted`,
    naming those of the checkpoint ``files`` that hold progress; a
    ``FitInterrupted`` raised inside (with its own message) passes unchanged."""
    try:
        yield
    except FitInterrupted:
        raise
    except KeyboardInterrupt:
        saved = [str(f) for f in files if f is not None and Path(f).exists()]
        note = f"; progress saved to {' and '.join(saved)}" if saved else ""
        checkpoint = saved[0] if saved else None
        raise FitInterrupted(f"fit interrupted{where}{note}", checkpoint) from None


# --------------------------------------------------------------- polish loss
def _softmin(v, cap, width=2.0):
    return cap - width * jax.nn.softplus((cap - v) / width)


@dataclasses.dataclass(frozen=True)
class SpikeFeatureLoss(Loss):
    """Residual loss that stays informative on spiking sweeps (for LM).

    Residuals: the V error outside ±3 ms of the recorded spikes with both traces
    capped smoothly at ``cap_mv`` (spikes the model fires at other times cost a
    bounded amount), divided by ``sigma_mv`` and by √(number of samples); and per
    sweep the soft spike count (:func:`hhjax.analysis.soft_spike_count`, 2 mV
    width; over the whole window, so spikes outside the step cost) minus the
    recorded count (``counts``: in the step), divided by ``1 + 0.1·n``. Sweeps
    start at rest. V is compared every ``stride`` steps.

    Attributes:
        counts: recorded spikes per sweep (in the order of the data).
        stride: compare every ``stride``-th sample.
        sigma_mv, cap_mv: see above.
    """

    counts: tuple[int, ...] = ()
    stride: int = 4
    sigma_mv: float = 2.0
    cap_mv: float = CAP_MV
    name: str = "spike-features"

    def stages(self, n_samples, n_sweeps, dt, method):
        """One residual stage (see :class:`fitting.Loss`)."""
        if len(self.counts) != n_sweeps:
            raise ValueError(
                f"SpikeFeatureLoss has {len(self.counts)} counts for {n_sweeps} sweeps."
            )
        counts = jnp.asarray(self.counts, float)
        stride, sigma, cap = self.stride, self.sigma_mv, self.cap_mv
        half = max(int(round(SPIKE_EXCLUSION_MS / dt)), 1)

        def residuals(params, delta, data: FitArrays):
            state0 = hhjax.resting_state(params, data.i[0])
            v = hhjax.simulate(
                params,
                data.i,
                dt,
                state0=state0,
                method=method,
                record=("v",),
                stride=stride,
                check_inputs=False,
            ).v
            up = (data.v[:-1] < THRESHOLD_MV) & (data.v[1:] >= THRESHOLD_MV)
            events = jnp.concatenate([jnp.zeros((1, up.shape[1]), bool), up])
            keep = (~_dilate(events, half))[::stride][: v.shape[0]] * data.w[::stride]
            v_data = data.v[::stride][: v.shape[0]]
            n = jnp.maximum(jnp.sum(keep), 1.0)
            r_v = (
                keep * (_softmin(v, cap) - _softmin(v_data, cap)) / sigma / jnp.sqrt(n)
            )
            soft = soft_spike_count(
                v, THRESHOLD_MV, width=2.0, t=data.t[::stride][: v.shape[0]]
            )
            r_n = (soft - counts) / (1.0 + COUNT_SCALE * counts)
            return jnp.concatenate([r_v.ravel(), r_n]), None, jnp.asarray(1.0)

        return (Stage("spike features", residuals, None, None),)


# ------------------------------------------------------------------ evaluation
def simulate_sweeps(
    prepared: Prepared, params: Any, method: str = "rk4"
) -> tuple[np.ndarray, np.ndarray]:
    """Every sweep simulated from rest (:func:`fitting.simulate_data`); a sweep
    whose simulation becomes non-finite is NaN and flagged.

    Returns:
        ``(v_model (n_sweeps, n_samples) in mV, failed (n_sweeps,) bool)``.
    """
    return _simulate_sweeps(params, prepared.data(), method=method)


def evaluate(
    prepared: Prepared, params: Any, train: Sequence[int] = (), *, method: str = "rk4"
) -> tuple[dict, np.ndarray]:
    """Simulate every sweep from rest and score it (the ``metrics.json`` document).

    A sweep whose simulation failed (became non-finite) has
    ``simulation_failed`` true, ``None`` for every number of the model
    (:func:`fitting.metrics`; here also ``spikes_model_step`` and
    ``latency_model_ms``), counts as a miss in ``fraction_within_1`` and is left
    out of ``total`` and of the RMSE and latency summaries.

    Returns:
        ``(doc, v_model)``: :func:`fitting.metrics`' document with, per sweep,
        ``amplitude_pA``, ``training``, the spike counts and first-spike
        latencies in the step, ``count_within_1``, for a recording with more
        than one step (:attr:`Prepared.steps`) ``spikes_data_steps`` /
        ``spikes_model_steps`` (spikes inside all steps, the whole sweep
        simulated from rest; ``None``: failed), and a ``protocol`` summary
        over the held-out sweeps: ``held_out``, ``fraction_within_1``,
        ``rheobase_data_pA`` / ``rheobase_model_pA`` (over all sweeps; the
        model's over those that simulated),
        ``mean_subthreshold_rmse_mV`` / ``median_...`` / ``max_...``,
        ``mean_onset_rmse_mV`` (:func:`onset_rmse`, per sweep
        ``onset_rmse_mV``, over the held-out sweeps whose data spike in the
        step), ``mean_quiet_rmse_mV`` (the same over those that do not: their
        whole step), ``mean_coincidence_factor`` (Γ of :func:`fitting.metrics`
        over the held-out sweeps where it is defined: 1 for spike times
        matched within 2 ms, about 0 for chance; undefined without spikes and
        above 250 Hz) and ``mean_abs_latency_error_ms``; and the model's V,
        mV, ``(n_sweeps,
        n_samples)`` (NaN rows for failed sweeps).
    """
    data = prepared.data()
    v_model, failed = simulate_sweeps(prepared, params, method)
    doc = metrics(data, params, method=method, v_model=v_model)
    train = {int(s) for s in train}
    counts_d = spike_counts(prepared)
    counts_m = spike_counts(prepared, v_model)  # 0 for a failed (NaN) sweep
    lat_d, lat_m = first_latencies(prepared), first_latencies(prepared, v_model)
    onset = onset_rmse(prepared, v_model)
    for k, row in enumerate(doc["sweeps"]):
        row["amplitude_pA"] = float(prepared.amplitudes[k])
        row["training"] = row["sweep"] in train
        row["spikes_data_step"] = int(counts_d[k])
        row["latency_data_ms"] = None if np.isnan(lat_d[k]) else float(lat_d[k])
        row["onset_rmse_mV"] = None if np.isnan(onset[k]) else float(onset[k])
        if failed[k]:
            row.update(spikes_model_step=None, latency_model_ms=None)
            row["count_within_1"] = False
        else:
            row["spikes_model_step"] = int(counts_m[k])
            row["latency_model_ms"] = None if np.isnan(lat_m[k]) else float(lat_m[k])
            row["count_within_1"] = bool(abs(int(counts_m[k]) - int(counts_d[k])) <= 1)
    if len(prepared.steps) > 1:
        whole = whole_sweeps(prepared)
        v_whole, failed_whole = simulate_sweeps(whole, params, method)
        steps_d = step_counts(whole).sum(axis=1)
        steps_m = step_counts(whole, v_whole).sum(axis=1)
        for k, row in enumerate(doc["sweeps"]):
            row["spikes_data_steps"] = int(steps_d[k])
            row["spikes_model_steps"] = None if failed_whole[k] else int(steps_m[k])
    held = [r for r in doc["sweeps"] if not r["training"]]

    def held_values(key, rows=held):
        return np.array([r[key] for r in rows if r[key] is not None])

    rmse, gamma = held_values("subthreshold_rmse_mV"), held_values("coincidence_factor")
    spiking = [r for r in held if r["spikes_data_step"] > 0]
    quiet = [r for r in held if r["spikes_data_step"] == 0]
    onset_spiking = held_values("onset_rmse_mV", spiking)
    onset_quiet = held_values("onset_rmse_mV", quiet)
    lat_err = [
        abs(r["latency_model_ms"] - r["latency_data_ms"])
        for r in held
        if r["latency_model_ms"] is not None and r["latency_data_ms"] is not None
    ]
    doc["protocol"] = {
        **prepared.settings(),
        "training_sweeps": sorted(train),
        "held_out": [r["sweep"] for r in held],
        "fraction_within_1": float(np.mean([r["count_within_1"] for r in held]))
        if held
        else None,
        "rheobase_data_pA": rheobase(prepared.amplitudes, counts_d),
        "rheobase_model_pA": rheobase(prepared.amplitudes[~failed], counts_m[~failed]),
        "mean_subthreshold_rmse_mV": float(rmse.mean()) if rmse.size else None,
        "median_subthreshold_rmse_mV": float(np.median(rmse)) if rmse.size else None,
        "max_subthreshold_rmse_mV": float(rmse.max()) if rmse.size else None,
        "mean_onset_rmse_mV": (
            float(onset_spiking.mean()) if onset_spiking.size else None
        ),
        "mean_quiet_rmse_mV": float(onset_quiet.mean()) if onset_quiet.size else None,
        "mean_coincidence_factor": float(gamma.mean()) if gamma.size else None,
        "mean_abs_latency_error_ms": float(np.mean(lat_err)) if lat_err else None,
    }
    return doc, v_model


# ------------------------------------------------------------------ the fit
@dataclasses.dataclass(frozen=True, eq=False)
class RealFit:
    """A fitted real cell (see :func:`fit_recording`).

    Attributes:
        params: fitted parameters (scalar leaves).
        model: model name in :data:`hhjax.MODELS`.
        free: fitted fields (``e_l`` included: set by the resting potential in
            the search, free in the polish).
        prepared: the prepared recording.
        train: training sweeps (indices in the file).
        search: the search outcome.
        polish: the :class:`fitting.FitResult` of the polish, or ``None``.
        polish_kept: whether the polish improved the search cost and was kept.
        train_cost: search cost of ``params`` on the training sweeps (main
            step).
        uncertainty: Laplace estimate at ``params`` (:class:`fitting.Uncertainty`)
            for :class:`SpikeFeatureLoss` on the training sweeps, or ``None``.
        method: integrator.
        timings: wall time of each phase, s.
        later: the ``info`` of :func:`fit_later_steps`, or ``None`` (not run).
        options: the settings of the fit (search size, weights, guard, seed).
    """

    params: Any
    model: str
    free: tuple[str, ...]
    prepared: Prepared
    train: tuple[int, ...]
    search: SearchResult
    polish: Any
    polish_kept: bool
    train_cost: float
    uncertainty: Any
    method: str
    timings: dict
    later: dict | None = None
    options: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        """The ``params.json`` document: the :class:`fitting.FitResult` layout
        (``model``, ``params``, ``units``, ``free``, ``uncertainty``) plus
        ``protocol`` (cell properties, corrections, window, training sweeps,
        search and polish summaries, timings)."""
        from fitting._params import unit_of
        from fitting._results import FORMAT, params_dict, versions

        values = params_dict(self.params)
        doc = {
            "format": FORMAT,
            "model": self.model,
            "params": values,
            "units": {k: unit_of(k) for k in values},
            "free": list(self.free),
            "loss": {
                "name": "spike-features",
                "final": self.train_cost,
                "stages": ["search", "polish"]
                + (["later steps"] if self.later is not None else []),
            },
            "data": {
                "source": self.prepared.recording.source,
                "digest": recording_digest(self.prepared.raw),
                "sweeps": list(self.train),
            },
            "settings": {"method": self.method, "protocol": "real-cell"},
            "protocol": {
                **self.prepared.settings(),
                "training_sweeps": list(self.train),
                "search": {
                    "cost": self.search.cost,
                    "history": list(self.search.history),
                    "evaluations": self.search.evaluations,
                },
                "polish_kept": self.polish_kept,
                "later_steps": self.later,
                "options": self.options,
                "timings_s": self.timings,
            },
            "elapsed_s": float(sum(self.timings.values())),
            "versions": versions(),
        }
        if self.uncertainty is not None:
            doc["uncertainty"] = self.uncertainty.to_dict(
                tuple(unit_of(n) for n in self.uncertainty.names)
            )
        return doc

    def save(self, path) -> Any:
        """Write :meth:`to_dict` as JSON (atomically); readable by
        :func:`fitting.load_result`, ``hhjax predict`` and ``hhjax simulate``."""
        from fitting._io import write_json_atomic

        return write_json_atomic(path, self.to_dict())

    def summary(self) -> str:
        """Parameters with standard errors, one per line."""
        from fitting._params import unit_of

        lines = [
            f"{self.model}: training sweeps {list(self.train)}, "
            f"cost {self.train_cost:.4g}, {sum(self.timings.values()):.0f} s"
        ]
        unc = self.uncertainty
        for name in self.free:
            value = float(np.asarray(getattr(self.params, name)))
            text = f"  {name:>12} = {value:.5g} {unit_of(name)}"
            if unc is not None and name in unc.names:
                se = unc.std_errors[unc.names.index(name)]
                text += f" ± {se:.2g}" if np.isfinite(se) else " ± inf"
            lines.append(text)
        return "\n".join(lines)


def _training_cost(prepared, train, params, method, sigma, guard) -> float:
    ev = _Evaluator(prepared, train, params, (), method, 1, sigma, guard)
    leaves = jax.tree.map(lambda x: jnp.asarray(x)[None], params)
    return float(np.asarray(in_worker(ev.cost_of, leaves)).ravel()[0])


def _check_free(base: Any, names: Sequence[str]) -> None:
    """Refuse, before any simulation, what the search or the polish would fail
    on later: unknown or repeated names, or names without a search box."""
    unsearchable = [n for n in names if n in base._fields and n not in BOUNDS]
    if unsearchable:
        raise ValueError(
            f"No search box for {', '.join(unsearchable)}: the real-cell protocol "
            f"searches only {', '.join(n for n in BOUNDS if n != 'e_l')} "
            "(e_l is set from the resting potential)."
        )
    ParamSpace.create(base, (*names, "e_l"), _polish_bounds((*names, "e_l")))


def _polish_bounds(free: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Bounds of the polish and of its standard errors: the search box where it
    has one, else the defaults of :func:`fitting.default_bounds`."""
    return {n: BOUNDS[n] for n in free if n in BOUNDS}


def _polish(
    prepared, train, params, free, iterations, starts, seed, method, checkpoint=None
):
    """LM on :class:`SpikeFeatureLoss` from ``params`` and perturbed copies
    (checkpointed to ``checkpoint`` and resumed from it, see :func:`fitting.fit`)."""
    from fitting._fit import fit

    data = prepared.data(train)
    counts = tuple(
        int(c)
        for c in spike_counts(dataclasses.replace(prepared, recording=data.recording))
    )
    loss = SpikeFeatureLoss(counts=counts)
    center = np.array([float(np.asarray(getattr(params, n))) for n in free])
    rng = np.random.default_rng(seed)
    init = np.repeat(center[None], starts, 0)
    jitter = rng.normal(0.0, 0.05, init[1:].shape)
    signed = np.array([n in _LINEAR for n in free])
    init[1:] = np.where(
        signed, init[1:] + 20.0 * jitter * 0.1, init[1:] * np.exp(jitter)
    )
    bounds = _polish_bounds(free)
    space = ParamSpace.create(params, free, bounds)
    init = np.clip(init, space.lower, space.upper)  # a jitter past a bound
    result = fit(
        data,
        list(free),
        params=params,
        bounds=bounds,
        loss=loss,
        optimizer="lm",
        n_starts=starts,
        init=init,
        max_iterations=iterations,
        method=method,
        progress=False,
        uncertainty=False,
        checkpoint=checkpoint,
    )
    return result, loss, data


def _laplace(loss, data, params, free, method):
    from fitting._uncertainty import laplace

    with jax.enable_x64(True):
        arrays = data.arrays()
        stage = loss.stages(data.n_samples, data.n_sweeps, data.dt, method)[0]
        space = ParamSpace.create(params, list(free), _polish_bounds(free))
        values = np.array([float(np.asarray(getattr(params, n))) for n in free])
        return laplace(stage, space, values, np.zeros((0,)), arrays)


def checkpoint_files(checkpoint) -> tuple[Path | None, Path | None]:
    """The files :func:`fit_recording` keeps its progress in: ``checkpoint``
    (the search) and ``*.polish.npz`` next to it (the polish, a
    :func:`fitting.fit` checkpoint); ``(None, None)`` without a checkpoint."""
    if checkpoint is None:
        return None, None
    path = Path(checkpoint)
    stem = path.name[: -len(".npz")] if path.name.endswith(".npz") else path.name
    return path, path.with_name(stem + ".polish.npz")


def _fit_fingerprint(prepared, train, model, base, names, init, method, seed, options):
    """Digest of what a real-cell fit depends on (its checkpoint's identity)."""
    digest = hashlib.sha256(prepared.data(train).fingerprint().encode())
    settings = {
        "model": model,
        "train": list(train),
        "base": {k: float(np.asarray(v)) for k, v in base._asdict().items()},
        "names": list(names),
        "init": {k: float(v) for k, v in init.items()},
        "method": method,
        "seed": seed,
        "options": [float(x) for x in options],
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def _check_sweeps(prepared: Prepared, sweeps: Sequence[int]) -> tuple[int, ...]:
    """The training sweeps as file indices, refused (before any simulation) if
    the recording lacks one, lists one twice, or none is given."""
    available = prepared.sweeps
    try:
        train = tuple(operator.index(s) for s in sweeps)
    except TypeError:
        raise ValueError(
            f"`sweeps` must be sweep indices (integers, 0-based); got {sweeps!r}."
        ) from None
    first, last = available[0], available[-1]
    span = (
        f"{first}..{last}"
        if available == tuple(range(first, last + 1))
        else ", ".join(map(str, available))
    )
    where = f"{prepared.recording.source}: " if prepared.recording.source else ""
    missing = [s for s in train if s not in available]
    if missing:
        raise ValueError(
            f"{where}no sweep {', '.join(map(str, missing))}; the training sweeps "
            f"must be among the recording's sweeps {span} (0-based)."
        )
    twice = sorted({s for s in train if train.count(s) > 1})
    if twice or not train:
        raise ValueError(
            "`sweeps` must list distinct sweeps of the recording "
            f"({span}, 0-based); got {list(train)}."
        )
    return train


def fit_recording(
    recording: Recording | Prepared,
    model: str = "pospischil-rs",
    *,
    sweeps: Sequence[int] | None = None,
    n_train: int = 6,
    include_negative: bool | None = None,
    hyperpolarised: bool | None = None,
    free: Sequence[str] | None = None,
    params: Any = None,
    generations: int = 16,
    population: int = 64,
    restarts: int = 4,
    screen: int = 512,
    polish_iterations: int = 8,
    polish_starts: int = 4,
    sigma_mv: float = SIGMA_MV,
    passive_guard: bool | None = None,
    later_steps: bool | None = None,
    seed: int = 0,
    method: str = "rk4",
    log: Callable[[str], Any] | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> RealFit:
    """Fit a model to some sweeps of a current-clamp step recording.

    Args:
        recording: the loaded recording (pA; prepared with :func:`prepare`'s
            defaults) or a :class:`Prepared`.
        model: ``"pospischil-rs"`` or ``"pospischil-fs"`` (or another name of
            :data:`hhjax.MODELS` with ``free`` given).
        sweeps: training sweeps (file indices); default :func:`select_sweeps` with
            ``n_train``.
        n_train: number of training sweeps when ``sweeps`` is ``None``.
        hyperpolarised: also search :data:`HYPERPOLARISED` of the model (RS:
            I_h and the persistent Na⁺ current; FS: the inward rectifier) and
            train on the most hyperpolarising step;
            ``None``: on when the scored step family has hyperpolarising steps,
            ``free`` is not given and the model has such parameters.
        include_negative: let :func:`select_sweeps` add the most hyperpolarising
            step; ``None``: when ``hyperpolarised``.
        free: parameters to search (default :data:`FREE` of the model; ``e_l`` is
            always set by the resting potential and refined in the polish).
        params: starting/fixed parameters (default the model's defaults).
        generations, population, restarts, screen: search size
            (:func:`search`).
        polish_iterations, polish_starts: LM polish (0 iterations: none).
        sigma_mv: weight of the subthreshold RMSE in the cost (see
            :func:`feature_cost`).
        passive_guard: keep the model's steady response to the hyperpolarising
            step within a factor 2 of the measured one (:func:`search`);
            ``None``: on when the scored step family has hyperpolarising steps
            (the model must respond sanely to them), off otherwise.
        later_steps: after the polish, fit :data:`LATER_STEPS` of the model to
            the spike counts in every step of the training sweeps
            (:func:`fit_later_steps`; kept only if it lowers that cost);
            ``None``: on when the recording repeats its step
            (:attr:`Prepared.steps`), ``free`` is not given and the model has
            such parameters. Their standard errors are not estimated.
        seed: seed of search and polish.
        method: integrator (step = sampling interval); ``"rk4"`` by default so
            that ``hhjax simulate``/``predict`` reproduce the fitted behaviour.
        log: called with progress lines.
        checkpoint: file to save progress to (``.npz``): the search after every
            generation, the polish in a second file next to it
            (:func:`checkpoint_files`). A fit given the checkpoint of the same
            fit (same data and settings) resumes from it and ends where an
            uninterrupted one would; one of another fit is refused. Delete the
            files once the result is saved.

    Returns:
        A :class:`RealFit`.

    Raises:
        ValueError: before any simulation: training sweeps not in the recording
            (or repeated), unknown or unsearchable ``free`` names,
            ``polish_iterations`` of 1 (the polish's first iteration only
            evaluates its start, see :func:`fitting.fit`), ``later_steps`` true
            for a recording with one step or a model without
            :data:`LATER_STEPS`.
        FitInterrupted: on Ctrl-C (the checkpoint, if any, holds the progress;
            the later-step fit is redone on resuming).
    """
    _check_search_settings(generations, population, restarts, screen)
    if not (isinstance(polish_iterations, int) and polish_iterations >= 0) or (
        polish_iterations == 1
    ):
        raise ValueError(
            "`polish_iterations` must be 0 (no polish) or an integer >= 2 (the "
            "first Levenberg-Marquardt iteration only evaluates the start); got "
            f"{polish_iterations!r}."
        )
    timings = {}
    t0 = time.perf_counter()
    with jax.enable_x64(True), _resumable("", *checkpoint_files(checkpoint)):
        prepared = recording if isinstance(recording, Prepared) else prepare(recording)
        base = hhjax.default_params(model) if params is None else params
        names = tuple(FREE.get(model, ()) if free is None else free)
        names = tuple(n for n in names if n != "e_l")
        if not names:
            raise ValueError(f"No free parameters for model {model!r}; pass `free`.")
        _check_free(base, names)
        has_negative = bool(np.any(prepared.amplitudes < 0))
        if hyperpolarised is None:
            hyperpolarised = has_negative and free is None and model in HYPERPOLARISED
        if hyperpolarised:
            names += tuple(n for n in HYPERPOLARISED.get(model, ()) if n not in names)
        if include_negative is None:
            include_negative = hyperpolarised
        counts = spike_counts(prepared)
        if sweeps is None:
            rows = select_sweeps(prepared.amplitudes, counts, n_train, include_negative)
            sweeps = [prepared.sweeps[r] for r in rows]
        train = _check_sweeps(prepared, sweeps)
        init = initial_values(prepared, base, names, train)
        if passive_guard is None:
            passive_guard = has_negative
        later_names = LATER_STEPS.get(model, ())
        if later_steps is None:
            later_steps = len(prepared.steps) > 1 and free is None and bool(later_names)
        elif later_steps and (len(prepared.steps) < 2 or not later_names):
            raise ValueError(
                "`later_steps` needs a recording that repeats its step and a model "
                f"with later-step parameters ({', '.join(LATER_STEPS)}); "
                f"{prepared.recording.source or 'the recording'} has "
                f"{len(prepared.steps)} step(s), the model is {model!r}."
            )
        if log is not None:
            log(f"training sweeps {list(train)}; start {init}")
        timings["prepare_s"] = time.perf_counter() - t0
        search_file, polish_file = checkpoint_files(checkpoint)
        fingerprint = _fit_fingerprint(
            prepared, train, model, base, names, init, method, seed,
            [generations, population, restarts, screen, sigma_mv, passive_guard,
             polish_iterations, polish_starts],
        )  # fmt: skip
        found = search(
            prepared,
            train,
            base,
            names,
            init,
            generations=generations,
            population=population,
            restarts=restarts,
            screen=screen,
            seed=seed,
            sigma=sigma_mv,
            passive_guard=passive_guard,
            method=method,
            log=log,
            checkpoint=search_file,
            fingerprint=fingerprint,
        )
        timings["search_s"] = found.elapsed_s
        best, cost, polished, kept = found.params, found.cost, None, False
        all_free = (*names, "e_l")
        t1 = time.perf_counter()
        if polish_iterations > 0:
            polished, loss, data = _polish(
                prepared,
                train,
                found.params,
                all_free,
                polish_iterations,
                polish_starts,
                seed,
                method,
                polish_file,
            )
            cost_polished = _training_cost(
                prepared, train, polished.params, method, sigma_mv, passive_guard
            )
            if log is not None:
                log(f"polish: cost {cost_polished:.4g} (search {cost:.4g})")
            failed = in_worker(simulate_sweeps, prepared, polished.params, method)[1]
            stable = not failed.any()
            if cost_polished <= cost and stable:
                best, cost, kept = polished.params, cost_polished, True
        else:
            data = prepared.data(train)
            loss = SpikeFeatureLoss(
                counts=tuple(
                    int(c) for c in counts[[prepared.sweeps.index(s) for s in train]]
                )
            )
        timings["polish_s"] = time.perf_counter() - t1
        later = None
        if later_steps:
            best, later = fit_later_steps(
                prepared, train, best, later_names, seed=seed, method=method,
                sigma=sigma_mv, passive_guard=passive_guard, log=log,
            )  # fmt: skip
            timings["later_steps_s"] = later["elapsed_s"]
            if later["kept"]:
                cost = _training_cost(
                    prepared, train, best, method, sigma_mv, passive_guard
                )
        t2 = time.perf_counter()
        unc = in_worker(_laplace, loss, data, best, all_free, method)
        timings["uncertainty_s"] = time.perf_counter() - t2
    if later is not None and later["kept"]:
        all_free = (*all_free, *later_names)
    return RealFit(
        params=best,
        model=model,
        free=all_free,
        prepared=prepared,
        train=train,
        search=found,
        polish=polished,
        polish_kept=kept,
        train_cost=cost,
        uncertainty=unc,
        method=method,
        timings=timings,
        later=later,
        options={
            "generations": generations,
            "population": population,
            "restarts": restarts,
            "screen": screen,
            "polish_iterations": polish_iterations,
            "polish_starts": polish_starts,
            "sigma_mv": sigma_mv,
            "passive_guard": passive_guard,
            "later_steps": later_steps,
            "hyperpolarised": hyperpolarised,
            "include_negative": include_negative,
            "seed": seed,
        },
    )


def predict_recording(
    params: Any,
    recording: Recording,
    *,
    document: dict | None = None,
    same_baseline: bool = False,
    method: str = "rk4",
    train: Sequence[int] = (),
) -> tuple[dict, np.ndarray, Prepared]:
    """Score fitted parameters on a recording (held-out sweeps or another file).

    Args:
        params: fitted parameters.
        recording: the recording (pA).
        document: the fit's ``params.json`` document; its ``protocol`` block gives
            the cell capacitance (same cell: same area) and resting potential,
            and the series resistance used when the recording has no
            hyperpolarising step to measure its own on.
        same_baseline: bring the baselines to the fit's (``baseline_mV`` of its
            ``protocol`` block; older files: its resting potential) instead of the
            recording's own median (another file of the same cell).
        method: integrator.
        train: sweeps to mark as training.

    Returns:
        ``(metrics document, model V (n_sweeps, n_samples), prepared)``.
    """
    protocol = (document or {}).get("protocol", {})
    c_pf = protocol.get("c_pF")
    r_series = protocol.get("series_resistance_MOhm")
    v_ref = None
    if same_baseline:
        v_ref = protocol.get("baseline_mV")
        v_ref = protocol.get("v_rest_mV") if v_ref is None else v_ref
    with jax.enable_x64(True):
        try:
            # The series resistance of this recording (access changes between
            # recordings), measured on its hyperpolarising step ...
            prepared = prepare(recording, c_pf=c_pf, v_ref=v_ref)
        except RecordingError:
            if c_pf is None or r_series is None:
                raise
            # ... or, without such a step, the fit's.
            prepared = prepare(
                recording, c_pf=c_pf, series_resistance=r_series, v_ref=v_ref
            )
        # In a worker thread (it compiles): Ctrl-C stops the wait.
        doc, v_model = in_worker(evaluate, prepared, params, train, method=method)
    return doc, v_model, prepared


# ---------------------------------------------------------------------- report
_OVERLAYS = 8


def _overlay_rows(doc: dict) -> list[int]:
    """Rows to draw: the training sweeps and held-out ones spread over the rest."""
    rows = list(range(len(doc["sweeps"])))
    train = [k for k in rows if doc["sweeps"][k]["training"]]
    held = [k for k in rows if k not in train]
    n_held = max(_OVERLAYS - len(train), 0)
    if held and n_held:
        picks = np.unique(np.round(np.linspace(0, len(held) - 1, n_held)).astype(int))
        train += [held[k] for k in picks]
    return sorted(train)[:_OVERLAYS]


def _steady_levels(prepared: Prepared, v: np.ndarray) -> np.ndarray:
    """Median V over the last 100 ms of the step per sweep, mV."""
    t = prepared.recording.t
    tail = (t >= prepared.step[1] - 100.0) & (t < prepared.step[1])
    return np.median(v[:, tail], axis=1)


def report_figure(
    prepared: Prepared,
    doc: dict,
    v_model: np.ndarray,
    fit: RealFit | None = None,
    title: str = "",
):
    """The protocol's report: overlays, f–I curve, latency, subthreshold response
    and (with ``fit``) the parameter table with standard errors.

    Args:
        prepared: the scored recording.
        doc: the metrics document of :func:`evaluate`.
        v_model: model V, mV, ``(n_sweeps, n_samples)``.
        fit: the fit, for the parameter table.
        title: figure title.

    Returns:
        A ``matplotlib.figure.Figure``.
    """
    from matplotlib.figure import Figure

    rows = _overlay_rows(doc)
    fig = Figure(
        figsize=(15, 3.0 + 1.6 * ((len(rows) + 1) // 2) + 3.2), layout="constrained"
    )
    n_over = (len(rows) + 1) // 2
    grid = fig.add_gridspec(n_over + 1, 8, height_ratios=[1.0] * n_over + [2.2])
    rec = prepared.recording
    for j, k in enumerate(rows):
        ax = fig.add_subplot(grid[j // 2, 4 * (j % 2) : 4 * (j % 2) + 4])
        ax.plot(rec.t, rec.v[k], color="0.3", lw=0.6, label="data")
        ax.plot(rec.t, v_model[k], color="C3", lw=0.6, label="model")
        row = doc["sweeps"][k]
        tag = "training" if row["training"] else "held out"
        model = row["spikes_model_step"]
        ax.set_title(
            f"sweep {row['sweep']} ({row['amplitude_pA']:.0f} pA, {tag}): "
            f"spikes {row['spikes_data_step']} / "
            f"{'simulation failed' if model is None else model}",
            fontsize=8,
            loc="left",
        )
        ax.tick_params(labelsize=7)
        ax.set_xlabel("t (ms)", fontsize=7)
        ax.set_ylabel("V (mV)", fontsize=7)
        low, high = ax.get_ylim()
        if high - low < 10.0:  # at least 10 mV: noise is not a response
            ax.set_ylim(0.5 * (low + high) - 5.0, 0.5 * (low + high) + 5.0)
        if j == 0:
            ax.legend(fontsize=7, loc="upper right")
    amps = prepared.amplitudes
    train = np.array([r["training"] for r in doc["sweeps"]])

    def column(key):  # NaN for None (no spike; the model's: simulation failed)
        return np.array([np.nan if r[key] is None else r[key] for r in doc["sweeps"]])

    all_steps = "spikes_data_steps" in doc["sweeps"][0]  # a multi-step protocol
    panels = [
        (
            "f–I: spikes in the first step / all steps"
            if all_steps
            else "f–I: spikes in the step",
            column("spikes_data_step"),
            column("spikes_model_step"),
            "spikes",
        ),
        (
            "first-spike latency",
            column("latency_data_ms"),
            column("latency_model_ms"),
            "ms",
        ),
        (
            "subthreshold: V, last 100 ms of step",
            _steady_levels(prepared, rec.v),
            _steady_levels(prepared, v_model),
            "mV",
        ),
    ]
    for j, (name, d, m, unit) in enumerate(panels):
        ax = fig.add_subplot(grid[n_over, 2 * j : 2 * j + 2])
        ax.plot(amps, d, "o-", color="0.3", ms=3, lw=0.8, label="data")
        ax.plot(amps, m, "s--", color="C3", ms=3, lw=0.8, label="model")
        if j == 0 and all_steps:
            ax.plot(amps, column("spikes_data_steps"), "o-", color="0.6", ms=3,
                    lw=0.8, label="data, all steps")  # fmt: skip
            ax.plot(amps, column("spikes_model_steps"), "s--", color="C1", ms=3,
                    lw=0.8, label="model, all steps")  # fmt: skip
        ax.plot(
            amps[train], d[train], "o", mfc="none", mec="C0", ms=8, label="training"
        )
        ax.set_xlabel("step current (pA)", fontsize=8)
        ax.set_ylabel(unit, fontsize=8)
        ax.set_title(name, fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        if j == 0:
            ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[n_over, 6:8])
    ax.axis("off")
    if fit is not None:
        _parameter_table(ax, fit)
    heading = "\n".join(filter(None, (title, summary_line(doc["protocol"]))))
    fig.suptitle(heading, fontsize=10)
    return fig


def summary_line(summary: dict) -> str:
    """The report title's scores of the held-out sweeps (``protocol`` block of
    :func:`evaluate`), saying "none" where a number does not exist."""

    def pa(value):
        return "none" if value is None else f"{value:g} pA"

    rheobase = (
        f"rheobase {pa(summary['rheobase_data_pA'])} / "
        f"{pa(summary['rheobase_model_pA'])} (data / model)"
    )
    if not summary["held_out"]:
        return f"no held-out sweeps (all trained); {rheobase}"
    rmse = summary["mean_subthreshold_rmse_mV"]
    rmse_text = "n/a" if rmse is None else f"{rmse:.2f} mV"
    # Absent in files written before 2026-12-07.
    parts = [
        f"{label} {summary[key]:.2f} mV"
        for key, label in (
            ("mean_onset_rmse_mV", "onset to first spike"),
            ("mean_quiet_rmse_mV", "steps without spikes"),
        )
        if summary.get(key) is not None
    ]
    if parts:
        rmse_text += f" ({'; '.join(parts)})"
    return (
        f"held out: {100 * summary['fraction_within_1']:.0f} % within ±1 spike; "
        f"{rheobase}; subthreshold RMSE mean {rmse_text}"
    )


def _parameter_table(ax, fit: RealFit) -> None:
    from fitting._params import unit_of

    unc = fit.uncertainty
    cells = []
    for name in fit.free:
        value = float(np.asarray(getattr(fit.params, name)))
        se = ""
        if unc is not None and name in unc.names:
            s = unc.std_errors[unc.names.index(name)]
            se = f"{s:.2g}" if np.isfinite(s) else "inf"
        cells.append([name, f"{value:.4g}", se, unit_of(name)])
    cells.append(["C (area)", f"{fit.prepared.c_pf:.1f}", "", "pF"])
    table = ax.table(
        cellText=cells,
        colLabels=["parameter", "value", "s.e.", "unit"],
        loc="center",
        cellLoc="left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.scale(1.0, 1.1)


def save_report(
    path,
    prepared: Prepared,
    doc: dict,
    v_model: np.ndarray,
    fit: RealFit | None = None,
    title: str = "",
    dpi: int = 80,
):
    """Write :func:`report_figure` as a PNG (atomically)."""

    from hhjax.io import write_figure_atomic

    fig = report_figure(prepared, doc, v_model, fit, title)
    return write_figure_atomic(fig, path, dpi=dpi)


# ------------------------------------------------------- command-line helpers
RAW_SUFFIXES = (".abf", ".nwb")


def recording_digest(recording: Recording) -> str:
    """A short hash of a recording's samples (V, current, dt, sweep indices): a
    fit stores it, and ``predict`` marks the training sweeps only on a recording
    with the same digest (the same file's data, wherever it lies)."""
    h = hashlib.sha256()
    for array in (recording.v, recording.i, [recording.dt], recording.sweeps):
        h.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


def _fitted_on(document: dict, recording: Recording, data_path) -> bool:
    """Whether a fit's ``params.json`` document was fitted to ``recording``: by
    the stored digest, or for files written before it by the file name."""
    data = document.get("data", {})
    if data.get("digest") is not None:
        return data["digest"] == recording_digest(recording)
    return Path(data.get("source", "")).name == Path(data_path).name


def wants_protocol(path, document: dict | None = None) -> bool:
    """Whether ``hhjax fit``/``predict`` should use this protocol: the data is a
    raw whole-cell recording (``.abf``/``.nwb``, current in pA, capacitance
    unknown), or the parameter file came from it (has a ``protocol`` block)."""
    from pathlib import Path

    if document is not None and "protocol" in document:
        return True
    return Path(path).suffix.lower() in RAW_SUFFIXES


def fit_to_directory(
    data_path,
    out_dir,
    model: str = "pospischil-rs",
    *,
    sweeps: Sequence[int] | None = None,
    params: Any = None,
    free: Sequence[str] | None = None,
    seed: int = 0,
    method: str = "rk4",
    log: Callable[[str], Any] | None = None,
    c_pf: float | None = None,
    series_resistance: float | None = None,
    **options,
) -> RealFit:
    """Fit a recording file and write ``params.json``, ``metrics.json`` (every
    sweep, training ones marked) and ``report.png`` into ``out_dir``.

    What ``hhjax fit RECORDING.abf --model pospischil-rs --sweeps 8,12,16 --out
    DIR`` runs (into a staging directory). ``c_pf`` (pF) and
    ``series_resistance`` (MΩ) go to :func:`prepare` (default: measured on the
    hyperpolarising step; ``--c-pf``, ``--series-resistance``), ``options`` to
    :func:`fit_recording`.
    """
    from fitting._io import write_json_atomic
    from hhjax.recordings import load_recording

    out_dir = Path(out_dir)
    recording = load_recording(data_path)
    given = c_pf is not None or series_resistance is not None
    fit = fit_recording(
        prepare(recording, c_pf=c_pf, series_resistance=series_resistance)
        if given
        else recording,
        model,
        sweeps=sweeps,
        params=params,
        free=free,
        seed=seed,
        method=method,
        log=log,
        **options,
    )
    # Scored on the recording as the fit prepared it (its c_pf, series resistance
    # and baselines, given or measured); in a worker thread, as it compiles.
    prepared = fit.prepared
    doc, v_model = in_worker(evaluate, prepared, fit.params, fit.train, method=method)
    fit.save(out_dir / "params.json")
    write_json_atomic(out_dir / "metrics.json", doc)
    title = f"{Path(data_path).name}: {model}, trained on sweeps {list(fit.train)}"
    save_report(out_dir / "report.png", prepared, doc, v_model, fit, title=title)
    return fit


def predict_to_directory(
    params_path,
    data_path,
    out_dir,
    *,
    same_baseline: bool = False,
    method: str | None = None,
) -> dict:
    """Score a ``params.json`` of this protocol on a recording file and write
    ``metrics.json`` and ``prediction.png`` into ``out_dir`` (what ``hhjax
    predict DIR/params.json RECORDING.abf --out DIR2`` runs). The fit's training
    sweeps are marked when the file is the one it was fitted to."""
    from fitting._io import write_json_atomic
    from fitting._results import load_result
    from hhjax.recordings import load_recording

    out_dir = Path(out_dir)
    params, document = load_result(params_path)
    method = method or document.get("settings", {}).get("method", "rk4")
    recording = load_recording(data_path)
    same_file = _fitted_on(document, recording, data_path)
    train = document.get("protocol", {}).get("training_sweeps", []) if same_file else []
    doc, v_model, prepared = predict_recording(
        params,
        recording,
        document=document,
        same_baseline=same_baseline,
        method=method,
        train=train,
    )
    doc["params_file"] = str(params_path)
    doc["data"] = {"source": str(data_path), "sweeps": list(prepared.sweeps)}
    write_json_atomic(out_dir / "metrics.json", doc)
    save_report(
        out_dir / "prediction.png",
        prepared,
        doc,
        v_model,
        title=f"{Path(params_path).name} on {Path(data_path).name}",
    )
    return doc
