"""Models of your own (docs/models.md): what a Model checks of its channels when it
is built, ``Model.check_channels``, failures that name the channel at fault, and
models declared as entry points. The model is the one of
``examples/50_custom_channel.py`` (squid HH plus a Connor–Stevens A-current)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax import _model, _registry
from hhjax.channels import Leak, Potassium, Sodium

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MODULE = "50_custom_channel"


@pytest.fixture(scope="module")
def example():
    """The example's module, imported (it registers ``"hh-a"``), and forgotten
    afterwards so that other tests see the shipped models only."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        module = importlib.import_module(MODULE)
        yield module
    finally:
        sys.path.remove(str(EXAMPLES))
        module = sys.modules.pop(MODULE, None)
        for name in ("hh-a", "hh-a-plugin"):
            hhjax.MODELS.pop(name, None)
        if module is not None:
            _model._MODELS.pop(module.HHAParams, None)


def _model_with(example, *channels, name="test"):
    """A model of HH's channels plus ``channels``; only its checks matter."""

    class State(NamedTuple):
        v: Any

    return hhjax.Model(
        name, (Sodium(), Potassium(), Leak(), *channels), example.HHAParams, State,
        State, 6.3,
    )  # fmt: skip


def test_example_model_passes_its_checks_and_is_hh_without_the_current(example):
    example.HH_A.check_channels(example.HHAParams())
    example.HH_A.check_channels(example.HHAParams(g_a=[0.0, 20.0, 50.0]))
    i_ext = hhjax.stimulus.step(10.0, start=5.0, stop=45.0, duration=50.0, dt=0.01)
    mine = hhjax.simulate(example.HHAParams(g_a=0.0), i_ext, 0.01, record=("v",))
    squid = hhjax.simulate(hhjax.HHParams(), i_ext, 0.01, record=("v",))
    assert float(jnp.max(jnp.abs(mine.v - squid.v))) < 1e-9
    with_a = hhjax.simulate(example.HHAParams(), i_ext, 0.01, record=("v",))
    assert float(jnp.max(jnp.abs(with_a.v - squid.v))) > 5.0  # the current acts


@pytest.mark.parametrize(
    "params",
    [
        hhjax.HHParams(),
        hhjax.HHParams.hh1952(),
        hhjax.HHParams(g_na=[100.0, 120.0], temperature=20.0),
        hhjax.PospischilParams.rs(),
        hhjax.PospischilParams.fs(),
        hhjax.PospischilParams.rs(g_ahp=0.1, g_h=0.1, g_nap=0.1, g_d=0.1, g_kir=0.1),
    ],
    ids=["hh", "hh1952", "hh-batch", "rs", "fs", "rs-every-channel"],
)
def test_shipped_models_pass_check_channels(params):
    hhjax.model_of(params).check_channels(params)


def _channel(alpha, conductance_param="g_a"):
    """An A-current-like channel with one gate whose α is ``alpha(v)``."""

    @dataclasses.dataclass(frozen=True)
    class Bad(hhjax.Channel):
        name: str = "a"
        gates: tuple[str, ...] = ("a", "b")

        def rates(self, v, params):
            b = hhjax.GateRates.relaxing_to(jnp.full_like(v, 0.5), 10.0)
            return {"a": hhjax.GateRates(alpha(v), jnp.full_like(v, 0.2)), "b": b}

        def current(self, v, gates, params):
            return params.g_a * gates["a"] ** 3 * gates["b"] * (v - params.e_a)

    return dataclasses.replace(Bad(), conductance_param=conductance_param)


@pytest.fixture
def checked(example):
    """``checked(channel)``: (model, params) of HH's channels and ``channel``,
    with a parameter type of its own (so it can be simulated); unregistered after
    the test."""
    made = []

    def build(channel):
        class CheckedParams(example.HHAParams):
            pass

        model = hhjax.Model(
            "checked", (Sodium(), Potassium(), Leak(), channel), CheckedParams,
            example.HHAState, example.HHATrace, 6.3,
        )  # fmt: skip
        made.append(CheckedParams)
        return model, CheckedParams()

    yield build
    for params_type in made:
        _model._MODELS.pop(params_type)


