"""Pospischil et al. (2008) channels and RS/FS models: rates, firing, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax.channels import Leak, MCurrent, TraubPotassium, TraubSodium

RS = hhjax.PospischilParams.rs()
FS = hhjax.PospischilParams.fs()
CHANNELS = (TraubSodium(), TraubPotassium(), MCurrent())
# -120..+60 mV every 0.25 mV, plus the removable singularities of the linoid rates
# (u - 13 = 0, u - 40 = 0, u - 15 = 0 with u = V - v_t) and points next to them.
SINGULAR = [RS.v_t + 13.0, RS.v_t + 40.0, RS.v_t + 15.0]
V_GRID = np.unique(
    np.concatenate(
        [np.arange(-120.0, 60.0001, 0.25)]
        + [np.array([s - 1e-7, s, s + 1e-7]) for s in SINGULAR]
    )
)


def _reference_rates(v, p):
    """The published inf/tau and alpha/beta forms, written out with numpy."""
    u = v - p.v_t
    x = v + 35.0
    p_inf = 1.0 / (1.0 + np.exp(-x / 10.0))
    tau_p = p.tau_max / (3.3 * np.exp(x / 20.0) + np.exp(-x / 20.0))
    return {
        "m": (
            -0.32 * (u - 13.0) / (np.exp(-(u - 13.0) / 4.0) - 1.0),
            0.28 * (u - 40.0) / (np.exp((u - 40.0) / 5.0) - 1.0),
        ),
        "h": (
            0.128 * np.exp(-(u - 17.0) / 18.0),
            4.0 / (1.0 + np.exp(-(u - 40.0) / 5.0)),
        ),
        "n": (
            -0.032 * (u - 15.0) / (np.exp(-(u - 15.0) / 5.0) - 1.0),
            0.5 * np.exp(-(u - 10.0) / 40.0),
        ),
        "p": (p_inf / tau_p, (1.0 - p_inf) / tau_p),
    }


def test_rates_match_published_forms_away_from_singularities():
    v = np.arange(-119.9, 60.0, 0.7)  # never exactly on a singular point
    ref = _reference_rates(v, RS)
    for ch in CHANNELS:
        for gate, r in ch.rates(jnp.asarray(v), RS).items():
            np.testing.assert_allclose(r.alpha, ref[gate][0], rtol=1e-10)
            np.testing.assert_allclose(r.beta, ref[gate][1], rtol=1e-10)


@pytest.mark.parametrize("channel", CHANNELS, ids=lambda c: type(c).__name__)
def test_rates_finite_with_finite_gradients(channel):
    v = jnp.asarray(V_GRID)
    for gate in channel.gates:
        for which in ("alpha", "beta"):

            def rate(v, p, gate=gate, which=which):
                return getattr(channel.rates(v, p)[gate], which)

            values = np.asarray(rate(v, RS))
            assert np.all(np.isfinite(values)) and np.all(values >= 0)
            grads = jax.vmap(jax.grad(rate), in_axes=(0, None))(v, RS)
            assert np.all(np.isfinite(grads)), (gate, which)
            dparams = jax.vmap(jax.grad(rate, argnums=1), in_axes=(0, None))(v, RS)
            for name, g in dparams._asdict().items():
                assert np.all(np.isfinite(g)), (gate, which, name)


@pytest.mark.parametrize("v_sing", SINGULAR)
def test_singular_points_are_the_limits(v_sing):
    """At 0/0 the value and slope equal the limit of the neighbouring values."""
    for ch in (TraubSodium(), TraubPotassium()):
        for gate in ch.gates:
            for which in ("alpha", "beta"):

                def rate(v, ch=ch, gate=gate, which=which):
                    return getattr(ch.rates(v, RS)[gate], which)

                h = 1e-4
                left, mid, right = (
                    float(rate(jnp.float64(v_sing + d))) for d in (-h, 0, h)
                )
                assert mid == pytest.approx(0.5 * (left + right), rel=1e-7)
                slope = (right - left) / (2 * h)
                assert float(jax.grad(rate)(jnp.float64(v_sing))) == pytest.approx(
                    slope, rel=1e-5, abs=1e-9
                )


def test_currents_and_leak_are_finite_and_differentiable():
    gates = {"m": 0.3, "h": 0.6, "n": 0.4, "p": 0.2}
    for ch in (*CHANNELS, Leak()):
        grad = jax.grad(lambda v, p, ch=ch: ch.current(v, gates, p), argnums=(0, 1))
        for v in (-120.0, -70.0, 0.0, 60.0):
            dv, dp = grad(v, RS)
            assert np.isfinite(dv) and all(np.isfinite(x) for x in dp)


def test_temperature_scaling_per_channel():
    warm, cold = RS, RS._replace(temperature=26.0)
    model = hhjax.model_of(RS)
    r_warm, r_cold = model.rates(-60.0, warm), model.rates(-60.0, cold)
    for gate in ("m", "h", "n"):  # Na+/K+ rates: q10 = 3 per 10 degC
        assert r_cold[gate].alpha / r_warm[gate].alpha == pytest.approx(1 / 3.0)
    assert r_cold["p"].beta / r_warm["p"].beta == pytest.approx(1 / 2.3)  # q10_m
    hot = RS._replace(temperature=46.0, q10_g=1.5)
    state = hhjax.resting_state(RS)
    ratio = model.currents(state, hot)["i_kd"] / model.currents(state, RS)["i_kd"]
    assert ratio == pytest.approx(1.5)


def test_registry_names_and_parameter_sets():
    assert set(hhjax.MODELS) >= {"hh", "pospischil-rs", "pospischil-fs"}
    assert hhjax.default_params("pospischil-rs") == RS
    fs = hhjax.default_params("pospischil-fs", v_t=-57.0)
    assert fs.g_m == 0.0 and fs.g_kd == 10.0 and fs.v_t == -57.0
    assert hhjax.model_of(fs) is hhjax.POSPISCHIL
    assert hhjax.model_of(hhjax.default_params("hh")) is hhjax.HH
    with pytest.raises(ValueError, match="Unknown model 'pospischil'"):
        hhjax.default_params("pospischil")
    with pytest.raises(
        ValueError,
        match=r"model 'hh': unknown parameter\(s\) g_kd for HHParams; expected names "
        r"among g_na, .* \(g_kd: parameters of pospischil-rs, pospischil-fs\)",
    ):
        hhjax.default_params("hh", g_kd=5.0)


@pytest.mark.parametrize("params", [RS, FS], ids=["rs", "fs"])
@pytest.mark.parametrize("i_ext", [0.0, 0.5])
def test_resting_state_is_a_fixed_point(params, i_ext):
    state = hhjax.resting_state(params, i_ext)
    deriv = hhjax.model_of(params).derivative(state, params, i_ext)
    for name, d in deriv._asdict().items():
        assert abs(float(d)) < 1e-10, name
    assert -80.0 < float(state.v) < -60.0
    for method in hhjax.METHODS:  # every integrator leaves it in place
        after = hhjax.step(state, params, i_ext, 0.025, method)
        assert float(after.v) == pytest.approx(float(state.v), abs=1e-9)


def _spike_times(params, amplitude, dt=0.025, duration=400.0):
    n = round(duration / dt)
    i_ext = np.zeros(n)
    i_ext[int(50 / dt) :] = amplitude
    v = np.asarray(hhjax.simulate(params, i_ext, dt, record="v").v)
    up = np.flatnonzero((v[:-1] < 0.0) & (v[1:] >= 0.0))
    return up * dt


def test_rs_adapts_and_fs_fires_fast_without_adaptation():
    rs = np.diff(_spike_times(RS, 5.0))
    fs = np.diff(_spike_times(FS, 10.0))
    assert len(rs) >= 10 and len(fs) >= 30
    assert rs[-1] > 1.3 * rs[0]  # spike-frequency adaptation (M current)
    assert 1000.0 / fs.mean() > 100.0  # fast spiking, > 100 Hz
    assert np.ptp(fs[1:]) < 0.02 * fs.mean()  # no adaptation


def test_no_m_current_no_adaptation():
    isi = np.diff(_spike_times(RS._replace(g_m=0.0), 5.0))
    assert abs(isi[-1] - isi[1]) < 0.02 * isi[1]


def test_simulate_batched_and_gradients():
    dt, n = 0.025, 400  # 10 ms
    i_ext = np.zeros((n, 2))
    i_ext[40:, :] = [3.0, 6.0]
    params = RS._replace(g_kd=jnp.array([5.0, 6.0]))
    trace = hhjax.simulate(params, i_ext, dt)
    assert trace.v.shape == (n, 2) and trace.i_m.shape == (n, 2)
    for gate in ("m", "h", "n", "p"):
        x = np.asarray(getattr(trace, gate))
        assert np.all((x >= 0) & (x <= 1))

    drive = np.zeros(n)
    drive[40:] = 15.0  # spikes within the 10 ms

    def loss(x):  # x = (g_na mS/cm^2, v_t mV, g_m mS/cm^2)
        p = RS._replace(g_na=x[0], v_t=x[1], g_m=x[2])
        return jnp.mean(hhjax.simulate(p, drive, dt, record="v").v)

    x0 = jnp.array([50.0, -55.0, 0.07])
    grad = np.asarray(jax.grad(loss)(x0))
    assert np.all(np.isfinite(grad)) and np.all(grad != 0)
    for k, h in enumerate((1e-3, 1e-4, 1e-4)):  # central differences
        e = h * np.eye(3)[k]
        fd = (float(loss(x0 + e)) - float(loss(x0 - e))) / (2 * h)
        assert grad[k] == pytest.approx(fd, rel=1e-4, abs=1e-6)
