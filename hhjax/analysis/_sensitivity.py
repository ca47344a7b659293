"""Sensitivities of scalar features to the parameters: gradients and elasticities."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from hhjax._checks import check_params
from hhjax._model import document_fields
from hhjax.analysis._fixed_points import check_one_cell


@document_fields
class Sensitivity(NamedTuple):
    """d(feature)/d(parameter) for several features and parameters.

    ``elasticities[i, j] = (p_j / f_i) · ∂f_i/∂p_j`` is dimensionless: the relative
    change of feature ``i`` per relative change of parameter ``j`` (0.5 means a 1 %
    increase of the parameter raises the feature by 0.5 %). It is NaN where the
    feature is 0, and for the parameters on an interval scale (below).

    Elasticities suit parameters with a natural zero (conductances, capacitance,
    time constants, Q10s). For parameters on an interval scale — reversal
    potentials and voltage shifts (names ``e_*``, ``v_*``; mV: their zero is that
    of the voltage convention) and the temperature (°C) — an elasticity would be
    proportional to the parameter's arbitrary distance from that zero: ``e_k`` is
    −77 mV in the modern convention and −12 mV in HH's 1952 one, so the same cell
    would give elasticities 6.4× apart, and 0 °C is no more natural a zero than
    0 K. Their elasticities are NaN (``n/a`` in the table and the plot); read
    their ``gradients`` (per mV, per °C; ``table(relative=False)``,
    ``plot_sensitivities(relative=False)``).

    Attributes:
        features: feature names, length F
        parameters: parameter names, length P
        values: feature values, shape (F,), units of each feature
        parameter_values: parameter values, shape (P,), units of each parameter
        gradients: ∂f_i/∂p_j, shape (F, P), feature unit per parameter unit
        elasticities: relative sensitivities (above), shape (F, P), dimensionless
    """

    features: tuple[str, ...]
    parameters: tuple[str, ...]
    values: np.ndarray
    parameter_values: np.ndarray
    gradients: np.ndarray
    elasticities: np.ndarray

    def table(self, *, relative: bool = True, digits: int = 4) -> str:
        """A plain-text table, features as rows and parameters as columns.

        Args:
            relative: show elasticities (default) instead of raw gradients.
            digits: significant digits.
        """
        data = self.elasticities if relative else self.gradients
        head = ["feature", "value", *self.parameters]
        rows = [
            [
                name,
                f"{value:.{digits}g}",
                *("n/a" if np.isnan(x) else f"{x:.{digits}g}" for x in row),
            ]
            for name, value, row in zip(self.features, self.values, data, strict=True)
        ]
        widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
        lines = [
            "  ".join(s.rjust(w) for s, w in zip(r, widths, strict=True))
            for r in [head, *rows]
        ]
        kind = "elasticity (dlog f / dlog p)" if relative else "gradient df/dp"
        interval = [p for p in self.parameters if on_interval_scale(p)]
        note = (
            f"\nn/a: {', '.join(interval)} lie on an interval scale (mV, degC); "
            "see their gradients: table(relative=False)"
            if relative and interval
            else ""
        )
        return f"{kind}\n" + "\n".join(lines) + note


def on_interval_scale(name: str) -> bool:
    """Whether a parameter's zero is arbitrary (a reversal potential ``e_*`` or a
    voltage shift ``v_*``, mV, or the temperature, °C), so that it has no
    elasticity (:class:`Sensitivity`)."""
    return name.startswith(("e_", "v_")) or name == "temperature"


def sensitivities(
    features: Callable[[Any], Any] | Mapping[str, Callable[[Any], Any]],
    params: Any,
    parameters: Sequence[str] | None = None,
) -> Sensitivity:
    """Gradients and elasticities of scalar features w.r.t. named parameters.

    Each feature is a function ``params -> scalar`` built from differentiable hhjax
    pieces (e.g. the first spike time of a simulation, the resting potential, a Hopf
    current); its gradient is one ``jax.grad`` (reverse mode) call.

    Args:
        features: one callable, or a mapping ``{name: callable}``.
        params: the parameter tuple to differentiate at (scalar leaves).
        parameters: names of the fields to report; default: every field whose value
            is non-zero (elasticities of zero-valued parameters are 0 by definition).
            Reversal potentials, voltage shifts and the temperature have
            gradients but no elasticities (NaN: their scale's zero is arbitrary,
            see :class:`Sensitivity`).

    Returns:
        A :class:`Sensitivity`; ``.table()`` prints it, and
        :func:`hhjax.analysis.plot_sensitivities` draws it as a heat map.

    Raises:
        ValueError: ``features`` neither a callable nor a non-empty mapping of
            callables, an unknown parameter name, a feature that is not a
            scalar, or invalid parameter values (NaN, a negative conductance,
            …).
    """
    if callable(features):
        features = {getattr(features, "__name__", "feature"): features}
    if not isinstance(features, Mapping):
        raise ValueError(
            "`features` must be one callable `params -> scalar` or a mapping "
            f"{{name: callable}}; got {type(features).__name__}."
        )
    if not features:
        raise ValueError("`features` must hold at least one feature; got none.")
    not_callable = [name for name, fn in features.items() if not callable(fn)]
    if not_callable:
        raise ValueError(
            f"Every feature must be a callable `params -> scalar`; {not_callable} "
            "are not."
        )
    if isinstance(parameters, str):
        raise ValueError(
            f"`parameters` must be a sequence of names, e.g. ({parameters!r},); got "
            f"the string {parameters!r}."
        )
    check_one_cell(params, "sensitivities")
    check_params(params)  # a NaN or negative conductance: an error, not NaN rows
    # Integer leaves (e.g. g_na=120) cannot be differentiated: use floats.
    params = jax.tree.map(lambda leaf: jnp.asarray(leaf, float), params)
    fields = params._fields
    if parameters is None:
        parameters = tuple(f for f in fields if float(getattr(params, f)) != 0.0)
    unknown = [p for p in parameters if p not in fields]
    if unknown or not parameters:
        raise ValueError(
            f"`parameters` must be names among {fields}; got {tuple(parameters)}."
        )
    p_values = np.array([float(getattr(params, p)) for p in parameters])
    values, grads = [], []
    for name, fn in features.items():
        # vjp, not eval_shape, to see the output: a feature may need concrete
        # values (e.g. fold_current's checks), as under jax.grad.
        value, pullback = jax.vjp(fn, params)
        if not (
            isinstance(value, (float, int, np.ndarray, jax.Array))
            and np.shape(value) == ()
        ):
            got = (
                f"shape {np.shape(value)}"
                if hasattr(value, "shape")
                else type(value).__name__
            )
            raise ValueError(f"Feature {name!r} must return a scalar; got {got}.")
        (grad,) = pullback(jnp.ones_like(value))
        values.append(float(value))
        grads.append([float(getattr(grad, p)) for p in parameters])
    values_arr, grads_arr = np.array(values), np.array(grads)
    with np.errstate(divide="ignore", invalid="ignore"):
        elasticity = np.where(
            values_arr[:, None] != 0,
            grads_arr * p_values[None, :] / values_arr[:, None],
            np.nan,
        )
    elasticity[:, [on_interval_scale(p) for p in parameters]] = np.nan
    return Sensitivity(
        features=tuple(features),
        parameters=tuple(parameters),
        values=values_arr,
        parameter_values=p_values,
        gradients=grads_arr,
        elasticities=elasticity,
    )
