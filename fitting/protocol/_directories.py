"""Fit and predict to a directory (what ``hhjax fit`` / ``hhjax predict`` run on a
raw recording): parameter file, metrics and report figure; and which files the
command line hands to this protocol (:func:`wants_protocol`).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fitting._interrupt import in_worker
from fitting.protocol._evaluate import evaluate
from fitting.protocol._fit_recording import RealFit, fit_recording, predict_recording
from fitting.protocol._prepare import prepare, recording_digest
from fitting.protocol._report import save_report
from hhjax.recordings import SELECTORS, Recording, RecordingError

RAW_SUFFIXES = (".abf", ".nwb")


def fitted_on(document: dict, recording: Recording, data_path) -> bool:
    """Whether a fit's ``params.json`` document was fitted to ``recording``: by
    the stored digest, or for files written before it by the file name."""
    data = document.get("data", {})
    if data.get("digest") is not None:
        return data["digest"] == recording_digest(recording)
    return Path(data.get("source", "")).name == Path(data_path).name


def training_sweeps(
    document: dict, recording: Recording, data_path, log: Callable | None = None
) -> list:
    """The fit's training sweeps if ``recording`` is the one it was fitted to
    (:func:`fitted_on`), else none, and then ``log`` is told so (a converted
    copy of the file, e.g. ``.abf`` to ``.nwb``, has other samples in the last
    digits and counts as another recording)."""
    fitted = document.get("protocol", {}).get("training_sweeps", [])
    if not fitted or fitted_on(document, recording, data_path):
        return fitted
    if log is not None:
        source = Path(str(document.get("data", {}).get("source", "?"))).name
        log(
            f"{Path(data_path).name} is not the recording the fit was trained on "
            f"({source}), so every sweep counts as held out"
        )
    return []


def wants_protocol(path, document: dict | None = None) -> bool:
    """Whether ``hhjax fit``/``predict`` should use this protocol: the data is a
    raw whole-cell recording (``.abf``/``.nwb``, current in pA, capacitance
    unknown), or the parameter file came from it (has a ``protocol`` block)."""
    if document is not None and "protocol" in document:
        return True
    return Path(path).suffix.lower() in RAW_SUFFIXES


def _selection(data_path, given: dict, fitted: Any = None) -> dict:
    """Loader options that pick one cell's signals in a file
    (:data:`hhjax.recordings.SELECTORS`: an ``.abf`` file's ``channel`` and
    ``dac``, an ``.nwb`` file's ``electrode`` and ``stimulus_description``):
    those ``given`` (not ``None``),
    else those of the fit (``fitted``: the ``data`` block of its
    ``params.json``) that apply to this file type. Given for another file type,
    the loader refuses them."""
    keys = SELECTORS.get(Path(data_path).suffix.lower(), ())
    fitted = fitted if isinstance(fitted, dict) else {}
    chosen = {k: fitted.get(k) for k in keys}
    chosen.update({k: v for k, v in given.items() if v is not None})
    return {k: v for k, v in chosen.items() if v is not None}


def fit_to_directory(
    data_path,
    out_dir,
    model: str = "pospischil-rs",
    *,
    sweeps: Sequence[int] | None = None,
    params: Any = None,
    free: Sequence[str] | None = None,
    seed: int = 0,
    method: str = "rk4",
    log: Callable[[str], Any] | None = None,
    c_pf: float | None = None,
    series_resistance: float | None = None,
    channel: int | None = None,
    dac: int | None = None,
    electrode: str | None = None,
    stimulus_description: str | None = None,
    **options,
) -> RealFit:
    """Fit a recording file and write ``params.json``, ``metrics.json`` (every
    sweep, training ones marked) and ``report.png`` into ``out_dir``.

    What ``hhjax fit RECORDING.abf --model pospischil-rs --sweeps 8,12,16 --out
    DIR`` runs (into a staging directory). ``c_pf`` (pF) and
    ``series_resistance`` (MΩ) go to :func:`prepare` (default: measured on the
    hyperpolarising step; ``--c-pf``, ``--series-resistance``), ``channel``,
    ``dac`` (an ``.abf`` file's ADC channel and DAC, ``--channel``, ``--dac``)
    and ``electrode``, ``stimulus_description`` (an ``.nwb`` file's,
    ``--electrode``, ``--stimulus-description``) to
    :func:`hhjax.recordings.load_recording`, and are kept in ``params.json`` for
    ``hhjax predict``; ``options`` go to :func:`fit_recording`.
    """
    from fitting._io import write_json_atomic
    from hhjax.recordings import load_recording

    out_dir = Path(out_dir)
    given = {
        "channel": channel,
        "dac": dac,
        "electrode": electrode,
        "stimulus_description": stimulus_description,
    }
    selection = _selection(data_path, given)
    recording = load_recording(data_path, **selection)
    given = c_pf is not None or series_resistance is not None
    fit = fit_recording(
        prepare(recording, c_pf=c_pf, series_resistance=series_resistance)
        if given
        else recording,
        model,
        sweeps=sweeps,
        params=params,
        free=free,
        seed=seed,
        method=method,
        log=log,
        **options,
    )
    # Scored on the recording as the fit prepared it (its c_pf, series resistance
    # and baselines, given or measured); in a worker thread, as it compiles.
    prepared = fit.prepared
    doc, v_model = in_worker(evaluate, prepared, fit.params, fit.train, method=method)
    document = fit.to_dict()
    document["data"].update(selection)
    write_json_atomic(out_dir / "params.json", document)
    write_json_atomic(out_dir / "metrics.json", doc)
    title = f"{Path(data_path).name}: {model}, trained on sweeps {list(fit.train)}"
    save_report(out_dir / "report.png", prepared, doc, v_model, fit, title=title)
    return fit


def predict_to_directory(
    params_path,
    data_path,
    out_dir,
    *,
    same_baseline: bool = False,
    method: str | None = None,
    channel: int | None = None,
    dac: int | None = None,
    electrode: str | None = None,
    stimulus_description: str | None = None,
    log: Callable[[str], Any] | None = None,
) -> dict:
    """Score a ``params.json`` of this protocol on a recording file and write
    ``metrics.json`` and ``prediction.png`` into ``out_dir`` (what ``hhjax
    predict DIR/params.json RECORDING.abf --out DIR2`` runs). The fit's training
    sweeps are marked when the file is the one it was fitted to.

    ``channel`` and ``dac`` select an ``.abf`` file's ADC channel and DAC,
    ``electrode`` and ``stimulus_description`` an ``.nwb`` file's electrode and
    protocol (:func:`hhjax.recordings.load_recording`); each one not given is the fit's
    (``data.channel`` etc. of ``params.json``, written when the fit was given
    them) where it applies to this file type, else the loader's default;
    ``log`` is told when the fit's are used."""
    from fitting._io import write_json_atomic
    from fitting._results import load_result
    from hhjax.recordings import load_recording

    out_dir = Path(out_dir)
    params, document = load_result(params_path)
    method = method or document.get("settings", {}).get("method", "rk4")
    given = {
        "channel": channel,
        "dac": dac,
        "electrode": electrode,
        "stimulus_description": stimulus_description,
    }
    selection = _selection(data_path, given, document.get("data"))
    from_fit = {k: v for k, v in selection.items() if given[k] is None}
    for key, value in from_fit.items():
        kind = int if key in ("channel", "dac") else str
        if isinstance(value, bool) or not isinstance(value, kind):
            raise RecordingError(
                f"{params_path}: data.{key} must be "
                f"{'a name' if kind is str else 'an index (integer)'}; got {value!r}."
            )
    options = " ".join(
        f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in from_fit.items()
    )
    if from_fit and log is not None:
        log(f"reading the cell the fit read: {options} (from {params_path})")
    try:
        recording = load_recording(data_path, **selection)
    except RecordingError as err:
        if not from_fit:
            raise
        raise RecordingError(
            f"{err} ({options} came from the fit's {params_path}; give them to "
            "override.)"
        ) from None
    train = training_sweeps(document, recording, data_path, log)
    doc, v_model, prepared = predict_recording(
        params,
        recording,
        document=document,
        same_baseline=same_baseline,
        method=method,
        train=train,
    )
    doc["params_file"] = str(params_path)
    doc["data"] = {
        "source": str(data_path),
        "sweeps": list(prepared.sweeps),
        **selection,
    }
    write_json_atomic(out_dir / "metrics.json", doc)
    save_report(
        out_dir / "prediction.png",
        prepared,
        doc,
        v_model,
        title=f"{Path(params_path).name} on {Path(data_path).name}",
    )
    return doc