@pytest.mark.parametrize(
    "alpha, conductance_param, expected",
    [
        (lambda v: -0.1 * jnp.ones_like(v), "g_a", "gate 'a': alpha < 0 (1/ms) at V = -120 mV"),
        (  # the 0/0 of a linoid written out instead of hhjax.rates.linoid
            lambda v: 0.1 * (v + 40.0) / (1.0 - jnp.exp(-(v + 40.0) / 10.0)),
            "g_a",
            "gate 'a': alpha is not finite at V = -40 mV",
        ),
        (  # the value patched at the 0/0 point, not its derivative
            lambda v: jnp.where(v == -40.0, 1.0, 0.1 * (v + 40.0) / (1.0 - jnp.exp(-(v + 40.0) / 10.0))),
            "g_a",
            "gate 'a': dalpha/dV is not finite at V = -40 mV",
        ),
        (lambda v: hhjax.rates.linoid(v, 0.1, -40.0, 10.0), "g_k", "current is not 0 with g_k = 0"),
    ],
    ids=["negative", "zero-over-zero", "slope", "conductance-param"],
)  # fmt: skip
def test_check_channels_names_the_channel_gate_and_voltage(
    checked, alpha, conductance_param, expected
):
    model, params = checked(_channel(alpha, conductance_param))
    with pytest.raises(
        ValueError, match="Model 'checked' fails its channel checks"
    ) as err:
        model.check_channels(params)
    assert expected in str(err.value)
    assert "channel 'a' (Bad)" in str(err.value)


def test_a_gate_with_no_steady_state_is_named(checked):
    model, params = checked(_channel(lambda v: -0.2 * jnp.ones_like(v)))
    with pytest.raises(ValueError, match=r"alpha \+ beta = 0 \(no steady state\)"):
        model.check_channels(params)


def test_simulation_of_a_broken_channel_suggests_it_as_the_cause(checked):
    _, params = checked(
        _channel(lambda v: -hhjax.rates.linoid(v, 0.1, -40.0, 10.0))
    )  # a sign slip
    with pytest.raises(hhjax.NonFiniteSimulationError) as err:
        hhjax.simulate(params, hhjax.stimulus.constant(10.0, 200.0, 0.025), 0.025)
    assert (
        "A likely cause: Model 'checked' fails its channel checks: channel 'a' "
        "(Bad), gate 'a': alpha < 0"
    ) in str(err.value)


def test_a_failure_of_sound_channels_suggests_no_channel(checked):
    # Only value checks, only the channels that ran, only the voltages reached:
    # a NaN slope (harmless to a forward run) and a broken channel that is
    # switched off are not blamed for a step too large.
    patched = _channel(
        lambda v: jnp.where(
            v == -40.0, 1.0, 0.1 * (v + 40.0) / (1.0 - jnp.exp(-(v + 40.0) / 10.0))
        )
    )
    _, params = checked(patched)
    i_ext = jnp.full((400,), -60.0)  # rk4 diverges under strong hyperpolarisation
    with pytest.raises(hhjax.NonFiniteSimulationError) as err:
        hhjax.simulate(params, i_ext, 0.025, method="rk4")
    assert "Reduce `dt`" in str(err.value) and "likely cause" not in str(err.value)
    _, off = checked(_channel(lambda v: -0.1 * jnp.ones_like(v)))
    with pytest.raises(hhjax.NonFiniteSimulationError) as err:
        hhjax.simulate(off._replace(g_a=0.0), i_ext, 0.025, method="rk4")
    assert "likely cause" not in str(err.value)


def test_check_channels_reports_rates_that_reverse_mode_cannot_differentiate(checked):
    def looped(v):  # a while_loop has no reverse-mode derivative
        return jax.lax.while_loop(
            lambda x: jnp.all(x < 0.05), lambda x: 2.0 * x, 0.1 + 0.0 * v
        )

    model, params = checked(_channel(looped))
    with pytest.raises(
        hhjax.ChannelCheckError, match="dalpha/dV cannot be taken in reverse mode"
    ):
        model.check_channels(params)
    model.check_channels(params, slopes=False)  # the values are fine


def test_failed_cells_of_a_batch_are_named():
    i_ext = jnp.full((400, 4), 10.0).at[:, 2].set(-60.0)  # rk4 diverges in cell 2
    with pytest.raises(hhjax.NonFiniteSimulationError) as err:
        hhjax.simulate(hhjax.HHParams(), i_ext, 0.025, method="rk4")
    assert "in 1 of 4 cells (batch index 2; with `check_inputs=False`" in str(err.value)
    trace = hhjax.simulate(
        hhjax.HHParams(), i_ext, 0.025, method="rk4", check_inputs=False
    )
    finite = np.isfinite(np.asarray(trace.v[-1]))
    assert finite.tolist() == [True, True, False, True]


@dataclasses.dataclass(frozen=True)
class _Extra(hhjax.Channel):
    name: str = "x"
    gates: tuple[str, ...] = ("x",)

    def rates(self, v, params):
        return {"x": hhjax.GateRates(jnp.ones_like(v), jnp.ones_like(v))}

    def current(self, v, gates, params):
        return params.g_a * gates["x"] * (v - params.e_a)


class _Undecorated(hhjax.Channel):  # no @dataclass: name and gates stay '' and ()
    name = "u"
    gates = ("u",)


