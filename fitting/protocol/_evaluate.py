"""Prediction and scoring (step 6 of the recipe in :mod:`fitting.protocol`): every
sweep simulated from rest, and per-sweep and per-recording metrics, among them the
RMSE of the response to the step onset (:func:`onset_rmse`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fitting._metrics import SPIKE_EXCLUSION_MS, metrics, spike_times
from fitting._metrics import simulate_sweeps as _simulate_sweeps
from fitting.protocol._prepare import Prepared, whole_sweeps
from fitting.protocol._sweeps import (
    first_latencies,
    rheobase,
    spike_counts,
    step_counts,
)

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
        simulated from rest; ``None``: failed) and ``whole_sweep_failed``,
        and a ``protocol`` summary
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
        above 250 Hz), ``mean_abs_latency_error_ms`` and
        ``failed_whole_sweeps`` (the sweeps whose whole-sweep simulation
        failed; empty for one step); and the model's V,
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
            row["whole_sweep_failed"] = bool(failed_whole[k])
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
        "failed_whole_sweeps": [
            r["sweep"] for r in doc["sweeps"] if r.get("whole_sweep_failed")
        ],
    }
    return doc, v_model
