"""How well could any model score on a recording? Floors from the data alone.

For each sweep of a shipped step recording, prepared as the real-cell protocol
prepares it (``fitting.protocol.prepare``), this prints

* ``flat``: the subthreshold RMSE (mV; outside ±3 ms of spikes) of a prediction
  that is exact everywhere except over the step after its first 60 ms, where it
  is the recorded mean V (the best a model that does not place the late spikes
  can do there);
* ``neighbour``: the subthreshold RMSE (mV; outside ±3 ms of the spikes of
  either trace, as ``fitting.metrics``) of the sweep with the next smaller
  current used as the "model" of this one;
* the spike times after the step onset (ms).

Usage: ``python benchmarks/real_cell_variability.py [18711001.abf]`` (a file in
``examples/data/recordings``; ``--help`` lists them). Quoted in docs/real_cells.md ("Is ≤ 3 mV
reachable?").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import numpy as np

from fitting import protocol
from fitting._metrics import SPIKE_EXCLUSION_MS, spike_times
from hhjax.recordings import load_recording

jax.config.update("jax_enable_x64", True)

RECORDINGS = Path(__file__).resolve().parents[1] / "examples" / "data" / "recordings"
SETTLE_MS = 60.0  # the "late" step starts this long after the onset, ms


def outside_spikes(t: np.ndarray, *spike_lists: np.ndarray) -> np.ndarray:
    """Samples farther than ``SPIKE_EXCLUSION_MS`` from every spike, ``(T,)``."""
    keep = np.ones(t.size, bool)
    for spikes in spike_lists:
        for s in spikes:
            keep &= np.abs(t - s) > SPIKE_EXCLUSION_MS
    return keep


def flat_floor(t, v, spikes, step) -> float:
    """RMSE (mV) of the data's own mean over the late step, zero error elsewhere."""
    keep = outside_spikes(t, spikes)
    late = keep & (t >= step[0] + SETTLE_MS) & (t < step[1])
    error = np.where(late, v - v[late].mean(), 0.0)
    return float(np.sqrt(np.mean(error[keep] ** 2)))


def neighbour_rmse(t, v, v_other, spikes, spikes_other) -> float:
    """RMSE (mV) of ``v_other`` as a prediction of ``v``, outside both spikes."""
    keep = outside_spikes(t, spikes, spikes_other)
    return float(np.sqrt(np.mean((v - v_other)[keep] ** 2)))


def _parse(argv: list[str] | None) -> str:
    """The recording's file name, or a ``parser.error``."""
    available = sorted(p.name for p in RECORDINGS.glob("*.abf"))
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=f"recordings in {RECORDINGS}: {', '.join(available)}",
    )
    parser.add_argument(
        "recording",
        nargs="?",
        default="18711001.abf",
        help="file name in the recordings folder (default %(default)s)",
    )
    name = parser.parse_args(argv).recording
    if name not in available:
        parser.error(f"no recording {name!r}; choose from {', '.join(available)}")
    return name


def main(argv: list[str] | None = None) -> int:
    name = _parse(argv)
    prepared = protocol.prepare(load_recording(RECORDINGS / name))
    rec = prepared.recording
    t, step = rec.t, prepared.step
    spikes = [spike_times(row, rec.dt, t0=rec.t0) for row in rec.v]
    order = np.argsort(prepared.amplitudes, kind="stable")
    print(f"{name}: sweep, current (pA), flat (mV), neighbour (mV), spike times (ms)")
    for j, k in enumerate(order):
        flat = flat_floor(t, rec.v[k], spikes[k], step)
        near = np.nan
        if j > 0:
            below = order[j - 1]
            near = neighbour_rmse(t, rec.v[k], rec.v[below], spikes[k], spikes[below])
        after = spikes[k][spikes[k] >= step[0]] - step[0]
        times = " ".join(f"{x:.0f}" for x in after)
        print(
            f"{rec.sweeps[k]:3d} {prepared.amplitudes[k]:7.0f} {flat:6.2f} "
            f"{near:6.2f}  {times}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
