"""Run one family of tools on one workload and print the results as JSON.

``run.py`` starts one worker process per (family, workload, dtype): tools of one
family are timed in the same process with interleaved repeats, each family gets a
fresh process (clean memory, its own XLA flags, its own virtual environment for
Brian2). Usage (normally via ``run.py``)::

    python benchmarks/worker.py --family jax --workload W2 --dtype f64 [--quick]

The last line of standard output is a JSON list of result rows. Forward rows carry
the agreement summary of their trace (``_agreement.summarize_trace``) and the
tool's accuracy class (``order``); gradient rows their value and the NumPy scheme
that reproduces them (``scheme``), for ``run.py``'s checks.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _agreement as agreement  # noqa: E402
import _problem as problem  # noqa: E402
import _timing as timing  # noqa: E402

FAMILIES = ("jax", "numba", "python", "neuron", "brian2")
ORDER = {"rk4": 4}  # accuracy class of hhjax's methods; any other: 1 (the looser)


@dataclasses.dataclass(frozen=True)
class Spec:
    """A tool to build and time.

    Attributes:
        note: method / notes column of the report.
        build: zero-argument builder returning the tool (a zero-argument
            callable); for a gradient, a dict mode → tool.
        order: accuracy class of a forward tool (``_agreement.TOLERANCES``).
        scheme: the ``_problem.SCHEMES`` entry that reproduces a gradient tool,
            ``None`` when there is none (no reference, no check).
    """

    note: str
    build: Callable[[], Any]
    order: int = 1
    scheme: str | None = None


def _row(
    name: str,
    spec: Spec,
    wl: problem.Workload,
    dtype: str,
    t: timing.Timing,
    **extra: Any,
) -> dict[str, Any]:
    """One JSON result row: times in s (``cpu_s``: median CPU time), memory in
    MB, plus ``extra``."""
    return {
        "tool": name,
        "note": spec.note,
        "workload": wl.name,
        "dtype": dtype,
        "neuron_steps": wl.neuron_steps,
        "first_s": t.first_s,
        "median_s": t.median_s,
        "min_s": min(t.times_s),
        "cpu_s": t.median_cpu_s,
        "repeats": len(t.times_s),
        "overhead_s": t.overhead_s,
        "peak_mb": t.peak_mb,
        "memory_kind": t.memory_kind,
        **extra,
    }


def _build(specs: dict[str, Spec]) -> tuple[dict, dict]:
    """Call each builder; returns ``(tools, set-up seconds)`` by name."""
    tools, setup = {}, {}
    for name, spec in specs.items():
        t0 = time.perf_counter()
        tools[name] = spec.build()
        setup[name] = time.perf_counter() - t0
    return tools, setup


def _forward_rows(
    specs: dict[str, Spec],
    wl: problem.Workload,
    dtype: str,
    args: argparse.Namespace,
    block: Any = lambda x: x,
) -> list[dict]:
    """Build, time and summarise forward-simulation tools."""
    tools, setup = _build(specs)
    timings = timing.time_tools(
        tools, args.repeats, block, keep=agreement.summarize_trace, memory=args.memory
    )
    return [
        _row(
            name,
            specs[name],
            wl,
            dtype,
            t,
            setup_s=setup[name],
            order=specs[name].order,
            summary=t.result,
        )
        for name, t in timings.items()
    ]


# ------------------------------------------------------------------------ JAX
def _jax_family(
    wl: problem.Workload, dtype_name: str, args: argparse.Namespace
) -> list[dict]:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    import _jax_tools as jt

    import hhjax

    dtype = jnp.float64 if dtype_name == "f64" else jnp.float32
    _warm_up_jax()
    # --quick: no Jaxley and no extra methods (their compiles dominate its time).
    jaxley = _importable("jaxley") and dtype_name == "f64" and not args.quick
    if wl.gradient:
        return _jax_gradient_rows(wl, dtype, dtype_name, args, jaxley)

    specs = {
        "hhjax": Spec("exp_euler", lambda: jt.hhjax_forward(wl, dtype, "exp_euler")),
        "plain JAX scan": Spec(
            "hand-written, exp_euler scheme", lambda: jt.reference_forward(wl, dtype)
        ),
    }
    devices = jax.devices()
    if len(devices) > 1 and wl.cells % len(devices) == 0:
        from jax.sharding import Mesh

        mesh = Mesh(devices, ("cells",))
        specs[f"hhjax ×{len(devices)} dev"] = Spec(
            f"exp_euler, batch sharded over {len(devices)} host devices",
            lambda: jt.hhjax_forward(wl, dtype, "exp_euler", mesh),
        )
    big = wl.neuron_steps >= 5e7  # W3: only the rows the comparison needs
    if not big:
        specs["scan of hhjax.step"] = Spec(
            "exp_euler, plain jit", lambda: jt.hhjax_step_scan(wl, dtype, "exp_euler")
        )
    if dtype_name == "f64" and not big and not args.quick:
        default = hhjax.DEFAULT_METHOD
        specs[f"hhjax {default}"] = Spec(
            f"{default} (default method)",
            lambda: jt.hhjax_forward(wl, dtype, default),
            ORDER.get(default, 1),
        )
        if default != "rk4":
            specs["hhjax rk4"] = Spec(
                "rk4", lambda: jt.hhjax_forward(wl, dtype, "rk4"), ORDER["rk4"]
            )
        specs["hhjax euler"] = Spec(
            "euler (pyHH scheme)", lambda: jt.hhjax_forward(wl, dtype, "euler")
        )
    if jaxley:
        specs["Jaxley"] = Spec(
            "fwd_euler (gates first, then V)",
            lambda: jt.jaxley_forward(wl, dtype, "fwd_euler"),
        )
        if not big:
            specs["Jaxley bwd_euler"] = Spec(
                "bwd_euler (its default)",
                lambda: jt.jaxley_forward(wl, dtype, "bwd_euler"),
            )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _forward_rows(specs, wl, dtype_name, args, jax.block_until_ready)


def _warm_up_jax() -> None:
    """Start JAX's backend and compiler once, so that the first tool timed does not
    pay for it in its compile time."""
    import jax
    import jax.numpy as jnp

    def body(c, x):
        return c * 0.5 + jnp.exp(-x), c

    jax.jit(lambda x: jax.lax.scan(body, 0.0, x))(jnp.ones(8))[1].block_until_ready()


def _jax_gradient_rows(
    wl: problem.Workload,
    dtype: Any,
    dtype_name: str,
    args: argparse.Namespace,
    jaxley: bool,
) -> list[dict]:
    """Time the loss and its gradients; rows carry the value and its scheme."""
    import _jax_tools as jt
    import jax

    import hhjax

    groups = {
        "hhjax": Spec(
            "exp_euler",
            lambda: jt.hhjax_gradient(wl, dtype, "exp_euler"),
            scheme="exp_euler",
        ),
        "plain JAX scan": Spec(
            "hand-written", lambda: jt.reference_gradient(wl, dtype), scheme="exp_euler"
        ),
    }
    default = hhjax.DEFAULT_METHOD
    if default != "exp_euler" and not args.quick:
        groups[f"hhjax {default}"] = Spec(
            default,
            lambda: jt.hhjax_gradient(wl, dtype, default),
            scheme=default if default in problem.SCHEMES else None,
        )
    if jaxley:
        groups["Jaxley"] = Spec(
            "fwd_euler (gates first, then V)",
            lambda: jt.jaxley_gradient(wl, dtype, "fwd_euler"),
            scheme="gates_first",
        )
    tools, specs, names = {}, {}, {}
    for name, spec in groups.items():
        for mode, tool in spec.build().items():
            tools[f"{name} {mode}"] = tool
            specs[f"{name} {mode}"], names[f"{name} {mode}"] = spec, (name, mode)
    timings = timing.time_tools(
        tools, args.repeats, jax.block_until_ready, keep=jt.to_numpy, memory=args.memory
    )
    return [
        _row(
            names[key][0],
            specs[key],
            wl,
            dtype_name,
            t,
            mode=names[key][1],
            scheme=specs[key].scheme,
            value=t.result.tolist(),
        )
        for key, t in timings.items()
    ]


# ------------------------------------------------------------------ the others
def _numba_family(
    wl: problem.Workload, dtype: str, args: argparse.Namespace
) -> list[dict]:
    import _cpu_peers as peers

    specs = {
        "numba": Spec(
            "@njit fastmath, exp_euler scheme", lambda: peers.numba_forward(wl, False)
        )
    }
    if wl.cells > 1:
        specs["numba prange"] = Spec(
            f"parallel over {os.cpu_count()} threads",
            lambda: peers.numba_forward(wl, True),
        )
    return _forward_rows(specs, wl, dtype, args)


def _python_family(
    wl: problem.Workload, dtype: str, args: argparse.Namespace
) -> list[dict]:
    import _cpu_peers as peers

    specs = {
        "Python loop": Spec(
            "pyHH structure, forward Euler", lambda: peers.python_forward(wl)
        )
    }
    return _forward_rows(specs, wl, dtype, args)


def _neuron_family(
    wl: problem.Workload, dtype: str, args: argparse.Namespace
) -> list[dict]:
    import _cpu_peers as peers

    specs = {
        "NEURON": Spec(
            "hh mechanism (rate tables), implicit Euler + cnexp",
            lambda: peers.neuron_forward(wl),
        )
    }
    return _forward_rows(specs, wl, dtype, args)


def _brian2_family(
    wl: problem.Workload, dtype: str, args: argparse.Namespace
) -> list[dict]:
    import _brian2_tool as brian

    threads = int(os.environ.get("HHJAX_BENCH_BRIAN2_THREADS", "1"))
    specs = {
        "Brian2": Spec(
            f"cpp_standalone, exponential_euler, {threads} thread(s)",
            lambda: brian.brian2_forward(wl, threads),
        )
    }
    return _forward_rows(specs, wl, dtype, args)


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=FAMILIES, required=True)
    parser.add_argument("--workload", choices=problem.WORKLOAD_NAMES, required=True)
    parser.add_argument("--dtype", choices=("f64", "f32"), default="f64")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--no-memory", dest="memory", action="store_false", help="do not measure memory"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    wl = problem.workloads(args.quick)[args.workload]
    run = globals()[f"_{args.family}_family"]
    print(json.dumps(run(wl, args.dtype, args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
