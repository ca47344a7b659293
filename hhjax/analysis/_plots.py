"""Figures for the analysis results (matplotlib is imported only when called).

Like :mod:`hhjax.plot`, each function builds a :class:`matplotlib.figure.Figure`
directly (no pyplot, no GUI backend), returns it and never shows it.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _figure(n_rows: int, figsize: tuple[float, float], **kwargs: Any) -> tuple:
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(n_rows, 1, **kwargs)


def plot_prc(
    response: Any,
    *,
    reference: tuple[Any, Any] | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (6.0, 5.0),
) -> Any:
    """Phase response curve (top) and the orbit's V (bottom) against phase.

    Args:
        response: a :class:`hhjax.analysis.PhaseResponse`.
        reference: optional ``(phase, prc)`` arrays (cycles, cycles/mV) drawn as
            markers, e.g. a direct perturbation computation.
        title: figure title; default states the current and period.
        figsize: inches.

    Returns:
        The :class:`matplotlib.figure.Figure` (two axes).
    """
    fig, (ax, ax_v) = _figure(2, figsize, sharex=True, height_ratios=(2, 1))
    phase = np.asarray(response.phase)
    ax.plot(phase, np.asarray(response.prc), color="tab:blue", label="adjoint")
    if reference is not None:
        ax.plot(
            np.asarray(reference[0]),
            np.asarray(reference[1]),
            "o",
            ms=4,
            color="tab:red",
            label="direct perturbation",
        )
        ax.legend(loc="best", fontsize="small")
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_ylabel("phase advance per mV\n(cycles/mV)")
    ax_v.plot(phase, np.asarray(response.v), color="k", lw=1.0)
    ax_v.set_xlabel("phase (cycles, 0 = spike peak)")
    ax_v.set_ylabel("V (mV)")
    ax.set_title(
        title or f"PRC at {response.current:g} µA/cm² (period {response.period:.3f} ms)"
    )
    return fig


def plot_sensitivities(
    sensitivity: Any,
    *,
    relative: bool = True,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Any:
    """Heat map of a :class:`hhjax.analysis.Sensitivity` (features × parameters).

    Args:
        sensitivity: from :func:`hhjax.analysis.sensitivities`.
        relative: draw elasticities (default, dimensionless) or raw gradients.
        title: figure title.
        figsize: inches; default scales with the table.

    Returns:
        The :class:`matplotlib.figure.Figure`, with each cell annotated.
    """
    data = np.asarray(
        sensitivity.elasticities if relative else sensitivity.gradients, float
    )
    n_f, n_p = data.shape
    size = figsize or (1.0 + 0.9 * n_p, 1.2 + 0.6 * n_f)
    fig, ax = _figure(1, size)
    limit = float(np.nanmax(np.abs(data))) if np.any(np.isfinite(data)) else 1.0
    image = ax.imshow(data, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(n_p), sensitivity.parameters, rotation=45, ha="right")
    ax.set_yticks(range(n_f), sensitivity.features)
    for i in range(n_f):
        for j in range(n_p):
            dark = abs(data[i, j]) > 0.6 * limit
            ax.text(
                j,
                i,
                f"{data[i, j]:.2g}",
                ha="center",
                va="center",
                fontsize="x-small",
                color="white" if dark else "black",
            )
    label = "elasticity  d log f / d log p" if relative else "gradient  df/dp"
    fig.colorbar(image, ax=ax, label=label)
    if title:
        ax.set_title(title)
    return fig
