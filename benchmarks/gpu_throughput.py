"""Throughput of ``hhjax.simulate`` on a GPU: neuron-steps per second for 10^4–10^6
cells, float32 and float64.

The benchmark cell (``_problem.py``: standard HH, 10 µA/cm², dt = 0.025 ms, gNa
drawn in [100, 140] mS/cm²) for ``--steps`` steps, method ``exp_euler`` by default,
recording V every ``--stride`` steps (10^6 cells × 2000 steps of V would not fit in
memory). With several GPUs the batch is split over all of them with a
``jax.sharding.Mesh``. Without a GPU it says so and exits (status 0), unless
``--allow-cpu`` is given (to try the script itself with small sizes)::

    python benchmarks/gpu_throughput.py [--cells 1e4,1e5,1e6] [--out gpu.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _problem as problem  # noqa: E402


def measure(cells: int, steps: int, stride: int, dtype_name: str, method: str,
            repeats: int) -> dict:
    """Compile once, time ``repeats`` runs; returns the row for the table."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    import hhjax

    dtype = jnp.float64 if dtype_name == "f64" else jnp.float32
    g_na = jnp.asarray(problem.g_na_batch(cells), dtype)
    params = hhjax.HHParams(g_na=g_na)
    state0 = hhjax.HH.steady_state(jnp.full(cells, problem.V0, dtype), params)
    devices = jax.devices()
    if len(devices) > 1 and cells % len(devices) == 0:
        split = NamedSharding(Mesh(np.array(devices), ("cells",)),
                              PartitionSpec("cells"))
        params, state0 = jax.device_put((params, state0), split)
    i_ext = jnp.full((steps,), problem.I_EXT, dtype)

    def run():
        trace = hhjax.simulate(params, i_ext, problem.DT, state0=state0,
                               method=method, record=("v",), stride=stride)
        return trace.v.block_until_ready()

    t0 = time.perf_counter()
    v = run()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        v = run()
        times.append(time.perf_counter() - t0)
    best = min(times)
    return {
        "cells": cells, "dtype": dtype_name, "steps": steps, "method": method,
        "devices": len(devices), "compile_s": first - best, "time_s": best,
        "rate": cells * steps / best, "finite": bool(np.isfinite(np.asarray(v)).all()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="1e4,1e5,1e6")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--stride", type=int, default=100)
    parser.add_argument("--dtypes", default="f32,f64")
    parser.add_argument("--method", default="exp_euler")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--allow-cpu", action="store_true")
    parser.add_argument("--out", type=Path, help="write the table (Markdown) here")
    args = parser.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)
    backend = jax.default_backend()
    if backend != "gpu" and not args.allow_cpu:
        print(f"No GPU: JAX's default backend is {backend!r}; nothing measured. "
              "(Install jax[cuda12] on a machine with a GPU.)")
        return 0
    device = jax.devices()[0]
    lines = [
        f"Device: {len(jax.devices())} × {device.device_kind} ({backend}); "
        f"jax {jax.__version__}; {args.steps} steps of {problem.DT} ms, method "
        f"{args.method}, V recorded every {args.stride} steps.",
        "",
        "| cells | dtype | time (s) | neuron-steps/s | compile (s) | finite |",
        "|---:|---|---:|---:|---:|---|",
    ]
    for dtype in args.dtypes.split(","):
        for cells in (int(float(c)) for c in args.cells.split(",")):
            row = measure(cells, args.steps, args.stride, dtype, args.method,
                          args.repeats)
            lines.append(
                f"| {cells:,} | {dtype} | {row['time_s']:.3g} | "
                f"{problem.fmt_rate(cells * args.steps, row['time_s'])} | "
                f"{row['compile_s']:.2f} | {row['finite']} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
