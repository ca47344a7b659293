"""Tests of hhjax.analysis against independent NumPy/SciPy computations.

The reference right-hand side below is written out again from Hodgkin & Huxley (1952) (modern
HH, 6.3 °C, E_L = −54.387 mV) in plain NumPy, vectorised over copies of the cell so
one ``solve_ivp`` call integrates many perturbed copies at once; nothing in it comes
from hhjax. Units: mV, ms, µA/cm², mS/cm².
"""

from __future__ import annotations

import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.optimize import brentq, minimize_scalar

import hhjax
from hhjax import analysis

RTOL, ATOL = 1e-11, 1e-12
STANDARD = {
    "g_na": 120.0,
    "g_k": 36.0,
    "g_l": 0.3,
    "e_na": 50.0,
    "e_k": -77.0,
    "e_l": -54.387,
    "c_m": 1.0,
    "temperature": 6.3,
    "q10": 3.0,
    "q10_g": 1.0,
    "v_shift": 0.0,
}


# ------------------------------------------------------------ NumPy reference
def ref_rates(v, p):
    """(α_m, β_m, α_h, β_h, α_n, β_n) in 1/ms; works for real or complex v."""
    phi = p["q10"] ** ((p["temperature"] - 6.3) / 10.0)
    u = v - p["v_shift"]
    return tuple(
        phi * r
        for r in (
            0.1 * (u + 40.0) / (1.0 - np.exp(-(u + 40.0) / 10.0)),
            4.0 * np.exp(-(u + 65.0) / 18.0),
            0.07 * np.exp(-(u + 65.0) / 20.0),
            1.0 / (1.0 + np.exp(-(u + 35.0) / 10.0)),
            0.01 * (u + 55.0) / (1.0 - np.exp(-(u + 55.0) / 10.0)),
            0.125 * np.exp(-(u + 65.0) / 80.0),
        )
    )


def ref_ionic(v, m, h, n, p):
    scale = p["q10_g"] ** ((p["temperature"] - 6.3) / 10.0)
    return scale * (
        p["g_na"] * m**3 * h * (v - p["e_na"])
        + p["g_k"] * n**4 * (v - p["e_k"])
        + p["g_l"] * (v - p["e_l"])
    )


def ref_rhs(y, i_ext, p):
    """d(V, m, h, n)/dt for states ``y`` of shape (4, ...)."""
    v, m, h, n = y
    am, bm, ah, bh, an, bn = ref_rates(v, p)
    return np.stack(
        [
            (i_ext - ref_ionic(v, m, h, n, p)) / p["c_m"],
            am * (1 - m) - bm * m,
            ah * (1 - h) - bh * h,
            an * (1 - n) - bn * n,
        ]
    )


def ref_steady(v, p):
    am, bm, ah, bh, an, bn = ref_rates(v, p)
    return np.array([v, am / (am + bm), ah / (ah + bh), an / (an + bn)])


def ref_rest(i_ext=0.0, p=STANDARD):
    """Fixed point by brentq on the steady-state current (unique for standard HH)."""

    def f(v):
        return ref_ionic(*ref_steady(v, p), p) - i_ext

    v = brentq(f, -100.0, 50.0, xtol=1e-15, rtol=1e-15, maxiter=500)
    return ref_steady(v, p)


def ref_jacobian(x, i_ext, p=STANDARD):
    """Jacobian by complex-step differentiation (exact to rounding)."""
    h = 1e-30
    cols = [ref_rhs(x + 1j * h * e, i_ext, p).imag / h for e in np.eye(4)]
    return np.stack(cols, axis=1)


def ref_solve(y0, t_end, i_ext, p=STANDARD, **kwargs):
    """Integrate copies ``y0`` (4, k) together; parameters may be (k,) arrays."""
    k = y0.shape[1]

    def fun(t, y):
        return ref_rhs(y.reshape(4, k), i_ext, p).ravel()

    return solve_ivp(
        fun, (0.0, t_end), y0.ravel(), method="DOP853", rtol=RTOL, atol=ATOL, **kwargs
    )


def upward_crossings(sol, k, copy, level=0.0, n_grid=20000):
    """Times where V of ``copy`` crosses ``level`` upwards, from the dense output."""
    t = np.linspace(sol.t[0], sol.t[-1], n_grid)
    v = sol.sol(t)[copy] - level  # V of copy j is row j (V block comes first)
    idx = np.nonzero((v[:-1] < 0) & (v[1:] >= 0))[0]
    return np.array(
        [
            brentq(lambda s: sol.sol(s)[copy] - level, t[i], t[i + 1], xtol=1e-13)
            for i in idx
        ]
    )


# ----------------------------------------------------------------- spike times
@pytest.mark.filterwarnings("ignore:The spike threshold")  # toy traces at it
def test_spike_times_interpolate_inside_the_step_and_pad_with_nan():
    t = jnp.arange(6.0)
    v = jnp.array(
        [
            [-10.0, 0.0],
            [10.0, 0.0],
            [-10.0, 5.0],
            [-10.0, -5.0],
            [30.0, 5.0],
            [40.0, 5.0],
        ]
    )
    times = analysis.spike_times(v, 0.0, max_spikes=3, t=t, interpolation="linear")
    assert times.shape == (3, 2)
    np.testing.assert_allclose(times[:, 0], [0.5, 3.25, np.nan])
    # Starting exactly at threshold is not a crossing; -5 -> 5 crosses at 3.5.
    np.testing.assert_allclose(times[:, 1], [3.5, np.nan, np.nan])
    np.testing.assert_array_equal(analysis.spike_count(v, 0.0, t=t), [2, 1])
    np.testing.assert_array_equal(
        analysis.spike_count(v, 0.0, t=t, t_start=1.0), [1, 1]
    )
    linear = {"t": t, "interpolation": "linear"}
    np.testing.assert_allclose(analysis.first_spike_time(v, 0.0, **linear), [0.5, 3.5])
    np.testing.assert_allclose(
        analysis.firing_rate(v, 0.0, **linear), [1000.0 / 2.75, 0.0]
    )


@pytest.mark.filterwarnings("ignore:The spike threshold")  # toy traces at it
def test_cubic_interpolation_is_exact_for_a_cubic_and_differentiable():
    t = jnp.linspace(0.0, 3.0, 7)  # uneven spacing is allowed too
    t = t.at[3].set(1.4)

    def v_of(c):
        return (t - 1.3) * (1.0 + c * t * t)  # crosses 0 upwards at t = 1.3 only

    def first(c):
        return analysis.spike_times(v_of(c), 0.0, max_spikes=2, t=t)[0]

    np.testing.assert_allclose(first(0.5), 1.3, rtol=1e-13)
    np.testing.assert_allclose(jax.grad(first)(0.5), 0.0, atol=1e-12)

    def shifted(a):  # root at 1.3 + a, still a cubic: exact for every a
        return analysis.first_spike_time((t - 1.3 - a) ** 3 + (t - 1.3 - a), 0.0, t=t)

    np.testing.assert_allclose(shifted(0.05), 1.35, rtol=1e-13)
    np.testing.assert_allclose(jax.grad(shifted)(0.05), 1.0, rtol=1e-10)


