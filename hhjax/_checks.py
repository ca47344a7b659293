"""Value checks shared by the simulation, the resting state, the stimuli and pyhh.

Each check looks at concrete values only (never at tracers, so everything stays
jit/vmap/grad-friendly) and raises a ``ValueError`` or ``TypeError`` that names the
argument, what was wrong and what was expected.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hhjax._model import _MODELS


def is_traced(x: Any) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is a failed allocation (Python's or XLA's).

    That is a ``MemoryError``, or an XLA runtime error saying
    ``RESOURCE_EXHAUSTED`` or "out of memory" (on the CPU some arrive as
    ``INTERNAL: ... Out of memory allocating N bytes``)."""
    if isinstance(err, MemoryError):
        return True
    if not isinstance(err, jax.errors.JaxRuntimeError):
        return False
    text = str(err)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def is_integer(x: Any) -> bool:
    """A Python or NumPy integer, not a bool (a count, an index, a stride)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def concrete_real(value: Any, name: str, unit: str) -> float:
    """``value`` as a float, if it is one real number (in ``unit``) known now, not
    a tracer (a time or a count that fixes an array's length or layout); else a
    ``ValueError`` naming ``name``."""
    if is_traced(value):
        raise ValueError(
            f"`{name}` ({unit}) must be known when it is used, but it is a traced "
            "value (inside jax.jit, vmap or grad). Compute it outside the "
            "transformation, or mark it static (jax.jit(..., static_argnames=...))."
        )
    try:
        bad = isinstance(value, (bool, str, bytes)) or np.ndim(value) != 0
        number = math.nan if bad else float(value)
    except (TypeError, ValueError):
        bad = True
    if bad:
        raise ValueError(f"`{name}` must be one real number ({unit}); got {value!r}.")
    return number


def positive_number(value: Any, name: str, unit: str) -> float:
    """``value`` as a float, if it is one real, finite number > 0 (in ``unit``),
    known now (not traced); else a ``ValueError`` naming ``name``."""
    number = (
        math.nan
        if isinstance(value, (bool, str, bytes)) or np.ndim(value) != 0
        else concrete_real(value, name, unit)
    )
    if not 0.0 < number < math.inf:
        raise ValueError(
            f"`{name}` must be a positive, finite number ({unit}); got {value!r}."
        )
    return number


def broadcast_named_shapes(shapes: dict[str, tuple[int, ...]], what: str) -> tuple:
    """The broadcast of ``{name: shape}``; a ``ValueError`` listing every non-scalar
    shape by name when they do not broadcast (``what``: the arguments, for the
    message)."""
    distinct = set(shapes.values()) - {()}
    if len(distinct) <= 1:  # the common cases, without NumPy's overhead
        return distinct.pop() if distinct else ()
    try:
        return np.broadcast_shapes(*distinct)
    except ValueError:
        listed = ", ".join(f"{k} {s}" for k, s in shapes.items() if s != ())
        raise ValueError(f"{what} must broadcast together; got {listed}.") from None


# (min, max) of the jax.Arrays checked so far, by id. A jax.Array is immutable, so
# one passed again (a stimulus reused over a parameter sweep, a fixed parameter
# array) is not scanned again: 0.1-0.2 ms of a 1e5-step single-cell run, 0.1 s
# for 1e8 current samples. The weakref's callback drops an entry when its array is
# freed, before its id can be reused.
_known_ranges: dict[int, tuple[weakref.ref, tuple[float, float]]] = {}


def value_range(x: Any) -> tuple[float, float]:
    """``(min, max)`` of a concrete number or array; NaN if it has a NaN or is not
    of a real number type (bool, complex), ±inf if it has an inf; ``(0, 0)`` when
    empty."""
    if type(x) is float:
        return x, x
    if type(x) is int:  # exact, and beyond float's range: +-inf
        value = float(x) if abs(x) < 2**1023 else (math.inf if x > 0 else -math.inf)
        return value, value
    entry = _known_ranges.get(id(x))
    if entry is not None and entry[0]() is x:
        return entry[1]
    values = np.asarray(x)
    # jnp.issubdtype: bfloat16 (ml_dtypes) counts as floating, unlike np.issubdtype.
    if not (
        jnp.issubdtype(values.dtype, jnp.floating)
        or jnp.issubdtype(values.dtype, jnp.integer)
    ):
        value_range = (math.nan, math.nan)
    elif values.size == 0:
        value_range = (0.0, 0.0)
    else:  # min and max propagate NaN and inf: no temporaries
        value_range = (float(values.min()), float(values.max()))
    if isinstance(x, jax.Array):
        key = id(x)
        forget = lambda _: _known_ranges.pop(key, None)  # noqa: E731
        _known_ranges[key] = (weakref.ref(x, forget), value_range)
    return value_range


# Parameter fields that must be > 0, by name prefix, with their units.
POSITIVE_FIELDS = {"c_m": "uF/cm^2", "q10": "dimensionless", "tau": "ms"}
ABSOLUTE_ZERO_C = -273.15  # degC
# A `temperature` above this (degC) is almost always one in kelvin.
MAX_PLAUSIBLE_TEMPERATURE_C = 100.0
# |E| (mV) beyond this is no reversal potential: Nernst's 58 mV per decade at 20 degC
# would need a concentration ratio of 10^8 (a value in uV, or a typo).
MAX_REVERSAL_MV = 500.0
MAX_PLAUSIBLE_CONDUCTANCE = 1e5
"""Largest maximal conductance a parameter may have, mS/cm² (100 S/cm²): no
membrane's channel density comes near it (nodes of Ranvier, the densest, reach a
few S/cm² of Na⁺). Above it the value is almost always in µS/cm² or a typo."""


def _finite_fields(fields: Any, label: str) -> Any:
    """``(name, value, low, high)`` of each concrete field of the NamedTuple
    ``fields`` (traced ones are skipped), each checked to be finite real numbers
    (``label`` formatted with ``name`` names it in the error)."""
    for name, value in fields._asdict().items():
        if isinstance(value, jax.core.Tracer):  # each field is one leaf
            continue
        low, high = value_range(value)
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(
                f"{label.format(name=name)} must be finite real numbers; got {value!r}."
            )
        yield name, value, low, high


def check_params(params: Any) -> None:
    """The concrete fields of a parameter tuple (traced ones are skipped): finite;
    conductances in [0, :data:`MAX_PLAUSIBLE_CONDUCTANCE`]; ``c_m``, Q10s and time
    constants > 0; reversal potentials within ±:data:`MAX_REVERSAL_MV`;
    temperature in degC. Conductances are the fields named ``g_*`` and each
    channel's ``conductance_param`` (:class:`hhjax.Channel`)."""
    model = _MODELS.get(type(params))
    declared = {ch.conductance_param for ch in model.channels} if model else set()
    for name, value, low, high in _finite_fields(params, "Parameter `{name}`"):
        conductance = name.startswith("g_") or name in declared
        if conductance and low < 0:
            raise ValueError(
                f"Conductance `{name}` (mS/cm^2) must be >= 0; got {value}."
            )
        if conductance and high > MAX_PLAUSIBLE_CONDUCTANCE:
            raise ValueError(
                f"Conductance `{name}` (mS/cm^2) must be <= "
                f"{MAX_PLAUSIBLE_CONDUCTANCE:g} mS/cm^2 (100 S/cm^2, beyond any "
                f"membrane's channel density); got {value} (a value in uS/cm^2?)."
            )
        prefix = next((p for p in POSITIVE_FIELDS if name.startswith(p)), None)
        if prefix is not None and low <= 0:
            raise ValueError(
                f"Parameter `{name}` ({POSITIVE_FIELDS[prefix]}) must be > 0; "
                f"got {value}."
            )
        if name.startswith("e_") and max(high, -low) > MAX_REVERSAL_MV:
            raise ValueError(
                f"Reversal potential `{name}` (mV) must lie within "
                f"±{MAX_REVERSAL_MV:g} mV; got {value}."
            )
        if name == "temperature" and low <= ABSOLUTE_ZERO_C:
            raise ValueError(
                f"Parameter `temperature` (degC) must be above absolute zero "
                f"({ABSOLUTE_ZERO_C} degC); got {value}."
            )
        if name == "temperature" and high > MAX_PLAUSIBLE_TEMPERATURE_C:
            raise ValueError(
                f"Parameter `temperature` must be in degC (<= "
                f"{MAX_PLAUSIBLE_TEMPERATURE_C:g}); got {value}, which looks like "
                "kelvin (subtract 273.15)."
            )


