"""The result of a fit and its JSON file (``params.json``)."""

from __future__ import annotations

import dataclasses
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

import hhjax
import hhjax.io
from fitting._io import write_json_atomic
from fitting._params import ParamSpace, unit_of
from fitting._uncertainty import NOT_CONVERGED_GAIN, Uncertainty

FORMAT = "hhjax-fit/1"


def versions() -> dict[str, str]:
    """Versions of the packages that produced a result."""
    out = {"python": platform.python_version(), "hhjax": hhjax.__version__}
    for name in ("jax", "jaxlib", "optax", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "?"
    return out


def model_name(params: Any) -> str:
    """Name of the model of ``params`` in :data:`hhjax.MODELS` (the key whose
    default parameters are of the same type and differ from ``params`` in the
    fewest fields)."""
    best, best_diff = None, None
    for name in hhjax.model_names(params):
        defaults = hhjax.MODELS[name]()
        diff = sum(
            not np.array_equal(np.asarray(a), np.asarray(b))
            for a, b in zip(defaults, params, strict=True)
        )
        if best_diff is None or diff < best_diff:
            best, best_diff = name, diff
    if best is None:
        raise ValueError(
            f"{type(params).__name__} is not the parameter type of a model in "
            f"hhjax.MODELS ({', '.join(hhjax.MODELS)})."
        )
    return best


def params_dict(params: Any) -> dict[str, float]:
    """``{field: float}`` of a parameter tuple with scalar leaves."""
    return {k: float(np.asarray(v)) for k, v in params._asdict().items()}


@dataclasses.dataclass(frozen=True, eq=False)
class FitResult:
    """What a fit found, for all starts, and how it got there.

    Attributes:
        params: best parameters (the model's tuple, Python floats).
        model: the model's name in :data:`hhjax.MODELS` (e.g. ``"hh"``).
        free: fitted field names; ``units`` their units.
        values: best value of each free field, ``{name: value}``.
        losses: final loss of each start (last stage), ``(n_starts,)``; ``inf``
            for a start that failed (non-finite simulation).
        best: index of the best start.
        start_values, final_values: ``(n_starts, n_free)`` physical values.
        loss_history: ``(n_records, n_starts)``: loss at iteration 0 of each stage
            and after every iteration.
        value_history: ``(n_records, n_starts, n_free)``: the values there.
        stage_of: ``(n_records,)`` stage index of each record.
        record_times: ``(n_records,)`` seconds since the fit began when each
            record was taken (compilation included).
        stage_labels: description of each stage (e.g. ``"2 ms windows"``).
        uncertainty: Laplace estimate at the best start, or ``None``.
        loss_name, loss_unit: the loss (``"shooting"``, ...) and its unit.
        settings: the fit's settings (JSON-able).
        elapsed_s: wall time of the fit, s (over all sessions if resumed).
        resumed_at: number of history records already done when a checkpoint
            was resumed, or ``None``.
        timings: per stage run in this session: ``stage``, ``label``,
            ``iterations``, ``compile_s`` (seconds the fit waited for the stage's
            compilation: compiling it, or waiting for its compilation in the
            background while the previous stage ran; ~0 when that was done in
            time or the stage was compiled by an identical fit before),
            ``first_chunk_s`` (the first compiled chunk of iterations, without
            compilation) and ``total_s`` (the stage's iterations, without
            ``compile_s``).
        data_source: the data file (or ``"arrays"``); ``sweeps`` its sweep indices.
    """

    params: Any
    model: str
    free: tuple[str, ...]
    units: tuple[str, ...]
    values: dict[str, float]
    losses: np.ndarray
    best: int
    start_values: np.ndarray
    final_values: np.ndarray
    loss_history: np.ndarray
    value_history: np.ndarray
    stage_of: np.ndarray
    record_times: np.ndarray
    stage_labels: tuple[str, ...]
    uncertainty: Uncertainty | None
    loss_name: str
    loss_unit: str
    settings: dict
    elapsed_s: float
    resumed_at: int | None = None
    timings: tuple[dict, ...] = ()
    data_source: str = ""
    sweeps: tuple[int, ...] = ()

    @property
    def loss(self) -> float:
        """Final loss of the best start."""
        return float(self.losses[self.best])

    def at_bounds(self) -> list[str]:
        """Free parameters whose best value lies at one of its bounds
        (``settings["bounds"]``; within 0.1 % of the range, of the log range for a
        log-scaled field): the optimum may lie beyond, so widen that bound and fit
        again. Empty without recorded bounds."""
        bounds = (
            self.settings.get("bounds") if isinstance(self.settings, dict) else None
        )
        if not isinstance(bounds, dict) or set(bounds) != set(self.free):
            return []
        space = ParamSpace.create(self.params, self.free, bounds)
        return space.at_bounds([self.values[name] for name in self.free])

    def converged(self) -> bool | None:
        """Whether the best start reached an optimum: ``False`` when the last
        stage used all its iterations and one Gauss–Newton step from the result
        would still remove more than :data:`fitting._uncertainty.NOT_CONVERGED_GAIN`
        of the loss (``uncertainty.gauss_newton_gain``), ``True`` when it
        stopped before its limit (its own convergence test) or that step would
        gain less, ``None`` where this cannot be told (no finite gain, no
        recorded settings or history)."""
        plans = (
            self.settings.get("optimizer") if isinstance(self.settings, dict) else None
        )
        gain = (
            float("nan")
            if self.uncertainty is None
            else self.uncertainty.gauss_newton_gain
        )
        if not plans or len(self.stage_of) == 0 or not np.isfinite(gain):
            return None
        last = int(np.max(self.stage_of))
        # The last stage has a record per iteration and one where it ends.
        used = int(np.sum(self.stage_of == last)) - 1
        return used < int(plans[-1]["iterations"]) or gain <= NOT_CONVERGED_GAIN

    def convergence_note(self) -> str | None:
        """Why the best start stopped short of an optimum (:meth:`converged` is
        ``False``), else ``None``: its values and standard errors are then not
        those of an optimum."""
        if self.converged() is not False:
            return None
        plan = self.settings["optimizer"][-1]
        other = (
            ""
            if plan["kind"] == "lm"
            else " (or the default optimizer, Levenberg-Marquardt)"
        )
        return (
            f"the fit did not converge: its last stage ({self.stage_labels[-1]}) "
            f"used all {plan['iterations']} iterations, and one Gauss-Newton step "
            f"from the result would still lower the loss by "
            f"{100 * self.uncertainty.gauss_newton_gain:.2g} %, so the values and "
            f"standard errors are not those of an optimum; fit again with more "
            f"iterations{other}"
        )

    def to_dict(self) -> dict:
        """The ``params.json`` document (see ``docs/fitting.md``)."""
        params = params_dict(self.params)
        doc = {
            "format": FORMAT,
            "model": self.model,
            "convention": hhjax.voltage_convention(self.params),
            "params": params,
            "units": {k: unit_of(k) for k in params},
            "free": list(self.free),
            "loss": {
                "name": self.loss_name,
                "unit": self.loss_unit,
                "final": self.loss,
                "stages": list(self.stage_labels),
            },
            "starts": {
                "best": int(self.best),
                "losses": self.losses.tolist(),
                "initial": self.start_values.tolist(),
                "final": self.final_values.tolist(),
            },
            "history": {
                "stage": self.stage_of.tolist(),
                "seconds": np.round(self.record_times, 3).tolist(),
                "loss": self.loss_history.tolist(),
                "values": self.value_history.tolist(),
            },
            "data": {"source": self.data_source, "sweeps": list(self.sweeps)},
            "at_bounds": self.at_bounds(),
            "converged": self.converged(),
            "convergence_note": self.convergence_note(),
            "settings": self.settings,
            "elapsed_s": self.elapsed_s,
            "resumed_at_record": self.resumed_at,
            "timings": list(self.timings),
            "versions": versions(),
        }
        if self.uncertainty is not None:
            doc["uncertainty"] = self.uncertainty.to_dict(self.units)
        return doc

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON, atomically.

        Raises:
            ValueError: ``path`` does not end in ``.json`` (a ``.toml`` name would
                hold JSON that :func:`load_result` then cannot read).
        """
        if Path(path).suffix.lower() != ".json":
            raise ValueError(
                f"A fit result is saved as JSON: `path` must end in .json; got "
                f"{os.fspath(path)!r}."
            )
        return write_json_atomic(path, self.to_dict())

    def summary(self) -> str:
        """A few lines: the best values with standard errors, and the starts."""
        lines = [
            f"best of {len(self.losses)} starts: {self.loss_name} loss "
            f"{self.loss:.6g} {self.loss_unit} (start {self.best})"
        ]
        unc = self.uncertainty
        at_bounds = self.at_bounds()
        for k, (name, unit) in enumerate(zip(self.free, self.units, strict=True)):
            lines.append(
                parameter_line(
                    name,
                    self.values[name],
                    unit,
                    se=None if unc is None else unc.std_errors[k],
                    undetermined=unc is not None and name in unc.undetermined,
                    bounds=self.settings["bounds"][name] if name in at_bounds else None,
                    advice="widen it",
                )
            )
        finite = np.isfinite(self.losses)
        lines.append(
            f"  {int(finite.sum())}/{len(self.losses)} starts finished with a finite "
            f"loss; {self.elapsed_s:.1f} s"
        )
        note = self.convergence_note()
        if note is not None:
            lines.append(
                f"  NOT CONVERGED: {note.removeprefix('the fit did not converge: ')}"
            )
        return "\n".join(lines)


def parameter_line(
    name: str,
    value: float,
    unit: str,
    *,
    se: float | None = None,
    undetermined: bool = False,
    bounds: tuple[float, float] | None = None,
    advice: str = "",
    digits: int = 6,
) -> str:
    """One parameter's line of a fit summary: ``name = value unit ± se``, flagged
    when the data do not determine it and when it ends at a bound (``bounds``,
    with ``advice``)."""
    unit = "" if unit == "1" else f" {unit}"  # dimensionless: no unit shown
    text = f"  {name:>12} = {value:.{digits}g}{unit}"
    if se is not None:
        text += f" ± {se:.2g}" if np.isfinite(se) else " ± inf"
    if undetermined:
        text += "  (undetermined)"
    if bounds is not None:
        lo, hi = bounds
        text += f"  (at a bound of [{lo:g}, {hi:g}]{unit}" + (
            f": {advice})" if advice else ")"
        )
    return text


def load_result(path: str | os.PathLike) -> tuple[Any, dict]:
    """Read a ``params.json`` (or any JSON/TOML parameter file): the parameters
    (of the model it names) and the whole document.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a parameter file (see :func:`hhjax.io.load_params`).
    """
    params = hhjax.io.load_params(path)  # checks the suffix, syntax and values
    return params, hhjax.io.read_document(path)
