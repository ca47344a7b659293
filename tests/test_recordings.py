"""Recording loaders (ABF, NWB, npz, csv), cell properties and corrections.

The facts about the shipped ABF files (sweep counts, sample rates, step amplitudes,
pre-stimulus potentials, spike counts) are read from the shipped MANIFEST.md.
"""

import ast
import datetime
import re
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from abf_files import cell_on_dac1

import hhjax
from hhjax import io
from hhjax.recordings import (
    Recording,
    RecordingError,
    baseline_drift,
    cell_properties,
    correct,
    fit_exponential,
    load_abf,
    load_csv,
    load_npz,
    load_nwb,
    load_recording,
    save_npz,
    sweep_baselines,
)

DATA = Path(__file__).resolve().parents[1] / "examples" / "data" / "recordings"
# Middle of the main (depolarising) step, s, from MANIFEST.md's protocol notes.
MID_STEP_S = {"18711001.abf": 1.073}
MID_STEP_DEFAULT_S = 0.397


def _manifest() -> dict[str, dict]:
    """Per-file facts parsed from MANIFEST.md."""
    text = (DATA / "MANIFEST.md").read_text()
    facts = {}
    for block in text.split("\n### ")[1:]:
        name = block.split("\n", 1)[0].strip()

        def listed(label, block=block):
            m = re.search(re.escape(label) + r"[^:]*: (\[[^\]]*\])", block)
            return ast.literal_eval(m.group(1))

        rate, sweeps, length = re.search(
            r"(\d+) Hz, (\d+) sweeps x ([\d.]+) s", block
        ).groups()
        facts[name] = {
            "rate_hz": int(rate),
            "n_sweeps": int(sweeps),
            "length_s": float(length),
            "steps_pa": listed("step amplitude per sweep"),
            "spikes": listed("spikes per sweep (whole sweep)"),
            "pre_vm": listed("pre-stimulus Vm"),
        }
    return facts


MANIFEST = _manifest()
FILES = sorted(MANIFEST)


@pytest.fixture(scope="module", params=FILES)
def shipped(request):
    return request.param, load_abf(DATA / request.param)


def test_manifest_lists_the_four_shipped_files():
    assert sorted(p.name for p in DATA.glob("*.abf")) == FILES
    assert len(FILES) == 4


# ------------------------------------------------------------------ ABF files
def test_abf_shape_units_and_rate(shipped):
    name, rec = shipped
    facts = MANIFEST[name]
    assert rec.n_sweeps == facts["n_sweeps"]
    assert rec.sweeps == tuple(range(facts["n_sweeps"]))
    assert rec.i_unit == "pA" and rec.c_pf is None and rec.t0 == 0.0
    assert rec.dt == pytest.approx(1000.0 / facts["rate_hz"])
    assert rec.n_samples * rec.dt == pytest.approx(facts["length_s"] * 1000.0)
    assert rec.source == str(DATA / name)


def test_abf_step_amplitudes_match_manifest(shipped):
    name, rec = shipped
    k = round(MID_STEP_S.get(name, MID_STEP_DEFAULT_S) * 1000.0 / rec.dt)
    np.testing.assert_allclose(rec.i[:, k], MANIFEST[name]["steps_pa"], atol=1e-3)
    np.testing.assert_allclose(rec.i[:, 0], 0.0)  # holding command 0 pA


def test_abf_voltages_match_manifest(shipped):
    name, rec = shipped
    n20 = round(20.0 / rec.dt)
    pre = np.median(rec.v[:, :n20], axis=1)
    np.testing.assert_allclose(pre, MANIFEST[name]["pre_vm"], atol=0.051)


def test_abf_spike_counts_match_manifest(shipped):
    signal = pytest.importorskip("scipy.signal")
    name, rec = shipped
    counts = [
        len(
            signal.find_peaks(
                v, height=-20.0, prominence=20.0, distance=round(1.0 / rec.dt)
            )[0]
        )
        for v in rec.v
    ]
    assert counts == MANIFEST[name]["spikes"]


def test_load_recording_dispatches_abf():
    rec = load_recording(DATA / "18711001.abf")
    assert rec.n_sweeps == 30 and rec.i_unit == "pA"


@pytest.mark.parametrize("n_bytes", [3000, 1_000_000])
def test_truncated_abf_is_a_clear_error(tmp_path, n_bytes):
    bad = tmp_path / "cut.abf"
    bad.write_bytes((DATA / "18711001.abf").read_bytes()[:n_bytes])
    with pytest.raises(RecordingError, match=r"cut\.abf: .*truncated"):
        load_abf(bad)


@pytest.mark.parametrize("offset, value", [(3605, 46), (3700, 202)])
def test_a_corrupt_epoch_table_is_a_clear_error(tmp_path, offset, value):
    # One byte of the protocol's epoch table: pyabf built a command of 7.7e8
    # samples (6 GB, 30 s) and NumPy failed to fit it into the sweep.
    raw = bytearray((DATA / "18711001.abf").read_bytes())
    raw[offset] = value
    bad = tmp_path / "epochs.abf"
    bad.write_bytes(bytes(raw))
    with pytest.raises(
        RecordingError,
        match=r"epochs\.abf: corrupt ABF file: sweep 1 cannot be read: its protocol's epochs end at sample \d+, beyond the sweep's 30000 samples",
    ):
        load_abf(bad)


@pytest.mark.parametrize("head", [b"", b"ABF2"])
def test_random_bytes_abf_is_a_clear_error(tmp_path, head):
    bad = tmp_path / "noise.abf"
    bad.write_bytes(head + np.random.default_rng(0).bytes(20_000))
    with pytest.raises(RecordingError, match=r"noise\.abf: not a readable ABF"):
        load_recording(bad)


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(RecordingError, match="no such file"):
        load_abf(tmp_path / "absent.abf")
    odd = tmp_path / "x.dat"
    odd.write_text("1")
    with pytest.raises(RecordingError, match=r"unsupported file type '\.dat'.*\.abf"):
        load_recording(odd)
    with pytest.raises(TypeError, match=r"`path` must be a file path.*got NoneType"):
        load_recording(None)
    with pytest.raises(RecordingError, match=r"`v` must be .*sweeps of different"):
        Recording(v=[[1.0, 2.0], [1.0]], i=[[0.0, 0.0], [0.0]], dt=0.1, i_unit="pA")


def test_missing_pyabf_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyabf", None)
    with pytest.raises(ImportError, match=r"pip install 'hhjax\[abf\]'"):
        load_abf(DATA / "18711001.abf")


def _write_abf1(
    path, v, adc_unit="mV", dac_unit="pA", step=(25.0, 10.0), *, first=0.0,
    holding=0.0, rate=20000,
):  # fmt: skip
    """An ABF 1 file: pyabf's writer, a larger header and a step epoch table.

    Epoch A: 500 samples at ``first``; epoch B: 800 samples at ``step[0] +
    k·step[1]`` in sweep k; the DAC at ``holding`` (pA) before (the first 1/64 of
    the sweep, Clampex's convention) and after the epochs. ``rate`` in Hz.
    """
    writer = pytest.importorskip("pyabf.abfWriter")
    writer.writeABF1(np.asarray(v, dtype=float), str(path), rate, units=adc_unit)
    raw = path.read_bytes()
    header_blocks = 12  # the extended header reaches beyond pyabf's 4 blocks
    out = bytearray(raw[:2048]) + bytearray(header_blocks * 512 - 2048) + raw[2048:]
    struct.pack_into("i", out, 40, header_blocks)  # lDataSectionPtr
    struct.pack_into("8s", out, 1346, dac_unit.ljust(8).encode())  # DAC 0 unit
    struct.pack_into("f", out, 1394, holding)  # fDACHoldingLevel of DAC 0
    struct.pack_into("2h", out, 2296, 1, 0)  # nWaveformEnable
    struct.pack_into("2h", out, 2300, 1, 0)  # nWaveformSource: epoch table
    struct.pack_into("2h", out, 2308, 1, 1)  # nEpochType: steps
    struct.pack_into("2f", out, 2348, first, step[0])  # fEpochInitLevel
    struct.pack_into("2f", out, 2428, 0.0, step[1])  # fEpochLevelInc
    struct.pack_into("2i", out, 2508, 500, 800)  # lEpochInitDuration
    path.write_bytes(bytes(out))


