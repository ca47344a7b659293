"""Phase response curve of a periodically firing cell, by the adjoint method.

On a stable periodic orbit ``x(t)`` of period ``T``, the (infinitesimal) phase
response ``Z(t) = ∇θ(x(t))`` gives the phase shift caused by a small kick ``δx`` at
time ``t``: ``Δθ ≈ Z(t)·δx`` (θ in cycles). ``Z`` is the periodic solution of the
adjoint equation ``dZ/dt = −J(x(t))ᵀ Z`` normalised by ``Z·f(x) = 1/T``. Here it is
computed exactly for the discretised orbit: ``Z(0)`` is the left eigenvector of the
monodromy matrix for the multiplier 1, and ``Z(t_k)`` for every step is one
reverse-mode pass (``jax.grad``) of ``Z(0)·x(T)`` w.r.t. kicks added to the state
before each step. Positive values are phase *advances* (the next spike comes
earlier).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax

from hhjax._integrators import DEFAULT_METHOD, get_integrator
from hhjax._model import document_fields, model_of
from hhjax.analysis._fixed_points import (
    check_one_cell,
    require_concrete,
    state_to_vector,
    vector_field,
)
from hhjax.analysis._limit_cycle import (
    LimitCycle,
    _require_float64,
    _residual_and_jacobian,
    check_on_orbit,
    limit_cycle,
)


@document_fields
class PhaseResponse(NamedTuple):
    """Phase response curve of a limit cycle; arrays of shape ``(n,)``, ordered by
    phase, with phase 0 at the peak of the spike (maximum of V).

    Attributes:
        phase: phase, cycles in [0, 1)
        prc: phase advance per mV kick of V, cycles/mV (Z_V)
        v: membrane potential on the orbit at that phase, mV
        adjoint: full adjoint Z, shape ``(n, d)``: cycles per unit of each state
            variable
        period: period of the cycle, ms
        current: injected current, µA/cm²
    """

    phase: Array
    prc: Array
    v: Array
    adjoint: Array
    period: float
    current: float


@partial(jax.jit, static_argnames=("n_steps", "method"))
def _adjoint_along_orbit(params, x0, period, i_ext, z0, n_steps, method):
    """States ``(n, d)`` at the start of each step and ``Z`` there, ``(n, d)``."""
    model = model_of(params)
    step = get_integrator(method).step
    dt = period / n_steps

    def final_phase(kicks):
        def body(x, kick):
            x = x + kick
            new = step(model, model.state_type(*x), params, i_ext, dt)
            return state_to_vector(new), x

        x_end, xs = lax.scan(body, x0, kicks)
        return z0 @ x_end, xs

    kicks = jnp.zeros((n_steps, x0.shape[0]), x0.dtype)
    adjoint, xs = jax.grad(final_phase, has_aux=True)(kicks)
    return xs, adjoint


def phase_response_curve(
    params: Any,
    i_ext: float,
    *,
    dt: float = 0.01,
    method: str = DEFAULT_METHOD,
    cycle: LimitCycle | None = None,
) -> PhaseResponse:
    """Infinitesimal phase response curve of repetitive firing at constant current.

    The orbit is found by :func:`limit_cycle` (the one the cell fires on when
    ``i_ext`` is switched on from rest), then the adjoint is computed as described
    in the module docstring. ``prc[k]`` is the phase advance, in cycles, per mV
    of instantaneous depolarisation at ``phase[k]``; for a short current pulse of
    charge ``q`` (nC/cm² = µA·ms/cm²) the advance is ``prc · q / c_m`` (``c_m`` in
    µF/cm²); in ms, multiply by the period. Phase 0 is the spike peak.

    Not differentiable w.r.t. ``params`` (a host-side Newton solve finds the orbit).

    Args:
        params: the model's parameter tuple (scalar leaves); V in its convention.
        i_ext: constant injected current, µA/cm², with stable repetitive firing.
        dt: approximate integration step along the orbit, ms (the period is split
            into equal steps); the PRC is sampled at these steps.
        method: integrator, see :data:`hhjax.METHODS`.
        cycle: a precomputed stable :class:`LimitCycle` at ``i_ext`` (its
            ``n_steps`` is used instead of ``dt``).

    Returns:
        A :class:`PhaseResponse`.

    Raises:
        ValueError: batched ``params`` or ``i_ext``; no repetitive firing at
            ``i_ext``; a ``cycle`` at another current, of other params or
            method, or an unstable one.
        RuntimeError: float64 is not enabled (``jax_enable_x64``).
    """
    _require_float64("phase_response_curve")
    require_concrete(
        "phase_response_curve", params, i_ext, cycle,
        hint="its orbit is found by Newton's method on concrete values",
    )  # fmt: skip
    check_one_cell(params, "phase_response_curve", i_ext)
    if cycle is None:
        cycle = limit_cycle(params, i_ext, dt=dt, method=method)
    elif not math.isclose(cycle.current, float(i_ext), rel_tol=1e-9, abs_tol=1e-12):
        raise ValueError(
            f"`cycle` is the orbit at {cycle.current:g} uA/cm^2, not at `i_ext` = "
            f"{float(i_ext):g} uA/cm^2; pass the orbit of this current."
        )
    elif not cycle.stable:
        raise ValueError(
            f"`cycle` (at {cycle.current:g} uA/cm^2) is an unstable orbit; the phase "
            "response curve describes stable repetitive firing."
        )
    n_steps, period = cycle.n_steps, cycle.period
    x0 = np.asarray(state_to_vector(cycle.state), float)
    d = x0.shape[0]
    z = np.concatenate([x0, [period, cycle.current]])
    res, jac = _residual_and_jacobian(params, z, n_steps, method)
    check_on_orbit(
        res,
        "`cycle`",
        "compute it with limit_cycle for the same params, current and method.",
    )
    monodromy = jac[:d, :d] + np.eye(d)
    flow_dir = np.asarray(vector_field(params, cycle.current)(jnp.asarray(x0)))
    # Left eigenvector of the monodromy for multiplier 1, with Z0 . f(x0) = 1 / T.
    lhs = np.vstack([monodromy.T - np.eye(d), flow_dir[None]])
    rhs = np.zeros(d + 1)
    rhs[-1] = 1.0 / period
    z0 = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    xs, adjoint = _adjoint_along_orbit(
        params, jnp.asarray(x0), period, cycle.current, jnp.asarray(z0), n_steps, method
    )
    xs, adjoint = np.asarray(xs), np.asarray(adjoint)
    v = xs[:, 0]
    t = np.arange(n_steps) * (period / n_steps)
    t_peak = _peak_time(t, v, period / n_steps)
    phase = np.mod((t - t_peak) / period, 1.0)
    order = np.argsort(phase)
    return PhaseResponse(
        phase=jnp.asarray(phase[order]),
        prc=jnp.asarray(adjoint[order, 0]),
        v=jnp.asarray(v[order]),
        adjoint=jnp.asarray(adjoint[order]),
        period=period,
        current=cycle.current,
    )


def _peak_time(t: np.ndarray, v: np.ndarray, dt: float) -> float:
    """Time of the maximum of V, refined by a parabola through three samples."""
    k = int(np.argmax(v))
    a, b, c = v[k - 1], v[k], v[(k + 1) % len(v)]
    denom = a - 2.0 * b + c
    shift = 0.5 * (a - c) / denom if denom != 0 else 0.0
    return float(t[k] + shift * dt)
