"""``fit``: many starts, one compiled computation, checkpointed and resumable; and
``regression``, its warm start. The compiled run itself is :mod:`fitting._run`,
interruption and the worker thread :mod:`fitting._interrupt`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import hhjax
import hhjax.recordings
from fitting._data import FitData, load_data
from fitting._interrupt import (
    INTERRUPT_REQUESTED,
    NOTHING_SAVED,
    FitInterrupted,
    in_worker,
)
from fitting._io import (
    check_checkpoint_path,
    load_checkpoint,
    mismatched_checkpoint,
    save_checkpoint,
)
from fitting._losses import EquationError, Loss, get_loss, stage_value
from fitting._optim import grad_mode as resolve_grad_mode
from fitting._optim import probe_updates, resolve_optimizer
from fitting._params import ParamSpace, integer_at_least, one_cell, real_in
from fitting._progress import Progress
from fitting._results import FitResult, model_name
from fitting._run import Run, compile_key
from fitting._uncertainty import laplace

DTYPES = {"float64": jnp.float64, "float32": jnp.float32}
_DEFAULT_STARTS = 16


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
    optimizer: Any,
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
        # The name asked for ("adam", "lbfgs", ...): a built-in's optax type is
        # the same for all of them (custom ones are told apart by their probes).
        "optimizer_name": optimizer if isinstance(optimizer, str) else "optax",
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
    if init is None or (isinstance(init, str) and init == "params"):
        centre = space.base_values()
        _check_finite_init(space, centre[None], "the parameters (the starts' centre)")
        return space.sample(count, seed, centre, spread), "base"
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
            f"`init` must be None (or 'params'), 'bounds', 'regression', parameters "
            f"or values; got {init!r}."
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
            f"`init` must be None (or 'params'), 'bounds', 'regression', parameters "
            f"or numbers; got {type(init).__name__}."
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


def _outside(space: ParamSpace, values: np.ndarray) -> np.ndarray:
    """Which ``values`` (``(n, n_free)``) lie outside their bounds."""
    return (values < space.lower) | (values > space.upper)


def _inside(space: ParamSpace, values: np.ndarray) -> np.ndarray:
    """``values`` as they are if within the bounds, else moved just inside."""
    return space.values_clipped(values) if _outside(space, values).any() else values


def _warn_unmoved(plans, starts: np.ndarray, final_values: np.ndarray, losses) -> None:
    """Warn when an optax fit ends starts with a finite loss where they began: no
    step of theirs ever lowered the loss (the best point is kept), typically a step
    too large. (Starts without a finite loss are warned about on their own.)"""
    if not any(kind == "optax" for kind, _, _ in plans):
        return
    unmoved = np.all(np.isclose(final_values, starts, rtol=1e-9, atol=0), axis=1)
    unmoved &= np.isfinite(losses)
    if unmoved.any():
        warnings.warn(
            f"{int(unmoved.sum())} of {len(starts)} starts ended at their starting "
            "values: no step lowered their loss (the optimizer's steps are probably "
            "too large for this problem). Pass a smaller step, e.g. "
            "optimizer=optax.adam(1e-3), or optimizer='lm' for a residual loss.",
            RuntimeWarning,
            stacklevel=4,
        )


def _check_finite_init(
    space: ParamSpace, values: np.ndarray, what: str = "`init`"
) -> None:
    """Refuse non-finite starting values (they would silently give failed starts);
    warn about values outside the bounds (the starts are moved inside them);
    ``what`` names where the values came from."""
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        row, col = (int(x) for x in bad[0])
        where = f" (start {row})" if len(values) > 1 else ""
        raise ValueError(
            f"`init` values must be finite; got {values[row, col]} for "
            f"{space.free[col]}{where}."
        )
    outside = np.argwhere(_outside(space, values))
    if outside.size:
        row, col = (int(x) for x in outside[0])
        where = f" (start {row})" if len(values) > 1 else ""
        warnings.warn(
            f"{what}: {space.free[col]} = {values[row, col]:g}{where} lies outside "
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
    function (described by its name only, the same for every lambda), is not a
    dataclass (no fields to describe) or is a user's own class (whose code may
    change between two runs of a checkpointed fit, its name and fields not)."""
    if not dataclasses.is_dataclass(loss):
        return True
    if not type(loss).__module__.startswith("fitting."):
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


def _digest(starts: np.ndarray) -> str:
    return hashlib.sha256(
        np.ascontiguousarray(starts, np.float64).tobytes()
    ).hexdigest()[:16]


