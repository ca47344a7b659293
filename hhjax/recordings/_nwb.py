"""Neurodata Without Borders (``.nwb``) current-clamp loader via pynwb.

Reads the intracellular-electrophysiology series of an NWB 2 file: every
``CurrentClampSeries`` in ``acquisition`` (the response, volts) paired by
``sweep_number`` with a ``CurrentClampStimulusSeries`` in ``stimulus`` (the injected
current, amperes). Values are converted with each series' ``conversion`` and
``offset`` to mV and pA.

A file with the series of several cells (intracellular electrodes) loads one of
them, chosen with ``electrode``. Pairing is strict: each sweep number may appear
once among that electrode's responses and once among its stimuli; a file with a
single response and a single stimulus needs them to have the same sweep number
(or none); and a stimulus must start (its
``starting_time`` or first timestamp) within half a sample of its response. Where
sweep numbers do not pair them, the rows of the file's intracellular-recordings
table (pynwb's ``add_intracellular_recording``) do, each row a whole response and
its whole stimulus; a row's sweep is the response's ``sweep_number``, or without
one the row's index.
"""

from __future__ import annotations

import os

import numpy as np

from hhjax.recordings._abf import require
from hhjax.recordings._recording import Recording, RecordingError, check_is_file


def _series(container, type_name: str) -> list:
    return [s for s in container.values() if type(s).__name__ == type_name]


# Largest plausible |value| after conversion: a membrane potential in mV, a
# whole-cell current in pA. Data in mV or pA stored as volts / amperes (NWB's
# fixed units, `conversion` left at 1) come out 1e3 / 1e12 times too large.
_LIMITS = {"mV": 5e3, "pA": 1e6}


def _values(series, scale: float, unit: str, where: str) -> np.ndarray:
    """Series data in SI units × ``scale`` (e.g. 1e3: volts → mV), in ``unit``.

    Raises:
        RecordingError: values beyond :data:`_LIMITS` (5 V, 1 µA): data stored in
            mV / pA without the ``conversion`` to volts / amperes.
    """
    data = np.asarray(series.data[:], dtype=np.float64)
    offset = float(getattr(series, "offset", 0.0) or 0.0)
    conversion = float(series.conversion)
    values = (data * conversion + offset) * scale
    finite = values[np.isfinite(values)]
    largest = float(np.max(np.abs(finite))) if finite.size else 0.0
    if largest > _LIMITS[unit]:
        si = "volts" if unit == "mV" else "amperes"
        stored = getattr(series.data, "attrs", {}).get("unit")  # as in the file
        stored = stored.decode() if isinstance(stored, bytes) else stored
        label = (
            f" (its data are labelled {stored!r}, which NWB ignores)"
            if stored not in (None, si)
            else ""
        )
        raise RecordingError(
            f"{where}: series {series.name!r} reaches {largest:.3g} {unit} "
            f"(data x conversion {conversion:g} + offset {offset:g}, in {si}){label}; "
            f"expected |values| <= {_LIMITS[unit]:g} {unit}. NWB stores {si}: data "
            f"in {unit} need conversion={1 / scale:g}."
        )
    return values


def _dt_ms(series, where: str) -> float:
    """Sampling interval (ms) of a series, from its ``rate`` (Hz) or, without one,
    its uniform, increasing ``timestamps`` (s)."""
    if series.rate is not None:
        rate = float(series.rate)
        if not np.isfinite(rate) or rate <= 0:
            raise RecordingError(
                f"{where}: series {series.name!r} has sample rate {rate:g} Hz; "
                "expected a finite rate > 0 Hz."
            )
        return 1000.0 / rate
    t = np.asarray(series.timestamps[:], dtype=np.float64)
    steps = np.diff(t)
    if (
        t.size < 2
        or not np.all(np.isfinite(t))
        or np.median(steps) <= 0
        or np.ptp(steps) > 1e-6 * np.median(steps)
    ):
        raise RecordingError(
            f"{where}: series {series.name!r} has no uniform sample rate "
            "(expected >= 2 finite, increasing, evenly spaced timestamps, s)."
        )
    return 1000.0 * float(np.median(steps))


def _start_s(series) -> float:
    """Time of the first sample of a series, s."""
    if series.starting_time is not None:
        return float(series.starting_time)
    return float(series.timestamps[0])


