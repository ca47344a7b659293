"""The ``hhjax`` command: simulate a cell or compute its f–I curve without code.

Usage (``hhjax --help``, ``hhjax SUBCOMMAND --help`` for every option)::

    hhjax simulate --amplitude 15 --start 10 --duration 80 --total 100 --out run1
    hhjax simulate --constant 20 --convention hh1952 --method euler --dt 0.01
    hhjax simulate --params params.json --param g_na=100 --out run2
    hhjax simulate --model pospischil-rs --amplitude 2 --duration 200 --total 300
    hhjax fi --from 0 --to 20 --step 0.5 --out fi1
    python -m hhjax ...                       # the same without the console script

Units: times in ms, currents in µA/cm² (inward, depolarising positive),
conductances mS/cm², potentials mV, capacitance µF/cm². The voltage convention is
modern (rest ≈ −65 mV) unless ``--convention hh1952`` (pyHH's: V from rest, rest
at 0 mV) or a parameter file says otherwise. The cell starts at rest
(:func:`hhjax.resting_state`); hhjax's own commands compute in float64.

Errors: a bad option or value prints one line ``hhjax: error: ...`` naming the
option and what was expected, and exits with status 2; a simulation that fails
(e.g. becomes non-finite) exits with status 1. Runs are limited to
``MAX_STEPS`` time steps and about ``MAX_OUTPUT_BYTES`` of recorded values; a
longer run is a usage error. Negative numbers may be written ``-1e1`` as well as
``--amplitude=-1e1``. Every output file is written atomically (never half-written).

Extending: other packages add subcommands without hhjax importing them. Declare an
entry point in the group ``hhjax.commands`` whose object is a function
``register(subparsers)``; it receives the ``argparse`` subparsers action, adds its
parser with ``subparsers.add_parser(name, help=...)`` and sets
``parser.set_defaults(func=run)``, where ``run(args)`` returns an exit status (or
``None`` for 0) and raises :class:`UsageError` (or ``ValueError``) with a message
naming the option for a bad value (optionally also ``memory_hint=...``: what to
ask for less of when the command runs out of memory). In ``pyproject.toml``::

    [project.entry-points."hhjax.commands"]
    fit = "fitting._cli:register_fit"
    predict = "fitting._cli:register_predict"

A plugin that fails to load is reported on one line (``hhjax: warning: ...``) and
skipped; the other commands keep working. Models of other packages join
``--model`` the same way, as entry points of the group ``hhjax.models``
(``hhjax._registry.PLUGIN_GROUP``; docs/models.md).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, NoReturn

import jax
import numpy as np

from hhjax import stimulus
from hhjax._checks import MAX_PLAUSIBLE_CURRENT, is_out_of_memory
from hhjax._integrators import DEFAULT_METHOD, METHODS
from hhjax._model import model_of
from hhjax._registry import MODELS, load_model_plugins
from hhjax._simulate import NonFiniteSimulationError, simulate
from hhjax.io import (
    nearest_existing,
    resolve_params,
    save_trace,
    table_csv_text,
    write_figure_atomic,
    write_text_atomic,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "HelpFormatter",
    "MAX_OUTPUT_BYTES",
    "MAX_STEPS",
    "UsageError",
    "build_parser",
    "check_out_names",
    "main",
    "number_option",
    "out_dir_option",
    "parse_assignment",
]

ENTRY_POINT_GROUP = "hhjax.commands"
"""Entry-point group from which extra subcommands are loaded."""

MAX_STEPS = 10**8
"""Most time steps one command simulates (``--total`` or ``--duration`` / ``--dt``)."""


def _half_the_memory() -> int:
    """Half of this machine's physical memory, bytes (4 GiB if unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, OSError, ValueError):
        return 4 * 2**30


MAX_OUTPUT_BYTES = _half_the_memory()
"""Most bytes of recorded float64 values a command holds: time steps × cells ×
recorded fields × 8; half of the machine's physical memory."""

