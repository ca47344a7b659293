"""The real-cell protocol: fit a cortical model to current-clamp steps of one cell
and predict the sweeps it was not fitted to.

Voltage convention: modern (mV, rest ≈ −65 mV). Units: ms, mV, pA for whole-cell
currents, pF, µA/cm² for current densities, mS/cm², µF/cm².

The recipe (measured on the shipped recordings in ``docs/real_cells.md``, which
describes it in more, differently numbered, items):

1. **Prepare** (:func:`prepare`): the passive properties of the hyperpolarising
   step (:func:`hhjax.recordings.cell_properties`) give the cell capacitance
   ``C`` (pF), which fixes the membrane area ``C / (1 µF/cm²)`` and turns pA into
   µA/cm²; the onset jump gives the uncompensated series resistance, removed from
   V (``V − R_s·I``, bridge balance); each sweep's pre-stimulus baseline is
   brought to a common resting potential (drift). Only the main depolarising
   step and its surroundings (the *analysis window*, ``[onset − 50, stop + 150)``
   ms) are fitted and scored: a single-compartment model with a linear leak cannot
   match the hyperpolarising pulse and the depolarised responses at once when the
   cell rectifies (inward rectifier, I_h).
2. **Choose training sweeps** (:func:`select_sweeps`): the strongest sweep
   without spikes, the rheobase sweep and sweeps spread evenly up to the largest
   current. Where the step family has hyperpolarising steps the RS model also
   gets I_h and a persistent Na⁺ current, the FS model an inward rectifier
   (:data:`HYPERPOLARISED`), and the most hyperpolarising step is trained on:
   with responses on both sides of rest scored, the leak, the sag (I_h), the
   floor of the hyperpolarised steps (I_Kir) and the amplification of
   depolarising steps (I_NaP) can be told apart.
3. **Search** (:func:`search`): a cross-entropy / separable-CMA search over the
   free parameters (log scale except for potentials and temperature), each
   generation one batched, jitted, forward-only simulation of every candidate on
   every training sweep. The cost is what the protocol is judged by, measured on
   the training sweeps only: spike-count errors (relative to ``1 + 0.1·n``),
   subthreshold RMSE outside ±3 ms of any spike, and first-spike latency. ``e_l``
   is not searched: it is set so that the model rests exactly at the recorded
   resting potential.
4. **Polish** (:func:`fit_recording`): Levenberg–Marquardt (:func:`fitting.fit`)
   on :class:`SpikeFeatureLoss` (soft spike counts plus V capped below spikes)
   from the search optimum and a few perturbed copies; kept only if the search
   cost on the training sweeps does not get worse. It also gives the Laplace
   standard errors of the parameter table.
5. **Later steps** (:func:`fit_later_steps`, FS model on a recording that
   repeats its step): the D current's parameters searched with the rest fixed,
   against the spike counts of every step.
6. **Predict and score** (:func:`evaluate`): every sweep simulated from rest
   under its current; per sweep the counts, subthreshold RMSE and latencies of
   :func:`fitting.metrics` and the RMSE of the onset response
   (:func:`onset_rmse`), and per recording the fraction of held-out sweeps
   within ±1 spike, the rheobase of data and model, the mean subthreshold RMSE,
   its onset part and the mean coincidence factor.
"""

from __future__ import annotations

from fitting.protocol._directories import (
    RAW_SUFFIXES,
    fit_to_directory,
    predict_to_directory,
    wants_protocol,
)
from fitting.protocol._evaluate import (
    MIN_ONSET_MS,
    evaluate,
    onset_rmse,
    simulate_sweeps,
)
from fitting.protocol._features import batch_features, batch_step_features, feature_cost
from fitting.protocol._fit_recording import (
    RealFit,
    checkpoint_files,
    fit_recording,
    predict_recording,
)
from fitting.protocol._parameters import initial_values, rest_leak
from fitting.protocol._polish import SpikeFeatureLoss
from fitting.protocol._prepare import (
    Prepared,
    command_steps,
    main_step,
    prepare,
    recording_digest,
    step_amplitudes,
    whole_sweeps,
)
from fitting.protocol._report import report_figure, save_report, summary_line
from fitting.protocol._search import SearchResult, fit_later_steps, search
from fitting.protocol._settings import (
    AFTER_MS,
    BEFORE_MS,
    BOUNDS,
    CAP_MV,
    COUNT_SCALE,
    FREE,
    HYPERPOLARISED,
    INWARD_RECTIFIER,
    LATENCY_SCALE_MS,
    LATER_STEPS,
    LINEAR,
    ONSET_WEIGHT,
    PASSIVE_FACTOR,
    PASSIVE_WEIGHT,
    PERSISTENT_NA,
    SIGMA_MV,
    SLOW_AHP,
    SPREAD,
    START,
)
from fitting.protocol._sweeps import (
    first_latencies,
    rheobase,
    select_sweeps,
    spike_counts,
    step_counts,
)

__all__ = [
    "AFTER_MS",
    "BEFORE_MS",
    "BOUNDS",
    "CAP_MV",
    "COUNT_SCALE",
    "FREE",
    "HYPERPOLARISED",
    "INWARD_RECTIFIER",
    "LATENCY_SCALE_MS",
    "LATER_STEPS",
    "LINEAR",
    "MIN_ONSET_MS",
    "ONSET_WEIGHT",
    "PASSIVE_FACTOR",
    "PASSIVE_WEIGHT",
    "PERSISTENT_NA",
    "Prepared",
    "RAW_SUFFIXES",
    "RealFit",
    "SIGMA_MV",
    "SLOW_AHP",
    "SPREAD",
    "START",
    "SearchResult",
    "SpikeFeatureLoss",
    "batch_features",
    "batch_step_features",
    "checkpoint_files",
    "command_steps",
    "evaluate",
    "feature_cost",
    "first_latencies",
    "fit_later_steps",
    "fit_recording",
    "fit_to_directory",
    "initial_values",
    "main_step",
    "onset_rmse",
    "predict_recording",
    "predict_to_directory",
    "prepare",
    "recording_digest",
    "report_figure",
    "rest_leak",
    "rheobase",
    "save_report",
    "search",
    "select_sweeps",
    "simulate_sweeps",
    "spike_counts",
    "step_amplitudes",
    "step_counts",
    "summary_line",
    "wants_protocol",
    "whole_sweeps",
]
