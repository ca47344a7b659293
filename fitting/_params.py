"""Which parameters to fit, their bounds, and the smooth map to unconstrained space.

A fit optimises an unconstrained vector ``z`` (one entry per free field); each
field's value is ``lo + (hi − lo)·σ(z)`` (``σ`` the logistic sigmoid) on a linear
scale, or ``exp(log lo + (log hi − log lo)·σ(z))`` on a log scale (the default for
positive quantities such as conductances and the capacitance, whose plausible
values span decades). The map is smooth and strictly increasing, so gradients and
Jacobians flow through it, and no iterate can leave the bounds.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import hhjax

# Default bounds by field name: exact names first, then prefixes. Units: mS/cm^2 for
# g_*, mV for e_*, v_shift and v_t, uF/cm^2 for c_m, degC, ms for tau_*.
_DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {
    "c_m": (0.05, 20.0),
    "v_shift": (-100.0, 100.0),
    "v_t": (-100.0, 0.0),
    "temperature": (-5.0, 50.0),
}
_PREFIX_BOUNDS: dict[str, tuple[float, float]] = {
    "g_": (1e-4, 1e4),
    "e_": (-200.0, 200.0),
    "tau_": (1e-2, 1e5),
    "q10": (1.0, 10.0),
}
_UNITS = {"c_m": "uF/cm^2", "temperature": "degC", "q10": "1", "q10_g": "1"}
_PREFIX_UNITS = {"g_": "mS/cm^2", "e_": "mV", "v_": "mV", "tau_": "ms", "q10": "1"}
# Starting points are kept this far (in units of sigma) inside the bounds.
_EDGE = 1e-4


def unit_of(field: str) -> str:
    """Unit of a parameter field by its name (``g_na`` → ``mS/cm^2``)."""
    if field in _UNITS:
        return _UNITS[field]
    for prefix, unit in _PREFIX_UNITS.items():
        if field.startswith(prefix):
            return unit
    return "?"


def default_bounds(field: str) -> tuple[float, float] | None:
    """Default physical bounds of a parameter field, or ``None`` if there are none.

    Conductances ``g_*`` (1e-4, 1e4) mS/cm²; reversal potentials ``e_*``
    (−200, 200) mV; ``c_m`` (0.05, 20) µF/cm²; ``v_shift`` (−100, 100) mV;
    ``v_t`` (−100, 0) mV; ``temperature`` (−5, 50) °C; ``q10*`` (1, 10); time
    constants ``tau_*`` (0.01, 1e5) ms. Other fields (e.g. half-activation voltages
    ``v_w``, ``v_h``) have none: pass ``bounds=`` for them.
    """
    if field in _DEFAULT_BOUNDS:
        return _DEFAULT_BOUNDS[field]
    for prefix, bounds in _PREFIX_BOUNDS.items():
        if field.startswith(prefix):
            return bounds
    return None


def integer_at_least(value: Any, name: str, minimum: int) -> int:
    """``value`` as a Python int >= ``minimum``: any integer type (e.g.
    ``numpy.int64``) is accepted, a bool, float or string is not (a ValueError
    naming ``name``)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        number = None
    if number is None or number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return number


def real_in(value: Any, name: str, expected: str, ok: Callable[[float], bool]) -> float:
    """``value`` as a Python float for which ``ok`` holds, else a ValueError
    ("{name} must be {expected}; got {value!r}.").

    Any real number is accepted (``int``, ``float``, NumPy and JAX scalars, 0-d
    arrays of integers or floats); a bool, string, complex number, NaN or a
    traced value is not.
    """
    number = as_real_number(value)
    if number is None or math.isnan(number) or not ok(number):
        raise ValueError(f"{name} must be {expected}; got {value!r}.")
    return number


def positive_finite(x: float) -> bool:
    """``0 < x < inf``: the test of :func:`real_in` for a positive finite number."""
    return 0.0 < x < math.inf


