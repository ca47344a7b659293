"""Files that must never be half-written: atomic writes and fit checkpoints.

Every file is written to a temporary name in the same directory, flushed to disk
and renamed over the target (``os.replace`` is atomic on POSIX and Windows), so a
crash or a kill leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

CHECKPOINT_VERSION = 1


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


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
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


def write_bytes_atomic(path: str | os.PathLike, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically; returns the path."""
    path = Path(path)
    _atomic_write_bytes(path, payload)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    path = Path(path)
    _atomic_write_bytes(path, text.encode("utf-8"))
    return path


def write_json_atomic(path: str | os.PathLike, document: Any) -> Path:
    """Write a JSON document (indented, non-finite numbers as null) atomically."""
    return write_text_atomic(path, json.dumps(_finite(document), indent=2) + "\n")


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: replace them by ``None`` (null)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value


def save_checkpoint(path: str | os.PathLike, meta: dict, arrays: dict) -> None:
    """Write a checkpoint (``.npz``: ``meta`` as JSON plus named arrays) atomically.

    Args:
        path: checkpoint file.
        meta: JSON-able metadata (fingerprint, stage, iteration, ...).
        arrays: ``{name: numpy array}``.
    """
    buffer = io.BytesIO()
    meta = {"version": CHECKPOINT_VERSION, **meta}
    np.savez(buffer, __meta__=np.array(json.dumps(_finite(meta))), **arrays)
    _atomic_write_bytes(Path(path), buffer.getvalue())


def load_checkpoint(path: str | os.PathLike) -> tuple[dict, dict] | None:
    """Read a checkpoint written by :func:`save_checkpoint`; ``None`` if absent.

    Raises:
        ValueError: the file exists but is not a readable checkpoint.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(str(arrays.pop("__meta__")))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"{path}: not a readable fit checkpoint ({type(err).__name__}: {err}); "
            "delete it to start the fit afresh."
        ) from None
    if meta.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format {meta.get('version')} is not "
            f"{CHECKPOINT_VERSION}; delete it to start the fit afresh."
        )
    return meta, arrays
