"""Channels added to the Pospischil model (slow AHP, I_h, persistent Na+): rates,
gradients, their effect, and that the defaults (g = 0) simulate exactly the published
model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax.channels import HCurrent, PersistentSodium, SlowAHPCurrent

RS = hhjax.PospischilParams.rs()
ON = RS._replace(
    g_ahp=0.2, tau_w=120.0, v_w=-15.0, g_h=0.05, v_h=-85.0, tau_h=40.0, g_nap=0.03
)
V_GRID = np.arange(-120.0, 60.0001, 0.25)  # mV


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _ahp_reference(v, p):
    """``{gate: (alpha, beta)}`` as written in hhjax/channels/slow_ahp.py."""
    return {"w": (_sigmoid((v - p.v_w) / 5.0) / 2.0, np.full_like(v, 1.0 / p.tau_w))}


def _h_reference(v, p):
    """``{gate: (alpha, beta)}`` as written in hhjax/channels/ih.py."""
    r_inf = _sigmoid(-(v - p.v_h) / 8.0)
    return {"r": (r_inf / p.tau_h, (1.0 - r_inf) / p.tau_h)}


CASES = [(SlowAHPCurrent(), _ahp_reference), (HCurrent(), _h_reference)]
IDS = ["slow_ahp", "ih"]


@pytest.mark.parametrize(("channel", "reference"), CASES, ids=IDS)
def test_rates_match_the_documented_form(channel, reference):
    expected = reference(V_GRID, ON)
    for gate, rates in channel.rates(jnp.asarray(V_GRID), ON).items():
        np.testing.assert_allclose(rates.alpha, expected[gate][0], rtol=1e-12)
        np.testing.assert_allclose(rates.beta, expected[gate][1], rtol=1e-12)


@pytest.mark.parametrize(("channel", "reference"), CASES, ids=IDS)
@pytest.mark.parametrize("which", ["alpha", "beta"])
def test_rates_finite_with_finite_gradients(channel, reference, which):
    (gate,) = channel.gates

    def rate(v, p):
        return getattr(channel.rates(v, p)[gate], which)

    v = jnp.asarray(V_GRID)
    values = np.asarray(rate(v, ON))
    assert np.all(np.isfinite(values)) and np.all(values >= 0)
    grads = jax.vmap(jax.grad(rate), in_axes=(0, None))(v, ON)
    assert np.all(np.isfinite(grads))
    dparams = jax.vmap(jax.grad(rate, argnums=1), in_axes=(0, None))(v, ON)
    for name, g in dparams._asdict().items():
        assert np.all(np.isfinite(g)), name


@pytest.mark.parametrize(("channel", "reference"), CASES, ids=IDS)
def test_current_finite_and_differentiable(channel, reference):
    (gate,) = channel.gates
    grad = jax.grad(lambda v, p: channel.current(v, {gate: 0.3}, p), argnums=(0, 1))
    for v in (-120.0, -70.0, 0.0, 60.0):
        dv, dp = grad(v, ON)
        assert np.isfinite(dv) and all(np.isfinite(x) for x in dp)


def test_default_parameters_are_the_published_model():
    """At g_ahp = g_h = g_nap = 0 (the RS and FS defaults) the added currents are
    exactly zero and V does not depend on their kinetics, bit for bit."""
    fs = hhjax.PospischilParams.fs()
    assert RS.g_ahp == RS.g_h == RS.g_nap == fs.g_ahp == fs.g_h == fs.g_nap == 0.0
    dt, n = 0.05, 4000  # 200 ms, spiking from 20 ms
    i_ext = np.zeros(n)
    i_ext[400:] = 5.0
    trace = hhjax.simulate(RS, i_ext, dt)
    assert np.all(np.asarray(trace.i_ahp) == 0.0)
    assert np.all(np.asarray(trace.i_h) == 0.0)
    assert np.all(np.asarray(trace.i_nap) == 0.0)
    other = RS._replace(
        tau_w=3.0, v_w=-60.0, q10_ahp=3.0, v_h=-50.0, tau_h=2.0, v_nap=-65.0
    )
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


def _step_from_rest(params, amplitude, duration, dt=0.05):
    """V (mV) during a step of ``amplitude`` µA/cm² for ``duration`` ms from
    rest, and the resting potential."""
    i_ext = np.full(round(duration / dt), amplitude)
    state0 = hhjax.resting_state(params)
    v = np.asarray(hhjax.simulate(params, i_ext, dt, state0=state0, record="v").v)
    return v, float(state0.v)


def _sag_ratio(params, amplitude=-1.0):
    """Sag ``(V_end − V_min) / (V_rest − V_min)`` (1) of a 400 ms step of
    ``amplitude`` µA/cm² (negative: hyperpolarising) from rest."""
    v, v_rest = _step_from_rest(params, amplitude, 400.0)
    return (v[-1] - v.min()) / (v_rest - v.min())


def test_ih_sags_on_hyperpolarising_steps():
    no_m = RS._replace(g_m=0.0)
    assert abs(_sag_ratio(no_m)) < 1e-6  # linear leak: no sag
    assert _sag_ratio(no_m._replace(g_h=0.05)) > 0.1


def _nap_reference(v, p):
    """``I_nap`` as written in hhjax/channels/nap.py, µA/cm²."""
    return p.g_nap * _sigmoid((v - p.v_nap) / 5.0) * (v - p.e_na)


def test_persistent_sodium_matches_the_documented_form():
    current = PersistentSodium().current(jnp.asarray(V_GRID), {}, ON)
    np.testing.assert_allclose(current, _nap_reference(V_GRID, ON), rtol=1e-12)
    assert PersistentSodium().gates == ()  # instantaneous: no state


def test_persistent_sodium_finite_with_finite_gradients():
    def current(v, p):
        return PersistentSodium().current(v, {}, p)

    v = jnp.asarray(V_GRID)
    assert np.all(np.isfinite(np.asarray(current(v, ON))))
    assert np.all(np.isfinite(jax.vmap(jax.grad(current), in_axes=(0, None))(v, ON)))
    dparams = jax.vmap(jax.grad(current, argnums=1), in_axes=(0, None))(v, ON)
    for name, g in dparams._asdict().items():
        assert np.all(np.isfinite(g)), name


def _steady_deflection(params, amplitude):
    """V at the end of a 600 ms step of ``amplitude`` µA/cm² minus rest, mV."""
    v, v_rest = _step_from_rest(params, amplitude, 600.0)
    return v[-1] - v_rest


def test_persistent_sodium_amplifies_depolarisation_only():
    """I_nap raises the input resistance of depolarising steps (it activates
    above rest), hardly that of hyperpolarising ones, and lowers the current
    needed to fire."""
    passive = RS._replace(g_m=0.0, g_na=0.0, g_kd=0.0, g_l=0.05, e_l=-70.0)
    nap = passive._replace(g_nap=0.005, v_nap=-55.0)
    up_passive, up_nap = _steady_deflection(passive, 0.3), _steady_deflection(nap, 0.3)
    down_passive = _steady_deflection(passive, -0.3)
    down_nap = _steady_deflection(nap, -0.3)
    assert up_nap > 1.2 * up_passive > 0
    assert down_nap == pytest.approx(down_passive, rel=0.1)

    def fires(params, amplitude):
        return len(_spike_times(params, amplitude)) > 0

    with_nap = RS._replace(g_nap=0.02, v_nap=-55.0)
    threshold = next(a for a in np.arange(0.05, 3.0, 0.05) if fires(RS, a))
    assert fires(with_nap, threshold - 0.1) and not fires(RS, threshold - 0.1)