_MAX_CURRENTS = 10000  # currents of one `hhjax fi` run
_CONVENTIONS = ("modern", "hh1952")
# argparse's own pattern misses scientific notation: `--amplitude -1e1` would read
# "-1e1" as an option and fail with "expected one argument".
_NEGATIVE_NUMBER = re.compile(r"^-(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


class UsageError(ValueError):
    """A bad command-line value; the message names the option and the expectation."""


class _Parser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors are one line, ``hhjax: error: ...``, status 2,
    and that takes ``-1e1`` as a negative number (its subparsers are ``_Parser``
    too)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        hint = f" (see '{self.prog} --help')"
        self.exit(2, f"hhjax: error: {_one_line(message)}{hint}\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends ``(default: ...)`` to an option's help only where there is a default
    to show (not ``None``, an off flag or an empty list) and the help does not
    state it already."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        nothing = default is None or default is False or default == []
        if nothing or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


# -------------------------------------------------------------- option value types
def number_option(
    check: Callable[[Any], bool], expected: str, convert: type = float
) -> Callable[[str], Any]:
    """An argparse ``type=`` for a number: ``convert(text)`` (``float`` or
    ``int``) that must be finite and pass ``check``; otherwise the option's error
    is ``expected {expected}; got '...'`` (one line, exit status 2)."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {expected}; got {text!r}"
            ) from None
        if not (math.isfinite(value) and check(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
        return value

    parse.__name__ = expected  # argparse names the type in some messages
    return parse


_finite = number_option(lambda x: True, "a finite number")
_positive = number_option(lambda x: x > 0, "a positive number")
_non_negative = number_option(lambda x: x >= 0, "a number >= 0")
# simulate's plausibility limit, checked here so the message is about options.
_current = number_option(
    lambda x: abs(x) <= MAX_PLAUSIBLE_CURRENT,
    f"a current density in uA/cm^2 with |I| <= {MAX_PLAUSIBLE_CURRENT:g} (a "
    "current in pA is I_pA / C_pF uA/cm^2 for c_m = 1 uF/cm^2)",
)


_count = number_option(lambda x: x >= 2, "an integer >= 2", int)


def parse_assignment(text: str) -> tuple[str, float]:
    """Parse ``NAME=NUMBER`` (an argparse ``type``), e.g. ``--param g_na=100``."""
    name, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not sep or not name.strip() or not math.isfinite(number):
        raise argparse.ArgumentTypeError(
            f"expected NAME=NUMBER such as g_na=100; got {text!r}"
        )
    return name.strip(), number


# ------------------------------------------------------------------ shared options
def _add_model_options(parser: argparse.ArgumentParser, dt: float) -> None:
    group = parser.add_argument_group("model and integration")
    group.add_argument(
        "--model",
        choices=tuple(MODELS),
        default=None,
        help="model and its default parameters (default: the model named in "
        "--params, else hh: standard Hodgkin-Huxley)",
    )
    group.add_argument(
        "--params",
        metavar="FILE",
        type=Path,
        help="parameter file, .json or .toml: {field: number} or "
        '{"model": "hh", "params": {field: number}}; fields of the model\'s '
        "parameters, e.g. for hh: g_na, g_k, g_l in mS/cm^2; e_na, e_k, e_l, "
        "v_shift in mV; c_m in uF/cm^2; temperature in degC; q10, q10_g. A list "
        "of numbers for a field simulates one cell per value (a batch)",
    )
    group.add_argument(
        "--param",
        metavar="NAME=VALUE",
        type=parse_assignment,
        action="append",
        default=[],
        help="set one parameter (units as for --params), after the file; repeatable",
    )
    group.add_argument(
        "--convention",
        choices=_CONVENTIONS,
        default="modern",
        help="voltage convention of the default hh parameters: modern (rest about "
        "-65 mV) or hh1952 (pyHH's; V from rest, rest at 0 mV); other models "
        "are modern",
    )
    group.add_argument(
        "--method",
        choices=tuple(METHODS),
        default=DEFAULT_METHOD,
        help="integration method",
    )
    group.add_argument(
        "--dt", type=_positive, default=dt, metavar="MS", help="time step, ms"
    )


def out_dir_option(text: str) -> Path:
    """An argparse ``type=`` for ``--out``: a directory, created if needed, so
    neither empty, nor an existing file, nor below one (else the option's
    one-line error, exit status 2)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give a directory name, not an empty string")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a directory")
    parent = nearest_existing(path.absolute().parent)
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"{text} cannot be created: {parent} is not a directory"
        )
    return path


