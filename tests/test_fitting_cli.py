"""``hhjax fit`` and ``hhjax predict`` (the entry points of ``fitting._cli``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jax
import numpy as np
import pytest
from abf_files import cell_on_dac1

import fitting
import hhjax
from hhjax.cli import main
from hhjax.recordings import Recording, save_npz

DT = 0.025  # ms
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "data" / "synthetic_hh.npz"


@pytest.fixture(scope="module")
def recording_file(tmp_path_factory):
    """60 ms of standard HH under a noisy current, 0.5 mV noise, as .npz."""
    current = hhjax.stimulus.ornstein_uhlenbeck(
        5.0, 5.0, 5.0, duration=60.0, dt=DT, key=1
    )
    data = fitting.synthetic_data(hhjax.HHParams(), current, DT, noise_mv=0.5)
    path = tmp_path_factory.mktemp("data") / "cell.npz"
    save_npz(data.recording, path)
    return path


@pytest.fixture(scope="module")
def coarse_file(tmp_path_factory):
    """20 ms of standard HH (a spike at ~4 ms under a 10 uA/cm^2 step), simulated
    at 0.01 ms and saved at 0.1 ms, where rk4 cannot follow the spike: simulating
    it needs --substeps 10."""
    t = 0.01 * np.arange(2000)
    fine = fitting.synthetic_data(
        hhjax.HHParams(), np.where(t >= 2.0, 10.0, 0.0), 0.01, noise_mv=0.0
    )
    data = fitting.FitData.from_arrays(fine.v[:, ::10], fine.i[:, ::10], 0.1)
    path = tmp_path_factory.mktemp("coarse") / "coarse.npz"
    save_npz(data.recording, path)
    return path


def _run(capsys, *argv):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def compile_cache(tmp_path, monkeypatch):
    """A compile-cache directory for one test; JAX's global setting restored."""
    path = tmp_path / "cache"
    monkeypatch.setenv("HHJAX_CACHE_DIR", str(path))
    yield path
    jax.config.update("jax_compilation_cache_dir", None)


def test_fit_then_predict_write_their_files(
    recording_file, tmp_path, capsys, compile_cache
):
    out = tmp_path / "fit"
    status, stdout, stderr = _run(
        capsys, "fit", recording_file, "--free", "g_na,g_k,g_l", "--starts", 2,
        "--iterations", 4, "--quiet", "--out", out,
    )  # fmt: skip
    assert any(compile_cache.iterdir())  # compiled programs kept for the next run
    assert status == 0, stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "metrics.json", "params.json", "report.png",
    ]  # fmt: skip
    params = json.loads((out / "params.json").read_text())
    assert params["model"] == "hh" and params["convention"] == "modern"
    assert set(params["params"]) == set(hhjax.HHParams._fields)
    assert params["free"] == ["g_na", "g_k", "g_l"]
    assert params["settings"]["dtype"] == "float64"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["convention"] == "modern"
    (row,) = metrics["sweeps"]
    assert row["sweep"] == 0
    assert row["spikes_data"] >= 3 and row["spikes_model"] >= 1
    assert row["subthreshold_rmse_mV"] is not None
    assert not list(tmp_path.glob(".fit*"))  # no temporary dir, checkpoint removed
    assert "wrote" in stdout

    pred = tmp_path / "pred"
    status, _, stderr = _run(
        capsys, "predict", out / "params.json", recording_file, "--out", pred
    )
    assert status == 0, stderr
    again = json.loads((pred / "metrics.json").read_text())
    assert again["sweeps"][0]["spikes_model"] == row["spikes_model"]
    assert (pred / "prediction.png").stat().st_size > 10_000

    status, _, stderr = _run(  # the file is also a parameter file for simulate
        capsys, "simulate", "--params", out / "params.json", "--total", 5,
        "--duration", 2, "--start", 1, "--no-plot", "--out", tmp_path / "sim",
    )  # fmt: skip
    assert status == 0, stderr


def test_fit_on_the_shipped_example(tmp_path, capsys):
    out = tmp_path / "example"
    status, _, stderr = _run(
        capsys, "fit", EXAMPLE, "--free", "g_l,e_l", "--window", "0:100",
        "--windows", "2,20", "--starts", 2, "--iterations", 2, "--init", "params",
        "--quiet", "--no-compile-cache", "--out", out,
    )  # fmt: skip
    assert status == 0, stderr
    assert {p.name for p in out.iterdir()} == {
        "params.json", "metrics.json", "report.png",
    }  # fmt: skip
    params = json.loads((out / "params.json").read_text())
    assert params["settings"]["loss"]["windows_ms"] == [2.0, 20.0]


def _corrupt(path: Path) -> Path:
    path.write_bytes(b"PK\x03\x04 this is not a zip archive")
    return path


