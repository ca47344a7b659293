"""Full-size fitting checks of issue 4 (``pytest -m slow tests/test_fitting_slow.py``).

Fit 1: 1 s of standard HH at dt = 0.025 ms under a noisy current, 1 mV recording
noise; 16 starts log-uniform within a factor 2 of the truth. Fit 2: all seven
of g_na, g_k, g_l, e_na, e_k, e_l, c_m from step, ramp and noise sweeps. A fit
killed with SIGKILL resumes from its checkpoint to the uninterrupted result, and
``hhjax fit`` runs with its defaults on the shipped example.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import fitting
import hhjax

pytestmark = pytest.mark.slow

DT = 0.025  # ms
TRUTH = hhjax.HHParams()
FIT1 = ("g_na", "g_k", "g_l", "e_l")
ALL7 = ("g_na", "g_k", "g_l", "e_na", "e_k", "e_l", "c_m")
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "data" / "synthetic_hh.npz"


def _truth(free):
    return np.array([float(getattr(TRUTH, f)) for f in free])


def _noisy_current(duration=1000.0):
    return np.asarray(
        hhjax.stimulus.ornstein_uhlenbeck(
            5.0, 5.0, 5.0, duration=duration, dt=DT, key=1
        )
    )


@pytest.fixture(scope="module")
def fit1_data():
    return fitting.synthetic_data(TRUTH, _noisy_current(), DT, noise_mv=1.0, seed=0)


def test_fit1_recovers_four_parameters_from_sixteen_starts(fit1_data):
    result = fitting.fit(fit1_data, FIT1, n_starts=16, seed=0, progress=False)
    err = np.abs(result.final_values / _truth(FIT1) - 1)
    assert np.abs(result.start_values / _truth(FIT1) - 1).max() > 0.5
    assert err[result.best].max() < 0.01, err[result.best]
    assert np.mean(err.max(axis=1) < 0.02) >= 0.8, err.max(axis=1)
    z = (
        result.final_values[result.best] - _truth(FIT1)
    ) / result.uncertainty.std_errors
    assert np.all(np.abs(z) < 5), z


def test_fit1_in_float32(fit1_data):
    result = fitting.fit(
        fit1_data, FIT1, n_starts=16, seed=0, dtype="float32", progress=False
    )
    err = np.abs(result.final_values / _truth(FIT1) - 1)
    assert err[result.best].max() < 0.02, err[result.best]


def test_fit1_in_mixed_precision(fit1_data):
    result = fitting.fit(
        fit1_data, FIT1, n_starts=16, seed=0, dtype="mixed", progress=False
    )
    err = np.abs(result.final_values / _truth(FIT1) - 1)
    assert err[result.best].max() < 0.01, err[result.best]
    assert np.mean(err.max(axis=1) < 0.02) >= 0.8, err.max(axis=1)


def test_all_seven_parameters_from_three_sweeps():
    step = hhjax.stimulus.step(15.0, start=100.0, stop=900.0, duration=1000.0, dt=DT)
    ramp = hhjax.stimulus.ramp(40.0, start=0.0, stop=1000.0, duration=1000.0, dt=DT)
    currents = np.stack([np.asarray(step), np.asarray(ramp), _noisy_current()])
    data = fitting.synthetic_data(TRUTH, currents, DT, noise_mv=1.0, seed=0)
    result = fitting.fit(data, ALL7, n_starts=8, seed=0, progress=False)
    err = np.abs(result.final_values / _truth(ALL7) - 1)
    assert err[result.best].max() < 0.01, err[result.best]
    assert np.mean(err.max(axis=1) < 0.02) >= 0.75, err.max(axis=1)
    assert not result.uncertainty.undetermined


_KILLABLE = textwrap.dedent(
    """
    import sys, jax, fitting, hhjax
    jax.config.update("jax_enable_x64", True)  # the same current as the test's
    i = hhjax.stimulus.ornstein_uhlenbeck(5.0, 5.0, 5.0, duration=200.0, dt=0.025, key=1)
    data = fitting.synthetic_data(hhjax.HHParams(), i, 0.025, noise_mv=1.0, seed=0)
    fitting.fit(data, ["g_na", "g_k", "g_l", "e_l"], n_starts=4, seed=0,
                checkpoint=sys.argv[1], checkpoint_every=0.0, progress=False)
    """
)


def test_fit_killed_by_sigkill_resumes_to_the_uninterrupted_result(tmp_path):
    i = _noisy_current(200.0)
    data = fitting.synthetic_data(TRUTH, i, DT, noise_mv=1.0, seed=0)
    checkpoint = tmp_path / "fit.npz"
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(checkpoint)])
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if checkpoint.exists():
                with np.load(checkpoint) as saved:
                    records = len(saved["loss_records"])
                if records >= 8:  # a few iterations into the first stage
                    break
            time.sleep(0.2)
        assert proc.poll() is None, "the fit finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    settings = {"n_starts": 4, "seed": 0, "progress": False}
    resumed = fitting.fit(data, FIT1, checkpoint=checkpoint, **settings)
    assert resumed.resumed_at is not None and resumed.resumed_at >= 8
    reference = fitting.fit(data, FIT1, **settings)
    np.testing.assert_allclose(resumed.final_values, reference.final_values, rtol=1e-10)


def _console_script() -> str:
    """The installed ``hhjax`` command (next to this Python, else on PATH)."""
    beside = Path(sys.executable).with_name("hhjax")
    return str(beside) if beside.exists() else (shutil.which("hhjax") or "hhjax")


def test_cli_fit_with_defaults_on_the_shipped_example(tmp_path):
    out = tmp_path / "fit"
    proc = subprocess.run(
        [_console_script(), "fit", str(EXAMPLE), "--free", "g_na,g_k,g_l,e_l", "--quiet",
         "--out", str(out)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "MPLBACKEND": "Agg"},
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    params = json.loads((out / "params.json").read_text())["params"]
    for name in FIT1:
        assert params[name] == pytest.approx(float(getattr(TRUTH, name)), rel=0.01)
    metrics = json.loads((out / "metrics.json").read_text())
    (row,) = metrics["sweeps"]
    assert row["spikes_data"] == row["spikes_model"] == row["matched_spikes"]
    assert (out / "report.png").stat().st_size > 50_000
