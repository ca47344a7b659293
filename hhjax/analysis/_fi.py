"""Firing rate versus injected current (f–I curve), in one batched simulation."""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike

from hhjax._checks import (
    check_current,
    concrete_real,
    is_integer,
    is_traced,
    positive_number,
)
from hhjax._equilibrium import resting_state
from hhjax._integrators import DEFAULT_METHOD
from hhjax._model import document_fields, model_of
from hhjax._simulate import simulate
from hhjax.analysis._fixed_points import (
    check_fixed_point,
    check_one_cell,
    require_concrete,
)
from hhjax.analysis._spikes import (
    firing_rate,
    first_spike_time,
    spike_count,
    spike_times,
)
from hhjax.stimulus import n_steps as whole_steps

# A rate at rheobase more than this many times the rate increase that the slope just
# above rheobase predicts over one current step is a jump (a square-root onset
# sampled on a uniform grid gives at most 1 + sqrt(2) ~ 2.4).
_JUMP_RATIO = 3.0
# Default threshold: this far above the I = 0 resting potential, mV.
_THRESHOLD_ABOVE_REST = 35.0
# A threshold given must be at least this far above it, mV.
_THRESHOLD_MIN_ABOVE_REST = 5.0


@document_fields
class FICurve(NamedTuple):
    """An f–I curve: firing of a cell under constant currents switched on from rest.

    Every array has shape ``(n,)``, ordered like ``currents`` as passed in.

    Attributes:
        currents: injected currents, µA/cm²
        rates: firing rate in the analysis window (inverse mean ISI), Hz
        counts: number of spikes in the analysis window, integers
        latency: time of the first spike after the current onset, ms; NaN if none
        rheobase: lowest current with repetitive firing, µA/cm²; NaN if none
        onset_type: ``"class 1"``, ``"class 2"`` or ``"unknown"`` (see :func:`fi_curve`)
        window: analysis window (start, stop), ms after onset
        threshold: spike-detection threshold, mV (convention of the params)
        repetitive: whether each current fires repetitively (see :func:`fi_curve`),
            booleans
        single_spike_rheobase: lowest current with at least one spike after the
            onset (the transient included), µA/cm²: the rheobase of
            current-clamp practice, below ``rheobase`` for cells that fire a
            single spike before firing repetitively (squid HH: ≈ 2.2 vs ≈ 6.3
            µA/cm² from rest); NaN if none
    """

    currents: Array
    rates: Array
    counts: Array
    latency: Array
    rheobase: float
    onset_type: str
    window: tuple[float, float]
    threshold: float
    repetitive: np.ndarray
    single_spike_rheobase: float


