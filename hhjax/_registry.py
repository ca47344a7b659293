"""Model names used on the command line and in saved files.

A name maps to a constructor of default parameters; the model follows from the
parameters' type (:func:`hhjax.model_of`). Several names may share one model and
differ only in their parameter set (``"pospischil-rs"`` / ``"pospischil-fs"``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

import numpy as np

from hhjax.models.hh import HHParams
from hhjax.models.pospischil import PospischilParams

MODELS: dict[str, Callable[..., Any]] = {
    "hh": HHParams,
    "pospischil-rs": PospischilParams.rs,
    "pospischil-fs": PospischilParams.fs,
}
"""``{name: constructor}``; ``MODELS[name](**overrides)`` gives default parameters.

Register a model of your own with ``MODELS["my-model"] = MyParams`` after building
its :class:`hhjax.Model` (docs/models.md); for the command line and for files
read by other programs, declare it as an entry point instead (:data:`PLUGIN_GROUP`)."""

PLUGIN_GROUP = "hhjax.models"
"""Entry-point group of models from other packages: each entry point's name is the
model name, its object the constructor of default parameters, e.g. in
``pyproject.toml``::

    [project.entry-points."hhjax.models"]
    hh-a = "my_channels.hh_a:HHAParams"

They are added to :data:`MODELS` by :func:`load_model_plugins`, which the
``hhjax`` command line, :func:`default_params` (for a name not yet known) and
:func:`model_names` (for a parameter type no name fits) call; importing hhjax does
not import them."""

_plugins_loaded = False
_plugin_failures: dict[str, str] = {}  # entry-point name: why it did not load


def load_model_plugins() -> list[str]:
    """Add each model of the :data:`PLUGIN_GROUP` entry points to :data:`MODELS`
    (on the first call; names already in :data:`MODELS` are kept).

    Returns:
        One line per entry point that failed to load (its name, value and error);
        the others are added regardless.
    """
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        for ep in entry_points(group=PLUGIN_GROUP):
            if ep.name in MODELS:
                continue
            try:
                make = ep.load()
                if not callable(make):
                    raise TypeError(f"{make!r} is not a constructor of parameters")
            except Exception as err:  # noqa: BLE001 (a broken plugin must not break hhjax)
                text = " ".join(f"{type(err).__name__}: {err}".split())
                _plugin_failures[ep.name] = (
                    f"could not load model {ep.name!r} from {ep.value}: {text}"
                )
                continue
            MODELS[ep.name] = make
    return list(_plugin_failures.values())


def model_names(params: Any) -> list[str]:
    """The names in :data:`MODELS` of the model that ``params`` belong to.

    Several for one model with several parameter sets (the Pospischil RS and FS
    cells); the :data:`PLUGIN_GROUP` models are loaded first when no name fits.
    Empty for a parameter type of no registered model."""

    def matching() -> list[str]:
        return [n for n, make in MODELS.items() if type(make()) is type(params)]

    names = matching()
    if not names:
        load_model_plugins()
        names = matching()
    return names


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
    if isinstance(name, str) and name not in MODELS:
        load_model_plugins()
        if name in _plugin_failures:
            raise ValueError(_plugin_failures[name])
    try:
        make = MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown model {name!r}; expected one of {', '.join(map(repr, MODELS))}. "
            "A model of your own must be registered first: "
            f"hhjax.MODELS[{name!r}] = its parameter type, in the program that "
            f"reads it, or as a {PLUGIN_GROUP!r} entry point (docs/models.md)."
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
