"""Fixed points of a model under constant current, their Jacobian and stability.

All functions are generic over :class:`hhjax.Model` (dispatch on the params type)
and work on one cell: parameter leaves and ``i_ext`` are scalars (``jax.vmap`` over
them for batches). The state is flattened to a vector in field order
``(v, *gates)`` — for HH ``(V [mV], m, h, n)``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from hhjax._checks import check_current, is_traced
from hhjax._equilibrium import resting_state
from hhjax._model import model_of


def check_one_cell(
    params: Any,
    function: str,
    i_ext: Any = 0.0,
    remedy: str = "map it over cells with jax.vmap or a loop",
) -> None:
    """A clear error for batched parameter leaves or a batched current:
    ``function`` works on one cell under one constant current (under ``jax.vmap``
    both are scalars); ``remedy`` says what to do instead."""
    for name, value in params._asdict().items():
        shape = np.shape(value)
        if shape != ():
            raise ValueError(
                f"{function} works on one cell, but `params.{name}` has shape "
                f"{shape}; {remedy}."
            )
    if np.shape(i_ext) != ():
        raise ValueError(
            f"{function} works on one constant current (a scalar, µA/cm²), but "
            f"`i_ext` has shape {np.shape(i_ext)}; map it over currents with "
            "jax.vmap or a loop."
        )


def require_concrete(function: str, *values: Any, hint: str) -> None:
    """A clear error when any of ``values`` is traced (``jax.jit``, ``jax.grad``,
    ``jax.vmap``): ``function`` searches with Python control flow and NumPy, so
    it needs concrete inputs; ``hint`` says what to use instead."""
    if any(is_traced(v) for v in values):
        raise ValueError(
            f"{function} needs concrete inputs: it searches with Python control "
            "flow, so it cannot run under jax.jit, jax.grad or jax.vmap; call it "
            f"outside them ({hint})."
        )


def state_to_vector(state: Any) -> Array:
    """Stack a state tuple into a vector ``(v, *gates)``, shape ``(d,)``."""
    return jnp.stack([jnp.asarray(x) for x in state])


def vector_field(params: Any, i_ext: ArrayLike):
    """The right-hand side ``x ↦ dx/dt`` on flat state vectors ``(d,)``, per ms."""
    model = model_of(params)

    def f(x):
        return state_to_vector(model.derivative(model.state_type(*x), params, i_ext))

    return f


def fixed_point(params: Any, i_ext: ArrayLike = 0.0) -> Any:
    """The resting state (fixed point) under a constant current, differentiable.

    This is :func:`hhjax.resting_state`, re-exported here so the research API is in
    one place: the lowest (most hyperpolarised) root of the steady-state current
    ``Σ I_ion(V, x∞(V)) = i_ext``, found by a bracketed root solve and
    differentiated implicitly (``lax.custom_root``): the gradient of every state
    component w.r.t. every parameter and ``i_ext`` costs one extra linear solve and
    never differentiates through the iterations.

    Args:
        params: the model's parameter tuple; voltage convention as the params.
        i_ext: constant injected current, µA/cm² (inward positive).

    Returns:
        The model's state tuple at the fixed point (V in mV, gates at steady state),
        with the broadcast batch shape of ``params`` and ``i_ext``.

    Raises:
        ValueError: a current in pA by mistake (|I| above
            :data:`hhjax.MAX_PLAUSIBLE_CURRENT`), or, for concrete inputs (not
            under ``jit``/``vmap``/``grad``), no fixed point (the steady-state
            current does not cross ``i_ext``, e.g. every conductance is 0; traced,
            the state is NaN there, as :func:`hhjax.resting_state` returns).
    """
    return _checked_rest(params, i_ext)


def _checked_rest(params: Any, i_ext: ArrayLike, remedy: str = "") -> Any:
    """:func:`hhjax.resting_state` under a current in µA/cm² (not pA), with
    :func:`check_fixed_point`'s error (ended by ``remedy``) where there is none."""
    check_current(i_ext, "i_ext", opt_out=False)
    state = resting_state(params, i_ext)
    check_fixed_point(state, i_ext, remedy)
    return state


def jacobian(params: Any, i_ext: ArrayLike = 0.0, state: Any = None) -> Array:
    """Jacobian of the right-hand side, ``∂(dx/dt)/∂x``, by forward-mode autodiff.

    Args:
        params: the model's parameter tuple (scalar leaves).
        i_ext: constant injected current, µA/cm² (a scalar).
        state: where to evaluate it: the model's state tuple of one cell (V in
            mV, in the convention of the params) or its ``d`` numbers in field
            order; ``None``: at :func:`fixed_point`.

    Returns:
        Array ``(d, d)`` in 1/ms (rows: derivative of ``(v, *gates)``; entries mixing
        V and gates carry mV per unit gate or its inverse).

    Raises:
        ValueError: batched ``params``, ``i_ext`` or ``state``, a ``state`` of
            another model, or (``state=None``, concrete inputs) parameters with
            no fixed point at ``i_ext``.
    """
    check_one_cell(params, "jacobian", i_ext)
    if state is None:
        state = _checked_rest(params, i_ext, "Pass a `state` to linearise elsewhere.")
    else:
        state = check_one_state(params, state, "jacobian")
    return jax.jacfwd(vector_field(params, i_ext))(state_to_vector(state))