def fi_curve(
    params: Any,
    currents: ArrayLike,
    *,
    duration: float = 1000.0,
    dt: float = 0.025,
    method: str = DEFAULT_METHOD,
    transient: float = 200.0,
    threshold: float | None = None,
    min_spikes: int = 2,
) -> FICurve:
    """Firing rate for each constant current, all in one batched simulation.

    Each current is switched on at ``t = 0`` with the cell at its ``I = 0`` resting
    state (:func:`hhjax.resting_state`) and held for ``duration`` ms. Spikes are
    upward crossings of ``threshold`` (see :func:`spike_times`); the rate is the
    inverse mean inter-spike interval of the spikes in the analysis window
    ``[transient, duration)`` ms, which skips the onset transient.

    *Repetitive firing* means at least ``min_spikes`` spikes in that window and
    still firing at its end: the last spike at most two mean inter-spike intervals
    before it (a train that stops, as squid HH's just below its onset of
    repetitive firing, is not repetitive however many spikes it has). The
    **rheobase** is the lowest repetitive current of the grid (so it is known to
    the grid spacing, and, near a slow onset, to within what ``duration`` can
    reveal). The lowest current with any spike is the
    ``single_spike_rheobase``, the rheobase of current-clamp practice. The
    **onset type** (Hodgkin's classes) is judged from the rate at rheobase:
    ``"class 2"`` if it jumps there from 0 to a rate more than 3 times what the
    slope just above rheobase accounts for over one current step (a discontinuous
    onset, e.g. squid HH at ≈ 52 Hz; a square-root onset sampled on a uniform grid
    stays below 1 + √2 times), ``"class 1"`` otherwise (the rate starts from ≈ 0
    continuously). It needs a grid that resolves the onset (steps ≲ 1 µA/cm² for
    HH); ``"unknown"`` if the grid cannot tell (no rheobase, rheobase at
    the first or last current, or fewer than two firing currents above it).

    The returned rates, counts and latencies are JAX arrays. ``fi_curve`` needs
    concrete inputs (not under ``jax.grad``/``jit``/``vmap``): for gradients of
    a rate, apply :func:`firing_rate` (differentiable w.r.t. ``params``) to your
    own :func:`hhjax.simulate` run.

    Args:
        params: one cell's parameter tuple (scalar leaves; e.g.
            :class:`hhjax.HHParams`), voltage convention as the params. For
            several cells call it once per cell: the rheobase and onset type are
            properties of one cell's curve.
        currents: injected currents, µA/cm² (inward positive), shape ``(n,)``.
        duration: length of each run, ms.
        dt: integration step, ms.
        method: integrator, see :data:`hhjax.METHODS`.
        transient: start of the analysis window, ms after the current onset
            (``0 <= transient < duration``).
        threshold: spike threshold, mV (a number); ``None`` means 35 mV above
            the ``I = 0`` resting potential (−30 mV for standard modern HH: low
            enough for the shrinking spikes at strong currents, which peak below
            0 mV above ≈ 63 µA/cm²; but above ≈ 124 µA/cm² the oscillation of
            standard HH, which lasts up to its Hopf point at ≈ 154.5 µA/cm²,
            peaks below −30 mV and counts as no firing: pass a lower threshold
            to count it).
        min_spikes: spikes in the window that count as repetitive firing (≥ 2).

    Returns:
        An :class:`FICurve`.

    Raises:
        ValueError: bad shapes (batched parameters among them), non-finite
            currents, timing arguments (``dt``, ``duration`` not positive, an
            analysis window that holds no sample), parameters without a resting
            state, or a ``threshold`` not more than 5 mV above it.
    """
    model_of(params)
    require_concrete(
        "fi_curve", params, currents,
        hint="for gradients of a firing rate, apply firing_rate to your own "
        "hhjax.simulate run",
    )  # fmt: skip
    check_one_cell(
        params,
        "fi_curve",
        remedy="call it once per cell (or simulate the batch and use firing_rate)",
    )
    currents = jnp.asarray(currents)
    currents = currents.astype(jnp.result_type(float, currents))
    if currents.ndim != 1 or currents.shape[0] < 1:
        raise ValueError(
            f"`currents` must be a 1-D array of currents in uA/cm^2; got shape "
            f"{currents.shape}."
        )
    bad = [] if is_traced(currents) else np.flatnonzero(~np.isfinite(currents))
    if len(bad):
        raise ValueError(
            f"`currents` must be finite (uA/cm^2); entry {bad[0]} is "
            f"{float(currents[bad[0]])}."
        )
    check_current(currents, "currents", opt_out=False)
    duration = positive_number(duration, "duration", "ms")
    transient = concrete_real(transient, "transient", "ms")
    if not (math.isfinite(duration) and math.isfinite(transient)) or not (
        0.0 <= transient < duration
    ):
        raise ValueError(
            "Need 0 <= `transient` < `duration` (ms); got transient = "
            f"{transient}, duration = {duration}."
        )
    if not is_integer(min_spikes) or min_spikes < 2:
        raise ValueError(f"`min_spikes` must be an int >= 2; got {min_spikes!r}.")
    min_spikes = int(min_spikes)
    dt = positive_number(dt, "dt", "ms")
    n_steps = whole_steps(duration, dt)  # not silently shortened
    if n_steps < 2:
        raise ValueError(
            f"`duration` ({duration} ms) must span at least 2 steps of dt."
        )
    # The last sample is at (n_steps - 1) dt: the window must hold samples.
    if not transient < (n_steps - 1) * dt:
        raise ValueError(
            f"The analysis window [{transient}, {duration}) ms holds no sample: the "
            f"run of {n_steps} steps of dt = {dt} ms ends at "
            f"{(n_steps - 1) * dt:g} ms; lower `transient` or lengthen `duration`."
        )
    if threshold is not None:
        threshold = concrete_real(threshold, "threshold", "mV")

    rest = resting_state(params)
    check_fixed_point(
        rest, 0.0, "fi_curve starts every run from the I = 0 resting state."
    )
    if threshold is None:
        threshold = float(rest.v) + _THRESHOLD_ABOVE_REST
    elif not threshold > float(rest.v) + _THRESHOLD_MIN_ABOVE_REST:
        raise ValueError(
            f"`threshold` ({threshold:g} mV) must be more than "
            f"{_THRESHOLD_MIN_ABOVE_REST:g} mV above the I = 0 resting potential "
            f"({float(rest.v):.4g} mV, in the convention of the params), or "
            "fluctuations around rest count as spikes; leave it out for "
            f"{_THRESHOLD_ABOVE_REST:g} mV above rest (HH's 1952 convention: rest "
            "0 mV, spikes to ~ +100 mV)."
        )
    i_ext = jnp.broadcast_to(currents, (n_steps,) + currents.shape)
    trace = simulate(params, i_ext, dt, method=method, record=("v",))
    with warnings.catch_warnings():  # the threshold is checked against rest above
        warnings.filterwarnings("ignore", "The spike threshold", UserWarning)
        counts = spike_count(trace, threshold, t_start=transient)
        rates = firing_rate(trace, threshold, t_start=transient)
        latency = first_spike_time(trace, threshold)
        last = _last_spike_time(trace, threshold)
    end = (n_steps - 1) * dt  # the last sample, ms
    with np.errstate(divide="ignore"):
        mean_isi = 1000.0 / np.asarray(rates)  # ms; inf at rate 0
    repetitive = (np.asarray(counts) >= min_spikes) & (end - last <= 2.0 * mean_isi)
    rheobase, onset = _rheobase_and_onset(
        np.asarray(currents), repetitive, np.asarray(rates)
    )
    spiking = np.isfinite(np.asarray(latency))
    single = float(np.min(np.asarray(currents)[spiking])) if spiking.any() else math.nan
    return FICurve(
        currents=currents,
        rates=rates,
        counts=counts,
        latency=latency,
        rheobase=rheobase,
        onset_type=onset,
        window=(float(transient), float(n_steps * dt)),
        threshold=float(threshold),
        repetitive=repetitive,
        single_spike_rheobase=single,
    )


