"""Many cells in one call: a batch of g_na values simulated by one jitted scan.

Standard HH (modern convention, rest ≈ −65 mV); 21 cells with g_na from 60 to
160 mS/cm², all under the same 10 µA/cm² step. The parameters carry the batch
shape ``(21,)``; the current is broadcast over it. Writes
``examples/output/02_batch_simulation.png`` (traces and spike counts against g_na)
and ``02_batch_cell.png`` (the four-panel figure of one cell of the batch).
"""

import time
from pathlib import Path

import jax.numpy as jnp
import matplotlib
import numpy as np
from matplotlib.figure import Figure

import hhjax
from hhjax.analysis import spike_count
from hhjax.plot import plot_trace

DT = 0.025  # ms
g_na = jnp.linspace(60.0, 160.0, 21)  # mS/cm^2, batch shape (21,)
params = hhjax.HHParams(g_na=g_na)
i_ext = hhjax.stimulus.step(10.0, start=5.0, stop=95.0, duration=100.0, dt=DT)
i_batch = jnp.broadcast_to(i_ext[:, None], i_ext.shape + g_na.shape)  # (time, 21)

start = time.perf_counter()
trace = hhjax.simulate(params, i_batch, DT)  # one call, all cells
trace.v.block_until_ready()
elapsed = time.perf_counter() - start
print(f"{g_na.size} cells x {i_ext.size} steps: {elapsed:.2f} s with compilation")
counts = np.asarray(spike_count(trace, threshold=0.0))  # upward crossings of 0 mV
for g, c in zip(np.asarray(g_na), counts, strict=True):
    print(f"g_na = {g:6.1f} mS/cm^2: {c:2d} spikes")

fig = Figure(figsize=(10, 4.5), layout="constrained")
ax_v, ax_n = fig.subplots(1, 2, width_ratios=(2, 1))
shown = range(0, g_na.size, 4)
colours = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, len(shown)))
for k, colour in zip(shown, colours, strict=True):
    ax_v.plot(trace.t, trace.v[:, k], lw=0.8, color=colour, label=f"{g_na[k]:g}")
ax_v.set_xlabel("t (ms)")
ax_v.set_ylabel("V (mV, modern convention)")
ax_v.legend(title="g_na (mS/cm²)", fontsize="small", loc="upper right")
ax_n.plot(g_na, counts, "o-")
ax_n.set_xlabel("g_na (mS/cm²)")
ax_n.set_ylabel("spikes during the 90 ms step\n(10 µA/cm², 5–95 ms)")

out = Path(__file__).resolve().parent / "output"
out.mkdir(exist_ok=True)
fig.savefig(out / "02_batch_simulation.png", dpi=120)
cell = plot_trace(  # params: checked against the trace; the V axis states them
    trace, i_ext, cell=10, params=params, title=f"g_na = {g_na[10]:g} mS/cm²"
)
cell.savefig(out / "02_batch_cell.png", dpi=120)
print(f"wrote {out / '02_batch_simulation.png'} and {out / '02_batch_cell.png'}")