def _text_file(path: Path) -> Path:
    path = path.with_suffix(".txt")
    path.write_text("t_ms,v_mV\n0,-65\n")
    return path


def _mismatched(path: Path) -> Path:
    t = DT * np.arange(100)
    np.savez(path, t_ms=t, v_mV=np.full(99, -65.0), i_uA_per_cm2=np.zeros(100))
    return path


def _in_pa_as_density(path: Path) -> Path:
    """A current of 10 nA saved as if it were in uA/cm^2."""
    t = DT * np.arange(400)
    save_npz(
        Recording(dt=DT, v=np.full(t.size, -65.0), i=np.full(t.size, 1e4)),
        path.with_name("huge.npz"),
    )
    return path.with_name("huge.npz")


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (_corrupt, [], "not a readable .npz"),
        (_mismatched, [], "samples per sweep"),
        (_text_file, [], "bad.txt: unsupported file type '.txt'; expected a recording"),
        (None, ["--free", "g_nax"], "argument --free: Unknown parameter"),
        (None, ["--free", "g_na,g_na"], "argument --free: g_na named twice"),
        (_in_pa_as_density, [], "huge.npz: the injected current reaches |I| = 1e+04"),
        (None, ["--sweeps", "3"], "no sweep 3"),
        (None, ["--sweeps", "0,,1"], "argument --sweeps: expected comma-separated"),
        (None, ["--sweeps", "0,"], "argument --sweeps: expected comma-separated"),
        (None, ["--free", "g_na,,g_k"], "argument --free: expected comma-separated"),
        (
            None,
            ["--bounds", "g_na=5:1"],
            "the lower bound of g_na must be below its upper bound; got 5 >= 1",
        ),
        (None, ["--bounds", "g_na=5-1"], "expected NAME=LOWER:UPPER"),
        (
            None,
            ["--windows", "whole,2"],
            "argument --windows: window lengths must grow",
        ),
        (None, ["--loss", "mse", "--windows", "2"], "only the shooting loss"),
        (None, ["--bounds", "g_k=1:10"], "--bounds given for parameter(s) g_k that"),
        (None, ["--seed", "-1"], "argument --seed: expected an integer >= 0"),
        (None, ["--spread", "1"], "argument --spread: expected a factor > 1"),
        (None, ["--iterations", "1"], "Levenberg-Marquardt needs --iterations >= 2"),
        (
            None,
            ["--init", "bounds", "--spread", "3"],
            "argument --spread: not used with --init bounds",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    recording_file, tmp_path, capsys, make, extra, message
):
    data = make(tmp_path / "bad.npz") if make else recording_file
    out = tmp_path / "out"
    argv = ["fit", data, "--free", "g_na", "--quiet", "--no-compile-cache"]
    argv += ["--out", out, *extra]
    status, stdout, stderr = _run(capsys, *argv)
    assert status == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hhjax: error:"), stderr
    assert message in lines[0]
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ([data.name] if make else [])


RECORDING = EXAMPLE.parent / "recordings" / "18711001.abf"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--float32", "--starts", "4"],
            "--starts, --float32: not used for a recording",
        ),
        (
            ["--window", "0:100", "--exclude", "5:6", "--threshold", "-20"],
            "--window, --exclude, --threshold: not used for a recording",
        ),
        (["--float32", "--mixed"], "not allowed with argument --float32"),
        (["--free", "g_na,g_na"], "argument --free: g_na named twice"),
        (
            ["--free", "g_na,g_nax"],
            "argument --free: Unknown parameter(s) g_nax for PospischilParams",
        ),
        (["--c-pf", "1e9"], "--c-pf = 1e+09 pF is above 100000 pF"),
        (["--series-resistance", "1e6"], "--series-resistance = 1e+06 MΩ is above"),
        (["--free", "g_na,e_na"], "No search box for e_na"),
        (["--model", "hh"], "argument --free: required for --model hh on a recording"),
    ],
)
def test_bad_options_for_a_recording_are_refused_before_fitting(
    tmp_path, capsys, extra, message
):
    # The real-cell protocol does not read the .npz/.csv fit's options: setting
    # one is an error, not silently ignored (before anything is loaded or fitted).
    # A bad free list is refused before the search, not after it.
    out = tmp_path / "out"
    argv = ["fit", RECORDING, "--quiet", "--no-compile-cache", "--out", out, *extra]
    status, stdout, stderr = _run(capsys, *argv)
    assert status == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "flag, value", [("--c-pf", "100"), ("--series-resistance", "0")]
)
def test_cell_options_are_for_recordings_only(
    recording_file, tmp_path, capsys, flag, value
):
    status, _, stderr = _run(
        capsys, "fit", recording_file, "--free", "g_na", flag, value,
        "--no-compile-cache", "--out", tmp_path / "out",
    )  # fmt: skip
    assert status == 2
    assert stderr.count("\n") == 1 and f"argument {flag}: only for .abf/.nwb" in stderr


