"""The search (step 3 of the recipe in :mod:`fitting.protocol`): a cross-entropy /
separable-CMA search over the free parameters, each generation one batched forward
simulation; its checkpoint and the fit of the later steps of a multi-step protocol.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import hhjax
from fitting._interrupt import in_worker, resumable
from fitting._io import load_checkpoint, mismatched_checkpoint, save_checkpoint
from fitting._params import integer_at_least, real_in
from fitting.protocol._features import batch_features, batch_step_features, feature_cost
from fitting.protocol._parameters import (
    from_search_coordinates,
    rest_leak,
    search_box,
    to_search_coordinates,
)
from fitting.protocol._prepare import Prepared, whole_sweeps
from fitting.protocol._settings import (
    COUNT_SCALE,
    PASSIVE_FACTOR,
    PASSIVE_WEIGHT,
    SIGMA_MV,
    SPREAD,
    START,
)
from fitting.protocol._sweeps import first_latencies, spike_counts, step_counts


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """Outcome of :func:`search`.

    Attributes:
        params: best parameters (scalar leaves), ``e_l`` set for the resting
            potential.
        cost: its search cost on the training sweeps.
        history: best cost of each generation.
        evaluations: candidates simulated.
        elapsed_s: wall time, s.
    """

    params: Any
    cost: float
    history: tuple[float, ...]
    evaluations: int
    elapsed_s: float


class _Chunked:
    """Cost of search coordinates ``z`` ``(n, n_free)``, simulated in batches of
    ``self.chunk`` (the last padded); subclasses define ``params(z)`` and
    ``cost_of(params)``."""

    chunk: int

    def __call__(self, z: np.ndarray) -> np.ndarray:
        out = []
        for k in range(0, z.shape[0], self.chunk):
            part = z[k : k + self.chunk]
            pad = self.chunk - part.shape[0]
            full = np.concatenate([part, np.repeat(part[-1:], pad, 0)]) if pad else part
            # In a worker thread (the first call compiles): Ctrl-C stops the wait.
            cost = in_worker(lambda z: self.cost_of(self.params(z)), full)
            out.append(cost[: part.shape[0]])
        return np.concatenate(out)


class Evaluator(_Chunked):
    """Feature cost of candidate parameters on the training sweeps."""

    def __init__(
        self, prepared, train, base, names, method, chunk, sigma, guard, v_rest=None
    ):
        data = prepared.data(train)
        self.v_rest = prepared.v_rest if v_rest is None else v_rest  # candidates' rest
        self.base, self.names = base, tuple(names)
        self.chunk, self.sigma = chunk, sigma
        onset = int(round((prepared.step[0] - prepared.window[0]) / data.dt))
        self.features = batch_features(data.dt, onset, method)
        self.i = jnp.asarray(data.i.T)
        self.v = jnp.asarray(data.v.T)
        sub = dataclasses.replace(prepared, recording=data.recording)
        self.counts = spike_counts(sub)
        self.first = first_latencies(sub)
        self.passive = None
        props = prepared.props
        if (
            guard
            and props is not None
            and props.step_pa < 0
            and np.isfinite(props.r_in)
        ):
            i_hyp = props.step_pa / prepared.c_pf  # uA/cm^2
            dv = props.r_in * props.step_pa * 1e-3  # mV, negative
            self.passive = (i_hyp, dv)
            v_rest = self.v_rest
            self._hyp = jax.jit(lambda p: hhjax.resting_state(p, i_hyp).v - v_rest)

    def passive_penalty(self, params: Any) -> np.ndarray:
        """:data:`PASSIVE_WEIGHT` · max(0, |ln(ΔV_model / ΔV_data)| − ln 2)² for
        the steady response to the hyperpolarising step (0 if not measured)."""
        if self.passive is None:
            return 0.0
        ratio = np.asarray(self._hyp(params)) / self.passive[1]
        with np.errstate(invalid="ignore", divide="ignore"):
            excess = np.maximum(np.abs(np.log(ratio)) - np.log(PASSIVE_FACTOR), 0.0)
        return np.where(
            np.isfinite(excess) & (ratio > 0), PASSIVE_WEIGHT * excess**2, np.inf
        )

    def params(self, z: np.ndarray) -> Any:
        p = self.base._replace(**from_search_coordinates(jnp.asarray(z), self.names))
        return rest_leak(p, self.v_rest)

    def cost_of(self, params: Any) -> np.ndarray:
        """The cost of a batch of parameter sets (leaves with a leading axis)."""
        c, f, r = (np.asarray(a) for a in self.features(params, self.i, self.v))
        cost = feature_cost(c, f, r, self.counts, self.first, self.sigma)
        return cost + self.passive_penalty(params)


class _StepsEvaluator(Evaluator):
    """The search cost (:class:`Evaluator`, on the analysis window) plus the
    spike-count errors in the later steps, from one simulation of the whole
    training sweeps (:func:`whole_sweeps`); ``e_l`` keeps ``fitted``'s resting
    potential."""

    def __init__(self, prepared, train, fitted, names, method, chunk, sigma, guard):
        v_rest = float(hhjax.resting_state(fitted).v)
        super().__init__(
            prepared, train, fitted, names, method, chunk, sigma, guard, v_rest
        )
        whole = whole_sweeps(prepared)
        data = whole.data(train)
        rows = [whole.sweeps.index(s) for s in train]
        self.later_data = step_counts(whole)[rows][:, 1:]  # (S, n_steps - 1)
        onsets = data.t[:-1] + 0.5 * data.dt  # a spike onset k lies in [t_k, t_k+1)
        later = [(onsets >= a) & (onsets < b) for a, b in whole.steps[1:]]
        onset = int(round((prepared.step[0] - prepared.window[0]) / data.dt))
        self.features = batch_step_features(data.dt, onset, np.stack(later, 1), method)
        self.i = jnp.asarray(data.i.T)

    def cost_at(self, params: Any) -> float:
        """The cost of one parameter set (scalar leaves), evaluated as a batch of
        candidates is (same compiled program)."""
        varying = (*self.names, "e_l")
        batch = params._replace(
            **{n: jnp.full(self.chunk, float(getattr(params, n))) for n in varying}
        )
        return float(in_worker(self.cost_of, batch)[0])

    def cost_of(self, params: Any) -> np.ndarray:
        """:meth:`Evaluator.cost_of` + ``Σ_sweeps Σ_later steps ((n − n_d)/(1 +
        0.1 n_d))²`` per candidate."""
        c, f, r, n = (np.asarray(a) for a in self.features(params, self.i, self.v))
        cost = feature_cost(c, f, r, self.counts, self.first, self.sigma)
        n, d = np.moveaxis(n, 0, -1), self.later_data[:, None, :]  # (S, K, steps)
        later = np.sum(((n - d) / (1.0 + COUNT_SCALE * d)) ** 2, axis=(0, 2))
        return cost + later + self.passive_penalty(params)


def search(
    prepared: Prepared,
    train: Sequence[int],
    base: Any,
    names: Sequence[str],
    init: dict[str, float],
    *,
    generations: int = 16,
    population: int = 64,
    restarts: int = 4,
    elite: float = 0.2,
    screen: int = 512,
    seed: int = 0,
    method: str = "rk4",
    chunk: int = 64,
    sigma: float = SIGMA_MV,
    passive_guard: bool = False,
    log: Callable[[str], Any] | None = None,
    checkpoint: str | os.PathLike | None = None,
    fingerprint: str = "",
) -> SearchResult:
    """Cross-entropy search (separable CMA-style) on the feature cost, several
    independent Gaussians at once.

    A broad first generation (``screen`` candidates uniform over the search box
    :data:`BOUNDS`, log scale except for potentials and temperature, plus ``init``)
    is simulated; ``restarts`` Gaussians start at its best point (``init`` unless
    the screen found a better one) with the spreads :data:`SPREAD`. Each generation
    draws ``population`` candidates from every Gaussian, simulates all of them on
    all training sweeps in batches of ``chunk`` (one jitted, forward-only call
    each), and moves each Gaussian to the log-rank-weighted mean and spread of its
    best ``elite`` fraction (the spread smoothed 9:1 with the previous one). The
    Gaussians start alike; their own draws lead them into different basins of this
    rugged cost, and the best point any of them found is the result. (Gaussians
    started at distinct screen candidates instead wasted their draws in poor basins:
    see docs/real_cells.md, "Search reliability".)

    Args:
        prepared: the recording (:func:`prepare`).
        train: training sweeps (indices in the file).
        base: parameters of the model (fixed fields; ``e_l`` is derived).
        names: free parameters (not ``e_l``).
        init: a starting point, ``{name: value}`` in physical units (part of the
            screen; the start of every Gaussian if ``screen`` is 0).
        generations: generations after the screen.
        population: candidates per Gaussian and generation.
        restarts: number of Gaussians (independent restarts).
        elite, seed: search settings.
        screen: size of the broad first generation.
        method: integrator; the step is the sampling interval.
        chunk: candidates per compiled simulation.
        sigma: see :func:`feature_cost`.
        passive_guard: add the passive penalty (steady response to the
            hyperpolarising step within :data:`PASSIVE_FACTOR` of the measured
            one) to the cost.
        log: called with a progress line per generation.
        checkpoint: file the search state is saved to after the screen and after
            every generation (atomically); an existing one with the same
            ``fingerprint`` is resumed from, and the resumed search ends where an
            uninterrupted one would (the random generator's state is saved too).
        fingerprint: identifies the search (data and settings) in the checkpoint.

    Returns:
        A :class:`SearchResult`.

    Raises:
        FitInterrupted: on Ctrl-C (anywhere in the search); the checkpoint holds
            the last generation.
    """
    if "e_l" in names:
        raise ValueError("`e_l` is set from the resting potential; do not search it.")
    check_search_settings(generations, population, restarts, screen, elite)
    chunk = integer_at_least(chunk, "`chunk`", 1)
    t0 = time.perf_counter()
    with resumable(" in the search", checkpoint):
        evaluate_cost = Evaluator(
            prepared, train, base, names, method, chunk, sigma, passive_guard
        )
        return _search(
            evaluate_cost, names, init, generations, population, restarts, elite,
            screen, seed, log, checkpoint, fingerprint, t0,
        )  # fmt: skip


def check_search_settings(generations, population, restarts, screen, elite=None):
    """A clear error for a search that could not run as asked (before any
    simulation); ``elite`` is not checked when ``None``."""
    integer_at_least(generations, "`generations`", 0)
    integer_at_least(restarts, "`restarts`", 1)
    integer_at_least(screen, "`screen`", 0)
    population = integer_at_least(population, "`population`", 2)
    if elite is None:
        return
    real_in(elite, "`elite`", "a fraction in (0, 1]", lambda x: 0.0 < x <= 1.0)
    if max(int(population * elite), 2) > population:
        raise ValueError(
            f"`population` {population} is too small for `elite` {elite}: each "
            "generation keeps at least 2 candidates."
        )


def _search(
    evaluate_cost, names, init, generations, population, restarts, elite, screen,
    seed, log, checkpoint, fingerprint, t0,
) -> SearchResult:  # fmt: skip
    """The body of :func:`search` (there with Ctrl-C made resumable)."""
    rng = np.random.default_rng(seed)
    spread0 = np.array([SPREAD.get(n, 0.5) for n in names])
    lo, hi = search_box(names)
    n_elite = max(int(population * elite), 2)
    w = np.log(n_elite + 0.5) - np.log(np.arange(1, n_elite + 1))
    w /= w.sum()
    state = _load_search(checkpoint, fingerprint)
    if state is None:
        z = to_search_coordinates(init, names)[None]
        if screen:
            z = np.concatenate([z, lo + (hi - lo) * rng.random((screen, lo.size))])
        cost = _interruptible(evaluate_cost, z, checkpoint, "screen")
        best = int(np.argsort(cost)[0])  # NaN last
        n_gaussians = max(restarts, 1)
        state = _SearchState(
            generation=0,
            centres=np.repeat(z[best][None], n_gaussians, 0),
            spreads=np.repeat(spread0[None], n_gaussians, 0),
            best_cost=float(cost[best]),
            best_z=z[best].copy(),
            history=[float(cost[best])],
            evaluations=z.shape[0],
            elapsed_s=time.perf_counter() - t0,
        )
        _save_search(checkpoint, fingerprint, state, rng)
    else:
        rng.bit_generator.state = state.rng
        t0 -= state.elapsed_s
        if log is not None:
            log(f"resuming {checkpoint} at search generation {state.generation}")
    centres, spreads = state.centres, state.spreads
    best_cost, best_z = state.best_cost, state.best_z
    history, evaluations = list(state.history), state.evaluations
    for g in range(state.generation, generations):
        noise = rng.standard_normal((len(centres), population, lo.size))
        z = centres[:, None] + spreads[:, None] * noise
        z = np.clip(z, lo, hi)
        cost = _interruptible(
            evaluate_cost, z.reshape(-1, lo.size), checkpoint, f"generation {g + 1}"
        ).reshape(len(centres), population)
        evaluations += cost.size
        for r in range(len(centres)):
            order = np.argsort(cost[r])
            if cost[r, order[0]] < best_cost:
                best_cost, best_z = float(cost[r, order[0]]), z[r, order[0]].copy()
            top = z[r, order[:n_elite]]
            spreads[r] = 0.9 * np.sqrt(w @ (top - centres[r]) ** 2) + 0.1 * spreads[r]
            centres[r] = w @ top
        history.append(best_cost)
        state = _SearchState(
            g + 1, centres, spreads, best_cost, best_z, history, evaluations,
            time.perf_counter() - t0,
        )  # fmt: skip
        _save_search(checkpoint, fingerprint, state, rng)
        if log is not None:
            per = ", ".join(f"{c:.3g}" for c in cost.min(axis=1))
            log(
                f"search generation {g + 1}/{generations}: best cost {best_cost:.4g} "
                f"(restarts: {per}; {time.perf_counter() - t0:.0f} s)"
            )
    best = evaluate_cost.params(best_z)
    return SearchResult(
        params=jax.tree.map(lambda x: float(np.asarray(x)), best),
        cost=best_cost,
        history=tuple(history),
        evaluations=evaluations,
        elapsed_s=time.perf_counter() - t0,
    )


def fit_later_steps(
    prepared: Prepared,
    train: Sequence[int],
    fitted: Any,
    names: Sequence[str],
    *,
    generations: int = 6,
    population: int = 32,
    screen: int = 64,
    seed: int = 0,
    method: str = "rk4",
    chunk: int = 64,
    sigma: float = SIGMA_MV,
    passive_guard: bool = False,
    log: Callable[[str], Any] | None = None,
) -> tuple[Any, dict]:
    """Fit ``names`` to the later steps of the training sweeps
    (:attr:`Prepared.steps`), every other parameter fixed at ``fitted``'s values
    and ``e_l`` moved so that the resting potential stays ``fitted``'s: the
    search of :func:`search` (one Gaussian) on its cost (the analysis window)
    plus ``Σ_sweeps Σ_later steps ((n − n_d)/(1 + 0.1 n_d))²``, from one
    simulation of the whole sweeps.

    Args:
        prepared: the recording (:func:`prepare`); needs more than one step.
        train: training sweeps (indices in the file).
        fitted: the fit of the main step (scalar leaves).
        names: parameters to fit, e.g. :data:`LATER_STEPS` of the model.
        generations, population, screen, seed, method, chunk, sigma,
            passive_guard, log: as for :func:`search`.

    Returns:
        ``(params, info)``: ``fitted`` with ``names`` (and ``e_l``) changed if
        that lowered the cost, else ``fitted``; ``info`` has ``free``,
        ``cost_before`` (at ``fitted``), ``cost``, ``kept``, ``evaluations``,
        ``elapsed_s``.

    Raises:
        ValueError: ``prepared`` has a single step.
        FitInterrupted: on Ctrl-C (nothing of this stage is saved).
    """
    if len(prepared.steps) < 2:
        raise ValueError(
            "The recording has a single depolarising step: no later steps."
        )
    t0 = time.perf_counter()
    with resumable(" in the later-step fit"):
        evaluate_cost = _StepsEvaluator(
            prepared, train, fitted, names, method, chunk, sigma, passive_guard
        )
        before = evaluate_cost.cost_at(fitted)
        init = {n: float(getattr(fitted, n)) for n in names}
        init.update(  # a switched-off channel's conductance starts at START
            {n: START[n] for n in names if n in START and init[n] == 0.0}
        )
        found = _search(
            evaluate_cost,
            tuple(names),
            init,
            generations=generations,
            population=population,
            restarts=1,
            elite=0.2,
            screen=screen,
            seed=seed,
            log=None if log is None else (lambda line: log(f"later steps: {line}")),
            checkpoint=None,
            fingerprint="",
            t0=t0,
        )
    kept = found.cost < before
    info = {
        "free": list(names),
        "cost_before": before,
        "cost": min(found.cost, before),
        "kept": bool(kept),
        "evaluations": found.evaluations,
        "elapsed_s": time.perf_counter() - t0,
    }
    return (found.params if kept else fitted), info


class _SearchState(NamedTuple):
    """Where :func:`search` is: the next generation to draw and everything the
    remaining generations depend on (with the random generator's state)."""

    generation: int
    centres: np.ndarray  # (restarts, n_free), search coordinates
    spreads: np.ndarray  # (restarts, n_free)
    best_cost: float
    best_z: np.ndarray  # (n_free,)
    history: list  # best cost after the screen and each generation
    evaluations: int
    elapsed_s: float
    rng: dict | None = None  # numpy bit generator state (when loaded)


def _save_search(checkpoint, fingerprint: str, state: _SearchState, rng) -> None:
    if checkpoint is None:
        return
    meta = {
        "kind": "search",
        "fingerprint": fingerprint,
        "generation": state.generation,
        "best_cost": state.best_cost,
        "history": list(state.history),
        "evaluations": state.evaluations,
        "elapsed_s": state.elapsed_s,
        "rng": rng.bit_generator.state,
    }
    arrays = {
        "centres": state.centres,
        "spreads": state.spreads,
        "best_z": state.best_z,
    }
    save_checkpoint(checkpoint, meta, arrays)


def _load_search(checkpoint, fingerprint: str) -> _SearchState | None:
    loaded = None if checkpoint is None else load_checkpoint(checkpoint)
    if loaded is None:
        return None
    meta, arrays = loaded
    if meta.get("kind") != "search" or meta.get("fingerprint") != fingerprint:
        raise mismatched_checkpoint(
            checkpoint,
            "this checkpoint belongs to a different fit (data, settings or seed "
            "differ)",
            resume_option=False,
        )
    return _SearchState(
        generation=int(meta["generation"]),
        centres=arrays["centres"],
        spreads=arrays["spreads"],
        best_cost=_cost(meta["best_cost"]),
        best_z=arrays["best_z"],
        history=[_cost(c) for c in meta["history"]],
        evaluations=int(meta["evaluations"]),
        elapsed_s=float(meta["elapsed_s"]),
        rng=meta["rng"],
    )


def _cost(value) -> float:
    """A cost read back from JSON (where an infinite cost was written as null)."""
    return math.inf if value is None else float(value)


def _interruptible(evaluate_cost, z, checkpoint, where: str) -> np.ndarray:
    """``evaluate_cost(z)``, with Ctrl-C turned into :class:`FitInterrupted`."""
    with resumable(f" in the search ({where})", checkpoint):
        return evaluate_cost(z)
