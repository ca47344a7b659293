"""The ``hhjax`` command line: simulate, fi, errors, plugin subcommands."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np
import pytest

import hhjax
from hhjax import cli

STEP = ["--total", "20", "--start", "2", "--duration", "15", "--amplitude", "15"]


def _run_main(argv, capsys):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_simulate_writes_trace_files(tmp_path, capsys):
    status, out, err = _run_main(["simulate", *STEP, "--out", tmp_path], capsys)
    assert status == 0, err
    for name in ("trace.npz", "trace.csv", "trace.png"):
        assert (tmp_path / name).stat().st_size > 0, name
        assert f"wrote {tmp_path / name}" in out
    with np.load(tmp_path / "trace.npz") as data:
        v, t, i_ext = data["v_mV"], data["t_ms"], data["i_ext_uA_per_cm2"]
    assert v.shape == t.shape == i_ext.shape == (2000,)  # 20 ms / 0.01 ms
    assert v.max() > 20.0 and v[0] == pytest.approx(-65.0, abs=0.1)  # spikes, rest
    assert i_ext[199] == 0.0 and i_ext[200] == 15.0 and i_ext[1700] == 0.0
    header = (tmp_path / "trace.csv").read_text().splitlines()[0].split(",")
    assert header == [
        "t_ms", "v_mV", "m", "h", "n", "i_na_uA_per_cm2", "i_k_uA_per_cm2",
        "i_l_uA_per_cm2", "i_ext_uA_per_cm2",
    ]  # fmt: skip


def test_simulate_parameters_from_file_and_options(tmp_path, capsys):
    """A fitting-style params.json, --param on top, hh1952 convention, euler: the
    trace equals hhjax.simulate with those parameters."""
    params_file = tmp_path / "params.json"
    params_file.write_text(
        json.dumps({"model": "hh", "params": {"g_na": 100.0, "g_k": 30.0}, "loss": 1})
    )
    argv = ["simulate", "--constant", "20", "--total", "5", "--dt", "0.01"]
    argv += ["--params", params_file, "--param", "g_k=33", "--convention", "hh1952"]
    argv += ["--method", "euler", "--no-plot", "--out", tmp_path]
    status, _, err = _run_main(argv, capsys)
    assert status == 0, err
    assert not (tmp_path / "trace.png").exists()
    params = hhjax.HHParams.hh1952(g_na=100.0, g_k=33.0)
    expected = hhjax.simulate(params, np.full(500, 20.0), 0.01, method="euler")
    with np.load(tmp_path / "trace.npz") as data:
        np.testing.assert_allclose(data["v_mV"], expected.v, rtol=0, atol=1e-10)
        np.testing.assert_allclose(data["n"], expected.n, rtol=0, atol=1e-12)


def test_simulate_toml_parameters(tmp_path, capsys):
    params_file = tmp_path / "cell.toml"
    params_file.write_text("g_na = 110.0\ne_l = -54.0\n")
    argv = ["simulate", *STEP, "--params", params_file]
    status, _, err = _run_main([*argv, "--no-plot", "--out", tmp_path], capsys)
    assert status == 0, err
    rest = hhjax.resting_state(hhjax.HHParams(g_na=110.0, e_l=-54.0))
    with np.load(tmp_path / "trace.npz") as data:
        assert data["v_mV"][0] == pytest.approx(float(rest.v), abs=1e-9)


def test_simulate_figure_leaves_out_switched_off_channels(
    tmp_path, capsys, monkeypatch
):
    # The RS set switches five channels off (zero conductance): their flat gates
    # and zero currents stay in the files but not in the figure's panels, which
    # plot_trace leaves out given the params (tests/test_plot.py).
    import hhjax.plot

    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return plot_trace(*args, **kwargs)

    plot_trace = hhjax.plot.plot_trace
    monkeypatch.setattr(hhjax.plot, "plot_trace", spy)
    argv = ["simulate", *STEP, "--model", "pospischil-rs", "--out", tmp_path]
    status, _, err = _run_main(argv, capsys)
    assert status == 0, err
    assert calls[0]["params"] == hhjax.default_params("pospischil-rs")
    with np.load(tmp_path / "trace.npz") as data:
        assert {"r", "a", "b", "i_h_uA_per_cm2", "i_kir_uA_per_cm2"} <= set(data)


def test_simulate_says_which_cell_the_figure_shows(tmp_path, capsys):
    params_file = tmp_path / "cells.json"
    params_file.write_text('{"model": "hh", "params": {"g_na": [100, 120]}}')
    argv = ["simulate", *STEP, "--params", params_file, "--out", tmp_path]
    status, out, err = _run_main(argv, capsys)
    assert status == 0, err
    assert "batch shape (2,);" in out and "trace.png shows cell (0,)" in out


def test_fi_onset_between_6_and_7(tmp_path, capsys):
    """Standard modern HH, each current switched on from rest: repetitive firing
    starts between 6 and 7 uA/cm^2 (standard HH: near 6.2-6.3 from rest)."""
    argv = ["fi", "--from", "5.5", "--to", "7.5", "--step", "0.5"]
    argv += ["--duration", "300", "--transient", "100", "--out", tmp_path]
    status, out, err = _run_main(argv, capsys)
    assert status == 0, err
    onset = float(re.search(r"onset: ([0-9.]+) uA/cm\^2", out).group(1))
    assert 6.0 < onset <= 7.0
    table = np.loadtxt(tmp_path / "fi.csv", delimiter=",", skiprows=1)
    currents, rates, counts = table[:, 0], table[:, 1], table[:, 2]
    np.testing.assert_allclose(currents, [5.5, 6.0, 6.5, 7.0, 7.5])
    assert currents[np.argmax(counts >= 2)] == onset
    assert np.all(rates[currents < onset] == 0) and np.all(
        rates[currents >= onset] > 40
    )
    assert (tmp_path / "fi.png").stat().st_size > 0
    header = (tmp_path / "fi.csv").read_text().splitlines()[0]
    assert header == "current_uA_per_cm2,rate_Hz,spike_count,latency_ms,repetitive"
    assert table[:, 4].tolist() == [float(c >= onset) for c in currents]
    assert "first spike at or below 5.5 uA/cm^2" in out  # single-spike rheobase ~2.2


def _subprocess(command):
    result = subprocess.run(
        [str(c) for c in command],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_console_script_and_module(tmp_path):
    """The installed ``hhjax`` script (or ``python -m hhjax`` where it is not
    installed) runs ``fi`` and writes its files; ``python -m hhjax.cli`` and
    ``python -m hhjax`` answer ``--help`` (``simulate`` in-process: above)."""
    script = shutil.which("hhjax", path=str(Path(sys.executable).parent))
    fi = [script] if script else [sys.executable, "-m", "hhjax"]
    out = _subprocess(
        fi
        + ["fi", "--from", "0", "--to", "20", "--step", "10", "--duration", "60"]
        + ["--transient", "10", "--threshold", "-30", "--out", tmp_path]
    )
    assert "onset: 10 uA/cm^2" in out
    assert all((tmp_path / f).stat().st_size > 0 for f in ("fi.csv", "fi.png"))
    for module in ("hhjax.cli", "hhjax"):
        help_text = _subprocess([sys.executable, "-m", module, "simulate", "--help"])
        assert "uA/cm^2" in help_text and "--amplitude" in help_text


@pytest.mark.parametrize(
    "argv, option",
    [
        (["simulate", "--dt", "abc"], "--dt"),
        (["simulate", "--dt", "-0.01"], "--dt"),
        (["simulate", "--method", "leapfrog"], "--method"),
        (["simulate", "--param", "g_na"], "--param"),
        (["simulate", "--param", "g_nax=1"], "--param"),
        (["simulate", "--param", "g_k=-1"], "g_k"),
        (["simulate", "--total", "10.005"], "--total"),
        (["simulate", "--start", "50", "--duration", "80"], "--duration"),
        # --duration (default 80) was blamed though only --start was given
        (["simulate", "--start", "30"], "(--start 30 + --duration 80 ms) must end"),
        (["simulate", "--params", "no/such/file.json"], "--params"),
        (["simulate", "--model", "pospischil-rs", "--convention", "hh1952"], "hh1952"),
        (
            ["simulate", "--convention", "hh1952", "--param", "v_shift=0"],
            "argument --convention: hh1952 (v_shift = 65 mV) contradicts v_shift",
        ),
        (["fi", "--from", "5", "--to", "1"], "--to"),
        (["fi", "--transient", "500", "--duration", "300"], "--transient"),
        (["fi", "--step", "0"], "--step"),
        (["frobnicate"], "frobnicate"),
        ([], "COMMAND"),
        # too many steps, or too much output, before any allocation
        (["simulate", "--total", "1e12"], "--total"),
        (["simulate", "--dt", "1e-320"], "--dt"),
        (["simulate", "--total", "1e6"], "--total: the run would record"),
        (["fi", "--step", "1e-320"], "--step"),
        (["fi", "--duration", "1e6", "--dt", "0.01"], "--duration"),
        # library errors name the option that gave the value
        (["simulate", "--param", "g_na=-5"], "argument --param: "),
        (["simulate", "--constant", "5000"], "--constant"),
        (["fi", "--to", "2000"], "--to"),
        (["simulate", "--params", "."], "argument --params: cannot read"),
        # step times on the --dt grid, like --total
        (["simulate", "--start", "10.005"], "--start"),
        (["simulate", "--duration", "79.995"], "--duration"),
        # shorter than one step: it named the library's `duration`
        (["simulate", "--total", "1e-7"], "argument --total: 1e-07 ms is shorter"),
        (["simulate", "--duration", "1e-7"], "argument --duration: 1e-07 ms is short"),
        (["fi", "--duration", "1e-7", "--transient", "0"], "--duration: 1e-07 ms is"),
    ],
)
def test_bad_options_one_line_exit_2(argv, option, capsys, tmp_path, monkeypatch):
    # The output limit is half the machine's memory: 1 GiB here, on any machine.
    monkeypatch.setattr(cli, "MAX_OUTPUT_BYTES", 2**30)
    status, _, err = _run_main([*argv, "--out", tmp_path] if argv else [], capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hhjax: error: ") and option in lines[0], lines[0]
    assert "check_inputs" not in lines[0]  # a Python argument, not an option
    assert not (tmp_path / "trace.npz").exists()


@pytest.mark.parametrize(
    "command, params, expected",
    [
        ("fi", {"g_na": [100.0, 120.0]}, "each parameter must be a single number"),
        ("simulate", {"g_na": [1.0, 2.0], "g_k": [1.0, 2.0, 3.0]}, "broadcast"),
    ],
)
def test_batched_parameter_file_errors(command, params, expected, tmp_path, capsys):
    path = tmp_path / "batch.json"
    path.write_text(json.dumps(params))
    status, _, err = _run_main([command, "--params", path, "--out", tmp_path], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("hhjax: error: argument --params: ") and expected in err


@pytest.mark.parametrize(
    "argv, dest, value",
    [
        (["simulate", "--amplitude", "-1e1"], "amplitude", -10.0),
        (["simulate", "--constant", "-2.5E-1"], "constant", -0.25),
        (["fi", "--from", "-1.e1", "--to", "-.5"], "i_to", -0.5),
    ],
)
def test_negative_numbers_in_scientific_notation(argv, dest, value):
    args = cli.build_parser(plugins=False).parse_args(argv)
    assert getattr(args, dest) == value


def test_outputs_written_atomically_and_warnings_one_line(
    tmp_path, capsys, monkeypatch
):
    """Every output file arrives by an atomic rename; a step-size warning is one
    line on stderr in both commands."""
    renamed = []
    replace = os.replace

    def spy(src, dst):
        renamed.append(Path(dst).name)
        replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    fast = ["--method", "euler", "--dt", "0.1", "--out", tmp_path]
    status, _, err = _run_main(
        ["simulate", "--constant", "0", "--total", "1", *fast], capsys
    )
    assert status == 0, err
    assert sorted(renamed) == ["trace.csv", "trace.npz", "trace.png"]
    argv = ["fi", "--from", "0", "--to", "0", "--duration", "1", "--transient", "0"]
    status, _, err_fi = _run_main([*argv, *fast], capsys)
    assert status == 0, err_fi
    assert sorted(renamed)[:2] == ["fi.csv", "fi.png"]
    for text in (err, err_fi):
        assert text.count("\n") == 1 and text.startswith("hhjax: warning: dt = 0.1")


def test_simulate_warns_when_v_leaves_any_physiological_range(tmp_path, capsys):
    # A fit's leak of 0.005 mS/cm^2 under -100 pA went to -251 mV, silently.
    argv = [
        "simulate", "--param", "g_l=0.001", "--amplitude", "-5", "--start", "5",
        "--duration", "40", "--total", "50", "--method", "exp_euler", "--no-plot",
        "--out", tmp_path / "low",
    ]  # fmt: skip
    status, out, err = _run_main([str(a) for a in argv], capsys)
    low = float(out.split("V from ")[1].split()[0])
    assert status == 0 and low < -177.0
    assert err.startswith(f"hhjax: warning: V reached {low:.1f} mV, more than 100 mV ")
    assert "(-77.0 to 50.0 mV)" in err and err.count("\n") == 1
    argv[4] = "-1"  # V stays above -177 mV: no warning
    status, _, err = _run_main(
        [str(a) for a in argv[:-1]] + [str(tmp_path / "b")], capsys
    )
    assert status == 0 and err == ""


def test_a_warning_is_printed_before_the_error_it_explains(tmp_path, capsys):
    # The step-size warning was held until the simulation succeeded, and dropped
    # when it then diverged.
    argv = ["simulate", "--dt", "0.2", "--amplitude", "10", "--out", tmp_path / "o"]
    status, _, err = _run_main([str(a) for a in argv], capsys)
    lines = err.strip().splitlines()
    assert status == 1 and len(lines) == 2, err  # a failed run, not bad usage
    assert lines[0].startswith("hhjax: warning: dt = 0.2 ms is above 0.06 ms")
    assert lines[1].startswith("hhjax: error: The simulation became non-finite")


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("bad.json", '{"params": {"g_na": "fast"}}', "'g_na' must be a number"),
        ("bad.json", '{"g_na": 100,}', "not valid JSON"),
        ("bad.toml", "g_na = [1, 2", "not valid TOML"),
        ("cell.yaml", "g_na: 100", ".json or .toml"),
        ("other.json", '{"model": "cortical_rs", "params": {}}', "Unknown model"),
        ("rs.json", '{"model": "pospischil-rs", "params": {"g_k": 3}}', "g_k"),
        ("empty.json", '{"g_na": []}', "'g_na' is an empty list"),
        ("latin1.json", b'{"g_na": 100, "note": "\xb5A"}', "not UTF-8 text"),
    ],
)
def test_bad_parameter_file(name, content, expected, tmp_path, capsys):
    bad = tmp_path / name
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        bad.write_text(content)
    status, _, err = _run_main(["simulate", "--params", bad], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("hhjax: error: argument --params: ") and expected in err


def test_plugin_subcommands(monkeypatch, capsys):
    """Subcommands come from the ``hhjax.commands`` entry points; a broken one is
    reported on one line and the others keep working."""

    def register(subparsers):
        parser = subparsers.add_parser("hello", help="say hello")
        parser.add_argument("--name", default="world")
        parser.set_defaults(func=lambda args: print(f"hello {args.name}") or 3)

    def broken():
        raise ImportError("no module named 'fitting_extra'")

    fake = [
        SimpleNamespace(name="hello", value="demo:register", load=lambda: register),
        SimpleNamespace(name="fit", value="fitting_extra:register", load=broken),
    ]
    groups = []

    def fake_entry_points(*, group):
        groups.append(group)
        return fake

    monkeypatch.setattr(cli, "entry_points", fake_entry_points)
    status, out, err = _run_main(["hello", "--name", "pyHH"], capsys)
    assert groups == ["hhjax.commands"]
    assert status == 3 and out.strip() == "hello pyHH"
    assert err.count("\n") == 1 and "could not load command 'fit'" in err


def test_runtime_failure_is_one_line_exit_1(monkeypatch, capsys, tmp_path):
    """An XLA failure (e.g. out of device memory) is one line and status 1."""

    def exhausted(*args, **kwargs):
        raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory\nstack")

    monkeypatch.setattr(cli, "simulate", exhausted)
    status, _, err = _run_main(["simulate", "--no-plot", "--out", tmp_path], capsys)
    assert status == 1 and err.count("\n") == 1, err
    assert err.startswith("hhjax: error: out of memory (JaxRuntimeError: RESOURCE")
    assert not (tmp_path / "trace.npz").exists()


def test_other_runtime_failures_keep_their_traceback(monkeypatch, tmp_path):
    """Only running out of memory is a user's problem; anything else is a bug."""

    def broken(*args, **kwargs):
        raise jax.errors.JaxRuntimeError("INTERNAL: something else")

    monkeypatch.setattr(cli, "simulate", broken)
    with pytest.raises(jax.errors.JaxRuntimeError, match="INTERNAL"):
        cli.main(["simulate", "--no-plot", "--out", str(tmp_path)])


