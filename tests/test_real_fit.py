"""The real-cell protocol (fitting.protocol): features, sweep selection,
preparation, the report; and (slow) the end-to-end fits of 18711001.abf and
171116sh_0018.abf."""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from fitting import FitInterrupted, protocol
from fitting.protocol import (
    _directories,
    _evaluate,
    _fit_recording,
    _parameters,
    _prepare,
    _settings,
)
from hhjax.recordings import Recording, RecordingError, load_recording

RECORDINGS = Path(__file__).resolve().parents[1] / "examples" / "data" / "recordings"
DT = 0.05  # ms
C_PF = 100.0  # pF of the synthetic cell
AMPLITUDES = (0.0, 200.0, 400.0, 600.0)  # pA
STEP = (150.0, 250.0)  # ms


def _synthetic_recording(params) -> Recording:
    """Pospischil sweeps: a -100 pA pulse (10-40 ms), then a step of each
    amplitude (150-250 ms); 330 ms at 0.05 ms, current in pA, C = 100 pF."""
    t = np.arange(0.0, 330.0, DT)
    i = np.zeros((len(AMPLITUDES), t.size))
    i[:, (t >= 10.0) & (t < 40.0)] = -100.0
    for k, amp in enumerate(AMPLITUDES):
        i[k, (t >= STEP[0]) & (t < STEP[1])] = amp
    v = hhjax.simulate(params, jnp.asarray(i.T / C_PF), DT, record=("v",)).v
    return Recording(dt=DT, v=np.asarray(v).T, i=i, i_unit="pA", source="synthetic")


@pytest.fixture(scope="module")
def cell():
    # Without the slow M current (and tau = 10 ms) the cell is back at rest when the
    # analysis window starts, 30 ms after the pulse: the protocol simulates the
    # window from rest.
    params = hhjax.PospischilParams.rs(g_m=0.0)
    return params, _synthetic_recording(params)


# ------------------------------------------------------------------- features
def test_batch_features_count_spikes_and_measure_rmse_outside_them():
    t = np.arange(0.0, 100.0, DT)
    v_data = np.full(t.shape, -65.0)
    for s in (20.0, 50.0, 80.0):  # three 1 ms spikes to +30 mV
        v_data[(t >= s) & (t < s + 1.0)] = 30.0
    i = np.zeros((t.size, 1))
    features = protocol.batch_features(DT, onset_index=0)
    params = hhjax.PospischilParams.rs(g_na=jnp.array([50.0]))
    # A resting model: no spikes, 0 mV error outside the data's spikes iff the
    # model rests at -65 mV.
    rest = float(hhjax.resting_state(params._replace(g_na=50.0)).v)
    counts, first, rmse = features(params, jnp.asarray(i), jnp.asarray(v_data[:, None]))
    assert int(counts[0, 0]) == 0 and math.isnan(float(first[0, 0]))
    assert float(rmse[0, 0]) == pytest.approx(abs(rest + 65.0), abs=1e-6)


def test_spikes_after_the_step_do_not_count():
    # The FSI fires spontaneously after the step of sweeps 4 and 5 (0 and 25 pA):
    # 5 and 14 spikes from the onset to the window's end, 4 and 13 in the step.
    from fitting._metrics import spike_times
    from hhjax.recordings import load_recording

    prepared = protocol.prepare(load_recording(RECORDINGS / "2019_07_24_0055_fsi.abf"))
    rec, (onset, stop) = prepared.recording, prepared.step
    after_onset = [
        spike_times(rec.v[k], rec.dt, t0=rec.t0) for k in range(rec.v.shape[0])
    ]
    assert [int(np.sum(t >= onset)) for t in after_onset[4:6]] == [5, 14]
    assert protocol.spike_counts(prepared)[4:6].tolist() == [4, 13]
    in_step = [int(np.sum((t >= onset) & (t < stop))) for t in after_onset]
    assert protocol.spike_counts(prepared).tolist() == in_step


def test_a_recording_without_steps_is_named_as_such():
    # Checked before the hyperpolarising step the cell properties need.
    flat = Recording(
        dt=0.1,
        v=np.full((2, 5000), -65.0),
        i=np.zeros((2, 5000)),
        i_unit="pA",
        source="flat.abf",
    )
    with pytest.raises(RecordingError, match=r"flat.abf: no depolarising current"):
        protocol.prepare(flat)
    # A step but no hyperpolarising pulse: say what to do on each side.
    i = np.zeros((2, 5000))
    i[:, 1000:3000] = [[50.0], [100.0]]
    stepped = flat.replace(i=i)
    given = r"or give them: `hhjax fit` options --c-pf and --series-resistance"
    with pytest.raises(RecordingError, match=given):
        protocol.prepare(stepped)
    prepared = protocol.prepare(stepped, c_pf=100.0, series_resistance=0.0)
    assert prepared.amplitudes.tolist() == [50.0, 100.0]


def test_the_fits_baseline_is_stored_and_reproduced():
    # predict(same_baseline=True) brings another file's sweeps to the fit's level:
    # the level the baselines were brought to, not the window's resting potential
    # (0.77 mV apart on this file).
    from hhjax.recordings import load_recording

    rec = load_recording(RECORDINGS / "18711001.abf")
    fitted = protocol.prepare(rec)
    assert fitted.settings()["baseline_mV"] == fitted.baseline
    again = protocol.prepare(rec, v_ref=fitted.settings()["baseline_mV"])
    np.testing.assert_allclose(again.recording.v, fitted.recording.v, atol=1e-12)
    assert abs(fitted.baseline - fitted.v_rest) > 0.5


