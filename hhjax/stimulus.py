"""Stimulus builders: injected-current waveforms ready for :func:`hhjax.simulate`.

Every builder returns a float array of shape ``(n_steps,)`` (or ``(n_steps, *batch)``
where an amplitude is an array) in µA/cm², where ``n_steps = round(duration / dt)``
and sample ``k`` is the current on ``[k·dt, (k+1)·dt)`` — the convention of
``simulate``. Times and durations are in ms. Amplitudes may be arrays: their shape
becomes the batch shape (one waveform per amplitude). Every window (a step, a ramp,
a pulse train) must lie in the run: finite ``0 <= start <= stop <= duration`` ms,
else a ``ValueError`` names the values. A window is on for the steps whose start
``k·dt`` lies in ``[start, stop)`` and, unless empty, must be at least one step
long. Convert whole-cell currents in pA with :func:`pa_to_density`.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from hhjax._checks import concrete_real, is_integer, is_traced, positive_number

__all__ = [
    "constant",
    "from_array",
    "n_steps",
    "ornstein_uhlenbeck",
    "pa_to_density",
    "pulse_train",
    "ramp",
    "resample",
    "step",
    "times",
]


def n_steps(duration: float, dt: float) -> int:
    """Number of steps of ``dt`` ms in ``duration`` ms (must be a whole number)."""
    dt = positive_number(dt, "dt", "ms")
    duration = positive_number(duration, "duration", "ms")
    n = round(duration / dt)
    if n < 1 or abs(n * dt - duration) > 1e-6 * max(1.0, duration):
        raise ValueError(
            f"`duration` {duration} ms is not a whole number of steps of dt = {dt} ms."
        )
    return n


def times(duration: float, dt: float) -> Array:
    """Start time of every step, ``k · dt`` ms, shape ``(n_steps,)``."""
    return jnp.arange(n_steps(duration, dt)) * dt


def _check_window(start: float, stop: float, duration: float, what: str) -> None:
    """Require finite ``0 <= start <= stop <= duration`` (ms) for the ``what`` window."""
    tol = 1e-6 * max(1.0, duration)  # as in n_steps: times given on the grid
    if not (
        math.isfinite(start)
        and math.isfinite(stop)
        and -tol <= start <= stop + tol
        and stop <= duration + tol
    ):
        raise ValueError(
            f"The {what} must satisfy 0 <= start <= stop <= duration (ms, finite); "
            f"got start = {start}, stop = {stop}, duration = {duration}."
        )


def _times(**times: float) -> list[float]:
    """The named times (ms) as floats: real numbers known when the stimulus is
    built (they fix its layout), else a ``ValueError`` naming the argument."""
    return [concrete_real(value, name, "ms") for name, value in times.items()]


def _window(duration: float, dt: float, start: float, stop: float) -> Array:
    """1.0 on steps whose start ``k·dt`` lies in ``[start, stop)`` ms, else 0.0.

    Edges are compared in float64 whatever JAX's precision, with a millionth of
    a step of tolerance so that an edge given on the grid (``k·dt`` up to
    rounding) is on it. A window of positive length must be at least one step
    long (``ValueError``): a shorter one would hold no step or a whole one, and
    its charge would be lost or multiplied."""
    t = np.arange(n_steps(duration, dt)) * float(dt)
    _check_window(start, stop, duration, "window [`start`, `stop`)")
    tol = 1e-6 * dt
    if tol < stop - start < dt - tol:
        raise ValueError(
            f"The window [{start}, {stop}) ms is shorter than one step (dt = {dt} "
            f"ms): its current would fall on no step or on a whole one. Make it "
            f"at least one step long, or use a smaller dt."
        )
    on = (t >= start - tol) & (t < stop - tol)
    return jnp.asarray(on, dtype=jnp.result_type(float))


def _batch_shape(**shapes: tuple[int, ...]) -> tuple[int, ...]:
    """Broadcast of the named arguments' shapes (the batch shape of a stimulus)."""
    try:
        return jnp.broadcast_shapes(*shapes.values())
    except ValueError:
        got = ", ".join(f"`{name}` {shape}" for name, shape in shapes.items())
        raise ValueError(
            f"Array arguments must broadcast to one batch shape; got {got}."
        ) from None


