"""Model names used on the command line and in saved files.

A name maps to a constructor of default parameters; the model follows from the
parameters' type (:func:`hhjax.model_of`). Several names may share one model and
differ only in their parameter set (``"pospischil-rs"`` / ``"pospischil-fs"``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
        ValueError: unknown name.
    """
    try:
        make = MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown model {name!r}; expected one of {', '.join(map(repr, MODELS))}."
        ) from None
    return make(**overrides)
