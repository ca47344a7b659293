"""Files that must never be half-written: atomic writes and fit checkpoints.

Every file is written to a temporary name in the same directory, flushed to disk
and renamed over the target (``os.replace`` is atomic on POSIX and Windows), so a
crash or a kill leaves either the old file or the new one, never a torn one. The
writers are :mod:`hhjax.io`'s, re-exported here for the fitting modules.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from hhjax.io import json_safe, nearest_existing, read_npz
from hhjax.io import umask_mode as umask_mode
from hhjax.io import write_bytes_atomic as write_bytes_atomic
from hhjax.io import write_json_atomic as write_json_atomic
from hhjax.io import write_text_atomic as write_text_atomic

CHECKPOINT_VERSION = 1


def check_checkpoint_path(checkpoint: Any) -> Path | None:
    """The checkpoint file, its directory created and checked to be writable now,
    so that an unusable path fails before any work instead of at the first save."""
    if checkpoint is None:
        return None
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise ValueError(
            f"`checkpoint` must be a path (str or os.PathLike) or None; got "
            f"{type(checkpoint).__name__}."
        )
    path = Path(checkpoint)
    if path.is_dir():
        raise ValueError(f"`checkpoint` {str(path)!r} is a directory, not a file.")
    ancestor = nearest_existing(path.parent)
    if os.path.lexists(ancestor) and not ancestor.is_dir():
        raise ValueError(
            f"`checkpoint` {str(path)!r}: {str(ancestor)!r} is a file, not a "
            "directory; give a checkpoint file in a directory."
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ValueError(
            f"`checkpoint` {str(path)!r}: cannot write in its directory "
            f"{str(path.parent)!r} ({reason}); give a checkpoint file in a writable "
            "directory."
        ) from None
    return path


def save_checkpoint(path: str | os.PathLike, meta: dict, arrays: dict) -> None:
    """Write a checkpoint (``.npz``: ``meta`` as JSON plus named arrays) atomically.

    Args:
        path: checkpoint file.
        meta: JSON-able metadata (fingerprint, stage, iteration, ...).
        arrays: ``{name: numpy array}``.
    """
    buffer = io.BytesIO()
    meta = {"version": CHECKPOINT_VERSION, **meta}
    np.savez(buffer, __meta__=np.array(json.dumps(json_safe(meta))), **arrays)
    write_bytes_atomic(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike) -> tuple[dict, dict] | None:
    """Read a checkpoint written by :func:`save_checkpoint`; ``None`` if absent.

    Raises:
        ValueError: the file exists but is not a readable checkpoint.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        arrays = read_npz(path, "fit checkpoint")
    except ValueError as err:
        raise ValueError(f"{err} Delete it to start the fit afresh.") from None
    if "__meta__" not in arrays:  # another .npz, e.g. a recording: never delete it
        raise ValueError(
            f"{path}: not a fit checkpoint (an .npz without a checkpoint's "
            f"metadata, arrays {', '.join(sorted(arrays)) or 'none'}); choose another "
            "checkpoint path."
        )
    try:
        meta = json.loads(str(arrays.pop("__meta__")))
    except ValueError as err:
        meta = err
    if not isinstance(meta, dict):
        raise ValueError(  # noqa: TRY004 (bad file content)
            f"{path}: not a readable fit checkpoint (metadata: {meta!r}); delete it "
            "to start the fit afresh."
        )
    if meta.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format {meta.get('version')} is not "
            f"{CHECKPOINT_VERSION}; delete it to start the fit afresh."
        )
    return meta, arrays


def mismatched_checkpoint(
    checkpoint: Any, why: str, resume_option: bool = True
) -> ValueError:
    """The error for a checkpoint that another fit wrote: ``why`` says what
    differs; the fix names both the Python option (``resume=False``, where the
    function has one) and the command-line flag (``--no-resume``)."""
    how = (
        "pass resume=False (--no-resume on the command line)"
        if resume_option
        else "pass --no-resume on the command line"
    )
    return ValueError(f"{checkpoint}: {why}; delete it or {how} to start afresh.")
