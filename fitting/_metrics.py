"""How well parameters predict data: spike counts, spike times, subthreshold error.

A spike is an **upward crossing of ``threshold``** (default 0 mV, in the voltage
convention of the data) by a trace that has been below ``threshold −
hysteresis`` (default 10 mV) since the previous spike, so recording noise around
the threshold cannot count one spike twice. Its time is linearly interpolated
between the two samples. Spikes are detected on the whole trace; only those
inside the fitting windows (the data's mask) are counted and matched, and only
samples inside them enter the errors. The subthreshold error leaves out the
samples within 3 ms of any spike of either trace, also of one just outside the
windows.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import hhjax
from fitting._data import FitData
from fitting._losses import check_start, initial_state
from fitting._params import as_real_number, positive_finite, real_in

THRESHOLD_MV = 0.0
HYSTERESIS_MV = 10.0
SPIKE_EXCLUSION_MS = 3.0  # subthreshold error ignores samples this close to a spike
COINCIDENCE_MS = 2.0  # spikes closer than this are matched


def model_trace(v_model: Any, v_data: np.ndarray, like: str = "the data") -> np.ndarray:
    """``v_model`` as float64 after checking it is one simulated V per sample of
    ``v_data`` (``(n_sweeps, n_samples)``, mV); a ``ValueError`` otherwise
    (``like`` names what ``v_data`` is)."""
    v_model = np.asarray(v_model, dtype=np.float64)
    if v_model.shape != v_data.shape:
        raise ValueError(
            f"`v_model` must be (n_sweeps, n_samples) = {v_data.shape} like "
            f"{like}, in mV; got {v_model.shape}."
        )
    return v_model


def spike_times(
    v: np.ndarray,
    dt: float,
    threshold: float = THRESHOLD_MV,
    hysteresis: float = HYSTERESIS_MV,
    t0: float = 0.0,
) -> np.ndarray:
    """Spike times (ms) of one trace: upward crossings of ``threshold`` (mV)
    re-armed by falling below ``threshold − hysteresis``.

    Args:
        v: membrane potential, mV, ``(n_samples,)``.
        dt: sampling interval, ms.
        threshold, hysteresis: mV.
        t0: time of the first sample, ms.

    Returns:
        Spike times, ms, ascending, ``(n_spikes,)``.

    Raises:
        ValueError: ``v`` not 1-D or ``dt`` not a positive finite number.
    """
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(
            f"`v` must be one trace of shape (n_samples,) in mV; got shape {v.shape}."
        )
    dt = real_in(dt, "`dt`", "a positive sampling interval in ms", positive_finite)
    real_in(threshold, "`threshold`", "a finite voltage in mV", math.isfinite)
    real_in(hysteresis, "`hysteresis`", "a finite voltage in mV", math.isfinite)
    crossing = np.flatnonzero((v[:-1] < threshold) & (v[1:] >= threshold))
    low = v < threshold - hysteresis
    # Index of the last "low" sample at or before each sample (-1: none yet).
    last_low = np.maximum.accumulate(np.where(low, np.arange(v.size), -1))
    times, previous = [], -1
    for k in crossing:
        armed = previous < 0 or last_low[k] > previous
        if armed:
            frac = (threshold - v[k]) / (v[k + 1] - v[k])
            times.append(t0 + (k + frac) * dt)
            previous = k
    return np.array(times)


def _with_c_m_of(data: FitData, params: Any) -> FitData:
    """``data`` with a current in pA converted with ``params.c_m`` (µF/cm²), as
    :func:`fitting.fit` converts it (:meth:`FitData.with_c_m`), where that is a
    concrete real scalar; else as it is."""
    c_m = as_real_number(getattr(params, "c_m", None))
    if data.c_m is None or c_m is None:
        return data
    return data.with_c_m(c_m)


def _check_arguments(data: Any, params: Any, call: str) -> None:
    """Clear errors for swapped or wrongly typed sweeps and parameters."""
    if isinstance(params, FitData) and hasattr(data, "_fields"):
        raise TypeError(
            f"The arguments are swapped: call {call} with the sweeps as `data` and "
            "the parameter tuple as `params`."
        )
    if not isinstance(data, FitData):
        raise TypeError(
            "`data` must be a fitting.FitData (from fitting.load_data(path) or "
            f"fitting.FitData.from_recording(recording)) in {call}; got "
            f"{type(data).__name__}."
        )
    hhjax.model_of(params)  # a TypeError naming the type for a non-model


def _simulate(params, data, method, start, dtype, substeps, check_inputs):
    if not (isinstance(substeps, int) and substeps >= 1):
        raise ValueError(f"`substeps` must be an integer >= 1; got {substeps!r}.")
    check_start(start)
    if dtype not in ("float64", "float32"):
        raise ValueError(f"`dtype` must be 'float64' or 'float32'; got {dtype!r}.")
    data = _with_c_m_of(data, params)
    x64 = jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()
    with x64:
        arrays = data.arrays(np.float64 if dtype == "float64" else np.float32)
        state0 = initial_state(params, arrays, start)
        # As the losses integrate (fitting._losses.simulate_samples), here with
        # hhjax's checks of the inputs and of the result.
        i_ext = jnp.repeat(arrays.i, substeps, axis=0) if substeps > 1 else arrays.i
        trace = hhjax.simulate(
            params, i_ext, data.dt / substeps, state0=state0, method=method,
            record=("v",), stride=substeps, check_inputs=check_inputs,
        )  # fmt: skip
        return np.asarray(trace.v, np.float64).T


def simulate_data(
    params: Any,
    data: FitData,
    *,
    method: str = hhjax.DEFAULT_METHOD,
    start: str = "rest",
    dtype: str = "float64",
    substeps: int = 1,
) -> np.ndarray:
    """Simulate every sweep of ``data`` with ``params`` under its recorded current.

    Args:
        params: the model's parameter tuple (voltage convention of the data).
        data: the sweeps (their current and sampling interval are used; a
            current in pA is converted with ``params.c_m``, as :func:`fitting.fit`
            converts it, see :meth:`FitData.with_c_m`).
        method: integrator.
        start: ``"rest"`` (resting state for each sweep's first current sample) or
            ``"data"`` (first recorded V, gates at steady state).
        dtype: ``"float64"`` (default) or ``"float32"``.
        substeps: integration steps per data sample, each ``data.dt / substeps``
            ms with the current held over the sample (as the fit's ``substeps``,
            e.g. ``--substeps``; more for coarsely sampled data).

    Returns:
        Simulated V, mV, ``(n_sweeps, n_samples)``, aligned with ``data.v``.

    Raises:
        hhjax.NonFiniteSimulationError: a sweep's simulation became non-finite
            (see :func:`simulate_sweeps` to flag such sweeps instead).
        ValueError: bad parameters or ``substeps``.
    """
    _check_arguments(data, params, "fitting.simulate_data(params, data)")
    return _simulate(params, data, method, start, dtype, substeps, True)


def simulate_sweeps(
    params: Any,
    data: FitData,
    *,
    method: str = hhjax.DEFAULT_METHOD,
    start: str = "rest",
    dtype: str = "float64",
    substeps: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`simulate_data`, but a sweep whose simulation becomes non-finite
    (parameters that cannot be simulated from rest at this step) is NaN and
    flagged instead of raising; the sweeps are independent, so the others are
    unaffected.

    Returns:
        ``(v_model, failed)``: simulated V in mV ``(n_sweeps, n_samples)`` (NaN
        rows for the failed sweeps) and ``(n_sweeps,)`` bool.
    """
    try:
        v = simulate_data(
            params, data, method=method, start=start, dtype=dtype, substeps=substeps
        )
        return v, np.zeros(data.n_sweeps, bool)
    except hhjax.NonFiniteSimulationError:  # the inputs passed hhjax's checks
        v = np.array(_simulate(params, data, method, start, dtype, substeps, False))
    failed = ~np.isfinite(v).all(axis=1)
    v[failed] = np.nan
    return v, failed


def _match(a: np.ndarray, b: np.ndarray, window: float) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of spike times closer than ``window`` (ms)."""
    pairs = sorted(
        (abs(x - y), i, j)
        for i, x in enumerate(a)
        for j, y in enumerate(b)
        if abs(x - y) <= window
    )
    used_a, used_b, out = set(), set(), []
    for _, i, j in pairs:
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out.append((i, j))
    return out


def _sweep_metrics(t, v_data, v_model, mask, dt, threshold, hysteresis):
    inside = t[mask]
    span = (inside[0], inside[-1] + dt) if inside.size else (t[0], t[0])

    def inside_mask(times):
        k = np.clip(np.round((times - t[0]) / dt).astype(int), 0, t.size - 1)
        return times[mask[k]] if times.size else times

    # Spikes are detected on the whole trace; those inside the analysed window
    # are counted and matched, and every one of them (also one just outside the
    # window) excludes the samples within SPIKE_EXCLUSION_MS from the
    # subthreshold error.
    all_data = spike_times(v_data, dt, threshold, hysteresis, t0=t[0])
    all_model = spike_times(v_model, dt, threshold, hysteresis, t0=t[0])
    s_data, s_model = inside_mask(all_data), inside_mask(all_model)
    err = (v_model - v_data)[mask]
    near = np.zeros(t.shape, bool)
    for s in np.concatenate([all_data, all_model]):
        near |= np.abs(t - s) <= SPIKE_EXCLUSION_MS
    sub = mask & ~near
    pairs = _match(s_data, s_model, COINCIDENCE_MS)
    n_d, n_m = len(s_data), len(s_model)
    duration = max(np.count_nonzero(mask) * dt, dt)  # analysed time, gaps left out
    gamma = None
    if n_d + n_m > 0:
        rate = n_m / duration  # model firing rate, 1/ms
        expected = 2.0 * rate * COINCIDENCE_MS * n_d  # chance coincidences
        norm = 1.0 - 2.0 * rate * COINCIDENCE_MS
        if norm > 0:
            gamma = (len(pairs) - expected) / (0.5 * (n_d + n_m)) / norm
            gamma = min(gamma, 1.0)  # 1 for identical trains, up to rounding
    return {
        "spikes_data": n_d,
        "spikes_model": n_m,
        "subthreshold_rmse_mV": (
            float(np.sqrt(np.mean((v_model - v_data)[sub] ** 2))) if sub.any() else None
        ),
        "rmse_mV": float(np.sqrt(np.mean(err**2))) if err.size else None,
        "matched_spikes": len(pairs),
        "spike_time_mae_ms": (
            float(np.mean([abs(s_data[i] - s_model[j]) for i, j in pairs]))
            if pairs
            else None
        ),
        "coincidence_factor": gamma,
        "first_spike_latency_data_ms": float(s_data[0] - span[0]) if n_d else None,
        "first_spike_latency_model_ms": float(s_model[0] - span[0]) if n_m else None,
        # Sample times k·dt carry rounding (999.9999999990905): 9 decimals.
        "window_ms": [round(float(span[0]), 9), round(float(span[1]), 9)],
    }


# What a sweep whose simulation failed has in place of the model's metrics.
_MODEL_FIELDS = (
    "spikes_model", "subthreshold_rmse_mV", "rmse_mV", "matched_spikes",
    "spike_time_mae_ms", "coincidence_factor", "first_spike_latency_model_ms",
)  # fmt: skip


def metrics(
    data: FitData,
    params: Any,
    *,
    method: str = hhjax.DEFAULT_METHOD,
    threshold: float = THRESHOLD_MV,
    hysteresis: float = HYSTERESIS_MV,
    v_model: np.ndarray | None = None,
    substeps: int = 1,
) -> dict:
    """Prediction quality of ``params`` on ``data`` (the ``metrics.json`` document).

    The model is simulated from rest under each sweep's recorded current (see
    :func:`simulate_sweeps`) and compared with the recorded V inside the fitting
    windows. A sweep whose simulation failed (non-finite) is reported with
    ``"simulation_failed": true`` and ``None`` for every model metric, and is
    left out of ``"total"``.

    Args:
        data: the sweeps (a current in pA is converted with ``params.c_m``, see
            :func:`simulate_data`).
        params: the model's parameter tuple.
        method: integrator.
        threshold, hysteresis: spike detection, mV (see the module docstring).
        v_model: simulated V, mV, ``(n_sweeps, n_samples)`` if already computed
            (e.g. by :func:`simulate_sweeps`); rows with a non-finite value count
            as failed.
        substeps: integration steps per data sample (see :func:`simulate_data`)
            when ``v_model`` is not given.

    Returns:
        ``{"threshold_mV", "hysteresis_mV", "spike_exclusion_ms",
        "coincidence_window_ms", "method", "substeps", "start", "convention"
        (:func:`hhjax.voltage_convention` of ``params``), "sweeps": [per
        sweep: "sweep" (index in the file), "simulation_failed", "spikes_data",
        "spikes_model", "subthreshold_rmse_mV" (samples farther than 3 ms from
        any spike of either trace, also one outside the window), "rmse_mV", "matched_spikes" (within 2 ms),
        "spike_time_mae_ms", "coincidence_factor" (Kistler's Γ, 2 ms),
        first-spike latencies, "window_ms"], "total": {"spikes_data",
        "spikes_model", "matched_spikes", "mean_subthreshold_rmse_mV" over the
        sweeps that simulated, "failed_sweeps" (their indices in the file)}}``.

    Raises:
        ValueError: ``v_model`` of the wrong shape.
        TypeError: ``data`` not a :class:`FitData` (or swapped with ``params``).
    """
    _check_arguments(data, params, "fitting.metrics(data, params)")
    if v_model is None:
        v_model, failed = simulate_sweeps(
            params, data, method=method, substeps=substeps
        )
    else:
        v_model = model_trace(v_model, data.v)
        failed = ~np.isfinite(v_model).all(axis=1)
    t = data.t
    sweeps = []
    for k in range(data.n_sweeps):
        row = {"sweep": int(data.sweeps[k]), "simulation_failed": bool(failed[k])}
        v_k = np.nan_to_num(v_model[k]) if failed[k] else v_model[k]
        row.update(
            _sweep_metrics(
                t, data.v[k], v_k, data.mask[k], data.dt, threshold, hysteresis
            )
        )
        if failed[k]:
            row.update(dict.fromkeys(_MODEL_FIELDS))
        sweeps.append(row)
    ok = [s for s in sweeps if not s["simulation_failed"]]
    sub = [
        s["subthreshold_rmse_mV"] for s in ok if s["subthreshold_rmse_mV"] is not None
    ]
    return {
        "threshold_mV": threshold,
        "hysteresis_mV": hysteresis,
        "spike_exclusion_ms": SPIKE_EXCLUSION_MS,
        "coincidence_window_ms": COINCIDENCE_MS,
        "method": method,
        "substeps": substeps,
        "start": "rest",
        "convention": hhjax.voltage_convention(params),
        "sweeps": sweeps,
        "total": {
            "spikes_data": sum(s["spikes_data"] for s in ok),
            "spikes_model": sum(s["spikes_model"] for s in ok),
            "matched_spikes": sum(s["matched_spikes"] for s in ok),
            "mean_subthreshold_rmse_mV": float(np.mean(sub)) if sub else None,
            "failed_sweeps": [s["sweep"] for s in sweeps if s["simulation_failed"]],
        },
    }
