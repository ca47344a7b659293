"""Benchmark hhjax against a plain-JAX scan and the peers that are installed.

One command runs workloads W1–W5 (see ``_problem.py``) for every tool that can be
imported, checks that they agree with an independent reference, prints one table
per workload and writes them to a Markdown file::

    python benchmarks/run.py [--quick] [--out docs/benchmarks.md]

Each (family, workload, dtype) runs in its own worker process (``worker.py``);
tools of one family are timed with interleaved repeats in the same process. Every
ratio "× hhjax" divides a tool's median time by that of hhjax (method
``exp_euler``, one device) measured in the same invocation; for JAX tools, in the
same process.

Agreement (``_agreement.py``): forward runs against SciPy's DOP853 on up to 16 cells
of the batch, under the tolerance of each tool's accuracy class (V at fixed times,
every spike time, spike counts); losses and gradients against finite differences
of a NumPy run of the tool's own scheme. The exit status is 1 when a tool
disagrees or the JAX worker (hhjax's rows) fails; ``--out`` is then left as it
was (``--json`` is still written, with the verdicts). Bad options exit with 2.

The JAX worker runs with the XLA flags recommended in ``docs/benchmarks.md``:
``--xla_force_host_platform_device_count=<cores>`` (so a batch can be split over
the cores) and a larger ``xla_cpu_small_while_loop_byte_threshold`` (so XLA:CPU
compiles a small scan body as one function). ``--xla-defaults`` runs it without
the loop threshold (and without hhjax's own flags) but keeps the host devices; a
full run also repeats W1 and W4 with XLA's defaults, to show their effect.

``--quick`` (the CI regression guard, under 2 minutes) runs small workloads and
leaves out what only adds compile time: hhjax's other methods, Jaxley, the
default-XLA-flags rows and the Python loop on batches.

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
import _agreement as agreement  # noqa: E402
import _problem as problem  # noqa: E402

SMALL_LOOP_BYTES = 2**20  # as hhjax/_xla_flags.py (not imported: it edits XLA_FLAGS)
# `import hhjax` adds its XLA:CPU flags to XLA_FLAGS unless this is set: without it
# a "default XLA flags" worker would run with them after all.
DEFAULTS_ENV = {"HHJAX_NO_XLA_TUNING": "1"}
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
FAMILIES = ("jax", "numba", "python", "neuron", "brian2")
# Gradient references: NumPy steps (rk4: 4 per step) a reference may take (W5's
# 10^6 exp_euler steps: ~50 s under load; its rk4 would take minutes: skipped).
MAX_REFERENCE_STEPS = 1_000_000
PYTHON_MAX_NEURON_STEPS = {True: 1e5, False: 2e7}  # by --quick: the Python loop
NOTES: list[str] = []
FAILURES: list[str] = []


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
        flags.append(
            "--xla_backend_extra_options="
            f"xla_cpu_small_while_loop_byte_threshold={SMALL_LOOP_BYTES}"
        )
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
        probe = subprocess.run(
            [brian2_python, "-c", "import brian2"], capture_output=True, text=True
        )
        if probe.returncode == 0:
            found["brian2"] = brian2_python
        else:
            NOTES.append(f"Brian2: `import brian2` failed in {brian2_python}, skipped.")
    else:
        NOTES.append(
            "Brian2: no --brian2-python given (it needs numpy<2.4 in its "
            "own environment), skipped."
        )
    return found


def _run_worker(
    python: str,
    family: str,
    wl: str,
    dtype: str,
    args: argparse.Namespace,
    env: dict[str, str] | None = None,
) -> list[dict]:
    """Rows of one worker process; a failure goes to NOTES, and for the JAX worker
    (hhjax's rows) also to FAILURES."""
    cmd = [
        python,
        str(HERE / "worker.py"),
        "--family",
        family,
        "--workload",
        wl,
        "--dtype",
        dtype,
        "--repeats",
        str(args.repeats),
    ]
    if args.quick:
        cmd.append("--quick")
    if not args.memory:
        cmd.append("--no-memory")
    full_env = dict(os.environ, **(env or {}))
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), full_env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        message = f"{family} {wl} {dtype}: worker failed ({' '.join(tail)})."
        NOTES.append(message)
        if family == "jax":
            FAILURES.append(message)
        return []
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    print(
        f"  {family:6s} {wl} {dtype}: {len(rows)} rows, "
        f"{time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    return rows


# ------------------------------------------------------------------ agreement
def _check_forward(wl: problem.Workload, rows: list[dict]) -> dict:
    """Set each row's verdict against DOP853 on the checked cells; returns the
    reference summary."""
    t0 = time.perf_counter()
    reference = agreement.reference_summary(wl)
    print(
        f"  reference {wl.name}: DOP853 on {len(reference['cells'])} cells, "
        f"{time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )
    for row in rows:
        row["agrees"], row["agreement"] = agreement.compare_summaries(
            row["summary"], reference, row["order"]
        )
    return reference


def _check_gradient(wl: problem.Workload, rows: list[dict]) -> None:
    """Set each row's verdict against finite differences of its scheme in NumPy
    (``None`` where there is no reference)."""
    references: dict[str, tuple] = {}
    for row in rows:
        scheme = row["scheme"]
        cost = wl.steps * (4 if scheme == "rk4" else 1)
        if scheme is None or cost > MAX_REFERENCE_STEPS:
            why = "no NumPy version" if scheme is None else "NumPy too slow"
            row["agrees"], row["agreement"] = None, f"no reference ({why})"
            continue
        if scheme not in references:
            t0 = time.perf_counter()
            references[scheme] = agreement.reference_gradient(wl.steps, scheme)
            print(
                f"  reference {wl.name}: NumPy {scheme} finite differences, "
                f"{time.perf_counter() - t0:.1f} s",
                file=sys.stderr,
            )
        loss, gradient = references[scheme]
        value = loss if row["mode"] == "forward" else gradient
        row["agrees"], row["agreement"] = agreement.compare_gradient(
            row["value"], value
        )


def _verdict(row: dict) -> str:
    """Agreement cell of a table: yes / NO / not checked, with the numbers."""
    word = {True: "yes", False: "NO", None: "not checked"}[row["agrees"]]
    return f"{word}: {row['agreement']}"


# ------------------------------------------------------------------- tables
def _fmt_s(x: float) -> str:
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def _fmt_mb(x: float | None) -> str:
    """Memory, MB: two significant digits below 10, none after the point above."""
    if x is None:
        return "–"
    return f"{x:.2g}" if x < 10 else f"{x:.0f}"


def _name(row: dict) -> str:
    return row["tool"] + (f" [{row['config']}]" if row.get("config") else "")


def _forward_table(rows: list[dict], wl: problem.Workload, ref_name: str) -> list[str]:
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
        setup = r.get("setup_s", 0.0) + r["overhead_s"]
        lines.append(
            f"| {_name(r)} | {r['note']} | {r['dtype']} | {_fmt_s(r['median_s'])} | "
            f"{_fmt_s(r['cpu_s'])} | "
            f"{problem.fmt_rate(r['neuron_steps'], r['median_s'])} | {setup:.2f} | "
            f"{_fmt_mb(r['peak_mb'])} | {wall} | {cpu} | {_verdict(r)} |"
        )
    return lines


def _gradient_table(rows: list[dict], wl: problem.Workload) -> list[str]:
    base = {}
    for r in rows:
        if r["tool"] == "hhjax" and r["mode"] in ("forward", "reverse"):
            base[(r["mode"] == "forward", r.get("config"))] = r
    # CPU time is the steadier measure on a loaded machine, but Linux accounts the
    # CPU time of JAX's worker threads only every few ms: below ~20 ms per call,
    # use the median wall time of the (then 5x more) repeats.
    fast = base.get((True, None), {"median_s": 1.0})["median_s"] < 0.02
    key, metric = ("median_s", "wall") if fast else ("cpu_s", "CPU")
    forward = {
        (r["tool"], r.get("config")): r[key] for r in rows if r["mode"] == "forward"
    }
    lines = [
        f"**{wl.name}** — {wl.title}. Ratios from {metric} times. Agreement: the "
        "loss (mode forward) or the gradient against central finite differences "
        "of the same loss run in NumPy with the tool's own scheme, largest relative "
        f"error of a component (≤ {agreement.GRADIENT_RTOL:g} passes). Mode auto: "
        "`hhjax.grad`, which picks forward mode for these 3 parameters.",
        "",
        f"| tool | method | mode | wall (s) | CPU (s) | ÷ own forward ({metric}) | "
        f"compile (s) | peak extra MB | × hhjax ({metric}) | agrees (rel. error) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        b = base.get((r["mode"] == "forward", r.get("config")))
        ratio = f"{r[key] / b[key]:.2f}" if b else "–"
        fwd = forward.get((r["tool"], r.get("config")))
        per_fwd = f"{r[key] / fwd:.1f}" if fwd and r["mode"] != "forward" else ""
        lines.append(
            f"| {_name(r)} | {r['note']} | {r['mode']} | {_fmt_s(r['median_s'])} | "
            f"{_fmt_s(r['cpu_s'])} | {per_fwd} | {r['overhead_s']:.2f} | "
            f"{_fmt_mb(r['peak_mb'])} | {ratio} | {_verdict(r)} |"
        )
    return lines


def _table(workload: dict) -> list[str]:
    """Markdown table of one workload from its stored rows."""
    wl = problem.Workload(**workload["workload"])
    if wl.gradient:
        return _gradient_table(workload["rows"], wl)
    return _forward_table(workload["rows"], wl, workload["reference_name"])


def _versions() -> str:
    out = [f"Python {platform.python_version()}"]
    for module in ("jax", "jaxlib", "numpy", "numba", "neuron", "jaxley", "scipy"):
        try:
            from importlib.metadata import version

            out.append(f"{module} {version(module)}")
        except Exception:  # noqa: BLE001 - absent or unversioned package
            continue
    return ", ".join(out)


def _bundle(tables: dict, args: argparse.Namespace, wall: float, flags: str) -> dict:
    """Everything one invocation measured, for ``--json`` and the Markdown."""
    return {
        "command": "python benchmarks/run.py " + " ".join(args.argv),
        "generated": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "wall_s": wall,
        "xla_flags": flags,
        "machine": problem.machine_info(),
        "versions": _versions(),
        "notes": list(NOTES),
        "failures": list(FAILURES),
        "workloads": tables,
    }


def _bundle_failures(bundle: dict) -> list[str]:
    """Failed workers and rows that disagree, as one line each."""
    out = list(bundle["failures"])
    for name, workload in sorted(bundle["workloads"].items()):
        for row in workload["rows"]:
            if row["agrees"] is False:
                what = " ".join([name, _name(row), row["dtype"], row.get("mode", "")])
                out.append(f"{what.strip()}: {row['agreement']}")
    return out


def _machine_line(info: dict) -> str:
    return (
        f"{info.get('cpu', '?')}, {info.get('cores', '?')} cores, AVX-512 "
        f"{info.get('avx512', '?')}, {info.get('memory', '?')}"
    )


def _per_bundle(label: str, values: list[str], commands: list[str]) -> list[str]:
    """One bullet when every invocation had the same value, else one per command."""
    if len(set(values)) == 1:
        return [f"- {label}: {values[0]}."]
    return [
        f"- {label}, per invocation:",
        *(f"  - `{c}`: {v}" for c, v in zip(commands, values, strict=True)),
    ]


def _markdown(bundles: list[dict]) -> str:
    """Markdown for one or more invocations (``--render`` merges several; the
    machine, versions and flags are listed per invocation where they differ)."""
    commands = [b["command"] for b in bundles]
    head = [
        *_per_bundle(
            "Machine", [_machine_line(b["machine"]) for b in bundles], commands
        ),
        "- The machine is shared with other jobs: compare ratios within a table, "
        "not seconds across tables.",
        *_per_bundle("Versions", [b["versions"] for b in bundles], commands),
        *_per_bundle(
            "JAX worker `XLA_FLAGS` (rows marked [default XLA flags] ran without them)",
            [f"`{b['xla_flags']}`" for b in bundles],
            commands,
        ),
        "- wall: median wall time of the repeats (tools whose first call took "
        "> 5 s: one timed call); CPU: median CPU time of the repeats (all threads "
        "of the worker process and its child processes, so Brian2's binary is "
        "included); on a loaded machine CPU time is the steadier measure of "
        "single-threaded work, wall time the one that shows parallel speed-ups; "
        "compile / set-up: first call minus a later one (plus building the model "
        "for NEURON and Brian2); peak extra MB: memory of one call, for JAX tools "
        "XLA's memory_analysis of the compiled call (temporaries + outputs, all "
        "devices), for Brian2 the peak RSS of its binary, for the others the rise "
        "of the process's peak RSS (kernel high-water mark) during a warm call; "
        "× hhjax: ratio to hhjax (exp_euler, one device) in the same table and "
        "process group.",
        "- agrees: forward runs against DOP853 (rtol 1e-10) on up to "
        f"{agreement.REFERENCE_CELLS} cells spread over the batch, with the "
        "tolerance of the tool's accuracy class (order 1 or 4): |ΔV| at "
        f"{', '.join(f'{t:g}' for t in agreement.V_TIMES_MS)} ms, the shift of each "
        "spike (first spike, then a relative drift), equal spike counts except "
        "for spikes the allowed drift could move past the end; the percentage is "
        "the worst spike shift as a fraction of its allowance.",
        "- Generated by:",
    ]
    for b in bundles:
        load = b["machine"].get("load average", "?")
        head.append(
            f"  - `{b['command']}` on {b['generated']}, {b['wall_s']:.0f} s, "
            f"load average at the end {load}"
        )
    tables = {}
    for b in bundles:
        tables.update(b["workloads"])
    body = [line for name in sorted(tables) for line in [*_table(tables[name]), ""]]
    notes = sorted({n for b in bundles for n in b["notes"]})
    notes = [f"- {n}" for n in notes] or ["- none"]
    return "\n".join([*head, "", *body, "Skipped or failed:", "", *notes, ""])


# -------------------------------------------------------------------- output
def _splice(old: str, block: str) -> str:
    """``old`` with the text between its markers replaced by ``block``. A marker
    counts only on a line of its own, so a document may name the markers in its
    text (docs/benchmarks.md does).

    Raises:
        ValueError: the markers are missing, or END does not follow BEGIN.
    """
    lines = old.splitlines(keepends=True)
    marks = {
        m: [i for i, line in enumerate(lines) if line.strip() == m]
        for m in (BEGIN, END)
    }
    if (
        len(marks[BEGIN]) != 1
        or len(marks[END]) != 1
        or marks[END][0] < marks[BEGIN][0]
    ):
        raise ValueError(
            f"it has no {BEGIN} … {END} block (each on a line of its own, once)"
        )
    begin, end = marks[BEGIN][0], marks[END][0]
    return "".join(lines[:begin]) + block + "".join(lines[end + 1 :])


def _writable(path: Path) -> str | None:
    """Why ``--out`` cannot be written, or ``None``: a new file, or an existing one
    with the markers."""
    if not path.exists():
        parent = path.resolve().parent
        return None if parent.is_dir() else f"no folder {parent} for {path}"
    try:
        _splice(path.read_text(), "")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return f"refusing to write {path}: {err}"
    return None


def _write(path: Path, text: str) -> None:
    """Replace the generated block of ``path`` (between the markers), or write a
    new file holding just the block; see :func:`_writable`."""
    block = f"{BEGIN}\n{text}{END}\n"
    if path.exists():
        path.write_text(_splice(path.read_text(), block))
    else:
        path.write_text("# hhjax benchmarks\n\n" + block)


def _load_bundle(parser: argparse.ArgumentParser, path: Path) -> dict:
    """A ``--json`` file of this version of run.py, or a ``parser.error``."""
    try:
        bundle = json.loads(path.read_text())
        rows = [r for w in bundle["workloads"].values() for r in w["rows"]]
        if not all("agrees" in r for r in rows) or "failures" not in bundle:
            raise KeyError("agreement verdicts (made by an older run.py?)")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        parser.error(f"--render {path}: not a run.py --json file ({err})")
    return bundle


def _finish(bundles: list[dict], args: argparse.Namespace, echo: bool) -> int:
    """Write ``--out`` (and print the Markdown if ``echo``) unless something
    failed; returns the exit status."""
    text = _markdown(bundles)
    if echo:
        print(text)
    failures = [f for b in bundles for f in _bundle_failures(b)]
    if failures:
        print(
            "FAILED (--out not written):\n" + "\n".join(f"- {f}" for f in failures),
            file=sys.stderr,
        )
        return 1
    if args.out:
        why = _writable(args.out)
        if why:
            print(why, file=sys.stderr)
            return 2
        _write(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------- main
def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small workloads, fewer tools (CI regression guard)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="Markdown file: a new one, or one with the results "
        "markers, whose block is replaced",
    )
    parser.add_argument("--json", type=Path, help="also write the raw rows here")
    parser.add_argument(
        "--workloads",
        default=",".join(problem.WORKLOAD_NAMES),
        help="comma-separated subset of %(default)s",
    )
    parser.add_argument(
        "--families",
        default=",".join(FAMILIES),
        help="comma-separated subset of %(default)s",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed calls per tool (≥ 1)"
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=os.cpu_count() or 1,
        help="host devices for the JAX worker (default: cores)",
    )
    parser.add_argument(
        "--xla-defaults",
        action="store_true",
        help="run the JAX worker without the recommended loop threshold and "
        "hhjax's own flags (the host devices are kept)",
    )
    parser.add_argument("--no-f32", action="store_true")
    parser.add_argument(
        "--no-memory",
        dest="memory",
        action="store_false",
        help="do not measure memory (saves a few seconds)",
    )
    parser.add_argument(
        "--brian2-python", default=os.environ.get("HHJAX_BENCH_BRIAN2_PYTHON")
    )
    parser.add_argument(
        "--render",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="only write --out from earlier --json files",
    )
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    args.workloads = args.workloads.split(",")
    args.families = args.families.split(",")
    for option, values, allowed in (
        ("--workloads", args.workloads, problem.WORKLOAD_NAMES),
        ("--families", args.families, FAMILIES),
    ):
        bad = [v for v in values if v not in allowed]
        if bad:
            parser.error(
                f"{option}: unknown {', '.join(bad)}; choose from {', '.join(allowed)}"
            )
    if args.repeats < 1 or args.devices < 1:
        parser.error("--repeats and --devices must be at least 1")
    if args.out and (why := _writable(args.out)):
        parser.error(why)
    if args.render:
        args.bundles = [_load_bundle(parser, p) for p in args.render]
    elif importlib.util.find_spec("scipy") is None:
        parser.error("the agreement reference needs SciPy (pip install scipy)")
    return args


def _workload_rows(
    name: str, wl: problem.Workload, args: argparse.Namespace, found: dict, flags: str
) -> list[dict]:
    """Every worker's rows for one workload."""
    rows = []
    families = [f for f in args.families if found.get(f)]
    dtypes = ["f64"] if wl.gradient or args.no_f32 or name == "W1" else ["f64", "f32"]
    for dtype in dtypes:
        for family in families:
            if family != "jax" and (wl.gradient or dtype == "f32"):
                continue
            if (
                family == "python"
                and wl.neuron_steps > PYTHON_MAX_NEURON_STEPS[args.quick]
            ):
                NOTES.append(
                    f"Python loop: skipped for {name} (too slow for this run)."
                )
                continue
            env = {"XLA_FLAGS": flags} if family == "jax" else None
            if env and args.xla_defaults:
                env.update(DEFAULTS_ENV)
            rows += _run_worker(found[family], family, name, dtype, args, env)
            if (
                family == "jax"
                and not args.quick
                and not args.xla_defaults
                and name in ("W1", "W4")
                and dtype == "f64"
            ):
                extra = _run_worker(
                    found[family],
                    family,
                    name,
                    dtype,
                    args,
                    {"XLA_FLAGS": os.environ.get("XLA_FLAGS", ""), **DEFAULTS_ENV},
                )
                for r in extra:
                    r["config"] = "default XLA flags"
                rows += [r for r in extra if r["tool"] in ("hhjax", "plain JAX scan")]
    return rows


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.render:
        return _finish(args.bundles, args, echo=True)
    t_start = time.perf_counter()
    found = _available(args.brian2_python, args.families)
    wls = problem.workloads(args.quick)
    flags = xla_flags(args.devices, not args.xla_defaults)
    tables = {}
    for name in args.workloads:
        wl = wls[name]
        rows = _workload_rows(name, wl, args, found, flags)
        if not rows:
            continue
        workload = {"workload": dataclasses.asdict(wl), "rows": rows}
        if wl.gradient:
            _check_gradient(wl, rows)
        else:
            cells = len(_check_forward(wl, rows)["cells"])
            of = f" on {cells} of {wl.cells} cells" if wl.cells > 1 else ""
            workload["reference_name"] = f"DOP853, rtol 1e-10{of}"
        print("\n".join(_table(workload)) + "\n")
        tables[name] = workload
    if not tables:
        FAILURES.append("nothing was measured (no requested family available)")
    bundle = _bundle(tables, args, time.perf_counter() - t_start, flags)
    if NOTES:
        print("Skipped or failed:\n" + "\n".join(f"- {n}" for n in NOTES))
    if args.json:
        args.json.write_text(json.dumps(bundle, indent=1))
    return _finish([bundle], args, echo=False)


if __name__ == "__main__":
    sys.exit(main())
