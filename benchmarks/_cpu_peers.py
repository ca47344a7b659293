"""Non-JAX peers: a numba reference, a pure-Python pyHH loop, NEURON, Brian2.

Each ``*_forward`` function builds a zero-argument callable running one workload
(see ``_problem.py``) that returns V as a NumPy array ``(steps, cells)`` in mV,
sample ``k`` at ``t = k · dt`` (the state before step ``k``, as ``hhjax.simulate``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import _problem as problem  # benchmarks/ is on sys.path (run as a script)
import numpy as np

Tool = Callable[[], np.ndarray]


# ----------------------------------------------------------------------- numba
def _numba_kernels():
    import numba

    def make(parallel: bool):
        loop = numba.prange if parallel else range

        @numba.njit(fastmath=True, parallel=parallel, cache=False)
        def run(g_na, steps, dt, i_ext, v0, m0, h0, n0):
            cells = g_na.size
            out = np.empty((steps, cells))
            for c in loop(cells):
                v, m, h, n = v0, m0, h0, n0
                for k in range(steps):
                    out[k, c] = v
                    am = 0.1 * (v + 40.0) / (1.0 - math.exp(-(v + 40.0) / 10.0))
                    bm = 4.0 * math.exp(-(v + 65.0) / 18.0)
                    ah = 0.07 * math.exp(-(v + 65.0) / 20.0)
                    bh = 1.0 / (1.0 + math.exp(-(v + 35.0) / 10.0))
                    an = 0.01 * (v + 55.0) / (1.0 - math.exp(-(v + 55.0) / 10.0))
                    bn = 0.125 * math.exp(-(v + 65.0) / 80.0)
                    i_ion = (
                        g_na[c] * m * m * m * h * (v - 50.0)
                        + 36.0 * n * n * n * n * (v + 77.0)
                        + 0.3 * (v + 54.387)
                    )
                    v_new = v + dt * (i_ext - i_ion)
                    s = am + bm
                    m = am / s + (m - am / s) * math.exp(-dt * s)
                    s = ah + bh
                    h = ah / s + (h - ah / s) * math.exp(-dt * s)
                    s = an + bn
                    n = an / s + (n - an / s) * math.exp(-dt * s)
                    v = v_new
            return out

        return run

    return make(False), make(True)


def numba_forward(wl: problem.Workload, parallel: bool) -> Tool:
    """``@njit(fastmath=True)`` loop, same scheme as the plain-JAX reference (FE for
    V, Rush–Larsen gates); ``parallel=True`` splits the cells over threads
    (``prange``)."""
    serial, par = _numba_kernels()
    kernel = par if parallel else serial
    g = problem.g_na_batch(wl.cells)
    args = (g, wl.steps, problem.DT, problem.I_EXT, *problem.initial_state())
    return lambda: kernel(*args)


# ------------------------------------------------------- pure-Python pyHH loop
class _Gate:
    """pyHH's gate object: rates set from outside, forward-Euler update."""

    def __init__(self) -> None:
        self.alpha = self.beta = self.state = 0.0

    def update(self, dt: float) -> None:
        alpha_state = self.alpha * (1.0 - self.state)
        beta_state = self.beta * self.state
        self.state += dt * (alpha_state - beta_state)


class _PyHHCell:
    """pyHH's model structure (``HHModel``: update rates at the old V, then V,
    then the gates, all forward Euler) in the modern convention of the benchmark,
    one object per cell, plain Python floats."""

    def __init__(self, g_na: float) -> None:
        self.g_na = g_na
        self.m, self.h, self.n = _Gate(), _Gate(), _Gate()
        self.v, self.m.state, self.h.state, self.n.state = problem.initial_state()

    def _update_rates(self, v: float) -> None:
        self.m.alpha = 0.1 * (v + 40.0) / (1.0 - math.exp(-(v + 40.0) / 10.0))
        self.m.beta = 4.0 * math.exp(-(v + 65.0) / 18.0)
        self.h.alpha = 0.07 * math.exp(-(v + 65.0) / 20.0)
        self.h.beta = 1.0 / (1.0 + math.exp(-(v + 35.0) / 10.0))
        self.n.alpha = 0.01 * (v + 55.0) / (1.0 - math.exp(-(v + 55.0) / 10.0))
        self.n.beta = 0.125 * math.exp(-(v + 65.0) / 80.0)

    def step(self, stimulus: float, dt: float) -> None:
        self._update_rates(self.v)
        i_na = self.g_na * self.m.state**3 * self.h.state * (self.v - problem.E_NA)
        i_k = problem.G_K * self.n.state**4 * (self.v - problem.E_K)
        i_leak = problem.G_L * (self.v - problem.E_L)
        self.v += dt * (stimulus - i_na - i_k - i_leak) / problem.C_M
        self.m.update(dt)
        self.h.update(dt)
        self.n.update(dt)