def _last_spike_time(trace: Any, threshold: float) -> np.ndarray:
    """Time of each column's last spike, ms; −inf without one."""
    most = int(np.max(np.asarray(spike_count(trace, threshold))))
    if most == 0:
        return np.full(trace.v.shape[1:], -np.inf)
    # max_spikes is static: a power of 2 lets curves of similar counts share one
    # compiled program (the extra slots are NaN).
    slots = 1 << (most - 1).bit_length()
    times = np.asarray(
        spike_times(trace, threshold, max_spikes=slots, interpolation="linear")
    )
    return np.max(np.where(np.isnan(times), -np.inf, times), axis=0)


def _rheobase_and_onset(
    currents: np.ndarray, repetitive: np.ndarray, rates: np.ndarray
) -> tuple[float, str]:
    """Lowest repetitive current and Hodgkin's onset class from a sampled curve.

    A current given more than once counts once (its first entry): the runs are
    identical, and a zero current step would make the slope 0/0."""
    i_sorted, first = np.unique(currents, return_index=True)
    rep, f = repetitive[first], rates[first]
    if not rep.any():
        return math.nan, "unknown"
    j = int(np.argmax(rep))
    rheobase = float(i_sorted[j])
    if j == 0 or j + 1 >= len(i_sorted) or not rep[j + 1]:
        return rheobase, "unknown"
    step_below = i_sorted[j] - i_sorted[j - 1]
    slope_above = (f[j + 1] - f[j]) / (i_sorted[j + 1] - i_sorted[j])
    explained = max(slope_above, 0.0) * step_below
    return rheobase, "class 2" if f[j] > _JUMP_RATIO * explained else "class 1"