def test_feature_cost_is_zero_only_for_matching_features():
    n_d, f_d = np.array([0, 3]), np.array([np.nan, 40.0])
    same = protocol.feature_cost(n_d[None], f_d[None], np.zeros((1, 2)), n_d, f_d)
    assert same[0] == 0.0
    off = protocol.feature_cost(
        np.array([[1, 3]]), np.array([[10.0, 60.0]]), np.array([[2.0, 2.0]]), n_d, f_d
    )
    # onset mismatch 3 + count 1 + rmse 4/1 + latency ((60-40)/20)^2 / 2 sweeps
    assert off[0] == pytest.approx(3.0 + 1.0 + 4.0 + 0.5)


def test_rheobase_and_sweep_selection():
    amps = np.array([-100.0, -50.0, 0.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0])
    counts = np.array([0, 0, 0, 0, 2, 4, 6, 8, 9])
    assert protocol.rheobase(amps, counts) == 100.0
    assert protocol.rheobase(amps, np.zeros(9)) is None
    # strongest subthreshold (50 pA), rheobase, then 167, 233, 300 pA targets
    assert protocol.select_sweeps(amps, counts, 5) == [3, 4, 5, 7, 8]
    # with the most negative step: 50 pA, rheobase, 200 and 300 pA targets
    assert protocol.select_sweeps(amps, counts, 5, include_negative=True) == [
        0,
        3,
        4,
        6,
        8,
    ]
    assert protocol.select_sweeps(amps, counts, 3) == [3, 4, 8]
    with pytest.raises(ValueError, match="No sweep has a spike"):
        protocol.select_sweeps(amps, np.zeros(9), 4)


# ------------------------------------------------------------- preparation
def test_prepare_finds_step_window_capacitance_and_density(cell):
    params, rec = cell
    prepared = protocol.prepare(rec)
    assert prepared.step == pytest.approx(STEP, abs=DT)
    assert prepared.window == pytest.approx((STEP[0] - 50.0, STEP[1] + 80.0), abs=DT)
    np.testing.assert_allclose(prepared.amplitudes, AMPLITUDES, atol=1e-9)
    # The model's membrane charges with tau = c_m / g_total: C within 15 %.
    assert prepared.c_pf == pytest.approx(C_PF, rel=0.15)
    i = prepared.recording.i
    assert prepared.recording.i_unit == "uA/cm2"
    assert i.max() == pytest.approx(AMPLITUDES[-1] / prepared.c_pf)
    # No drift and no series resistance in a simulation: V kept (to 0.1 mV).
    assert prepared.r_series < 1.0
    assert np.abs(prepared.offsets).max() < 0.1


def test_prepare_rejects_densities(cell):
    _, rec = cell
    dense = rec.replace(i=rec.i / C_PF, i_unit="uA/cm2")
    with pytest.raises(RecordingError, match="pA"):
        protocol.prepare(dense)


def _depolarising_only() -> Recording:
    """Three depolarising steps, no hyperpolarising one (nothing to measure C or
    R_s on); V need not be realistic for preparing."""
    i = np.zeros((3, 4000))
    for k, amp in enumerate((50.0, 100.0, 200.0)):
        i[k, 1000:3000] = amp
    v = -65.0 + i / 20.0
    return Recording(dt=0.1, v=v, i=i, i_unit="pA", source="steps")


def test_prepare_measures_only_what_is_missing():
    # Given c_pf, a recording without a hyperpolarising step failed: R_s was
    # measured on it all the same, with a message asking for c_pf.
    rec = _depolarising_only()
    with pytest.raises(RecordingError, match="series_resistance"):
        protocol.prepare(rec, c_pf=100.0)
    prepared = protocol.prepare(rec, c_pf=100.0, series_resistance=0.0)
    assert prepared.c_pf == 100.0 and prepared.props is None


def test_predict_uses_the_fits_series_resistance_without_a_pulse(monkeypatch):
    seen = {}

    def evaluate(prepared, params, train, method):
        seen["r_series"] = prepared.r_series
        return {}, None

    monkeypatch.setattr(_fit_recording, "evaluate", evaluate)
    document = {"protocol": {"c_pF": 100.0, "series_resistance_MOhm": 12.5}}
    params = hhjax.PospischilParams.rs()
    protocol.predict_recording(params, _depolarising_only(), document=document)
    assert seen["r_series"] == 12.5


def test_scalar_arrays_are_plausible_cell_values():
    _prepare.check_cell_values(np.array(85.0), np.float32(10.0))
    _prepare.check_cell_values(jnp.float64(85.0), 0)


