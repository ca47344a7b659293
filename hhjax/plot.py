"""Matplotlib figures of traces, phase planes and f–I curves.

Every function builds a :class:`matplotlib.figure.Figure` directly (no pyplot, no
global state, no GUI backend needed), returns it, and never shows it: save it with
``fig.savefig("trace.png")`` or display it in a notebook. The numerical core never
imports this module.

Traces are those of :func:`hhjax.simulate` for any model (fields ``t``, ``v``, the
gates, then the currents ``i_*``); a batched trace (fields ``(samples, *batch)``) is
plotted one cell at a time, chosen with ``cell=``. Units: t in ms, V in mV, currents
in µA/cm² (ionic currents outward positive, the injected current inward positive),
rates in Hz.

V is plotted as simulated, in the convention of the parameters that produced it:
``"modern"`` (absolute V: rest ≈ −65 mV for squid HH, ≈ −70 mV for the cortical
models) or ``"hh1952"`` (HH 1952 / pyHH: V from rest, rest at 0 mV). The V axis
states it when it is known: from ``params=`` (the parameters that produced the
trace), from the model of the trace (every model but squid HH is modern), or from
``convention=``. Given ``params``, the figures also check that they belong to the
trace: the same model (the trace's fields), and, for :class:`hhjax.HHParams`, the
convention of the gates' kinetics (a 65 mV shift between the two is unmistakable in
the recorded gates).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from jax.typing import ArrayLike
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from hhjax._checks import is_integer
from hhjax._model import Model, model_of
from hhjax._registry import HH_CONVENTION_SHIFTS, MODELS, voltage_convention
from hhjax.models.hh import HHParams

__all__ = ["plot_fi", "plot_phase_plane", "plot_trace"]

Cell = int | tuple[int, ...] | None

_V_LABELS = {
    None: "V (mV)",
    "modern": "V (mV)\nmodern convention",
    "hh1952": "V (mV)\nHH 1952: from rest",
}
# Channel name in "i_<name>" -> how to write the ion on an axis.
_CHANNEL_LABELS = {
    "na": "Na",
    "k": "K",
    "kd": "Kd",
    "l": "leak",
    "m": "M",
    "ahp": "AHP",
    "nap": "NaP",
    "d": "D",
    "kir": "Kir",
}
_PHASE_VIEWS = ("gates", "dvdt")
_CURRENT_SCALES = ("auto", "linear", "symlog")
# current_scale="auto" draws the currents on a symlog axis when their peaks span
# more than this factor (e.g. I_M's ~1 µA/cm² beside I_Na's ~600 µA/cm²).
_SYMLOG_SPAN = 100.0
# The recorded gates must follow the kinetics of the other HH convention this many
# times more closely than those of `params` before the params are refused.
_MISFIT_RATIO = 10.0


class _Plotted(NamedTuple):
    """What to draw of one cell of a trace, and how to label it."""

    gates: list[str]  # gate fields, recorded and not held (channel switched off)
    currents: list[str]  # current fields, recorded and of channels switched on
    labels: dict[str, str]  # legend label of each gate and current field
    v_label: str  # V axis label, with the convention where known
    params: Any  # the plotted cell's parameters (scalar fields), or None


# ------------------------------------------------------------------ input checks
def _require_fields(obj: Any, name: str, fields: Sequence[str], expected: str) -> None:
    """A ``TypeError`` naming ``name`` unless ``obj`` has every one of ``fields``
    (``expected`` says what it should be, e.g. "a PhaseResponse")."""
    missing = [f for f in fields if not hasattr(obj, f)]
    if missing:
        raise TypeError(
            f"`{name}` must be {expected} (fields {', '.join(fields)}); got "
            f"{type(obj).__name__}, which has no {', '.join(missing)}."
        )


def _real_array(values: Any, name: str, unit: str) -> np.ndarray:
    """``values`` as a float array; a ``TypeError`` naming ``name`` if they are not
    real numbers."""
    kind = np.asarray(values).dtype.kind if not isinstance(values, str) else "U"
    if kind not in "biuf":
        raise TypeError(
            f"`{name}` must be real numbers in {unit}; got {type(values).__name__} "
            f"{values!r:.60}."
        )
    return np.asarray(values, dtype=float)


def _optional_number(value: Any, name: str, unit: str) -> float | None:
    """``value`` as a float (``None`` stays ``None``); a ``TypeError`` naming
    ``name`` if it is not one real number."""
    if value is None:
        return None
    x = _real_array(value, name, unit)
    if x.ndim != 0:
        raise TypeError(f"`{name}` must be one number in {unit}; got shape {x.shape}.")
    return float(x)


def _v_label(convention: str | None) -> str:
    if convention not in _V_LABELS:
        raise ValueError(
            f"`convention` must be None, 'modern' or 'hh1952'; got {convention!r}."
        )
    return _V_LABELS[convention]


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


def _trace_batch(trace: Any) -> tuple[int, ...]:
    """Batch shape of a trace: that of its recorded fields after the time axis."""
    recorded = [getattr(trace, f) for f in trace._fields[1:]]
    return next((np.shape(x)[1:] for x in recorded if x is not None), ())


# ------------------------------------------------------ the params of the trace
def _trace_model(trace: Any, params: Any) -> Model | None:
    """The model of ``trace``: that of ``params`` (checked to record the trace's
    fields), else the model in :data:`hhjax.MODELS` whose trace has the trace's
    fields, else None."""
    if params is None:
        models = (model_of(make()) for make in MODELS.values())
        return next((m for m in models if m.trace_type._fields == trace._fields), None)
    model = model_of(params)  # a TypeError for an object that is no parameters
    if model.trace_type._fields != trace._fields:
        raise TypeError(
            f"`params` ({type(params).__name__}) belong to model {model.name!r}, "
            f"whose traces have fields {model.trace_type._fields}, but the trace "
            f"({type(trace).__name__}) has fields {trace._fields}: pass the "
            "parameters that produced the trace."
        )
    return model


def _cell_params(params: Any, batch: tuple[int, ...], cell: Cell) -> Any:
    """``params`` with every field reduced to its value for the plotted cell."""
    values = {}
    for name, value in params._asdict().items():
        try:
            full = np.broadcast_to(np.asarray(value, dtype=float), batch)
        except ValueError:
            raise ValueError(
                f"`params.{name}` has shape {np.shape(value)}, which does not "
                f"broadcast to the trace's batch shape {batch}."
            ) from None
        values[name] = _one_cell(full[None], cell, f"params.{name}")[0]
    return params._replace(**values)


def _kinetics_misfit(
    model: Model, params: Any, t: np.ndarray, v: np.ndarray, gates: dict
) -> float:
    """Mean over samples and gates of ``|dx/dt − (α (1 − x) − β x)|``, 1/ms: how far
    the recorded gates ``{name: (samples,)}`` are from following the kinetics of
    ``params`` (one cell) at the recorded ``v`` (mV); dx/dt by finite differences
    of the samples at times ``t`` (ms)."""
    rates = model.rates(v, params)
    misfits = []
    for g, x in gates.items():
        alpha, beta = (np.asarray(r, dtype=float) for r in rates[g])
        predicted = alpha * (1.0 - x) - beta * x
        misfits.append(np.mean(np.abs(np.gradient(x, t) - predicted)))
    return float(np.mean(misfits))


def _check_hh_convention(
    model: Model, params: Any, trace: Any, gates: list[str], cell: Cell
) -> None:
    """A ``ValueError`` if the trace's ``gates`` (those of channels switched on)
    follow the HH kinetics of the other voltage convention (``v_shift`` 0 vs
    65 mV) far more closely than those of ``params`` (one cell): parameters of HH
    1952 on a modern trace, or the reverse. Decided only for parameters with a
    ``v_shift`` and a trace with V and a gate, over three or more samples."""
    t = _trace_time(trace)
    if "v_shift" not in params._fields or trace.v is None or not gates or t.size < 3:
        return
    v = _one_cell(trace.v, cell, "trace.v")
    recorded = {g: _one_cell(getattr(trace, g), cell, f"trace.{g}") for g in gates}
    given = _kinetics_misfit(model, params, t, v, recorded)
    for name, shift in HH_CONVENTION_SHIFTS.items():
        if shift == params.v_shift:
            continue
        other = _kinetics_misfit(model, params._replace(v_shift=shift), t, v, recorded)
        if _MISFIT_RATIO * other < given:
            raise ValueError(
                f"The trace's gates follow the HH kinetics of the {name} convention "
                f"(v_shift = {shift:g} mV), not those of `params` (v_shift = "
                f"{float(params.v_shift):g} mV): mean |dx/dt| misfit {other:.3g} vs "
                f"{given:.3g} 1/ms. Pass the parameters that produced the trace: "
                "HHParams() for the modern convention, HHParams.hh1952() for HH "
                "1952 / pyHH."
            )


def _convention(convention: str | None, params: Any, model: Model | None) -> str | None:
    """The convention to state on the V axis: ``convention`` if given (checked
    against what the params or the model say), else what they say."""
    _v_label(convention)  # checks the name
    if params is not None:
        known, source = voltage_convention(params), "`params`"
    elif model is not None and not issubclass(model.params_type, HHParams):
        known, source = "modern", f"model {model.name!r}"
    else:
        known, source = None, ""
    if None not in (convention, known) and convention != known:
        raise ValueError(
            f"`convention={convention!r}` contradicts {source}, which are in the "
            f"{known!r} convention; leave `convention` out to take theirs."
        )
    return convention or known


def _gate_labels(model: Model | None) -> dict[str, str]:
    """``{gate: "h ($I_{Na}$)"}``: each gate with the current of its channel."""
    if model is None:
        return {}
    return {
        g: f"{g} ({_current_label('i_' + ch.name)})"
        for ch in model.channels
        for g in ch.gates
    }


def _current_label(field: str) -> str:
    name = field[2:]
    return f"$I_{{\\mathrm{{{_CHANNEL_LABELS.get(name, name)}}}}}$"


def _to_plot(trace: Any, params: Any, cell: Cell, convention: str | None) -> _Plotted:
    """The gates and currents to draw for one cell of ``trace``, their labels and
    the V label; ``params`` (optional) are checked against the trace, and their
    switched-off channels (:meth:`hhjax.Model.switched_off`) left out."""
    gates, currents = _split_fields(trace)  # checks that it is a trace first
    batch = _trace_batch(trace)
    _one_cell(np.zeros((1, *batch)), cell, "trace")  # checks the cell
    model = _trace_model(trace, params)
    one_cell = None
    if params is not None:
        view = model.switched_off(params)
        gates = [g for g in gates if g not in view.held_gates]
        currents = [c for c in currents if c[2:] not in view.off]
        one_cell = _cell_params(params, batch, cell)
        _check_hh_convention(model, one_cell, trace, gates, cell)
    gate_labels = _gate_labels(model)
    labels = {c: _current_label(c) for c in currents}
    labels.update({g: gate_labels.get(g, g) for g in gates})
    v_label = _v_label(_convention(convention, one_cell, model))
    return _Plotted(gates, currents, labels, v_label, one_cell)


# ------------------------------------------------------------ drawing helpers
def _stimulus(
    i_ext: ArrayLike, t: np.ndarray, stride: int, batch: tuple[int, ...], cell: Cell
) -> tuple[np.ndarray, np.ndarray]:
    """The injected current of the plotted cell, µA/cm² ``(steps,)``, and its step
    edges, ms ``(steps + 1,)``; ``i_ext`` must have ``stride`` steps per sample of
    the trace and a batch shape that broadcasts to the trace's."""
    if not is_integer(stride):
        raise TypeError(f"`stride` must be a positive integer; got {stride!r}.")
    if stride < 1:
        raise ValueError(f"`stride` must be a positive integer; got {stride}.")
    current = _real_array(i_ext, "i_ext", "µA/cm²")
    if current.ndim == 0:
        raise ValueError(
            "`i_ext` must be the current of each time step, shape (steps,) or "
            f"(steps, *batch), µA/cm²; got the scalar {float(current):g}. For a "
            "constant current pass e.g. hhjax.stimulus.constant(amplitude, "
            "duration, dt)."
        )
    steps, expected = current.shape[0], t.size * stride
    if steps != expected:
        hint = ""
        if steps % t.size == 0:
            hint = (
                f"; for a trace recorded with simulate(..., stride={steps // t.size})"
                f" pass stride={steps // t.size}"
            )
        raise ValueError(
            f"`i_ext` has {steps} time steps; the trace has {t.size} samples, so "
            f"with stride={stride} it must have {expected}{hint}."
        )
    if not _broadcasts_to(current.shape[1:], batch):
        raise ValueError(
            f"`i_ext` has batch shape {current.shape[1:]}, which does not broadcast "
            f"to the trace's batch shape {batch}."
        )
    # Batch axes align from the right, after the time axis.
    current = current.reshape(
        (steps,) + (1,) * (len(batch) + 1 - current.ndim) + current.shape[1:]
    )
    values = _one_cell(np.broadcast_to(current, (steps, *batch)), cell, "i_ext")
    dt = (t[1] - t[0]) / stride if t.size > 1 else 1.0
    return values, t[0] + dt * np.arange(steps + 1)


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether an array of ``shape`` broadcasts to exactly ``target``."""
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def _symlog_threshold(peaks: Sequence[float], scale: str) -> float | None:
    """Half-width of the linear range (µA/cm²) of a symlog current axis for
    currents peaking at ``peaks`` (µA/cm²), or None for a linear axis: symlog when
    ``scale`` says so, or, for ``"auto"``, when the peaks span more than
    ``_SYMLOG_SPAN``. The threshold is the power of ten at or below the smallest
    non-zero peak, so that every current shows."""
    if scale not in _CURRENT_SCALES:
        raise ValueError(
            f"`current_scale` must be one of {_CURRENT_SCALES}; got {scale!r}."
        )
    nonzero = [p for p in peaks if p > 0]
    if scale == "linear" or not nonzero:
        return None
    if scale == "auto" and max(nonzero) <= _SYMLOG_SPAN * min(nonzero):
        return None
    return float(10.0 ** np.floor(np.log10(min(nonzero))))


def _legend_outside(ax: Axes) -> None:
    """The legend to the right of the axes, clear of the data."""
    ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False
    )


def _draw_currents(
    ax: Axes, t: np.ndarray, currents: dict[str, np.ndarray], scale: str
) -> None:
    """Ionic currents ``{label: (samples,)}`` (µA/cm², outward positive)."""
    for label, values in currents.items():
        ax.plot(t, values, label=label, lw=1)
    peaks = [float(np.nanmax(np.abs(x), initial=0.0)) for x in currents.values()]
    threshold = _symlog_threshold(peaks, scale)
    label = "ionic current (µA/cm²)\noutward positive"
    if threshold is not None:
        ax.set_yscale("symlog", linthresh=threshold)
        label += f"\nsymlog: linear within ±{threshold:g}"
    ax.set_ylabel(label)
    _legend_outside(ax)


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
    stride: int = 1,
    params: Any = None,
    convention: str | None = None,
    current_scale: str = "auto",
    title: str | None = None,
    figsize: tuple[float, float] = (8.0, 8.0),
) -> Figure:
    """pyHH's classic figure: V, stimulus, gates and currents against time.

    One panel per available quantity, top to bottom: membrane potential (if
    recorded), injected current (if ``i_ext`` is given), gates (those recorded),
    ionic currents (those recorded) — four panels for a full trace with ``i_ext``.
    Gates are labelled with the current of their channel (e.g. ``h`` of
    :math:`I_{Na}`, not :math:`I_h`) when the trace's model is known.

    Args:
        trace: a trace tuple from :func:`hhjax.simulate` (e.g. :class:`hhjax.Trace`):
            ``t`` in ms ``(samples,)``, fields ``(samples, *batch)``.
        i_ext: the injected current that produced it, µA/cm² (inward positive),
            shape ``(samples · stride,)`` or ``(samples · stride, *batch)`` (a batch
            shape that broadcasts to the trace's).
        cell: index into the batch shape of the cell to plot (an int for a 1-D
            batch); not needed for an unbatched trace.
        stride: steps of ``i_ext`` per sample of the trace: the ``stride`` the
            trace was recorded with by :func:`hhjax.simulate`.
        params: the parameters that produced the trace (optional). Checked to
            belong to it (model, and convention for :class:`hhjax.HHParams`); the
            gates and currents of the channels they switch off
            (:meth:`hhjax.Model.switched_off`: a conductance of plain 0) are left
            out, and the V axis states their convention.
        convention: ``"modern"`` or ``"hh1952"`` to state the voltage convention
            on the V axis; default: that of ``params`` or of the trace's model
            where known, else plain mV.
        current_scale: y scale of the ionic currents: ``"linear"``, ``"symlog"``
            (linear within ± the smallest current's peak, rounded down to a power
            of ten), or ``"auto"``: symlog when the currents' peaks span more than
            a factor 100 (e.g. a 1 µA/cm² M current beside a 600 µA/cm² Na⁺
            current).
        title: figure title.
        figsize: inches.

    Returns:
        The figure; its axes share the time axis.

    Raises:
        TypeError: ``trace`` is not a trace tuple, ``cell`` not an integer or a
            tuple of integers, ``stride`` not an integer, ``i_ext`` not real
            numbers, or ``params`` not parameters of the trace's model.
        ValueError: a batched trace without a valid ``cell``; an ``i_ext`` that
            is a scalar, has a length other than ``samples · stride`` or a batch
            shape that does not broadcast to the trace's; an unknown
            ``convention`` or ``current_scale``, or one that contradicts
            ``params``; ``params`` of the other HH convention; a trace with
            nothing to plot.
    """
    plotted = _to_plot(trace, params, cell, convention)
    t = _trace_time(trace)
    panels = [
        name
        for name, present in (
            ("v", trace.v is not None),
            ("i_ext", i_ext is not None),
            ("gates", bool(plotted.gates)),
            ("currents", bool(plotted.currents)),
        )
        if present
    ]
    if not panels:
        raise ValueError("The trace has no recorded field and no `i_ext` to plot.")
    stimulus = None
    if i_ext is not None:
        stimulus = _stimulus(i_ext, t, stride, _trace_batch(trace), cell)

    fig = _new_figure(len(panels), figsize, sharex=True)
    axes: list[Axes] = list(fig.axes)
    for ax, panel in zip(axes, panels, strict=True):
        if panel == "v":
            ax.plot(t, _one_cell(trace.v, cell, "trace.v"), color="tab:blue", lw=1)
            ax.set_ylabel(plotted.v_label)
        elif panel == "i_ext":
            ax.stairs(*stimulus, color="tab:red")
            ax.set_ylabel("$I_{\\mathrm{ext}}$ (µA/cm²)\ninward positive")
        elif panel == "gates":
            for g in plotted.gates:
                values = _one_cell(getattr(trace, g), cell, f"trace.{g}")
                ax.plot(t, values, label=plotted.labels[g])
            ax.set_ylabel("gate open fraction (1)")
            ax.set_ylim(-0.05, 1.05)
            _legend_outside(ax)
        else:
            currents = {
                plotted.labels[c]: _one_cell(getattr(trace, c), cell, f"trace.{c}")
                for c in plotted.currents
            }
            _draw_currents(ax, t, currents, current_scale)
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
    views: str | Sequence[str] = _PHASE_VIEWS,
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
            samples, against V); one name or a sequence of names.
        params: the parameters that produced the trace; if given, they are
            checked to belong to it (as in :func:`plot_trace`), the gates of
            switched-off channels are left out, and the gates view also draws
            each gate's steady state x∞(V) (dashed) over the V range.
        convention: ``"modern"`` / ``"hh1952"`` to state it on the V axis;
            default: that of ``params`` or of the trace's model where known.
        title: figure title.
        figsize: inches; default 5 × 4.5 per panel.

    Returns:
        The figure, one axes per view.

    Raises:
        TypeError: ``trace`` is not a trace tuple, or ``params`` not parameters of
            the trace's model.
        ValueError: unknown or repeated views, V (or the gates) not recorded, a
            batched trace without a valid ``cell``, or ``params`` or
            ``convention`` that contradict the trace (see :func:`plot_trace`).
    """
    views = (views,) if isinstance(views, str) else tuple(views)
    if (
        not views
        or len(set(views)) != len(views)
        or not set(views) <= set(_PHASE_VIEWS)
    ):
        raise ValueError(
            f"`views` must be one or more distinct names among {_PHASE_VIEWS}; got "
            f"{views}."
        )
    plotted = _to_plot(trace, params, cell, convention)
    t = _trace_time(trace)
    if trace.v is None:
        raise ValueError("The phase plane needs V: simulate with 'v' recorded.")
    if "gates" in views and not plotted.gates:
        raise ValueError("The 'gates' view needs recorded gates (record='all').")
    v = _one_cell(trace.v, cell, "trace.v")
    if figsize is None:
        figsize = (5.0 * len(views), 4.5)
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, len(views), squeeze=False)[0]
    for ax, view in zip(axes, views, strict=True):
        if view == "gates":
            _draw_gates_vs_v(ax, trace, plotted, v, cell)
            ax.set_ylabel("gate open fraction (1)")
        else:
            dvdt = np.gradient(v, t) if v.size > 1 else np.zeros_like(v)
            ax.plot(v, dvdt, color="tab:blue", lw=1)
            ax.axhline(0.0, color="0.7", lw=0.8)
            ax.set_ylabel("dV/dt (mV/ms)")
        ax.set_xlabel(plotted.v_label)
    if title:
        fig.suptitle(title)
    return fig


