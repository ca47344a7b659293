"""Brian2 peer (``cpp_standalone`` device, ``exponential_euler``).

Brian2 2.9 does not import with NumPy ≥ 2.4, so this runs in a separate virtual
environment (``--brian2-python``, e.g. one with ``numpy<2.4 brian2``) through
``worker.py``; it needs only NumPy, Brian2 and a C++ compiler.

The C++ project is generated and compiled once (the first-call overhead); each timed
call runs the compiled binary (a child process: its CPU time is counted through
``_timing.cpu_seconds``) and reads V back. The tool's memory is the peak
RSS of one run of the binary alone (:func:`_binary_peak_mb`), not of the build.
"""

from __future__ import annotations

import os
import sys
import tempfile

import _problem as problem  # benchmarks/ is on sys.path (run as a script)
import numpy as np
from _timing import Tool

# Runs the command in argv[2:] and writes its peak RSS (KiB, Linux) to argv[1]: the
# binary is this wrapper's only child, so RUSAGE_CHILDREN is the binary's alone.
_PEAK_RSS_WRAPPER = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[2:], check=True); "
    "open(sys.argv[1], 'w').write(str(resource.getrusage("
    "resource.RUSAGE_CHILDREN).ru_maxrss))"
)

_EQUATIONS = """
dv/dt = (I - gNa*m**3*h*(v - ENa) - gK*n**4*(v - EK) - gL*(v - EL)) / Cm : volt
dm/dt = alpham*(1 - m) - betam*m : 1
dh/dt = alphah*(1 - h) - betah*h : 1
dn/dt = alphan*(1 - n) - betan*n : 1
alpham = 0.1/mV*(v + 40*mV) / (1 - exp(-(v + 40*mV)/(10*mV))) / ms : Hz
betam = 4*exp(-(v + 65*mV)/(18*mV)) / ms : Hz
alphah = 0.07*exp(-(v + 65*mV)/(20*mV)) / ms : Hz
betah = 1 / (1 + exp(-(v + 35*mV)/(10*mV))) / ms : Hz
alphan = 0.01/mV*(v + 55*mV) / (1 - exp(-(v + 55*mV)/(10*mV))) / ms : Hz
betan = 0.125*exp(-(v + 65*mV)/(80*mV)) / ms : Hz
gNa : siemens/meter**2 (constant)
"""


def _binary_peak_mb(directory: str) -> float:
    """Peak RSS of one run of the compiled binary in ``directory``, MB: Brian2 runs
    it as usual, with its run command prefixed by a small wrapper."""
    import brian2 as b2

    prefs = b2.prefs.devices.cpp_standalone
    command = prefs.run_cmd_unix
    out = os.path.join(directory, "peak_rss_kib.txt")
    prefs.run_cmd_unix = [
        sys.executable,
        "-c",
        _PEAK_RSS_WRAPPER,
        out,
        *([command] if isinstance(command, str) else command),
    ]
    try:
        b2.device.run(directory=directory, with_output=False)
    finally:
        prefs.run_cmd_unix = command
    with open(out) as f:
        return int(f.read()) * 1024 / 1e6


def brian2_forward(wl: problem.Workload, threads: int = 1) -> Tool:
    """Build and compile the standalone project; return a callable that runs it.

    Args:
        wl: the workload.
        threads: OpenMP threads of the generated code.
    """
    import brian2 as b2
    from brian2 import cm, ms, msiemens, mV, uA, uF

    b2.set_device("cpp_standalone", build_on_run=False)
    if threads > 1:
        b2.prefs.devices.cpp_standalone.openmp_threads = threads
    b2.defaultclock.dt = problem.DT * ms
    namespace = {
        "ENa": problem.E_NA * mV,
        "EK": problem.E_K * mV,
        "EL": problem.E_L * mV,
        "gK": problem.G_K * msiemens / cm**2,
        "gL": problem.G_L * msiemens / cm**2,
        "Cm": problem.C_M * uF / cm**2,
        "I": problem.I_EXT * uA / cm**2,
    }
    group = b2.NeuronGroup(
        wl.cells, _EQUATIONS, method="exponential_euler", namespace=namespace
    )
    v0, m0, h0, n0 = problem.initial_state()
    group.v, group.m, group.h, group.n = v0 * mV, m0, h0, n0
    group.gNa = problem.g_na_batch(wl.cells) * msiemens / cm**2
    monitor = b2.StateMonitor(group, "v", record=True)
    b2.run(wl.steps * problem.DT * ms)
    directory = tempfile.mkdtemp(prefix="hhjax_brian2_")
    b2.device.build(directory=directory, compile=True, run=False)

    def run():
        b2.device.run(directory=directory, with_output=False)
        return np.asarray(monitor.v / mV).T[: wl.steps]

    return Tool(run, lambda: _binary_peak_mb(directory), "peak RSS of the binary")