@pytest.mark.parametrize(
    "c_pf, r_series, message",
    [
        (0.0, 10.0, r"`c_pf` must be a finite number > 0 pF; got 0\.0"),
        (float("nan"), 10.0, r"`c_pf` must be a finite number > 0 pF; got nan"),
        (100.0, -1.0, r"`series_resistance` must be a finite number >= 0 MΩ"),
        ("100", 10.0, r"`c_pf` must be a finite number > 0 pF; got '100'"),
        (True, 10.0, r"`c_pf` must be a finite number > 0 pF; got True"),
        (np.array([100.0]), 10.0, r"`c_pf` must be a finite number > 0 pF; got arr"),
    ],
)
def test_cell_values_must_be_plausible(c_pf, r_series, message):
    # c_pF 0 in a params.json gave "divide by zero" warnings and an error about
    # NaN samples of `i`.
    rec = _depolarising_only()
    with pytest.raises(RecordingError, match=message):
        protocol.prepare(rec, c_pf=c_pf, series_resistance=r_series)
    document = {"protocol": {"c_pF": c_pf, "series_resistance_MOhm": r_series}}
    named = message.replace("`c_pf`", "`protocol.c_pF`").replace(
        "`series_resistance`", "`protocol.series_resistance_MOhm`"
    )
    with pytest.raises(RecordingError, match="the fit's parameter file: " + named):
        protocol.predict_recording(
            hhjax.PospischilParams.rs(), rec, document=document
        )


