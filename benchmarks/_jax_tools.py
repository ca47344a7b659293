"""JAX-based tools: hhjax, a hand-written plain-JAX ``lax.scan`` reference, Jaxley.

Each ``*_forward`` / ``*_gradient`` function builds a :class:`_timing.Tool` that
runs one whole workload (see ``_problem.py``) and returns a JAX array, so that all
tools can be timed alike. Arrays are created once, outside the timed call. Each
tool's ``memory_mb`` is XLA's ``memory_analysis`` of the compiled call:
temporaries + outputs, MB, summed over the devices of a sharded batch.

The plain-JAX reference is what a user would write by hand: the HH equations with
the parameters as constants except gNa, forward Euler for V and exponential
(Rush–Larsen) Euler for the gates — the scheme of ``hhjax`` method
``"exp_euler"`` — recording V at every step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import _problem as problem  # benchmarks/ is on sys.path (run as a script)
import _timing
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Tool = _timing.Tool
XLA_MEMORY = "XLA memory_analysis (temporaries + outputs)"


def _batch(cells: int, dtype: Any) -> jax.Array:
    g = jnp.asarray(problem.g_na_batch(cells), dtype)
    return g[0] if cells == 1 else g


def shard_cells(x: Any, mesh: Any) -> Any:
    """Put the last (cell) axis of every batched leaf over the mesh."""
    from jax.sharding import NamedSharding, PartitionSpec

    def put(leaf):
        if jnp.ndim(leaf) == 0:
            return leaf
        spec = PartitionSpec(*([None] * (jnp.ndim(leaf) - 1)), "cells")
        return jax.device_put(leaf, NamedSharding(mesh, spec))

    return jax.tree.map(put, x)


def _compiled_mb(jitted: Any, args: tuple, devices: int = 1) -> float:
    """Temporaries + outputs of ``jitted`` compiled for ``args``, MB, all devices.

    ``memory_analysis`` of a sharded computation is per device, hence ``devices``.
    A function already compiled for ``args`` is not compiled again.
    """
    m = jitted.lower(*args).compile().memory_analysis()
    return devices * (m.temp_size_in_bytes + m.output_size_in_bytes) / 1e6


def _jit_tool(jitted: Any, *args: Any) -> Tool:
    """``jitted(*args)`` as a tool, with its compiled memory."""
    return Tool(lambda: jitted(*args), lambda: _compiled_mb(jitted, args), XLA_MEMORY)


# ----------------------------------------------------------------------- hhjax
def hhjax_forward(
    wl: problem.Workload, dtype: Any, method: str, mesh: Any = None
) -> Tool:
    """``hhjax.simulate`` of the workload, recording V only.

    Args:
        wl: the workload.
        dtype: ``jnp.float64`` or ``jnp.float32``.
        method: integrator name.
        mesh: optional ``jax.sharding.Mesh`` with axis ``"cells"``: the batch is
            split over its devices.
    """
    import hhjax

    params = hhjax.HHParams(g_na=_batch(wl.cells, dtype))
    v0 = jnp.full(jnp.shape(params.g_na), problem.V0, dtype)
    state0 = hhjax.HH.steady_state(v0, params)
    if mesh is not None:
        params, state0 = shard_cells((params, state0), mesh)
    i_ext = jnp.full((wl.steps,), problem.I_EXT, dtype)

    def run(params, state0, i_ext, check_inputs=True):
        return hhjax.simulate(
            params,
            i_ext,
            problem.DT,
            state0=state0,
            method=method,
            record=("v",),
            check_inputs=check_inputs,
        ).v

    # Memory: the same computation under one jit (simulate's checks need concrete
    # values, so they are off there); this compiles it once more.
    args, devices = (params, state0, i_ext), 1 if mesh is None else mesh.size
    traced = jax.jit(lambda *a: run(*a, check_inputs=False))
    return Tool(
        lambda: run(*args), lambda: _compiled_mb(traced, args, devices), XLA_MEMORY
    )


def hhjax_step_scan(wl: problem.Workload, dtype: Any, method: str) -> Tool:
    """A plain jitted ``lax.scan`` of ``hhjax.step``: the model's cost without
    ``simulate``'s machinery (checks, checkpointing, compiler options)."""
    import hhjax

    g = _batch(wl.cells, dtype)
    i_ext = jnp.full((wl.steps,), problem.I_EXT, dtype)

    @jax.jit
    def scan(g, i_ext):
        params = hhjax.HHParams(g_na=g)
        state0 = hhjax.HH.steady_state(
            jnp.full(jnp.shape(g), problem.V0, dtype), params
        )

        def body(state, i):
            return hhjax.step(state, params, i, problem.DT, method), state.v

        return lax.scan(body, state0, i_ext)[1]

    return _jit_tool(scan, g, i_ext)


