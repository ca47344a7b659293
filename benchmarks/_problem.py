"""The common benchmark problem and an independent NumPy/SciPy model of it.

Every tool simulates the same cell: standard Hodgkin–Huxley in the modern convention
(rest ≈ −65 mV; gNa 120, gK 36, gL 0.3 mS/cm²; ENa 50, EK −77, EL −54.387 mV;
Cm 1 µF/cm²; 6.3 °C), a constant 10 µA/cm² from t = 0, dt = 0.025 ms, every gate at
its steady state for V = −65 mV at t = 0. Batches draw gNa uniformly in
[100, 140] mS/cm² with a fixed seed, everything else equal.

The model below (:func:`derivatives`, :func:`step`, :func:`trace`,
:func:`dop853_trace`) is written with NumPy from the equations, independently of
hhjax and of every peer; the agreement checks (``_agreement.py``) use it as their
reference. This module must import with NumPy alone: the Brian2 worker runs it in
a separate virtual environment without JAX (SciPy is imported only by
:func:`dop853_trace`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import numpy as np

# The cell (modern convention; units in the module docstring).
G_NA, G_K, G_L = 120.0, 36.0, 0.3  # mS/cm^2
E_NA, E_K, E_L = 50.0, -77.0, -54.387  # mV
C_M = 1.0  # uF/cm^2
TEMPERATURE = 6.3  # degC
V0 = -65.0  # mV, initial V; gates start at their steady state there
I_EXT = 10.0  # uA/cm^2, constant from t = 0
DT = 0.025  # ms
G_NA_RANGE = (100.0, 140.0)  # mS/cm^2, batch draw
SEED = 0
# W4/W5: loss sum((V - V_target)^2) over the trace, d/d(gNa, gK, gL) at the
# defaults; V_target simulated with these conductances (mS/cm^2).
TARGET_G = (110.0, 40.0, 0.25)
SPIKE_THRESHOLD = 0.0  # mV, upward crossing
SCHEMES = ("exp_euler", "gates_first", "rk4")


@dataclasses.dataclass(frozen=True)
class Workload:
    """One benchmark workload.

    Attributes:
        name: ``"W1"`` … ``"W5"``.
        cells: number of cells (batch size).
        steps: number of time steps of ``DT`` ms.
        gradient: whether the workload times a gradient (W4, W5) rather than a
            forward simulation.
        title: one-line description for the report.
    """

    name: str
    cells: int
    steps: int
    gradient: bool
    title: str

    @property
    def neuron_steps(self) -> int:
        return self.cells * self.steps

    @property
    def duration_ms(self) -> float:
        return self.steps * DT


_FULL = {
    "W1": (1, 100_000, False, "one cell, 10^5 steps (2.5 s)"),
    "W2": (1_000, 10_000, False, "10^3 cells (gNa batch), 10^4 steps"),
    "W3": (10_000, 10_000, False, "10^4 cells (gNa batch), 10^4 steps"),
    "W4": (1, 10_000, True, "gradient of a trace loss w.r.t. gNa, gK, gL, 10^4 steps"),
    "W5": (1, 1_000_000, True, "the same gradient over 10^6 steps"),
}
_QUICK = {
    "W1": (1, 10_000, False, "one cell, 10^4 steps (quick)"),
    "W2": (256, 2_000, False, "256 cells, 2000 steps (quick)"),
    "W3": (2_048, 2_000, False, "2048 cells, 2000 steps (quick)"),
    "W4": (1, 2_000, True, "gradient w.r.t. gNa, gK, gL, 2000 steps (quick)"),
    "W5": (1, 50_000, True, "the same gradient, 5 x 10^4 steps (quick)"),
}
WORKLOAD_NAMES = tuple(_FULL)


def workloads(quick: bool) -> dict[str, Workload]:
    """The workloads of a full or a ``--quick`` run, by name."""
    table = _QUICK if quick else _FULL
    return {k: Workload(k, *v) for k, v in table.items()}


def g_na_batch(cells: int) -> np.ndarray:
    """gNa of each cell, mS/cm², shape ``(cells,)``; 120 for a single cell."""
    if cells == 1:
        return np.array([G_NA])
    return np.random.default_rng(SEED).uniform(*G_NA_RANGE, cells)


# ------------------------------------------------------------- the NumPy model
@dataclasses.dataclass(frozen=True)
class Cell:
    """Parameters of the model; each a float or an array over columns (cells).

    Attributes:
        g_na, g_k, g_l: conductances, mS/cm².
        e_na, e_k, e_l: reversal potentials, mV.
        i_ext: constant injected current, µA/cm².
    """

    g_na: Any = G_NA
    g_k: Any = G_K
    g_l: Any = G_L
    e_na: Any = E_NA
    e_k: Any = E_K
    e_l: Any = E_L
    i_ext: Any = I_EXT

    @property
    def columns(self) -> int:
        """Number of columns the fields broadcast to."""
        return int(np.broadcast(*dataclasses.astuple(self)).size)


def rates(v: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(α_m, β_m, α_h, β_h, α_n, β_n)`` in 1/ms at ``v`` mV (6.3 °C)."""
    v = np.asarray(v, dtype=float)
    return (
        0.1 * (v + 40.0) / -np.expm1(-(v + 40.0) / 10.0),
        4.0 * np.exp(-(v + 65.0) / 18.0),
        0.07 * np.exp(-(v + 65.0) / 20.0),
        1.0 / (1.0 + np.exp(-(v + 35.0) / 10.0)),
        0.01 * (v + 55.0) / -np.expm1(-(v + 55.0) / 10.0),
        0.125 * np.exp(-(v + 65.0) / 80.0),
    )


