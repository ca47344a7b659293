"""pyHH's README demo, run by hhjax's pyHH facade (HH 1952 convention, rest 0 mV).

A customised cell (gNa 100, gK 5 mS/cm², EK −35 mV) under a 50 µA/cm² pulse from
step 7000 to 13000 of 20000 steps of 0.01 ms. The only change from pyHH's code is
the import. Writes ``examples/output/01_pyhh_quickstart.png``.
"""

from pathlib import Path

import numpy as np

from hhjax import pyhh  # was: import pyhh
from hhjax.plot import plot_trace

# customise a neuron model (pyHH attributes: mS/cm², mV, µF/cm²)
model = pyhh.HHModel()
model.gNa = 100  # typically 120
model.gK = 5  # typically 36
model.EK = -35  # typically -12

# a stimulus waveform, µA/cm² per step
stim = np.zeros(20000)
stim[7000:13000] = 50  # a square pulse

# run the simulation (forward Euler, one jitted scan, float64)
sim = pyhh.Simulation(model)
sim.Run(stimulusWaveform=stim, stepSizeMs=0.01)

spikes = np.flatnonzero((sim.Vm[:-1] < 50) & (sim.Vm[1:] >= 50))
print(
    f"{len(sim.Vm)} steps of 0.01 ms; {len(spikes)} spikes (V crossing 50 mV "
    f"above rest); peak {sim.Vm.max():.3f} mV above rest"
)

out = Path(__file__).resolve().parent / "output"
out.mkdir(exist_ok=True)
fig = plot_trace(
    sim.trace(),
    stim,
    convention="hh1952",
    title="Hodgkin-Huxley spiking neuron model (pyHH demo)",
)
fig.savefig(out / "01_pyhh_quickstart.png", dpi=120)
print(f"wrote {out / '01_pyhh_quickstart.png'}")
