"""Figures: each kind is drawn, written to PNG, and has the expected axes."""

from __future__ import annotations

import subprocess
import sys
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax.analysis import PhaseResponse, Sensitivity, plot_prc, plot_sensitivities
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
    # Gates are labelled with their channel's current.
    labels = [ln.get_label() for ln in gate_axis.lines]
    expected = [("m", "Na"), ("h", "Na"), ("n", "K")]
    assert labels == [f"{g} ($I_{{\\mathrm{{{c}}}}}$)" for g, c in expected]
    assert len(current_axis.lines) == 3
    assert current_axis.get_xlabel() == "t (ms)"


def test_trace_panels_follow_what_was_recorded(batch, tmp_path):
    _, i_ext, trace = batch
    # As simulate(record=("v",), stride=4) would give: i_ext has 4x the samples.
    v_only = hhjax.Trace(trace.t[::4], trace.v[::4], *([None] * 6))
    fig = plot_trace(v_only, i_ext[:, 0], cell=(0,), stride=4)  # one current for all
    assert len(fig.axes) == 2
    assert _saved(fig, tmp_path / "v.png") > 0
    stairs = fig.axes[1].patches[0]
    np.testing.assert_allclose(stairs.get_data().edges[[0, -1]], [0.0, 30.0])
    # The stride is never guessed from the lengths.
    with pytest.raises(ValueError, match=r"must have 300; .*pass stride=4"):
        plot_trace(v_only, i_ext, cell=0)
    one_cell = trace._replace(**{f: getattr(trace, f)[:, 0] for f in trace._fields[1:]})
    assert len(plot_trace(one_cell).axes) == 3  # unbatched: no cell; no stimulus


def test_trace_bad_cell_and_current(batch):
    _, i_ext, trace = batch
    with pytest.raises(
        ValueError, match=r"`trace` has batch shape \(2,\): pass `cell=`"
    ):
        plot_trace(trace)
    with pytest.raises(ValueError, match="not an index"):
        plot_trace(trace, cell=(2,))
    with pytest.raises(ValueError, match="has 1197 time steps; .* must have 1200"):
        plot_trace(trace, i_ext[:-3], cell=0)
    with pytest.raises(ValueError, match="must have 1200; .*stride=2"):
        plot_trace(trace, jnp.concatenate([i_ext, i_ext]), cell=0)
    with pytest.raises(ValueError, match=r"batch shape \(3,\).*batch shape \(2,\)"):
        plot_trace(trace, jnp.zeros((1200, 3)), cell=1)
    with pytest.raises(ValueError, match="got the scalar 5. For a constant"):
        plot_trace(trace, 5.0, cell=0)
    with pytest.raises(TypeError, match="`stride` must be a positive integer"):
        plot_trace(trace, i_ext, cell=0, stride=1.0)
    with pytest.raises(ValueError, match="convention"):
        plot_trace(trace, cell=0, convention="pyhh")
    with pytest.raises(ValueError, match="current_scale"):
        plot_trace(trace, cell=0, current_scale="log")
    for cell in (1.0, "12"):
        with pytest.raises(TypeError, match="`cell` must be an integer or a tuple"):
            plot_trace(trace, cell=cell)
    with pytest.raises(TypeError, match="`trace` must be a trace tuple"):
        plot_trace(object())


def test_params_must_belong_to_the_trace(batch):
    params, _, trace = batch
    # Another model: the trace's fields differ from that model's.
    with pytest.raises(TypeError, match="model 'pospischil'.*produced the trace"):
        plot_phase_plane(trace, cell=0, params=hhjax.PospischilParams())
    # The other convention: the gates follow kinetics shifted by 65 mV.
    hh1952 = hhjax.HHParams.hh1952(g_na=params.g_na)
    with pytest.raises(ValueError, match="modern convention .*HHParams.hh1952"):
        plot_phase_plane(trace, cell=0, params=hh1952)
    with pytest.raises(ValueError, match="contradicts `params`.*'modern'"):
        plot_trace(trace, cell=0, params=params, convention="hh1952")
    with pytest.raises(ValueError, match=r"`params.g_na` has shape \(3,\)"):
        plot_trace(trace, cell=0, params=params._replace(g_na=jnp.ones(3)))
    # The convention is stated from the params, unasked.
    fig = plot_trace(trace, cell=0, params=params)
    assert "modern" in fig.axes[0].get_ylabel()
    assert plot_trace(trace, cell=0).axes[0].get_ylabel() == "V (mV)"  # unknown


