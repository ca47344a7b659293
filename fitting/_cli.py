"""``hhjax fit`` and ``hhjax predict``: subcommands registered through the
``hhjax.commands`` entry points (see :mod:`hhjax.cli`).

``hhjax fit DATA --free g_na,g_k,g_l --out DIR`` writes ``DIR/params.json``,
``DIR/metrics.json`` and ``DIR/report.png``; ``hhjax predict PARAMS.json DATA
--out DIR`` writes ``DIR/metrics.json`` and ``DIR/prediction.png``. Both compute
in float64 (``fit --float32`` on request). Outputs appear all at once: they are
written to a temporary directory next to ``DIR`` and moved into place only when
everything succeeded, so a failed or interrupted command leaves ``DIR`` as it
was. One exception: when ``hhjax fit`` finished the fit but scoring it failed
(exit status 1), ``DIR`` gets the new ``params.json`` (and ``metrics.json`` if
only the figure failed), and the other files of an earlier run
(``metrics.json``, ``report.png``) are removed: they described another fit. A
long fit checkpoints to ``.DIR.checkpoint.npz`` next to ``DIR``; after
Ctrl-C or SIGTERM (one line on stderr, exit status 130) the same command resumes
from it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np

import hhjax
import hhjax.io
from hhjax.cli import (
    HelpFormatter,
    check_out_names,
    number_option,
    out_dir_option,
    parse_assignment,
    warnings_one_line,
)

CHECKPOINT_SUFFIX = ".checkpoint.npz"
_OUTPUTS = ("params.json", "metrics.json", "report.png")  # what hhjax fit writes
_PREDICT_OUTPUTS = ("metrics.json", "prediction.png")  # what hhjax predict writes


def compile_cache_dir() -> Path:
    """Where ``hhjax fit`` keeps compiled programs between runs:
    ``$HHJAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/hhjax/jax``, else
    ``~/.cache/hhjax/jax``."""
    if os.environ.get("HHJAX_CACHE_DIR"):
        return Path(os.environ["HHJAX_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hhjax" / "jax"


def _use_compile_cache(enabled: bool) -> None:
    """JAX's persistent compilation cache: a second ``hhjax fit`` on data of the
    same shape and settings skips most compilation (docs/fitting.md)."""
    if not enabled:
        return
    try:
        path = compile_cache_dir()
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # no writable cache directory: compile as usual
    jax.config.update("jax_compilation_cache_dir", str(path))


# ------------------------------------------------------------------ value parsing
def _int_list(text: str) -> list[int]:
    try:  # an empty entry ("1,,2", "3,") is refused, not dropped: int("") fails
        values = [int(x) for x in text.split(",")]
    except ValueError:
        values = []
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated sweep indices >= 0 such as 0,2; got {text!r}"
        )
    return values


def _names(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated parameter names such as g_na,g_k; got {text!r}"
        )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"{', '.join(twice)} named twice in {text!r}")
    return names


def _pair(text: str) -> tuple[float, float] | None:
    """``"A:B"`` as two finite numbers, else ``None``."""
    first, colon, second = text.partition(":")
    try:
        pair = (float(first), float(second))
    except ValueError:
        return None
    return pair if colon and all(map(math.isfinite, pair)) else None


def _span(text: str) -> tuple[float, float]:
    pair = _pair(text)
    if pair is None or pair[0] >= pair[1]:
        raise argparse.ArgumentTypeError(
            f"expected START:STOP in ms with START < STOP, such as 100:600; got {text!r}"
        )
    return pair


def _bound(text: str) -> tuple[str, tuple[float, float]]:
    name, sep, rest = text.partition("=")
    pair = _pair(rest) if sep else None
    if not name.strip() or pair is None:
        raise argparse.ArgumentTypeError(
            f"expected NAME=LOWER:UPPER such as g_na=50:200; got {text!r}"
        )
    if pair[0] >= pair[1]:
        raise argparse.ArgumentTypeError(
            f"the lower bound of {name.strip()} must be below its upper bound; got "
            f"{pair[0]:g} >= {pair[1]:g} in {text!r}"
        )
    return name.strip(), pair


def _windows(text: str) -> tuple[float | None, ...]:
    out = []
    for item in text.split(","):
        item = item.strip().lower()
        if item in ("whole", "none"):
            out.append(None)
            continue
        try:
            value = float(item)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(
                "expected window lengths in ms and 'whole', comma-separated, such "
                f"as 2,20,whole; got {text!r}"
            )
        out.append(value)
    from fitting._losses import windows_in_order

    if not windows_in_order(out):
        raise argparse.ArgumentTypeError(
            "window lengths must grow from stage to stage, 'whole' last, such as "
            f"2,20,whole (the last stage gives the loss and standard errors); got "
            f"{text!r}"
        )
    return tuple(out)


_positive_int = number_option(lambda x: x >= 1, "an integer >= 1", int)
_index = number_option(lambda x: x >= 0, "an index >= 0", int)
_seed = number_option(lambda x: x >= 0, "an integer >= 0", int)
_factor = number_option(
    lambda x: x > 1,
    "a factor > 1 such as 2 (starts within 1/2 to 2 times the centre)",
)
_positive = number_option(lambda x: x > 0, "a positive number")
_non_negative = number_option(lambda x: x >= 0, "a number >= 0")
_finite = number_option(lambda x: True, "a finite number")


# ------------------------------------------------------------------ shared options
_CONVENTION_HELP = (
    "Voltage convention: that of the parameters, modern (rest about -65 mV) by "
    "default, HH 1952 (rest at 0 mV) for parameters with v_shift = 65 mV; the data "
    "must be in the same."
)


def _add_data_options(parser: argparse.ArgumentParser, sweeps_help: str) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "data",
        type=Path,
        metavar="DATA",
        help="recording: .npz or .csv with t_ms, v_mV and i_uA_per_cm2 (or i_pA "
        "and c_pF), 1-D for one sweep or 2-D (sweep, time); or an .abf/.nwb "
        "whole-cell recording (the real-cell protocol, docs/real_cells.md)",
    )
    group.add_argument(
        "--sweeps",
        type=_int_list,
        default=None,
        metavar="LIST",
        help=sweeps_help,
    )
    group.add_argument(
        "--channel",
        type=_index,
        default=None,
        metavar="N",
        help=".abf files: ADC channel of the membrane potential, 0-based "
        "(default: the first one in mV)",
    )
    group.add_argument(
        "--dac",
        type=_index,
        default=None,
        metavar="N",
        help=".abf files: DAC whose command current drove the cell, 0-based "
        "(default: the DAC with --channel's index; if that one is silent while "
        "another drives, the error names it)",
    )
    group.add_argument(
        "--electrode",
        default=None,
        metavar="NAME",
        help=".nwb files: intracellular electrode (cell) whose series to load "
        "(default: the only one; the error lists them when there are several)",
    )
    group.add_argument(
        "--stimulus-description",
        default=None,
        metavar="NAME",
        help=".nwb files: load only the sweeps of this protocol (their series' "
        "stimulus_description; default: all, and the error names them when the "
        "sweeps differ in length)",
    )
    group.add_argument(
        "--window",
        type=_span,
        action="append",
        default=None,
        metavar="START:STOP",
        help="use only samples in this time window, ms (repeatable; default: all)",
    )
    group.add_argument(
        "--exclude",
        type=_span,
        action="append",
        default=None,
        metavar="START:STOP",
        help="leave out this time window, ms, e.g. a stimulus artefact (repeatable)",
    )
    group.add_argument(
        "--threshold",
        type=_finite,
        default=0.0,
        metavar="MV",
        help="spike threshold for the metrics: upward crossings, mV",
    )


def _add_output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=out_dir_option,
        required=True,
        metavar="DIR",
        help="output directory (created; files in it are replaced only when "
        "everything succeeded)",
    )


def _base_params(args: argparse.Namespace) -> tuple[str, Any]:
    """Model name and parameters: --model defaults, then --params, then --param
    (one number each)."""
    from fitting._params import one_cell

    name, params = hhjax.io.resolve_params(args.model, args.params, dict(args.param))
    return name, one_cell(params, "argument --params")


def _selectors(args: argparse.Namespace) -> dict:
    """The options that pick one cell's signals (and an ``.nwb`` file's
    protocol) in a recording (:data:`hhjax.recordings.SELECTORS`)."""
    return {
        "channel": args.channel,
        "dac": args.dac,
        "electrode": args.electrode,
        "stimulus_description": args.stimulus_description,
    }


def _load(args: argparse.Namespace, c_m: float):
    import fitting

    try:
        return fitting.load_data(
            args.data,
            sweeps=args.sweeps,
            windows=args.window,
            exclude=args.exclude,
            c_m=c_m,
            **_selectors(args),
        )
    except fitting.RecordingError as err:
        raise ValueError(str(err)) from None


@contextlib.contextmanager
def _staging(out: Path, outputs: tuple[str, ...] = ()) -> Iterator[Path]:
    """A temporary directory next to ``out``; on success its files are moved into
    ``out`` (renamed as a whole if ``out`` does not exist), else it is removed.
    Files named in ``outputs`` that the temporary directory lacks are removed
    from ``out`` (an earlier run's, which would not match the new files)."""
    from fitting._io import umask_mode

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    os.chmod(tmp, umask_mode(0o777))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.rename(tmp, out)
    except OSError:  # out exists: replace file by file, each atomically
        out.mkdir(parents=True, exist_ok=True)
        for name in outputs:
            if not (tmp / name).exists():
                with contextlib.suppress(FileNotFoundError):
                    (out / name).unlink()
        for item in tmp.iterdir():
            os.replace(item, out / item.name)
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _signals_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (``kill``) like Ctrl-C, so the fit saves its checkpoint (a
    signal already ignored stays ignored); both also set
    :data:`fitting._interrupt.INTERRUPT_REQUESTED`, which a fit checks between chunks of
    iterations in case the KeyboardInterrupt was raised where it is ignored
    (inside a garbage-collection callback)."""
    from fitting._interrupt import INTERRUPT_REQUESTED

    def handler(signum, frame):
        INTERRUPT_REQUESTED.set()
        raise KeyboardInterrupt

    INTERRUPT_REQUESTED.clear()
    try:
        # A signal the parent ignores stays ignored (e.g. SIGINT of a job started
        # with `&` from a script), as Python itself leaves it.
        previous = {
            sig: signal.signal(sig, handler)
            for sig in (signal.SIGTERM, signal.SIGINT)
            if signal.getsignal(sig) is not signal.SIG_IGN
        }
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        INTERRUPT_REQUESTED.clear()


def _interrupted(what: str) -> int:
    """Report an interruption (Ctrl-C, SIGTERM) on one line; exit status 130.

    A compilation that the interruption left running in a worker thread is waited
    for here (Python would wait for it at exit anyway); another Ctrl-C then quits
    at once, without the interpreter's teardown, which could crash while XLA
    still compiles. Everything worth keeping is saved (atomically) by then."""
    from fitting._interrupt import busy_workers

    workers = busy_workers()
    note = (
        " (exiting when the computation in progress ends; Ctrl-C again to quit now)"
        if workers
        else ""
    )
    print(f"hhjax: interrupted{what}{note}", file=sys.stderr, flush=True)
    try:
        for worker in workers:
            worker.join()
    except KeyboardInterrupt:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    return 130


# -------------------------------------------------------------------------- fit
def register_fit(subparsers: Any) -> None:
    """Add ``hhjax fit`` to the ``hhjax`` command line."""
    from fitting._losses import LOSSES

    parser = subparsers.add_parser(
        "fit",
        help="fit model parameters to a voltage recording (many starts at once)",
        description="Fit free parameters of a model to recorded membrane potential "
        "under the recorded injected current, from many starts at once, and write "
        "DIR/params.json (parameters with units, standard errors, loss history, "
        "settings, versions), DIR/metrics.json (per sweep: spikes in data and "
        "model, subthreshold error, spike-time error) and DIR/report.png. Computes "
        "in float64. Units: ms, mV, uA/cm^2 (or pA with c_pF), mS/cm^2, uF/cm^2. "
        + _CONVENTION_HELP,
        formatter_class=HelpFormatter,
    )
    _add_data_options(
        parser,
        "sweep indices in the file to use, 0-based, e.g. 0,2 (default: all); for an "
        ".abf/.nwb recording the training sweeps (default: 6 chosen automatically; "
        "every sweep is scored)",
    )
    group = parser.add_argument_group(
        "cell (.abf/.nwb recordings; default: measured on the hyperpolarising step)"
    )
    group.add_argument(
        "--c-pf",
        type=_positive,
        default=None,
        metavar="PF",
        help="cell capacitance, pF (e.g. from the amplifier's membrane test): pA "
        "become uA/cm^2 with the area C / (1 uF/cm^2)",
    )
    group.add_argument(
        "--series-resistance",
        type=_non_negative,
        default=None,
        metavar="MOHM",
        help="uncompensated series resistance removed as V - R_s*I, MOhm (0: no "
        "correction)",
    )
    group = parser.add_argument_group("model and parameters")
    group.add_argument(
        "--free",
        type=_names,
        default=None,
        metavar="NAMES",
        help="parameters to fit, comma-separated, e.g. g_na,g_k,g_l,e_l (required "
        "for .npz/.csv data; for .abf/.nwb recordings the real-cell protocol "
        "chooses them, see docs/real_cells.md)",
    )
    group.add_argument(
        "--model",
        choices=tuple(hhjax.MODELS),
        default=None,
        help="model and its default parameters (default: that of --params, else "
        "pospischil-rs for an .abf/.nwb recording and hh for .npz/.csv data)",
    )
    group.add_argument(
        "--params",
        type=Path,
        default=None,
        metavar="FILE",
        help="parameter file (.json/.toml) with the fixed values and the centre of "
        "the starts, e.g. a previous params.json",
    )
    group.add_argument(
        "--param",
        type=parse_assignment,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set one parameter (repeatable), after --params",
    )
    group.add_argument(
        "--bounds",
        type=_bound,
        action="append",
        default=[],
        metavar="NAME=LO:HI",
        help="bounds of a free parameter in its unit (repeatable; defaults: g_* "
        "1e-4:1e4 mS/cm^2, e_* -200:200 mV, c_m 0.05:20 uF/cm^2)",
    )
    group = parser.add_argument_group("optimisation")
    group.add_argument(
        "--loss",
        choices=tuple(LOSSES),
        default="shooting",
        help="shooting: multiple shooting over short windows (robust through "
        "spikes), then the whole sweep from rest (see --windows); mse: whole-sweep "
        "V error from rest (subthreshold data); regression: current balance with "
        "the gates driven by the recorded V (no simulation)",
    )
    group.add_argument(
        "--windows",
        type=_windows,
        default=None,
        metavar="LIST",
        help="stages of the shooting loss: window lengths in ms and 'whole' for "
        "the whole sweep from rest (default 2,20,whole); 2,20 for windows only "
        "(data that do not start at rest, or a model that cannot reproduce the "
        "spikes)",
    )
    group.add_argument("--starts", type=_positive_int, default=16, metavar="N",
                       help="number of starts optimised together")  # fmt: skip
    group.add_argument(
        "--init",
        choices=("regression", "params", "bounds"),
        default="regression",
        help="centre of the starts: the regression estimate, the parameters "
        "(--model/--params/--param), or none (spread over the bounds)",
    )
    group.add_argument(
        "--spread",
        type=_factor,
        default=None,
        metavar="FACTOR",
        help="starts are drawn within this factor (> 1) of the centre (default 2; "
        "not used with --init bounds)",
    )
    group.add_argument(
        "--seed", type=_seed, default=0, help="seed of the starts (integer >= 0)"
    )
    group.add_argument(
        "--optimizer",
        choices=("auto", "lm", "adam", "lbfgs"),
        default="auto",
        help="auto: Levenberg-Marquardt with forward-mode Jacobians up to 12 free "
        "parameters, else Adam",
    )
    group.add_argument("--iterations", type=_positive_int, default=None, metavar="N",
                       help="maximum iterations per stage (default 50 for LM, which "
                       "needs >= 2)")  # fmt: skip
    group.add_argument(
        "--method", choices=tuple(hhjax.METHODS), default=hhjax.DEFAULT_METHOD,
        help="integration method (the step is the data's sampling interval)",
    )  # fmt: skip
    group.add_argument(
        "--substeps",
        type=_positive_int,
        default=1,
        metavar="K",
        help="integration steps per data sample (more: stable for coarse sampling "
        "or stiff parameters; shooting and mse losses)",
    )
    precision = group.add_mutually_exclusive_group()
    precision.add_argument("--float32", action="store_true",
                           help="compute in float32 (default float64)")  # fmt: skip
    precision.add_argument(
        "--mixed",
        action="store_true",
        help="float32 for the stages before the last, float64 for the last "
        "(same result as float64, faster)",
    )
    group = parser.add_argument_group("running")
    group.add_argument("--quiet", action="store_true", help="no progress line")
    group.add_argument(
        "--checkpoint-every",
        type=_positive,
        default=30.0,
        metavar="S",
        help="seconds between checkpoints (.DIR.checkpoint.npz next to DIR)",
    )
    group.add_argument(
        "--no-resume",
        action="store_true",
        help="ignore an existing checkpoint and start afresh",
    )
    group.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not keep compiled programs between runs (default: in "
        "$HHJAX_CACHE_DIR, else $XDG_CACHE_HOME/hhjax/jax, else "
        "~/.cache/hhjax/jax)",
    )
    _add_output_option(parser)
    parser.set_defaults(
        func=run_fit,
        npz_only=_npz_only(parser, _NPZ_ONLY),
        memory_hint="fewer --starts, fewer --sweeps or a shorter --window",
    )


def _npz_only(parser: argparse.ArgumentParser, flags: dict[str, str]) -> dict:
    """``{dest: (flag, default)}`` of the options in ``flags`` (dest -> flag); their
    help says that they are refused for recordings."""
    for action in parser._actions:
        if action.dest in flags and action.help:
            action.help += " [.npz/.csv data only]"
    return {dest: (flag, parser.get_default(dest)) for dest, flag in flags.items()}


def _refuse_npz_only(args: argparse.Namespace, why: str) -> None:
    """Refuse the options (``args.npz_only``, see :func:`_npz_only`) that only the
    .npz/.csv commands read when the real-cell protocol runs instead: one given
    with a value other than its default is an error, not silently ignored."""
    given = [
        flag
        for dest, (flag, default) in getattr(args, "npz_only", {}).items()
        if getattr(args, dest) != default
    ]
    if given:
        raise ValueError(
            f"{', '.join(given)}: not used {why}; the real-cell protocol prepares "
            "the recording and sets its own search, windows, spike threshold and "
            "time step (docs/real_cells.md). These options are for fits of "
            ".npz/.csv data and their predictions."
        )


# Options of `hhjax fit` that only the .npz/.csv fit uses (the real-cell protocol
# for .abf/.nwb recordings has its own search): dest -> flag.
_NPZ_ONLY = {
    "loss": "--loss",
    "windows": "--windows",
    "starts": "--starts",
    "init": "--init",
    "spread": "--spread",
    "optimizer": "--optimizer",
    "iterations": "--iterations",
    "substeps": "--substeps",
    "float32": "--float32",
    "mixed": "--mixed",
    "bounds": "--bounds",
    "checkpoint_every": "--checkpoint-every",
    "window": "--window",
    "exclude": "--exclude",
    "threshold": "--threshold",
}
# fitting.fit's arguments that an option of `hhjax fit` sets: argument -> flag.
_FIT_ARGUMENT_FLAGS = {
    "max_iterations": "--iterations",
    "n_starts": "--starts",
    "spread": "--spread",
    "seed": "--seed",
    "checkpoint_every": "--checkpoint-every",
    "bounds": "--bounds",
    "free": "--free",
    "method": "--method",
    "c_pf": "--c-pf",
    "series_resistance": "--series-resistance",
    "init": "--init",
}
# The same for `hhjax predict` with the parameters of a real-cell fit or on a
# recording (the protocol scores every sweep itself).
_PREDICT_NPZ_ONLY = {
    "sweeps": "--sweeps",
    "window": "--window",
    "exclude": "--exclude",
    "threshold": "--threshold",
    "substeps": "--substeps",
}


def _option_names(message: str) -> str:
    """``message`` with the arguments of :func:`fitting.fit` in backticks
    replaced by the options of ``hhjax fit`` that set them (``--init``)."""
    message = message.replace(
        "pass resume=False (--no-resume on the command line)", "pass --no-resume"
    )
    for argument, flag in _FIT_ARGUMENT_FLAGS.items():
        message = message.replace(f"`{argument}`", flag)
    return message


@contextlib.contextmanager
def _options_named() -> Iterator[None]:
    """A ``ValueError`` raised inside names the options of ``hhjax fit``, not the
    arguments of :func:`fitting.fit` that they set."""
    try:
        yield
    except ValueError as err:
        message = _option_names(str(err))
        if message.startswith("Unknown parameter(s)"):
            message = f"argument --free: {message}"
        raise ValueError(message) from None


def _remove(*paths: Path) -> None:
    """Delete checkpoint files that may not exist."""
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


def checkpoint_path(out: Path) -> Path:
    """Where ``hhjax fit --out DIR`` keeps its checkpoint: ``.DIR.checkpoint.npz``
    next to ``DIR`` (``--out .``: next to the current directory, by its name)."""
    if not out.name or out.name == "..":  # "." or "..": name the directory itself
        out = Path(os.path.abspath(out))
    return out.parent / f".{out.name}{CHECKPOINT_SUFFIX}"


def run_fit(args: argparse.Namespace) -> int:
    """Run ``hhjax fit``; returns the exit status (errors raise ``ValueError``).
    Ctrl-C or SIGTERM at any point: one line on stderr and exit status 130; the
    fit's progress, if any, is in the checkpoint and the same command resumes."""
    with _signals_as_interrupt(), warnings_one_line(_option_names):
        try:
            return _run_fit(args)
        except KeyboardInterrupt:
            # Outside the fit (loading, or a second Ctrl-C while the fit saved).
            from fitting import protocol

            files = protocol.checkpoint_files(checkpoint_path(args.out))
            # With --no-resume an existing checkpoint is the one being discarded.
            saved = (
                None if args.no_resume else next((f for f in files if f.exists()), None)
            )
            held = (
                f"{saved} holds the progress saved before"
                if saved is not None
                else "no progress was saved"
            )
            return _interrupted(
                f"; {args.out} is unchanged; {held}; {_again(args, saved is not None)}"
            )


def _again(args: argparse.Namespace, saved: bool) -> str:
    """What to run after an interruption: the same command resumes from saved
    progress, unless it said --no-resume (which would start over again)."""
    if not saved:
        return "run the same command again to start over"
    if args.no_resume:
        return "run the command again without --no-resume to resume from it"
    return "run the same command again to resume"


def _run_fit(args: argparse.Namespace) -> int:
    import fitting
    from fitting import protocol

    check_out_names(args.out, _OUTPUTS, staged_beside=True)
    _use_compile_cache(not args.no_compile_cache)
    if protocol.wants_protocol(args.data):
        return _run_protocol_fit(args, protocol)
    if Path(args.data).suffix.lower() not in (".npz", ".csv"):
        raise ValueError(
            f"{args.data}: unsupported file type "
            f"{Path(args.data).suffix or '(no suffix)'!r}; expected a recording "
            "(.abf or .nwb, current in pA) or a trace (.npz or .csv)"
        )
    for flag, value in (
        ("--c-pf", args.c_pf),
        ("--series-resistance", args.series_resistance),
    ):
        if value is not None:
            raise ValueError(
                f"argument {flag}: only for .abf/.nwb recordings (the real-cell "
                "protocol); a .npz/.csv file in pA gives its own c_pF and is not "
                "bridge-balanced"
            )
    name, base = _base_params(args)
    if args.free is None:
        raise ValueError("argument --free: required for .npz/.csv data (e.g. g_na,g_k)")
    free = list(args.free)
    with _options_named():
        fitting.ParamSpace.create(base, free, dict(args.bounds))  # check names early
    if args.init == "bounds" and args.spread is not None:
        raise ValueError(
            "argument --spread: not used with --init bounds (the starts are spread "
            "over the bounds); leave it out or use --init regression or params"
        )
    spread = 2.0 if args.spread is None else args.spread
    dtype = "float32" if args.float32 else ("mixed" if args.mixed else "float64")
    checkpoint = checkpoint_path(args.out)
    init = {"regression": "regression", "params": None, "bounds": "bounds"}[args.init]
    loss = fitting.LOSSES[args.loss]()
    if args.windows is not None:
        if not isinstance(loss, fitting.Shooting):
            raise ValueError(
                f"argument --windows: only the shooting loss has windows, not {args.loss}"
            )
        loss = dataclasses.replace(loss, windows_ms=args.windows)
    if args.substeps > 1:
        if not hasattr(loss, "substeps"):
            raise ValueError(
                f"argument --substeps: the {args.loss} loss does not simulate"
            )
        loss = dataclasses.replace(loss, substeps=args.substeps)
    with jax.enable_x64(True):
        data = _load(args, float(np.asarray(base.c_m)))
        try:
            with _options_named():
                result = fitting.fit(
                    data, free, params=base, bounds=dict(args.bounds), loss=loss,
                    optimizer=args.optimizer, n_starts=args.starts, init=init,
                    spread=spread, seed=args.seed, max_iterations=args.iterations,
                    method=args.method, dtype=dtype, checkpoint=checkpoint,
                    checkpoint_every=args.checkpoint_every, resume=not args.no_resume,
                    progress=not args.quiet, model=name,
                )  # fmt: skip
        except fitting.FitInterrupted as stop:
            return _interrupted(
                f": {stop}; {_again(args, stop.checkpoint is not None)}"
            )
    if not args.quiet:
        print("fit: scoring the fit (simulating every sweep)...", file=sys.stderr)
    return _score_fit(args, result, data, getattr(loss, "substeps", 1), checkpoint)


def _score_fit(args, result, data, substeps, checkpoint) -> int:
    """Write params.json, metrics.json and report.png of a finished fit into
    ``--out``, then remove the checkpoint. Ctrl-C: one line that says where the
    fit is (``--out``, or the checkpoint while ``--out`` is not written yet)."""
    step = "scoring"  # then "moving" (the new files into --out), then "written"
    try:
        with _staging(args.out, _OUTPUTS) as tmp:
            report, scoring_error = _score_into(tmp, args, result, data, substeps)
            step = "moving"
        step = "written"
        _remove(checkpoint)
        print(result.summary())
        if scoring_error is not None:
            print(
                "hhjax: error: scoring the fit failed ("
                f"{type(scoring_error).__name__}: "
                f"{' '.join(str(scoring_error).split())}); the fitted parameters are "
                f"in {args.out / 'params.json'}",
                file=sys.stderr,
            )
            return 1
        _print_metrics(report)
        for file in _OUTPUTS:
            print(f"wrote {args.out / file}")
        return 0
    except KeyboardInterrupt:
        if step == "written":
            names = ", ".join(n for n in _OUTPUTS if (args.out / n).exists())
            return _interrupted(f" after writing {names} to {args.out}")
        where = (
            f"while scoring the fit; {args.out} is unchanged"
            if step == "scoring"
            else f"while moving the new files into {args.out} (only some may be there)"
        )
        return _interrupted(
            f" {where}; the finished fit is in {checkpoint}: run the same command "
            "again to score it"
        )


def _score_into(tmp: Path, args, result, data, substeps) -> tuple[Any, Any]:
    """Write params.json, then metrics.json and report.png, into ``tmp``;
    returns ``(metrics document, None)``, or ``(None, the error)`` if scoring
    failed (params.json is written all the same)."""
    import fitting
    from fitting._interrupt import in_worker
    from fitting._io import write_json_atomic
    from fitting._metrics import simulate_sweeps
    from fitting._report import save_report

    def score():
        # Best parameters that cannot be simulated from rest are flagged per sweep
        # in metrics.json, not an error.
        v_model, _ = simulate_sweeps(
            result.params, data, method=args.method, substeps=substeps
        )
        report = fitting.metrics(
            data, result.params, method=args.method, threshold=args.threshold,
            v_model=v_model, substeps=substeps,
        )  # fmt: skip
        return v_model, report

    result.save(tmp / "params.json")  # the fit first: scoring cannot lose it
    try:
        with jax.enable_x64(True):
            # In a worker thread: Ctrl-C stops the wait, not a compilation.
            v_model, report = in_worker(score)
        write_json_atomic(tmp / "metrics.json", report)
        save_report(result, data, v_model, tmp / "report.png", threshold=args.threshold)
    except Exception as err:  # noqa: BLE001 - the fit is kept whatever failed
        return None, err
    return report, None


def _run_protocol_fit(args: argparse.Namespace, protocol: Any) -> int:
    """``hhjax fit`` on a whole-cell recording (.abf/.nwb): the real-cell protocol
    (``fitting.protocol``); ``--sweeps`` are the training sweeps (0-based)."""
    import fitting

    _refuse_npz_only(args, f"for a recording ({args.data.name})")
    args.memory_hint = "fewer training --sweeps"
    if args.model is None and args.params is None:
        args.model = "pospischil-rs"
    name, base = _base_params(args)
    if args.free is None and name not in protocol.FREE:
        raise ValueError(
            f"argument --free: required for --model {name} on a recording (the "
            f"real-cell protocol has default free parameters for "
            f"{', '.join(protocol.FREE)} only)"
        )
    files = protocol.checkpoint_files(checkpoint_path(args.out))
    if args.no_resume:
        _remove(*files)
    try:
        with jax.enable_x64(True), _staging(args.out) as tmp, _options_named():
            try:
                fit = protocol.fit_to_directory(
                    args.data, tmp, name, sweeps=args.sweeps, params=base,
                    free=args.free, seed=args.seed, method=args.method,
                    log=None if args.quiet else print, checkpoint=files[0],
                    c_pf=args.c_pf, series_resistance=args.series_resistance,
                    **_selectors(args),
                )  # fmt: skip
            except fitting.RecordingError as err:
                raise ValueError(str(err)) from None
    except fitting.FitInterrupted as stop:  # it says what progress was saved
        return _interrupted(f": {stop}; {_again(args, stop.checkpoint is not None)}")
    _remove(*files)
    print(fit.summary())
    metrics = json.loads((args.out / "metrics.json").read_text(encoding="utf-8"))
    print(protocol.summary_line(metrics["protocol"]))
    for file in _OUTPUTS:
        print(f"wrote {args.out / file}")
    return 0


# What may help when a sweep's simulation failed: finer steps for .npz/.csv data;
# for a recording (whose step is fixed), a method that stays finite, or parameters
# that hold there.
_SUBSTEPS_REMEDY = (
    "coarsely sampled data may need more --substeps; check also that the current "
    "is in uA/cm^2 (or in pA with c_pF) and the parameters are those of this cell"
)
_RECORDING_REMEDY = (
    "the model leaves the physiological range there, e.g. parameters of another "
    "cell, or fitted on depolarising steps only, under a hyperpolarising step; "
    "--method exp_midpoint (second order, gates advanced exactly) stays finite "
    "where the explicit methods diverge"
)


def _print_metrics(report: dict, remedy: str = _SUBSTEPS_REMEDY) -> None:
    failures = (
        ("total", "failed_sweeps", "from rest (non-finite)", "model metrics"),
        (
            "protocol",
            "failed_whole_sweeps",
            "over the whole sweep (all steps, non-finite)",
            "all-steps spike counts",
        ),
    )
    for block, key, how, lost in failures:
        sweeps = report.get(block, {}).get(key)
        if sweeps:
            print(
                f"hhjax: warning: the model could not be simulated {how} on "
                f"sweep(s) {', '.join(map(str, sweeps))}: no {lost} there ({remedy})",
                file=sys.stderr,
            )
    for row in report["sweeps"]:
        if row.get("simulation_failed"):
            amplitude = (
                f" ({row['amplitude_pA']:g} pA)" if "amplitude_pA" in row else ""
            )
            print(
                f"  sweep {row['sweep']}{amplitude}: spikes data "
                f"{row.get('spikes_data_step', row['spikes_data'])}, model "
                "simulation failed (non-finite)"
            )
            continue
        sub = row["subthreshold_rmse_mV"]
        sub_text = "n/a" if sub is None else f"{sub:.3g} mV"
        if "spikes_data_step" in row:  # the real-cell protocol: spikes in the step
            tag = ", training" if row.get("training") else ""
            steps = ""
            if "spikes_data_steps" in row:  # a protocol that repeats its step
                model = row["spikes_model_steps"]
                steps = (
                    f" (all steps: data {row['spikes_data_steps']}, model "
                    f"{'failed' if model is None else model})"
                )
            print(
                f"  sweep {row['sweep']} ({row['amplitude_pA']:g} pA{tag}): spikes "
                f"in the step data {row['spikes_data_step']}, model "
                f"{row['spikes_model_step']}{steps}; subthreshold RMSE {sub_text}"
            )
            continue
        print(
            f"  sweep {row['sweep']}: spikes data {row['spikes_data']}, model "
            f"{row['spikes_model']} (matched {row.get('matched_spikes', 'n/a')}); "
            "subthreshold "
            f"RMSE {sub_text}"
        )
    if "protocol" in report:
        from fitting.protocol import summary_line

        print(summary_line(report["protocol"]))


# ---------------------------------------------------------------------- predict
def register_predict(subparsers: Any) -> None:
    """Add ``hhjax predict`` to the ``hhjax`` command line."""
    parser = subparsers.add_parser(
        "predict",
        help="simulate fitted parameters on (other) data and score the prediction",
        description="Simulate the model of PARAMS (a params.json from 'hhjax fit', "
        "or any parameter file; model 'hh' if it names none) from rest under the injected "
        "current of DATA, and write DIR/metrics.json (per sweep: spikes in data "
        "and model, subthreshold error, spike-time error) and DIR/prediction.png. "
        "Computes in float64. Units: ms, mV, uA/cm^2 (or pA with c_pF). "
        + _CONVENTION_HELP,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "params_file", type=Path, metavar="PARAMS", help="params.json (or .toml)"
    )
    _add_data_options(
        parser,
        "sweep indices in the file to score, 0-based, e.g. 0,2 (default: all; a "
        "recording, or the parameters of a real-cell fit, are scored on every sweep)",
    )
    parser.add_argument(
        "--method",
        choices=tuple(hhjax.METHODS),
        default=None,
        help="integration method (default: the one the fit used, else "
        f"{hhjax.DEFAULT_METHOD})",
    )
    parser.add_argument(
        "--substeps",
        type=_positive_int,
        default=None,
        metavar="K",
        help="integration steps per data sample (default: the --substeps of the "
        "fit, else 1)",
    )
    _add_output_option(parser)
    parser.set_defaults(func=run_predict, npz_only=_npz_only(parser, _PREDICT_NPZ_ONLY))


def _fit_method(settings: Any, path: Path) -> str | None:
    """The integration method a params.json's fit used (``settings.method``;
    ``None`` where the file does not say), a ``ValueError`` if it is not one."""
    method = settings.get("method") if isinstance(settings, dict) else None
    if method is not None and method not in hhjax.METHODS:
        raise ValueError(
            f"PARAMS: {path}: settings.method {method!r} is not one of "
            f"{', '.join(hhjax.METHODS)}; correct it or give --method"
        )
    return method


def _fit_substeps(settings: Any, path: Path) -> int:
    """The ``--substeps`` a params.json's fit used (``settings.loss.substeps``; 1
    where the file does not say), a ``ValueError`` if it is not an integer >= 1."""
    loss = settings.get("loss") if isinstance(settings, dict) else None
    substeps = loss.get("substeps", 1) if isinstance(loss, dict) else 1
    if isinstance(substeps, bool) or not isinstance(substeps, int) or substeps < 1:
        raise ValueError(
            f"PARAMS: {path}: settings.loss.substeps must be an integer >= 1; got "
            f"{substeps!r}; correct it or give --substeps"
        )
    return substeps


def run_predict(args: argparse.Namespace) -> int:
    """Run ``hhjax predict``; returns the exit status (130 after Ctrl-C or
    SIGTERM, with ``--out`` left as it was)."""
    with _signals_as_interrupt(), warnings_one_line():
        try:
            return _run_predict(args)
        except KeyboardInterrupt:
            return _interrupted(f"; {args.out} is unchanged")


def _run_predict(args: argparse.Namespace) -> int:
    import fitting
    from fitting import protocol
    from fitting._interrupt import in_worker
    from fitting._io import write_json_atomic
    from fitting._metrics import simulate_sweeps
    from fitting._params import one_cell

    check_out_names(args.out, _PREDICT_OUTPUTS, staged_beside=True)
    if (args.out / "params.json").exists():
        raise ValueError(
            f"argument --out: {args.out} holds a fit (params.json), whose "
            "metrics.json the prediction's would replace next to the fit's "
            "report.png; write the prediction to another directory"
        )
    if args.params_file.is_dir():
        inside = args.params_file / "params.json"
        hint = f" (did you mean {inside}?)" if inside.is_file() else ""
        raise ValueError(f"PARAMS: {args.params_file} is a directory{hint}")
    try:
        params, document = fitting.load_result(args.params_file)
    except FileNotFoundError:
        raise ValueError(f"PARAMS: no such file {str(args.params_file)!r}") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"PARAMS: {err}") from None
    params = one_cell(params, f"PARAMS ({args.params_file})")
    if protocol.wants_protocol(args.data, document):
        if protocol.wants_protocol(args.data):
            why = f"for a recording ({args.data.name})"
        else:
            why = f"with the parameters of a real-cell fit ({args.params_file.name})"
        _refuse_npz_only(args, why)
        with jax.enable_x64(True), _staging(args.out) as tmp:
            try:
                report = protocol.predict_to_directory(
                    args.params_file, args.data, tmp, method=args.method,
                    log=print, **_selectors(args),
                )  # fmt: skip
            except fitting.RecordingError as err:
                raise ValueError(str(err)) from None
        _print_metrics(report, _RECORDING_REMEDY)
        for file in _PREDICT_OUTPUTS:
            print(f"wrote {args.out / file}")
        return 0
    settings = document.get("settings") if isinstance(document, dict) else None
    # The file's settings are read (and checked) only where no option overrides.
    method = (
        args.method or _fit_method(settings, args.params_file) or hhjax.DEFAULT_METHOD
    )
    substeps = args.substeps or _fit_substeps(settings, args.params_file)

    def score(data):
        v_model, _ = simulate_sweeps(params, data, method=method, substeps=substeps)
        report = fitting.metrics(
            data, params, method=method, threshold=args.threshold, v_model=v_model,
            substeps=substeps,
        )  # fmt: skip
        return v_model, report

    with jax.enable_x64(True):
        data = _load(args, float(np.asarray(params.c_m)))
        # In a worker thread: Ctrl-C stops the wait, not a compilation.
        v_model, report = in_worker(score, data)
    report["params_file"] = str(args.params_file)
    report["data"] = {"source": str(args.data), "sweeps": list(data.sweeps)}
    with _staging(args.out) as tmp:
        write_json_atomic(tmp / "metrics.json", report)
        _save_prediction(data, v_model, tmp / "prediction.png", args.threshold)
    _print_metrics(report)
    for file in _PREDICT_OUTPUTS:
        print(f"wrote {args.out / file}")
    return 0


def _save_prediction(data, v_model, path: Path, threshold: float) -> None:
    from matplotlib.figure import Figure

    from hhjax.io import write_figure_atomic

    n = data.n_sweeps
    fig = Figure(figsize=(12, 2.4 * n), layout="constrained")
    for k in range(n):
        ax = fig.add_subplot(n, 1, k + 1)
        ax.plot(data.t, data.v[k], color="0.55", lw=0.7, label="data")
        ax.plot(data.t, v_model[k], color="C3", lw=0.7, label="model (from rest)")
        ax.axhline(threshold, color="0.8", lw=0.6, ls="--")
        ax.set_ylabel("V (mV)")
        ax.set_title(f"sweep {data.sweeps[k]}", fontsize=9, loc="left")
    ax.set_xlabel("t (ms)")
    fig.axes[0].legend(loc="upper right", fontsize=8)
    write_figure_atomic(fig, path, dpi=90)
