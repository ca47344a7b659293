"""Forward or reverse mode? Time of one loss gradient against the number of free
parameters, for the two kinds of stage the default fit runs.

Fit-1 data (1 s at dt = 0.025 ms, ``fit_common.py``); 16 starts vmapped, as in a
fit. Forward mode: ``n`` + 1 batched JVPs (the extra one for the window
offsets); reverse mode: ``jax.grad`` through the (rematerialised) simulation.
Free parameters are taken in the order g_na, g_k, g_l, e_l, e_na, e_k, c_m,
v_shift, q10, temperature, q10_g. Prints a table of milliseconds per gradient
(median of 5, after compilation).

Usage::

    python benchmarks/fit_modes.py
"""

from __future__ import annotations

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
N_STARTS = 16


def _time(fn, *args, repeats=5):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> int:
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
        for n in (1, 2, 4, 7, 11):
            bounds = {"temperature": (0.0, 30.0), "v_shift": (-10.0, 10.0)}
            space = ParamSpace.create(
                TRUTH, ORDER[:n], {k: b for k, b in bounds.items() if k in ORDER[:n]}
            )
            z = jnp.asarray(space.to_z(space.base_values()))
            z = jnp.tile(z, (N_STARTS, 1))
            delta = jnp.zeros((N_STARTS, *(stage.delta_shape or (0,))))
            p = {"z": z, "delta": delta}
            row = []
            for mode in ("forward", "reverse"):
                fn = jax.jit(jax.vmap(_value_and_grad(stage, space, mode), (0, None)))
                row.append(_time(fn, p, arrays))
            print(
                f"| {label} | {n} | {row[0]:.0f} | {row[1]:.0f} | "
                f"{row[1] / row[0]:.2f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
