"""The report of a real-cell fit: overlays of data and model per sweep, f–I
curve, first-spike latency, subthreshold response and the parameter table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fitting._metrics import model_trace
from fitting.protocol._prepare import Prepared

if TYPE_CHECKING:  # annotations only: no import of the search and polish stack
    from fitting.protocol._fit_recording import RealFit

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

    v_model = model_trace(v_model, prepared.recording.v, "the prepared recording")
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
