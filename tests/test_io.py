"""Trace and parameter files: unit-bearing columns, round trips, clear errors."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import hhjax
from hhjax import io


@pytest.fixture(scope="module")
def trace():
    """Two cells, 2 ms at 0.025 ms (80 samples), 20 uA/cm^2."""
    params = hhjax.HHParams(g_na=jnp.array([120.0, 90.0]))
    return hhjax.simulate(params, jnp.full((80, 2), 20.0), 0.025)


def test_column_names():
    names = [io.column_name(f) for f in hhjax.Trace._fields]
    assert names == [
        "t_ms", "v_mV", "m", "h", "n",
        "i_na_uA_per_cm2", "i_k_uA_per_cm2", "i_l_uA_per_cm2",
    ]  # fmt: skip


def test_npz_round_trip(trace, tmp_path):
    i_ext = np.full((80, 2), 20.0)
    path = io.save_trace(trace, tmp_path / "t.npz", i_ext=i_ext)
    loaded, loaded_i = io.load_trace(path)
    for field in hhjax.Trace._fields:
        np.testing.assert_array_equal(getattr(loaded, field), getattr(trace, field))
    np.testing.assert_array_equal(loaded_i, i_ext)


def test_npz_partial_trace(trace, tmp_path):
    partial = trace._replace(m=None, h=None, n=None, i_na=None, i_k=None, i_l=None)
    loaded, loaded_i = io.load_trace(io.save_trace(partial, tmp_path / "v.npz"))
    assert loaded.m is None and loaded_i is None
    np.testing.assert_array_equal(loaded.v, trace.v)


def test_csv_batched_columns(trace, tmp_path):
    path = io.save_trace(trace, tmp_path / "t.csv", i_ext=np.full(80, 20.0))
    header = path.read_text().splitlines()[0].split(",")
    assert header[:5] == ["t_ms", "v_mV[0]", "v_mV[1]", "m[0]", "m[1]"]
    assert header[-1] == "i_ext_uA_per_cm2" and len(header) == 1 + 7 * 2 + 1
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    assert table.shape == (80, 16)
    np.testing.assert_allclose(table[:, 2], trace.v[:, 1], rtol=1e-9)


def test_csv_2d_batch_header(tmp_path):
    t = np.arange(3.0)
    trace = hhjax.Trace(t, np.zeros((3, 2, 2)), *([None] * 6))
    path = io.save_trace(trace, tmp_path / "t.csv")
    assert path.read_text().splitlines()[0] == (
        't_ms,"v_mV[0,0]","v_mV[0,1]","v_mV[1,0]","v_mV[1,1]"'
    )


def test_save_trace_errors(trace, tmp_path):
    with pytest.raises(ValueError, match=".npz or .csv"):
        io.save_trace(trace, tmp_path / "t.txt")
    with pytest.raises(ValueError, match=r"one value per trace sample \(80\); got s"):
        io.save_trace(trace, tmp_path / "t.csv", i_ext=np.zeros(79))
    with pytest.raises(ValueError, match=r"stride=10, pass i_ext\[::10\]\.$"):
        io.save_trace(trace, tmp_path / "t.csv", i_ext=np.zeros(800))


@pytest.mark.parametrize(
    "name, text",
    [
        ("flat.json", '{"g_na": 100.0, "e_l": -54.0}'),
        ("fit.json", '{"model": "hh", "params": {"g_na": 100, "e_l": -54}, "x": 1}'),
        ("flat.toml", "g_na = 100.0\ne_l = -54.0\n"),
        ("fit.toml", 'model = "hh"\n[params]\ng_na = 100\ne_l = -54.0\n'),
    ],
)
def test_load_params_layouts(name, text, tmp_path):
    path = tmp_path / name
    path.write_text(text)
    params = io.load_params(path)
    assert params == hhjax.HHParams(g_na=100.0, e_l=-54.0)
    assert io.load_params(path, base=hhjax.HHParams.hh1952()).v_shift == 65.0


def test_params_round_trip_and_batch(tmp_path):
    params = hhjax.HHParams.hh1952(g_na=np.array([100.0, 110.0]))
    path = io.save_params(params, tmp_path / "params.json")
    assert json.loads(path.read_text())["model"] == "hh"
    loaded = io.load_params(path)
    np.testing.assert_array_equal(loaded.g_na, [100.0, 110.0])
    assert loaded._replace(g_na=0.0) == params._replace(g_na=0.0)


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"g_nax": 1}', "unknown parameter.*g_nax"),
        ('{"g_na": -5}', r"p.json: Conductance `g_na` \(mS/cm\^2\) must be >= 0"),
        ('{"c_m": 0}', r"`c_m` \(uF/cm\^2\) must be > 0"),
        ('{"g_na": [1, 2], "g_k": [1, 2, 3]}', "shapes that broadcast"),
        ('{"g_na": true}', "'g_na' must be a number"),
        (
            '{"format": "x", "free": ["g_na"]}',
            r"'format' must be a number .*; the file has no \"params\" object",
        ),
        ('{"params": {"g_na": "x"}}', r"'g_na' must be .* numbers; got 'x'\.$"),
        ('{"g_na": [1, [2]]}', "regular"),
        ('{"params": [1, 2]}', '"params" must map'),
        (  # a fitted value deleted by hand: the default took its place
            '{"params": {"g_k": 30}, "free": ["g_na", "g_k"]}',
            r'p.json: fitted parameter\(s\) g_na \(listed in "free"\) missing from',
        ),
        ('{"model": 3}', '"model" must be a model name'),
        ("[1, 2]", "object/table"),
    ],
)
def test_load_params_errors(text, match, tmp_path):
    path = tmp_path / "p.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        io.load_params(path)


def test_model_names(tmp_path):
    """ "model" picks the default parameters; it must agree with a given base."""
    path = tmp_path / "p.json"
    path.write_text('{"model": "pospischil-fs", "params": {"g_na": 40}}')
    assert io.load_params(path) == hhjax.PospischilParams.fs(g_na=40.0)
    with pytest.raises(ValueError, match="base parameters are HHParams"):
        io.load_params(path, base=hhjax.HHParams())
    path.write_text('{"model": "squid-2000", "params": {}}')
    with pytest.raises(ValueError, match="Unknown model 'squid-2000'"):
        io.load_params(path)
    rs = hhjax.PospischilParams.rs(g_m=0.05)
    with pytest.raises(ValueError, match="Pass `model=`"):
        io.save_params(rs, tmp_path / "rs.json")
    io.save_params(rs, tmp_path / "rs.json", model="pospischil-rs")
    assert io.load_params(tmp_path / "rs.json") == rs


def test_saving_the_params_of_an_unregistered_model_says_how(tmp_path, monkeypatch):
    # It said "Pass `model=` (one of [])", and any model= was unknown.
    from hhjax.channels import Leak, Potassium, Sodium

    class MyParams(hhjax.HHParams):
        pass

    # Own state and trace types: a model registers them (model_of) for good.
    state = collections.namedtuple("MyState", hhjax.HHState._fields)
    trace = collections.namedtuple("MyTrace", hhjax.Trace._fields)
    hhjax.Model("my-hh", [Sodium(), Potassium(), Leak()], MyParams, state, trace, 6.3)
    with pytest.raises(ValueError, match=r"MyParams belongs to no model in hhjax\.MOD"
                       r"ELS.*hhjax\.MODELS\['my-model'\] = MyParams"):  # fmt: skip
        io.save_params(MyParams(), tmp_path / "p.json")
    monkeypatch.setitem(hhjax.MODELS, "my-hh", MyParams)
    io.save_params(MyParams(g_na=100.0), tmp_path / "p.json")
    assert io.load_params(tmp_path / "p.json") == MyParams(g_na=100.0)
    with pytest.raises(
        TypeError, match=r"must be a model's parameter tuple .*; got dict"
    ):
        io.save_params({"g_na": 1.0}, tmp_path / "p.json", model="hh")


def test_npz_upper_case_suffix_writes_the_returned_path(trace, tmp_path):
    path = io.save_trace(trace, tmp_path / "t.NPZ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.NPZ"]
    np.testing.assert_array_equal(io.load_trace(path)[0].v, trace.v)


@pytest.mark.parametrize("batch", [(2,), (2, 3)])
def test_csv_round_trip(batch, tmp_path):
    """A .csv loads back into the batch shape, to its 10 significant digits."""
    rng = np.random.default_rng(0)
    fields = {f: rng.normal(size=(5, *batch)) for f in hhjax.Trace._fields[1:]}
    saved = hhjax.Trace(t=np.arange(5) * 0.025, **fields)
    i_ext = rng.normal(size=(5, *batch))
    loaded, loaded_i = io.load_trace(
        io.save_trace(saved, tmp_path / "t.csv", i_ext=i_ext)
    )
    assert type(loaded) is hhjax.Trace
    for field in hhjax.Trace._fields:
        np.testing.assert_allclose(getattr(loaded, field), getattr(saved, field), 1e-9)
    np.testing.assert_allclose(loaded_i, i_ext, rtol=1e-9)


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_pospischil_trace_loads_without_trace_type(suffix, tmp_path):
    trace = hhjax.simulate(hhjax.PospischilParams.rs(), jnp.full((20,), 1.0), 0.025)
    loaded, _ = io.load_trace(io.save_trace(trace, tmp_path / f"rs{suffix}"))
    assert type(loaded) is hhjax.PospischilTrace
    np.testing.assert_allclose(loaded.i_m, trace.i_m, rtol=1e-9)


def test_trace_model_entry_and_old_files(trace, tmp_path):
    """The .npz names its model: a different `trace_type` is refused; a file
    without the entry (written before it existed) still loads as HH."""
    path = io.save_trace(trace, tmp_path / "t.npz")
    with np.load(path) as data:
        assert str(data["model"]) == "hh"
        old = {k: data[k] for k in data.files if k != "model"}
    with pytest.raises(ValueError, match="model 'hh' .*not a PospischilTrace"):
        io.load_trace(path, trace_type=hhjax.PospischilTrace)
    np.savez(tmp_path / "old.npz", **old)
    loaded, _ = io.load_trace(tmp_path / "old.npz")
    np.testing.assert_array_equal(loaded.v, trace.v)


def test_load_trace_errors(trace, tmp_path):
    with pytest.raises(ValueError, match=r"must end in .npz or .csv; got '.txt'"):
        io.load_trace(tmp_path / "t.txt")
    whole = io.save_trace(trace, tmp_path / "t.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "pickle.npz").write_bytes(b"\x80\x04K\x01.")  # not a zip archive
    for name in ("cut.npz", "empty.npz", "pickle.npz"):
        with pytest.raises(ValueError, match="not a readable .npz trace"):
            io.load_trace(tmp_path / name)
    (tmp_path / "bad.csv").write_text("t_ms,v_mV[1]\n0,1\n")
    with pytest.raises(ValueError, match="one per cell"):
        io.load_trace(tmp_path / "bad.csv")


@pytest.mark.parametrize("name", ["t.npz", "t.csv", "params.json"])
def test_writers_never_leave_a_torn_file(name, trace, tmp_path, monkeypatch):
    """A write that fails before its final rename leaves the old file intact and
    no temporary file behind."""
    target = tmp_path / name
    target.write_text("old")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        if name == "params.json":
            io.save_params(hhjax.HHParams(), target)
        else:
            io.save_trace(trace, target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == [name]


@pytest.mark.parametrize(
    "content", [b"", b"PK\x03\x04 truncated", b"\x80\x04K\x01.", "no-meta"]
)
def test_unreadable_checkpoint_is_a_clear_error(content, tmp_path):
    from fitting._io import load_checkpoint, save_checkpoint

    path = tmp_path / "fit.npz"
    save_checkpoint(path, {"loss": float("nan")}, {"x": np.arange(3.0)})
    meta, arrays = load_checkpoint(path)
    assert meta["loss"] is None and arrays["x"].tolist() == [0.0, 1.0, 2.0]
    if content == "no-meta":
        np.savez(path, x=np.arange(3.0))
    else:
        path.write_bytes(content)
    if content == "no-meta":  # another .npz (a recording?): not to be deleted
        expected = (
            r"not a fit checkpoint \(an .npz without .* arrays x\); choose another"
        )
    else:
        expected = "not a readable fit checkpoint.*afresh"
    with pytest.raises(ValueError, match=expected):
        load_checkpoint(path)


def test_json_safe_converts_numpy_and_jax_values_and_non_finite(tmp_path):
    doc = {
        "jax": jnp.asarray(1.5),
        "jax_vector": jnp.array([1.0, jnp.nan]),
        "numpy": np.float32(2.5),
        "nan": float("nan"),
        "nested": [np.array([np.inf, 3.0]), (np.int64(4),)],
    }
    path = io.write_json_atomic(tmp_path / "doc.json", doc)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text  # strict JSON
    assert json.loads(text) == {
        "jax": 1.5,
        "jax_vector": [1.0, None],
        "numpy": 2.5,
        "nan": None,
        "nested": [[None, 3.0], [4]],
    }


@pytest.mark.parametrize("below", ["out.csv", "a/b/out.csv"])
def test_writing_below_a_file_names_the_file(tmp_path, below):
    (tmp_path / "taken").write_text("keep me")
    with pytest.raises(
        NotADirectoryError, match=rf"/{below}: {tmp_path / 'taken'} is not a directory$"
    ):
        io.write_text_atomic(tmp_path / "taken" / below, "t\n")
    assert (tmp_path / "taken").read_text() == "keep me"


def test_nearest_existing_stops_at_what_is_in_the_way(tmp_path):
    assert io.nearest_existing(tmp_path / "a" / "b") == tmp_path
    (tmp_path / "file").write_text("")
    assert io.nearest_existing(tmp_path / "file" / "x") == tmp_path / "file"
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")  # dangling: in the way
    assert io.nearest_existing(tmp_path / "link" / "x") == tmp_path / "link"
    assert io.nearest_existing("no/such/dir") == Path(".")