def test_abf1_current_clamp(tmp_path):
    v = -65.0 + np.random.default_rng(1).normal(0.0, 0.2, (3, 2000))
    path = tmp_path / "v1.abf"
    _write_abf1(path, v)
    rec = load_recording(path)
    assert rec.n_sweeps == 3 and rec.dt == pytest.approx(0.05)
    np.testing.assert_allclose(rec.v, v, atol=0.01)  # int16 quantisation
    np.testing.assert_allclose(rec.i[:, 1000], [25.0, 35.0, 45.0])
    assert np.count_nonzero(rec.i[0]) == 800


def test_abf1_command_holds_the_dac_holding_level(tmp_path):
    # pyabf took the first epoch's level (-100 pA) as the ABF 1 holding level, so
    # the command sat at -100 pA before and after the epochs instead of 5 pA.
    n = 2000
    path = tmp_path / "hold.abf"
    _write_abf1(path, np.full((2, n), -65.0), first=-100.0, holding=5.0)
    rec = load_abf(path)
    pre = n // 64  # Clampex holds the first 1/64 of a sweep
    for k in range(2):
        expected = np.full(n, 5.0)
        expected[pre : pre + 500] = -100.0
        expected[pre + 500 : pre + 1300] = 25.0 + 10.0 * k
        np.testing.assert_array_equal(rec.i[k], expected)


@pytest.mark.parametrize("rate", [6000, 3000])
def test_abf_sample_interval_is_not_truncated_to_whole_hz(tmp_path, rate):
    # pyabf's rate is int(1e6 / interval): 6 kHz (166.66667 us as float32) was
    # 5999 Hz, dt 1/5999 s, 0.8 ms too long over 30000 samples.
    path = tmp_path / "rate1.abf"
    _write_abf1(path, np.full((1, 2000), -65.0), rate=rate)
    assert load_abf(path).dt == pytest.approx(1000.0 / rate, rel=1e-7)
    raw = bytearray((DATA / "18711001.abf").read_bytes())  # ABF 2
    protocol = struct.unpack_from("I", raw, 76)[0] * 512  # ProtocolSection block
    struct.pack_into("f", raw, protocol + 2, 1e6 / rate)  # fADCSequenceInterval, us
    path2 = tmp_path / "rate2.abf"
    path2.write_bytes(bytes(raw))
    assert load_abf(path2).dt == pytest.approx(1000.0 / rate, rel=1e-7)


def test_abf_stimulus_file_command_is_refused(tmp_path):
    # A DAC-file protocol: pyabf found the stimulus file beside the recording and
    # gave its first sweep (50 pA) as the command of every sweep (sweep 1: 100).
    pyabf = pytest.importorskip("pyabf")
    raw = bytearray((DATA / "18711001.abf").read_bytes())
    dac = pyabf.ABF(str(DATA / "18711001.abf"), loadData=False)._dacSection._byteStart
    struct.pack_into("h", raw, dac + 42, 2)  # nWaveformSource: DAC file
    struct.pack_into("i", raw, dac + 118, 2)  # lDACFilePathIndex: the .pro path
    k = raw.find(b"_KL.pro")
    raw[k + 3 : k + 7] = b".abf"  # ... renamed to the stimulus file's name
    (tmp_path / "cell.abf").write_bytes(bytes(raw))
    stim = np.where(np.arange(30000) >= 5000, 50.0, 0.0) * np.array([[1.0], [2.0]])
    writer = pytest.importorskip("pyabf.abfWriter")
    writer.writeABF1(stim, str(tmp_path / "FICurve_Hyperpolarizing_KL.abf"), 20000)
    with pytest.raises(
        RecordingError, match=r"cell\.abf: the command of DAC 0 comes from a stimulus"
    ):
        load_abf(tmp_path / "cell.abf")


def test_abf_command_on_another_dac_is_named(tmp_path):
    # The cell on an amplifier's second channel: DAC 0 (paired with ADC 0 by
    # index) silent, DAC 1 running the protocol. The command loaded as 0 pA.
    path = cell_on_dac1(tmp_path / "dac1.abf")
    with pytest.raises(
        RecordingError,
        match=r"dac1\.abf: DAC 0 .* but DAC 1 \(pA\) does: pass `dac=1` \(`--dac 1`",
    ):
        load_abf(path)
    np.testing.assert_array_equal(
        load_abf(path, dac=1).i, load_abf(DATA / "18711001.abf").i
    )
    np.testing.assert_array_equal(load_abf(path, dac=0).i, 0.0)  # holding, 0 pA
    np.testing.assert_array_equal(
        load_recording(path, channel=0, dac=1).i, load_abf(path, dac=1).i
    )
    # DAC 1 switched on but without epochs of its own (they stay on DAC 0's
    # table, which is off): nothing drives the cell, the command holds 0 pA.
    cell_on_dac1(path, epochs_on_dac1=False)
    np.testing.assert_array_equal(load_abf(path).i, 0.0)
    with pytest.raises(RecordingError, match=r"no DAC 8; the file has DACs 0\.\.7"):
        load_abf(path, dac=8)


def test_channel_and_dac_are_refused_for_files_other_than_abf(tmp_path):
    path = save_npz(
        Recording(dt=0.1, v=np.full((1, 20), -65.0), i=np.zeros((1, 20)), i_unit="pA"),
        tmp_path / "cell.npz",
    )
    with pytest.raises(
        RecordingError, match=r"cell\.npz: `dac` applies to \.abf files only"
    ):
        load_recording(path, dac=1)
    with pytest.raises(RecordingError, match=r"`channel` and `dac` apply"):
        load_recording(path, channel=0, dac=1)
    assert load_recording(path).v.shape == (1, 20)


def test_abf1_voltage_clamp_is_refused(tmp_path):
    path = tmp_path / "vc.abf"
    _write_abf1(path, np.zeros((2, 1000)), adc_unit="pA", dac_unit="mV")
    with pytest.raises(RecordingError, match=r"vc\.abf: .*voltage-clamp"):
        load_abf(path)


def test_abf1_unitless_is_refused(tmp_path):
    path = tmp_path / "nounit.abf"
    _write_abf1(path, np.zeros((2, 1000)), adc_unit="", dac_unit="")
    with pytest.raises(RecordingError, match=r"nounit\.abf: no membrane-potential"):
        load_abf(path)
    path2 = tmp_path / "nodac.abf"
    _write_abf1(path2, np.zeros((2, 1000)), adc_unit="mV", dac_unit="")
    with pytest.raises(RecordingError, match=r"nodac\.abf: .*has unit ''"):
        load_abf(path2)


# ------------------------------------------------------------------ NWB files
def _nwb_file(path, series, table=False, electrodes=1):
    """Write ``series(icephys, electrode) -> [acquisition objects, stimulus
    objects]``; with ``table``, pair them in the intracellular-recordings table
    instead. With ``electrodes`` > 1, ``series`` gets a list of that many."""
    pynwb = pytest.importorskip("pynwb", reason="pynwb (hhjax[nwb]) not installed")
    nwb = pynwb.NWBFile(
        session_description="test",
        identifier=path.stem,
        session_start_time=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
    )
    device = nwb.create_device(name="amplifier")
    made = [
        nwb.create_icephys_electrode(name=f"e{k}", description="patch", device=device)
        for k in range(electrodes)
    ]
    acquired, stimuli = series(pynwb.icephys, made[0] if electrodes == 1 else made)
    if table:
        for response, stimulus in zip(acquired, stimuli, strict=True):
            nwb.add_intracellular_recording(
                electrode=response.electrode, stimulus=stimulus, response=response
            )
    else:
        for s in acquired:
            nwb.add_acquisition(s)
        for s in stimuli:
            nwb.add_stimulus(s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pynwb.NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)


def _current_clamp(icephys, electrode, sweeps=(2, 0, 1), n=300):
    acquired, stimuli = [], []
    for s in sweeps:
        i_amp = np.zeros(n)
        i_amp[100:200] = (s - 1) * 50e-12  # amperes
        stimuli.append(
            icephys.CurrentClampStimulusSeries(
                name=f"stim{s}",
                data=i_amp,
                rate=10000.0,
                electrode=electrode,
                gain=1.0,
                sweep_number=s,
            )
        )
        acquired.append(
            icephys.CurrentClampSeries(
                name=f"resp{s}",
                data=np.full(n, -65.0 + s),
                conversion=1e-3,
                rate=10000.0,
                electrode=electrode,
                gain=1.0,
                sweep_number=s,
            )
        )
    return acquired, stimuli