def check_out_names(
    out: Path, names: Sequence[str], *, staged_beside: bool = False
) -> None:
    """A :class:`UsageError` for ``--out``, before the work starts, if the command
    could not write its files there: no file can be created in ``out`` (or, if it
    does not exist yet, in its nearest existing ancestor, where it would be
    created), or one of the files it writes (``names``) is an existing directory.
    With ``staged_beside`` (the files are first written to a temporary directory
    next to ``out``, then moved in) ``out``'s parent is checked in the same way,
    and ``out`` itself if it exists. Nothing is created."""
    for name in names:
        if (out / name).is_dir():
            raise UsageError(
                f"argument --out: {out / name} is a directory; the command writes a "
                "file of that name"
            )
    places = {nearest_existing((out.parent if staged_beside else out).absolute())}
    if staged_beside and out.is_dir():
        places.add(out.absolute())
    for place in sorted(places):
        try:
            tempfile.TemporaryFile(dir=place).close()
        except OSError as err:
            raise UsageError(
                f"argument --out: cannot create files in {place} "
                f"({err.strerror or type(err).__name__})"
            ) from None


def _add_output_options(parser: argparse.ArgumentParser, default: str) -> None:
    group = parser.add_argument_group("output")
    group.add_argument(
        "--out",
        type=out_dir_option,
        default=Path(default),
        metavar="DIR",
        help="directory for the output files (created if needed)",
    )
    group.add_argument(
        "--no-plot", action="store_true", help="do not write the PNG figure"
    )


def _params_from_args(args: argparse.Namespace) -> tuple[str, Any]:
    """Model name and parameters: the model's defaults (``--model``, else the
    file's model, else ``hh``; ``--convention``), then ``--params``, then
    ``--param``."""
    try:
        return resolve_params(
            args.model, args.params, dict(args.param), args.convention
        )
    except ValueError as err:
        raise UsageError(str(err)) from None


def _whole_steps(option: str, value: float, dt: float, minimum: int = 0) -> int:
    """``value`` (ms) as a whole number of steps of ``dt`` (ms), from ``minimum``
    to :data:`MAX_STEPS`; a :class:`UsageError` naming ``option`` otherwise."""
    steps = value / dt
    if not steps <= MAX_STEPS:  # also inf, when dt is tiny
        raise UsageError(
            f"argument {option}: {value:g} ms is more than {MAX_STEPS:.0e} steps of "
            f"--dt {dt:g} ms; use a shorter {option} or a larger --dt"
        )
    n = round(steps)
    if abs(n * dt - value) > 1e-6 * max(1.0, value):
        raise UsageError(
            f"argument {option}: {value:g} ms is not a whole number of steps of "
            f"--dt {dt:g} ms"
        )
    if n < minimum:
        raise UsageError(
            f"argument {option}: {value:g} ms is shorter than {minimum} step(s) of "
            f"--dt {dt:g} ms"
        )
    return n


def _check_output_size(
    option: str, steps: int, cells: int, fields: int, fewer: str
) -> None:
    """A :class:`UsageError` naming ``option`` if ``steps × cells × fields``
    float64 values exceed :data:`MAX_OUTPUT_BYTES`; ``fewer`` says how to have
    fewer cells."""
    size = 8 * steps * cells * fields
    if size > MAX_OUTPUT_BYTES:
        raise UsageError(
            f"argument {option}: the run would record about {size / 1e9:.3g} GB "
            f"({steps} steps x {cells} cells x {fields} fields x 8 bytes), more "
            f"than {MAX_OUTPUT_BYTES / 1e9:.3g} GB; use a shorter {option}, a "
            f"larger --dt or {fewer}"
        )


def _cells(params: Any) -> int:
    """Cells in the batch of a parameter tuple (1 for scalar parameters)."""
    return math.prod(np.broadcast_shapes(*(np.shape(v) for v in params)))


