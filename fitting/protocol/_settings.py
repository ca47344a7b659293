"""Settings of the real-cell protocol: the analysis window's margins, cost
weights, the free parameters per model, the parameters searched on a linear scale
(:data:`LINEAR`; the others on a log scale), search boxes, starting values and
spreads (physical units: mV, ms, mS/cm², µF/cm², °C).

These are constants, bound by the modules that use them when they are imported:
rebinding one (here or on :mod:`fitting.protocol`) changes nothing. What a fit may
vary is an argument of :func:`fitting.protocol.fit_recording` (``free``,
``sigma_mv``, ``generations``, ...).
"""

from __future__ import annotations

BEFORE_MS = 50.0  # analysis window starts this long before the step onset
AFTER_MS = 150.0  # ... and ends this long after the step
LATENCY_SCALE_MS = 20.0  # a first-spike latency error of this size costs 1
COUNT_SCALE = 0.1  # spike-count errors are divided by 1 + COUNT_SCALE * n_data
# The model's steady response to the hyperpolarising step may differ from the
# measured one by this factor (rectification) before it costs PASSIVE_WEIGHT per
# squared log-unit beyond it; keeps the leak sane where no sweep constrains it.
PASSIVE_FACTOR = 2.0
PASSIVE_WEIGHT = 10.0
ONSET_WEIGHT = 3.0  # extra cost of a sweep that spikes in model xor data (rheobase)
SIGMA_MV = 1.0  # a subthreshold RMSE of this size costs 1
CAP_MV = -30.0  # the polish loss compares V capped smoothly at this level

# Free parameters of the search per model.
FREE = {
    "pospischil-rs": (
        "g_na",
        "g_kd",
        "g_m",
        "g_l",
        "v_t",
        "tau_max",
        "c_m",
        "e_k",
        "temperature",
    ),
    "pospischil-fs": ("g_na", "g_kd", "g_l", "v_t", "c_m", "e_k", "temperature"),
}
# Opt-in: the slow AHP current of the Pospischil model (off in the published sets);
# pass ``free=(*FREE["pospischil-rs"], *SLOW_AHP)`` to search it too (measured in
# docs/real_cells.md: it does not lower the held-out RMSE of the shipped cells).
SLOW_AHP = ("g_ahp", "tau_w", "v_w")
# The persistent Na+ current of the Pospischil model (off in the published sets):
# free by default where hyperpolarising steps are scored (next), opt-in otherwise.
PERSISTENT_NA = ("g_nap", "v_nap")
# The inward rectifier of the Pospischil model (off in the published sets).
INWARD_RECTIFIER = ("g_kir", "v_kir")
# Free too when the scored step family has hyperpolarising steps (and the most
# hyperpolarising one is trained on), all off in the published sets: for RS cells
# I_h and the persistent Na+ current (measured on 171116sh_0018), for FS cells the
# inward rectifier (measured on the FSI; docs/real_cells.md).
HYPERPOLARISED = {
    "pospischil-rs": ("g_h", "v_h", *PERSISTENT_NA),
    "pospischil-fs": INWARD_RECTIFIER,
}
# Fitted, after the search and polish on the main step, to the spike counts in every
# step of a multi-step protocol (the others fixed): the Kv1-type D current of the
# Pospischil model, which a hyperpolarising pulse de-inactivates, so that a step after
# it evokes fewer spikes than the same step from rest. Measured on the FSI in
# docs/real_cells.md ("Both steps of the FSI").
LATER_STEPS = {"pospischil-fs": ("g_d", "tau_b", "v_b")}
LINEAR = frozenset(
    {"v_t", "e_k", "e_na", "e_l", "temperature", "v_w", "v_h", "v_nap", "v_b", "v_kir"}
)
# Search box (physical units): candidates are clipped into it.
BOUNDS = {
    "g_na": (1.0, 500.0),
    "g_kd": (0.1, 100.0),
    "g_m": (1e-4, 2.0),
    "g_l": (1e-3, 1.0),
    "v_t": (-75.0, -25.0),
    "tau_max": (20.0, 1e4),
    "c_m": (0.3, 5.0),
    "e_k": (-110.0, -55.0),
    "e_l": (-100.0, -20.0),
    "temperature": (20.0, 40.0),
    "g_ahp": (1e-3, 2.0),
    "tau_w": (20.0, 2000.0),
    "v_w": (-30.0, 20.0),
    "g_h": (1e-4, 1.0),
    "v_h": (-100.0, -60.0),
    "g_nap": (1e-4, 0.5),
    "v_nap": (-70.0, -40.0),
    "g_d": (1e-3, 30.0),
    "tau_b": (20.0, 2000.0),
    "v_b": (-90.0, -50.0),
    "g_kir": (1e-4, 5.0),
    "v_kir": (-120.0, -70.0),
}
# Starting values of parameters whose model default switches a channel off
# (g_ahp = g_h = g_nap = g_d = g_kir = 0 in the published RS/FS sets), physical
# units.
START = {"g_ahp": 0.1, "g_h": 0.01, "g_nap": 0.01, "g_d": 1.0, "g_kir": 0.05}
# Search spread per parameter: log units for positive ones, mV or degC otherwise.
SPREAD = {
    "g_na": 0.7,
    "g_kd": 0.7,
    "g_m": 0.7,
    "g_l": 0.5,
    "v_t": 5.0,
    "tau_max": 0.7,
    "c_m": 0.3,
    "e_k": 8.0,
    "temperature": 4.0,
    "g_ahp": 0.7,
    "tau_w": 0.7,
    "v_w": 6.0,
    "g_h": 0.7,
    "v_h": 6.0,
    "g_nap": 0.7,
    "v_nap": 5.0,
    "g_d": 1.0,
    "tau_b": 0.7,
    "v_b": 6.0,
    "g_kir": 1.0,
    "v_kir": 6.0,
}