def test_training_sweeps_without_spikes_are_warned_about():
    # `hhjax fit 18711001.abf --sweeps 0,1` (0 and 10 pA) ran a whole fit that
    # could not determine the spiking parameters, without a word.
    prepared = protocol.prepare(load_recording(RECORDINGS / "18711001.abf"))
    counts = protocol.spike_counts(prepared)
    with pytest.warns(UserWarning, match=r"18711001\.abf: none of the training "
                      r"sweeps \[0, 1\] spikes .*\(here 7, 8, 9, \.\.\.\)"):  # fmt: skip
        _fit_recording._warn_without_spikes(prepared, counts, (0, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _fit_recording._warn_without_spikes(prepared, counts, (0, 7))


@pytest.mark.parametrize("free, warns", [(["g_l", "c_m"], False), (["g_na"], True)])
def test_a_passive_fit_of_sweeps_without_spikes_is_not_warned_about(
    monkeypatch, free, warns
):
    class ReachedError(Exception):
        pass

    def stop(*args, **kwargs):
        raise ReachedError

    monkeypatch.setattr(_fit_recording, "initial_values", stop)  # after the check
    rec = load_recording(RECORDINGS / "18711001.abf")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning if warns else ReachedError):
            protocol.fit_recording(rec, "pospischil-rs", sweeps=[0, 1], free=free)


def test_added_channels_have_a_box_a_spread_and_a_start(cell):
    """Every optional channel's parameters (the slow AHP, opt-in; those freed
    for hyperpolarised families and later steps, for each model) can be
    searched: bounds, spreads, a start for each switched-off conductance, and
    the signed half-activations (mV) on a linear scale."""
    _, rec = cell
    prepared = protocol.prepare(rec)
    optional = [("pospischil-rs", protocol.SLOW_AHP)]
    optional += list(protocol.HYPERPOLARISED.items())
    optional += list(protocol.LATER_STEPS.items())
    assert {model for model, _ in optional} == {"pospischil-rs", "pospischil-fs"}
    for model, added in optional:
        base = hhjax.default_params(model)
        names = (*protocol.FREE[model], *added)
        init = protocol.initial_values(prepared, base, names, [1, 2])
        for name in added:
            assert name in protocol.BOUNDS and name in protocol.SPREAD, name
            default = getattr(base, name)
            if name.startswith("g_"):  # off by default: started at START
                assert default == 0.0 and init[name] == protocol.START[name]
            else:  # kinetics start at the model's defaults
                assert init[name] == default
            if name.startswith("v_"):
                assert name in _settings.LINEAR, name
        back = _parameters.from_search_coordinates(
            _parameters.to_search_coordinates(init, names), names
        )
        for name in names:
            assert float(back[name]) == pytest.approx(init[name], rel=1e-12)


# ---------------------------------------------------- evaluate and the report
def test_true_parameters_predict_their_own_sweeps(cell):
    params, rec = cell
    prepared = protocol.prepare(rec, c_pf=C_PF, series_resistance=0.0, drift=False)
    doc, v_model = protocol.evaluate(prepared, params, train=[1])
    summary = doc["protocol"]
    counts = [r["spikes_data_step"] for r in doc["sweeps"]]
    assert counts[0] == 0 and counts[-1] > counts[1] > 0
    assert summary["fraction_within_1"] == 1.0
    assert summary["rheobase_model_pA"] == summary["rheobase_data_pA"]
    assert summary["max_subthreshold_rmse_mV"] < 0.1
    assert summary["mean_onset_rmse_mV"] < 0.1 and summary["mean_quiet_rmse_mV"] < 0.1
    assert summary["mean_coincidence_factor"] > 0.95  # spike times within 2 ms
    assert [r["training"] for r in doc["sweeps"]] == [False, True, False, False]


def test_onset_rmse_ends_before_the_data_first_spike(cell, monkeypatch):
    # Model = data + 1 mV up to the data's first spike in the step, + 5 mV after
    # it: the onset RMSE is 1 mV on every sweep (the quiet sweep: its whole step),
    # also where the model fires early (its spike is left out, not the span cut);
    # a first spike within 8 ms of the onset leaves too short a span.
    params, rec = cell
    prepared = protocol.prepare(rec, c_pf=C_PF, series_resistance=0.0, drift=False)
    v_data, t = prepared.data().v, prepared.recording.t
    latency = protocol.first_latencies(prepared)
    assert np.isnan(latency[0]) and latency[1] > 30.0 and latency[3] < 8.0
    onset = prepared.step[0]
    after = np.nan_to_num(onset + latency, nan=np.inf)[:, None] <= t
    v_model = v_data + np.where(after, 5.0, 1.0)
    scores = protocol.onset_rmse(prepared, v_model)
    np.testing.assert_allclose(scores[:3], 1.0)
    assert np.isnan(scores[3])
    early = v_model.copy()
    k0 = np.searchsorted(t, onset + 4.0)  # a model spike 4 ms after the onset
    early[1, k0 : k0 + 10] = 30.0
    assert protocol.first_latencies(prepared, early)[1] < latency[1]
    assert protocol.onset_rmse(prepared, early)[1] == pytest.approx(1.0)
    failed = v_model.copy()
    failed[2] = np.nan
    assert np.isnan(protocol.onset_rmse(prepared, failed)[2])
    # Spans shorter than MIN_ONSET_MS are not scored; the quiet sweep still is.
    monkeypatch.setattr(_evaluate, "MIN_ONSET_MS", 50.0)  # the step lasts 100 ms
    short = protocol.onset_rmse(prepared, v_model)
    assert np.all(np.isnan(short[1:])) and short[0] == pytest.approx(1.0)


def test_failed_sweeps_are_left_out_of_the_totals(cell, monkeypatch):
    # Model = data + 1 mV, but the simulation of sweep 0 failed (NaN).
    params, rec = cell
    prepared = protocol.prepare(rec, c_pf=C_PF, series_resistance=0.0, drift=False)
    v_model = prepared.data().v + 1.0
    v_model[0] = np.nan
    failed = np.array([True, False, False, False])
    monkeypatch.setattr(
        _evaluate, "simulate_sweeps", lambda *args: (v_model.copy(), failed.copy())
    )
    doc, v = protocol.evaluate(prepared, params, train=[1])
    protocol.report_figure(prepared, doc, v)  # draws the failed sweep as a gap
    first, others = doc["sweeps"][0], doc["sweeps"][1:]
    assert [r["simulation_failed"] for r in doc["sweeps"]] == failed.tolist()
    assert first["spikes_model_step"] is None and first["spikes_model"] is None
    assert first["subthreshold_rmse_mV"] is None and not first["count_within_1"]
    assert doc["total"]["mean_subthreshold_rmse_mV"] == pytest.approx(1.0)
    assert doc["protocol"]["mean_subthreshold_rmse_mV"] == pytest.approx(1.0)
    assert first["onset_rmse_mV"] is None and first["coincidence_factor"] is None
    assert doc["protocol"]["mean_onset_rmse_mV"] == pytest.approx(1.0)
    assert doc["total"]["spikes_model"] == sum(r["spikes_model"] for r in others)
    assert doc["total"]["spikes_data"] == sum(r["spikes_data"] for r in others)


def test_tiny_fit_writes_params_and_report(cell, tmp_path):
    _, rec = cell
    fit = protocol.fit_recording(
        rec,
        "pospischil-rs",
        n_train=3,
        generations=1,
        population=8,
        restarts=1,
        screen=8,
        polish_iterations=0,
    )
    assert len(fit.train) == 3
    assert fit.uncertainty is not None and len(fit.uncertainty.names) == len(fit.free)
    # The summary flags what the .npz fits flag: a value at the edge of its search
    # box, and one the data do not determine.
    first, second = fit.free[:2]
    top = protocol.BOUNDS[first][1]
    flagged = dataclasses.replace(
        fit,
        params=fit.params._replace(**{first: top}),
        uncertainty=dataclasses.replace(fit.uncertainty, undetermined=(second,)),
    )
    lines = flagged.summary().splitlines()
    assert (
        f"(at a bound of [{protocol.BOUNDS[first][0]:g}, {top:g}] "
        in next(x for x in lines if f" {first} = " in x)
    )
    assert next(x for x in lines if f" {first} = " in x).endswith(
        ": the edge of the protocol's search box)"
    )
    assert next(x for x in lines if f" {second} = " in x).endswith("(undetermined)")
    path = fit.save(tmp_path / "params.json")
    loaded, document = __import__("fitting").load_result(path)
    assert isinstance(loaded, hhjax.PospischilParams)
    assert document["protocol"]["training_sweeps"] == list(fit.train)
    doc, v_model, prepared = protocol.predict_recording(
        fit.params, rec, document=document, train=fit.train
    )
    # Predicting the fitted file scores it as the fit prepared it (what
    # fit_to_directory writes).
    doc_fit, v_fit = protocol.evaluate(fit.prepared, fit.params, fit.train)
    np.testing.assert_array_equal(v_fit, v_model)
    assert doc_fit["protocol"] == doc["protocol"]
    png = protocol.save_report(tmp_path / "report.png", prepared, doc, v_model, fit)
    assert png.stat().st_size > 20_000
    with pytest.raises(ValueError, match=r"`v_model` must be \(n_sweeps, n_samples\)"):
        protocol.report_figure(prepared, doc, v_model.T, fit)  # failed in matplotlib


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"population": 1}, r"`population` must be an integer >= 2"),
        ({"generations": -1}, r"`generations` must be an integer >= 0"),
        ({"restarts": 0}, r"`restarts` must be an integer >= 1"),
    ],
)
def test_search_settings_are_checked_before_any_simulation(cell, settings, message):
    _, rec = cell
    with pytest.raises(ValueError, match=message):
        protocol.fit_recording(rec, "pospischil-rs", **settings)


