"""Which loss? Fit 1 with each loss design, over noise seeds and stimuli.

Fit 1 (``fit_common.py``): 1 s of standard HH under a noisy current, 1 mV
recording noise, free g_na, g_k, g_l, e_l; 16 starts log-uniform within a
factor 2 of the truth; Levenberg–Marquardt. Each design is run on the same data
sets (OU current seeds × noise seeds); printed per design: the median and worst
(over data sets) largest relative error of the best start, the fraction of all
starts within 2 %, and the mean wall time per fit (compilation included once per
design).

Designs: plain whole-trace V-MSE from rest; multiple shooting over 2 ms windows
started from the recorded V (no offsets); the same with fitted offsets; the
continuations 2 → 20 ms, 2 ms → whole sweep, and 2 → 20 ms → whole sweep (the
default, whose 2 ms stage runs exponential midpoint steps), and the default with
RK4 in every stage.

Usage::

    python benchmarks/fit_losses.py --currents 1,2,3 --noise-seeds 0
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_common import DT, FIT1_FREE, TRUTH, noisy_current, truth_values  # noqa: E402

import fitting  # noqa: E402

DESIGNS = {
    "whole-trace V-MSE": fitting.TraceMSE(),
    "2 ms shooting, no offsets": fitting.Shooting((2.0,), offsets=False),
    "2 ms shooting": fitting.Shooting((2.0,)),
    "2 -> 20 ms": fitting.Shooting((2.0, 20.0)),
    "2 ms -> whole sweep": fitting.Shooting((2.0, None)),
    "2 -> 20 ms -> whole sweep (default)": fitting.Shooting((2.0, 20.0, None)),
    "default, RK4 in every stage": fitting.Shooting(
        (2.0, 20.0, None), coarse_method=None
    ),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--currents", default="1,2,3", help="OU current seeds")
    parser.add_argument("--noise-seeds", default="0", help="recording-noise seeds")
    parser.add_argument("--starts", type=int, default=16)
    parser.add_argument("--designs", default=None, help="comma-separated indices")
    args = parser.parse_args(argv)
    keys = [int(k) for k in args.currents.split(",")]
    seeds = [int(s) for s in args.noise_seeds.split(",")]
    truth = truth_values(FIT1_FREE)
    datasets = [
        fitting.synthetic_data(TRUTH, noisy_current(key=k), DT, noise_mv=1.0, seed=s)
        for k in keys
        for s in seeds
    ]
    chosen = list(DESIGNS.items())
    if args.designs:
        chosen = [chosen[int(i)] for i in args.designs.split(",")]
    print(
        f"{len(datasets)} data sets (currents {keys} x noise seeds {seeds}), "
        f"{args.starts} starts each"
    )
    print()
    print(
        "| loss | best start, max rel. error: median | worst | starts within 2 % "
        "| s per fit |"
    )
    print("|---|---|---|---|---|")
    for label, loss in chosen:
        best, within, walls = [], [], []
        for k, data in enumerate(datasets):
            started = time.perf_counter()
            result = fitting.fit(
                data, FIT1_FREE, loss=loss, n_starts=args.starts, seed=k,
                progress=False, uncertainty=False,
            )  # fmt: skip
            walls.append(time.perf_counter() - started)
            err = np.abs(result.final_values / truth - 1).max(axis=1)
            best.append(err[result.best])
            within.append(np.mean(err < 0.02))
        print(
            f"| {label} | {100 * np.median(best):.3g} % | {100 * np.max(best):.3g} % | "
            f"{100 * np.mean(within):.0f} % | {np.mean(walls):.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
