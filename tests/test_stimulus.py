"""Stimulus builders: shapes, timing on the grid, units."""

import jax.numpy as jnp
import numpy as np
import pytest

from hhjax import stimulus


def test_step_edges_on_the_grid():
    i = stimulus.step(5.0, start=1.0, stop=2.0, duration=3.0, dt=0.1, baseline=-1.0)
    assert i.shape == (30,)
    on = np.flatnonzero(np.asarray(i) == 5.0)
    assert on[0] == 10 and on[-1] == 19  # [1.0, 2.0) ms: steps 10..19
    assert float(i[0]) == -1.0 and float(i[-1]) == -1.0


def test_batched_amplitudes_give_a_batch_axis():
    i = stimulus.step(jnp.array([1.0, 2.0, 3.0]), start=0.5, stop=1.0, duration=2.0, dt=0.05)
    assert i.shape == (40, 3)
    np.testing.assert_allclose(i[15], [1.0, 2.0, 3.0])


def test_pulse_train_counts_pulses():
    i = stimulus.pulse_train(
        10.0, start=1.0, width=0.5, period=2.0, n_pulses=4, duration=10.0, dt=0.05
    )
    rising = np.sum((np.asarray(i[1:]) > 0) & (np.asarray(i[:-1]) == 0))
    assert rising == 4
    assert float(i.sum()) * 0.05 == pytest.approx(4 * 0.5 * 10.0)


def test_ramp_is_linear():
    i = stimulus.ramp(10.0, start=0.0, stop=1.0, duration=2.0, dt=0.1)
    np.testing.assert_allclose(i[:10], np.arange(10) * 1.0, atol=1e-12)
    assert float(i[10:].max()) == 0.0


def test_ornstein_uhlenbeck_statistics_and_reproducibility():
    i = stimulus.ornstein_uhlenbeck(2.0, 0.5, 1.0, duration=2000.0, dt=0.1, key=3)
    assert i.shape == (20000,)
    assert float(i.mean()) == pytest.approx(2.0, abs=0.1)
    assert float(i.std()) == pytest.approx(0.5, rel=0.1)
    again = stimulus.ornstein_uhlenbeck(2.0, 0.5, 1.0, duration=2000.0, dt=0.1, key=3)
    np.testing.assert_array_equal(i, again)
    # Lag-one autocorrelation of an exactly discretised OU process is exp(-dt/tau).
    x = np.asarray(i) - 2.0
    rho = np.dot(x[:-1], x[1:]) / np.dot(x, x)
    assert rho == pytest.approx(np.exp(-0.1), abs=0.02)


def test_resample_holds_values():
    t = np.array([0.0, 0.2, 0.4, 0.6])
    values = np.array([1.0, 2.0, 3.0, 4.0])
    out = stimulus.resample(values, t, dt=0.1)
    np.testing.assert_allclose(out, [1, 1, 2, 2, 3, 3, 4, 4])


def test_pa_to_density():
    # 100 pA into a 50 pF cell with 1 uF/cm^2 is 2 uA/cm^2.
    assert float(stimulus.pa_to_density(100.0, 50.0)) == pytest.approx(2.0)
