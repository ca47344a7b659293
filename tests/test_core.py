"""Core behaviour of hhjax: gradients, batching, caching, fixed points, options."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import hhjax
from hhjax import HHParams, HHState, rates, stimulus
from hhjax._simulate import _run

DT = 0.01  # ms


@pytest.fixture(scope="module")
def spike_current():
    """6 ms with a 20 uA/cm^2 pulse from 1 ms: one spike near 3 ms."""
    return stimulus.step(20.0, start=1.0, stop=6.0, duration=6.0, dt=DT)


# ------------------------------------------------------------------- gradients
def test_check_grads_every_parameter(spike_current):
    trace0 = hhjax.simulate(HHParams(), spike_current, DT)
    assert float(trace0.v.max()) > 20.0, "the test trace must contain a spike"
    target = trace0.v + 1.0

    def loss(params):
        v = hhjax.simulate(params, spike_current, DT, record=("v",)).v
        return jnp.mean((v - target) ** 2)

    # Perturb around a non-default point so that no parameter sits at a kink.
    params = HHParams(temperature=8.0, q10_g=1.2, v_shift=0.3)
    check_grads(loss, (params,), order=1, modes=("rev", "fwd"), atol=1e-4, rtol=1e-4)


SINGULAR_POINTS = {
    "modern": (HHParams(), (-40.0, -55.0)),
    "hh1952": (HHParams.hh1952(), (25.0, 10.0)),
}


@pytest.mark.parametrize("convention", sorted(SINGULAR_POINTS))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_rates_and_gradients_finite_at_singular_points(convention, dtype):
    params, points = SINGULAR_POINTS[convention]
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), params)
    for v in points:
        v = jnp.asarray(v, dtype)
        rates = hhjax.HH.rates(v, params)
        assert all(jnp.isfinite(r).all() for r in jax.tree.leaves(rates))
        state = hhjax.HH.steady_state(v, params)
        for method in hhjax.METHODS:

            def vnext(v0, p, method=method, state=state):
                s = state._replace(v=v0)
                return hhjax.step(s, p, jnp.asarray(5.0, dtype), 0.01, method).v

            dv, dp = jax.grad(vnext, argnums=(0, 1))(v, params)
            assert jnp.isfinite(dv) and all(
                jnp.isfinite(x) for x in jax.tree.leaves(dp)
            )


@pytest.mark.parametrize("v_half,a,k", [(-40.0, 0.1, 10.0), (-55.0, 0.01, 10.0)])
def test_linoid_value_and_gradient_near_singularity(v_half, a, k):
    def exact(v):  # direct formula, accurate away from the singular point
        x = v - v_half
        return a * x / (-np.expm1(-x / k))

    # Value at the point is the limit a*k; slope there is a/2.
    assert float(rates.linoid(v_half, a, v_half, k)) == pytest.approx(a * k, rel=1e-15)
    slope = jax.grad(lambda v: rates.linoid(v, a, v_half, k))(jnp.asarray(v_half))
    assert float(slope) == pytest.approx(a / 2, rel=1e-12)
    # Around the series/expm1 switch (|u| = 0.1 <-> |x| = 1 mV) and beyond.
    for x in [1e-9, 1e-4, 0.3, 0.999, 1.001, 2.0, 10.0, -0.5, -1.001, -10.0]:
        v = v_half + x
        u = (v - v_half) / k  # the x actually represented in float64
        series = a * k * (1 + u / 2 + u * u / 12)  # error O(u^4) < 1e-16 here
        assert float(rates.linoid(v, a, v_half, k)) == pytest.approx(
            exact(v) if abs(x) > 1e-3 else series, rel=1e-12
        )
        h = 1e-4
        fd = (exact(v + h) - exact(v - h)) / (2 * h) if abs(x) > 0.01 else a / 2
        g = jax.grad(lambda u: rates.linoid(u, a, v_half, k))(jnp.asarray(v))
        assert float(g) == pytest.approx(fd, rel=2e-6 if abs(x) > 0.01 else 1e-3)


@pytest.mark.parametrize(
    ("dtype", "value_tol", "slope_tol"),
    [(jnp.float64, 1e-14, 5e-13), (jnp.float32, 4e-7, 2.5e-6)],
)
def test_x_over_expm1_and_its_derivative_against_50_digit_arithmetic(
    dtype, value_tol, slope_tol
):
    # Every branch: the series (|z| < 0.07 in float64, < 0.3 in float32), both
    # sides of the switch, and the direct formula out to |z| = 20.
    import decimal

    decimal.getcontext().prec = 50
    z = np.concatenate(
        [
            np.linspace(-20.0, 20.0, 4001),
            np.linspace(-0.4, 0.4, 801),
            [0.0, 1e-9, -1e-9, 0.0699, 0.0701, 0.2999, 0.3001],
        ]
    )
    z = np.concatenate([z, -z[-4:]])
    z_in = jnp.asarray(z, dtype)
    value = np.asarray(rates.x_over_expm1(z_in), np.float64)
    slope = np.asarray(jax.vmap(jax.grad(rates.x_over_expm1))(z_in), np.float64)
    for zk, vk, sk in zip(np.asarray(z_in, np.float64), value, slope, strict=True):
        x = decimal.Decimal(float(zk))
        if x == 0:
            exact, exact_slope = decimal.Decimal(1), decimal.Decimal("-0.5")
        else:
            e = x.exp()
            exact = x / (e - 1)
            exact_slope = 1 / (e - 1) - x * e / (e - 1) ** 2
        assert abs(vk / float(exact) - 1) < value_tol, (zk, vk)
        assert abs(sk / float(exact_slope) - 1) < slope_tol, (zk, sk)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_x_over_expm1_gradient_is_finite_where_exp_overflows(dtype):
    # exp(z) overflows above z = 88.7 (float32) / 709.8 (float64): the value was
    # 0 but its gradient inf/inf = NaN, and with it jax.grad of a run under a
    # strong hyperpolarising current (Pospischil RS, -50 uA/cm^2, float32,
    # exp_euler: V -567 mV, grad NaN where finite differences give 3049).
    z = jnp.asarray([30.0, 88.0, 89.0, 100.0, 709.0, 710.0, 1e4, 1e30], dtype)
    value = rates.x_over_expm1(z)
    slope = jax.vmap(jax.grad(rates.x_over_expm1))(z)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(slope))
    assert np.all(np.asarray(value) >= 0) and np.all(np.asarray(value) < 1e-11)
    assert np.all(np.abs(np.asarray(slope)) < 1e-11)
    params = jax.tree.map(lambda x: jnp.asarray(x, dtype), hhjax.PospischilParams.rs())
    i_ext = jnp.full(400, -50.0, dtype)

    def mean_v(g_l):
        trace = hhjax.simulate(
            params._replace(g_l=g_l), i_ext, 0.025, method="exp_euler", record="v"
        )
        return jnp.mean(trace.v)

    g_l = jnp.asarray(0.1, dtype)
    grad = float(jax.grad(mean_v)(g_l))
    fd = (float(mean_v(g_l + 1e-3)) - float(mean_v(g_l - 1e-3))) / 2e-3
    assert np.isfinite(grad) and grad == pytest.approx(fd, rel=1e-2)


# -------------------------------------------------------------------- batching
def test_batch_equals_one_by_one():
    amps = jnp.array([0.0, 8.0, 30.0])
    g_na = jnp.array([100.0, 120.0, 140.0])
    i_ext = stimulus.step(amps, start=2.0, stop=20.0, duration=25.0, dt=0.025)
    batch = hhjax.simulate(HHParams(g_na=g_na), i_ext, 0.025)
    for b in range(3):
        single = hhjax.simulate(HHParams(g_na=g_na[b]), i_ext[:, b], 0.025)
        for name in ("v", "m", "h", "n", "i_na", "i_k", "i_l"):
            np.testing.assert_allclose(
                getattr(batch, name)[:, b],
                getattr(single, name),
                rtol=1e-12,
                atol=1e-12,
            )
    vmapped = jax.vmap(
        lambda g, i: hhjax.simulate(HHParams(g_na=g), i, 0.025).v, in_axes=(0, 1)
    )(g_na, i_ext)
    np.testing.assert_allclose(vmapped.T, batch.v, rtol=1e-12, atol=1e-12)


def test_parameter_batch_broadcasts_against_current_batch():
    i_ext = stimulus.constant(jnp.array([5.0, 15.0]), 5.0, 0.025)  # (T, 2)
    g_k = jnp.array([[30.0], [36.0], [42.0]])  # (3, 1)
    trace = hhjax.simulate(HHParams(g_k=g_k), i_ext, 0.025)
    assert trace.v.shape == (200, 3, 2)
    np.testing.assert_allclose(
        trace.v[:, 1, 0],
        hhjax.simulate(HHParams(g_k=36.0), i_ext[:, 0], 0.025).v,
        rtol=1e-12,
    )


def test_second_call_with_same_shapes_does_not_recompile():
    i_ext = stimulus.constant(7.0, 3.0, 0.02)
    hhjax.simulate(HHParams(g_na=100.0, e_l=-55.0), i_ext, 0.02)
    before = _run._cache_size()
    hhjax.simulate(HHParams(g_na=110.0, e_l=-60.0), i_ext * 1.5, 0.025)
    assert _run._cache_size() == before


def test_defaults_compiled_in_give_the_same_trace_as_run_time_values():
    # Fields at their default as Python numbers are compiled in as constants; a
    # field moved off its default becomes a run-time value (one more compilation).
    # The arithmetic is the same up to XLA's rounding.
    i_ext = stimulus.step(10.0, start=2.0, stop=20.0, duration=30.0, dt=0.025)
    compiled_in = hhjax.simulate(HHParams(), i_ext, 0.025)
    run_time = hhjax.simulate(
        HHParams(*(jnp.asarray(x) for x in HHParams())), i_ext, 0.025
    )
    assert int(jnp.sum(compiled_in.v > 0)) > 0  # it spikes
    for field in ("v", "m", "h", "n", "i_na", "i_k", "i_l"):
        np.testing.assert_allclose(
            getattr(compiled_in, field), getattr(run_time, field), rtol=0, atol=1e-9
        )
    before = _run._cache_size()
    hhjax.simulate(HHParams(g_k=30.0), i_ext, 0.025)
    hhjax.simulate(HHParams(g_k=31.0), i_ext, 0.025)
    assert _run._cache_size() == before + 1


# ------------------------------------------------------------- fixed point, gates
def test_resting_state_value_and_convention():
    rest = hhjax.resting_state(HHParams())
    assert float(rest.v) == pytest.approx(-64.996, abs=1e-3)
    rest52 = hhjax.resting_state(HHParams.hh1952())
    assert abs(float(rest52.v)) < 0.01
    net = hhjax.HH.total_current(rest, HHParams())
    assert abs(float(net)) < 1e-12


@pytest.mark.parametrize("method", sorted(hhjax.METHODS))
def test_rest_is_a_fixed_point(method):
    params = HHParams()
    trace = hhjax.simulate(params, jnp.zeros(10_000), DT, method=method)
    assert float(jnp.max(jnp.abs(trace.v - trace.v[0]))) <= 1e-9
    for gate in (trace.m, trace.h, trace.n):
        assert float(gate.min()) >= 0.0 and float(gate.max()) <= 1.0


@pytest.mark.parametrize(
    "params, i_ext",
    [(HHParams(), -50.0), (hhjax.PospischilParams(g_l=0.0205), -3.0)],
)
def test_resting_state_beyond_the_reversal_potentials(params, i_ext):
    # A strong hyperpolarising current puts rest below min(E) - 100 mV, outside
    # the first bracket: it is still the root (net current = i_ext), and stable.
    model = hhjax.model_of(params)
    rest = hhjax.resting_state(params, i_ext)
    e_min = min(float(getattr(params, n)) for n in params._fields if n[:2] == "e_")
    assert float(rest.v) < e_min - 100.0
    net = model.total_current(rest, params) - i_ext
    assert abs(float(net)) < 1e-9
    # Far below every gate's range only the leak is left: dV/dI = 1 / g_l.
    grad = jax.grad(lambda i: hhjax.resting_state(params, i).v)(i_ext)
    assert float(grad) == pytest.approx(1.0 / float(params.g_l), rel=1e-3)


def test_resting_state_takes_lists_as_batches_and_names_bad_params():
    rest = hhjax.resting_state(HHParams(g_na=[100.0, 120.0]))
    assert rest.v.shape == (2,)
    assert float(rest.v[1]) == pytest.approx(float(hhjax.resting_state(HHParams()).v))
    with pytest.raises(TypeError, match=r"`params` must be a model's parameter tuple"):
        hhjax.resting_state({"g_na": 120.0})


def test_the_default_state0_keeps_the_inputs_dtype():
    # Under x64 the resting state is computed in float64; a float32 current with
    # default (weakly typed) parameters still runs in float32, as with a state0.
    i_ext = jnp.full(40, 5.0, jnp.float32)
    assert hhjax.simulate(HHParams(), i_ext, 0.025).v.dtype == jnp.float32


def test_resting_state_checks_its_parameters():
    with pytest.raises(ValueError, match="`g_k` must be finite"):
        hhjax.resting_state(HHParams(g_k=float("nan")))
    with pytest.raises(ValueError, match="`tau_max` \\(ms\\) must be > 0"):
        hhjax.resting_state(hhjax.PospischilParams(tau_max=0.0))


@pytest.mark.parametrize("i_ext", [float("nan"), float("inf"), [0.0, -np.inf]])
def test_resting_state_rejects_a_non_finite_current(i_ext):
    with pytest.raises(ValueError, match=r"`i_ext` contains non-finite values"):
        hhjax.resting_state(HHParams(), i_ext)
    # Traced currents are not checked (jit stays possible).
    v = jax.jit(lambda i: hhjax.resting_state(HHParams(), i).v)(jnp.asarray(i_ext))
    assert np.isnan(np.ravel(v)[-1])  # the non-finite entry


def test_resting_state_refuses_a_current_in_pa():
    # 1500 "uA/cm^2" is 1500 pA not divided by a capacitance, as simulate says.
    with pytest.raises(ValueError, match=r"\|I\| = 1500.*looks like a current in pA"):
        hhjax.resting_state(HHParams(), 1500.0)
    rest = hhjax.resting_state(HHParams(), 1500.0, check_inputs=False)
    assert float(hhjax.HH.total_current(rest, HHParams())) == pytest.approx(1500.0)


def test_resting_state_check_inputs_false_skips_the_checks():
    params = HHParams(g_l=-0.05)
    with pytest.raises(ValueError, match=r"`g_l`.* must be >= 0"):
        hhjax.resting_state(params)
    # As in simulate(check_inputs=False): no ValueError; no root here, so NaN.
    assert np.isnan(float(hhjax.resting_state(params, check_inputs=False).v))
    rest = hhjax.resting_state(HHParams(g_l=0.2), 1.0, check_inputs=False)
    net = hhjax.HH.total_current(rest, HHParams(g_l=0.2))
    assert float(net) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    ("i_ext", "found"), [(-1500.0, True), (1.8e5, True), (-1700.0, False), (2e5, False)]
)
def test_resting_state_reach_of_the_widened_bracket(i_ext, found):
    # The docstring: the widened bracket reaches about -5080 to +5060 mV for
    # HHParams, i.e. i_ext from about -1500 to +1.8e5 uA/cm^2; beyond it, NaN.
    # Such currents are refused as pA unless the checks are off.
    rest = hhjax.resting_state(HHParams(), i_ext, check_inputs=False)
    if found:
        assert -5082.0 <= float(rest.v) <= 5055.0
        net = hhjax.HH.total_current(rest, HHParams())
        assert float(net) == pytest.approx(i_ext, rel=1e-9)
    else:
        assert np.isnan(float(rest.v))


def test_resting_state_gradient_matches_finite_differences():
    def v_rest(g_k):
        return hhjax.resting_state(HHParams(g_k=g_k)).v

    g = float(jax.grad(v_rest)(36.0))
    h = 1e-4
    fd = (float(v_rest(36.0 + h)) - float(v_rest(36.0 - h))) / (2 * h)
    assert g == pytest.approx(fd, rel=1e-6)


def test_resting_state_with_current_and_batch():
    i = jnp.array([-2.0, 0.0, 3.0])
    rest = hhjax.resting_state(HHParams(), i)
    assert rest.v.shape == (3,)
    assert bool(jnp.all(jnp.diff(rest.v) > 0))
    net = hhjax.HH.total_current(rest, HHParams())
    np.testing.assert_allclose(net, i, atol=1e-10)


# -------------------------------------------------------------------- options
def test_record_subset_and_stride():
    i_ext = stimulus.step(12.0, start=1.0, stop=30.0, duration=30.0, dt=0.025)
    full = hhjax.simulate(HHParams(), i_ext, 0.025)
    only_v = hhjax.simulate(HHParams(), i_ext, 0.025, record=("v",), stride=4)
    assert only_v.m is None and only_v.i_na is None
    np.testing.assert_array_equal(only_v.v, full.v[::4])
    np.testing.assert_allclose(only_v.t, full.t[::4], rtol=1e-15, atol=1e-12)


def test_sample_times_and_initial_state():
    i_ext = stimulus.constant(3.0, 1.0, 0.05)
    state0 = HHState(v=-70.0, m=0.05, h=0.6, n=0.3)
    trace, final = hhjax.simulate(
        HHParams(), i_ext, 0.05, state0=state0, method="euler", return_state=True
    )
    assert trace.t.shape == (20,) and float(trace.t[0]) == 0.0
    assert float(trace.v[0]) == -70.0
    # The final state is one step past the last sample.
    last = HHState(trace.v[-1], trace.m[-1], trace.h[-1], trace.n[-1])
    expect = hhjax.step(last, HHParams(), 3.0, 0.05, "euler")
    np.testing.assert_allclose(final.v, expect.v, rtol=1e-14)


def _plain_scan(params, i_ext, dt, method):
    def body(state, i):
        return hhjax.step(state, params, i, dt, method), state.v

    _, v = jax.lax.scan(body, hhjax.resting_state(params), i_ext)
    return v


def test_chunked_long_scan_equals_plain_scan_and_its_gradient(monkeypatch):
    # A zero memory budget forces the nested, sqrt(n)-chunked checkpointed scan
    # (3000 samples: 54 chunks of 54 and a remainder of 84).
    # (exp_euler: the cheapest step to compile; the chunking is the same for all.)
    monkeypatch.setattr(hhjax._simulate, "_GRADIENT_MEMORY_BUDGET", 0)
    i_ext = stimulus.constant(9.0, 30.0, 0.01)
    method = "exp_euler"
    trace = hhjax.simulate(HHParams(), i_ext, 0.01, record=("v",), method=method)
    # HHParams() closed over: its defaults are compiled in as constants, as
    # simulate does with Python numbers at their defaults.
    plain = jax.jit(lambda i, dt: _plain_scan(HHParams(), i, dt, method))(i_ext, 0.01)
    np.testing.assert_array_equal(trace.v, plain)

    def loss(g_na, fn):
        return jnp.mean(fn(HHParams(g_na=g_na)) ** 2)

    g_sim = jax.grad(loss)(
        120.0, lambda p: hhjax.simulate(p, i_ext, 0.01, method=method).v
    )
    g_ref = jax.grad(loss)(120.0, lambda p: _plain_scan(p, i_ext, 0.01, method))
    assert float(g_sim) == pytest.approx(float(g_ref), rel=1e-10)


@pytest.mark.parametrize("stride", [10, 300])
def test_chunked_scan_with_a_stride_equals_plain_scan_and_its_gradient(
    monkeypatch, stride
):
    # Chunks of about sqrt(3000) = 54 steps: stride 10, 300 blocks in 60 chunks of
    # 5; stride 300 (more than 54 steps), 10 blocks, each its own chunk, with its
    # 300 steps in 17 chunks of 17 and 11 more.
    monkeypatch.setattr(hhjax._simulate, "_GRADIENT_MEMORY_BUDGET", 0)
    assert (
        hhjax._simulate._chunk_lengths(3000, stride, 1, 4)
        == {
            10: (5, 10),
            300: (1, 17),
        }[stride]
    )
    i_ext = stimulus.constant(9.0, 30.0, 0.01)
    rest = hhjax.resting_state(HHParams())  # given: no resting-state solve to compile

    def simulated(p):
        trace, final = hhjax.simulate(
            p, i_ext, 0.01, state0=rest, method="exp_euler", stride=stride,
            record=("v",), return_state=True,
        )  # fmt: skip
        return trace.v, final.v

    def plain(p):
        def body(state, i):
            return hhjax.step(state, p, i, 0.01, "exp_euler"), state.v

        final, v = jax.lax.scan(body, rest, i_ext)
        return v[::stride], final.v

    for got, expected in zip(
        simulated(HHParams()), jax.jit(plain)(HHParams()), strict=True
    ):  # the same steps; XLA may fuse the nested loops differently, and a
        # rounding difference grows through a spike
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=0)

    def loss(g_na, fn):
        v, final = fn(HHParams(g_na=g_na))
        return jnp.mean(v**2) + final**2

    g_sim = jax.grad(loss)(120.0, simulated)
    g_ref = jax.grad(loss)(120.0, plain)
    assert float(g_sim) == pytest.approx(float(g_ref), rel=1e-10)


def test_gradient_memory_is_bounded_whatever_the_stride(monkeypatch):
    # A gradient of the final state alone (stride = all steps: one block, 63
    # chunks of 63 steps and 31 more once chunked) stores O(sqrt(n)) states, not
    # one state per step, and is the same gradient.
    i_ext = stimulus.constant(9.0, 40.0, 0.01)  # 4000 steps
    g_na = jnp.linspace(100.0, 140.0, 64)

    def compiled_gradient():
        def loss(g, i):
            _, final = hhjax.simulate(
                HHParams(g_na=g),
                i,
                0.01,
                stride=4000,
                record=("v",),
                return_state=True,
                check_inputs=False,
                method="exp_euler",
            )
            return jnp.sum(final.v)

        return jax.jit(jax.grad(loss)).lower(g_na, i_ext).compile()

    states_bytes = 4000 * 64 * 4 * 8  # one HH state per step
    stored = compiled_gradient()  # within the budget
    assert stored.memory_analysis().temp_size_in_bytes > states_bytes
    monkeypatch.setattr(hhjax._simulate, "_GRADIENT_MEMORY_BUDGET", 0)
    chunked = compiled_gradient()
    assert chunked.memory_analysis().temp_size_in_bytes < states_bytes / 10
    np.testing.assert_allclose(
        chunked(g_na, i_ext), stored(g_na, i_ext), rtol=1e-10, atol=0
    )


def test_time_axis_for_concrete_and_traced_steps():
    # The time axis is built outside the scan, by its own jit; under jit with a
    # traced dt it is built in the caller's computation. Each trace owns its t.
    i_ext = stimulus.constant(2.0, 2.0, 0.025)  # 80 steps
    expect = np.arange(20) * 4 * 0.025
    first, second = (hhjax.simulate(HHParams(), i_ext, 0.025, stride=4) for _ in "12")
    first.t.delete()  # e.g. donated by a caller
    np.testing.assert_allclose(second.t, expect, rtol=1e-15, atol=0)
    traced = jax.jit(lambda dt: hhjax.simulate(HHParams(), i_ext, dt, stride=4).t)
    np.testing.assert_allclose(traced(0.025), expect, rtol=1e-15, atol=0)
    np.testing.assert_allclose(traced(0.02), np.arange(20) * 4 * 0.02, rtol=1e-15)
    params32 = HHParams(*(jnp.float32(x) for x in HHParams()))
    t32 = hhjax.simulate(params32, i_ext.astype(jnp.float32), 0.025, stride=4).t
    assert t32.dtype == jnp.float32
    np.testing.assert_allclose(t32, expect, rtol=1e-6)


def test_jit_and_grad_through_simulate_with_traced_inputs():
    i_ext = stimulus.step(10.0, start=1.0, stop=10.0, duration=10.0, dt=0.025)

    @jax.jit
    def peak(amplitude, e_k):
        return hhjax.simulate(HHParams(e_k=e_k), amplitude * i_ext, 0.025).v.max()

    assert float(peak(2.0, -77.0)) > 20.0
    dv = jax.grad(peak)(2.0, -77.0)
    assert jnp.isfinite(dv)


def test_temperature_speeds_up_kinetics():
    i_ext = stimulus.constant(15.0, 60.0, 0.01)
    counts = []
    for temp in (6.3, 16.3):
        v = np.asarray(hhjax.simulate(HHParams(temperature=temp), i_ext, 0.01).v)
        counts.append(int(np.sum((v[:-1] < 0) & (v[1:] >= 0))))
    assert counts[1] > counts[0] >= 3


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            "--xla_force_host_platform_device_count=4",
            "--xla_force_host_platform_device_count=4 --xla_backend_extra_options="
            "xla_cpu_small_while_loop_byte_threshold=1048576 "
            "--xla_cpu_prefer_vector_width=512",
        ),
        # Other backend options are kept: the threshold joins their list.
        (
            "--xla_backend_extra_options=xla_cpu_enable_fast_math=false",
            "--xla_backend_extra_options=xla_cpu_enable_fast_math=false,"
            "xla_cpu_small_while_loop_byte_threshold=1048576 "
            "--xla_cpu_prefer_vector_width=512",
        ),
        # What the user set is left as it is.
        (
            "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=5 "
            "--xla_cpu_prefer_vector_width=256",
            "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=5 "
            "--xla_cpu_prefer_vector_width=256",
        ),
    ],
)
def test_import_time_xla_tuning_adds_only_what_is_missing(flags, expected):
    from hhjax._xla_flags import tuned_flags

    assert tuned_flags(flags) == expected