# |I| above this (uA/cm^2) is far beyond depolarisation block of any HH-type cell
# and almost always a current in pA that was not divided by the capacitance.
MAX_PLAUSIBLE_CURRENT = 1000.0


def check_current(i_ext: Any, name: str = "i_ext", opt_out: bool = True) -> None:
    """Concrete currents (uA/cm^2, any shape, time first): real, finite and no
    larger than :data:`MAX_PLAUSIBLE_CURRENT`, else a ``ValueError`` naming
    ``name``; ``opt_out`` mentions ``check_inputs=False`` in the size error."""
    if is_traced(i_ext):
        return
    low, high = value_range(i_ext)
    if not (math.isfinite(low) and math.isfinite(high)):
        values = np.asarray(i_ext)
        if not (
            jnp.issubdtype(values.dtype, jnp.floating)
            or jnp.issubdtype(values.dtype, jnp.integer)
        ):
            raise ValueError(
                f"`{name}` must be real currents in uA/cm^2; got dtype {values.dtype}."
            )
        where = ""
        if values.ndim:
            k = int(np.argwhere(~np.isfinite(values))[0][0])
            where = f" (first at time index {k})"
        raise ValueError(
            f"`{name}` contains non-finite values{where}; the injected current must "
            "be finite everywhere (uA/cm^2)."
        )
    peak = max(high, -low)
    if peak > MAX_PLAUSIBLE_CURRENT:
        raise ValueError(
            f"`{name}` reaches |I| = {peak:g}, but it must be a current density in "
            f"uA/cm^2 (|I| <= {MAX_PLAUSIBLE_CURRENT:g}); this looks like a current "
            "in pA. Convert with hhjax.stimulus.pa_to_density(i_pA, c_pF)"
            + (
                ", or pass check_inputs=False if it is really meant."
                if opt_out
                else "."
            )
        )


