"""The real-cell fit: :func:`fit_recording` (prepare, choose sweeps, search,
polish, later steps, standard errors; checkpointed and resumable) with its result
:class:`RealFit`, and :func:`predict_recording` (fitted parameters simulated and
scored on a recording).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import operator
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import hhjax
from fitting._interrupt import in_worker, resumable
from fitting._io import check_checkpoint_path
from fitting._params import ParamSpace, integer_at_least, positive_finite, real_in
from fitting.protocol._evaluate import evaluate, simulate_sweeps
from fitting.protocol._parameters import initial_values
from fitting.protocol._polish import (
    SpikeFeatureLoss,
    laplace_errors,
    polish,
    polish_bounds,
)
from fitting.protocol._prepare import (
    Prepared,
    check_cell_values,
    prepare,
    recording_digest,
)
from fitting.protocol._search import (
    Evaluator,
    SearchResult,
    check_search_settings,
    fit_later_steps,
    search,
)
from fitting.protocol._settings import (
    BOUNDS,
    FREE,
    HYPERPOLARISED,
    LATER_STEPS,
    SIGMA_MV,
)
from fitting.protocol._sweeps import select_sweeps, spike_counts
from hhjax.recordings import Recording, RecordingError


@dataclasses.dataclass(frozen=True, eq=False)
class RealFit:
    """A fitted real cell (see :func:`fit_recording`).

    Attributes:
        params: fitted parameters (scalar leaves).
        model: model name in :data:`hhjax.MODELS`.
        free: fitted fields (``e_l`` included: set by the resting potential in
            the search, free in the polish).
        prepared: the prepared recording.
        train: training sweeps (indices in the file).
        search: the search outcome.
        polish: the :class:`fitting.FitResult` of the polish, or ``None``.
        polish_kept: whether the polish improved the search cost and was kept.
        train_cost: search cost of ``params`` on the training sweeps (main
            step).
        uncertainty: Laplace estimate at ``params`` (:class:`fitting.Uncertainty`)
            for :class:`SpikeFeatureLoss` on the training sweeps, or ``None``.
        method: integrator.
        timings: wall time of each phase, s.
        later: the ``info`` of :func:`fit_later_steps`, or ``None`` (not run).
        options: the settings of the fit (search size, weights, guard, seed).
    """

    params: Any
    model: str
    free: tuple[str, ...]
    prepared: Prepared
    train: tuple[int, ...]
    search: SearchResult
    polish: Any
    polish_kept: bool
    train_cost: float
    uncertainty: Any
    method: str
    timings: dict
    later: dict | None = None
    options: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        """The ``params.json`` document: the :class:`fitting.FitResult` layout
        (``model``, ``params``, ``units``, ``free``, ``uncertainty``) plus
        ``protocol`` (cell properties, corrections, window, training sweeps,
        search and polish summaries, timings)."""
        from fitting._params import unit_of
        from fitting._results import FORMAT, params_dict, versions

        values = params_dict(self.params)
        doc = {
            "format": FORMAT,
            "model": self.model,
            "convention": hhjax.voltage_convention(self.params),
            "params": values,
            "units": {k: unit_of(k) for k in values},
            "free": list(self.free),
            "loss": {
                "name": "spike-features",
                "final": self.train_cost,
                "stages": ["search", "polish"]
                + (["later steps"] if self.later is not None else []),
            },
            "data": {
                "source": self.prepared.recording.source,
                "digest": recording_digest(self.prepared.raw),
                "sweeps": list(self.train),
            },
            "settings": {"method": self.method, "protocol": "real-cell"},
            "protocol": {
                **self.prepared.settings(),
                "training_sweeps": list(self.train),
                "search": {
                    "cost": self.search.cost,
                    "history": list(self.search.history),
                    "evaluations": self.search.evaluations,
                },
                "polish_kept": self.polish_kept,
                "later_steps": self.later,
                "options": self.options,
                "timings_s": self.timings,
            },
            "elapsed_s": float(sum(self.timings.values())),
            "versions": versions(),
        }
        if self.uncertainty is not None:
            doc["uncertainty"] = self.uncertainty.to_dict(
                tuple(unit_of(n) for n in self.uncertainty.names)
            )
        return doc

    def save(self, path) -> Any:
        """Write :meth:`to_dict` as JSON (atomically); readable by
        :func:`fitting.load_result`, ``hhjax predict`` and ``hhjax simulate``.
        (:func:`fit_to_directory` adds the loader's cell selectors, e.g.
        ``data.dac``, which the fit itself does not know.)"""
        from fitting._io import write_json_atomic

        return write_json_atomic(path, self.to_dict())

    def summary(self) -> str:
        """Parameters with standard errors, one per line."""
        from fitting._params import unit_of
        from fitting._results import parameter_line

        lines = [
            f"{self.model}: training sweeps {list(self.train)}, "
            f"cost {self.train_cost:.4g}, {sum(self.timings.values()):.0f} s"
        ]
        unc = self.uncertainty
        values = [float(np.asarray(getattr(self.params, n))) for n in self.free]
        space = ParamSpace.create(self.params, self.free, polish_bounds(self.free))
        at_bounds = space.at_bounds(values)
        for k, (name, value) in enumerate(zip(self.free, values, strict=True)):
            known = unc is not None and name in unc.names
            lines.append(
                parameter_line(
                    name,
                    value,
                    unit_of(name),
                    digits=5,
                    se=unc.std_errors[unc.names.index(name)] if known else None,
                    undetermined=known and name in unc.undetermined,
                    bounds=(
                        (space.lower[k], space.upper[k]) if name in at_bounds else None
                    ),
                    advice="the edge of the protocol's search box",
                )
            )
        return "\n".join(lines)


def _polish_verdict(cost_polished, cost, sweeps, failed) -> str:
    """Whether the polish is kept, and why not: a higher cost, or sweeps (of
    ``sweeps``, the file's indices) whose simulation failed (``failed``)."""
    if failed.any():
        bad = ", ".join(str(s) for s, f in zip(sweeps, failed, strict=True) if f)
        return f"not kept: its simulation is non-finite on sweep(s) {bad}"
    return "kept" if cost_polished <= cost else "not kept: its cost is higher"


def _training_cost(prepared, train, params, method, sigma, guard) -> float:
    ev = Evaluator(prepared, train, params, (), method, 1, sigma, guard)
    leaves = jax.tree.map(lambda x: jnp.asarray(x)[None], params)
    return float(np.asarray(in_worker(ev.cost_of, leaves)).ravel()[0])


def _check_free(base: Any, names: Sequence[str]) -> None:
    """Refuse, before any simulation, what the search or the polish would fail
    on later: unknown or repeated names, or names without a search box."""
    unsearchable = [n for n in names if n in base._fields and n not in BOUNDS]
    if unsearchable:
        raise ValueError(
            f"No search box for {', '.join(unsearchable)}: the real-cell protocol "
            f"searches only {', '.join(n for n in BOUNDS if n != 'e_l')} "
            "(e_l is set from the resting potential)."
        )
    ParamSpace.create(base, (*names, "e_l"), polish_bounds((*names, "e_l")))


def checkpoint_files(checkpoint) -> tuple[Path | None, Path | None]:
    """The files :func:`fit_recording` keeps its progress in: ``checkpoint``
    (the search) and ``*.polish.npz`` next to it (the polish, a
    :func:`fitting.fit` checkpoint); ``(None, None)`` without a checkpoint."""
    if checkpoint is None:
        return None, None
    path = Path(checkpoint)
    stem = path.name[: -len(".npz")] if path.name.endswith(".npz") else path.name
    return path, path.with_name(stem + ".polish.npz")


def _fit_fingerprint(prepared, train, model, base, names, init, method, seed, options):
    """Digest of what a real-cell fit depends on (its checkpoint's identity)."""
    digest = hashlib.sha256(prepared.data(train).fingerprint().encode())
    settings = {
        "model": model,
        "train": list(train),
        "base": {k: float(np.asarray(v)) for k, v in base._asdict().items()},
        "names": list(names),
        "init": {k: float(v) for k, v in init.items()},
        "method": method,
        "seed": seed,
        "options": [float(x) for x in options],
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


# Free parameters that the subthreshold response alone determines.
PASSIVE = frozenset({"g_l", "e_l", "c_m"})


def _warn_without_spikes(
    prepared: Prepared, counts: np.ndarray, train: Sequence[int]
) -> None:
    """A warning when no training sweep spikes in its step: the fit then has
    nothing to determine the spiking parameters (their standard errors come out
    huge, the model's rheobase anywhere)."""
    spiking = [s for s, n in zip(prepared.sweeps, counts, strict=True) if n > 0]
    if not spiking or any(s in spiking for s in train):
        return
    where = f"{prepared.recording.source}: " if prepared.recording.source else ""
    warnings.warn(
        f"{where}none of the training sweeps {list(train)} spikes in its step, so "
        "the spiking parameters are not determined by them; include sweeps that "
        f"spike (here {', '.join(map(str, spiking[:3]))}"
        f"{', ...' if len(spiking) > 3 else ''}).",
        UserWarning,
        stacklevel=3,
    )


def _check_sweeps(prepared: Prepared, sweeps: Sequence[int]) -> tuple[int, ...]:
    """The training sweeps as file indices, refused (before any simulation) if
    the recording lacks one, lists one twice, or none is given."""
    available = prepared.sweeps
    try:
        train = tuple(operator.index(s) for s in sweeps)
    except TypeError:
        raise ValueError(
            f"`sweeps` must be sweep indices (integers, 0-based); got {sweeps!r}."
        ) from None
    first, last = available[0], available[-1]
    span = (
        f"{first}..{last}"
        if available == tuple(range(first, last + 1))
        else ", ".join(map(str, available))
    )
    where = f"{prepared.recording.source}: " if prepared.recording.source else ""
    # An .abf file's sweeps are its 0-based indices, an .nwb file's its sweep
    # numbers, which need not start at 0.
    numbering = "0-based" if first == 0 else "the file's sweep numbers"
    missing = [s for s in train if s not in available]
    if missing:
        raise ValueError(
            f"{where}no sweep {', '.join(map(str, missing))}; the training sweeps "
            f"must be among the recording's sweeps {span} ({numbering})."
        )
    twice = sorted({s for s in train if train.count(s) > 1})
    if twice or not train:
        raise ValueError(
            "`sweeps` must list distinct sweeps of the recording "
            f"({span}, {numbering}); got {list(train)}."
        )
    return train


def fit_recording(
    recording: Recording | Prepared,
    model: str = "pospischil-rs",
    *,
    sweeps: Sequence[int] | None = None,
    n_train: int = 6,
    include_negative: bool | None = None,
    hyperpolarised: bool | None = None,
    free: Sequence[str] | None = None,
    params: Any = None,
    generations: int = 16,
    population: int = 64,
    restarts: int = 4,
    screen: int = 512,
    polish_iterations: int = 8,
    polish_starts: int = 4,
    sigma_mv: float = SIGMA_MV,
    passive_guard: bool | None = None,
    later_steps: bool | None = None,
    seed: int = 0,
    method: str = "rk4",
    log: Callable[[str], Any] | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> RealFit:
    """Fit a model to some sweeps of a current-clamp step recording.

    Args:
        recording: the loaded recording (pA; prepared with :func:`prepare`'s
            defaults), a path to one (:func:`hhjax.recordings.load_recording`)
            or a :class:`Prepared`.
        model: ``"pospischil-rs"`` or ``"pospischil-fs"`` (or another name of
            :data:`hhjax.MODELS` with ``free`` given).
        sweeps: training sweeps (file indices); default :func:`select_sweeps` with
            ``n_train``.
        n_train: number of training sweeps when ``sweeps`` is ``None`` (>= 2;
            all of them when the recording has fewer).
        hyperpolarised: also search :data:`HYPERPOLARISED` of the model (RS:
            I_h and the persistent Na⁺ current; FS: the inward rectifier) and
            train on the most hyperpolarising step;
            ``None``: on when the scored step family has hyperpolarising steps,
            ``free`` is not given and the model has such parameters.
        include_negative: let :func:`select_sweeps` add the most hyperpolarising
            step; ``None``: when ``hyperpolarised``.
        free: parameters to search (default :data:`FREE` of the model; ``e_l`` is
            always set by the resting potential and refined in the polish); a
            string is one name.
        params: starting/fixed parameters (default the model's defaults).
        generations, population, restarts, screen: search size
            (:func:`search`).
        polish_iterations, polish_starts: LM polish (0 iterations: none).
        sigma_mv: weight of the subthreshold RMSE in the cost (see
            :func:`feature_cost`).
        passive_guard: keep the model's steady response to the hyperpolarising
            step within a factor 2 of the measured one (:func:`search`);
            ``None``: on when the scored step family has hyperpolarising steps
            (the model must respond sanely to them), off otherwise.
        later_steps: after the polish, fit :data:`LATER_STEPS` of the model to
            the spike counts in every step of the training sweeps
            (:func:`fit_later_steps`; kept only if it lowers that cost);
            ``None``: on when the recording repeats its step
            (:attr:`Prepared.steps`), ``free`` is not given and the model has
            such parameters. Their standard errors are not estimated.
        seed: seed of search and polish.
        method: integrator (step = sampling interval); ``"rk4"`` by default so
            that ``hhjax simulate``/``predict`` reproduce the fitted behaviour.
        log: called with progress lines.
        checkpoint: file to save progress to (``.npz``): the search after every
            generation, the polish in a second file next to it
            (:func:`checkpoint_files`). A fit given the checkpoint of the same
            fit (same data and settings) resumes from it and ends where an
            uninterrupted one would; one of another fit is refused. Delete the
            files once the result is saved.

    Returns:
        A :class:`RealFit`.

    Raises:
        ValueError: before any simulation: a ``recording`` of another type,
            training sweeps not in the recording (or repeated), an ``n_train``
            below 2, a negative or fractional ``seed``, a
            ``sigma_mv`` <= 0, a ``checkpoint`` in a directory that cannot be
            written, unknown or unsearchable ``free`` names,
            ``polish_iterations`` of 1 (the polish's first iteration only
            evaluates its start, see :func:`fitting.fit`), ``later_steps`` true
            for a recording with one step or a model without
            :data:`LATER_STEPS`.
        FitInterrupted: on Ctrl-C (the checkpoint, if any, holds the progress;
            the later-step fit is redone on resuming).
    """
    if isinstance(recording, (str, os.PathLike)):
        recording = hhjax.recordings.load_recording(recording)
    if not isinstance(recording, (Recording, Prepared)):
        raise ValueError(
            "`recording` must be a hhjax.recordings.Recording, a Prepared or a "
            f"path to a recording file; got {type(recording).__name__}."
        )
    if isinstance(free, str):
        free = (free,)
    check_search_settings(generations, population, restarts, screen)
    integer_at_least(seed, "`seed`", 0)
    integer_at_least(n_train, "`n_train`", 2)
    real_in(sigma_mv, "`sigma_mv`", "a finite number of mV > 0", positive_finite)
    checkpoint = check_checkpoint_path(checkpoint)
    if not (isinstance(polish_iterations, int) and polish_iterations >= 0) or (
        polish_iterations == 1
    ):
        raise ValueError(
            "`polish_iterations` must be 0 (no polish) or an integer >= 2 (the "
            "first Levenberg-Marquardt iteration only evaluates the start); got "
            f"{polish_iterations!r}."
        )
    timings = {}
    t0 = time.perf_counter()
    with jax.enable_x64(True), resumable("", *checkpoint_files(checkpoint)):
        prepared = recording if isinstance(recording, Prepared) else prepare(recording)
        base = hhjax.default_params(model) if params is None else params
        names = tuple(FREE.get(model, ()) if free is None else free)
        names = tuple(n for n in names if n != "e_l")
        if not names:
            raise ValueError(f"No free parameters for model {model!r}; pass `free`.")
        _check_free(base, names)
        has_negative = bool(np.any(prepared.amplitudes < 0))
        if hyperpolarised is None:
            hyperpolarised = has_negative and free is None and model in HYPERPOLARISED
        if hyperpolarised:
            names += tuple(n for n in HYPERPOLARISED.get(model, ()) if n not in names)
        if include_negative is None:
            include_negative = hyperpolarised
        counts = spike_counts(prepared)
        if sweeps is None:
            rows = select_sweeps(prepared.amplitudes, counts, n_train, include_negative)
            sweeps = [prepared.sweeps[r] for r in rows]
        train = _check_sweeps(prepared, sweeps)
        if set(names) - PASSIVE:  # spiking parameters are free
            _warn_without_spikes(prepared, counts, train)
        init = initial_values(prepared, base, names, train)
        if passive_guard is None:
            passive_guard = has_negative
        later_names = LATER_STEPS.get(model, ())
        if later_steps is None:
            later_steps = len(prepared.steps) > 1 and free is None and bool(later_names)
        elif later_steps and (len(prepared.steps) < 2 or not later_names):
            raise ValueError(
                "`later_steps` needs a recording that repeats its step and a model "
                f"with later-step parameters ({', '.join(LATER_STEPS)}); "
                f"{prepared.recording.source or 'the recording'} has "
                f"{len(prepared.steps)} step(s), the model is {model!r}."
            )
        if log is not None:
            log(f"training sweeps {list(train)}; start {init}")
        timings["prepare_s"] = time.perf_counter() - t0
        search_file, polish_file = checkpoint_files(checkpoint)
        fingerprint = _fit_fingerprint(
            prepared, train, model, base, names, init, method, seed,
            [generations, population, restarts, screen, sigma_mv, passive_guard,
             polish_iterations, polish_starts],
        )  # fmt: skip
        found = search(
            prepared,
            train,
            base,
            names,
            init,
            generations=generations,
            population=population,
            restarts=restarts,
            screen=screen,
            seed=seed,
            sigma=sigma_mv,
            passive_guard=passive_guard,
            method=method,
            log=log,
            checkpoint=search_file,
            fingerprint=fingerprint,
        )
        timings["search_s"] = found.elapsed_s
        best, cost, polished, kept = found.params, found.cost, None, False
        all_free = (*names, "e_l")
        t1 = time.perf_counter()
        if polish_iterations > 0:
            polished, loss, data = polish(
                prepared,
                train,
                found.params,
                all_free,
                polish_iterations,
                polish_starts,
                seed,
                method,
                polish_file,
            )
            cost_polished = _training_cost(
                prepared, train, polished.params, method, sigma_mv, passive_guard
            )
            failed = in_worker(simulate_sweeps, prepared, polished.params, method)[1]
            stable = not failed.any()
            if log is not None:
                log(
                    f"polish: cost {cost_polished:.4g} (search {cost:.4g}); "
                    + _polish_verdict(cost_polished, cost, prepared.sweeps, failed)
                )
            if cost_polished <= cost and stable:
                best, cost, kept = polished.params, cost_polished, True
        else:
            data = prepared.data(train)
            loss = SpikeFeatureLoss(
                counts=tuple(
                    int(c) for c in counts[[prepared.sweeps.index(s) for s in train]]
                )
            )
        timings["polish_s"] = time.perf_counter() - t1
        later = None
        if later_steps:
            best, later = fit_later_steps(
                prepared, train, best, later_names, seed=seed, method=method,
                sigma=sigma_mv, passive_guard=passive_guard, log=log,
            )  # fmt: skip
            timings["later_steps_s"] = later["elapsed_s"]
            if later["kept"]:
                cost = _training_cost(
                    prepared, train, best, method, sigma_mv, passive_guard
                )
        t2 = time.perf_counter()
        unc = in_worker(laplace_errors, loss, data, best, all_free, method)
        timings["uncertainty_s"] = time.perf_counter() - t2
    if later is not None and later["kept"]:
        all_free = (*all_free, *later_names)
    return RealFit(
        params=best,
        model=model,
        free=all_free,
        prepared=prepared,
        train=train,
        search=found,
        polish=polished,
        polish_kept=kept,
        train_cost=cost,
        uncertainty=unc,
        method=method,
        timings=timings,
        later=later,
        options={
            "generations": generations,
            "population": population,
            "restarts": restarts,
            "screen": screen,
            "polish_iterations": polish_iterations,
            "polish_starts": polish_starts,
            "sigma_mv": sigma_mv,
            "passive_guard": passive_guard,
            "later_steps": later_steps,
            "hyperpolarised": hyperpolarised,
            "include_negative": include_negative,
            "seed": seed,
        },
    )


def predict_recording(
    params: Any,
    recording: Recording,
    *,
    document: dict | None = None,
    same_baseline: bool = False,
    method: str = "rk4",
    train: Sequence[int] = (),
) -> tuple[dict, np.ndarray, Prepared]:
    """Score fitted parameters on a recording (held-out sweeps or another file).

    Args:
        params: fitted parameters.
        recording: the recording (pA).
        document: the fit's ``params.json`` document; its ``protocol`` block gives
            the cell capacitance (same cell: same area) and resting potential,
            and the series resistance used when the recording has no
            hyperpolarising step to measure its own on.
        same_baseline: bring the baselines to the fit's (``baseline_mV`` of its
            ``protocol`` block; older files: its resting potential) instead of the
            recording's own median (another file of the same cell).
        method: integrator.
        train: sweeps to mark as training.

    Returns:
        ``(metrics document, model V (n_sweeps, n_samples), prepared)``.
    """
    protocol = (document or {}).get("protocol", {})
    c_pf = protocol.get("c_pF")
    r_series = protocol.get("series_resistance_MOhm")
    try:  # the fit's values, checked here to name where they came from
        check_cell_values(
            c_pf, r_series, ("protocol.c_pF", "protocol.series_resistance_MOhm")
        )
    except RecordingError as err:
        raise RecordingError(f"the fit's parameter file: {err}") from None
    v_ref = None
    if same_baseline:
        v_ref = protocol.get("baseline_mV")
        v_ref = protocol.get("v_rest_mV") if v_ref is None else v_ref
    with jax.enable_x64(True):
        try:
            # The series resistance of this recording (access changes between
            # recordings), measured on its hyperpolarising step ...
            prepared = prepare(recording, c_pf=c_pf, v_ref=v_ref)
        except RecordingError:
            if c_pf is None or r_series is None:
                raise
            # ... or, without such a step, the fit's.
            prepared = prepare(
                recording, c_pf=c_pf, series_resistance=r_series, v_ref=v_ref
            )
        # In a worker thread (it compiles): Ctrl-C stops the wait.
        doc, v_model = in_worker(evaluate, prepared, params, train, method=method)
    return doc, v_model, prepared
