"""How sure is the fit? Laplace (Gauss–Newton) standard errors at the optimum.

For a weighted least-squares loss with independent Gaussian residuals, the
posterior near the optimum is approximately Gaussian with covariance
``s² (JᵀJ)⁻¹``, where ``J`` is the exact Jacobian of the residuals with respect
to the physical parameter values (forward mode, so it costs ``n`` simulations),
and ``s² = Σ r² / (N − p)`` estimates the noise variance from the residuals. For
the shooting loss the per-window offsets are profiled out (Schur complement)
and counted in ``p``. Parameters the data does not determine show up as large
relative standard errors or as (near-)null directions of ``JᵀJ``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from fitting._data import FitArrays
from fitting._losses import Stage
from fitting._optim import gauss_newton_matrix, linearise, normal_equations
from fitting._params import ParamSpace

# A parameter is flagged "undetermined" if its standard error exceeds this
# fraction of |value| (for signed quantities: of the width of its bounds / 10),
# or if it takes part in a direction of JᵀJ whose eigenvalue is below
# _NULL_EIGENVALUE times the largest (after scaling to unit diagonal).
RELATIVE_SE_LIMIT = 0.5
NOT_CONVERGED_GAIN = 1e-3
"""A fit whose last stage used all its iterations is reported as not converged
when one Gauss–Newton step from its result would still lower the loss by more
than this fraction (:attr:`Uncertainty.gauss_newton_gain`)."""
_NULL_EIGENVALUE = 1e-12


@dataclasses.dataclass(frozen=True)
class Uncertainty:
    """Laplace estimate at the optimum.

    Attributes:
        names: free parameter names, in order.
        values: their fitted values (physical units).
        std_errors: standard error of each, same units; ``inf`` for a parameter
            in a (near-)null direction of ``JᵀJ``. A parameter whose standard
            error is merely large (see ``undetermined``) keeps its finite value.
        correlation: correlation matrix, ``(n, n)``.
        undetermined: names the data does not determine (see module docstring).
        noise: residual noise estimate ``s`` (square root of the loss's unit:
            mV for the voltage losses), of the unweighted residuals (the
            weighted mean square over the mean sample weight).
        n_residuals: residuals with non-zero weight.
        n_nuisance: fitted per-window offsets profiled out.
        gauss_newton_gain: the fraction of the loss that one undamped
            Gauss–Newton step from ``values`` would remove if the residuals
            were linear: ≈ 0 at an optimum (3e-8 after a converged fit of
            synthetic HH data); above :data:`NOT_CONVERGED_GAIN`, the fit
            stopped short of one.
    """

    names: tuple[str, ...]
    values: np.ndarray
    std_errors: np.ndarray
    correlation: np.ndarray
    undetermined: tuple[str, ...]
    noise: float
    n_residuals: int
    n_nuisance: int
    gauss_newton_gain: float = float("nan")

    def to_dict(self, units: tuple[str, ...]) -> dict:
        return {
            "std_errors": {
                n: float(s) for n, s in zip(self.names, self.std_errors, strict=True)
            },
            "relative_std_errors": {
                n: float(s / abs(v)) if v != 0 else None
                for n, s, v in zip(
                    self.names, self.std_errors, self.values, strict=True
                )
            },
            "units": dict(zip(self.names, units, strict=True)),
            "correlation": {
                "names": list(self.names),
                "matrix": np.round(self.correlation, 6).tolist(),
            },
            "undetermined": list(self.undetermined),
            "residual_noise": self.noise,
            "n_residuals": self.n_residuals,
            "n_nuisance": self.n_nuisance,
            "gauss_newton_gain": self.gauss_newton_gain,
            "method": "Gauss-Newton (Laplace) at the optimum, s^2 (J^T J)^-1",
        }


def _pieces(stage: Stage, space: ParamSpace, values, delta, data: FitArrays):
    lin = linearise(stage, space.params, values, delta, data)
    h = gauss_newton_matrix(lin)
    _, g, b, d, gd = normal_equations(lin)
    offsets_gain = jnp.zeros((), h.dtype)
    if b is not None:  # the offsets profiled out, as in h
        g = g - (b / (d + 1e-300)) @ gd
        offsets_gain = jnp.sum(gd * gd / (d + 1e-300))
    ssr = jnp.sum(lin.r * lin.r)
    # Residuals with zero weight are exactly zero and do not move with the
    # parameters: count the others.
    used = (lin.r != 0) | jnp.any(lin.jz != 0, axis=0)
    count = jnp.sum(used)
    n_delta = 0
    if lin.prior is not None:
        ssr = ssr + jnp.sum(lin.prior * lin.prior)
        count = count + jnp.sum(lin.c != 0)
        n_delta = lin.prior.size
    return h, ssr, count, n_delta, g, offsets_gain


_pieces_jit = jax.jit(_pieces, static_argnums=(0, 1))


def warm_up(stage: Stage, space: ParamSpace, data: FitArrays) -> None:
    """Compile :func:`laplace`'s computation for this stage and space ahead of
    time (e.g. in a background thread while the fit runs)."""
    values = jnp.asarray(space.base_values(), data.v.dtype)
    delta = jnp.zeros(stage.delta_shape or (0,), data.v.dtype)
    jax.block_until_ready(_pieces_jit(stage, space, values, delta, data))


def _mean_weight(data: FitArrays) -> float:
    """Mean weight of the samples that enter the loss (the residuals carry
    ``√w``: dividing their mean square by it gives the noise in the data's unit,
    whatever the sweep weights)."""
    w = np.asarray(data.w, np.float64)
    used = w[w > 0]
    return float(used.mean()) if used.size else 1.0


def laplace(
    stage: Stage,
    space: ParamSpace,
    values: np.ndarray,
    delta: np.ndarray,
    data: FitArrays,
) -> Uncertainty:
    """Standard errors and correlations of the free parameters at ``values``.

    Args:
        stage: a residual stage (the last stage of the fit's loss).
        space: the free parameters.
        values: fitted values, physical units, ``(n_free,)``.
        delta: fitted per-window offsets of the stage (any shape if unused).
        data: the fit's arrays.
    """
    values = jnp.asarray(values, data.v.dtype)
    h, ssr, count, n_delta, g, offsets_gain = _pieces_jit(
        stage, space, values, jnp.asarray(delta, data.v.dtype), data
    )
    h, ssr, count = np.asarray(h, np.float64), float(ssr), int(count)
    g = np.asarray(g, np.float64)
    n = space.n_free
    dof = max(count - n - n_delta, 1)
    s2 = ssr / dof
    scale = np.sqrt(np.clip(np.diag(h), 1e-300, None))
    scaled = h / np.outer(scale, scale)
    eigval, eigvec = np.linalg.eigh(scaled)
    null = eigval < _NULL_EIGENVALUE * max(eigval.max(), 1e-300)
    inv = (eigvec[:, ~null] / eigval[~null]) @ eigvec[:, ~null].T
    cov = s2 * inv / np.outer(scale, scale)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    in_null = (
        np.any(np.abs(eigvec[:, null]) > 0.1, axis=1)
        if null.any()
        else (np.zeros(n, bool))
    )
    se = np.where(in_null, np.inf, se)
    # Σr² falls by gᵀ(JᵀJ)⁻¹g under an undamped Gauss–Newton step (linear
    # residuals); null directions left out, as in the covariance.
    g_scaled = g / scale
    gain = float(offsets_gain) + float(g_scaled @ inv @ g_scaled)
    relative_gain = gain / ssr if ssr > 0 else 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(np.sqrt(np.diag(cov)), np.sqrt(np.diag(cov)))
    values_np = np.asarray(values, np.float64)
    reference = np.where(
        space.lower > 0, np.abs(values_np), (space.upper - space.lower) / 10.0
    )
    loose = se > RELATIVE_SE_LIMIT * reference
    undetermined = tuple(
        f for f, bad in zip(space.free, in_null | loose, strict=True) if bad
    )
    return Uncertainty(
        names=space.free,
        values=values_np,
        std_errors=se,
        correlation=np.nan_to_num(corr, nan=0.0),
        undetermined=undetermined,
        noise=float(np.sqrt(s2 / _mean_weight(data))),
        n_residuals=count,
        n_nuisance=int(n_delta),
        gauss_newton_gain=relative_gain,
    )
