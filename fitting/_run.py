"""The compiled multi-start run of :func:`fitting.fit`: stages, chunks of
iterations, history, and its (de)serialisation for checkpoints. Compiled stages
are cached across fits of the same shape.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fitting._interrupt import WORKER_PREFIX, with_thread_settings
from fitting._io import mismatched_checkpoint
from fitting._memory import check_fits_in_memory, needed_bytes, out_of_memory
from fitting._optim import levenberg_marquardt, optax_method
from fitting._uncertainty import warm_up

_LM_PATIENCE = 5  # LM stops when no start improved by `tolerance` in this many steps
_STRAGGLER_RATIO = 1.1  # ... or the only ones still improving are this much worse
_STRAGGLER_GAIN = 0.05  # than the best and gained less than this over _LM_PATIENCE
# Stages before the last only need to land in the next stage's basin: they stop
# at this relative tolerance (or the fit's, if larger).
_INTERMEDIATE_TOL = 1e-4
_OPTAX_CHUNK = 10  # optax iterations per compiled call


# Compiled stages of recent fits, keyed by everything that shapes the program (loss,
# data shapes, free parameters and bounds, fixed values, optimizer, starts, dtype):
# a second fit of the same kind (another cell, a resumed fit) skips compilation.
_COMPILED: dict = {}
_CACHE_SIZE = 16
_CACHE_LOCK = threading.Lock()


def compile_key(loss, data, method, space, modes, n_starts, dtype, mesh):
    """Key of the compiled-stage cache: everything that shapes the program;
    ``None`` (no caching) when a part of it cannot be hashed, or for a loss that
    is not a frozen dataclass (its hash is its identity, which stays the same when
    its attributes change: a cached program would compute the old loss)."""
    params = getattr(type(loss), "__dataclass_params__", None)
    if params is None or not params.frozen:
        return None
    key = (
        loss,
        data.n_samples,
        data.n_sweeps,
        data.dt,
        method,
        space.free,
        tuple(space.lower),
        tuple(space.upper),
        space.base,
        tuple(modes),
        n_starts,
        dtype,
        mesh,
    )
    try:
        hash(key)
    except TypeError:  # e.g. a loss with unhashable fields: no caching
        return None
    return key


def _carry_offsets(previous, stage, delta) -> np.ndarray | None:
    """Offsets for ``stage`` from those fitted in ``previous``: each window starts
    from the offset fitted at its start sample (0 where ``previous`` had none).
    Window offsets estimate the recording noise at the window starts, so the next
    stage need not find them again from zero."""
    if previous.delta_starts is None or stage.delta_starts is None:
        return None
    delta = np.asarray(delta)  # (n_starts, W_prev, S)
    row = {s: k for k, s in enumerate(previous.delta_starts)}
    out = np.zeros((delta.shape[0], len(stage.delta_starts), delta.shape[2]))
    for j, start in enumerate(stage.delta_starts):
        if start in row:
            out[:, j] = delta[:, row[start]]
    return out


class _Compiled(NamedTuple):
    kind: str
    chunk: int
    n_iter: int
    delta_shape: tuple[int, ...]
    init: Callable
    result: Callable
    run_chunk: Callable
    template: Any
    bytes_needed: int | None  # per device, by a chunk (XLA's buffer assignment)


class Run:
    """The state machine of a fit: stages, chunks of iterations, history, and the
    (de)serialisation of all of it for checkpoints."""

    def __init__(
        self, space, stages, plans, modes, arrays_of, n_starts, stage_types, tol,
        key=None, mesh=None,
    ):  # fmt: skip
        self.key = key
        # With a mesh: every array with a leading starts axis is split over all of
        # its devices, the data are replicated.
        self.split = self.replicated = None
        if mesh is not None:
            axes = tuple(mesh.axis_names)
            self.split = jax.sharding.NamedSharding(
                mesh, jax.sharding.PartitionSpec(axes)
            )
            self.replicated = jax.sharding.NamedSharding(
                mesh, jax.sharding.PartitionSpec()
            )
            arrays_of = jax.device_put(arrays_of, self.replicated)
        self.space = space
        self.stages = stages
        self.plans = plans
        self.modes = modes
        self.arrays_of = arrays_of  # {dtype name: the data as FitArrays}
        self.n_starts = n_starts
        self.stage_types = stage_types  # float type of each stage
        self.tol = tol
        self.loss_records: list[np.ndarray] = []
        self.z_records: list[np.ndarray] = []
        self.stage_records: list[int] = []
        self.time_records: list[float] = []  # seconds since the fit began
        self.clock = time.perf_counter
        self.time_offset = 0.0  # seconds of earlier sessions (resumed fits)
        self.stage = 0
        self.done = False
        self._final = None
        self._committed = None  # nothing to checkpoint until a stage is entered
        self._pool = None
        self._futures = {}
        self._precompiling = False
        self.want_uncertainty = False
        # Seconds the main thread spent on each stage's compilation (compiling
        # it, or waiting for the background compilation to finish).
        self.setup_seconds: dict[int, float] = {}

    # -- compiled pieces of each stage ---------------------------------------------
    def _cache_key(self, index: int):
        return None if self.key is None else (*self.key, index, self.plans[index])

    def is_built(self, index: int) -> bool:
        """Whether stage ``index`` is compiled already (by an identical fit before,
        or in the background): entering it costs no compilation."""
        future = self._futures.get(index)
        if future is not None:
            return future.done()
        key = self._cache_key(index)
        with _CACHE_LOCK:
            return key is not None and key in _COMPILED

    def _build(self, index: int) -> _Compiled:
        """Jitted init/result and the compiled chunk of ``chunk`` iterations
        (from the cache when an identical fit compiled them before)."""
        key = self._cache_key(index)
        with _CACHE_LOCK:
            cached = _COMPILED.get(key) if key is not None else None
        if cached is not None:
            return cached
        built = self._compile(index)
        if key is not None:
            with _CACHE_LOCK:
                _COMPILED[key] = built
                while len(_COMPILED) > _CACHE_SIZE:
                    _COMPILED.pop(next(iter(_COMPILED)))
        return built

    def _compile(self, index: int) -> _Compiled:
        stage = self.stages[index]
        kind, opt, n_iter = self.plans[index]
        if kind == "lm":
            m = levenberg_marquardt(stage, self.space)
            chunk = 1
        else:
            m = optax_method(stage, self.space, opt, self.modes[index])
            # The last chunk of a stage may do fewer iterations (the argument
            # `count`), so that a stage runs exactly n_iter iterations.
            chunk = min(_OPTAX_CHUNK, n_iter)
        delta_shape = (self.n_starts,) + (stage.delta_shape or (0,))
        shard = {}
        if self.split is not None:
            records = jax.sharding.NamedSharding(
                self.split.mesh, jax.sharding.PartitionSpec(None, *self.split.spec)
            )
            shard = {
                "in_shardings": (self.split, self.replicated, self.replicated),
                "out_shardings": (self.split, records),
            }
        init = jax.jit(
            jax.vmap(m.init, in_axes=(0, 0, None)),
            **({"out_shardings": self.split} if shard else {}),
        )
        step = jax.vmap(m.step, in_axes=(0, None))

        def chunk_fn(state, data, count):
            """``chunk`` iterations, of which the first ``count`` are done; the
            others leave the state as it is (their records are dropped)."""

            def body(st, k):
                if chunk == 1:
                    new = step(st, data)
                else:
                    new = lax.cond(k < count, lambda s: step(s, data), lambda s: s, st)
                return new, jax.vmap(m.observe)(st, new)

            return lax.scan(body, state, jnp.arange(chunk, dtype=jnp.int32))

        float_type, arrays = self.stage_types[index], self._arrays(index)
        z = jax.ShapeDtypeStruct((self.n_starts, self.space.n_free), float_type)
        d = jax.ShapeDtypeStruct(delta_shape, float_type)
        template = jax.eval_shape(init, z, d, arrays)
        count = jax.ShapeDtypeStruct((), jnp.int32)
        compiled = jax.jit(chunk_fn, **shard).lower(template, arrays, count).compile()
        return _Compiled(
            kind=kind,
            chunk=chunk,
            n_iter=n_iter,
            delta_shape=delta_shape,
            init=init,
            result=jax.jit(jax.vmap(m.result)),
            run_chunk=compiled,
            template=template,
            bytes_needed=needed_bytes(compiled),
        )

    def _devices(self) -> list:
        """The devices the starts are computed on."""
        if self.split is not None:
            return list(self.split.mesh.devices.flat)
        default = jax.config.jax_default_device
        return [default if isinstance(default, jax.Device) else jax.devices()[0]]

    def _executor(self) -> ThreadPoolExecutor:
        """The worker thread that compiles (see :func:`fitting._interrupt.in_worker`
        for why not the calling thread)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=WORKER_PREFIX
            )
        return self._pool

    def _submit(self, fn, *args):
        return self._executor().submit(with_thread_settings(fn), *args)

    def precompile_later_stages(self):
        """Compile the stages after the current one in the worker thread, while
        the current one runs (their compilation then costs no wall time on a
        machine with a spare core)."""
        if self._precompiling:
            return
        self._precompiling = True
        for index in range(self.stage + 1, len(self.stages)):
            self._futures[index] = self._submit(self._build, index)
        if self.want_uncertainty and self.stages[-1].residuals is not None:
            self._futures["laplace"] = self._submit(
                warm_up, self.stages[-1], self.space, self._arrays(-1)
            )

    def in_worker(self, fn, *args):
        """``fn(*args)`` in the worker thread (after the jobs queued there), the
        calling thread waiting for it (see :func:`fitting._interrupt.in_worker`)."""
        return self._submit(fn, *args).result()

    def close(self, wait: bool = True):
        """Stop the worker: cancel the jobs not started and, with ``wait``, wait
        for the one in progress (without: it finishes on its own, its result
        unused; e.g. after an interruption, which must not wait)."""
        if self._pool is not None:
            for future in self._futures.values():
                future.cancel()
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None

    def _setup(self):
        """Take the compiled stage ``self.stage``: compiled in the worker thread
        (queued now unless it was ahead, see :meth:`precompile_later_stages`),
        this thread waiting for it (``setup_seconds``)."""
        t0 = time.perf_counter()
        future = self._futures.pop(self.stage, None)
        if future is None:
            future = self._submit(self._build, self.stage)
        built = future.result()
        self.setup_seconds[self.stage] = time.perf_counter() - t0
        # Here, not where it was compiled (maybe in the background while the
        # stage before ran and held its memory): the memory free now counts.
        label = self.stages[self.stage].label
        check_fits_in_memory(built.bytes_needed, self._devices(), self.n_starts, label)
        self.kind = built.kind
        self.chunk = built.chunk
        self.n_iter = built.n_iter
        self.delta_shape = built.delta_shape
        self._init = built.init
        self._result = built.result
        self._chunk = built.run_chunk
        self._state_template = built.template

    def _arrays(self, index: int):
        """The data in the float type of stage ``index``."""
        return self.arrays_of[np.dtype(self.stage_types[index]).name]

    def _place(self, x):
        """``x`` (leading axis: starts) on the devices it is computed on (a
        restored state; a new one comes out of ``init`` placed already)."""
        return x if self.split is None else jax.device_put(x, self.split)

    def start(self, z: np.ndarray):
        self.stage = 0
        self._enter_stage(z)

    def _enter_stage(self, z, delta=None):
        self._setup()
        float_type = self.stage_types[self.stage]
        if delta is None or delta.shape != self.delta_shape:
            delta = jnp.zeros(self.delta_shape, float_type)
        # With a mesh, init's output sharding puts the state on the devices.
        z, delta = jnp.asarray(z, float_type), jnp.asarray(delta, float_type)
        self.state = self._init(z, delta, self._arrays(self.stage))
        self.iteration = 0
        self._commit()

    def _commit(self):
        """Remember a consistent point to checkpoint (one attribute store, so an
        interrupt can never catch it half-updated)."""
        self._committed = (
            self.stage, self.state, self.iteration, len(self.loss_records),
            self.done, self._final,
        )  # fmt: skip

    def has_state(self) -> bool:
        """Whether there is a committed point to checkpoint."""
        return self._committed is not None

    def position(self) -> tuple[int, int, bool]:
        """``(stage, iteration, done)`` of the committed point."""
        stage, _, iteration, _, done, _ = self._committed
        return stage, iteration, done

    def elapsed(self) -> float:
        return self.time_offset + self.clock() - self.started

    def _record(self, losses, z):
        self.loss_records.append(np.asarray(losses, np.float64))
        self.z_records.append(np.asarray(z, np.float64))
        self.stage_records.append(self.stage)
        self.time_records.append(self.elapsed())

    def advance(self):
        count = min(self.chunk, self.n_iter - self.iteration)
        try:
            self.state, (losses, zs) = self._chunk(
                self.state, self._arrays(self.stage), np.int32(count)
            )
            # Before np.asarray, which waits forever on an output of an XLA:CPU
            # run that failed (JAX 0.10); block_until_ready raises its error.
            jax.block_until_ready(losses)
        except jax.errors.JaxRuntimeError as err:
            memory = out_of_memory(err, self.n_starts, self.stages[self.stage].label)
            if memory is None:
                raise
            raise memory from None
        losses, zs = np.asarray(losses), np.asarray(zs)
        for k in range(count):
            self._record(losses[k], zs[k])
        self.iteration += count
        self._commit()

    def stage_done(self) -> bool:
        """Every start (Levenberg–Marquardt) has converged — an undamped
        Gauss–Newton step from its accepted point would lower the loss by at
        most ``tol`` (relative) if the residuals were linear, or no step lowered
        it by more than that in the last ``_LM_PATIENCE`` iterations — or is a
        straggler: a loss above ``_STRAGGLER_RATIO`` times the best start's that
        fell by less than ``_STRAGGLER_GAIN`` (relative) over the last
        ``_LM_PATIENCE`` iterations. Stragglers would otherwise hold every start
        in the batch for up to ``max_iterations``."""
        if self.iteration >= self.n_iter:
            return True
        if self.kind != "lm" or self.iteration < 2:
            return False
        in_stage = self.loss_records[len(self.loss_records) - self.iteration :]
        recent = np.array(in_stage[-(_LM_PATIENCE + 1) :])
        last = recent[-1]
        tol = self.tol if self.stage == len(self.stages) - 1 else _INTERMEDIATE_TOL
        scale = max(tol, self.tol) * np.abs(last)
        converged = np.asarray(self.state.potential) <= scale
        if len(recent) == _LM_PATIENCE + 1:
            converged |= recent[0] - last <= scale
            best = np.min(np.where(np.isfinite(last), last, np.inf))
            straggler = (last > _STRAGGLER_RATIO * best) & (
                recent[0] - last <= _STRAGGLER_GAIN * np.abs(last)
            )
            converged |= straggler
        converged |= ~np.isfinite(last)
        return bool(np.all(converged))

    def next_stage(self):
        z, delta, loss = self._result(self.state)
        self._record(loss, z)  # the point the stage ends at
        if self.stage + 1 < len(self.stages):
            previous = self.stages[self.stage]
            self.stage += 1
            self._enter_stage(
                z, _carry_offsets(previous, self.stages[self.stage], delta)
            )
        else:
            self._final = tuple(np.asarray(x) for x in self._result(self.state))
            self.done = True
            self._commit()

    def final(self):
        return self._final

    def best_loss(self) -> float:
        losses = self.loss_records[-1]
        finite = losses[np.isfinite(losses)]
        return float(finite.min()) if finite.size else math.inf

    def last_losses(self) -> np.ndarray:
        return self.loss_records[-1].copy()

    def history(self, space):
        losses = np.array(self.loss_records)
        values = space.values_np(np.array(self.z_records))
        return (
            losses, values, np.array(self.stage_records), np.array(self.time_records)
        )  # fmt: skip

    # -- checkpoints ----------------------------------------------------------------
    def snapshot(self) -> tuple[dict, dict]:
        stage, state, iteration, n_records, done, final = self._committed
        arrays = {
            "loss_records": np.array(self.loss_records[:n_records]),
            "z_records": np.array(self.z_records[:n_records]),
            "stage_records": np.array(self.stage_records[:n_records]),
            "time_records": np.array(self.time_records[:n_records]),
        }
        if done:
            for k, x in enumerate(final):
                arrays[f"final_{k}"] = x
        else:
            for k, leaf in enumerate(jax.tree.leaves(state)):
                arrays[f"state_{k}"] = np.asarray(leaf)
        meta = {
            "stage": stage,
            "iteration": iteration,
            "done": done,
            "records": n_records,
        }
        return meta, arrays

    def restore(self, meta: dict, arrays: dict, source: Any = "checkpoint"):
        """Continue from a :meth:`snapshot` (read from the file ``source``)."""
        self.loss_records = list(arrays["loss_records"])
        self.z_records = list(arrays["z_records"])
        self.stage_records = [int(s) for s in arrays["stage_records"]]
        self.time_records = [float(t) for t in arrays["time_records"]]
        self.stage = int(meta["stage"])
        self.iteration = int(meta["iteration"])
        if meta["done"]:  # nothing left to run: no stage to compile
            self.done = True
            self._final = tuple(arrays[f"final_{k}"] for k in range(3))
            self.state = None
            self._commit()
            return
        self._setup()
        leaves, treedef = jax.tree.flatten(self._state_template)
        restored = []
        for k, spec in enumerate(leaves):
            leaf = arrays.get(f"state_{k}")
            if leaf is None or leaf.shape != spec.shape:
                raise mismatched_checkpoint(
                    source, "its optimizer state does not match this fit"
                )
            restored.append(self._place(jnp.asarray(leaf, spec.dtype)))
        self.state = jax.tree.unflatten(treedef, restored)
        self._commit()
