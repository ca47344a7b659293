"""The data a fit sees: sweeps of V and injected current, windows and weights.

:class:`FitData` wraps a :class:`hhjax.recordings.Recording` (validated sweeps with
units) and adds what fitting needs: the current as a density in µA/cm², a mask of
the samples the loss uses (fitting windows, excluded artefacts) and one weight per
sweep. :class:`FitArrays` is its jit-friendly form, time first like every trace.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import Array

import hhjax
from hhjax.recordings import Recording, RecordingError, load_recording

Window = tuple[float, float]


class FitArrays(NamedTuple):
    """Arrays of a :class:`FitData`, time first, as the losses receive them.

    ``S`` is the number of sweeps, ``T`` the number of samples.
    """

    t: Array  # sample times from the first sample, ms, (T,)
    v: Array  # recorded membrane potential, mV, (T, S)
    i: Array  # injected current density, uA/cm^2 (inward positive), (T, S)
    w: Array  # weight of each sample in the loss (mask x sweep weight), (T, S)


def _window_mask(t: np.ndarray, windows: Sequence[Window] | None, name: str, dt: float):
    spans = []
    for item in windows or ():
        try:
            start, stop = (float(x) for x in item)
        except (TypeError, ValueError):
            raise ValueError(
                f"`{name}` must be a list of (start, stop) pairs in ms; got {item!r}."
            ) from None
        if not (np.isfinite(start) and np.isfinite(stop) and start < stop):
            raise ValueError(
                f"Each `{name}` window needs finite start < stop (ms); got "
                f"({start:g}, {stop:g})."
            )
        spans.append((start, stop))
    mask = np.zeros(t.shape, bool)
    for start, stop in spans:
        mask |= (t >= start - 1e-9 * dt) & (t < stop - 1e-9 * dt)
    return mask, bool(spans)


@dataclasses.dataclass(frozen=True, eq=False)
class FitData:
    """Sweeps to fit, sharing parameters, with fitting windows and sweep weights.

    Attributes:
        recording: the (selected) sweeps with units.
        dt: sampling interval, ms (also the simulation step of the fit).
        v: membrane potential, mV, ``(n_sweeps, n_samples)``.
        i: injected current density, µA/cm², ``(n_sweeps, n_samples)``; converted
            from pA with ``i · c_m / c_pF`` where needed.
        mask: samples the losses and metrics use, ``(n_sweeps, n_samples)`` bool.
        weights: weight of each sweep in the loss, ``(n_sweeps,)``.
        c_m: specific capacitance used to convert pA, µF/cm² (``None`` if the
            recording is a density already).
    """

    recording: Recording
    dt: float
    v: np.ndarray
    i: np.ndarray
    mask: np.ndarray
    weights: np.ndarray
    c_m: float | None = None

    @classmethod
    def from_recording(
        cls,
        recording: Recording,
        *,
        sweeps: Sequence[int] | None = None,
        windows: Sequence[Window] | None = None,
        exclude: Sequence[Window] | None = None,
        weights: Sequence[float] | None = None,
        c_m: float = 1.0,
    ) -> FitData:
        """Build fit data from a recording.

        Args:
            recording: validated sweeps (:class:`hhjax.recordings.Recording`).
            sweeps: source-file indices of the sweeps to use (0-based), default all.
            windows: ``[(start, stop), ...]`` in ms (recording time): the loss uses
                only samples inside one of them; default the whole sweep. The
                simulation still runs over the whole sweep.
            exclude: ``[(start, stop), ...]`` in ms removed from the loss
                (stimulus artefacts, ...).
            weights: one non-negative weight per selected sweep (default 1 each).
            c_m: specific capacitance, µF/cm², to turn a current in pA into a
                density (``I · c_m / c_pF``); ignored for µA/cm² data.

        Raises:
            RecordingError: unknown sweeps, or pA data without a capacitance.
            ValueError: malformed windows or weights, or nothing left to fit.
        """
        if sweeps is not None:
            recording = recording.select(list(sweeps))
        i = recording.current_density(c_m)
        where = f"{recording.source}: " if recording.source else ""
        peak = float(np.max(np.abs(i)))
        if peak > hhjax.MAX_PLAUSIBLE_CURRENT:
            cause = (
                f"is c_pF = {recording.c_pf:g} pF the cell's capacitance?"
                if recording.i_unit == "pA"
                else "is it in pA? Give it as i_pA with the cell's c_pF "
                "(FitData.from_arrays: i_unit='pA', c_pf=...)."
            )
            raise ValueError(
                f"{where}the injected current reaches |I| = {peak:.4g} uA/cm^2, "
                f"beyond any cell's range (<= {hhjax.MAX_PLAUSIBLE_CURRENT:g}; "
                f"simulate refuses it): {cause}"
            )
        t = recording.t
        included, any_window = _window_mask(t, windows, "windows", recording.dt)
        excluded, _ = _window_mask(t, exclude, "exclude", recording.dt)
        mask = (included if any_window else np.ones(t.shape, bool)) & ~excluded
        mask = np.broadcast_to(mask, recording.v.shape).copy()
        n = recording.n_sweeps
        if weights is None:
            w = np.ones(n)
        else:
            w = np.asarray(weights, dtype=np.float64).ravel()
            if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0):
                raise ValueError(
                    f"`weights` must be {n} finite non-negative numbers, one per sweep; "
                    f"got {list(np.atleast_1d(weights))}."
                )
        if mask.sum() < 2 or not np.any(w > 0):
            raise ValueError(
                f"{where}the fitting windows and weights leave no samples to fit "
                f"(recording spans {t[0]:g}..{t[-1]:g} ms)."
            )
        return cls(
            recording=recording,
            dt=recording.dt,
            v=recording.v,
            i=np.asarray(i, dtype=np.float64),
            mask=mask,
            weights=w,
            c_m=None if recording.i_unit == "uA/cm2" else float(c_m),
        )

    @classmethod
    def from_arrays(
        cls,
        v: np.ndarray,
        i_ext: np.ndarray,
        dt: float,
        *,
        i_unit: str = "uA/cm2",
        c_pf: float | None = None,
        **kwargs,
    ) -> FitData:
        """Fit data from arrays: ``v`` (mV) and ``i_ext`` (µA/cm², or pA with
        ``i_unit="pA"`` and the cell capacitance ``c_pf`` in pF), each
        ``(n_samples,)`` or ``(n_sweeps, n_samples)``, sampled every ``dt`` ms.
        Other keyword arguments as :meth:`from_recording` (``c_m`` converts pA)."""
        recording = Recording(
            dt=dt, v=v, i=i_ext, i_unit=i_unit, c_pf=c_pf, source="arrays"
        )
        return cls.from_recording(recording, **kwargs)

    def with_c_m(self, c_m: float) -> FitData:
        """These sweeps with a current in pA converted with the specific
        capacitance ``c_m`` (µF/cm²), ``i · c_m / c_pF``, as a model with that
        ``c_m`` must see it. Data in µA/cm², or converted with this ``c_m``
        already, are returned as they are; windows, exclusions and sweep weights
        are kept.

        Raises:
            RecordingError: ``c_m`` is not a finite number > 0.
        """
        if self.c_m is None or self.c_m == c_m:
            return self
        i = self.recording.current_density(c_m)
        return dataclasses.replace(self, i=np.asarray(i, np.float64), c_m=float(c_m))

    @property
    def n_sweeps(self) -> int:
        return self.v.shape[0]

    @property
    def n_samples(self) -> int:
        return self.v.shape[1]

    @property
    def sweeps(self) -> tuple[int, ...]:
        """Index of each sweep in its source file."""
        return self.recording.sweeps

    @property
    def t(self) -> np.ndarray:
        """Sample times, ms (recording time), ``(n_samples,)``."""
        return self.recording.t

    def arrays(self, dtype=jnp.float64) -> FitArrays:
        """The data as :class:`FitArrays` of ``dtype`` (time first)."""
        w = self.mask * self.weights[:, None]
        return FitArrays(
            t=jnp.asarray(self.t - self.t[0], dtype),
            v=jnp.asarray(self.v.T, dtype),
            i=jnp.asarray(self.i.T, dtype),
            w=jnp.asarray(w.T, dtype),
        )

    def fingerprint(self) -> str:
        """A short hash of the data (values, windows, weights), to match
        checkpoints to the data they were made from."""
        import hashlib

        h = hashlib.sha256()
        for array in (self.v, self.i, self.mask, self.weights, np.array([self.dt])):
            h.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
        return h.hexdigest()[:16]


def load_data(
    path: str | os.PathLike,
    *,
    sweeps: Sequence[int] | None = None,
    windows: Sequence[Window] | None = None,
    exclude: Sequence[Window] | None = None,
    weights: Sequence[float] | None = None,
    c_m: float = 1.0,
    c_pf: float | None = None,
    channel: int | None = None,
    dac: int | None = None,
    electrode: str | None = None,
    stimulus_description: str | None = None,
) -> FitData:
    """Load a recording file (``.npz``, ``.csv``, ``.abf`` or ``.nwb``, see
    :func:`hhjax.recordings.load_recording`) as :class:`FitData`. Arguments as
    :meth:`FitData.from_recording`, and:

    Args:
        c_pf: whole-cell capacitance, pF, for a current in pA that the file gives
            no capacitance for (ABF and NWB files: e.g.
            ``hhjax.recordings.cell_properties(recording).c_pf``); replaces the
            file's. Whole-cell step recordings are best fitted with
            ``hhjax fit RECORDING.abf`` (docs/real_cells.md), which also
            corrects the bridge balance and the baseline drift.
        channel, dac: for ``.abf`` files, the ADC channel of the membrane
            potential and the DAC of the command, 0-based
            (:func:`hhjax.recordings.load_abf`).
        electrode: for ``.nwb`` files, the intracellular electrode (the cell)
            to load (:func:`hhjax.recordings.load_nwb`).
        stimulus_description: for ``.nwb`` files, the protocol whose sweeps to
            load (:func:`hhjax.recordings.load_nwb`).

    Raises:
        RecordingError: the file is missing, corrupt or violates the file
            contract, or a current in pA has no capacitance.
    """
    recording = load_recording(
        path,
        channel=channel,
        dac=dac,
        electrode=electrode,
        stimulus_description=stimulus_description,
    )
    if c_pf is not None:
        recording = recording.replace(c_pf=c_pf)
    return FitData.from_recording(
        recording,
        sweeps=sweeps,
        windows=windows,
        exclude=exclude,
        weights=weights,
        c_m=c_m,
    )


__all__ = ["FitArrays", "FitData", "RecordingError", "load_data"]