def _differences(saved: Any, current: dict, shown: int = 3) -> str:
    """What differs between a checkpoint's fit and this one, e.g. ``"seed 0 →
    1; n_starts 4 → 8"``; ``""`` when the checkpoint does not say (older
    format) or only a custom optimizer's or loss's computation differs."""
    if not isinstance(saved, dict):
        return ""
    changes = []

    def walk(old: Any, new: Any, name: str) -> None:
        if isinstance(old, dict) and isinstance(new, dict):
            for key in sorted(set(old) | set(new), key=str):
                walk(old.get(key), new.get(key), f"{name}.{key}" if name else key)
        elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
            for k, (a, b) in enumerate(zip(old, new, strict=True)):
                walk(a, b, f"{name}[{k}]")
        elif json.dumps(old, default=str) != json.dumps(new, default=str):
            changes.append(f"{name} {_short(old)} → {_short(new)}")

    current = json.loads(json.dumps(hhjax.io.json_safe(current)))  # as saved
    walk(saved.get("settings"), current["settings"], "")
    if saved.get("data") != current["data"]:
        changes.append("the data differ")
    if saved.get("starts") != current["starts"] and not changes:
        changes.append("the starting values differ")
    more = len(changes) - shown
    return "; ".join(changes[:shown]) + (f"; and {more} more" if more > 0 else "")


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


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
        init: where starts come from: ``None`` or ``"params"`` (around
            ``params``, as ``--init params``), ``"regression"``
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
            the last 5 iterations, which do not hold up the others. Stages
            before the last (of a loss with several, e.g. growing windows) stop
            at max(1e-4, this): they only need to reach the next stage's basin.
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
    base = one_cell(base, "`params`")
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
    checkpoint = check_checkpoint_path(checkpoint)
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
    bar = Progress(progress, len(stages), unit)

    def run_regression():
        result = fit(
            data, space.free, params=base, bounds=bounds, loss=EquationError(),
            optimizer="lm", n_starts=1,
            # A warm start only: parameters outside the bounds start at the
            # nearest bound without the warning an explicit start would get.
            init=_inside(space, space.base_values()[None]),
            method=method, dtype=dtype, progress=False, uncertainty=False,
        )  # fmt: skip
        return result.final_values[0]

    # Everything from here on may be interrupted (Ctrl-C, SIGTERM turned into it
    # by the CLI, KeyboardInterrupt from the callback): FitInterrupted, with the
    # progress saved whenever there is any (the run's committed state).
    run: Run | None = None
    phase = "preparing the fit"  # what an interruption interrupted
    loaded = None  # a checkpoint being resumed
    fingerprint, probes = None, []
    identity = None  # what the fingerprint hashes: to say what differs
    save_failed = False
    saved_once = False  # a save of this call succeeded (the checkpoint is ours)

    def write_checkpoint():
        nonlocal saved_once
        meta, saved = run.snapshot()
        mine = {"fingerprint": fingerprint, "identity": identity}
        if probes:
            mine["probes"] = probes
        save_checkpoint(checkpoint, {**mine, "elapsed_s": run.elapsed(), **meta}, saved)
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
            space, loss_obj, optimizer, plans, modes, n_starts, init_text, spread,
            seed, tolerance, method, dtype,
        )  # fmt: skip
        fingerprint = _fingerprint(settings, data, starts)
        identity = {
            "settings": settings, "data": data.fingerprint(), "starts": _digest(starts)
        }  # fmt: skip
        # A custom optimizer or loss is named by its type/function name only: the
        # checkpoint also records what it computes (only needed with a checkpoint).
        if checkpoint is not None:
            phase = "identifying the custom optimizer or loss for the checkpoint"
            probes = in_worker(
                _probes, optimizer, plans, loss_obj, stages, space,
                space.to_z(starts[0]), data,
            )  # fmt: skip
        key = compile_key(loss_obj, data, method, space, modes, n_starts, dtype, mesh)
        run = Run(
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
                    differs = _differences(meta.get("identity"), identity)
                    raise mismatched_checkpoint(
                        checkpoint,
                        "this checkpoint belongs to a different fit ("
                        + (
                            differs
                            or "data, settings, starts, optimizer or loss differ"
                        )
                        + ")",
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
        _warn_unmoved(plans, starts, final_values, losses)
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
        result = FitResult(
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
        note = result.convergence_note()
        if note is not None:
            warnings.warn(note, RuntimeWarning, stacklevel=3)
        return result
    except KeyboardInterrupt:
        # Save first (milliseconds, atomic), then stop the background compilation
        # without waiting for it (finally): a second Ctrl-C cannot lose the save.
        raise _interrupted(
            run, phase, checkpoint, write_checkpoint, saved_before()
        ) from None
    except Exception as err:
        # The committed state is always consistent (fitting._run.Run._commit):
        # keep the progress for a resume. Not for a checkpoint of another fit
        # (nothing is committed until one is restored), and never hiding the
        # error itself.
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
        return FitInterrupted(f"{text}; {NOTHING_SAVED}", None)
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
