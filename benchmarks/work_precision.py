"""Work-precision of hhjax's integrators against a tight SciPy reference.

For every method in ``hhjax.METHODS`` and a range of steps ``dt`` this measures, in
float64 on standard modern HH (rest −65 mV):

* accuracy on a 100 ms spiking trace (0 µA/cm² for 10 ms, 15 µA/cm² on [10, 90) ms,
  0 after: 7 spikes): max |ΔV| (mV) over all samples against ``solve_ivp`` (DOP853,
  rtol 1e-10, atol 1e-12, restarted at each current jump, dense output read at the
  sample times ``k·dt``, where hhjax's sample k is the state *before* step k), and
  the spike-time error (ms; upward 0 mV crossings located by linear interpolation in
  both traces sampled on the same grid; spike counts must be equal);
* cost: wall time per step (ms/step), jitted, median of several runs after a
  warm-up, for one cell and for a batch of 1000 cells (``record=("v",)``);
* stability: the largest ``dt`` (on a grid) up to which every step still gives a
  finite trace with the reference's spike count under strong constant drives
  (50 and 100 µA/cm² from rest, 100 ms; spikes counted as upward −45 mV crossings,
  since under strong drive the spikes shrink and 0 mV is no longer crossed), and
  the largest finite ``dt`` at 25 °C (rates 7.8× faster). The smaller of the two
  is the suggested ``max_stable_dt`` of the method.

The reference's right-hand side is plain NumPy (``tests/hh_reference.py``), written
independently of hhjax.

Usage (from the repository root)::

    python benchmarks/work_precision.py            # OVERWRITES docs/integrators.md
    python benchmarks/work_precision.py --out -    # print only
    python benchmarks/work_precision.py --out /tmp/integrators.md

Timings depend on the machine and its load: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import hhjax  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import hh_reference as ref  # noqa: E402

DURATION = 100.0  # ms
STEP_START, STEP_STOP, STEP_AMPLITUDE = 10.0, 90.0, 15.0  # ms, ms, uA/cm^2
DTS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.025, 0.04, 0.05, 0.08, 0.1)  # ms
TARGET_DV, TARGET_SPIKE = 1.0, 0.01  # mV, ms: "1 mV / 0.01 ms accuracy"

STRONG_DRIVES = (50.0, 100.0)  # uA/cm^2
STRONG_THRESHOLD = -45.0  # mV
HOT_TEMPERATURE = 25.0  # degC: rates x 3^1.87 = 7.8; stability only
STABILITY_DTS = tuple(np.round(np.arange(0.03, 0.1201, 0.005), 3).tolist())  # ms

# Hyperpolarising stability: constant currents from rest, the most negative
# down to which every one gives a finite trace, at these steps.
HYPERPOLARISING_DRIVES = tuple(-5.0 * k for k in range(1, 21))  # uA/cm^2, to -100
HYPERPOLARISING_DTS = (0.01, 0.025, 0.05)  # ms

SINGLE_STEPS, BATCH_STEPS, BATCH_CELLS = 20_000, 1_000, 1_000
REPEATS = 7


@dataclasses.dataclass(frozen=True)
class Accuracy:
    """Error of one method at one ``dt`` on the spiking trace."""

    method: str
    dt: float  # ms
    max_dv: float  # mV (inf if the run diverged)
    spike_error: float  # ms (inf if diverged or the counts differ)
    n_spikes: int  # -1 if diverged
    n_spikes_ref: int

    @property
    def meets_target(self) -> bool:
        return self.max_dv <= TARGET_DV and self.spike_error <= TARGET_SPIKE


def _state0() -> hhjax.HHState:
    return hhjax.HHState(*(jnp.asarray(x) for x in ref.resting_state()))


def _simulate_v(i_ext, dt, method, state0, params=None, check=True):
    """V trace (mV, numpy); ``None`` if it went non-finite and ``check``."""
    params = hhjax.HHParams() if params is None else params
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hhjax.StepSizeWarning)
        try:
            trace = hhjax.simulate(
                params,
                i_ext,
                dt,
                state0=state0,
                method=method,
                record=("v",),
                check_inputs=check,
            )
        except hhjax.NonFiniteSimulationError:
            return None
    return np.asarray(trace.v)


def measure_accuracy() -> tuple[list[Accuracy], dict]:
    """Accuracy of every method and dt on the spiking step trace."""
    state0 = _state0()
    y0 = ref.resting_state()
    rows = []
    for dt in DTS:
        i_ext = hhjax.stimulus.step(
            STEP_AMPLITUDE, start=STEP_START, stop=STEP_STOP, duration=DURATION, dt=dt
        )
        t = np.asarray(hhjax.stimulus.times(DURATION, dt))
        v_ref = ref.solve_samples(np.asarray(i_ext), dt, y0)(t)[0]
        spikes_ref = ref.spike_times(t, v_ref)
        for method in hhjax.METHODS:
            v = _simulate_v(i_ext, dt, method, state0)
            if v is None:
                rows.append(Accuracy(method, dt, np.inf, np.inf, -1, len(spikes_ref)))
                continue
            spikes = ref.spike_times(t, v)
            spike_error = (
                float(np.max(np.abs(spikes - spikes_ref)))
                if len(spikes) == len(spikes_ref)
                else np.inf
            )
            rows.append(
                Accuracy(
                    method,
                    dt,
                    float(np.max(np.abs(v - v_ref))),
                    spike_error,
                    len(spikes),
                    len(spikes_ref),
                )
            )
    return rows, _reference_self_check(y0)


def _reference_self_check(y0) -> dict:
    """How far the reference is from a 100× tighter one and from Radau."""
    dt = DTS[0]
    i_ext = np.asarray(
        hhjax.stimulus.step(
            STEP_AMPLITUDE, start=STEP_START, stop=STEP_STOP, duration=DURATION, dt=dt
        )
    )
    t = np.asarray(hhjax.stimulus.times(DURATION, dt))
    start = time.perf_counter()
    base = ref.solve_samples(i_ext, dt, y0)
    seconds = time.perf_counter() - start
    v = base(t)[0]
    tight = ref.solve_samples(i_ext, dt, y0, rtol=1e-12, atol=1e-14)(t)[0]
    radau = ref.solve_samples(i_ext, dt, y0, method="Radau")(t)[0]
    spikes = ref.spike_times(t, v)
    return {
        "vs_tight": float(np.max(np.abs(v - tight))),
        "vs_radau": float(np.max(np.abs(v - radau))),
        "spike_vs_tight": float(np.max(np.abs(spikes - ref.spike_times(t, tight)))),
        "n_spikes": len(spikes),
        "seconds": seconds,
        "n_rhs": base.n_rhs,
    }


@dataclasses.dataclass(frozen=True)
class Cost:
    """Wall time per step, ms: median and minimum over the repeats."""

    single: float
    single_min: float
    batch: float
    batch_min: float


Costs = dict  # {method: Cost}


def _seconds(fn, repeats: int = REPEATS) -> tuple[float, float]:
    """Median and minimum wall time (s) of ``fn()`` after one warm-up call."""
    fn()  # warm-up: compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def time_per_step(method: str, n_cells: int, n_steps: int) -> tuple[float, float]:
    """Median and minimum wall time per step, ms, of a jitted ``simulate``
    recording V."""
    shape = (n_steps,) if n_cells == 1 else (n_steps, n_cells)
    i_ext = jnp.full(shape, STEP_AMPLITUDE)
    state0 = _state0()

    def run():
        hhjax.simulate(
            hhjax.HHParams(),
            i_ext,
            0.01,
            state0=state0,
            method=method,
            record=("v",),
            check_inputs=False,
        ).v.block_until_ready()

    median, best = _seconds(run)
    return 1e3 * median / n_steps, 1e3 * best / n_steps


def measure_costs() -> Costs:
    """``{method: Cost}`` for one cell and for a batch of cells."""
    return {
        m: Cost(
            *time_per_step(m, 1, SINGLE_STEPS),
            *time_per_step(m, BATCH_CELLS, BATCH_STEPS),
        )
        for m in hhjax.METHODS
    }


@dataclasses.dataclass
class Stability:
    """Stability limits of one method (ms; the largest grid dt up to which every
    grid dt passes). ``*_open`` is True when the scan stopped before a failure."""

    counts: float = 0.0  # standard HH (6.3 degC): finite, reference spike counts
    finite_hot: float = 0.0  # HOT_TEMPERATURE: finite
    finite_hot_open: bool = True

    @property
    def suggested_max_stable_dt(self) -> float:
        return min(self.counts, self.finite_hot)


def measure_stability() -> dict[str, Stability]:
    """Stability limits of every method under the strong drives.

    The scan over dt stops at the first failure at 6.3 °C; the limit at
    ``HOT_TEMPERATURE`` is then open-ended if it has not failed yet.
    """
    y0 = ref.resting_state()
    state0 = _state0()
    drives = np.asarray(STRONG_DRIVES)
    # Batch (temperature, drive): one compiled run per method and dt.
    params = hhjax.HHParams(temperature=jnp.asarray([[6.3], [HOT_TEMPERATURE]]))
    span = np.array([0.0, DURATION + max(STABILITY_DTS)])  # covers every n*dt
    references = [ref.solve(span, np.array([a]), y0) for a in drives]
    results = {}
    for method in hhjax.METHODS:
        res = Stability()
        for dt in STABILITY_DTS:
            n = int(round(DURATION / dt))  # whole steps; the trace lasts n*dt ms
            t = np.arange(n) * dt
            i_ext = jnp.broadcast_to(jnp.asarray(drives), (n, drives.size))
            v = _simulate_v(i_ext, float(dt), method, state0, params, check=False)
            standard, hot = v[:, 0], v[:, 1]
            if res.finite_hot_open:
                if np.isfinite(hot).all():
                    res.finite_hot = float(dt)
                else:
                    res.finite_hot_open = False
            if not (
                np.isfinite(standard).all()
                and all(
                    _count(t, standard[:, j]) == _count(t, r(t)[0])
                    for j, r in enumerate(references)
                )
            ):
                break
            res.counts = float(dt)
        results[method] = res
    return results


def measure_hyperpolarised() -> dict[str, dict[float, float]]:
    """``{method: {dt: current}}``: the most negative constant current (µA/cm²,
    of :data:`HYPERPOLARISING_DRIVES`) down to which every one of them gives a
    finite 100 ms trace from rest at that ``dt`` (0 if the first fails; the last
    drive if none fails)."""
    state0 = _state0()
    drives = np.asarray(HYPERPOLARISING_DRIVES)
    results = {}
    for method in hhjax.METHODS:
        results[method] = {}
        for dt in HYPERPOLARISING_DTS:
            n = int(round(DURATION / dt))
            i_ext = jnp.broadcast_to(jnp.asarray(drives), (n, drives.size))
            v = _simulate_v(i_ext, dt, method, state0, check=False)
            finite = np.isfinite(v).all(axis=0)
            n_ok = int(np.argmin(finite)) if not finite.all() else drives.size
            results[method][dt] = float(drives[n_ok - 1]) if n_ok else 0.0
    return results


def hyperpolarised_table(limits: dict[str, dict[float, float]]) -> str:
    """Markdown table of :func:`measure_hyperpolarised`."""
    lowest = HYPERPOLARISING_DRIVES[-1]
    head = "| method | " + " | ".join(f"dt = {dt:g} ms" for dt in HYPERPOLARISING_DTS)
    lines = [head + " |", "|---" * (1 + len(HYPERPOLARISING_DTS)) + "|"]
    for method, by_dt in limits.items():
        cells = [
            f"≤ {lowest:g} (all)" if by_dt[dt] == lowest else f"{by_dt[dt]:g}"
            for dt in HYPERPOLARISING_DTS
        ]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _count(t: np.ndarray, v: np.ndarray) -> int:
    return len(ref.spike_times(t, v, STRONG_THRESHOLD))


# ------------------------------------------------------------------------ report
EVALUATIONS = {"euler": 1, "exp_euler": 1, "exp_midpoint": 2, "heun": 2, "rk4": 4}


def _fmt(x: float, digits: int = 2) -> str:
    return "diverged" if not np.isfinite(x) else f"{x:.{digits}e}"


def _cost_100ms(costs: Costs, method: str, dt: float) -> tuple[float, float]:
    """Wall time (ms) to simulate 100 ms: one cell, and 1000 cells together."""
    steps = round(DURATION / dt)
    return costs[method].single * steps, costs[method].batch * steps


def accuracy_table(rows: list[Accuracy], costs: Costs) -> str:
    lines = [
        "| method | dt (ms) | max abs ΔV (mV) | spike-time error (ms) | spikes (ref) "
        f"| wall ms per 100 ms: 1 cell / {BATCH_CELLS} cells | meets target |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (list(hhjax.METHODS).index(r.method), r.dt)):
        spikes = "–" if r.n_spikes < 0 else str(r.n_spikes)
        miscount = r.n_spikes >= 0 and not np.isfinite(r.spike_error)
        spike_err = "count differs" if miscount else _fmt(r.spike_error)
        single, batch = _cost_100ms(costs, r.method, r.dt)
        lines.append(
            f"| {r.method} | {r.dt:g} | {_fmt(r.max_dv)} | {spike_err} | {spikes} "
            f"({r.n_spikes_ref}) | {single:.3g} / {batch:.3g} | "
            f"{'yes' if r.meets_target else 'no'} |"
        )
    return "\n".join(lines)


def cost_table(costs: Costs, limits: dict[str, Stability]) -> str:
    lines = [
        "| method | order | RHS evaluations per step | µs/step, 1 cell | "
        f"µs/step, {BATCH_CELLS} cells | stable dt ≤ (ms), 6.3 °C | "
        f"finite dt ≤ (ms), {HOT_TEMPERATURE:g} °C | suggested `max_stable_dt` "
        "(ms) | `max_stable_dt` now (ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m, integ in hhjax.METHODS.items():
        c, lim = costs[m], limits[m]
        hot = f"{'≥ ' if lim.finite_hot_open else ''}{lim.finite_hot:g}"
        lines.append(
            f"| {m} | {integ.order} | {EVALUATIONS.get(m, '?')} | "
            f"{1e3 * c.single:.3g} ({1e3 * c.single_min:.3g}) | "
            f"{1e3 * c.batch:.3g} ({1e3 * c.batch_min:.3g}) | {lim.counts:g} | "
            f"{hot} | {lim.suggested_max_stable_dt:g} | {integ.max_stable_dt:g} |"
        )
    return "\n".join(lines)


def _target_row(rows: list[Accuracy], method: str) -> Accuracy | None:
    """Largest-dt row of ``method`` such that it and every finer dt meet the target."""
    ok = None
    for r in sorted((r for r in rows if r.method == method), key=lambda r: r.dt):
        if not r.meets_target:
            break
        ok = r
    return ok


def target_answers(rows: list[Accuracy], costs: Costs) -> str:
    lines = []
    for m in hhjax.METHODS:
        r = _target_row(rows, m)
        if r is None:
            lines.append(f"- `{m}`: not reached at any dt ≥ {DTS[0]:g} ms.")
            continue
        single, batch = _cost_100ms(costs, m, r.dt)
        lines.append(
            f"- `{m}`: dt ≤ {r.dt:g} ms (max abs ΔV {r.max_dv:.2g} mV, spike-time "
            f"error {r.spike_error:.2g} ms); wall time per 100 ms {single:.3g} ms "
            f"for one cell, {batch:.3g} ms for {BATCH_CELLS} cells."
        )
    return "\n".join(lines)


def _cheapest(rows: list[Accuracy], costs: Costs, which: int) -> str:
    """Method reaching the target at the least cost (0: one cell, 1: batch)."""
    best = {
        m: _cost_100ms(costs, m, r.dt)[which]
        for m in hhjax.METHODS
        if (r := _target_row(rows, m)) is not None
    }
    return min(best, key=best.get)


def criterion_lines(rows: list[Accuracy], costs: Costs) -> str:
    lines = []
    for m in hhjax.METHODS:
        r = next(r for r in rows if r.method == m and r.dt == 0.01)
        verdict = "passes" if r.meets_target else "fails"
        lines.append(
            f"- `{m}`: max abs ΔV {_fmt(r.max_dv)} mV, spike-time error "
            f"{_fmt(r.spike_error)} ms, {r.n_spikes}/{r.n_spikes_ref} spikes → "
            f"{verdict}."
        )
    return "\n".join(lines)


def render(
    rows,
    check,
    costs: Costs,
    limits: dict[str, Stability],
    hyperpolarised: dict[str, dict[float, float]],
) -> str:
    default = hhjax.DEFAULT_METHOD
    d = next(r for r in rows if r.method == default and r.dt == 0.01)
    d_target = _target_row(rows, default)
    return f"""# Integrators: which method and which dt?

