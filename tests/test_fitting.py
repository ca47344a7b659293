"""fitting: parameters, data, losses, optimisers, fits, results, resume, metrics.

Short synthetic traces (60 ms of standard HH at dt = 0.025 ms under a noisy
current, ~4 spikes) keep every fit to a few seconds; the full-size recovery
problems of issue 4 are in ``test_fitting_slow.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fitting
import hhjax
from fitting._losses import linear_recurrence
from fitting._metrics import simulate_sweeps
from fitting._optim import (
    _Linearisation,
    _lm_solve,
    _potential,
    _value_and_grad,
    levenberg_marquardt,
    linearise,
    normal_equations,
)
from fitting._params import ParamSpace
from hhjax.recordings import Recording

DT = 0.025  # ms
TRUTH = hhjax.HHParams()
FREE = ("g_na", "g_k", "g_l", "e_l")


def _truth(free=FREE):
    return np.array([float(getattr(TRUTH, f)) for f in free])


@pytest.fixture(scope="module")
def current():
    return np.asarray(
        hhjax.stimulus.ornstein_uhlenbeck(5.0, 5.0, 5.0, duration=60.0, dt=DT, key=1)
    )


@pytest.fixture(scope="module")
def noisy(current):
    return fitting.synthetic_data(TRUTH, current, DT, noise_mv=0.5, seed=0)


@pytest.fixture(scope="module")
def clean(current):
    return fitting.synthetic_data(TRUTH, current, DT, noise_mv=0.0)


@pytest.fixture(scope="module")
def shooting_fit(noisy):
    """The default fit (multiple shooting, Levenberg–Marquardt) from 4 starts."""
    return fitting.fit(noisy, FREE, n_starts=4, seed=1, progress=False)


# ------------------------------------------------------------------- parameters
def test_transform_round_trip_stays_inside_bounds():
    space = ParamSpace.create(TRUTH, ["g_na", "e_l", "c_m"], {"e_l": (-90.0, -30.0)})
    values = np.array([[120.0, -54.387, 1.0], [0.5, -89.0, 19.0]])
    back = space.values_np(space.to_z(values))
    np.testing.assert_allclose(back, values, rtol=1e-9)
    extreme = space.values_np(np.array([[-1e3, -1e3, -1e3], [1e3, 1e3, 1e3]]))
    tol = 1e-12 * np.abs(space.upper)
    assert np.all(extreme >= space.lower - tol) and np.all(extreme <= space.upper + tol)
    assert list(space.log) == [True, False, True]  # positive wide ranges: log scale
    assert space.units == ("mS/cm^2", "mV", "uF/cm^2")


def test_step_size_measures_factors_and_fractions_of_the_range():
    space = ParamSpace.create(TRUTH, ["g_na", "e_l"], {"e_l": (-90.0, -30.0)})
    z = space.to_z(np.array([[120.0, -54.387]]))[0]
    for target, expected in (([240.0, -54.387], np.log(2.0)), ([120.0, -51.387], 3.0)):
        dz = space.to_z(np.array([target]))[0] - z  # small enough to be ~linear
        size = float(space.step_size(z, dz, log_step=1.0, linear_step=1.0 / 60.0))
        assert size == pytest.approx(expected, rel=0.15)


def test_starts_are_reproducible_and_within_the_spread():
    space = ParamSpace.create(TRUTH, FREE)
    a = space.sample(200, 3, _truth(), 2.0)
    b = space.sample(200, 3, _truth(), 2.0)
    np.testing.assert_array_equal(a, b)
    ratio = a / _truth()
    assert np.all((ratio >= 0.5 - 1e-9) & (ratio <= 2.0 + 1e-9))  # sign of e_l kept
    assert np.log(ratio).std(axis=0).min() > 0.3  # spread out, not clustered
    assert not np.array_equal(a, space.sample(200, 4, _truth(), 2.0))


@pytest.mark.parametrize(
    ("free", "bounds", "message"),
    [
        (["g_nax"], None, "Unknown parameter"),
        (["g_na", "g_na"], None, "twice"),
        (["g_na"], {"g_na": (10.0, 1.0)}, "lower < upper"),
        (["g_k"], {"g_k": (-1.0, 10.0)}, "must not be negative"),
        (["g_k"], {"g_k": (1.0, 1e6)}, r"'g_k' must lie below 100000 mS/cm\^2"),
        (["g_na"], {"g_k": (1.0, 10.0)}, r"g_k that are not fitted.*\(g_na\)"),
        ([], None, "at least one"),
        (["g_na"], {"g_na": "a"}, r"Bounds of 'g_na' must be a pair \(lower, upper\)"),
        (["g_na"], {"g_na": (1, 2, 3)}, r"must be a pair .* got \(1, 2, 3\)"),
        (["g_na"], {"g_na": 5}, r"must be a pair .* in mS/cm\^2; got 5"),
    ],
)
def test_param_space_rejects_bad_names_and_bounds(free, bounds, message):
    with pytest.raises(ValueError, match=message):
        ParamSpace.create(TRUTH, free, bounds)


@pytest.mark.parametrize(
    ("base", "free", "message"),
    [
        (TRUTH, 5, r"`free` must be parameter names.*got 5"),
        (TRUTH, [1], r"`free` must be parameter names.*got \[1\]"),
        ({"g_na": 1.0}, ["g_na"], r"`base` must be a model's parameter tuple.*dict"),
    ],
)
def test_param_space_rejects_wrong_types(base, free, message):
    with pytest.raises(TypeError, match=message):
        ParamSpace.create(base, free)


def test_wide_linear_bounds_give_finite_values_and_gradients():
    # exp() of a linear-scale field's value overflowed (a RuntimeWarning in numpy;
    # in JAX an inf whose 0 * inf = NaN poisoned the gradient, in float32 from
    # 89 mS/cm^2 on).
    space = ParamSpace.create(
        TRUTH, ["g_na", "g_k"], {"g_na": (2e4, 9e4), "g_k": (50.0, 200.0)}
    )
    assert not space.log.any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        starts = space.sample(8, 0)
        back = space.values_np(space.to_z(starts))
    np.testing.assert_allclose(back, starts, rtol=1e-9)
    for dtype in (jnp.float32, jnp.float64):
        z = jnp.asarray(space.to_z(np.array([5e4, 120.0])), dtype)
        grad = jax.grad(lambda z: jnp.sum(space.values(z)))(z)
        assert np.all(np.isfinite(grad)) and np.all(grad > 0), (dtype, grad)


# -------------------------------------------------------------------------- data
def test_fit_data_windows_exclusions_and_weights(current):
    v = np.stack([np.full(current.size, -65.0)] * 2)
    data = fitting.FitData.from_arrays(
        v, np.stack([current] * 2), DT, windows=[(10.0, 30.0)], exclude=[(12.0, 13.0)],
        weights=[1.0, 3.0],
    )  # fmt: skip
    t = data.t
    expected = (t >= 10.0) & (t < 30.0) & ~((t >= 12.0) & (t < 13.0))
    np.testing.assert_array_equal(data.mask[1], expected)
    arrays = data.arrays()
    assert arrays.v.shape == (current.size, 2)
    np.testing.assert_allclose(np.asarray(arrays.w)[:, 1], 3.0 * expected)
    with pytest.raises(ValueError, match="one per sweep"):
        fitting.FitData.from_arrays(v, np.stack([current] * 2), DT, weights=[1.0])
    with pytest.raises(ValueError, match="no samples"):
        fitting.FitData.from_arrays(v[0], current, DT, windows=[(100.0, 200.0)])


def test_current_in_pa_is_converted_and_c_m_cannot_be_fitted(noisy):
    recording = Recording(
        dt=DT, v=noisy.v, i=noisy.i * 50.0, i_unit="pA", c_pf=50.0, source="pA"
    )
    data = fitting.FitData.from_recording(recording, c_m=1.0)
    np.testing.assert_allclose(data.i, noisy.i)
    arrays = fitting.FitData.from_arrays(
        noisy.v, noisy.i * 50.0, DT, i_unit="pA", c_pf=50.0, c_m=2.0
    )  # the same from arrays (an unknown keyword before), here with c_m 2 uF/cm^2
    np.testing.assert_allclose(arrays.i, 2.0 * noisy.i)
    with pytest.raises(ValueError, match="c_m"):
        fitting.fit(recording, ["g_na", "c_m"], n_starts=1, progress=False)


# ------------------------------------------------------------------ gate driving
def test_linear_recurrence_matches_a_loop():
    rng = np.random.default_rng(0)
    for n in (1, 2, 17, 1000):
        a, b = rng.uniform(0, 1, (n, 3)), rng.normal(size=(n, 3))
        x = [rng.normal(size=3)]
        for k in range(n):
            x.append(a[k] * x[-1] + b[k])
        got = linear_recurrence(jnp.asarray(a), jnp.asarray(b), jnp.asarray(x[0]))
        np.testing.assert_allclose(np.asarray(got), np.array(x), atol=1e-12)


def test_gates_driven_by_recorded_v_follow_the_simulated_gates(current):
    state0 = hhjax.resting_state(TRUTH, current[0])
    trace = hhjax.simulate(TRUTH, current, DT, state0=state0)
    gates = fitting.gates_from_voltage(TRUTH, trace.v, DT)
    for name in ("m", "h", "n"):
        err = np.max(np.abs(np.asarray(gates[name]) - np.asarray(getattr(trace, name))))
        assert err < 5e-3, (name, err)


# ------------------------------------------------------------- losses, derivatives
def _head(data, n):
    """The first ``n`` samples of ``data``."""
    return fitting.FitData.from_arrays(data.v[:, :n], data.i[:, :n], data.dt)


def test_forward_and_reverse_gradients_agree(noisy):
    """Forward mode (n + 1 JVPs, one for all window offsets) equals jax.grad."""
    noisy = _head(noisy, 801)
    space = ParamSpace.create(TRUTH, FREE)
    stage = fitting.Shooting((2.0,)).stages(noisy.n_samples, 1, DT, "rk4")[0]
    z = jnp.asarray(space.to_z(np.array([110.0, 40.0, 0.25, -60.0])))
    delta = jnp.asarray(
        np.random.default_rng(0).normal(0, 0.5, stage.delta_shape or (0,))
    )
    p = {"z": z, "delta": delta}
    arrays = noisy.arrays()
    value_f, grad_f = _value_and_grad(stage, space, "forward")(p, arrays)
    value_r, grad_r = jax.value_and_grad(
        lambda q: fitting._losses.stage_value(
            stage, space.params_from_z(q["z"]), q["delta"], arrays
        )
    )(p)
    np.testing.assert_allclose(value_f, value_r, rtol=1e-12)
    np.testing.assert_allclose(grad_f["z"], grad_r["z"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(grad_f["delta"], grad_r["delta"], rtol=1e-8, atol=1e-12)


def test_levenberg_marquardt_steps_are_bounded_far_from_the_optimum(noisy):
    """From a start 10x off, no iteration moves a conductance by more than the
    allowed factor (a Gauss-Newton step would jump much further)."""
    noisy = _head(noisy, 801)
    space = ParamSpace.create(TRUTH, ["g_k", "g_l"])
    stage = fitting.Shooting((2.0,)).stages(noisy.n_samples, 1, DT, "rk4")[0]
    method = levenberg_marquardt(stage, space)
    arrays = noisy.arrays()
    state = method.init(
        jnp.asarray(space.to_z(np.array([3.6, 3.0]))), jnp.zeros(stage.delta_shape),
        arrays,
    )  # fmt: skip
    cap = fitting._optim._MAX_LOG_STEP
    lin = linearise(stage, space.params_from_z, state.z, state.delta, arrays)
    undamped, _ = _lm_solve(normal_equations(lin), state.lam)
    assert float(space.step_size(state.z, undamped, cap, 0.05)) > 1.5  # too long
    step = jax.jit(method.step)
    values, losses = [space.values_np(state.z)], []
    for _ in range(7):  # the first evaluates the start
        state = step(state, arrays)
        values.append(space.values_np(state.z))
        losses.append(float(state.loss))
    ratios = np.abs(np.diff(np.log(values), axis=0))
    assert ratios.max() <= 1.05 * cap
    assert float(state.loss) < 0.5 * losses[0]  # and the fit still made progress


@pytest.mark.parametrize("offsets", [False, True])
def test_convergence_potential_is_the_gain_of_the_exact_least_squares_step(offsets):
    """The stopping measure of Levenberg–Marquardt equals, for linear residuals,
    the decrease of the sum of squares at the exact least-squares solution (window
    offsets included)."""
    rng = np.random.default_rng(3)
    n, length, windows = 2, 6, 4
    r = rng.normal(size=(length, windows))
    jz = rng.normal(size=(n, length, windows))
    s = rng.normal(size=(length, windows)) if offsets else None
    c = rng.uniform(0.5, 1.0, windows) if offsets else None
    prior = rng.normal(size=windows) if offsets else None
    lin = _Linearisation(
        r=jnp.asarray(r), norm=jnp.asarray(1.0), prior=prior, jz=jnp.asarray(jz),
        s=s, c=c,
    )  # fmt: skip
    potential = float(_potential(normal_equations(lin)))
    # Dense least squares in all unknowns: (z, delta).
    cols = [jz[k].ravel() for k in range(n)]
    rows = r.ravel()
    if offsets:
        block = np.zeros((length * windows, windows))
        for w in range(windows):
            block[w::windows, w] = s[:, w]
        dense = np.column_stack([*cols, *block.T])
        dense = np.vstack([dense, np.hstack([np.zeros((windows, n)), np.diag(c)])])
        rows = np.concatenate([rows, prior])
    else:
        dense = np.column_stack(cols)
    x = np.linalg.lstsq(dense, -rows, rcond=None)[0]
    gain = rows @ rows - np.sum((rows + dense @ x) ** 2)
    np.testing.assert_allclose(potential, gain, rtol=1e-9)


@pytest.mark.parametrize("window", [2.5, 10.0])
def test_levenberg_marquardt_schur_step_solves_the_full_normal_equations(noisy, window):
    """Eliminating the window offsets window by window gives the step of the
    dense damped normal equations in all unknowns."""
    noisy = _head(noisy, 401)
    space = ParamSpace.create(TRUTH, ["g_k", "g_l"])
    stage = fitting.Shooting((window,)).stages(noisy.n_samples, 1, DT, "rk4")[0]
    arrays = noisy.arrays()
    z = jnp.asarray(space.to_z(np.array([30.0, 0.4])))
    delta = jnp.full(stage.delta_shape, 0.3)
    lam = 0.1

    @jax.jit
    def schur_step(z, delta):
        lin = linearise(stage, space.params_from_z, z, delta, arrays)
        return _lm_solve(normal_equations(lin), jnp.asarray(lam))

    step_z, step_d = schur_step(z, delta)

    def all_residuals(x):
        r, prior, _ = stage.residuals(
            space.params_from_z(x[:2]), x[2:].reshape(delta.shape), arrays
        )
        return jnp.concatenate([r.ravel(), prior.ravel()])

    @jax.jit
    def dense_step(x0):
        jac = jax.jacfwd(all_residuals)(x0)
        a = jac.T @ jac
        damped = a + lam * jnp.diag(jnp.diag(a))
        return jnp.linalg.solve(damped, -jac.T @ all_residuals(x0))

    dense = dense_step(jnp.concatenate([z, delta.ravel()]))
    np.testing.assert_allclose(step_z, dense[:2], rtol=1e-6)
    np.testing.assert_allclose(step_d.ravel(), dense[2:], rtol=1e-6, atol=1e-9)


def test_non_finite_simulations_give_a_finite_capped_loss(noisy):
    stage = fitting.Shooting((2.0,)).stages(noisy.n_samples, 1, DT, "rk4")[0]
    unstable = TRUTH._replace(g_na=5000.0, c_m=0.1)  # RK4 blows up at dt 0.025
    value = fitting._losses.stage_value(
        stage, unstable, jnp.zeros(stage.delta_shape), noisy.arrays()
    )
    assert np.isfinite(float(value)) and float(value) > 10.0  # noise: 0.25 mV^2


def test_window_stages_followed_by_window_stages_use_the_coarse_integrator(noisy):
    """A window stage followed by another window stage has the residuals of the
    coarse method (the same as a fit run with it); the stage before the whole
    sweep, the last stage, and every stage of a fit whose method is of no higher
    order than the coarse one use the fit's method."""
    noisy = _head(noisy, 801)
    space = ParamSpace.create(TRUTH, FREE)
    params = space.params(np.array([110.0, 40.0, 0.25, -60.0]))
    arrays = noisy.arrays()

    def residuals(loss, method, k):
        stage = loss.stages(noisy.n_samples, 1, DT, method)[k]
        delta = None if stage.delta_shape is None else jnp.zeros(stage.delta_shape)
        return stage.label, np.asarray(stage.residuals(params, delta, arrays)[0])

    default = fitting.Shooting((2.0, 10.0, None))
    plain = fitting.Shooting((2.0, 10.0, None), coarse_method=None)
    label, r = residuals(default, "rk4", 0)
    assert label == "2 ms windows, exp_midpoint"
    np.testing.assert_array_equal(r, residuals(plain, "exp_midpoint", 0)[1])
    assert np.abs(r - residuals(plain, "rk4", 0)[1]).max() > 1e-6
    for k, expected in ((1, "10 ms windows"), (2, "whole sweep")):
        label, r = residuals(default, "rk4", k)
        assert label == expected
        np.testing.assert_array_equal(r, residuals(plain, "rk4", k)[1])
    before_whole = fitting.Shooting((2.0, None))
    label, r = residuals(before_whole, "rk4", 0)
    assert label == "2 ms windows"
    np.testing.assert_array_equal(r, residuals(plain, "rk4", 0)[1])
    label, r = residuals(default, "exp_euler", 0)  # first order: not coarsened
    assert label == "2 ms windows"
    np.testing.assert_array_equal(r, residuals(plain, "exp_euler", 0)[1])
    with pytest.raises(ValueError, match="coarse_method"):
        fitting.Shooting(coarse_method="rk5")
    # A window longer than the data is one window, and its label says so (it
    # read "50 ms windows"); one shorter than a sample is refused (it was one
    # sample long).
    (stage,) = fitting.Shooting((50.0,)).stages(noisy.n_samples, 1, DT, "rk4")
    assert stage.label == "one 20 ms window (50 asked)"
    with pytest.raises(ValueError, match=r"`windows_ms\[0\]` \(0.001 ms\) is shorter"):
        fitting.Shooting((0.001,)).stages(noisy.n_samples, 1, DT, "rk4")


