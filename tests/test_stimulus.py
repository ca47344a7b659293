"""Stimulus builders: shapes, timing on the grid, units."""

import jax
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
        (1.0, 0.5, 0.0, r"`tau` must be a positive, finite number \(ms\)"),
        (1.0, 0.5, float("nan"), r"`tau` must be a positive, finite number \(ms\)"),
        (jnp.ones(3), jnp.ones(2), 5.0, r"`mean` \(3,\), `std` \(2,\)"),
    ],
)
def test_ornstein_uhlenbeck_rejects_bad_parameters(mean, std, tau, match):
    with pytest.raises(ValueError, match=match):
        stimulus.ornstein_uhlenbeck(mean, std, tau, duration=1.0, dt=0.1)


@pytest.mark.parametrize("x64", [True, False], ids=["x64", "x32"])
@pytest.mark.parametrize("t_dtype", [np.float64, np.float32])
def test_resample_takes_the_sample_at_each_grid_point(x64, t_dtype):
    # 50 000 samples every 0.02 ms (1 s): every step start is a sample time up to
    # rounding, which in float32 is far above 1e-9 dt; it must take that sample,
    # not the one before.
    n, dt = 50_000, 0.02
    t = np.arange(n, dtype=t_dtype) * t_dtype(dt)
    values = np.arange(n, dtype=float)
    with jax.enable_x64(x64):
        held = np.asarray(stimulus.resample(values, t, dt))
        finer = np.asarray(stimulus.resample(values, jnp.asarray(t), dt / 2))
    np.testing.assert_array_equal(held, values)
    np.testing.assert_array_equal(finer, np.repeat(values, 2))


@pytest.mark.parametrize("t_dtype", [np.float64, np.float32])
def test_resample_holds_the_last_sample_at_or_before_each_step(t_dtype):
    t = np.array([0.0, 0.25, 0.3, 0.68], dtype=t_dtype)
    values = np.array([1.0, 2.0, 3.0, 4.0])
    out = stimulus.resample(values, t, dt=0.1, duration=1.0)
    # Step starts 0.0-0.2 hold t = 0; 0.3 is on t[2] (up to rounding); 0.25 falls
    # between steps; 0.6 is before 0.68 and keeps 3.
    np.testing.assert_array_equal(out, [1, 1, 1, 3, 3, 3, 3, 4, 4, 4])


