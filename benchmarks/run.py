"""Benchmark hhjax against a plain-JAX scan and the peers that are installed.

One command runs workloads W1–W5 (see ``_problem.py``) for every tool that can be
imported, checks that they agree, prints one table and writes it to a Markdown
file::

    python benchmarks/run.py [--quick] [--out docs/benchmarks.md]

Each (family, workload, dtype) runs in its own worker process (``worker.py``);
tools of one family are timed with interleaved repeats in the same process. Every
ratio "× hhjax" divides a tool's median time by that of hhjax (method
``exp_euler``, one device) measured in the same invocation; for JAX tools, in the
same process.

The JAX worker runs with the XLA flags recommended in ``docs/benchmarks.md``:
``--xla_force_host_platform_device_count=<cores>`` (so a batch can be split over
the cores) and a larger ``xla_cpu_small_while_loop_byte_threshold`` (so XLA:CPU
compiles a small scan body as one function). ``--xla-defaults`` runs it without
them; a full run also repeats W1 and W4 with the defaults, to show their effect.

Peers: numba and NEURON (``pip install numba neuron``) and Jaxley (``pip install
jaxley``) in the same environment; Brian2 needs NumPy < 2.4, so it runs in the
interpreter given by ``--brian2-python`` or ``$HHJAX_BENCH_BRIAN2_PYTHON`` (a
virtual environment with ``numpy<2.4 brian2``). Absent peers are skipped with a
note. W6 (the synthetic fit against a gradient-free optimiser) is
``benchmarks/fit_benchmark.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import _problem as problem  # noqa: E402

SMALL_LOOP_BYTES = 2**20  # as hhjax/_xla_flags.py (not imported: it edits XLA_FLAGS)
# `import hhjax` adds its XLA:CPU flags to XLA_FLAGS unless this is set: without it
# a "default XLA flags" worker would run with them after all.
DEFAULTS_ENV = {"HHJAX_NO_XLA_TUNING": "1"}
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def xla_flags(devices: int, tuned: bool) -> str:
    """``XLA_FLAGS`` for the JAX worker: existing flags plus the recommended ones.

    Args:
        devices: host devices to expose (the batch can be sharded over them).
        tuned: add ``xla_cpu_small_while_loop_byte_threshold`` (see the docs).
    """
    flags = [os.environ.get("XLA_FLAGS", "")]
    if devices > 1:
        flags.append(f"--xla_force_host_platform_device_count={devices}")
    if tuned:
        flags.append("--xla_backend_extra_options="
                     f"xla_cpu_small_while_loop_byte_threshold={SMALL_LOOP_BYTES}")
    return " ".join(f for f in flags if f)


def _available(brian2_python: str | None, wanted: list[str]) -> dict[str, str | None]:
    """Family → interpreter, ``None`` when unavailable (the reason goes to NOTES).

    Args:
        brian2_python: interpreter with Brian2, if any.
        wanted: the families requested.
    """
    found: dict[str, str | None] = {"jax": sys.executable, "python": sys.executable}
    for family, module in (("numba", "numba"), ("neuron", "neuron")):
        found[family] = sys.executable if importlib.util.find_spec(module) else None
        if found[family] is None and family in wanted:
            NOTES.append(f"{family}: not installed (`pip install {module}`), skipped.")
    if importlib.util.find_spec("jaxley") is None and "jax" in wanted:
        NOTES.append("Jaxley: not installed (`pip install jaxley`), skipped.")
    found["brian2"] = None
    if "brian2" not in wanted:
        return found
    if brian2_python:
        probe = subprocess.run([brian2_python, "-c", "import brian2"],
                               capture_output=True, text=True)
        if probe.returncode == 0:
            found["brian2"] = brian2_python
        else:
            NOTES.append(f"Brian2: `import brian2` failed in {brian2_python}, skipped.")
    else:
        NOTES.append("Brian2: no --brian2-python given (it needs numpy<2.4 in its "
                     "own environment), skipped.")
    return found


NOTES: list[str] = []


def _run_worker(python: str, family: str, wl: str, dtype: str, args: argparse.Namespace,
                env: dict[str, str] | None = None) -> list[dict]:
    cmd = [python, str(HERE / "worker.py"), "--family", family, "--workload", wl,
           "--dtype", dtype, "--repeats", str(args.repeats)]
    if args.quick:
        cmd.append("--quick")
    full_env = dict(os.environ, **(env or {}))
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), full_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        NOTES.append(f"{family} {wl} {dtype}: worker failed ({' '.join(tail)}).")
        return []
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {family:6s} {wl} {dtype}: {len(rows)} rows, "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return rows


def _reference_summary(wl: problem.Workload, rows: list[dict]) -> tuple[dict, str]:
    """Agreement reference: a DOP853 solution (rtol 1e-10) for a single cell,
    else hhjax's rk4 run of the same batch."""
    if wl.cells == 1 and importlib.util.find_spec("scipy") is not None:
        import numpy as np

        sys.path.insert(0, str(ROOT / "tests"))
        import hh_reference

        sol = hh_reference.solve(
            np.array([0.0, wl.duration_ms]), np.array([problem.I_EXT]),
            np.array(problem.initial_state()))
        v = sol(np.arange(wl.steps) * problem.DT)[0]
        return problem.summarize_trace(v), "DOP853, rtol 1e-10"
    for row in rows:
        if row["tool"] == "hhjax rk4":
            return row["summary"], "hhjax rk4 (4th order)"
    return rows[0]["summary"], f"{rows[0]['tool']} {rows[0]['note']}"