def test_cell_options_reach_the_protocol(tmp_path, capsys, monkeypatch):
    # A recording without a hyperpolarising step needs them (prepare's error says
    # so); the command passes them to the protocol's fit.
    seen = {}

    def fake_fit(data, out_dir, model, **kwargs):
        seen.update(kwargs)
        raise fitting.RecordingError("stop here")

    monkeypatch.setattr(fitting.protocol, "fit_to_directory", fake_fit)
    status, _, stderr = _run(
        capsys, "fit", RECORDING, "--c-pf", "85.5", "--series-resistance", "12",
        "--quiet", "--no-compile-cache", "--out", tmp_path / "out",
    )  # fmt: skip
    assert status == 2 and "stop here" in stderr
    assert seen["c_pf"] == 85.5 and seen["series_resistance"] == 12.0
    assert seen["channel"] is None and seen["dac"] is None
    status, _, _ = _run(
        capsys, "fit", RECORDING, "--channel", "0", "--dac", "1", "--quiet",
        "--no-compile-cache", "--out", tmp_path / "out",
    )  # fmt: skip
    assert status == 2 and seen["channel"] == 0 and seen["dac"] == 1
    status, _, _ = _run(
        capsys, "fit", RECORDING, "--electrode", "e1", "--out", tmp_path / "out"
    )
    assert status == 2 and seen["electrode"] == "e1"
    status, _, _ = _run(
        capsys, "fit", RECORDING, "--stimulus-description", "long steps", "--out",
        tmp_path / "out",
    )  # fmt: skip
    assert status == 2 and seen["stimulus_description"] == "long steps"
    status, _, stderr = _run(
        capsys, "fit", RECORDING, "--c-pf", "0", "--out", tmp_path / "out"
    )
    assert status == 2 and "argument --c-pf" in stderr


def test_existing_output_is_only_replaced_on_success(recording_file, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "params.json").write_text("old")
    status, _, _ = _run(
        capsys, "fit", _corrupt(tmp_path / "x.npz"), "--free", "g_na",
        "--no-compile-cache", "--out", out,
    )  # fmt: skip
    assert status == 2
    assert (out / "params.json").read_text() == "old"
    # A prediction into a fit's directory would mix the two runs' files.
    status, _, stderr = _run(capsys, "predict", out, recording_file, "--out", out)
    assert status == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert f"argument --out: {out} holds a fit (params.json)" in stderr
    assert (out / "params.json").read_text() == "old"
    elsewhere = tmp_path / "prediction"
    status, _, stderr = _run(
        capsys, "predict", tmp_path / "missing.json", recording_file, "--out", elsewhere
    )
    assert status == 2 and "no such file" in stderr
    status, _, stderr = _run(capsys, "predict", out, recording_file, "--out", elsewhere)
    assert status == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert (
        f"PARAMS: {out} is a directory (did you mean {out / 'params.json'}?)" in stderr
    )
    assert not elsewhere.exists()


@pytest.mark.parametrize("source", ["recording", "real-cell fit"])
def test_predict_refuses_options_the_real_cell_protocol_does_not_use(
    recording_file, tmp_path, capsys, source
):
    # The protocol scores every sweep of the recording itself: --sweeps, --window,
    # --exclude, --threshold and --substeps were silently ignored.
    params = tmp_path / "params.json"
    document = {"model": "pospischil-rs", "params": {}}
    if source == "real-cell fit":  # its parameters select the protocol
        document["protocol"] = {"training_sweeps": [0]}
    params.write_text(json.dumps(document))
    data = RECORDING if source == "recording" else recording_file
    out = tmp_path / "out"
    status, _, stderr = _run(
        capsys, "predict", params, data, "--sweeps", "0", "--window", "0:100",
        "--exclude", "5:6", "--threshold", "-20", "--substeps", 2, "--out", out,
    )  # fmt: skip
    assert status == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hhjax: error:"), stderr
    assert "--sweeps, --window, --exclude, --threshold, --substeps: not used" in stderr
    assert ("for a recording" if source == "recording" else "real-cell fit") in stderr
    assert not out.exists()


def test_predict_reads_a_toml_parameter_file(recording_file, tmp_path, capsys):
    params = tmp_path / "p.toml"
    params.write_text('model = "hh"\n[params]\ng_na = 120.0\n')
    out = tmp_path / "pred"
    status, _, stderr = _run(capsys, "predict", params, recording_file, "--out", out)
    assert status == 0, stderr
    row = json.loads((out / "metrics.json").read_text())["sweeps"][0]
    assert row["spikes_model"] == row["spikes_data"] >= 3