def test_spike_time_gradient_is_that_of_the_interpolation():
    t = jnp.arange(4.0)

    def first(v):
        return analysis.spike_times(v, 1.0, max_spikes=2, t=t, interpolation="linear")[
            0
        ]

    v = jnp.array([-3.0, 5.0, -2.0, -2.0])
    # t = 0 + (1 - v0) / (v1 - v0): dt/dv0 = (1 - v1)/(v1 - v0)^2, dt/dv1 = -(1-v0)/...
    expected = jnp.array([(1 - 5.0) / 64.0, -(1 + 3.0) / 64.0, 0.0, 0.0])
    np.testing.assert_allclose(jax.grad(first)(v), expected, rtol=1e-12)
    assert np.all(
        np.isfinite(
            jax.grad(
                lambda v: jnp.nansum(analysis.spike_times(v, 1.0, max_spikes=4, t=t))
            )(v)
        )
    )


def test_soft_spike_count_approximates_the_count_and_has_a_gradient():
    trace = hhjax.simulate(
        hhjax.HHParams(), hhjax.stimulus.constant(10.0, 50.0, 0.025), 0.025
    )
    count = int(analysis.spike_count(trace))
    soft = float(analysis.soft_spike_count(trace, width=1.0))
    assert count >= 3 and abs(soft - count) < 0.05
    with pytest.raises(ValueError, match="max_spikes"):
        analysis.spike_times(trace, max_spikes=0)
    # width 0 gave NaN gradients, a negative one counted downward crossings.
    for width in (0.0, -2.0, float("nan")):
        with pytest.raises(ValueError, match=r"`width` must be > 0 mV"):
            analysis.soft_spike_count(trace, width=width)


def test_spike_functions_check_threshold_shape_and_accept_numpy_ints():
    t = jnp.arange(6.0)
    v = jnp.array([[-10.0, -10.0], [10.0, -10.0], [-10.0, 10.0]] * 2)  # (6, 2)
    times = analysis.spike_times(v, 0.0, max_spikes=np.int64(2), t=t)
    assert times.shape == (2, 2)
    per_cell = analysis.spike_count(v, jnp.array([0.0, 20.0]), t=t)
    assert per_cell.tolist() == [2, 0]
    as_row = analysis.spike_times(v, [[0.0, 20.0]], max_spikes=2, t=t)  # (1, 2), list
    assert np.isnan(as_row[:, 1]).all() and not np.isnan(as_row[:, 0]).any()
    assert analysis.spike_count(v[:, 0], jnp.zeros(1), t=t).tolist() == 2
    bad = jnp.zeros(5)  # one value per time step, not per cell
    for fn in (
        analysis.spike_times,
        analysis.spike_count,
        analysis.soft_spike_count,
        analysis.first_spike_time,
        analysis.firing_rate,
    ):
        with pytest.raises(ValueError, match=r"`threshold` \(mV\) must be a scalar"):
            fn(v, bad, t=t)
    with pytest.raises(ValueError, match="max_spikes"):
        analysis.spike_times(v, 0.0, max_spikes=True, t=t)


SPIKE_FUNCTIONS = (
    analysis.spike_times,
    analysis.spike_count,
    analysis.soft_spike_count,
    analysis.first_spike_time,
    analysis.firing_rate,
)


@pytest.mark.parametrize("fn", SPIKE_FUNCTIONS, ids=lambda f: f.__name__)
def test_spike_functions_refuse_what_would_hide_or_misplace_spikes(fn):
    # A NaN at a crossing dropped the spike; a descending t gave descending times.
    t = jnp.arange(6.0)
    v = jnp.array([-10.0, 10.0, -10.0, -10.0, 10.0, -10.0])
    with pytest.raises(ValueError, match=r"V \(mV\) must be finite; sample 1 holds"):
        fn(v.at[1].set(jnp.nan), 0.0, t=t)
    with pytest.raises(ValueError, match=r"`t` \(ms\) must be strictly increasing"):
        fn(v, 0.0, t=t[::-1])
    # A NaN threshold counted no spike; a missing `t` named a JAX tracer.
    with pytest.raises(ValueError, match=r"`threshold` \(mV\) must be finite; got nan"):
        fn(v, float("nan"), t=t)
    with pytest.raises(
        TypeError, match=r"or an array of V with `t=` given; got an array"
    ):
        fn(v, 0.0)
    # Under jit the values are not known: no check, the function still runs.
    assert jnp.shape(jax.jit(lambda x: fn(x, 0.0, t=t))(v)) in ((), (32,))


@pytest.mark.parametrize(
    "fn", [analysis.spike_count, analysis.firing_rate], ids=lambda f: f.__name__
)
def test_spike_windows_must_not_be_empty(fn):
    v = jnp.array([-10.0, 10.0, -10.0, -10.0, 10.0, -10.0])
    with pytest.raises(ValueError, match=r"`t_start` < `t_stop` \(ms\); got t_start"):
        fn(v, 0.0, t=jnp.arange(6.0), t_start=4.0, t_stop=1.0)


@pytest.mark.parametrize(
    "fn",
    [analysis.spike_count, analysis.first_spike_time, analysis.firing_rate],
    ids=lambda f: f.__name__,
)
def test_spike_windows_and_time_axis_must_be_well_formed(fn):
    # A NaN window edge counted no spike (0, NaN, 0 Hz), an inf in `t` passed,
    # an edge per cell for a single trace failed inside JAX, and an empty trace
    # failed with NumPy's "cannot reshape array of size 0".
    t = jnp.arange(6.0)
    v = jnp.array([-10.0, 10.0, -10.0, -10.0, 10.0, -10.0])
    with pytest.raises(ValueError, match=r"`t_start` \(ms\) must be a number or None"):
        fn(v, 0.0, t=t, t_start=float("nan"))
    with pytest.raises(ValueError, match=r"`t` \(ms\) must be finite; t\[5\] = inf"):
        fn(v, 0.0, t=t.at[5].set(jnp.inf))
    with pytest.raises(ValueError, match=r"`t_start` \(ms\) must be a scalar or an"):
        fn(v, 0.0, t=t, t_start=jnp.array([0.0, 2.0]))
    with pytest.raises(ValueError, match=r"with at least 2 samples; got t \(0,\)"):
        fn(jnp.zeros(0), 0.0, t=jnp.zeros(0))
    if fn is analysis.spike_count:  # an edge per cell (a list too, as for the
        # threshold: it failed inside JAX); -inf is an open end
        two = jnp.stack([v, v], axis=1)
        assert fn(two, 0.0, t=t, t_start=[2.0, -np.inf]).tolist() == [1, 2]