Generated by `python benchmarks/work_precision.py`; do not edit by hand. Measured
on {platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}
({jax.devices()[0].platform}), float64.

**Which dt and method for 1 mV / 0.01 ms accuracy?** Use the default `"{default}"`
with dt ≤ {d_target.dt if d_target else float("nan"):g} ms (on a 100 ms spiking
standard-HH trace: max abs ΔV ≤ 1 mV and every spike within 0.01 ms of the
reference). The method reaching that target at the least wall time was
`"{_cheapest(rows, costs, 0)}"` for one cell and `"{_cheapest(rows, costs, 1)}"`
for {BATCH_CELLS} cells at once. At dt = 0.01 ms `"{default}"` is
{d.max_dv:.2g} mV and {d.spike_error:.2g} ms from the reference. `"euler"` is
there for bit-compatibility with pyHH and `"exp_euler"` (Rush–Larsen) for
comparison with simulators that use it: both are first order and need dt ≈ 0.002
ms or less (`"exp_euler"`: less than 0.001 ms) for this accuracy. Under strong
hyperpolarising currents the explicit methods (`"rk4"` among them) can diverge
at steps far below their `max_stable_dt` (no warning; `simulate` raises
`NonFiniteSimulationError`), while `"exp_euler"` and `"exp_midpoint"` stay
finite: see "Hyperpolarising currents" below.