def test_nwb_current_clamp_round_trip(tmp_path):
    path = tmp_path / "cc.nwb"
    _nwb_file(path, _current_clamp)
    rec = load_recording(path)
    assert rec.sweeps == (0, 1, 2) and rec.i_unit == "pA"
    assert rec.dt == pytest.approx(0.1) and rec.n_samples == 300
    np.testing.assert_allclose(rec.v[:, 0], [-65.0, -64.0, -63.0])  # mV
    np.testing.assert_allclose(rec.i[:, 150], [-50.0, 0.0, 50.0])  # pA


def test_nwb_voltage_clamp_is_refused(tmp_path):
    path = tmp_path / "vc.nwb"

    def series(icephys, electrode):
        vc = icephys.VoltageClampSeries(
            name="vc", data=np.zeros(10), rate=1e4, electrode=electrode, gain=1.0
        )
        return [vc], []

    _nwb_file(path, series)
    with pytest.raises(
        RecordingError, match=r"vc\.nwb: no CurrentClampSeries.*voltage"
    ):
        load_nwb(path)


def test_nwb_unpaired_sweep_is_refused(tmp_path):
    path = tmp_path / "unpaired.nwb"

    def series(icephys, electrode):
        acquired, stimuli = _current_clamp(icephys, electrode)
        return acquired, stimuli[:2]

    _nwb_file(path, series)
    with pytest.raises(RecordingError, match="no stimulus with the same sweep_number"):
        load_nwb(path)


def test_nwb_pairs_from_the_intracellular_recordings_table(tmp_path):
    # No sweep numbers: pynwb's add_intracellular_recording pairs the series in a
    # table (refused before: "no stimulus with the same sweep_number (None)").
    path = tmp_path / "table.nwb"

    def series(icephys, electrode):
        made = [
            _nwb_pair(icephys, electrode, k, None, i_amp=-(k + 1) * 50e-12)
            for k in range(3)
        ]
        return [r for r, _ in made], [st for _, st in made]

    _nwb_file(path, series, table=True)
    rec = load_nwb(path)
    assert rec.sweeps == (0, 1, 2)  # the rows, without sweep numbers
    np.testing.assert_allclose(rec.i[:, 500], [-50.0, -100.0, -150.0])  # pA
    np.testing.assert_allclose(rec.v, -65.0)  # mV


def test_nwb_stimulus_shorter_than_its_response_is_named(tmp_path):
    path = tmp_path / "short.nwb"

    def series(icephys, electrode):
        response, stimulus = _nwb_pair(icephys, electrode, 0, 4)
        short = icephys.CurrentClampStimulusSeries(
            name="s0", data=np.asarray(stimulus.data)[:-10], rate=20000.0,
            electrode=electrode, gain=1.0, sweep_number=4,
        )  # fmt: skip
        return [response], [short]

    _nwb_file(path, series)
    with pytest.raises(
        RecordingError,
        match=r"sweep 4: the stimulus 's0' has 990 samples but the response 'r0' has 1000",
    ):
        load_nwb(path)


def _nwb_pair(icephys, electrode, name, sweep, i_amp=-100e-12, **kw):
    """A 1000-sample response (-65 mV) and a stimulus step of ``i_amp`` amperes;
    ``kw`` (e.g. ``stim_sweep``, ``stim_start``) set the stimulus apart."""
    i = np.zeros(1000)
    i[200:800] = i_amp
    common = {"electrode": electrode, "rate": 20000.0, "gain": 1.0}
    response = icephys.CurrentClampSeries(
        name=f"r{name}",
        data=np.full(1000, -0.065),
        sweep_number=sweep,
        starting_time=kw.get("start", 0.0),
        **common,
    )
    stimulus = icephys.CurrentClampStimulusSeries(
        name=f"s{name}",
        data=i,
        sweep_number=kw.get("stim_sweep", sweep),
        starting_time=kw.get("stim_start", kw.get("start", 0.0)),
        **common,
    )
    return response, stimulus


def _nwb_pairs(path, *pairs):
    """Write the ``(name, sweep, kw)`` pairs of :func:`_nwb_pair` to ``path``."""

    def series(icephys, electrode):
        made = [_nwb_pair(icephys, electrode, n, s, **kw) for n, s, kw in pairs]
        return [r for r, _ in made], [st for _, st in made]

    _nwb_file(path, series)


def test_nwb_single_pair_needs_matching_sweep_numbers(tmp_path):
    path = tmp_path / "mismatch.nwb"
    _nwb_pairs(path, (0, 3, {"stim_sweep": 7}))
    with pytest.raises(
        RecordingError,
        match=r"mismatch\.nwb: .*sweep_number 3 .*has 7; they must match",
    ):
        load_nwb(path)
    _nwb_pairs(path, (0, 3, {}))  # the same numbers pair; sweeps keeps the number
    assert load_nwb(path).sweeps == (3,)


@pytest.mark.parametrize("twice", ["stimulus", "response"])
def test_nwb_sweep_number_used_twice_is_refused(tmp_path, twice):
    path = tmp_path / "dup.nwb"

    def series(icephys, electrode):
        r0, s0 = _nwb_pair(icephys, electrode, 0, 0)
        r1, s1 = _nwb_pair(icephys, electrode, 1, 1, i_amp=-200e-12)
        if twice == "stimulus":  # both stimuli claim sweep 0: the last used to win
            s1 = _nwb_pair(icephys, electrode, 1, 0, i_amp=-200e-12)[1]
        else:
            r1 = _nwb_pair(icephys, electrode, 1, 0)[0]
        return [r0, r1], [s0, s1]

    _nwb_file(path, series)
    with pytest.raises(RecordingError, match=r"dup\.nwb: .*both have sweep_number 0"):
        load_nwb(path)


@pytest.mark.parametrize(
    "table, stim_sweeps", [(False, True), (True, True), (True, False)]
)
def test_nwb_of_several_cells_loads_the_electrode_asked_for(
    tmp_path, table, stim_sweeps
):
    # Two cells recorded together (the same sweep numbers on both electrodes):
    # the file could not be loaded at all ("both have sweep_number 0"). Without
    # sweep numbers on the stimuli only the intracellular-recordings table pairs
    # them, and its other electrode's rows must not get in the way.
    path = tmp_path / "pair.nwb"

    def series(icephys, electrodes):
        made = [
            _nwb_pair(
                icephys,
                e,
                f"{e.name}_{k}",
                k,
                i_amp=-(k + 1 + 10 * j) * 1e-11,
                stim_sweep=k if stim_sweeps else None,
            )  # fmt: skip
            for j, e in enumerate(electrodes)
            for k in range(2)
        ]
        return [r for r, _ in made], [st for _, st in made]

    _nwb_file(path, series, table=table, electrodes=2)
    with pytest.raises(
        RecordingError,
        match=r"pair\.nwb: current-clamp series of 2 electrodes \['e0', 'e1'\] \(one "
        r"cell each\); pass `electrode='e0'` \(`--electrode e0` on the command line\)",
    ):
        load_nwb(path)
    for j in range(2):
        rec = load_recording(path, electrode=f"e{j}")
        assert rec.sweeps == (0, 1)
        np.testing.assert_allclose(rec.i.min(axis=1), [-10 - 100 * j, -20 - 100 * j])
    with pytest.raises(
        RecordingError, match=r"no current-clamp series of electrode 'e2'"
    ):
        load_nwb(path, electrode="e2")
    with pytest.raises(RecordingError, match=r"`channel` applies to \.abf files only"):
        load_recording(path, channel=0)


def test_nwb_stimulus_must_start_with_its_response(tmp_path):
    path = tmp_path / "late.nwb"
    _nwb_pairs(path, (0, 0, {"start": 0.0}), (1, 1, {"start": 1.0, "stim_start": 1.5}))
    with pytest.raises(
        RecordingError, match=r"late\.nwb: sweep 1: .*starts 500 ms after the response"
    ):
        load_nwb(path)
    # Sweeps may start at different times; within half a sample (0.025 ms) is one.
    _nwb_pairs(path, (0, 0, {}), (1, 1, {"start": 1.0, "stim_start": 1.0 + 1e-5}))
    rec = load_nwb(path)
    assert rec.sweeps == (0, 1) and rec.dt == pytest.approx(0.05)
    np.testing.assert_allclose(rec.i[:, 300], [-100.0, -100.0])