def _mix(*terms: tuple[ArrayLike, Array]) -> Array:
    """``Σ wave_k ⊗ amplitude_k``: time waveforms ``(n_steps,)`` times amplitudes
    whose shapes broadcast to the batch shape; returns ``(n_steps, *batch)``.
    Concrete amplitudes must be finite (``ValueError``)."""
    for amplitude, _ in terms:
        _check_finite(amplitude, "Current amplitudes", "µA/cm²")
    batch = jnp.broadcast_shapes(*(jnp.shape(a) for a, _ in terms))
    total = jnp.zeros(terms[0][1].shape + batch)
    for amplitude, wave in terms:
        total = total + wave.reshape(wave.shape + (1,) * len(batch)) * jnp.asarray(
            amplitude
        )
    return total


def constant(amplitude: ArrayLike, duration: float, dt: float) -> Array:
    """Constant current of ``amplitude`` µA/cm² for ``duration`` ms.

    Shape ``(n_steps,)``, or ``(n_steps, *amplitude.shape)`` for an array of
    amplitudes (one cell each, e.g. for an f–I curve)."""
    return _mix((amplitude, jnp.ones(n_steps(duration, dt))))


def step(
    amplitude: ArrayLike,
    *,
    start: float,
    stop: float,
    duration: float,
    dt: float,
    baseline: ArrayLike = 0.0,
) -> Array:
    """A current step: ``amplitude`` µA/cm² on ``[start, stop)`` ms, ``baseline``
    elsewhere, over ``duration`` ms. Shape ``(n_steps, *batch)``, the batch shape
    being that of ``amplitude`` and ``baseline`` broadcast (``()`` for numbers):
    ``step(jnp.arange(0.0, 20.0, 2.0), ...)`` is 10 cells, time first."""
    start, stop = _times(start=start, stop=stop)
    window = _window(duration, dt, start, stop)
    return _mix((amplitude, window), (baseline, 1.0 - window))


def pulse_train(
    amplitude: ArrayLike,
    *,
    start: float,
    width: float,
    period: float,
    n_pulses: int,
    duration: float,
    dt: float,
) -> Array:
    """``n_pulses`` rectangular pulses of ``width`` ms every ``period`` ms from
    ``start`` ms, ``amplitude`` µA/cm² each."""
    start, width, period = _times(start=start, width=width, period=period)
    if not 0 < width <= period:
        raise ValueError(
            f"Need 0 < width <= period; got width {width}, period {period}."
        )
    if not is_integer(n_pulses) or n_pulses < 1:
        raise ValueError(f"`n_pulses` must be an integer >= 1; got {n_pulses!r}.")
    n_steps(duration, dt)
    end = start + (n_pulses - 1) * period + width
    _check_window(start, end, duration, "pulse train (stop = end of the last pulse)")
    wave = sum(
        _window(duration, dt, start + k * period, start + k * period + width)
        for k in range(n_pulses)
    )
    return _mix((amplitude, wave))


def ramp(
    amplitude: ArrayLike,
    *,
    start: float,
    stop: float,
    duration: float,
    dt: float,
    initial: ArrayLike = 0.0,
) -> Array:
    """A linear ramp from ``initial`` at ``start`` to ``amplitude`` µA/cm² at ``stop``
    ms (values at step starts), zero outside ``[start, stop)``."""
    start, stop = _times(start=start, stop=stop)
    window = _window(duration, dt, start, stop)
    if stop <= start:
        raise ValueError(f"`stop` ({stop} ms) must be after `start` ({start} ms).")
    t = times(duration, dt)
    frac = jnp.clip((t - start) / (stop - start), 0.0, 1.0)
    return _mix((initial, (1.0 - frac) * window), (amplitude, frac * window))


def ornstein_uhlenbeck(
    mean: ArrayLike,
    std: ArrayLike,
    tau: float,
    *,
    duration: float,
    dt: float,
    key: ArrayLike = 0,
    shape: tuple[int, ...] = (),
) -> Array:
    """Noisy current: an Ornstein–Uhlenbeck process (exactly discretised).

    ``I`` relaxes to ``mean`` with time constant ``tau`` ms and has stationary
    standard deviation ``std`` (µA/cm²); it starts at ``mean``. Array ``mean`` and
    ``std`` give one independent realisation per element, like the amplitudes of
    the other builders: the batch shape is the broadcast of ``mean.shape``,
    ``std.shape`` and ``shape``.

    Args:
        mean: µA/cm², scalar or array (batch).
        std: stationary standard deviation, µA/cm², ``>= 0``, scalar or array.
        tau: correlation time, ms (> 0).
        duration, dt: ms.
        key: a ``jax.random`` key or an integer seed (reproducible): a Python,
            NumPy or 0-d JAX integer.
        shape: batch shape of independent realisations (broadcast with the shapes
            of ``mean`` and ``std``).

    Returns:
        Array ``(n_steps, *batch)`` in µA/cm².

    Raises:
        ValueError: ``tau`` not a positive finite time, ``std`` negative or
            non-finite, ``mean`` non-finite, ``shape`` not a tuple of integers,
            or shapes that do not broadcast.
    """
    tau = positive_number(tau, "tau", "ms")
    mean, std = jnp.asarray(mean), jnp.asarray(std)
    if not is_traced(mean) and not bool(jnp.all(jnp.isfinite(mean))):
        raise ValueError(f"`mean` must be finite (µA/cm²); got {mean}.")
    if not is_traced(std) and not bool(jnp.all(jnp.isfinite(std) & (std >= 0))):
        raise ValueError(f"`std` must be finite and >= 0 µA/cm²; got {std}.")
    if not (isinstance(shape, (tuple, list)) and all(map(is_integer, shape))):
        raise ValueError(f"`shape` must be a tuple of integers; got {shape!r}.")
    batch = _batch_shape(mean=mean.shape, std=std.shape, shape=tuple(shape))
    key = _as_key(key)
    n = n_steps(duration, dt)
    decay = math.exp(-dt / tau)
    kick = math.sqrt(1.0 - decay * decay)
    noise = jax.random.normal(key, (n - 1, *batch), dtype=jnp.result_type(float))

    def advance(x, z):
        x = decay * x + kick * z
        return x, x

    _, xs = jax.lax.scan(advance, jnp.zeros(batch), noise)
    unit = jnp.concatenate([jnp.zeros((1, *batch)), xs])
    return mean + std * unit


def _as_key(key: ArrayLike) -> Array:
    """A ``jax.random`` key from a key or an integer seed (any integer scalar)."""
    dtype = getattr(key, "dtype", None)
    if isinstance(key, numbers.Integral) or (
        dtype is not None and np.ndim(key) == 0 and jnp.issubdtype(dtype, jnp.integer)
    ):
        return jax.random.PRNGKey(key)
    if dtype is not None and (
        jnp.issubdtype(dtype, jax.dtypes.prng_key)
        or (dtype == jnp.uint32 and np.ndim(key) == 1)  # a raw key
    ):
        return key
    raise ValueError(
        "`key` must be a jax.random key or an integer seed; got "
        f"{type(key).__name__} {key!r}."
    )


def from_array(values: ArrayLike) -> Array:
    """Validate a user waveform (µA/cm², shape ``(time, *batch)``) for ``simulate``.

    Returns it as a float array. A concrete waveform must be finite; a traced one
    (under ``jax.jit``) is checked for shape only.
    """
    arr = jnp.asarray(values, dtype=jnp.result_type(float))
    if arr.ndim < 1 or arr.shape[0] < 1:
        raise ValueError(f"A current waveform must be (time, *batch); got {arr.shape}.")
    _check_finite(arr, "The current waveform", "µA/cm²")
    return arr