@pytest.mark.filterwarnings("ignore::hhjax.StepSizeWarning")
def test_fit_and_predict_simulate_with_the_fits_substeps(coarse_file, tmp_path, capsys):
    # The fit integrated with dt/10; scoring its result at the data's 0.1 ms blew
    # up after the fit had finished (exit 1, nothing written).
    out = tmp_path / "fit"
    status, _, stderr = _run(
        capsys, "fit", coarse_file, "--free", "g_l", "--loss", "mse", "--substeps",
        10, "--init", "params", "--starts", 1, "--iterations", 2, "--quiet",
        "--no-compile-cache", "--out", out,
    )  # fmt: skip
    assert status == 0, stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["substeps"] == 10 and metrics["total"]["failed_sweeps"] == []
    (row,) = metrics["sweeps"]
    assert row["spikes_model"] == row["spikes_data"] == 2
    pred = tmp_path / "pred"
    argv = ["predict", out / "params.json", coarse_file, "--out", pred]
    status, _, stderr = _run(capsys, *argv)
    assert status == 0, stderr
    again = json.loads((pred / "metrics.json").read_text())
    assert again["substeps"] == 10 and again["sweeps"] == metrics["sweeps"]
    status, stdout, stderr = _run(capsys, *argv, "--substeps", 1)  # flagged, not fatal
    assert status == 0, stderr
    again = json.loads((pred / "metrics.json").read_text())
    assert again["sweeps"][0]["simulation_failed"] and "--substeps" in stderr
    assert "simulation failed" in stdout
    # A params.json edited to settings predict cannot use: refused, not replaced.
    document = json.loads((out / "params.json").read_text())
    for key, value, message in [
        ("method", "leapfrog", "settings.method 'leapfrog' is not one of"),
        ("loss", {"substeps": -1}, "settings.loss.substeps must be an integer >= 1"),
    ]:
        edited = tmp_path / f"edited_{key}.json"
        settings = dict(document["settings"], **{key: value})
        edited.write_text(json.dumps(dict(document, settings=settings)))
        status, _, stderr = _run(capsys, "predict", edited, coarse_file, "--out", pred)
        assert status == 2 and len(stderr.strip().splitlines()) == 1, stderr
        assert f"PARAMS: {edited}: {message}" in stderr
    # ... unless the option that the message names is given.
    argv = ["predict", tmp_path / "edited_method.json", coarse_file, "--out", pred]
    assert _run(capsys, *argv, "--method", "rk4")[0] == 0
    argv[1] = tmp_path / "edited_loss.json"
    assert _run(capsys, *argv, "--substeps", 10)[0] == 0


def _fit_g_l_by_regression(capsys, data, out):
    """A quick CLI fit of g_l (regression loss: no simulation while fitting),
    to convergence (2 iterations: a warning that it did not converge)."""
    return _run(
        capsys, "fit", data, "--free", "g_l", "--loss", "regression",
        "--starts", 1, "--iterations", 30, "--quiet", "--no-compile-cache",
        "--out", out,
    )  # fmt: skip


