"""Saving traces and reading parameter files; files that are never half-written.

Traces (from :func:`hhjax.simulate`, any model) go to ``.npz`` or ``.csv`` with
unit-bearing names: ``t_ms``, ``v_mV``, the gates by name (dimensionless), each
current as ``i_<channel>_uA_per_cm2`` (outward positive) and the injected current,
if given, as ``i_ext_uA_per_cm2`` (inward positive). A ``.npz`` keeps the batch
shape ``(samples, *batch)`` of each field and names the model (``model``: e.g.
``"hh"``, ``"pospischil"``); a ``.csv`` has one column per field and cell,
``v_mV[3]`` (1-D batch) or ``v_mV[1,2]`` (2-D batch). :func:`load_trace` reads
both.

Parameter files are JSON or TOML, in either of two layouts::

    {"g_na": 100.0, "g_k": 30.0}                           # flat field -> number
    {"model": "hh", "params": {"g_na": 100.0, ...}, ...}   # as `fitting` writes

Field names are those of the model's parameter tuple (:class:`hhjax.HHParams`:
``g_na`` … in mS/cm², mV, µF/cm², °C); values are numbers or nested lists of
numbers (a batch). ``"model"`` names the model and its default parameters, a key
of :data:`hhjax.MODELS` (``"hh"``, ``"pospischil-rs"``, ...); other top-level keys
of the second layout (metadata such as a loss) are ignored, except that every name
in a ``"free"`` list (the fitted fields) must be in ``"params"``. Fields a file
does not give keep the values of ``base`` (default: the named model's defaults;
standard HH in the modern convention if none is named). TOML needs Python ≥ 3.11
(``tomllib``) or the ``tomli`` package.

Every file is written atomically (:func:`write_bytes_atomic`): to a temporary name
in the same directory, flushed to disk and renamed over the target, so a crash or a
kill leaves the old file or the new one, never a torn one.

Recordings are read elsewhere (``hhjax.recordings``). The numerical core never
imports this module.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from jax.typing import ArrayLike

from hhjax._checks import check_params
from hhjax._model import _MODELS
from hhjax._registry import (
    default_params,
    model_names,
    unknown_fields_message,
)
from hhjax.models.hh import HHParams, Trace

__all__ = [
    "apply_overrides",
    "column_name",
    "json_safe",
    "load_params",
    "load_trace",
    "nearest_existing",
    "read_csv_table",
    "read_document",
    "read_npz",
    "read_params_file",
    "resolve_params",
    "save_params",
    "save_trace",
    "table_csv_text",
    "trace_columns",
    "umask_mode",
    "write_bytes_atomic",
    "write_figure_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

I_EXT_COLUMN = "i_ext_uA_per_cm2"
MODEL_KEY = "model"  # .npz entry naming the model of a saved trace (Model.name)
TRACE_SUFFIXES = (".npz", ".csv")
# A zip archive (what np.savez writes) starts with one of these; empty: the second.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


# ------------------------------------------------------------------ atomic writes
def nearest_existing(path: str | os.PathLike) -> Path:
    """``path`` or its nearest ancestor that exists: where a directory would be
    created below, or what is in the way of creating it (a file, or a dangling
    symbolic link, counts as existing). Relative paths stay relative (``.``
    exists)."""
    path = Path(path)
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def umask_mode(mode: int) -> int:
    """``mode`` as the process umask would leave it for a newly created file or
    directory (``tempfile`` creates 0600 / 0700 ones, private to the user)."""
    return mode & ~_umask()


def _umask() -> int:
    try:  # Linux: read it without changing it (other threads may create files)
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_bytes_atomic(path: str | os.PathLike, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically; returns the path.

    The bytes go to a temporary file in the same directory (created if needed),
    are flushed to disk and renamed over ``path`` (``os.replace``, atomic on POSIX
    and Windows); the file gets the mode a plain ``open`` would give a new file
    (an existing file's mode is not kept, and a symbolic link at ``path`` is
    replaced, not followed). On any error the temporary file is removed and
    ``path`` is left as it was.

    Raises:
        OSError: the directory cannot be created or written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # something in the way
        in_the_way = nearest_existing(path.parent)
        if in_the_way.is_dir():
            raise
        raise NotADirectoryError(
            f"cannot write {path}: {in_the_way} is not a directory"
        ) from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, umask_mode(0o666))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_figure_atomic(fig: Any, path: str | os.PathLike, *, dpi: float = 100) -> Path:
    """Save a matplotlib figure as PNG at ``path`` atomically (``dpi`` dots per
    inch); returns the path.

    Raises:
        ValueError: ``path`` does not end in ``.png`` (PNG bytes under another
            name would be a broken file of that type).
    """
    if Path(path).suffix.lower() != ".png":
        raise ValueError(
            f"A figure is written as PNG: the path must end in .png; got {path}."
        )
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return write_bytes_atomic(path, buffer.getvalue())


def write_json_atomic(path: str | os.PathLike, document: Any) -> Path:
    """Write a JSON document (indented, non-finite numbers as null) atomically."""
    return write_text_atomic(path, json.dumps(json_safe(document), indent=2) + "\n")


def json_safe(value: Any) -> Any:
    """A JSON-able copy of ``value``: NumPy and JAX arrays as (nested) lists, their
    scalars as Python numbers, and NaN/inf as ``None`` (JSON has no non-finite
    numbers)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if hasattr(value, "__array__"):  # a JAX array, without importing JAX here
        return json_safe(np.asarray(value))
    return value


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
            hint = ""
            every = current.shape[0] if current.ndim >= 1 else 0
            if every > n > 1 and every % n == 0:  # the current of a strided trace
                k = every // n
                hint = f" For a trace recorded with stride={k}, pass i_ext[::{k}]."
            raise ValueError(
                f"`i_ext` must have one value per trace sample ({n}); got shape "
                f"{current.shape}.{hint}"
            )
        columns[I_EXT_COLUMN] = current
    return columns


