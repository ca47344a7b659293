"""Run one family of tools on one workload and print the results as JSON.

``run.py`` starts one worker process per (family, workload, dtype): tools of one
family are timed in the same process with interleaved repeats, each family gets a
fresh process (clean memory, its own XLA flags, its own virtual environment for
Brian2). Usage (normally via ``run.py``)::

    python benchmarks/worker.py --family jax --workload W2 --dtype f64 [--quick]

The last line of standard output is a JSON list of result rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _problem as problem  # noqa: E402

FAMILIES = ("jax", "numba", "python", "neuron", "brian2")


def _row(tool: str, note: str, wl: problem.Workload, dtype: str, timing: problem.Timing,
         **extra: Any) -> dict[str, Any]:
    return {
        "tool": tool, "note": note, "workload": wl.name, "dtype": dtype,
        "neuron_steps": wl.neuron_steps, "first_s": timing.first_s,
        "median_s": timing.median_s, "min_s": min(timing.times_s),
        "cpu_s": min(timing.cpu_s), "repeats": len(timing.times_s),
        "overhead_s": timing.overhead_s, "peak_mb": timing.peak_mb, **extra,
    }


def _build(builders: dict[str, tuple[str, Any]]) -> tuple[dict, dict]:
    """Call each tool's builder; returns ``(tools, setup seconds)`` by name."""
    tools, setup = {}, {}
    for name, (note, builder) in builders.items():
        t0 = time.perf_counter()
        tools[name] = (note, builder())
        setup[name] = time.perf_counter() - t0
    return tools, setup


def _forward_rows(builders: dict[str, tuple[str, Any]], wl: problem.Workload, dtype: str,
                  repeats: int, block: Any = lambda x: x) -> list[dict]:
    """Build, time and summarise forward-simulation tools.

    Args:
        builders: name → (note, zero-argument builder returning the tool).
    """
    import numpy as np

    tools, setup = _build(builders)
    timings = problem.time_tools({k: v[1] for k, v in tools.items()}, repeats, block)
    rows = []
    for name, timing in timings.items():
        v = np.asarray(timing.result, dtype=float)
        rows.append(_row(name, tools[name][0], wl, dtype, timing,
                         setup_s=setup[name], summary=problem.summarize_trace(v)))
    return rows