@pytest.mark.parametrize("command", ["simulate", "fi"])
def test_out_that_is_a_file_is_a_usage_error(command, tmp_path, capsys):
    path = tmp_path / "taken"
    path.write_text("keep me")
    status, _, err = _run_main([command, "--out", path], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert "argument --out:" in err and "not a directory" in err
    assert path.read_text() == "keep me"


@pytest.mark.parametrize("command", ["simulate", "fi"])
def test_out_below_a_file_is_a_usage_error(command, tmp_path, capsys):
    (tmp_path / "taken").write_text("keep me")
    status, _, err = _run_main([command, "--out", tmp_path / "taken" / "sub"], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert "argument --out:" in err and "is not a directory" in err


@pytest.mark.parametrize(
    ("command", "name"), [("simulate", "trace.csv"), ("fi", "fi.csv")]
)
def test_output_name_taken_by_a_directory_stops_before_the_work(
    command, name, tmp_path, capsys
):
    (tmp_path / name).mkdir()
    status, _, err = _run_main([command, "--out", tmp_path, "--no-plot"], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    assert "argument --out:" in err and f"{name} is a directory" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing written


@pytest.mark.parametrize("command", ["simulate", "fi"])
def test_out_where_files_cannot_be_created_stops_before_the_work(
    command, tmp_path, capsys, monkeypatch
):
    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cli.tempfile, "TemporaryFile", refused)
    monkeypatch.setattr(cli, "simulate", None)  # the work would fail otherwise
    status, _, err = _run_main([command, "--out", tmp_path / "new" / "sub"], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1, err
    # Checked where the directory would be created; nothing is created.
    assert f"argument --out: cannot create files in {tmp_path} (Permission" in err
    assert list(tmp_path.iterdir()) == []


def test_a_later_usage_error_leaves_no_out_directory(tmp_path, capsys):
    argv = ["simulate", "--start", "50", "--duration", "80", "--out", tmp_path / "o"]
    status, _, err = _run_main(argv, capsys)
    assert status == 2 and "--duration 80 ms) must end within --total" in err
    assert list(tmp_path.iterdir()) == []


def test_empty_out_is_a_usage_error(capsys):
    status, _, err = _run_main(["simulate", "--out", ""], capsys)
    assert status == 2 and "argument --out: give a directory name" in err


def test_help_shows_only_real_defaults(capsys):
    assert cli.main(["simulate", "--help"]) == 0
    text = capsys.readouterr().out
    assert "(default: 0.01)" in text  # --dt
    for noise in ("default: None", "default: False", "default: []"):
        assert noise not in text
