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
is skipped when ``XLA_FLAGS`` already sets it (the threshold is appended to a
``--xla_backend_extra_options`` list that sets other options); nothing is changed
when the variable ``HHJAX_NO_XLA_TUNING`` is set, and nothing takes effect when
JAX's backend was already started before ``import hhjax``.
"""

from __future__ import annotations

import os

# Bytes a loop body may access and still be compiled as one kernel. 1 MiB: larger
# thresholds fold batches of thousands of cells into one single-threaded kernel
# (10^4 cells with rk4: 1.6x slower at 10^9 bytes).
SMALL_LOOP_BYTES = 2**20
LOOP_THRESHOLD_OPTION = "xla_cpu_small_while_loop_byte_threshold"
EXTRA_OPTIONS_FLAG = "--xla_backend_extra_options"
VECTOR_WIDTH_FLAG = "--xla_cpu_prefer_vector_width"


def _sets(token: str, flag: str) -> bool:
    """Whether one word of ``XLA_FLAGS`` sets ``flag`` (with one dash or two)."""
    return token.lstrip("-").startswith(flag.lstrip("-") + "=")


def tuned_flags(flags: str) -> str:
    """``flags`` (the text of ``XLA_FLAGS``) with the tuning options added where it
    does not set them already.

    The loop threshold is one of XLA's backend *extra options*, a comma-separated
    ``key=value`` list given by one flag (a second such flag would replace the
    first): it is appended to that list when the flag is there, so options the
    user set are kept.
    """
    threshold = f"{LOOP_THRESHOLD_OPTION}={SMALL_LOOP_BYTES}"
    tokens = flags.split()
    extra = [i for i, tok in enumerate(tokens) if _sets(tok, EXTRA_OPTIONS_FLAG)]
    if not extra:
        tokens.append(f"{EXTRA_OPTIONS_FLAG}={threshold}")
    elif LOOP_THRESHOLD_OPTION not in tokens[extra[-1]]:
        last = extra[-1]  # the flag XLA uses when it is given more than once
        value = tokens[last].partition("=")[2]
        tokens[last] = f"{EXTRA_OPTIONS_FLAG}={value + ',' if value else ''}{threshold}"
    if not any(_sets(tok, VECTOR_WIDTH_FLAG) for tok in tokens):
        tokens.append(f"{VECTOR_WIDTH_FLAG}=512")
    return " ".join(tokens)


def tune_cpu_backend() -> None:
    """Apply :func:`tuned_flags` to ``XLA_FLAGS`` (unless ``HHJAX_NO_XLA_TUNING``)."""
    if os.environ.get("HHJAX_NO_XLA_TUNING"):
        return
    flags = os.environ.get("XLA_FLAGS", "")
    tuned = tuned_flags(flags)
    if tuned != flags.strip():
        os.environ["XLA_FLAGS"] = tuned