def test_report_title_without_held_out_sweeps_or_model_rheobase():
    summary = {
        "held_out": [], "fraction_within_1": None, "rheobase_data_pA": 70.0,
        "rheobase_model_pA": None, "mean_subthreshold_rmse_mV": None,
    }  # fmt: skip
    line = protocol.summary_line(summary)
    assert (
        line == "no held-out sweeps (all trained); rheobase 70 pA / none (data / model)"
    )
    summary.update(held_out=[3], fraction_within_1=0.5, mean_subthreshold_rmse_mV=4.2)
    assert "held out: 50 % within ±1 spike" in protocol.summary_line(summary)
    assert protocol.summary_line(summary).endswith("RMSE mean 4.20 mV")
    summary.update(mean_onset_rmse_mV=1.5, mean_quiet_rmse_mV=None)
    assert protocol.summary_line(summary).endswith(
        "RMSE mean 4.20 mV (onset to first spike 1.50 mV)"
    )
    summary.update(mean_quiet_rmse_mV=3.0)
    assert protocol.summary_line(summary).endswith(
        "(onset to first spike 1.50 mV; steps without spikes 3.00 mV)"
    )


def test_search_starts_every_gaussian_at_the_best_screen_candidate(cell, tmp_path):
    # Gaussians started at other, distinct screen candidates wasted their draws in
    # poor basins (docs/real_cells.md, "Search reliability").
    from fitting._io import load_checkpoint

    _, rec = cell
    prepared = protocol.prepare(rec, c_pf=C_PF, series_resistance=0.0, drift=False)
    base = hhjax.PospischilParams.rs()
    names = ("g_na", "g_kd", "g_l")
    init = {"g_na": 20.0, "g_kd": 2.0, "g_l": 0.5}  # far from the cell: a poor start
    path = tmp_path / "search.npz"
    found = protocol.search(
        prepared, [1], base, names, init, generations=0, restarts=3, screen=15,
        chunk=16, checkpoint=path,
    )  # fmt: skip
    _, arrays = load_checkpoint(path)
    assert arrays["centres"].shape == (3, len(names))
    np.testing.assert_array_equal(
        arrays["centres"], np.repeat(arrays["best_z"][None], 3, 0)
    )
    assert found.history == (found.cost,) and found.evaluations == 16


def test_interrupted_real_cell_fit_resumes_to_the_uninterrupted_result(cell, tmp_path):
    _, rec = cell
    settings = {
        "n_train": 2, "generations": 3, "population": 6, "restarts": 2, "screen": 6,
        "polish_iterations": 2, "polish_starts": 2,
    }  # fmt: skip
    alone = protocol.fit_recording(rec, "pospischil-rs", **settings)
    path = tmp_path / "fit.npz"

    def stop_after_generation_2(line):
        if line.startswith("search generation 2/"):
            raise KeyboardInterrupt

    # Interrupted between generations (outside the batch simulations): resumable.
    with pytest.raises(KeyboardInterrupt) as info:
        protocol.fit_recording(
            rec, "pospischil-rs", checkpoint=path, log=stop_after_generation_2,
            **settings,
        )  # fmt: skip
    assert isinstance(info.value, FitInterrupted)
    assert f"progress saved to {path}" in str(info.value)
    assert path.exists() and not protocol.checkpoint_files(path)[1].exists()
    lines = []
    resumed = protocol.fit_recording(
        rec, "pospischil-rs", checkpoint=path, log=lines.append, **settings
    )
    assert any(line.startswith("resuming") for line in lines)
    assert not any(line.startswith("search generation 1/") for line in lines)
    assert resumed.search.history == alone.search.history
    assert resumed.search.evaluations == alone.search.evaluations
    for name in alone.free:
        assert float(getattr(resumed.params, name)) == pytest.approx(
            float(getattr(alone.params, name)), rel=1e-12
        ), name
    # The checkpoint of this fit is refused by a fit with another seed.
    with pytest.raises(ValueError, match="belongs to a different fit"):
        protocol.fit_recording(
            rec, "pospischil-rs", checkpoint=path, seed=1, **settings
        )


@pytest.mark.parametrize(
    "options, message",
    [
        ({"sweeps": [1, 99]}, r"no sweep 99; .* sweeps 0\.\.3 \(0-based\)"),
        ({"sweeps": [2, 2]}, "distinct sweeps"),
        ({"polish_iterations": 1}, "polish_iterations"),
        ({"seed": -1}, r"`seed` must be an integer >= 0; got -1"),
        ({"n_train": 1}, r"`n_train` must be an integer >= 2; got 1"),
        ({"sigma_mv": -1.0}, r"`sigma_mv` must be a finite number of mV > 0"),
        ({"checkpoint": "{file}/fit.npz"}, r"is a file, not a directory"),
        ({"free": "g_nax"}, r"Unknown parameter\(s\) g_nax "),
    ],
)
def test_real_cell_fit_refuses_bad_settings_before_simulating(
    cell, options, message, tmp_path
):
    _, rec = cell
    (tmp_path / "file").write_text("")
    if "checkpoint" in options:
        options = {"checkpoint": options["checkpoint"].format(file=tmp_path / "file")}
    with pytest.raises(ValueError, match=message):
        protocol.fit_recording(rec, "pospischil-rs", **options)


