"""Simulation: one pure step, and the jitted ``lax.scan`` over a current waveform."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.typing import ArrayLike

from hhjax._checks import (
    broadcast_named_shapes,
    check_current,
    check_params,
    check_precision,
    check_state,
    check_state_type,
    is_integer,
    is_out_of_memory,
    is_traced,
    lists_to_arrays,
    value_range,
)
from hhjax._equilibrium import resting_state
from hhjax._integrators import DEFAULT_METHOD, MAX_STABLE_RATE_FACTOR, get_integrator
from hhjax._model import _CHECK_GRID_MV, ChannelCheckError, Model, model_of

# Reverse-mode gradients store the state before every step (each step is
# rematerialised, not its intermediates). When that would exceed this many bytes the
# scan is split into ~sqrt(n) checkpointed chunks, storing O(sqrt(n)) states at the
# cost of one extra forward pass in the backward sweep (two with a `stride` above
# sqrt(n): `_chunk_lengths`).
_GRADIENT_MEMORY_BUDGET = 256 * 2**20


class NonFiniteSimulationError(FloatingPointError):
    """The simulated state became NaN or infinite."""


class StepSizeWarning(UserWarning):
    """``dt`` is above the stability limit of the chosen integration method."""


class TimeAxisWarning(UserWarning):
    """``i_ext`` looks transposed: a run of under 1 ms for a much longer batch
    axis, as when a ``(batch, time)`` array is passed for ``(time, *batch)``."""


def step(
    state: Any,
    params: Any,
    i_ext: ArrayLike,
    dt: ArrayLike,
    method: str = DEFAULT_METHOD,
) -> Any:
    """Advance the state by one step. Pure; not jitted (jit it, or use ``simulate``).

    Every gate is integrated, also those of a channel switched off by a zero
    conductance (which :func:`simulate` holds; V is the same either way). Meant for
    your own loops (inside ``jit``/``scan``): only the types of ``state`` and
    ``params`` are checked, not their values, ``i_ext`` or ``dt`` (a NaN, a current
    in pA or a negative ``dt`` give a wrong state, not an error); :func:`simulate`
    checks them all.

    Args:
        state: the model's state tuple (e.g. :class:`hhjax.HHState`), V in mV.
        params: the model's parameter tuple (e.g. :class:`hhjax.HHParams`); the
            voltage convention is that of ``params``.
        i_ext: injected current over the step, µA/cm² (inward positive), scalar or
            broadcastable to the batch shape.
        dt: step, ms.
        method: integrator name, see :data:`hhjax.METHODS`.

    Returns:
        The state after ``dt`` ms, same type and batch shape.
    """
    model = model_of(params)
    check_state_type(state, model, "state")
    params, state = lists_to_arrays(params), lists_to_arrays(state)
    return get_integrator(method).step(model, state, params, i_ext, dt)


# --------------------------------------------------------------------------- checks
def _check_dt(dt: Any, method: str, model: Model, params: Any) -> Any:
    if is_traced(dt):
        return dt
    if np.ndim(dt) != 0:
        raise ValueError(f"`dt` must be a scalar step in ms; got shape {np.shape(dt)}.")
    kind = np.asarray(dt).dtype.kind
    if kind not in "fiu":  # not bool, complex, str, object
        raise ValueError(f"`dt` must be a real number of ms; got {dt!r}.")
    dt_value = float(dt)
    if not math.isfinite(dt_value) or dt_value <= 0:
        raise ValueError(f"`dt` must be a positive, finite step in ms; got {dt_value}.")
    limit, factor = largest_stable_dt(method, model, params)
    hot = ""
    if factor > MAX_STABLE_RATE_FACTOR:
        hot = f" with rates {factor:.3g}x their value at the reference temperature"
    if dt_value > limit:
        warnings.warn(
            f"dt = {dt_value} ms is above {limit:.3g} ms, where method {method!r} "
            f"becomes unstable or inaccurate for spiking HH-type cells{hot}; use a "
            "smaller dt.",
            StepSizeWarning,
            stacklevel=3,
        )
    return dt_value


def largest_stable_dt(method: str, model: Model, params: Any) -> tuple[float, float]:
    """``(dt, factor)``: the step (ms) above which :func:`simulate` warns that
    ``method`` becomes unstable for spiking cells of ``model`` with ``params``
    (:attr:`Integrator.max_stable_dt`, shortened in proportion for rates faster than
    :data:`MAX_STABLE_RATE_FACTOR`), and the rates' largest temperature factor."""
    factor = _max_rate_factor(model, params)
    limit = get_integrator(method).max_stable_dt
    if factor > MAX_STABLE_RATE_FACTOR:
        limit *= MAX_STABLE_RATE_FACTOR / factor
    return limit, factor


