"""Speed regression guard (issue 6, target 6): hhjax.simulate must not become more
than 2× slower than a hand-written plain-JAX ``lax.scan`` of the same scheme,
measured in the same process with interleaved repeats. The ratio uses the median
process CPU time of the repeats (both run on one thread), which, unlike wall time,
does not grow when other processes take the cores of a shared machine. Not the
least: single repeats of either tool sometimes report far less CPU than wall time
(0.07 ms for a 3 ms scan in one CI run, a 45x "regression"), and the minimum picks
exactly those.

The workloads are small versions of the benchmark's W1 (one cell) and W2 (a batch
of cells), from ``benchmarks/_jax_tools.py``; the full comparison is
``python benchmarks/run.py``.
"""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _jax_tools as jax_tools  # noqa: E402
import _problem as problem  # noqa: E402
import _timing as timing  # noqa: E402

MAX_RATIO = 2.0
REPEATS = 7

WORKLOADS = {
    "one cell": problem.Workload("W1", 1, 50_000, False, "quick guard"),
    "batch": problem.Workload("W2", 256, 2_000, False, "quick guard"),
}


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_simulate_within_2x_of_plain_scan(name):
    wl = WORKLOADS[name]
    tools = {
        "hhjax": jax_tools.hhjax_forward(wl, jnp.float64, "exp_euler"),
        "plain": jax_tools.reference_forward(wl, jnp.float64),
    }
    timings = timing.time_tools(tools, REPEATS, jax.block_until_ready)
    cpu = {k: t.median_cpu_s for k, t in timings.items()}
    ratio = cpu["hhjax"] / cpu["plain"]
    # Same scheme, so the traces agree to rounding (the rate formulas differ in
    # form: hhjax guards the 0/0 points of alpha_m and alpha_n).
    v_hhjax = jnp.asarray(timings["hhjax"].result).reshape(wl.steps, -1)
    v_plain = jnp.asarray(timings["plain"].result).reshape(wl.steps, -1)
    assert float(jnp.max(jnp.abs(v_hhjax - v_plain))) < 1e-6
    assert ratio < MAX_RATIO, (
        f"hhjax.simulate took {cpu['hhjax'] * 1e3:.2f} ms of CPU, {ratio:.2f}x the "
        f"plain scan's {cpu['plain'] * 1e3:.2f} ms"
    )


def test_results_block_is_replaced_only_between_markers_on_their_own_lines():
    import run as bench_run  # benchmarks/run.py

    begin, end = bench_run.BEGIN, bench_run.END
    doc = (
        f"Prose naming `{begin}` and `{end}` inline.\n\n"
        f"{begin}\nold table\n{end}\nAfter.\n"
    )
    new = bench_run._splice(doc, f"{begin}\nnew table\n{end}\n")
    assert new == (
        f"Prose naming `{begin}` and `{end}` inline.\n\n"
        f"{begin}\nnew table\n{end}\nAfter.\n"
    )
    for broken in (
        "no markers\n",
        f"`{begin}` … `{end}` only inline\n",
        f"{end}\n{begin}\n",
        f"{begin}\n{end}\n{begin}\n{end}\n",
    ):
        with pytest.raises(ValueError, match="results:begin"):
            bench_run._splice(broken, "block")
