"""Fit 1 of issue 4: gradient fit vs a gradient-free optimiser, and gradient memory.

Fit 1: 1 s of standard HH (RK4, dt = 0.025 ms) under a noisy current with 1 mV
recording noise; free g_na, g_k, g_l, e_l; 16 starts drawn log-uniformly within
a factor 2 of the truth (``benchmarks/fit_common.py``).

Rows of the printed table:

* ``fitting.fit`` (multiple shooting + Levenberg–Marquardt, forward-mode
  Jacobians), float64 and float32 (``--mixed``: also float32 stages before the
  last; ``--rk4-stages``: also the float64 fit with RK4 in the 2 ms stage, which
  by default runs exponential midpoint steps): wall time including compilation, the best
  start's largest relative parameter error, and the fraction of starts within 2 %;
  also one start from the regression warm start (``init="regression"``).
  "s to < 1 %": first time the start with the lowest loss (the best point so
  far, for differential evolution) is within 1 % in every parameter.
* scipy ``differential_evolution`` given the same wall time as the float64 fit
  (and, on the MSE, 5x that time),
  each generation one batched, jitted evaluation of the whole population, on
  (a) the whole-trace V-MSE and (b) the same 2 ms multiple-shooting loss (window
  offsets fixed at 0). Bounds: the box the starts were drawn from.
* Peak memory (RSS, each in a fresh subprocess) of one reverse-mode gradient of a
  V-MSE loss over 10⁶ RK4 steps w.r.t. (g_na, g_k, g_l): ``hhjax.simulate``
  (rematerialised steps; √n chunks above its memory budget) against a plain
  ``lax.scan`` of ``hhjax.step`` without checkpointing, and forward mode.

``--problem fit2`` runs the same comparison on fit 2 (all seven parameters from
the step, ramp and noise sweeps).

Usage::

    python benchmarks/fit_benchmark.py            # everything (~6 min on 2 cores)
    python benchmarks/fit_benchmark.py --problem fit2 --starts 8 --skip-memory \
        --skip-float32 --skip-regression --long-de 0 --de-losses mse
    python benchmarks/fit_benchmark.py --skip-memory --starts 8
    python benchmarks/fit_benchmark.py --memory-only --steps 100000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


# ------------------------------------------------------------------------ fits
def _errors(values, truth):
    return np.abs(np.asarray(values) / truth - 1.0)


def run_gradient_fit(
    problem: str, n_starts: int, dtype: str, init=None, rk4_stages: bool = False
) -> dict:
    from fit_common import PROBLEMS, truth_values

    import fitting

    loss = fitting.Shooting(coarse_method=None) if rk4_stages else "shooting"

    free, make_data = PROBLEMS[problem]
    truth = truth_values(free)
    started = time.perf_counter()
    data = make_data()
    offset = time.perf_counter() - started  # record times count from fit()
    result = fitting.fit(
        data, free, n_starts=n_starts, dtype=dtype, init=init, loss=loss,
        progress=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    err = _errors(result.final_values, truth)
    stage_errors = []
    for stage, timing in enumerate(result.timings):
        end = np.flatnonzero(result.stage_of == stage)[-1]
        losses = result.loss_history[end]
        k = int(np.nanargmin(np.where(np.isfinite(losses), losses, np.nan)))
        values = result.value_history[end, k]
        stage_errors.append(
            {
                "stage": timing["label"],
                "max_rel_error": float(_errors(values, truth).max()),
                "stage_s": timing["total_s"],
            }
        )
    progress = []  # (seconds, error of the start with the lowest loss) per record
    for k, seconds in enumerate(result.record_times + offset):
        losses = np.where(
            np.isfinite(result.loss_history[k]), result.loss_history[k], np.inf
        )
        values = result.value_history[k, int(np.argmin(losses))]
        progress.append((float(seconds), float(_errors(values, truth).max())))
    return {
        "method": f"fitting.fit ({n_starts} starts"
        + (", around the regression estimate" if init == "regression" else "")
        + f", {dtype}"
        + (", RK4 in every stage" if rk4_stages else "")
        + ")",
        "after_each_stage": stage_errors,
        "seconds_to_1pct": _first_time(progress, 0.01),
        "seconds_to_0.1pct": _first_time(progress, 0.001),
        "wall_s": wall,
        "best_max_rel_error": float(err[result.best].max()),
        "best_errors": dict(zip(free, err[result.best].tolist(), strict=True)),
        "starts_within_2pct": float(np.mean(err.max(axis=1) < 0.02)),
        "iterations": int(result.loss_history.shape[0]),
        "timings": list(result.timings),
    }


def run_differential_evolution(
    problem: str, budget_s: float, loss: str, label: str = ""
) -> dict:
    import jax
    import jax.numpy as jnp
    from fit_common import DT, PROBLEMS, TRUTH, truth_values
    from scipy.optimize import differential_evolution

    import fitting

    jax.config.update("jax_enable_x64", True)
    free, make_data = PROBLEMS[problem]
    started = time.perf_counter()
    data = make_data()
    arrays = data.arrays()
    truth = truth_values(free)
    lo, hi = np.sort(np.stack([truth / 2, truth * 2]), axis=0)
    if loss == "mse":
        stage = fitting.TraceMSE().stages(data.n_samples, data.n_sweeps, DT, "rk4")[0]
    else:
        stage = fitting.Shooting((2.0,)).stages(
            data.n_samples, data.n_sweeps, DT, "rk4"
        )[0]
    delta = jnp.zeros(stage.delta_shape or (0,))

    def one(values):
        params = TRUTH._replace(**dict(zip(free, values, strict=True)))
        return fitting._losses.stage_value(stage, params, delta, arrays)

    batch = jax.jit(jax.vmap(one))
    evaluations = [0]
    best = {"loss": np.inf, "x": None}
    progress = []  # (seconds, max rel. error of the best so far)

    def objective(x):  # x: (n_params, population)
        values = np.asarray(batch(jnp.asarray(x.T)))
        evaluations[0] += x.shape[1]
        values = np.where(np.isfinite(values), values, 1e12)
        k = int(np.argmin(values))
        if values[k] < best["loss"]:
            best["loss"], best["x"] = float(values[k]), x[:, k].copy()
            progress.append(
                (time.perf_counter() - started, float(_errors(best["x"], truth).max()))
            )
        return values

    def out_of_time(*_args, **_kwargs):
        return time.perf_counter() - started >= budget_s

    result = differential_evolution(
        objective, list(zip(lo, hi, strict=True)), vectorized=True,
        updating="deferred", popsize=15, maxiter=100000, tol=0, seed=0,
        polish=False, callback=out_of_time,
    )  # fmt: skip
    x = best["x"] if best["x"] is not None else result.x
    err = _errors(x, truth)
    return {
        "method": f"differential_evolution ({loss} loss, {label or 'same time'})",
        "wall_s": time.perf_counter() - started,
        "best_max_rel_error": float(err.max()),
        "best_errors": dict(zip(free, err.tolist(), strict=True)),
        "starts_within_2pct": None,
        "evaluations": evaluations[0],
        "generations": int(result.nit),
        "seconds_to_1pct": _first_time(progress, 0.01),
        "seconds_to_0.1pct": _first_time(progress, 0.001),
    }


def _first_time(progress, level):
    """First time (s) the best point's largest relative error fell below
    ``level``, or ``None``."""
    return next((t for t, err in progress if err < level), None)


# ---------------------------------------------------------------------- memory
def memory_worker(kind: str, n_steps: int) -> dict:
    """One gradient over ``n_steps`` steps in this (fresh) process; peak RSS."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    import hhjax

    jax.config.update("jax_enable_x64", True)
    dt = 0.025
    i_ext = jnp.full((n_steps,), 10.0)
    truth = hhjax.HHParams()
    state0 = hhjax.resting_state(truth)
    target = hhjax.simulate(
        hhjax.HHParams(g_na=110.0, g_k=40.0, g_l=0.25), i_ext, dt, record=("v",)
    ).v
    target.block_until_ready()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB

    def with_g(g):
        return truth._replace(g_na=g[0], g_k=g[1], g_l=g[2])

    def loss_simulate(g):
        v = hhjax.simulate(with_g(g), i_ext, dt, state0=state0, record=("v",)).v
        return jnp.mean((v - target) ** 2)

    def loss_plain(g):
        params = with_g(g)

        def body(state, i_k):
            return hhjax.step(state, params, i_k, dt, "rk4"), state.v

        _, v = lax.scan(body, state0, i_ext)
        return jnp.mean((v - target) ** 2)

    g0 = jnp.array([120.0, 36.0, 0.3])
    del baseline
    if kind == "checkpointed":
        fn = jax.jit(jax.grad(loss_simulate))
    elif kind == "plain":
        fn = jax.jit(jax.grad(loss_plain))
    elif kind == "forward":
        fn = jax.jit(jax.jacfwd(loss_simulate))
    else:
        raise ValueError(kind)
    compiled = fn.lower(g0).compile()
    baseline = _rss_mib()  # after compiling: what running the gradient adds
    sampler = _PeakSampler()
    t0 = time.perf_counter()
    with sampler:
        grad = np.asarray(compiled(g0))
    seconds = time.perf_counter() - t0
    return {
        "kind": kind,
        "n_steps": n_steps,
        "peak_rss_MiB": sampler.peak,
        "baseline_rss_MiB": baseline,
        "gradient_MiB": sampler.peak - baseline,
        "max_rss_incl_compile_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        / 1024,
        "seconds": seconds,
        "gradient": grad.tolist(),
    }