def test_voltage_error_has_a_zero_tangent_past_a_blow_up():
    # Past a numerical blow-up V can be finite but huge with an infinite tangent;
    # the capped residual must then have a zero (not NaN) derivative, or every
    # forward-mode Jacobian of the window is NaN and Levenberg-Marquardt freezes.
    simulated = jnp.array([-70.0, 1e300, -1e300, jnp.nan])
    tangent = jnp.array([1.0, jnp.inf, -jnp.inf, jnp.nan])
    recorded = jnp.full(4, -65.0)
    value, slope = jax.jvp(
        lambda v: fitting._losses.voltage_error(v, recorded), (simulated,), (tangent,)
    )
    cap = fitting._losses.V_CAP
    np.testing.assert_array_equal(value, [-5.0, cap + 65.0, -cap + 65.0, cap + 65.0])
    np.testing.assert_array_equal(slope, [1.0, 0.0, 0.0, 0.0])


# -------------------------------------------------------------------------- fits
def test_regression_is_exact_on_clean_data(clean):
    result = fitting.regression(clean, ["g_na", "g_k", "g_l"])
    err = result.final_values[0] / _truth(("g_na", "g_k", "g_l")) - 1
    assert np.max(np.abs(err)) < 0.01, err


def test_shooting_fit_recovers_parameters_from_every_start(shooting_fit):
    result = shooting_fit
    err = np.abs(result.final_values / _truth() - 1).max(axis=1)
    assert err[result.best] < 0.01 and np.all(err < 0.02), err
    start_err = np.abs(result.start_values / _truth() - 1)
    assert start_err.max() > 0.2  # the starts really were far off
    assert result.loss < 0.4  # noise variance 0.25 mV^2
    n_records = result.loss_history.shape[0]
    assert result.loss_history.shape == (n_records, 4)
    assert result.value_history.shape == (n_records, 4, 4)
    assert set(result.stage_of) == {0, 1, 2}
    unc = result.uncertainty
    assert unc is not None and not unc.undetermined
    assert np.all(unc.std_errors / _truth() < 0.01)
    z = (result.final_values[result.best] - _truth()) / unc.std_errors
    assert np.all(np.abs(z) < 4), z  # truth within a few standard errors
    assert 0.4 < unc.noise < 0.6  # noise s.d. 0.5 mV


