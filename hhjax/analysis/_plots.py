"""Figures for the analysis results (matplotlib is imported only when called).

Like :mod:`hhjax.plot`, each function builds a :class:`matplotlib.figure.Figure`
directly (no pyplot, no GUI backend), returns it and never shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_PRC_FIELDS = ("phase", "prc", "v", "period", "current")
_SENSITIVITY_FIELDS = ("features", "parameters", "gradients", "elasticities")


def _figure(n_rows: int, figsize: tuple[float, float], **kwargs: Any) -> tuple:
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(n_rows, 1, **kwargs)


def plot_prc(
    response: Any,
    *,
    reference: tuple[Any, Any] | None = None,
    convention: str | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (6.0, 5.0),
) -> Any:
    """Phase response curve (top) and the orbit's V (bottom) against phase.

    Args:
        response: a :class:`hhjax.analysis.PhaseResponse`.
        reference: optional ``(phase, prc)`` arrays (cycles, cycles/mV) drawn as
            markers, e.g. a direct perturbation computation.
        convention: voltage convention of the parameters the PRC was computed
            for, ``"modern"`` or ``"hh1952"``, stated on the V axis (``None``:
            plain mV). The PRC, per mV of a kick, is the same in both.
        title: figure title; default states the current and period.
        figsize: inches.

    Returns:
        The :class:`matplotlib.figure.Figure` (two axes).

    Raises:
        TypeError: ``response`` is not a ``PhaseResponse`` (lacks its fields).
        ValueError: an unknown ``convention``.
    """
    from hhjax.plot import _require_fields, _v_label

    _require_fields(
        response,
        "response",
        _PRC_FIELDS,
        "a PhaseResponse from hhjax.analysis.phase_response_curve",
    )
    v_label = _v_label(convention)
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
    ax_v.set_ylabel(v_label)
    ax.set_title(
        title or f"PRC at {response.current:g} µA/cm² (period {response.period:.3f} ms)"
    )
    return fig


def _columns(sensitivity: Any, parameters: Sequence[str] | None) -> list[int]:
    """Indices of ``parameters`` (default: all) among the sensitivity's."""
    if parameters is None:
        return list(range(len(sensitivity.parameters)))
    if isinstance(parameters, str):
        parameters = (parameters,)
    unknown = [p for p in parameters if p not in sensitivity.parameters]
    if unknown or not parameters:
        raise ValueError(
            f"`parameters` must be names among {tuple(sensitivity.parameters)}; got "
            f"{tuple(parameters)}."
        )
    return [sensitivity.parameters.index(p) for p in parameters]


def plot_sensitivities(
    sensitivity: Any,
    *,
    relative: bool = True,
    parameters: Sequence[str] | None = None,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Any:
    """Heat map of a :class:`hhjax.analysis.Sensitivity` (features × parameters).

    Each cell is annotated with its value. Elasticities (``relative=True``) are
    dimensionless and share one colour scale; they are meaningful for parameters
    with a natural zero (conductances, capacitance, time constants), not for
    reversal potentials, voltage shifts or the temperature in °C, whose cells are
    blank and marked ``n/a`` (see :class:`hhjax.analysis.Sensitivity`): plot
    those with ``relative=False``.
    Gradients (``relative=False``) have different units in each column (feature
    unit per parameter unit: e.g. ms per mV, ms per °C), so each column is
    coloured on its own scale (by the gradient over the column's largest
    magnitude) and the annotations give the gradients themselves.

    Args:
        sensitivity: from :func:`hhjax.analysis.sensitivities`.
        relative: draw elasticities (default, dimensionless) or raw gradients.
        parameters: the columns to draw, by name (default: all), e.g. only the
            conductances for elasticities and only the reversal potentials for
            gradients.
        title: figure title.
        figsize: inches; default scales with the table.

    Returns:
        The :class:`matplotlib.figure.Figure`, with each cell annotated.

    Raises:
        TypeError: ``sensitivity`` is not a ``Sensitivity`` (lacks its fields).
        ValueError: ``parameters`` names a parameter the sensitivity lacks.
    """
    from hhjax.plot import _require_fields

    _require_fields(
        sensitivity,
        "sensitivity",
        _SENSITIVITY_FIELDS,
        "a Sensitivity from hhjax.analysis.sensitivities",
    )
    columns = _columns(sensitivity, parameters)
    values = sensitivity.elasticities if relative else sensitivity.gradients
    data = np.asarray(values, float)[:, columns]
    names = [sensitivity.parameters[j] for j in columns]
    colours = data if relative else _per_column(data)
    n_f, n_p = data.shape
    size = figsize or (2.5 + 0.9 * n_p, 1.5 + 0.6 * n_f)
    fig, ax = _figure(1, size)
    finite = np.isfinite(colours)
    limit = float(np.max(np.abs(colours[finite]))) if finite.any() else 1.0
    image = ax.imshow(colours, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(n_p), names, rotation=45, ha="right")
    ax.set_yticks(range(n_f), sensitivity.features)
    for i in range(n_f):
        for j in range(n_p):
            dark = abs(colours[i, j]) > 0.6 * limit
            ax.text(
                j,
                i,
                "n/a" if np.isnan(data[i, j]) else f"{data[i, j]:.2g}",
                ha="center",
                va="center",
                fontsize="x-small",
                color="white" if dark else "black",
            )
    label = (
        "elasticity  d log f / d log p"
        if relative
        else "df/dp over the column's largest |df/dp|\n(numbers: df/dp)"
    )
    fig.colorbar(image, ax=ax, label=label)
    if title:
        ax.set_title(title)
    return fig


def _per_column(data: np.ndarray) -> np.ndarray:
    """Each column divided by its largest finite magnitude (columns of zeros or
    non-finite values stay as they are)."""
    finite = np.where(np.isfinite(data), np.abs(data), 0.0)
    scale = finite.max(axis=0)
    return data / np.where(scale > 0, scale, 1.0)
