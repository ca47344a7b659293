"""The pyHH facade: golden values, an independent Euler reference, independence."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import hhjax
from hhjax import pyhh

# HHSharp golden values (the pyHH/HHSharp reference run): default 1952 model, V0 = 0, gates at steady
# state for V = 0, 5000 forward-Euler steps of 0.01 ms at a constant 20 uA/cm^2.
GOLDEN = {
    "Vm": 12.1344631950574,  # mV from rest
    "m_alpha": 0.508331886190113,  # 1/ms
    "StateH": 0.0669057252257422,
    "StateN": 0.73607630180196,
    "INa": -184.843379721599,  # uA/cm^2, g m^3 h (V - E)
    "IK": 261.831569991066,
    "IKleak": 0.633203138741839,
}


# ------------------------------------------------------ independent reference (NumPy)
def _rates_1952(v: float) -> tuple[float, float, float, float, float, float]:
    """(α_m, β_m, α_h, β_h, α_n, β_n), 1/ms, HH 1952 convention (Hodgkin & Huxley 1952, eqs. 12–14, 20–23)."""

    def linoid(scale: float, x: float) -> float:  # scale * x / (exp(x / 10) - 1)
        return scale * 10.0 if x == 0.0 else scale * x / math.expm1(x / 10.0)

    return (
        linoid(0.1, 25.0 - v),
        4.0 * math.exp(-v / 18.0),
        0.07 * math.exp(-v / 20.0),
        1.0 / (math.exp((30.0 - v) / 10.0) + 1.0),
        linoid(0.01, 10.0 - v),
        0.125 * math.exp(-v / 80.0),
    )


def euler_1952(
    stim: np.ndarray,
    dt: float,
    g_na: float = 120.0,
    g_k: float = 36.0,
    g_l: float = 0.3,
    e_na: float = 115.0,
    e_k: float = -12.0,
    e_l: float = 10.6,
) -> np.ndarray:
    """Forward Euler of HH 1952 from V = 0 with gates at steady state; V after each
    step, mV. Written from the equations, without hhjax."""
    am, bm, ah, bh, an, bn = _rates_1952(0.0)
    v, m, h, n = 0.0, am / (am + bm), ah / (ah + bh), an / (an + bn)
    out = np.empty(len(stim))
    for k, i_ext in enumerate(stim):
        am, bm, ah, bh, an, bn = _rates_1952(v)
        i_ion = g_na * m**3 * h * (v - e_na) + g_k * n**4 * (v - e_k) + g_l * (v - e_l)
        v, m, h, n = (
            v + dt * (float(i_ext) - i_ion),
            m + dt * (am * (1.0 - m) - bm * m),
            h + dt * (ah * (1.0 - h) - bh * h),
            n + dt * (an * (1.0 - n) - bn * n),
        )
        out[k] = v
    return out


def spikes(v: np.ndarray, dt: float, threshold: float = 50.0):
    """Upward threshold crossings (times interpolated, ms) and the peak (mV)."""
    k = np.flatnonzero((v[:-1] < threshold) & (v[1:] >= threshold))
    times = (k + (threshold - v[k]) / (v[k + 1] - v[k])) * dt
    return times, float(v.max())


def _run(model: pyhh.HHModel, stim: np.ndarray, dt: float = 0.01) -> pyhh.Simulation:
    sim = pyhh.Simulation(model)
    sim.Run(stimulusWaveform=stim, stepSizeMs=dt)
    return sim


def _readme_demo() -> tuple[pyhh.HHModel, np.ndarray]:
    model = pyhh.HHModel()
    model.gNa, model.gK, model.EK = 100.0, 5.0, -35.0
    stim = np.zeros(20000)
    stim[7000:13000] = 50.0
    return model, stim


# ------------------------------------------------------------------------- tests
def test_golden_values_hhsharp():
    model = pyhh.HHModel()
    sim = _run(model, np.full(5000, 20.0))
    got = {
        "Vm": sim.Vm[-1],
        "m_alpha": model.m.alpha,
        "StateH": sim.StateH[-1],
        "StateN": sim.StateN[-1],
        "INa": sim.INa[-1],
        "IK": sim.IK[-1],
        "IKleak": sim.IKleak[-1],
    }
    for name, value in GOLDEN.items():
        assert value == pytest.approx(got[name], abs=1e-9, rel=0), name
    assert sim.Vm.dtype == np.float64 and sim.Vm.shape == (5000,)
    np.testing.assert_allclose(sim.times, np.arange(5000) * 0.01, rtol=1e-15)
    # The model keeps its final state and last currents, as pyHH's does.
    assert model.Vm == sim.Vm[-1] and model.INa == sim.INa[-1]
    trace = sim.trace()
    assert trace.v is sim.Vm and trace.i_l is sim.IKleak and trace.t is sim.times


def test_recording_semantics():
    """State after each step, currents before it (from the state the step starts
    from), with pyHH's sign g · gates · (V − E)."""
    model = pyhh.HHModel()
    sim = _run(model, np.full(3, 20.0))
    am, bm, ah, bh, an, bn = _rates_1952(0.0)
    m, h, n = am / (am + bm), ah / (ah + bh), an / (an + bn)
    currents0 = (120.0 * m**3 * h * -115.0, 36.0 * n**4 * 12.0, 0.3 * -10.6)
    np.testing.assert_allclose(
        (sim.INa[0], sim.IK[0], sim.IKleak[0]), currents0, rtol=1e-12
    )
    # Vm[0] is the state after the first step, not the initial 0 mV.
    assert sim.Vm[0] == pytest.approx(0.01 * (20.0 - sum(currents0)), rel=1e-12)
    v1, m1, h1 = sim.Vm[0], sim.StateM[0], sim.StateH[0]
    assert sim.INa[1] == pytest.approx(120.0 * m1**3 * h1 * (v1 - 115.0), rel=1e-12)
    assert sim.IKleak[1] == pytest.approx(0.3 * (v1 - 10.6), rel=1e-12)


