"""Axon Binary Format (``.abf``, versions 1 and 2) current-clamp loader via pyabf.

The recorded voltage comes from one ADC channel (mV); the injected current is the
command waveform of the DAC with the same index (or the DAC given), rebuilt from
the protocol's epoch table by pyabf (its ``EpochTable``, which gives ``sweepC``)
or the DAC's holding level when it outputs no waveform, and converted to pA. A
command read from a stimulus file is refused: pyabf would repeat that file's first
sweep, unscaled, in every sweep.

Two header values are read here rather than taken from pyabf 2.3: the sampling
interval (pyabf truncates the sample rate to whole Hz, so a 6 kHz file, 166.67 µs,
got dt 1000/5999 ms) and, in ABF 1 files, the DAC holding level (pyabf uses the
first epoch's level, so a protocol starting with a -100 pA epoch held -100 pA
before and after the epochs).
"""

from __future__ import annotations

import importlib
import os
import struct
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


def _abf1_holding(abf, path: str | os.PathLike, where: str) -> None:
    """Give an ABF 1 file's ``holdingCommand`` its DAC holding levels.

    pyabf 2.3 takes them from ``fEpochInitLevel`` (the epoch levels); the ABF 1
    header stores ``fDACHoldingLevel`` (4 floats, the DACs' units) at byte 1394.
    """
    if abf.abfVersion["major"] != 1:
        return
    with open(path, "rb") as fh:
        fh.seek(1394)
        raw = fh.read(16)
    if len(raw) != 16:
        raise RecordingError(f"{where}: truncated ABF file (header cut short).")
    levels = list(struct.unpack("<4f", raw))
    abf.holdingCommand = [
        level if np.isfinite(level) and abs(level) <= 1e6 else np.nan
        for level in levels
    ]


def _sample_interval_ms(abf, where: str) -> float:
    """Sampling interval of each channel, ms, from the header's interval (µs).

    A rate within float32 rounding of whole Hz (the header stores the interval as
    float32: 6 kHz is 166.66667 µs) is taken as that rate.
    """
    if abf.abfVersion["major"] == 1:
        header = abf._headerV1
        interval_us = float(header.fADCSampleInterval) * header.nADCNumChannels
    else:
        interval_us = float(abf._protocolSection.fADCSequenceInterval)
    if not np.isfinite(interval_us) or interval_us <= 0:
        raise RecordingError(
            f"{where}: corrupt ABF header: sampling interval {interval_us:g} µs; "
            "expected a finite interval > 0 µs."
        )
    rate = 1e6 / interval_us  # Hz
    if abs(rate - round(rate)) <= 1e-7 * rate:
        rate = float(round(rate))
    return 1000.0 / rate


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


def _dacs(abf) -> list[tuple[str, bool, int]]:
    """``(unit, waveform enabled, waveform source)`` of each DAC in the header.

    All of them (pyabf's ``dacUnits`` lists an ABF 2 file's first
    ``channelCount`` only). Source 0: none (the holding level), 1: the epoch
    table, 2: a stimulus file; ABF 1 headers have waveforms for DACs 0 and 1 only.
    """
    if abf.abfVersion["major"] == 1:
        header = abf._headerV1
        units = [_clean(u) for u in header.sDACChannelUnit]
        enable, source = list(header.nWaveformEnable), list(header.nWaveformSource)
    else:
        dac = abf._dacSection
        strings = abf._stringsSection._indexedStrings
        units = [
            _clean(strings[k]) if 0 <= k < len(strings) else ""
            for k in dac.lDACChannelUnitsIndex
        ]
        enable, source = list(dac.nWaveformEnable), list(dac.nWaveformSource)
    return [
        (
            unit,
            k < len(enable) and bool(enable[k]),
            int(source[k]) if k < len(source) else 0,
        )
        for k, unit in enumerate(units)
    ]