def test_laplace_noise_is_in_mv_whatever_the_sweep_weights(noisy):
    # Weights (4, 4) doubled the reported noise; the standard errors never moved.
    from fitting._uncertainty import laplace

    two = np.stack([noisy.v[0], noisy.v[0]]), np.stack([noisy.i[0], noisy.i[0]])
    space = ParamSpace.create(TRUTH, ["g_na", "g_k"])
    (stage,) = fitting.TraceMSE().stages(noisy.n_samples, 2, DT, "rk4")
    results = [
        laplace(
            stage,
            space,
            space.base_values(),
            np.zeros(0),
            fitting.FitData.from_arrays(*two, DT, weights=w).arrays(),
        )  # fmt: skip
        for w in ([1.0, 1.0], [4.0, 4.0])
    ]
    assert results[1].noise == pytest.approx(results[0].noise, rel=1e-9)
    assert 0.4 < results[0].noise < 0.6  # noise s.d. 0.5 mV
    np.testing.assert_allclose(results[1].std_errors, results[0].std_errors, rtol=1e-9)


def test_mixed_precision_ends_where_the_float64_fit_ends(shooting_fit, noisy):
    # Same fit as `shooting_fit` (float64), its window stages in float32.
    mixed = fitting.fit(noisy, FREE, n_starts=4, seed=1, dtype="mixed", progress=False)
    assert mixed.settings["dtype"] == "mixed"
    stage0_end = [np.flatnonzero(r.stage_of == 0)[-1] for r in (shooting_fit, mixed)]
    after_stage0 = [
        r.value_history[k]
        for r, k in zip((shooting_fit, mixed), stage0_end, strict=True)
    ]
    # The first stage really ran in another precision (its path differs)...
    assert np.max(np.abs(after_stage0[1] / after_stage0[0] - 1)) > 1e-9
    # ...and the float64 last stage takes every start to the same optimum.
    np.testing.assert_allclose(mixed.final_values, shooting_fit.final_values, rtol=1e-4)
    assert mixed.loss == pytest.approx(shooting_fit.loss, rel=1e-6)
    assert mixed.uncertainty is not None


def test_laplace_flags_parameters_the_data_cannot_separate(noisy):
    """Temperature and q10 enter only through q10 ** ((T − 6.3) / 10): one
    direction of JᵀJ is null, so both are undetermined."""
    space = ParamSpace.create(
        TRUTH, ["temperature", "q10", "g_l"], {"temperature": (0.0, 30.0)}
    )
    stage = fitting.Shooting((2.0,)).stages(noisy.n_samples, 1, DT, "rk4")[0]
    unc = fitting._uncertainty.laplace(
        stage, space, np.array([16.3, 3.0, 0.3]), np.zeros(stage.delta_shape),
        noisy.arrays(),
    )  # fmt: skip
    assert set(unc.undetermined) >= {"temperature", "q10"}
    assert "g_l" not in unc.undetermined


def test_custom_loss_with_adam_reduces_the_loss(noisy):
    def mse(trace, data):
        return jnp.sum(data.w * (trace.v - data.v) ** 2) / jnp.sum(data.w)

    result = fitting.fit(
        noisy, ["g_l", "e_l"], loss=mse, optimizer="adam", max_iterations=40,
        n_starts=2, spread=1.2, progress=False,
    )  # fmt: skip
    first, last = result.loss_history[0], result.losses
    assert np.all(last < first)
    assert result.uncertainty is None  # a scalar loss has no residuals


def test_custom_loss_of_the_wrong_form_is_named(noisy):
    def one_argument(trace):
        return jnp.sum(trace.v)

    with pytest.raises(
        TypeError,
        match=r"called as fn\(trace, data\); .*one_argument\(trace\) cannot be",
    ):
        fitting.fit(noisy, ["g_l"], loss=one_argument)

    def per_sample(trace, data):
        return (trace.v - data.v) ** 2

    with pytest.raises(
        ValueError,
        match=r"must return a scalar; .*per_sample returned "
        r"shape \(\d+, 1\)",
    ):
        fitting.fit(
            noisy,
            ["g_l"],
            loss=per_sample,
            n_starts=2,
            max_iterations=3,
            progress=False,
        )


def test_result_file_round_trip(shooting_fit, tmp_path):
    with pytest.raises(ValueError, match=r"must end in .json; got '.*params.toml'"):
        shooting_fit.save(tmp_path / "params.toml")
    assert not (tmp_path / "params.toml").exists()
    path = shooting_fit.save(tmp_path / "params.json")
    params, document = fitting.load_result(path)
    assert isinstance(params, hhjax.HHParams)
    for name in FREE:
        assert getattr(params, name) == pytest.approx(shooting_fit.values[name])
    assert document["model"] == "hh"
    assert document["units"]["g_na"] == "mS/cm^2"
    assert set(document["uncertainty"]["std_errors"]) == set(FREE)
    assert len(document["history"]["loss"]) == shooting_fit.loss_history.shape[0]
    np.testing.assert_array_equal(  # the values too (only the losses were kept)
        document["history"]["values"], shooting_fit.value_history
    )
    assert {"jax", "optax", "hhjax"} <= set(document["versions"])
    json.dumps(document)  # plain JSON, no NaN


