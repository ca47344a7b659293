"""An independent reference for standard HH: plain NumPy/``math`` right-hand side,
integrated by SciPy's ``solve_ivp`` under a piecewise-constant injected current.

Nothing here imports ``hhjax``: the rates and currents are written out again from
Hodgkin & Huxley (1952) in the modern convention (rates given at 6.3 °C and scaled by
``φ = 3^((T − 6.3)/10)``, conductances not scaled), so that a mistake in hhjax's
model cannot hide in its own reference.

Units: V in mV, t in ms, currents in µA/cm² (injected current inward positive),
conductances in mS/cm², capacitance in µF/cm².

Used by ``tests/test_accuracy.py`` and ``benchmarks/work_precision.py``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

# Standard Hodgkin-Huxley, modern convention (rest ≈ −65 mV).
G_NA, G_K, G_L = 120.0, 36.0, 0.3  # mS/cm^2
E_NA, E_K, E_L = 50.0, -77.0, -54.387  # mV
C_M = 1.0  # uF/cm^2

T_REF, Q10 = 6.3, 3.0  # degC, rate factor per 10 degC
REFERENCE_RTOL = 1e-10
REFERENCE_ATOL = 1e-12


def _linoid(a: float, x: float, k: float) -> float:
    """``a x / (1 − exp(−x/k))`` (1/ms), with its limit ``a k (1 + u/2)`` near 0."""
    u = x / k
    if abs(u) < 1e-7:
        return a * k * (1.0 + 0.5 * u)
    return a * x / -math.expm1(-u)


def rates(v: float, temperature: float = T_REF) -> tuple[float, ...]:
    """``(α_m, β_m, α_h, β_h, α_n, β_n)`` in 1/ms at ``v`` mV and ``temperature`` °C."""
    phi = Q10 ** ((temperature - T_REF) / 10.0)
    return (
        phi * _linoid(0.1, v + 40.0, 10.0),
        phi * 4.0 * math.exp(-(v + 65.0) / 18.0),
        phi * 0.07 * math.exp(-(v + 65.0) / 20.0),
        phi / (1.0 + math.exp(-(v + 35.0) / 10.0)),
        phi * _linoid(0.01, v + 55.0, 10.0),
        phi * 0.125 * math.exp(-(v + 65.0) / 80.0),
    )


def rhs(
    t: float, y: np.ndarray, i_ext: float, temperature: float = T_REF
) -> list[float]:
    """``d(V, m, h, n)/dt`` in (mV, 1, 1, 1)/ms for injected current ``i_ext``
    µA/cm² at ``temperature`` °C."""
    v, m, h, n = y
    am, bm, ah, bh, an, bn = rates(v, temperature)
    i_ion = G_NA * m**3 * h * (v - E_NA) + G_K * n**4 * (v - E_K) + G_L * (v - E_L)
    return [
        (i_ext - i_ion) / C_M,
        am * (1.0 - m) - bm * m,
        ah * (1.0 - h) - bh * h,
        an * (1.0 - n) - bn * n,
    ]


def steady_state(v: float) -> np.ndarray:
    """``(V, m∞, h∞, n∞)`` at ``v`` mV (independent of temperature)."""
    am, bm, ah, bh, an, bn = rates(v)
    return np.array([v, am / (am + bm), ah / (ah + bh), an / (an + bn)])


def resting_state(i_ext: float = 0.0) -> np.ndarray:
    """The I = ``i_ext`` fixed point near rest: ``(V mV, m, h, n)``."""

    def net_current(v: float) -> float:
        return -rhs(0.0, steady_state(v), i_ext)[0]

    v = brentq(net_current, -90.0, -50.0, xtol=1e-14, rtol=1e-15)
    return steady_state(v)


@dataclasses.dataclass(frozen=True)
class PiecewiseSolution:
    """Dense reference solution over consecutive constant-current segments.

    Attributes:
        edges: segment boundaries, ms, shape ``(S + 1,)``.
        pieces: ``scipy`` dense-output interpolants, one per segment.
        n_rhs: right-hand-side evaluations used, all segments together.
    """

    edges: np.ndarray
    pieces: tuple
    n_rhs: int

    def __call__(self, t: np.ndarray) -> np.ndarray:
        """State ``(V, m, h, n)`` at times ``t`` (ms), shape ``(4, len(t))``."""
        t = np.asarray(t, dtype=float)
        seg = np.clip(
            np.searchsorted(self.edges, t, side="right") - 1, 0, len(self.pieces) - 1
        )
        out = np.empty((4, t.size))
        for s in np.unique(seg):
            mask = seg == s
            out[:, mask] = self.pieces[s](t[mask])
        return out


def solve(
    edges: np.ndarray,
    values: np.ndarray,
    y0: np.ndarray,
    *,
    temperature: float = T_REF,
    method: str = "DOP853",
    rtol: float = REFERENCE_RTOL,
    atol: float = REFERENCE_ATOL,
) -> PiecewiseSolution:
    """Integrate HH exactly through a piecewise-constant current.

    Each segment ``[edges[s], edges[s+1])`` with current ``values[s]`` µA/cm² is
    integrated separately (restarting the solver at every jump), so no step of the
    reference straddles a discontinuity.

    Args:
        edges: segment boundaries, ms, increasing, shape ``(S + 1,)``.
        values: current on each segment, µA/cm², shape ``(S,)``.
        y0: initial ``(V, m, h, n)`` at ``edges[0]``.
        temperature: °C.
        method, rtol, atol: passed to ``scipy.integrate.solve_ivp``.
    """
    edges = np.asarray(edges, dtype=float)
    values = np.asarray(values, dtype=float)
    if edges.shape != (values.size + 1,) or not np.all(np.diff(edges) > 0):
        raise ValueError(
            "`edges` must increase and have one entry more than `values`; got "
            f"{edges.shape} and {values.shape}."
        )
    y = np.asarray(y0, dtype=float)
    pieces = []
    n_rhs = 0
    for a, b, i_seg in zip(edges[:-1], edges[1:], values, strict=True):
        sol = solve_ivp(
            rhs,
            (a, b),
            y,
            method=method,
            rtol=rtol,
            atol=atol,
            dense_output=True,
            args=(float(i_seg), temperature),
        )
        if sol.status != 0:
            raise RuntimeError(
                f"Reference solve failed on [{a}, {b}] ms: {sol.message}"
            )
        pieces.append(sol.sol)
        n_rhs += sol.nfev
        y = sol.y[:, -1]
    return PiecewiseSolution(edges, tuple(pieces), n_rhs)


def solve_samples(
    i_ext: np.ndarray, dt: float, y0: np.ndarray, **kwargs
) -> PiecewiseSolution:
    """:func:`solve` for a current sampled as ``simulate`` takes it: ``i_ext[k]``
    µA/cm² held on ``[k·dt, (k+1)·dt)``. Runs of equal samples form one segment."""
    i_ext = np.asarray(i_ext, dtype=float)
    jumps = np.flatnonzero(np.diff(i_ext)) + 1
    starts = np.concatenate([[0], jumps])
    edges = np.concatenate([starts, [i_ext.size]]) * dt
    return solve(edges, i_ext[starts], y0, **kwargs)


def spike_times(t: np.ndarray, v: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Upward crossings of ``threshold`` mV, located by linear interpolation, ms."""
    t, v = np.asarray(t, dtype=float), np.asarray(v, dtype=float)
    k = np.flatnonzero((v[:-1] < threshold) & (v[1:] >= threshold))
    frac = (threshold - v[k]) / (v[k + 1] - v[k])
    return t[k] + frac * (t[k + 1] - t[k])