def test_real_cell_fit_takes_a_path(cell, tmp_path):
    path = tmp_path / "cell.npz"
    hhjax.recordings.save_npz(cell[1], path)
    with pytest.raises(ValueError, match=r"no sweep 99"):  # loaded, then refused
        protocol.fit_recording(path, sweeps=[1, 99])
    with pytest.raises(ValueError, match=r"`recording` must be a hhjax.recordings"):
        protocol.fit_recording(object())


def test_ctrl_c_before_the_search_is_a_resumable_interrupt(cell):
    def interrupt(line):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as info:
        protocol.fit_recording(cell[1], "pospischil-rs", log=interrupt)
    assert isinstance(info.value, FitInterrupted)


def test_a_later_step_interrupted_before_saving_names_the_earlier_progress(tmp_path):
    # E.g. the polish interrupted while it compiles: it has nothing to save, but
    # the search's checkpoint holds its generations, and the same call resumes.
    from fitting._interrupt import NOTHING_SAVED, resumable

    search, polish = tmp_path / "fit.npz", tmp_path / "fit.polish.npz"
    inner = FitInterrupted(f"fit interrupted while compiling; {NOTHING_SAVED}", None)
    with pytest.raises(FitInterrupted) as info, resumable("", search, polish):
        raise inner
    assert info.value is inner  # no earlier progress: unchanged
    search.write_bytes(b"generations")
    with pytest.raises(FitInterrupted) as info, resumable("", search, polish):
        raise inner
    assert info.value.checkpoint == str(search)
    assert str(info.value) == (
        f"fit interrupted while compiling; progress saved to {search}"
    )


# ------------------------------------------------- steps of a multi-step protocol
def _manifest_counts(file_name: str) -> list[int]:
    """MANIFEST.md's spikes per sweep inside the command epochs."""
    text = (RECORDINGS / "MANIFEST.md").read_text().split(f"### {file_name}")[1]
    line = text.split("spikes per sweep inside command epochs: ")[1].split("\n")[0]
    return [int(x) for x in line.strip("[]").split(",")]


@pytest.mark.parametrize(
    "file_name, n_steps",
    [("2019_07_24_0055_fsi.abf", 2), ("171116sh_0018.abf", 2), ("18711001.abf", 1)],
)
def test_every_step_is_found_and_counted_as_the_manifest_counts(file_name, n_steps):
    """The dual-step protocol (step, rest, -100 pA pulse, step) has two steps;
    spikes inside them, over the whole sweeps, are MANIFEST.md's counts inside
    the command epochs (where the step is not 0 pA: there MANIFEST counts only
    the pulse epoch)."""
    rec = hhjax.recordings.load_recording(RECORDINGS / file_name)
    prepared = protocol.prepare(rec)
    assert len(prepared.steps) == n_steps and prepared.steps[0] == prepared.step
    whole = protocol.whole_sweeps(prepared)
    assert whole.window[0] == prepared.window[0] and whole.v_rest == prepared.v_rest
    assert whole.window[1] == pytest.approx(rec.t[-1] + rec.dt)
    counts = protocol.step_counts(whole)
    assert counts.shape == (rec.n_sweeps, n_steps)
    stepped = prepared.amplitudes != 0
    expected = np.array(_manifest_counts(file_name))
    np.testing.assert_array_equal(counts.sum(axis=1)[stepped], expected[stepped])
    first = protocol.spike_counts(prepared)  # the main step, in the window
    np.testing.assert_array_equal(counts[:, 0], first)


def _two_step_recording(params, amplitudes=(300.0, 500.0)) -> Recording:
    """Sweeps of the dual-step protocol: a step (50-250 ms), rest, a -300 pA
    pulse (350-450 ms), the step again (450-650 ms); 700 ms, C = 100 pF."""
    t = np.arange(0.0, 700.0, DT)
    i = np.zeros((len(amplitudes), t.size))
    for k, amp in enumerate(amplitudes):
        i[k, ((t >= 50.0) & (t < 250.0)) | ((t >= 450.0) & (t < 650.0))] = amp
    i[:, (t >= 350.0) & (t < 450.0)] = -300.0
    v = hhjax.simulate(params, jnp.asarray(i.T / C_PF), DT, record=("v",)).v
    return Recording(dt=DT, v=np.asarray(v).T, i=i, i_unit="pA", source="two-step")