def test_report_figure(shooting_fit, noisy, tmp_path):
    v_model = fitting.simulate_data(shooting_fit.params, noisy)
    path = fitting.save_report(shooting_fit, noisy, v_model, tmp_path / "r.png")
    assert path.stat().st_size > 20_000
    # A transposed trace failed inside matplotlib; a .jpg name got PNG bytes.
    with pytest.raises(ValueError, match=r"`v_model` must be \(n_sweeps, n_samples\)"):
        fitting.report_figure(shooting_fit, noisy, v_model.T)
    with pytest.raises(ValueError, match=r"must end in \.png; got .*r\.jpg"):
        fitting.save_report(shooting_fit, noisy, v_model, tmp_path / "r.jpg")
    assert not (tmp_path / "r.jpg").exists()


# ------------------------------------------------------------------------ resume
@pytest.mark.parametrize("optimizer", ["lm", "adam"])
def test_interrupted_fit_resumes_to_the_uninterrupted_result(
    noisy, tmp_path, optimizer
):
    settings = {
        "loss": fitting.Shooting((2.0,)),
        "optimizer": optimizer,
        "n_starts": 3,
        "seed": 2,
        "max_iterations": 12 if optimizer == "lm" else 40,
        "progress": False,
        "uncertainty": False,
    }
    reference = fitting.fit(noisy, FREE, **settings)
    checkpoint = tmp_path / "fit.npz"

    def stop_early(info):
        if info["iteration"] >= (5 if optimizer == "lm" else 20):
            raise KeyboardInterrupt

    with pytest.raises(fitting.FitInterrupted):
        fitting.fit(noisy, FREE, checkpoint=checkpoint, callback=stop_early, **settings)
    assert checkpoint.exists()
    resumed = fitting.fit(noisy, FREE, checkpoint=checkpoint, **settings)
    assert resumed.resumed_at is not None
    np.testing.assert_allclose(resumed.final_values, reference.final_values, rtol=1e-12)
    np.testing.assert_allclose(resumed.loss_history, reference.loss_history, rtol=1e-12)
    with pytest.raises(ValueError, match="different fit"):
        fitting.fit(noisy, FREE, checkpoint=checkpoint, **{**settings, "seed": 3})


def _scaled_mse(scale):
    """A custom loss; every scale gives a function of the same qualified name."""

    def mse(trace, data):
        return scale * jnp.sum(data.w * (trace.v - data.v) ** 2) / jnp.sum(data.w)

    return mse


def test_checkpoint_of_another_custom_optimizer_or_loss_is_refused(noisy, tmp_path):
    import optax

    data = _head(noisy, 201)
    checkpoint = tmp_path / "fit.npz"
    settings = {
        "n_starts": 2, "max_iterations": 20, "progress": False, "uncertainty": False,
        "checkpoint": checkpoint,
    }  # fmt: skip

    def stop_early(info):
        if info["iteration"] >= 10:
            raise KeyboardInterrupt

    with pytest.raises(fitting.FitInterrupted):
        fitting.fit(
            data, ["g_l", "e_l"], loss=_scaled_mse(1.0), optimizer=optax.adam(1e-3),
            callback=stop_early, **settings,
        )  # fmt: skip
    # Same types and function names, other learning rate / other loss: refused.
    for optimizer, scale in [(optax.adam(0.5), 1.0), (optax.adam(1e-3), 2.0)]:
        with pytest.raises(ValueError, match="different fit") as info:
            fitting.fit(
                data, ["g_l", "e_l"], loss=_scaled_mse(scale), optimizer=optimizer,
                **settings,
            )  # fmt: skip
        assert "resume=False" in str(info.value) and "--no-resume" in str(info.value)
    # Equal ones (new objects): resumed.
    resumed = fitting.fit(
        data, ["g_l", "e_l"], loss=_scaled_mse(1.0), optimizer=optax.adam(1e-3),
        **settings,
    )  # fmt: skip
    assert resumed.resumed_at == 10


def test_checkpoint_of_a_finished_fit_with_another_built_in_optimizer_is_refused(
    noisy, tmp_path
):
    # "adam" and "lbfgs" are both optax objects of one type: a finished Adam
    # checkpoint was returned as the L-BFGS fit.
    kw = {
        "loss": "mse", "n_starts": 1, "max_iterations": 3, "progress": False,
        "uncertainty": False, "checkpoint": tmp_path / "fit.npz",
    }  # fmt: skip
    data = _head(noisy, 201)
    fitting.fit(data, ["g_l", "e_l"], optimizer="adam", **kw)
    with pytest.raises(ValueError, match="different fit"):
        fitting.fit(data, ["g_l", "e_l"], optimizer="lbfgs", **kw)


def test_starts_that_never_moved_are_reported(noisy):
    # The default Adam's first step (0.05 in z) overshoots from a start near the
    # optimum, and the loss never comes back below the start's: the fit returned
    # the start as its result without a word.
    data = _head(noisy, 1201)
    with pytest.warns(
        RuntimeWarning, match=r"1 of 1 starts ended at their starting values"
    ):
        result = fitting.fit(
            data, ["g_na", "g_k"], loss="mse", optimizer="adam", init=[[118.0, 35.5]],
            max_iterations=20, progress=False, uncertainty=False,
        )  # fmt: skip
    np.testing.assert_allclose(result.final_values, [[118.0, 35.5]], rtol=1e-9)


@dataclasses.dataclass(frozen=True)
class _Shifted(fitting.Loss):
    """The residual loss of docs/fitting.md: V shifted by `shift` mV."""

    shift: float = 0.0  # mV
    name: str = "shifted"

    def stages(self, n_samples, n_sweeps, dt, method):
        def residuals(params, delta, data):
            rest = hhjax.resting_state(params, data.i[0])
            v = hhjax.simulate(
                params, data.i, dt, state0=rest, method=method, check_inputs=False
            ).v
            return jnp.sqrt(data.w) * (v - data.v - self.shift), None, jnp.sum(data.w)

        return (fitting.Stage("shifted", residuals, None, None),)


class _MutableShift(fitting.Loss):
    """The same as a plain class, whose attribute a user may change."""

    name = "mutable"

    def __init__(self, shift):
        self.shift = shift

    def stages(self, n_samples, n_sweeps, dt, method):
        return _Shifted(self.shift).stages(n_samples, n_sweeps, dt, method)


def test_a_residual_loss_of_ones_own(noisy):
    # The docs' example fits by Levenberg-Marquardt with standard errors; a plain
    # class changed between two fits is not served the first one's compiled
    # program (its hash is its identity).
    data = _head(noisy, 401)
    kw = {"init": [[110.0, 33.0]], "max_iterations": 5, "progress": False}
    shifted = fitting.fit(data, ["g_na", "g_k"], loss=_Shifted(0.0), **kw)
    assert shifted.uncertainty is not None and shifted.loss < 1.0
    kw["uncertainty"] = False
    loss = _MutableShift(0.0)
    first = fitting.fit(data, ["g_na", "g_k"], loss=loss, **kw).loss
    loss.shift = 10.0
    second = fitting.fit(data, ["g_na", "g_k"], loss=loss, **kw).loss
    assert first == pytest.approx(shifted.loss, rel=1e-9)
    assert second > 50.0  # about (10 mV)^2


def test_custom_loss_settings_name_no_memory_address():
    # A repr holds an address that differs in every process: a checkpointed fit
    # with such a loss could never resume.
    import functools

    from fitting._losses import get_loss

    def weighted(trace, data, w):
        return w * jnp.sum(data.w * (trace.v - data.v) ** 2)

    settings = [get_loss(functools.partial(weighted, w=2.0)).settings() for _ in "ab"]
    assert settings[0] == settings[1]
    assert "0x" not in json.dumps(settings[0])


def test_resuming_a_finished_fit_compiles_nothing(noisy, tmp_path, monkeypatch):
    data = _head(noisy, 401)
    settings = {
        "loss": "regression", "n_starts": 2, "max_iterations": 3,
        "progress": False, "uncertainty": False, "checkpoint": tmp_path / "fit.npz",
    }  # fmt: skip
    done = fitting.fit(data, FREE, **settings)

    def no_compilation(self, index):
        raise AssertionError("a finished fit compiled a stage")

    monkeypatch.setattr(fitting._run.Run, "_build", no_compilation)
    again = fitting.fit(data, FREE, **settings)
    assert again.resumed_at is not None
    np.testing.assert_array_equal(again.final_values, done.final_values)


def test_levenberg_marquardt_needs_two_iterations_to_take_a_step(noisy):
    # The first iteration only evaluates the start: one iteration would do nothing.
    with pytest.raises(ValueError, match="max_iterations` >= 2"):
        fitting.fit(noisy, ["g_na"], optimizer="lm", max_iterations=1, progress=False)


