"""The polish (step 4 of the recipe in :mod:`fitting.protocol`):
Levenberg–Marquardt on a spike-feature loss from the search optimum, and the
Laplace standard errors of the fitted parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

import hhjax
from fitting._data import FitArrays
from fitting._losses import Loss, Stage
from fitting._metrics import SPIKE_EXCLUSION_MS, THRESHOLD_MV
from fitting._params import ParamSpace
from fitting.protocol._features import dilate
from fitting.protocol._settings import BOUNDS, CAP_MV, COUNT_SCALE, LINEAR
from fitting.protocol._sweeps import spike_counts
from hhjax.analysis import soft_spike_count


def _softmin(v, cap, width=2.0):
    return cap - width * jax.nn.softplus((cap - v) / width)


@dataclasses.dataclass(frozen=True)
class SpikeFeatureLoss(Loss):
    """Residual loss that stays informative on spiking sweeps (for LM).

    Residuals: the V error outside ±3 ms of the recorded spikes with both traces
    capped smoothly at ``cap_mv`` (spikes the model fires at other times cost a
    bounded amount), divided by ``sigma_mv`` and by √(number of samples); and per
    sweep the soft spike count (:func:`hhjax.analysis.soft_spike_count`, 2 mV
    width; over the whole window, so spikes outside the step cost) minus the
    recorded count (``counts``: in the step), divided by ``1 + 0.1·n``. Sweeps
    start at rest. V is compared every ``stride`` steps.

    Attributes:
        counts: recorded spikes per sweep (in the order of the data).
        stride: compare every ``stride``-th sample.
        sigma_mv, cap_mv: see above.
    """

    counts: tuple[int, ...] = ()
    stride: int = 4
    sigma_mv: float = 2.0
    cap_mv: float = CAP_MV
    name: str = "spike-features"

    def stages(self, n_samples, n_sweeps, dt, method):
        """One residual stage (see :class:`fitting.Loss`)."""
        if len(self.counts) != n_sweeps:
            raise ValueError(
                f"SpikeFeatureLoss has {len(self.counts)} counts for {n_sweeps} sweeps."
            )
        counts = jnp.asarray(self.counts, float)
        stride, sigma, cap = self.stride, self.sigma_mv, self.cap_mv
        half = max(int(round(SPIKE_EXCLUSION_MS / dt)), 1)

        def residuals(params, delta, data: FitArrays):
            state0 = hhjax.resting_state(params, data.i[0])
            v = hhjax.simulate(
                params,
                data.i,
                dt,
                state0=state0,
                method=method,
                record=("v",),
                stride=stride,
                check_inputs=False,
            ).v
            up = (data.v[:-1] < THRESHOLD_MV) & (data.v[1:] >= THRESHOLD_MV)
            events = jnp.concatenate([jnp.zeros((1, up.shape[1]), bool), up])
            keep = (~dilate(events, half))[::stride][: v.shape[0]] * data.w[::stride]
            v_data = data.v[::stride][: v.shape[0]]
            n = jnp.maximum(jnp.sum(keep), 1.0)
            r_v = (
                keep * (_softmin(v, cap) - _softmin(v_data, cap)) / sigma / jnp.sqrt(n)
            )
            soft = soft_spike_count(
                v, THRESHOLD_MV, width=2.0, t=data.t[::stride][: v.shape[0]]
            )
            r_n = (soft - counts) / (1.0 + COUNT_SCALE * counts)
            return jnp.concatenate([r_v.ravel(), r_n]), None, jnp.asarray(1.0)

        return (Stage("spike features", residuals, None, None),)


def polish_bounds(free: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Bounds of the polish and of its standard errors: the search box where it
    has one, else the defaults of :func:`fitting.default_bounds`."""
    return {n: BOUNDS[n] for n in free if n in BOUNDS}


def polish(
    prepared, train, params, free, iterations, starts, seed, method, checkpoint=None
):
    """LM on :class:`SpikeFeatureLoss` from ``params`` and perturbed copies
    (checkpointed to ``checkpoint`` and resumed from it, see :func:`fitting.fit`)."""
    from fitting._fit import fit

    data = prepared.data(train)
    counts = tuple(
        int(c)
        for c in spike_counts(dataclasses.replace(prepared, recording=data.recording))
    )
    loss = SpikeFeatureLoss(counts=counts)
    center = np.array([float(np.asarray(getattr(params, n))) for n in free])
    rng = np.random.default_rng(seed)
    init = np.repeat(center[None], starts, 0)
    jitter = rng.normal(0.0, 0.05, init[1:].shape)
    signed = np.array([n in LINEAR for n in free])
    init[1:] = np.where(
        signed, init[1:] + 20.0 * jitter * 0.1, init[1:] * np.exp(jitter)
    )
    bounds = polish_bounds(free)
    space = ParamSpace.create(params, free, bounds)
    init = np.clip(init, space.lower, space.upper)  # a jitter past a bound
    result = fit(
        data,
        list(free),
        params=params,
        bounds=bounds,
        loss=loss,
        optimizer="lm",
        n_starts=starts,
        init=init,
        max_iterations=iterations,
        method=method,
        progress=False,
        uncertainty=False,
        checkpoint=checkpoint,
    )
    return result, loss, data


def laplace_errors(loss, data, params, free, method):
    """Laplace standard errors of ``free`` at ``params`` under the polish loss
    (:func:`fitting._uncertainty.laplace` on its last stage), float64."""
    from fitting._uncertainty import laplace

    with jax.enable_x64(True):
        arrays = data.arrays()
        stage = loss.stages(data.n_samples, data.n_sweeps, data.dt, method)[0]
        space = ParamSpace.create(params, list(free), polish_bounds(free))
        values = np.array([float(np.asarray(getattr(params, n))) for n in free])
        return laplace(stage, space, values, np.zeros((0,)), arrays)