@pytest.mark.parametrize(
    ("v", "i_amp", "message"),
    [
        (-65.0, -100e-12, r"series 'r0' reaches 6\.5e\+04 mV .*conversion=0\.001"),
        (-0.065, -100.0, r"series 's0' reaches 1e\+14 pA .*conversion=1e-12"),
    ],
)
def test_nwb_data_stored_without_conversion_is_named(tmp_path, v, i_amp, message):
    # mV (or pA) written as NWB's volts (amperes) with conversion 1 loaded as
    # -65000 mV (or -1e14 pA) without a word.
    path = tmp_path / "units.nwb"

    def series(icephys, electrode):
        response, stimulus = _nwb_pair(icephys, electrode, 0, 0, i_amp=i_amp)
        response.fields["data"] = np.full(1000, v)
        return [response], [stimulus]

    _nwb_file(path, series)
    with pytest.raises(RecordingError, match=r"units\.nwb: " + message):
        load_nwb(path)


def test_nwb_timestamps_from_the_session_start_load(tmp_path):
    # NWB's timestamps count seconds from the session start: sweep k at 20 k s.
    # Their differences carry ~1e-10 relative rounding, and a comparison to 12
    # decimals refused the file ("series differ in sample interval").
    path = tmp_path / "session.nwb"

    def series(icephys, electrode):
        made = []
        for k in range(3):
            t = 20.0 * k + np.arange(1000) / 20000.0  # s
            response, stimulus = _nwb_pair(icephys, electrode, k, k)
            for s in (response, stimulus):
                s.fields.pop("rate")
                s.fields.pop("starting_time")
                s.fields["timestamps"] = t
            made.append((response, stimulus))
        return [r for r, _ in made], [st for _, st in made]

    _nwb_file(path, series)
    rec = load_nwb(path)
    assert rec.sweeps == (0, 1, 2) and rec.dt == 0.05  # ms, to 12 decimals
    # a real difference in rate is still refused

    def other_rate(icephys, electrode):
        made = [_nwb_pair(icephys, electrode, k, k) for k in range(2)]
        for s in made[1]:
            s.fields["rate"] = 20010.0  # Hz
        return [r for r, _ in made], [st for _, st in made]

    _nwb_file(path, other_rate)
    with pytest.raises(RecordingError, match=r"differ in sample interval \(\[0\.04997"):
        load_nwb(path)


def test_nwb_warnings_on_reading_come_once_per_kind(tmp_path):
    # A unit label that NWB ignores (data labelled mV, conversion right) made
    # pynwb warn once per series: 2 lines per sweep on the command line.
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "labels.nwb"
    _nwb_pairs(path, *[(k, k, {}) for k in range(4)])
    with h5py.File(path, "r+") as f:
        for k in range(4):
            f[f"acquisition/r{k}/data"].attrs["unit"] = "mV"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = load_nwb(path)
    assert rec.n_sweeps == 4
    texts = [str(w.message) for w in caught if "Unit 'mV'" in str(w.message)]
    assert len(texts) == 1, texts
    assert texts[0].startswith(f"{path}: ") and "(and 3 more series alike)" in texts[0]


def test_nwb_stimulus_converted_twice_is_named(tmp_path):
    # Amperes stored with conversion 1e-12 loaded as ~1e-10 pA without a word
    # (the real-cell fit then found "no hyperpolarising step: is the current in nA?").
    path = tmp_path / "twice.nwb"

    def series(icephys, electrode):
        response, stimulus = _nwb_pair(icephys, electrode, 0, 0)
        stimulus.fields["conversion"] = 1e-12
        return [response], [stimulus]

    _nwb_file(path, series)
    with pytest.raises(
        RecordingError,
        match=r"twice\.nwb: the stimulus reaches at most 1e-10 pA .*need conversion=1,",
    ):
        load_nwb(path)
    _nwb_pairs(path, (0, 0, {"i_amp": 0.0}))  # a sweep without current is no error
    assert load_nwb(path).i.max() == 0.0


def _two_protocols(path, descriptions):
    """Sweeps 0, 1 of 1000 samples and sweep 2 of 400, their series described by
    ``descriptions`` (one per sweep)."""

    def series(icephys, electrode):
        made = [_nwb_pair(icephys, electrode, k, k) for k in range(3)]
        for (response, stimulus), name in zip(made, descriptions, strict=True):
            for s in (response, stimulus):
                s.fields["stimulus_description"] = name
        for s in made[2]:
            s.fields["data"] = np.asarray(s.data)[:400]
        return [r for r, _ in made], [st for _, st in made]

    _nwb_file(path, series)


def test_nwb_protocol_is_chosen_by_stimulus_description(tmp_path):
    # One file per cell holds all its protocols; sweeps of different lengths
    # were refused with no way to choose.
    path = tmp_path / "cell.nwb"
    _two_protocols(path, ["steps", "steps", "ramp"])
    with pytest.raises(
        RecordingError,
        match=r"cell\.nwb: sweeps differ in length: 2 sweeps \(0, 1\) of 1000 samples, "
        r"stimulus_description 'steps'; 1 sweep \(2\) of 400 samples, "
        r"stimulus_description 'ramp'\. .*`stimulus_description='steps'` "
        r"\(`--stimulus-description steps`",
    ):
        load_nwb(path)
    assert load_recording(path, stimulus_description="steps").sweeps == (0, 1)
    ramp = load_nwb(path, stimulus_description="ramp")
    assert ramp.sweeps == (2,) and ramp.n_samples == 400
    with pytest.raises(
        RecordingError, match=r"no current-clamp series with stimulus_description "
        r"'Steps'; the file's are \['ramp', 'steps'\]",
    ):  # fmt: skip
        load_nwb(path, stimulus_description="Steps")
    with pytest.raises(RecordingError, match=r"`stimulus_description` applies to .nwb"):
        load_recording(tmp_path / "x.abf", stimulus_description="steps")
    _two_protocols(path, ["A", "B", "C"])  # two protocols of one length
    with pytest.raises(RecordingError, match=r"`stimulus_description='A'`"):
        load_nwb(path)
    _two_protocols(path, ["N/A"] * 3)  # nothing tells them apart
    with pytest.raises(RecordingError, match="does not tell the protocols apart"):
        load_nwb(path)


def test_nwb_table_row_without_a_stimulus_is_named(tmp_path):
    # The error said the response had no row of its own in the table; it has one,
    # whose stimulus is missing.
    pynwb = pytest.importorskip("pynwb", reason="pynwb (hhjax[nwb]) not installed")
    path = tmp_path / "nostim.nwb"
    nwb = pynwb.NWBFile(
        session_description="test",
        identifier="nostim",
        session_start_time=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
    )
    device = nwb.create_device(name="amplifier")
    electrode = nwb.create_icephys_electrode(
        name="e0", description="patch", device=device
    )
    response, _ = _nwb_pair(pynwb.icephys, electrode, 0, 0)
    nwb.add_intracellular_recording(electrode=electrode, response=response)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pynwb.NWBHDF5IO(str(path), "w") as io:
            io.write(nwb)
    with pytest.raises(
        RecordingError,
        match=r"row 0 of the intracellular-recordings table has the response 'r0' "
        "but no current-clamp stimulus",
    ):
        load_nwb(path)


def test_nwb_corrupt_and_missing_dependency(tmp_path, monkeypatch):
    bad = tmp_path / "junk.nwb"
    bad.write_bytes(b"\x89HDF junk" * 100)
    pytest.importorskip("pynwb")
    with pytest.raises(RecordingError, match=r"junk\.nwb: not a readable NWB"):
        load_nwb(bad)
    monkeypatch.setitem(sys.modules, "pynwb", None)
    with pytest.raises(ImportError, match=r"pip install 'hhjax\[nwb\]'"):
        load_nwb(bad)


