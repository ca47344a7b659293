"""Fit 1 with its starts split over N devices (``fitting.fit(mesh=...)``).

Fit 1 (``fit_common.py``: 1 s of standard HH under a noisy current, 1 mV noise,
free g_na, g_k, g_l, e_l, 16 starts log-uniform within a factor 2 of the
truth). On a CPU the cores are exposed as N host devices; JAX reads that once,
at start-up, so each N runs in its own process (this script starts them). Prints
per N: wall time (compilation included), the time of each stage, the best
start's largest relative error, the largest relative difference of any start's
final values from those of the first N, and a digest of all final values (equal
digests: equal to the last bit). Since 2026-12-03 a fit split over host devices
agrees with the single-device fit to about 1e-14 relative, not to the last bit
(docs/benchmarks.md, item 11), so the digests differ.

Usage::

    python benchmarks/fit_devices.py --devices 1,2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def one(n_devices: int, n_starts: int) -> dict:
    """Run fit 1 in this process (XLA_FLAGS already set by the parent)."""
    import time

    import jax

    sys.path.insert(0, str(HERE))
    from fit_common import FIT1_FREE, fit1_data, truth_values

    import fitting

    assert len(jax.devices()) == n_devices, jax.devices()
    mesh = None
    if n_devices > 1:
        mesh = jax.sharding.Mesh(np.array(jax.devices()), ("starts",))
    data = fit1_data()
    begin = time.perf_counter()
    result = fitting.fit(data, FIT1_FREE, n_starts=n_starts, progress=False, mesh=mesh)
    wall = time.perf_counter() - begin
    errors = np.max(np.abs(result.final_values / truth_values(FIT1_FREE) - 1), axis=1)
    return {
        "devices": n_devices,
        "wall_s": wall,
        "stages_s": [t["total_s"] for t in result.timings],
        "best_error_pct": 100 * float(errors[result.best]),
        "within_2pct": float(np.mean(errors < 0.02)),
        "digest": hashlib.sha256(result.final_values.tobytes()).hexdigest()[:12],
        "final_values": result.final_values.tolist(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="1,2", help="device counts to compare")
    parser.add_argument("--starts", type=int, default=16)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(one(args.child, args.starts)))
        return 0
    try:
        counts = [int(k) for k in args.devices.split(",")]
    except ValueError:
        parser.error(f"--devices: not a list of integers: {args.devices!r}")
    if min(counts) < 1 or args.starts < 1:
        parser.error("--devices and --starts must be at least 1")
    print(
        "| host devices | wall s | stages s | best: largest rel. error | "
        f"starts within 2 % | final values: largest rel. diff. from {counts[0]} "
        "device(s) | digest |"
    )
    print("|---|---|---|---|---|---|---|")
    first = None
    for n in counts:
        env = dict(os.environ)
        env["XLA_FLAGS"] = " ".join(
            [env.get("XLA_FLAGS", ""), f"--xla_force_host_platform_device_count={n}"]
        ).strip()
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(n), "--starts", str(args.starts)],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            print(f"{n} device(s): the fit's process failed:\n{tail}", file=sys.stderr)
            return 1
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        values = np.asarray(row["final_values"])
        first = values if first is None else first
        diff = np.max(np.abs(values - first) / np.abs(first))
        stages = " / ".join(f"{t:.1f}" for t in row["stages_s"])
        print(
            f"| {n} | {row['wall_s']:.1f} | {stages} | {row['best_error_pct']:.4f} % "
            f"| {100 * row['within_2pct']:.0f} % | {diff:.1e} | `{row['digest']}` |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
