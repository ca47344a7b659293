"""Hopf bifurcations of the resting state, by continuation in the injected current.

Along the branch of fixed points ``x*(I)`` (:func:`fixed_point`), a Hopf point is a
current where a complex pair of eigenvalues of the Jacobian crosses the imaginary
axis. The test function ``g(I) = max{Re λ : Im λ > 0}`` is sampled on a grid, every
sign change is refined by bisection to machine precision, and the crossing is
differentiable w.r.t. the parameters by the implicit function theorem
(``lax.custom_root``). Its type — subcritical (an unstable small orbit: the cell
jumps to large-amplitude firing, hysteresis) or supercritical (a stable small orbit
grows from the fixed point) — is the sign of the first Lyapunov coefficient,
computed from second and third derivatives of the vector field by autodiff.

Reference for the coefficient: Kuznetsov, *Elements of Applied Bifurcation Theory*
(3rd ed., 2004), §3.5, eq. (3.20).
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.typing import ArrayLike

from hhjax._checks import check_current, concrete_real, is_integer, is_traced
from hhjax._model import document_fields
from hhjax.analysis._fixed_points import (
    check_one_cell,
    fixed_point,
    jacobian,
    require_concrete,
    state_to_vector,
    vector_field,
)

_DEFAULT_GRID = 401
_BISECTIONS = 64
_REFINE_POINTS = 65  # grid points of a cell searched again after a false crossing
_REFINE_DEPTH = 2  # how many times a cell is searched again


def _hopf_test(params: Any, i_ext: ArrayLike) -> Array:
    """``max Re λ`` over the eigenvalues with ``Im λ > 0`` (−inf if none), 1/ms."""
    lam = jnp.linalg.eigvals(jacobian(params, i_ext))
    return jnp.max(jnp.where(lam.imag > 0, lam.real, -jnp.inf))


@jax.jit
def _hopf_tests(params: Any, currents: Array) -> Array:
    """:func:`_hopf_test` at each current of a 1-D array, one batched evaluation."""
    return jax.vmap(lambda i: _hopf_test(params, i))(currents)


def _is_crossing(params: Any, current: float, dtype: Any) -> bool:
    """Whether the test function crosses zero *continuously* at ``current``.

    A sign change of the test function is a Hopf point only where it is
    continuous: it also changes sign where the fixed point jumps to another
    branch (the lowest fixed point ends in a fold) or where a real eigenvalue pair
    turns complex with a positive real part. Continuous at ``current`` means
    finite on both sides and a difference across ``±h`` that is small against the
    difference across ``±H`` (``H = 1000 h``): ≈ 1/1000 for a smooth crossing, ≈ 1
    for a jump. ``H`` starts at ``eps^(1/3) (1 + |current|)`` and is divided by 4
    (up to 3 times) while ``±H`` reaches past a fold (the test function not finite
    there): float32's ``H`` of 0.016 µA/cm² stepped past the fold 0.017 µA/cm²
    above the Hopf point of :meth:`hhjax.PospischilParams.rs`.
    """
    big = float(np.finfo(dtype).eps) ** (1 / 3) * (1.0 + abs(current))
    for _ in range(4):  # ±H may reach past a nearby fold (test function -inf)
        near, far = (
            _tests_at(params, current - h, current + h, dtype)
            for h in (big / 1000, big)
        )
        if np.all(np.isfinite(far)):
            break
        big /= 4.0
    if not np.all(np.isfinite([near, far])):
        return False
    return abs(near[1] - near[0]) <= 0.1 * abs(far[1] - far[0]) and far[0] * far[1] <= 0


def _tests_at(params: Any, lo: float, hi: float, dtype: Any) -> np.ndarray:
    """The test function at two currents (one program for every pair)."""
    return np.asarray(_hopf_tests(params, jnp.asarray([lo, hi], dtype)))


def _hopf_points_on(params: Any, grid: np.ndarray, dtype: Any, depth: int) -> list:
    """Hopf currents at the sign changes of the test function on ``grid``; a cell
    whose sign change is not a continuous crossing is searched again on a finer
    grid (``depth`` more times)."""
    values = np.asarray(_hopf_tests(params, jnp.asarray(grid, dtype)))
    finite = np.isfinite(values)
    pos = values > 0
    change = finite[:-1] & finite[1:] & (pos[:-1] != pos[1:])
    # A cell where a complex pair appears or disappears (the test function is
    # finite at one end only: the pair turns real, or the branch jumps) may hold
    # a crossing too, e.g. just before the lowest fixed point ends in a fold.
    appears = finite[:-1] != finite[1:]
    found = []
    for k in np.nonzero(change | appears)[0]:
        if change[k]:  # brackets known to be valid: no check
            current = _hopf_current(params, grid[k], grid[k + 1])
            if _is_crossing(params, float(current), dtype):
                found.append(current)
                continue
        if depth > 0:
            finer = np.linspace(grid[k], grid[k + 1], _REFINE_POINTS)
            found += _hopf_points_on(params, finer, dtype, depth - 1)
    return found


def hopf_current(params: Any, bracket: tuple[float, float]) -> Array:
    """The Hopf current inside ``bracket``, differentiable w.r.t. ``params``.

    Bisection (64 halvings: to the last bit) on the real part of the leading complex
    eigenvalue pair; the gradient comes from the implicit function theorem
    (``lax.custom_root``), ``dI_H/dp = −(∂g/∂p) / (∂g/∂I)``, not from the
    iterations. Jit- and grad-compatible (the bracket must be concrete).

    Args:
        params: the model's parameter tuple (scalar leaves).
        bracket: ``(lo, hi)`` currents, µA/cm², with the test function of opposite
            signs at the two ends (e.g. from :func:`hopf_points`).

    Returns:
        The Hopf current, µA/cm² (a scalar array); NaN (with a NaN gradient) for
        traced ``params`` (under ``jit``, ``grad``, ``vmap``) whose bracket holds
        no Hopf point.

    Raises:
        ValueError: ``bracket`` is not two different, finite currents; or, for
            concrete ``params``, the test function has the same sign (or is not
            finite) at both ends: the bracket holds no Hopf point.
    """
    check_one_cell(params, "hopf_current")
    lo, hi = _bracket_ends(bracket)
    if not is_traced(params):
        _check_bracket(params, lo, hi)
    return _hopf_current(params, lo, hi)


def _bracket_ends(bracket: Any) -> tuple[float, float]:
    """``(lo, hi)`` as two finite, distinct floats (µA/cm²); else a ValueError."""
    try:
        ends = [concrete_real(b, "bracket", "uA/cm^2") for b in bracket]
    except TypeError:  # not iterable
        ends = []
    if len(ends) != 2 or not all(np.isfinite(ends)) or ends[0] == ends[1]:
        raise ValueError(
            "`bracket` must be two different, finite currents (lo, hi) in uA/cm^2 "
            f"(e.g. around a point from hopf_points); got {bracket!r}."
        )
    return ends[0], ends[1]


def _check_bracket(params: Any, lo: float, hi: float) -> None:
    ends = _tests_at(params, lo, hi, jnp.result_type(float, *jax.tree.leaves(params)))
    if not (np.all(np.isfinite(ends)) and ends[0] * ends[1] <= 0):
        raise ValueError(
            f"`bracket` ({lo:g}, {hi:g}) uA/cm^2 holds no Hopf point: the test "
            f"function (largest real part of a complex eigenvalue pair) is "
            f"{ends[0]:.3g} and {ends[1]:.3g} at its ends; it must change sign "
            "(use hopf_points to find brackets)."
        )


@jax.jit
def _hopf_current(params: Any, lo: Array, hi: Array) -> Array:
    dtype = jnp.result_type(float, *jax.tree.leaves(params))

    def g(i_ext):
        return _hopf_test(params, i_ext)

    def solve(fun, guess):
        del guess
        at_lo, at_hi = fun(lo), fun(hi)
        sign_lo = jnp.sign(at_lo)
        # Traced parameters skip _check_bracket: a bracket without a sign change
        # gives NaN (and a NaN gradient), not one of its ends.
        valid = jnp.isfinite(at_lo) & jnp.isfinite(at_hi) & (at_lo * at_hi <= 0)

        def bisect(_, ab):
            a, b = ab
            mid = 0.5 * (a + b)
            same = jnp.sign(fun(mid)) == sign_lo
            return jnp.where(same, mid, a), jnp.where(same, b, mid)

        a, b = lax.fori_loop(0, _BISECTIONS, bisect, (lo, hi))
        return jnp.where(valid, 0.5 * (a + b), jnp.nan)

    def tangent_solve(lin, y):
        return y / lin(jnp.ones((), dtype))  # not 1.0: a float64 tangent under x64

    lo, hi = jnp.asarray(lo, dtype), jnp.asarray(hi, dtype)
    return lax.custom_root(g, 0.5 * (lo + hi), solve, tangent_solve)


def hopf_points(
    params: Any,
    i_range: ArrayLike = (0.0, 200.0),
    *,
    n_grid: int = _DEFAULT_GRID,
) -> Array:
    """Hopf currents of the resting state in a range of constant currents.

    Continuation in I: the fixed point and the eigenvalues of its Jacobian are
    computed on a grid of currents (one batched evaluation), and every crossing of
    a complex pair through the imaginary axis is refined to machine precision by
    :func:`hopf_current`. A sign change where the test function jumps instead
    (the lowest fixed point ends in a fold and the branch jumps, or a real
    eigenvalue pair turns complex off the axis) is not a Hopf point: its grid cell
    is searched again on a 64× finer grid (twice at most), and so is every cell
    where a complex pair appears or disappears (a crossing can hide there, as for
    :meth:`hhjax.PospischilParams.rs` at ≈ 2.335 µA/cm², just before its lowest
    fixed point ends in a fold at ≈ 2.352). Crossings closer together than the
    grid spacing can be missed; refine the grid (``n_grid``) if in doubt. Use
    :func:`classify_hopf` for the frequency and the sub-/supercritical type of
    each point.

    For standard HH (modern, 6.3 °C): ≈ 9.78 µA/cm² (subcritical: rest loses
    stability, the cell jumps to full spikes) and ≈ 154.5 µA/cm² (depolarisation
    block).

    Args:
        params: the model's parameter tuple (scalar leaves); voltage convention as
            the params (irrelevant for the currents).
        i_range: ``(lo, hi)`` in µA/cm², sampled at ``n_grid`` points; or an
            ascending 1-D array of currents to use as the grid.
        n_grid: number of grid points when ``i_range`` is ``(lo, hi)``.

    Returns:
        Hopf currents in µA/cm², ascending, shape ``(k,)`` (``k = 0`` if none).

    Raises:
        ValueError: a bad range or grid, or currents beyond
            :data:`hhjax.MAX_PLAUSIBLE_CURRENT` (a range in pA by mistake).
    """
    grid = np.asarray(i_range, dtype=float)
    if grid.ndim != 1 or grid.size < 2:
        raise ValueError(
            "`i_range` must be (lo, hi) or a 1-D grid of currents in uA/cm^2; got "
            f"{i_range!r}."
        )
    if grid.size == 2:
        if not grid[0] < grid[1] or not is_integer(n_grid) or n_grid < 2:
            raise ValueError(
                f"Need lo < hi and an int n_grid >= 2; got i_range={i_range!r}, "
                f"n_grid={n_grid!r}."
            )
        grid = np.linspace(grid[0], grid[1], int(n_grid))
    if not np.all(np.diff(grid) > 0) or not np.all(np.isfinite(grid)):
        raise ValueError("The grid of currents must be finite and strictly ascending.")
    check_current(grid, "i_range", opt_out=False)  # not pA
    require_concrete(
        "hopf_points", params, i_range,
        hint="hopf_current, with a bracket from hopf_points, is differentiable",
    )  # fmt: skip
    check_one_cell(params, "hopf_points")
    dtype = jnp.result_type(float, *jax.tree.leaves(params))
    found = _hopf_points_on(params, grid, dtype, _REFINE_DEPTH)
    if not found:
        return jnp.zeros((0,), float)
    return jnp.sort(jnp.stack(found))


@document_fields
class HopfPoint(NamedTuple):
    """A Hopf bifurcation of the resting state.

    Attributes:
        current: injected current at the bifurcation, µA/cm²
        v: membrane potential of the fixed point there, mV (convention of the
            params)
        frequency: frequency of the emerging oscillation, Hz (ω / 2π)
        lyapunov: first Lyapunov coefficient (sign matters; scale is arbitrary)
        kind: ``"subcritical"``, ``"supercritical"`` or ``"degenerate"``
    """

    current: float
    v: float
    frequency: float
    lyapunov: float
    kind: str


def _complex_multilinear(form, vectors):
    """Extend a real symmetric multilinear ``form(*real_vectors)`` to complex ones."""
    total = 0.0 + 0.0j
    for parts in itertools.product((0, 1), repeat=len(vectors)):
        args = [
            jnp.imag(v) if p else jnp.real(v)
            for v, p in zip(vectors, parts, strict=True)
        ]
        total = total + (1j ** sum(parts)) * form(*args)
    return total


@jax.jit
def _fixed_point_and_jacobian(params: Any, i_ext: ArrayLike) -> tuple[Array, Array]:
    """The fixed point as a vector ``(d,)`` and the Jacobian there ``(d, d)``."""
    x0 = state_to_vector(fixed_point(params, i_ext))
    return x0, jax.jacfwd(vector_field(params, i_ext))(x0)


@jax.jit
def _second_derivative(params, i_ext, x0, u, w) -> Array:
    """``B(u, w)``: the second derivative of the vector field at ``x0``."""
    f = vector_field(params, i_ext)
    return jax.jvp(lambda y: jax.jvp(f, (y,), (w,))[1], (x0,), (u,))[1]


@jax.jit
def _third_derivative(params, i_ext, x0, u, w, s) -> Array:
    """``C(u, w, s)``: the third derivative of the vector field at ``x0``."""
    f = vector_field(params, i_ext)
    return jax.jvp(
        lambda y: jax.jvp(lambda z: jax.jvp(f, (z,), (s,))[1], (y,), (w,))[1],
        (x0,),
        (u,),
    )[1]


# |Re λ| / |λ| below which a current is taken as the Hopf point itself (the
# root finder leaves ~1e-12); above it, classify_hopf refines the current first.
_HOPF_EXACT = 1e-8


def _nearby_hopf_current(params: Any, i0: float) -> float | None:
    """A Hopf current near ``i0`` (µA/cm²), or None: the test function is
    compared at ``i0 ± δ``, ``δ`` from 0.1 % of ``1 + |i0|`` doubling 6 times,
    until it changes sign continuously on one side (above ``i0`` first)."""
    i0 = float(i0)
    dtype = jnp.result_type(float, *jax.tree.leaves(params))
    at_i0 = float(_tests_at(params, i0, i0, dtype)[0])
    delta = 1e-3 * (1.0 + abs(i0))
    for _ in range(7):
        below, above = _tests_at(params, i0 - delta, i0 + delta, dtype)
        for lo, hi, t_lo, t_hi in (
            (i0, i0 + delta, at_i0, above),
            (i0 - delta, i0, below, at_i0),
        ):
            if np.isfinite(t_lo) and np.isfinite(t_hi) and t_lo * t_hi <= 0:
                current = float(_hopf_current(params, lo, hi))
                if np.isfinite(current) and _is_crossing(params, current, dtype):
                    return current
        delta *= 2.0
    return None


def classify_hopf(params: Any, i_hopf: ArrayLike) -> HopfPoint:
    """Frequency and type (sub-/supercritical) of a Hopf point.

    The type is the sign of the first Lyapunov coefficient ``l1`` (Kuznetsov 2004,
    eq. 3.20) at the fixed point, with ``q`` (``A q = iω q``, ``|q| = 1``),
    ``p`` (``Aᵀ p = −iω p``, ``⟨p, q⟩ = 1``) and the second and third derivatives
    ``B``, ``C`` of the vector field by nested forward-mode autodiff:

        l1 = Re[⟨p, C(q,q,q̄)⟩ − 2⟨p, B(q, A⁻¹B(q,q̄))⟩
                + ⟨p, B(q̄, (2iω − A)⁻¹B(q,q))⟩] / (2ω).

    ``l1 > 0``: subcritical; ``l1 < 0``: supercritical; ``|l1|`` below 1e-9 of its
    scale: ``"degenerate"`` (a Bautin point, type undetermined). Its magnitude
    depends on the (mixed mV / gate) units of the state; only the sign is meaningful.

    Args:
        params: the model's parameter tuple (scalar leaves).
        i_hopf: a Hopf current, µA/cm² (e.g. from :func:`hopf_points`). A
            current near one (a complex eigenvalue pair with a real part within
            1 % of its modulus, e.g. a rounded value) is first refined to the
            Hopf point it approaches: the test function is compared at
            ``i_hopf ± δ``, ``δ`` from 0.1 % of ``1 + |i_hopf|`` doubled up to 6
            times (6.4 %), until it changes sign.

    Returns:
        A :class:`HopfPoint`, at the refined current.

    Raises:
        ValueError: ``i_hopf`` is not a finite number (or beyond
            :data:`hhjax.MAX_PLAUSIBLE_CURRENT`: pA by mistake), the parameters
            have no fixed point there, or it is not near a Hopf point (no complex
            eigenvalue pair with a real part within 1 % of its modulus, or no
            crossing of the imaginary axis nearby).
    """
    require_concrete(
        "classify_hopf", params, i_hopf, hint="it refines and classifies one point"
    )
    check_one_cell(params, "classify_hopf", i_hopf)
    if not np.isfinite(concrete_real(i_hopf, "i_hopf", "uA/cm^2")):
        raise ValueError(
            f"`i_hopf` must be a finite current in uA/cm^2; got {i_hopf!r}."
        )
    check_current(i_hopf, "i_hopf", opt_out=False)
    fixed_point(params, i_hopf)  # a clear error where there is none
    x0, a = (np.asarray(x) for x in _fixed_point_and_jacobian(params, i_hopf))
    lam, vecs = np.linalg.eig(a)
    k = int(np.argmax(np.where(lam.imag > 0, -np.abs(lam.real), -np.inf)))
    near = lam[k].imag > 0 and abs(lam[k].real) <= 1e-2 * abs(lam[k])
    exact = near and abs(lam[k].real) <= _HOPF_EXACT * abs(lam[k])
    refined = None if exact or not near else _nearby_hopf_current(params, i_hopf)
    if not exact and refined is None:
        raise ValueError(
            f"{float(i_hopf):g} uA/cm^2 is not a Hopf point: the fixed point has no "
            "complex eigenvalue pair on the imaginary axis (eigenvalues "
            f"{np.round(lam, 4).tolist()})"
            + (", and none crosses it within 6.4 % of the current" if near else "")
            + "; pass a current from hopf_points."
        )
    if refined is not None:  # near a Hopf point, not at it: classify it there
        i_hopf = refined
        x0, a = (np.asarray(x) for x in _fixed_point_and_jacobian(params, i_hopf))
        lam, vecs = np.linalg.eig(a)
        k = int(np.argmax(np.where(lam.imag > 0, -np.abs(lam.real), -np.inf)))
    omega = float(lam[k].imag)
    q = vecs[:, k] / np.linalg.norm(vecs[:, k])
    lam_t, vecs_t = np.linalg.eig(a.T)
    p = vecs_t[:, int(np.argmin(np.abs(lam_t + 1j * omega)))]
    p = p / np.conj(np.vdot(p, q))  # now <p, q> = conj(p) . q = 1

    def d2(u, w):
        return _second_derivative(params, i_hopf, x0, u, w)

    def d3(u, w, s):
        return _third_derivative(params, i_hopf, x0, u, w, s)

    def b(u, w):
        return np.asarray(_complex_multilinear(d2, [jnp.asarray(u), jnp.asarray(w)]))

    def c(u, w, s):
        vectors = [jnp.asarray(u), jnp.asarray(w), jnp.asarray(s)]
        return np.asarray(_complex_multilinear(d3, vectors))

    qb = np.conj(q)
    eye = np.eye(a.shape[0])
    term1 = np.vdot(p, c(q, q, qb))
    term2 = -2.0 * np.vdot(p, b(q, np.linalg.solve(a, b(q, qb))))
    term3 = np.vdot(p, b(qb, np.linalg.solve(2j * omega * eye - a, b(q, q))))
    l1 = float(np.real(term1 + term2 + term3)) / (2.0 * omega)
    scale = max(abs(term1), abs(term2), abs(term3)) / (2.0 * omega)
    if abs(l1) <= 1e-9 * scale:
        kind = "degenerate"
    else:
        kind = "subcritical" if l1 > 0 else "supercritical"
    return HopfPoint(
        current=float(i_hopf),
        v=float(x0[0]),
        frequency=1000.0 * omega / (2.0 * np.pi),
        lyapunov=l1,
        kind=kind,
    )