def _electrode_name(series) -> str | None:
    electrode = getattr(series, "electrode", None)
    return None if electrode is None else electrode.name


def _electrode(responses: list, electrode: str | None, where: str) -> str | None:
    """The electrode whose series to load: ``electrode`` (checked), else the
    only one of the current-clamp ``responses`` (``None`` if they name none)."""
    names = sorted({n for n in map(_electrode_name, responses) if n is not None})
    if electrode is not None:
        if not isinstance(electrode, str) or electrode not in names:
            raise RecordingError(
                f"{where}: no current-clamp series of electrode {electrode!r}; the "
                f"file has them for {names}."
            )
        return electrode
    if len(names) > 1:
        raise RecordingError(
            f"{where}: current-clamp series of {len(names)} electrodes {names} "
            f"(one cell each); pass `electrode={names[0]!r}` (`--electrode "
            f"{names[0]}` on the command line) to choose one."
        )
    return None


def _by_sweep(series: list, where: str) -> dict:
    """``{sweep_number: series}`` of the series that have one; each number once."""
    by_sweep = {}
    for s in series:
        if s.sweep_number is None:
            continue
        other = by_sweep.setdefault(int(s.sweep_number), s)
        if other is not s:
            raise RecordingError(
                f"{where}: {type(s).__name__} {other.name!r} and {s.name!r} both "
                f"have sweep_number {int(s.sweep_number)}; cannot tell which "
                "response goes with which stimulus."
            )
    return by_sweep


def _pairs(responses: list, stimuli: list, where: str) -> list[tuple]:
    """``[(sweep, response, stimulus)]`` sorted by sweep number."""
    if len(responses) == 1 and len(stimuli) == 1:
        (r,), (st,) = responses, stimuli
        numbers = [
            None if s.sweep_number is None else int(s.sweep_number) for s in (r, st)
        ]
        if numbers[0] != numbers[1]:
            raise RecordingError(
                f"{where}: the response {r.name!r} has sweep_number {numbers[0]} but "
                f"the stimulus {st.name!r} has {numbers[1]}; they must match."
            )
        return [(0 if numbers[0] is None else numbers[0], r, st)]
    _by_sweep(responses, where)  # no sweep number twice
    by_sweep = _by_sweep(stimuli, where)
    pairs = []
    for r in responses:
        if r.sweep_number is None or int(r.sweep_number) not in by_sweep:
            raise RecordingError(
                f"{where}: current-clamp series {r.name!r} has no stimulus with the "
                f"same sweep_number ({r.sweep_number}), nor a row of its own in the "
                "intracellular-recordings table; cannot tell which current was "
                "injected."
            )
        pairs.append((int(r.sweep_number), r, by_sweep[int(r.sweep_number)]))
    return sorted(pairs, key=lambda p: p[0])


def _table_pairs(nwbfile, where: str, electrode: str | None) -> list[tuple] | None:
    """``[(sweep, response, stimulus)]`` from the intracellular-recordings table,
    for its rows with a current-clamp response (of ``electrode``, if given);
    ``None`` when there are none or one of them has no current-clamp stimulus
    (the table cannot pair them)."""
    table = getattr(nwbfile, "intracellular_recordings", None)
    if table is None or len(table) == 0:
        return None
    responses = table.category_tables["responses"]["response"]
    stimuli = table.category_tables["stimuli"]["stimulus"]
    pairs = []
    for row in range(len(table)):
        response, stimulus = responses[row], stimuli[row]
        if type(response.timeseries).__name__ != "CurrentClampSeries":
            continue
        if electrode is not None and _electrode_name(response.timeseries) != electrode:
            continue
        if type(stimulus.timeseries).__name__ != "CurrentClampStimulusSeries":
            return None
        for ref in (response, stimulus):
            if ref.idx_start != 0 or ref.count != len(ref.timeseries.data):
                raise RecordingError(
                    f"{where}: row {row} of the intracellular-recordings table "
                    f"refers to samples {ref.idx_start}..{ref.idx_start + ref.count}"
                    f" of {ref.timeseries.name!r}; only whole series are supported."
                )
        number = response.timeseries.sweep_number
        pairs.append(
            (
                row if number is None else int(number),
                response.timeseries,
                stimulus.timeseries,
            )
        )
    sweeps = [p[0] for p in pairs]
    if not pairs or len(set(sweeps)) != len(sweeps):
        return None
    return sorted(pairs, key=lambda p: p[0])


