"""Spikes, latencies and rheobase of prepared sweeps, and the choice of training sweeps
(step 2 of the recipe in :mod:`fitting.protocol`). Times in ms, V in mV, currents in
pA.
"""

from __future__ import annotations

import numpy as np

from fitting._metrics import spike_times
from fitting.protocol._prepare import Prepared


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
    recording's window), ``(n_sweeps, n_steps)``; as :func:`spike_counts`.
    ``v``: V in mV, ``(n_sweeps, n_samples)`` (default: the recording's)."""
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
    the step). ``v``: V in mV, ``(n_sweeps, n_samples)`` (default: the
    recording's)."""
    rec = prepared.recording
    v = rec.v if v is None else v
    out = []
    for row in v:
        times = _in_step(spike_times(row, rec.dt, t0=rec.t0), prepared)
        out.append(times[0] - prepared.step[0] if times.size else np.nan)
    return np.array(out)


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
