"""Numerically safe building blocks for voltage-dependent rate functions.

Hodgkin–Huxley style rates come in three shapes (Hodgkin & Huxley 1952; Dayan &
Abbott 2001, ch. 5). With ``u = (V - V_half) / k`` (dimensionless):

* linoid       ``A * k * u / (1 - exp(-u))``   (0/0 at ``u = 0``: removable)
* exponential  ``A * exp(-u)``
* sigmoid      ``A / (1 + exp(-u))``

All voltages are in mV, slopes ``k`` in mV and prefactors in 1/ms (linoid: 1/(ms·mV)).
The linoid is evaluated with ``expm1`` away from the singular point and with a Taylor
series near it, guarded by a double ``jnp.where`` so that neither the value nor the
gradient can become NaN (the "double where" trick: the branch that is not selected is
fed a harmless argument, so its derivative is finite too).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

# Below |z| < _SERIES_RADIUS the series of z / expm1(z) is used. The truncation error
# of the series through z**6 is |z|**8 / 1209600 < 1e-14 here, so the switch is
# invisible in float64; outside it the relative error of the autodiff derivative of
# z / expm1(z) (a cancellation of order eps / |z|) stays below 1e-6 even in float32.
_SERIES_RADIUS = 0.1


def x_over_expm1(z: ArrayLike) -> Array:
    """``z / (exp(z) - 1)``, finite with a finite, exact gradient at ``z = 0``.

    Args:
        z: dimensionless argument, any shape.

    Returns:
        Array of the same shape; equals 1 at ``z = 0``.
    """
    z = jnp.asarray(z)
    small = jnp.abs(z) < _SERIES_RADIUS
    safe_z = jnp.where(small, 1.0, z)  # keeps the unused branch (and its gradient) finite
    z2 = z * z
    # Bernoulli series: z/(e^z - 1) = 1 - z/2 + z^2/12 - z^4/720 + z^6/30240 - ...
    series = 1.0 - z / 2.0 + z2 * (1.0 / 12.0 - z2 * (1.0 / 720.0 - z2 / 30240.0))
    return jnp.where(small, series, safe_z / jnp.expm1(safe_z))


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
    u = (jnp.asarray(v) - v_half) / k
    return a * k * x_over_expm1(-u)


def exponential(v: ArrayLike, a: float, v_half: float, k: float) -> Array:
    """``a exp(-(V - v_half)/k)``: rate in 1/ms for ``v`` in mV (``k`` in mV)."""
    return a * jnp.exp(-(jnp.asarray(v) - v_half) / k)


def sigmoid(v: ArrayLike, a: float, v_half: float, k: float) -> Array:
    """``a / (1 + exp(-(V - v_half)/k))``: rate in 1/ms for ``v`` in mV (``k`` in mV)."""
    return a * jax.nn.sigmoid((jnp.asarray(v) - v_half) / k)