@pytest.mark.filterwarnings("ignore::hhjax.StepSizeWarning")
def test_a_fit_whose_result_cannot_be_simulated_keeps_its_results(
    coarse_file, tmp_path, capsys
):
    # The regression loss does not simulate, so its fit of coarse data succeeds,
    # but the result cannot be simulated from rest at 0.1 ms: the fit is still
    # written, and the sweep is flagged in metrics.json.
    out = tmp_path / "fit"
    status, stdout, stderr = _fit_g_l_by_regression(capsys, coarse_file, out)
    assert status == 0, stderr
    assert {p.name for p in out.iterdir()} == {
        "params.json", "metrics.json", "report.png",
    }  # fmt: skip
    assert json.loads((out / "params.json").read_text())["free"] == ["g_l"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["total"]["failed_sweeps"] == [0]
    assert metrics["sweeps"][0]["simulation_failed"]
    assert "could not be simulated" in stderr and "simulation failed" in stdout
    assert not list(tmp_path.glob(".fit*"))  # checkpoint removed


@pytest.mark.filterwarnings("ignore::hhjax.StepSizeWarning")
def test_a_fit_whose_scoring_fails_keeps_its_parameters(
    coarse_file, tmp_path, capsys, monkeypatch
):
    import fitting._report

    def broken(*args, **kwargs):
        raise RuntimeError("no figure today")

    monkeypatch.setattr(fitting._report, "save_report", broken)
    out = tmp_path / "fit"
    out.mkdir()
    for name in ("params.json", "metrics.json", "report.png"):
        (out / name).write_text("an earlier run")
    status, _, stderr = _fit_g_l_by_regression(capsys, coarse_file, out)
    assert status == 1
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("hhjax: error: scoring the fit failed")
    assert "no figure today" in lines[-1] and "params.json" in lines[-1]
    assert json.loads((out / "params.json").read_text())["free"] == ["g_l"]
    # No file of the earlier run is left next to the new ones: the metrics were
    # written before the figure failed, the old figure is gone.
    assert "sweeps" in json.loads((out / "metrics.json").read_text())
    assert not (out / "report.png").exists()


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_out_that_is_a_file_is_refused(command, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    argv = (
        ["fit", tmp_path / "d.npz", "--free", "g_l"]
        if command == "fit"
        else ["predict", tmp_path / "p.json", tmp_path / "d.npz"]
    )
    status, _, stderr = _run(capsys, *argv, "--out", taken)
    assert status == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert "argument --out:" in stderr and "not a directory" in stderr
    assert taken.read_text() == "keep me"


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_out_that_cannot_be_written_stops_before_the_work(
    command, tmp_path, capsys, monkeypatch
):
    # The outputs are staged next to --out: its parent must take files. Neither
    # the data nor the parameter file is read first (neither exists here).
    from hhjax import cli

    argv = (
        ["fit", tmp_path / "d.npz", "--free", "g_l"]
        if command == "fit"
        else ["predict", tmp_path / "p.json", tmp_path / "d.npz"]
    )
    (tmp_path / "out" / "metrics.json").mkdir(parents=True)
    status, _, stderr = _run(capsys, *argv, "--out", tmp_path / "out")
    assert status == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert f"argument --out: {tmp_path / 'out' / 'metrics.json'} is a dir" in stderr

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cli.tempfile, "TemporaryFile", refused)
    status, _, stderr = _run(capsys, *argv, "--out", tmp_path / "new" / "sub")
    assert status == 2 and len(stderr.strip().splitlines()) == 1, stderr
    assert f"cannot create files in {tmp_path} (Permission denied)" in stderr
    assert not (tmp_path / "new").exists()


def test_out_in_the_working_directory_checks_that_directory(tmp_path, monkeypatch):
    # --out . stages its files in . itself: its parent need not take files.
    from hhjax import cli

    checked = []

    def record(*args, dir, **kwargs):
        checked.append(Path(dir))
        raise PermissionError(13, "Permission denied")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.tempfile, "TemporaryFile", record)
    with pytest.raises(cli.UsageError, match=rf"cannot create files in {tmp_path} "):
        cli.check_out_names(Path("."), ["params.json"], staged_beside=True)
    assert checked == [tmp_path]


def test_parameters_of_several_cells_are_refused_by_fit_and_predict(
    recording_file, tmp_path, capsys
):
    params = tmp_path / "cells.json"
    params.write_text(json.dumps({"model": "hh", "params": {"g_na": [100, 120]}}))
    for argv, option in [
        (
            ["fit", recording_file, "--params", params, "--free", "g_k"],
            "argument --params",
        ),
        (["predict", params, recording_file], f"PARAMS ({params})"),
    ]:
        status, _, stderr = _run(capsys, *argv, "--out", tmp_path / "out")
        assert status == 2 and len(stderr.strip().splitlines()) == 1, stderr
        assert f"{option} must hold one real number per parameter" in stderr
        assert "got g_na of shape (2,)" in stderr


def test_fit_out_of_memory_says_what_to_ask_less_of(
    recording_file, tmp_path, capsys, monkeypatch
):
    def exhausted(*args, **kwargs):
        raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory\nstack")

    monkeypatch.setattr(fitting, "fit", exhausted)
    argv = ["fit", recording_file, "--free", "g_l", "--no-compile-cache"]
    status, _, stderr = _run(capsys, *argv, "--out", tmp_path / "out")
    assert status == 1 and stderr.count("\n") == 1, stderr
    assert stderr.startswith("hhjax: error: out of memory (JaxRuntimeError:")
    assert stderr.rstrip().endswith(
        "ask for less: fewer --starts, fewer --sweeps or a shorter --window"
    )
    monkeypatch.setattr(fitting.protocol, "fit_to_directory", exhausted)
    status, _, stderr = _run(capsys, "fit", RECORDING, "--out", tmp_path / "out")
    assert status == 1 and stderr.count("\n") == 1, stderr
    assert stderr.rstrip().endswith("ask for less: fewer training --sweeps")


def _one_line_interrupt(status, stderr):
    lines = stderr.strip().splitlines()
    assert status == 130, stderr
    assert len(lines) == 1 and lines[0].startswith("hhjax: interrupted"), stderr
    return lines[0]