def _max_rate_factor(model: Model, params: Any) -> float:
    """Largest temperature factor of the model's rates (``q10 ** ((T - T_ref)/10)``
    over channels and cells) for concrete parameters; 1 when traced or not finite."""
    if is_traced(params):
        return 1.0
    t_ref = model.reference_temperature
    factors = [1.0]
    for q10_field in {ch.q10_param for ch in model.channels}:
        q10, temperature = getattr(params, q10_field), params.temperature
        if type(q10) is float and type(temperature) is float and q10 > 0:
            with contextlib.suppress(OverflowError):  # the common case: no NumPy
                factors.append(q10 ** ((temperature - t_ref) / 10.0))
            continue
        with np.errstate(all="ignore"):  # bad values are check_params' to report
            power = np.asarray(q10, float) ** (
                (np.asarray(temperature, float) - t_ref) / 10.0
            )
        factors.append(float(np.max(power, initial=1.0)))
    return max((f for f in factors if math.isfinite(f)), default=1.0)


def _check_current(i_ext: Any, check_values: bool) -> Any:
    if not is_traced(i_ext):
        if not isinstance(i_ext, jax.Array):  # asarray of an Array costs ~50 us
            i_ext = jnp.asarray(i_ext)
        if not jnp.issubdtype(i_ext.dtype, jnp.floating):
            if not jnp.issubdtype(i_ext.dtype, jnp.integer):
                raise ValueError(
                    f"`i_ext` must be real currents in uA/cm^2; got dtype {i_ext.dtype}."
                )
            i_ext = i_ext.astype(jnp.result_type(float))
    if i_ext.ndim < 1 or i_ext.shape[0] < 1:
        raise ValueError(
            "`i_ext` must have shape (time, *batch) with at least one time step, in "
            f"uA/cm^2; got shape {i_ext.shape}. For a constant current use "
            "hhjax.stimulus.constant(amplitude, duration, dt)."
        )
    if check_values:
        check_current(i_ext)
    return i_ext


def _warn_if_time_axis_last(i_ext: Any, dt: Any) -> None:
    """:class:`TimeAxisWarning` when ``i_ext`` spans under 1 ms (concrete ``dt``)
    and its last axis is at least 10 times longer than its time axis."""
    n_steps, last = i_ext.shape[0], i_ext.shape[-1]
    short = not is_traced(dt) and n_steps * dt < 1.0
    if i_ext.ndim >= 2 and last >= 10 * n_steps and short:
        warnings.warn(
            f"`i_ext` has shape {tuple(i_ext.shape)}: {n_steps} time steps "
            f"({n_steps * dt:.3g} ms) for a batch axis of {last}. simulate "
            "expects (time, *batch); if time is your last axis, pass "
            "jnp.moveaxis(i_ext, -1, 0). For a run this short on purpose, "
            "pass check_inputs=False or filter hhjax.TimeAxisWarning.",
            TimeAxisWarning,
            stacklevel=3,
        )


