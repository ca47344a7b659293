"""How sensitive is the spike onset under a current ramp to g_l? (Fit 2's ramp.)

Standard HH from rest under linear ramps 0 → top µA/cm² over 1 s (dt 0.025 ms,
no noise): the first spike time and the spike count, for the true g_l and for
g_l + 1 %. A slow ramp reaches firing late, near the onset bifurcation, where a
small parameter change moves the first spike by many milliseconds.

Usage::

    python benchmarks/fit_ramp_onset.py [--tops 20,30,40]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_common import DT, TRUTH  # noqa: E402

import fitting  # noqa: E402
import hhjax  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tops",
        default="20,30,40",
        help="ramp end currents, µA/cm² (default %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        tops = [float(x) for x in args.tops.split(",")]
    except ValueError:
        parser.error(f"--tops: not a list of numbers: {args.tops!r}")
    print(
        "| ramp top, uA/cm^2 | spikes | first spike, ms | with g_l + 1 %: spikes, first spike |"
    )
    print("|---|---|---|---|")
    for top in tops:
        ramp = hhjax.stimulus.ramp(top, start=0.0, stop=1000.0, duration=1000.0, dt=DT)
        rows = []
        for params in (TRUTH, TRUTH._replace(g_l=1.01 * TRUTH.g_l)):
            data = fitting.synthetic_data(params, ramp, DT, noise_mv=0.0)
            spikes = fitting.spike_times(data.v[0], DT)
            rows.append((len(spikes), spikes[0] if len(spikes) else np.nan))
        print(
            f"| {top:g} | {rows[0][0]} | {rows[0][1]:.2f} | {rows[1][0]}, "
            f"{rows[1][1]:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
