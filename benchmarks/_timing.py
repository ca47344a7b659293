"""Timing and memory of benchmark tools. Standard library only (the Brian2 worker
runs in a virtual environment without JAX).

CPU time is that of the whole process (all threads) plus its waited-for children
(:func:`cpu_seconds`), so that a tool running a binary as a child process (Brian2) is
charged for it. Memory, measured once after all timed calls:

* a :class:`Tool` with ``memory_mb`` reports what that returns (JAX tools: XLA's
  ``memory_analysis`` of the compiled call, temporaries + outputs; Brian2: the
  peak RSS of its binary);
* any other tool: the increase of this process's peak RSS during one call, read
  from the kernel's high-water mark (``VmHWM``, reset through
  ``/proc/self/clear_refs``; Linux only, ``None`` elsewhere) after returning freed
  heap memory to the system (``malloc_trim``).

A thread sampling the RSS, as used before, is not reproducible: it misses short
peaks, and memory that an allocator kept from a previous call is reused without
raising the RSS (five identical warm calls of one JAX tool gave 33, 32.8, 0, 0,
0 MB).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass(frozen=True)
class Tool:
    """A zero-argument callable running one whole workload.

    Attributes:
        run: the workload.
        memory_mb: optional probe of the memory one call needs, MB (10^6 bytes);
            without it, :func:`rss_peak_mb` measures a call.
        memory_kind: how ``memory_mb`` measures (a short label for the report).
    """

    run: Callable[[], Any]
    memory_mb: Callable[[], float] | None = None
    memory_kind: str = "RSS high-water mark"

    def __call__(self) -> Any:
        return self.run()


@dataclasses.dataclass
class Timing:
    """Measured cost of one tool on one workload.

    Attributes:
        first_s: wall time of the first call (compilation, JIT or model set-up
            included), s.
        times_s: wall times of the later calls, s.
        cpu_s: CPU times of the later calls (all threads and waited-for
            children), s.
        peak_mb: memory of one call, MB (module docstring); ``None`` if not
            measured.
        memory_kind: how ``peak_mb`` was measured.
        result: ``keep`` (see :func:`time_tools`) of the first timed call's result.
    """

    first_s: float
    times_s: list[float]
    cpu_s: list[float]
    peak_mb: float | None = None
    memory_kind: str = ""
    result: Any = None

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    @property
    def median_cpu_s(self) -> float:
        return statistics.median(self.cpu_s)

    @property
    def overhead_s(self) -> float:
        """First call minus a later one: compilation / set-up, s."""
        return max(0.0, self.first_s - self.median_s)


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads, ns resolution) and
    of its waited-for children (µs resolution; 0 where ``resource`` is missing), s.
    (``os.times`` counts in clock ticks, 10 ms: too coarse for a 3 ms call.)"""
    try:
        import resource
    except ImportError:  # not Unix
        return time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _timed(fn: Callable[[], Any], block: Callable[[Any], Any]) -> tuple:
    """``(block(fn()), wall s, CPU s)``."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    out = block(fn())
    return out, time.perf_counter() - t0, cpu_seconds() - c0


def _status_bytes(key: str) -> int:
    """A size field (``VmRSS``, ``VmHWM``) of ``/proc/self/status``, bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{key} not in /proc/self/status")


def _release_free_memory() -> None:
    """Collect garbage and hand free heap pages back to the system (glibc)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def rss_peak_mb(fn: Callable[[], Any], block: Callable[[Any], Any]) -> float | None:
    """Increase of this process's peak RSS during one call of ``fn``, MB; ``None``
    where the kernel's high-water mark cannot be reset (not Linux)."""
    _release_free_memory()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        base = _status_bytes("VmRSS")
    except OSError:
        return None
    out = block(fn())
    peak = _status_bytes("VmHWM")
    del out
    return (peak - base) / 1e6


def _memory(tool: Callable[[], Any], block: Callable[[Any], Any]) -> tuple:
    """``(MB, how)`` for one tool (module docstring)."""
    probe = getattr(tool, "memory_mb", None)
    if probe is not None:
        return probe(), tool.memory_kind
    return rss_peak_mb(tool, block), Tool.memory_kind


def time_tools(
    tools: dict[str, Callable[[], Any]],
    repeats: int,
    block: Callable[[Any], Any] = lambda x: x,
    keep: Callable[[Any], Any] = lambda x: x,
    memory: bool = False,
    slow_s: float = 5.0,
    fast_s: float = 0.05,
) -> dict[str, Timing]:
    """Time several tools on the same workload, interleaving their repeats.

    Each tool is called once (first call, e.g. compilation), then the tools take
    turns, so that load changes on a shared machine hit all alike: ``repeats``
    timed calls each, 5 × ``repeats`` for a tool whose first timed call took less
    than ``fast_s``, one only for a tool whose first call took longer than
    ``slow_s``. With ``memory``, each tool's memory is measured afterwards (module
    docstring), outside the timed calls.

    Args:
        tools: name → zero-argument callable (or :class:`Tool`) running the whole
            workload.
        repeats: timed calls per tool (≥ 1).
        block: applied to each result before the clock stops (e.g. wait for an
            asynchronous JAX result).
        keep: applied to the first timed call's result; stored as ``result``.
        memory: measure memory.
        slow_s, fast_s: see above, s.
    """
    first = {name: _timed(fn, block)[1] for name, fn in tools.items()}
    timings = {}
    for name, fn in tools.items():
        out, wall, cpu = _timed(fn, block)
        timings[name] = Timing(first[name], [wall], [cpu], result=keep(out))
        del out
    wanted = {
        name: 1
        if first[name] > slow_s
        else 5 * repeats
        if t.times_s[0] < fast_s
        else repeats
        for name, t in timings.items()
    }
    for _ in range(max(wanted.values()) - 1):
        for name, fn in tools.items():
            if len(timings[name].times_s) < wanted[name]:
                out, wall, cpu = _timed(fn, block)
                del out
                timings[name].times_s.append(wall)
                timings[name].cpu_s.append(cpu)
    if memory:
        for name, fn in tools.items():
            timings[name].peak_mb, timings[name].memory_kind = _memory(fn, block)
    return timings
