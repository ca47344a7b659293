"""The fit report figure: data vs fit (with zooms on spikes), loss curves of all
starts, parameter trajectories. Uses ``matplotlib.figure.Figure`` directly (no
pyplot state, no display needed)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fitting._data import FitData
from fitting._metrics import HYSTERESIS_MV, THRESHOLD_MV, model_trace, spike_times
from fitting._results import FitResult
from hhjax.io import write_figure_atomic

_MAX_SWEEPS = 3
_ZOOMS = 3
_ZOOM_MS = (-3.0, 7.0)


def report_figure(
    result: FitResult,
    data: FitData,
    v_model: np.ndarray,
    *,
    threshold: float = THRESHOLD_MV,
):
    """Build the report figure.

    Args:
        result: the fit.
        data: the data it was fitted to.
        v_model: the best parameters simulated on ``data`` (mV,
            ``(n_sweeps, n_samples)``, e.g. from :func:`fitting.simulate_data`);
            a sweep with a non-finite value is titled as a failed simulation.
        threshold: spike threshold for choosing the zooms, mV.

    Returns:
        A ``matplotlib.figure.Figure``.
    """
    from matplotlib.figure import Figure

    v_model = model_trace(v_model, data.v)
    n_sweeps = min(data.n_sweeps, _MAX_SWEEPS)
    n_free = len(result.free)
    param_cols = min(n_free, 4)
    param_rows = -(-n_free // param_cols)
    rows = n_sweeps + 1 + param_rows
    fig = Figure(figsize=(14, 2.6 * rows), layout="constrained")
    grid = fig.add_gridspec(rows, 4 * _ZOOMS)
    t = data.t
    for k in range(n_sweeps):
        _sweep_row(fig, grid, k, t, data, v_model, threshold)
    _loss_panel(fig.add_subplot(grid[n_sweeps, : 2 * _ZOOMS]), result)
    _spread_panel(fig.add_subplot(grid[n_sweeps, 2 * _ZOOMS :]), result)
    width = 4 * _ZOOMS // param_cols
    for j, name in enumerate(result.free):
        r, c = divmod(j, param_cols)
        ax = fig.add_subplot(grid[n_sweeps + 1 + r, c * width : (c + 1) * width])
        _trajectory_panel(ax, result, j, name)
    fig.suptitle(
        f"{result.model}: {result.loss_name} fit of {', '.join(result.free)} — best "
        f"loss {result.loss:.4g} {result.loss_unit} (start {result.best} of "
        f"{len(result.losses)})"
    )
    return fig


def _sweep_row(fig, grid, k, t, data, v_model, threshold):
    ax = fig.add_subplot(grid[k, : 2 * _ZOOMS])
    ax.plot(t, data.v[k], color="0.55", lw=0.7, label="data")
    ax.plot(t, v_model[k], color="C3", lw=0.7, label="fit (from rest)")
    masked = ~data.mask[k]
    if masked.any():
        ax.fill_between(
            t, 0, 1, where=masked, color="0.9", transform=ax.get_xaxis_transform(),
            label="not fitted",
        )  # fmt: skip
    ax.set_ylabel("V (mV)")
    ax.set_xlabel("t (ms)")
    title = f"sweep {data.sweeps[k]}"
    if not np.isfinite(v_model[k]).all():
        title += ": the model could not be simulated from rest (non-finite)"
    ax.set_title(title, fontsize=9, loc="left")
    if k == 0:
        ax.legend(loc="upper right", fontsize=8)
    spikes = spike_times(data.v[k], data.dt, threshold, HYSTERESIS_MV, t0=t[0])
    picks = spikes[
        np.linspace(0, len(spikes) - 1, min(_ZOOMS, len(spikes))).astype(int)
    ]
    for j in range(_ZOOMS):
        zoom = fig.add_subplot(grid[k, 2 * _ZOOMS + 2 * j : 2 * _ZOOMS + 2 * j + 2])
        if j >= len(picks):
            zoom.axis("off")
            continue
        sel = (t >= picks[j] + _ZOOM_MS[0]) & (t <= picks[j] + _ZOOM_MS[1])
        zoom.plot(t[sel], data.v[k, sel], color="0.55", lw=1.0)
        zoom.plot(t[sel], v_model[k, sel], color="C3", lw=1.0)
        zoom.set_title(f"spike at {picks[j]:.1f} ms", fontsize=8)
        zoom.set_xlabel("t (ms)", fontsize=7)
        if j == 0:  # the zooms of a row share the V unit of its first panel
            zoom.set_ylabel("V (mV)", fontsize=7)
        zoom.tick_params(labelsize=7)


def _stage_lines(ax, result):
    edges = np.flatnonzero(np.diff(result.stage_of)) + 0.5
    for x in edges:
        ax.axvline(x, color="0.7", ls="--", lw=0.8)


def _loss_panel(ax, result):
    history = np.where(np.isfinite(result.loss_history), result.loss_history, np.nan)
    x = np.arange(history.shape[0])
    for s in range(history.shape[1]):
        best = s == result.best
        ax.plot(
            x, history[:, s], color="C3" if best else "C0", lw=1.6 if best else 0.6,
            alpha=1.0 if best else 0.5, zorder=3 if best else 2,
        )  # fmt: skip
    positive = history[np.isfinite(history) & (history > 0)]
    if positive.size:
        ax.set_yscale("log")
    _stage_lines(ax, result)
    ax.set_xlabel("iteration (all stages; dashed: next stage)")
    ax.set_ylabel(f"loss ({result.loss_unit})")
    ax.set_title("loss of every start (red: best)", fontsize=9, loc="left")


def _spread_panel(ax, result):
    ratio = result.final_values / result.final_values[result.best]
    finite = np.isfinite(result.losses)
    for j, _name in enumerate(result.free):
        ax.scatter(
            np.full(finite.sum(), j) + np.linspace(-0.2, 0.2, finite.sum()),
            ratio[finite, j], s=10, color="C0",
        )  # fmt: skip
    ax.axhline(1.0, color="C3", lw=0.8)
    low, high = np.nanmin(ratio[finite]), np.nanmax(ratio[finite])
    ax.set_ylim(min(low, 0.99) - 0.005, max(high, 1.01) + 0.005)
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xticks(range(len(result.free)), result.free, fontsize=8)
    ax.set_ylabel("final / best")
    ax.set_title(
        "final values of all starts relative to the best", fontsize=9, loc="left"
    )


def _trajectory_panel(ax, result, j, name):
    values = result.value_history[:, :, j]
    x = np.arange(values.shape[0])
    for s in range(values.shape[1]):
        best = s == result.best
        ax.plot(
            x, values[:, s], color="C3" if best else "C0", lw=1.4 if best else 0.5,
            alpha=1.0 if best else 0.5,
        )  # fmt: skip
    if np.all(values > 0) and values.max() / values.min() > 5:
        ax.set_yscale("log")
    _stage_lines(ax, result)
    unit = result.units[j]
    ax.set_title(f"{name} ({unit})", fontsize=9, loc="left")
    ax.set_xlabel("iteration")
    ax.tick_params(labelsize=7)


def save_report(
    result: FitResult,
    data: FitData,
    v_model: np.ndarray,
    path: str | os.PathLike,
    **kwargs,
) -> Path:
    """Draw :func:`report_figure` and save it as PNG at ``path`` (which must end
    in ``.png``)."""
    fig = report_figure(result, data, v_model, **kwargs)
    return write_figure_atomic(fig, path, dpi=90)
