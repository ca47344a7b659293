"""Spike times, counts and rates from a trace, differentiable w.r.t. its values.

A spike is an **upward** crossing of a voltage threshold (mV, in the voltage
convention of the trace): an interval ``[t[k], t[k+1]]`` with ``v[k] < θ <= v[k+1]``.
Its time is interpolated inside that interval: by default as the root of the cubic
through the four samples ``v[k−1..k+2]`` (Newton from the chord), or, with
``interpolation="linear"``, on the chord itself,

    t_spike = t[k] + (θ − v[k]) / (v[k+1] − v[k]) · (t[k+1] − t[k]),

so it moves continuously with the samples: gradients w.r.t. parameters and the
stimulus flow through the samples around the crossing (which samples bracket it is
a discrete choice and carries no gradient, as it should). The linear chord biases
the *gradient* of a spike time by up to ``dt · v''/(2 v')`` relative (≈ 1 % for HH
at dt = 0.01 ms); the cubic's error is O(dt⁴).

Representation (jit-friendly, fixed shapes): :func:`spike_times` returns the first
``max_spikes`` spike times along axis 0, **NaN-padded** — shape
``(max_spikes, *batch)``, time first like every trace field. Counts, rates and the
first spike time do not need a bound on the number of spikes.

Windows (``t_start``, ``t_stop``, ms: a number, or one per trace as an array
broadcasting to the batch shape) take the spikes whose chord (linear) crossing
time lies in them, whichever interpolation is reported: the cubic time of a spike
within a small fraction of a step (O(dt²)·v''/v') of a window edge may fall just
outside the window.

Checks: for concrete inputs (not under ``jit``, ``vmap`` or ``grad`` tracing) every
function raises ``ValueError`` for NaN or inf in V (it would hide a crossing), a
time axis that is not finite or does not increase, a NaN window edge or one whose
shape does not broadcast to the batch shape, and an empty window
(``t_start >= t_stop``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial, wraps
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from hhjax._checks import is_integer, is_traced, value_range

DEFAULT_MAX_SPIKES = 32
"""Default number of spike-time slots returned by :func:`spike_times`."""
_NEWTON_STEPS = 4  # refinement of the cubic crossing (quadratic convergence)


def _time_and_voltage(trace: Any, t: ArrayLike | None) -> tuple[Array, Array]:
    """``(t, v)`` from a trace tuple (fields ``t``, ``v``) or from ``v`` and ``t``."""
    if t is None:
        if not _is_trace(trace):
            raise _not_a_trace(trace)
        t, v = trace.t, trace.v
        if v is None:
            raise ValueError(
                "The trace has no voltage: simulate with record='all' or a `record` "
                "that includes 'v'."
            )
    else:
        v = trace
    v, t = jnp.asarray(v), jnp.asarray(t)
    if t.ndim != 1 or v.ndim < 1 or v.shape[0] != t.shape[0] or t.shape[0] < 2:
        raise ValueError(
            "Expected `t` of shape (samples,) in ms and `v` of shape (samples, *batch) "
            f"in mV with at least 2 samples; got t {t.shape} and v {v.shape}."
        )
    v = v.astype(jnp.result_type(float, v))
    return t.astype(v.dtype), v


def _is_trace(trace: Any) -> bool:
    return hasattr(trace, "t") and hasattr(trace, "v")


def _not_a_trace(trace: Any) -> TypeError:
    what = "an array" if isinstance(trace, jax.Array) else type(trace).__name__
    return TypeError(
        "`trace` must be a trace tuple with fields `t` (ms) and `v` (mV), "
        f"or an array of V with `t=` given; got {what}."
    )


def _as_threshold(threshold: ArrayLike, v: Array) -> Array:
    """The threshold as an array of the batch shape ``v.shape[1:]``: one value per
    trace, from a scalar or an array broadcasting to it (never along time)."""
    threshold = jnp.asarray(threshold, v.dtype)
    batch_shape = v.shape[1:]
    one_sample = _check_per_trace("`threshold` (mV)", threshold.shape, batch_shape)
    return jnp.broadcast_to(threshold, one_sample).reshape(batch_shape)


def _check_per_trace(what: str, shape: tuple, batch_shape: tuple) -> tuple:
    """A clear error unless ``shape`` broadcasts to one value per trace (a
    leading 1 allowed: ``(1, n)`` for traces ``(T, n)``); returns ``(1, *batch)``."""
    one_sample = (1, *batch_shape)
    try:
        fits = np.broadcast_shapes(shape, one_sample) == one_sample
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"{what} must be a scalar or an array broadcasting to the batch shape of "
            f"the trace, {batch_shape}; got shape {shape}."
        )
    return one_sample


def _check_max_spikes(max_spikes: Any) -> None:
    if not is_integer(max_spikes) or max_spikes < 1:
        raise ValueError(f"`max_spikes` must be a positive int; got {max_spikes!r}.")


def _crossings(t: Array, v: Array, threshold: ArrayLike) -> tuple[Array, Array]:
    """Upward crossings of each interval and their linearly interpolated times.

    Returns:
        ``(is_crossing, times)``, both of shape ``(samples − 1, *batch)``; ``times``
        (ms) is finite everywhere and meaningful only where ``is_crossing``.
    """
    before, after = v[:-1], v[1:]
    is_crossing = (before < threshold) & (after >= threshold)
    rise = jnp.where(is_crossing, after - before, 1.0)  # > 0 where used: safe divide
    frac = jnp.where(is_crossing, (threshold - before) / rise, 0.0)
    t0 = t[:-1].reshape((-1,) + (1,) * (v.ndim - 1))
    dt = jnp.diff(t).reshape(t0.shape)
    return is_crossing, t0 + frac * dt


def _crossing_time(
    t: Array, v: Array, k: Array, threshold: Array, interpolation: str
) -> Array:
    """Time at which one column ``v`` (``(samples,)``) crosses ``threshold`` inside
    the intervals ``[t[k], t[k+1]]`` (``k`` any integer shape) that do cross."""
    t0, t1, v0, v1 = t[k], t[k + 1], v[k], v[k + 1]
    rise = jnp.where(v1 > v0, v1 - v0, 1.0)
    tau = t0 + jnp.clip((threshold - v0) / rise, 0.0, 1.0) * (t1 - t0)
    if interpolation == "linear" or t.shape[0] < 4:
        return tau
    # Cubic through 4 samples around the interval, root by Newton from the linear
    # estimate (error O(dt^4) instead of O(dt^2), and so is the gradient's).
    first = jnp.clip(k - 1, 0, t.shape[0] - 4)
    nodes = first[..., None] + jnp.arange(4)
    tn, vn = t[nodes], v[nodes]

    def poly(x):
        total = 0.0
        for j in range(4):
            basis = 1.0
            for m in range(4):
                if m != j:
                    basis = basis * (x - tn[..., m]) / (tn[..., j] - tn[..., m])
            total = total + vn[..., j] * basis
        return total

    for _ in range(_NEWTON_STEPS):
        value, slope = jax.jvp(poly, (tau,), (jnp.ones_like(tau),))
        ok = slope > 0
        step = jnp.where(ok, (value - threshold) / jnp.where(ok, slope, 1.0), 0.0)
        tau = jnp.clip(tau - step, t0, t1)
    return tau


def _check_interpolation(interpolation: str) -> None:
    if interpolation not in ("cubic", "linear"):
        raise ValueError(
            f"`interpolation` must be 'cubic' or 'linear'; got {interpolation!r}."
        )


def _per_column(fn, t, v, threshold, *extra):
    """Apply ``fn(v_col, threshold_col, *extra_cols)`` to every batch column."""
    batch_shape = v.shape[1:]
    flat_v = v.reshape(v.shape[0], -1)
    flat_thr = threshold.ravel()  # of the batch shape (_as_threshold)
    flat_extra = [e.reshape(e.shape[0], -1) for e in extra]
    out = jax.vmap(fn, in_axes=(1, 0) + (1,) * len(extra), out_axes=-1)(
        flat_v, flat_thr, *flat_extra
    )
    return out.reshape(out.shape[:-1] + batch_shape)


def _in_window(times: Array, t_start: Any, t_stop: Any) -> Array:
    keep = jnp.ones(times.shape, bool)
    if t_start is not None:  # asarray: a list of edges, one per cell, too
        keep &= times >= jnp.asarray(t_start, times.dtype)
    if t_stop is not None:
        keep &= times < jnp.asarray(t_stop, times.dtype)
    return keep


def _check_concrete(
    trace: Any, t: Any, t_start: Any = None, t_stop: Any = None, threshold: Any = 0.0
):
    """Checks that need the values (skipped for tracers, e.g. under ``jit``): a NaN
    in V or in the threshold would hide a crossing, a time axis that does not
    increase would give times out of order, and an empty window would count
    nothing. Other malformed input is left to :func:`_time_and_voltage`, which
    names it."""
    if t is None and not _is_trace(trace):
        raise _not_a_trace(trace)  # here, where its type is not yet a tracer
    if not is_traced(threshold) and not np.all(np.isfinite(value_range(threshold))):
        raise ValueError(f"`threshold` (mV) must be finite; got {threshold!r}.")
    times, volts = (trace.t, trace.v) if t is None else (t, trace)
    try:
        times = None if is_traced(times) else np.asarray(times, dtype=float)
        volts = None if is_traced(volts) else np.asarray(volts, dtype=float)
    except (TypeError, ValueError):
        return
    if times is not None and times.ndim == 1 and times.size > 1:
        if not np.all(np.isfinite(times)):
            k = int(np.argmax(~np.isfinite(times)))
            raise ValueError(f"`t` (ms) must be finite; t[{k}] = {times[k]}.")
        rising = np.diff(times) > 0
        if not rising.all():
            k = int(np.argmin(rising))
            raise ValueError(
                f"`t` (ms) must be strictly increasing; t[{k + 1}] = {times[k + 1]} "
                f"follows t[{k}] = {times[k]}."
            )
    if volts is not None and volts.ndim >= 1 and volts.size:
        bad = ~np.isfinite(volts).reshape(volts.shape[0], -1).all(axis=1)
        if bad.any():
            raise ValueError(
                f"V (mV) must be finite; sample {int(np.argmax(bad))} holds NaN or "
                "inf, where a threshold crossing could not be detected."
            )
        _warn_threshold_at_the_median(volts, threshold)
    window = (t_start, t_stop)
    for name, edge in (("t_start", t_start), ("t_stop", t_stop)):
        if edge is not None and not is_traced(edge):
            _check_edge(name, edge, volts)
    if (
        None not in window
        and not is_traced(window)
        and not np.all(np.asarray(t_start) < np.asarray(t_stop))
    ):
        raise ValueError(
            f"The window must have `t_start` < `t_stop` (ms); got t_start = "
            f"{t_start}, t_stop = {t_stop}."
        )


# A threshold less than this far above a trace's median voltage (mV) counts the
# fluctuations around that level as spikes.
_THRESHOLD_MARGIN = 5.0


def _warn_threshold_at_the_median(volts: np.ndarray, threshold: Any) -> None:
    """Warn when the threshold is not clearly above a trace's median voltage (the
    level it spends most time at; brief spikes do not move it): the
    default 0 mV (modern convention) on a trace in HH's 1952 convention, whose
    rest is 0 mV, counts the ripples around rest as spikes."""
    if is_traced(threshold) or volts.shape[0] < 2:
        return
    median = np.median(volts.reshape(volts.shape[0], -1), axis=0)
    try:
        level = np.broadcast_to(np.asarray(threshold, float), volts.shape[1:])
    except ValueError:
        return  # a shape error, named by _as_threshold
    low = median >= level.ravel() - _THRESHOLD_MARGIN
    if not low.any():
        return
    k = int(np.argmax(low))
    which = f" of trace {k}" if median.size > 1 else ""
    warnings.warn(
        f"The spike threshold ({float(level.ravel()[k]):g} mV) is less than "
        f"{_THRESHOLD_MARGIN:g} mV above the median voltage{which} "
        f"({float(median[k]):.3g} mV): fluctuations around that level count as "
        "spikes. A trace in HH's 1952 convention (rest at 0 mV) needs a threshold "
        "of about 65 mV; 0 mV suits the modern convention (rest near -65 mV).",
        UserWarning,
        stacklevel=4,
    )


def _check_edge(name: str, edge: Any, volts: np.ndarray | None) -> None:
    """A window edge (ms) is a number, or an array broadcasting to the batch
    shape (one edge per trace), and not NaN (±inf is an open end)."""
    try:
        values = np.asarray(edge, dtype=float)
    except (TypeError, ValueError):
        values = None
    if values is None or np.isnan(values).any():
        raise ValueError(f"`{name}` (ms) must be a number or None; got {edge!r}.")
    if volts is None or volts.ndim < 1:
        return
    _check_per_trace(f"`{name}` (ms)", values.shape, volts.shape[1:])


def _checked(jitted: Callable) -> Callable:
    """``jitted`` after :func:`_check_concrete` of its arguments (a plain Python
    function: the checks see concrete values when the caller is not traced)."""

    @wraps(jitted)
    def run(trace, threshold=0.0, **options):
        _check_concrete(
            trace, options.get("t"), options.get("t_start"), options.get("t_stop"),
            threshold,
        )  # fmt: skip
        return jitted(trace, threshold, **options)

    return run


@_checked
@partial(jax.jit, static_argnames=("max_spikes", "interpolation"))
def spike_times(
    trace: Any,
    threshold: ArrayLike = 0.0,
    *,
    max_spikes: int = DEFAULT_MAX_SPIKES,
    interpolation: str = "cubic",
    t: ArrayLike | None = None,
) -> Array:
    """Times of the upward threshold crossings, interpolated inside the step.

    Differentiable w.r.t. the voltage samples (hence w.r.t. parameters and stimulus
    of the simulation that produced them) and jit/vmap-compatible.

    Args:
        trace: a trace tuple with fields ``t`` (ms, shape ``(samples,)``) and ``v``
            (mV, shape ``(samples, *batch)``), e.g. from :func:`hhjax.simulate`; or
            an array of V (mV, ``(samples, *batch)``) together with ``t``.
        threshold: voltage threshold, mV, in the convention of the trace (0 mV suits
            the modern convention; use ≈ 65 mV for :meth:`hhjax.HHParams.hh1952`).
            A scalar or an array broadcasting against the batch shape.
        max_spikes: number of spike slots returned (a static Python int ≥ 1); later
            spikes are dropped (use :func:`spike_count` to see how many there are).
        interpolation: ``"cubic"`` (default: the cubic through the 4 samples around
            the crossing, error and gradient error O(dt⁴)) or ``"linear"`` (the
            chord of the crossing step, O(dt²)).
        t: sample times, ms, shape ``(samples,)``, when ``trace`` is an array.

    Returns:
        Spike times in ms, shape ``(max_spikes, *batch)``, ascending along axis 0,
        **NaN-padded** after the last spike.

    Raises:
        ValueError: bad shapes, ``max_spikes`` or ``interpolation``.

    Example:
        >>> import jax.numpy as jnp
        >>> t = jnp.arange(5.0)
        >>> v = jnp.array([-10.0, 10.0, -10.0, -10.0, 30.0])
        >>> spike_times(v, 0.0, max_spikes=3, t=t, interpolation="linear").tolist()
        [0.5, 3.25, nan]
    """
    _check_max_spikes(max_spikes)
    _check_interpolation(interpolation)
    t, v = _time_and_voltage(trace, t)
    threshold = _as_threshold(threshold, v)
    is_crossing, _ = _crossings(t, v, threshold)

    def column(v_col, thr, mask):
        idx = jnp.nonzero(mask, size=max_spikes, fill_value=0)[0]
        times = _crossing_time(t, v_col, idx, thr, interpolation)
        return jnp.where(jnp.arange(max_spikes) < jnp.sum(mask), times, jnp.nan)

    return _per_column(column, t, v, threshold, is_crossing)


@_checked
@jax.jit
def spike_count(
    trace: Any,
    threshold: ArrayLike = 0.0,
    *,
    t_start: ArrayLike | None = None,
    t_stop: ArrayLike | None = None,
    t: ArrayLike | None = None,
) -> Array:
    """Number of upward threshold crossings (an integer; no gradient).

    Args:
        trace: trace tuple (or V array with ``t``), see :func:`spike_times`.
        threshold: voltage threshold, mV, in the convention of the trace.
        t_start: count only spikes at ``t >= t_start`` (ms; a number or one per
            trace, see the module docstring); ``None``: from the start.
        t_stop: count only spikes at ``t < t_stop`` (ms, likewise); ``None``: to
            the end.
        t: sample times, ms, when ``trace`` is an array.

    Returns:
        Integer array of shape ``(*batch)``.
    """
    t, v = _time_and_voltage(trace, t)
    threshold = _as_threshold(threshold, v)
    is_crossing, times = _crossings(t, v, threshold)
    keep = is_crossing & _in_window(times, t_start, t_stop)
    return jnp.sum(keep, axis=0)


def soft_spike_count(
    trace: Any,
    threshold: ArrayLike = 0.0,
    *,
    width: ArrayLike = 2.0,
    t: ArrayLike | None = None,
) -> Array:
    """Smooth surrogate of :func:`spike_count` for gradient-based optimisation.

    With ``s(V) = sigmoid((V − θ) / width)``, the surrogate is the total *rise* of
    ``s`` along the trace, ``Σ_k max(0, s(v[k+1]) − s(v[k]))``: each excursion from
    well below to well above θ adds ≈ 1, a sub-threshold bump that reaches
    ``θ − 2·width`` adds ≈ 0.1, so the gradient points towards (or away from)
    spiking before a spike actually appears or disappears.

    Args:
        trace: trace tuple (or V array with ``t``), see :func:`spike_times`.
        threshold: voltage threshold θ, mV, in the convention of the trace.
        width: softness of the threshold, mV (> 0); smaller is closer to the count.
        t: sample times, ms, when ``trace`` is an array (unused otherwise).

    Returns:
        Float array of shape ``(*batch)``, ≈ the number of spikes.
    """
    if not is_traced(width):
        low, _ = value_range(width)
        if not low > 0:  # also NaN; a negative width would count downward crossings
            raise ValueError(f"`width` must be > 0 mV; got {width!r}.")
    _check_concrete(trace, t, threshold=threshold)
    return _soft_spike_count(trace, threshold, width, t)


@jax.jit
def _soft_spike_count(trace, threshold, width, t):
    _, v = _time_and_voltage(trace, t)
    threshold = _as_threshold(threshold, v)
    s = jax.nn.sigmoid((v - threshold) / width)
    return jnp.sum(jax.nn.relu(jnp.diff(s, axis=0)), axis=0)


@_checked
@partial(jax.jit, static_argnames=("interpolation",))
def first_spike_time(
    trace: Any,
    threshold: ArrayLike = 0.0,
    *,
    t_start: ArrayLike | None = None,
    interpolation: str = "cubic",
    t: ArrayLike | None = None,
) -> Array:
    """Time of the first upward threshold crossing, ms (NaN if there is none).

    Differentiable w.r.t. the voltage samples, as :func:`spike_times`.

    Args:
        trace: trace tuple (or V array with ``t``), see :func:`spike_times`.
        threshold: voltage threshold, mV, in the convention of the trace.
        t_start: ignore crossings before this time, ms (a number or one per
            trace); ``None``: from the start.
        interpolation: ``"cubic"`` or ``"linear"``, see :func:`spike_times`.
        t: sample times, ms, when ``trace`` is an array.

    Returns:
        Float array of shape ``(*batch)`` in ms.
    """
    _check_interpolation(interpolation)
    t, v = _time_and_voltage(trace, t)
    threshold = _as_threshold(threshold, v)
    is_crossing, times = _crossings(t, v, threshold)
    keep = is_crossing & _in_window(times, t_start, None)

    def column(v_col, thr, keep_col):
        time = _crossing_time(t, v_col, jnp.argmax(keep_col), thr, interpolation)
        return jnp.where(jnp.any(keep_col), time, jnp.nan)

    return _per_column(column, t, v, threshold, keep)


@_checked
@partial(jax.jit, static_argnames=("interpolation",))
def firing_rate(
    trace: Any,
    threshold: ArrayLike = 0.0,
    *,
    t_start: ArrayLike | None = None,
    t_stop: ArrayLike | None = None,
    interpolation: str = "cubic",
    t: ArrayLike | None = None,
) -> Array:
    """Mean firing rate from the inter-spike intervals in a window, Hz.

    ``1000 · (n − 1) / (t_n − t_1)`` for the ``n`` spikes in ``[t_start, t_stop)``
    (times in ms), i.e. the inverse mean ISI; 0 with fewer than two spikes. Unlike
    ``count / window`` it has no quantisation error of one spike per window, and it
    is differentiable w.r.t. the voltage samples (through ``t_1`` and ``t_n``).

    Args:
        trace: trace tuple (or V array with ``t``), see :func:`spike_times`.
        threshold: voltage threshold, mV, in the convention of the trace.
        t_start: window start, ms, a number or one per trace (``None``: start
            of the trace).
        t_stop: window end, ms, likewise (``None``: end of the trace).
        interpolation: ``"cubic"`` or ``"linear"``, see :func:`spike_times`.
        t: sample times, ms, when ``trace`` is an array.

    Returns:
        Float array of shape ``(*batch)``, Hz.
    """
    _check_interpolation(interpolation)
    t, v = _time_and_voltage(trace, t)
    threshold = _as_threshold(threshold, v)
    is_crossing, times = _crossings(t, v, threshold)
    keep = is_crossing & _in_window(times, t_start, t_stop)

    def column(v_col, thr, keep_col):
        n = jnp.sum(keep_col)
        first = jnp.argmax(keep_col)
        last = keep_col.shape[0] - 1 - jnp.argmax(keep_col[::-1])
        ends = _crossing_time(t, v_col, jnp.stack([first, last]), thr, interpolation)
        span = jnp.where(n >= 2, ends[1] - ends[0], 1.0)
        return jnp.where(n >= 2, 1000.0 * (n - 1) / span, 0.0)

    return _per_column(column, t, v, threshold, keep)
