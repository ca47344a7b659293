"""A batch of cells split over several devices with a ``jax.sharding.Mesh``.

``hhjax.simulate`` accepts arrays sharded along the batch axis: put the batched
parameters (and a batched current or initial state, if any) on a mesh and the jitted
scan runs on every device at once, each on its share of the cells; the trace comes
back sharded the same way. On a machine with several GPUs the mesh holds the GPUs;
on a CPU, JAX can expose the cores as separate "host devices", but only if told
**before it starts**, through ``XLA_FLAGS`` (this script sets it when unset)::

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python examples/30_sharded_batch.py

Each device then runs its share on its own thread, so the speed-up is bounded by
the free cores: up to 4× needs at least 4 (one per device). On a shared 2-core
machine the 4 devices took 314 ms against 292 ms for one in one run, 185 ms
against 249 ms in another. Across hosts, start every process with
``jax.distributed.initialize()`` and build the mesh over ``jax.devices()``.

Standard HH (modern convention, rest ≈ −65 mV), 10 µA/cm² from t = 0, 512 cells
with g_na from 100 to 140 mS/cm². The sharded result equals the single-device one
bit for bit when every device gets a multiple of the SIMD width (8 cells in float64
with AVX-512). The number of cells must be a multiple of the number of devices
(JAX refuses an uneven split): pad a batch with copies of its last cell and drop
them from the trace. Writes ``examples/output/30_sharded_batch.png``.
"""

import os

DEVICES = 4
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + f" --xla_force_host_platform_device_count={DEVICES}"
    )

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import hhjax  # noqa: E402
from hhjax.analysis import spike_count  # noqa: E402

jax.config.update("jax_enable_x64", True)

DT = 0.025  # ms
CELLS = 512
g_na = jnp.linspace(100.0, 140.0, CELLS)  # mS/cm^2, batch shape (512,)
i_ext = hhjax.stimulus.constant(10.0, 100.0, DT)  # uA/cm^2, (4000,), all cells
state0 = hhjax.HH.steady_state(jnp.full(CELLS, -65.0), hhjax.HHParams())  # at -65 mV

# One mesh axis, "cells", over every device; split the cell axis along it.
mesh = Mesh(np.array(jax.devices()), ("cells",))
cells_split = NamedSharding(mesh, PartitionSpec("cells"))
params_sharded = hhjax.HHParams(g_na=jax.device_put(g_na, cells_split))
state0_sharded = jax.device_put(state0, cells_split)


def run(params, start):
    trace = hhjax.simulate(params, i_ext, DT, state0=start, record=("v",))
    trace.v.block_until_ready()
    return trace


timings = {}
for label, params, start in (
    ("1 device", hhjax.HHParams(g_na=g_na), state0),
    (f"{len(mesh.devices)} devices", params_sharded, state0_sharded),
):
    run(params, start)  # compile
    begin = time.perf_counter()
    trace = run(params, start)
    timings[label] = time.perf_counter() - begin
    where = sorted(d.id for d in trace.v.sharding.device_set)
    print(
        f"{label:>10}: {timings[label] * 1e3:7.1f} ms, trace {trace.v.shape} "
        f"on device(s) {where}"
    )
    if label == "1 device":
        v_single = np.asarray(trace.v)
    else:
        sharded = trace
v_sharded = sharded.v

same = np.array_equal(v_single, np.asarray(v_sharded))
print(f"sharded == single device, bit for bit: {same}")
# Which device computed which cells: the shards of the output.
owner = np.empty(CELLS, dtype=int)
for shard in v_sharded.addressable_shards:
    owner[shard.index[1]] = shard.device.id
counts = np.asarray(spike_count(sharded, threshold=0.0))  # upward crossings of 0 mV

fig = Figure(figsize=(10, 4), layout="constrained")
ax_c, ax_t = fig.subplots(1, 2, width_ratios=(2, 1))
for device in np.unique(owner):
    mask = owner == device
    ax_c.plot(np.asarray(g_na)[mask], counts[mask], ".", label=f"device {device}")
ax_c.set(
    xlabel="g_Na (mS/cm²)",
    ylabel="spikes in 100 ms at 10 µA/cm²",
    title=f"{CELLS} cells, split over {len(mesh.devices)} devices",
)
ax_c.legend(frameon=False)
ax_t.bar(list(timings), [t * 1e3 for t in timings.values()], color=["0.6", "C0"])
ax_t.set(
    ylabel="wall time (ms)", title=f"same result bit for bit: {'yes' if same else 'no'}"
)
out = Path(__file__).resolve().parent / "output" / "30_sharded_batch.png"
out.parent.mkdir(exist_ok=True)
fig.savefig(out, dpi=120)
print(f"wrote {out}")
