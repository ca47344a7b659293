"""Conductance-based models assembled from channels.

A *channel* owns some gating variables and one ionic current; a *model* is a list of
channels plus a membrane capacitance. The model derives everything the integrators
and :func:`hhjax.simulate` need — the state derivative, gate steady states and time
constants, the currents to record — so those are written once and work for every
model (squid HH, the Pospischil et al. 2008 cortical models, your own).

Units: V in mV, t in ms, rates in 1/ms, conductances in mS/cm², currents in µA/cm²
(ionic currents positive **outward**, ``I = g · gates · (V − E)``; the injected
current ``i_ext`` positive **inward**, i.e. depolarising), capacitance in µF/cm².
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.typing import ArrayLike


def document_fields(cls: type) -> type:
    """Class decorator for a ``NamedTuple`` of parameters, state or trace: gives
    each field the text of its entry in the class docstring's ``Attributes:``
    section (``name: text``, continuation lines indented further), so that
    ``help(cls.field)`` shows its meaning and unit.

    Raises:
        TypeError: at import, if a field has no entry or an entry names no field.
    """
    entries: dict[str, str] = {}
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    start = lines.index("Attributes:") + 1 if "Attributes:" in lines else len(lines)
    name = None
    for line in lines[start:]:
        if line and not line.startswith(" "):
            break  # the next section
        entry = re.match(r"^    (\w+): (.*)$", line)
        if entry:
            name = entry[1]
            entries[name] = entry[2]
        elif line.strip() and name is not None:
            entries[name] += " " + line.strip()
    if set(entries) != set(cls._fields):
        raise TypeError(
            f"{cls.__name__}'s docstring documents {sorted(entries)} under "
            f"'Attributes:', its fields are {list(cls._fields)}."
        )
    for field in cls._fields:
        getattr(cls, field).__doc__ = entries[field]
    return cls


class GateRates(NamedTuple):
    """Opening and closing rates of one gate, 1/ms (any shape)."""

    alpha: Array
    beta: Array

    @classmethod
    def relaxing_to(cls, x_inf: Array, tau: Array) -> GateRates:
        """Rates of a gate that relaxes to ``x_inf`` with time constant ``tau`` (ms):
        ``α = x∞/τ``, ``β = (1 − x∞)/τ``."""
        return cls(x_inf / tau, (1.0 - x_inf) / tau)


@dataclasses.dataclass(frozen=True)
class Channel:
    """An ion channel: its gates, their rates, and its current.

    Subclasses set ``name`` (the current is recorded as ``i_<name>``) and ``gates``
    (names of the state fields this channel owns), and implement :meth:`rates` and
    :meth:`current`; ``q10_param`` names the parameter field with the temperature
    factor of this channel's rates (default ``"q10"``). Both read their parameters from the model's parameter pytree by
    field name, so a channel works in any model whose parameters have those fields.
    ``conductance_param`` names the field whose value 0 switches the channel off
    (its current is then 0 whatever its gates): :func:`hhjax.simulate` skips such
    a channel when that field is compiled in as 0 (see :meth:`Model.switched_off`).

    A subclass must be decorated with ``@dataclasses.dataclass(frozen=True)`` (so
    that its ``name`` and ``gates`` replace these defaults); rates of the
    Hodgkin–Huxley shapes are best built from :mod:`hhjax.rates`; test it with
    :meth:`Model.check_channels`. A worked example: docs/models.md.
    """

    name: str = ""
    gates: tuple[str, ...] = ()
    q10_param: str = "q10"  # parameter field holding this channel's rate Q10
    conductance_param: str | None = None  # field whose 0 switches the channel off

    def is_off(self, params: Any) -> bool:
        """Whether ``params`` switch this channel off: its ``conductance_param``
        is the plain Python number 0 (a compile-time constant, never a traced or
        array value)."""
        if self.conductance_param is None:
            return False
        g = getattr(params, self.conductance_param)
        return type(g) in (float, int) and g == 0

    def rates(self, v: Array, params: Any) -> dict[str, GateRates]:
        """Rates of each gate at temperature-reference conditions.

        Args:
            v: membrane potential, mV, shape ``(*batch)``.
            params: the model's parameter pytree.

        Returns:
            ``{gate_name: GateRates(alpha, beta)}`` in 1/ms, unscaled by temperature.
        """
        return {}

    def current(self, v: Array, gates: dict[str, Array], params: Any) -> Array:
        """Ionic current, µA/cm², positive outward, shape ``(*batch)``."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Model:
    """A single-compartment conductance-based model assembled from channels.

    Attributes:
        name: short name used on the command line and in saved files (e.g. ``"hh"``).
        channels: the channels, in the order their currents are recorded.
        params_type: ``NamedTuple`` class of the parameters; must have fields
            ``c_m`` (µF/cm²), ``temperature`` (°C), ``q10`` (rates) and ``q10_g``
            (conductances), plus every field the channels read.
        state_type: ``NamedTuple`` class with fields ``("v", *gates)``.
        trace_type: ``NamedTuple`` class with fields
            ``("t", "v", *gates, *("i_" + channel.name))``.
        reference_temperature: temperature at which the channels' rates and
            conductances are given, °C.
        off: names of channels switched off (see :meth:`switched_off`); empty
            for a model as defined.
    """

    name: str
    channels: tuple[Channel, ...]
    params_type: type
    state_type: type
    trace_type: type
    reference_temperature: float
    off: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # A list would pass here but not as jit's static (hashable) argument.
        object.__setattr__(self, "channels", tuple(self.channels))
        for ch in self.channels:
            if not isinstance(ch, Channel):
                made = (
                    f" (a class: use an instance, {ch.__name__}())"
                    if isinstance(ch, type)
                    else ""
                )
                raise TypeError(
                    f"Model {self.name!r}: every channel must be a hhjax.Channel "
                    f"instance; got {ch!r}{made}."
                )
        object.__setattr__(self, "off", frozenset(self.off))
        if self.off:  # a view of a registered model (switched_off), not a model
            unknown = self.off - {ch.name for ch in self.channels}
            if unknown:
                raise ValueError(f"No channel(s) {sorted(unknown)} to switch off.")
            return
        _check_channel_names(self.name, self.channels)
        expected_state = ("v", *self.gate_names)
        if tuple(self.state_type._fields) != expected_state:
            raise TypeError(
                f"{self.state_type.__name__} fields {self.state_type._fields} do not "
                f"match the channels' gates {expected_state}."
            )
        expected_trace = ("t", *expected_state, *self.current_names)
        if tuple(self.trace_type._fields) != expected_trace:
            raise TypeError(
                f"{self.trace_type.__name__} fields {self.trace_type._fields} do not "
                f"match {expected_trace}."
            )
        needed = {"c_m", "temperature", "q10_g"}
        for ch in self.channels:
            needed |= {ch.q10_param, ch.conductance_param} - {None}
        missing = sorted(needed - set(self.params_type._fields))
        if missing:
            raise TypeError(
                f"{self.params_type.__name__} has no field(s) {missing}, which model "
                f"{self.name!r} needs (c_m, temperature, q10_g and each channel's "
                "q10_param and conductance_param)."
            )
        registered = _MODELS.get(self.params_type)
        if registered is not None and registered != self:
            raise ValueError(
                f"{self.params_type.__name__} already belongs to model "
                f"{registered.name!r}, and the model of a parameter tuple is found by "
                f"its type; give model {self.name!r} its own parameter type, e.g. "
                f"`class MyParams({self.params_type.__name__}): pass`."
            )
        _MODELS[self.params_type] = self

    def switched_off(self, params: Any) -> Model:
        """This model without the channels that ``params`` switch off.

        A channel is off when :meth:`Channel.is_off` (its ``conductance_param``
        field is the plain Python number 0). In the
        returned model an off channel has no rates and its current is 0: its gates
        (:attr:`held_gates`) keep their values (derivative 0) and its recorded
        current is 0. V evolves exactly as in the full model, where the current is
        ``0 · …``. ``self`` if no channel is off. (Inside :func:`hhjax.simulate`
        the held gates are left out of the scan's carry: ``None`` in the state,
        which :meth:`derivative` and the integrators pass through.)
        """
        off = frozenset(ch.name for ch in self.channels if ch.is_off(params))
        return dataclasses.replace(self, off=off) if off else self

    @property
    def _active(self) -> tuple[Channel, ...]:
        return tuple(ch for ch in self.channels if ch.name not in self.off)

    @property
    def held_gates(self) -> tuple[str, ...]:
        """Gates of the channels switched off (held at their values)."""
        return tuple(g for ch in self.channels if ch.name in self.off for g in ch.gates)

    @property
    def gate_names(self) -> tuple[str, ...]:
        return tuple(g for ch in self.channels for g in ch.gates)

    @property
    def current_names(self) -> tuple[str, ...]:
        return tuple(f"i_{ch.name}" for ch in self.channels)

    # -- temperature ---------------------------------------------------------------
    def rate_factor(self, params: Any, channel: Channel) -> Array:
        """Q10 factor of a channel's rates, ``q10 ** ((T − T_ref) / 10)``, with the
        channel's own Q10 field (``channel.q10_param``); dimensionless."""
        q10 = getattr(params, channel.q10_param)
        return q10 ** ((params.temperature - self.reference_temperature) / 10.0)

    def conductance_factor(self, params: Any) -> Array:
        """Q10 factor of the conductances, ``q10_g ** ((T − T_ref) / 10)``."""
        return params.q10_g ** (
            (params.temperature - self.reference_temperature) / 10.0
        )

    # -- the right-hand side ---------------------------------------------------------
    def rates(self, v: Array, params: Any) -> dict[str, GateRates]:
        """Temperature-scaled rates of every gate at ``v`` (mV): ``{gate: (α, β)}``."""
        out: dict[str, GateRates] = {}
        for ch in self._active:
            phi = self.rate_factor(params, ch)
            with _reading_fields_of(ch, params):
                rates = ch.rates(v, params)
            if sorted(rates) != sorted(ch.gates):  # checked when traced: no cost
                raise ValueError(
                    f"Channel {ch.name!r} ({type(ch).__name__}) declares gates "
                    f"{tuple(ch.gates)} but its rates() returned {tuple(rates)}; "
                    "it must return one GateRates(alpha, beta) for each gate."
                )
            for gate, r in rates.items():
                out[gate] = GateRates(phi * r.alpha, phi * r.beta)
        return out

    def currents(self, state: Any, params: Any) -> dict[str, Array]:
        """Ionic currents ``{"i_<channel>": µA/cm², positive outward}`` (0 for a
        channel switched off)."""
        active = self._active_currents(state, params)
        return {
            f"i_{ch.name}": active.get(f"i_{ch.name}", jnp.zeros_like(state.v))
            for ch in self.channels
        }

    def _active_currents(self, state: Any, params: Any) -> dict[str, Array]:
        gates = state._asdict()
        scale = self.conductance_factor(params)
        out = {}
        for ch in self._active:
            with _reading_fields_of(ch, params):
                out[f"i_{ch.name}"] = scale * ch.current(state.v, gates, params)
        return out

    def total_current(self, state: Any, params: Any) -> Array:
        """Sum of the ionic currents, µA/cm², positive outward."""
        return sum(self.currents(state, params).values())

    def dv_dt(self, state: Any, params: Any, i_ext: Array) -> Array:
        """``(i_ext − Σ I_ion) / c_m`` in mV/ms (``i_ext`` in µA/cm², inward > 0).

        The currents are subtracted one by one from ``i_ext`` in channel order, the
        order of operations of pyHH's ``Isum = I − INa − IK − IKleak``.
        """
        net = i_ext
        for current in self._active_currents(state, params).values():
            net = net - current  # a channel switched off adds exactly 0
        return net / params.c_m

    def derivative(self, state: Any, params: Any, i_ext: Array) -> Any:
        """Time derivative of the whole state, a ``state_type`` in (unit)/ms.

        Gates follow ``dx/dt = α (1 − x) − β x`` (evaluated in this form, as pyHH
        does, so forward Euler reproduces it to the last bit); the gates of a
        channel switched off (:meth:`switched_off`) have derivative 0.
        """
        rates = self.rates(state.v, params)
        gate_derivs = {}
        for g in self.gate_names:
            x, r = getattr(state, g), rates.get(g)
            if r is None:  # channel switched off: the gate is held (or left out)
                gate_derivs[g] = None if x is None else jnp.zeros_like(x)
            else:
                gate_derivs[g] = r.alpha * (1.0 - x) - r.beta * x
        return self.state_type(v=self.dv_dt(state, params, i_ext), **gate_derivs)

    def check_channels(
        self, params: Any, v: ArrayLike | None = None, *, slopes: bool = True
    ) -> None:
        """Test every channel with ``params``: a self-test for model authors
        (docs/models.md); :func:`hhjax.simulate` runs its value checks to
        suggest a cause when a run becomes non-finite.

        On the voltages ``v`` (mV; default −120 to +60 mV in 0.5 mV steps,
        which holds the 0/0 points of rates written at whole or
        half millivolts, as squid HH's; pass a grid through a shifted one, e.g.
        a Pospischil ``v_t`` + 13 mV), each gate's temperature-scaled rates
        must be finite and ≥ 0 with α + β > 0 (else its steady state and time
        constant are undefined), and with ``slopes`` their reverse-mode
        derivatives with respect to V finite; each current must be finite
        (gates at 0.5) and exactly 0 when the channel's ``conductance_param``
        is 0. Channels switched off (:meth:`switched_off`) are skipped.

        Args:
            params: the model's parameter tuple with concrete values; batched
                fields are tested cell by cell.
            v: voltages to test at, mV, 1-D.
            slopes: also check the derivatives (two gradients per gate).

        Raises:
            ChannelCheckError: (a ``ValueError``) naming each channel, gate and
                voltage that fails (the first few, and how many more).
        """
        grid = _CHECK_GRID_MV if v is None else np.ravel(np.asarray(v, dtype=float))
        params = params._replace(
            **{k: np.asarray(x, dtype=float) for k, x in params._asdict().items()}
        )
        batch = np.broadcast_shapes(*(x.shape for x in params))
        volts = jnp.broadcast_to(
            jnp.asarray(grid, jnp.result_type(float)).reshape(
                grid.shape + (1,) * len(batch)
            ),
            grid.shape + batch,
        )
        problems: list[str] = []

        def report(what: str, bad: Any) -> None:
            bad = np.broadcast_to(np.asarray(bad), grid.shape + batch)
            if bad.any():
                k, *cell = np.argwhere(bad)[0]
                where = f" (cell {tuple(int(c) for c in cell)})" if batch else ""
                problems.append(f"{what} at V = {grid[k]:g} mV{where}")

        def slope(gate: str, k: int) -> np.ndarray:
            # Reverse mode, one rate at a time: a rate whose 0/0 point is patched
            # by a single jnp.where has a finite forward-mode slope but a NaN
            # gradient (the 0 cotangent of the unused branch times its NaN).
            return np.asarray(
                jax.grad(lambda u: jnp.sum(self.rates(u, params)[gate][k]))(volts)
            )

        rates = self.rates(volts, params)
        for ch in self._active:
            for g in ch.gates:
                gate = f"channel {ch.name!r} ({type(ch).__name__}), gate {g!r}"
                for k, name in enumerate(("alpha", "beta")):
                    x = np.asarray(rates[g][k])
                    report(f"{gate}: {name} is not finite", ~np.isfinite(x))
                    report(f"{gate}: {name} < 0 (1/ms)", x < 0)
                    if not slopes:
                        continue
                    try:
                        dx = slope(g, k)
                    except Exception as err:  # noqa: BLE001 (reported as a problem)
                        text = (
                            str(err).strip().splitlines()[0] if str(err).strip() else ""
                        )
                        problems.append(
                            f"{gate}: d{name}/dV cannot be taken in reverse mode "
                            f"({type(err).__name__}: {text})"
                        )
                        continue
                    report(f"{gate}: d{name}/dV is not finite", ~np.isfinite(dx))
                total = np.asarray(rates[g].alpha + rates[g].beta)
                report(f"{gate}: alpha + beta = 0 (no steady state)", total == 0)
        half = {g: jnp.full_like(volts, 0.5) for g in self.gate_names}
        for ch in self._active:
            with _reading_fields_of(ch, params):
                i = np.asarray(ch.current(volts, half, params))
            where = f"channel {ch.name!r} ({type(ch).__name__})"
            report(f"{where}: current is not finite (gates at 0.5)", ~np.isfinite(i))
            if ch.conductance_param is not None:
                zero = params._replace(**{ch.conductance_param: 0.0})
                with _reading_fields_of(ch, zero):
                    i0 = np.asarray(ch.current(volts, half, zero))
                report(
                    f"{where}: current is not 0 with {ch.conductance_param} = 0 "
                    "(its conductance_param names another field than the "
                    "conductance its current uses?)",
                    i0 != 0,
                )
        if problems:
            shown = "; ".join(problems[:_PROBLEMS_SHOWN])
            more = len(problems) - _PROBLEMS_SHOWN
            raise ChannelCheckError(
                f"Model {self.name!r} fails its channel checks: {shown}"
                + (f"; and {more} more." if more > 0 else ".")
            )

    def steady_state(self, v: Array, params: Any) -> Any:
        """State with every gate at its steady state ``α / (α + β)`` for ``v`` (mV)."""
        v = jnp.asarray(v)
        every = dataclasses.replace(self, off=frozenset()) if self.off else self
        gates = {
            g: r.alpha / (r.alpha + r.beta) for g, r in every.rates(v, params).items()
        }
        return self.state_type(v=v, **gates)