def test_ctrl_c_outside_the_fit_is_one_line_and_exit_130(
    recording_file, tmp_path, capsys, monkeypatch
):
    import fitting._cli

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(fitting._cli, "_load", interrupted)
    out = tmp_path / "fit"
    status, _, stderr = _fit_g_l_by_regression(capsys, recording_file, out)
    line = _one_line_interrupt(status, stderr)
    # It said "(it resumes from ... if the fit saved progress there)" when
    # nothing had been saved.
    assert (
        f"{out} is unchanged; no progress was saved; run the same command "
        "again to start over" in line
    )
    assert not out.exists()


def test_an_interrupted_no_resume_fit_says_to_drop_the_option_to_resume(
    recording_file, tmp_path, capsys, monkeypatch
):
    # "run the same command again to resume" restarted the fit from scratch
    # (--no-resume) and overwrote the progress just saved.
    def interrupted(*args, checkpoint=None, **kwargs):
        raise fitting.FitInterrupted(
            f"fit interrupted at stage 1, iteration 11; progress saved to {checkpoint}",
            checkpoint,
        )

    monkeypatch.setattr(fitting, "fit", interrupted)
    out = tmp_path / "fit"
    for extra, expected in (
        ((), "run the same command again to resume"),
        (("--no-resume",), "run the command again without --no-resume to resume"),
    ):
        status, _, stderr = _run(
            capsys, "fit", recording_file, "--free", "g_l", "--loss", "regression",
            "--quiet", "--no-compile-cache", "--out", out, *extra,
        )  # fmt: skip
        assert expected in _one_line_interrupt(status, stderr)


def test_ctrl_c_during_the_warm_start_is_one_line_and_exit_130(
    recording_file, tmp_path, capsys, monkeypatch
):
    def interrupted(self, index):
        raise KeyboardInterrupt

    monkeypatch.setattr(fitting._run.Run, "_build", interrupted)
    out = tmp_path / "fit"
    status, _, stderr = _fit_g_l_by_regression(capsys, recording_file, out)
    line = _one_line_interrupt(status, stderr)
    # In the regression warm start (the default --init), which compiles first.
    assert "regression warm start" in line and "start over" in line
    assert not out.exists()


def test_ctrl_c_while_scoring_keeps_the_finished_fit(
    recording_file, tmp_path, capsys, monkeypatch
):
    import fitting._metrics

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fitting._metrics, "simulate_sweeps", interrupted)
    out = tmp_path / "fit"
    status, _, stderr = _fit_g_l_by_regression(capsys, recording_file, out)
    assert "while scoring the fit" in _one_line_interrupt(status, stderr)
    assert not out.exists()
    assert (tmp_path / ".fit.checkpoint.npz").exists()
    monkeypatch.undo()
    status, stdout, stderr = _fit_g_l_by_regression(capsys, recording_file, out)
    assert status == 0, stderr
    assert (out / "report.png").exists()
    assert not (tmp_path / ".fit.checkpoint.npz").exists()


def test_ctrl_c_after_the_outputs_are_written_says_so(
    recording_file, tmp_path, capsys, monkeypatch
):
    # It said "DIR is unchanged ... the finished fit is in the checkpoint",
    # while DIR held the new files and the checkpoint was being removed.
    import fitting._cli

    def interrupted(*paths):
        raise KeyboardInterrupt

    monkeypatch.setattr(fitting._cli, "_remove", interrupted)
    out = tmp_path / "fit"
    status, _, stderr = _fit_g_l_by_regression(capsys, recording_file, out)
    line = _one_line_interrupt(status, stderr)
    assert "unchanged" not in line and "checkpoint" not in line
    assert f"after writing params.json, metrics.json, report.png to {out}" in line
    assert {p.name for p in out.iterdir()} == {
        "params.json", "metrics.json", "report.png",
    }  # fmt: skip


def test_sigterm_is_an_interrupt_that_cannot_be_lost():
    import os
    import signal
    import time

    from fitting._cli import _signals_as_interrupt
    from fitting._interrupt import INTERRUPT_REQUESTED

    before = signal.getsignal(signal.SIGTERM)
    with _signals_as_interrupt():
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler interrupts the sleep
        # Also remembered, for an interrupt raised where it is ignored.
        assert INTERRUPT_REQUESTED.is_set()
    assert signal.getsignal(signal.SIGTERM) is before
    assert not INTERRUPT_REQUESTED.is_set()