def _hhjax_loss(wl: problem.Workload, dtype: Any, method: str) -> Callable:
    import hhjax

    i_ext = jnp.full((wl.steps,), problem.I_EXT, dtype)

    def v_of(g3):
        params = hhjax.HHParams(g_na=g3[0], g_k=g3[1], g_l=g3[2])
        state0 = hhjax.HH.steady_state(jnp.asarray(problem.V0, dtype), params)
        return hhjax.simulate(
            params, i_ext, problem.DT, state0=state0, method=method, record=("v",)
        ).v

    target = jax.jit(v_of)(jnp.asarray(problem.TARGET_G, dtype))
    return lambda g3: jnp.sum((v_of(g3) - target) ** 2)


def hhjax_gradient(wl: problem.Workload, dtype: Any, method: str) -> dict[str, Tool]:
    """Forward loss, reverse-mode gradient (``jax.grad``) and ``hhjax.grad``, which
    picks the mode itself (forward mode for these 3 parameters)."""
    import hhjax

    loss = _hhjax_loss(wl, dtype, method)
    g0 = jnp.asarray((problem.G_NA, problem.G_K, problem.G_L), dtype)
    return {
        "forward": _jit_tool(jax.jit(loss), g0),
        "reverse": _jit_tool(jax.jit(jax.grad(loss)), g0),
        "auto": _jit_tool(jax.jit(hhjax.grad(loss)), g0),
    }


# ------------------------------------------------------- plain-JAX reference
def _ref_rates(v):
    return (
        0.1 * (v + 40.0) / (1.0 - jnp.exp(-(v + 40.0) / 10.0)),
        4.0 * jnp.exp(-(v + 65.0) / 18.0),
        0.07 * jnp.exp(-(v + 65.0) / 20.0),
        1.0 / (1.0 + jnp.exp(-(v + 35.0) / 10.0)),
        0.01 * (v + 55.0) / (1.0 - jnp.exp(-(v + 55.0) / 10.0)),
        0.125 * jnp.exp(-(v + 65.0) / 80.0),
    )


def _ref_scan(g_na, g_k, g_l, i_ext, dt, checkpoint=False):
    """Hand-written HH scan: FE for V, Rush–Larsen for the gates; returns V."""
    v0 = jnp.full(jnp.shape(g_na), problem.V0, i_ext.dtype)
    am, bm, ah, bh, an, bn = _ref_rates(v0)
    s0 = (v0, am / (am + bm), ah / (ah + bh), an / (an + bn))

    def relax(x, a, b):
        x_inf = a / (a + b)
        return x_inf + (x - x_inf) * jnp.exp(-dt * (a + b))

    def body(s, i):
        v, m, h, n = s
        am, bm, ah, bh, an, bn = _ref_rates(v)
        i_ion = (
            g_na * m**3 * h * (v - problem.E_NA)
            + g_k * n**4 * (v - problem.E_K)
            + g_l * (v - problem.E_L)
        )
        v_new = v + dt * (i - i_ion) / problem.C_M
        return (v_new, relax(m, am, bm), relax(h, ah, bh), relax(n, an, bn)), v

    if checkpoint:
        body = jax.checkpoint(body, prevent_cse=False)
    return lax.scan(body, s0, i_ext)[1]


def reference_forward(wl: problem.Workload, dtype: Any) -> Tool:
    """The hand-written plain-JAX scan, jitted with default options."""
    g = _batch(wl.cells, dtype)
    i_ext = jnp.full((wl.steps,), problem.I_EXT, dtype)
    f = jax.jit(lambda g, i: _ref_scan(g, problem.G_K, problem.G_L, i, problem.DT))
    return _jit_tool(f, g, i_ext)


def reference_gradient(wl: problem.Workload, dtype: Any) -> dict[str, Tool]:
    """Forward loss; reverse gradient through the scan as written; the same with
    the step rematerialised (``jax.checkpoint``)."""
    i_ext = jnp.full((wl.steps,), problem.I_EXT, dtype)
    tg = jnp.asarray(problem.TARGET_G, dtype)
    target = jax.jit(lambda: _ref_scan(tg[0], tg[1], tg[2], i_ext, problem.DT))()

    def loss(g3, checkpoint=False):
        v = _ref_scan(g3[0], g3[1], g3[2], i_ext, problem.DT, checkpoint)
        return jnp.sum((v - target) ** 2)

    g0 = jnp.asarray((problem.G_NA, problem.G_K, problem.G_L), dtype)
    rev_ckpt = jax.grad(lambda g: loss(g, checkpoint=True))
    return {
        "forward": _jit_tool(jax.jit(loss), g0),
        "reverse": _jit_tool(jax.jit(jax.grad(loss)), g0),
        "reverse+checkpoint": _jit_tool(jax.jit(rev_ckpt), g0),
    }


