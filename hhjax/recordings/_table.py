"""The project's own recording files: ``.npz`` and ``.csv`` with unit-bearing names.

File contract:

* ``.npz``: ``t_ms`` (time, ms), ``v_mV`` (recorded voltage, mV), and either
  ``i_uA_per_cm2`` (µA/cm²) or ``i_pA`` (pA) together with a scalar ``c_pF`` (pF);
  1-D arrays for one sweep, 2-D ``(sweep, time)`` for several (``t_ms`` may be 1-D,
  shared by all sweeps). Optional ``sweeps``: source sweep indices.
* ``.csv``: the same names as column headers, one sweep (``c_pF`` as a column of
  one repeated value, if ``i_pA`` is used).

``i[k]`` applies on ``[t[k], t[k+1])``. The time base must be uniform.
"""

from __future__ import annotations

import csv
import os
import zipfile
from pathlib import Path

import numpy as np

from hhjax.recordings._abf import load_abf
from hhjax.recordings._nwb import load_nwb
from hhjax.recordings._recording import Recording, RecordingError

_CURRENT_KEYS = {"i_uA_per_cm2": "uA/cm2", "i_pA": "pA"}


def _uniform_dt(t: np.ndarray, where: str) -> float:
    t = np.asarray(t, dtype=np.float64)
    if t.ndim == 2:
        if not np.allclose(t, t[:1], rtol=0, atol=1e-9 * np.max(np.abs(t))):
            raise RecordingError(f"{where}: sweeps have different time bases in `t_ms`.")
        t = t[0]
    if t.ndim != 1 or t.size < 2:
        raise RecordingError(f"{where}: `t_ms` must hold >= 2 times; got shape {t.shape}.")
    if not np.all(np.isfinite(t)):
        raise RecordingError(f"{where}: `t_ms` contains NaN/inf.")
    steps = np.diff(t)
    dt = float(np.median(steps))
    if dt <= 0 or np.max(np.abs(steps - dt)) > 1e-6 * dt + 1e-9:
        k = int(np.argmax(np.abs(steps - dt)))
        raise RecordingError(
            f"{where}: time base is not uniform (t_ms[{k + 1}] - t_ms[{k}] = {steps[k]:g} "
            f"ms, median step {dt:g} ms); resample to a uniform grid first."
        )
    return dt


def _from_columns(columns: dict, where: str) -> Recording:
    missing = [k for k in ("t_ms", "v_mV") if k not in columns]
    present = [k for k in _CURRENT_KEYS if k in columns]
    if missing or len(present) != 1:
        need = "t_ms, v_mV and exactly one of i_uA_per_cm2 or i_pA (+ c_pF)"
        raise RecordingError(
            f"{where}: expected columns {need}; found {sorted(columns)}."
        )
    t = np.asarray(columns["t_ms"], dtype=np.float64)
    dt = _uniform_dt(t, where)
    unit = _CURRENT_KEYS[present[0]]
    c_pf = None
    if "c_pF" in columns:
        c = np.unique(np.asarray(columns["c_pF"], dtype=np.float64))
        if c.size != 1:
            raise RecordingError(f"{where}: `c_pF` must be one scalar; got {c}.")
        c_pf = float(c[0])
    elif unit == "pA":
        raise RecordingError(f"{where}: `i_pA` needs the cell capacitance `c_pF` (pF).")
    v = np.asarray(columns["v_mV"], dtype=np.float64)
    n_t = t.shape[-1]
    if v.shape[-1] != n_t:
        raise RecordingError(
            f"{where}: `v_mV` has {v.shape[-1]} samples per sweep but `t_ms` has {n_t}."
        )
    sweeps = tuple(int(s) for s in np.atleast_1d(columns.get("sweeps", ())))
    return Recording(
        dt=dt,
        v=v,
        i=np.asarray(columns[present[0]], dtype=np.float64),
        i_unit=unit,
        c_pf=c_pf,
        sweeps=sweeps,
        t0=float(t.reshape(-1, n_t)[0, 0]),
        source=where,
    )


def load_npz(path: str | os.PathLike) -> Recording:
    """Load a ``.npz`` recording (see the module docstring for its keys)."""
    where = str(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            columns = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise RecordingError(f"{where}: no such file.") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:  # corrupt file
        raise RecordingError(f"{where}: not a readable .npz file ({err}).") from None
    return _from_columns(columns, where)


def load_csv(path: str | os.PathLike) -> Recording:
    """Load a one-sweep ``.csv`` recording with unit-bearing column headers."""
    where = str(path)
    try:
        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        raise RecordingError(f"{where}: no such file.") from None
    except UnicodeDecodeError:
        raise RecordingError(f"{where}: not a text CSV file.") from None
    if len(rows) < 3:
        raise RecordingError(f"{where}: needs a header row and >= 2 data rows.")
    header = [h.strip() for h in rows[0]]
    try:
        data = np.array([[float(x) for x in r] for r in rows[1:] if r], dtype=np.float64)
    except ValueError as err:
        raise RecordingError(f"{where}: non-numeric value ({err}).") from None
    if data.ndim != 2 or data.shape[1] != len(header):
        raise RecordingError(f"{where}: every row must have {len(header)} values.")
    return _from_columns(dict(zip(header, data.T, strict=True)), where)


def load_recording(path: str | os.PathLike) -> Recording:
    """Load any supported recording file, chosen by its extension.

    ``.npz`` / ``.csv`` (this module's file contract), ``.abf`` (Axon, via pyabf:
    :func:`load_abf`) and ``.nwb`` (Neurodata Without Borders, via pynwb:
    :func:`load_nwb`).

    Raises:
        RecordingError: unsupported extension, or the loader's own errors.
        ImportError: the optional package for ``.abf`` / ``.nwb`` is missing.
    """
    suffix = Path(path).suffix.lower()
    loaders = {".npz": load_npz, ".csv": load_csv, ".abf": load_abf, ".nwb": load_nwb}
    if suffix not in loaders:
        raise RecordingError(
            f"{path}: unsupported file type {suffix!r}; expected one of "
            f"{', '.join(sorted(loaders))}."
        )
    return loaders[suffix](path)


def save_npz(recording: Recording, path: str | os.PathLike) -> None:
    """Write a recording in the ``.npz`` file contract (2-D arrays, all sweeps)."""
    key = {"uA/cm2": "i_uA_per_cm2", "pA": "i_pA"}[recording.i_unit]
    extra = {} if recording.c_pf is None else {"c_pF": np.float64(recording.c_pf)}
    np.savez(
        path,
        t_ms=recording.t,
        v_mV=recording.v,
        sweeps=np.asarray(recording.sweeps),
        **{key: recording.i},
        **extra,
    )