def test_an_ignored_sigint_stays_ignored():
    # A job started in the background by a script inherits SIGINT ignored; a
    # Ctrl-C in the terminal must not stop it (Python keeps SIG_IGN too).
    import signal

    from fitting._cli import _signals_as_interrupt

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _signals_as_interrupt():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_an_interrupted_command_waits_for_a_compilation_left_running(capsys):
    # Python's exit waited for it anyway, and a Ctrl-C in that wait printed a
    # traceback; the wait now says so (another Ctrl-C quits at once).
    import time
    from concurrent.futures import ThreadPoolExecutor

    from fitting._cli import _interrupted
    from fitting._interrupt import WORKER_PREFIX, busy_workers

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=WORKER_PREFIX)
    job = pool.submit(time.sleep, 0.5)
    pool.shutdown(wait=False)
    assert _interrupted(": test") == 130
    assert job.done() and not busy_workers()
    line = capsys.readouterr().err.strip()
    assert line.startswith("hhjax: interrupted: test (exiting when the computation")


def test_predict_of_a_recording_prints_the_spikes_in_the_step(capsys):
    # The real-cell protocol's rows: counts in the step (what its report shows),
    # the step current, and the held-out summary.
    from fitting._cli import _print_metrics

    row = {
        "sweep": 7, "amplitude_pA": 70.0, "training": False, "spikes_data": 3,
        "spikes_model": 4, "spikes_data_step": 1, "spikes_model_step": 1,
        "subthreshold_rmse_mV": 2.5,
    }  # fmt: skip
    protocol = {
        "held_out": [7], "fraction_within_1": 1.0, "rheobase_data_pA": 70.0,
        "rheobase_model_pA": 70.0, "mean_subthreshold_rmse_mV": 2.5,
    }  # fmt: skip
    _print_metrics({"sweeps": [row], "protocol": protocol})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "  sweep 7 (70 pA): spikes in the step data 1, model 1; subthreshold RMSE 2.5 mV"
    )
    assert out[1].startswith("held out: 100 % within ±1 spike; rheobase 70 pA / 70 pA")


def test_fit_of_a_recording_prints_the_held_out_summary(tmp_path, capsys, monkeypatch):
    from types import SimpleNamespace

    protocol = {
        "held_out": [1, 2], "fraction_within_1": 0.5, "rheobase_data_pA": 70.0,
        "rheobase_model_pA": 80.0, "mean_subthreshold_rmse_mV": 4.25,
    }  # fmt: skip

    def fake_fit(data, out_dir, model, **kwargs):
        (out_dir / "metrics.json").write_text(json.dumps({"protocol": protocol}))
        for name in ("params.json", "report.png"):
            (out_dir / name).write_text("x")
        return SimpleNamespace(summary=lambda: "fitted")

    monkeypatch.setattr(fitting.protocol, "fit_to_directory", fake_fit)
    status, stdout, _ = _run(
        capsys, "fit", RECORDING, "--quiet", "--no-compile-cache", "--out",
        tmp_path / "out",
    )  # fmt: skip
    assert status == 0
    lines = stdout.splitlines()
    assert lines[:2] == [
        "fitted",
        "held out: 50 % within ±1 spike; rheobase 70 pA / 80 pA (data / model); "
        "subthreshold RMSE mean 4.25 mV",
    ]


def test_help_says_which_options_are_for_npz_data_and_the_convention(capsys):
    for command, npz_only, both in [
        ("fit", ["--starts", "--loss", "--window"], ["--sweeps", "--free"]),
        ("predict", ["--sweeps", "--window", "--substeps"], ["--method"]),
    ]:
        assert main([command, "--help"]) == 0
        out = capsys.readouterr().out
        assert "Voltage convention: that of the parameters, modern" in " ".join(
            out.split()
        )
        # One block per option: its line "  --flag ..." and the indented rest.
        blocks = {
            block.split()[0]: " ".join(block.split())
            for block in re.split(r"\n(?=  -)", out)
            if block.startswith("  --")
        }
        for flag in npz_only + both:
            marked = "[.npz/.csv data only]" in blocks[flag]
            assert marked == (flag in npz_only), blocks[flag]


def test_warnings_while_loading_are_one_line(tmp_path, capsys):
    volts = tmp_path / "volts.npz"
    t = DT * np.arange(400)
    with pytest.warns(UserWarning, match="in volts"):
        recording = Recording(dt=DT, v=np.full(t.size, -0.065), i=np.zeros(t.size))
    save_npz(recording, volts)
    status, _, stderr = _run(
        capsys, "fit", volts, "--free", "g_l", "--loss", "regression", "--starts", 1,
        "--quiet", "--no-compile-cache", "--out", tmp_path / "out",
    )  # fmt: skip
    first = stderr.splitlines()[0]
    assert first.startswith("hhjax: warning: ") and "in volts?" in first, stderr
    assert "UserWarning" not in stderr


