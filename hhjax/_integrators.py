"""Fixed-step integrators, generic over any :class:`hhjax.Model`.

Each integrator is a pure function ``(model, state, params, i_ext, dt) -> state``
advancing by one step of ``dt`` ms with the injected current ``i_ext`` (µA/cm²) held
constant over the step. They are registered by name in :data:`METHODS`; choose one
with ``simulate(..., method=name)``.

How to choose: see ``docs/integrators.md`` for the measured work-precision table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from hhjax._model import Model

StepFn = Callable[[Model, Any, Any, Any, Any], Any]


def _axpy(state: Any, deriv: Any, scale: Any) -> Any:
    """``state + scale * deriv`` leaf by leaf."""
    return jax.tree.map(lambda x, dx: x + scale * dx, state, deriv)


def _relax_gates(model: Model, state: Any, rates: dict, v_new: Any, dt: Any) -> Any:
    """Exact step of every gate's linear ODE with rates frozen:
    ``x ← x∞ + (x − x∞) exp(−dt/τ)``, ``x∞ = α/(α+β)``, ``τ = 1/(α+β)``; a gate
    without rates (its channel switched off, :meth:`Model.switched_off`) is kept."""
    gates = state._asdict()
    for g, r in rates.items():
        rate_sum = r.alpha + r.beta
        x_inf = r.alpha / rate_sum
        x = getattr(state, g)
        gates[g] = x_inf + (x - x_inf) * jnp.exp(-dt * rate_sum)
    gates["v"] = v_new
    return model.state_type(**gates)


def euler(model: Model, state: Any, params: Any, i_ext: Any, dt: Any) -> Any:
    """Forward Euler on V and gates, all from the old state (pyHH's scheme).

    First order; unstable for spiking HH above dt ≈ 0.05 ms.
    """
    return _axpy(state, model.derivative(state, params, i_ext), dt)


def exp_euler(model: Model, state: Any, params: Any, i_ext: Any, dt: Any) -> Any:
    """Exponential Euler for the gates (Rush & Larsen 1978), forward Euler for V.

    Gates are advanced exactly for rates frozen at the old V (unconditionally stable
    for the gates); V by forward Euler from the old state. First order.
    """
    rates = model.rates(state.v, params)
    v_new = state.v + dt * model.dv_dt(state, params, i_ext)
    return _relax_gates(model, state, rates, v_new, dt)


def exp_midpoint(model: Model, state: Any, params: Any, i_ext: Any, dt: Any) -> Any:
    """Second-order exponential midpoint ("Rush–Larsen 2") scheme.

    A half step of :func:`exp_euler` gives the midpoint state; the full step then
    uses V's derivative and the gate rates evaluated there (explicit midpoint rule
    for V, exponential midpoint rule for the gates). Two right-hand-side
    evaluations per step; gates stay in [0, 1] for any dt.
    """
    mid = exp_euler(model, state, params, i_ext, 0.5 * dt)
    rates = model.rates(mid.v, params)
    v_new = state.v + dt * model.dv_dt(mid, params, i_ext)
    return _relax_gates(model, state, rates, v_new, dt)


def heun(model: Model, state: Any, params: Any, i_ext: Any, dt: Any) -> Any:
    """Heun's method (explicit trapezoidal rule, RK2). Second order."""
    k1 = model.derivative(state, params, i_ext)
    k2 = model.derivative(_axpy(state, k1, dt), params, i_ext)
    return jax.tree.map(lambda x, a, b: x + 0.5 * dt * (a + b), state, k1, k2)


def rk4(model: Model, state: Any, params: Any, i_ext: Any, dt: Any) -> Any:
    """Classical fourth-order Runge–Kutta. Four right-hand-side evaluations."""
    k1 = model.derivative(state, params, i_ext)
    k2 = model.derivative(_axpy(state, k1, 0.5 * dt), params, i_ext)
    k3 = model.derivative(_axpy(state, k2, 0.5 * dt), params, i_ext)
    k4 = model.derivative(_axpy(state, k3, dt), params, i_ext)
    return jax.tree.map(
        lambda x, a, b, c, d: x + (dt / 6.0) * (a + 2.0 * b + 2.0 * c + d),
        state,
        k1,
        k2,
        k3,
        k4,
    )


@dataclasses.dataclass(frozen=True)
class Integrator:
    """A registered integrator.

    Attributes:
        name: the name passed as ``method=``.
        step: the step function ``(model, state, params, i_ext, dt) -> state``.
        order: global order of accuracy.
        max_stable_dt: step (ms) above which a spiking standard-HH trace becomes
            unstable or grossly inaccurate; :func:`hhjax.simulate` warns above it
            (above a proportionally smaller step for rates faster than
            :data:`MAX_STABLE_RATE_FACTOR`). Measured under depolarising drive:
            strong hyperpolarising currents (below about −15 µA/cm² for HH) make
            the gates' rates stiffer, and the explicit methods (not ``exp_euler``,
            ``exp_midpoint``) may then diverge below this step.
    """

    name: str
    step: StepFn
    order: int
    max_stable_dt: float


MAX_STABLE_RATE_FACTOR = 3.0 ** ((25.0 - 6.3) / 10.0)
"""Temperature factor of the rates (7.8: standard HH's Q10 of 3 at 25 °C) up to which
the ``max_stable_dt`` of each method was measured (docs/integrators.md); for faster
rates the limit is taken as ``max_stable_dt × MAX_STABLE_RATE_FACTOR / factor``."""

METHODS: dict[str, Integrator] = {
    integ.name: integ
    for integ in (
        Integrator("euler", euler, 1, 0.05),
        Integrator("exp_euler", exp_euler, 1, 0.065),
        Integrator("exp_midpoint", exp_midpoint, 2, 0.06),
        Integrator("heun", heun, 2, 0.045),
        Integrator("rk4", rk4, 4, 0.06),
    )
}

DEFAULT_METHOD = "rk4"


def get_integrator(method: str) -> Integrator:
    """Look up an integrator by name, with a clear error for unknown names."""
    try:
        return METHODS[method]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown integration method {method!r}; expected one of "
            f"{', '.join(repr(m) for m in METHODS)}."
        ) from None
