"""Gradients of a trace loss w.r.t. the conductances, checked by finite differences.

Standard HH (modern convention). A target trace comes from g_na, g_k, g_l =
110, 40, 0.25 mS/cm²; the loss is the mean squared difference of V (mV²) over
20 ms of a 10 µA/cm² step, as a function of the conductances. ``jax.grad``
differentiates through the whole jitted simulation; central finite differences
check it; ``hhjax.value_and_grad`` gives the same gradient in forward mode, the
cheaper one for a handful of parameters. Float64 (enabled below). Writes ``examples/output/03_gradients.png``:
the loss along g_na with the tangent the gradient predicts; the gradient is
exact, yet only local — where a spike appears or vanishes the loss jumps, which is
why fitting spiking traces needs more than plain gradient descent (docs/fitting.md, "Losses").
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

import hhjax

jax.config.update("jax_enable_x64", True)  # float64, before any array is created

DT = 0.025  # ms
i_ext = hhjax.stimulus.step(10.0, start=2.0, stop=18.0, duration=20.0, dt=DT)
target = hhjax.simulate(
    hhjax.HHParams(g_na=110.0, g_k=40.0, g_l=0.25), i_ext, DT, record=("v",)
).v


def loss(g: jax.Array) -> jax.Array:
    """Mean squared V error, mV², for conductances g = (g_na, g_k, g_l) mS/cm²."""
    params = hhjax.HHParams(g_na=g[0], g_k=g[1], g_l=g[2])
    v = hhjax.simulate(params, i_ext, DT, record=("v",)).v
    return jnp.mean((v - target) ** 2)


loss = jax.jit(loss)  # compile once, reuse for every finite difference
g0 = jnp.array([120.0, 36.0, 0.3])  # standard HH
value, grad = jax.jit(jax.value_and_grad(loss))(g0)
print(f"loss at standard HH: {float(value):.6g} mV²")
print(f"{'':>5} {'jax.grad':>14} {'finite diff.':>14} {'rel. error':>11}")
for k, name in enumerate(("g_na", "g_k", "g_l")):
    h = 1e-5 * float(g0[k])
    step = jnp.zeros(3).at[k].set(h)
    fd = (loss(g0 + step) - loss(g0 - step)) / (2 * h)
    rel = abs(float(grad[k]) - float(fd)) / abs(float(fd))
    print(f"{name:>5} {float(grad[k]):14.6g} {float(fd):14.6g} {rel:11.2e}")

# hhjax.value_and_grad picks the cheaper mode itself: forward mode for these 3
# inputs (hhjax.FORWARD_MODE_MAX = 6), the same gradient to rounding.
_, grad_auto = jax.jit(hhjax.value_and_grad(loss))(g0)
rel = float(jnp.max(jnp.abs(grad_auto - grad) / jnp.abs(grad)))
print(f"hhjax.value_and_grad (forward mode) against jax.grad: max rel. diff. {rel:.1e}")

# The loss along g_na and the tangent the gradient predicts.
g_na = np.linspace(110.0, 130.0, 21)
losses = [float(loss(g0.at[0].set(x))) for x in g_na]
fig = Figure(figsize=(6, 4.5), layout="constrained")
ax = fig.subplots()
ax.plot(g_na, losses, "o-", ms=3, label="loss")
ax.plot(g_na, value + grad[0] * (g_na - g0[0]), "--", label="tangent from jax.grad")
ax.set_xlabel("g_na (mS/cm²)")
ax.set_ylabel("mean squared V error (mV²)")
ax.legend()
out = Path(__file__).resolve().parent / "output"
out.mkdir(exist_ok=True)
fig.savefig(out / "03_gradients.png", dpi=120)
print(f"wrote {out / '03_gradients.png'}")
