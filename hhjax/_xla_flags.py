"""XLA:CPU tuning applied when hhjax is imported (before JAX starts its backend).

Two options, added to the ``XLA_FLAGS`` environment variable (read once, when JAX
starts its CPU backend; JAX does not accept them per computation inside
transformations):

* ``xla_cpu_small_while_loop_byte_threshold`` = :data:`SMALL_LOOP_BYTES` (1 MiB):
  XLA runs a ``while`` loop whose body accesses more bytes than this threshold
  (1 KiB by default) through its generic runtime, one dispatched kernel per
  operation per iteration, which makes every step of a ``lax.scan`` of one cell or
  a few dozen cells slow. Below the threshold the loop is compiled as one kernel:
  against XLA's default, one cell with ``rk4`` runs 13× faster (wall time; 25× in
  CPU time) and its reverse-mode gradient 15× (29×); against a 64 KiB threshold,
  16–64 cells' ``rk4`` runs and gradients 1.9–2.9× (2-core x86 CPU, jax 0.10.2;
  ``benchmarks/xla_flags.py``). Large batches stay above it, where XLA splits
  each step's work over threads.
* ``--xla_cpu_prefer_vector_width=512``: lets LLVM use full AVX-512 registers for
  batches of cells (1.5–1.7× on an AVX-512 CPU; ignored by CPUs without them).

Both change only how code is compiled, never results (``docs/benchmarks.md``). Each
is skipped when ``XLA_FLAGS`` already sets it; nothing is changed when the variable
``HHJAX_NO_XLA_TUNING`` is set, and nothing takes effect when JAX's backend was
already started before ``import hhjax``.
"""

from __future__ import annotations

import os

# Bytes a loop body may access and still be compiled as one kernel. 1 MiB: larger
# thresholds fold batches of thousands of cells into one single-threaded kernel
# (10^4 cells with rk4: 1.6x slower at 10^9 bytes).
SMALL_LOOP_BYTES = 2**20
TUNING_FLAGS = {
    "xla_backend_extra_options": (
        "--xla_backend_extra_options="
        f"xla_cpu_small_while_loop_byte_threshold={SMALL_LOOP_BYTES}"
    ),
    "xla_cpu_prefer_vector_width": "--xla_cpu_prefer_vector_width=512",
}


def tune_cpu_backend() -> None:
    """Add :data:`TUNING_FLAGS` to ``XLA_FLAGS`` unless opted out or already set."""
    if os.environ.get("HHJAX_NO_XLA_TUNING"):
        return
    flags = os.environ.get("XLA_FLAGS", "")
    added = [flag for key, flag in TUNING_FLAGS.items() if key not in flags]
    if added:
        os.environ["XLA_FLAGS"] = " ".join([flags, *added]).strip()