def _csv_text(columns: dict[str, np.ndarray]) -> str:
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
    return table_csv_text(table, ",".join(quoted))


def table_csv_text(table: np.ndarray, header: str, fmt: Any = "%.10g") -> str:
    """CSV text of a ``(rows, columns)`` table under one header line (``fmt`` as
    :func:`numpy.savetxt`'s, one format or one per column)."""
    buffer = io.StringIO()
    np.savetxt(buffer, table, delimiter=",", header=header, comments="", fmt=fmt)
    return buffer.getvalue()


def _trace_types() -> dict[str, type]:
    """``{Model.name: trace type}`` of the registered models (``"hh"``, ...)."""
    return {model.name: model.trace_type for model in _MODELS.values()}


def _npz_bytes(columns: dict[str, np.ndarray], trace_type: type) -> bytes:
    names = {t: n for n, t in _trace_types().items()}
    extra = {MODEL_KEY: np.array(names[trace_type])} if trace_type in names else {}
    buffer = io.BytesIO()
    np.savez(buffer, **columns, **extra)
    return buffer.getvalue()


def save_trace(trace: Any, path: str | Path, *, i_ext: ArrayLike | None = None) -> Path:
    """Write a trace to ``.npz`` or ``.csv`` (chosen by the suffix of ``path``).

    The file is written atomically (:func:`write_bytes_atomic`), exactly at
    ``path`` (whatever the case of its suffix).

    Args:
        trace: a trace tuple from :func:`hhjax.simulate` (any model, any batch).
        path: file to write; ``.npz`` keeps full precision, the batch shape and the
            model's name, ``.csv`` writes 10 significant digits, one column per
            field and cell.
        i_ext: the injected current, µA/cm², one value per sample (optional).

    Returns:
        The path written.

    Raises:
        ValueError: unknown suffix, or ``i_ext`` of the wrong length.
        OSError: the file cannot be written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TRACE_SUFFIXES:
        raise ValueError(
            f"Cannot save a trace as {path.name!r}: the suffix must be .npz or .csv."
        )
    columns = trace_columns(trace, i_ext)
    if suffix == ".npz":
        return write_bytes_atomic(path, _npz_bytes(columns, type(trace)))
    return write_text_atomic(path, _csv_text(columns))


def load_trace(path: str | Path, trace_type: type | None = None) -> Any:
    """Read a trace written by :func:`save_trace` (``.npz`` or ``.csv``).

    Args:
        path: the ``.npz`` or ``.csv`` file.
        trace_type: the model's trace tuple class (e.g. :class:`hhjax.Trace`);
            default: the model named in a ``.npz``, else the registered model whose
            trace has all the file's columns (:class:`hhjax.Trace` if it fits).

    Returns:
        ``(trace, i_ext)``: the trace tuple (fields not in the file are ``None``;
        arrays ``(samples, *batch)``) and the injected current in µA/cm²
        (``None`` if not saved).

    Raises:
        FileNotFoundError: no such file.
        ValueError: another suffix; an unreadable file; a model other than
            ``trace_type``'s or one not registered; columns that ``trace_type``
            lacks, or no ``t_ms``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TRACE_SUFFIXES:
        raise ValueError(
            f"{path}: a trace file must end in .npz or .csv; got {path.suffix!r}."
        )
    columns = read_npz(path, ".npz trace") if suffix == ".npz" else _read_csv(path)
    model = columns.pop(MODEL_KEY, None)
    i_ext = columns.pop(I_EXT_COLUMN, None)
    trace_type = _resolve_trace_type(
        trace_type, None if model is None else str(model), columns, path
    )
    by_column = {column_name(f): f for f in trace_type._fields}
    unknown = sorted(set(columns) - set(by_column))
    if unknown or "t_ms" not in columns:
        raise ValueError(
            f"{path}: columns {sorted(columns)} do not fit a {trace_type.__name__} "
            f"(expected t_ms and some of {sorted(by_column)})."
        )
    fields = {by_column[c]: values for c, values in columns.items()}
    return trace_type(**{f: fields.get(f) for f in trace_type._fields}), i_ext


