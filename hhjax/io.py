"""Saving traces and reading parameter files.

Traces (from :func:`hhjax.simulate`, any model) go to ``.npz`` or ``.csv`` with
unit-bearing names: ``t_ms``, ``v_mV``, the gates by name (dimensionless), each
current as ``i_<channel>_uA_per_cm2`` (outward positive) and the injected current,
if given, as ``i_ext_uA_per_cm2`` (inward positive). A ``.npz`` keeps the batch
shape ``(samples, *batch)`` of each field; a ``.csv`` has one column per field and
cell, ``v_mV[3]`` (1-D batch) or ``v_mV[1,2]`` (2-D batch).

Parameter files are JSON or TOML, in either of two layouts::

    {"g_na": 100.0, "g_k": 30.0}                           # flat field -> number
    {"model": "hh", "params": {"g_na": 100.0, ...}, ...}   # as `fitting` writes

Field names are those of the model's parameter tuple (:class:`hhjax.HHParams`:
``g_na`` … in mS/cm², mV, µF/cm², °C); values are numbers or nested lists of
numbers (a batch). ``"model"`` names the model and its default parameters, a key
of :data:`hhjax.MODELS` (``"hh"``, ``"pospischil-rs"``, ...); other top-level keys
of the second layout (metadata such as a loss) are ignored. Fields a file does not
give keep the values of ``base`` (default: the named model's defaults; standard HH
in the modern convention if none is named). TOML needs Python ≥ 3.11
(``tomllib``) or the ``tomli`` package.

Recordings are read elsewhere (``hhjax.recordings``). The numerical core never
imports this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from jax.typing import ArrayLike

from hhjax._registry import MODELS, default_params
from hhjax.models.hh import HHParams, Trace

__all__ = [
    "apply_overrides",
    "column_name",
    "load_params",
    "load_trace",
    "read_params_file",
    "save_params",
    "save_trace",
    "trace_columns",
]

I_EXT_COLUMN = "i_ext_uA_per_cm2"


# ------------------------------------------------------------------------- traces
def column_name(field: str) -> str:
    """Unit-bearing name of a trace field: ``t -> t_ms``, ``v -> v_mV``,
    ``i_na -> i_na_uA_per_cm2``; gates (dimensionless) keep their name."""
    if field == "t":
        return "t_ms"
    if field == "v":
        return "v_mV"
    if field.startswith("i_"):
        return f"{field}_uA_per_cm2"
    return field


def trace_columns(trace: Any, i_ext: ArrayLike | None = None) -> dict[str, np.ndarray]:
    """The recorded fields of a trace (and ``i_ext``) by unit-bearing name.

    Args:
        trace: a trace tuple from :func:`hhjax.simulate`; fields not recorded
            (``None``) are left out.
        i_ext: the injected current, µA/cm², ``(samples,)`` or
            ``(samples, *batch)``; it must have one value per sample (pass
            ``i_ext[::stride]`` for a strided trace).

    Returns:
        ``{column name: array (samples, *batch)}``, ``t_ms`` first.

    Raises:
        ValueError: ``i_ext`` does not have one value per sample.
    """
    columns = {
        column_name(f): np.asarray(getattr(trace, f))
        for f in trace._fields
        if getattr(trace, f) is not None
    }
    if i_ext is not None:
        current = np.asarray(i_ext, dtype=float)
        n = columns["t_ms"].shape[0]
        if current.ndim < 1 or current.shape[0] != n:
            raise ValueError(
                f"`i_ext` must have one value per trace sample ({n}); got shape "
                f"{current.shape}."
            )
        columns[I_EXT_COLUMN] = current
    return columns


def _save_csv(columns: dict[str, np.ndarray], path: Path) -> None:
    header, data = [], []
    n = columns["t_ms"].shape[0]
    for name, values in columns.items():
        batch = values.shape[1:]
        if not batch:
            header.append(name)
            data.append(values.reshape(n, 1))
            continue
        for index in np.ndindex(*batch):
            header.append(f"{name}[{','.join(map(str, index))}]")
        data.append(values.reshape(n, -1))
    table = np.concatenate([d.astype(float) for d in data], axis=1)
    # Column names with commas are quoted, as CSV readers expect.
    quoted = [f'"{h}"' if "," in h else h for h in header]
    np.savetxt(
        path, table, delimiter=",", header=",".join(quoted), comments="", fmt="%.10g"
    )


def save_trace(trace: Any, path: str | Path, *, i_ext: ArrayLike | None = None) -> Path:
    """Write a trace to ``.npz`` or ``.csv`` (chosen by the suffix of ``path``).

    Args:
        trace: a trace tuple from :func:`hhjax.simulate` (any model, any batch).
        path: file to write; ``.npz`` keeps full precision and the batch shape,
            ``.csv`` writes 10 significant digits, one column per field and cell.
        i_ext: the injected current, µA/cm², one value per sample (optional).

    Returns:
        The path written.

    Raises:
        ValueError: unknown suffix, or ``i_ext`` of the wrong length.
    """
    path = Path(path)
    columns = trace_columns(trace, i_ext)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        np.savez(path, **columns)
    elif suffix == ".csv":
        _save_csv(columns, path)
    else:
        raise ValueError(
            f"Cannot save a trace as {path.name!r}: the suffix must be .npz or .csv."
        )
    return path


def load_trace(path: str | Path, trace_type: type | None = None) -> Any:
    """Read a trace written by :func:`save_trace` as ``.npz``.

    Args:
        path: the ``.npz`` file.
        trace_type: the model's trace tuple class; default :class:`hhjax.Trace`.

    Returns:
        ``(trace, i_ext)``: the trace tuple (fields not in the file are ``None``)
        and the injected current in µA/cm² (``None`` if not saved).

    Raises:
        ValueError: the file has columns that ``trace_type`` lacks, or no ``t_ms``.
    """
    if trace_type is None:
        trace_type = Trace
    with np.load(Path(path)) as data:
        columns = {name: data[name] for name in data.files}
    i_ext = columns.pop(I_EXT_COLUMN, None)
    by_column = {column_name(f): f for f in trace_type._fields}
    unknown = sorted(set(columns) - set(by_column))
    if unknown or "t_ms" not in columns:
        raise ValueError(
            f"{path}: columns {sorted(columns)} do not fit a {trace_type.__name__} "
            f"(expected t_ms and some of {sorted(by_column)})."
        )
    fields = {by_column[c]: values for c, values in columns.items()}
    return trace_type(**{f: fields.get(f) for f in trace_type._fields}), i_ext


# --------------------------------------------------------------------- parameters
def _parse_text(text: str, path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err}).") from None
    if suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            try:
                import tomli as tomllib
            except ModuleNotFoundError:
                raise ValueError(
                    f"{path}: reading TOML needs Python >= 3.11 or the 'tomli' "
                    "package (pip install tomli); or write the file as JSON."
                ) from None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path}: not valid TOML ({err}).") from None
    raise ValueError(
        f"{path}: a parameter file must end in .json or .toml; got {path.suffix!r}."
    )


def _number_or_array(name: str, value: Any, path: Path) -> Any:
    """A finite float, or a float array for a list; clear error otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, list)):
        raise ValueError(  # noqa: TRY004 (bad file content, not a bad argument)
            f"{path}: parameter {name!r} must be a number or a list of numbers; got "
            f"{value!r}."
        )
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(
            f"{path}: parameter {name!r} must be a number or a (regular) list of "
            f"numbers; got {value!r}."
        ) from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{path}: parameter {name!r} must be finite; got {value!r}.")
    return float(array) if array.ndim == 0 else array


