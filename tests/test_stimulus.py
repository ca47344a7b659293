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
    i = stimulus.step(
        jnp.array([1.0, 2.0, 3.0]), start=0.5, stop=1.0, duration=2.0, dt=0.05
    )
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


@pytest.mark.parametrize(
    ("start", "stop", "duration"),
    [
        (float("nan"), 5.0, 10.0),  # not finite
        (50.0, 60.0, 10.0),  # window after the end of the run
        (-1.0, 5.0, 10.0),  # before t = 0
        (2.0, 12.0, 10.0),  # past the end
        (5.0, 4.0, 10.0),  # stop before start
    ],
)
def test_windows_outside_the_run_are_rejected(start, stop, duration):
    kw = {"start": start, "stop": stop, "duration": duration, "dt": 0.1}
    for build in (stimulus.step, stimulus.ramp):
        with pytest.raises(ValueError, match=r"0 <= start <= stop <= duration"):
            build(5.0, **kw)


def test_pulse_train_must_end_within_the_run():
    kw = {"start": 1.0, "width": 1.0, "period": 3.0, "duration": 10.0, "dt": 0.1}
    assert stimulus.pulse_train(5.0, n_pulses=3, **kw).shape == (100,)  # ends at 8 ms
    with pytest.raises(ValueError, match=r"last pulse.*stop = 11"):
        stimulus.pulse_train(5.0, n_pulses=4, **kw)  # the last pulse ends at 11 ms


def test_windows_on_the_grid_up_to_rounding_are_accepted():
    i = stimulus.step(1.0, start=0.1 * 3, stop=0.3, duration=0.1 * 3, dt=0.1)
    np.testing.assert_array_equal(i, np.zeros(3))


def test_ornstein_uhlenbeck_array_parameters_are_the_batch_shape():
    mean, std = jnp.array([1.0, 2.0, 3.0]), jnp.array([[0.0], [0.5]])
    i = stimulus.ornstein_uhlenbeck(mean, std, 5.0, duration=1.0, dt=0.1, key=1)
    assert i.shape == (10, 2, 3)
    np.testing.assert_array_equal(i[0], np.broadcast_to(mean, (2, 3)))  # starts at mean
    np.testing.assert_array_equal(i[:, 0], np.broadcast_to(mean, (10, 3)))  # std 0
    noise = np.asarray(i[:, 1] - mean)
    assert np.all(np.abs(noise[1:]) > 0)
    assert not np.allclose(noise[:, 0], noise[:, 1])  # independent realisations
    # `shape` adds leading batch axes, broadcast with the parameters' shapes.
    batched = stimulus.ornstein_uhlenbeck(
        mean, 0.5, 5.0, duration=1.0, dt=0.1, shape=(4, 3)
    )
    assert batched.shape == (10, 4, 3)


@pytest.mark.parametrize(
    ("mean", "std", "tau", "match"),
    [
        (1.0, -0.5, 5.0, r"`std` must be finite and >= 0"),
        (1.0, jnp.array([0.5, float("nan")]), 5.0, r"`std` must be finite and >= 0"),
        (float("inf"), 0.5, 5.0, r"`mean` must be finite"),
        (1.0, 0.5, 0.0, r"`tau` must be a positive finite time in ms"),
        (1.0, 0.5, float("nan"), r"`tau` must be a positive finite time in ms"),
        (jnp.ones(3), jnp.ones(2), 5.0, r"`mean` \(3,\), `std` \(2,\)"),
    ],
)
def test_ornstein_uhlenbeck_rejects_bad_parameters(mean, std, tau, match):
    with pytest.raises(ValueError, match=match):
        stimulus.ornstein_uhlenbeck(mean, std, tau, duration=1.0, dt=0.1)
