"""Forward or reverse mode through ``hhjax.simulate``: where is the crossover?

Times the loss Σ(V + 60 mV)² of a simulated trace and its gradient with respect to
the first ``n`` of gNa, gK, gL, ENa, EK, EL, Cm, v_shift, in reverse mode and in
forward mode (``hhjax.grad(..., mode=...)``), and prints each as a multiple of the
loss's own time (median of 7 calls after compilation; float64, dt = 0.025 ms,
10 µA/cm²). ``--cells B`` simulates B cells that share the parameters and get
currents of 0.5–1.5 × 10 µA/cm². This sets ``hhjax.FORWARD_MODE_MAX``
(``docs/benchmarks.md``, item 13).

Usage::

    python benchmarks/gradient_modes.py [--steps 100000] [--n 3,5,6,7] [--cells 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import jax
import jax.numpy as jnp

jax.config.update("jax_enable_x64", True)

import hhjax  # noqa: E402

FIELDS = ("g_na", "g_k", "g_l", "e_na", "e_k", "e_l", "c_m", "v_shift")


def _median_ms(fn, x, repeats=7):
    jax.block_until_ready(fn(x))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(x))
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--n", default="1,3,5,6,7,8", help="parameter counts")
    parser.add_argument("--cells", type=int, default=1)
    parser.add_argument("--methods", default="exp_euler,rk4")
    args = parser.parse_args(argv)
    counts = [int(k) for k in args.n.split(",")]
    if not all(1 <= k <= len(FIELDS) for k in counts):
        parser.error(f"--n: each count must be 1..{len(FIELDS)}")
    i_ext = jnp.full((args.steps,), 10.0)
    if args.cells > 1:
        i_ext = i_ext[:, None] * jnp.linspace(0.5, 1.5, args.cells)
    defaults = hhjax.HHParams()
    print(f"{args.cells} cell(s), {args.steps} steps; time ÷ the loss's own time")
    print("| method | n | loss ms | reverse mode | forward mode |")
    print("|---|---:|---:|---:|---:|")
    for method in args.methods.split(","):
        for n in counts:

            def loss(x, n=n, method=method):
                p = hhjax.HHParams(**{f: x[k] for k, f in enumerate(FIELDS[:n])})
                v = hhjax.simulate(
                    p, i_ext, 0.025, method=method, record=("v",), check_inputs=False
                ).v
                return jnp.sum((v + 60.0) ** 2)

            x0 = 1.01 * jnp.asarray([getattr(defaults, f) for f in FIELDS[:n]], float)
            base = _median_ms(jax.jit(loss), x0)
            rev = _median_ms(jax.jit(hhjax.grad(loss, mode="reverse")), x0)
            fwd = _median_ms(jax.jit(hhjax.grad(loss, mode="forward")), x0)
            print(
                f"| {method} | {n} | {base:.2f} | {rev / base:.2f} | {fwd / base:.2f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