# ------------------------------------------------------------------- f-I curve
def test_fi_curve_onset_of_repetitive_firing_from_rest():
    currents = np.array([5.0, 6.0, 6.2, 6.4, 6.6, 7.0, 8.0, 10.0])
    fi = analysis.fi_curve(hhjax.HHParams(), currents, duration=300.0, transient=100.0)
    assert fi.currents.shape == fi.rates.shape == fi.counts.shape == (8,)
    assert 6.0 < fi.rheobase < 7.0  # standard HH: ~6.26 from rest
    assert fi.onset_type == "class 2"
    rates = np.asarray(fi.rates)
    assert np.all(rates[currents < fi.rheobase] == 0)
    assert np.all(rates[currents >= fi.rheobase] > 40)
    assert np.all(np.diff(rates[currents >= fi.rheobase]) > 0)
    # A 10 uA/cm^2 orbit has a period of 14.636 ms (see the PRC test).
    assert abs(rates[-1] - 1000.0 / 14.636) < 0.1


def test_fi_curve_counts_a_repeated_current_once():
    # A current listed twice made the slope above rheobase 0/0 (a RuntimeWarning)
    # and squid HH, whose rate jumps from 0 to ~55 Hz, came out "class 1".
    currents = [5.0, 6.0, 6.5, 6.5, 7.0, 8.0, 10.0, 10.0]  # same shape as above
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fi = analysis.fi_curve(
            hhjax.HHParams(), currents, duration=300.0, transient=100.0
        )
    assert fi.rheobase == 6.5 and fi.onset_type == "class 2"
    assert fi.rates.shape == (8,) and fi.rates[2] == fi.rates[3] > 40.0


def test_fi_curve_window_must_hold_samples():
    # 10.025 ms at dt = 0.025 is 401 steps, sampled up to 10.0 ms: the window
    # [10, 10.025) holds no sample (every rate came out 0 without a word).
    with pytest.raises(ValueError, match=r"analysis window \[10.0, 10.025\) ms hol"):
        analysis.fi_curve(hhjax.HHParams(), [10.0], duration=10.025, transient=10.0)
    for kwargs, pattern in (
        ({"dt": jnp.array([0.01, 0.02])}, r"`dt` must be a positive, finite number"),
        ({"duration": "50"}, r"`duration` must be a positive, finite number"),
        ({"threshold": jnp.zeros(2)}, r"`threshold` must be one real number \(mV\)"),
    ):
        with pytest.raises(ValueError, match=pattern):
            analysis.fi_curve(hhjax.HHParams(), [10.0], **kwargs)


def test_fi_curve_min_spikes_may_be_a_numpy_integer():
    fi = analysis.fi_curve(
        hhjax.HHParams(), [10.0], duration=60.0, transient=10.0, min_spikes=np.int64(2)
    )
    assert int(fi.counts[0]) >= 2
    with pytest.raises(ValueError, match=r"`min_spikes` must be an int >= 2"):
        analysis.fi_curve(hhjax.HHParams(), [10.0], min_spikes=True)


def test_fi_curve_names_a_non_finite_current():
    # It blamed `i_ext` at time index 0 (the simulation's check).
    with pytest.raises(ValueError, match=r"`currents` must be finite.*entry 1 is nan"):
        analysis.fi_curve(hhjax.HHParams(), [0.0, np.nan, 10.0])


def test_fi_curve_refuses_several_cells():
    # Leaves of shape (2, 1) failed with an IndexError; (n,) mixed cells into one
    # rheobase.
    g_na = jnp.array([[100.0], [120.0]])
    with pytest.raises(
        ValueError,
        match=r"fi_curve works on one cell, but `params.g_na` has shape \(2, 1\); call it once",
    ):
        analysis.fi_curve(hhjax.HHParams(g_na=g_na), [5.0, 10.0, 15.0])


# ------------------------------------------------ done-when 2: resting potential
def test_rest_gradient_matches_finite_differences_of_an_independent_root():
    # Away from 6.3 degC and at I != 0 so that temperature and q10_g matter too
    # (c_m and q10 cannot move a fixed point: their gradients must be 0).
    params, i_ext = hhjax.HHParams(temperature=12.0, q10_g=1.4), 2.0
    p0 = params._asdict()
    grad = jax.grad(lambda p: analysis.fixed_point(p, i_ext).v)(params)
    v_rest = float(analysis.fixed_point(params, i_ext).v)
    assert abs(v_rest - ref_rest(i_ext, p0)[0]) < 1e-11
    for name, value in p0.items():
        h = 1e-4 * max(abs(value), 1.0)
        up, down = dict(p0, **{name: value + h}), dict(p0, **{name: value - h})
        fd = (ref_rest(i_ext, up)[0] - ref_rest(i_ext, down)[0]) / (2 * h)
        got = float(getattr(grad, name))
        assert abs(got - fd) <= 1e-6 * abs(fd) + 1e-10, (name, got, fd)
    assert abs(grad.temperature) > 1e-3 and abs(grad.q10_g) > 1e-3


def test_rest_gradient_does_not_differentiate_through_the_iterations():
    params = hhjax.HHParams()
    _, tangent = jax.linearize(lambda p: analysis.fixed_point(p, 3.0).v, params)
    jaxpr = jax.make_jaxpr(tangent)(params)
    primitives = {eqn.primitive.name for eqn in jaxpr.jaxpr.eqns}
    assert not primitives & {"while", "scan", "cond"}, primitives
    assert len(jaxpr.jaxpr.eqns) < 200  # the root solve itself is thousands of ops


# ------------------------------------------------------- done-when 1: Hopf points
def _ref_hopf(lo, hi):
    def leading_re(i_ext):
        lam = np.linalg.eigvals(ref_jacobian(ref_rest(i_ext), i_ext))
        return lam[lam.imag > 0].real.max()

    return brentq(leading_re, lo, hi, xtol=1e-12)


def test_hopf_points_match_an_independent_eigenvalue_computation():
    found = np.asarray(analysis.hopf_points(hhjax.HHParams(), (0.0, 200.0)))
    assert found.shape == (2,)
    np.testing.assert_allclose(found[0], _ref_hopf(9.0, 10.5), atol=1e-4)
    np.testing.assert_allclose(found[1], _ref_hopf(150.0, 160.0), atol=1e-4)
    low, high = (analysis.classify_hopf(hhjax.HHParams(), i) for i in found)
    assert low.kind == "subcritical" and high.kind == "supercritical"
    assert 80.0 < low.frequency < 110.0