## How it was measured

Standard HH, modern convention (rest −65 mV, `hhjax.HHParams()`), from the exact
rest state. Current: 0 for {STEP_START:g} ms, {STEP_AMPLITUDE:g} µA/cm² on
[{STEP_START:g}, {STEP_STOP:g}) ms, 0 after; {DURATION:g} ms in all
({check["n_spikes"]} spikes). Reference: `scipy.integrate.solve_ivp`, DOP853, rtol
1e-10, atol 1e-12, restarted at each jump of the current, its dense output read at
the sample times k·dt (hhjax's sample k is the state at t = k·dt *before* step
k). Its right-hand side is plain NumPy (`tests/hh_reference.py`), independent of
hhjax. The reference is {check["vs_tight"]:.1e} mV (spike times
{check["spike_vs_tight"]:.1e} ms) from a 100× tighter DOP853 solution and
{check["vs_radau"]:.1e} mV from Radau at rtol 1e-10.

- **max abs ΔV**: largest |V − V_ref| over all samples of the trace. On a spiking
  trace it is dominated by spike-time shifts (V changes by several hundred mV/ms
  on the upstroke) and grows with the trace's length as the phase drifts.
- **spike-time error**: largest difference between matching upward 0 mV
  crossings, each located by linear interpolation between samples, in both traces
  on the same grid; "count differs" when the numbers of spikes differ.
