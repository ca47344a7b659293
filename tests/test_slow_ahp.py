"""Slow AHP current (hhjax/channels/slow_ahp.py): rates, gradients, and that the
Pospischil defaults (g_ahp = 0) are the published model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax.channels import SlowAHPCurrent

RS = hhjax.PospischilParams.rs()
ON = RS._replace(g_ahp=0.2, tau_w=120.0, v_w=-15.0)  # switched on
AHP = SlowAHPCurrent()
V_GRID = np.arange(-120.0, 60.0001, 0.25)  # mV


def test_rates_match_the_documented_form():
    rates = AHP.rates(jnp.asarray(V_GRID), ON)["w"]
    opening = 1.0 / (1.0 + np.exp(-(V_GRID - ON.v_w) / 5.0)) / 2.0
    np.testing.assert_allclose(rates.alpha, opening, rtol=1e-12)
    np.testing.assert_allclose(rates.beta, np.full_like(V_GRID, 1.0 / ON.tau_w))


@pytest.mark.parametrize("which", ["alpha", "beta"])
def test_rates_finite_with_finite_gradients(which):
    def rate(v, p):
        return getattr(AHP.rates(v, p)["w"], which)

    v = jnp.asarray(V_GRID)
    values = np.asarray(rate(v, ON))
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
    grads = jax.vmap(jax.grad(rate), in_axes=(0, None))(v, ON)
    assert np.all(np.isfinite(grads))
    dparams = jax.vmap(jax.grad(rate, argnums=1), in_axes=(0, None))(v, ON)
    for name, g in dparams._asdict().items():
        assert np.all(np.isfinite(g)), name


def test_current_finite_and_differentiable():
    grad = jax.grad(lambda v, p: AHP.current(v, {"w": 0.3}, p), argnums=(0, 1))
    for v in (-120.0, -70.0, 0.0, 60.0):
        dv, dp = grad(v, ON)
        assert np.isfinite(dv) and all(np.isfinite(x) for x in dp)


def test_default_parameters_are_the_published_model():
    """At g_ahp = 0 (the RS and FS defaults) the current is exactly zero and V
    does not depend on the gate's kinetics, bit for bit."""
    assert RS.g_ahp == 0.0 and hhjax.PospischilParams.fs().g_ahp == 0.0
    dt, n = 0.05, 4000  # 200 ms, spiking from 20 ms
    i_ext = np.zeros(n)
    i_ext[400:] = 5.0
    trace = hhjax.simulate(RS, i_ext, dt)
    assert np.all(np.asarray(trace.i_ahp) == 0.0)
    other = RS._replace(tau_w=3.0, v_w=-60.0, q10_ahp=3.0)
    v_other = hhjax.simulate(other, i_ext, dt, record="v").v
    np.testing.assert_array_equal(np.asarray(trace.v), np.asarray(v_other))
    assert np.asarray(trace.v).max() > 0.0  # it did spike


def _spike_times(params, amplitude, dt=0.05, duration=600.0):
    n = round(duration / dt)
    i_ext = np.zeros(n)
    i_ext[int(50 / dt) :] = amplitude
    v = np.asarray(hhjax.simulate(params, i_ext, dt, record="v").v)
    return np.flatnonzero((v[:-1] < 0.0) & (v[1:] >= 0.0)) * dt


def test_slow_ahp_adapts_without_a_resting_conductance():
    no_m = RS._replace(g_m=0.0)
    with_ahp = no_m._replace(g_ahp=0.1, tau_w=200.0, v_w=-10.0)
    state = hhjax.resting_state(with_ahp)
    assert float(state.w) < 1e-3  # nearly closed at rest: the rest barely moves
    assert float(state.v) == pytest.approx(float(hhjax.resting_state(no_m).v), abs=0.05)
    isi = np.diff(_spike_times(with_ahp, 5.0))
    assert len(isi) >= 4 and isi[-1] > 1.5 * isi[0]