def check_precision(tree: Any, name: str) -> None:
    """``ValueError`` for a float type narrower than 32 bits in ``tree`` (its
    dtype is known under tracing too): a 16-bit V cannot resolve a step's change
    (bfloat16 spacing at -65 mV is 0.25 mV, float16's 0.03 mV; bfloat16 V stays
    at rest under 15 uA/cm^2) and a 16-bit time axis repeats times."""
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        named = tree._asdict().items()
        labels = [(f"`{name}.{key}`", value) for key, value in named]
    else:
        labels = [(f"`{name}`", tree)]
    for label, value in labels:
        dtype = getattr(value, "dtype", None)  # Python numbers have none
        if dtype is None or dtype.itemsize >= 4:  # the cheap test first
            continue
        if jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(
                f"{label} has dtype {jnp.dtype(dtype).name}: hhjax computes in "
                "float32 or float64 (a 16-bit voltage cannot resolve one step's "
                "change); convert it, e.g. with .astype(jnp.float32)."
            )


def check_state_type(state: Any, model: Any, name: str) -> None:
    if not isinstance(state, model.state_type):
        raise TypeError(
            f"`{name}` must be a {model.state_type.__name__} for the parameters of "
            f"model {model.name!r}; got {type(state).__name__}."
        )


# How far outside [0, 1] a gate of ``state0`` may lie. Forward Euler overshoots
# [0, 1] near its step limit (-0.16 to 1.37 for HH and Pospischil at dt 0.05 ms),
# and a run must be able to continue from its own final state; a value further
# out is not a gate (e.g. a voltage or a percentage).
GATE_SLACK = 1.0


def check_state(state: Any) -> None:
    """A concrete state: V finite (mV), every gate within ``GATE_SLACK`` of [0, 1]."""
    for name, value, low, high in _finite_fields(state, "`state0.{name}`"):
        if name != "v" and not (low >= -GATE_SLACK and high <= 1.0 + GATE_SLACK):
            raise ValueError(
                f"Gate `state0.{name}` is a fraction of open gates, so it must lie in "
                f"[0, 1] (explicit methods may overshoot it by less than "
                f"{GATE_SLACK:g}); got {value!r}."
            )


def lists_to_arrays(fields: Any) -> Any:
    """``fields`` (a NamedTuple) with list or tuple values as float arrays, so a
    batch can be given as ``HHParams(g_na=[100.0, 120.0])``."""
    lists = {
        k: np.asarray(v, dtype=float)
        for k, v in fields._asdict().items()
        if isinstance(v, (list, tuple))
    }
    return fields._replace(**lists) if lists else fields