# --------------------------------------------------------------- npz and csv
def _recording(n_sweeps=2, n=50):
    rng = np.random.default_rng(2)
    return Recording(
        dt=0.05,
        v=-65.0 + rng.normal(size=(n_sweeps, n)),
        i=np.tile(np.r_[np.zeros(n // 2), np.full(n - n // 2, 20.0)], (n_sweeps, 1)),
        i_unit="pA",
        c_pf=80.0,
        sweeps=tuple(range(3, 3 + n_sweeps)),
    )


def test_npz_round_trip(tmp_path):
    rec = _recording()
    assert save_npz(rec, tmp_path / "r.npz") == tmp_path / "r.npz"
    back = load_recording(tmp_path / "r.npz")
    np.testing.assert_array_equal(back.v, rec.v)
    np.testing.assert_array_equal(back.i, rec.i)
    assert back.dt == pytest.approx(rec.dt, rel=1e-12)
    assert (back.i_unit, back.c_pf, back.sweeps) == ("pA", 80.0, rec.sweeps)


def test_abf_recording_round_trips_through_npz(tmp_path):
    """An ABF recording is in pA with no capacitance; its .npz loads back."""
    rec = load_abf(DATA / "18711001.abf").select([3, 5])
    back = load_recording(save_npz(rec, tmp_path / "rt"))
    np.testing.assert_array_equal(back.v, rec.v)
    np.testing.assert_array_equal(back.i, rec.i)
    assert back.dt == pytest.approx(rec.dt, rel=1e-12)
    assert (back.i_unit, back.c_pf, back.sweeps) == ("pA", None, (3, 5))
    # turning it into a density still asks for the capacitance
    with pytest.raises(RecordingError, match="cell capacitance is unknown"):
        back.current_density()


def test_npz_written_exactly_at_the_path_given(tmp_path):
    # np.savez appends ".npz" unless the name ends in lower-case ".npz".
    path = save_npz(_recording(), tmp_path / "R.NPZ")
    assert path == tmp_path / "R.NPZ"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R.NPZ"]
    # Without the suffix it is appended, as NumPy does, so the file loads.
    path = save_npz(_recording(), tmp_path / "plain")
    assert path == tmp_path / "plain.npz"
    assert load_recording(path).n_sweeps == 2


def test_float64_time_base_keeps_the_median_step(tmp_path):
    # The step of a float64 column is its median step, as files written before
    # the float32 allowance were read (so their fits and checkpoints match).
    t = np.arange(1001) * 0.025 + 100.0
    zeros = np.zeros_like(t)
    np.savez(tmp_path / "r.npz", t_ms=t, v_mV=zeros, i_uA_per_cm2=zeros)
    assert load_recording(tmp_path / "r.npz").dt == float(np.median(np.diff(t)))


def _write_csv(path, columns):
    names = list(columns)
    rows = np.column_stack([np.asarray(columns[k], dtype=float) for k in names])
    np.savetxt(path, rows, delimiter=",", header=",".join(names), comments="")


def test_csv_round_trip(tmp_path):
    t = 0.025 * np.arange(40)
    v = -70.0 + np.sin(t)
    i = np.where(t > 0.5, 3.0, 0.0)
    _write_csv(tmp_path / "r.csv", {"t_ms": t, "v_mV": v, "i_uA_per_cm2": i})
    rec = load_recording(tmp_path / "r.csv")
    assert rec.dt == pytest.approx(0.025) and rec.i_unit == "uA/cm2"
    np.testing.assert_allclose(rec.v[0], v, rtol=1e-12)
    np.testing.assert_allclose(rec.i[0], i)


def test_table_validation_errors(tmp_path):
    t = 0.1 * np.arange(20)
    v = np.full(20, -65.0)
    i = np.zeros(20)
    np.savez(tmp_path / "short.npz", t_ms=t, v_mV=v[:-3], i_uA_per_cm2=i)
    with pytest.raises(RecordingError, match="17 samples per sweep but `t_ms` has 20"):
        load_npz(tmp_path / "short.npz")
    t_bad = t.copy()
    t_bad[7] += 0.05
    np.savez(tmp_path / "jitter.npz", t_ms=t_bad, v_mV=v, i_uA_per_cm2=i)
    with pytest.raises(RecordingError, match="time base is not uniform"):
        load_npz(tmp_path / "jitter.npz")
    v_nan = v.copy()
    v_nan[4] = np.nan
    _write_csv(tmp_path / "nan.csv", {"t_ms": t, "v_mV": v_nan, "i_uA_per_cm2": i})
    with pytest.raises(RecordingError, match="NaN/inf samples"):
        load_csv(tmp_path / "nan.csv")
    _write_csv(tmp_path / "cols.csv", {"t_ms": t, "v_mV": v})
    with pytest.raises(RecordingError, match="expected columns"):
        load_csv(tmp_path / "cols.csv")
    np.savez(tmp_path / "nocap.npz", t_ms=t, v_mV=v, i_pA=i)  # pA, c_pf unknown
    rec = load_npz(tmp_path / "nocap.npz")
    assert (rec.i_unit, rec.c_pf) == ("pA", None)
    _write_csv(tmp_path / "nocap.csv", {"t_ms": t, "v_mV": v, "i_pA": i})
    assert load_csv(tmp_path / "nocap.csv").c_pf is None
    np.savez(tmp_path / "cneg.npz", t_ms=t, v_mV=v, i_pA=i, c_pF=-5.0)  # its name
    with pytest.raises(RecordingError, match=r"`c_pF` must be a finite number > 0"):
        load_npz(tmp_path / "cneg.npz")
    np.savez(tmp_path / "cstr.npz", t_ms=t, v_mV=v, i_pA=i, c_pF="100")
    with pytest.raises(RecordingError, match=r"`c_pF` must be a number; got \['100'\]"):
        load_npz(tmp_path / "cstr.npz")
    _write_csv(tmp_path / "down.csv", {"t_ms": t[::-1], "v_mV": v, "i_uA_per_cm2": i})
    with pytest.raises(RecordingError, match=r"down\.csv: `t_ms` must increase"):
        load_csv(tmp_path / "down.csv")


def test_npz_that_is_not_a_zip_archive(tmp_path):
    bad = tmp_path / "abf.npz"
    bad.write_bytes((DATA / "18711001.abf").read_bytes()[:5000])
    with pytest.raises(RecordingError, match=r"abf\.npz: not a \.npz \(zip\) archive"):
        load_recording(bad)
    np.save(tmp_path / "array.npy", np.zeros(10))  # a .npy, not a .npz
    (tmp_path / "array.npy").rename(tmp_path / "array.npz")
    with pytest.raises(RecordingError, match=r"array\.npz: not a \.npz \(zip\)"):
        load_npz(tmp_path / "array.npz")


@pytest.mark.parametrize("suffix", [".abf", ".nwb", ".npz", ".csv"])
def test_a_directory_is_not_a_recording(tmp_path, suffix):
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    with pytest.raises(
        RecordingError, match=rf"folder\{suffix}: is a directory, not a"
    ):
        load_recording(folder)


@pytest.mark.parametrize(
    ("sweeps", "problem"),
    [([1, 1], "distinct"), ([1.7, 2.2], "whole numbers"), ([-1, -2], ">= 0")],
)
def test_npz_sweep_indices_are_checked(tmp_path, sweeps, problem):
    t = 0.1 * np.arange(10)
    v = np.zeros((2, 10))
    np.savez(tmp_path / "s.npz", t_ms=t, v_mV=v, i_uA_per_cm2=v, sweeps=sweeps)
    with pytest.raises(RecordingError, match=rf"s\.npz: `sweeps` must be .*{problem}"):
        load_npz(tmp_path / "s.npz")


def test_csv_header_names_each_column_once(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("t_ms,v_mV,v_mV,i_uA_per_cm2\n0,-65,1,0\n0.1,-64,2,0\n")
    with pytest.raises(RecordingError, match=r"dup\.csv: column\(s\) \['v_mV'\]"):
        load_csv(path)


def test_csv_sweeps_column_is_the_index_of_its_one_sweep(tmp_path):
    t = 0.1 * np.arange(10)
    zeros = np.zeros(10)
    cols = {"t_ms": t, "v_mV": zeros, "i_uA_per_cm2": zeros, "sweeps": zeros + 7}
    _write_csv(tmp_path / "s7.csv", cols)
    assert load_csv(tmp_path / "s7.csv").sweeps == (7,)
    _write_csv(tmp_path / "many.csv", {**cols, "sweeps": np.arange(10)})
    with pytest.raises(
        RecordingError, match=r"many\.csv: `sweeps` must be one value .*10 different"
    ):
        load_csv(tmp_path / "many.csv")


def test_csv_with_byte_order_mark(tmp_path):
    """Excel's "CSV UTF-8" starts with a BOM; it must not end up in `t_ms`."""
    path = tmp_path / "excel.csv"
    rows = "".join(f"{0.1 * k:g},-65,0\n" for k in range(5))
    path.write_text("t_ms,v_mV,i_uA_per_cm2\n" + rows, encoding="utf-8-sig")
    rec = load_csv(path)
    assert rec.dt == pytest.approx(0.1) and rec.n_samples == 5


def test_csv_ragged_row_names_the_line(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("t_ms,v_mV,i_uA_per_cm2\n0,-65,0\n0.1,-65\n0.2,-65,0\n")
    with pytest.raises(RecordingError, match=r"ragged\.csv: line 3 has 2 values"):
        load_csv(path)
    path.write_text("t_ms,v_mV,i_uA_per_cm2\n0,-65,0\n0.1,-65,0\n0.2,x,0\n")
    with pytest.raises(RecordingError, match=r"ragged\.csv: line 4: non-numeric"):
        load_csv(path)
    path.write_text("t_ms;v_mV;i_uA_per_cm2\n0;-65;0\n0.1;-65;0\n")  # a European CSV
    with pytest.raises(RecordingError, match=r"looks separated by ';': values must"):
        load_csv(path)


def test_float32_time_base(tmp_path):
    """10 s at 50 kHz in float32: steps are only good to ~1e-3 ms, yet uniform."""
    t = (np.arange(500_000) * 0.02).astype(np.float32)
    zeros = np.zeros(t.size)
    np.savez(tmp_path / "f32.npz", t_ms=t, v_mV=zeros - 65.0, i_uA_per_cm2=zeros)
    rec = load_npz(tmp_path / "f32.npz")
    assert rec.dt == pytest.approx(0.02, rel=1e-6)
    # a missing sample near the end is still a non-uniform time base
    gap = np.delete(t, 400_000)
    np.savez(tmp_path / "gap.npz", t_ms=gap, v_mV=zeros[1:], i_uA_per_cm2=zeros[1:])
    with pytest.raises(RecordingError, match="not uniform.*float64, not float32"):
        load_npz(tmp_path / "gap.npz")


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_simulated_trace_loads_as_recording(tmp_path, suffix):
    """`hhjax.io.save_trace` names the current `i_ext_uA_per_cm2`: an alias."""
    i_ext = np.where(np.arange(200) >= 40, 10.0, 0.0)
    trace = hhjax.simulate(hhjax.HHParams(), i_ext, 0.025)
    path = io.save_trace(trace, tmp_path / f"trace{suffix}", i_ext=i_ext)
    rec = load_recording(path)
    assert rec.i_unit == "uA/cm2" and rec.dt == pytest.approx(0.025)
    np.testing.assert_allclose(rec.v[0], trace.v, rtol=1e-9)
    np.testing.assert_allclose(rec.i[0], i_ext)


def test_current_alias_is_not_a_second_current(tmp_path):
    t = 0.1 * np.arange(5)
    both = {"t_ms": t, "v_mV": t, "i_uA_per_cm2": t, "i_ext_uA_per_cm2": t}
    np.savez(tmp_path / "both.npz", **both)
    with pytest.raises(RecordingError, match="exactly one of i_uA_per_cm2"):
        load_npz(tmp_path / "both.npz")


def test_batched_trace_layout_is_named(tmp_path):
    t = 0.1 * np.arange(6)
    np.savez(tmp_path / "b.npz", t_ms=t, v_mV=np.zeros((6, 2)), i_uA_per_cm2=t)
    with pytest.raises(RecordingError, match=r"\(time, cell\).*save_trace"):
        load_npz(tmp_path / "b.npz")


# ------------------------------------------------------------ cell properties
def _rc_recording(
    r_mohm=200.0, tau_ms=20.0, r_s=10.0, e=-70.0, noise=0.05, amp_pa=-100.0
):
    """An exact RC cell with an unbalanced bridge, ``amp_pa`` (−100 pA) from 50 to
    350 ms."""
    dt, n = 0.05, 10000
    t = dt * np.arange(n)
    i = np.where((t >= 50.0) & (t < 350.0), amp_pa, 0.0)
    on = np.clip(t - 50.0, 0.0, None)
    off = np.clip(t - 350.0, 0.0, None)
    charge = (1 - np.exp(-on / tau_ms)) - (1 - np.exp(-off / tau_ms))
    v = e + 1e-3 * amp_pa * (r_mohm * charge) + 1e-3 * r_s * i
    rng = np.random.default_rng(3)
    v = v + rng.normal(0.0, noise, (4, n))
    return Recording(dt=dt, v=v, i=np.tile(i, (4, 1)), i_unit="pA", source="rc")


def test_cell_properties_recover_an_rc_cell():
    props = cell_properties(_rc_recording())
    assert props.r_in == pytest.approx(210.0, rel=0.01)  # R_m + R_s at steady state
    assert props.r_membrane == pytest.approx(200.0, rel=0.01)
    assert props.tau == pytest.approx(20.0, rel=0.01)
    assert props.c_pf == pytest.approx(100.0, rel=0.02)
    assert props.r_series == pytest.approx(10.0, abs=1.0)
    assert props.v_rest == pytest.approx(-70.0, abs=0.01)
    assert props.window == pytest.approx((50.0, 350.0))
    assert props.step_pa == pytest.approx(-100.0)
    assert props.fit_r2 > 0.999 and props.fit_rmse < 0.05
    assert abs(props.sag) < 0.01
    assert props.area_cm2() == pytest.approx(props.c_pf * 1e-6)


def test_cell_properties_pass_over_a_test_pulse():
    # A 5 ms test pulse before the step made "no hyperpolarising current step".
    rec = _rc_recording()
    pulse = (rec.t >= 10.0) & (rec.t < 15.0)
    with_pulse = rec.replace(i=np.where(pulse, -50.0, rec.i))
    got, expected = cell_properties(with_pulse), cell_properties(rec)
    for field in ("r_in", "tau", "c_pf", "r_series", "window", "step_pa"):
        assert getattr(got, field) == pytest.approx(getattr(expected, field))


def test_fit_exponential_exact():
    t = np.linspace(0.0, 60.0, 400)
    fit = fit_exponential(t, 3.0 - 7.0 * np.exp(-t / 12.5))
    assert fit["tau"] == pytest.approx(12.5, rel=1e-6)
    assert (fit["c"], fit["a"]) == pytest.approx((3.0, -7.0), rel=1e-6)
    assert fit["r2"] == pytest.approx(1.0)


def test_fit_exponential_says_when_the_data_do_not_determine_tau():
    # tau 5000 ms over 10 ms of data came back as 199 ms (the search's end),
    # with a finite standard error.
    t = np.linspace(0.0, 10.0, 200)
    with pytest.warns(RuntimeWarning, match=r"at the end of the searched range"):
        fit = fit_exponential(t, 1.0 - np.exp(-t / 5000.0))
    assert fit["tau_se"] == np.inf
    with pytest.raises(ValueError, match=r"must be finite"):
        fit_exponential(t, np.where(t > 5.0, np.nan, t))
    with pytest.raises(ValueError, match=r"one length >= 4; got shapes \(3,\)"):
        fit_exponential(t[:3], t[:3])


@pytest.fixture(scope="module")
def properties():
    return {name: cell_properties(load_abf(DATA / name)) for name in FILES}


def test_cell_properties_of_18711001(properties):
    props = properties["18711001.abf"]
    assert props.window == pytest.approx((23.4, 323.4), abs=0.05)
    assert props.step_pa == pytest.approx(-100.0)
    assert props.sweeps == tuple(range(30))
    assert np.median(MANIFEST["18711001.abf"]["pre_vm"]) == pytest.approx(
        props.v_rest, abs=0.3
    )


def test_cell_properties_window_must_be_the_step():
    # A window to a sample of the step's edges gives the detected result; one
    # that cut into the step or ran past it gave e.g. r_in 3 or 82 MOhm silently.
    rec = load_abf(DATA / "18711001.abf").select([0, 1, 2])
    detected = cell_properties(rec)
    given = cell_properties(rec, window=(23.35, 323.45))
    assert given.r_in == pytest.approx(detected.r_in, rel=0.01)
    assert given.c_pf == pytest.approx(detected.c_pf, rel=0.01)
    for window in [(20.0, 400.0), (23.4, 500.0), (30.0, 300.0)]:
        with pytest.raises(
            RecordingError,
            match=r"18711001.abf: `window` .* ms is not a step of the command "
            r"current in 3 sweep\(s\).*sweep 0 the command changes at 23.4, 323.4 ms",
        ):
            cell_properties(rec, window=window)


def test_an_abf_file_becomes_fit_data_with_its_capacitance(properties):
    import fitting

    path = DATA / "18711001.abf"
    with pytest.raises(RecordingError, match=r"unknown; give `c_pf` \(pF\).*load_data"):
        fitting.load_data(path)
    c_pf = properties["18711001.abf"].c_pf
    data = fitting.load_data(path, c_pf=c_pf, sweeps=[10], c_m=1.0)
    recording = load_abf(path).select([10])
    np.testing.assert_allclose(data.i, recording.i / c_pf)  # 1 µF/cm²: pA / pF
    np.testing.assert_array_equal(data.v, recording.v)


@pytest.mark.parametrize("name", FILES)
def test_cell_properties_sane_on_shipped_files(properties, name):
    p = properties[name]
    assert -75.0 < p.v_rest < -50.0
    assert 50.0 < p.r_in < 1000.0  # MOhm
    assert 3.0 < p.tau < 80.0 and p.tau_se < 0.05 * p.tau  # ms
    assert 10.0 < p.c_pf < 500.0  # pF
    assert 0.0 < p.r_series < 30.0  # MOhm, unbalanced bridge
    assert p.fit_r2 > 0.99
    assert p.t_fit.shape == p.v_fit.shape == p.v_mean.shape


def test_same_cell_same_capacitance(properties):
    a, b = properties["171116sh_0018.abf"], properties["171116sh_0019.abf"]
    assert a.c_pf == pytest.approx(b.c_pf, rel=0.1)
    assert properties["2019_07_24_0055_fsi.abf"].c_pf < 0.5 * a.c_pf


def test_capacitance_converts_pa_to_density(properties):
    rec = load_abf(DATA / "18711001.abf").select([7])
    c_pf = properties["18711001.abf"].c_pf
    density = rec.replace(c_pf=c_pf).current_density()
    np.testing.assert_allclose(density, rec.i / c_pf)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sweeps": []}, "`sweeps` is empty"),
        ({"baseline_ms": float("nan")}, "`baseline_ms` must be a finite number > 0"),
        ({"baseline_ms": -5.0}, "`baseline_ms` must be a finite number > 0"),
        ({"skip_ms": -1.0}, "`skip_ms` must be >= 0 ms"),
        ({"c_m": 0.0}, "`c_m` must be a finite number > 0"),
        ({"window": ("50", 350.0)}, "`window` must be a number"),
    ],
)
def test_cell_properties_checks_its_arguments(kwargs, message):
    with pytest.raises(RecordingError, match=rf"rc: {re.escape(message)}"):
        cell_properties(_rc_recording(), **kwargs)


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ({}, r"changes by at most 0\.1 pA.*is the current in nA\?"),
        (
            {"r_mohm": 50.0, "tau_ms": 5.0, "r_s": 0.0, "amp_pa": -1000.0},
            r"the -1 pA step gives an input resistance of 50 GOhm and a capacitance "
            r"of 0\.1 pF.*is the current in nA\?",
        ),
    ],
)
def test_a_current_in_na_is_named(cell, message):
    # The step in nA stored as pA: -1 nA (a 50 MOhm, 100 pF cell) gave r_in 50 GOhm
    # and c_pf 0.1 pF silently; -0.1 nA only "no hyperpolarising current step".
    rec = _rc_recording(noise=0.0, **cell)
    rec = rec.replace(i=rec.i / 1000.0)  # pA -> nA, still labelled pA
    with pytest.raises(RecordingError, match=r"rc: .*" + message):
        cell_properties(rec)


def test_no_hyperpolarising_step_is_an_error():
    rec = _rc_recording()
    rec = rec.replace(i=-rec.i)
    with pytest.raises(RecordingError, match="rc: no hyperpolarising current step"):
        cell_properties(rec)


# ---------------------------------------------------------------- corrections
def test_corrections_default_to_none_and_follow_the_formula():
    rec = _rc_recording(noise=0.0)
    np.testing.assert_array_equal(correct(rec).v, rec.v)
    out = correct(rec, liquid_junction=12.0, series_resistance=10.0, offset=1.0)
    np.testing.assert_allclose(out.v, rec.v - 12.0 - 10.0 * 1e-3 * rec.i - 1.0)
    # bridge balance with the true R_s removes the jump at onset:
    balanced = cell_properties(correct(rec, series_resistance=10.0))
    assert balanced.r_series == pytest.approx(0.0, abs=0.5)
    assert balanced.r_in == pytest.approx(200.0, rel=0.01)


def test_baseline_drift_correction():
    rec = _rc_recording(noise=0.0)
    shifts = np.array([0.0, 2.0, -1.0, 5.0])
    drifted = rec.replace(v=rec.v + shifts[:, None])
    drift = baseline_drift(drifted)
    np.testing.assert_allclose(drift, shifts - np.median(shifts), atol=1e-9)
    fixed = correct(drifted, offset=drift)
    np.testing.assert_allclose(np.ptp(sweep_baselines(fixed)), 0.0, atol=1e-9)
    with pytest.raises(RecordingError, match="one value per sweep"):
        correct(rec, offset=[1.0, 2.0])


@pytest.mark.parametrize(
    ("unit", "c_pf", "step"),
    [
        ("pA", 100.0, 30.0),
        ("uA/cm2", 100.0, 0.3),  # the same 30 pA as a density
        ("uA/cm2", None, 0.3),  # density, capacitance unknown
        ("uA/cm2", 1000.0, 0.003),  # 3 pA on a big cell
    ],
)
def test_sweep_baselines_see_small_steps_in_any_unit(unit, c_pf, step):
    """The step is found in pA terms, whatever the unit of the current."""
    k = np.arange(1000)
    v = np.where(k >= 500, -60.0, -70.0)
    i = np.where(k >= 500, step, 0.0)
    rec = Recording(dt=0.1, v=v, i=i, i_unit=unit, c_pf=c_pf)
    np.testing.assert_allclose(sweep_baselines(rec), [-70.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"liquid_junction": float("nan")}, "`liquid_junction` must be a finite"),
        ({"series_resistance": "10"}, "`series_resistance` must be a number (MΩ)"),
        ({"offset": [0.0, np.nan, 0.0, 0.0]}, "`offset` must be finite numbers"),
        ({"offset": "x"}, "`offset` must be finite numbers"),
        ({"c_m": -1.0, "series_resistance": 1.0}, "`c_m` must be a finite number > 0"),
    ],
)
def test_correct_checks_its_arguments(kwargs, message):
    with pytest.raises(RecordingError, match=rf"rc: {re.escape(message)}"):
        correct(_rc_recording(), **kwargs)


