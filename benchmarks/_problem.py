"""The common benchmark problem, timing and memory helpers. NumPy only.

Every tool simulates the same cell: standard Hodgkin–Huxley in the modern convention
(rest ≈ −65 mV; gNa 120, gK 36, gL 0.3 mS/cm²; ENa 50, EK −77, EL −54.387 mV;
Cm 1 µF/cm²; 6.3 °C), a constant 10 µA/cm² from t = 0, dt = 0.025 ms, every gate at
its steady state for V = −65 mV at t = 0. Batches draw gNa uniformly in
[100, 140] mS/cm² with a fixed seed, everything else equal.

This module must import with NumPy alone: the Brian2 worker runs it in a separate
virtual environment without JAX.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

# The cell (modern convention; units in the module docstring).
G_NA, G_K, G_L = 120.0, 36.0, 0.3  # mS/cm^2
E_NA, E_K, E_L = 50.0, -77.0, -54.387  # mV
C_M = 1.0  # uF/cm^2
TEMPERATURE = 6.3  # degC
V0 = -65.0  # mV, initial V; gates start at their steady state there
I_EXT = 10.0  # uA/cm^2, constant from t = 0
DT = 0.025  # ms
G_NA_RANGE = (100.0, 140.0)  # mS/cm^2, batch draw
SEED = 0
# W4/W5: loss sum((V - V_target)^2) over the trace, d/d(gNa, gK, gL) at the
# defaults; V_target simulated with these conductances (mS/cm^2).
TARGET_G = (110.0, 40.0, 0.25)
SPIKE_THRESHOLD = 0.0  # mV, upward crossing


@dataclasses.dataclass(frozen=True)
class Workload:
    """One benchmark workload.

    Attributes:
        name: ``"W1"`` … ``"W5"``.
        cells: number of cells (batch size).
        steps: number of time steps of ``DT`` ms.
        gradient: whether the workload times a gradient (W4, W5) rather than a
            forward simulation.
        title: one-line description for the report.
    """

    name: str
    cells: int
    steps: int
    gradient: bool
    title: str

    @property
    def neuron_steps(self) -> int:
        return self.cells * self.steps

    @property
    def duration_ms(self) -> float:
        return self.steps * DT


_FULL = {
    "W1": (1, 100_000, False, "one cell, 10^5 steps (2.5 s)"),
    "W2": (1_000, 10_000, False, "10^3 cells (gNa batch), 10^4 steps"),
    "W3": (10_000, 10_000, False, "10^4 cells (gNa batch), 10^4 steps"),
    "W4": (1, 10_000, True, "gradient of a trace loss w.r.t. gNa, gK, gL, 10^4 steps"),
    "W5": (1, 1_000_000, True, "the same gradient over 10^6 steps"),
}
_QUICK = {
    "W1": (1, 10_000, False, "one cell, 10^4 steps (quick)"),
    "W2": (256, 2_000, False, "256 cells, 2000 steps (quick)"),
    "W3": (2_048, 2_000, False, "2048 cells, 2000 steps (quick)"),
    "W4": (1, 2_000, True, "gradient w.r.t. gNa, gK, gL, 2000 steps (quick)"),
    "W5": (1, 50_000, True, "the same gradient, 5 x 10^4 steps (quick)"),
}


def workloads(quick: bool) -> dict[str, Workload]:
    """The workloads of a full or a ``--quick`` run, by name."""
    table = _QUICK if quick else _FULL
    return {k: Workload(k, *v) for k, v in table.items()}


def g_na_batch(cells: int) -> np.ndarray:
    """gNa of each cell, mS/cm², shape ``(cells,)``; 120 for a single cell."""
    if cells == 1:
        return np.array([G_NA])
    return np.random.default_rng(SEED).uniform(*G_NA_RANGE, cells)


def rates(v: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(α_m, β_m, α_h, β_h, α_n, β_n)`` in 1/ms at ``v`` mV (6.3 °C)."""
    v = np.asarray(v, dtype=float)
    return (
        0.1 * (v + 40.0) / -np.expm1(-(v + 40.0) / 10.0),
        4.0 * np.exp(-(v + 65.0) / 18.0),
        0.07 * np.exp(-(v + 65.0) / 20.0),
        1.0 / (1.0 + np.exp(-(v + 35.0) / 10.0)),
        0.01 * (v + 55.0) / -np.expm1(-(v + 55.0) / 10.0),
        0.125 * np.exp(-(v + 65.0) / 80.0),
    )


