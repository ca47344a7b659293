"""Periodic orbits (repetitive firing) by shooting, and their continuation in I.

A periodic orbit under a constant current ``I`` is a state ``x0`` and a period ``T``
with ``φ_T(x0; I) = x0``, where ``φ`` is the flow integrated by a fixed-step method
(``n`` steps of ``T / n`` ms, so the flow is differentiable w.r.t. ``T``). The phase
is pinned by ``dV/dt(x0) = 0``: ``x0`` is an extremum of V (the minimum when the
orbit comes from a simulation). Newton's method on these ``d + 1`` equations, with
the Jacobian by forward-mode autodiff through the integration, converges to machine
precision in a few iterations; pseudo-arclength continuation in ``(x0, T, I)``
follows a branch of orbits around folds.

States are flat vectors ``(v, *gates)`` (V in mV); one cell (scalar parameters).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax

from hhjax._checks import check_current, is_integer, positive_number
from hhjax._equilibrium import resting_state
from hhjax._integrators import DEFAULT_METHOD, get_integrator
from hhjax._model import document_fields, model_of
from hhjax._simulate import largest_stable_dt, simulate
from hhjax.analysis._fixed_points import (
    check_one_cell,
    check_one_state,
    require_concrete,
    state_to_vector,
    vector_field,
)

_NEWTON_TOL = 1e-10  # max |residual| (mV, gates, mV/ms) accepted as converged
_NEWTON_MAX = 25
_NEWTON_HALVINGS = 6  # a Newton step is shortened to 1/64 at most
_WARMUP_DT = 0.02  # ms, step of the simulation that finds the orbit
_MAX_WARMUP_STEPS = 2_000_000  # recorded: about 64 MB for HH's four fields
# max |dx/dt| (mV/ms, 1/ms) below which a solution of H = 0 is a fixed point.
_FIXED_POINT_SPEED = 1e-6


def _require_float64(name: str) -> None:
    """Raise unless float64 is enabled: the shooting Newton solve stops at a
    residual of ``_NEWTON_TOL`` (1e-10), far below float32 resolution (~1e-7)."""
    if jnp.result_type(float) != jnp.float64:
        raise RuntimeError(
            f"`{name}` needs float64 (its Newton solve converges to 1e-10, below "
            "float32 resolution): call jax.config.update('jax_enable_x64', True) "
            "before creating arrays, or run it inside `with jax.enable_x64(True):`."
        )


@document_fields
class LimitCycle(NamedTuple):
    """A periodic orbit of one cell under a constant current.

    Attributes:
        state: state at the start of the cycle (a V extremum: the minimum unless
            found from a ``guess`` nearer the maximum), model state tuple (V in
            mV, in the convention of the params; gates dimensionless)
        period: period of the orbit, ms
        current: injected current, µA/cm²
        multipliers: Floquet multipliers, complex, shape ``(d,)``, sorted by
            decreasing modulus
        stable: whether all multipliers except the trivial one inside the unit circle
        n_steps: integration steps per period used for the shooting
    """

    state: Any
    period: float
    current: float
    multipliers: Array
    stable: bool
    n_steps: int


# ----------------------------------------------------------------- the flow and H
def flow(
    params: Any,
    x0: Array,
    period: Array,
    i_ext: Array,
    n_steps: Any,
    method: str = DEFAULT_METHOD,
) -> Array:
    """Integrate a flat state ``x0`` for ``period`` ms in ``n_steps`` fixed steps.

    ``n_steps`` may be traced (a ``fori_loop``): forward-mode derivatives work and
    one compilation serves every number of steps.

    Returns:
        The flat state after ``period`` ms, shape ``(d,)``.
    """
    model = model_of(params)
    step = get_integrator(method).step
    dt = period / n_steps

    def body(_, x):
        return state_to_vector(step(model, model.state_type(*x), params, i_ext, dt))

    return lax.fori_loop(0, n_steps, body, x0)


def _residual(params, z, n_steps, method):
    """``H(x0, T, I) = (φ_T(x0) − x0, dV/dt(x0))``, shape ``(d + 1,)``."""
    d = z.shape[0] - 2
    x0, period, i_ext = z[:d], z[d], z[d + 1]
    model = model_of(params)
    dv = model.dv_dt(model.state_type(*x0), params, i_ext)
    return jnp.concatenate(
        [flow(params, x0, period, i_ext, n_steps, method) - x0, dv[None]]
    )


@partial(jax.jit, static_argnames=("method",))
def _residual_and_jacobian_jit(params, z, n_steps, method):
    res = partial(_residual, params, n_steps=n_steps, method=method)
    return res(z), jax.jacfwd(res)(z)


def _residual_and_jacobian(params, z, n_steps, method):
    """``H(z)`` ``(d + 1,)`` and its Jacobian ``(d + 1, d + 2)`` as NumPy arrays."""
    res, jac = _residual_and_jacobian_jit(params, jnp.asarray(z), n_steps, method)
    return np.asarray(res), np.asarray(jac)


# --------------------------------------------------------------------- Newton
def _newton(params, z, n_steps, method, extra=None):
    """Solve ``H(z) = 0`` for ``(x0, T)`` at fixed I, or, with ``extra = (t, c)``,
    solve ``[H(z); t·z − c] = 0`` for all of ``z``. Damped: a step that does not
    lower the largest residual is halved (up to :data:`_NEWTON_HALVINGS` times),
    so a guess from a nearby current converges where full steps overshoot.

    Returns:
        ``(z, jacobian of H at z, converged)``.
    """

    def system(z):
        res, jac = _residual_and_jacobian(params, z, n_steps, method)
        if extra is None:
            return res, jac, jac[:, :-1], res
        t, c = extra
        return res, jac, np.vstack([jac, t[None]]), np.concatenate([res, [t @ z - c]])

    def size(rhs):
        return float(np.max(np.abs(rhs))) if np.all(np.isfinite(rhs)) else np.inf

    z = np.array(z, dtype=float)
    res, jac, lhs, rhs = system(z)
    for _ in range(_NEWTON_MAX):
        norm = size(rhs)
        if not np.isfinite(norm):
            return z, jac, False
        if norm < _NEWTON_TOL:
            return z, jac, True
        delta = np.linalg.solve(lhs, -rhs)
        if extra is None:
            delta = np.concatenate([delta, [0.0]])
        step = 1.0
        for _ in range(_NEWTON_HALVINGS + 1):
            trial = z + step * delta
            found = system(trial)
            if size(found[3]) < norm:
                break
            step *= 0.5
        z, (res, jac, lhs, rhs) = trial, found
    return z, jac, bool(np.max(np.abs(res)) < 1e3 * _NEWTON_TOL)


def check_on_orbit(residual: np.ndarray, what: str, remedy: str) -> None:
    """A clear error when a given orbit (``what``) does not solve ``H = 0`` for
    the params and method at hand (it was computed for others); ``residual`` is
    ``H`` at it."""
    worst = float(np.max(np.abs(residual)))
    if not worst < 1e3 * _NEWTON_TOL:  # NaN too
        raise ValueError(
            f"{what} is not a periodic orbit of these `params` with this `method`: "
            f"its shooting residual is {worst:.3g} (a converged orbit's is below "
            f"{1e3 * _NEWTON_TOL:g}); {remedy}"
        )


def _tangent(jac, previous):
    """Unit tangent of the branch ``H = 0`` (Jacobian ``jac``), along ``previous``."""
    rhs = np.zeros(jac.shape[1])
    rhs[-1] = 1.0
    t = np.linalg.solve(np.vstack([jac, previous[None]]), rhs)
    return t / np.linalg.norm(t)


# ------------------------------------------------------------ initial guesses
def _guess_from_simulation(params, i_ext, warmup, method):
    """State at the last V minimum of a simulation from rest, and the last ISI."""
    model = model_of(params)
    # Hot cells (fast rates) need a shorter step: half the stable limit.
    limit, factor = largest_stable_dt(method, model, params)
    dt = min(_WARMUP_DT, 0.5 * limit)
    fields = ("v", *model.gate_names)
    n_warm = round(positive_number(warmup, "warmup", "ms") / dt)
    if n_warm > _MAX_WARMUP_STEPS:
        raise ValueError(
            f"The warm-up of {warmup:g} ms would take {n_warm} steps of {dt:.3g} ms "
            f"(the rates are {factor:.3g}x their value at the reference "
            f"temperature); shorten `warmup` (ms) to at most "
            f"{_MAX_WARMUP_STEPS * dt:.3g} ms, or give a `guess`."
        )
    if n_warm < 3:
        raise ValueError(
            f"`warmup` ({warmup:g} ms) is shorter than 3 steps of the {dt:g} ms "
            "simulation that finds the orbit; it must hold several spikes."
        )
    current = jnp.full((n_warm,), i_ext)
    trace = simulate(
        params, current, dt, state0=resting_state(params), method=method, record=fields
    )
    x = np.stack([np.asarray(getattr(trace, f)) for f in fields], axis=1)
    v = x[:, 0]
    tail = v[len(v) // 2 :]
    lo, hi = float(tail.min()), float(tail.max())
    level = 0.5 * (lo + hi)
    ups = np.nonzero((v[:-1] < level) & (v[1:] >= level))[0]
    ups = ups[ups >= len(v) // 2]
    if hi - lo < 1.0 or len(ups) < 3:
        raise ValueError(
            f"No repetitive firing found at I = {float(i_ext):g} uA/cm^2 in the last "
            f"half of {warmup:g} ms from rest (3 spikes needed); choose a current "
            "with sustained firing, or a longer `warmup` (ms) for slow firing."
        )
    a, b = ups[-2], ups[-1]
    k = a + int(np.argmin(v[a:b]))
    return x[k], float((b - a) * dt)


def limit_cycle(
    params: Any,
    i_ext: float,
    *,
    dt: float = 0.01,
    warmup: float = 300.0,
    method: str = DEFAULT_METHOD,
    guess: tuple[Any, float] | None = None,
) -> LimitCycle:
    """The periodic orbit of repetitive firing at a constant current, by shooting.

    Started from a simulation (``warmup`` ms from the ``I = 0`` rest state with
    ``i_ext`` switched on — it lands on the orbit the cell actually fires on) or from
    ``guess``, then refined by Newton's method to a residual below 1e-10.

    Args:
        params: the model's parameter tuple (scalar leaves); voltage convention as
            the params.
        i_ext: constant injected current, µA/cm².
        dt: approximate integration step for the shooting, ms; the period is split
            into ``ceil(T / dt)`` equal steps.
        warmup: simulated time before the orbit is read off, ms.
        method: integrator, see :data:`hhjax.METHODS`.
        guess: optional ``(state, period_ms)`` to start Newton from instead: a
            state on (or near) the orbit, the model's state tuple of one cell or
            its ``d`` numbers in field order (V in mV), and the period in ms; or a
            :class:`LimitCycle` (e.g. the orbit at a nearby current).

    Returns:
        A :class:`LimitCycle`; its ``state`` is at a minimum of V when found from
        the simulation, and at the V extremum (minimum or maximum) nearest to
        ``guess`` otherwise.

    Raises:
        ValueError: no repetitive firing at ``i_ext``, a malformed ``guess``,
            Newton did not converge, or it converged to a fixed point (a
            ``guess`` near rest) instead of an orbit.
        RuntimeError: float64 is not enabled (``jax_enable_x64``).
    """
    _require_float64("limit_cycle")
    require_concrete(
        "limit_cycle",
        params,
        i_ext,
        guess,
        hint="its period and state are found by Newton's method on concrete values",
    )
    check_one_cell(params, "limit_cycle", i_ext)
    check_current(i_ext, "i_ext", opt_out=False)
    dt = positive_number(dt, "dt", "ms")
    if guess is None:
        x0, period = _guess_from_simulation(params, i_ext, warmup, method)
    else:
        if isinstance(guess, LimitCycle):  # e.g. the orbit at a nearby current
            guess = (guess.state, guess.period)
        if not isinstance(guess, (tuple, list)) or len(guess) != 2:
            raise ValueError(
                "`guess` must be (state, period_ms) or a LimitCycle: a state on the "
                f"orbit and its period; got a {type(guess).__name__}"
                + (f" of length {len(guess)}." if hasattr(guess, "__len__") else ".")
            )
        state = check_one_state(params, guess[0], "limit_cycle (`guess[0]`)")
        x0 = np.asarray(state_to_vector(state), float)
        period = positive_number(guess[1], "guess[1]", "the period in ms")
    n_steps = math.ceil(period / dt)
    z = np.concatenate([np.asarray(x0, float), [period, float(i_ext)]])
    z, jac, ok = _newton(params, z, n_steps, method)
    if not ok:
        raise ValueError(
            f"The periodic orbit at I = {float(i_ext):g} uA/cm^2 did not converge; "
            + (
                "give a longer `warmup`"
                if guess is None
                else "give a `guess` from a nearer current (continue in smaller "
                "steps), or none (the orbit is then found from rest)"
            )
            + f", or a smaller `dt` (ms) if {dt:g} ms is too coarse for method "
            f"{method!r}."
        )
    _check_not_a_fixed_point(params, z)
    return _cycle_from_z(params, z, jac, n_steps)


def _check_not_a_fixed_point(params, z):
    """A clear error when Newton converged to a fixed point (``f(x0) = 0``
    solves ``H = 0`` for every period) instead of an orbit, whose state always
    moves (on it ``|f|`` is of order 0.1/ms; at a fixed point, rounding)."""
    d = z.shape[0] - 2
    speed = np.asarray(vector_field(params, z[d + 1])(jnp.asarray(z[:d])))
    if np.max(np.abs(speed)) < _FIXED_POINT_SPEED:
        raise ValueError(
            f"Newton converged to a fixed point (V = {z[0]:.6g} mV, at rest under "
            f"I = {z[d + 1]:g} uA/cm^2), not to a periodic orbit: `guess` is too "
            "close to rest. Start from a state on the orbit (e.g. a V minimum of "
            "a simulated spike train and the inter-spike interval), or leave "
            "`guess=None` to find the orbit by simulation."
        )


def _cycle_from_z(params, z, jac, n_steps):
    """A :class:`LimitCycle` from a converged ``z``; the monodromy matrix is the
    state block of the Jacobian of ``H`` plus the identity."""
    d = z.shape[0] - 2
    mu = np.linalg.eigvals(jac[:d, :d] + np.eye(d))
    mu = mu[np.argsort(-np.abs(mu))]
    others = np.delete(np.abs(mu), np.argmin(np.abs(mu - 1.0)))
    return LimitCycle(
        state=model_of(params).state_type(*(jnp.asarray(x) for x in z[:d])),
        period=float(z[d]),
        current=float(z[d + 1]),
        multipliers=jnp.asarray(mu),
        stable=bool(np.all(others < 1.0)),
        n_steps=n_steps,
    )


# -------------------------------------------------------- fold of limit cycles
@document_fields
class CycleFold(NamedTuple):
    """A fold (saddle-node) of limit cycles: the end of a branch of orbits in I.

    Attributes:
        current: injected current at the fold, µA/cm²
        period: period of the orbit at the fold, ms
        state: state of the orbit at the fold (a V extremum), model state tuple
            (V in mV, in the convention of the params; gates dimensionless)
        branch_currents: currents visited by the continuation, µA/cm²
        branch_periods: their periods, ms
        n_steps: integration steps per period used for the shooting
    """

    current: float
    period: float
    state: Any
    branch_currents: np.ndarray
    branch_periods: np.ndarray
    n_steps: int


def limit_cycle_fold(
    params: Any,
    i_start: float,
    *,
    direction: float = -1.0,
    step: float = 0.2,
    max_steps: int = 200,
    dt: float = 0.01,
    warmup: float = 300.0,
    method: str = DEFAULT_METHOD,
    tol: float = 1e-9,
) -> CycleFold:
    """Fold of limit cycles: where a branch of periodic orbits turns back in I.

    Starting from the orbit the cell fires on at ``i_start`` (see
    :func:`limit_cycle`), pseudo-arclength continuation follows the branch towards
    lower currents (``direction=-1``) until the current turns around; the turning
    point is then located along the branch, where ``dI/ds = 0`` (to ``tol``). Started
    on stable repetitive firing going down, this is the **lowest current with
    stable repetitive firing** (for standard HH ≈ 6.26 µA/cm²: below it the cell
    can only rest; the stable orbit merges there with the unstable one born at the
    subcritical Hopf point). Not differentiable (a host-side continuation).

    Args:
        params: the model's parameter tuple (scalar leaves).
        i_start: a current with repetitive firing, µA/cm².
        direction: ``-1`` to continue towards lower currents, ``+1`` towards higher.
        step: arclength step of the continuation (mixed units of the state, ms and
            µA/cm²; halved on failure).
        max_steps: continuation steps before giving up.
        dt: approximate integration step of the shooting, ms (RK4 at 0.01 ms puts
            the HH fold within 1e-8 µA/cm² of its dt → 0 limit).
        warmup: ms simulated from rest at ``i_start`` to find the orbit (see
            :func:`limit_cycle`; longer for slowly firing cells).
        method: integrator, see :data:`hhjax.METHODS`.
        tol: tolerance on ``dI/ds`` at the fold (dimensionless slope).

    Returns:
        A :class:`CycleFold`.

    Raises:
        ValueError: no repetitive firing at ``i_start``, or no fold within
            ``max_steps`` steps.
        RuntimeError: float64 is not enabled (``jax_enable_x64``).
    """
    _require_float64("limit_cycle_fold")
    if direction not in (-1, 1):
        raise ValueError(
            f"`direction` must be -1 (towards lower currents) or +1; got {direction!r}."
        )
    step = positive_number(step, "step", "arclength")
    tol = positive_number(tol, "tol", "dI/ds")
    if not is_integer(max_steps) or max_steps < 1:
        raise ValueError(f"`max_steps` must be an int >= 1; got {max_steps!r}.")
    cycle = limit_cycle(params, i_start, dt=dt, warmup=warmup, method=method)
    n_steps = cycle.n_steps
    d = len(cycle.state)
    z = np.concatenate(
        [np.asarray(state_to_vector(cycle.state)), [cycle.period, cycle.current]]
    )
    seed = np.zeros(d + 2)
    seed[-1] = float(direction)
    t = _tangent(_residual_and_jacobian(params, z, n_steps, method)[1], seed)
    currents, periods = [float(z[-1])], [float(z[d])]
    h = step
    for _ in range(max_steps):
        guess = z + h * t
        z_new, jac, ok = _newton(params, guess, n_steps, method, extra=(t, t @ guess))
        if not ok:
            h *= 0.5
            if h < 1e-6 * step:
                break
            continue
        t_new = _tangent(jac, t)
        currents.append(float(z_new[-1]))
        periods.append(float(z_new[d]))
        if t_new[-1] * t[-1] < 0:  # dI/ds changed sign: the fold was passed
            fold = _locate_fold(params, z, t, z_new, n_steps, method, tol)
            return CycleFold(
                current=float(fold[-1]),
                period=float(fold[d]),
                state=model_of(params).state_type(*(jnp.asarray(x) for x in fold[:d])),
                branch_currents=np.array(currents),
                branch_periods=np.array(periods),
                n_steps=n_steps,
            )
        z, t = z_new, t_new
        h = min(h * 1.5, step)
    growth = periods[-1] / periods[0]
    ending = (
        f" The period grew {growth:.3g}-fold along the branch: it may end in an "
        "orbit of infinite period (homoclinic, or a saddle-node on the cycle, "
        "where firing starts at a rate near 0, class 1), which has no fold."
        if growth > 1.2
        else ""
    )
    raise ValueError(
        f"No fold of limit cycles found from I = {i_start:g} uA/cm^2 within "
        f"{max_steps} continuation steps (currents reached "
        f"{min(currents):g}..{max(currents):g} uA/cm^2, periods "
        f"{periods[0]:.4g}..{periods[-1]:.4g} ms).{ending} A larger `step` or "
        "`max_steps` follows the branch further."
    )


def _locate_fold(params, z_a, t_a, z_b, n_steps, method, tol):
    """Point between ``z_a`` and ``z_b`` where the branch's I is extremal.

    The branch is parametrised by ``σ = t_a·(z − z_a)`` (regular through the fold);
    the root of ``g(σ) = dI/dσ`` is found by the Illinois variant of regula falsi.
    """
    rhs = np.zeros(z_a.shape[0])
    rhs[-1] = 1.0

    def point_and_slope(sigma, start):
        z, jac, ok = _newton(
            params, start, n_steps, method, extra=(t_a, t_a @ z_a + sigma)
        )
        if not ok:
            raise ValueError("Continuation failed while locating the fold.")
        return z, float(np.linalg.solve(np.vstack([jac, t_a[None]]), rhs)[-1])

    s_a, s_b = 0.0, float(t_a @ (z_b - z_a))
    s_end = s_b
    _, g_a = point_and_slope(s_a, z_a)
    _, g_b = point_and_slope(s_b, z_b)
    z_mid, side = z_a, 0
    for _ in range(60):
        s = (s_a * g_b - s_b * g_a) / (g_b - g_a)
        z_mid, g = point_and_slope(s, z_a + (s / s_end) * (z_b - z_a))
        if abs(g) < tol:
            break
        if g * g_a > 0:
            s_a, g_a = s, g
            if side == -1:
                g_b *= 0.5
            side = -1
        else:
            s_b, g_b = s, g
            if side == 1:
                g_a *= 0.5
            side = 1
    return z_mid


def fold_sensitivity(
    params: Any, fold: CycleFold, *, method: str = DEFAULT_METHOD
) -> Any:
    """Gradient of the fold current w.r.t. every parameter, by implicit differentiation.

    On the branch ``H(x0, T, I; p) = 0`` the fold is where the ``(x0, T)`` block
    ``A`` of the Jacobian is singular; with ``w`` its left null vector,
    ``dI_fold/dp = −(w·∂H/∂p) / (w·∂H/∂I)`` — exact, and one forward-mode pass.

    Args:
        params: the model's parameter tuple at which ``fold`` was computed.
        fold: from :func:`limit_cycle_fold` (with the same ``method``).
        method: the integrator used for ``fold``.

    Returns:
        A parameter tuple of gradients, µA/cm² per unit of each parameter.

    Raises:
        ValueError: ``fold`` was computed for other params or another method.
        RuntimeError: float64 is not enabled (``jax_enable_x64``).
    """
    _require_float64("fold_sensitivity")
    params = jax.tree.map(lambda x: jnp.asarray(x, float), params)
    d = len(fold.state)
    z = np.concatenate(
        [np.asarray(state_to_vector(fold.state), float), [fold.period, fold.current]]
    )
    res, jac = _residual_and_jacobian(params, z, fold.n_steps, method)
    check_on_orbit(
        res,
        "`fold`",
        "compute it with limit_cycle_fold for the same params and method.",
    )
    w = np.linalg.svd(jac[:, : d + 1])[0][:, -1]
    h_p = _residual_param_jacobian(params, jnp.asarray(z), fold.n_steps, method)
    scale = -1.0 / float(w @ jac[:, -1])
    return jax.tree.map(lambda col: scale * float(w @ np.asarray(col)), h_p)


@partial(jax.jit, static_argnames=("n_steps", "method"))
def _residual_param_jacobian(params, z, n_steps, method):
    return jax.jacfwd(lambda p: _residual(p, z, n_steps, method))(params)


def fold_current(params: Any, i_start: float, **kwargs: Any) -> Array:
    """The fold current of :func:`limit_cycle_fold`, differentiable w.r.t. params.

    ``jax.grad`` works (outside ``jit``: the continuation runs on the host with
    concrete parameters); the derivative is :func:`fold_sensitivity`.

    Args:
        params: the model's parameter tuple (scalar leaves).
        i_start: a current with stable repetitive firing, µA/cm².
        **kwargs: passed to :func:`limit_cycle_fold`.

    Returns:
        The fold (lowest stable repetitive-firing) current, µA/cm², scalar array.

    Raises:
        RuntimeError: float64 is not enabled (``jax_enable_x64``).
    """
    _require_float64("fold_current")

    @jax.custom_jvp
    def current(p):
        return jnp.asarray(limit_cycle_fold(p, i_start, **kwargs).current)

    @current.defjvp
    def current_jvp(primals, tangents):
        (p,), (dp,) = primals, tangents
        fold = limit_cycle_fold(p, i_start, **kwargs)
        grad = fold_sensitivity(p, fold, method=kwargs.get("method", DEFAULT_METHOD))
        out = sum(
            g * t
            for g, t in zip(jax.tree.leaves(grad), jax.tree.leaves(dp), strict=True)
        )
        return jnp.asarray(fold.current), out

    return current(params)
