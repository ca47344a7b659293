"""Neurodata Without Borders (``.nwb``) current-clamp loader via pynwb.

Reads the intracellular-electrophysiology series of an NWB 2 file: every
``CurrentClampSeries`` in ``acquisition`` (the response, volts) paired by
``sweep_number`` with a ``CurrentClampStimulusSeries`` in ``stimulus`` (the injected
current, amperes). Values are converted with each series' ``conversion`` and
``offset`` to mV and pA.

A file with the series of several cells (intracellular electrodes) loads one of
them, chosen with ``electrode``; a file with several protocols of one cell (sweeps
of different lengths) loads the sweeps of one, chosen by the ``stimulus_description``
of its series. Pairing is strict: each sweep number may appear
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
import re
import shlex
import warnings

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
    # The span, not one difference: timestamps counted from the session start
    # (seconds, as NWB defines them) carry rounding errors of ~1e-10 relative in
    # each difference, far less in the whole span.
    return 1000.0 * float(t[-1] - t[0]) / (t.size - 1)


def _common_dt(pairs: list[tuple], where: str) -> float:
    """The sampling interval (ms) shared by the responses and stimuli of
    ``pairs``, equal to 1e-6 relative (as the timestamps of one series)."""
    dts = np.array([_dt_ms(s, where) for _, r, st in pairs for s in (r, st)])
    dt = float(np.median(dts))
    if np.max(np.abs(dts - dt)) > 1e-6 * dt:
        distinct = sorted({float(f"{d:.6g}") for d in dts})
        raise RecordingError(
            f"{where}: series differ in sample interval ({distinct} ms); a "
            "Recording needs one."
        )
    return round(dt, 12)


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


def _table_pairs(nwbfile, where: str, wanted: list) -> list[tuple] | None:
    """``[(sweep, response, stimulus)]`` from the intracellular-recordings table,
    for its rows whose response is one of ``wanted``; ``None`` when there are
    none or a sweep appears twice (the table cannot pair them).

    Raises:
        RecordingError: such a row without a current-clamp stimulus, or one that
            refers to part of a series.
    """
    table = getattr(nwbfile, "intracellular_recordings", None)
    if table is None or len(table) == 0:
        return None
    responses = table.category_tables["responses"]["response"]
    stimuli = table.category_tables["stimuli"]["stimulus"]
    chosen = {r.name for r in wanted}  # unique in acquisition
    pairs = []
    for row in range(len(table)):
        response, stimulus = responses[row], stimuli[row]
        if response.timeseries.name not in chosen:
            continue
        if type(stimulus.timeseries).__name__ != "CurrentClampStimulusSeries":
            raise RecordingError(
                f"{where}: row {row} of the intracellular-recordings table has the "
                f"response {response.timeseries.name!r} but no current-clamp "
                "stimulus, and no CurrentClampStimulusSeries has its sweep_number "
                f"({response.timeseries.sweep_number}); cannot tell which current "
                "was injected."
            )
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


def load_nwb(
    path: str | os.PathLike,
    *,
    electrode: str | None = None,
    stimulus_description: str | None = None,
) -> Recording:
    """Load the current-clamp sweeps of an NWB 2 file.

    Args:
        path: the ``.nwb`` file (HDF5).
        electrode: name of the intracellular electrode whose series to load (one
            cell of a multi-cell recording); default: the only electrode with
            current-clamp series (an error naming them when there are several).
        stimulus_description: load only the sweeps whose response series has
            this ``stimulus_description`` (the protocol's name, as acquisition
            software writes it), e.g. the current steps of a file that also holds
            the cell's other protocols; default: every current-clamp sweep (an
            error naming the descriptions when the sweeps differ in length).

    Returns:
        A :class:`Recording` with ``v`` in mV, ``i`` in pA (``i_unit="pA"``), ``dt``
        in ms, one row per sweep ordered by ``sweep_number`` (``sweeps`` are those
        numbers), ``t0 = 0`` at the start of each sweep.

    Warns:
        UserWarning: pynwb's warnings on reading the file, each kind once (with
            the number of series it concerns), prefixed with the file name.

    Raises:
        ImportError: pynwb is not installed (``pip install 'hhjax[nwb]'``).
        RecordingError: missing or corrupt file; no current-clamp series (e.g. a
            voltage-clamp file); series of several electrodes and no
            ``electrode`` given, or an ``electrode`` without current-clamp
            series; a ``stimulus_description`` that no series of it has;
            unpaired series, a sweep number used twice, or a stimulus that
            starts at another time than its response; sweeps of different
            length or sample rate; potentials beyond ±5 V or currents beyond
            ±1 µA after ``conversion`` (data in mV or pA stored without the
            conversion to volts or amperes), or a stimulus whose largest
            value is below 10⁻³ pA (data in amperes converted once more).
    """
    where = str(path)
    pynwb = require("pynwb", "nwb", "Reading .nwb files")
    check_is_file(path, where)
    io = None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            io = pynwb.NWBHDF5IO(str(path), mode="r")
            nwbfile = io.read()
    except Exception as err:  # noqa: BLE001 - h5py/hdmf raise many types on junk
        if io is not None:
            io.close()
        raise RecordingError(
            f"{where}: not a readable NWB file, or truncated/corrupt "
            f"({type(err).__name__}: {err})."
        ) from None
    _warn_once_each(caught, where)
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
        if stimulus_description is not None:
            responses = _described(responses, stimulus_description, where)
            numbers = {r.sweep_number for r in responses}
            stimuli = [s for s in stimuli if s.sweep_number in numbers]
        try:
            pairs = _pairs(responses, stimuli, where)
        except RecordingError:
            pairs = _table_pairs(nwbfile, where, responses)
            if pairs is None:
                raise
        dt = _common_dt(pairs, where)
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
        _check_one_length(pairs, v, where)
        _check_current_scale(pairs, i, where)
    return Recording(
        dt=dt,
        v=np.stack(v),
        i=np.stack(i),
        i_unit="pA",
        sweeps=tuple(s for s, _, _ in pairs),
        source=where,
    )


def _warn_once_each(caught: list, where: str) -> None:
    """Re-issue warnings ``caught`` while reading a file, once per kind of
    message: pynwb warns once per series (e.g. for a unit label it ignores),
    which in a file of 30 sweeps would be 60 lines. The kind is the message with
    the series' names left out; the first message stands for the others."""
    kinds: dict[tuple, list] = {}
    for w in caught:
        text = str(w.message)
        key = (w.category, re.sub(r"(Series) '[^']*'", r"\1", text))
        kinds.setdefault(key, []).append(text)
    for (category, _), texts in kinds.items():
        more = f" (and {len(texts) - 1} more series alike)" if len(texts) > 1 else ""
        warnings.warn(f"{where}: {texts[0]}{more}", category, stacklevel=3)