def _rss_mib() -> float:
    """Current resident set size of this process, MiB (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


class _PeakSampler:
    """Samples the RSS every millisecond in a thread while the block runs."""

    def __enter__(self):
        self.peak = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mib())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())


def run_memory(n_steps: int) -> list[dict]:
    rows = []
    for kind in ("checkpointed", "plain", "forward"):
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--memory-worker",
                kind,
                "--steps",
                str(n_steps),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            rows.append({"kind": kind, "n_steps": n_steps, "error": proc.stderr[-500:]})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return rows


# ----------------------------------------------------------------------- table
def _seconds(value) -> str:
    return "not reached" if value is None else f"{value:.1f}"


PROBLEM_TITLES = {
    "fit1": "fit 1 (g_na, g_k, g_l, e_l; 1 s, 1 mV noise)",
    "fit2": "fit 2 (all seven; step, ramp, noise sweeps, 1 mV noise)",
}


def _table(fit_rows, memory_rows, problem: str = "fit1") -> str:
    lines = []
    if fit_rows:
        lines += [
            f"| {PROBLEM_TITLES[problem]} | wall s | best: max rel. "
            "error | starts within 2 % | s to < 1 % | s to < 0.1 % |",
            "|---|---|---|---|---|---|",
        ]
        for r in fit_rows:
            frac = r.get("starts_within_2pct")
            frac_text = "–" if frac is None else f"{100 * frac:.0f} %"
            extra = f" ({r['evaluations']} evaluations)" if "evaluations" in r else ""
            reach = [
                _seconds(r.get("seconds_to_1pct")),
                _seconds(r.get("seconds_to_0.1pct")),
            ]
            lines.append(
                f"| {r['method']}{extra} | {r['wall_s']:.1f} | "
                f"{100 * r['best_max_rel_error']:.3g} % | {frac_text} | {reach[0]} | "
                f"{reach[1]} |"
            )
    if memory_rows:
        lines += [
            "",
            "| one gradient (reverse mode unless forward) | RK4 steps | peak RSS MiB | "
            "added by the gradient, MiB | s |",
            "|---|---|---|---|---|",
        ]
        for r in memory_rows:
            if "error" in r:
                lines.append(f"| {r['kind']} | {r['n_steps']} | failed | | |")
                continue
            lines.append(
                f"| {r['kind']} | {r['n_steps']:.0e} | {r['peak_rss_MiB']:.0f} | "
                f"{r['gradient_MiB']:.0f} | {r['seconds']:.1f} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=tuple(PROBLEM_TITLES), default="fit1")
    parser.add_argument("--starts", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--long-de",
        type=float,
        default=5.0,
        help="also run differential evolution on the MSE for this many times the "
        "gradient fit's wall time (0: skip)",
    )
    parser.add_argument(
        "--de-losses",
        default="mse,shooting",
        help="losses differential evolution runs on, given the gradient fit's time",
    )
    parser.add_argument("--skip-float32", action="store_true")
    parser.add_argument(
        "--mixed",
        action="store_true",
        help="also run the fit with dtype='mixed' (float32 stages before the last)",
    )
    parser.add_argument(
        "--rk4-stages",
        action="store_true",
        help="also run the float64 fit with RK4 in every stage (coarse_method=None)",
    )
    parser.add_argument("--skip-regression", action="store_true")
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--memory-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_worker:
        print(json.dumps(memory_worker(args.memory_worker, args.steps)))
        return 0
    fit_rows = []
    if not args.memory_only:
        problem = args.problem
        grad = run_gradient_fit(problem, args.starts, "float64")
        fit_rows.append(grad)
        print(json.dumps(grad), flush=True)
        for loss in filter(None, args.de_losses.split(",")):
            fit_rows.append(run_differential_evolution(problem, grad["wall_s"], loss))
            print(json.dumps(fit_rows[-1]), flush=True)
        if args.long_de:
            budget = args.long_de * grad["wall_s"]
            label = f"{args.long_de:g}x the time"
            fit_rows.append(run_differential_evolution(problem, budget, "mse", label))
            print(json.dumps(fit_rows[-1]), flush=True)
        if not args.skip_regression:
            fit_rows.append(run_gradient_fit(problem, 1, "float64", init="regression"))
            print(json.dumps(fit_rows[-1]), flush=True)
        if not args.skip_float32:
            fit_rows.append(run_gradient_fit(problem, args.starts, "float32"))
            print(json.dumps(fit_rows[-1]), flush=True)
        if args.mixed:
            fit_rows.append(run_gradient_fit(problem, args.starts, "mixed"))
            print(json.dumps(fit_rows[-1]), flush=True)
        if args.rk4_stages:
            row = run_gradient_fit(problem, args.starts, "float64", rk4_stages=True)
            fit_rows.append(row)
            print(json.dumps(row), flush=True)
    memory_rows = [] if args.skip_memory else run_memory(args.steps)
    for row in memory_rows:
        print(json.dumps(row), flush=True)
    print()
    print(_table(fit_rows, memory_rows, args.problem))
    return 0


if __name__ == "__main__":
    sys.exit(main())