def _record_fields(record: str | Iterable[str], model: Model) -> tuple[str, ...]:
    available = model.trace_type._fields[1:]
    if isinstance(record, str):
        if record == "all":
            return available
        record = (record,)
    fields = tuple(record)
    unknown = [f for f in fields if f not in available]
    if unknown or not fields:
        raise ValueError(
            f"`record` must be 'all' or names among {available}; got {fields}."
        )
    return tuple(f for f in available if f in fields)


def _shape(x: Any) -> tuple[int, ...]:
    # Arrays and tracers have .shape; np.shape (not jnp.shape, which checks its
    # argument on every call) for nested lists; Python numbers (most parameter
    # fields) without either.
    if type(x) in (float, int) or x is None:
        return ()
    shape = getattr(x, "shape", None)
    return tuple(shape) if shape is not None else np.shape(x)


def _batch_shape(i_ext: Any, params: Any, state0: Any) -> tuple[int, ...]:
    shapes = {"i_ext[0]": i_ext.shape[1:]}
    shapes.update({f"params.{k}": _shape(v) for k, v in params._asdict().items()})
    if state0 is not None:
        shapes.update({f"state0.{k}": _shape(v) for k, v in state0._asdict().items()})
    return broadcast_named_shapes(
        shapes,
        "The batch shapes of `i_ext` (its trailing axes), the parameters and `state0`",
    )


# ----------------------------------------------------------------------- the scan
def compiled_fields(params: Any) -> tuple[tuple[str, Any], ...]:
    """The fields of ``params`` that :func:`simulate` compiles in as constants.

    Those given as plain Python numbers (not NumPy or JAX scalars, not arrays)
    that either equal their default (a Q10 factor of 1, a ``v_shift`` of 0 then
    cost nothing per step) or are 0 for the conductance of a channel that can be
    switched off (its ``conductance_param``, e.g. ``g_d`` or the FS set's
    ``g_m``; the channel is then not integrated, see :func:`simulate`). Every
    other field is a run-time argument: changing it does not recompile. Code
    that calls :func:`simulate` inside its own ``jax.jit`` gets the same
    constants by passing these fields as static values (in a jit every argument
    is traced).

    Returns:
        ``((name, value), ...)`` in field order.
    """
    defaults = type(params)._field_defaults
    off = {
        ch.conductance_param for ch in model_of(params).channels if ch.is_off(params)
    }
    return tuple(
        (name, value)
        for name, value in params._asdict().items()
        if name in off
        or (
            type(value) in (float, int)
            and type(defaults.get(name)) is type(value)
            and value == defaults[name]
        )
    )


def _split_constants(params: Any) -> tuple[tuple[tuple[str, Any], ...], Any]:
    """The constant fields (:func:`compiled_fields`) as ``((name, value), ...)``
    and ``params`` with them ``None`` (compiled into the scan; XLA folds them)."""
    constants = compiled_fields(params)
    if not constants:
        return (), params
    return constants, params._replace(**{name: None for name, _ in constants})