# ------------------------------------------------------------------- tables
def _fmt_s(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def _forward_table(rows: list[dict], wl: problem.Workload, ref: dict,
                   ref_name: str) -> list[str]:
    base = {(r["dtype"], r.get("config")): r for r in rows if r["tool"] == "hhjax"}
    lines = [
        f"**{wl.name}** — {wl.title}; agreement reference: {ref_name}.",
        "",
        "| tool | method / notes | dtype | wall (s) | CPU (s) | neuron-steps/s | "
        "compile / set-up (s) | peak extra MB | × hhjax wall | × hhjax CPU | "
        "agrees |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        b = base.get((r["dtype"], r.get("config")))
        wall = f"{r['median_s'] / b['median_s']:.2f}" if b else "–"
        cpu = f"{r['cpu_s'] / b['cpu_s']:.2f}" if b else "–"
        ok, note = problem.compare_summaries(r["summary"], ref)
        setup = r.get("setup_s", 0.0) + r["overhead_s"]
        name = r["tool"] + (f" [{r['config']}]" if r.get("config") else "")
        lines.append(
            f"| {name} | {r['note']} | {r['dtype']} | {_fmt_s(r['median_s'])} | "
            f"{_fmt_s(r['cpu_s'])} | "
            f"{problem.fmt_rate(r['neuron_steps'], r['median_s'])} | {setup:.2f} | "
            f"{r['peak_mb']:.0f} | {wall} | {cpu} | {'yes' if ok else 'NO'}: {note} |")
    return lines


def _gradient_table(rows: list[dict], wl: problem.Workload) -> list[str]:
    import numpy as np

    base = {}
    for r in rows:
        if r["tool"] == "hhjax" and r["mode"] in ("forward", "reverse"):
            base[(r["mode"] == "forward", r.get("config"))] = r
    # CPU time is the steadier measure on a loaded machine, but Linux accounts the
    # CPU time of JAX's worker threads only every few ms: below ~20 ms per call,
    # use the median wall time of the (then 5x more) repeats.
    fast = base.get((True, None), {"median_s": 1.0})["median_s"] < 0.02
    key, metric = ("median_s", "wall") if fast else ("cpu_s", "CPU")
    forward = {(r["tool"], r.get("config")): r[key] for r in rows
               if r["mode"] == "forward"}
    lines = [
        f"**{wl.name}** — {wl.title}. Ratios from {metric} times; the gradient "
        "column compares with hhjax's reverse gradient: tools with the same scheme "
        "agree to rounding, others follow their own trajectory and target. Mode "
        "auto: `hhjax.grad`, which picks forward mode for these 3 parameters.",
        "",
        f"| tool | method | mode | wall (s) | CPU (s) | ÷ own forward ({metric}) | "
        f"compile (s) | peak extra MB | × hhjax ({metric}) | gradient vs hhjax (rel.) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        cfg = r.get("config")
        b = base.get((r["mode"] == "forward", cfg))
        ratio = f"{r[key] / b[key]:.2f}" if b else "–"
        fwd = forward.get((r["tool"], cfg))
        per_fwd = f"{r[key] / fwd:.1f}" if fwd and r["mode"] != "forward" else ""
        diff = ""
        if r.get("gradient") is not None:
            ref = next((x for x in rows if x["tool"] == "hhjax" and x["mode"] ==
                        "reverse" and x.get("config") == cfg), None)
            if ref is not None:
                g, g0 = np.asarray(r["gradient"]), np.asarray(ref["gradient"])
                rel = np.max(np.abs(g - g0) / np.maximum(np.abs(g0), 1e-300))
                diff = f"{rel:.1e}"
        name = r["tool"] + (f" [{cfg}]" if cfg else "")
        lines.append(
            f"| {name} | {r['note']} | {r['mode']} | {_fmt_s(r['median_s'])} | "
            f"{_fmt_s(r['cpu_s'])} | {per_fwd} | {r['overhead_s']:.2f} | "
            f"{r['peak_mb']:.0f} | {ratio} | {diff} |")
    return lines


def _versions() -> str:
    out = [f"Python {platform.python_version()}"]
    for module in ("jax", "jaxlib", "numpy", "numba", "neuron", "jaxley", "scipy"):
        try:
            from importlib.metadata import version

            out.append(f"{module} {version(module)}")
        except Exception:  # noqa: BLE001 - absent or unversioned package
            continue
    return ", ".join(out)


def _table(workload: dict) -> list[str]:
    """Markdown table of one workload from its stored rows."""
    wl = problem.Workload(**workload["workload"])
    if wl.gradient:
        return _gradient_table(workload["rows"], wl)
    return _forward_table(workload["rows"], wl, *workload["reference"])


def _bundle(tables: dict, args: argparse.Namespace, wall: float, flags: str) -> dict:
    """Everything one invocation measured, for ``--json`` and the Markdown."""
    return {
        "command": "python benchmarks/run.py " + " ".join(args.argv),
        "generated": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "wall_s": wall, "xla_flags": flags, "machine": problem.machine_info(),
        "versions": _versions(), "notes": list(NOTES), "workloads": tables,
    }


def _markdown(bundles: list[dict]) -> str:
    """Markdown for one or more invocations (``--render`` merges several)."""
    info = bundles[-1]["machine"]
    head = [
        f"- Machine: {info.get('cpu', '?')}, {info.get('cores', '?')} cores, "
        f"AVX-512 {info.get('avx512', '?')}, {info.get('memory', '?')}; shared with "
        "other jobs, so compare ratios within a table, not seconds across tables.",
        f"- Versions: {bundles[-1]['versions']}.",
        f"- JAX worker `XLA_FLAGS`: `{bundles[-1]['xla_flags']}`; rows marked "
        "[default XLA flags] ran without them.",
        "- wall: median wall time of the repeats (tools whose first call took "
        "> 5 s: one timed call); CPU: least process CPU time of the repeats (all "
        "threads; for Brian2 only the launcher, its binary is a child process); on "
        "a loaded machine CPU time is the steadier measure of single-threaded work, "
        "wall time the one that shows parallel speed-ups; compile / set-up: first "
        "call minus a later one (plus building the model for NEURON and Brian2); "
        "peak extra MB: RSS increase during a warm call; × hhjax: ratio to hhjax "
        "(exp_euler, one device) in the same table and process group.",
        "- Generated by:",
    ]
    for b in bundles:
        load = b["machine"].get("load average", "?")
        head.append(f"  - `{b['command']}` on {b['generated']}, {b['wall_s']:.0f} s, "
                    f"load average at the end {load}")
    tables = {}
    for b in bundles:
        tables.update(b["workloads"])
    body = [line for name in sorted(tables) for line in [*_table(tables[name]), ""]]
    notes = sorted({n for b in bundles for n in b["notes"]})
    notes = [f"- {n}" for n in notes] or ["- none"]
    return "\n".join([*head, "", *body, "Skipped or failed:", "", *notes, ""])


def _write(path: Path, text: str) -> None:
    """Replace the generated block of ``path`` (between the markers), or write a
    new file with just the block."""
    block = f"{BEGIN}\n{text}{END}\n"
    if path.exists() and BEGIN in path.read_text():
        old = path.read_text()
        new = old[: old.index(BEGIN)] + block + old[old.index(END) + len(END) + 1:]
    else:
        new = "# hhjax benchmarks\n\n" + block
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small workloads (CI regression guard), < 2 minutes")
    parser.add_argument("--out", type=Path, help="Markdown file to write")
    parser.add_argument("--json", type=Path, help="also write the raw rows here")
    parser.add_argument("--workloads", default="W1,W2,W3,W4,W5")
    parser.add_argument("--families", default="jax,numba,python,neuron,brian2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devices", type=int, default=os.cpu_count() or 1,
                        help="host devices for the JAX worker (default: cores)")
    parser.add_argument("--xla-defaults", action="store_true",
                        help="run the JAX worker without the recommended XLA flags")
    parser.add_argument("--no-f32", action="store_true")
    parser.add_argument("--brian2-python",
                        default=os.environ.get("HHJAX_BENCH_BRIAN2_PYTHON"))
    parser.add_argument("--render", type=Path, nargs="+", metavar="JSON",
                        help="only write --out from earlier --json files")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.render:
        text = _markdown([json.loads(p.read_text()) for p in args.render])
        if args.out:
            _write(args.out, text)
        print(text)
        return 0
    t_start = time.perf_counter()
    wanted = args.families.split(",")
    found = _available(args.brian2_python, wanted)
    families = [f for f in wanted if found.get(f)]
    wls = problem.workloads(args.quick)
    flags = xla_flags(args.devices, not args.xla_defaults)
    tables = {}
    for name in args.workloads.split(","):
        wl = wls[name]
        rows = []
        dtypes = ["f64"] if wl.gradient or args.no_f32 or name == "W1" else [
            "f64", "f32"]
        for dtype in dtypes:
            for family in families:
                if family != "jax" and (wl.gradient or dtype == "f32"):
                    continue
                if family == "python" and wl.neuron_steps > (1e6 if args.quick else 2e7):
                    NOTES.append(f"Python loop: skipped for {name} (minutes).")
                    continue
                env = {"XLA_FLAGS": flags} if family == "jax" else None
                if env and args.xla_defaults:
                    env.update(DEFAULTS_ENV)
                rows += _run_worker(found[family], family, name, dtype, args, env)
                if family == "jax" and not args.quick and not args.xla_defaults \
                        and name in ("W1", "W4") and dtype == "f64":
                    extra = _run_worker(found[family], family, name, dtype, args,
                                        {"XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
                                         **DEFAULTS_ENV})
                    for r in extra:
                        r["config"] = "default XLA flags"
                    rows += [r for r in extra if r["tool"] in ("hhjax",
                                                               "plain JAX scan")]
        if not rows:
            continue
        workload = {"workload": dataclasses.asdict(wl), "rows": rows}
        if not wl.gradient:
            workload["reference"] = _reference_summary(wl, rows)
        print("\n".join(_table(workload)) + "\n")
        tables[name] = workload
    bundle = _bundle(tables, args, time.perf_counter() - t_start, flags)
    if NOTES:
        print("Skipped or failed:\n" + "\n".join(f"- {n}" for n in NOTES))
    if args.json:
        args.json.write_text(json.dumps(bundle, indent=1))
    if args.out:
        _write(args.out, _markdown([bundle]))
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