def resample(
    values: ArrayLike, t: ArrayLike, dt: float, duration: float | None = None
) -> Array:
    """Resample a recorded current onto the simulation grid (zero-order hold).

    Args:
        values: current at the recording's sample times, µA/cm², shape ``(n, *batch)``;
            ``values[j]`` holds on ``[t[j], t[j+1])`` (the last for one more interval).
        t: recording sample times, ms, strictly increasing, shape ``(n,)``; concrete
            (not traced: they set the output's length). A step start that falls short
            of ``t[j]`` only by rounding (of ``t`` in its own precision, or up to
            0.1 % of the finer of ``dt`` and the sample spacing) counts as on it.
        dt: simulation step, ms.
        duration: ms, at most the recording's length ``t[-1] - t[0]`` plus its last
            interval; defaults to that length, which must be a whole number of steps
            up to the rounding of ``t`` (float32 times far from 0 are coarse).

    Returns:
        Array ``(n_steps, *batch)``: the value held at each step start ``t[0] + k·dt``
        (``values[j]`` for the last ``t[j]`` at or before it).

    Raises:
        ValueError: ``t`` traced, not 1-D, not one per sample or not strictly
            increasing; ``duration`` longer than the recording (pad ``values`` and
            ``t`` to simulate past its end) or not a whole number of steps.
    """
    values = jnp.asarray(values, dtype=jnp.result_type(float))
    _check_finite(values, "`values`", "µA/cm²")
    if is_traced(t):
        raise ValueError(
            "`t` (sample times, ms) must be concrete, not traced by jit/vmap/grad: "
            "it sets the output grid. Trace `values` instead."
        )
    t = np.asarray(t)
    if not np.issubdtype(t.dtype, np.floating):
        t = t.astype(np.float64)
    if t.ndim != 1 or values.shape[:1] != t.shape or t.shape[0] < 2:
        raise ValueError(
            f"`t` must be 1-D with one entry per sample of `values`; got {t.shape} and "
            f"{values.shape}."
        )
    if not (np.all(np.isfinite(t)) and np.all(np.diff(t) > 0)):
        raise ValueError("`t` must be strictly increasing (finite times in ms).")
    t64 = t.astype(np.float64)  # indices in float64 whatever the dtype of `values`
    eps = float(np.finfo(t.dtype).eps)
    length = float(t64[-1] - t64[0] + (t64[-1] - t64[-2]))
    slack = _rounding(t64, eps) + 1e-6 * max(1.0, length)  # 1e-6: as in n_steps
    if duration is None:
        duration = _on_grid(length, dt, slack)
    elif duration > length + slack:
        raise ValueError(
            f"`duration` {duration} ms is longer than the recording ({length} ms: "
            "t[-1] - t[0] plus its last interval); pass at most that, or extend "
            "`values` and `t`."
        )
    grid = t64[0] + np.arange(n_steps(duration, dt)) * dt
    tol = _hold_tolerance(t64, eps, dt)
    idx = np.searchsorted(t64, grid + tol, side="right") - 1
    return values[np.clip(idx, 0, t.shape[0] - 1)]


def _rounding(t: np.ndarray, eps: float) -> float:
    """Bound (ms) on the error that rounding sample times ``t`` to their dtype (of
    machine epsilon ``eps``) puts in a difference of a few of them."""
    return 4.0 * eps * float(np.max(np.abs(t)))


def _on_grid(length: float, dt: float, slack: float) -> float:
    """``length`` (ms) as a whole number of steps of ``dt`` ms when it is one up to
    ``slack`` ms, else unchanged (for :func:`n_steps` to refuse)."""
    if not (math.isfinite(dt) and dt > 0):
        return length
    n = round(length / dt)
    return n * dt if n >= 1 and abs(n * dt - length) <= slack else length