def _description(series) -> str:
    return str(getattr(series, "stimulus_description", None) or "N/A")


def _described(responses: list, description: str, where: str) -> list:
    """The ``responses`` whose ``stimulus_description`` is ``description``."""
    if not isinstance(description, str):
        raise RecordingError(
            f"{where}: `stimulus_description` must be a name (str); got "
            f"{description!r}."
        )
    chosen = [r for r in responses if _description(r) == description]
    if not chosen:
        names = sorted({_description(r) for r in responses})
        raise RecordingError(
            f"{where}: no current-clamp series with stimulus_description "
            f"{description!r}; the file's are {names}."
        )
    return chosen


def _check_one_length(pairs: list[tuple], v: list, where: str) -> None:
    """Refuse sweeps of different lengths, naming each group's sweeps and
    ``stimulus_description`` so that one protocol can be chosen."""
    groups: dict[int, list] = {}
    for (sweep, r, _), v_k in zip(pairs, v, strict=True):
        groups.setdefault(v_k.size, []).append((sweep, _description(r)))
    if len(groups) == 1:
        return
    parts = []
    for length, members in sorted(groups.items(), key=lambda g: -len(g[1])):
        names = sorted({name for _, name in members})
        sweeps = [s for s, _ in members]
        shown = ", ".join(map(str, sweeps[:6])) + (", ..." if len(sweeps) > 6 else "")
        parts.append(
            f"{len(sweeps)} sweep{'s' if len(sweeps) > 1 else ''} ({shown}) of "
            f"{length} samples, stimulus_description {' / '.join(map(repr, names))}"
        )
    # A description can choose sweeps of one length when it appears in one group.
    lengths_of: dict[str, set] = {}
    for length, members in groups.items():
        for _, name in members:
            lengths_of.setdefault(name, set()).add(length)
    largest = max(groups.values(), key=len)
    choosable = sorted({name for _, name in largest if len(lengths_of[name]) == 1})
    advice = (
        f"choose one protocol's sweeps with `stimulus_description={choosable[0]!r}` "
        f"(`--stimulus-description {shlex.quote(choosable[0])}` on the command "
        "line)"
        if choosable
        else "their stimulus_description does not tell the protocols apart, so "
        "write one protocol's sweeps to a file of their own"
    )
    raise RecordingError(
        f"{where}: sweeps differ in length: {'; '.join(parts)}. A Recording needs "
        f"sweeps of one length: {advice}."
    )


def _check_current_scale(pairs: list[tuple], i: list, where: str) -> None:
    """Refuse a stimulus of at most 10⁻³ pA (but not all 0): data already in
    amperes stored with ``conversion`` 1e-12 come out 10¹² times too small."""
    largest = max(float(np.max(np.abs(x))) if x.size else 0.0 for x in i)
    if 0.0 < largest < 1e-3:
        conversion = float(pairs[0][2].conversion)
        raise RecordingError(
            f"{where}: the stimulus reaches at most {largest:.3g} pA (data x "
            f"conversion {conversion:g}, in amperes); expected a whole-cell current "
            "of pA to nA. NWB stores amperes: data already in amperes need "
            "conversion=1, data in pA conversion=1e-12."
        )