def initial_state(v: float = V0) -> tuple[float, float, float, float]:
    """``(V, m, h, n)`` with every gate at its steady state for ``v`` mV."""
    am, bm, ah, bh, an, bn = (float(r) for r in rates(np.array(v)))
    return v, am / (am + bm), ah / (ah + bh), an / (an + bn)


def _dv_dt(v, m, h, n, cell: Cell) -> np.ndarray:
    """dV/dt, mV/ms."""
    i_ion = (
        cell.g_na * m**3 * h * (v - cell.e_na)
        + cell.g_k * n**4 * (v - cell.e_k)
        + cell.g_l * (v - cell.e_l)
    )
    return (cell.i_ext - i_ion) / C_M


def derivatives(y: np.ndarray, cell: Cell) -> np.ndarray:
    """``d(V, m, h, n)/dt`` in (mV, 1, 1, 1)/ms; ``y`` has shape ``(4, columns)``."""
    v, m, h, n = y
    am, bm, ah, bh, an, bn = rates(v)
    return np.stack(
        [
            _dv_dt(v, m, h, n, cell),
            am * (1.0 - m) - bm * m,
            ah * (1.0 - h) - bh * h,
            an * (1.0 - n) - bn * n,
        ]
    )


def _relaxed_gates(y: np.ndarray) -> tuple[np.ndarray, ...]:
    """Gates after one exponential-Euler step of ``DT`` ms at the V of ``y``."""
    v, *gates = y
    r = rates(v)
    out = []
    for x, a, b in zip(gates, r[0::2], r[1::2], strict=True):
        x_inf = a / (a + b)
        out.append(x_inf + (x - x_inf) * np.exp(-DT * (a + b)))
    return tuple(out)


def step(y: np.ndarray, cell: Cell, scheme: str) -> np.ndarray:
    """One step of ``DT`` ms from ``y`` (shape ``(4, columns)``).

    Schemes: ``"exp_euler"`` (hhjax's: V by forward Euler with the old gates, gates
    by exponential Euler at the old V), ``"gates_first"`` (Jaxley's ``fwd_euler``:
    gates first, then V by forward Euler with the *new* gates at the old V) and
    ``"rk4"`` (classical Runge–Kutta on the whole state).
    """
    if scheme == "rk4":
        k1 = derivatives(y, cell)
        k2 = derivatives(y + 0.5 * DT * k1, cell)
        k3 = derivatives(y + 0.5 * DT * k2, cell)
        k4 = derivatives(y + DT * k3, cell)
        return y + DT / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    gates = _relaxed_gates(y)
    if scheme == "exp_euler":
        v_new = y[0] + DT * _dv_dt(*y, cell)
    elif scheme == "gates_first":
        v_new = y[0] + DT * _dv_dt(y[0], *gates, cell)
    else:
        raise ValueError(f"unknown scheme {scheme!r}; expected one of {SCHEMES}")
    return np.stack([v_new, *gates])


def initial_states(columns: int) -> np.ndarray:
    """:func:`initial_state` for every column, shape ``(4, columns)``."""
    return np.repeat(np.array(initial_state())[:, None], columns, axis=1)


def trace(cell: Cell, steps: int, scheme: str) -> np.ndarray:
    """V, mV, shape ``(steps, columns)``, sample ``k`` at ``t = k · DT`` (the state
    before step ``k``), from :func:`initial_states` with :func:`step`."""
    y = initial_states(cell.columns)
    out = np.empty((steps, cell.columns))
    for k in range(steps):
        out[k] = y[0]
        y = step(y, cell, scheme)
    return out


def dop853_trace(cell: Cell, steps: int, rtol: float = 1e-10) -> np.ndarray:
    """V, mV, shape ``(steps, columns)`` at ``t = k · DT``, from SciPy's DOP853 on
    :func:`derivatives` (every column in one system; absolute tolerance 1e-12)."""
    from scipy.integrate import solve_ivp

    columns = cell.columns
    t = np.arange(steps) * DT

    def rhs(_t: float, y: np.ndarray) -> np.ndarray:
        return derivatives(y.reshape(4, columns), cell).ravel()

    sol = solve_ivp(
        rhs,
        (0.0, t[-1]),
        initial_states(columns).ravel(),
        method="DOP853",
        rtol=rtol,
        atol=1e-12,
        t_eval=t,
    )
    if sol.status != 0:
        raise RuntimeError(f"DOP853 reference failed: {sol.message}")
    return sol.y[:columns].T


# ------------------------------------------------------------------ reporting
def machine_info() -> dict[str, str]:
    """CPU model, core count, memory and load average of this machine."""
    info = {"cores": str(os.cpu_count())}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/cpuinfo") as f:
            flags = next((ln for ln in f if ln.startswith("flags")), "")
        info["avx512"] = "yes" if " avx512f" in flags else "no"
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        info["memory"] = f"{kb / 2**20:.0f} GiB"
        info["load average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (OSError, ValueError, IndexError):
        pass
    return info


def fmt_rate(neuron_steps: float, seconds: float) -> str:
    """Neuron-steps per second, e.g. ``"42.0 M"``."""
    rate = neuron_steps / seconds if seconds > 0 else math.inf
    return f"{rate / 1e6:.3g} M" if rate >= 1e5 else f"{rate / 1e3:.3g} k"