@contextlib.contextmanager
def warnings_one_line(
    rewrite: Callable[[str], str] | None = None,
) -> Iterator[None]:
    """Print each warning raised inside (e.g. a step-size warning, a checkpoint
    that could not be written) at once, as one line ``hhjax: warning: ...`` on
    stderr, its text passed through ``rewrite`` if given (e.g. to name a
    command's options instead of the Python arguments they set). Python's
    warning filters apply: a warning repeated from the same line prints once;
    ``-W``/``PYTHONWARNINGS`` can silence or repeat them."""

    def show(message, category, filename, lineno, file=None, line=None):
        text = _one_line(message if rewrite is None else rewrite(str(message)))
        print(f"hhjax: warning: {text}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _first_cell(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    return (0,) * len(shape) if shape else None


# ------------------------------------------------------------------------ simulate
def _add_simulate(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate one cell under a current step or a constant current",
        description="Simulate a cell from rest under a current step (or a constant "
        "current) and write trace.npz, trace.csv (columns t_ms, v_mV, m, h, n, "
        "i_na_uA_per_cm2, ..., i_ext_uA_per_cm2) and trace.png. Currents in "
        "uA/cm^2 (injected: inward positive; ionic: outward positive), times in ms.",
        formatter_class=HelpFormatter,
    )
    group = parser.add_argument_group("stimulus (times in ms, currents in uA/cm^2)")
    group.add_argument(
        "--amplitude",
        type=_current,
        default=15.0,
        metavar="UA_PER_CM2",
        help="step amplitude, uA/cm^2",
    )
    group.add_argument(
        "--start",
        type=_non_negative,
        default=10.0,
        metavar="MS",
        help="step start, ms",
    )
    group.add_argument(
        "--duration",
        type=_positive,
        default=80.0,
        metavar="MS",
        help="step duration, ms",
    )
    group.add_argument(
        "--total",
        type=_positive,
        default=100.0,
        metavar="MS",
        help="length of the simulation, ms",
    )
    group.add_argument(
        "--constant",
        type=_current,
        default=None,
        metavar="UA_PER_CM2",
        help="instead of a step, this constant current for the whole --total, "
        "uA/cm^2 (--amplitude, --start, --duration are then ignored)",
    )
    _add_model_options(parser, dt=0.01)
    _add_output_options(parser, "out")
    parser.set_defaults(func=_run_simulate)


def _stimulus_from_args(args: argparse.Namespace) -> Any:
    """The injected current, µA/cm², ``(steps,)``: ``--constant`` for ``--total``
    ms, else the step ``--amplitude`` from ``--start`` for ``--duration`` ms; all
    times whole numbers of steps of ``--dt``."""
    if args.constant is not None:
        return stimulus.constant(args.constant, args.total, args.dt)
    _whole_steps("--start", args.start, args.dt)
    _whole_steps("--duration", args.duration, args.dt, minimum=1)
    stop = args.start + args.duration
    if stop > args.total + 1e-9:
        raise UsageError(
            f"the step (--start {args.start:g} + --duration {args.duration:g} ms) "
            f"must end within --total {args.total:g} ms; lengthen --total or move "
            "the step"
        )
    return stimulus.step(
        args.amplitude, start=args.start, stop=stop, duration=args.total, dt=args.dt
    )


def _run_simulate(args: argparse.Namespace) -> int:
    _, params = _params_from_args(args)
    steps = _whole_steps("--total", args.total, args.dt, minimum=1)
    fields = len(model_of(params).trace_type._fields) + 1  # and i_ext
    _check_output_size(
        "--total", steps, _cells(params), fields, "fewer cells in --params"
    )
    check_out_names(args.out, ["trace.npz", "trace.csv", "trace.png"])
    with jax.enable_x64(True):
        i_ext = _stimulus_from_args(args)
        with warnings_one_line():
            trace = simulate(params, i_ext, args.dt, method=args.method)
        written = [
            save_trace(trace, args.out / "trace.npz", i_ext=i_ext),
            save_trace(trace, args.out / "trace.csv", i_ext=i_ext),
        ]
        v = np.asarray(trace.v)
    batch = v.shape[1:]
    if not args.no_plot:
        from hhjax.plot import plot_trace

        # params: the figure states their convention and leaves out the
        # channels they switch off (the files keep them).
        fig = plot_trace(trace, i_ext, cell=_first_cell(batch), params=params)
        written.append(write_figure_atomic(fig, args.out / "trace.png", dpi=120))
    print(
        f"simulated {v.shape[0]} steps of {args.dt:g} ms ({args.method}), batch "
        f"shape {batch}; V from {v.min():.2f} to {v.max():.2f} mV"
        + (
            f"; trace.png shows cell {_first_cell(batch)}"
            if batch and not args.no_plot
            else ""
        )
    )
    _warn_beyond_reversal(v, params)
    for path in written:
        print(f"wrote {path}")
    return 0


# How far (mV) V may go beyond the model's reversal potentials before the CLI warns.
_BEYOND_REVERSAL_MV = 100.0


def _warn_beyond_reversal(v: np.ndarray, params: Any) -> None:
    """One warning line when V (mV) leaves the span of the model's reversal
    potentials by more than :data:`_BEYOND_REVERSAL_MV`: no membrane gets there;
    the current overwhelms the cell's conductances."""
    reversals = [
        np.asarray(getattr(params, f)) for f in params._fields if f[:2] == "e_"
    ]
    if not reversals:
        return
    low = min(float(e.min()) for e in reversals)
    high = max(float(e.max()) for e in reversals)
    extreme = float(v.min()) if v.min() < low - _BEYOND_REVERSAL_MV else None
    if v.max() > high + _BEYOND_REVERSAL_MV:
        extreme = float(v.max())
    if extreme is not None:
        print(
            f"hhjax: warning: V reached {extreme:.1f} mV, more than "
            f"{_BEYOND_REVERSAL_MV:g} mV beyond the reversal potentials ({low:.1f} to "
            f"{high:.1f} mV): the current overwhelms the cell's conductances (a current "
            "in pA given as uA/cm^2? parameters of another cell, or a leak fitted on "
            "depolarising steps only?)",
            file=sys.stderr,
        )


# ------------------------------------------------------------------------------ fi
def _add_fi(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fi",
        help="f-I curve: firing rate against constant current, one batched run",
        description="Switch each constant current of a range on from rest, "
        "simulate all of them in one batched run, and write fi.csv "
        "(current_uA_per_cm2, rate_Hz, spike_count, latency_ms, repetitive) and "
        "fi.png. Prints the onset of repetitive firing (the lowest current with at "
        "least --min-spikes spikes in the analysis window, still firing at its "
        "end) and the lowest current with any spike. Rates in Hz.",
        formatter_class=HelpFormatter,
    )
    group = parser.add_argument_group("currents (uA/cm^2) and timing (ms)")
    group.add_argument(
        "--from",
        dest="i_from",
        type=_current,
        default=0.0,
        metavar="UA_PER_CM2",
        help="first current, uA/cm^2",
    )
    group.add_argument(
        "--to",
        dest="i_to",
        type=_current,
        default=20.0,
        metavar="UA_PER_CM2",
        help="last current (included when on the grid), uA/cm^2",
    )
    group.add_argument(
        "--step",
        dest="i_step",
        type=_positive,
        default=0.5,
        metavar="UA_PER_CM2",
        help="current spacing, uA/cm^2",
    )
    group.add_argument(
        "--duration",
        type=_positive,
        default=1000.0,
        metavar="MS",
        help="length of each run, ms",
    )
    group.add_argument(
        "--transient",
        type=_non_negative,
        default=200.0,
        metavar="MS",
        help="start of the analysis window (spikes before it are not counted), ms",
    )
    group.add_argument(
        "--threshold",
        type=_finite,
        default=None,
        metavar="MV",
        help="spike threshold, mV in the model's convention (default: 35 mV "
        "above the resting potential)",
    )
    group.add_argument(
        "--min-spikes",
        type=_count,
        default=2,
        metavar="N",
        help="spikes in the window that count as repetitive firing",
    )
    _add_model_options(parser, dt=0.025)
    _add_output_options(parser, "out")
    parser.set_defaults(func=_run_fi)


def _current_grid(args: argparse.Namespace) -> np.ndarray:
    if args.i_to < args.i_from:
        raise UsageError(
            f"argument --to: expected a current >= --from {args.i_from:g} uA/cm^2; "
            f"got {args.i_to:g}"
        )
    ratio = (args.i_to - args.i_from) / args.i_step  # inf for a tiny --step
    n = math.floor(ratio + 1e-9) + 1 if ratio < _MAX_CURRENTS else _MAX_CURRENTS + 1
    if n > _MAX_CURRENTS:
        raise UsageError(
            f"argument --step: more than {_MAX_CURRENTS} currents from --from "
            f"{args.i_from:g} to --to {args.i_to:g} uA/cm^2 in steps of "
            f"{args.i_step:g}; use a larger step"
        )
    return args.i_from + args.i_step * np.arange(n)


def _single_cell(params: Any) -> None:
    """``fi`` batches the currents: a :class:`UsageError` for batched parameters."""
    lists = [f"{k} {np.shape(v)}" for k, v in params._asdict().items() if np.shape(v)]
    if lists:
        raise UsageError(
            "argument --params: fi simulates one cell over a range of currents, so "
            "each parameter must be a single number; got lists for "
            f"{', '.join(lists)} (run fi once per parameter set)"
        )


def _run_fi(args: argparse.Namespace) -> int:
    from hhjax.analysis import fi_curve

    name, params = _params_from_args(args)
    _single_cell(params)
    currents = _current_grid(args)
    if args.transient >= args.duration:
        raise UsageError(
            f"argument --transient: expected less than --duration {args.duration:g} "
            f"ms; got {args.transient:g}"
        )
    steps = _whole_steps("--duration", args.duration, args.dt, minimum=1)
    # fi records V of each current, and holds the current of each step and cell.
    _check_output_size(
        "--duration", steps, len(currents), 2, "fewer currents (a larger --step)"
    )
    check_out_names(args.out, ["fi.csv", "fi.png"])
    with jax.enable_x64(True), warnings_one_line():
        curve = fi_curve(
            params,
            currents,
            duration=args.duration,
            dt=args.dt,
            method=args.method,
            transient=args.transient,
            threshold=args.threshold,
            min_spikes=args.min_spikes,
        )
        table = np.column_stack(
            [
                np.asarray(curve.currents, float),
                np.asarray(curve.rates, float),
                np.asarray(curve.counts, float),
                np.asarray(curve.latency, float),
                np.asarray(curve.repetitive, float),
            ]
        )
    text = table_csv_text(
        table,
        "current_uA_per_cm2,rate_Hz,spike_count,latency_ms,repetitive",
        fmt=("%.10g", "%.10g", "%d", "%.10g", "%d"),
    )
    written = [write_text_atomic(args.out / "fi.csv", text)]
    if not args.no_plot:
        from hhjax.plot import plot_fi

        fig = plot_fi(curve, title=f"f-I curve of {name}, from rest")
        written.append(write_figure_atomic(fig, args.out / "fi.png", dpi=120))
    window = f"{curve.window[0]:g}-{curve.window[1]:g} ms"
    if math.isnan(curve.rheobase):
        print(
            f"no repetitive firing between {currents[0]:g} and {currents[-1]:g} "
            f"uA/cm^2 (window {window}, threshold {curve.threshold:.1f} mV)"
        )
    else:
        print(
            f"repetitive firing onset: {curve.rheobase:g} uA/cm^2 ({curve.onset_type}; "
            f"grid step {args.i_step:g} uA/cm^2, window {window}, threshold "
            f"{curve.threshold:.1f} mV)"
        )
    if not math.isnan(curve.single_spike_rheobase):
        at = "at or below" if curve.single_spike_rheobase == currents[0] else "from"
        print(f"first spike {at} {curve.single_spike_rheobase:g} uA/cm^2")
    for path in written:
        print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------------------- main
def _load_plugins(subparsers: Any) -> None:
    """Let each ``hhjax.commands`` entry point register its subcommand(s)."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            register = ep.load()
            register(subparsers)
        except Exception as err:  # noqa: BLE001 (a broken plugin must not break hhjax)
            print(
                f"hhjax: warning: could not load command {ep.name!r} from "
                f"{ep.value}: {_one_line(f'{type(err).__name__}: {err}')}",
                file=sys.stderr,
            )


def build_parser(*, plugins: bool = True) -> argparse.ArgumentParser:
    """The ``hhjax`` argument parser, with the plugin subcommands if ``plugins``."""
    from hhjax import __version__

    parser = _Parser(
        prog="hhjax",
        description="Differentiable Hodgkin-Huxley simulation in JAX. Units: ms, mV, "
        "uA/cm^2 (injected current inward positive), mS/cm^2, uF/cm^2. Voltage "
        "convention: modern (rest about -65 mV) unless --convention hh1952.",
    )
    parser.add_argument("--version", action="version", version=f"hhjax {__version__}")
    if plugins:  # before the parsers that list the model names
        for failure in load_model_plugins():
            print(f"hhjax: warning: {failure}", file=sys.stderr)
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands", required=True
    )
    _add_simulate(subparsers)
    _add_fi(subparsers)
    if plugins:
        _load_plugins(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hhjax`` command line; returns the exit status.

    Args:
        argv: arguments without the program name; default ``sys.argv[1:]``.

    Returns:
        0 on success, 2 for a bad option or value (one line on stderr), 1 when the
        simulation or writing the output fails.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a one-line usage error
        return stop.code if isinstance(stop.code, int) else 2
    try:
        status = args.func(args)
    except ValueError as err:  # includes UsageError
        print(f"hhjax: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except (NonFiniteSimulationError, OSError) as err:
        print(f"hhjax: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except (MemoryError, jax.errors.JaxRuntimeError) as err:
        if not is_out_of_memory(err):
            raise  # not out of memory: a bug, keep its traceback
        text = str(err)
        first = text.strip().splitlines()[0] if text.strip() else ""
        less = getattr(
            args, "memory_hint", "a shorter run, fewer cells or recorded samples"
        )
        print(
            f"hhjax: error: out of memory ({type(err).__name__}: {first}); ask for "
            f"less: {less}",
            file=sys.stderr,
        )
        return 1
    return 0 if status is None else int(status)


if __name__ == "__main__":
    sys.exit(main())