# ----------------------------------------------------------------------- metrics
def test_spike_detection_counts_noisy_crossings_once():
    v = np.full(400, -65.0)
    v[100:104] = [-5.0, 0.5, -0.5, 30.0]  # noise around 0 mV on the upstroke
    v[104:110] = -20.0
    v[300:303] = [-3.0, 10.0, -70.0]
    times = fitting.spike_times(v, 0.1)
    np.testing.assert_allclose(times, [(100 + 5 / 5.5) * 0.1, (300 + 3 / 13) * 0.1])


@pytest.mark.parametrize(
    ("v", "dt", "message"),
    [
        (np.zeros((20, 2)), 0.1, r"`v` must be one trace of shape \(n_samples,\)"),
        (np.zeros(20), 0.0, r"`dt` must be a positive sampling interval in ms"),
        (np.zeros(20), -1.0, r"`dt` must be a positive"),
    ],
)
def test_spike_detection_rejects_bad_input(v, dt, message):
    with pytest.raises(ValueError, match=message):
        fitting.spike_times(v, dt)


def test_swapped_or_wrong_arguments_are_named(noisy):
    # They failed with AttributeErrors ('HHParams' object has no attribute ...).
    with pytest.raises(TypeError, match=r"swapped: call fitting.metrics\(data, params"):
        fitting.metrics(TRUTH, noisy)
    with pytest.raises(TypeError, match=r"swapped: call fitting.simulate_data\(params"):
        fitting.simulate_data(noisy, TRUTH)
    with pytest.raises(TypeError, match=r"`data` must be a fitting.FitData .*got str"):
        fitting.metrics("sweeps.npz", TRUTH)


def test_metrics_of_the_truth(noisy):
    doc = fitting.metrics(noisy, TRUTH)
    (row,) = doc["sweeps"]
    assert row["sweep"] == 0
    assert row["spikes_data"] == row["spikes_model"] == row["matched_spikes"] >= 3
    assert row["subthreshold_rmse_mV"] == pytest.approx(0.5, rel=0.2)
    assert row["spike_time_mae_ms"] < 0.05
    assert doc["threshold_mV"] == 0.0


def test_coincidence_factor_counts_the_analysed_time_only():
    # Windows 0-20 and 40-60 ms: 40 ms analysed. The 20 ms gap between them was
    # counted, which lowers the chance coincidences Kistler's Γ subtracts.
    dt = 0.1

    def spikes_at(times_ms):
        v = np.full(600, -65.0)
        for t in times_ms:
            v[round(t / dt) : round(t / dt) + 5] = 20.0
        return v

    data_windows = [(0.0, 20.0), (40.0, 60.0)]
    data = fitting.FitData.from_arrays(
        spikes_at([5.0, 45.0]), np.zeros(600), dt, windows=data_windows
    )
    doc = fitting.metrics(data, TRUTH, v_model=spikes_at([5.5, 15.0, 50.0])[None])
    (row,) = doc["sweeps"]
    assert (row["spikes_data"], row["spikes_model"], row["matched_spikes"]) == (2, 3, 1)
    rate = 3 / 40.0  # model spikes per analysed ms
    chance = 2 * rate * 2.0 * 2  # expected coincidences within 2 ms by chance
    gamma = (1 - chance) / (0.5 * (2 + 3)) / (1 - 2 * rate * 2.0)
    assert row["coincidence_factor"] == pytest.approx(gamma, rel=1e-12)
    # Identical trains: 1 (3 spikes in 40 ms came out as 1.0000000000000002).
    v = spikes_at([5.0, 15.0, 45.0])
    same = fitting.FitData.from_arrays(v, np.zeros(600), dt, windows=data_windows)
    (row,) = fitting.metrics(same, TRUTH, v_model=v[None])["sweeps"]
    assert row["coincidence_factor"] == 1.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: fitting.synthetic_data(TRUTH, d.i[0], DT, noise_mv=-1.0),
         r"`noise_mv` must be a finite standard deviation >= 0 in mV; got -1"),
        (lambda d: fitting.synthetic_data(TRUTH, d.i[0], DT, seed=-1),
         r"`seed` must be an integer >= 0; got -1"),
        (lambda d: fitting.synthetic_data(TRUTH, d.i[None], DT),
         r"`i_ext` must be \(n_samples,\) or \(n_sweeps, n_samples\)"),
        (lambda d: fitting.synthetic_data(TRUTH._replace(g_na=np.ones(2)), d.i[0], DT),
         r"`params` must hold one real number per parameter"),
        (lambda d: fitting.gates_from_voltage(TRUTH, d.v[0], -DT),
         r"`dt` must be a positive sampling interval in ms; got -0.025"),
        (lambda d: fitting.CustomLoss(lambda trace, data: 0.0, start="zz"),
         r"`start` must be 'rest' or 'data'; got 'zz'"),
        (lambda d: fitting.simulate_data(TRUTH, d, dtype="float16"),
         r"`dtype` must be 'float64' or 'float32'; got 'float16'"),
        (lambda d: fitting.simulate_data(TRUTH, d, start="bogus"),
         r"`start` must be 'rest' or 'data'; got 'bogus'"),
        (lambda d: fitting.metrics(d, TRUTH, threshold=np.nan),
         r"`threshold` must be a finite voltage in mV; got nan"),
    ],
)  # fmt: skip
def test_bad_arguments_are_named(noisy, call, message):
    # They were accepted silently (a negative noise, a float16 run in float32,
    # 'bogus' as 'data', NaN as no spikes, gates far outside [0, 1]) or failed
    # in NumPy.
    with pytest.raises(ValueError, match=message):
        call(_head(noisy, 201))


def test_total_subthreshold_rmse_counts_a_perfect_sweep():
    v = np.full((2, 200), -65.0)
    data = fitting.FitData.from_arrays(v, np.zeros_like(v), 0.1)
    both = fitting.metrics(data, TRUTH, v_model=v + np.array([[0.0], [2.0]]))
    assert [r["subthreshold_rmse_mV"] for r in both["sweeps"]] == [0.0, 2.0]
    assert both["total"]["mean_subthreshold_rmse_mV"] == pytest.approx(1.0)
    one = fitting.metrics(data, TRUTH, v_model=v)
    assert one["total"]["mean_subthreshold_rmse_mV"] == 0.0


def _rest_and_spiking_at_coarse_dt():
    """Sweep 0 at rest, sweep 1 driven to spike, sampled at 0.1 ms: rk4 at that
    step keeps sweep 0 at rest but blows up on the spike of sweep 1."""
    t = 0.1 * np.arange(200)
    i = np.stack([np.zeros_like(t), np.where(t >= 2.0, 10.0, 0.0)])
    return fitting.FitData.from_arrays(np.full(i.shape, -65.0), i, 0.1)


@pytest.mark.filterwarnings("ignore::hhjax.StepSizeWarning")
def test_simulate_sweeps_flags_the_failed_sweeps_and_substeps_avoid_them():
    data = _rest_and_spiking_at_coarse_dt()
    with pytest.raises(hhjax.NonFiniteSimulationError):
        fitting.simulate_data(TRUTH, data)
    v, failed = simulate_sweeps(TRUTH, data)
    assert failed.tolist() == [False, True]
    assert np.isfinite(v[0]).all() and np.isnan(v[1]).all()
    v10, failed10 = simulate_sweeps(TRUTH, data, substeps=10)
    assert not failed10.any()
    np.testing.assert_allclose(v10, fitting.simulate_data(TRUTH, data, substeps=10))
    assert np.ptp(v10[0]) < 1e-3 and fitting.spike_times(v10[1], 0.1).size >= 1
    with pytest.raises(ValueError, match="substeps"):
        fitting.simulate_data(TRUTH, data, substeps=0)


@pytest.mark.filterwarnings("ignore::hhjax.StepSizeWarning")
def test_metrics_leave_failed_sweeps_out_of_the_totals():
    data = _rest_and_spiking_at_coarse_dt()
    doc = fitting.metrics(data, TRUTH)  # simulates itself, flags sweep 1
    ok, bad = doc["sweeps"]
    assert not ok["simulation_failed"] and ok["spikes_model"] == 0
    assert bad["simulation_failed"] and bad["spikes_data"] == 0
    assert bad["spikes_model"] is bad["rmse_mV"] is bad["matched_spikes"] is None
    assert doc["total"]["failed_sweeps"] == [1]
    assert doc["total"]["mean_subthreshold_rmse_mV"] == ok["subthreshold_rmse_mV"]
    assert doc["total"]["spikes_model"] == 0
    json.dumps(doc, allow_nan=False)
    # A V simulated beforehand: its NaN rows are the failed sweeps.
    v, failed = simulate_sweeps(TRUTH, data)
    again = fitting.metrics(data, TRUTH, v_model=v)
    assert again["sweeps"] == doc["sweeps"] and again["total"] == doc["total"]
    assert fitting.metrics(data, TRUTH, substeps=10)["total"]["failed_sweeps"] == []
    with pytest.raises(ValueError, match="`v_model` must be"):
        fitting.metrics(data, TRUTH, v_model=v[:1])


