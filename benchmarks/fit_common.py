"""Synthetic fitting problems shared by the ``benchmarks/fit_*.py`` scripts.

Standard HH (modern convention, :class:`hhjax.HHParams` defaults) is the truth;
recordings are simulated with RK4 at dt = 0.025 ms from rest under the first
current sample, plus Gaussian recording noise (:func:`fitting.synthetic_data`).
"""

from __future__ import annotations

import jax
import numpy as np

import fitting
import hhjax

# The stimuli are computed in float64 whatever runs first (fits switch x64 on
# only for their own duration).
jax.config.update("jax_enable_x64", True)

DT = 0.025  # ms
TRUTH = hhjax.HHParams()
FIT1_FREE = ("g_na", "g_k", "g_l", "e_l")
ALL7_FREE = ("g_na", "g_k", "g_l", "e_na", "e_k", "e_l", "c_m")


def truth_values(free) -> np.ndarray:
    return np.array([float(getattr(TRUTH, f)) for f in free])


def noisy_current(duration: float = 1000.0, key: int = 1) -> np.ndarray:
    """Ornstein–Uhlenbeck current: mean 5, s.d. 5 µA/cm², τ 5 ms (~50 spikes/s)."""
    return np.asarray(
        hhjax.stimulus.ornstein_uhlenbeck(
            5.0, 5.0, 5.0, duration=duration, dt=DT, key=key
        )
    )


def fit1_data(noise_seed: int = 0, duration: float = 1000.0, noise_mv: float = 1.0):
    """Fit 1 (issue 4, done-when 1): 1 s under the noisy current, 1 mV noise."""
    return fitting.synthetic_data(
        TRUTH, noisy_current(duration), DT, noise_mv=noise_mv, seed=noise_seed
    )


def three_sweep_currents(duration: float = 1000.0) -> np.ndarray:
    """Step (15 µA/cm² from 100 to 900 ms), ramp (0 → 40 µA/cm² over the sweep)
    and the noisy current, ``(3, n_samples)`` µA/cm²."""
    step = hhjax.stimulus.step(
        15.0, start=0.1 * duration, stop=0.9 * duration, duration=duration, dt=DT
    )
    ramp = hhjax.stimulus.ramp(40.0, start=0.0, stop=duration, duration=duration, dt=DT)
    return np.stack([np.asarray(step), np.asarray(ramp), noisy_current(duration)])


def three_sweep_data(noise_seed: int = 0, duration: float = 1000.0):
    """Fit 2 (done-when 2): step, ramp and noise sweeps, 1 mV noise."""
    return fitting.synthetic_data(
        TRUTH, three_sweep_currents(duration), DT, noise_mv=1.0, seed=noise_seed
    )


PROBLEMS = {
    "fit1": (FIT1_FREE, fit1_data),  # noisy current; g_na, g_k, g_l, e_l
    "fit2": (ALL7_FREE, three_sweep_data),  # step, ramp, noise; all seven
}
"""``{name: (free fields, data builder(noise_seed=, duration=))}``."""
