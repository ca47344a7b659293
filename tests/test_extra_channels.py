"""Channels added to the Pospischil model (slow AHP, I_h, persistent Na+, Kv1-type
D current, inward rectifier): rates, gradients, their effect, and that the
defaults (g = 0) simulate exactly the published model."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax.channels import (
    DCurrent,
    HCurrent,
    InwardRectifier,
    PersistentSodium,
    SlowAHPCurrent,
)

RS = hhjax.PospischilParams.rs()
ON = RS._replace(
    g_ahp=0.2, tau_w=120.0, v_w=-15.0, g_h=0.05, v_h=-85.0, tau_h=40.0, g_nap=0.03,
    g_d=2.0, tau_b=200.0, v_b=-65.0, g_kir=0.2, v_kir=-95.0,
)  # fmt: skip
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


def _d_reference(v, p):
    """``{gate: (alpha, beta)}`` as written in hhjax/channels/kv1.py."""
    a_inf, b_inf = _sigmoid((v + 50.0) / 20.0), _sigmoid(-(v - p.v_b) / 6.0)
    return {
        "a": (a_inf / 2.0, (1.0 - a_inf) / 2.0),
        "b": (b_inf / p.tau_b, (1.0 - b_inf) / p.tau_b),
    }


CASES = [
    (SlowAHPCurrent(), _ahp_reference),
    (HCurrent(), _h_reference),
    (DCurrent(), _d_reference),
]
IDS = ["slow_ahp", "ih", "kv1_d"]


@pytest.mark.parametrize(("channel", "reference"), CASES, ids=IDS)
def test_rates_match_the_documented_form(channel, reference):
    expected = reference(V_GRID, ON)
    for gate, rates in channel.rates(jnp.asarray(V_GRID), ON).items():
        np.testing.assert_allclose(rates.alpha, expected[gate][0], rtol=1e-12)
        np.testing.assert_allclose(rates.beta, expected[gate][1], rtol=1e-12)


@pytest.mark.parametrize(("channel", "reference"), CASES, ids=IDS)
@pytest.mark.parametrize("which", ["alpha", "beta"])
def test_rates_finite_with_finite_gradients(channel, reference, which):
    v = jnp.asarray(V_GRID)
    for gate in channel.gates:

        def rate(v, p, gate=gate):
            return getattr(channel.rates(v, p)[gate], which)

        values = np.asarray(rate(v, ON))
        assert np.all(np.isfinite(values)) and np.all(values >= 0)
        grads = jax.vmap(jax.grad(rate), in_axes=(0, None))(v, ON)
        assert np.all(np.isfinite(grads))
        dparams = jax.vmap(jax.grad(rate, argnums=1), in_axes=(0, None))(v, ON)
        for name, g in dparams._asdict().items():
            assert np.all(np.isfinite(g)), (gate, name)


@pytest.mark.parametrize(("channel", "reference"), CASES, ids=IDS)
def test_current_finite_and_differentiable(channel, reference):
    gates = dict.fromkeys(channel.gates, 0.3)
    grad = jax.grad(lambda v, p: channel.current(v, gates, p), argnums=(0, 1))
    for v in (-120.0, -70.0, 0.0, 60.0):
        dv, dp = grad(v, ON)
        assert np.isfinite(dv) and all(np.isfinite(x) for x in dp)


def test_default_parameters_are_the_published_model():
    """At g_ahp = g_h = g_nap = g_d = g_kir = 0 (the RS and FS defaults) the added
    currents are exactly zero and V does not depend on their kinetics, bit for
    bit."""
    fs = hhjax.PospischilParams.fs()
    for p in (RS, fs):
        assert p.g_ahp == p.g_h == p.g_nap == p.g_d == p.g_kir == 0.0
    dt, n = 0.05, 4000  # 200 ms, spiking from 20 ms
    i_ext = np.zeros(n)
    i_ext[400:] = 5.0
    trace = hhjax.simulate(RS, i_ext, dt)
    assert np.all(np.asarray(trace.i_ahp) == 0.0)
    assert np.all(np.asarray(trace.i_h) == 0.0)
    assert np.all(np.asarray(trace.i_nap) == 0.0)
    assert np.all(np.asarray(trace.i_d) == 0.0)
    assert np.all(np.asarray(trace.i_kir) == 0.0)
    other = RS._replace(
        tau_w=3.0, v_w=-60.0, q10_ahp=3.0, v_h=-50.0, tau_h=2.0, v_nap=-65.0,
        tau_b=5.0, v_b=-40.0, q10_d=3.0, v_kir=-60.0,
    )  # fmt: skip
    v_other = hhjax.simulate(other, i_ext, dt, record="v").v
    np.testing.assert_array_equal(np.asarray(trace.v), np.asarray(v_other))
    assert np.asarray(trace.v).max() > 0.0  # it did spike
    # Both runs above skip the switched-off channels (simulate): integrated with
    # run-time zero conductances they give the same V, bit for bit.
    zeros = {f"g_{name}": jnp.asarray(0.0) for name in ("ahp", "h", "nap", "d", "kir")}
    v_integrated = hhjax.simulate(other._replace(**zeros), i_ext, dt, record="v").v
    np.testing.assert_array_equal(np.asarray(trace.v), np.asarray(v_integrated))


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


def _kir_reference(v, p):
    """``I_kir`` as written in hhjax/channels/kir.py, µA/cm²."""
    return p.g_kir * _sigmoid((p.v_kir - v) / 5.0) * (v - p.e_k)


@pytest.mark.parametrize(
    ("channel", "reference"),
    [(PersistentSodium(), _nap_reference), (InwardRectifier(), _kir_reference)],
    ids=["nap", "kir"],
)
def test_instantaneous_currents_match_the_documented_form(channel, reference):
    current = channel.current(jnp.asarray(V_GRID), {}, ON)
    np.testing.assert_allclose(current, reference(V_GRID, ON), rtol=1e-12)
    assert channel.gates == ()  # instantaneous: no state

    def one(v, p):
        return channel.current(v, {}, p)

    v = jnp.asarray(V_GRID)
    assert np.all(np.isfinite(np.asarray(one(v, ON))))
    assert np.all(np.isfinite(jax.vmap(jax.grad(one), in_axes=(0, None))(v, ON)))
    dparams = jax.vmap(jax.grad(one, argnums=1), in_axes=(0, None))(v, ON)
    for name, g in dparams._asdict().items():
        assert np.all(np.isfinite(g)), name


def test_inward_rectifier_floors_hyperpolarised_steps_only():
    """I_Kir opens below v_kir: a step twice as hyperpolarising moves V only a
    few mV further (the passive cell: twice as far), the cell rectifies (a
    hyperpolarising step moves V less than the same depolarising one), and
    spiking is unchanged."""
    passive = RS._replace(g_m=0.0, g_na=0.0, g_kd=0.0, g_l=0.05, e_l=-70.0)
    kir = passive._replace(g_kir=0.5, v_kir=-90.0, e_k=-80.0)
    down1, down2 = _steady_deflection(kir, -1.0), _steady_deflection(kir, -2.0)
    further = _steady_deflection(passive, -2.0) - _steady_deflection(passive, -1.0)
    assert further == pytest.approx(-20.0, rel=1e-3)  # 1 uA/cm^2 / 0.05 mS/cm^2
    assert 0.25 * further < down2 - down1 < 0.0  # the floor (measured: -3.5 mV)
    assert -_steady_deflection(kir, -0.3) < 0.85 * _steady_deflection(kir, 0.3)
    spikes = len(_spike_times(RS, 4.0))
    assert spikes > 10
    assert len(_spike_times(RS._replace(g_kir=0.5, v_kir=-90.0), 4.0)) == spikes


def _spikes_in_two_steps(params, amplitude, dt=0.05):
    """Spikes in a 300 ms step of ``amplitude`` µA/cm² from rest and in the same
    step after a 300 ms pulse of −amplitude (with 300 ms at rest between)."""
    levels = [(100.0, 0.0), (300.0, amplitude), (300.0, 0.0), (300.0, -amplitude),
              (300.0, amplitude)]  # fmt: skip
    i_ext = np.concatenate([np.full(round(t / dt), a) for t, a in levels])
    v = np.asarray(hhjax.simulate(params, i_ext, dt, record="v").v)
    onsets = np.flatnonzero((v[:-1] < 0.0) & (v[1:] >= 0.0)) * dt
    first = np.count_nonzero((onsets >= 100.0) & (onsets < 400.0))
    return first, np.count_nonzero(onsets >= 1000.0)


def test_d_current_fires_fewer_spikes_after_a_hyperpolarising_pulse():
    """The D current is mostly inactivated at rest and de-inactivated by a
    hyperpolarising pulse: without it a step fires as often after the pulse as
    from rest; with it, clearly less often after the pulse."""
    fs = hhjax.PospischilParams.fs(e_l=-60.0)  # rests at -67 mV
    with_d = fs._replace(g_d=0.5, tau_b=300.0)
    assert float(hhjax.resting_state(with_d).b) < 0.2  # inactivated at rest
    first, second = _spikes_in_two_steps(fs, 3.0)
    assert first > 15 and abs(second - first) <= 1
    first_d, second_d = _spikes_in_two_steps(with_d, 3.0)
    assert first_d > 15 and second_d < 0.7 * first_d


# ------------------------------------------- channels switched off in simulate
OPTIONAL = {"ahp": ("w",), "h": ("r",), "nap": (), "d": ("a", "b"), "kir": ()}


def test_channels_switched_off_are_compile_time_zero_conductances():
    model = hhjax.model_of(RS)
    assert model.switched_off(RS).off == set(OPTIONAL)
    assert model.switched_off(RS).held_gates == ("w", "r", "a", "b")
    assert model.switched_off(RS._replace(g_d=0.5)).off == {"ahp", "h", "nap", "kir"}
    traced = model.switched_off(RS._replace(g_d=jnp.asarray(0.0), g_h=np.float64(0)))
    assert traced.off == {"ahp", "nap", "kir"}  # arrays are run-time values
    assert model.switched_off(ON) is model
    fs = hhjax.PospischilParams.fs()  # g_m = 0: not its default, still a switch
    assert model.switched_off(fs).off == {"m", *OPTIONAL}
    compiled = dict(hhjax.compiled_fields(fs))
    assert compiled["g_m"] == 0.0 and compiled["g_d"] == 0.0 and "g_kd" not in compiled
    assert "g_d" not in dict(hhjax.compiled_fields(fs._replace(g_d=0.5)))
    with pytest.raises(ValueError, match="No channel"):
        dataclasses.replace(model, off=frozenset({"kdr"}))


def test_switched_off_channels_hold_their_gates_and_leave_v_unchanged():
    """A conductance compiled in as 0 skips its channel: V as when the channel
    is integrated with a run-time conductance of 0, its current 0, its gates
    held at state0 (recorded and final)."""
    dt, n = 0.05, 3000
    i_ext = np.zeros(n)
    i_ext[400:] = 4.0
    state0 = hhjax.resting_state(RS)._replace(w=0.3, r=0.2, a=0.1, b=0.9)
    skipped, final = hhjax.simulate(RS, i_ext, dt, state0=state0, return_state=True)
    zeros = {f"g_{name}": jnp.asarray(0.0) for name in OPTIONAL}
    integrated = hhjax.simulate(RS._replace(**zeros), i_ext, dt, state0=state0)
    np.testing.assert_array_equal(skipped.v, integrated.v)
    assert np.asarray(skipped.v).max() > 0.0  # it spiked
    for name, gates in OPTIONAL.items():
        assert np.all(np.asarray(getattr(skipped, f"i_{name}")) == 0.0)
        for gate in gates:
            held = float(getattr(state0, gate))
            assert np.all(np.asarray(getattr(skipped, gate)) == held)
            assert float(getattr(final, gate)) == held
            moving = np.asarray(getattr(integrated, gate))
            assert np.ptp(moving) > 1e-3, gate  # integrated: it relaxes


def test_gradient_through_a_switched_off_conductance():
    """Differentiating with respect to a conductance at 0 integrates its channel
    (the value is traced): the derivative matches a finite difference."""
    dt, n = 0.05, 2000
    i_ext = np.zeros(n)
    i_ext[200:] = 0.5  # subthreshold

    def final_v(g_d):
        return hhjax.simulate(RS._replace(g_d=g_d), i_ext, dt, record="v").v[-1]

    grad = float(jax.grad(final_v)(0.0))
    h = 1e-4
    fd = (float(final_v(jnp.asarray(h))) - float(final_v(jnp.asarray(0.0)))) / h
    assert grad < 0  # an outward K+ current hyperpolarises
    assert grad == pytest.approx(fd, rel=1e-3)


@pytest.mark.parametrize("method", ["exp_euler", "exp_midpoint", "heun"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_switched_off_channels_in_every_method_dtype_and_batch(method, dtype):
    """Held gates through the exponential integrators' gate update and the
    explicit ones, in float32 and float64, for a batch of cells with a batched
    state0: V as with the channels integrated (to rounding: XLA may fuse the
    shorter step differently), gates held."""
    dt, n = 0.025, 4000
    i_ext = np.zeros((n, 3), dtype)
    i_ext[400:] = np.array([1.0, 3.0, 5.0], dtype)
    params = hhjax.PospischilParams.fs(g_na=np.array([45.0, 50.0, 55.0], dtype))
    state0 = hhjax.resting_state(params)
    state0 = jax.tree.map(lambda x: jnp.broadcast_to(x, (3,)).astype(dtype), state0)
    state0 = state0._replace(a=jnp.array([0.1, 0.2, 0.3], dtype))
    run = {"dt": dt, "state0": state0, "method": method, "return_state": True}
    skipped, final = hhjax.simulate(params, i_ext, **run)
    zeros = {f"g_{name}": jnp.asarray(0.0, dtype) for name in (*OPTIONAL, "m")}
    integrated, _ = hhjax.simulate(params._replace(**zeros), i_ext, **run)
    assert skipped.v.dtype == dtype and final.a.dtype == dtype
    # float32 rounding differences grow through the spikes (1.7e-3 mV measured).
    tol = {"rtol": 1e-12, "atol": 1e-10} if dtype == np.float64 else {"atol": 0.05}
    np.testing.assert_allclose(skipped.v, integrated.v, **tol)
    np.testing.assert_array_equal(final.a, state0.a)
    np.testing.assert_array_equal(skipped.p, np.broadcast_to(state0.p, (n, 3)))
    assert np.ptp(np.asarray(integrated.a)) > 1e-3
    assert np.asarray(skipped.v).max() > 0.0
