"""XLA:CPU tuning applied when hhjax is imported (before JAX starts its backend).

Two options, added to the ``XLA_FLAGS`` environment variable (read once, when JAX
starts its CPU backend; JAX does not accept them per computation inside
transformations):

* ``xla_cpu_small_while_loop_byte_threshold=65536``: XLA runs a ``while`` loop
  whose carried state is below a byte threshold through its generic runtime, which
  makes each iteration of a single-cell ``lax.scan`` slow. Raising the threshold
  compiles the loop as one kernel: the HH model with ``rk4`` runs ~9× faster and its
  reverse-mode gradient ~25× faster (2-core x86 CPU, jax 0.10.2).
* ``--xla_cpu_prefer_vector_width=512``: lets LLVM use full AVX-512 registers for
  batches of cells (1.5–1.7× on an AVX-512 CPU; ignored by CPUs without them).

Both change only how code is compiled, never results (``docs/benchmarks.md``). Each
is skipped when ``XLA_FLAGS`` already sets it; nothing is changed when the variable
``HHJAX_NO_XLA_TUNING`` is set, and nothing takes effect when JAX's backend was
already started before ``import hhjax``.
"""

from __future__ import annotations

import os

TUNING_FLAGS = {
    "xla_backend_extra_options": (
        "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=65536"
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
