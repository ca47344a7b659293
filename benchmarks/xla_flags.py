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


def _run(threshold: str, case: tuple, repeats: int) -> dict:
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
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--thresholds",
        default="default,65536,1048576,1000000000",
        help="comma-separated byte thresholds; 'default' = XLA's own",
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    thresholds = args.thresholds.split(",")
    print("| case | " + " | ".join(f"{t} wall / CPU ms" for t in thresholds) + " |")
    print("|---|" + "---:|" * len(thresholds))
    for case in CASES:
        cells = []
        for t in thresholds:
            r = _run(t, case, args.repeats)
            cells.append(f"{r['wall_ms']:.1f} / {r['cpu_ms']:.1f}")
        print(f"| {case[0]} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
