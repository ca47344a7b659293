"""Matplotlib figures of traces, phase planes and f–I curves.

Every function builds a :class:`matplotlib.figure.Figure` directly (no pyplot, no
global state, no GUI backend needed), returns it, and never shows it: save it with
``fig.savefig("trace.png")`` or display it in a notebook. The numerical core never
imports this module.

Traces are those of :func:`hhjax.simulate` for any model (fields ``t``, ``v``, the
gates, then the currents ``i_*``); a batched trace (fields ``(samples, *batch)``) is
plotted one cell at a time, chosen with ``cell=``. Units: t in ms, V in mV, currents
in µA/cm² (ionic currents outward positive, the injected current inward positive),
rates in Hz. V is plotted as simulated, in the convention of the parameters that
produced it; pass ``convention="modern"`` (absolute V: rest ≈ −65 mV for squid HH,
≈ −70 mV for the cortical models) or ``"hh1952"`` (V from rest, rest at 0 mV) to
state it on the axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from jax.typing import ArrayLike
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hhjax._model import model_of

__all__ = ["plot_fi", "plot_phase_plane", "plot_trace"]

Cell = int | tuple[int, ...] | None

_V_LABELS = {
    None: "V (mV)",
    "modern": "V (mV)\nmodern convention",
    "hh1952": "V (mV)\nHH 1952: from rest",
}
# Channel name in "i_<name>" -> how to write the ion on an axis.
_CHANNEL_LABELS = {"na": "Na", "k": "K", "kd": "Kd", "l": "leak", "m": "M"}
_PHASE_VIEWS = ("gates", "dvdt")


# ------------------------------------------------------------------------ helpers
def _v_label(convention: str | None) -> str:
    if convention not in _V_LABELS:
        raise ValueError(
            f"`convention` must be None, 'modern' or 'hh1952'; got {convention!r}."
        )
    return _V_LABELS[convention]


def _channel_label(field: str) -> str:
    name = field[2:]
    return f"$I_{{\\mathrm{{{_CHANNEL_LABELS.get(name, name)}}}}}$"


def _split_fields(trace: Any) -> tuple[list[str], list[str]]:
    """Names of the recorded gate fields and current fields of a trace tuple."""
    if not (hasattr(trace, "_fields") and "t" in trace._fields):
        raise TypeError(
            "`trace` must be a trace tuple from hhjax.simulate (fields t, v, gates, "
            f"currents); got {type(trace).__name__}."
        )
    recorded = [f for f in trace._fields if getattr(trace, f) is not None]
    gates = [f for f in recorded if f not in ("t", "v") and not f.startswith("i_")]
    currents = [f for f in recorded if f.startswith("i_")]
    return gates, currents


def _normalise_cell(cell: Cell) -> tuple[int, ...] | None:
    if cell is None:
        return None
    if isinstance(cell, (int, np.integer)):
        return (int(cell),)
    if isinstance(cell, tuple) and all(isinstance(i, (int, np.integer)) for i in cell):
        return tuple(int(i) for i in cell)
    raise TypeError(
        f"`cell` must be an integer or a tuple of integers (an index into the "
        f"batch); got {cell!r}."
    )


def _one_cell(values: ArrayLike, cell: Cell, name: str) -> np.ndarray:
    """``values[:, *cell]`` as a 1-D float array (samples,); checks the index.

    An unbatched array, or one whose batch holds a single cell, needs no ``cell``.
    """
    x = np.asarray(values, dtype=float)
    batch = x.shape[1:]
    index = _normalise_cell(cell)
    if index is None:
        if int(np.prod(batch)) != 1:
            raise ValueError(
                f"`{name}` has batch shape {batch}: pass `cell=` (an index tuple of "
                f"length {len(batch)}) to choose the cell to plot."
            )
        return x.reshape(x.shape[0])
    if len(index) != len(batch) or any(
        not -n <= i < n for i, n in zip(index, batch, strict=True)
    ):
        raise ValueError(
            f"`cell` {index} is not an index into the batch shape {batch} of `{name}`."
        )
    return x[(slice(None), *index)]


def _trace_time(trace: Any) -> np.ndarray:
    t = np.asarray(trace.t, dtype=float)
    if t.ndim != 1 or t.size < 1:
        raise ValueError(f"`trace.t` must have shape (samples,); got {t.shape}.")
    return t


def _stimulus_edges(t: np.ndarray, n_steps: int) -> np.ndarray:
    """Step edges (ms) of a current with ``n_steps`` samples over the trace's span.

    The trace may be recorded every ``stride`` steps, so ``n_steps`` must be a
    whole multiple of the number of samples.
    """
    stride, rest = divmod(n_steps, t.size)
    if rest or stride < 1:
        raise ValueError(
            f"`i_ext` has {n_steps} time steps, not a whole multiple of the trace's "
            f"{t.size} samples."
        )
    dt = (t[1] - t[0]) / stride if t.size > 1 else 1.0
    return t[0] + dt * np.arange(n_steps + 1)


def _new_figure(n_axes: int, figsize: tuple[float, float], *, sharex: bool) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    fig.subplots(n_axes, 1, sharex=sharex, squeeze=False)
    return fig


# ------------------------------------------------------------------------ figures
def plot_trace(
    trace: Any,
    i_ext: ArrayLike | None = None,
    *,
    cell: Cell = None,
    convention: str | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (8.0, 8.0),
) -> Figure:
    """pyHH's classic figure: V, stimulus, gates and currents against time.

    One panel per available quantity, top to bottom: membrane potential (if
    recorded), injected current (if ``i_ext`` is given), gates (those recorded),
    ionic currents (those recorded) — four panels for a full trace with ``i_ext``.

    Args:
        trace: a trace tuple from :func:`hhjax.simulate` (e.g. :class:`hhjax.Trace`):
            ``t`` in ms ``(samples,)``, fields ``(samples, *batch)``.
        i_ext: the injected current that produced it, µA/cm² (inward positive),
            shape ``(steps,)`` or ``(steps, *batch)``; ``steps`` may be a multiple
            of ``samples`` (a trace recorded with ``stride``).
        cell: index into the batch shape of the cell to plot (an int for a 1-D
            batch); not needed for an unbatched trace.
        convention: ``"modern"`` or ``"hh1952"`` to state the voltage convention
            on the V axis; ``None`` writes plain mV.
        title: figure title.
        figsize: inches.

    Returns:
        The figure; its axes share the time axis.

    Raises:
        TypeError: ``trace`` is not a trace tuple, or ``cell`` not an integer or
            a tuple of integers.
        ValueError: a batched trace without a valid ``cell``, an ``i_ext`` whose
            length does not fit the trace, an unknown ``convention``, or a trace
            with nothing recorded.
    """
    gates, currents = _split_fields(trace)  # checks that it is a trace first
    t = _trace_time(trace)
    v_label = _v_label(convention)
    panels = []
    if trace.v is not None:
        panels.append("v")
    if i_ext is not None:
        panels.append("i_ext")
    if gates:
        panels.append("gates")
    if currents:
        panels.append("currents")
    if not panels:
        raise ValueError("The trace has no recorded field and no `i_ext` to plot.")

    fig = _new_figure(len(panels), figsize, sharex=True)
    axes: list[Axes] = list(fig.axes)
    for ax, panel in zip(axes, panels, strict=True):
        if panel == "v":
            ax.plot(t, _one_cell(trace.v, cell, "trace.v"), color="tab:blue", lw=1)
            ax.set_ylabel(v_label)
        elif panel == "i_ext":
            current = np.asarray(i_ext, dtype=float)
            current = _one_cell(current, cell if current.ndim > 1 else None, "i_ext")
            ax.stairs(current, _stimulus_edges(t, current.size), color="tab:red")
            ax.set_ylabel("$I_{\\mathrm{ext}}$ (µA/cm²)\ninward positive")
        elif panel == "gates":
            for g in gates:
                ax.plot(t, _one_cell(getattr(trace, g), cell, f"trace.{g}"), label=g)
            ax.set_ylabel("gate open fraction (1)")
            ax.set_ylim(-0.05, 1.05)
            ax.legend(loc="upper right", fontsize="small")
        else:
            for c in currents:
                values = _one_cell(getattr(trace, c), cell, f"trace.{c}")
                ax.plot(t, values, label=_channel_label(c), lw=1)
            ax.set_ylabel("ionic current (µA/cm²)\noutward positive")
            ax.legend(loc="upper right", fontsize="small")
    axes[-1].set_xlabel("t (ms)")
    if title is None and cell is not None:
        title = f"cell {_normalise_cell(cell)}"
    if title:
        fig.suptitle(title)
    return fig


def plot_phase_plane(
    trace: Any,
    *,
    cell: Cell = None,
    views: Sequence[str] = _PHASE_VIEWS,
    params: Any = None,
    convention: str | None = None,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Phase-plane views of one cell: gates against V, and dV/dt against V.

    Args:
        trace: a trace tuple from :func:`hhjax.simulate` with ``v`` recorded (and
            the gates, for the ``"gates"`` view).
        cell: index of the cell in a batched trace (see :func:`plot_trace`).
        views: which panels, left to right: ``"gates"`` (each gate against V, mV)
            and/or ``"dvdt"`` (dV/dt in mV/ms, by finite differences of the
            samples, against V).
        params: the parameters that produced the trace; if given, the gates view
            also draws each gate's steady state x∞(V) (dashed) over the V range.
        convention: ``"modern"`` / ``"hh1952"`` to state it on the V axis.
        title: figure title.
        figsize: inches; default 5 × 4.5 per panel.

    Returns:
        The figure, one axes per view.

    Raises:
        ValueError: unknown or repeated views, V (or the gates) not recorded, or a
            batched trace without a valid ``cell``.
    """
    views = tuple(views)
    if (
        not views
        or len(set(views)) != len(views)
        or not set(views) <= set(_PHASE_VIEWS)
    ):
        raise ValueError(
            f"`views` must be distinct names among {_PHASE_VIEWS}; got {views}."
        )
    gates, _ = _split_fields(trace)  # checks that it is a trace first
    t = _trace_time(trace)
    if trace.v is None:
        raise ValueError("The phase plane needs V: simulate with 'v' recorded.")
    if "gates" in views and not gates:
        raise ValueError("The 'gates' view needs recorded gates (record='all').")
    v = _one_cell(trace.v, cell, "trace.v")
    v_label = _v_label(convention)
    if figsize is None:
        figsize = (5.0 * len(views), 4.5)
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, len(views), squeeze=False)[0]
    for ax, view in zip(axes, views, strict=True):
        if view == "gates":
            _draw_gates_vs_v(ax, trace, gates, v, cell, params)
            ax.set_ylabel("gate open fraction (1)")
        else:
            dvdt = np.gradient(v, t) if v.size > 1 else np.zeros_like(v)
            ax.plot(v, dvdt, color="tab:blue", lw=1)
            ax.axhline(0.0, color="0.7", lw=0.8)
            ax.set_ylabel("dV/dt (mV/ms)")
        ax.set_xlabel(v_label)
    if title:
        fig.suptitle(title)
    return fig


