"""The progress line of a fit (stderr): stage, iteration, best loss, elapsed time
and an estimate of the time left.
"""

from __future__ import annotations

import math
import sys
import time


class Progress:
    """One status line (stderr): stage, iteration, best loss, elapsed, ETA."""

    def __init__(self, enabled: bool, n_stages: int, unit: str):
        self.enabled = enabled
        self.n_stages = n_stages
        self.unit = unit
        self.tty = enabled and sys.stderr.isatty()
        self.last_print = -math.inf

    def update(self, stage, label, it, n_iter, best, elapsed, eta, done=False):
        if not self.enabled:
            return
        now = time.perf_counter()
        if not (self.tty or done or now - self.last_print >= 10.0):
            return
        self.last_print = now
        eta_text = "" if eta is None or done else f", ETA <= {eta:.0f} s"
        line = (
            f"fit: stage {stage + 1}/{self.n_stages} ({label}) iteration {it}/{n_iter}"
            f"  best loss {best:.6g} {self.unit}  {elapsed:.1f} s{eta_text}"
        )
        if self.tty:
            end = "\n" if done else ""
            print(f"\r{line:<110}", end=end, file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def message(self, text: str):
        if self.enabled:
            prefix = "\n" if self.tty and self.last_print > -math.inf else ""
            print(f"{prefix}fit: {text}", file=sys.stderr, flush=True)
