"""Interrupting a fit safely: :class:`FitInterrupted`, the worker thread that
runs compilations (so that Ctrl-C stops the wait, not the compiler), the flag
that the command line's signal handlers set, and :func:`resumable`, which turns
Ctrl-C into a ``FitInterrupted`` naming the checkpoint files that hold progress.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jax


class FitInterrupted(KeyboardInterrupt):
    """A fit was interrupted (Ctrl-C, or ``KeyboardInterrupt`` from its callback).

    Attributes:
        checkpoint: the checkpoint file that holds the fit's progress (the same
            call resumes from it; if saving at the interruption failed, the
            progress saved before, and the message says why), or ``None`` when
            there was nothing to save yet (interrupted before its first
            iteration, e.g. while compiling or computing the regression warm
            start), no checkpoint was given, or saving failed with no earlier
            save of this fit (the message says why).
    """

    def __init__(self, message: str = "fit interrupted", checkpoint: Any = None):
        super().__init__(message)
        self.checkpoint = checkpoint


# ------------------------------------------------------------------ worker thread
WORKER_PREFIX = "hhjax-fit-worker"  # name prefix of the worker threads


def busy_workers() -> list[threading.Thread]:
    """The worker threads still running (e.g. a compilation that an interruption
    left behind): Python waits for them when it exits."""
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith(WORKER_PREFIX) and t.is_alive()
    ]


# JAX settings a thread may set for itself (context managers), which a computation
# run for it in a worker thread must see: config name -> its context manager.
_THREAD_SETTINGS = {
    "jax_enable_x64": jax.enable_x64,
    "jax_default_device": jax.default_device,
    "jax_default_matmul_precision": jax.default_matmul_precision,
    "jax_debug_nans": jax.debug_nans,
    "jax_debug_infs": jax.debug_infs,
    "jax_numpy_rank_promotion": jax.numpy_rank_promotion,
    "jax_numpy_dtype_promotion": jax.numpy_dtype_promotion,
}


def with_thread_settings(fn: Callable) -> Callable:
    """``fn`` wrapped to run with the calling thread's JAX settings that are per
    thread (:data:`_THREAD_SETTINGS`: x64, default device, matmul precision, ...),
    for another thread."""
    settings = [
        (cm, getattr(jax.config, name)) for name, cm in _THREAD_SETTINGS.items()
    ]

    def call(*args, **kwargs):
        with contextlib.ExitStack() as stack:
            for context, value in settings:
                stack.enter_context(context(value))
            return fn(*args, **kwargs)

    return call


def in_worker(fn: Callable, *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)`` in a worker thread (with this thread's x64 and
    default-device settings), this thread waiting for its result.

    For computations that compile: Ctrl-C then stops the wait, not the compiler.
    A compilation interrupted in the main thread goes on in XLA's own threads,
    and the interpreter's exit, racing with it, could crash (exit status 139).
    The worker finishes its job on its own and Python waits for it at exit.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=WORKER_PREFIX)
    try:
        return pool.submit(with_thread_settings(fn), *args, **kwargs).result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


# Set by hhjax fit's signal handlers (SIGINT, SIGTERM) besides raising
# KeyboardInterrupt: an exception raised inside a callback that ignores them
# (e.g. JAX's garbage-collection callback) is lost, this flag is not. A fit checks
# it after every chunk of iterations.
INTERRUPT_REQUESTED = threading.Event()


NOTHING_SAVED = "nothing to save yet"  # how a FitInterrupted says it saved nothing


@contextlib.contextmanager
def resumable(where: str, *files):
    """Turn Ctrl-C (a plain ``KeyboardInterrupt``) into :class:`FitInterrupted`,
    naming those of the checkpoint ``files`` that hold progress. A
    ``FitInterrupted`` raised inside (with its own message) passes unchanged,
    unless it saved nothing and one of ``files`` holds earlier progress (a later
    step of a fit interrupted before its first save): then it names those."""
    try:
        yield
    except FitInterrupted as stop:
        saved = _existing(files)
        if stop.checkpoint is not None or not saved:
            raise
        text = str(stop).replace(f"; {NOTHING_SAVED}", "")
        raise FitInterrupted(
            f"{text}; progress saved to {' and '.join(saved)}", saved[0]
        ) from None
    except KeyboardInterrupt:
        saved = _existing(files)
        note = f"; progress saved to {' and '.join(saved)}" if saved else ""
        checkpoint = saved[0] if saved else None
        raise FitInterrupted(f"fit interrupted{where}{note}", checkpoint) from None


def _existing(files) -> list[str]:
    """The paths among ``files`` (``None`` entries skipped) that exist."""
    return [str(f) for f in files if f is not None and Path(f).exists()]