def python_forward(wl: problem.Workload) -> Tool:
    """Faithful pure-Python forward-Euler loop in pyHH's structure (pyHH itself is
    not on the package index), one cell after the other."""

    def run():
        out = np.empty((wl.steps, wl.cells))
        stimulus = [problem.I_EXT] * wl.steps
        for c, g in enumerate(problem.g_na_batch(wl.cells)):
            cell = _PyHHCell(float(g))
            column = [0.0] * wl.steps
            for k, i_k in enumerate(stimulus):
                column[k] = cell.v
                cell.step(i_k, problem.DT)
            out[:, c] = column
        return out

    return run


# ---------------------------------------------------------------------- NEURON
def neuron_forward(wl: problem.Workload, record_all: bool = True) -> Tool:
    """NEURON's built-in ``hh`` mechanism: one section per cell (nseg 1, area
    10^4 µm², so an ``IClamp`` of 1 nA is 10 µA/cm²), fixed step, CVode off,
    ``secondorder = 0`` (implicit Euler for V, ``cnexp`` gates). The rates come
    from ``hh``'s tables (``usetable_hh = 1``, NEURON's default: rates tabulated
    on a 1 mV grid from −100 to 100 mV and interpolated linearly), not from the
    formulas at each V. Every cell's V is recorded with ``Vector.record``. The
    model is built once; each call runs ``finitialize(−65)`` and ``continuerun``
    for exactly ``steps`` steps, as the other tools."""
    from neuron import h

    h.load_file("stdrun.hoc")
    h.celsius = problem.TEMPERATURE
    h.dt = problem.DT
    h.steps_per_ms = 1.0 / problem.DT
    h.secondorder = 0
    h.usetable_hh = 1  # NEURON's default, stated: the timed runs use the tables
    h.CVode().active(False)
    diameter = math.sqrt(1e4 / math.pi)  # um; L = diam gives area 1e4 um^2
    cells, clamps, records = [], [], []
    for g in problem.g_na_batch(wl.cells):
        sec = h.Section()
        sec.nseg, sec.L, sec.diam, sec.cm = 1, diameter, diameter, problem.C_M
        sec.insert("hh")
        seg = sec(0.5)
        seg.hh.gnabar, seg.hh.gkbar, seg.hh.gl = (
            g * 1e-3,
            problem.G_K * 1e-3,
            problem.G_L * 1e-3,
        )
        seg.hh.el = problem.E_L
        sec.ena, sec.ek = problem.E_NA, problem.E_K
        clamp = h.IClamp(seg)
        clamp.delay, clamp.dur, clamp.amp = 0.0, 1e9, problem.I_EXT * 0.1  # nA
        if record_all:
            vec = h.Vector()
            vec.record(seg._ref_v)
            records.append(vec)
        cells.append(sec)
        clamps.append(clamp)
    t_stop = wl.steps * problem.DT

    def run():
        h.finitialize(problem.V0)
        # continuerun(T) steps while t < T − dt/2: exactly `steps` steps, whatever
        # the rounding of t; the vectors hold steps + 1 samples, the last unused.
        h.continuerun(t_stop)
        return np.stack([np.asarray(r)[: wl.steps] for r in records], axis=1)

    run.keep_alive = (cells, clamps, records)  # sections die with their refs
    return run