def initial_state(v: float = V0) -> tuple[float, float, float, float]:
    """``(V, m, h, n)`` with every gate at its steady state for ``v`` mV."""
    am, bm, ah, bh, an, bn = (float(r) for r in rates(np.array(v)))
    return v, am / (am + bm), ah / (ah + bh), an / (an + bn)


# ------------------------------------------------------------------ agreement
def spike_times(v: np.ndarray) -> list[np.ndarray]:
    """Upward crossings of ``SPIKE_THRESHOLD`` per cell, ms (linear interpolation).

    Args:
        v: membrane potential, mV, shape ``(steps,)`` or ``(steps, cells)``, sample
            ``k`` at ``t = k · DT``.
    """
    v = np.asarray(v, dtype=float)
    v = v.reshape(v.shape[0], -1)
    out = []
    for col in v.T:
        k = np.flatnonzero((col[:-1] < SPIKE_THRESHOLD) & (col[1:] >= SPIKE_THRESHOLD))
        frac = (SPIKE_THRESHOLD - col[k]) / (col[k + 1] - col[k])
        out.append((k + frac) * DT)
    return out


def summarize_trace(v: np.ndarray) -> dict[str, Any]:
    """What the agreement check compares: spike counts per cell, the first spike
    time and V at fixed times of cell 0.

    Args:
        v: membrane potential, mV, shape ``(steps,)`` or ``(steps, cells)``.
    """
    v = np.asarray(v, dtype=float)
    v = v.reshape(v.shape[0], -1)
    spikes = spike_times(v)
    fixed = {f"{t:g}": float(v[int(round(t / DT)), 0]) for t in (0.5, 1.0) if
             int(round(t / DT)) < v.shape[0]}
    first = spikes[0]
    return {
        "counts": [int(s.size) for s in spikes],
        "first_spike_ms": float(first[0]) if first.size else None,
        "mean_isi_ms": float(np.mean(np.diff(first))) if first.size > 1 else None,
        "v_at_ms": fixed,
    }


def compare_summaries(summary: dict, reference: dict) -> tuple[bool, str]:
    """Agreement of one tool with a reference summary (see :func:`summarize_trace`).

    A tool agrees when the total spike count is within 2 % (at least 1 spike) of the
    reference, at least 95 % of cells are within 2 % (at least 1 spike) of their
    reference count, and the first spike of cell 0 is within 0.25 ms. The note
    gives the numbers either way.
    """
    a, b = np.asarray(summary["counts"]), np.asarray(reference["counts"])
    if a.shape != b.shape:
        return False, f"{a.size} cells vs {b.size}"
    total, ref_total = int(a.sum()), int(b.sum())
    close = float(np.mean(np.abs(a - b) <= np.maximum(1, 0.02 * b)))
    ok = abs(total - ref_total) <= max(1, 0.02 * ref_total) and close >= 0.95
    parts = [f"{total} spikes (ref {ref_total})"]
    if a.size > 1:
        parts.append(f"{100 * close:.0f}% of cells within 2%")
    t1, t1_ref = summary["first_spike_ms"], reference["first_spike_ms"]
    if t1 is not None and t1_ref is not None:
        ok &= abs(t1 - t1_ref) <= 0.25
        parts.append(f"1st {t1:.3f} ms")
    elif (t1 is None) != (t1_ref is None):
        ok = False
    dv = [abs(summary["v_at_ms"][k] - reference["v_at_ms"][k])
          for k in reference["v_at_ms"] if k in summary["v_at_ms"]]
    if dv:
        parts.append(f"|ΔV(≤1 ms)| {max(dv):.2g} mV")
    return bool(ok), ", ".join(parts)


