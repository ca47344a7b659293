"""Effect of XLA:CPU's small-while-loop threshold on hhjax's scans.

``xla_cpu_small_while_loop_byte_threshold`` decides which ``while`` loops XLA:CPU
compiles as one kernel (see ``hhjax/_xla_flags.py``). This script times, for each
threshold in a fresh process (the flag is read once, when JAX starts; every column
also has hhjax's other flag, ``--xla_cpu_prefer_vector_width=512``; "default" is
XLA's own threshold, 1 KiB), forward runs and reverse-mode gradients for one cell to
10⁴ cells, and prints one Markdown table: median wall time and median CPU time per
call, in milliseconds (float64, dt = 0.025 ms, 10⁴ steps, except 4000 for the
gradients of 16 to 1000 cells; gradient of Σ(V + 60)² with respect to every cell's
gNa).

Usage::

    python benchmarks/xla_flags.py [--thresholds default,65536,1048576,1000000000]
    python benchmarks/xla_flags.py --cases 1,3 --steps 2000 --repeats 3

``--cases`` picks cases by number (``--help`` lists them), ``--steps`` overrides
every picked case's steps. A failing worker process ends the script with status 1
and its error output.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# (label, cells, method, what, steps)
CASES = (
    ("1 cell rk4 forward", 1, "rk4", "forward", 10_000),
    ("1 cell rk4 reverse gradient", 1, "rk4", "reverse", 10_000),
    ("1 cell exp_euler reverse gradient", 1, "exp_euler", "reverse", 10_000),
    ("16 cells rk4 reverse gradient", 16, "rk4", "reverse", 4000),
    ("64 cells rk4 forward", 64, "rk4", "forward", 10_000),
    ("64 cells rk4 reverse gradient", 64, "rk4", "reverse", 4000),
    ("1000 cells rk4 forward", 1000, "rk4", "forward", 10_000),
    ("1000 cells rk4 reverse gradient", 1000, "rk4", "reverse", 4000),
    ("10⁴ cells exp_euler forward", 10_000, "exp_euler", "forward", 10_000),
    ("10⁴ cells rk4 forward", 10_000, "rk4", "forward", 10_000),
)


def _measure(cells: int, method: str, what: str, steps: int, repeats: int) -> dict:
    """Run in the worker process: compile time, median wall and CPU ms."""
    import statistics

    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    import hhjax

    i_ext = jnp.full((steps,), 10.0)

    def loss(g_na):
        v = hhjax.simulate(
            hhjax.HHParams(g_na=g_na),
            i_ext,
            0.025,
            method=method,
            record=("v",),
            check_inputs=False,
        ).v
        return jnp.sum((v + 60.0) ** 2)

    fn = jax.jit(loss if what == "forward" else jax.grad(loss))
    g_na = jnp.linspace(100.0, 140.0, cells) if cells > 1 else jnp.asarray(120.0)
    start = time.perf_counter()
    jax.block_until_ready(fn(g_na))
    compile_s = time.perf_counter() - start
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn(g_na))
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return {
        "compile_s": compile_s,
        "wall_ms": 1e3 * statistics.median(walls),
        "cpu_ms": 1e3 * statistics.median(cpus),
    }


class WorkerError(RuntimeError):
    """A worker process failed; the message holds the end of its stderr."""


def _run(threshold: str, case: tuple, repeats: int) -> dict:
    """Measure one case with one threshold in a fresh process.

    Raises:
        WorkerError: the process failed.
    """
    # Only the threshold differs between columns: hhjax's own flags are switched
    # off and its vector-width flag is given explicitly to every column.
    env = dict(os.environ, HHJAX_NO_XLA_TUNING="1")
    flags = ["--xla_cpu_prefer_vector_width=512"]
    if threshold != "default":
        flags.append(
            "--xla_backend_extra_options="
            f"xla_cpu_small_while_loop_byte_threshold={threshold}"
        )
    env["XLA_FLAGS"] = " ".join(flags)
    _, cells, method, what, steps = case
    code = (
        f"import json, sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
        "from xla_flags import _measure; "
        f"print(json.dumps(_measure({cells}, {method!r}, {what!r}, {steps}, "
        f"{repeats})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise WorkerError(
            f"{case[0]}, threshold {threshold}: worker exited with "
            f"{proc.returncode}:\n{tail}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _parse(argv: list[str] | None) -> argparse.Namespace:
    cases = "; ".join(f"{k}: {c[0]} ({c[4]} steps)" for k, c in enumerate(CASES, 1))
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog=f"cases: {cases}"
    )
    parser.add_argument(
        "--thresholds",
        default="default,65536,1048576,1000000000",
        help="comma-separated byte thresholds; 'default' = XLA's own",
    )
    parser.add_argument(
        "--cases", help="comma-separated case numbers (default: all; see below)"
    )
    parser.add_argument("--steps", type=int, help="steps of every case (default: own)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    args.thresholds = args.thresholds.split(",")
    if bad := [t for t in args.thresholds if t != "default" and not t.isdigit()]:
        parser.error(f"--thresholds: not 'default' or a byte count: {', '.join(bad)}")
    try:
        picked = [int(k) for k in args.cases.split(",")] if args.cases else None
    except ValueError:
        parser.error(f"--cases: not a list of case numbers: {args.cases!r}")
    if picked and not all(1 <= k <= len(CASES) for k in picked):
        parser.error(f"--cases: numbers run from 1 to {len(CASES)}")
    if args.repeats < 1 or (args.steps is not None and args.steps < 1):
        parser.error("--repeats and --steps must be at least 1")
    args.cases = [CASES[k - 1] for k in picked] if picked else list(CASES)
    if args.steps:
        args.cases = [(*c[:4], args.steps) for c in args.cases]
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    thresholds = args.thresholds
    print("| case | " + " | ".join(f"{t} wall / CPU ms" for t in thresholds) + " |")
    print("|---|" + "---:|" * len(thresholds))
    for case in args.cases:
        cells = []
        for t in thresholds:
            try:
                r = _run(t, case, args.repeats)
            except WorkerError as err:
                print(err, file=sys.stderr)
                return 1
            cells.append(f"{r['wall_ms']:.1f} / {r['cpu_ms']:.1f}")
        label = case[0] if args.steps is None else f"{case[0]}, {case[4]} steps"
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
