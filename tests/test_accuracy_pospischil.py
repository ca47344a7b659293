"""Accuracy and gradients of every integrator on the Pospischil model (float64).

The cell is ``PospischilParams.rs`` with every extra channel switched on (slow
AHP, I_h, I_NaP, D current, inward rectifier) and off its defaults (30 °C, Q10s
≠ 1, ``q10_g`` 1.3, shifted ``v_t``, ``tau_max``, ``e_k``, ``c_m``), so that every
rate and temperature factor of the model is exercised. The reference
(``tests/pospischil_reference.py``) integrates an independent NumPy right-hand
side with SciPy's Radau (rtol 1e-10, atol 1e-12; DOP853 at rtol 1e-12 agrees to
1.1e-9 mV). A 12 ms run from rest with an 8 µA/cm² step from 1 ms fires one
spike. ``tests/test_accuracy.py`` does the same for squid HH.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pospischil_reference as ref
import pytest

import hhjax

PARAMS = hhjax.PospischilParams.rs(
    g_ahp=0.2, tau_w=120.0, v_w=-15.0, g_h=0.05, v_h=-85.0, tau_h=40.0,
    g_nap=0.03, g_d=2.0, tau_b=200.0, v_b=-65.0, g_kir=0.2, v_kir=-95.0,
    temperature=30.0, q10_g=1.3, v_t=-56.2, tau_max=608.0, q10_ahp=2.0,
    q10_h=1.5, q10_d=2.5, e_k=-95.0, c_m=0.9,
)  # fmt: skip
DURATION, ONSET, DRIVE = 12.0, 1.0, 8.0  # ms, ms, µA/cm²
SAMPLE_DT = 0.04  # ms: where the traces are compared
# max |dV| (mV) at dt = 0.01 ms, measured: euler 6.7, exp_euler 10.7,
# exp_midpoint 0.33, heun 0.15, rk4 1.5e-4; halving dt divided them by 1.96,
# 2.03, 3.87, 3.90 and 16.9. The bounds are twice the errors.
BOUNDS = {
    "euler": 13.0,
    "exp_euler": 21.0,
    "exp_midpoint": 0.65,
    "heun": 0.3,
    "rk4": 3e-4,
}


def _current(dt: float, duration: float = DURATION) -> np.ndarray:
    """The step from rest, µA/cm², one value per step of ``dt`` ms."""
    i_ext = np.zeros(round(duration / dt))
    i_ext[round(ONSET / dt) :] = DRIVE
    return i_ext


@functools.cache
def _reference_v() -> np.ndarray:
    y0 = np.array(hhjax.resting_state(PARAMS), float)
    t = np.arange(round(DURATION / SAMPLE_DT)) * SAMPLE_DT
    edges = np.array([0.0, ONSET, DURATION])
    return ref.solve(edges, np.array([0.0, DRIVE]), y0, PARAMS._asdict(), t)


def _max_error(method: str, dt: float) -> float:
    stride = round(SAMPLE_DT / dt)
    trace = hhjax.simulate(PARAMS, _current(dt), dt, method=method, stride=stride)
    return float(np.max(np.abs(np.asarray(trace.v) - _reference_v()[0])))


def test_reference_fires_one_spike_from_the_hhjax_rest_state():
    v = _reference_v()[0]
    assert int(np.sum((v[:-1] < 0.0) & (v[1:] >= 0.0))) == 1
    # the rest state is a fixed point of the reference too
    y0 = np.array(hhjax.resting_state(PARAMS), float)
    assert np.max(np.abs(ref.rhs(0.0, y0, 0.0, PARAMS._asdict()))) < 1e-10


@pytest.mark.parametrize("method", list(hhjax.METHODS))
def test_agrees_with_reference_and_converges_at_its_order(method):
    coarse, fine = _max_error(method, 0.01), _max_error(method, 0.005)
    assert coarse < BOUNDS[method], coarse
    ratio = coarse / fine  # 2**order in the asymptotic regime
    order = hhjax.METHODS[method].order
    assert 0.75 * 2**order < ratio < 1.5 * 2**order, ratio


# Parameters of every channel and the temperature factors; relative step of the
# central differences.
GRADIENT_PARAMS = (
    "temperature", "v_t", "tau_max", "e_k", "c_m", "q10_g", "v_w", "tau_w",
    "v_h", "e_h", "v_nap", "v_b", "tau_b", "v_kir", "q10_h", "q10_d",
)  # fmt: skip
FD_STEP = 1e-5


@pytest.mark.parametrize("method", list(hhjax.METHODS))
def test_gradient_matches_finite_differences(method):
    # A 15 ms run at dt 0.025 ms from rest (state0=None: the resting state's
    # implicit derivative is part of it); one spike.
    dt = 0.025
    i_ext = _current(dt, 15.0)
    x0 = np.array([float(getattr(PARAMS, name)) for name in GRADIENT_PARAMS])

    @jax.jit
    def loss(x):
        params = PARAMS._replace(**dict(zip(GRADIENT_PARAMS, x, strict=True)))
        v = hhjax.simulate(params, i_ext, dt, method=method, record="v").v
        return jnp.mean(v) + 1e-4 * jnp.mean(v**2)

    grad = np.asarray(jax.grad(loss)(jnp.asarray(x0)))
    for k, name in enumerate(GRADIENT_PARAMS):
        h = FD_STEP * max(abs(x0[k]), 1.0)
        step = np.zeros_like(x0)
        step[k] = h
        fd = (float(loss(x0 + step)) - float(loss(x0 - step))) / (2.0 * h)
        assert grad[k] == pytest.approx(fd, rel=1e-4, abs=1e-7), name
