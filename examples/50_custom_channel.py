"""A channel of your own: squid HH plus a transient (A-type) K⁺ current.

The A-current of the Connor–Stevens model, with the steady states and time
constants given by Dayan & Abbott (2001, "Theoretical Neuroscience", §6.2;
V in mV, modern convention, t in ms, E_A = −75 mV)::

    a∞ = (0.0761 exp((V + 94.22)/31.84) / (1 + exp((V + 1.17)/28.93)))^(1/3)
         (capped at 1: the fit exceeds it above +40 mV)
    τ_a = 0.3632 + 1.158 / (1 + exp((V + 55.96)/20.12))
    b∞ = (1 / (1 + exp((V + 53.3)/14.54)))^4
    τ_b = 1.24 + 2.678 / (1 + exp((V + 50)/16.027))
    I_A = g_a a³ b (V − e_a)

added to the squid axon's Na⁺, K⁺ and leak channels (``hhjax.channels``). The
steps, as docs/models.md explains them: a frozen dataclass for the channel, three
NamedTuples (parameters, state, trace), a :class:`hhjax.Model`, and a name in
``hhjax.MODELS``; then ``Model.check_channels`` tests the rates (finite, ≥ 0,
finite derivatives, the conductance switch) and everything in hhjax works on the
new model: ``simulate``, gradients, ``hhjax.io``, and ``fitting`` — here a fit of
``g_a`` to a synthetic trace. Float64. Importing this file defines and registers
the model without running anything (the tests import it as an entry point).
Writes ``examples/output/50_custom_channel.png``: V with and without the A-current,
and its gates.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

import hhjax
from hhjax.channels import Leak, Potassium, Sodium


@dataclasses.dataclass(frozen=True)  # the decorator makes name and gates fields
class ACurrent(hhjax.Channel):
    """Transient K⁺ current ``I_A = g_a a³ b (V − e_a)`` (Connor–Stevens)."""

    name: str = "a"  # recorded as trace.i_a
    gates: tuple[str, ...] = ("a", "b")  # state fields this channel owns
    conductance_param: str | None = "g_a"  # g_a = 0 (a Python number): not simulated

    def rates(self, v: Array, params: Any) -> dict[str, hhjax.GateRates]:
        a_cubed = (
            0.0761 * jnp.exp((v + 94.22) / 31.84) / (1.0 + jnp.exp((v + 1.17) / 28.93))
        )
        # The published fit exceeds 1 above +40 mV (a∞ = 1.013 at +60 mV), which
        # would make β negative: check_channels reports that, so cap it at 1.
        a_inf = jnp.minimum(a_cubed, 1.0) ** (1.0 / 3.0)
        tau_a = 0.3632 + 1.158 / (1.0 + jnp.exp((v + 55.96) / 20.12))
        b_inf = jax.nn.sigmoid(-(v + 53.3) / 14.54) ** 4
        tau_b = 1.24 + 2.678 / (1.0 + jnp.exp((v + 50.0) / 16.027))
        return {
            "a": hhjax.GateRates.relaxing_to(a_inf, tau_a),
            "b": hhjax.GateRates.relaxing_to(b_inf, tau_b),
        }

    def current(self, v: Array, gates: dict[str, Array], params: Any) -> Array:
        return params.g_a * gates["a"] ** 3 * gates["b"] * (v - params.e_a)


class HHAParams(NamedTuple):
    """Squid HH plus an A-current; conductances mS/cm², potentials mV, c_m µF/cm²,
    temperature °C (the rates are given at 6.3 °C)."""

    g_na: ArrayLike = 120.0
    g_k: ArrayLike = 36.0
    g_l: ArrayLike = 0.3
    g_a: ArrayLike = 20.0
    e_na: ArrayLike = 50.0
    e_k: ArrayLike = -77.0
    e_l: ArrayLike = -54.387
    e_a: ArrayLike = -75.0
    c_m: ArrayLike = 1.0
    temperature: ArrayLike = 6.3
    q10: ArrayLike = 3.0  # every channel's rates (Channel.q10_param)
    q10_g: ArrayLike = 1.0  # the conductances
    v_shift: ArrayLike = 0.0  # read by Sodium and Potassium


class HHAState(NamedTuple):
    """``v`` (mV), then every channel's gates in channel order."""

    v: Array
    m: Array
    h: Array
    n: Array
    a: Array
    b: Array


