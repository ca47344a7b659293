"""Resting state: the fixed point of a model under a constant current."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from hhjax._checks import (
    broadcast_named_shapes,
    check_current,
    check_params,
    check_precision,
    lists_to_arrays,
)
from hhjax._model import model_of

_GRID_POINTS = 801
# A grid cell is < 0.5 mV wide (< 8 mV after the most widening); 56 halvings take
# it below float64 resolution.
_BISECTIONS = 56
# Each widening moves an end out by the bracket's width: with one end moving the
# bracket grows to 16x its first width w = max(E) - min(E) + 200 mV, so that end
# reaches 15 w beyond its start (about -5080 to +5060 mV for HHParams).
_WIDENINGS = 4


def _steady_current(model, params, i_ext):
    """Net outward current with gates at steady state, ``Σ I_ion(V) − i_ext``."""

    def f(v):
        return model.total_current(model.steady_state(v, params), params) - i_ext

    return f


def _bracket(f, lo, hi):
    """``[lo, hi]`` widened until the net current is inward at ``lo`` and outward
    at ``hi`` (a root lies between): each end that is not moves out by the width,
    at most ``_WIDENINGS`` times (a strong injected current puts the rest far
    beyond the reversal potentials)."""

    def widen(_, ends):
        lo, hi = ends
        width = hi - lo
        return (
            jnp.where(f(lo) < 0, lo, lo - width),
            jnp.where(f(hi) >= 0, hi, hi + width),
        )

    return lax.fori_loop(0, _WIDENINGS, widen, (lo, hi))


def _lowest_root(f, lo, hi):
    """Lowest sign change of ``f`` (increasing through it) on ``[lo, hi]``, refined
    by bisection to machine precision; elementwise over the batch shape of ``lo``.
    NaN where ``[lo, hi]`` holds no sign change (no resting state there)."""
    frac = jnp.linspace(0.0, 1.0, _GRID_POINTS, dtype=jnp.result_type(lo))
    frac = frac.reshape((-1,) + (1,) * jnp.ndim(lo))
    grid = lo + frac * (hi - lo)
    values = jax.vmap(f)(grid)
    rising = (values[:-1] < 0) & (values[1:] >= 0)
    # Index of the first rising crossing (argmax of a boolean picks the first True).
    idx = jnp.argmax(rising, axis=0)
    a = jnp.take_along_axis(grid[:-1], idx[None], axis=0)[0]
    b = jnp.take_along_axis(grid[1:], idx[None], axis=0)[0]

    def bisect(_, ab):
        a, b = ab
        mid = 0.5 * (a + b)
        below = f(mid) < 0
        return jnp.where(below, mid, a), jnp.where(below, b, mid)

    a, b = lax.fori_loop(0, _BISECTIONS, bisect, (a, b))
    return jnp.where(jnp.any(rising, axis=0), 0.5 * (a + b), jnp.nan)


def resting_state(
    params: Any, i_ext: ArrayLike = 0.0, *, check_inputs: bool = True
) -> Any:
    """Fixed point of the model for a constant injected current.

    Solves ``Σ I_ion(V, x∞(V)) = i_ext`` for V (the lowest root, i.e. the
    hyperpolarised rest state where several exist) and sets every gate to its
    steady state there. The root is bracketed on a grid over ``[min(E) − 100,
    max(E) + 100]`` mV; where a strong current puts it outside, the end short of
    it moves out by the bracket's width, up to 4 times, which takes that end at
    most 15 first widths (``max(E) − min(E) + 200`` mV each) further: about
    −5080 to +5060 mV for :class:`hhjax.HHParams`, i.e. ``i_ext`` from about
    −1500 to +1.8·10⁵ µA/cm² (beyond ±:data:`hhjax.MAX_PLAUSIBLE_CURRENT` only
    with ``check_inputs=False``, as in :func:`hhjax.simulate`). The root is then
    refined by bisection to machine precision. Where no root is bracketed the
    state is NaN; in float32 also where the rate functions overflow, well inside
    that range (for ``HHParams`` below about −1840 mV, i.e. ``i_ext`` below about
    −540 µA/cm²). It is
    differentiable w.r.t. ``params`` and ``i_ext`` by implicit differentiation
    (``lax.custom_root``), not through the iterations.

    Voltage convention: that of ``params`` (modern by default, rest −64.996 mV for
    :class:`hhjax.HHParams`; ≈ 0 mV for :meth:`HHParams.hh1952`).

    Args:
        params: a model's parameter tuple (e.g. :class:`hhjax.HHParams`); leaves may
            carry a batch shape.
        i_ext: constant injected current, µA/cm² (inward positive), scalar or batch.
        check_inputs: check the values of concrete ``params`` and ``i_ext`` (as
            :func:`hhjax.simulate` does); ``False`` skips it, e.g. for a negative
            conductance that is really meant.

    Returns:
        The model's state tuple (e.g. :class:`hhjax.HHState`) with the broadcast
        batch shape of ``params`` and ``i_ext``.

    Raises:
        ValueError: with ``check_inputs``, a concrete ``i_ext`` that is not finite
            or exceeds :data:`hhjax.MAX_PLAUSIBLE_CURRENT` (a current in pA), or
            parameters that :func:`hhjax.simulate` refuses (non-finite, a negative
            conductance, ``c_m``, a Q10 or a time constant <= 0, a temperature at
            or below absolute zero or above 100 °C), when they are concrete.
    """

    model = model_of(params)
    params = lists_to_arrays(params)
    check_precision(params, "params")
    check_precision(i_ext, "i_ext")
    if check_inputs:
        check_params(params)
        check_current(i_ext)
    reversals = [
        jnp.asarray(getattr(params, name))
        for name in params._fields
        if name.startswith("e_")
    ]
    e_lo = reversals[0]
    e_hi = reversals[0]
    for e in reversals[1:]:
        e_lo, e_hi = jnp.minimum(e_lo, e), jnp.maximum(e_hi, e)
    shapes = {"i_ext": jnp.shape(i_ext)}
    shapes.update({f"params.{k}": jnp.shape(v) for k, v in params._asdict().items()})
    shape = broadcast_named_shapes(shapes, "The shapes of `i_ext` and the parameters")
    dtype = jnp.result_type(float, i_ext, *jax.tree.leaves(params))
    lo = jnp.broadcast_to(e_lo - 100.0, shape).astype(dtype)
    hi = jnp.broadcast_to(e_hi + 100.0, shape).astype(dtype)
    i_ext = jnp.asarray(i_ext, dtype)

    f = _steady_current(model, params, i_ext)

    def solve(fun, guess):
        return _lowest_root(fun, *_bracket(fun, guess, hi))

    def tangent_solve(g, y):
        # f acts elementwise, so its Jacobian is diagonal: divide by g(1).
        return y / g(jnp.ones_like(y))

    v_rest = lax.custom_root(f, lo, solve, tangent_solve)
    return model.steady_state(v_rest, params)
