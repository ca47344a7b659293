"""Memory of a multi-start fit: checked against what the devices have before a
stage runs, so that too many starts is a clear error (with the number that fits)
instead of an allocation failure deep inside XLA."""

from __future__ import annotations

import jax

import hhjax


def _size(n_bytes: float) -> str:
    """``n_bytes`` in MiB or GiB, three digits."""
    if n_bytes >= 2**30:
        return f"{n_bytes / 2**30:.3g} GiB"
    return f"{n_bytes / 2**20:.3g} MiB"


def available_bytes(device: jax.Device) -> int | None:
    """Bytes a new program may allocate on ``device``: an accelerator's limit less
    what is in use; for a CPU device the host's ``MemAvailable``, or what is left
    under the container's (cgroup's) memory limit if less; ``None`` where
    unknown."""
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" not in stats:
            return None
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    free = [x for x in (_mem_available(), _cgroup_free()) if x is not None]
    return min(free) if free else None


def _mem_available() -> int | None:
    """The host's ``MemAvailable`` (bytes), ``None`` where there is no
    ``/proc/meminfo``."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


# (limit file, statistics file, the statistic of the memory in use that cannot be
# reclaimed) of this process's memory cgroup, v2 then v1: a container's limit,
# which MemAvailable does not see (beyond it the kernel kills the process). The
# cgroup's "usage" also counts the page cache, which the kernel frees on demand,
# so it would understate what is left.
_CGROUP_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.stat", "anon"),
    (
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        "/sys/fs/cgroup/memory/memory.stat",
        "total_rss",
    ),
)


def _cgroup_free() -> int | None:
    """Bytes left under the memory cgroup's limit (less its anonymous memory),
    ``None`` without a limit or where the files cannot be read."""
    for limit_file, stat_file, in_use in _CGROUP_FILES:
        try:
            with open(limit_file) as f:
                limit = f.read().strip()
            with open(stat_file) as f:
                stats = dict(line.split() for line in f if line.strip())
            used = int(stats[in_use])
            if limit == "max" or int(limit) >= 2**60:  # no limit
                return None
        except (OSError, ValueError, KeyError):
            continue
        return max(int(limit) - used, 0)
    return None


def needed_bytes(compiled: jax.stages.Compiled) -> int | None:
    """Bytes one execution of ``compiled`` holds at once on each of its devices
    (arguments, outputs and temporaries, from XLA's buffer assignment); ``None``
    where XLA does not say."""
    try:
        stats = compiled.memory_analysis()
    except (NotImplementedError, jax.errors.JaxRuntimeError):
        return None
    if stats is None:
        return None
    return (
        stats.argument_size_in_bytes
        + stats.output_size_in_bytes
        + stats.temp_size_in_bytes
        - stats.alias_size_in_bytes
    )


def check_fits_in_memory(
    per_device: int | None,
    devices: list[jax.Device],
    n_starts: int,
    label: str,
) -> None:
    """Raise ``MemoryError`` when a program that holds ``per_device`` bytes on each
    of ``devices`` (a stage of ``n_starts`` starts split over them;
    :func:`needed_bytes`) needs more memory than they have free. Host devices
    (CPU) share one memory, so their needs add up."""
    if per_device is None or not devices:
        return
    on_host = devices[0].platform == "cpu"
    need = per_device * (len(devices) if on_host else 1)
    free = available_bytes(devices[0])
    if free is None or need <= free:
        return
    # Nearly all of it grows with the starts (the data are a few MB).
    fitting_starts = int(n_starts * free / need)
    advice = (
        f"use at most about {fitting_starts} starts, fewer sweeps or a shorter window"
        if fitting_starts >= 1
        else "use fewer sweeps or a shorter window"
    )
    where = "the host" if on_host else f"each {devices[0].device_kind}"
    raise MemoryError(
        f"{n_starts} starts need about {_size(need)} at once in the stage "
        f"'{label}', but {where} has {_size(free)} free: {advice}."
    )


def out_of_memory(err: Exception, n_starts: int, label: str) -> MemoryError | None:
    """The ``MemoryError`` for an XLA run that failed to allocate (``None`` for
    other errors): the fallback where :func:`check_fits_in_memory` could not
    know, e.g. memory taken by another process meanwhile."""
    if not hhjax.is_out_of_memory(err):
        return None
    text = str(err)
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    return MemoryError(
        f"{n_starts} starts ran out of memory in the stage '{label}' ({first}): "
        "use fewer starts, fewer sweeps or a shorter window."
    )