def test_hopf_types_agree_with_simulation():
    params = hhjax.HHParams()
    i_low, i_high = np.asarray(analysis.hopf_points(params, (0.0, 200.0)))
    # Subcritical: just below the lower Hopf point the rest is stable, yet a large
    # orbit exists (the cell fires when kicked out of rest).
    assert bool(analysis.is_stable(params, i_low - 0.05))
    cycle = analysis.limit_cycle(params, i_low - 0.05)
    assert cycle.stable
    # Supercritical: just below the upper Hopf point the rest is unstable and the
    # only orbit is small (sqrt growth), not a jump to large spikes.
    # Full spikes at these currents would span > 80 mV; 10 below it the orbit
    # grown from a 0.1 mV kick spans 12.6 mV.
    state0 = analysis.fixed_point(params, i_high - 10.0)
    state0 = state0._replace(v=state0.v + 0.1)
    trace = hhjax.simulate(
        params,
        hhjax.stimulus.constant(i_high - 10.0, 250.0, 0.02),
        0.02,
        state0=state0,
        record=("v",),
    )
    assert 1.0 < np.ptp(np.asarray(trace.v)[-2500:]) < 30.0


def test_a_jump_of_the_fixed_point_branch_is_not_a_hopf_point():
    # Pospischil RS: a complex pair crosses at 2.335 uA/cm^2; at 2.352 the lowest
    # fixed point ends in a fold and the branch jumps to -22 mV, where the test
    # function is +1.46/ms. One grid cell holds both: its sign change bisected
    # onto the jump (reported as a Hopf point), the crossing was lost.
    params = hhjax.PospischilParams.rs()
    (found,) = np.asarray(analysis.hopf_points(params, (2.3, 2.4), n_grid=2))
    inside = float(analysis.hopf_current(params, (2.3, 2.34)))  # no jump inside
    assert found == pytest.approx(inside, abs=1e-12)
    assert 2.33 < found < 2.34


def test_a_hopf_point_where_a_complex_pair_appears_is_found():
    # Pospischil RS: the complex pair exists only on about (2.30, 2.345)
    # uA/cm^2, then turns real before the fold at 2.352. The default grid (0.5
    # apart) has a cell with no complex pair at 2.0 and the upper branch at 2.5:
    # no sign change between finite values, and the Hopf point was missed.
    params = hhjax.PospischilParams.rs()
    (found,) = np.asarray(analysis.hopf_points(params, (2.0, 2.5), n_grid=2))
    # The same point as bisection inside a bracket that holds no jump (checked
    # in the test above).
    inside = float(analysis.hopf_current(params, (2.3, 2.34)))
    assert found == pytest.approx(inside, abs=1e-12)
    # float32: the crossing test's outer step (0.016 uA/cm^2) reached past the
    # fold 0.017 above the point, where the test function is -inf: missed.
    params32 = jax.tree.map(np.float32, params)
    (found32,) = np.asarray(analysis.hopf_points(params32, (2.0, 2.5), n_grid=2))
    assert found32 == pytest.approx(found, abs=1e-4)


def test_bifurcation_arguments_are_checked():
    # They failed with "too many values to unpack", "'float' object is not
    # iterable", a LinAlgError or linspace's TypeError.
    params = hhjax.HHParams()
    for bracket in ((9.0, 10.0, 11.0), 9.0, (9.0, 9.0)):
        with pytest.raises(ValueError, match=r"`bracket` must be two different"):
            analysis.hopf_current(params, bracket)
    with pytest.raises(ValueError, match=r"`i_hopf` must be a finite current"):
        analysis.classify_hopf(params, float("nan"))
    with pytest.raises(ValueError, match=r"an int n_grid >= 2; got .* n_grid=50.0"):
        analysis.hopf_points(params, (0.0, 20.0), n_grid=50.0)


def test_hopf_current_and_type_refuse_currents_that_are_not_hopf_points():
    params = hhjax.HHParams()
    with pytest.raises(ValueError, match=r"`bracket` \(0, 5\) uA/cm\^2 holds no Hopf"):
        analysis.hopf_current(params, (0.0, 5.0))
    with pytest.raises(ValueError, match="0 uA/cm\\^2 is not a Hopf point"):
        analysis.classify_hopf(params, 0.0)


def test_classify_hopf_refines_a_current_near_a_hopf_point():
    # It classified any current whose complex pair had a real part within 1 % of
    # its modulus, reporting e.g. "subcritical Hopf at 9.5" (the point is 9.7754).
    params = hhjax.HHParams()
    exact = _ref_hopf(9.0, 10.5)  # brentq on NumPy eigenvalues
    for rough in (9.5, 9.78):
        point = analysis.classify_hopf(params, rough)
        assert point.current == pytest.approx(exact, abs=1e-6)
        assert point.kind == "subcritical"
    with pytest.raises(ValueError, match="150 uA/cm\\^2 is not a Hopf point"):
        analysis.classify_hopf(params, 150.0)  # 4.5 below the upper Hopf point


def test_a_traced_bracket_without_a_hopf_point_gives_nan_not_an_end():
    # Under grad/vmap the bracket cannot be checked in Python: NaN, never an end
    # of the bracket with a plausible gradient.
    def hopf(g_k):
        return analysis.hopf_current(hhjax.HHParams(g_k=g_k), (9.0, 10.5))

    value, grad = jax.value_and_grad(hopf)(38.0)  # its Hopf point is above 10.5
    assert np.isnan(value) and np.isnan(grad)
    batch = jax.vmap(hopf)(jnp.array([35.0, 36.0, 37.0]))
    assert np.isnan(batch[0]) and np.isnan(batch[2])
    assert float(batch[1]) == pytest.approx(float(hopf(36.0)), rel=1e-12)


def test_limit_cycle_of_slow_firing_asks_for_a_longer_warmup():
    # The RS cell fires at ~7 Hz at 2.6 uA/cm^2 (period 151 ms with warmup=3000):
    # too few spikes in the default warm-up, and the error says what to change.
    params = hhjax.PospischilParams.rs()
    with pytest.raises(ValueError, match=r"or a longer `warmup` \(ms\)"):
        analysis.limit_cycle(params, 2.6)


def test_limit_cycle_warm_up_step_follows_the_temperature():
    # The warm-up ran at a fixed 0.02 ms, above rk4's stable step for HH at
    # 36 degC (rates 26x, 0.018 ms): a step-size warning the caller could not
    # act on (its `dt` is the shooting's). HH at 36 degC does not fire
    # repetitively; the warm-up must find that without the warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", hhjax.StepSizeWarning)
        with pytest.raises(ValueError, match="No repetitive firing"):
            analysis.limit_cycle(hhjax.HHParams(temperature=36.0), 100.0, warmup=50.0)
    # Its step shrinks with the rates: at 100 degC 3.8e7 steps (3 GB) for the
    # default 300 ms; refused before any simulation, with what to do.
    with pytest.raises(ValueError, match=r"would take 37879951 steps .* at most 15\.8"):
        analysis.limit_cycle(hhjax.HHParams(temperature=100.0), 50.0)