def _draw_gates_vs_v(
    ax: Axes, trace: Any, gates: list[str], v: np.ndarray, cell: Cell, params: Any
) -> None:
    lines = {}
    for g in gates:
        (line,) = ax.plot(v, _one_cell(getattr(trace, g), cell, f"trace.{g}"), label=g)
        lines[g] = line
    if params is not None:
        batch = np.shape(trace.v)[1:]
        grid = np.linspace(v.min(), v.max(), 200)
        # Broadcast the grid against batched parameters, then pick the cell.
        steady = model_of(params).steady_state(
            grid.reshape(grid.shape + (1,) * len(batch)), params
        )
        for g, line in lines.items():
            x_inf = np.broadcast_to(getattr(steady, g), grid.shape + batch)
            x_inf = _one_cell(x_inf, cell, f"steady state of {g}")
            ax.plot(grid, x_inf, ls="--", color=line.get_color(), lw=0.8)
        ax.plot([], [], ls="--", color="0.4", label="steady state x∞(V)")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(loc="best", fontsize="small")


def plot_fi(
    currents: Any,
    rates: ArrayLike | None = None,
    *,
    rheobase: float | None = None,
    label: str | None = None,
    title: str | None = None,
    figsize: tuple[float, float] = (6.0, 4.5),
) -> Figure:
    """An f–I curve: firing rate against injected current, onset marked.

    Args:
        currents: injected currents, µA/cm², shape ``(n,)``; or a result with
            fields ``currents``, ``rates`` and ``rheobase`` (e.g. the ``FICurve``
            of :func:`hhjax.analysis.fi_curve`), then leave ``rates`` out.
        rates: firing rates, Hz, shape ``(n,)``.
        rheobase: onset of repetitive firing, µA/cm², drawn as a dashed line (NaN
            or ``None``: not drawn). Taken from the result when one is passed.
        label: legend label of the curve.
        title: figure title.
        figsize: inches.

    Returns:
        The figure, one axes.

    Raises:
        ValueError: ``currents`` and ``rates`` are not 1-D arrays of equal length.
    """
    if rates is None:
        if not (hasattr(currents, "currents") and hasattr(currents, "rates")):
            raise TypeError(
                "Pass `currents` and `rates` arrays, or one result with fields "
                f"`currents` and `rates`; got {type(currents).__name__} alone."
            )
        if rheobase is None:
            rheobase = getattr(currents, "rheobase", None)
        currents, rates = currents.currents, currents.rates
    i = np.asarray(currents, dtype=float)
    f = np.asarray(rates, dtype=float)
    if i.ndim != 1 or i.shape != f.shape:
        raise ValueError(
            "`currents` (uA/cm^2) and `rates` (Hz) must be 1-D and of equal length; "
            f"got {i.shape} and {f.shape}."
        )
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    ax.plot(i, f, "o-", ms=3, color="tab:blue", label=label)
    if rheobase is not None and np.isfinite(rheobase):
        ax.axvline(
            float(rheobase),
            ls="--",
            color="tab:red",
            label=f"onset {float(rheobase):g} µA/cm²",
        )
    ax.set_xlabel("injected current (µA/cm²)")
    ax.set_ylabel("firing rate (Hz)")
    if label is not None or (rheobase is not None and np.isfinite(rheobase)):
        ax.legend(loc="upper left", fontsize="small")
    if title:
        ax.set_title(title)
    return fig