def _resolve_trace_type(
    trace_type: type | None, model: str | None, columns: Mapping, path: Path
) -> type:
    """The trace type to load into: ``trace_type``, checked against the model the
    file names; else the named model's; else inferred from the columns."""
    types = _trace_types()
    if model is not None and model not in types:
        if trace_type is not None:
            return trace_type
        raise ValueError(
            f"{path}: the trace is of model {model!r}, which is not registered "
            f"(known: {', '.join(sorted(types))}); pass `trace_type=`."
        )
    if model is not None:
        if trace_type is not None and trace_type is not types[model]:
            raise ValueError(
                f"{path}: the trace is of model {model!r} ({types[model].__name__}), "
                f"not a {trace_type.__name__}."
            )
        return types[model]
    if trace_type is not None:
        return trace_type
    fits = [
        t for t in types.values() if set(columns) <= {column_name(f) for f in t._fields}
    ]
    if len(fits) == 1 or Trace in fits:
        return Trace if Trace in fits else fits[0]
    if fits:
        raise ValueError(
            f"{path}: columns {sorted(columns)} fit several models' traces "
            f"({', '.join(t.__name__ for t in fits)}); pass `trace_type=`."
        )
    return Trace  # fits none: load_trace's column check says what is wrong


def read_npz(path: str | os.PathLike, what: str = ".npz file") -> dict[str, np.ndarray]:
    """All arrays of a ``.npz`` archive, read without allowing pickled objects.

    Args:
        path: the file.
        what: what the file should be, for the error message (".npz trace").

    Returns:
        ``{name: array}``, fully read (the file is closed).

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming ``path``: it cannot be read (a directory, no
            permission); it is not a zip archive (``"not a .npz (zip) archive
            (...), so not a readable {what}"``: empty, a ``.npy``, a pickle, another
            format); or ``"not a readable {what} (...)"`` for a truncated or
            corrupt archive, or one that holds pickled objects.
    """
    path = Path(path)
    try:
        # Our own handle: np.load leaves its own open when the file is corrupt.
        fh = open(path, "rb")  # noqa: SIM115 (closed by the with below)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise ValueError(
            f"{path}: cannot read the file ({err.strerror or err}); expected a {what}."
        ) from None
    with fh:
        head = fh.read(4)
        # Else np.load would try a .npy, then a pickle, and suggest allowing it.
        if head not in _ZIP_MAGIC:
            found = f"it starts with {head!r}" if head else "the file is empty"
            raise ValueError(
                f"{path}: not a .npz (zip) archive ({found}), so not a readable {what}."
            )
        fh.seek(0)
        try:
            with np.load(fh, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: not a readable {what} ({err}).") from None


_CSV_COLUMN = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<index>\d+(?:,\d+)*)\])?$")


