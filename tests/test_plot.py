"""Figures: each kind is drawn, written to PNG, and has the expected axes."""

from __future__ import annotations

import subprocess
import sys
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax.plot import plot_fi, plot_phase_plane, plot_trace

DT = 0.025  # ms
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def batch():
    """Two cells (g_na 120 and 100 mS/cm^2), a 15 uA/cm^2 step, 30 ms."""
    params = hhjax.HHParams(g_na=jnp.array([120.0, 100.0]))
    i_ext = hhjax.stimulus.step(
        jnp.array([15.0, 15.0]), start=5.0, stop=25.0, duration=30.0, dt=DT
    )
    return params, i_ext, hhjax.simulate(params, i_ext, DT)


def _saved(fig, path) -> int:
    fig.savefig(path)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    return len(data)


def test_trace_four_panels(batch, tmp_path):
    _, i_ext, trace = batch
    fig = plot_trace(trace, i_ext, cell=1, convention="modern")
    assert len(fig.axes) == 4
    assert _saved(fig, tmp_path / "trace.png") > 10_000
    v_axis, i_axis, gate_axis, current_axis = fig.axes
    np.testing.assert_allclose(v_axis.lines[0].get_ydata(), trace.v[:, 1])
    assert "mV" in v_axis.get_ylabel() and "modern" in v_axis.get_ylabel()
    assert "µA/cm²" in i_axis.get_ylabel() and "µA/cm²" in current_axis.get_ylabel()
    assert [ln.get_label() for ln in gate_axis.lines] == ["m", "h", "n"]
    assert len(current_axis.lines) == 3
    assert current_axis.get_xlabel() == "t (ms)"


def test_trace_panels_follow_what_was_recorded(batch, tmp_path):
    _, i_ext, trace = batch
    # As simulate(record=("v",), stride=4) would give: i_ext has 4x the samples.
    v_only = hhjax.Trace(trace.t[::4], trace.v[::4], *([None] * 6))
    fig = plot_trace(v_only, i_ext, cell=(0,))
    assert len(fig.axes) == 2
    assert _saved(fig, tmp_path / "v.png") > 0
    one_cell = trace._replace(**{f: getattr(trace, f)[:, 0] for f in trace._fields[1:]})
    assert len(plot_trace(one_cell).axes) == 3  # unbatched: no cell; no stimulus


def test_trace_bad_cell_and_current(batch):
    _, i_ext, trace = batch
    with pytest.raises(ValueError, match="cell="):
        plot_trace(trace)
    with pytest.raises(ValueError, match="not an index"):
        plot_trace(trace, cell=(2,))
    with pytest.raises(ValueError, match="whole multiple"):
        plot_trace(trace, i_ext[:-3], cell=0)
    with pytest.raises(ValueError, match="convention"):
        plot_trace(trace, cell=0, convention="pyhh")
    for cell in (1.0, "12"):
        with pytest.raises(TypeError, match="`cell` must be an integer or a tuple"):
            plot_trace(trace, cell=cell)
    with pytest.raises(TypeError, match="`trace` must be a trace tuple"):
        plot_trace(object())


def test_phase_plane(batch, tmp_path):
    params, _, trace = batch
    fig = plot_phase_plane(trace, cell=0, params=params, convention="modern")
    assert len(fig.axes) == 2
    assert _saved(fig, tmp_path / "phase.png") > 10_000
    gates_ax, dvdt_ax = fig.axes
    assert "mV" in gates_ax.get_xlabel() and dvdt_ax.get_ylabel() == "dV/dt (mV/ms)"
    # 3 gates + 3 steady-state curves + the legend's proxy line
    assert len(gates_ax.lines) == 7
    # The upstroke of a spike is far faster than the repolarisation.
    dvdt = dvdt_ax.lines[0].get_ydata()
    assert dvdt.max() > 100.0 > -dvdt.min()
    assert len(plot_phase_plane(trace, cell=1, views=("dvdt",)).axes) == 1
    with pytest.raises(ValueError, match="views"):
        plot_phase_plane(trace, cell=0, views=("gates", "gates"))


class _Curve(NamedTuple):  # the fields of hhjax.analysis.FICurve that plot_fi reads
    currents: np.ndarray
    rates: np.ndarray
    rheobase: float


def test_fi(tmp_path):
    currents = np.arange(0.0, 10.0, 0.5)
    rates = np.where(currents >= 6.5, 50.0 + 2.0 * (currents - 6.5), 0.0)
    fig = plot_fi(_Curve(currents, rates, 6.5), title="test")
    assert len(fig.axes) == 1
    assert _saved(fig, tmp_path / "fi.png") > 5_000
    ax = fig.axes[0]
    assert ax.get_xlabel() == "injected current (µA/cm²)"
    assert ax.get_ylabel() == "firing rate (Hz)"
    assert len(ax.lines) == 2  # curve + onset line
    no_onset = plot_fi(currents, np.zeros_like(currents), rheobase=float("nan"))
    assert len(no_onset.axes[0].lines) == 1
    with pytest.raises(ValueError, match="equal length"):
        plot_fi(currents, rates[:-1])


def test_core_does_not_import_plotting_io_or_cli():
    code = (
        "import sys, hhjax; "
        "bad = [m for m in ('matplotlib', 'hhjax.plot', 'hhjax.io', 'hhjax.cli', "
        "'hhjax.pyhh') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
