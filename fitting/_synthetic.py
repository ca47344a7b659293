"""Synthetic recordings with known parameters, for tests, benchmarks and demos."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import hhjax
from fitting._data import FitData
from fitting._params import integer_at_least, one_cell, real_in


def synthetic_data(
    params: Any,
    i_ext: Any,
    dt: float,
    *,
    noise_mv: float = 1.0,
    seed: int = 0,
    method: str = hhjax.DEFAULT_METHOD,
    **kwargs,
) -> FitData:
    """Simulate sweeps of a model and add Gaussian recording noise.

    Each sweep starts at the model's resting state for its first current sample
    (as :func:`fitting.simulate_data` and ``hhjax predict`` assume), and is
    computed in float64.

    Args:
        params: the true parameters (the model's tuple).
        i_ext: injected current, µA/cm², ``(n_samples,)`` or
            ``(n_sweeps, n_samples)``; sample ``k`` acts on ``[t_k, t_{k+1})``.
        dt: sampling interval and simulation step, ms.
        noise_mv: standard deviation of the recording noise, mV.
        seed: seed of the noise (numpy PCG64).
        method: integrator.
        **kwargs: passed to :meth:`FitData.from_arrays` (windows, weights, ...).

    Returns:
        :class:`FitData` with V in mV, the current in µA/cm².

    Raises:
        ValueError: parameters of more than one cell, a current that is not 1-D or
            2-D, ``noise_mv`` not a finite number >= 0, ``seed`` not an integer
            >= 0.
    """
    params = one_cell(params, "`params`")
    noise_mv = real_in(
        noise_mv, "`noise_mv`", "a finite standard deviation >= 0 in mV",
        lambda x: 0.0 <= x < math.inf,
    )  # fmt: skip
    seed = integer_at_least(seed, "`seed`", 0)
    i_ext = np.asarray(i_ext, np.float64)
    if i_ext.ndim not in (1, 2):
        raise ValueError(
            "`i_ext` must be (n_samples,) or (n_sweeps, n_samples) in uA/cm^2; got "
            f"shape {i_ext.shape}."
        )
    with jax.enable_x64(True):
        current = jnp.asarray(np.atleast_2d(i_ext).T)
        state0 = hhjax.resting_state(params, current[0])
        trace = hhjax.simulate(
            params, current, dt, state0=state0, method=method, record=("v",)
        )
        v = np.asarray(trace.v, np.float64).T
    rng = np.random.default_rng(seed)
    v = v + noise_mv * rng.standard_normal(v.shape)
    return FitData.from_arrays(v, np.asarray(current).T, dt, **kwargs)