def read_params_file(path: str | Path) -> tuple[str | None, dict[str, Any]]:
    """Read a JSON/TOML parameter file (see the module docstring for the layouts).

    Args:
        path: ``.json`` or ``.toml`` file.

    Returns:
        ``(model name or None, {field: float or float array})`` — field names are
        not yet checked against a model (see :func:`load_params`).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unknown suffix, a syntax error, a wrong layout, or a value that
            is not a finite number (or list of numbers).
    """
    path = Path(path)
    content = _parse_text(path.read_text(encoding="utf-8"), path)
    if not isinstance(content, Mapping):
        raise ValueError(  # noqa: TRY004 (bad file content, not a bad argument)
            f"{path}: expected an object/table of parameters at the top."
        )
    model = content.get("model")
    if model is not None and not isinstance(model, str):
        raise ValueError(f'{path}: "model" must be a model name; got {model!r}.')
    if "params" in content:
        values = content["params"]
        if not isinstance(values, Mapping):
            raise ValueError(
                f'{path}: "params" must map parameter names to numbers; got '
                f"{type(values).__name__}."
            )
    else:
        values = {k: v for k, v in content.items() if k != "model"}
    return model, {str(k): _number_or_array(k, v, path) for k, v in values.items()}


def apply_overrides(base: Any, overrides: Mapping[str, Any], source: str) -> Any:
    """``base._replace(**overrides)`` with an error naming unknown fields.

    Args:
        base: a parameter tuple (e.g. :class:`hhjax.HHParams`).
        overrides: ``{field: value}``.
        source: where the overrides came from, for the error message.

    Raises:
        ValueError: a name that is not a field of ``base``.
    """
    unknown = sorted(set(overrides) - set(base._fields))
    if unknown:
        raise ValueError(
            f"{source}: unknown parameter(s) {', '.join(unknown)} for "
            f"{type(base).__name__}; expected names among {', '.join(base._fields)}."
        )
    return base._replace(**overrides)