@pytest.mark.parametrize("c_m", [-1.0, 0.0, float("nan"), "1"])
def test_current_density_needs_a_positive_c_m(c_m):
    rec = _recording(n_sweeps=1)  # pA, c_pf 80
    np.testing.assert_allclose(rec.current_density(2.0), rec.i * 2.0 / 80.0)
    with pytest.raises(RecordingError, match="`c_m` must be a"):
        rec.current_density(c_m)


def test_time_first_arrays_are_named():
    # (samples, cells) from hhjax.simulate passed as (sweeps, samples): 800
    # "sweeps" of 2 samples each, which fitted nothing sensible.
    v = np.zeros((800, 2))
    with pytest.warns(
        UserWarning,
        match=r"800 sweeps of 2 samples each: .*sweeps "
        r"first.*\(e.g. trace.v.T\)",
    ):
        Recording(dt=0.1, v=v, i=v)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Recording(dt=0.1, v=v.T, i=v.T)


@pytest.mark.parametrize(
    ("v", "dt", "message"),
    [
        (
            np.full((1, 5), -0.065),
            0.1,
            r"within ±1 mV .*in volts\? Recordings are in mV",
        ),
        (
            np.full((1, 5), -65.0),
            5e-5,
            r"dt = 5e-05 ms.*in seconds\? Recordings are in ms",
        ),
    ],
)
def test_volts_and_seconds_are_named(v, dt, message):
    with pytest.warns(UserWarning, match=message):
        Recording(dt=dt, v=v, i=np.zeros_like(v))


