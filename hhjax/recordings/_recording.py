"""The :class:`Recording` data type: current-clamp sweeps with units."""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Sequence

import numpy as np

CURRENT_UNITS = ("uA/cm2", "pA")


class RecordingError(ValueError):
    """A recording (file or arrays) is malformed; the message says what and where."""


def check_is_file(path: str | os.PathLike, where: str) -> None:
    """A :class:`RecordingError` unless ``path`` is an existing file (``where``
    names it in the message): "no such file", or that it is a directory."""
    if os.path.isdir(path):
        raise RecordingError(f"{where}: is a directory, not a recording file.")
    if not os.path.isfile(path):
        raise RecordingError(f"{where}: no such file.")


def real_number(
    x, name: str, unit: str, where: str = "", *, positive: bool = False
) -> float:
    """``x`` (a Python or NumPy real number, or a 0-d array) as a finite float.

    Raises:
        RecordingError: naming ``name`` (prefixed by ``where``), when ``x`` is not a
            real number (a string, a bool, an array), is NaN/inf, or is <= 0 when
            ``positive``.
    """
    a = np.asarray(x)
    if a.ndim != 0 or a.dtype.kind not in "iuf":
        raise RecordingError(
            f"{where}`{name}` must be a number ({unit}); got {type(x).__name__} {x!r}."
        )
    value = float(a)
    if not np.isfinite(value) or (positive and value <= 0):
        need = "a finite number > 0" if positive else "a finite number"
        raise RecordingError(f"{where}`{name}` must be {need} ({unit}); got {value}.")
    return value


def sweep_array(x, name: str, unit: str, where: str = "") -> np.ndarray:
    """``x``, real numbers in ``unit``, ``(time,)`` or ``(sweep, time)``, as a
    finite float64 ``(sweep, time)`` array.

    Raises:
        RecordingError: naming ``name`` (prefixed by ``where``), when ``x`` is not
            real numbers (text, bool, complex, objects), is not 1-D or 2-D with
            >= 1 sweep and >= 2 samples, or holds NaN/inf.
    """
    try:
        x = np.asarray(x)
    except ValueError:  # ragged nested lists
        raise RecordingError(
            f"{where}`{name}` must be (time,) or (sweep, time) real numbers "
            f"({unit}); got sweeps of different lengths."
        ) from None
    if x.dtype.kind not in "iuf":
        raise RecordingError(
            f"{where}`{name}` must be real numbers ({unit}); got dtype {x.dtype}."
        )
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 2:
        raise RecordingError(
            f"{where}`{name}` must be (time,) or (sweep, time) with >= 1 sweep and "
            f">= 2 samples ({unit}); got shape {x.shape}."
        )
    bad = ~np.isfinite(x)
    if bad.any():
        s, k = np.argwhere(bad)[0]
        raise RecordingError(
            f"{where}`{name}` has {int(bad.sum())} NaN/inf samples (first: sweep {s}, "
            f"sample {k}); expected finite values ({unit})."
        )
    return x.astype(np.float64)


def _sweep_indices(sweeps, n_sweeps: int, where: str) -> tuple[int, ...]:
    """``sweeps`` (default ``0..n_sweeps-1``) checked: distinct whole numbers >= 0."""
    try:
        s = np.asarray(sweeps)
    except ValueError:  # ragged nested lists
        s = np.asarray(None)
    if s.ndim == 1 and s.size == 0:
        s = np.arange(n_sweeps)
    whole = s.dtype.kind in "iu" or (s.dtype.kind == "f" and np.all(s == np.round(s)))
    if s.ndim != 1 or not whole or np.any(s < 0) or np.unique(s).size != s.size:
        shown = sweeps.tolist() if isinstance(sweeps, np.ndarray) else sweeps
        raise RecordingError(
            f"{where}`sweeps` must be a sequence of distinct 0-based sweep indices "
            f"(whole numbers >= 0), one per sweep; got {type(sweeps).__name__} "
            f"{shown!r}."
        )
    if s.size != n_sweeps:
        raise RecordingError(f"{where}{s.size} sweep indices for {n_sweeps} sweeps.")
    return tuple(int(k) for k in s)