@pytest.mark.parametrize(
    "channels, error, match",
    [
        ((_Undecorated(),), TypeError, "channel _Undecorated has no name.*@dataclasses.dataclass"),
        ((dataclasses.replace(_Extra(), name="k"),), ValueError, "channels Potassium and _Extra are both named 'k'"),
        ((dataclasses.replace(_Extra(), gates=("m",)),), ValueError, "gate 'm' of channel 'x' clashes with a gate of channel 'na'"),
        ((dataclasses.replace(_Extra(), gates=("v",)),), ValueError, "gate 'v' of channel 'x' clashes with the membrane potential"),
        (
            (
                dataclasses.replace(_Extra(), conductance_param="g_a"),
                dataclasses.replace(_Extra(), name="y", gates=("y",), conductance_param="g_a"),
            ),
            ValueError,
            "channels 'x' and 'y' both name 'g_a' as their conductance_param",
        ),
    ],
    ids=["undecorated", "same-name", "same-gate", "gate-v", "same-conductance"],
)  # fmt: skip
def test_model_refuses_channels_that_clash(example, channels, error, match):
    with pytest.raises(error, match=match):
        _model_with(example, *channels)


def test_a_declared_conductance_is_checked_whatever_its_name(example):
    class Params(NamedTuple):
        gbar_a: Any = -10.0
        e_a: Any = -75.0
        c_m: Any = 1.0
        temperature: Any = 6.3
        q10: Any = 3.0
        q10_g: Any = 1.0

    class State(NamedTuple):
        v: Any
        x: Any

    class Trace(NamedTuple):
        t: Any
        v: Any
        x: Any
        i_x: Any

    @dataclasses.dataclass(frozen=True)
    class Gbar(_Extra):
        conductance_param: str | None = "gbar_a"

        def current(self, v, gates, params):
            return params.gbar_a * gates["x"] * (v - params.e_a)

    hhjax.Model("gbar", (Gbar(),), Params, State, Trace, 6.3)
    try:
        with pytest.raises(ValueError, match=r"Conductance `gbar_a` .* must be >= 0"):
            hhjax.simulate(Params(), jnp.zeros(10), 0.025)
    finally:
        _model._MODELS.pop(Params)


@pytest.fixture
def plugins(example, monkeypatch):
    """Entry points of the group hhjax.models: the example's model under a name
    only the loader gives it, and one that cannot be imported."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    points = [
        EntryPoint("hh-a-plugin", f"{MODULE}:HHAParams", _registry.PLUGIN_GROUP),
        EntryPoint("broken", "no_such_module_for_hhjax:P", _registry.PLUGIN_GROUP),
    ]
    monkeypatch.setattr(
        _registry, "entry_points", lambda group: points if group == _registry.PLUGIN_GROUP else []
    )  # fmt: skip
    monkeypatch.setattr(_registry, "_plugins_loaded", False)
    monkeypatch.setattr(_registry, "_plugin_failures", {})
    yield
    hhjax.MODELS.pop("hh-a-plugin", None)


def test_models_from_entry_points_are_found_by_their_parameters(
    plugins, example, tmp_path
):
    # Only default_params and the command line loaded the plugins: saving the
    # parameters of a model known only as an entry point failed.
    hhjax.MODELS.pop("hh-a")  # as if the module had not registered itself
    try:
        assert hhjax.model_names(example.HHAParams()) == ["hh-a-plugin"]
        path = hhjax.io.save_params(example.HHAParams(g_a=5.0), tmp_path / "p.json")
    finally:
        hhjax.MODELS["hh-a"] = example.HHAParams
    assert json.loads(path.read_text())["model"] == "hh-a-plugin"


def test_models_from_entry_points_reach_default_params(plugins, example):
    assert "hh-a-plugin" not in hhjax.MODELS
    params = hhjax.default_params("hh-a-plugin", g_a=5.0)
    assert isinstance(params, example.HHAParams) and params.g_a == 5.0
    with pytest.raises(ValueError, match="could not load model 'broken' from no_such"):
        hhjax.default_params("broken")


def test_models_from_entry_points_reach_the_command_line(plugins, tmp_path, capsys):
    from hhjax.cli import main

    args = ["simulate", "--model", "hh-a-plugin", "--amplitude", "20", "--duration",
            "20", "--total", "40", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.count("could not load model 'broken'") == 1  # one line, then on
    trace = np.load(tmp_path / "trace.npz")
    assert "a" in trace.files and "i_a_uA_per_cm2" in trace.files


def test_unknown_model_says_how_to_register_one():
    with pytest.raises(
        ValueError, match=r"hhjax.MODELS\['mine'\] = its parameter type"
    ):
        hhjax.default_params("mine")


def test_a_batch_that_fails_in_every_cell_does_not_promise_the_others():
    i_ext = jnp.full((400, 3), -60.0)  # rk4 diverges in every cell
    with pytest.raises(hhjax.NonFiniteSimulationError) as err:
        hhjax.simulate(hhjax.HHParams(), i_ext, 0.025, method="rk4")
    assert " in all 3 cells with method 'rk4'" in str(err.value)
    assert "other cells" not in str(err.value)