def as_real_number(value: Any) -> float | None:
    """``value`` as a float if it is a concrete real number (see :func:`real_in`),
    else ``None`` (also for a traced value)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if not isinstance(value, numbers.Real):
        try:
            array = np.asarray(value) if hasattr(value, "__array__") else None
        except TypeError:  # e.g. a traced value: not a number yet
            return None
        if array is None or array.ndim != 0 or array.dtype.kind not in "iuf":
            return None
        value = array.item()
    try:
        return float(value)
    except OverflowError:  # an int beyond float's range
        return math.inf if value > 0 else -math.inf


def one_cell(params: Any, what: str) -> Any:
    """``params`` with every field a Python float: a ``ValueError`` naming the
    fields that are not one concrete real number (``what`` names the argument
    in the message), since fits and predictions are of one cell."""
    values = {name: as_real_number(v) for name, v in params._asdict().items()}
    bad = [
        f"{name} of shape {np.shape(v)}" if np.ndim(v) else f"{name} = {v!r}"
        for name, v in params._asdict().items()
        if values[name] is None
    ]
    if bad:
        raise ValueError(
            f"{what} must hold one real number per parameter (one cell; give each "
            f"parameter set its own run); got {', '.join(bad)}."
        )
    return params._replace(**values)


@dataclasses.dataclass(frozen=True, eq=False)
class ParamSpace:
    """The free parameters of a fit and their bounded transform.

    Attributes:
        base: the model's parameter tuple (e.g. :class:`hhjax.HHParams`) holding the
            values of the fixed fields (and a reference value of the free ones).
        free: names of the fitted fields, in order.
        lower, upper: physical bounds of each free field, shape ``(n_free,)``.
        log: whether each field is transformed on a log scale, ``(n_free,)``.
    """

    base: Any
    free: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    log: np.ndarray

    @classmethod
    def create(
        cls,
        base: Any,
        free: Sequence[str],
        bounds: Mapping[str, tuple[float, float]] | None = None,
    ) -> ParamSpace:
        """Check the names and bounds and build the space.

        Args:
            base: parameter tuple of the model (fixed values).
            free: names of the fields to fit (a sequence or a comma-separated str).
            bounds: ``{field: (lower, upper)}`` overriding :func:`default_bounds`,
                in the field's unit.

        Raises:
            ValueError: unknown or repeated names, missing or invalid bounds, bounds
                of a parameter that is not free.
            TypeError: ``base`` not a parameter tuple, ``free`` not names.
        """
        if not (isinstance(base, tuple) and hasattr(base, "_fields")):
            raise TypeError(
                "`base` must be a model's parameter tuple (e.g. hhjax.HHParams()); "
                f"got {type(base).__name__}."
            )
        if isinstance(free, str):
            free = [f.strip() for f in free.split(",") if f.strip()]
        given = free
        try:
            free = tuple(free)
        except TypeError:
            free = (None,)
        if not all(isinstance(f, str) for f in free):
            raise TypeError(
                "`free` must be parameter names, a sequence of str (or one "
                f"comma-separated str) such as ['g_na', 'g_k']; got {given!r}."
            )
        fields = tuple(base._fields)
        unknown = [f for f in free if f not in fields]
        if unknown:
            raise ValueError(
                f"Unknown parameter(s) {', '.join(unknown)} for "
                f"{type(base).__name__}; fittable fields are {', '.join(fields)}."
            )
        if not free:
            raise ValueError("`free` must name at least one parameter to fit.")
        if len(set(free)) != len(free):
            raise ValueError(f"`free` names a parameter twice: {free}.")
        bounds = dict(bounds or {})
        stray = sorted(set(bounds) - set(fields))
        if stray:
            raise ValueError(
                f"`bounds` names unknown parameter(s) {', '.join(stray)} for "
                f"{type(base).__name__}."
            )
        fixed = sorted(set(bounds) - set(free))
        if fixed:
            raise ValueError(
                f"`bounds` given for parameter(s) {', '.join(fixed)} that are not "
                f"fitted; bounds apply only to the free parameters "
                f"({', '.join(free)}): free them too or drop their bounds."
            )
        lower, upper = [], []
        for name in free:
            pair = bounds.get(name, default_bounds(name))
            if pair is None:
                raise ValueError(
                    f"No default bounds for parameter {name!r}; pass "
                    f"bounds={{{name!r}: (lower, upper)}} in {unit_of(name)}."
                )
            try:
                lo, hi = (float(x) for x in pair)
            except (TypeError, ValueError):
                raise ValueError(
                    f"Bounds of {name!r} must be a pair (lower, upper) of numbers in "
                    f"{unit_of(name)}; got {pair!r}."
                ) from None
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(
                    f"Bounds of {name!r} must be finite with lower < upper; got "
                    f"({lo}, {hi})."
                )
            if (name.startswith("g_") or name == "c_m") and lo < 0:
                raise ValueError(
                    f"Bounds of {name!r} must not be negative; got ({lo}, {hi})."
                )
            if name.startswith("g_") and hi > hhjax.MAX_PLAUSIBLE_CONDUCTANCE:
                raise ValueError(
                    f"Bounds of {name!r} must lie below "
                    f"{hhjax.MAX_PLAUSIBLE_CONDUCTANCE:g} mS/cm^2 (no membrane's "
                    f"channel density comes near it); got ({lo}, {hi})."
                )
            lower.append(lo)
            upper.append(hi)
        lower, upper = np.array(lower), np.array(upper)
        # Log scale for strictly positive ranges spanning more than a factor of 10.
        log = (lower > 0) & (upper / np.where(lower > 0, lower, 1.0) > 10.0)
        return cls(base=base, free=free, lower=lower, upper=upper, log=log)

    @property
    def n_free(self) -> int:
        return len(self.free)

    @property
    def units(self) -> tuple[str, ...]:
        return tuple(unit_of(f) for f in self.free)

    def base_values(self) -> np.ndarray:
        """Values of the free fields in ``base``, ``(n_free,)``."""
        return np.array([float(np.asarray(getattr(self.base, f))) for f in self.free])

    # ----------------------------------------------------------------- transform
    def _ends(self):
        lo = np.where(self.log, np.log(np.where(self.log, self.lower, 1.0)), self.lower)
        hi = np.where(self.log, np.log(np.where(self.log, self.upper, 1.0)), self.upper)
        return lo, hi

    def _from_u(self, u: Any, xp: Any = np) -> Any:
        """Physical values of transformed ``u`` (``log value`` or ``value``), with
        ``xp`` numpy or jax.numpy. ``exp`` sees only the log-scaled fields: that of
        a wide linear range (e.g. 1e6 mS/cm^2) would overflow, and its ``inf``
        would make the gradient of the unused branch ``0 * inf = NaN``."""
        return xp.where(self.log, xp.exp(xp.where(self.log, u, 0.0)), u)

    def values(self, z: Any) -> jax.Array:
        """Physical values ``(..., n_free)`` of unconstrained ``z`` ``(..., n_free)``,
        in the dtype of ``z``."""
        z = jnp.asarray(z)
        lo, hi = (jnp.asarray(x, z.dtype) for x in self._ends())
        u = lo + (hi - lo) * jax.nn.sigmoid(z)
        return self._from_u(u, jnp)

    def step_size(self, z: Any, dz: Any, log_step: float, linear_step: float) -> Any:
        """How large a step ``dz`` from ``z`` is in physical terms (linearised):
        the largest over the fields of ``|Δ log value| / log_step`` for log-scaled
        fields and ``|Δ value| / (linear_step · (upper − lower))`` for the others.
        A result ≤ 1 means no field moves by more than a factor ``exp(log_step)``
        or by more than the fraction ``linear_step`` of its bounds' width.

        Args:
            z, dz: unconstrained point and step, ``(n_free,)``.
            log_step: allowed change of the logarithm of a log-scaled field.
            linear_step: allowed change of another field, fraction of its range.

        Returns:
            A scalar (dtype of ``z``).
        """
        z = jnp.asarray(z)
        lo, hi = (jnp.asarray(x, z.dtype) for x in self._ends())
        sig = jax.nn.sigmoid(z)
        du = (hi - lo) * sig * (1.0 - sig) * dz  # change of u (log value or value)
        unit = jnp.where(self.log, log_step, linear_step * (hi - lo))
        return jnp.max(jnp.abs(du) / unit)

    def values_np(self, z: Any) -> np.ndarray:
        """:meth:`values` in float64 numpy (for host-side bookkeeping)."""
        lo, hi = self._ends()
        z = np.asarray(z, dtype=np.float64)
        u = lo + (hi - lo) * (0.5 * (1.0 + np.tanh(0.5 * z)))
        return self._from_u(u)

    def to_z(self, values: Any) -> np.ndarray:
        """Unconstrained ``z`` of physical values (clipped just inside the bounds)."""
        values = np.asarray(values, dtype=np.float64)
        lo, hi = self._ends()
        u = np.where(self.log, np.log(np.clip(values, 1e-300, None)), values)
        frac = np.clip((u - lo) / (hi - lo), _EDGE, 1.0 - _EDGE)
        return np.log(frac) - np.log1p(-frac)

    def params(self, values: Any) -> Any:
        """The full parameter tuple with the free fields set to ``values``."""
        return self.base._replace(
            **{f: values[..., k] for k, f in enumerate(self.free)}
        )

    def params_from_z(self, z: Any) -> Any:
        return self.params(self.values(z))

    def at_bounds(self, values: Any, tol: float = 1e-3) -> list[str]:
        """Names of fields within ``tol`` (fraction of the transformed range) of a
        bound."""
        lo, hi = self._ends()
        values = np.asarray(values, dtype=np.float64)
        u = np.where(self.log, np.log(np.clip(values, 1e-300, None)), values)
        frac = (u - lo) / (hi - lo)
        return [
            f for f, x in zip(self.free, frac, strict=True) if x < tol or x > 1.0 - tol
        ]

    # -------------------------------------------------------------------- starts
    def sample(
        self, n: int, seed: int, center: Any | None = None, spread: float = 2.0
    ) -> np.ndarray:
        """Reproducible starting values, ``(n, n_free)`` in physical units.

        With ``center``: each non-zero value is multiplied by a factor drawn
        log-uniformly in ``[1/spread, spread]`` (its sign is kept); a zero centre
        value is drawn uniformly within the bounds. Without: log-uniformly within
        the bounds for log-scaled fields, uniformly for the others. Values are then
        kept just inside the bounds.

        Args:
            n: number of starts (>= 1).
            seed: integer seed >= 0 (numpy PCG64).
            center: ``(n_free,)`` physical values, or ``None``.
            spread: finite factor > 1 for the draws around ``center``.
        """
        n = integer_at_least(n, "The number of starts", 1)
        seed = integer_at_least(seed, "`seed`", 0)
        rng = np.random.default_rng(seed)
        lo, hi = self._ends()
        uniform = rng.uniform(size=(n, self.n_free))
        within = lo + (hi - lo) * uniform
        within = self._from_u(within)
        if center is None:
            values = within
        else:
            spread = real_in(
                spread, "`spread`", "a finite factor > 1", lambda x: 1.0 < x < math.inf
            )
            center = np.asarray(center, dtype=np.float64)
            factor = np.exp(
                np.log(spread) * (2.0 * rng.uniform(size=(n, self.n_free)) - 1.0)
            )
            values = np.where(center == 0.0, within, center * factor)
        return self.values_clipped(values)

    def values_clipped(self, values: Any) -> np.ndarray:
        """``values`` moved just inside the bounds (as the transform sees them)."""
        return self.values_np(self.to_z(values))