- **cost**: wall time of a jitted `simulate(..., record=("v",))` after a warm-up,
  median (minimum) of {REPEATS} runs, per step: one cell ({SINGLE_STEPS} steps) and
  {BATCH_CELLS} cells at once ({BATCH_STEPS} steps). Wall time per 100 ms = steps ×
  median per step. The machine was shared with other jobs, so timings are noisy;
  compare ratios. For one cell the per-step cost is mostly loop overhead, not
  arithmetic, which is why it is not proportional to the RHS evaluations.
- **stability**: constant {" and ".join(f"{a:g}" for a in STRONG_DRIVES)} µA/cm²
  from rest for {DURATION:g} ms, dt on a {STABILITY_DTS[1] - STABILITY_DTS[0]:g} ms
  grid from {STABILITY_DTS[0]:g} ms. "Stable dt ≤": the largest dt up to which
  every grid dt gives a finite trace with the reference's spike count at 6.3 °C
  (spikes: upward {STRONG_THRESHOLD:g} mV crossings; under such drives the spikes
  shrink and no longer cross 0 mV). "Finite dt ≤": the same for finiteness alone
  at {HOT_TEMPERATURE:g} °C, where the rates are {3 ** ((HOT_TEMPERATURE - 6.3) / 10):.1f}×
  faster (scanned only up to the 6.3 °C limit). The suggested `max_stable_dt`, above
  which `simulate` warns, is the smaller of the two.