def _has_steps(abf, dac: int) -> bool:
    """Whether DAC ``dac``'s epoch table moves its output off the holding level
    (an epoch whose level or level increment differs from it); an enabled
    table with no such epoch, or one pyabf cannot read, holds the level."""
    waveform = importlib.import_module("pyabf.waveform")
    try:
        epochs = waveform.EpochTable(abf, dac).epochs
    except (ValueError, IndexError, TypeError, KeyError, AssertionError):
        return False
    holding = abf.holdingCommand[dac] if dac < len(abf.holdingCommand) else 0.0
    return any(
        (e.level != holding or e.levelDelta != 0)
        and (e.duration > 0 or e.durationDelta > 0)
        for e in epochs
    )


def _command_dac(
    abf, dacs: list, channel: int, dac: int | None, where: str
) -> tuple[int, float]:
    """The DAC whose command was injected with ADC ``channel`` and its scale to pA
    (``dacs``: :func:`_dacs` of the file).

    Default: the DAC with the channel's index (pyabf's pairing), unless that DAC
    outputs no waveform while another current DAC does (e.g. the cell was on the
    amplifier's second channel, ``IN 2`` with ``Cmd 1``): then an error asks for
    ``dac``.
    """
    if dac is not None:
        if not is_integer(dac) or not 0 <= dac < len(dacs):
            raise RecordingError(
                f"{where}: no DAC {dac!r}; the file has DACs 0..{len(dacs) - 1} with "
                f"units {[u for u, _, _ in dacs]}."
            )
    elif channel >= len(dacs):
        raise RecordingError(
            f"{where}: ADC channel {channel} has no DAC command channel (the file "
            f"has {len(dacs)}); cannot rebuild the injected current."
        )
    k = channel if dac is None else int(dac)
    unit, enabled, source = dacs[k]
    hint = (
        ""
        if dac is not None
        else f" If another DAC drove the cell, pass `dac` (DAC units: "
        f"{[u for u, _, _ in dacs]})."
    )
    if unit in _TO_MV:
        raise RecordingError(
            f"{where}: the command of DAC {k} is in {unit}: a voltage-clamp "
            f"protocol; hhjax needs current clamp (command in pA).{hint}"
        )
    if unit not in _TO_PA:
        raise RecordingError(
            f"{where}: the command of DAC {k} has unit {unit!r}; a current unit "
            f"({', '.join(_TO_PA)}) is needed.{hint}"
        )
    if enabled and source == 2:
        # pyabf 2.3 returns the stimulus file's first sweep, in that file's units
        # and without the header's DAC-file scale, as every sweep's command.
        raise RecordingError(
            f"{where}: the command of DAC {k} comes from a stimulus file (a "
            "DAC-file protocol), which cannot be rebuilt faithfully (pyabf repeats "
            "the file's first sweep in every sweep, without its scale); export the "
            "injected current with the voltage, e.g. to .npz (t_ms, v_mV, i_pA), "
            "and load that."
        )
    others = [
        j
        for j, (u, on, src) in enumerate(dacs)
        if j != k and on and u in _TO_PA and (src == 2 or _has_steps(abf, j))
    ]
    if dac is None and not (enabled and source == 1) and others:
        raise RecordingError(
            f"{where}: DAC {k} (paired with ADC channel {channel} by index) outputs "
            f"no waveform, only its holding level, but DAC {others[0]} "
            f"({dacs[others[0]][0]}) does: pass `dac={others[0]}` (`--dac "
            f"{others[0]}` on the command line) if it drove this cell, or "
            f"`dac={k}` to take the constant holding command."
        )
    return k, _TO_PA[unit]


def _epoch_table(abf, dac: int, enabled: bool, source: int, where: str) -> list | None:
    """pyabf's epoch waveform of each sweep for DAC ``dac`` (its waveform switch
    and source from :func:`_dacs`); None when it outputs its holding level only."""
    if not enabled or source == 0:
        return None
    if source != 1:
        raise RecordingError(
            f"{where}: the command of DAC {dac} has waveform source {source} "
            "(expected 0: none, 1: epochs); corrupt ABF header?"
        )
    waveform = importlib.import_module("pyabf.waveform")
    try:
        return waveform.EpochTable(abf, dac).epochWaveformsBySweep
    except (ValueError, IndexError, TypeError, KeyError) as err:
        raise RecordingError(
            f"{where}: corrupt ABF file: the epoch table of DAC {dac} cannot be read "
            f"({type(err).__name__}: {err})."
        ) from None