def load_nwb(path: str | os.PathLike, *, electrode: str | None = None) -> Recording:
    """Load the current-clamp sweeps of an NWB 2 file.

    Args:
        path: the ``.nwb`` file (HDF5).
        electrode: name of the intracellular electrode whose series to load (one
            cell of a multi-cell recording); default: the only electrode with
            current-clamp series (an error naming them when there are several).

    Returns:
        A :class:`Recording` with ``v`` in mV, ``i`` in pA (``i_unit="pA"``), ``dt``
        in ms, one row per sweep ordered by ``sweep_number`` (``sweeps`` are those
        numbers), ``t0 = 0`` at the start of each sweep.

    Raises:
        ImportError: pynwb is not installed (``pip install 'hhjax[nwb]'``).
        RecordingError: missing or corrupt file; no current-clamp series (e.g. a
            voltage-clamp file); series of several electrodes and no
            ``electrode`` given, or an ``electrode`` without current-clamp
            series; unpaired series, a sweep number used twice, or a
            stimulus that starts at another time than its response; sweeps of
            different length or sample rate; potentials beyond ±5 V or currents
            beyond ±1 µA after ``conversion`` (data in mV or pA stored without the
            conversion to volts or amperes).
    """
    where = str(path)
    pynwb = require("pynwb", "nwb", "Reading .nwb files")
    check_is_file(path, where)
    io = None
    try:
        io = pynwb.NWBHDF5IO(str(path), mode="r")
        nwbfile = io.read()
    except Exception as err:  # noqa: BLE001 - h5py/hdmf raise many types on junk
        if io is not None:
            io.close()
        raise RecordingError(
            f"{where}: not a readable NWB file, or truncated/corrupt "
            f"({type(err).__name__}: {err})."
        ) from None
    with io:
        responses = _series(nwbfile.acquisition, "CurrentClampSeries")
        if not responses:
            kinds = sorted({type(s).__name__ for s in nwbfile.acquisition.values()})
            clamp = " (voltage clamp)" if "VoltageClampSeries" in kinds else ""
            raise RecordingError(
                f"{where}: no CurrentClampSeries in acquisition; found {kinds}"
                f"{clamp}. hhjax needs current-clamp sweeps."
            )
        stimuli = _series(nwbfile.stimulus, "CurrentClampStimulusSeries")
        name = _electrode(responses, electrode, where)
        if name is not None:
            responses = [s for s in responses if _electrode_name(s) == name]
            stimuli = [s for s in stimuli if _electrode_name(s) == name]
        try:
            pairs = _pairs(responses, stimuli, where)
        except RecordingError:
            pairs = _table_pairs(nwbfile, where, name)
            if pairs is None:
                raise
        dts = {round(_dt_ms(s, where), 12) for _, r, st in pairs for s in (r, st)}
        if len(dts) != 1:
            raise RecordingError(
                f"{where}: series differ in sample interval ({sorted(dts)} ms)."
            )
        dt = dts.pop()
        for sweep, r, st in pairs:
            lag = 1e3 * (_start_s(st) - _start_s(r))  # ms
            if abs(lag) > 0.5 * dt:
                raise RecordingError(
                    f"{where}: sweep {sweep}: the stimulus {st.name!r} starts {lag:g} "
                    f"ms after the response {r.name!r} (starting_time); they must "
                    f"start together, within half a sample ({0.5 * dt:g} ms)."
                )
        v = [_values(r, 1e3, "mV", where) for _, r, _ in pairs]
        i = [_values(st, 1e12, "pA", where) for _, _, st in pairs]
        for (sweep, r, st), v_k, i_k in zip(pairs, v, i, strict=True):
            if v_k.shape != i_k.shape:
                raise RecordingError(
                    f"{where}: sweep {sweep}: the stimulus {st.name!r} has "
                    f"{i_k.size} samples but the response {r.name!r} has {v_k.size}; "
                    "they must cover the same samples."
                )
    lengths = {x.shape for x in v + i}
    if len(lengths) != 1:
        raise RecordingError(
            f"{where}: sweeps differ in length ({sorted(lengths)}); a Recording "
            "needs sweeps of one length."
        )
    return Recording(
        dt=dt,
        v=np.stack(v),
        i=np.stack(i),
        i_unit="pA",
        sweeps=tuple(s for s, _, _ in pairs),
        source=where,
    )
