"""Agreement checks: does a tool compute the benchmark problem, to the accuracy of
its method?

Forward workloads (W1–W3). Each tool's trace is reduced to a summary
(:func:`summarize_trace`) of up to ``REFERENCE_CELLS`` cells spread over the batch:
every spike time (upward 0 mV crossings, linearly interpolated) and V at
``V_TIMES_MS``. It is compared (:func:`compare_summaries`) with the same summary of
an independent reference, SciPy's DOP853 at rtol 1e-10 on the NumPy model of
``_problem.py`` (:func:`reference_summary`), under the tolerance of the tool's
accuracy class (``TOLERANCES``):

* V at each of ``V_TIMES_MS`` (before the first spike and in the slow recovery
  after it, where a first-order method at dt = 0.025 ms stays within 0.3 mV of
  the reference but a wrong E_L, gNa or current does not) within ``v_mv``;
* the i-th spike within ``spike_ms + drift · t`` of the reference's i-th spike
  (first-spike time, then the firing rate, to ``drift`` relative);
* spike counts equal, except for spikes so close to the end of the trace that
  the allowed shift could move them past it (a relative slack, not a fixed one).

Gradient workloads (W4, W5): the loss and its gradient are compared with central
finite differences of the same loss computed by the NumPy model with the tool's
own scheme (:func:`reference_gradient`), to ``GRADIENT_RTOL`` per component; a
tool whose scheme has no NumPy counterpart is reported without a check.

NumPy only (the Brian2 worker imports this module for :func:`summarize_trace`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import _problem as problem  # benchmarks/ is on sys.path (run as a script)
import numpy as np

REFERENCE_CELLS = 16  # cells of a batch that are checked (spread evenly)
V_TIMES_MS = (0.5, 1.0, 8.0)  # ms: before the first spike (~1.9 ms), and after
REFERENCE_RTOL = 1e-10
# Autodiff against these finite differences (same scheme): 3e-9 (W4 --quick),
# 1.4e-8 (W5 --quick), 4.3e-7 (W5, 10^6 steps); losses to 1e-14.
GRADIENT_RTOL = 1e-5
FD_REL_STEP = 1e-6  # finite-difference step, relative to each conductance


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """What a correct method of one accuracy class reaches at dt = 0.025 ms.

    Attributes:
        v_mv: largest |ΔV| at ``V_TIMES_MS``, mV.
        spike_ms: largest shift of the first spike, ms.
        drift: largest further shift per ms of trace (relative rate error).
    """

    v_mv: float
    spike_ms: float
    drift: float

    def describe(self) -> str:
        return f"{self.v_mv:g} mV, {self.spike_ms:g} ms + {100 * self.drift:g} %·t"


# Order 1: first-order schemes (forward, implicit and exponential Euler variants).
# NumPy versions of four of them (hhjax's, Jaxley's, Brian2's and NEURON's order of
# updates) on the checked cells of W2 --quick, against DOP853: |ΔV| ≤ 0.3 mV,
# first spike ≤ 0.09 ms late, rate ≤ 3 % slow (Brian2's, cells with gNa near 100).
# A wrong model is farther off: E_L −60 mV |ΔV(1 ms)| ≥ 1.6 mV, 11 µA/cm² ≥ 0.9 mV,
# gNa × 110/120 a rate ≥ 6.5 % slower. Order 4: rk4 (|ΔV| ~3e-6 mV).
TOLERANCES = {1: Tolerance(0.5, 0.15, 0.04), 4: Tolerance(0.01, 0.01, 0.001)}


# ------------------------------------------------------------------- summaries
def spike_times(v: np.ndarray) -> list[np.ndarray]:
    """Upward crossings of ``SPIKE_THRESHOLD`` per column, ms (linear interpolation).

    Args:
        v: membrane potential, mV, shape ``(steps, columns)``, sample ``k`` at
            ``t = k · DT``.
    """
    out = []
    threshold = problem.SPIKE_THRESHOLD
    for col in np.asarray(v, dtype=float).T:
        k = np.flatnonzero((col[:-1] < threshold) & (col[1:] >= threshold))
        frac = (threshold - col[k]) / (col[k + 1] - col[k])
        out.append((k + frac) * problem.DT)
    return out


def reference_cells(cells: int) -> np.ndarray:
    """Indices of the checked cells: up to ``REFERENCE_CELLS``, first and last
    included, evenly spread."""
    n = min(cells, REFERENCE_CELLS)
    return np.unique(np.round(np.linspace(0, cells - 1, n)).astype(int))


def summarize_trace(v: Any, cells: np.ndarray | None = None) -> dict[str, Any]:
    """What the agreement check compares (see the module docstring).

    Args:
        v: membrane potential, mV, shape ``(steps,)`` or ``(steps, columns)``.
        cells: the batch indices of ``v``'s columns when ``v`` holds only the
            checked cells (the reference); ``None`` when it holds the whole batch.
    """
    v = np.asarray(v, dtype=float)
    v = v.reshape(v.shape[0], -1)
    total = None
    if cells is None:
        cells = reference_cells(v.shape[1])
        above = v >= problem.SPIKE_THRESHOLD
        total = int(np.count_nonzero(~above[:-1] & above[1:]))
        v = v[:, cells]
    samples = {f"{t:g}": int(round(t / problem.DT)) for t in V_TIMES_MS}
    return {
        "cells": [int(c) for c in cells],
        "steps": int(v.shape[0]),
        "finite": bool(np.isfinite(v).all()),
        "spikes": [s.tolist() for s in spike_times(v)],
        "v_at_ms": {t: v[k].tolist() for t, k in samples.items() if k < v.shape[0]},
        "total_spikes": total,
    }


def reference_summary(wl: problem.Workload) -> dict[str, Any]:
    """:func:`summarize_trace` of DOP853 (rtol ``REFERENCE_RTOL``) on the checked
    cells of ``wl``."""
    cells = reference_cells(wl.cells)
    cell = problem.Cell(g_na=problem.g_na_batch(wl.cells)[cells])
    return summarize_trace(problem.dop853_trace(cell, wl.steps, REFERENCE_RTOL), cells)


# ----------------------------------------------------------------- comparisons
def _train_error(s: np.ndarray, r: np.ndarray, tol: Tolerance, end: float) -> tuple:
    """Compare one cell's spike times ``s`` with the reference's ``r`` (ms).

    Returns:
        ``(worst, unexplained)``: the largest shift of a matched spike as a fraction
        of its allowance (> 1 fails), and the number of unmatched spikes (either
        side) earlier than the allowed shift from the end of the trace ``end`` ms.
    """
    m = min(s.size, r.size)
    allowed = tol.spike_ms + tol.drift * r[:m]
    worst = float(np.max(np.abs(s[:m] - r[:m]) / allowed, initial=0.0))
    extra = np.concatenate([s[m:], r[m:]])
    window = tol.spike_ms + tol.drift * end
    return worst, int(np.count_nonzero(extra < end - window))


def compare_summaries(summary: dict, reference: dict, order: int) -> tuple[bool, str]:
    """Agreement of one tool's summary with the reference's (module docstring).

    Args:
        summary, reference: from :func:`summarize_trace` / :func:`reference_summary`.
        order: the tool's accuracy class, a key of ``TOLERANCES``.

    Returns:
        ``(ok, note)``; the note gives the numbers either way.
    """
    tol = TOLERANCES[order]
    if (summary["cells"], summary["steps"]) != (reference["cells"], reference["steps"]):
        return False, "not the reference's cells or steps"
    if not summary["finite"]:
        return False, "non-finite V"
    end = (summary["steps"] - 1) * problem.DT
    worst, unexplained, n, n_ref = 0.0, 0, 0, 0
    for s, r in zip(summary["spikes"], reference["spikes"], strict=True):
        w, u = _train_error(np.asarray(s), np.asarray(r), tol, end)
        worst, unexplained = max(worst, w), unexplained + u
        n, n_ref = n + len(s), n_ref + len(r)
    dv = max(
        (
            float(np.max(np.abs(np.subtract(summary["v_at_ms"][t], v_ref))))
            for t, v_ref in reference["v_at_ms"].items()
        ),
        default=0.0,
    )
    failed = [
        what
        for what, bad in (
            ("spike shift", worst > 1.0),
            (f"{unexplained} spike(s) missing or extra", unexplained > 0),
            ("ΔV", dv > tol.v_mv),
        )
        if bad
    ]
    where = f"{len(summary['cells'])} cells: " if len(summary["cells"]) > 1 else ""
    note = (
        f"{where}{n} spikes (ref {n_ref}), worst spike shift {100 * worst:.0f} % of "
        f"allowed, largest ΔV {dv:.2g} mV; order {order}: {tol.describe()}"
    )
    if failed:
        note += "; off: " + ", ".join(failed)
    return not failed, note


# ------------------------------------------------------------------ gradients
def reference_gradient(steps: int, scheme: str) -> tuple[float, np.ndarray]:
    """Loss ``Σ (V − V_target)²`` (mV²) at (gNa, gK, gL) = (G_NA, G_K, G_L) and its
    gradient (mV² per mS/cm²) by central differences, from the NumPy model with
    ``scheme`` (``_problem.SCHEMES``); all 8 runs in one vectorised loop."""
    g0, target = np.array([problem.G_NA, problem.G_K, problem.G_L]), problem.TARGET_G
    h = FD_REL_STEP * g0
    columns = [np.asarray(target), g0]
    for i in range(3):
        columns += [g0 + h[i] * np.eye(3)[i], g0 - h[i] * np.eye(3)[i]]
    g = np.array(columns).T
    v = problem.trace(problem.Cell(g_na=g[0], g_k=g[1], g_l=g[2]), steps, scheme)
    loss = np.sum((v[:, 1:] - v[:, :1]) ** 2, axis=0)
    return float(loss[0]), (loss[1::2] - loss[2::2]) / (2.0 * h)


def compare_gradient(value: Any, reference: Any) -> tuple[bool, str]:
    """A loss or gradient against the reference, relative error per component.

    Returns:
        ``(ok, note)``: ok when every component is within ``GRADIENT_RTOL``.
    """
    value, reference = np.atleast_1d(value), np.atleast_1d(reference)
    scale = np.maximum(np.abs(reference), np.finfo(float).tiny)
    rel = float(np.max(np.abs(value - reference) / scale))
    return rel <= GRADIENT_RTOL, f"{rel:.1e}"