def test_later_steps_fit_a_d_current_to_the_second_step():
    """A cell with a D current fires fewer spikes in the step after the pulse;
    the same cell without it does not. Fitting the D current's parameters to
    both steps (everything else fixed) brings the counts back."""
    truth = hhjax.PospischilParams.fs(e_l=-60.0, g_d=1.0, tau_b=300.0)
    prepared = protocol.prepare(
        _two_step_recording(truth), c_pf=C_PF, series_resistance=0.0, drift=False
    )
    assert prepared.steps == ((50.0, 250.0), (450.0, 650.0))
    data = protocol.step_counts(protocol.whole_sweeps(prepared))
    # The D current's signature: fewer spikes after the pulse (10 / 3, 20 / 18).
    assert np.all(data[:, 1] < data[:, 0]) and data[0, 1] < 0.5 * data[0, 0]
    without = truth._replace(g_d=0.0)
    names = protocol.LATER_STEPS["pospischil-fs"]
    params, info = protocol.fit_later_steps(
        prepared, [0, 1], without, names, generations=3, population=16, screen=16
    )
    assert info["kept"] and info["free"] == list(names)
    assert info["cost"] < 0.2 * info["cost_before"]
    assert params.g_d > 0.05
    assert float(hhjax.resting_state(params).v) == pytest.approx(
        float(hhjax.resting_state(without).v), abs=1e-6
    )  # e_l moved with it
    doc, _ = protocol.evaluate(prepared, params, train=[0, 1])
    doc_without, _ = protocol.evaluate(prepared, without, train=[0, 1])
    pairs = zip(doc["sweeps"], doc_without["sweeps"], strict=True)
    for k, (row, before) in enumerate(pairs):
        assert row["spikes_data_steps"] == data[k].sum()
        error = abs(row["spikes_model_steps"] - data[k].sum())
        assert error <= 2 and error <= abs(before["spikes_model_steps"] - data[k].sum())
    assert doc_without["sweeps"][0]["spikes_model_steps"] >= data[0].sum() + 5


def test_a_failed_whole_sweep_simulation_is_reported(monkeypatch, capsys):
    # The model simulated the step's window but diverged over the whole sweep
    # (all steps): the counts were null, yet neither metrics.json's summary nor
    # the command's warning named those sweeps.
    from fitting import _cli
    from fitting.protocol import _evaluate

    truth = hhjax.PospischilParams.fs(e_l=-60.0)
    prepared = protocol.prepare(
        _two_step_recording(truth), c_pf=C_PF, series_resistance=0.0, drift=False
    )
    simulate = _evaluate.simulate_sweeps

    def whole_fails_on_sweep_1(prep, params, method="rk4"):
        v, failed = (np.array(x) for x in simulate(prep, params, method))
        if prep is not prepared:  # the whole sweeps
            v[1], failed[1] = np.nan, True
        return v, failed

    monkeypatch.setattr(_evaluate, "simulate_sweeps", whole_fails_on_sweep_1)
    doc, _ = protocol.evaluate(prepared, truth, train=[0])
    assert doc["protocol"]["failed_whole_sweeps"] == [1]
    assert [r["whole_sweep_failed"] for r in doc["sweeps"]] == [False, True]
    assert doc["sweeps"][1]["spikes_model_steps"] is None
    assert doc["total"]["failed_sweeps"] == []  # the step's window simulated
    _cli._print_metrics(doc, "a remedy")
    err = capsys.readouterr().err
    expected = (
        "could not be simulated over the whole sweep (all steps, non-finite) on "
        "sweep(s) 1: no all-steps spike counts there (a remedy)"
    )
    assert expected in err


def test_later_steps_need_a_repeated_step_and_a_model_with_such_parameters(cell):
    _, rec = cell  # one step per sweep
    with pytest.raises(ValueError, match="repeats its step"):
        protocol.fit_recording(rec, "pospischil-fs", later_steps=True)
    two = protocol.prepare(
        _two_step_recording(hhjax.PospischilParams.fs()),
        c_pf=C_PF, series_resistance=0.0, drift=False,
    )  # fmt: skip
    with pytest.raises(ValueError, match="the model is 'pospischil-rs'"):
        protocol.fit_recording(two, "pospischil-rs", later_steps=True)


# ------------------------------------------------------------ end to end
def _fit_and_score(file_name: str, n_train: int):
    """The protocol's default RS fit of a shipped recording, and its per-recording
    metrics over every sweep."""
    pytest.importorskip("pyabf")
    from hhjax.recordings import load_recording

    rec = load_recording(RECORDINGS / file_name)
    fit = protocol.fit_recording(rec, "pospischil-rs", n_train=n_train)
    doc, _, _ = protocol.predict_recording(
        fit.params, rec, document=fit.to_dict(), train=fit.train
    )
    return fit, doc["protocol"]


@pytest.fixture(scope="module")
def fit_18711001():
    return _fit_and_score("18711001.abf", n_train=6)


@pytest.mark.slow
def test_18711001_spike_counts_and_rheobase(fit_18711001):
    """Issue 5, done-when 1 (counts and rheobase) on the 24 held-out sweeps."""
    fit, summary = fit_18711001
    assert len(fit.train) <= 6
    assert summary["fraction_within_1"] >= 0.8
    assert abs(summary["rheobase_model_pA"] - summary["rheobase_data_pA"]) <= 10.0
    assert summary["mean_subthreshold_rmse_mV"] <= 6.0
    assert sum(fit.timings.values()) < 600.0


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="~4.7 mV: the late spikes of this cell jitter between neighbouring "
    "sweeps (each sweep scores 4.3-7.4 mV as the model of its neighbour); "
    "see docs/real_cells.md, 'Is <= 3 mV reachable?'",
)
def test_18711001_subthreshold_rmse_meets_issue_target(fit_18711001):
    _, summary = fit_18711001
    assert summary["mean_subthreshold_rmse_mV"] <= 3.0


