"""Batched spike and voltage features of candidate models, jitted, and the search
cost built from them (spike counts, subthreshold RMSE, first-spike latency).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import hhjax
from fitting._metrics import HYSTERESIS_MV, SPIKE_EXCLUSION_MS, THRESHOLD_MV
from fitting.protocol._settings import (
    COUNT_SCALE,
    LATENCY_SCALE_MS,
    ONSET_WEIGHT,
    SIGMA_MV,
)


def _counts_with_hysteresis(v, threshold, hysteresis):
    """Crossings of ``threshold`` re-armed below ``threshold − hysteresis``.

    ``v`` is ``(T, *batch)``; returns the boolean spike onsets ``(T − 1, *batch)``.
    """
    up = (v[:-1] < threshold) & (v[1:] >= threshold)
    low = v[1:] < threshold - hysteresis

    def step(armed, x):
        cross, is_low = x
        spike = armed & cross
        return (armed & ~spike) | is_low, spike

    _, spikes = lax.scan(step, jnp.ones(v.shape[1:], bool), (up, low))
    return spikes


def dilate(events, half_width):
    """True within ``half_width`` samples of any event, ``(T, *batch)``."""
    cs = jnp.cumsum(events, axis=0)
    zeros = jnp.zeros((half_width + 1,) + cs.shape[1:], cs.dtype)
    tail = jnp.repeat(cs[-1:], half_width, axis=0)
    padded = jnp.concatenate([zeros, cs, tail])
    return (padded[2 * half_width + 1 :] - padded[: -2 * half_width - 1]) > 0


def _jit_with_compiled_fields(features: Callable) -> Callable:
    """``jax.jit(features)`` for ``features(params, *arrays)``, with the fields of
    ``params`` that :func:`hhjax.simulate` compiles in (:func:`hhjax.compiled_fields`:
    defaults, and 0 for a switchable channel's conductance) passed as static
    values rather than traced, as ``simulate`` takes them when called directly:
    it then skips the channels they switch off (``g_ahp = g_h = g_nap = g_d =
    g_kir = 0``, and the FS set's ``g_m = 0``: half the gates of the Pospischil
    model; measured in docs/real_cells.md). Other fixed values stay traced (compiled
    in, the fitted values of a later-step fit made its cost 1.2–2× slower)."""

    @functools.partial(jax.jit, static_argnums=0)
    def run(constants, varying, *arrays):
        return features(varying._replace(**dict(constants)), *arrays)

    def call(params, *arrays):
        constants = hhjax.compiled_fields(params)
        return run(
            constants, params._replace(**dict.fromkeys(dict(constants))), *arrays
        )

    return call


def _simulate_candidates(params, i_ext, dt, method):
    """V of every candidate (``params`` leaves ``(K,)``) on every sweep (``i_ext``
    ``(T, S)``, µA/cm²), simulated from rest: ``(T, S, K)`` mV with 0 where it
    is not finite, and the failed simulations, ``(S, K)`` bool."""
    batch = jax.tree.map(
        lambda x: jnp.asarray(x)[None, :] if jnp.ndim(x) else x, params
    )
    v = hhjax.simulate(
        batch, i_ext[:, :, None], dt, method=method, record=("v",), check_inputs=False
    ).v
    bad = ~jnp.all(jnp.isfinite(v), axis=0)
    return jnp.where(jnp.isfinite(v), v, 0.0), bad


def _window_features(v, bad, spikes, v_data, onset_index, half, dt):
    """:func:`batch_features`' features of simulated ``v`` ``(T, S, K)`` (with
    its spike onsets ``spikes`` ``(T − 1, S, K)`` and failures ``bad``) against
    the data ``v_data`` ``(T, S)``."""
    d_spikes = _counts_with_hysteresis(v_data, THRESHOLD_MV, HYSTERESIS_MV)
    after = spikes[onset_index:]
    counts = jnp.sum(after, axis=0)
    first = jnp.where(jnp.any(after, 0), (jnp.argmax(after, 0) + 1) * dt, jnp.nan)
    events = jnp.concatenate(
        [jnp.zeros((1,) + spikes.shape[1:], bool), spikes | d_spikes[:, :, None]]
    )
    keep = ~dilate(events, half)
    sq = jnp.where(keep, (v - v_data[:, :, None]) ** 2, 0.0)
    rmse = jnp.sqrt(jnp.sum(sq, 0) / jnp.maximum(jnp.sum(keep, 0), 1))
    rmse = jnp.where(bad, jnp.inf, rmse)
    return counts.T, first.T, rmse.T


def batch_features(dt: float, onset_index: int, method: str = "rk4") -> Callable:
    """A jitted ``features(params, i, v) -> (counts, first, rmse)`` (the fields
    :func:`hhjax.compiled_fields` names compiled in) for sweeps sampled (and
    simulated) every ``dt`` ms whose step begins at sample ``onset_index``.

    ``params`` leaves have shape ``(K,)`` (K candidates), ``i`` and ``v`` are the
    training sweeps, ``(T, S)``, in µA/cm² and mV. Each candidate is simulated from
    rest on each sweep; returned arrays are ``(S, K)``: spikes from
    ``onset_index`` to the end (so a model that fires after the step, e.g. a
    rebound, is charged for it when compared with the data's spikes in the step,
    :func:`spike_counts`), first-spike latency after the onset (ms, NaN if none)
    and the subthreshold RMSE (mV) outside ±3 ms of a data or model spike.
    """
    half = max(int(round(SPIKE_EXCLUSION_MS / dt)), 1)

    def features(params, i_ext, v_data):
        v, bad = _simulate_candidates(params, i_ext, dt, method)
        spikes = _counts_with_hysteresis(v, THRESHOLD_MV, HYSTERESIS_MV)
        return _window_features(v, bad, spikes, v_data, onset_index, half, dt)

    return _jit_with_compiled_fields(features)


def batch_step_features(
    dt: float, onset_index: int, in_steps: np.ndarray, method: str = "rk4"
) -> Callable:
    """A jitted ``features(params, i, v) -> (counts, first, rmse, steps)`` for
    whole sweeps ``i`` ``(T, S)``, µA/cm², sampled every ``dt`` ms, whose first ``len(v)`` samples are the analysis
    window (``v``: the data there): :func:`batch_features`' three features on
    that window and the spikes inside each step, ``(n_steps, S, K)``
    (``in_steps``, ``(T − 1, n_steps)`` bool: the spike onsets at samples
    1 … T − 1 that lie in each step), from one simulation."""
    half = max(int(round(SPIKE_EXCLUSION_MS / dt)), 1)
    mask = jnp.asarray(in_steps, jnp.int32)

    def features(params, i_ext, v_data):
        v, bad = _simulate_candidates(params, i_ext, dt, method)
        spikes = _counts_with_hysteresis(v, THRESHOLD_MV, HYSTERESIS_MV)
        n = v_data.shape[0]
        window = _window_features(
            v[:n], bad, spikes[: n - 1], v_data, onset_index, half, dt
        )
        steps = jnp.einsum("tsk,tn->nsk", spikes.astype(jnp.int32), mask)
        return (*window, steps)

    return _jit_with_compiled_fields(features)


def feature_cost(counts, first, rmse, counts_data, first_data, sigma=SIGMA_MV):
    """The search cost per candidate (lower is better).

    Args:
        counts, first, rmse: model features ``(..., S)`` (see
            :func:`batch_features`, transposed to candidates first).
        counts_data, first_data: the data's, ``(S,)``.
        sigma: subthreshold RMSE (mV) that costs as much as one spike at n = 0.

    Returns:
        ``Σ_s ((n − n_d)/(1 + 0.1 n_d))² + 3·#(sweeps spiking in only one of
        model and data) + mean_s RMSE²/σ² + mean_s ((lat − lat_d)/20 ms)²``
        (latency where both spike), ``(...)``; ``inf`` for failed simulations.
    """
    scale = 1.0 + COUNT_SCALE * np.asarray(counts_data, float)
    count_term = np.sum(((counts - counts_data) / scale) ** 2, axis=-1)
    onset = np.sum((counts > 0) != (np.asarray(counts_data) > 0), axis=-1)
    count_term = count_term + ONSET_WEIGHT * onset
    both = np.isfinite(first) & np.isfinite(first_data)
    lat = np.where(both, (first - np.nan_to_num(first_data)) / LATENCY_SCALE_MS, 0.0)
    cost = count_term + np.mean(rmse**2, axis=-1) / sigma**2 + np.mean(lat**2, -1)
    return np.where(np.isfinite(cost), cost, np.inf)
