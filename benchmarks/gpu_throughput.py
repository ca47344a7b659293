"""Throughput of ``hhjax.simulate`` on a GPU: neuron-steps per second for 10^4–10^6
cells, float32 and float64.

The benchmark cell (``_problem.py``: standard HH, 10 µA/cm², dt = 0.025 ms, gNa
drawn in [100, 140] mS/cm²) for ``--steps`` steps, method ``exp_euler`` by default,
recording V every ``--stride`` steps (10^6 cells × 2000 steps of V would not fit in
memory). With several GPUs the batch is split over all of them with a
``jax.sharding.Mesh``. Times are medians of ``--repeats`` calls after a first
(compiling) call.

Without a GPU it says so and exits with status 1, nothing measured, unless
``--allow-cpu`` is given (to try the script itself with small sizes on the CPU)::

    python benchmarks/gpu_throughput.py [--cells 1e4,1e5,1e6] [--out gpu.md]
    python benchmarks/gpu_throughput.py --allow-cpu --cells 1000 --steps 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _problem as problem  # noqa: E402

DTYPES = ("f32", "f64")


def measure(
    cells: int, steps: int, stride: int, dtype_name: str, method: str, repeats: int
) -> dict:
    """Compile once, time ``repeats`` runs; returns the row for the table.

    Args:
        cells: batch size.
        steps: time steps of ``DT`` ms.
        stride: V is recorded every ``stride`` steps.
        dtype_name: ``"f32"`` or ``"f64"``.
        method: hhjax integrator.
        repeats: timed calls.

    Returns:
        ``time_s`` (median, s), ``compile_s`` (first call minus it, s), ``rate``
        (neuron-steps/s), ``devices``, ``finite`` (every recorded V finite).
    """
    import _jax_tools as jt
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh

    import hhjax

    dtype = jnp.float64 if dtype_name == "f64" else jnp.float32
    params = hhjax.HHParams(g_na=jnp.asarray(problem.g_na_batch(cells), dtype))
    state0 = hhjax.HH.steady_state(jnp.full(cells, problem.V0, dtype), params)
    devices = jax.devices()
    if len(devices) > 1 and cells % len(devices) == 0:
        mesh = Mesh(np.array(devices), ("cells",))
        params, state0 = jt.shard_cells((params, state0), mesh)
    i_ext = jnp.full((steps,), problem.I_EXT, dtype)

    def run():
        trace = hhjax.simulate(
            params,
            i_ext,
            problem.DT,
            state0=state0,
            method=method,
            record=("v",),
            stride=stride,
        )
        return trace.v.block_until_ready()

    t0 = time.perf_counter()
    v = run()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        v = run()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {
        "cells": cells,
        "dtype": dtype_name,
        "steps": steps,
        "method": method,
        "devices": len(devices),
        "compile_s": max(0.0, first - median),
        "time_s": median,
        "rate": cells * steps / median,
        "finite": bool(np.isfinite(np.asarray(v)).all()),
    }


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cells",
        default="1e4,1e5,1e6",
        help="comma-separated batch sizes (default %(default)s)",
    )
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument(
        "--stride",
        type=int,
        default=100,
        help="record V every this many steps; must divide --steps",
    )
    parser.add_argument(
        "--dtypes",
        default="f32,f64",
        help=f"comma-separated subset of {','.join(DTYPES)}",
    )
    parser.add_argument("--method", default="exp_euler")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--allow-cpu",
        action="store_true",
        help="measure on the CPU when there is no GPU (exit 0)",
    )
    parser.add_argument("--out", type=Path, help="write the table (Markdown) here")
    args = parser.parse_args(argv)
    args.dtypes = args.dtypes.split(",")
    if bad := [d for d in args.dtypes if d not in DTYPES]:
        parser.error(
            f"--dtypes: unknown {', '.join(bad)}; choose from {', '.join(DTYPES)}"
        )
    try:
        args.cells = [int(float(c)) for c in args.cells.split(",")]
    except ValueError:
        parser.error(f"--cells: not a list of numbers: {args.cells!r}")
    if min(args.cells) < 1 or min(args.steps, args.stride, args.repeats) < 1:
        parser.error("--cells, --steps, --stride and --repeats must be at least 1")
    if args.steps % args.stride:
        parser.error(
            f"--steps ({args.steps}) must be a multiple of --stride ({args.stride})"
        )
    import hhjax

    if args.method not in hhjax.METHODS:
        parser.error(
            f"--method: unknown {args.method!r}; choose from {', '.join(hhjax.METHODS)}"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    backend = jax.default_backend()
    if backend != "gpu" and not args.allow_cpu:
        print(
            f"No GPU: JAX's default backend is {backend!r}; nothing measured "
            "(install jax[cuda12] on a machine with a GPU, or pass --allow-cpu).",
            file=sys.stderr,
        )
        return 1
    device = jax.devices()[0]
    lines = [
        f"Device: {len(jax.devices())} × {device.device_kind} ({backend}); "
        f"jax {jax.__version__}; {args.steps} steps of {problem.DT} ms, method "
        f"{args.method}, V recorded every {args.stride} steps; median of "
        f"{args.repeats} calls.",
        "",
        "| cells | dtype | time (s) | neuron-steps/s | compile (s) | finite |",
        "|---:|---|---:|---:|---:|---|",
    ]
    for dtype in args.dtypes:
        for cells in args.cells:
            row = measure(
                cells, args.steps, args.stride, dtype, args.method, args.repeats
            )
            lines.append(
                f"| {cells:,} | {dtype} | {row['time_s']:.3g} | "
                f"{problem.fmt_rate(cells * args.steps, row['time_s'])} | "
                f"{row['compile_s']:.2f} | {row['finite']} |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