def test_iterate_is_one_sample_of_run():
    # pyHH's per-step method, for closed-loop scripts.
    stim = np.array([0.0, 20.0, 20.0, -5.0])
    whole, stepped = pyhh.HHModel(), pyhh.HHModel()
    sim = _run(whole, stim)
    for k, current in enumerate(stim):
        stepped.iterate(current, 0.01)
        assert stepped.Vm == sim.Vm[k] and stepped.INa == sim.INa[k]
        assert (stepped.m.state, stepped.h.state, stepped.n.state) == (
            sim.StateM[k],
            sim.StateH[k],
            sim.StateN[k],
        )
    assert (stepped.m.alpha, stepped.n.beta) == (whole.m.alpha, whole.n.beta)
    assert pyhh.HHModel.Gate is pyhh.Gate


@pytest.mark.parametrize("demo", ["readme", "default"])
def test_demo_matches_independent_euler(demo):
    if demo == "readme":
        model, stim = _readme_demo()
    else:
        model, stim = pyhh.HHModel(), _readme_demo()[1]
    sim = _run(model, stim)
    reference = euler_1952(stim, 0.01, g_na=model.gNa, g_k=model.gK, e_k=model.EK)
    times, peak = spikes(sim.Vm, 0.01)
    ref_times, ref_peak = spikes(reference, 0.01)
    assert len(times) == len(ref_times) >= 5
    np.testing.assert_allclose(times, ref_times, rtol=0, atol=1e-6)
    assert peak == pytest.approx(ref_peak, abs=1e-6)
    np.testing.assert_allclose(sim.Vm, reference, rtol=0, atol=1e-6)


def test_models_are_independent_of_order():
    def make(kind):
        model = pyhh.HHModel()
        if kind == "b":
            model.gNa, model.gK, model.EK, model.Cm = 100.0, 5.0, -35.0, 1.5
        return model

    stim = np.zeros(3000)
    stim[500:2500] = 30.0
    first, second = stim[:1500], stim[1500:]

    # A alone, two runs that continue from each other.
    a_alone = make("a")
    alone = [_run(a_alone, first).Vm, _run(a_alone, second).Vm]
    # A and B interleaved, B first.
    a, b = make("a"), make("b")
    b1 = _run(b, first).Vm
    a1 = _run(a, first).Vm
    b2 = _run(b, second).Vm
    a2 = _run(a, second).Vm
    np.testing.assert_array_equal(a1, alone[0])
    np.testing.assert_array_equal(a2, alone[1])
    # B interleaved equals B alone; and the two models differ.
    b_alone = make("b")
    np.testing.assert_array_equal(_run(b_alone, first).Vm, b1)
    np.testing.assert_array_equal(_run(b_alone, second).Vm, b2)
    assert not np.allclose(a1, b1)
    assert a.m is not b.m and a.h is not b.h and a.n is not b.n
    # Continuing equals one long run.
    np.testing.assert_allclose(
        np.concatenate(alone), _run(make("a"), stim).Vm, rtol=0, atol=1e-12
    )


def test_large_step_warns_once():
    with pytest.warns(hhjax.StepSizeWarning, match="0.06") as record:
        _run(pyhh.HHModel(), np.zeros(10), dt=0.06)
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run(pyhh.HHModel(), np.zeros(10), dt=0.05)


@pytest.mark.parametrize("v0, gate, limit", [(25.0, "m", 1.0), (10.0, "n", 0.1)])
def test_removable_singularities_are_finite(v0, gate, limit):
    """α_m is 0/0 at 25 mV and α_n at 10 mV (1952); pyHH gives NaN there. The
    limit is scale · 10 mV (0.1 · 10 and 0.01 · 10 per ms)."""
    model = pyhh.HHModel(startingVoltage=v0)
    assert getattr(model, gate).alpha == pytest.approx(limit, rel=1e-12)
    sim = _run(model, np.zeros(5))
    assert np.all(np.isfinite(sim.Vm)) and np.all(np.isfinite(sim.StateN))


