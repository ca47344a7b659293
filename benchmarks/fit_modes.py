"""Forward or reverse mode? Time of one loss gradient against the number of free
parameters, for the two kinds of stage the default fit runs.

Fit-1 data (1 s at dt = 0.025 ms, ``fit_common.py``); 16 starts vmapped, as in a
fit. Forward mode: ``n`` + 1 batched JVPs (the extra one for the window
offsets); reverse mode: ``jax.grad`` through the (rematerialised) simulation.
Free parameters are taken in the order g_na, g_k, g_l, e_l, e_na, e_k, c_m,
v_shift, q10, temperature, q10_g. Prints a table of milliseconds per gradient
(median of ``--repeats``, after compilation). The default run takes minutes.

Usage::

    python benchmarks/fit_modes.py [--n 1,2,4,7,11] [--starts 16] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_common import DT, TRUTH, fit1_data  # noqa: E402

import fitting  # noqa: E402
from fitting._optim import _value_and_grad  # noqa: E402
from fitting._params import ParamSpace  # noqa: E402

ORDER = (
    "g_na", "g_k", "g_l", "e_l", "e_na", "e_k", "c_m", "v_shift", "q10",
    "temperature", "q10_g",
)  # fmt: skip


def _time(fn, *args, repeats: int) -> float:
    """Median wall time of ``repeats`` calls after a first one, ms."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n",
        default="1,2,4,7,11",
        help=f"numbers of free parameters, each 1–{len(ORDER)}",
    )
    parser.add_argument("--starts", type=int, default=16, help="starts vmapped")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        args.n = [int(k) for k in args.n.split(",")]
    except ValueError:
        parser.error(f"--n: not a list of integers: {args.n!r}")
    if not all(1 <= k <= len(ORDER) for k in args.n):
        parser.error(f"--n: each must be within 1–{len(ORDER)}")
    if args.starts < 1 or args.repeats < 1:
        parser.error("--starts and --repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    data = fit1_data()
    arrays = data.arrays()
    losses = {
        "2 ms windows": fitting.Shooting((2.0,)),
        "whole sweep": fitting.TraceMSE(),
    }
    print("| stage | free parameters | forward ms | reverse ms | reverse / forward |")
    print("|---|---|---|---|---|")
    for label, loss in losses.items():
        stage = loss.stages(data.n_samples, 1, DT, "rk4")[0]
        for n in args.n:
            bounds = {"temperature": (0.0, 30.0), "v_shift": (-10.0, 10.0)}
            space = ParamSpace.create(
                TRUTH, ORDER[:n], {k: b for k, b in bounds.items() if k in ORDER[:n]}
            )
            z = jnp.asarray(space.to_z(space.base_values()))
            z = jnp.tile(z, (args.starts, 1))
            delta = jnp.zeros((args.starts, *(stage.delta_shape or (0,))))
            p = {"z": z, "delta": delta}
            row = []
            for mode in ("forward", "reverse"):
                fn = jax.jit(jax.vmap(_value_and_grad(stage, space, mode), (0, None)))
                row.append(_time(fn, p, arrays, repeats=args.repeats))
            print(
                f"| {label} | {n} | {row[0]:.0f} | {row[1]:.0f} | "
                f"{row[1] / row[0]:.2f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