def test_a_cell_on_another_dac_is_fitted_and_predicted(tmp_path, capsys):
    # The cell on an amplifier's second channel (DAC 0 silent, DAC 1 drives):
    # the command line could not read such a file. --dac selects the DAC; the fit
    # keeps it in params.json and `hhjax predict` uses it on the same file.
    path = cell_on_dac1(tmp_path / "dac1.abf")
    status, _, stderr = _run(
        capsys, "fit", path, "--quiet", "--no-compile-cache", "--out", tmp_path / "x"
    )
    assert status == 2 and stderr.count("\n") == 1
    assert "but DAC 1 (pA) does: pass `dac=1` (`--dac 1` on the command line)" in stderr
    for flag in ("--channel", "--dac"):
        status, _, stderr = _run(
            capsys, "fit", path, flag, "-1", "--out", tmp_path / "x"
        )
        assert status == 2 and f"argument {flag}: expected an index >= 0" in stderr
    out = tmp_path / "fit"
    out.mkdir()
    fitting.protocol.fit_to_directory(
        path, out, "pospischil-rs", dac=1, sweeps=[7, 10], free=["g_na"],
        generations=1, population=4, restarts=1, screen=4, polish_iterations=0,
        later_steps=False,
    )  # fmt: skip
    fitted = json.loads((out / "params.json").read_text())
    assert fitted["data"]["dac"] == 1 and "channel" not in fitted["data"]
    pred = tmp_path / "pred"
    status, stdout, stderr = _run(
        capsys, "predict", out / "params.json", path, "--out", pred
    )
    assert status == 0, stderr
    assert f"reading the cell the fit read: --dac 1 (from {out / 'params.json'})" in (
        stdout
    )
    report = json.loads((pred / "metrics.json").read_text())
    assert report["data"]["dac"] == 1
    amplitudes = [s["amplitude_pA"] for s in report["sweeps"]]
    assert amplitudes == [10.0 * k for k in range(30)]  # those of 18711001.abf
    # The same file as the fit's: its training sweeps are marked.
    assert [s["sweep"] for s in report["sweeps"] if s["training"]] == [7, 10]
    # --dac given overrides the fit's: DAC 0 holds 0 pA, nothing to score.
    status, _, stderr = _run(
        capsys, "predict", out / "params.json", path, "--dac", 0, "--out", pred
    )  # fmt: skip
    assert status == 2 and "no depolarising current" in stderr, stderr
    # The fit's selectors, named when they do not fit another file or are edited.
    fitted["data"]["channel"] = 1
    (tmp_path / "ch1.json").write_text(json.dumps(fitted))
    status, _, stderr = _run(
        capsys, "predict", tmp_path / "ch1.json", RECORDING, "--out", tmp_path / "q"
    )
    assert status == 2 and "no ADC channel 1" in stderr
    assert "(--channel 1 --dac 1 came from the fit's" in stderr
    fitted["data"]["channel"] = "1"
    (tmp_path / "ch1.json").write_text(json.dumps(fitted))
    status, _, stderr = _run(
        capsys, "predict", tmp_path / "ch1.json", RECORDING, "--out", tmp_path / "q"
    )
    assert status == 2 and "data.channel must be an index (integer); got '1'" in stderr
    # A trace file has no channels: refused.
    status, _, stderr = _run(
        capsys, "fit", EXAMPLE, "--free", "g_na", "--dac", "0", "--out", tmp_path / "x"
    )
    assert status == 2 and "`dac` applies to .abf files only" in stderr, stderr


def test_fit_warnings_name_the_options_not_the_python_arguments(
    recording_file, tmp_path, capsys
):
    # It printed "Widen `bounds` to start there", the argument of fitting.fit.
    status, _, stderr = _run(
        capsys, "fit", recording_file, "--free", "g_l,g_k", "--loss", "regression",
        "--init", "params", "--bounds", "g_k=1:10", "--starts", 1, "--iterations", 30,
        "--quiet", "--no-compile-cache", "--out", tmp_path / "fit",
    )  # fmt: skip
    assert status == 0, stderr
    assert (
        "hhjax: warning: the parameters (the starts' centre): g_k = 36 lies outside "
        "its bounds [1, 10]; such starts begin at the nearest bound. Widen --bounds "
        "to start there."
    ) in stderr


def test_the_checkpoint_of_out_dot_is_named_after_the_directory(tmp_path, monkeypatch):
    # `--out .` kept its checkpoint as "..checkpoint.npz" inside the directory.
    from pathlib import Path

    from fitting._cli import checkpoint_path

    cell = tmp_path / "cell7"
    cell.mkdir()
    monkeypatch.chdir(cell)
    assert checkpoint_path(Path(".")) == tmp_path / ".cell7.checkpoint.npz"
    assert checkpoint_path(Path("fit")) == Path(".fit.checkpoint.npz")