def test_a_result_at_a_bound_is_marked(noisy):
    # The truth (g_l = 0.3 mS/cm^2) lies below these bounds: the fit ends at 0.5.
    kwargs = {"loss": "regression", "n_starts": 1, "max_iterations": 5}
    kwargs.update(progress=False, uncertainty=False)
    with pytest.warns(UserWarning, match=r"g_l = 0.3 lies outside its bounds"):
        stuck = fitting.fit(noisy, ["g_l"], bounds={"g_l": (0.5, 1.0)}, **kwargs)
    assert stuck.at_bounds() == ["g_l"]
    assert stuck.to_dict()["at_bounds"] == ["g_l"]
    line = next(x for x in stuck.summary().splitlines() if "g_l =" in x)
    assert "at a bound of [0.5, 1] mS/cm^2" in line
    free = fitting.fit(noisy, ["g_l"], **kwargs)
    assert free.at_bounds() == [] and "at a bound" not in free.summary()


# ------------------------------------------- interruptions, errors, bad inputs
def _quick(noisy, **overrides):
    """A tiny one-stage fit (regression loss: no simulation), for the tests of the
    fit's bookkeeping."""
    kwargs = {
        "loss": "regression", "n_starts": 2, "max_iterations": 4, "progress": False,
        "uncertainty": False,
    }  # fmt: skip
    kwargs.update(overrides)
    return fitting.fit(_head(noisy, 201), ["g_na", "g_k"], **kwargs)


def test_too_many_starts_for_the_memory_is_refused_with_a_number_that_fits(
    noisy, monkeypatch
):
    import fitting._memory

    free = {"bytes": None}
    monkeypatch.setattr(fitting._memory, "available_bytes", lambda d: free["bytes"])
    _quick(noisy, n_starts=64)  # memory unknown: no check
    free["bytes"] = 2**16  # 64 starts take ~0.6 MiB
    with pytest.raises(MemoryError) as info:
        _quick(noisy, n_starts=64)
    message = str(info.value)
    assert message.startswith("64 starts need about ") and " MiB at once in " in message
    assert "the host has 0.0625 MiB free: use at most about " in message
    fitting_starts = int(message.split("at most about ")[1].split()[0])
    assert 1 <= fitting_starts < 64
    # A run-time allocation failure (memory taken meanwhile) says the same.
    err = jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating")
    assert "use fewer starts" in str(fitting._memory.out_of_memory(err, 8, "s"))
    assert fitting._memory.out_of_memory(ValueError("other"), 8, "s") is None


def test_an_interrupt_saves_before_it_stops_the_background_compilation(
    noisy, tmp_path, monkeypatch
):
    # The worker was shut down (waiting for a compilation in progress) before the
    # save: a second Ctrl-C in that wait lost the checkpoint.
    checkpoint = tmp_path / "fit.npz"
    closes = []
    close = fitting._run.Run.close

    def spy(self, wait=True):
        closes.append((wait, checkpoint.exists()))
        close(self, wait)

    monkeypatch.setattr(fitting._run.Run, "close", spy)

    def stop(info):
        if info["iteration"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(fitting.FitInterrupted, match="iteration 2; progress saved"):
        _quick(noisy, checkpoint=checkpoint, checkpoint_every=1e9, callback=stop)
    assert closes and closes[0] == (False, True)  # saved first, then no waiting


def test_an_error_keeps_the_progress_and_stops_the_worker(noisy, tmp_path, monkeypatch):
    checkpoint = tmp_path / "fit.npz"
    closes = []
    close = fitting._run.Run.close
    monkeypatch.setattr(
        fitting._run.Run, "close",
        lambda self, wait=True: closes.append(wait) or close(self, wait),
    )  # fmt: skip

    def broken(info):
        if info["iteration"] == 2:
            raise ZeroDivisionError("callback bug")

    with pytest.raises(ZeroDivisionError, match="callback bug"):
        _quick(noisy, checkpoint=checkpoint, checkpoint_every=1e9, callback=broken)
    assert closes  # the worker was stopped, not left compiling
    resumed = _quick(noisy, checkpoint=checkpoint)
    assert resumed.resumed_at == 2  # the record of the start and of iteration 2
    np.testing.assert_array_equal(resumed.final_values, _quick(noisy).final_values)


def test_an_interrupt_while_compiling_is_a_fit_interrupted(noisy, monkeypatch):
    # Before the first iteration (compilation, regression warm start) Ctrl-C gave
    # a bare KeyboardInterrupt with a long traceback.
    def interrupted(self, index):
        raise KeyboardInterrupt

    monkeypatch.setattr(fitting._run.Run, "_build", interrupted)
    with pytest.raises(fitting.FitInterrupted, match="compiling stage 1/1") as info:
        _quick(noisy)
    assert "nothing to save yet" in str(info.value) and info.value.checkpoint is None
    with pytest.raises(fitting.FitInterrupted, match="regression warm start"):
        _quick(noisy, init="regression")


def test_a_lost_interrupt_is_still_seen_between_chunks(noisy, tmp_path):
    # hhjax fit's signal handlers also set this flag: their KeyboardInterrupt can
    # be raised inside a callback that ignores it (JAX's garbage collection).
    def signal_lost(info):
        fitting._interrupt.INTERRUPT_REQUESTED.set()

    try:
        with pytest.raises(fitting.FitInterrupted, match="iteration 1; progress"):
            _quick(noisy, checkpoint=tmp_path / "fit.npz", callback=signal_lost)
    finally:
        fitting._interrupt.INTERRUPT_REQUESTED.clear()


def test_an_interrupt_during_the_uncertainty_estimate_keeps_the_finished_fit(
    noisy, tmp_path, monkeypatch
):
    checkpoint = tmp_path / "fit.npz"

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(fitting._fit, "laplace", interrupted)
    with pytest.raises(fitting.FitInterrupted, match="uncertainty") as info:
        _quick(noisy, checkpoint=checkpoint, uncertainty=True)
    assert info.value.checkpoint == checkpoint
    monkeypatch.undo()
    resumed = _quick(noisy, checkpoint=checkpoint, uncertainty=True)
    assert resumed.resumed_at is not None and resumed.uncertainty is not None


def test_progress_messages_come_before_the_first_progress_line(noisy, capsys):
    _quick(noisy, init="regression", progress=True, loss=fitting.Shooting((2.0,)))
    err = capsys.readouterr().err
    warm, compiling = err.index("warm start"), err.index("compiling stage 1/1")
    assert warm < compiling < err.index("fit: stage 1/1")


def test_fit_data_in_pa_is_converted_with_the_fits_c_m(noisy):
    # FitData loaded with the default c_m = 1 was fitted as it was, whatever
    # params.c_m: the current density I·c_m/C_cell was off by the factor c_m.
    recording = Recording(
        dt=DT, v=noisy.v, i=noisy.i * 50.0, i_unit="pA", c_pf=50.0, source="pA"
    )
    loaded = fitting.FitData.from_recording(
        recording, windows=[(5.0, 50.0)], weights=[2.0]
    )
    data = fitting._fit._as_fit_data(loaded, TRUTH._replace(c_m=2.0))
    np.testing.assert_allclose(data.i, 2.0 * noisy.i)
    assert data.c_m == 2.0
    np.testing.assert_array_equal(data.mask, loaded.mask)
    np.testing.assert_array_equal(data.weights, loaded.weights)
    assert fitting._fit._as_fit_data(loaded, TRUTH) is loaded
    assert data.with_c_m(2.0) is data and noisy.with_c_m(2.0) is noisy  # uA/cm^2


def test_scoring_converts_a_current_in_pa_with_the_params_c_m(noisy):
    # Only fit() converted: metrics and simulate_data of the same FitData used
    # the density of c_m = 1, i.e. scored another input current than was fitted.
    head = _head(noisy, 801)
    recording = Recording(
        dt=DT, v=head.v, i=head.i * 50.0, i_unit="pA", c_pf=50.0, source="pA"
    )
    loaded = fitting.FitData.from_recording(recording)  # converted with c_m = 1
    params = TRUTH._replace(c_m=2.0)
    converted = loaded.with_c_m(2.0)
    np.testing.assert_allclose(converted.i, 2.0 * head.i)
    expected = fitting.simulate_data(params, converted)
    np.testing.assert_array_equal(fitting.simulate_data(params, loaded), expected)
    np.testing.assert_array_equal(simulate_sweeps(params, loaded)[0], expected)
    assert fitting.metrics(loaded, params) == fitting.metrics(converted, params)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"init": np.array([np.nan, 36.0])}, "`init` values must be finite; got nan"),
        ({"init": np.array([[100.0, 30.0], [np.inf, 36.0]])}, r"g_na \(start 1\)"),
        ({"init": TRUTH._replace(g_k=np.nan)}, "finite; got nan for g_k"),
        ({"init": np.array([[100.0, 30.0]])}, "1 explicit starts but `n_starts` is 2"),
        ({"spread": np.inf}, "`spread` must be a finite factor > 1"),
        ({"spread": 1.0}, "`spread` must be a finite factor > 1"),
        ({"tolerance": np.nan}, "`tolerance` must be a finite number >= 0"),
        ({"tolerance": -1.0}, "`tolerance` must be a finite number >= 0"),
        ({"checkpoint_every": "30"}, "`checkpoint_every` must be a number"),
        ({"checkpoint_every": -1.0}, "`checkpoint_every` must be a number"),
        ({"seed": -1}, "`seed` must be an integer >= 0; got -1"),
        ({"seed": 1.5}, "`seed` must be an integer >= 0; got 1.5"),
        ({"seed": True}, "`seed` must be an integer >= 0"),
        ({"n_starts": 2.0}, "`n_starts` must be an integer >= 1"),
        ({"max_iterations": "4"}, "`max_iterations` must be an integer >= 1"),
        ({"model": "xx"}, r"`model` must name the model of `params` \(HHParams\): "),
        ({"model": "pospischil-rs"}, r"one of \['hh'\]; got 'pospischil-rs'"),
        ({"grad_mode": "fwd"}, "`grad_mode` must be 'auto', 'forward' or 'reverse'"),
        (
            {"params": TRUTH._replace(g_na=np.array([100.0, 120.0]), g_k="36")},
            r"`params` must hold one real number per parameter .*; got g_na of "
            r"shape \(2,\), g_k = '36'\.",
        ),
    ],
)
def test_bad_settings_are_refused_before_fitting(noisy, overrides, message):
    def never(info):
        raise AssertionError("the fit ran")

    with pytest.raises(ValueError, match=message):
        _quick(noisy, callback=never, **overrides)


