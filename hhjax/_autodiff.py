"""Gradients of scalar losses in the cheaper autodiff mode.

A loss of a simulated trace has one output and ``n`` scalar inputs. Reverse mode
(``jax.grad``) costs a fixed multiple of the forward pass whatever ``n`` is (about
2–3× through :func:`hhjax.simulate`, which recomputes each step instead of storing
its intermediates) and stores one state per step. Forward mode pushes ``n``
tangents through the run at once; they share the vector units, so a few cost
little more than one, and it stores no state per step, only ``n`` tangents of what
the loss records. Measured for one cell over 10⁴ and 10⁵ steps
(``benchmarks/gradient_modes.py``; ``docs/benchmarks.md``, item 13): forward mode
is the cheaper for up to 6 scalar inputs with ``exp_euler`` and ``rk4``, reverse
mode from 7 or 8.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hhjax._checks import is_integer

# "auto" uses forward mode up to this many scalar inputs (all leaves of the
# differentiated arguments together), reverse mode above.
FORWARD_MODE_MAX = 6
_MODES = ("auto", "forward", "reverse")


def _argnums_tuple(argnums: int | Sequence[int]) -> tuple[int, ...]:
    if is_integer(argnums):
        return (int(argnums),)
    if isinstance(argnums, Sequence) and all(is_integer(a) for a in argnums):
        return tuple(int(a) for a in argnums)
    raise TypeError(f"`argnums` must be an int or a sequence of ints; got {argnums!r}.")


def _positions(nums: tuple[int, ...], n_args: int) -> tuple[int, ...]:
    """``argnums`` as non-negative positions among ``n_args`` positional arguments."""
    for i in nums:
        if not -n_args <= i < n_args:
            raise TypeError(
                f"`argnums` refers to positional argument {i}, but the function "
                f"was called with {n_args}."
            )
    positions = tuple(i % n_args for i in nums)
    if len(set(positions)) != len(positions):
        raise ValueError(f"`argnums` must not repeat an argument; got {nums}.")
    return positions


def _all_real_floating(tree: Any) -> bool:
    return all(
        jnp.issubdtype(jnp.result_type(leaf), jnp.floating)
        for leaf in jax.tree.leaves(tree)
    )


def value_and_grad(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    *,
    has_aux: bool = False,
    mode: str = "auto",
) -> Callable:
    """Like ``jax.value_and_grad``, in forward or reverse mode, whichever is cheaper.

    With ``mode="auto"`` the choice is made per call from the shapes (so it is free
    under ``jax.jit``): forward mode when the differentiated arguments hold at most
    :data:`FORWARD_MODE_MAX` scalars in all, reverse mode otherwise. Both modes give
    the same value and gradient up to rounding, in the same dtypes as JAX's. Forward
    mode stores no state per time step (only ``n`` tangents of what the loss
    records), so it suits long runs with few parameters. A whole
    :class:`hhjax.HHParams` is 11 scalars (reverse mode); pass an array of the few
    fields you vary to get forward mode. The crossover was measured for one
    simulation at a time; inside an outer ``jax.vmap`` (many fits at once) the
    vector lanes are already used and forward mode pays off only for 1–2 scalars
    (``docs/fitting.md``), so pass ``mode`` there.

    Args:
        fun: function returning a real scalar (or ``(scalar, aux)`` with
            ``has_aux``), e.g. a loss of :func:`hhjax.simulate`'s trace.
        argnums: which positional argument(s) to differentiate; each may be any
            pytree of real floating-point arrays (e.g. :class:`hhjax.HHParams`).
        has_aux: ``fun`` returns ``(value, aux)``; ``aux`` (any pytree: arrays,
            strings, numbers) is passed through.
        mode: ``"auto"``, ``"forward"`` (``n`` batched JVPs) or ``"reverse"``
            (``jax.value_and_grad``). Integer or complex arguments always go to
            ``jax.value_and_grad`` (which refuses integers and needs
            ``holomorphic`` for complex ones), and so do arguments with no scalars
            at all (e.g. ``{}``, whose gradient is ``{}``).

    Returns:
        A function of the same arguments returning ``(value, grad)`` (or
        ``((value, aux), grad)``), ``grad`` shaped like the differentiated
        argument (a tuple of them when ``argnums`` is a sequence).

    Raises:
        ValueError: unknown ``mode``; ``argnums`` naming an argument twice.
        TypeError: ``argnums`` not ints or out of range; in forward mode, ``fun``
            returned a non-scalar or non-real value, or not ``(value, aux)``
            with ``has_aux``.

    Example:
        >>> import jax.numpy as jnp, hhjax
        >>> i_ext = jnp.full(400, 10.0)  # 10 ms of 10 µA/cm²
        >>> def loss(g):
        ...     p = hhjax.HHParams(g_na=g[0], g_k=g[1])
        ...     return jnp.mean(hhjax.simulate(p, i_ext, 0.025, record="v").v)
        >>> value, grad = hhjax.value_and_grad(loss)(jnp.array([120.0, 36.0]))
        >>> grad.shape  # 2 inputs: computed in forward mode
        (2,)
    """
    if mode not in _MODES:
        raise ValueError(f"`mode` must be one of {_MODES}; got {mode!r}.")
    nums = _argnums_tuple(argnums)
    reverse = jax.value_and_grad(fun, argnums, has_aux=has_aux)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        positions = _positions(nums, len(args))
        diff_args = tuple(args[i] for i in positions)
        leaves, treedef = jax.tree.flatten(diff_args)
        if mode == "reverse" or not leaves or not _all_real_floating(diff_args):
            return reverse(*args, **kwargs)
        if mode == "auto" and sum(np.size(leaf) for leaf in leaves) > FORWARD_MODE_MAX:
            return reverse(*args, **kwargs)
        value, grads = _forward(fun, positions, args, kwargs, leaves, treedef, has_aux)
        return value, (grads[0] if isinstance(argnums, (int, np.integer)) else grads)

    return wrapped


def _forward(fun, positions, args, kwargs, leaves, treedef, has_aux):
    """``(value[, aux]), grads`` by one JVP per scalar input, vmapped; each tangent
    basis vector and each gradient leaf in the dtype of its input leaf (weakly
    typed for a Python scalar, as ``jax.grad`` gives)."""
    leaves = [jnp.asarray(leaf) for leaf in leaves]
    sizes = [leaf.size for leaf in leaves]
    n = sum(sizes)
    offsets = np.cumsum([0, *sizes])
    basis = [
        jnp.eye(n, dtype=leaf.dtype)[:, lo:hi].reshape((n, *leaf.shape))
        for leaf, lo, hi in zip(leaves, offsets[:-1], offsets[1:], strict=True)
    ]

    def of_leaves(*xs):
        full = list(args)
        for i, part in zip(positions, jax.tree.unflatten(treedef, xs), strict=True):
            full[i] = part
        out = fun(*full, **kwargs)
        if has_aux and not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(
                "with has_aux=True the function must return (value, aux); got "
                f"{type(out).__name__}."
            )
        value, aux = out if has_aux else (out, None)
        traced_aux, rebuild[0] = _split_aux(aux)
        if jnp.shape(value) != () or not jnp.issubdtype(
            jnp.result_type(value), jnp.floating
        ):
            raise TypeError(
                "value_and_grad needs a function returning a real scalar; got "
                f"shape {jnp.shape(value)}, dtype {jnp.result_type(value)}."
            )
        return value, traced_aux

    rebuild = [None]  # set while `fun` is traced: puts the aux back together

    def along(*tangents):
        return jax.jvp(of_leaves, tuple(leaves), tangents, has_aux=True)

    value, slopes, traced_aux = jax.vmap(along, out_axes=(None, 0, None))(*basis)
    grads = [
        _like(leaf, slopes[lo:hi].reshape(leaf.shape))
        for leaf, lo, hi in zip(leaves, offsets[:-1], offsets[1:], strict=True)
    ]
    value = (value, rebuild[0](traced_aux)) if has_aux else value
    return value, jax.tree.unflatten(treedef, grads)


def _split_aux(aux):
    """The traced leaves of ``aux`` (arrays computed from the inputs, which pass
    through ``jax.jvp`` and ``jax.vmap``), and a function of them that returns the
    whole ``aux``, its other leaves (strings, numbers, constants) as they were."""
    leaves, treedef = jax.tree.flatten(aux)
    traced = [isinstance(leaf, jax.core.Tracer) for leaf in leaves]
    kept = [None if t else leaf for leaf, t in zip(leaves, traced, strict=True)]

    def rebuild(traced_leaves):
        it = iter(traced_leaves)
        full = [next(it) if t else leaf for leaf, t in zip(kept, traced, strict=True)]
        return jax.tree.unflatten(treedef, full)

    return [leaf for leaf, t in zip(leaves, traced, strict=True) if t], rebuild


def _like(leaf, g):
    """Gradient ``g`` in the dtype of input ``leaf``; weakly typed when ``leaf`` is
    (a Python scalar), as ``jax.grad`` gives. ``lax.full_like`` carries the weak
    type but only for a scalar; a weakly typed array leaf (rare) gets a strong
    gradient."""
    return jax.lax.full_like(leaf, g) if jnp.ndim(leaf) == 0 else g.astype(leaf.dtype)


def grad(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    *,
    has_aux: bool = False,
    mode: str = "auto",
) -> Callable:
    """Like ``jax.grad``, in forward or reverse mode, whichever is cheaper.

    The gradient part of :func:`value_and_grad` (same arguments); with
    ``has_aux`` it returns ``(grad, aux)``.
    """
    vg = value_and_grad(fun, argnums, has_aux=has_aux, mode=mode)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapped
