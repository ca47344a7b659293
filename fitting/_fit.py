"""``fit``: many starts, one compiled computation, checkpointed and resumable."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

import hhjax
import hhjax.recordings
from fitting._data import FitData, load_data
from fitting._io import load_checkpoint, save_checkpoint
from fitting._losses import EquationError, Loss, get_loss, stage_value
from fitting._optim import (
    grad_mode as resolve_grad_mode,
)
from fitting._optim import (
    levenberg_marquardt,
    optax_method,
    probe_updates,
    resolve_optimizer,
)
from fitting._params import ParamSpace, integer_at_least, real_in
from fitting._results import FitResult, model_name
from fitting._uncertainty import laplace, warm_up

DTYPES = {"float64": jnp.float64, "float32": jnp.float32}
_LM_PATIENCE = 5  # LM stops when no start improved by `tolerance` in this many steps
_STRAGGLER_RATIO = 1.1  # ... or the only ones still improving are this much worse
_STRAGGLER_GAIN = 0.05  # than the best and gained less than this over _LM_PATIENCE
# Stages before the last only need to land in the next stage's basin: they stop
# at this relative tolerance (or the fit's, if larger).
_INTERMEDIATE_TOL = 1e-4
_OPTAX_CHUNK = 10  # optax iterations per compiled call
_DEFAULT_STARTS = 16


class FitInterrupted(KeyboardInterrupt):
    """A fit was interrupted (Ctrl-C, or ``KeyboardInterrupt`` from its callback).

    Attributes:
        checkpoint: the checkpoint file that holds the fit's progress (the same
            call resumes from it; if saving at the interruption failed, the
            progress saved before, and the message says why), or ``None`` when
            there was nothing to save yet (interrupted before its first
            iteration, e.g. while compiling or computing the regression warm
            start), no checkpoint was given, or saving failed with no earlier
            save of this fit (the message says why).
    """

    def __init__(self, message: str = "fit interrupted", checkpoint: Any = None):
        super().__init__(message)
        self.checkpoint = checkpoint


def mismatched_checkpoint(
    checkpoint: Any, why: str, resume_option: bool = True
) -> ValueError:
    """The error for a checkpoint that another fit wrote: ``why`` says what
    differs; the fix names both the Python option (``resume=False``, where the
    function has one) and the command-line flag (``--no-resume``)."""
    how = (
        "pass resume=False (--no-resume on the command line)"
        if resume_option
        else "pass --no-resume on the command line"
    )
    return ValueError(f"{checkpoint}: {why}; delete it or {how} to start afresh.")


# ------------------------------------------------------------------ worker thread
_WORKER = "hhjax-fit-worker"  # name prefix of the worker threads


def busy_workers() -> list[threading.Thread]:
    """The worker threads still running (e.g. a compilation that an interruption
    left behind): Python waits for them when it exits."""
    return [
        t for t in threading.enumerate() if t.name.startswith(_WORKER) and t.is_alive()
    ]


# JAX settings a thread may set for itself (context managers), which a computation
# run for it in a worker thread must see: config name -> its context manager.
_THREAD_SETTINGS = {
    "jax_enable_x64": jax.enable_x64,
    "jax_default_device": jax.default_device,
    "jax_default_matmul_precision": jax.default_matmul_precision,
    "jax_debug_nans": jax.debug_nans,
    "jax_debug_infs": jax.debug_infs,
    "jax_numpy_rank_promotion": jax.numpy_rank_promotion,
    "jax_numpy_dtype_promotion": jax.numpy_dtype_promotion,
}


def _with_context(fn: Callable) -> Callable:
    """``fn`` wrapped to run with the calling thread's JAX settings that are per
    thread (:data:`_THREAD_SETTINGS`: x64, default device, matmul precision, ...),
    for another thread."""
    settings = [
        (cm, getattr(jax.config, name)) for name, cm in _THREAD_SETTINGS.items()
    ]

    def call(*args, **kwargs):
        with contextlib.ExitStack() as stack:
            for context, value in settings:
                stack.enter_context(context(value))
            return fn(*args, **kwargs)

    return call


def in_worker(fn: Callable, *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)`` in a worker thread (with this thread's x64 and
    default-device settings), this thread waiting for its result.

    For computations that compile: Ctrl-C then stops the wait, not the compiler.
    A compilation interrupted in the main thread goes on in XLA's own threads,
    and the interpreter's exit, racing with it, could crash (exit status 139).
    The worker finishes its job on its own and Python waits for it at exit.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_WORKER)
    try:
        return pool.submit(_with_context(fn), *args, **kwargs).result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


# Set by hhjax fit's signal handlers (SIGINT, SIGTERM) besides raising
# KeyboardInterrupt: an exception raised inside a callback that ignores them
# (e.g. JAX's garbage-collection callback) is lost, this flag is not. A fit checks
# it after every chunk of iterations.
INTERRUPT_REQUESTED = threading.Event()


# ---------------------------------------------------------------------- progress
class _Progress:
    """One status line (stderr): stage, iteration, best loss, elapsed, ETA."""

    def __init__(self, enabled: bool, n_stages: int, unit: str):
        self.enabled = enabled
        self.n_stages = n_stages
        self.unit = unit
        self.tty = enabled and sys.stderr.isatty()
        self.last_print = -math.inf

    def update(self, stage, label, it, n_iter, best, elapsed, eta, done=False):
        if not self.enabled:
            return
        now = time.perf_counter()
        if not (self.tty or done or now - self.last_print >= 10.0):
            return
        self.last_print = now
        eta_text = "" if eta is None else f", ETA <= {eta:.0f} s"
        line = (
            f"fit: stage {stage + 1}/{self.n_stages} ({label}) iteration {it}/{n_iter}"
            f"  best loss {best:.6g} {self.unit}  {elapsed:.1f} s{eta_text}"
        )
        if self.tty:
            end = "\n" if done else ""
            print(f"\r{line:<110}", end=end, file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def message(self, text: str):
        if self.enabled:
            prefix = "\n" if self.tty and self.last_print > -math.inf else ""
            print(f"{prefix}fit: {text}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------ inputs
def _as_fit_data(data: Any, base: Any) -> FitData:
    """``data`` as :class:`FitData` with a current in pA converted with
    ``base.c_m`` (the fit's model's specific capacitance, see
    :meth:`FitData.with_c_m`)."""
    c_m = float(np.asarray(base.c_m))
    if isinstance(data, FitData):
        return data.with_c_m(c_m)
    if isinstance(data, (str, os.PathLike)):
        return load_data(data, c_m=c_m)
    if isinstance(data, hhjax.recordings.Recording):
        return FitData.from_recording(data, c_m=c_m)
    raise TypeError(
        "`data` must be a fitting.FitData, a hhjax.recordings.Recording or a path "
        f"to a recording file; got {type(data).__name__}."
    )


def _check_checkpoint_path(checkpoint: Any) -> Path | None:
    """The checkpoint file, its directory created and checked to be writable now,
    so that an unusable path fails before any work instead of at the first save."""
    if checkpoint is None:
        return None
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise ValueError(
            f"`checkpoint` must be a path (str or os.PathLike) or None; got "
            f"{type(checkpoint).__name__}."
        )
    path = Path(checkpoint)
    if path.is_dir():
        raise ValueError(f"`checkpoint` {str(path)!r} is a directory, not a file.")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise ValueError(
            f"`checkpoint` {str(path)!r}: {str(ancestor)!r} is a file, not a "
            "directory; give a checkpoint file in a directory."
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ValueError(
            f"`checkpoint` {str(path)!r}: cannot write in its directory "
            f"{str(path.parent)!r} ({reason}); give a checkpoint file in a writable "
            "directory."
        ) from None
    return path


def _check_dtype(dtype: Any) -> str:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in (*DTYPES, "mixed"):
        raise ValueError(
            f"`dtype` must be 'float64', 'float32' or 'mixed'; got {dtype!r}."
        )
    return name


def _stage_types(dtype: str, n_stages: int) -> list:
    """Float type of each stage: ``"mixed"`` runs the stages before the last in
    float32 and the last in float64."""
    if dtype == "mixed":
        return [jnp.float32] * (n_stages - 1) + [jnp.float64]
    return [DTYPES[dtype]] * n_stages


def _settings(
    space: ParamSpace,
    loss: Loss,
    plans,
    modes,
    n_starts,
    init_text,
    spread,
    seed,
    tolerance,
    method,
    dtype,
) -> dict:
    return {
        "free": list(space.free),
        "bounds": {
            f: [float(lo), float(hi)]
            for f, lo, hi in zip(space.free, space.lower, space.upper, strict=True)
        },
        "log_scale": {f: bool(b) for f, b in zip(space.free, space.log, strict=True)},
        "fixed": {
            k: float(np.asarray(v))
            for k, v in space.base._asdict().items()
            if k not in space.free
        },
        "loss": loss.settings(),
        "optimizer": [
            {
                "kind": kind,
                "optax": None if opt is None else _describe(opt),
                "iterations": n,
                "derivatives": mode,
            }
            for (kind, opt, n), mode in zip(plans, modes, strict=True)
        ],
        "n_starts": n_starts,
        "init": init_text,
        "spread": spread,
        "seed": seed,
        "tolerance": tolerance,
        "method": method,
        "dtype": dtype,
    }


def _describe(opt: Any) -> str:
    return f"{type(opt).__module__}.{type(opt).__qualname__}"


def _starts(space, init, n_starts, seed, spread, run_regression):
    """Starting values ``(n_starts, n_free)`` and a description of where from.

    ``n_starts`` is ``None`` for the default: 16, or the rows of explicit starts.
    """
    count = _DEFAULT_STARTS if n_starts is None else n_starts
    if init is None:
        return space.sample(count, seed, space.base_values(), spread), "base"
    if isinstance(init, str):
        if init == "bounds":
            return space.sample(count, seed, None, spread), "bounds"
        if init == "regression":
            center = run_regression()
            if not np.all(np.isfinite(center)):
                raise ValueError(
                    "`init='regression'`: the regression estimate is not finite "
                    f"({dict(zip(space.free, center.tolist(), strict=True))}); start "
                    "from the parameters (init=None) or the bounds (init='bounds')."
                )
            return space.sample(count, seed, center, spread), "regression"
        raise ValueError(
            f"`init` must be None, 'bounds', 'regression', parameters or values; got "
            f"{init!r}."
        )
    if isinstance(init, tuple) and hasattr(init, "_fields"):
        if type(init) is not type(space.base):
            raise ValueError(
                f"`init` parameters are {type(init).__name__}, the model's are "
                f"{type(space.base).__name__}."
            )
        center = np.array([float(np.asarray(getattr(init, f))) for f in space.free])
        _check_finite_init(space, center[None])
        return space.sample(count, seed, center, spread), "params"
    try:
        values = np.asarray(init, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"`init` must be None, 'bounds', 'regression', parameters or numbers; "
            f"got {type(init).__name__}."
        ) from None
    if values.ndim == 1 and values.shape == (space.n_free,):
        _check_finite_init(space, values[None])
        return space.sample(count, seed, values, spread), "values"
    if values.ndim == 2 and values.shape[1] == space.n_free and len(values) >= 1:
        _check_finite_init(space, values)
        if n_starts is not None and n_starts != len(values):
            raise ValueError(
                f"`init` gives {len(values)} explicit starts but `n_starts` is "
                f"{n_starts}; leave `n_starts` out (it is then the number of rows "
                "of `init`) or make them agree."
            )
        return space.values_clipped(values), "explicit"
    raise ValueError(
        f"`init` values must have shape ({space.n_free},) or (n_starts, "
        f"{space.n_free}) for free parameters {space.free}; got {values.shape}."
    )


def _check_finite_init(space: ParamSpace, values: np.ndarray) -> None:
    """Refuse non-finite starting values (they would silently give failed starts);
    warn about values outside the bounds (the starts are moved inside them)."""
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        row, col = (int(x) for x in bad[0])
        where = f" (start {row})" if len(values) > 1 else ""
        raise ValueError(
            f"`init` values must be finite; got {values[row, col]} for "
            f"{space.free[col]}{where}."
        )
    outside = np.argwhere((values < space.lower) | (values > space.upper))
    if outside.size:
        row, col = (int(x) for x in outside[0])
        where = f" (start {row})" if len(values) > 1 else ""
        warnings.warn(
            f"`init` puts {space.free[col]} = {values[row, col]:g}{where} outside "
            f"its bounds [{space.lower[col]:g}, {space.upper[col]:g}]"
            f"{f' ({len(outside)} values in all)' if len(outside) > 1 else ''}; "
            "such starts begin at the nearest bound. Widen `bounds` to start there.",
            UserWarning,
            stacklevel=4,
        )


# Relative tolerance of the probes (below) when a fit compares them with a
# checkpoint's: same computation, possibly on another device.
_PROBE_RTOL = 1e-8


def _opaque_loss(loss: Loss) -> bool:
    """Whether ``loss.settings()`` may miss what the loss computes: it holds a
    function (described by its name only, the same for every lambda) or is not a
    dataclass (no fields to describe)."""
    if not dataclasses.is_dataclass(loss):
        return True
    return any(callable(getattr(loss, f.name)) for f in dataclasses.fields(loss))


def _probes(optimizer, plans, loss, stages, space, z0, data) -> list[float]:
    """What the settings cannot name, as numbers, for a checkpoint: the updates
    of a custom optax optimizer on a fixed problem (:func:`probe_updates`), and
    for an opaque loss (:func:`_opaque_loss`) the value of each stage at the
    first start ``z0`` and at a point next to it (float64; evaluated eagerly: the
    simulation inside is jitted, so this costs one compilation of it, not one of
    the whole loss). Empty for the built-in optimizers and losses."""
    out = []
    if isinstance(optimizer, optax.GradientTransformation):
        index = next(k for k, (kind, _, _) in enumerate(plans) if kind == "optax")
        shape = stages[index].delta_shape or (0,)
        out += probe_updates(optimizer, space.n_free, shape).tolist()
    if _opaque_loss(loss):
        arrays = data.arrays(jnp.float64)
        z0 = jnp.asarray(z0, jnp.float64)
        points = (z0, z0 + 0.1 * jnp.linspace(1.0, -0.5, space.n_free))
        for stage in stages:
            delta = jnp.zeros(stage.delta_shape or (0,), jnp.float64)
            out += [
                float(stage_value(stage, space.params_from_z(z), delta, arrays))
                for z in points
            ]
    return out


def _same_probes(saved: Any, probes: list[float]) -> bool:
    """Whether a checkpoint's probes (JSON: non-finite numbers as null) are these."""
    if not probes:
        return True
    if not isinstance(saved, list) or len(saved) != len(probes):
        return False
    saved = np.array([np.nan if x is None else x for x in saved], np.float64)
    probes = np.asarray(probes, np.float64)
    probes = np.where(np.isfinite(probes), probes, np.nan)
    return bool(np.allclose(saved, probes, rtol=_PROBE_RTOL, atol=0.0, equal_nan=True))


