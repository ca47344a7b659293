"""How does the first-spike latency depend on each parameter?

Standard HH (modern convention, 6.3 °C) at rest receives a current step at
t = 0; the latency is the time of the first upward crossing of 0 mV,
interpolated inside the step (``hhjax.analysis.first_spike_time``), so it is a
smooth function of the parameters. One reverse-mode gradient per step amplitude
gives d(latency)/d(parameter) for all eight parameters listed below at once;
``hhjax.analysis.sensitivities`` normalises them to elasticities (% change of the
latency per % change of the parameter). One entry is checked by central finite
differences.

Elasticities suit the conductances and the capacitance, whose zero is natural.
They do not suit the reversal potentials and the temperature: their zero is
arbitrary (the voltage convention's, 0 °C), and the elasticity grows with the
distance from it — ``e_k`` is −77 mV here but −12 mV in HH's 1952 convention, the
same cell with elasticities 6.4× apart. For those the example reports the
gradients themselves, in ms per mV and ms per °C.

Writes ``examples/output/11_latency_sensitivity.png`` (elasticities w.r.t. the
conductances and c_m) and ``11_latency_offsets.png`` (gradients w.r.t. e_na, e_k,
e_l and temperature, each column on its own colour scale).
"""

from pathlib import Path

import jax
import numpy as np

import hhjax
from hhjax import analysis

jax.config.update("jax_enable_x64", True)  # float64, before any array is created

DT = 0.01  # ms
DURATION = 15.0  # ms
SCALES = ("g_na", "g_k", "g_l", "c_m")  # natural zero: elasticities
OFFSETS = ("e_na", "e_k", "e_l", "temperature")  # arbitrary zero: gradients
PARAMETERS = SCALES + OFFSETS


def latency_at(amplitude):
    """Feature: first-spike latency (ms) for a step of ``amplitude`` µA/cm²."""
    current = hhjax.stimulus.constant(amplitude, DURATION, DT)

    def latency(params):
        trace = hhjax.simulate(params, current, DT, record=("v",))
        return analysis.first_spike_time(trace, 0.0)

    return latency


params = hhjax.HHParams()
features = {f"latency @ {a:g} µA/cm²": latency_at(a) for a in (8.0, 15.0, 40.0)}
sens = analysis.sensitivities(features, params, parameters=PARAMETERS)
print(sens.table())
print(f"(elasticities of {', '.join(OFFSETS)} depend on the zero of their scale:")
print(" read their gradients, ms per mV and ms per degC)")
print(sens.table(relative=False))

# Check one gradient by central finite differences.
h = 1e-3
feature = features["latency @ 15 µA/cm²"]
fd = (
    feature(params._replace(g_k=36.0 + h)) - feature(params._replace(g_k=36.0 - h))
) / (2 * h)
j = PARAMETERS.index("g_k")
print(
    f"d latency/d g_k at 15 uA/cm^2: jax.grad {sens.gradients[1, j]:.8g}, "
    f"finite differences {float(fd):.8g} ms per mS/cm^2"
)

out = Path(__file__).resolve().parent / "output"
out.mkdir(exist_ok=True)
figures = {
    "11_latency_sensitivity.png": analysis.plot_sensitivities(
        sens,
        parameters=SCALES,
        title="First-spike latency of standard HH: elasticities",
    ),
    "11_latency_offsets.png": analysis.plot_sensitivities(
        sens,
        relative=False,
        parameters=OFFSETS,
        title="First-spike latency: gradients\n(ms per mV; ms per °C)",
    ),
}
for name, fig in figures.items():
    fig.savefig(out / name, dpi=120)
    print(f"wrote {out / name}")
assert np.all(np.isfinite(sens.gradients))