def test_resample_gradient_and_traced_times():
    t = np.array([0.0, 0.2, 0.4])
    grad = jax.grad(lambda v: stimulus.resample(v, t, 0.1).sum())(jnp.ones(3))
    np.testing.assert_array_equal(grad, [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match=r"`t` \(sample times, ms\) must be concrete"):
        jax.jit(lambda t: stimulus.resample(jnp.ones(3), t, 0.1, duration=0.6))(t)


@pytest.mark.parametrize(
    "seed", [np.int64(3), np.int32(3), np.uint8(3), jnp.int32(3)], ids=repr
)
def test_ornstein_uhlenbeck_accepts_numpy_and_jax_integer_seeds(seed):
    kw = {"duration": 1.0, "dt": 0.1}
    expected = stimulus.ornstein_uhlenbeck(0.0, 1.0, 5.0, key=3, **kw)
    got = stimulus.ornstein_uhlenbeck(0.0, 1.0, 5.0, key=seed, **kw)
    np.testing.assert_array_equal(got, expected)
    for key in (jax.random.PRNGKey(3), jax.random.key(3)):
        got = stimulus.ornstein_uhlenbeck(0.0, 1.0, 5.0, key=key, **kw)
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("key", [3.0, "3", np.ones(3)], ids=repr)
def test_ornstein_uhlenbeck_rejects_a_key_that_is_not_a_key_or_seed(key):
    with pytest.raises(ValueError, match=r"`key` must be a jax.random key or an int"):
        stimulus.ornstein_uhlenbeck(0.0, 1.0, 5.0, duration=1.0, dt=0.1, key=key)


def test_pa_to_density_per_sweep_capacitances_broadcast():
    c_pf = np.array([100.0, 200.0, 400.0])
    # simulate's layout (time, sweep): one capacitance per sweep, shape (sweep,).
    i = stimulus.pa_to_density(np.full((5, 3), 200.0), c_pf)
    np.testing.assert_allclose(i, np.broadcast_to([2.0, 1.0, 0.5], (5, 3)))
    # (sweep, time): capacitances as a column; c_m scales the result.
    i = stimulus.pa_to_density(np.full((3, 5), 200.0), c_pf[:, None], c_m=0.5)
    np.testing.assert_allclose(i[:, 0], [1.0, 0.5, 0.25])
    with pytest.raises(ValueError, match=r"`i_pa` \(3, 5\), `c_pf` \(3,\).*broadcast"):
        stimulus.pa_to_density(np.ones((3, 5)), c_pf)


@pytest.mark.parametrize(
    ("c_pf", "c_m", "match"),
    [
        (100.0, 0.0, r"`c_m` must be > 0 µF/cm²"),
        (100.0, -1.0, r"`c_m` must be > 0 µF/cm²"),
        (100.0, float("nan"), r"`c_m` must be > 0 µF/cm² and finite"),
        (float("inf"), 1.0, r"`c_pf` must be > 0 pF and finite"),
        (np.array([100.0, 0.0]), 1.0, r"`c_pf` must be > 0 pF"),
    ],
)
def test_pa_to_density_rejects_bad_capacitances(c_pf, c_m, match):
    with pytest.raises(ValueError, match=match):
        stimulus.pa_to_density(100.0, c_pf, c_m=c_m)


@pytest.mark.parametrize("offset", [0.0, 1e3, 1e5])
def test_resample_float32_times_at_an_offset_need_no_duration(offset):
    # float32 times 1e5 ms from 0 are 0.008 ms apart: the recording's length comes
    # out as 1000.0078 ms, a whole number of 0.025 ms steps only up to that rounding.
    t = (offset + np.arange(20_000) * 0.05).astype(np.float32)
    values = np.arange(20_000, dtype=float)
    out = np.asarray(stimulus.resample(values, t, 0.025))
    np.testing.assert_array_equal(out, np.repeat(values, 2))


def test_resample_rejects_a_duration_beyond_the_recording():
    t, values = np.arange(10.0), np.arange(10.0)  # 10 ms with the last interval
    assert stimulus.resample(values, t, 1.0, duration=10.0).shape == (10,)
    assert stimulus.resample(values, t, 1.0, duration=4.0).shape == (4,)
    with pytest.raises(ValueError, match=r"`duration` 50.0 ms is longer than the rec"):
        stimulus.resample(values, t, 1.0, duration=50.0)
    with pytest.raises(ValueError, match=r"not a whole number of steps"):
        stimulus.resample(values, t, 0.3)  # the default duration is still checked


def test_resample_and_pa_to_density_refuse_non_finite_values():
    # Both passed NaN through silently.
    with pytest.raises(
        ValueError, match=r"`values` must be finite \(µA/cm²\); entry 0"
    ):
        stimulus.resample(np.r_[np.nan, np.zeros(9)], np.arange(10.0), 1.0)
    with pytest.raises(ValueError, match=r"`i_pa` must be finite \(pA\); got nan"):
        stimulus.pa_to_density(np.nan, 50.0)
    with pytest.raises(
        ValueError, match=r"`c_pf` must be real numbers \(pF\); got '50'"
    ):
        stimulus.pa_to_density(100.0, "50")
    with pytest.raises(
        ValueError, match=r"`dt` must be a positive, finite number \(ms\); got '0.1'"
    ):
        stimulus.step(1.0, start=1.0, stop=2.0, duration=5.0, dt="0.1")


def test_from_array_under_jit():
    i = jnp.full((5, 2), 3.0)
    np.testing.assert_array_equal(jax.jit(stimulus.from_array)(i), i)
    with pytest.raises(
        ValueError, match=r"waveform must be finite \(µA/cm²\); entry 1 is nan"
    ):
        stimulus.from_array(jnp.array([1.0, jnp.nan]))


def test_window_edges_off_the_grid_keep_the_steps_that_start_inside():
    # [10.04, 20.04) ms with dt = 0.1: the steps starting at 10.1 ... 20.0 ms.
    i = stimulus.step(5.0, start=10.04, stop=20.04, duration=30.0, dt=0.1)
    on = np.flatnonzero(np.asarray(i))
    assert (on[0], on[-1], on.size) == (101, 200, 100)


@pytest.mark.parametrize(
    "build",
    [
        lambda: stimulus.step(5.0, start=1.0, stop=1.01, duration=2.0, dt=0.025),
        lambda: stimulus.pulse_train(
            50.0,
            start=1.0,
            width=0.01,
            period=5.0,
            n_pulses=3,
            duration=20.0,
            dt=0.025,
        ),
    ],
)
def test_windows_shorter_than_a_step_are_rejected(build):
    with pytest.raises(ValueError, match=r"shorter than one step \(dt = 0.025 ms\)"):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda: stimulus.constant(float("nan"), 1.0, 0.1),
        lambda: stimulus.step(
            1.0, start=0.2, stop=0.5, duration=1.0, dt=0.1, baseline=np.inf
        ),
        lambda: stimulus.ramp(
            jnp.array([1.0, jnp.nan]), start=0, stop=1, duration=1, dt=0.1
        ),
    ],
)
def test_non_finite_amplitudes_are_rejected(build):
    with pytest.raises(ValueError, match="amplitudes must be finite"):
        build()


def test_pulse_count_and_noise_shape_must_be_integers():
    with pytest.raises(ValueError, match="`n_pulses` must be an integer >= 1; got 2.5"):
        stimulus.pulse_train(
            1.0, start=0.0, width=0.5, period=1.0, n_pulses=2.5, duration=5.0, dt=0.1
        )
    with pytest.raises(ValueError, match="`shape` must be a tuple of integers; got 3"):
        stimulus.ornstein_uhlenbeck(0.0, 1.0, 5.0, duration=1.0, dt=0.1, shape=3)


def test_times_under_jit_are_named_as_traced_not_as_bad_values():
    # A traced dt said "must be a positive, finite number; got JitTracer(...)",
    # a traced start gave JAX's ConcretizationTypeError.
    def build(start, dt):
        return stimulus.step(1.0, start=start, stop=5.0, duration=10.0, dt=dt)

    for static, name in [("dt", "start"), ("start", "dt")]:
        with pytest.raises(ValueError, match=rf"`{name}` \(ms\) must be known when it is used, but it is a traced value"):
            jax.jit(build, static_argnames=static)(2.0, 0.025)
    with pytest.raises(ValueError, match=r"`start` must be one real number \(ms\); got '1'"):
        build("1", 0.025)