def check_fixed_point(state: Any, i_ext: Any, remedy: str = "") -> None:
    """A clear error when a concrete fixed point is NaN: no resting state was
    found under ``i_ext`` (:func:`hhjax.resting_state` returns NaN then);
    ``remedy`` (a sentence) ends it."""
    if is_traced(state) or is_traced(i_ext):
        return
    v = np.asarray(state.v)
    finite = np.isfinite(v)
    for gate in state[1:]:
        finite = finite & np.isfinite(np.asarray(gate))
    if not np.all(finite):
        precision = (
            "; in float32 the rate functions can also overflow at large currents "
            "(enable float64: jax.config.update('jax_enable_x64', True))"
            if v.dtype.itemsize < 8
            else ""
        )
        first = np.unravel_index(int(np.argmin(finite)), finite.shape)
        current = np.broadcast_to(np.asarray(i_ext, float), finite.shape)[first]
        cell = f" (cell {tuple(map(int, first))})" if finite.ndim else ""
        raise ValueError(
            f"No fixed point found at i_ext = {float(current):g} uA/cm^2{cell}: the "
            "steady-state current does not cross it inside the searched voltage "
            "range (e.g. every conductance is 0; see hhjax.resting_state)"
            f"{precision}.{' ' + remedy if remedy else ''}"
        )


def check_one_state(params: Any, state: Any, function: str) -> Any:
    """``state`` as the model's state tuple of one cell: the model's state type,
    or a sequence of its ``d`` scalars in field order; a clear error otherwise."""
    model = model_of(params)
    fields = model.state_type._fields
    if hasattr(state, "_fields") and type(state) is not model.state_type:
        raise ValueError(
            f"{function}: `state` is a {type(state).__name__}, but the params are "
            f"of model {model.name!r}, whose state is {model.state_type.__name__}."
        )
    try:
        leaves = list(state)
    except TypeError:
        leaves = None
    if leaves is None or len(leaves) != len(fields):
        raise ValueError(
            f"{function}: `state` must be a {model.state_type.__name__} or "
            f"{len(fields)} numbers {fields} (V in mV); got {state!r}."
        )
    for name, value in zip(fields, leaves, strict=True):
        if np.shape(value) != ():
            raise ValueError(
                f"{function} works on one cell, but `state.{name}` has shape "
                f"{np.shape(value)}; map it over states with jax.vmap or a loop."
            )
        if not is_traced(value) and not np.isfinite(np.asarray(value, float)):
            raise ValueError(
                f"{function}: `state.{name}` must be a finite number; got {value!r}."
            )
    return model.state_type(
        *(jnp.asarray(x, jnp.result_type(float, x)) for x in leaves)
    )


def eigenvalues(params: Any, i_ext: ArrayLike = 0.0, state: Any = None) -> Array:
    """Eigenvalues of :func:`jacobian`, sorted by decreasing real part, 1/ms.

    The fixed point is linearly stable iff all real parts are negative. A complex
    pair ``a ± iω`` means damped (``a < 0``) oscillations at ``ω / 2π`` kHz.
    Differentiable (through ``jnp.linalg.eigvals``, CPU only in JAX).

    Args:
        params: the model's parameter tuple (scalar leaves).
        i_ext: constant injected current, µA/cm² (a scalar).
        state: where to linearise (see :func:`jacobian`); ``None``: at
            :func:`fixed_point`.

    Returns:
        Complex array ``(d,)``, 1/ms.

    Raises:
        ValueError: as :func:`jacobian`.
    """
    lam = jnp.linalg.eigvals(jacobian(params, i_ext, state))
    return lam[jnp.argsort(-lam.real)]


def is_stable(params: Any, i_ext: ArrayLike = 0.0) -> Array:
    """Whether :func:`fixed_point` is linearly stable (all Re λ < 0).

    Args:
        params: parameters of one cell (any model).
        i_ext: constant injected current, µA/cm² (inward positive).

    Returns:
        Boolean scalar array (``False`` under ``jit``/``vmap`` for parameters
        without a fixed point, where concrete inputs raise).

    Raises:
        ValueError: as :func:`jacobian` (e.g. no fixed point at ``i_ext``).
    """
    return jnp.max(eigenvalues(params, i_ext).real) < 0.0