def test_limit_cycle_refuses_a_fixed_point_and_a_malformed_guess():
    # From a guess 0.5 mV off rest, Newton converged to the fixed point (which
    # solves phi_T(x) = x for every T) and returned it as a "LimitCycle" of
    # period 14.41 ms.
    params = hhjax.HHParams()
    rest = analysis.fixed_point(params, 10.0)
    near_rest = rest._replace(v=rest.v + 0.5)
    with pytest.raises(ValueError, match=r"converged to a fixed point \(V = -59.57"):
        analysis.limit_cycle(params, 10.0, guess=(near_rest, 14.6))
    with pytest.raises(ValueError, match=r"must be a HHState or 4 numbers"):
        analysis.limit_cycle(params, 10.0, guess=((-70.0, 0.05, 0.5), 14.6))
    with pytest.raises(ValueError, match=r"`guess` must be \(state, period_ms\) or"):
        analysis.limit_cycle(params, 10.0, guess=near_rest)


def test_limit_cycle_continues_from_the_orbit_at_a_nearby_current():
    # A LimitCycle passed as `guess` (its state and period) was refused once the
    # guess was checked; continuation along the current needs it.
    params = hhjax.HHParams()
    cycle = analysis.limit_cycle(params, 10.0)
    continued = analysis.limit_cycle(params, 10.05, guess=cycle)
    fresh = analysis.limit_cycle(params, 10.05)  # from a simulation instead
    assert continued.period == pytest.approx(fresh.period, rel=1e-8)
    assert continued.period != pytest.approx(cycle.period, rel=1e-4)
    # Full Newton steps overshot from 10 to 10.5 (and from 15 to 16); halved
    # steps converge. Too far a jump says to continue in smaller steps.
    further = analysis.limit_cycle(params, 10.5, guess=cycle)
    assert further.period == pytest.approx(analysis.limit_cycle(params, 10.5).period)
    with pytest.raises(ValueError, match=r"did not converge; give a `guess` from a "
                       r"nearer current \(continue in smaller steps\)"):  # fmt: skip
        analysis.limit_cycle(params, 11.0, guess=cycle)


@pytest.mark.parametrize(
    "call",
    [
        lambda p: analysis.eigenvalues(p),
        lambda p: analysis.limit_cycle(p, 10.0),
        lambda p: analysis.hopf_current(p, (9.0, 10.0)),
        lambda p: analysis.sensitivities(lambda q: q.g_na, p, ("g_na",)),
        lambda p: analysis.classify_hopf(p, 9.78),
        lambda p: analysis.hopf_points(p, (0.0, 20.0)),
        # With a precomputed cycle it failed deep inside a while loop.
        lambda p: analysis.phase_response_curve(
            p,
            10.0,
            cycle=analysis.LimitCycle(
                state=hhjax.resting_state(hhjax.HHParams()),
                period=14.6,
                current=10.0,
                multipliers=jnp.zeros(4),
                stable=True,
                n_steps=1460,
            ),
        ),
    ],
)
def test_one_cell_functions_name_batched_parameters(call):
    # They returned wrong shapes or failed deep inside linalg / NumPy.
    with pytest.raises(ValueError, match=r"`params.g_na` has shape \(2,\); map"):
        call(hhjax.HHParams(g_na=jnp.array([100.0, 120.0])))


@pytest.mark.parametrize(
    "call",
    [
        lambda i: analysis.jacobian(hhjax.HHParams(), i),
        lambda i: analysis.is_stable(hhjax.HHParams(), i),
        lambda i: analysis.limit_cycle(hhjax.HHParams(), i),
    ],
)
def test_one_cell_functions_name_a_batched_current(call):
    # jacobian returned shape (4, 2, 4, 2), eigvals failed inside linalg.
    with pytest.raises(ValueError, match=r"`i_ext` has shape \(2,\); map it over"):
        call(jnp.array([0.0, 5.0]))


def test_jacobian_at_a_given_state_is_one_cells_and_of_its_model():
    # A batched state gave an array of shape (4, 2, 4, 2), another model's state
    # or a short one a TypeError from HHState, and parameters without a fixed
    # point NaN eigenvalues and is_stable False.
    params = hhjax.HHParams()
    x = (-60.0, 0.1, 0.5, 0.4)  # off the fixed point, as a plain sequence
    np.testing.assert_allclose(
        analysis.jacobian(params, 3.0, state=x),
        ref_jacobian(np.array(x), 3.0),
        rtol=1e-12,
        atol=1e-13,
    )
    with pytest.raises(ValueError, match=r"`state.v` has shape \(2,\); map it"):
        analysis.jacobian(
            params, 0.0, state=hhjax.HHState(*(jnp.array(x)[:, None] * jnp.ones(2)))
        )
    with pytest.raises(ValueError, match=r"must be a HHState or 4 numbers"):
        analysis.eigenvalues(params, 0.0, state=x[:3])
    other = hhjax.PospischilState(*([0.1] * len(hhjax.PospischilState._fields)))
    with pytest.raises(ValueError, match=r"is a PospischilState, but the params"):
        analysis.jacobian(params, 0.0, state=other)
    with pytest.raises(ValueError, match=r"`state.m` must be a finite number"):
        analysis.jacobian(params, 0.0, state=(-65.0, float("nan"), 0.6, 0.3))
    with pytest.raises(ValueError, match=r"No fixed point found at i_ext = 0 uA/cm\^2"):
        analysis.is_stable(params._replace(g_na=0.0, g_k=0.0, g_l=0.0))


def test_hopf_current_gradient_matches_finite_differences():
    params = hhjax.HHParams()
    grad = jax.grad(lambda gk: analysis.hopf_current(params._replace(g_k=gk), (9, 10)))
    h = 1e-3
    fd = (
        analysis.hopf_current(params._replace(g_k=36.0 + h), (9, 10))
        - analysis.hopf_current(params._replace(g_k=36.0 - h), (9, 10))
    ) / (2 * h)
    np.testing.assert_allclose(grad(36.0), fd, rtol=1e-6)


# ------------------------------------------- done-when 1: fold of limit cycles
@pytest.fixture(scope="module")
def fold():
    return analysis.limit_cycle_fold(hhjax.HHParams(), 7.0)


def _ref_flow(x0s, period, i_ext):
    """Integrate columns of ``x0s`` (4, k) for ``period`` ms; returns (4, k)."""
    sol = ref_solve(x0s, period, i_ext, t_eval=[period])
    return sol.y[:, -1].reshape(4, x0s.shape[1])


def _ref_monodromy(x0, period, i_ext, eps=1e-4):
    """End state and monodromy matrix by central differences of the flow."""
    cols = np.column_stack(
        [x0] + [x0 + s * eps * e for e in np.eye(4) for s in (1.0, -1.0)]
    )
    out = _ref_flow(cols, period, i_ext)
    return out[:, 0], (out[:, 1::2] - out[:, 2::2]) / (2 * eps)


