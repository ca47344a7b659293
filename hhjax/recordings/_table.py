"""The project's own recording files: ``.npz`` and ``.csv`` with unit-bearing names.

File contract:

* ``.npz``: ``t_ms`` (time, ms), ``v_mV`` (recorded voltage, mV), and either
  ``i_uA_per_cm2`` (µA/cm²) or ``i_pA`` (pA); 1-D arrays for one sweep, 2-D
  ``(sweep, time)`` for several (``t_ms`` may be 1-D, shared by all sweeps).
  A 2-D ``t_ms`` has one row per sweep. Values are real numbers (not bool,
  complex or text), finite. Optional: ``sweeps``, the source sweep indices
  (0-based, distinct); ``c_pF``, the cell capacitance (pF, a scalar); ``dt_ms``,
  the sampling interval (ms, a scalar, which must agree with the step of
  ``t_ms``; :func:`save_npz` writes it so that ``dt`` survives the round trip
  exactly; without it ``dt`` is the step of ``t_ms``). ``i_pA`` without ``c_pF``
  stays in pA, as a recording read from ``.abf`` / ``.nwb`` does (:func:`save_npz`
  writes it so): turning it into µA/cm² then needs ``c_pf`` (e.g. from
  :func:`cell_properties`).
* ``.csv``: the same names as column headers, each once, one sweep (``c_pF``,
  ``dt_ms`` and ``sweeps``, if given, as a column of one repeated value); UTF-8,
  with or without a byte-order mark (Excel's "CSV UTF-8").

``i_ext_uA_per_cm2`` is accepted as an alias of ``i_uA_per_cm2`` (the name
:func:`hhjax.io.save_trace` writes), so a saved one-cell simulated trace loads as
a recording; other columns (gates, channel currents) are ignored.

``i[k]`` applies on ``[t[k], t[k+1])``. The time base must be uniform (to within
the rounding of the ``t_ms`` dtype: float32 times are accepted) and increasing.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from hhjax.io import read_csv_table, read_npz, write_bytes_atomic
from hhjax.recordings._abf import load_abf
from hhjax.recordings._nwb import load_nwb
from hhjax.recordings._recording import (
    Recording,
    RecordingError,
    check_is_file,
    real_number,
    sweep_array,
)

# Current column -> unit. ``i_ext_uA_per_cm2`` is the name `hhjax.io.save_trace`
# gives the injected current, so a saved simulated trace loads as a recording.
_CURRENT_KEYS = {"i_uA_per_cm2": "uA/cm2", "i_ext_uA_per_cm2": "uA/cm2", "i_pA": "pA"}


def _time_resolution(t: np.ndarray) -> float:
    """Rounding error (ms) of one time in ``t``: 4 ulp of its dtype at max ``|t|``."""
    dtype = t.dtype if np.issubdtype(t.dtype, np.floating) else np.float64
    return 4.0 * float(np.finfo(dtype).eps) * float(np.max(np.abs(t)))


def _step_tolerance(dt: float, resolution: float) -> float:
    """How far (ms) a time step may be from ``dt`` (ms) in a uniform time base:
    1e-6·dt plus the rounding ``resolution`` (ms) of the times, at most dt/2."""
    return 1e-6 * dt + 1e-9 + min(resolution, 0.5 * dt)


def _uniform_dt(t: np.ndarray, where: str) -> float:
    """The sampling interval (ms) of a uniform time column ``t_ms``.

    ``dt`` is the median step of a float64 (or integer) column and the mean step
    ``(t[-1] − t[0]) / (n − 1)`` of a lower-precision one (a float32 ``t_ms`` of
    seconds has steps only good to ~1e-3 ms, so its median is off by as much);
    every step must equal it within 1e-6·dt plus the rounding error of the
    column's dtype, at most dt/2. ``t``: ``(time,)`` or ``(sweep, time)``, ms.
    """
    t = np.asarray(t)
    if not (np.issubdtype(t.dtype, np.integer) or np.issubdtype(t.dtype, np.floating)):
        raise RecordingError(
            f"{where}: `t_ms` must be real numbers (ms); got {t.dtype}."
        )
    if t.ndim not in (1, 2) or t.shape[-1] < 2 or t.size == 0:
        raise RecordingError(
            f"{where}: `t_ms` must hold >= 2 times; got shape {t.shape}."
        )
    if not np.all(np.isfinite(t)):
        raise RecordingError(f"{where}: `t_ms` contains NaN/inf.")
    resolution = _time_resolution(t)
    if t.ndim == 2:
        tol = max(1e-9 * float(np.max(np.abs(t))), resolution)
        if not np.allclose(t, t[:1], rtol=0, atol=tol):
            raise RecordingError(
                f"{where}: sweeps have different time bases in `t_ms`."
            )
        t = t[0]
    coarse = t.dtype.kind == "f" and t.dtype.itemsize < 8
    hint = f" and store `t_ms` as float64, not {t.dtype}" if coarse else ""
    t = t.astype(np.float64)
    steps = np.diff(t)
    if np.any(steps <= 0):
        k = int(np.argmax(steps <= 0))
        raise RecordingError(
            f"{where}: `t_ms` must increase from sample to sample; got "
            f"t_ms[{k}] = {t[k]:g} ms, t_ms[{k + 1}] = {t[k + 1]:g} ms."
        )
    dt = float((t[-1] - t[0]) / (t.size - 1) if coarse else np.median(steps))
    off = np.abs(steps - dt)
    if dt <= 0 or np.max(off) > _step_tolerance(dt, resolution):
        k = int(np.argmax(off))
        raise RecordingError(
            f"{where}: time base is not uniform (t_ms[{k + 1}] - t_ms[{k}] = {steps[k]:g} "
            f"ms, {'mean' if coarse else 'median'} step {dt:g} ms); resample to a "
            f"uniform grid first{hint}."
        )
    return dt


def _one_value(column: np.ndarray, name: str, where: str) -> np.ndarray:
    """The single value of a scalar (or one-value repeated) column, shape ``(1,)``."""
    column = np.asarray(column)
    if column.dtype.kind not in "iuf":
        raise RecordingError(
            f"{where}: `{name}` must be a number; got {column.ravel()[:5].tolist()} "
            f"({column.dtype})."
        )
    value = np.unique(column)
    if value.size != 1:
        raise RecordingError(
            f"{where}: `{name}` must be one value (repeated in every row of a "
            f".csv); got {value.size} different values {value[:5].tolist()}."
        )
    return value


def _stored_dt(value, t: np.ndarray, dt_t: float, where: str) -> float:
    """The sampling interval ``dt_ms`` (ms) stored in a file, checked against the
    step ``dt_t`` (ms) of its time column ``t`` (ms)."""
    dt = real_number(value, "dt_ms", "ms", f"{where}: ", positive=True)
    if abs(dt - dt_t) > _step_tolerance(dt, _time_resolution(t)):
        raise RecordingError(
            f"{where}: `dt_ms` = {dt:g} ms disagrees with `t_ms`, whose step is "
            f"{dt_t:g} ms; they must agree (or leave `dt_ms` out)."
        )
    return dt


def _check_samples(v: np.ndarray, n_t: int, where: str) -> None:
    """``v_mV`` (``(time,)`` or ``(sweep, time)``) has ``n_t`` samples per sweep."""
    v = np.asarray(v)
    if v.ndim not in (1, 2) or v.shape[-1] == n_t:
        return  # other shapes: sweep_array names them
    layout = (
        " (it looks (time, cell), the layout of a batched hhjax.io.save_trace: "
        "save one cell per file, or transpose to (sweep, time))"
        if v.ndim == 2 and v.shape[0] == n_t
        else ""
    )
    raise RecordingError(
        f"{where}: `v_mV` has {v.shape[-1]} samples per sweep but `t_ms` has "
        f"{n_t}{layout}."
    )


def _from_columns(columns: dict, where: str) -> Recording:
    missing = [k for k in ("t_ms", "v_mV") if k not in columns]
    present = [k for k in _CURRENT_KEYS if k in columns]
    if missing or len(present) != 1:
        need = (
            "t_ms, v_mV and exactly one of i_uA_per_cm2 (or its alias "
            "i_ext_uA_per_cm2) or i_pA (optionally with c_pF)"
        )
        raise RecordingError(
            f"{where}: expected columns {need}; found {sorted(columns)}."
        )
    dt = _uniform_dt(columns["t_ms"], where)  # its own dtype sets the tolerance
    if "dt_ms" in columns:
        dt = _stored_dt(columns["dt_ms"], columns["t_ms"], dt, where)
    t = np.asarray(columns["t_ms"], dtype=np.float64)
    key = present[0]
    c_pf = None
    if "c_pF" in columns:
        c_pf = real_number(
            _one_value(columns["c_pF"], "c_pF", where)[0],
            "c_pF",
            "pF",
            f"{where}: ",
            positive=True,
        )
    n_t = t.shape[-1]
    _check_samples(columns["v_mV"], n_t, where)
    v = sweep_array(columns["v_mV"], "v_mV", "mV", f"{where}: ")
    i = sweep_array(columns[key], key, _CURRENT_KEYS[key], f"{where}: ")
    if t.ndim == 2 and t.shape[0] != v.shape[0]:
        raise RecordingError(
            f"{where}: `t_ms` has {t.shape[0]} rows but `v_mV` has {v.shape[0]} "
            "sweeps; give one `t_ms` row per sweep, or a 1-D `t_ms` shared by all."
        )
    sweeps = np.atleast_1d(columns.get("sweeps", ()))
    return Recording(
        dt=dt,
        v=v,
        i=i,
        i_unit=_CURRENT_KEYS[key],
        c_pf=c_pf,
        sweeps=sweeps,
        t0=float(t.reshape(-1, n_t)[0, 0]),
        source=where,
    )


def load_npz(path: str | os.PathLike) -> Recording:
    """Load a ``.npz`` recording (see the module docstring for its keys)."""
    where = str(path)
    check_is_file(path, where)
    try:
        columns = read_npz(path)
    except ValueError as err:
        raise RecordingError(str(err)) from None
    return _from_columns(columns, where)


def _csv_rows(path: str | os.PathLike, where: str) -> tuple[list[str], np.ndarray]:
    """Header and ``(rows, columns)`` float64 data of a CSV recording
    (:func:`hhjax.io.read_csv_table`), its errors as :class:`RecordingError`."""
    check_is_file(path, where)
    try:
        header, data = read_csv_table(path)
    except OSError as err:  # a directory, no permission, ...
        raise RecordingError(f"{where}: cannot read the file ({err}).") from None
    except ValueError as err:
        raise RecordingError(str(err)) from None
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise RecordingError(
            f"{where}: column(s) {twice} appear more than once in the header; each "
            "column name must be unique."
        )
    if data.shape[0] < 2:
        raise RecordingError(f"{where}: needs a header row and >= 2 data rows.")
    return header, data


def load_csv(path: str | os.PathLike) -> Recording:
    """Load a one-sweep ``.csv`` recording with unit-bearing column headers.

    Raises:
        RecordingError: missing or unreadable file, not UTF-8, a column name given
            twice, a row whose length differs from the header's or a non-numeric
            value (the message gives the 1-based line), or the checks of the file
            contract (module docstring).
    """
    where = str(path)
    header, data = _csv_rows(path, where)
    columns = dict(zip(header, data.T, strict=True))
    if "sweeps" in columns:  # one sweep: its index, repeated in every row
        columns["sweeps"] = _one_value(columns["sweeps"], "sweeps", where)
    if "dt_ms" in columns:  # one value, repeated in every row
        columns["dt_ms"] = _one_value(columns["dt_ms"], "dt_ms", where)[0]
    return _from_columns(columns, where)


SELECTORS = {".abf": ("channel", "dac"), ".nwb": ("electrode", "stimulus_description")}
"""The options of :func:`load_recording` that select one cell's signals in a file
(and, in an ``.nwb`` file, one protocol's sweeps), by file extension."""


def load_recording(
    path: str | os.PathLike,
    *,
    channel: int | None = None,
    dac: int | None = None,
    electrode: str | None = None,
    stimulus_description: str | None = None,
) -> Recording:
    """Load any supported recording file, chosen by its extension.

    ``.npz`` / ``.csv`` (this module's file contract), ``.abf`` (Axon, via pyabf:
    :func:`load_abf`) and ``.nwb`` (Neurodata Without Borders, via pynwb:
    :func:`load_nwb`).

    Args:
        path: the file.
        channel, dac: for ``.abf`` files, the ADC channel of the membrane
            potential and the DAC of the injected command, 0-based (default: see
            :func:`load_abf`).
        electrode: for ``.nwb`` files, the name of the intracellular electrode
            (the cell) whose series to load (default: see :func:`load_nwb`).
        stimulus_description: for ``.nwb`` files, load only the sweeps of the
            protocol of this name (the series' ``stimulus_description``; default:
            all, see :func:`load_nwb`).

    Raises:
        RecordingError: unsupported extension, a selector given for a file type
            it does not apply to (``.npz``/``.csv`` hold one potential and one
            current per sweep), or the loader's own errors.
        ImportError: the optional package for ``.abf`` / ``.nwb`` is missing.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"`path` must be a file path (str or os.PathLike); got "
            f"{type(path).__name__}."
        )
    suffix = Path(path).suffix.lower()
    loaders = {".npz": load_npz, ".csv": load_csv, ".abf": load_abf, ".nwb": load_nwb}
    if suffix not in loaders:
        raise RecordingError(
            f"{path}: unsupported file type {suffix!r}; expected one of "
            f"{', '.join(sorted(loaders))}."
        )
    given = {
        "channel": channel,
        "dac": dac,
        "electrode": electrode,
        "stimulus_description": stimulus_description,
    }
    given = {k: v for k, v in given.items() if v is not None}
    misplaced = [k for k in given if k not in SELECTORS.get(suffix, ())]
    if misplaced:
        kinds = sorted(
            ext for ext, keys in SELECTORS.items() if set(keys) & set(misplaced)
        )
        raise RecordingError(
            f"{path}: {' and '.join(f'`{k}`' for k in misplaced)} appl"
            f"{'y' if len(misplaced) > 1 else 'ies'} to {' and '.join(kinds)} files "
            f"only; a {suffix} file "
            + (
                "holds one potential and one current per sweep."
                if suffix not in SELECTORS
                else f"takes {' and '.join(f'`{k}`' for k in SELECTORS[suffix])}."
            )
        )
    return loaders[suffix](path, **given)


def save_npz(recording: Recording, path: str | os.PathLike) -> Path:
    """Write a recording in the ``.npz`` file contract (2-D arrays, all sweeps).

    The sampling interval is stored as ``dt_ms`` besides ``t_ms``, so
    :func:`load_npz` gives back ``dt`` (ms) exactly, not re-derived from the
    rounded sample times.

    The file is written atomically (:func:`hhjax.io.write_bytes_atomic`) at
    ``path``, with ``.npz`` appended if its suffix is not ``.npz`` (any case), as
    NumPy does; returns the path written.
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        path = path.with_name(path.name + ".npz")
    key = {"uA/cm2": "i_uA_per_cm2", "pA": "i_pA"}[recording.i_unit]
    extra = {} if recording.c_pf is None else {"c_pF": np.float64(recording.c_pf)}
    buffer = io.BytesIO()
    np.savez(
        buffer,
        t_ms=recording.t,
        dt_ms=np.float64(recording.dt),
        v_mV=recording.v,
        sweeps=np.asarray(recording.sweeps),
        **{key: recording.i},
        **extra,
    )
    return write_bytes_atomic(path, buffer.getvalue())
