"""Numerically safe building blocks for voltage-dependent rate functions.

Hodgkin–Huxley style rates come in three shapes (Hodgkin & Huxley 1952; Dayan &
Abbott 2001, ch. 5). With ``u = (V - V_half) / k`` (dimensionless):

* linoid       ``A * k * u / (1 - exp(-u))``   (0/0 at ``u = 0``: removable)
* exponential  ``A * exp(-u)``
* sigmoid      ``A / (1 + exp(-u))``

All voltages are in mV, slopes ``k`` in mV and prefactors in 1/ms (linoid: 1/(ms·mV)).
The linoid is evaluated directly away from the singular point and with a Taylor
series near it, guarded by a double ``jnp.where`` so that neither the value nor the
gradient can become NaN (the "double where" trick: the branch that is not selected is
fed a harmless argument, so its derivative is finite too).

Use them in a channel's ``rates()`` (:class:`hhjax.Channel`, docs/models.md): a
rate written directly as ``0.1 * (v + 40) / (1 - jnp.exp(-(v + 40) / 10))`` is
NaN at exactly −40 mV, and its gradient near it loses digits;
``linoid(v, 0.1, -40.0, 10.0)`` is the same rate, finite with a finite gradient
everywhere.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

# Below |z| < radius a Taylor series of z / (exp(z) - 1) is used, above it the
# direct formula z / (exp(z) - 1) (exp rather than expm1: ~10 % faster steps,
# docs/benchmarks.md). Rounding of exp(z) - 1 costs a relative error of about
# eps / |z| (its autodiff derivative eps / z**2), the series' truncation the first
# omitted term, so radius and length depend on the precision: through z**6 below
# 0.07 in float64, through z**4 below 0.3 in float32 (and 0.5 in 16-bit floats).
# Measured against 50-digit arithmetic on [-20, 20] (tests/test_core.py): values
# within 1.6e-15 (float64) and 2.3e-7 (float32) relative, derivatives within
# 1.1e-13 and 1.7e-6 (float32 on grids of step 1e-4 over [-2, 2]: 2.5e-7 and
# 1.9e-6 to 2.1e-6, the largest near |z| = 0.31, just outside the series). In
# float32 the z**6 term would halve the derivative's error, but it made XLA:CPU
# split the two fusions holding the series over threads for batches of 1e4 cells
# (more than one flop per byte: "compute-bound" to its cost model): 1.2x the wall
# and 1.5x the CPU time (docs/benchmarks.md, item 12). A z**8 term made the
# vectorised float32 step 2.5x slower.
_SERIES = {8: (0.07, 6), 4: (0.3, 4), 2: (0.5, 4)}  # itemsize: (radius, last power)
# Above ln(largest float) (float32: 88.7, float64: 709.8) exp(z) overflows and the
# direct formula's derivative is inf/inf = NaN where its value is 0; z is capped
# 1 below it (the value there, 7e-37 resp. 1.1e-305, stays; its gradient is 0).
# Reached at unphysiological potentials only: e.g. HH's alpha_m caps below
# -917 mV in float32.
# Bernoulli numbers: z/(e^z - 1) = sum_n B_n z^n / n!, B_1 = -1/2, odd n > 1 vanish.
_B2, _B4, _B6 = 1.0 / 12.0, -1.0 / 720.0, 1.0 / 30240.0


def x_over_expm1(z: ArrayLike) -> Array:
    """``z / (exp(z) - 1)``, finite with a finite, exact gradient at ``z = 0``.

    Finite with a finite gradient for every finite ``z``: where ``exp(z)`` would
    overflow (``z`` above 708.8 in float64, 87.7 in float32) ``z`` is capped, and
    the value there (below 10⁻³⁰⁴ resp. 10⁻³⁵) has gradient 0.

    Args:
        z: dimensionless argument, any shape.

    Returns:
        Array of the same shape; equals 1 at ``z = 0``.
    """
    z = jnp.asarray(z)
    if not jnp.issubdtype(z.dtype, jnp.floating):
        z = z.astype(jnp.result_type(float))
    radius, last_power = _SERIES.get(z.dtype.itemsize, (0.5, 4))
    small = jnp.abs(z) < radius
    # Each unused branch gets a harmless argument, so its gradient stays finite
    # (the series' z**2 overflows for |z| > 1.8e19 in float32).
    cap = float(np.log(np.finfo(z.dtype).max)) - 1.0
    safe_z = jnp.where(small, 1.0, jnp.minimum(z, cap))
    series_z = jnp.where(small, z, 0.0)
    z2 = series_z * series_z
    tail = _B4 + z2 * _B6 if last_power == 6 else _B4
    series = 1.0 - 0.5 * series_z + z2 * (_B2 + z2 * tail)
    return jnp.where(small, series, safe_z / (jnp.exp(safe_z) - 1.0))


def linoid(v: ArrayLike, a: float, v_half: float, k: float) -> Array:
    """``a (V - v_half) / (1 - exp(-(V - v_half)/k))``, safe at ``V = v_half``.

    Args:
        v: membrane potential, mV, any shape.
        a: prefactor, 1/(ms·mV).
        v_half: voltage of the removable singularity, mV.
        k: slope, mV (positive: rate rises with V).

    Returns:
        Rate in 1/ms, shape of ``v``. At ``V = v_half`` it equals ``a * k``.
    """
    # (v_half − V)/k: exactly −(V − v_half)/k, one negation fewer per call.
    return a * k * x_over_expm1((v_half - jnp.asarray(v)) / k)


def exponential(v: ArrayLike, a: float, v_half: float, k: float) -> Array:
    """``a exp(-(V - v_half)/k)``: rate in 1/ms for ``v`` in mV (``k`` in mV)."""
    return a * jnp.exp(-(jnp.asarray(v) - v_half) / k)


def sigmoid(v: ArrayLike, a: float, v_half: float, k: float) -> Array:
    """``a / (1 + exp(-(V - v_half)/k))``: rate in 1/ms for ``v`` in mV (``k`` in mV)."""
    return a * jax.nn.sigmoid((jnp.asarray(v) - v_half) / k)