def _pospischil_trace(n: int = 40) -> hhjax.PospischilTrace:
    """A synthetic RS-cell trace (no simulation): gates at 0.5, currents of very
    different sizes (µA/cm²), those of the switched-off channels 0."""
    ramp = np.linspace(-1.0, 1.0, n)
    fields = dict.fromkeys(hhjax.PospischilTrace._fields[2:], np.full(n, 0.5))
    sizes = {"i_na": 600.0, "i_kd": 300.0, "i_m": 1.0, "i_l": 3.0}
    fields.update({f: sizes.get(f, 0.0) * ramp for f in fields if f.startswith("i_")})
    return hhjax.PospischilTrace(t=0.1 * np.arange(n), v=-70.0 + ramp, **fields)


def test_switched_off_channels_are_left_out():
    trace, params = _pospischil_trace(), hhjax.PospischilParams.rs()
    _, gates, currents = plot_trace(trace, params=params).axes
    gate_labels = [ln.get_label() for ln in gates.lines]
    assert [label.split()[0] for label in gate_labels] == ["m", "h", "n", "p"]
    assert "h ($I_{\\mathrm{Na}}$)" in gate_labels  # Na inactivation, not I_h
    assert len(currents.lines) == 4  # I_Na, I_Kd, I_M, leak: no zero currents
    # I_M's 1 µA/cm² beside I_Na's 600: symlog, linear within ±1 µA/cm².
    assert currents.get_yscale() == "symlog" and "±1" in currents.get_ylabel()
    assert gates.get_legend().get_bbox_to_anchor().x0 > gates.bbox.x1  # outside
    assert "modern" in gates.figure.axes[0].get_ylabel()  # Pospischil: modern
    linear = plot_trace(trace, params=params, current_scale="linear").axes[2]
    assert linear.get_yscale() == "linear"
    # Without params every recorded field is drawn.
    assert len(plot_trace(trace).axes[2].lines) == 9


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
    assert len(plot_phase_plane(trace, cell=1, views="gates").axes) == 1
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
    with pytest.raises(TypeError, match="`rheobase` must be real numbers.*got str"):
        plot_fi(currents, rates, rheobase="x")
    with pytest.raises(TypeError, match="`currents` must be an array together"):
        plot_fi(currents)


def test_analysis_figures_check_their_input():
    for plot in (plot_prc, plot_sensitivities):
        with pytest.raises(TypeError, match="must be a .* got dict, which has no"):
            plot({})
    phase = np.linspace(0.0, 1.0, 20, endpoint=False)
    response = PhaseResponse(phase, np.sin(phase), -65.0 + phase, None, 14.6, 10.0)
    fig = plot_prc(response, convention="modern")
    assert "modern" in fig.axes[1].get_ylabel()


def test_gradients_are_coloured_per_column():
    sens = Sensitivity(
        features=("latency", "rate"),
        parameters=("g_na", "e_k", "temperature"),
        values=np.array([5.0, 60.0]),
        parameter_values=np.array([120.0, -77.0, 6.3]),
        gradients=np.array([[-0.01, 0.5, -0.2], [0.02, -40.0, 3.0]]),
        elasticities=np.array([[-0.24, -7.7, -0.25], [0.04, 51.0, 0.3]]),
    )
    fig = plot_sensitivities(sens, relative=False, parameters=("e_k", "temperature"))
    image = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(image, [[0.5 / 40, -0.2 / 3], [-1.0, 1.0]])
    assert [t.get_text() for t in fig.axes[0].texts] == ["0.5", "-0.2", "-40", "3"]
    with pytest.raises(ValueError, match="`parameters` must be names among"):
        plot_sensitivities(sens, parameters=("g_k",))


def test_core_does_not_import_plotting_io_or_cli():
    code = (
        "import sys, hhjax; "
        "bad = [m for m in ('matplotlib', 'hhjax.plot', 'hhjax.io', 'hhjax.cli', "
        "'hhjax.pyhh') if m in sys.modules]; print(bad); "
        # ... yet each subpackage is there on first use, as the docs write them
        "hhjax.analysis.fi_curve, hhjax.io.save_params, hhjax.plot.plot_trace; "
        "hhjax.recordings.load_abf, hhjax.pyhh.HHModel, hhjax.cli.main; "
        "sys.exit(bool(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