# ------------------------------------------------------------------------ JAX
def _jax_family(wl: problem.Workload, dtype_name: str, repeats: int) -> list[dict]:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    import _jax_tools as jt

    import hhjax

    dtype = jnp.float64 if dtype_name == "f64" else jnp.float32
    block = jax.block_until_ready
    _warm_up_jax()
    have_jaxley = _importable("jaxley") and dtype_name == "f64"
    devices = jax.devices()
    if wl.gradient:
        return _jax_gradient_rows(wl, dtype, dtype_name, repeats, have_jaxley)

    tools = {
        "hhjax": ("exp_euler", lambda: jt.hhjax_forward(wl, dtype, "exp_euler")),
        "plain JAX scan": ("hand-written, exp_euler scheme",
                           lambda: jt.reference_forward(wl, dtype)),
    }
    if len(devices) > 1 and wl.cells % len(devices) == 0:
        from jax.sharding import Mesh

        mesh = Mesh(devices, ("cells",))
        tools[f"hhjax ×{len(devices)} dev"] = (
            f"exp_euler, batch sharded over {len(devices)} host devices",
            lambda: jt.hhjax_forward(wl, dtype, "exp_euler", mesh),
        )
    big = wl.neuron_steps >= 5e7  # W3: only the rows the comparison needs
    if not big:
        tools["scan of hhjax.step"] = (
            "exp_euler, plain jit", lambda: jt.hhjax_step_scan(wl, dtype, "exp_euler"))
    if dtype_name == "f64" and not big:
        default = hhjax.DEFAULT_METHOD
        tools[f"hhjax {default}"] = (f"{default} (default method)",
                                     lambda: jt.hhjax_forward(wl, dtype, default))
        if default != "rk4":
            tools["hhjax rk4"] = ("rk4", lambda: jt.hhjax_forward(wl, dtype, "rk4"))
        tools["hhjax euler"] = ("euler (pyHH scheme)",
                                lambda: jt.hhjax_forward(wl, dtype, "euler"))
    if have_jaxley:
        tools["Jaxley"] = ("fwd_euler",
                           lambda: jt.jaxley_forward(wl, dtype, "fwd_euler"))
        if not big:
            tools["Jaxley bwd_euler"] = (
                "bwd_euler (its default)",
                lambda: jt.jaxley_forward(wl, dtype, "bwd_euler"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _forward_rows(tools, wl, dtype_name, repeats, block)


def _warm_up_jax() -> None:
    """Start JAX's backend and compiler once, so that the first tool timed does not
    pay for it in its compile time."""
    import jax
    import jax.numpy as jnp

    def body(c, x):
        return c * 0.5 + jnp.exp(-x), c

    jax.jit(lambda x: jax.lax.scan(body, 0.0, x))(jnp.ones(8))[1].block_until_ready()


def _jax_gradient_rows(wl, dtype, dtype_name, repeats, have_jaxley) -> list[dict]:
    import _jax_tools as jt
    import jax

    import hhjax

    groups = {
        "hhjax": ("exp_euler", jt.hhjax_gradient(wl, dtype, "exp_euler")),
        "plain JAX scan": ("hand-written", jt.reference_gradient(wl, dtype)),
    }
    if hhjax.DEFAULT_METHOD != "exp_euler":
        default = hhjax.DEFAULT_METHOD
        grads = jt.hhjax_gradient(wl, dtype, default)
        groups[f"hhjax {default}"] = (default, grads)
    if have_jaxley:
        groups["Jaxley"] = ("fwd_euler", jt.jaxley_gradient(wl, dtype, "fwd_euler"))
    tools, notes = {}, {}
    for name, (method, fns) in groups.items():
        for mode, fn in fns.items():
            tools[f"{name} {mode}"] = fn
            notes[f"{name} {mode}"] = (name, method, mode)
    timings = problem.time_tools(tools, repeats, jax.block_until_ready)
    rows = []
    for key, timing in timings.items():
        name, method, mode = notes[key]
        value = jt.to_numpy(timing.result)
        rows.append(_row(name, method, wl, dtype_name, timing, mode=mode,
                         gradient=value.tolist() if mode != "forward" else None))
    return rows


# ------------------------------------------------------------------ the others
def _numba_family(wl: problem.Workload, dtype: str, repeats: int) -> list[dict]:
    import _cpu_peers as peers

    tools = {"numba": ("@njit fastmath, exp_euler scheme",
                       lambda: peers.numba_forward(wl, False))}
    if wl.cells > 1:
        tools["numba prange"] = (f"parallel over {os.cpu_count()} threads",
                                 lambda: peers.numba_forward(wl, True))
    return _forward_rows(tools, wl, dtype, repeats)


def _python_family(wl: problem.Workload, dtype: str, repeats: int) -> list[dict]:
    import _cpu_peers as peers

    tools = {"Python loop": ("pyHH structure, forward Euler",
                             lambda: peers.python_forward(wl))}
    return _forward_rows(tools, wl, dtype, repeats)


def _neuron_family(wl: problem.Workload, dtype: str, repeats: int) -> list[dict]:
    import _cpu_peers as peers

    tools = {"NEURON": ("hh mechanism, implicit Euler + cnexp",
                        lambda: peers.neuron_forward(wl))}
    return _forward_rows(tools, wl, dtype, repeats)


def _brian2_family(wl: problem.Workload, dtype: str, repeats: int) -> list[dict]:
    import _brian2_tool as brian

    threads = int(os.environ.get("HHJAX_BENCH_BRIAN2_THREADS", "1"))
    tools = {"Brian2": (f"cpp_standalone, exponential_euler, {threads} thread(s)",
                        lambda: brian.brian2_forward(wl, threads))}
    rows = _forward_rows(tools, wl, dtype, repeats)
    # The compiled binary runs as a child process: report its peak RSS instead.
    import resource

    for row in rows:
        row["peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3
        row["note"] += "; memory: peak RSS of the binary"
    return rows


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=FAMILIES, required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--dtype", choices=("f64", "f32"), default="f64")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    wl = problem.workloads(args.quick)[args.workload]
    run = globals()[f"_{args.family}_family"]
    rows = run(wl, args.dtype, args.repeats)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
