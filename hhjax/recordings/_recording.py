"""The :class:`Recording` data type: current-clamp sweeps with units."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

CURRENT_UNITS = ("uA/cm2", "pA")


class RecordingError(ValueError):
    """A recording (file or arrays) is malformed; the message says what and where."""


def _as_sweeps(x: np.ndarray, name: str, where: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] < 2:
        raise RecordingError(
            f"{where}`{name}` must be (time,) or (sweep, time) with >= 2 samples; got "
            f"shape {x.shape}."
        )
    bad = ~np.isfinite(x)
    if bad.any():
        s, k = np.argwhere(bad)[0]
        raise RecordingError(
            f"{where}`{name}` has {int(bad.sum())} NaN/inf samples (first: sweep {s}, "
            f"sample {k})."
        )
    return x


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
        if not (np.isscalar(self.dt) and np.isfinite(self.dt) and self.dt > 0):
            raise RecordingError(f"{where}`dt` must be a positive time in ms; got {self.dt}.")
        v = _as_sweeps(self.v, "v", where)
        i = _as_sweeps(self.i, "i", where)
        if v.shape != i.shape:
            raise RecordingError(
                f"{where}voltage and current differ in shape: v {v.shape}, i {i.shape}; "
                "each sweep needs one current sample per voltage sample."
            )
        if self.i_unit not in CURRENT_UNITS:
            raise RecordingError(
                f"{where}current unit must be one of {CURRENT_UNITS}; got {self.i_unit!r}."
            )
        if self.c_pf is not None and not (np.isfinite(self.c_pf) and self.c_pf > 0):
            raise RecordingError(f"{where}`c_pf` must be > 0 pF; got {self.c_pf}.")
        sweeps = tuple(int(s) for s in self.sweeps) or tuple(range(v.shape[0]))
        if len(sweeps) != v.shape[0]:
            raise RecordingError(
                f"{where}{len(sweeps)} sweep indices for {v.shape[0]} sweeps."
            )
        object.__setattr__(self, "v", v)
        object.__setattr__(self, "i", i)
        object.__setattr__(self, "dt", float(self.dt))
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
        """
        if self.i_unit == "uA/cm2":
            return self.i
        if self.c_pf is None:
            raise RecordingError(
                f"{self.source or 'recording'}: current is in pA but the cell capacitance "
                "is unknown; give `c_pf` (pF), e.g. from the hyperpolarising step."
            )
        return self.i * (c_m / self.c_pf)

    def replace(self, **changes) -> Recording:
        """A copy with some attributes changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def select(self, sweeps: Sequence[int]) -> Recording:
        """The sweeps with these source-file indices (0-based), in the given order."""
        rows = []
        for s in sweeps:
            if s not in self.sweeps:
                raise RecordingError(
                    f"{self.source or 'recording'}: no sweep {s}; available sweeps are "
                    f"{self.sweeps[0]}..{self.sweeps[-1]}."
                )
            rows.append(self.sweeps.index(s))
        return self.replace(v=self.v[rows], i=self.i[rows], sweeps=tuple(sweeps))

    def crop(self, start: float, stop: float) -> Recording:
        """Samples with ``start <= t < stop`` (ms)."""
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