def _multiplier_one_slope(monodromy):
    """``χ'(1)`` of ``χ(λ) = det(λ − M)``: the sum of the principal 3x3 minors of
    ``1 − M``. With the trivial multiplier 1 it equals ``Π_{i>1} (1 − μ_i)``, so it
    vanishes exactly when a second multiplier is 1 (a fold of cycles); unlike the
    multipliers of a Jordan block it is well conditioned in ``M``."""
    a = np.eye(4) - monodromy
    return sum(np.linalg.det(np.delete(np.delete(a, i, 0), i, 1)) for i in range(4))


def test_fold_is_a_periodic_orbit_with_a_double_multiplier_one(fold):
    assert 6.2 < fold.current < 6.3
    x0 = np.array([float(x) for x in fold.state])
    end, monodromy = _ref_monodromy(x0, fold.period, fold.current)
    assert np.max(np.abs(end - x0)) < 1e-6
    # 1 - mu_2 grows like 3.5 sqrt(I - I_fold) (0.70 at 6.3 uA/cm^2), so 0.01 here
    # puts the fold within ~1e-5 uA/cm^2 of the reference's.
    assert abs(_multiplier_one_slope(monodromy)) < 0.01


def test_fold_sensitivity_matches_finite_differences(fold):
    params = hhjax.HHParams()
    grad = analysis.fold_sensitivity(params, fold)
    h = 0.02
    up = analysis.limit_cycle_fold(params._replace(g_k=36.0 + h), 7.0).current
    down = analysis.limit_cycle_fold(params._replace(g_k=36.0 - h), 7.0).current
    np.testing.assert_allclose(float(grad.g_k), (up - down) / (2 * h), rtol=1e-4)
    # The same gradient as a feature of `sensitivities` (which once traced its
    # features abstractly, where the fold's concrete search cannot run).
    sens = analysis.sensitivities(
        {"fold": lambda p: analysis.fold_current(p, 7.0)}, params, ("g_k",)
    )
    np.testing.assert_allclose(sens.gradients[0, 0], grad.g_k, rtol=1e-8)
    # A fold of other params or another method (gave a wrong gradient silently).
    for other, method in ((params._replace(g_na=100.0), "rk4"), (params, "euler")):
        with pytest.raises(ValueError, match=r"`fold` is not a periodic orbit"):
            analysis.fold_sensitivity(other, fold, method=method)


@pytest.mark.slow
def test_fold_matches_an_independent_shooting_continuation(fold):
    """Reference: orbits parametrised by their period T (Newton on solve_ivp
    shooting with a central-difference Jacobian, warm-started by extrapolation from
    the nearest solved periods), the fold as the minimum of I(T)."""
    solved = {}  # period (ms) -> z = (V, m, h, n, I) of the orbit

    def newton(z, period, eps=1e-5):
        for _ in range(20):
            x0, i_ext = z[:4], z[4]
            steps = eps * np.eye(5)
            cols = np.column_stack(
                [x0] + [x0 + s * d[:4] for d in steps for s in (1.0, -1.0)]
            )
            currents = np.array([i_ext] * 9 + [i_ext + eps, i_ext - eps])
            out = _ref_flow(cols, period, currents)
            f = np.concatenate([out[:, 0] - x0, [ref_rhs(x0, i_ext, STANDARD)[0]]])
            jac = np.zeros((5, 5))
            jac[:4] = (out[:, 1::2] - out[:, 2::2]) / (2 * eps)
            jac[:4, :4] -= np.eye(4)
            jac[4] = [*ref_jacobian(x0, i_ext)[0], 1.0 / STANDARD["c_m"]]
            z = z - np.linalg.solve(jac, f)
            if np.max(np.abs(f)) < 1e-9:
                return z
        raise AssertionError(f"reference Newton did not converge at T = {period}")

    def current_of_period(period):
        near = sorted(solved, key=lambda s: abs(s - period))[:2]
        if len(near) == 1:
            guess = solved[near[0]]
        else:
            (a, b), (za, zb) = near, (solved[near[0]], solved[near[1]])
            guess = za + (period - a) / (b - a) * (zb - za)
        solved[period] = newton(guess, period)
        return solved[period][4]

    # Start: the orbit at I = 7 from a long simulation from rest (at a V minimum).
    sol = ref_solve(ref_rest(0.0)[:, None], 300.0, 7.0, dense_output=True)
    t = np.linspace(250.0, 300.0, 50001)
    k = int(np.argmin(sol.sol(t)[0]))
    z0 = np.concatenate([sol.sol(t[k]), [7.0]])
    later = t[k + 1000 : k + 31000]  # the next minimum is 1 to 31 ms later
    period0 = float(later[np.argmin(sol.sol(later)[0])] - t[k])
    solved[period0] = newton(z0, period0)
    for period in np.arange(period0 + 0.1, 19.6, 0.1):  # walk to near the fold
        current_of_period(float(period))
    best = minimize_scalar(
        current_of_period, bracket=(19.6, 19.9, 20.2), options={"xtol": 1e-6}
    )
    assert abs(best.fun - fold.current) < 1e-3, (best.fun, fold.current)
    assert abs(best.x - fold.period) < 0.05, (best.x, fold.period)
    print(
        f"fold: reference I = {best.fun!r} at T = {best.x!r}; hhjax I = "
        f"{fold.current!r} at T = {fold.period!r}"
    )


# ------------------------------------------ done-when 3: first-spike gradient
def test_first_spike_time_gradient_matches_solve_ivp_event_finite_differences():
    i_ext, dt, h = 10.0, 0.01, 0.05
    params = hhjax.HHParams()
    current = hhjax.stimulus.constant(i_ext, 8.0, dt)

    def latency(gk):
        trace = hhjax.simulate(params._replace(g_k=gk), current, dt, record=("v",))
        return analysis.first_spike_time(trace, 0.0)

    value, grad = jax.value_and_grad(latency)(36.0)
    # Each cell starts from its own rest (as simulate's default state0 does).
    gks = np.array([36.0 + h, 36.0 - h])
    y0 = np.column_stack([ref_rest(0.0, dict(STANDARD, g_k=g)) for g in gks])
    p = dict(STANDARD, g_k=gks)
    sol = ref_solve(y0, 8.0, i_ext, p, dense_output=True)
    up, down = (upward_crossings(sol, 2, c)[0] for c in (0, 1))
    fd = (up - down) / (2 * h)
    print(
        f"first spike: latency {float(value)!r} ms, d/dg_k jax {float(grad)!r}, "
        f"solve_ivp central differences {fd!r}"
    )
    assert abs(float(grad) - fd) <= 0.01 * abs(fd), (float(grad), fd)
    assert 1.0 < float(value) < 8.0


