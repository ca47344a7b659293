"""Axon Binary Format (``.abf``, versions 1 and 2) current-clamp loader via pyabf.

The recorded voltage comes from one ADC channel (mV); the injected current is the
command waveform of the DAC with the same index, rebuilt by pyabf from the
protocol's epoch table (``sweepC``) and converted to pA.
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType

import numpy as np

from hhjax._checks import is_integer
from hhjax.recordings._recording import Recording, RecordingError, check_is_file

# Multiply a value in the key's unit to get mV / pA.
_TO_MV = {"mV": 1.0, "V": 1e3, "uV": 1e-3, "µV": 1e-3}
_TO_PA = {"pA": 1.0, "nA": 1e3, "fA": 1e-3, "uA": 1e6, "µA": 1e6, "A": 1e12}


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import an optional dependency, or explain which pip extra provides it.

    Args:
        module: module name, e.g. ``"pyabf"``.
        extra: the hhjax extra that installs it, e.g. ``"abf"``.
        what: what it is needed for, e.g. ``"reading .abf files"``.

    Raises:
        ImportError: the module is not installed; the message gives the command.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{what} needs the optional package {module!r}; install it with "
            f"`pip install 'hhjax[{extra}]'` (or `pip install {module}`)."
        ) from None


def _clean(unit: object) -> str:
    """A unit string from the header without NUL/space padding."""
    return str(unit).strip("\x00 ")


def _open(path: str | os.PathLike, where: str):
    pyabf = require("pyabf", "abf", "Reading .abf files")
    check_is_file(path, where)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            abf = pyabf.ABF(str(path), loadData=True)
    except Exception as err:  # noqa: BLE001 - junk bytes make pyabf raise anything
        raise RecordingError(
            f"{where}: not a readable ABF file, or truncated/corrupt "
            f"({type(err).__name__}: {err})."
        ) from None
    expected = abf.sweepCount * abf.sweepPointCount
    if abf.data.ndim != 2 or abf.data.shape[1] < expected or abf.sweepPointCount < 2:
        raise RecordingError(
            f"{where}: truncated ABF file: the header announces {abf.sweepCount} "
            f"sweeps of {abf.sweepPointCount} samples but the data hold "
            f"{abf.data.shape[-1]} samples per channel."
        )
    return abf


def _voltage_channel(abf, channel: int | None, where: str) -> int:
    units = [_clean(u) for u in abf.adcUnits]
    if channel is not None:
        if not is_integer(channel) or not 0 <= channel < len(units):
            raise RecordingError(
                f"{where}: no ADC channel {channel!r}; the file has channels "
                f"0..{len(units) - 1} with units {units}."
            )
        candidates = [channel]
    else:
        candidates = [k for k, u in enumerate(units) if u in _TO_MV]
    if not candidates or units[candidates[0]] not in _TO_MV:
        if any(u in _TO_PA for u in units):
            dac_units = [_clean(u) for u in abf.dacUnits]
            raise RecordingError(
                f"{where}: this looks like a voltage-clamp recording (ADC units "
                f"{units}, command units {dac_units}); hhjax needs "
                "current-clamp sweeps with the membrane potential in mV."
            )
        raise RecordingError(
            f"{where}: no membrane-potential channel: ADC units are {units} but a "
            f"voltage unit ({', '.join(_TO_MV)}) is needed."
        )
    return candidates[0]


def _command_scale(abf, channel: int, where: str) -> float:
    dac_units = [_clean(u) for u in abf.dacUnits]
    if channel >= len(dac_units):
        raise RecordingError(
            f"{where}: ADC channel {channel} has no DAC command channel (the file "
            f"has {len(dac_units)}); cannot rebuild the injected current."
        )
    unit = dac_units[channel]
    if unit in _TO_MV:
        raise RecordingError(
            f"{where}: the command of channel {channel} is in {unit}: a "
            "voltage-clamp protocol; hhjax needs current clamp (command in pA)."
        )
    if unit not in _TO_PA:
        raise RecordingError(
            f"{where}: the command of channel {channel} has unit {unit!r}; a "
            f"current unit ({', '.join(_TO_PA)}) is needed."
        )
    return _TO_PA[unit]


def _sweep(abf, sweep: int, channel: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """V and the command of one sweep, in the file's units; a corrupt header
    (epochs longer than the sweep, pyabf failing) is a :class:`RecordingError`."""
    corrupt = f"{where}: corrupt ABF file: sweep {sweep} cannot be read"
    failures = (ValueError, IndexError, TypeError, KeyError, MemoryError)
    try:
        abf.setSweep(sweep, channel=channel)
        ends = list(getattr(abf.sweepEpochs, "p2s", None) or [0])
    except failures as err:
        raise RecordingError(f"{corrupt} ({type(err).__name__}: {err}).") from None
    if max(ends) > 2 * abf.sweepPointCount:  # before pyabf allocates them
        raise RecordingError(
            f"{corrupt}: its protocol's epochs end at sample {max(ends)}, beyond "
            f"the sweep's {abf.sweepPointCount} samples."
        )
    try:
        v = np.asarray(abf.sweepY, dtype=np.float64)
        command = np.asarray(abf.sweepC, dtype=np.float64)
    except failures as err:
        raise RecordingError(f"{corrupt} ({type(err).__name__}: {err}).") from None
    if command.shape != v.shape or not np.all(np.isfinite(command)):
        raise RecordingError(
            f"{where}: the command waveform of sweep {sweep} cannot be rebuilt "
            "from the protocol (stimulus file missing or unsupported)."
        )
    return v, command


def load_abf(path: str | os.PathLike, *, channel: int | None = None) -> Recording:
    """Load the current-clamp sweeps of an ABF 1 or ABF 2 file.

    Args:
        path: the ``.abf`` file.
        channel: ADC channel index holding the membrane potential; default the
            first channel recorded in a voltage unit.

    Returns:
        A :class:`Recording` with ``v`` in mV and ``i`` in pA (``i_unit="pA"``,
        ``c_pf=None``: estimate it with :func:`hhjax.recordings.cell_properties`),
        ``dt`` in ms from the sample rate, one row per sweep (``sweeps`` 0-based).
        The current is the protocol's command waveform (holding level included),
        positive = depolarising.

    Raises:
        ImportError: pyabf is not installed (``pip install 'hhjax[abf]'``).
        RecordingError: missing, corrupt or truncated file; voltage-clamp or
            unit-less channels; variable-length sweeps; a command waveform that
            cannot be rebuilt (e.g. a missing stimulus file).
    """
    where = str(path)
    abf = _open(path, where)
    ch = _voltage_channel(abf, channel, where)
    v_scale = _TO_MV[_clean(abf.adcUnits[ch])]
    i_scale = _command_scale(abf, ch, where)
    synch = getattr(abf, "_synchArraySection", None)
    if synch is not None and abf.sweepCount > 1 and len(set(synch.lLength)) > 1:
        raise RecordingError(
            f"{where}: sweeps have different lengths (event-driven acquisition); "
            "only fixed-length sweeps are supported."
        )
    v = np.empty((abf.sweepCount, abf.sweepPointCount))
    i = np.empty_like(v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in range(abf.sweepCount):
            v[s], i[s] = _sweep(abf, s, ch, where)
    return Recording(
        dt=1000.0 / float(abf.dataRate),
        v=v * v_scale,
        i=i * i_scale,
        i_unit="pA",
        sweeps=tuple(range(abf.sweepCount)),
        source=where,
    )