# ------------------------------------------------------------- timing, memory
def _rss_bytes() -> int:
    """Resident set size of this process, bytes (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class PeakMemory:
    """Peak RSS above the level at entry while the block runs, sampled every ms.

    Attributes:
        peak_mb: the peak increase, MB (10^6 bytes), after the block exits.
    """

    def __init__(self, interval_s: float = 0.001) -> None:
        self.interval_s = interval_s
        self.peak_mb = 0.0

    def __enter__(self) -> PeakMemory:
        gc.collect()
        self._base = _rss_bytes()
        self._peak = self._base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, _rss_bytes())
            time.sleep(self.interval_s)

    def __exit__(self, *exc: object) -> None:
        self._peak = max(self._peak, _rss_bytes())
        self._stop.set()
        self._thread.join()
        self.peak_mb = (self._peak - self._base) / 1e6


@dataclasses.dataclass
class Timing:
    """Measured cost of one tool on one workload.

    Attributes:
        first_s: wall time of the first call (compilation, JIT or model set-up
            included), s.
        times_s: wall times of the later calls, s.
        cpu_s: process CPU times of the later calls (all threads), s.
        peak_mb: peak RSS increase during the first timed call, MB.
        result: what the last call returned.
    """

    first_s: float
    times_s: list[float]
    cpu_s: list[float]
    peak_mb: float
    result: Any = None

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    @property
    def overhead_s(self) -> float:
        """First call minus a later one: compilation / set-up, s."""
        return max(0.0, self.first_s - self.median_s)


def _timed(fn: Callable[[], Any], block: Callable[[Any], Any]) -> tuple:
    c0, t0 = time.process_time(), time.perf_counter()
    out = block(fn())
    return out, time.perf_counter() - t0, time.process_time() - c0


def time_tools(
    tools: dict[str, Callable[[], Any]],
    repeats: int,
    block: Callable[[Any], Any] = lambda x: x,
    slow_s: float = 5.0,
    fast_s: float = 0.05,
) -> dict[str, Timing]:
    """Time several tools on the same workload, interleaving their repeats.

    Each tool is called once (first call, e.g. compilation), once more under
    :class:`PeakMemory`, then more times in round-robin order with the other tools,
    so that load changes on a shared machine hit all alike: ``repeats`` timed calls
    in all, 5 × ``repeats`` for a tool whose warm call took less than ``fast_s``,
    and one only for a tool whose first call took longer than ``slow_s``.

    Args:
        tools: name → zero-argument callable running the whole workload.
        repeats: timed calls per tool (≥ 1).
        block: applied to each result before the clock stops (e.g. wait for an
            asynchronous JAX result).
        slow_s, fast_s: see above, s.
    """
    first, timings, wanted = {}, {}, {}
    for name, fn in tools.items():
        out, wall, _ = _timed(fn, block)
        first[name] = wall
        del out
        gc.collect()
        with PeakMemory() as mem:
            out, wall, cpu = _timed(fn, block)
        timings[name] = Timing(first[name], [wall], [cpu], mem.peak_mb, out)
        del out
        wanted[name] = (1 if first[name] > slow_s
                        else 5 * repeats if wall < fast_s else repeats)
    for _ in range(max(wanted.values()) - 1):
        for name, fn in tools.items():
            if len(timings[name].times_s) >= wanted[name]:
                continue
            out, wall, cpu = _timed(fn, block)
            timings[name].times_s.append(wall)
            timings[name].cpu_s.append(cpu)
            timings[name].result = out
            del out
    return timings


def machine_info() -> dict[str, str]:
    """CPU model, core count, memory and load average of this machine."""
    info = {"cores": str(os.cpu_count())}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/cpuinfo") as f:
            flags = next((ln for ln in f if ln.startswith("flags")), "")
        info["avx512"] = "yes" if " avx512f" in flags else "no"
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        info["memory"] = f"{kb / 2**20:.0f} GiB"
        info["load average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (OSError, ValueError, IndexError):
        pass
    return info


def fmt_rate(neuron_steps: float, seconds: float) -> str:
    """Neuron-steps per second, e.g. ``"42.0 M"``."""
    rate = neuron_steps / seconds if seconds > 0 else math.inf
    return f"{rate / 1e6:.3g} M" if rate >= 1e5 else f"{rate / 1e3:.3g} k"
