"""``hhjax fit`` and ``hhjax predict`` (the entry points of ``fitting._cli``)."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

import fitting
import hhjax
from hhjax.cli import main
from hhjax.recordings import save_npz

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
    assert params["model"] == "hh"
    assert set(params["params"]) == set(hhjax.HHParams._fields)
    assert params["free"] == ["g_na", "g_k", "g_l"]
    assert params["settings"]["dtype"] == "float64"
    metrics = json.loads((out / "metrics.json").read_text())
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


def _mismatched(path: Path) -> Path:
    t = DT * np.arange(100)
    np.savez(path, t_ms=t, v_mV=np.full(99, -65.0), i_uA_per_cm2=np.zeros(100))
    return path


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (_corrupt, [], "not a readable .npz"),
        (_mismatched, [], "samples per sweep"),
        (None, ["--free", "g_nax"], "Unknown parameter"),
        (None, ["--sweeps", "3"], "no sweep 3"),
        (None, ["--bounds", "g_na=5:1"], "LOWER:UPPER"),
        (None, ["--loss", "mse", "--windows", "2"], "only the shooting loss"),
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
        (["--float32", "--mixed"], "not allowed with argument --float32"),
        (["--free", "g_na,g_na"], "`free` names a parameter twice"),
        (["--free", "g_na,g_nax"], "Unknown parameter(s) g_nax for PospischilParams"),
        (["--free", "g_na,e_na"], "No search box for e_na"),
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
    status, _, stderr = _run(
        capsys, "predict", tmp_path / "missing.json", recording_file, "--out", out
    )
    assert status == 2 and "no such file" in stderr
    assert (out / "params.json").read_text() == "old"