## Cost and stability

{cost_table(costs, limits)}

## Hyperpolarising currents

The gates' rates grow steeply below rest (α_n, β_m, α_h…), so the explicit
methods meet a stiffer problem there than under the depolarising drives their
`max_stable_dt` was measured with. The most negative constant current (µA/cm²,
from rest, {DURATION:g} ms, 6.3 °C, a {-HYPERPOLARISING_DRIVES[0]:g} µA/cm² grid
down to {HYPERPOLARISING_DRIVES[-1]:g}) down to which every current on the grid
gives a finite trace ("0": already {HYPERPOLARISING_DRIVES[0]:g} fails):

{hyperpolarised_table(hyperpolarised)}

## Accuracy against the reference (100 ms spiking trace)

"Meets target": max abs ΔV ≤ {TARGET_DV:g} mV and spike-time error ≤
{TARGET_SPIKE:g} ms with the reference's spike count.

{accuracy_table(rows, costs)}

## Which dt and method for 1 mV / 0.01 ms accuracy?

Largest dt in the table that meets the target, every smaller dt meeting it too:

{target_answers(rows, costs)}

## The default

`hhjax.DEFAULT_METHOD = "{default}"`. Criterion: at dt = 0.01 ms, max abs ΔV ≤
1 mV and spike times within 0.01 ms of the reference with the same spike count
over the 100 ms spiking trace; among the methods that pass, the best accuracy per
unit of wall time at dt 0.01–0.025 ms. At dt = 0.01 ms:

{criterion_lines(rows, costs)}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out",
        default=str(ROOT / "docs" / "integrators.md"),
        help="Markdown file to write, or '-' to print only (default: %(default)s, "
        "which is overwritten: that page is this script's output).",
    )
    args = parser.parse_args(argv)
    rows, check = measure_accuracy()
    costs = measure_costs()
    limits = measure_stability()
    hyperpolarised = measure_hyperpolarised()
    text = render(rows, check, costs, limits, hyperpolarised)
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