def test_h_starts_at_steady_state():
    model = pyhh.HHModel()
    _, _, ah, bh, _, _ = _rates_1952(0.0)
    assert model.h.state == pytest.approx(ah / (ah + bh), rel=1e-14)
    assert model.params() == hhjax.HHParams.hh1952()


@pytest.mark.parametrize(
    "stim, dt, match",
    [
        (np.zeros((3, 2)), 0.01, "1-D"),
        (np.zeros(0), 0.01, "non-empty"),
        (np.zeros(3), 0.0, "positive"),
        (np.r_[0.0, np.nan], 0.01, r"`stimulusWaveform` .*non-finite.*time index 1\)"),
        (np.zeros(3, complex), 0.01, "real currents"),
        (
            np.full(3, 1e6),
            0.01,
            r"reaches \|I\| = 1e\+06.*pa_to_density\(i_pA, c_pF\)\.$",
        ),
        ("abc", 0.01, "1-D array of currents in uA/cm\\^2; got str"),
    ],
)
def test_bad_input(stim, dt, match):
    with pytest.raises(ValueError, match=match):
        _run(pyhh.HHModel(), stim, dt=dt)


@pytest.mark.parametrize(
    "name, value, error, match",
    [
        ("gNa", -1.0, ValueError, r"Conductance `gNa` \(mS/cm\^2\) must be >= 0"),
        ("gK", "36", TypeError, "`gK` must be a real number; got str '36'"),
        ("Cm", 0.0, ValueError, r"`Cm` \(uF/cm\^2\) must be > 0"),
        ("EKleak", math.nan, ValueError, "`EKleak` must be finite"),
        ("ENa", True, TypeError, "`ENa` must be a real number; got bool"),
        ("Vm", math.inf, ValueError, "`Vm` must be a finite voltage"),
    ],
)
def test_bad_attribute_is_refused_when_set(name, value, error, match):
    # Checked at assignment, with the pyHH name the user typed.
    model = pyhh.HHModel()
    with pytest.raises(error, match=match):
        setattr(model, name, value)
    model.gNa = np.float64(100)  # NumPy numbers are numbers
    assert model.gNa == 100.0 and type(model.gNa) is float


def test_non_finite_voltage_is_refused():
    with pytest.raises(ValueError, match="`startingVoltage` must be a finite voltage"):
        pyhh.HHModel(float("nan"))
    with pytest.raises(TypeError, match="`startingVoltage` must be a real number"):
        pyhh.HHModel("5")  # float("5") accepted it
    with pytest.raises(ValueError, match=r"`deltaTms` must be a positive, finite"):
        pyhh.HHModel().m.update(True)  # a bool was a 1 ms step


def test_blow_up_advice_fits_the_facade():
    with (
        pytest.warns(hhjax.StepSizeWarning),
        pytest.raises(hhjax.NonFiniteSimulationError) as caught,
    ):
        _run(pyhh.HHModel(), np.full(200, 50.0), dt=0.5)
    message = str(caught.value)
    assert "stepSizeMs = 0.5 ms" in message and "use stepSizeMs = 0.01 ms" in message
    assert "more stable method" not in message


def test_private_steps_of_iterate():
    """pyHH's iterate is _UpdateGateTimeConstants, _UpdateCellVoltage and
    _UpdateGateStates in turn; Gate.update and setInfiniteState as pyHH's."""
    by_parts, stepped = pyhh.HHModel(), pyhh.HHModel()
    for current in (20.0, 20.0, -5.0):
        stepped.iterate(current, 0.01)
        by_parts._UpdateGateTimeConstants(by_parts.Vm)
        by_parts._UpdateCellVoltage(current, 0.01)
        by_parts._UpdateGateStates(0.01)
    for name in ("Vm", "INa", "IK", "IKleak"):
        assert getattr(by_parts, name) == pytest.approx(
            getattr(stepped, name), rel=1e-12
        )
    for gate in ("m", "h", "n"):
        assert getattr(by_parts, gate).state == pytest.approx(
            getattr(stepped, gate).state, rel=1e-12
        )
    gate = pyhh.Gate(alpha=2.0, beta=6.0, state=0.5)
    gate.update(0.01)
    assert gate.state == pytest.approx(0.5 + 0.01 * (2.0 * 0.5 - 6.0 * 0.5))
    gate.setInfiniteState()
    assert gate.state == 0.25
    with pytest.raises(ValueError, match=r"`deltaTms` must be a positive, finite number \(ms\)"):
        gate.update(0.0)