def test_recording_scalars_and_sweeps_are_checked():
    v = np.zeros((2, 5))
    assert Recording(dt=np.array(0.1), v=v, i=v).dt == 0.1  # a 0-d array is a number
    assert Recording(dt=0.1, v=v, i=v, c_pf=np.float32(10.0)).c_pf == 10.0
    for kwargs, message in [
        ({"dt": "0.1"}, "`dt` must be a number (ms); got str '0.1'"),
        ({"dt": -0.1}, "`dt` must be a finite number > 0 (ms); got -0.1"),
        ({"dt": True}, "`dt` must be a number (ms); got bool"),
        ({"dt": 0.1, "c_pf": "10"}, "`c_pf` must be a number (pF); got str '10'"),
        ({"dt": 0.1, "c_pf": 0.0}, "`c_pf` must be a finite number > 0 (pF)"),
    ]:
        with pytest.raises(RecordingError, match=re.escape(message)):
            Recording(v=v, i=v, **kwargs)
    rec = Recording(dt=0.1, v=v, i=v, source="two")
    with pytest.raises(RecordingError, match="two: `sweeps` is empty"):
        rec.select([])
    with pytest.raises(
        RecordingError, match="two: `sweeps` must be a sequence of distinct"
    ):
        rec.select([1, 1])
    with pytest.raises(RecordingError, match=r">= 1 sweep"):
        Recording(dt=0.1, v=np.zeros((0, 5)), i=np.zeros((0, 5)))