def _sweep(
    abf, sweep: int, channel: int, epochs, holding: float, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """V and the command of one sweep, in the file's units; a corrupt header
    (epochs longer than the sweep, pyabf failing) is a :class:`RecordingError`.

    ``epochs``: the sweep's epoch waveform (:func:`_epoch_table`), or None for a
    command at ``holding`` (the DAC's units).
    """
    corrupt = f"{where}: corrupt ABF file: sweep {sweep} cannot be read"
    failures = (ValueError, IndexError, TypeError, KeyError, MemoryError)
    n = abf.sweepPointCount
    ends = list(getattr(epochs, "p2s", None) or [0])
    if max(ends) > 2 * n:  # before pyabf allocates them
        raise RecordingError(
            f"{corrupt}: its protocol's epochs end at sample {max(ends)}, beyond "
            f"the sweep's {n} samples."
        )
    try:
        abf.setSweep(sweep, channel=channel)
        v = np.asarray(abf.sweepY, dtype=np.float64)
        if epochs is None:
            command = np.full(n, holding, dtype=np.float64)
        else:
            command = np.asarray(epochs.getWaveform(), dtype=np.float64)[:n]
    except failures as err:
        raise RecordingError(f"{corrupt} ({type(err).__name__}: {err}).") from None
    if command.shape != v.shape or not np.all(np.isfinite(command)):
        raise RecordingError(
            f"{where}: the command waveform of sweep {sweep} cannot be rebuilt "
            "from the protocol (an epoch type or holding level pyabf cannot "
            "read)."
        )
    return v, command


def load_abf(
    path: str | os.PathLike, *, channel: int | None = None, dac: int | None = None
) -> Recording:
    """Load the current-clamp sweeps of an ABF 1 or ABF 2 file.

    Args:
        path: the ``.abf`` file.
        channel: ADC channel index holding the membrane potential; default the
            first channel recorded in a voltage unit.
        dac: index of the DAC whose command was injected; default the DAC with
            the index of ``channel`` (an error if that one outputs no waveform
            while another current DAC does, e.g. a cell on a two-channel
            amplifier's second channel: ADC ``IN 2``, DAC ``Cmd 1``).

    Returns:
        A :class:`Recording` with ``v`` in mV and ``i`` in pA (``i_unit="pA"``,
        ``c_pf=None``: estimate it with :func:`hhjax.recordings.cell_properties`),
        ``dt`` in ms from the header's sampling interval, one row per sweep
        (``sweeps`` 0-based). The current is the protocol's command waveform
        (the DAC holding level before and after the epochs included), positive =
        depolarising.

    Raises:
        ImportError: pyabf is not installed (``pip install 'hhjax[abf]'``).
        RecordingError: missing, corrupt or truncated file; voltage-clamp or
            unit-less channels; no ``channel`` or ``dac`` of that index; the DAC of
            ``channel``'s index silent while another drives (pass ``dac``);
            variable-length sweeps; a command waveform that cannot be rebuilt (a
            stimulus-file protocol, or one pyabf cannot read).
    """
    where = str(path)
    abf = _open(path, where)
    _abf1_holding(abf, path, where)
    dt = _sample_interval_ms(abf, where)
    ch = _voltage_channel(abf, channel, where)
    v_scale = _TO_MV[_clean(abf.adcUnits[ch])]
    dacs = _dacs(abf)
    dac, i_scale = _command_dac(abf, dacs, ch, dac, where)
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
        epochs = _epoch_table(abf, dac, *dacs[dac][1:], where)
        holding = float(abf.holdingCommand[dac])  # the DAC's units
        for s in range(abf.sweepCount):
            sweep_epochs = None if epochs is None else epochs[s]
            v[s], i[s] = _sweep(abf, s, ch, sweep_epochs, holding, where)
    return Recording(
        dt=dt,
        v=v * v_scale,
        i=i * i_scale,
        i_unit="pA",
        sweeps=tuple(range(abf.sweepCount)),
        source=where,
    )
