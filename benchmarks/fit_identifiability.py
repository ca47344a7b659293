"""Fit 2 of issue 4: all seven of g_na, g_k, g_l, e_na, e_k, e_l, c_m from three
sweeps (step, ramp, noise), repeated over recording-noise seeds.

For every seed: a fresh 1 mV noise realisation of the same three 1 s sweeps
(``benchmarks/fit_common.py``), ``fitting.fit`` from starts drawn within a factor
2 of the truth. Printed per parameter: the mean relative error over seeds (bias),
the spread of the estimates across seeds (s.d.), the mean Laplace standard error
the fit reported, their ratio, how often the fit flagged the parameter as
undetermined, and the fraction of starts that landed within 2 %.

``--problem fit1`` runs the same study on fit 1 (g_na, g_k, g_l, e_l from the
noisy-current sweep).

Usage::

    python benchmarks/fit_identifiability.py --seeds 6 --starts 8
    python benchmarks/fit_identifiability.py --problem fit1 --seeds 8 --starts 4
    python benchmarks/fit_identifiability.py --seeds 4 --starts 8 --dtype mixed
    python benchmarks/fit_identifiability.py --seeds 4 --starts 8 --coarse-method None
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_common import PROBLEMS, truth_values  # noqa: E402

import fitting  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--starts", type=int, default=4)
    parser.add_argument("--duration", type=float, default=1000.0, help="ms per sweep")
    parser.add_argument(
        "--windows",
        default="2,20,None",
        help="shooting windows, ms ('None': whole sweep)",
    )
    parser.add_argument("--substeps", type=int, default=1)
    parser.add_argument(
        "--coarse-method",
        default="exp_midpoint",
        help="integrator of a window stage followed by another window stage "
        "('None': the fit's, rk4)",
    )
    parser.add_argument("--problem", choices=tuple(PROBLEMS), default="fit2")
    parser.add_argument(
        "--dtype", default="float64", choices=("float64", "float32", "mixed")
    )
    args = parser.parse_args(argv)
    windows = tuple(None if w == "None" else float(w) for w in args.windows.split(","))
    coarse = None if args.coarse_method == "None" else args.coarse_method
    loss = fitting.Shooting(windows, substeps=args.substeps, coarse_method=coarse)
    free, make_data = PROBLEMS[args.problem]
    truth = truth_values(free)
    estimates, errors, flags, success, walls, laplace_corr = [], [], [], [], [], []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        data = make_data(noise_seed=seed, duration=args.duration)
        started = time.perf_counter()
        result = fitting.fit(
            data, free, loss=loss, n_starts=args.starts, seed=seed, progress=False,
            dtype=args.dtype,
        )  # fmt: skip
        walls.append(time.perf_counter() - started)
        best = result.final_values[result.best]
        unc = result.uncertainty
        estimates.append(best)
        errors.append(unc.std_errors)
        laplace_corr.append(unc.correlation)
        flags.append([name in unc.undetermined for name in free])
        rel = np.abs(result.final_values / truth - 1).max(axis=1)
        success.append(np.mean(rel < 0.02))
        print(
            json.dumps(
                {
                    "seed": seed,
                    "wall_s": round(walls[-1], 1),
                    "loss": result.loss,
                    "best": dict(zip(free, best.round(5).tolist(), strict=True)),
                    "std_errors": dict(
                        zip(free, unc.std_errors.round(5).tolist(), strict=True)
                    ),
                    "starts_within_2pct": success[-1],
                    "undetermined": list(unc.undetermined),
                }
            ),
            flush=True,
        )
    estimates, errors, flags = np.array(estimates), np.array(errors), np.array(flags)
    rel = estimates / truth - 1
    spread = estimates.std(axis=0, ddof=1) if len(estimates) > 1 else np.nan * truth
    se = errors.mean(axis=0)
    print()
    print(
        f"{args.problem}: {args.seeds} noise seeds x {args.starts} starts, windows "
        f"{windows}, {args.dtype}, "
        f"{args.duration:g} ms sweeps; mean wall time {np.mean(walls):.0f} s per fit; "
        f"starts within 2 %: {100 * np.mean(success):.0f} %"
    )
    print()
    print(
        "| parameter | truth | mean rel. error | s.d. across seeds | mean Laplace SE "
        "| s.d. / SE | flagged undetermined |"
    )
    print("|---|---|---|---|---|---|---|")
    for k, name in enumerate(free):
        print(
            f"| {name} | {truth[k]:g} | {100 * rel[:, k].mean():+.3f} % | "
            f"{spread[k]:.3g} | {se[k]:.3g} | {spread[k] / se[k]:.2f} | "
            f"{int(flags[:, k].sum())}/{args.seeds} |"
        )
    print()
    print(f"mean Laplace correlation matrix ({', '.join(free)}):")
    print(np.array2string(np.mean(laplace_corr, axis=0), precision=2))
    if len(estimates) > 2:
        print("correlation of the estimates across seeds:")
        print(np.array2string(np.corrcoef(estimates.T), precision=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