# ------------------------------------------------------------- done-when 4: PRC
def test_prc_matches_direct_perturbation_with_solve_ivp():
    i_ext, kick = 10.0, 0.25  # uA/cm^2, mV
    response = analysis.phase_response_curve(hhjax.HHParams(), i_ext)
    assert abs(response.period - 14.64) < 0.01
    # Reference orbit: long run from rest, then the period and the time of a peak.
    sol = ref_solve(ref_rest(0.0)[:, None], 200.0, i_ext, dense_output=True)
    ups = upward_crossings(sol, 1, 0)
    period = ups[-1] - ups[-2]
    assert abs(period - response.period) < 1e-6
    peak = minimize_scalar(
        lambda s: -sol.sol(s)[0],
        bracket=(ups[-2], ups[-2] + 0.3, ups[-2] + 1.0),
        options={"xtol": 1e-10},
    ).x
    phases = np.linspace(0.0, 0.95, 20)
    states = sol.sol(peak + phases * period)  # (4, 20)
    k = phases.size
    kicked = np.concatenate(
        [states + kick * np.eye(4)[:, :1], states - kick * np.eye(4)[:, :1]], axis=1
    )
    run = ref_solve(kicked, 3.6 * period, i_ext, dense_output=True)
    t_plus = np.array([upward_crossings(run, 2 * k, j)[-1] for j in range(k)])
    t_minus = np.array([upward_crossings(run, 2 * k, k + j)[-1] for j in range(k)])
    direct = -(t_plus - t_minus) / (2 * kick * period)  # advance per mV, cycles
    adjoint = np.interp(
        phases, np.asarray(response.phase), np.asarray(response.prc), period=1.0
    )
    spread = np.ptp(direct)
    print(
        f"PRC: max |adjoint - direct| = {np.max(np.abs(adjoint - direct)):.3g} "
        f"cycles/mV, range {spread:.4g}; period {response.period!r} ms"
    )
    assert spread > 0.02
    assert np.max(np.abs(adjoint - direct)) < 0.05 * spread, np.c_[
        phases, adjoint, direct
    ]


# ------------------------------------------------------------ sensitivities
def test_sensitivities_table_and_elasticities():
    params = hhjax.HHParams()
    sens = analysis.sensitivities(
        {
            "v_rest": lambda p: analysis.fixed_point(p).v,
            "n_rest": lambda p: analysis.fixed_point(p).n,
        },
        params,
        parameters=("g_na", "g_k", "g_l", "e_l"),
    )
    assert sens.gradients.shape == sens.elasticities.shape == (2, 4)
    grad = jax.grad(lambda p: analysis.fixed_point(p).v)(params)
    np.testing.assert_allclose(sens.gradients[0, 1], grad.g_k, rtol=1e-12)
    np.testing.assert_allclose(
        sens.elasticities[0, 1], grad.g_k * 36.0 / sens.values[0], rtol=1e-12
    )
    assert "g_k" in sens.table() and "v_rest" in sens.table()
    # e_l's elasticity would depend on the zero of the voltage convention: none
    assert np.isnan(sens.elasticities[:, 3]).all() and np.isfinite(sens.gradients).all()
    assert "n/a: e_l lie on an interval scale" in sens.table()
    assert "n/a" not in sens.table(relative=False)
    with pytest.raises(ValueError, match="parameters"):
        analysis.sensitivities(lambda p: p.g_k, params, parameters=("nope",))


def test_sensitivities_input_errors_and_integer_parameters():
    params = hhjax.HHParams(g_na=120)  # an int: differentiated as a float
    sens = analysis.sensitivities(lambda p: p.g_na * p.g_k, params, ("g_na",))
    assert sens.gradients[0, 0] == pytest.approx(36.0)
    with pytest.raises(ValueError, match="must be a sequence of names"):
        analysis.sensitivities(lambda p: p.g_k, params, parameters="g_na")
    with pytest.raises(ValueError, match=r"must return a scalar; got shape \(2,\)"):
        analysis.sensitivities(lambda p: jnp.stack([p.g_na, p.g_k]), params, ("g_k",))
    with pytest.raises(ValueError, match=r"must return a scalar; got HHState"):
        analysis.sensitivities(hhjax.resting_state, params, ("g_k",))
    # An empty mapping gave arrays of inconsistent shapes, a list of callables
    # an AttributeError, a non-callable value JAX's TypeError.
    for features, pattern in (
        ({}, r"at least one feature"),
        ([lambda p: p.g_k], r"a mapping \{name: callable\}; got list"),
        ({"a": 3.0}, r"\['a'\] are not"),
    ):
        with pytest.raises(ValueError, match=pattern):
            analysis.sensitivities(features, params, ("g_k",))
    # Invalid parameter values gave a NaN value and NaN gradients, no error.
    for bad, pattern in (
        (params._replace(g_na=float("nan")), r"`g_na`.*finite"),
        (params._replace(g_k=-1.0), r"`g_k` \(mS/cm\^2\) must be >= 0"),
    ):
        with pytest.raises(ValueError, match=pattern):
            analysis.sensitivities(lambda p: p.g_na * p.g_k, bad, ("g_k",))


def test_prc_refuses_a_cycle_of_another_current_or_an_unstable_one():
    params = hhjax.HHParams()
    cycle = analysis.limit_cycle(params, 10.0)
    with pytest.raises(ValueError, match=r"orbit at 10 uA/cm\^2, not at `i_ext` = 50"):
        analysis.phase_response_curve(params, 50.0, cycle=cycle)
    with pytest.raises(ValueError, match="unstable orbit"):
        analysis.phase_response_curve(params, 10.0, cycle=cycle._replace(stable=False))
    # An orbit of other params (the period came out 5 % off, silently).
    with pytest.raises(ValueError, match=r"`cycle` is not a periodic orbit of these"):
        analysis.phase_response_curve(params._replace(g_na=140.0), 10.0, cycle=cycle)


@pytest.mark.parametrize(
    ("entry", "kwargs", "pattern"),
    [
        ("limit_cycle", {"dt": 0.0}, r"`dt` must be a positive, finite number \(ms\)"),
        ("limit_cycle", {"dt": -0.01}, r"`dt` must be a positive"),
        ("limit_cycle", {"warmup": 0.01}, r"`warmup` \(0.01 ms\) is shorter than 3"),
        ("limit_cycle", {"guess": (hhjax.HHState(-65.0, 0.05, 0.6, 0.3), -14.0)},
         r"`guess\[1\]` must be a positive, finite number \(the period in ms\)"),
        ("limit_cycle_fold", {"direction": 0.0}, r"`direction` must be -1"),
        ("limit_cycle_fold", {"step": float("nan")}, r"`step` must be a positive"),
        ("limit_cycle_fold", {"max_steps": 0}, r"`max_steps` must be an int >= 1"),
    ],
)  # fmt: skip
def test_shooting_arguments_are_checked(entry, kwargs, pattern):
    # They gave a ZeroDivisionError, a singular matrix, an error about an `i_ext`
    # of shape (0,), or ran with direction 0 as +1.
    with pytest.raises(ValueError, match=pattern):
        getattr(analysis, entry)(hhjax.HHParams(), 10.0, **kwargs)