def _draw_gates_vs_v(
    ax: Axes, trace: Any, plotted: _Plotted, v: np.ndarray, cell: Cell
) -> None:
    lines = {}
    for g in plotted.gates:
        values = _one_cell(getattr(trace, g), cell, f"trace.{g}")
        (lines[g],) = ax.plot(v, values, label=plotted.labels[g])
    if plotted.params is not None:
        grid = np.linspace(v.min(), v.max(), 200)
        steady = model_of(plotted.params).steady_state(grid, plotted.params)
        for g, line in lines.items():
            x_inf = np.asarray(getattr(steady, g), dtype=float)
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
        TypeError: ``rates`` left out and ``currents`` is no result with fields
            ``currents`` and ``rates``; currents, rates or ``rheobase`` that are
            not real numbers.
        ValueError: ``currents`` and ``rates`` are not 1-D arrays of equal length.
    """
    if rates is None:
        _require_fields(
            currents,
            "currents",
            ("currents", "rates"),
            "an array together with `rates`, or one result such as an FICurve",
        )
        if rheobase is None:
            rheobase = getattr(currents, "rheobase", None)
        currents, rates = currents.currents, currents.rates
    i = _real_array(currents, "currents", "µA/cm²")
    f = _real_array(rates, "rates", "Hz")
    onset = _optional_number(rheobase, "rheobase", "µA/cm²")
    if i.ndim != 1 or i.shape != f.shape:
        raise ValueError(
            "`currents` (uA/cm^2) and `rates` (Hz) must be 1-D and of equal length; "
            f"got {i.shape} and {f.shape}."
        )
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    ax.plot(i, f, "o-", ms=3, color="tab:blue", label=label)
    drawn = onset is not None and np.isfinite(onset)
    if drawn:
        ax.axvline(onset, ls="--", color="tab:red", label=f"onset {onset:g} µA/cm²")
    ax.set_xlabel("injected current (µA/cm²)")
    ax.set_ylabel("firing rate (Hz)")
    if label is not None or drawn:
        ax.legend(loc="upper left", fontsize="small")
    if title:
        ax.set_title(title)
    return fig