@pytest.mark.slow
def test_171116sh_0018_meets_all_three_criteria():
    """Issue 5, done-when 2 on 171116sh_0018 (fitted on 5 sweeps, scored on the
    other 12): spike counts, rheobase and subthreshold RMSE with one parameter set.
    I_h and the persistent Na+ current are freed automatically (the step family
    has hyperpolarising steps). With the default seed (seeds 1-3 meet the criteria
    too: docs/real_cells.md, "Search reliability")."""
    fit, summary = _fit_and_score("171116sh_0018.abf", n_train=5)
    assert set(protocol.HYPERPOLARISED["pospischil-rs"]) <= set(fit.free)
    assert len(fit.train) <= 5 and len(summary["held_out"]) == 17 - len(fit.train)
    assert summary["fraction_within_1"] >= 0.8
    assert abs(summary["rheobase_model_pA"] - summary["rheobase_data_pA"]) <= 10.0
    assert summary["mean_subthreshold_rmse_mV"] <= 3.0
    assert sum(fit.timings.values()) < 600.0


@pytest.mark.slow
def test_fsi_f_i_curve_within_15_percent_in_both_steps():
    """Issue 5, done-when 3: the fast-spiking interneuron's spikes per sweep
    inside the steps within 15 % on the sweeps >= 125 pA, in the first step and
    in both steps of its dual-step protocol (with the D current fitted to the
    second step: docs/real_cells.md, "Both steps of the FSI"). The inward
    rectifier, freed automatically, keeps the hyperpolarised steps within 10 mV
    (up to 48 mV without it)."""
    pytest.importorskip("pyabf")
    rec = hhjax.recordings.load_recording(RECORDINGS / "2019_07_24_0055_fsi.abf")
    fit = protocol.fit_recording(rec, "pospischil-fs")
    assert fit.later is not None and fit.later["kept"]
    assert set(protocol.HYPERPOLARISED["pospischil-fs"]) <= set(fit.free)
    doc, _, _ = protocol.predict_recording(
        fit.params, rec, document=fit.to_dict(), train=fit.train
    )
    negative = [r for r in doc["sweeps"] if r["amplitude_pA"] < 0.0]
    assert len(negative) == 4
    assert max(r["subthreshold_rmse_mV"] for r in negative) <= 10.0
    rows = [r for r in doc["sweeps"] if r["amplitude_pA"] >= 125.0]
    assert len(rows) == 8
    for r in rows:
        first = r["spikes_model_step"] / r["spikes_data_step"] - 1.0
        both = r["spikes_model_steps"] / r["spikes_data_steps"] - 1.0
        assert abs(first) <= 0.15 and abs(both) <= 0.15, (r["sweep"], first, both)
    assert sum(fit.timings.values()) < 600.0


def test_predict_selects_the_cell_the_fit_was_given_in_files_of_its_type():
    # hhjax predict of an .abf uses the fit's --channel/--dac unless given again;
    # an .nwb its --electrode; other selectors pass to the loader, which refuses.
    fitted = {"source": "a.abf", "channel": 1, "dac": 1}
    assert _directories._selection("b.abf", {}, fitted) == {"channel": 1, "dac": 1}
    given = {"channel": None, "dac": 0, "electrode": None}
    assert _directories._selection("b.ABF", given, fitted) == {"channel": 1, "dac": 0}
    assert _directories._selection("b.nwb", {}, fitted) == {}
    assert _directories._selection("b.nwb", {}, {"electrode": "e1"}) == {
        "electrode": "e1"
    }
    assert _directories._selection("b.npz", {"dac": 2}, fitted) == {"dac": 2}
    assert _directories._selection("b.abf", {}, ["not", "a", "dict"]) == {}


def test_predict_marks_training_sweeps_only_on_the_recording_fitted():
    # Same file name in another directory, other samples: not the fit's data.
    rng = np.random.default_rng(0)
    v = -65.0 + rng.normal(size=(3, 40))
    fitted = Recording(dt=0.1, v=v, i=np.zeros((3, 40)), i_unit="pA", source="a/c.abf")
    document = {
        "data": {"source": "a/c.abf", "digest": protocol.recording_digest(fitted)}
    }
    other = Recording(dt=0.1, v=v + 1.0, i=np.zeros((3, 40)), i_unit="pA")
    assert _directories.fitted_on(document, fitted, "b/c.abf")
    assert not _directories.fitted_on(document, other, "a/c.abf")
    # A params.json written before the digest: the file name decides.
    old = {"data": {"source": "a/c.abf"}}
    assert _directories.fitted_on(old, other, "b/c.abf")
    assert not _directories.fitted_on(old, fitted, "b/d.abf")
    # Predicting another recording says that every sweep is held out (a
    # converted copy of the fit's file, .abf to .nwb, counted silently).
    document["protocol"] = {"training_sweeps": [0, 2]}
    said = []
    train = _directories.training_sweeps
    assert train(document, fitted, "c.abf", said.append) == [0, 2] and not said
    assert train(document, other, "c.nwb", said.append) == []
    assert said == [
        "c.nwb is not the recording the fit was trained on (c.abf), so every "
        "sweep counts as held out"
    ]


def test_the_polish_log_says_why_it_was_not_kept():
    # A polish with a lower cost was dropped without a word when a sweep failed.
    from fitting.protocol._fit_recording import _polish_verdict

    ok, bad = np.zeros(3, bool), np.array([False, True, True])
    assert _polish_verdict(85.8, 131.1, (4, 7, 9), ok) == "kept"
    assert _polish_verdict(140.0, 131.1, (4, 7, 9), ok) == "not kept: its cost is higher"
    assert _polish_verdict(85.8, 131.1, (4, 7, 9), bad) == (
        "not kept: its simulation is non-finite on sweep(s) 7, 9"
    )