def _fingerprint(settings: dict, data: FitData, starts: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    h.update(data.fingerprint().encode())
    h.update(np.ascontiguousarray(starts, np.float64).tobytes())
    return h.hexdigest()[:24]


# -------------------------------------------------------------------- the driver
def fit(
    data: FitData | Any,
    free: Sequence[str] | str,
    *,
    params: Any = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    loss: str | Loss | Callable = "shooting",
    optimizer: Any = "auto",
    n_starts: int | None = None,
    init: Any = None,
    spread: float = 2.0,
    seed: int = 0,
    max_iterations: int | None = None,
    tolerance: float = 1e-6,
    method: str = hhjax.DEFAULT_METHOD,
    dtype: str = "float64",
    grad_mode: str = "auto",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: float = 30.0,
    resume: bool = True,
    progress: bool = True,
    callback: Callable[[dict], Any] | None = None,
    uncertainty: bool = True,
    model: str | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> FitResult:
    """Fit free parameters of a model to recorded voltage, from many starts at once.

    All starts are optimised together: one ``vmap``-ed, jitted step advances every
    start, and all sweeps are simulated in the same batch with shared parameters.
    Computes in float64 by default (JAX's x64 mode is switched on for the duration
    of the call only).

    Voltage convention: that of ``params`` and of the data (modern by default).

    Args:
        data: :class:`FitData`, a :class:`hhjax.recordings.Recording`, or a path to
            a recording file (``.npz``/``.csv``); V in mV, current in µA/cm² (or pA
            with the cell capacitance in pF, converted with ``params.c_m``).
        free: names of the fields of ``params`` to fit (e.g. ``["g_na", "g_k"]`` or
            ``"g_na,g_k"``); the other fields stay fixed.
        params: the model's parameter tuple with the fixed values (default
            :class:`hhjax.HHParams`); also the centre of the starts by default.
        bounds: ``{field: (lower, upper)}`` overriding the defaults
            (:func:`fitting.default_bounds`), in the field's unit.
        loss: ``"shooting"`` (default), ``"mse"``, ``"regression"``, a
            :class:`fitting.Loss`, or ``fn(trace, data) -> scalar``.
        optimizer: ``"auto"`` (Levenberg–Marquardt with forward-mode Jacobians for
            residual losses with <= 12 free parameters, else Adam), ``"lm"``,
            ``"adam"``, ``"lbfgs"``, or any ``optax.GradientTransformation``.
        n_starts: number of starts (an integer >= 1; default 16, or the number
            of rows of explicit starts given as ``init``, which it must equal if
            both are given).
        init: where starts come from: ``None`` (around ``params``), ``"regression"``
            (around the :class:`fitting.EquationError` least-squares estimate),
            ``"bounds"`` (log-uniform / uniform within the bounds), a parameter
            tuple or ``(n_free,)`` values (around them), or ``(n_starts, n_free)``
            explicit starting values. Values must be finite.
        spread: starts around a centre are drawn log-uniformly within a factor
            ``spread`` (finite, > 1) of each value (sign kept); not used by
            ``init="bounds"`` or explicit starts.
        seed: seed of the starts, an integer >= 0 (reproducible).
        max_iterations: iterations per stage (default 50 for Levenberg–Marquardt,
            500 for Adam, 100 for L-BFGS). The first Levenberg–Marquardt iteration
            only evaluates the start, so N iterations take at most N − 1 steps
            (N >= 2).
        tolerance: (finite, >= 0) Levenberg–Marquardt ends a stage when, for
            every start, an undamped Gauss–Newton step would lower the loss by at
            most this fraction were the residuals linear (or no step lowered it by
            more in the last 5 iterations) — except for stragglers,
            starts 10 % or more above the best loss that gained less than 5 % in
            the last 5 iterations, which do not hold up the others.
        method: integrator (see :data:`hhjax.METHODS`); the step is the data's
            sampling interval.
        dtype: ``"float64"`` (default), ``"float32"`` (simulations, Jacobians and
            gradients in float32; sums over residuals and the linear algebra of
            Levenberg–Marquardt stay float64) or ``"mixed"`` (float32 for the
            stages before the last, which only need to reach the last one's basin;
            float64 for the last, so the result is the float64 optimum).
        grad_mode: ``"auto"`` (forward mode for 1 free parameter), ``"forward"``
            or ``"reverse"`` (optax optimisers; Levenberg–Marquardt always uses
            forward-mode Jacobians).
        checkpoint: file to save progress to (``.npz``; its directory is created
            and checked to be writable before the fit starts); an existing
            checkpoint of the same fit (same data, settings and starts) is resumed
            from, one of another fit is refused. A custom optax optimizer is
            identified by its updates on a fixed problem, a custom loss (a function, or a
            :class:`fitting.Loss` that is not a dataclass) by its values at and
            next to the first start, since their names alone cannot tell them
            apart.
        checkpoint_every: seconds between checkpoints, >= 0 (also saved at every
            stage end, at the end, on Ctrl-C and when an error stops the fit). A
            save that fails (e.g. a full disk) is a ``RuntimeWarning``; the fit
            goes on.
        resume: resume from ``checkpoint`` if it exists (else start afresh and
            overwrite it).
        progress: print a status line with loss and ETA to stderr.
        callback: called after every compiled chunk of iterations with a dict
            (``stage``: 0-based index of the loss's stage, where messages count
            from 1; ``iteration``, ``losses``, ``best_loss``, ``elapsed_s``);
            raising ``KeyboardInterrupt`` from it interrupts the fit as Ctrl-C.
        uncertainty: compute the Laplace standard errors at the best start.
        model: the model's name for the result file (default: inferred from the
            type of ``params``, see :data:`hhjax.MODELS`).
        mesh: a :class:`jax.sharding.Mesh` to split the starts over (all its
            devices, e.g. several GPUs, or CPU cores exposed as host devices by
            ``XLA_FLAGS=--xla_force_host_platform_device_count=N``); ``n_starts``
            must be a multiple of its size. The data are replicated on every
            device. Each start's computation is the same as without a mesh.

    Returns:
        A :class:`FitResult`.

    Raises:
        ValueError: unknown names, bad bounds/settings (e.g. Levenberg–Marquardt
            with ``max_iterations=1``, non-finite starting values), a checkpoint
            of another fit or in a directory that cannot be written, or ``c_m``
            free with data in pA.
        FitInterrupted: on Ctrl-C at any point of the call (warm start and
            compilation included); the checkpoint, if any, holds the progress
            (``FitInterrupted.checkpoint``; ``None`` when there was nothing to
            save yet).

    Warns:
        RuntimeWarning: no start ended with a finite loss (the result is then
            meaningless), or a checkpoint could not be written.
    """
    dtype = _check_dtype(dtype)
    # x64 also for float32 fits: simulations and Jacobians are float32, but sums
    # over residuals and the Levenberg-Marquardt linear algebra run in float64.
    with jax.enable_x64(True):
        return _fit(
            data, free, params, bounds, loss, optimizer, n_starts, init, spread,
            seed, max_iterations, tolerance, method, dtype, grad_mode, checkpoint,
            checkpoint_every, resume, progress, callback, uncertainty, model, mesh,
        )  # fmt: skip


def _fit(
    data, free, params, bounds, loss, optimizer, n_starts, init, spread, seed,
    max_iterations, tolerance, method, dtype, grad_mode, checkpoint,
    checkpoint_every, resume, progress, callback, want_uncertainty, model, mesh,
):  # fmt: skip
    clock = time.perf_counter()
    base = hhjax.HHParams() if params is None else params
    hhjax.model_of(base)  # TypeError for a non-model
    base = base._replace(**{k: float(np.asarray(v)) for k, v in base._asdict().items()})
    data = _as_fit_data(data, base)
    space = ParamSpace.create(base, free, bounds)
    if data.c_m is not None and "c_m" in space.free:
        raise ValueError(
            "`c_m` cannot be fitted from a current in pA: the current density "
            "I·c_m/C_cell then scales with c_m too, and only g/c_m ratios are "
            "determined. Fix c_m (µF/cm²) or give the current in uA/cm^2."
        )
    if method not in hhjax.METHODS:
        raise ValueError(
            f"Unknown `method` {method!r}; expected one of {list(hhjax.METHODS)}."
        )
    if model is not None and (
        model not in hhjax.MODELS or type(hhjax.default_params(model)) is not type(base)
    ):
        names = [n for n in hhjax.MODELS if type(hhjax.default_params(n)) is type(base)]
        raise ValueError(
            f"`model` must name the model of `params` ({type(base).__name__}): one "
            f"of {names}; got {model!r}."
        )
    resolve_grad_mode(grad_mode, space.n_free)  # checked whatever the optimiser
    if n_starts is not None:
        n_starts = integer_at_least(n_starts, "`n_starts`", 1)
    if max_iterations is not None:
        max_iterations = integer_at_least(max_iterations, "`max_iterations`", 1)
    seed = integer_at_least(seed, "`seed`", 0)
    spread = real_in(
        spread, "`spread`", "a finite factor > 1 (starts within 1/spread to spread "
        "times the centre)", lambda x: 1.0 < x < math.inf,
    )  # fmt: skip
    tolerance = real_in(
        tolerance, "`tolerance`", "a finite number >= 0", lambda x: 0.0 <= x < math.inf
    )
    checkpoint_every = real_in(
        checkpoint_every, "`checkpoint_every`", "a number of seconds >= 0 (0: after "
        "every chunk of iterations)", lambda x: x >= 0.0,
    )  # fmt: skip
    checkpoint = _check_checkpoint_path(checkpoint)
    loss_obj = get_loss(loss)
    stages = loss_obj.stages(data.n_samples, data.n_sweeps, data.dt, method)
    stage_types = _stage_types(dtype, len(stages))
    # {dtype name: the data as FitArrays} (string keys: a pytree for device_put)
    arrays_of = {np.dtype(t).name: data.arrays(t) for t in stage_types}
    arrays = arrays_of[np.dtype(stage_types[-1]).name]  # for the Laplace estimate
    plans = [
        resolve_optimizer(optimizer, st, space.n_free, max_iterations) for st in stages
    ]
    if any(kind == "lm" and n < 2 for kind, _, n in plans):
        raise ValueError(
            "Levenberg-Marquardt needs `max_iterations` >= 2: its first iteration "
            "only evaluates the start, so N iterations take at most N - 1 steps; "
            f"got {max_iterations}."
        )
    modes = [
        "forward (Jacobian)"
        if kind == "lm"
        else resolve_grad_mode(grad_mode, space.n_free)
        for kind, _, _ in plans
    ]
    unit = (
        "mV^2"
        if loss_obj.name in ("shooting", "mse")
        else ("(uA/cm^2)^2" if loss_obj.name == "regression" else "a.u.")
    )
    bar = _Progress(progress, len(stages), unit)

    def run_regression():
        result = fit(
            data, space.free, params=base, bounds=bounds, loss=EquationError(),
            optimizer="lm", n_starts=1, init=space.base_values()[None],
            method=method, dtype=dtype, progress=False, uncertainty=False,
        )  # fmt: skip
        return result.final_values[0]

    # Everything from here on may be interrupted (Ctrl-C, SIGTERM turned into it
    # by the CLI, KeyboardInterrupt from the callback): FitInterrupted, with the
    # progress saved whenever there is any (the run's committed state).
    run: _Run | None = None
    phase = "preparing the fit"  # what an interruption interrupted
    loaded = None  # a checkpoint being resumed
    fingerprint, probes = None, []
    save_failed = False
    saved_once = False  # a save of this call succeeded (the checkpoint is ours)

    def write_checkpoint():
        nonlocal saved_once
        meta, saved = run.snapshot()
        identity = {"fingerprint": fingerprint}
        if probes:
            identity["probes"] = probes
        save_checkpoint(
            checkpoint, {**identity, "elapsed_s": run.elapsed(), **meta}, saved
        )
        saved_once = True

    def saved_before() -> bool:
        """Whether ``checkpoint`` holds progress of this fit from before: the
        checkpoint resumed from, or a save of this call."""
        return loaded is not None or saved_once

    def save():
        """Checkpoint now; a failure to write (full disk, ...) is a warning, not
        the end of the fit: the result is still returned."""
        nonlocal save_failed
        if checkpoint is None:
            return
        try:
            write_checkpoint()
        except OSError as err:
            if not save_failed:
                warnings.warn(
                    f"could not save the checkpoint {checkpoint} "
                    f"({err.strerror or err}); the fit goes on, but an interruption "
                    "now loses the progress since the last successful save.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            save_failed = True
        else:
            save_failed = False

    try:
        if isinstance(init, str) and init == "regression":
            phase = "computing the regression warm start"
            bar.message("warm start: regression estimate (EquationError, 1 start)...")
        starts, init_text = _starts(space, init, n_starts, seed, spread, run_regression)
        n_starts = len(starts)
        _check_mesh(mesh, n_starts)
        settings = _settings(
            space, loss_obj, plans, modes, n_starts, init_text, spread, seed,
            tolerance, method, dtype,
        )  # fmt: skip
        fingerprint = _fingerprint(settings, data, starts)
        # A custom optimizer or loss is named by its type/function name only: the
        # checkpoint also records what it computes (only needed with a checkpoint).
        if checkpoint is not None:
            phase = "identifying the custom optimizer or loss for the checkpoint"
            probes = in_worker(
                _probes, optimizer, plans, loss_obj, stages, space,
                space.to_z(starts[0]), data,
            )  # fmt: skip
        key = _compile_key(loss_obj, data, method, space, modes, n_starts, dtype, mesh)
        run = _Run(
            space, stages, plans, modes, arrays_of, n_starts, stage_types, tolerance,
            key, mesh,
        )  # fmt: skip
        run.started = clock
        run.want_uncertainty = want_uncertainty
        if checkpoint is not None and resume:
            loaded = load_checkpoint(checkpoint)
            if loaded is not None:
                meta, saved = loaded
                if meta.get("fingerprint") != fingerprint or not _same_probes(
                    meta.get("probes"), probes
                ):
                    loaded = None  # not ours: an interruption must not blame it
                    raise mismatched_checkpoint(
                        checkpoint,
                        "this checkpoint belongs to a different fit (data, "
                        "settings, starts, optimizer or loss differ)",
                    )
        resumed_at = None
        if loaded is None:
            phase = f"compiling stage 1/{len(stages)} ({stages[0].label})"
            if not run.is_built(0):
                bar.message(f"{phase}...")
            run.start(space.to_z(starts))
        else:
            meta, saved = loaded
            stage, iteration = int(meta["stage"]), int(meta["iteration"])
            bar.message(
                f"resuming {checkpoint} at stage {stage + 1}, iteration {iteration}"
            )
            if not meta["done"]:
                phase = f"compiling stage {stage + 1}/{len(stages)}"
                if not run.is_built(stage):
                    bar.message(f"{phase}...")
            run.time_offset = float(meta.get("elapsed_s", 0.0))
            run.restore(meta, saved, checkpoint)
            resumed_at = int(meta["records"])
        phase = "fitting"
        elapsed = run.elapsed
        last_save = time.perf_counter()
        timings = []
        if not run.done:
            run.precompile_later_stages()
        while not run.done:
            stage_clock = time.perf_counter()
            chunk_times = []
            while not run.stage_done():
                t0 = time.perf_counter()
                run.advance()
                chunk_times.append(time.perf_counter() - t0)
                eta = None
                if len(chunk_times) > 1:
                    per = float(np.median(chunk_times[1:])) / run.chunk
                    eta = per * (run.n_iter - run.iteration)
                bar.update(
                    run.stage, stages[run.stage].label, run.iteration, run.n_iter,
                    run.best_loss(), elapsed(), eta,
                )  # fmt: skip
                if callback is not None:
                    callback(
                        {
                            "stage": run.stage,
                            "iteration": run.iteration,
                            "losses": run.last_losses(),
                            "best_loss": run.best_loss(),
                            "elapsed_s": elapsed(),
                        }
                    )
                if INTERRUPT_REQUESTED.is_set():  # a signal whose interrupt was lost
                    raise KeyboardInterrupt
                if time.perf_counter() - last_save >= checkpoint_every:
                    save()
                    last_save = time.perf_counter()
            bar.update(
                run.stage, stages[run.stage].label, run.iteration, run.n_iter,
                run.best_loss(), elapsed(), 0.0, done=True,
            )  # fmt: skip
            timings.append(
                {
                    "stage": run.stage,
                    "label": stages[run.stage].label,
                    "iterations": run.iteration,
                    "compile_s": run.setup_seconds.get(run.stage),
                    "first_chunk_s": chunk_times[0] if chunk_times else None,
                    "total_s": time.perf_counter() - stage_clock,
                }
            )
            if run.stage + 1 < len(stages):
                phase = f"compiling stage {run.stage + 2}/{len(stages)}"
            run.next_stage()
            phase = "fitting"
            save()
            last_save = time.perf_counter()

        phase = "collecting the result (the fit itself is finished)"
        z, delta, losses = run.final()
        losses = np.where(np.isfinite(losses), losses, np.inf)
        if not np.isfinite(losses).any():
            warnings.warn(
                f"no start of the fit ended with a finite loss ({n_starts} starts): "
                "every simulation failed or the loss is undefined; the result is "
                "meaningless. Check the data (units, sampling interval), the bounds, "
                "the starts and the loss settings.",
                RuntimeWarning,
                stacklevel=3,
            )
        best = int(np.argmin(losses))
        final_values = space.values_np(z)
        best_values = final_values[best]
        best_params = space.base._replace(
            **{f: float(v) for f, v in zip(space.free, best_values, strict=True)}
        )
        unc = None
        last = stages[-1]
        if (
            want_uncertainty
            and last.residuals is not None
            and np.isfinite(losses[best])
        ):
            phase = "estimating the uncertainty (the fit itself is finished)"
            unc = run.in_worker(laplace, last, space, best_values, delta[best], arrays)
        history_loss, history_values, history_stage, history_time = run.history(space)
        return FitResult(
            params=best_params,
            model=model or model_name(base),
            free=space.free,
            units=space.units,
            values={f: float(v) for f, v in zip(space.free, best_values, strict=True)},
            losses=losses,
            best=best,
            start_values=starts,
            final_values=final_values,
            loss_history=history_loss,
            value_history=history_values,
            stage_of=history_stage,
            record_times=history_time,
            stage_labels=tuple(st.label for st in stages),
            uncertainty=unc,
            loss_name=loss_obj.name,
            loss_unit=unit,
            settings=settings,
            elapsed_s=elapsed(),
            resumed_at=resumed_at,
            timings=tuple(timings),
            data_source=data.recording.source,
            sweeps=data.sweeps,
        )
    except KeyboardInterrupt:
        # Save first (milliseconds, atomic), then stop the background compilation
        # without waiting for it (finally): a second Ctrl-C cannot lose the save.
        raise _interrupted(
            run, phase, checkpoint, write_checkpoint, saved_before()
        ) from None
    except Exception as err:
        # The committed state is always consistent (see _Run._commit): keep the
        # progress for a resume. Not for a checkpoint of another fit (nothing is
        # committed until one is restored), and never hiding the error itself.
        if checkpoint is not None and run is not None and run.has_state():
            try:
                write_checkpoint()
            except Exception as save_err:  # noqa: BLE001 - report the original error
                note = _not_saved(checkpoint, save_err, saved_before())
            else:
                note = f"the fit's progress is saved in {checkpoint}"
            if hasattr(err, "add_note"):
                err.add_note(f"({note})")
        raise
    finally:
        if run is not None:
            run.close(wait=False)


def _interrupted(
    run, phase, checkpoint, write_checkpoint, saved_before: bool
) -> FitInterrupted:
    """The FitInterrupted for an interruption while doing ``phase``, after saving
    the run's committed state (if any) to ``checkpoint``. ``saved_before``:
    whether ``checkpoint`` holds this fit's progress from before (resumed from,
    or saved earlier in this call), which a failed save leaves there."""
    older = checkpoint if saved_before else None
    if run is None or not run.has_state():
        text = f"fit interrupted while {phase}"
        if older is not None:
            return FitInterrupted(
                f"{text}; {checkpoint} still holds the progress saved before", older
            )
        return FitInterrupted(f"{text}; nothing to save yet", None)
    stage, iteration, done = run.position()
    text = (
        f"fit interrupted while {phase}"
        if done
        else f"fit interrupted at stage {stage + 1}, iteration {iteration}"
    )
    if checkpoint is None:
        return FitInterrupted(text, None)
    try:
        write_checkpoint()
    except Exception as err:  # noqa: BLE001 - the interruption is what to report
        why = _not_saved(checkpoint, err, saved_before)
        return FitInterrupted(f"{text}; {why}", older)
    return FitInterrupted(f"{text}; progress saved to {checkpoint}", checkpoint)


def _not_saved(checkpoint: Any, err: Exception, saved_before: bool) -> str:
    """Says that the progress could not be saved to ``checkpoint`` and why; with
    ``saved_before``, that the file still holds this fit's earlier progress."""
    if isinstance(err, OSError) and err.strerror:
        why = err.strerror
    else:
        why = f"{type(err).__name__}: {err}"
    text = f"could not save the progress to {checkpoint} ({why})"
    return f"{text}; it still holds the progress saved before" if saved_before else text


# Compiled stages of recent fits, keyed by everything that shapes the program (loss,
# data shapes, free parameters and bounds, fixed values, optimizer, starts, dtype):
# a second fit of the same kind (another cell, a resumed fit) skips compilation.
_COMPILED: dict = {}
_CACHE_SIZE = 16
_CACHE_LOCK = threading.Lock()


def _check_mesh(mesh, n_starts: int) -> None:
    if mesh is None:
        return
    if not isinstance(mesh, jax.sharding.Mesh):
        raise TypeError(
            f"`mesh` must be a jax.sharding.Mesh (or None); got {type(mesh).__name__}."
        )
    if n_starts % mesh.size:
        raise ValueError(
            f"`n_starts` ({n_starts}) must be a multiple of the mesh's {mesh.size} "
            "devices, so that every device gets the same number of starts."
        )


def _compile_key(loss, data, method, space, modes, n_starts, dtype, mesh):
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


class _Run:
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
        )

    def _executor(self) -> ThreadPoolExecutor:
        """The worker thread that compiles (see :func:`in_worker` for why not the
        calling thread)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=_WORKER)
        return self._pool

    def _submit(self, fn, *args):
        return self._executor().submit(_with_context(fn), *args)

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
        calling thread waiting for it (see :func:`in_worker`)."""
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
        self.state, (losses, zs) = self._chunk(
            self.state, self._arrays(self.stage), np.int32(count)
        )
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


def regression(
    data: FitData | Any,
    free: Sequence[str] | str = ("g_na", "g_k", "g_l", "e_l"),
    *,
    params: Any = None,
    block_ms: float = 0.5,
    **kwargs,
) -> FitResult:
    """Regression estimate: gates driven by the recorded V, then
    least squares on the current balance (:class:`EquationError`), no simulation.

    For conductances and ``c_m`` the problem is linear (one undamped Gauss–Newton
    step would solve it); reversal potentials enter bilinearly (``g·E``). The
    Levenberg–Marquardt steps are damped and capped by a trust region (a factor
    e^0.7 ≈ 2 per step for log-scaled fields, 5 % of the bounds' width for the
    others), so a start far off takes several iterations; the first iteration
    only evaluates the start (``max_iterations`` of N takes at most N − 1 steps).
    A fast warm start (``fit(init="regression")`` uses it) and a reasonable
    estimate for clean data; biased by recording noise (errors in the regressors).

    Args:
        data, params: as :func:`fit`.
        free: fields to estimate.
        block_ms: integration block, ms (see :class:`EquationError`).
        **kwargs: passed to :func:`fit` (default: one start at ``params``, quiet;
            as many as the rows of explicit starting values given as ``init``).
    """
    init = kwargs.get("init")
    explicit = (
        init is not None
        and not isinstance(init, str)
        and not hasattr(init, "_fields")  # a parameter tuple
        and np.ndim(init) == 2
    )
    if not explicit:  # explicit starts: their number (see fit's n_starts)
        kwargs.setdefault("n_starts", 1)
    kwargs.setdefault("progress", False)
    kwargs.setdefault("optimizer", "lm")
    if kwargs.get("n_starts") == 1 and "init" not in kwargs:
        base = hhjax.HHParams() if params is None else params
        hhjax.model_of(base)  # TypeError for a non-model, as fit() gives
        # Names (and bounds) checked as fit() checks them, e.g. "g_na, g_k".
        space = ParamSpace.create(base, free, kwargs.get("bounds"))
        kwargs["init"] = space.base_values()[None]
    return fit(
        data, free, params=params, loss=EquationError(block_ms=block_ms), **kwargs
    )