# ---------------------------------------------------------------------- Jaxley
def _jaxley_cell(steps: int, dtype: Any):
    import jaxley as jx
    from jaxley.channels import HH

    comp = jx.Compartment()
    comp.insert(HH())
    length = 100.0  # um; radius chosen for a side area of 1e4 um^2
    comp.set("length", length)
    comp.set("radius", 1e4 / (2 * np.pi * length))
    for name, value in (
        ("HH_gNa", problem.G_NA),
        ("HH_gK", problem.G_K),
        ("HH_gLeak", problem.G_L),
    ):
        comp.set(name, value * 1e-3)  # mS/cm^2 -> S/cm^2
    for name, value in (
        ("HH_eNa", problem.E_NA),
        ("HH_eK", problem.E_K),
        ("HH_eLeak", problem.E_L),
    ):
        comp.set(name, value)
    comp.set("capacitance", problem.C_M)
    comp.set("v", problem.V0)
    comp.init_states()
    # 10 uA/cm^2 on 1e4 um^2 = 1e-4 cm^2 is 1e-3 uA = 1 nA.
    comp.stimulate(jnp.full((steps,), problem.I_EXT * 1e-1, dtype), verbose=False)
    comp.record("v", verbose=False)
    return comp


def jaxley_forward(wl: problem.Workload, dtype: Any, solver: str) -> Tool:
    """Jaxley: one compartment with its HH channel; a batch is a ``vmap`` over
    ``data_set`` of gNa.

    ``solver`` is ``"fwd_euler"`` or ``"bwd_euler"`` (Jaxley's default). Either way
    Jaxley first updates the gates (exponential Euler at the old V) and then V with
    the currents of the *new* gates at the old V; ``fwd_euler`` takes that V step
    by forward Euler. hhjax's ``exp_euler`` (and the plain-JAX reference) uses the
    *old* gates for the currents: both are first order, but not the same scheme,
    so traces (W1: 172 spikes against 170) and gradients differ.
    ``_problem.step(..., "gates_first")`` is Jaxley's ``fwd_euler`` in NumPy (W4
    --quick: the same loss to 1e-15, the same gradient to 3e-9).
    """
    import jaxley as jx

    comp = _jaxley_cell(wl.steps, dtype)
    g = jnp.asarray(problem.g_na_batch(wl.cells) * 1e-3, dtype)

    def one(g_na):
        state = comp.data_set("HH_gNa", g_na, None)
        v = jx.integrate(comp, param_state=state, delta_t=problem.DT, solver=solver)
        return v[0, : wl.steps]

    f = jax.jit(jax.vmap(one, out_axes=1))
    return _jit_tool(f, g)


def jaxley_gradient(wl: problem.Workload, dtype: Any, solver: str) -> dict[str, Tool]:
    """Jaxley's forward loss and ``value_and_grad`` w.r.t. gNa, gK, gLeak."""
    import jaxley as jx

    comp = _jaxley_cell(wl.steps, dtype)
    for name in ("HH_gNa", "HH_gK", "HH_gLeak"):
        comp.make_trainable(name, verbose=False)
    params = comp.get_parameters()

    def v_of(p):
        return jx.integrate(comp, params=p, delta_t=problem.DT, solver=solver)[
            0, : wl.steps
        ]

    def with_g(p, g3):
        keys = ("HH_gNa", "HH_gK", "HH_gLeak")
        return [
            {k: jnp.full_like(d[k], g * 1e-3)}
            for d, k, g in zip(p, keys, g3, strict=True)
        ]

    target = jax.jit(v_of)(with_g(params, problem.TARGET_G))

    def loss(p):
        return jnp.sum((v_of(p) - target) ** 2)

    return {
        "forward": _jit_tool(jax.jit(loss), params),
        "reverse": _jit_tool(jax.jit(jax.grad(loss)), params),
    }


def to_numpy(x: Any) -> np.ndarray:
    """Gradient pytree (Jaxley's list of dicts, or an array) → flat NumPy array,
    in mS/cm² units of the conductances (Jaxley's S/cm² gradients × 1e-3)."""
    if isinstance(x, list):
        return np.array([float(np.ravel(v)[0]) * 1e-3 for d in x for v in d.values()])
    return np.asarray(x, dtype=float).ravel()