def read_csv_table(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """The header and the values of a CSV file with one header line.

    UTF-8, with or without a byte-order mark (Excel's "CSV UTF-8"); blank lines
    are skipped.

    Returns:
        ``(header, table)``: the column names (stripped) and a float64 array
        ``(rows, columns)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not UTF-8 text, or a row with another number of values than
            the header has or a value that is not a number (the message names
            the file and the 1-based line).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text CSV file.") from None
    header = [h.strip() for h in next(csv.reader(lines[:1]), [])]
    if not header:
        raise ValueError(f"{path}: empty CSV file (expected a header line).")
    if not any(line.strip() for line in lines[1:]):
        return header, np.empty((0, len(header)))
    try:  # fast path; on failure find the line to name
        table = np.loadtxt(lines[1:], delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError:
        table = None
    if table is None or table.shape[1] != len(header):
        _raise_bad_row(path, lines, len(header))
    return header, table


def _raise_bad_row(path: Path, lines: list[str], n_columns: int) -> None:
    """Raise a ``ValueError`` naming the first data line of a CSV that is not
    ``n_columns`` numbers."""
    other = [d for d in ";\t" if d in lines[0] or d in lines[1]]
    hint = (
        f" (the file looks separated by {other[0]!r}: values must be separated "
        "by commas)"
        if other
        else ""
    )
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        row = next(csv.reader([line]))
        if len(row) != n_columns:
            raise ValueError(
                f"{path}: line {number} has {len(row)} values; the header has "
                f"{n_columns} columns{hint}."
            )
        try:
            [float(x) for x in row]
        except ValueError as err:
            raise ValueError(
                f"{path}: line {number}: non-numeric value ({err}){hint}."
            ) from None
    raise ValueError(f"{path}: not a CSV table of numbers.")


def _read_csv(path: Path) -> dict[str, np.ndarray]:
    """Columns of a trace ``.csv`` by name, the cells of a batched field (``v_mV[0]``
    ... or ``v_mV[0,0]`` ...) put back into its shape ``(samples, *batch)``."""
    header, table = read_csv_table(path)
    cells: dict[str, list[tuple[tuple[int, ...], int]]] = {}
    for k, label in enumerate(header):
        match = _CSV_COLUMN.match(label.strip())
        if match is None:
            raise ValueError(f"{path}: column {label!r} is not NAME or NAME[i,...].")
        index = match["index"]
        key = () if index is None else tuple(int(i) for i in index.split(","))
        cells.setdefault(match["name"], []).append((key, k))
    columns = {}
    for name, parts in cells.items():
        indices = [key for key, _ in parts]
        shape = tuple(max(i) + 1 for i in zip(*indices, strict=False))
        if indices != list(np.ndindex(*shape)):
            raise ValueError(
                f"{path}: the columns of {name!r} must be one column, or one per "
                f"cell of its batch in order ({name}[0], {name}[1], ... or "
                f"{name}[0,0], {name}[0,1], ...); got {len(indices)} that are not."
            )
        values = table[:, [k for _, k in parts]]
        columns[name] = values.reshape((table.shape[0], *shape))
    return columns


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
    if array.size == 0:
        raise ValueError(
            f"{path}: parameter {name!r} is an empty list; expected a number or a "
            "non-empty list of numbers."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{path}: parameter {name!r} must be finite; got {value!r}.")
    return float(array) if array.ndim == 0 else array


def read_document(path: str | Path) -> Any:
    """The content of a ``.json`` or ``.toml`` file (a parameter file, or a fit's
    ``params.json`` with everything it records), parsed by its suffix.

    Raises:
        FileNotFoundError: no such file.
        OSError: another reason it cannot be read (a directory, no permission).
        ValueError: another suffix, text that is not UTF-8, or a syntax error (the
            message names the file).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(
            f"{path}: not UTF-8 text; expected a .json or .toml parameter file."
        ) from None
    return _parse_text(text, path)


def read_params_file(path: str | Path) -> tuple[str | None, dict[str, Any]]:
    """Read a JSON/TOML parameter file (see the module docstring for the layouts).

    Args:
        path: ``.json`` or ``.toml`` file.

    Returns:
        ``(model name or None, {field: float or float array})`` — field names are
        not yet checked against a model (see :func:`load_params`).

    Raises:
        FileNotFoundError: no such file.
        OSError: another reason it cannot be read (a directory, no permission).
        ValueError: unknown suffix, text that is not UTF-8, a syntax error, a wrong
            layout, or a value that is not a finite number (or a non-empty list of
            numbers).
    """
    path = Path(path)
    content = read_document(path)
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
        free = content.get("free")
        free = free if isinstance(free, list) else []
        missing = [n for n in free if isinstance(n, str) and n not in values]
        if missing:
            raise ValueError(
                f"{path}: fitted parameter(s) {', '.join(missing)} (listed in "
                '"free") missing from "params"; the model\'s default would take '
                'their place. Restore them or remove them from "free".'
            )
    else:
        values = {k: v for k, v in content.items() if k != "model"}
    try:
        return model, {str(k): _number_or_array(k, v, path) for k, v in values.items()}
    except ValueError as err:
        if "params" in content:
            raise
        raise ValueError(
            f'{str(err).rstrip(".")}; the file has no "params" object, so every '
            'top-level key but "model" is read as a parameter.'
        ) from None


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
        raise ValueError(unknown_fields_message(base, unknown, source))
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
        ValueError: a missing, unreadable or malformed file, a model that differs
            from the file's, an unknown model or field, a value that is not
            allowed (a negative conductance, ``c_m`` <= 0), or lists of values
            whose shapes do not broadcast together, ``convention="hh1952"`` with
            a ``v_shift`` other than 65 mV from the file or ``overrides``; the
            message names the option (``argument --params``, ``--model``,
            ``--convention``, ``--param``).
    """
    file_model, values = None, {}
    if params_file is not None:
        try:
            file_model, values = read_params_file(params_file)
        except FileNotFoundError:
            raise ValueError(
                f"argument --params: no such file {str(params_file)!r}"
            ) from None
        except OSError as err:  # a directory, no permission, ...
            raise ValueError(
                f"argument --params: cannot read {str(params_file)!r} "
                f"({err.strerror or err}); expected a .json or .toml file"
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
    source = f"argument --params: {params_file}"
    base = _checked(apply_overrides(base, values, source), source)
    source = "argument --param"
    params = _checked(apply_overrides(base, dict(overrides or {}), source), source)
    if convention == "hh1952" and not np.all(np.asarray(params.v_shift) == 65.0):
        raise ValueError(
            "argument --convention: hh1952 (v_shift = 65 mV) contradicts v_shift = "
            f"{np.asarray(params.v_shift).tolist()} mV set by --params or --param; "
            "leave out --convention, or v_shift"
        )
    return name, params


def _checked(params: Any, source: str) -> Any:
    """``params`` if :func:`hhjax.simulate` would take them, else a ``ValueError``
    naming ``source`` (finite values, conductances >= 0, ``c_m`` > 0, batch
    shapes that broadcast)."""
    try:
        check_params(params)
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from None
    shapes = {name: np.shape(value) for name, value in params._asdict().items()}
    try:
        np.broadcast_shapes(*shapes.values())
    except ValueError:
        listed = ", ".join(f"{k} {s}" for k, s in shapes.items() if s)
        raise ValueError(
            f"{source}: lists of parameter values must have shapes that broadcast "
            f"together (one batch of cells); got {listed}"
        ) from None
    return params


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
        FileNotFoundError, OSError: see :func:`read_params_file`.
        ValueError: see :func:`read_params_file`; an unknown model name, or one
            whose parameters are not of the type of ``base``; a field the model
            does not have; values :func:`hhjax.simulate` refuses (e.g. a negative
            conductance, ``c_m`` <= 0) or lists that do not broadcast.
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
    return _checked(apply_overrides(base, values, str(path)), str(path))


def _model_name(params: Any) -> str:
    names = model_names(params)
    if not names:
        raise ValueError(
            f"{type(params).__name__} belongs to no model in hhjax.MODELS, and the "
            "file must name its model to be read back: register it first, e.g. "
            f"hhjax.MODELS['my-model'] = {type(params).__name__} (a constructor of "
            "its default parameters)."
        )
    if len(names) > 1:
        raise ValueError(
            f"Pass `model=` (one of {names}) to name the model of these "
            f"{type(params).__name__}."
        )
    return names[0]


def save_params(params: Any, path: str | Path, model: str | None = None) -> Path:
    """Write parameters as JSON, ``{"model": name, "params": {field: value}}``.

    The layout :func:`load_params` and ``hhjax simulate --params`` read. Array
    leaves are written as nested lists; the file is written atomically.

    Args:
        params: a parameter tuple (e.g. :class:`hhjax.HHParams`).
        path: the ``.json`` file to write.
        model: its name in :data:`hhjax.MODELS`; needed only where several names
            share the parameter type (``"pospischil-rs"`` / ``"pospischil-fs"``).

    Returns:
        The path written.

    Raises:
        TypeError: ``params`` is not a parameter tuple (e.g. a dict).
        ValueError: ``model`` missing where ambiguous or unknown (a model
            assembled by you must be registered in :data:`hhjax.MODELS` first),
            or a non-finite value.
        OSError: the file cannot be written.
    """
    path = Path(path)
    if not (isinstance(params, tuple) and hasattr(params, "_fields")):
        raise TypeError(
            f"`params` must be a model's parameter tuple (e.g. hhjax.HHParams); "
            f"got {type(params).__name__}."
        )
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
    return write_text_atomic(path, json.dumps(document, indent=2) + "\n")