def test_starts_outside_the_bounds_are_named(noisy):
    def never(info):
        raise KeyboardInterrupt  # the warning comes before any iteration

    with (
        pytest.warns(
            UserWarning,
            match=r"`init`: g_na = 1e\+06 lies outside its "
            r"bounds \[.*\]; such starts begin at the nearest bound",
        ),
        pytest.raises(fitting.FitInterrupted),
    ):
        _quick(noisy, init=np.array([1e6, 36.0]), callback=never)
    # Without `init` the starts are centred on the parameters: the same warning
    # (they were silently piled onto the bound).
    with (
        pytest.warns(
            UserWarning,
            match=r"the parameters \(the starts' centre\): g_na = 120 lies outside its bounds \[300, 400\]",
        ),
        pytest.raises(fitting.FitInterrupted),
    ):
        _quick(noisy, bounds={"g_na": (300.0, 400.0)}, callback=never)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: fitting.Shooting(robust_mv=0.0), "`robust_mv` must be a finite"),
        (lambda: fitting.Shooting(robust_mv=np.nan), "`robust_mv` must be a finite"),
        (lambda: fitting.Shooting(windows_ms=(np.inf,)), "finite positive length"),
        # The last stage gives the loss and standard errors: a 2 ms one did.
        (lambda: fitting.Shooting(windows_ms=(None, 2.0)), "must grow from stage"),
        (
            lambda: fitting.Shooting(windows_ms=(20.0, 2.0, None)),
            "must grow from stage",
        ),
        (lambda: fitting.EquationError(block_ms=np.inf), "`block_ms` must be a finite"),
    ],
)
def test_losses_refuse_non_finite_settings(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_real_settings_accept_numpy_and_jax_scalars(noisy):
    # Refused with "must be a finite number >= 0; got Array(1e-06, ...)".
    result = _quick(
        noisy, spread=np.array(3.0), tolerance=jnp.float64(1e-6),
        checkpoint_every=np.array(5.0), init=np.array([100.0, 30.0]),
    )  # fmt: skip
    assert result.settings["spread"] == 3.0 and result.settings["tolerance"] == 1e-6
    assert type(result.settings["tolerance"]) is float
    shooting = fitting.Shooting(
        windows_ms=(jnp.float32(2), None), robust_mv=np.int64(5)
    )
    assert shooting.windows_ms == (2.0, None) and shooting.robust_mv == 5.0
    hash(shooting)  # still a key of the compilation cache
    assert fitting.EquationError(block_ms=np.array(0.5)).block_ms == 0.5
    space = ParamSpace.create(TRUTH, ["g_na"])
    assert space.sample(2, 0, [120.0], np.float32(2.0)).shape == (2, 1)


@pytest.mark.parametrize("bad", [True, "2", 2j, np.array([2.0]), np.array(True)])
def test_real_settings_refuse_bools_strings_and_complex_numbers(bad):
    with pytest.raises(ValueError, match="`spread` must be a finite factor > 1"):
        ParamSpace.create(TRUTH, ["g_na"]).sample(2, 0, [120.0], bad)
    with pytest.raises(ValueError, match=r"`windows_ms\[1\]` must be a finite"):
        fitting.Shooting(windows_ms=(2.0, bad))


def test_numpy_integers_are_accepted_and_explicit_starts_set_n_starts(noisy):
    result = _quick(
        noisy, n_starts=np.int64(2), max_iterations=np.int64(3), seed=np.int32(1)
    )
    assert result.losses.shape == (2,)
    assert result.settings["optimizer"][0]["iterations"] == 3
    assert result.settings["seed"] == 1 and type(result.settings["seed"]) is int
    explicit = _quick(noisy, n_starts=None, init=np.array([[100.0, 30.0]] * 3))
    assert explicit.losses.shape == (3,)


def test_init_params_names_the_default_centre_as_the_cli_does(noisy):
    # docs/fitting.md and `--init params` name it; fitting.fit refused the string.
    named, default = _quick(noisy, init="params"), _quick(noisy)
    np.testing.assert_array_equal(named.start_values, default.start_values)
    with pytest.raises(ValueError, match=r"None \(or 'params'\), 'bounds'"):
        _quick(noisy, init="param")


def test_a_fit_where_no_start_ends_finite_warns(noisy):
    def undefined(trace, data):
        return jnp.nan * jnp.sum(trace.v)

    with pytest.warns(RuntimeWarning, match="no start of the fit ended with a finite"):
        result = _quick(noisy, loss=undefined, optimizer="adam", max_iterations=2)
    assert not np.isfinite(result.losses).any()


def test_an_unusable_checkpoint_path_is_refused_before_fitting(noisy, tmp_path):
    # Found only at the first save, after the work, and the result was lost.
    blocker = tmp_path / "file"
    blocker.write_text("")

    def never(info):
        raise AssertionError("the fit ran")

    with pytest.raises(ValueError, match="is a file, not a directory"):
        _quick(noisy, checkpoint=blocker / "fit.npz", callback=never)
    with pytest.raises(ValueError, match="is a directory"):
        _quick(noisy, checkpoint=tmp_path, callback=never)


def test_a_failed_checkpoint_save_warns_and_the_fit_goes_on(
    noisy, tmp_path, monkeypatch
):
    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fitting._fit, "save_checkpoint", disk_full)
    with pytest.warns(RuntimeWarning, match="No space left on device"):
        result = _quick(noisy, checkpoint=tmp_path / "fit.npz", checkpoint_every=1e-9)
    assert np.isfinite(result.losses).all()


def _failing_save(monkeypatch, error, after=0):
    """Make every save of a checkpoint after the first ``after`` raise ``error``."""
    save = fitting._fit.save_checkpoint
    calls = []

    def flaky(*args):
        calls.append(args)
        if len(calls) > after:
            raise error
        save(*args)

    monkeypatch.setattr(fitting._fit, "save_checkpoint", flaky)


def _stop_at(iteration, error=KeyboardInterrupt):
    def stop(info):
        if info["iteration"] == iteration:
            raise error

    return stop


@pytest.mark.parametrize("after", [0, 1])
def test_a_failed_save_at_an_interrupt_names_the_checkpoint_saved_before(
    noisy, tmp_path, monkeypatch, after
):
    # The message said "could not save" and FitInterrupted.checkpoint was None
    # (the CLI: "start over") though a save of iteration 1 was there to resume.
    checkpoint = tmp_path / "fit.npz"
    _failing_save(monkeypatch, OSError(28, "No space left on device"), after)
    # The save of iteration 1 fails too without an earlier one: a warning.
    warned = pytest.warns(RuntimeWarning) if after == 0 else contextlib.nullcontext()
    with warned, pytest.raises(fitting.FitInterrupted, match="No space") as info:
        _quick(noisy, checkpoint=checkpoint, checkpoint_every=0, callback=_stop_at(2))
    if after:
        assert info.value.checkpoint == checkpoint
        assert "it still holds the progress saved before" in str(info.value)
    else:
        assert info.value.checkpoint is None and not checkpoint.exists()
        assert "saved before" not in str(info.value)