def resolve_params(
    model: str | None = None,
    params_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    convention: str = "modern",
) -> tuple[str, Any]:
    """Model name and parameters as the command line gives them.

    The model's defaults (``model``, else the file's ``"model"``, else ``"hh"``;
    ``convention="hh1952"`` for HH's 1952 / pyHH defaults), then the values of
    ``params_file`` (JSON/TOML), then ``overrides`` (units as the parameter type).

    Raises:
        ValueError: a missing or malformed file, a model that differs from the
            file's, an unknown model or field; the message names the option
            (``argument --params``, ``--model``, ``--convention``, ``--param``).
    """
    file_model, values = None, {}
    if params_file is not None:
        try:
            file_model, values = read_params_file(params_file)
        except FileNotFoundError:
            raise ValueError(
                f"argument --params: no such file {str(params_file)!r}"
            ) from None
        except ValueError as err:
            raise ValueError(f"argument --params: {err}") from None
    if model and file_model and model != file_model:
        raise ValueError(
            f"argument --model: {model!r} differs from the model {file_model!r} of "
            f"--params {params_file}"
        )
    name = model or file_model or "hh"
    if convention == "hh1952":
        if name != "hh":
            raise ValueError(
                f"argument --convention: hh1952 applies to model 'hh', not {name!r}"
            )
        base = HHParams.hh1952()
    else:
        try:
            base = default_params(name)
        except ValueError as err:
            option = "--model" if model else f"--params: {params_file}"
            raise ValueError(f"argument {option}: {err}") from None
    base = apply_overrides(base, values, f"argument --params: {params_file}")
    return name, apply_overrides(base, dict(overrides or {}), "argument --param")


def load_params(path: str | Path, base: Any = None) -> Any:
    """Parameters from a JSON/TOML file, on top of ``base``.

    Args:
        path: ``.json`` or ``.toml`` file (layouts in the module docstring).
        base: parameter tuple giving the fields the file leaves out, e.g.
            ``HHParams.hh1952()``; default: the default parameters of the model the
            file names (a key of :data:`hhjax.MODELS`, e.g. ``"hh"`` or
            ``"pospischil-rs"``), or :class:`hhjax.HHParams` (modern convention)
            if it names none.

    Returns:
        A parameter tuple of the model's type.

    Raises:
        ValueError: see :func:`read_params_file`; an unknown model name, or one
            whose parameters are not of the type of ``base``; a field the model
            does not have.
    """
    model_name, values = read_params_file(path)
    named = None
    if model_name is not None:
        try:
            named = default_params(model_name)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    if base is None:
        base = HHParams() if named is None else named
    elif named is not None and type(named) is not type(base):
        raise ValueError(
            f"{path}: the file is for model {model_name!r} "
            f"({type(named).__name__}), but the base parameters are "
            f"{type(base).__name__}."
        )
    return apply_overrides(base, values, str(path))


def _model_name(params: Any) -> str:
    names = [n for n, make in MODELS.items() if type(make()) is type(params)]
    if len(names) != 1:
        raise ValueError(
            f"Pass `model=` (one of {names}) to name the model of these "
            f"{type(params).__name__}."
        )
    return names[0]


def save_params(params: Any, path: str | Path, model: str | None = None) -> Path:
    """Write parameters as JSON, ``{"model": name, "params": {field: value}}``.

    The layout :func:`load_params` and ``hhjax simulate --params`` read. Array
    leaves are written as nested lists.

    Args:
        params: a parameter tuple (e.g. :class:`hhjax.HHParams`).
        path: the ``.json`` file to write.
        model: its name in :data:`hhjax.MODELS`; needed only where several names
            share the parameter type (``"pospischil-rs"`` / ``"pospischil-fs"``).

    Returns:
        The path written.

    Raises:
        ValueError: ``model`` missing where ambiguous or unknown, or a
            non-finite value.
    """
    path = Path(path)
    if model is None:
        model = _model_name(params)
    elif type(default_params(model)) is not type(params):
        raise ValueError(
            f"`model` {model!r} does not take {type(params).__name__} parameters."
        )
    values = {}
    for name, value in params._asdict().items():
        array = np.asarray(value, dtype=float)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"Parameter {name!r} is not finite: {value}.")
        values[name] = float(array) if array.ndim == 0 else array.tolist()
    document = {"model": model, "params": values}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path
