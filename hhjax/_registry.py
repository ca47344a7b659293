"""Model names used on the command line and in saved files.

A name maps to a constructor of default parameters; the model follows from the
parameters' type (:func:`hhjax.model_of`). Several names may share one model and
differ only in their parameter set (``"pospischil-rs"`` / ``"pospischil-fs"``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hhjax.models.hh import HHParams
from hhjax.models.pospischil import PospischilParams

MODELS: dict[str, Callable[..., Any]] = {
    "hh": HHParams,
    "pospischil-rs": PospischilParams.rs,
    "pospischil-fs": PospischilParams.fs,
}
"""``{name: constructor}``; ``MODELS[name](**overrides)`` gives default parameters."""


def default_params(name: str, **overrides: Any) -> Any:
    """Default parameters of the model called ``name`` (see :data:`MODELS`).

    Args:
        name: a key of :data:`MODELS`, e.g. ``"hh"`` or ``"pospischil-rs"``.
        **overrides: fields to set differently (units as in the parameter type).

    Returns:
        The parameter tuple, e.g. :class:`hhjax.PospischilParams`.

    Raises:
        ValueError: unknown name, or an override that is not a field of the
            model's parameters.
    """
    try:
        make = MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown model {name!r}; expected one of {', '.join(map(repr, MODELS))}."
        ) from None
    defaults = make()
    unknown = sorted(set(overrides) - set(defaults._fields))
    if unknown:
        raise ValueError(unknown_fields_message(defaults, unknown, f"model {name!r}"))
    return make(**overrides)


def unknown_fields_message(params: Any, unknown: Sequence[str], where: str) -> str:
    """Error text for names that are not fields of ``params``: lists the valid
    names, and the models whose parameters have all of ``unknown``."""
    others = [
        name for name, make in MODELS.items()
        if set(unknown) <= set(make()._fields)
    ]  # fmt: skip
    hint = (
        f" ({', '.join(unknown)}: parameters of {', '.join(others)})" if others else ""
    )
    return (
        f"{where}: unknown parameter(s) {', '.join(unknown)} for "
        f"{type(params).__name__}; expected names among {', '.join(params._fields)}"
        f"{hint}."
    )


HH_CONVENTION_SHIFTS: dict[str, float] = {
    "modern": HHParams().v_shift,
    "hh1952": HHParams.hh1952().v_shift,
}
"""``v_shift`` (mV) of :class:`hhjax.HHParams` in each voltage convention (the
rates are evaluated at ``V − v_shift``)."""


def voltage_convention(params: Any) -> str | None:
    """The voltage convention of a model's parameters: ``"modern"`` or ``"hh1952"``.

    ``"modern"``: absolute V, rest ≈ −65 mV for squid HH; ``"hh1952"``: V from
    rest, rest at 0 mV (:meth:`hhjax.HHParams.hh1952`, ``v_shift`` = 65 mV);
    ``None`` for HH parameters with another ``v_shift`` (or several). Every model
    other than squid HH is in the modern convention. For labels and saved files.
    """
    if not isinstance(params, HHParams):
        return "modern"
    shifts = np.unique(np.asarray(params.v_shift, dtype=float))
    if shifts.size != 1:
        return None
    shift = float(shifts[0])
    return next((k for k, s in HH_CONVENTION_SHIFTS.items() if s == shift), None)