def _hold_tolerance(t: np.ndarray, eps: float, dt: float) -> float:
    """How far (ms) a step start may fall short of a sample time ``t[j]`` and still
    take ``values[j]``: the rounding error of ``t`` (``eps``: its dtype's machine
    epsilon) plus 0.1 % of the finest spacing, at most half of that spacing (so at
    most one grid point per sample moves)."""
    spacing = min(dt, float(np.min(np.diff(t))))
    return min(1e-3 * spacing + _rounding(t, eps), 0.5 * spacing)


def _real_array(value: ArrayLike, what: str, unit: str) -> Array:
    """``value`` as an array; a ``ValueError`` naming ``what`` for text, ``None``
    or other values that are not real numbers."""
    try:
        array = jnp.asarray(value)
    except (TypeError, ValueError):
        array = None
    if (
        array is None
        or not jnp.issubdtype(array.dtype, jnp.number)
        or jnp.iscomplexobj(array)
    ):
        raise ValueError(f"{what} must be real numbers ({unit}); got {value!r}.")
    return array


def _check_finite(value: ArrayLike, what: str, unit: str) -> None:
    """Require every element of a concrete ``value`` finite (``what`` in ``unit``);
    the error names the first that is not."""
    if is_traced(value):
        return
    values = np.asarray(value)
    bad = ~np.isfinite(values)
    if bad.any():
        first = np.unravel_index(np.argmax(bad), values.shape)
        where = f"entry {first if values.ndim > 1 else first[0]} is" if first else "got"
        raise ValueError(f"{what} must be finite ({unit}); {where} {values[first]}.")


def _check_positive(value: Array, what: str, unit: str) -> None:
    """Require every element of a concrete ``value`` finite and > 0 ``unit``."""
    if not is_traced(value) and not bool(jnp.all(jnp.isfinite(value) & (value > 0))):
        raise ValueError(f"{what} must be > 0 {unit} and finite; got {value}.")


def pa_to_density(i_pa: ArrayLike, c_pf: ArrayLike, c_m: ArrayLike = 1.0) -> Array:
    """Whole-cell current (pA) to current density (µA/cm²).

    The membrane area is ``c_pf / c_m`` (pF over µF/cm²), so
    ``I [µA/cm²] = I [pA] / C [pF] · c_m [µF/cm²]``.

    Args:
        i_pa: whole-cell current, pA, any shape.
        c_pf: cell capacitance, pF, > 0: a scalar or one per cell/sweep.
        c_m: specific membrane capacitance, µF/cm², > 0 (default 1).

    The three broadcast by NumPy's rules (trailing axes align): for a current in
    :func:`hhjax.simulate`'s layout ``(time, sweep)`` give one capacitance per sweep
    as shape ``(sweep,)``; for a ``(sweep, time)`` array use shape ``(sweep, 1)``.

    Returns:
        Array in µA/cm², of the broadcast shape.

    Raises:
        ValueError: ``c_pf`` or ``c_m`` not finite and > 0 (when concrete), or
            shapes that do not broadcast.
    """
    i_pa = _real_array(i_pa, "`i_pa`", "pA").astype(jnp.result_type(float))
    _check_finite(i_pa, "`i_pa`", "pA")
    c_pf = _real_array(c_pf, "`c_pf`", "pF")
    c_m = _real_array(c_m, "`c_m`", "µF/cm²")
    _check_positive(c_pf, "Cell capacitance `c_pf`", "pF")
    _check_positive(c_m, "Specific membrane capacitance `c_m`", "µF/cm²")
    try:
        jnp.broadcast_shapes(i_pa.shape, c_pf.shape, c_m.shape)
    except ValueError:
        raise ValueError(
            f"`i_pa` {i_pa.shape}, `c_pf` {c_pf.shape} and `c_m` {c_m.shape} must "
            "broadcast together (trailing axes align: one capacitance per sweep of a "
            "(time, sweep) current has shape (sweep,))."
        ) from None
    return i_pa * (c_m / c_pf)
