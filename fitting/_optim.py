"""Optimisers for one start: Levenberg–Marquardt on residuals, or any optax method.

Both work on the unconstrained vector ``z`` of a :class:`ParamSpace` (plus the
per-window offsets ``delta`` of a shooting stage) and expose
``init(z, delta, data) -> state`` and ``step(state, data) -> state`` for a single
start; the fit ``vmap``\\ s them over starts and ``scan``\\ s them over iterations,
so all starts advance in one compiled computation.

Derivatives. Levenberg–Marquardt needs the whole residual Jacobian ``J``:
forward mode gives it exactly with ``n`` Jacobian-vector products (one per free
parameter), batched with ``vmap`` over one primal computation, with memory that
does not grow with the trace length. The per-window offsets of a shooting stage
need only **one** more product — every window depends on its own offset alone,
so a tangent of ones gives each window's sensitivity at once — and are
eliminated from the normal equations by a Schur complement, window by window.
First-order (optax) methods need only the gradient ``2 Jᵀr / N``: forward mode
for up to :data:`FORWARD_MODE_MAX_PARAMS` free parameters, reverse mode
(``jax.grad`` through the rematerialised simulation, cost independent of ``n``)
above — the measured crossover.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array, lax

import hhjax
from fitting._data import FitArrays
from fitting._losses import Stage, stage_value
from fitting._params import ParamSpace

# Gradients for optax: forward mode up to this many free parameters, reverse mode
# above (measured crossover 1-2: docs/fitting.md, "Optimisers and derivatives").
FORWARD_MODE_MAX_PARAMS = 1
# "auto" uses Levenberg-Marquardt (forward-mode Jacobians: n + 1 JVPs per
# iteration, memory independent of the trace length) up to this many parameters.
LM_MAX_PARAMS = 12
_LAMBDA_MIN, _LAMBDA_MAX = 1e-9, 1e12
_LAMBDA_INIT = 1e-2
# Trust region of a Levenberg-Marquardt step: it is damped more until no free
# field changes by more than a factor exp(_MAX_LOG_STEP) (log-scaled fields) or
# by more than _MAX_LINEAR_STEP of its bounds' width (others) in one iteration.
_MAX_LOG_STEP = 0.7
_MAX_LINEAR_STEP = 0.05
_MAX_DAMPING_TRIES = 20  # x4 each: up to 1e12 times the damping


def _residual_fn(stage: Stage, to_params: Callable, data: FitArrays):
    def fn(x, delta):
        r, prior, norm = stage.residuals(to_params(x), delta, data)
        return (r, norm) if prior is None else (r, norm, prior)

    return fn


class _Linearisation(NamedTuple):
    r: Array  # residuals, (L, *G) or any shape without offsets
    norm: Array  # sum of the weights, ()
    prior: Array | None  # offset residuals, G
    jz: Array  # d r / d x, (n, *r.shape)
    s: Array | None  # d r / d delta (own window), r.shape
    c: Array | None  # d prior / d delta, G


def linearise(
    stage: Stage, to_params: Callable, x: Array, delta: Array, data: FitArrays
) -> _Linearisation:
    """Residuals and their exact Jacobian with respect to ``x`` by forward mode:
    ``n`` + 1 JVPs batched with ``vmap`` (the primal is computed once);
    ``to_params(x)`` gives the model parameters."""
    fn = _residual_fn(stage, to_params, data)
    n = x.shape[0]
    tx = jnp.eye(n, dtype=x.dtype)
    td = jnp.zeros((n,) + delta.shape, delta.dtype)
    if stage.delta_shape is not None:  # one more tangent: ones on every offset
        tx = jnp.concatenate([tx, jnp.zeros((1, n), x.dtype)])
        td = jnp.concatenate([td, jnp.ones((1,) + delta.shape, delta.dtype)])

    def push(dx, dd):
        return jax.jvp(fn, (x, delta), (dx, dd))

    primal, tangent = jax.vmap(push, out_axes=(None, 0))(tx, td)
    jz = tangent[0][:n]
    if stage.delta_shape is None:
        return _Linearisation(primal[0], primal[1], None, jz, None, None)
    return _Linearisation(
        primal[0], primal[1], primal[2], jz, tangent[0][n], tangent[2][n]
    )


def _sum_sq(lin: _Linearisation) -> Array:
    total = jnp.sum(accumulate(lin.r) ** 2)
    if lin.prior is not None:
        total = total + jnp.sum(accumulate(lin.prior) ** 2)
    return total


def normal_equations(lin: _Linearisation):
    """``A = JzᵀJz``, ``gz = Jzᵀr`` and, with offsets, the per-window blocks
    ``B = Jzᵀs``, ``D = sᵀs + c²``, ``gd = sᵀr + c·prior`` (in float64 when
    JAX's x64 mode is on, whatever the simulation's dtype)."""
    n = lin.jz.shape[0]
    jz_full, r = accumulate(lin.jz), accumulate(lin.r)
    jz = jz_full.reshape(n, -1)
    a = jz @ jz.T
    gz = jz @ r.reshape(-1)
    if lin.s is None:
        return a, gz, None, None, None
    s, c, prior = accumulate(lin.s), accumulate(lin.c), accumulate(lin.prior)
    b = jnp.sum(jz_full * s[None], axis=1)  # (n, *G)
    d = jnp.sum(s * s, axis=0) + c * c
    gd = jnp.sum(s * r, axis=0) + c * prior
    return a, gz, b.reshape(n, -1), d.reshape(-1), gd.reshape(-1)


def gauss_newton_matrix(lin: _Linearisation) -> Array:
    """``JᵀJ`` of the parameters with the offsets profiled out (Schur complement),
    ``(n, n)``."""
    a, _, b, d, _ = normal_equations(lin)
    if b is None:
        return a
    d = d + 1e-300
    return a - (b / d) @ b.T


def _lm_solve(normal, lam: Array):
    """Damped Gauss–Newton step ``(step_z, step_delta)`` at damping ``lam`` from
    the normal equations ``normal`` (:func:`normal_equations`); ``step_delta``
    is flat (one entry per window and sweep), ``None`` without offsets."""
    a, gz, b, d, gd = normal
    n = a.shape[0]
    diag = jnp.diag(a)
    damp = lam * jnp.where(diag > 0, diag, 1.0)
    ad = a + jnp.diag(damp) + 1e-12 * jnp.eye(n, dtype=a.dtype) * jnp.max(diag)
    if b is None:
        return jnp.linalg.solve(ad, -gz), None
    dd = d * (1.0 + lam) + 1e-12
    schur = ad - (b / dd) @ b.T
    rhs = -(gz - b @ (gd / dd))
    step_z = jnp.linalg.solve(schur, rhs)
    step_d = -(gd + step_z @ b) / dd
    return step_z, step_d


def _bounded_step(normal, lam: Array, z: Array, space: ParamSpace):
    """The damped step with the smallest damping ``>= lam`` (×4 at a time) that
    moves no parameter further than the trust region allows (a factor
    ``exp(_MAX_LOG_STEP)``, or ``_MAX_LINEAR_STEP`` of the bounds' width): the
    Levenberg–Marquardt damping as the multiplier of a trust region (Moré 1978),
    so a far start takes steps that bend towards steepest descent instead of
    long Gauss–Newton jumps. Only the small damped system is solved again.
    Returns ``(damping, step_z, step_delta)``."""

    def size(step_z):
        return space.step_size(z, step_z, _MAX_LOG_STEP, _MAX_LINEAR_STEP)

    def too_long(carry):
        lam, step_z, _, tries = carry
        return (size(step_z) > 1.0) & (tries < _MAX_DAMPING_TRIES)

    def damp_more(carry):
        lam, _, _, tries = carry
        lam = jnp.minimum(lam * 4.0, _LAMBDA_MAX)
        return (lam, *_lm_solve(normal, lam), tries + 1)

    step_z, step_d = _lm_solve(normal, lam)
    lam, step_z, step_d, _ = lax.while_loop(
        too_long, damp_more, (lam, step_z, step_d, 0)
    )
    return lam, step_z, step_d


class Method(NamedTuple):
    """An optimiser for one start.

    ``init(z, delta, data) -> state`` (evaluates nothing); ``step(state, data) ->
    state``; ``result(state) -> (z, delta, loss)`` (the best point evaluated);
    ``observe(before, after) -> (loss, z)``: a loss the step evaluated and its
    point (Levenberg–Marquardt: the accepted point after the step; optax: the
    point where the step started).
    """

    init: Callable
    step: Callable
    result: Callable
    observe: Callable


def accumulation_dtype(dtype) -> Any:
    """float64 for sums and linear algebra when JAX's x64 mode is on (the fit
    turns it on even for float32 simulations), else ``dtype``."""
    return jnp.float64 if jax.config.jax_enable_x64 else dtype


def accumulate(x: Array) -> Array:
    """``x`` in :func:`accumulation_dtype`."""
    return x.astype(accumulation_dtype(x.dtype))


# ------------------------------------------------------------ Levenberg-Marquardt
class LMState(NamedTuple):
    z: Array  # accepted unconstrained parameters, (n_free,)
    delta: Array  # accepted per-window V offsets, mV, delta_shape (or (0,))
    lam: Array  # damping of the pending trial step, ()
    loss: Array  # loss at (z, delta) (inf before the first evaluation), ()
    normal: tuple  # normal equations at (z, delta), see normal_equations
    potential: Array  # loss decrease an undamped Gauss-Newton step from (z, delta)
    # would bring if the residuals were linear (inf before the first evaluation), ()
    trial_z: Array  # the point the next iteration evaluates, (n_free,)
    trial_delta: Array  # and its offsets, like delta


def _zero_normal(n: int, n_offsets: int | None, dtype) -> tuple:
    """Normal equations of no residuals (the state before the first evaluation)."""
    if n_offsets is None:
        return jnp.zeros((n, n), dtype), jnp.zeros(n, dtype), None, None, None
    g = jnp.zeros(n_offsets, dtype)
    return (
        jnp.zeros((n, n), dtype),
        jnp.zeros(n, dtype),
        jnp.zeros((n, n_offsets), dtype),
        g,
        g,
    )


def _potential(normal) -> Array:
    """Decrease of the sum of squares that the undamped Gauss–Newton step would
    bring if the residuals were linear, ``gᵀ A⁻¹ g`` (offsets included) — the
    convergence measure: a damped step can gain little far from the optimum,
    this cannot."""
    step_z, step_d = _lm_solve(normal, jnp.zeros((), normal[0].dtype))
    gain = -jnp.dot(step_z, normal[1])
    if step_d is not None:
        gain = gain - jnp.dot(step_d, normal[4])
    return jnp.maximum(gain, 0.0)


def levenberg_marquardt(stage: Stage, space: ParamSpace) -> Method:
    """Levenberg–Marquardt (Marquardt's diagonal scaling) on a residual stage.

    Each iteration linearises once (``n_free + 1`` JVPs, which give the loss
    too) at the trial point that the previous iteration proposed. If its loss is
    lower than the accepted point's, the trial point is accepted with its normal
    equations (damping ÷3); otherwise the accepted point is kept (damping ×4).
    The next trial point is then solved from the accepted point's normal
    equations (offsets eliminated window by window) — a rejected step costs no
    new Jacobian, and every simulation of an iteration is part of one Jacobian.

    Returns:
        A :class:`Method` for one start.
    """
    if stage.residuals is None:
        raise ValueError(
            "Levenberg-Marquardt needs a residual loss (shooting, mse, regression); "
            "use an optax optimizer for a custom scalar loss."
        )
    with_offsets = stage.delta_shape is not None

    def init(z, delta, data):
        acc = accumulation_dtype(z.dtype)
        n_offsets = delta.size if with_offsets else None
        return LMState(
            z=z,
            delta=delta,
            lam=jnp.asarray(_LAMBDA_INIT, acc),
            loss=jnp.asarray(jnp.inf, acc),
            normal=_zero_normal(z.shape[0], n_offsets, acc),
            potential=jnp.asarray(jnp.inf, acc),
            trial_z=z,
            trial_delta=delta,
        )

    def step(state: LMState, data):
        lin = linearise(
            stage, space.params_from_z, state.trial_z, state.trial_delta, data
        )
        trial_loss = _sum_sq(lin) / lin.norm
        normal = normal_equations(lin)
        finite = jnp.isfinite(trial_loss) & jnp.all(jnp.isfinite(state.trial_z))
        finite &= jnp.all(jnp.isfinite(normal[0])) & jnp.all(jnp.isfinite(normal[1]))
        ok = finite & (trial_loss < state.loss)
        first = ~jnp.isfinite(state.loss)  # the start itself: not a step

        def pick(new, old):
            return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)

        z, delta = pick((state.trial_z, state.trial_delta), (state.z, state.delta))
        loss = jnp.where(ok, trial_loss, state.loss)
        potential = jnp.where(ok, _potential(normal) / lin.norm, state.potential)
        normal = pick(normal, state.normal)
        lam = jnp.where(
            ok, jnp.where(first, state.lam, state.lam / 3.0), state.lam * 4.0
        )
        lam = jnp.clip(lam, _LAMBDA_MIN, _LAMBDA_MAX)
        lam, step_z, step_d = _bounded_step(normal, lam, z, space)
        trial_delta = delta
        if step_d is not None:
            trial_delta = delta + step_d.reshape(delta.shape).astype(delta.dtype)
        return LMState(
            z=z,
            delta=delta,
            lam=lam,
            loss=loss,
            normal=normal,
            potential=potential,
            trial_z=z + step_z.astype(z.dtype),
            trial_delta=trial_delta,
        )

    def result(state: LMState):
        return state.z, state.delta, state.loss

    def observe(before: LMState, after: LMState):
        return after.loss, after.z

    return Method(init, step, result, observe)


# ------------------------------------------------------------------------ optax
class OptaxState(NamedTuple):
    z: Array
    delta: Array
    opt_state: Any
    loss: Array  # loss at the current (z, delta), evaluated by the last step
    best_z: Array
    best_delta: Array
    best_loss: Array


def _value_and_grad(stage: Stage, space: ParamSpace, mode: str):
    def loss_fn(p, data):
        return stage_value(stage, space.params_from_z(p["z"]), p["delta"], data)

    if mode == "reverse":
        return jax.value_and_grad(loss_fn)
    if stage.residuals is None:

        def forward_scalar(p, data):
            value, grad_z = hhjax.value_and_grad(
                lambda z: loss_fn({**p, "z": z}, data), mode="forward"
            )(p["z"])
            return value, {"z": grad_z, "delta": jnp.zeros_like(p["delta"])}

        return forward_scalar

    def forward_residual(p, data):
        lin = linearise(stage, space.params_from_z, p["z"], p["delta"], data)
        norm = lin.norm
        _, gz, _, _, gd = normal_equations(lin)
        grad_d = (
            jnp.zeros_like(p["delta"]) if gd is None else gd.reshape(p["delta"].shape)
        )
        norm = accumulate(norm)
        grads = {"z": 2.0 * gz / norm, "delta": 2.0 * grad_d / norm}
        grads = {k: g.astype(p[k].dtype) for k, g in grads.items()}
        return _sum_sq(lin) / norm, grads

    return forward_residual


def optax_method(
    stage: Stage,
    space: ParamSpace,
    optimizer: optax.GradientTransformation,
    mode: str,
):
    """An optax optimizer on the stage loss; keeps the best iterate of each start.

    ``mode`` is ``"forward"`` or ``"reverse"`` (see the module docstring). The
    optimizer receives ``value``, ``grad`` and ``value_fn`` as extra arguments,
    so line-search methods such as ``optax.lbfgs()`` work. A non-finite loss or
    gradient skips the update.

    Returns:
        A :class:`Method` for one start.
    """
    opt = optax.with_extra_args_support(optimizer)
    value_and_grad = _value_and_grad(stage, space, mode)

    def pack(z, delta):
        return {"z": z, "delta": delta}

    def init(z, delta, data):
        inf = jnp.asarray(jnp.inf, accumulation_dtype(z.dtype))
        return OptaxState(z, delta, opt.init(pack(z, delta)), inf, z, delta, inf)

    def step(state: OptaxState, data):
        p = pack(state.z, state.delta)
        loss, grads = value_and_grad(p, data)
        finite = jnp.isfinite(loss) & jnp.all(
            jnp.array([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)])
        )
        grads = jax.tree.map(lambda g: jnp.where(finite, g, 0.0), grads)
        better = finite & (loss < state.best_loss)

        def value_fn(q):
            return stage_value(stage, space.params_from_z(q["z"]), q["delta"], data)

        updates, opt_state = opt.update(
            grads, state.opt_state, p, value=loss, grad=grads, value_fn=value_fn
        )
        updates = jax.tree.map(lambda u: jnp.where(finite, u, 0.0), updates)
        new = optax.apply_updates(p, updates)
        return OptaxState(
            z=new["z"],
            delta=new["delta"],
            opt_state=opt_state,
            loss=loss,
            best_z=jnp.where(better, state.z, state.best_z),
            best_delta=jnp.where(better, state.delta, state.best_delta),
            best_loss=jnp.where(better, loss, state.best_loss),
        )

    def result(state: OptaxState):
        return state.best_z, state.best_delta, state.best_loss

    def observe(before: OptaxState, after: OptaxState):
        return after.loss, before.z  # the step evaluated the loss at before.z

    return Method(init, step, result, observe)


@functools.lru_cache(maxsize=16)
def default_optimizer(n_iterations: int) -> optax.GradientTransformation:
    """Adam with a warm-up-free cosine decay of the step from 0.05 to 5e-4 (in the
    unconstrained space, where 0.05 moves a log-scaled conductance by ~15 %)."""
    schedule = optax.cosine_decay_schedule(0.05, max(1, n_iterations), alpha=0.01)
    return optax.adam(schedule)


@functools.lru_cache(maxsize=1)
def _lbfgs() -> optax.GradientTransformation:
    return optax.lbfgs()


def resolve_optimizer(
    optimizer: Any, stage: Stage, n_free: int, n_iterations: int | None
) -> tuple[str, Any, int]:
    """``(kind, optax transformation or None, iterations)`` for ``optimizer``:
    ``"auto"`` (Levenberg–Marquardt for residual losses with at most
    :data:`LM_MAX_PARAMS` free parameters, else Adam), ``"lm"``,
    ``"adam"``, ``"lbfgs"``, or an ``optax.GradientTransformation``."""
    if optimizer == "auto":
        use_lm = stage.residuals is not None and n_free <= LM_MAX_PARAMS
        optimizer = "lm" if use_lm else "adam"
    if optimizer == "lm":
        return "lm", None, n_iterations or 50
    if optimizer == "adam":
        n = n_iterations or 500
        return "optax", default_optimizer(n), n
    if optimizer == "lbfgs":
        return "optax", _lbfgs(), n_iterations or 100
    if isinstance(optimizer, optax.GradientTransformation):
        return "optax", optimizer, n_iterations or 500
    raise ValueError(
        "`optimizer` must be 'auto', 'lm', 'adam', 'lbfgs' or an "
        f"optax.GradientTransformation; got {optimizer!r}."
    )


def probe_updates(
    optimizer: optax.GradientTransformation, n_free: int, delta_shape: tuple = (0,)
) -> np.ndarray:
    """What ``optimizer`` does, as numbers: its updates over 3 steps from its
    initial state on a fixed quadratic in parameters shaped as a fit passes them
    (``{"z": (n_free,), "delta": delta_shape}``), float64 on the CPU.

    A checkpoint can name an optax transformation only by its type, the same for
    every optax optimizer; these updates differ with the learning rate (or its
    schedule), the momenta and most other hyperparameters, so a fit compares them
    before it resumes a checkpoint written with a custom optimizer.

    Returns:
        ``(3 * (n_free + prod(delta_shape)),)``.
    """
    opt = optax.with_extra_args_support(optimizer)
    size = n_free + int(np.prod(delta_shape))
    curvature = jnp.linspace(0.5, 2.0, size)
    target = jnp.linspace(-1.0, 1.5, size)

    def flat(p):
        return jnp.concatenate([p["z"], p["delta"].reshape(-1)])

    def loss(p):
        return 0.5 * jnp.sum(curvature * (flat(p) - target) ** 2)

    def run():
        p = {"z": jnp.zeros(n_free), "delta": jnp.zeros(delta_shape)}
        state, out = opt.init(p), []
        for _ in range(3):
            value, grads = jax.value_and_grad(loss)(p)
            updates, state = opt.update(
                grads, state, p, value=value, grad=grads, value_fn=loss
            )
            out.append(flat(updates))
            p = optax.apply_updates(p, updates)
        return jnp.concatenate(out)

    with jax.enable_x64(True), jax.default_device(jax.devices("cpu")[0]):
        return np.asarray(jax.jit(run)(), np.float64)


def grad_mode(mode: str, n_free: int) -> str:
    """``"forward"`` or ``"reverse"`` for ``mode`` in ``{"auto", "forward",
    "reverse"}``: auto picks forward up to :data:`FORWARD_MODE_MAX_PARAMS`."""
    if mode == "auto":
        return "forward" if n_free <= FORWARD_MODE_MAX_PARAMS else "reverse"
    if mode not in ("forward", "reverse"):
        raise ValueError(
            f"`grad_mode` must be 'auto', 'forward' or 'reverse'; got {mode!r}."
        )
    return mode