def test_series_resistance_needs_pa():
    rec = _rc_recording().replace(i_unit="uA/cm2", i=np.zeros((4, 10000)))
    with pytest.raises(RecordingError, match="`c_pf` is unknown"):
        correct(rec, series_resistance=5.0)


# ------------------------------------------------ malformed arrays and scalars
_T = 0.1 * np.arange(20)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("v_mV", np.float64(3.0), r"`v_mV` must be \(time,\) or \(sweep, time\)"),
        (
            "v_mV",
            np.full(20, "a"),
            r"`v_mV` must be real numbers \(mV\); got dtype <U1",
        ),
        (
            "i_pA",
            np.full(20, "x"),
            r"`i_pA` must be real numbers \(pA\); got dtype <U1",
        ),
        ("v_mV", np.zeros(20) + 1j, r"`v_mV` must be real numbers \(mV\); .*complex"),
        ("v_mV", np.zeros(20, bool), r"`v_mV` must be real numbers \(mV\); .*bool"),
    ],
)
def test_npz_columns_must_be_real_sweeps(tmp_path, column, value, message):
    columns = {"t_ms": _T, "v_mV": np.zeros(20), "i_pA": np.zeros(20)}
    np.savez(tmp_path / "bad.npz", **{**columns, column: value})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: an error instead
        with pytest.raises(RecordingError, match=r"bad\.npz: " + message):
            load_npz(tmp_path / "bad.npz")


def test_npz_time_rows_are_one_per_sweep(tmp_path):
    t = np.stack([_T, _T, _T])
    np.savez(tmp_path / "rows.npz", t_ms=t, v_mV=np.zeros((2, 20)), i_pA=t[:2])
    with pytest.raises(
        RecordingError, match=r"rows\.npz: `t_ms` has 3 rows but `v_mV` has 2 sweeps"
    ):
        load_npz(tmp_path / "rows.npz")
    np.savez(tmp_path / "ok.npz", t_ms=t[:2], v_mV=np.zeros((2, 20)), i_pA=t[:2])
    assert load_npz(tmp_path / "ok.npz").n_sweeps == 2


def test_csv_non_finite_value_names_its_column(tmp_path):
    path = tmp_path / "nan.csv"
    path.write_text("t_ms,v_mV,i_pA\n0,-65,nan\n0.1,-65,2\n")
    with pytest.raises(RecordingError, match=r"nan\.csv: `i_pA` has 1 NaN/inf"):
        load_csv(path)


def test_recording_t0_and_sweeps_are_checked():
    v = np.zeros((2, 5))
    base = {"dt": 0.1, "v": v, "i": v, "i_unit": "pA", "source": "x.npz"}
    for kwargs, message in [
        ({"t0": float("nan")}, "x.npz: `t0` must be a finite number (ms); got nan"),
        ({"t0": "a"}, "x.npz: `t0` must be a number (ms); got str 'a'"),
        ({"sweeps": 5}, "x.npz: `sweeps` must be a sequence of distinct 0-based"),
        ({"sweeps": "01"}, "x.npz: `sweeps` must be a sequence of distinct 0-based"),
        ({"sweeps": [[0], [1, 2]]}, "x.npz: `sweeps` must be a sequence of distinct"),
        ({"v": np.zeros((2, 5), bool)}, "x.npz: `v` must be real numbers (mV)"),
        ({"i": np.zeros((2, 5), complex)}, "x.npz: `i` must be real numbers (pA)"),
    ]:
        with pytest.raises(RecordingError, match=re.escape(message)):
            Recording(**{**base, **kwargs})
    assert Recording(dt=0.1, v=v, i=v, t0=np.float32(2.0)).t0 == 2.0


@pytest.mark.parametrize(
    ("dt", "t0", "n"), [(0.1, 5.0, 50), (0.02, 123456.789, 100_000), (1 / 3, 0.0, 9)]
)
def test_npz_round_trip_keeps_dt_exactly(tmp_path, dt, t0, n):
    rec = Recording(dt=dt, v=np.zeros((1, n)), i=np.zeros((1, n)), t0=t0)
    back = load_npz(save_npz(rec, tmp_path / "rt"))
    assert (back.dt, back.t0) == (dt, t0)
    np.testing.assert_array_equal(back.t, rec.t)


def test_stored_dt_ms_is_optional_and_checked(tmp_path):
    zeros = np.zeros(20)
    np.savez(tmp_path / "old.npz", t_ms=_T, v_mV=zeros, i_pA=zeros)  # older file
    assert load_npz(tmp_path / "old.npz").dt == pytest.approx(0.1, rel=1e-12)
    np.savez(tmp_path / "off.npz", t_ms=_T, v_mV=zeros, i_pA=zeros, dt_ms=0.2)
    with pytest.raises(
        RecordingError, match=r"off\.npz: `dt_ms` = 0\.2 ms disagrees with `t_ms`"
    ):
        load_npz(tmp_path / "off.npz")
    np.savez(tmp_path / "neg.npz", t_ms=_T, v_mV=zeros, i_pA=zeros, dt_ms=-0.1)
    with pytest.raises(
        RecordingError, match=r"neg\.npz: `dt_ms` must be a finite number > 0 \(ms\)"
    ):
        load_npz(tmp_path / "neg.npz")
    # a .csv may give it too, as a column of one repeated value
    _write_csv(
        tmp_path / "dt.csv",
        {"t_ms": _T, "v_mV": zeros, "i_pA": zeros, "dt_ms": zeros + 0.1},
    )
    assert load_csv(tmp_path / "dt.csv").dt == 0.1


@pytest.mark.filterwarnings("ignore:.*Timeseries has a rate of 0.0 Hz")
@pytest.mark.filterwarnings("ignore:.*Rate must not be a negative value")
@pytest.mark.parametrize("rate", [0.0, float("nan"), -10000.0])
def test_nwb_sample_rate_must_be_positive(tmp_path, rate):
    path = tmp_path / "rate.nwb"

    def series(icephys, electrode):
        response, stimulus = _nwb_pair(icephys, electrode, 0, 0)
        response.fields["rate"] = rate  # pynwb writes rate=0 (with a warning)
        return [response], [stimulus]

    _nwb_file(path, series)
    with pytest.raises(
        RecordingError,
        match=r"rate\.nwb: series 'r0' has sample rate .* Hz; expected a finite "
        r"rate > 0 Hz",
    ):
        load_nwb(path)


def test_select_and_crop_name_bad_arguments():
    rec = Recording(dt=0.1, v=np.zeros((3, 50)), i=np.zeros((3, 50)), source="r.abf")
    assert rec.select(s for s in (2, 0)).sweeps == (2, 0)  # any iterable
    with pytest.raises(RecordingError, match=r"r.abf: `sweeps` must be a sequence"):
        rec.select("01")
    with pytest.raises(RecordingError, match=r"r.abf: `sweeps` must be a sequence"):
        rec.select(5)
    with pytest.raises(RecordingError, match=r"r.abf: `start` must be a time in ms"):
        rec.crop("a", 3.0)
    with pytest.raises(RecordingError, match=r"`stop` must be a time in ms"):
        rec.crop(0.0, float("nan"))
    assert rec.crop(1.0, np.inf).v.shape == (3, 40)


@pytest.mark.parametrize("channel", [5, "0", 0.0, True])
def test_an_abf_channel_that_is_not_one_of_the_file_is_named(channel):
    with pytest.raises(RecordingError, match=rf"no ADC channel {channel!r}; the file"):
        load_abf(DATA / "18711001.abf", channel=channel)


def test_a_table_in_pa_without_capacitance_is_told_to_add_it(tmp_path):
    t = 0.1 * np.arange(100)
    path = tmp_path / "cell.npz"
    np.savez(path, t_ms=t, v_mV=np.full(100, -65.0), i_pA=np.zeros(100))
    with pytest.raises(RecordingError, match=r"add it to the file as a number `c_pF`"):
        load_recording(path).current_density()
    csv = tmp_path / "cell.csv"
    csv.write_text("t_ms,v_mV,i_pA\n" + "".join(f"{x},-65,0\n" for x in t))
    with pytest.raises(
        RecordingError, match=r"add a column `c_pF` \(pF, the same value in every row\)"
    ):
        load_recording(csv).current_density()
