"""Write ``synthetic_hh.npz``: a noisy recording of standard HH with known truth.

Standard Hodgkin–Huxley, modern convention (:class:`hhjax.HHParams` defaults:
g_na 120, g_k 36, g_l 0.3 mS/cm²; e_na 50, e_k −77, e_l −54.387 mV; c_m 1 µF/cm²),
from rest under the first current sample, simulated with RK4 at dt = 0.025 ms for 1 s under an
Ornstein–Uhlenbeck current (mean 5, s.d. 5 µA/cm², τ = 5 ms, seed 1), plus
Gaussian recording noise of 1 mV s.d. (seed 0). About 50 spikes.

The file follows the data contract of ``hhjax.recordings``: ``t_ms`` (float64),
``v_mV`` and ``i_uA_per_cm2`` (1-D, rounded to float32 to keep the file small),
compressed (~0.36 MB). Run from anywhere::

    python examples/data/make_synthetic.py
"""

from pathlib import Path

import jax
import numpy as np

import fitting
import hhjax

jax.config.update("jax_enable_x64", True)

DT = 0.025  # ms
DURATION = 1000.0  # ms
NOISE_MV = 1.0
TRUTH = hhjax.HHParams()
OUT = Path(__file__).resolve().parent / "synthetic_hh.npz"


def make(duration=DURATION, dt=DT, noise_mv=NOISE_MV, current_seed=1, noise_seed=0):
    """The synthetic recording as :class:`fitting.FitData` (float64)."""
    i_ext = hhjax.stimulus.ornstein_uhlenbeck(
        5.0, 5.0, 5.0, duration=duration, dt=dt, key=current_seed
    )
    # Starts at rest under the first current sample (the "holding current"), as
    # `hhjax predict` and fitting.simulate_data assume.
    return fitting.synthetic_data(TRUTH, i_ext, dt, noise_mv=noise_mv, seed=noise_seed)


if __name__ == "__main__":
    data = make()
    np.savez_compressed(
        OUT,
        t_ms=data.t,
        v_mV=data.v[0].astype(np.float32),
        i_uA_per_cm2=data.i[0].astype(np.float32),
    )
    n_spikes = len(fitting.spike_times(data.v[0], data.dt))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB, {n_spikes} spikes)")