def test_another_error_while_saving_at_an_interrupt_is_no_traceback(
    noisy, tmp_path, monkeypatch
):
    # Only OSError was caught: this RuntimeError replaced the FitInterrupted.
    _failing_save(monkeypatch, RuntimeError("snapshot broke"))
    with pytest.raises(fitting.FitInterrupted, match="RuntimeError: snapshot broke"):
        _quick(noisy, checkpoint=tmp_path / "fit.npz", callback=_stop_at(2))


def test_an_error_says_when_its_progress_could_not_be_saved(
    noisy, tmp_path, monkeypatch
):
    _failing_save(monkeypatch, OSError(28, "No space left on device"))
    with pytest.raises(ZeroDivisionError) as info:
        _quick(
            noisy, checkpoint=tmp_path / "fit.npz",
            callback=_stop_at(2, ZeroDivisionError("callback bug")),
        )  # fmt: skip
    assert info.value.__notes__ == [
        f"(could not save the progress to {tmp_path / 'fit.npz'} (No space left on "
        "device))"
    ]


def test_optax_stages_run_exactly_max_iterations(noisy):
    # Chunks of 10 iterations rounded 15 up to 20 (past the end of the schedule).
    result = _quick(noisy, optimizer="adam", max_iterations=15)
    assert result.loss_history.shape[0] == 15 + 1  # + the point the stage ends at
    assert result.timings[0]["iterations"] == 15


def test_timings_record_the_compilation(noisy):
    result = _quick(noisy, loss=fitting.Shooting((2.0, 4.0)), max_iterations=2)
    assert [t["stage"] for t in result.timings] == [0, 1]
    assert all(t["compile_s"] >= 0.0 for t in result.timings)


@pytest.mark.filterwarnings("ignore:the fit did not converge")  # 2 iterations
def test_regression_checks_the_free_names(noisy):
    data = _head(noisy, 201)
    result = fitting.regression(data, "g_na, g_k", max_iterations=2)
    assert result.free == ("g_na", "g_k")
    with pytest.raises(ValueError, match="Unknown parameter"):
        fitting.regression(data, ["g_na", "gk"], max_iterations=2)
    two = fitting.regression(
        data, "g_na,g_k", init=np.array([[100.0, 30.0], [140.0, 40.0]]),
        max_iterations=2,
    )  # fmt: skip
    assert two.losses.shape == (2,)  # as many starts as given


def test_subthreshold_error_leaves_out_samples_near_a_spike_outside_the_window():
    dt = 0.1
    t = dt * np.arange(400)
    v = np.full((1, t.size), -65.0)
    v[0, 100:103] = [10.0, 30.0, -20.0]  # a spike at 10 ms, before the window
    model = v + np.where((t >= 10.5) & (t < 13.0), 5.0, 0.0)  # off only near it
    data = fitting.FitData.from_arrays(v, np.zeros_like(v), dt, windows=[(10.5, 40.0)])
    row = fitting.metrics(data, TRUTH, v_model=model)["sweeps"][0]
    assert row["spikes_data"] == row["spikes_model"] == 0  # not inside the window
    assert row["subthreshold_rmse_mV"] == 0.0
    assert row["rmse_mV"] > 1.0


def test_the_worker_thread_sees_the_callers_jax_settings():
    # Compilations run in a worker thread (Ctrl-C then stops the wait, not the
    # compiler); the settings a caller scoped to its own thread go with them.
    from fitting._interrupt import in_worker

    def settings():
        return (
            bool(jax.config.jax_enable_x64),
            jax.config.jax_default_matmul_precision,
            bool(jax.config.jax_debug_nans),
            jax.config.jax_numpy_rank_promotion,
        )

    with (
        jax.enable_x64(False),
        jax.default_matmul_precision("highest"),
        jax.debug_nans(True),
        jax.numpy_rank_promotion("raise"),
    ):
        assert in_worker(settings) == settings() == (False, "highest", True, "raise")
    assert in_worker(settings) == settings()


def test_an_implausible_current_density_names_its_likely_cause():
    v = np.full(100, -65.0)
    with pytest.raises(ValueError, match=r"\|I\| = 5000 uA/cm\^2.*: is it in pA\?"):
        fitting.FitData.from_arrays(v, np.full(100, 5000.0), 0.1)
    with pytest.raises(ValueError, match=r"is c_pF = 0.05 pF the cell's capacitance\?"):
        fitting.FitData.from_arrays(v, np.full(100, 500.0), 0.1, i_unit="pA", c_pf=0.05)


def test_a_container_limit_counts_its_anonymous_memory_not_its_page_cache(
    tmp_path, monkeypatch
):
    import fitting._memory

    limit, stat = tmp_path / "memory.max", tmp_path / "memory.stat"
    limit.write_text(f"{8 * 2**30}\n")
    # 7.5 GiB in use, of which 6 GiB page cache the kernel can reclaim.
    stat.write_text(f"anon {3 * 2**29}\nfile {6 * 2**30}\n")
    files = ((str(limit), str(stat), "anon"),)
    monkeypatch.setattr(fitting._memory, "_CGROUP_FILES", files)
    assert fitting._memory._cgroup_free() == 8 * 2**30 - 3 * 2**29
    limit.write_text("max\n")
    assert fitting._memory._cgroup_free() is None


def test_a_converged_fit_is_at_an_optimum(shooting_fit):
    assert shooting_fit.uncertainty.gauss_newton_gain < 1e-6
    assert shooting_fit.convergence_note() is None
    doc = shooting_fit.to_dict()
    assert doc["converged"] is True and doc["convergence_note"] is None


def test_a_fit_that_ran_out_of_iterations_short_of_an_optimum_says_so(noisy):
    # Adam for 3 iterations from g_l, e_l far off: standard errors were printed
    # as if at an optimum, with no word that the fit had not converged.
    with pytest.warns(RuntimeWarning, match=r"did not converge: its last stage .* "
                      r"used all 3 iterations, and one Gauss-Newton step"):  # fmt: skip
        result = fitting.fit(
            _head(noisy, 801), ["g_l", "e_l"], optimizer="adam", max_iterations=3,
            init=[[0.15, -60.0]], progress=False,
        )  # fmt: skip
    assert result.uncertainty.gauss_newton_gain > 0.01
    assert "NOT CONVERGED: its last stage" in result.summary()
    assert result.to_dict()["converged"] is False


def test_a_checkpoint_of_another_fit_says_what_differs(noisy, tmp_path):
    # It said "data, settings, starts, optimizer or loss differ" for any change.
    checkpoint = tmp_path / "fit.npz"
    _quick(noisy, checkpoint=checkpoint, seed=0)  # a finished fit keeps it
    with pytest.raises(ValueError, match=r"different fit \(seed 0 → 1\); delete it"):
        _quick(noisy, checkpoint=checkpoint, seed=1)
    with pytest.raises(ValueError, match=r"optimizer\[0\].iterations 4 → 6"):
        _quick(noisy, checkpoint=checkpoint, max_iterations=6)
    head = _head(noisy, 201)
    other = fitting.FitData.from_arrays(head.v + 1.0, head.i, head.dt)
    with pytest.raises(ValueError, match=r"different fit \(the data differ\)"):
        fitting.fit(
            other, ["g_na", "g_k"], loss="regression", n_starts=2, max_iterations=4,
            progress=False, uncertainty=False, checkpoint=checkpoint,
        )  # fmt: skip


def test_the_regression_warm_start_does_not_warn_about_defaults_outside_bounds(noisy):
    # With g_k bounded to [1, 10], the warm start began at the model's default
    # 36 and warned "`init`: g_k = 36 lies outside its bounds ... Widen `bounds`",
    # about a start the user never gave.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = _quick(noisy, init="regression", bounds={"g_k": (1.0, 10.0)})
    assert 1.0 <= result.values["g_k"] <= 10.0
    with pytest.warns(UserWarning, match="g_k = 36 lies outside its bounds"):
        _quick(noisy, init=[120.0, 36.0], bounds={"g_k": (1.0, 10.0)})


def test_a_dimensionless_value_is_printed_without_a_unit():
    from fitting._results import parameter_line

    # It printed "q10 = 1.026 1 ± 0.1".
    assert parameter_line("q10", 1.026, "1", se=0.1) == "           q10 = 1.026 ± 0.1"
    assert parameter_line("g_k", 36.0, "mS/cm^2").endswith("g_k = 36 mS/cm^2")