_PROBLEMS_SHOWN = 4  # problems listed by Model.check_channels; the rest counted

_CHECK_GRID_MV = np.arange(-120.0, 60.25, 0.5)
"""Voltages (mV) at which :meth:`Model.check_channels` tests the channels by
default: −120 to +60 mV in 0.5 mV steps."""


class ChannelCheckError(ValueError):
    """A model's channels fail :meth:`Model.check_channels`.

    Rates not finite or negative, no steady state, NaN slopes, or a current that
    its conductance does not switch off."""


def _check_channel_names(model: str, channels: tuple[Channel, ...]) -> None:
    """Each channel named, and no two sharing a name, a gate or a conductance
    field: the state, the trace and :meth:`Model.switched_off` rely on that."""
    owner: dict[str, str] = {"v": "the membrane potential", "t": "the time axis"}
    names: dict[str, str] = {}
    conductances: dict[str, str] = {}
    for ch in channels:
        kind = type(ch).__name__
        if not ch.name:
            raise TypeError(
                f"Model {model!r}: channel {kind} has no name. Declare `name` and "
                "`gates` as fields of a subclass decorated with "
                "@dataclasses.dataclass(frozen=True) (without the decorator, class "
                "attributes do not replace Channel's defaults, '' and ())."
            )
        if ch.name in names:
            raise ValueError(
                f"Model {model!r}: channels {names[ch.name]} and {kind} are both "
                f"named {ch.name!r}; each current is recorded as i_<name>, so "
                "names must differ."
            )
        names[ch.name] = kind
        for g in ch.gates:
            if g in owner:
                raise ValueError(
                    f"Model {model!r}: gate {g!r} of channel {ch.name!r} clashes "
                    f"with {owner[g]}; state fields must differ, so rename the gate."
                )
            owner[g] = f"a gate of channel {ch.name!r}"
        field = ch.conductance_param
        if field is not None and field in conductances:
            raise ValueError(
                f"Model {model!r}: channels {conductances[field]!r} and {ch.name!r} "
                f"both name {field!r} as their conductance_param; setting it to 0 "
                "would switch both off. Give each channel its own conductance field."
            )
        if field is not None:
            conductances[field] = ch.name


@contextlib.contextmanager
def _reading_fields_of(channel: Channel, params: Any) -> Iterator[None]:
    """Turn a channel's read of a parameter field that ``params`` lacks (a bare
    ``AttributeError`` from deep inside a simulation) into a clear error."""
    try:
        yield
    except AttributeError as err:
        if getattr(err, "obj", None) is not params:
            raise
        raise TypeError(
            f"Channel {channel.name!r} ({type(channel).__name__}) reads parameter "
            f"{err.name!r}, which {type(params).__name__} has no field for; add it "
            "to the model's parameter type."
        ) from err


_MODELS: dict[type, Model] = {}


def model_of(params: Any) -> Model:
    """The :class:`Model` that a parameter pytree belongs to.

    Raises:
        TypeError: if ``params`` is not an instance of a registered parameter type.
    """
    model = _MODELS.get(type(params))
    if model is None:
        known = ", ".join(sorted(t.__name__ for t in _MODELS))
        raise TypeError(
            f"`params` must be a model's parameter tuple ({known}); got "
            f"{type(params).__name__}."
        )
    return model