@dataclasses.dataclass(frozen=True, eq=False)
class Recording:
    """Current-clamp sweeps sampled on one uniform time base.

    Sample ``k`` of every sweep is at ``t0 + k·dt`` ms; the injected current
    ``i[s, k]`` applies on ``[t_k, t_{k+1})`` (the convention of
    :func:`hhjax.simulate`).

    Attributes:
        dt: sampling interval, ms.
        v: recorded membrane potential, mV, shape ``(n_sweeps, n_samples)``.
        i: injected current, in ``i_unit``, shape ``(n_sweeps, n_samples)``,
            positive = depolarising (into the cell).
        i_unit: ``"uA/cm2"`` (current density) or ``"pA"`` (whole cell).
        c_pf: whole-cell capacitance, pF; needed to turn pA into µA/cm².
        sweeps: index of each sweep in its source file, 0-based.
        t0: time of the first sample, ms.
        source: where the data came from (file name), used in messages.
    """

    dt: float
    v: np.ndarray
    i: np.ndarray
    i_unit: str = "uA/cm2"
    c_pf: float | None = None
    sweeps: tuple[int, ...] = ()
    t0: float = 0.0
    source: str = ""

    def __post_init__(self) -> None:
        where = f"{self.source}: " if self.source else ""
        dt = real_number(self.dt, "dt", "ms", where, positive=True)
        t0 = real_number(self.t0, "t0", "ms", where)
        if self.i_unit not in CURRENT_UNITS:
            raise RecordingError(
                f"{where}current unit must be one of {CURRENT_UNITS}; got {self.i_unit!r}."
            )
        v = sweep_array(self.v, "v", "mV", where)
        i = sweep_array(self.i, "i", self.i_unit, where)
        if v.shape != i.shape:
            raise RecordingError(
                f"{where}voltage and current differ in shape: v {v.shape}, i {i.shape}; "
                "each sweep needs one current sample per voltage sample."
            )
        if v.shape[1] < v.shape[0]:
            warnings.warn(
                f"{where}`v` and `i` hold {v.shape[0]} sweeps of {v.shape[1]} "
                "samples each: recordings are (n_sweeps, n_samples), sweeps first, "
                "while hhjax.simulate's traces and hhjax.stimulus's batches are time "
                "first, (samples, *batch); pass those transposed (e.g. trace.v.T).",
                UserWarning,
                stacklevel=3,
            )
        if 0.0 < np.max(np.abs(v)) < 1.0:
            warnings.warn(
                f"{where}`v` stays within ±1 mV (|v| ≤ {np.max(np.abs(v)):.3g}): a "
                "membrane potential in volts? Recordings are in mV.",
                UserWarning,
                stacklevel=3,
            )
        if dt < 1e-3:
            warnings.warn(
                f"{where}dt = {dt:g} ms, a sampling rate above 1 MHz: a time axis in "
                "seconds? Recordings are in ms.",
                UserWarning,
                stacklevel=3,
            )
        c_pf = None
        if self.c_pf is not None:
            c_pf = real_number(self.c_pf, "c_pf", "pF", where, positive=True)
        sweeps = _sweep_indices(self.sweeps, v.shape[0], where)
        object.__setattr__(self, "v", v)
        object.__setattr__(self, "i", i)
        object.__setattr__(self, "dt", dt)
        object.__setattr__(self, "t0", t0)
        object.__setattr__(self, "c_pf", c_pf)
        object.__setattr__(self, "sweeps", sweeps)

    @property
    def n_sweeps(self) -> int:
        return self.v.shape[0]

    @property
    def n_samples(self) -> int:
        return self.v.shape[1]

    @property
    def t(self) -> np.ndarray:
        """Sample times, ms, shape ``(n_samples,)``."""
        return self.t0 + self.dt * np.arange(self.n_samples)

    def current_density(self, c_m: float = 1.0) -> np.ndarray:
        """Injected current in µA/cm², shape ``(n_sweeps, n_samples)``.

        pA are divided by the cell capacitance (pF) and multiplied by the specific
        capacitance ``c_m`` (µF/cm²): the membrane area is ``c_pf / c_m``.

        Raises:
            RecordingError: ``c_m`` is not a finite number > 0, or the current is in
                pA and ``c_pf`` is unknown.
        """
        where = f"{self.source}: " if self.source else ""
        c_m = real_number(c_m, "c_m", "µF/cm²", where, positive=True)
        if self.i_unit == "uA/cm2":
            return self.i
        if self.c_pf is None:
            add = {
                ".npz": "add it to the file as a number `c_pF` (pF), or ",
                ".csv": "add a column `c_pF` (pF, the same value in every row), or ",
            }.get(os.path.splitext(str(self.source).lower())[1], "")
            raise RecordingError(
                f"{self.source or 'recording'}: current is in pA but the cell capacitance "
                "is unknown; "
                + add
                + "give `c_pf` (pF), e.g. recording.replace(c_pf=cell_properties("
                "recording).c_pf) with the capacitance from the hyperpolarising step "
                "(fitting.load_data takes `c_pf` too)."
            )
        return self.i * (c_m / self.c_pf)

    def replace(self, **changes) -> Recording:
        """A copy with some attributes changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def _sweep_list(self) -> str:
        """The sweep numbers for a message: ``0..29`` when consecutive, else
        listed (``3, 7``; at most 10, then ``...``)."""
        first, last = self.sweeps[0], self.sweeps[-1]
        if list(self.sweeps) == list(range(first, last + 1)):
            return f"{first}..{last}"
        shown = ", ".join(str(s) for s in self.sweeps[:10])
        return shown + (", ..." if len(self.sweeps) > 10 else "")

    def select(self, sweeps: Sequence[int]) -> Recording:
        """The sweeps with these source-file indices (0-based), in the given order.

        Raises:
            RecordingError: ``sweeps`` is empty, or names a sweep not in the
                recording (or one twice).
        """
        where = f"{self.source or 'recording'}: "
        try:
            if isinstance(sweeps, (str, bytes)):
                raise TypeError
            sweeps = list(sweeps)
        except TypeError:
            raise RecordingError(
                f"{where}`sweeps` must be a sequence of 0-based sweep indices; got "
                f"{type(sweeps).__name__} {sweeps!r}."
            ) from None
        if len(sweeps) == 0:
            raise RecordingError(
                f"{self.source or 'recording'}: `sweeps` is empty; select at least "
                f"one of the sweeps {self._sweep_list()}."
            )
        rows = []
        for s in sweeps:
            if s not in self.sweeps:
                raise RecordingError(
                    f"{self.source or 'recording'}: no sweep {s}; available sweeps are "
                    f"{self._sweep_list()}."
                )
            rows.append(self.sweeps.index(s))
        return self.replace(v=self.v[rows], i=self.i[rows], sweeps=tuple(sweeps))

    def crop(self, start: float, stop: float) -> Recording:
        """Samples with ``start <= t < stop`` (ms; either may be infinite)."""
        for name, x in (("start", start), ("stop", stop)):
            a = np.asarray(x)
            if a.ndim != 0 or a.dtype.kind not in "iuf" or np.isnan(a):
                raise RecordingError(
                    f"{self.source or 'recording'}: `{name}` must be a time in ms; "
                    f"got {type(x).__name__} {x!r}."
                )
        keep = (self.t >= start - 1e-9 * self.dt) & (self.t < stop - 1e-9 * self.dt)
        if keep.sum() < 2:
            raise RecordingError(
                f"{self.source or 'recording'}: window [{start}, {stop}) ms holds fewer "
                f"than 2 samples of the recording ({self.t[0]:g}..{self.t[-1]:g} ms)."
            )
        first = int(np.argmax(keep))
        return self.replace(
            v=self.v[:, keep], i=self.i[:, keep], t0=float(self.t[first])
        )