def _chunk_lengths(
    n_steps: int, stride: int, batch_size: int, n_state: int
) -> tuple[int, int]:
    """``(blocks per checkpointed chunk, steps per checkpointed chunk of a
    block)``, a block being the ``stride`` steps of one recorded sample.

    No chunks (``(n_steps // stride, stride)``) unless the states stored for a
    reverse-mode gradient would exceed ``_GRADIENT_MEMORY_BUDGET`` bytes. Then
    chunks of about √n steps: ``√n // stride`` blocks each, or, for blocks of more
    than √n steps, one block per chunk with its steps in chunks of about
    √stride. A gradient then stores O(√n) states whatever the stride, at the
    cost of one more forward pass in the backward sweep (two for blocks of more
    than √n steps)."""
    n_blocks = n_steps // stride
    stored_bytes = 8 * n_steps * batch_size * n_state
    if stored_bytes <= _GRADIENT_MEMORY_BUDGET:
        return n_blocks, stride
    root = math.isqrt(n_steps)
    if stride <= root:
        return max(1, root // stride), stride
    return 1, math.isqrt(stride)


def _scan_in_chunks(f: Any, carry: Any, xs: Array, chunk: int) -> tuple[Any, Any]:
    """``lax.scan(f, carry, xs)`` as a scan of checkpointed chunks of ``chunk``
    iterations (and a plain scan of the rest): a reverse-mode gradient stores the
    carry at each chunk's start, then one chunk's residuals at a time, at the cost
    of one more forward pass. ``chunk >= len(xs)``: the plain scan."""
    n = xs.shape[0]
    if chunk >= n:
        return lax.scan(f, carry, xs)
    n_chunks, rest = divmod(n, chunk)

    @partial(jax.checkpoint, prevent_cse=False)
    def run_chunk(carry, xs_chunk):
        return lax.scan(f, carry, xs_chunk)

    head = xs[: n_chunks * chunk].reshape((n_chunks, chunk) + xs.shape[1:])
    carry, ys = lax.scan(run_chunk, carry, head)
    ys = jax.tree.map(lambda y: y.reshape((n_chunks * chunk,) + y.shape[2:]), ys)
    if rest:
        carry, tail = lax.scan(f, carry, xs[n_chunks * chunk :])
        ys = jax.tree.map(lambda y, t: jnp.concatenate([y, t]), ys, tail)
    return carry, ys


def _run_dtype(i_ext: Any, params: Any, state0: Any) -> Any:
    """The float type a run computes in: JAX's promotion of the inputs given (a
    default state0, the resting state in the default float type, does not
    promote it; Python numbers are weak types)."""
    return jnp.result_type(i_ext, *jax.tree.leaves(params), *jax.tree.leaves(state0))


def _run_impl(
    model,
    method,
    fields,
    stride,
    batch_shape,
    chunk,
    constants,
    params,
    i_ext,
    dt,
    state0,
):
    integrator = get_integrator(method)
    params = params._replace(**dict(constants))
    dtype = _run_dtype(i_ext, params, state0)
    if state0 is None:
        state0 = resting_state(params)
    state0 = jax.tree.map(
        lambda x: jnp.broadcast_to(x, batch_shape).astype(dtype), state0
    )
    i_ext = i_ext.astype(dtype)
    dt = jnp.asarray(dt, dtype)
    wants_currents = any(f.startswith("i_") for f in fields)
    # Channels whose conductance is compiled in as 0 are not integrated: their
    # current is 0 (V is unchanged by it) and their gates are held at state0,
    # outside the scan's carry (each carried array costs XLA:CPU loop fusions
    # per step; measured in docs/real_cells.md, "Both steps of the FSI").
    model = model.switched_off(params)
    held = {g: getattr(state0, g) for g in model.held_gates}
    state0 = state0._replace(**dict.fromkeys(held))

    def sample(state):
        values = {**state._asdict(), **held}
        if wants_currents:
            values.update(model.currents(state, params))
        return tuple(jnp.broadcast_to(values[f], batch_shape) for f in fields)

    # Rematerialise the step in the backward pass: only the state before each step
    # is stored. prevent_cse=False: inside a scan CSE cannot merge steps, and the
    # optimisation barrier it would add slows the forward pass.
    @partial(jax.checkpoint, prevent_cse=False)
    def one_step(state, i_k):
        return integrator.step(model, state, params, i_k, dt)

    block_chunk, step_chunk = chunk

    def advance(state, i_k):
        return one_step(state, i_k), None

    def block(state, i_block):  # record, then advance `stride` steps
        out = sample(state)
        if stride == 1:  # no inner loop: a length-1 scan would cost a loop per step
            return one_step(state, i_block), out
        state, _ = _scan_in_chunks(advance, state, i_block, step_chunk)
        return state, out

    n_blocks = i_ext.shape[0] // stride
    if stride == 1:
        blocks = i_ext
    else:
        blocks = i_ext.reshape((n_blocks, stride) + i_ext.shape[1:])
    state, out = _scan_in_chunks(block, state0, blocks, block_chunk)

    # NaN and inf propagate through every step (a non-finite V makes the rates and
    # gates NaN), so a non-finite sample implies a non-finite final state: checking
    # the final state is enough and avoids another pass over the recorded trace.
    finite = jnp.all(jnp.isfinite(state.v))
    return tuple(out), state._replace(**held), finite


_STATIC = ("model", "method", "fields", "stride", "batch_shape", "chunk", "constants")
_run = jax.jit(_run_impl, static_argnames=_STATIC)


# Built by its own small jit, not inside the scan's: measured for one cell × 1e5
# steps, the time axis cost 3-10 % of the call inside the scan's jit, ~1 % outside.
@partial(jax.jit, static_argnames=("n_samples", "stride", "dtype"))
def _sample_times(n_samples: int, stride: int, dtype: Any, dt: Any) -> Array:
    """``t[k] = k · stride · dt`` ms, ``k < n_samples``, in ``dtype``."""
    return jnp.arange(n_samples, dtype=dtype) * (stride * jnp.asarray(dt, dtype))


def simulate(
    params: Any,
    i_ext: ArrayLike,
    dt: float,
    *,
    state0: Any = None,
    method: str = DEFAULT_METHOD,
    record: str | Iterable[str] = "all",
    stride: int = 1,
    return_state: bool = False,
    check_inputs: bool = True,
) -> Any:
    """Simulate a model under an injected current: ``jax.lax.scan`` of :func:`step`
    (except for switched-off channels, below).

    The scan is jitted and cached: a second call with the same shapes, dtypes and
    options does not recompile (``dt`` and all array values may change). A
    parameter given as a plain Python number equal to its default, or a
    switchable channel's conductance given as the Python number 0, is compiled in
    as a constant (:func:`compiled_fields`; faster steps: a Q10 factor of 1 or a
    ``v_shift`` of 0 costs nothing), so moving such a field off that value
    compiles once more; pass a NumPy or JAX scalar to avoid that in a sweep
    through it. A channel switched off that way (its ``conductance_param``
    compiled in as 0, e.g. ``g_d`` of the Pospischil model, or the FS set's
    ``g_m``) is not integrated: its current is 0, V is as with the channel
    integrated (to rounding: XLA may fuse the shorter step differently; bit for
    bit with ``rk4`` in the tests), and its gates stay at their ``state0`` values in the
    trace and the final state (unlike :func:`step`, which integrates every gate;
    give the conductance as an array, or differentiate with respect to it, to
    integrate them). Gradients
    (``jax.grad``, ``jax.jvp``) and ``jax.vmap`` work through it. Reverse-mode
    gradients recompute each step instead of storing its intermediates, so they
    store one state per step; when that would exceed 256 MiB (long runs of large
    batches) the run is split into ~√n checkpointed chunks (and so is each
    recorded block of a ``stride`` above ~√n steps) and a gradient stores O(√n)
    states, whatever the ``stride``. (That 256 MiB is judged from the batch
    ``simulate`` sees: under an outer ``jax.vmap`` it sees one cell, so a
    gradient of a ``vmap`` over many cells stores more; batch the parameters or
    the current instead to keep the bound.) Inputs sharded over a
    ``jax.sharding.Mesh`` along the batch axis are simulated in parallel on its
    devices, and the trace comes back sharded alike (see ``docs/benchmarks.md``,
    also for recommended ``XLA_FLAGS`` on CPU).

    Sampling (which time each sample belongs to): sample ``k`` of the returned
    trace is the state at ``t[k] = k · stride · dt`` ms *before* the step that
    starts there, so ``v[0]`` is ``state0``, and ``i_ext[k]`` acts on
    ``[k·dt, (k+1)·dt)``. With ``T = i_ext.shape[0]`` steps the trace has
    ``T / stride`` samples; the state after the last step is not a sample (get it
    with ``return_state=True``). This lines up with recordings: ``v[k]`` is to be
    compared with the recorded sample at ``t[k]``. Currents (``i_na`` …) are
    computed from the same state as ``v[k]``.

    Voltage convention: that of ``params`` (modern by default; see
    :meth:`hhjax.HHParams.hh1952`).

    Precision: the run computes in the float type that JAX's promotion gives
    ``i_ext``, the array fields of ``params`` and ``state0`` together (Python
    numbers do not count): all float32 runs in float32, a float32 current with
    float64 parameter arrays in float64. float64 needs
    ``jax.config.update("jax_enable_x64", True)``. Measured for standard HH (8
    cells, g_na 100–140 mS/cm², a 90 ms step of 10 µA/cm²; rk4 and exp_euler,
    dt 0.025 and 0.01 ms): float32 V within 0.02–0.09 mV of float64, the same
    spike counts. float16 and bfloat16 are refused.

    Args:
        params: a model's parameter tuple (e.g. :class:`hhjax.HHParams`); each leaf
            a scalar or an array broadcasting against the batch shape.
        i_ext: injected current density, µA/cm² (inward, depolarising positive),
            shape ``(time, *batch)``.
        dt: step, ms (a Python or array scalar).
        state0: initial state tuple; ``None`` means ``resting_state(params)``.
        method: integrator name: ``"euler"``, ``"exp_euler"``, ``"exp_midpoint"``,
            ``"heun"`` or ``"rk4"`` (see ``docs/integrators.md``). Under strong
            hyperpolarising currents (below about −15 µA/cm² for HH, where the
            gates' rates grow steeply) the explicit methods may diverge even at
            ``dt`` = 0.01 ms; ``"exp_euler"`` and ``"exp_midpoint"`` stay finite.
        record: ``"all"``, or the names of trace fields to record (e.g. ``("v",)``);
            the others are ``None`` in the returned trace.
        stride: record every ``stride``-th sample; must divide ``T``.
        return_state: also return the state after the last step.
        check_inputs: check values of concrete inputs (finite, plausible units)
            and the finiteness of the result. Shapes and dtypes are always
            checked. Values inside ``jax.jit`` or ``jax.vmap`` are tracers and
            are not checked: a diverging run there returns NaN without an error
            (test ``jnp.isfinite`` of the result yourself, or batch the
            parameters instead of ``vmap``-ing over them, which keeps the
            checks). Under ``jax.grad`` / ``jax.jvp`` alone the values are
            known and checked after a non-finite result.

    Returns:
        The model's trace tuple (e.g. :class:`hhjax.Trace`): ``t`` of shape
        ``(T/stride,)`` in ms and each recorded field of shape
        ``(T/stride, *batch)``; with ``return_state=True``, ``(trace, final_state)``.

    Raises:
        ValueError: bad shapes, a float type under 32 bits (``float16``,
            ``bfloat16``), ``dt <= 0``, unknown ``method`` or ``record``,
            and with ``check_inputs``: non-finite inputs, currents that look like
            pA, unphysical parameters (a negative conductance; ``c_m``, a Q10 or a
            time constant <= 0; a reversal potential beyond ±500 mV; a
            temperature outside (−273.15, 100] °C) or a gate
            of ``state0`` far outside [0, 1].
        NonFiniteSimulationError: the simulation produced NaN or inf (also when
            ``state0`` is ``None`` and the parameters have no resting state).
        MemoryError: the run could not allocate its trace (the message gives
            its size); with ``check_inputs=False``, an allocation that fails
            while the run proceeds asynchronously surfaces only when the result
            is read, as JAX's own error.

    Warns:
        StepSizeWarning: ``dt`` above the method's stability limit.
        TimeAxisWarning: with ``check_inputs``, ``i_ext`` spans under 1 ms and its
            last axis is at least 10 times longer than its time axis (it looks
            like ``(batch, time)``).
    """
    model = model_of(params)
    get_integrator(method)
    params = lists_to_arrays(params)
    if check_inputs:  # before the step-size warning, which depends on them
        check_params(params)
    dt = _check_dt(dt, method, model, params)
    i_ext = _check_current(i_ext, check_inputs)
    if check_inputs:
        _warn_if_time_axis_last(i_ext, dt)
    if state0 is not None:
        check_state_type(state0, model, "state0")
        state0 = lists_to_arrays(state0)
        if check_inputs:
            check_state(state0)
    for tree, name in ((i_ext, "i_ext"), (params, "params"), (state0, "state0")):
        check_precision(tree, name)
    fields = _record_fields(record, model)
    n_steps = i_ext.shape[0]
    if not is_integer(stride) or stride < 1 or n_steps % stride:
        raise ValueError(
            f"`stride` must be a positive integer dividing the {n_steps} time steps; "
            f"got {stride!r}."
        )
    stride = int(stride)  # a NumPy integer would be a distinct static argument
    batch_shape = tuple(_batch_shape(i_ext, params, state0))
    n_state = len(model.state_type._fields)
    chunk = _chunk_lengths(n_steps, stride, math.prod(batch_shape), n_state)
    constants, run_params = _split_constants(params)
    try:
        out, final, finite = _run(
            model,
            method,
            fields,
            stride,
            batch_shape,
            chunk,
            constants,
            run_params,
            i_ext,
            dt,
            state0,
        )
        if check_inputs and not is_traced(finite):
            # Wait here: np.asarray of an output of a failed XLA:CPU run waits
            # forever (JAX 0.10), block_until_ready raises its error.
            jax.block_until_ready(finite)
    except jax.errors.JaxRuntimeError as err:
        if not is_out_of_memory(err):
            raise
        shape = (n_steps // stride, *batch_shape)
        dtype = _run_dtype(i_ext, run_params, state0)
        raise _out_of_memory(err, fields, shape, dtype) from None
    recorded = dict(zip(fields, out, strict=True))
    t = _sample_times(n_steps // stride, stride, out[0].dtype, dt)
    trace = model.trace_type(
        t=t, **{f: recorded.get(f) for f in model.trace_type._fields[1:]}
    )
    # np.asarray, not bool(): ~70 us less per call, measured after a 10^5-step run.
    if check_inputs and not is_traced(finite) and not np.asarray(finite):
        _raise_non_finite(
            model, trace, final.v, dt, method, i_ext, params, at_rest=state0 is None
        )
    return (trace, final) if return_state else trace


def _out_of_memory(
    err: Exception, fields: tuple[str, ...], shape: tuple[int, ...], dtype: Any
) -> MemoryError:
    """The ``MemoryError`` for a run that could not allocate: what its recorded
    trace takes (``fields``, each of ``shape``, in the run's float type
    ``dtype``), and what to ask for less of."""
    dtype = jnp.dtype(jnp.result_type(dtype, float))
    size = len(fields) * math.prod(shape) * dtype.itemsize
    fewer = "" if len(fields) == 1 else "fewer fields (e.g. `record=('v',)`), "
    return MemoryError(
        f"The simulation ran out of memory ({str(err).splitlines()[0]}). Its "
        f"recorded trace alone takes {size / 2**30:.3g} GiB ({len(fields)} "
        f"field{'s' if len(fields) > 1 else ''} of shape {shape}, {dtype.name}). "
        f"Record {fewer}fewer samples (a larger "
        "`stride`), or simulate the batch in parts."
    )


def _failed_cells(v_final: Any) -> str:
    """Which cells of a batch ended non-finite (`` in 1 of 16 cells (batch index
    4; ...)``) and that the others can be had; ``""`` for one cell or values
    that are not known."""
    if v_final is None or is_traced(v_final) or np.ndim(v_final) == 0:
        return ""
    bad = ~np.isfinite(np.asarray(v_final))
    cells = [tuple(int(i) for i in c) for c in np.argwhere(bad)]
    if not cells:
        return ""
    if len(cells) == bad.size:
        return f" in all {bad.size} cells"
    shown = ", ".join(str(c[0]) if len(c) == 1 else str(c) for c in cells[:5])
    more = ", …" if len(cells) > 5 else ""
    return (
        f" in {len(cells)} of {bad.size} cells (batch index {shown}{more}; with "
        "`check_inputs=False` the other cells' results are returned, NaN for these)"
    )


def _raise_non_finite(
    model: Model,
    trace: Any,
    v_final: Any,
    dt: Any,
    method: str,
    i_ext: Any,
    params: Any,
    at_rest: bool,
) -> None:
    ran = model.switched_off(params)  # before stop_gradient makes 0 an array
    # Under jax.grad / jax.jvp (not jit) V, the current and the parameters are
    # tracers around concrete values; stop_gradient hands back those values,
    # which were not checked on the way in (a NaN current under jax.grad).
    v, v_final, i_ext, params = jax.lax.stop_gradient((trace.v, v_final, i_ext, params))
    check_current(i_ext)
    check_params(params)
    cells = _failed_cells(v_final)
    where, current = "", ""
    visited = None  # the voltages the run went through, mV, if known
    if v is not None and not is_traced(v):
        values = np.asarray(v)
        bad = ~np.isfinite(values).reshape(len(trace.t), -1).all(axis=1)
        if bad.any():
            where = f" at t = {float(trace.t[int(np.argmax(bad))]):g} ms"
        if at_rest and bad[0]:  # the default start, the resting state, is NaN
            raise NonFiniteSimulationError(
                "The simulation starts from the resting state (`state0=None`), "
                "which these parameters (of at least one cell) lack: the net "
                "steady-state current does not cross zero (e.g. every conductance "
                "is 0; see hhjax.resting_state). Pass a `state0`."
                + _channel_problems(ran, params, None)
            )
        finite = values[np.isfinite(values)]
        if finite.size:
            visited = (float(finite.min()), float(finite.max()))
    if not is_traced(i_ext):  # value_range: XLA:CPU's max may skip NaN
        current = f" and max |i_ext| = {max(map(abs, value_range(i_ext))):g} uA/cm^2"
    stable = method in ("exp_euler", "exp_midpoint")
    other_method = (
        ""
        if stable
        else "use a more stable method ('exp_euler' or 'exp_midpoint' stay stable "
        "where fast gates make the others stiff, e.g. under strong hyperpolarising "
        "currents), "
    )
    raise NonFiniteSimulationError(
        f"The simulation became non-finite (NaN or inf){where}{cells} with method "
        f"{method!r}, dt = {dt} ms{current}. Reduce `dt`, {other_method}or check "
        "that the current is in uA/cm^2 and the parameters are physical."
        + _channel_problems(ran, params, visited)
    )


def _channel_problems(ran: Model, params: Any, visited: Any) -> str:
    """`` A likely cause: ...`` when the channels that ran (``ran``: the model
    without those switched off) fail the value checks of
    :meth:`Model.check_channels` between the lowest and highest V the run
    reached (``visited``, mV; ``None``: the default grid), else ``""``."""
    if any(is_traced(x) for x in params):
        return ""
    grid = _CHECK_GRID_MV
    if visited is not None:
        low, high = visited
        grid = grid[(grid >= low - 0.5) & (grid <= high + 0.5)]
        if not grid.size:
            return ""
    try:
        ran.check_channels(params, grid, slopes=False)
    except ChannelCheckError as err:
        return f" A likely cause: {err}"
    return ""