# ------------------------------------------------ shooting needs float64 (x64)
@pytest.mark.parametrize(
    "entry",
    [
        analysis.limit_cycle,
        analysis.phase_response_curve,
        analysis.limit_cycle_fold,
        analysis.fold_current,
    ],
)
def test_shooting_in_float32_says_float64_is_needed(entry):
    # Newton stops at a 1e-10 residual, which float32 cannot reach: without the
    # up-front check this failed as "did not converge; give a better guess".
    with jax.enable_x64(False), pytest.raises(RuntimeError, match="needs float64"):
        entry(hhjax.HHParams(), 10.0)


def test_fold_sensitivity_in_float32_says_float64_is_needed():
    fold = analysis.CycleFold(
        current=6.26,
        period=17.0,
        state=hhjax.resting_state(hhjax.HHParams()),
        branch_currents=np.array([6.26]),
        branch_periods=np.array([17.0]),
        n_steps=1700,
    )
    with jax.enable_x64(False), pytest.raises(RuntimeError, match="jax_enable_x64"):
        analysis.fold_sensitivity(hhjax.HHParams(), fold)


@pytest.mark.parametrize(
    "name, call",
    [
        ("fi_curve", lambda p: analysis.fi_curve(p, jnp.array([10.0]), duration=50.0)),
        ("hopf_points", lambda p: analysis.hopf_points(p)),
        ("classify_hopf", lambda p: analysis.classify_hopf(p, 9.78)),
        ("limit_cycle", lambda p: analysis.limit_cycle(p, 20.0)),
        ("phase_response_curve", lambda p: analysis.phase_response_curve(p, 20.0)),
    ],
)
def test_searches_say_they_need_concrete_inputs(name, call):
    # Under jax.grad they failed with JAX's ConcretizationTypeError or
    # TracerArrayConversionError from deep inside; fi_curve's docstring even
    # called its rates differentiable.
    def f(g):
        out = call(hhjax.HHParams(g_na=g))
        return jnp.sum(jnp.asarray(jax.tree.leaves(out)[0], float))

    with pytest.raises(ValueError, match=rf"{name} needs concrete inputs: .* call "):
        jax.grad(f)(120.0)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: analysis.fixed_point(hhjax.HHParams(), 5000.0), "i_ext"),
        (lambda: analysis.limit_cycle(hhjax.HHParams(), 5000.0), "i_ext"),
        (lambda: analysis.fi_curve(hhjax.HHParams(), [5000.0]), "currents"),
        (lambda: analysis.hopf_points(hhjax.HHParams(), (0.0, 5000.0)), "i_range"),
        (lambda: analysis.classify_hopf(hhjax.HHParams(), 5000.0), "i_hopf"),
    ],
)
def test_a_current_in_pa_is_named_without_an_option_the_function_lacks(call, name):
    # The message offered `check_inputs=False`, which these functions do not take,
    # and named fi_curve's `currents` as `i_ext`.
    with pytest.raises(ValueError, match=rf"`{name}` reaches \|I\| = 5000") as err:
        call()
    assert "check_inputs" not in str(err.value)


def test_fi_curve_refuses_a_duration_that_is_not_whole_steps():
    # duration 100 ms at dt 0.03 ran 3333 steps and reported the window to
    # 99.99 ms, silently.
    with pytest.raises(ValueError, match=r"`duration` 100\.0 ms is not a whole number"):
        analysis.fi_curve(
            hhjax.HHParams(), [10.0], duration=100.0, dt=0.03, transient=10.0
        )


def test_fi_curve_needs_sustained_firing_and_reports_the_single_spike_rheobase():
    # Below its onset of repetitive firing (~6.26 uA/cm^2 from rest) squid HH
    # fires a train that stops: 6.25 fired 8 spikes up to 141.6 ms of 500 and was
    # reported repetitive (rheobase 6.25 at 46 Hz). The single-spike rheobase
    # (~2.24 for a long step) was not reported at all.
    currents = [2.0, 2.3, 6.0, 6.25, 7.0]
    fi = analysis.fi_curve(hhjax.HHParams(), currents, duration=500.0, transient=100.0)
    assert int(fi.counts[3]) >= 2  # in the window, but the train stops
    assert fi.repetitive.tolist() == [False, False, False, False, True]
    assert fi.rheobase == 7.0 and fi.single_spike_rheobase == 2.3


def test_spike_threshold_at_the_mean_voltage_warns():
    # HH's 1952 convention rests at 0 mV: the default 0 mV threshold counted the
    # ripples of a subthreshold step as 3 spikes (63.7 Hz), silently.
    dt = 0.01
    i_ext = hhjax.stimulus.step(1.0, start=5.0, stop=45.0, duration=100.0, dt=dt)
    trace = hhjax.simulate(hhjax.HHParams.hh1952(), i_ext, dt)
    with pytest.warns(UserWarning, match=r"1952 convention .* about 65 mV"):
        analysis.spike_count(trace)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert int(analysis.spike_count(trace, 65.0)) == 0
        modern = hhjax.simulate(hhjax.HHParams(), i_ext, dt)
        assert int(analysis.spike_count(modern)) == 0
    with pytest.raises(ValueError, match=r"`threshold` \(-30 mV\) must be more than 5"):
        analysis.fi_curve(hhjax.HHParams.hh1952(), [10.0], threshold=-30.0)


@pytest.mark.parametrize(
    "call",
    [
        lambda p: analysis.fixed_point(p),
        lambda p: analysis.classify_hopf(p, 5.0),
        lambda p: analysis.fi_curve(p, [1.0], duration=50.0, transient=10.0),
    ],
)
def test_parameters_without_a_resting_state_are_named(call):
    # fixed_point returned NaN silently, classify_hopf raised numpy's LinAlgError
    # and fi_curve told the user to pass a `state0` it does not take.
    params = hhjax.HHParams(g_na=0.0, g_k=0.0, g_l=0.0)
    with pytest.raises(ValueError, match=r"No fixed point found at i_ext = ") as err:
        call(params)
    assert "state0" not in str(err.value)


def test_a_continuation_without_a_fold_says_how_far_it_went():
    # The message named the currents reached, not the periods, nor that a branch
    # ending in an orbit of infinite period (class 1) has no fold.
    with pytest.raises(
        ValueError, match=r"No fold .* within 2 continuation steps"
    ) as err:
        analysis.limit_cycle_fold(hhjax.HHParams(), 8.0, max_steps=2)
    assert re.search(
        r"periods [0-9.]+\.\.[0-9.]+ ms\)\. .*larger `step`", str(err.value)
    )