class HHATrace(NamedTuple):
    """``t`` (ms), the state's fields, then ``i_<channel>`` (µA/cm²) in order."""

    t: Array
    v: Array | None
    m: Array | None
    h: Array | None
    n: Array | None
    a: Array | None
    b: Array | None
    i_na: Array | None
    i_k: Array | None
    i_l: Array | None
    i_a: Array | None


HH_A = hhjax.Model(
    name="hh-a",
    channels=(Sodium(), Potassium(), Leak(), ACurrent()),
    params_type=HHAParams,
    state_type=HHAState,
    trace_type=HHATrace,
    reference_temperature=6.3,
)
hhjax.MODELS["hh-a"] = HHAParams  # the name used in params.json and by --model


def main() -> None:
    import numpy as np
    from matplotlib.figure import Figure

    import fitting

    jax.config.update("jax_enable_x64", True)
    out = Path(__file__).resolve().parent / "output"
    out.mkdir(exist_ok=True)

    HH_A.check_channels(HHAParams())  # raises, naming the channel, if a rate is bad
    dt = 0.01  # ms
    i_ext = hhjax.stimulus.step(20.0, start=20.0, stop=180.0, duration=200.0, dt=dt)
    with_a = hhjax.simulate(HHAParams(), i_ext, dt, method="exp_midpoint")
    without = hhjax.simulate(HHAParams(g_a=0.0), i_ext, dt, method="exp_midpoint")
    for label, trace in (("with I_A", with_a), ("g_a = 0", without)):
        count = int(hhjax.analysis.spike_count(trace))
        first = float(hhjax.analysis.first_spike_time(trace))
        print(f"{label}: {count} spikes, the first at {first:.2f} ms")

    # Gradients work unchanged: d(mean V over the step)/d(g_a), forward mode.
    def mean_v(g_a: Array) -> Array:
        v = hhjax.simulate(HHAParams(g_a=g_a), i_ext, dt, record=("v",)).v
        return jnp.mean(v[2000:])

    slope = hhjax.grad(mean_v)(jnp.asarray(20.0))
    print(f"d(mean V)/d(g_a) = {float(slope):.4f} mV per mS/cm^2")

    # And fitting: recover g_a = 20 from a trace with 0.5 mV of noise, from 12.
    noisy = np.asarray(with_a.v) + np.random.default_rng(0).normal(
        0.0, 0.5, i_ext.shape
    )
    recording = hhjax.recordings.Recording(
        dt=dt, v=noisy[None], i=np.asarray(i_ext)[None]
    )
    data = fitting.FitData.from_recording(recording)
    result = fitting.fit(
        data, ["g_a"], params=HHAParams(g_a=12.0), n_starts=2, method="exp_midpoint",
        progress=False,
    )  # fmt: skip
    print(result.summary())

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax_v, ax_g = fig.subplots(2, 1, sharex=True)
    ax_v.plot(without.t, without.v, color="0.6", lw=0.8, label="g_a = 0")
    ax_v.plot(with_a.t, with_a.v, color="C0", lw=0.8, label="g_a = 20 mS/cm²")
    ax_v.set_ylabel("V (mV)")
    ax_v.legend(loc="upper right")
    ax_v.set_title("Squid HH with a Connor–Stevens A-current (20 µA/cm² step)")
    ax_g.plot(with_a.t, with_a.a, label="a (activation)")
    ax_g.plot(with_a.t, with_a.b, label="b (inactivation)")
    ax_g.set_xlabel("t (ms)")
    ax_g.set_ylabel("gate")
    ax_g.legend(loc="upper right")
    path = out / "50_custom_channel.png"
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
