"""Loss functions for fitting a model to recorded voltage, and what they cost.

Every built-in loss is a weighted sum of squares of *residuals* (so Gauss–Newton /
Levenberg–Marquardt and the Laplace uncertainty apply), divided by the sum of the
weights: a weighted mean square, in mV² for the voltage losses. Residuals are
computed for one parameter set; fits ``vmap`` them over starts.

* :class:`Shooting` (default): multiple shooting, then the whole sweep. The trace
  is first cut into 2 ms windows; each window is simulated from the *recorded* state at
  its start — V from the data plus a fitted offset ``δ`` per window (its own data
  point penalises it; this removes the bias that recording noise in the starting
  V would cause), the gates driven by the recorded V (:func:`gates_from_voltage`)
  — and compared with the data inside the window. Short windows keep a spike
  from drifting far from its recorded time, so the loss stays smooth and
  informative through spikes, and the windows are simulated in parallel. From
  that optimum (within ~2 % of the truth on the benchmark problem) a stage of
  20 ms windows (starting from the offsets just fitted) and then the whole sweep
  simulated from rest (:class:`TraceMSE`) follow: the latter is the
  maximum-likelihood fit for white recording noise, free of the bias that the
  noise-driven gate states at the window starts leave. The 2 ms stage runs a
  cheaper integrator (``coarse_method``, second-order exponential midpoint
  instead of RK4): it only has to reach the basin of the 20 ms stage, which
  uses the fit's method.
* :class:`TraceMSE`: plain mean squared error of V over the whole sweep,
  simulated from rest — right for subthreshold data, a rough landscape with
  misaligned spikes.
* :class:`EquationError`: the regression form: with the gates driven
  by the recorded V, ``c_m dV/dt − I_ext = −Σ I_ion`` is linear in the
  conductances and ``c_m`` (bilinear with the reversal potentials). Its residual is
  that current balance integrated over short blocks (integration instead of a
  derivative keeps recording noise from being amplified). No simulation: cheap,
  and one undamped Gauss–Newton step would solve it exactly for conductances and
  ``c_m`` (the fit's steps are capped by a trust region: a few from a far start).
* :class:`CustomLoss`: any ``fn(trace, data) -> scalar`` of a simulated
  :class:`hhjax.Trace` (whole sweeps, from rest) and :class:`FitArrays`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax

import hhjax
from fitting._data import FitArrays
from fitting._params import as_real_number, positive_finite, real_in


# ------------------------------------------------------------------ gate driving
def linear_recurrence(a: Array, b: Array, x0: Array, block: int = 0) -> Array:
    """All states of ``x_{k+1} = a_k x_k + b_k`` from ``x_0``, in two short scans.

    The steps are cut into ``B`` blocks of ``K`` (≈ √n each): one scan over ``K``
    runs every block at once from a zero start, a scan over ``B`` chains the block
    ends, and a last elementwise pass adds each block's start. ``K + B``
    sequential steps instead of ``n``, and a small program to compile.

    Args:
        a, b: ``(n, *batch)``.
        x0: ``(*batch)``.
        block: block length ``K`` (default ≈ √n).

    Returns:
        ``(n + 1, *batch)``: ``x_0 … x_n``.
    """
    n = a.shape[0]
    size = block or max(1, int(round(n**0.5)))
    n_blocks = -(-n // size)
    pad = n_blocks * size - n
    if pad:
        widths = [(0, pad)] + [(0, 0)] * (a.ndim - 1)
        a = jnp.pad(a, widths, constant_values=1.0)
        b = jnp.pad(b, widths)
    a = a.reshape((n_blocks, size) + a.shape[1:]).swapaxes(0, 1)  # (K, B, ...)
    b = b.reshape((n_blocks, size) + b.shape[1:]).swapaxes(0, 1)

    def within(carry, ab):  # x_end = A x_start + C for every block at once
        big_a, big_c = carry
        big_a, big_c = ab[0] * big_a, ab[0] * big_c + ab[1]
        return (big_a, big_c), (big_a, big_c)

    ones = jnp.ones(a.shape[1:], a.dtype)
    _, (big_a, big_c) = lax.scan(within, (ones, jnp.zeros_like(ones)), (a, b))

    def across(x, ac):  # chain the block ends
        return ac[0] * x + ac[1], x

    x0 = jnp.broadcast_to(x0, a.shape[2:]).astype(a.dtype)
    _, starts = lax.scan(across, x0, (big_a[-1], big_c[-1]))  # (B, ...)
    inside = big_a * starts[None] + big_c  # (K, B, ...): x after each step
    steps = inside.swapaxes(0, 1).reshape((n_blocks * size,) + a.shape[2:])[:n]
    return jnp.concatenate([x0[None], steps])


def gates_from_voltage(params: Any, v: Array, dt: float) -> dict[str, Array]:
    """Gate trajectories driven by a recorded voltage ("teacher forcing").

    The gate ODEs ``dx/dt = α(V)(1 − x) − β(V) x`` depend on V alone, so a recorded
    V determines them. Each step is integrated exactly for V held at the step's
    midpoint ``(V_k + V_{k+1})/2``:
    ``x_{k+1} = x∞ + (x_k − x∞) exp(−dt (α + β))``, starting from the steady state
    at ``V_0``. The recurrence is linear in ``x`` and is evaluated blockwise
    (:func:`linear_recurrence`), about 2√n sequential steps.

    Args:
        params: the model's parameter tuple (voltage convention of the data).
        v: recorded membrane potential, mV, ``(samples, *batch)``.
        dt: sampling interval, ms.

    Returns:
        ``{gate name: array (samples, *batch)}``, dimensionless in [0, 1].

    Raises:
        ValueError: a concrete ``dt`` that is not a positive finite number.
    """
    step = as_real_number(dt)  # None when traced: checked by its caller
    if step is not None and not positive_finite(step):
        raise ValueError(
            f"`dt` must be a positive sampling interval in ms; got {dt!r}."
        )
    model = hhjax.model_of(params)
    v = jnp.asarray(v)
    rates = model.rates(0.5 * (v[:-1] + v[1:]), params)
    start = model.steady_state(v[0], params)
    gates = {}
    for name, r in rates.items():
        total = r.alpha + r.beta
        decay = jnp.exp(-dt * total)
        gain = r.alpha / total * (1.0 - decay)
        gates[name] = linear_recurrence(decay, gain, getattr(start, name))
    return gates


# ------------------------------------------------------------------------ stages
# A simulated V outside +-V_CAP mV (or NaN, after a numerical blow-up at extreme
# parameters) counts as V_CAP: the loss stays finite, so such a start can still
# move towards parameters where the simulation is stable.
V_CAP = 1000.0


def voltage_error(simulated: Array, recorded: Array) -> Array:
    """``simulated − recorded`` (mV), with non-finite or absurd simulated values
    replaced by ``±V_CAP`` (zero derivative there).

    The replacement is a ``where`` (a select), not a clip: past a blow-up a
    simulated V can be finite but huge (1e300 mV) with an infinite tangent, and
    a clip's derivative would turn that into NaN in every forward-mode Jacobian
    of the window (measured: one such sample froze a Levenberg–Marquardt start).
    """
    inside = jnp.abs(simulated) <= V_CAP  # False for NaN too
    capped = jnp.where(inside, simulated, jnp.where(simulated < 0, -V_CAP, V_CAP))
    return capped - recorded


ResidualFn = Callable[[Any, Any, FitArrays], tuple[Array, Array | None, Array]]
ValueFn = Callable[[Any, Any, FitArrays], Array]


class Stage(NamedTuple):
    """One objective of a fit (a loss may continue through several).

    ``residuals(params, delta, data) -> (r, prior, norm)``: weighted residuals
    ``r``; for losses with per-window offsets ``delta`` (shape ``delta_shape``),
    ``r`` has shape ``(L, *delta_shape)`` and residual ``r[:, g]`` depends on
    ``delta[g]`` alone, and ``prior`` is the weighted offset residual of the same
    shape as ``delta``; ``norm`` is the sum of the weights. The loss is
    ``(Σ r² + Σ prior²) / norm``. ``residuals`` is ``None`` for scalar-only losses,
    which give ``value(params, delta, data)`` instead. ``delta_starts`` (optional)
    gives the sample at which each row of ``delta`` applies, so that the next
    stage can start from the offsets fitted here.
    """

    label: str
    residuals: ResidualFn | None
    value: ValueFn | None
    delta_shape: tuple[int, ...] | None
    delta_starts: tuple[int, ...] | None = None  # sample index of each offset row


def stage_value(stage: Stage, params: Any, delta: Any, data: FitArrays) -> Array:
    """The scalar loss of a stage."""
    if stage.residuals is None:
        return stage.value(params, delta, data)
    r, prior, norm = stage.residuals(params, delta, data)
    dtype = jnp.float64 if jax.config.jax_enable_x64 else r.dtype
    total = jnp.sum(r.astype(dtype) ** 2)
    if prior is not None:
        total = total + jnp.sum(prior.astype(dtype) ** 2)
    return total / norm.astype(dtype)


class Loss:
    """Base class of the losses: a loss provides one or more :class:`Stage`\\ s.

    Subclasses implement :meth:`stages`. ``name`` is recorded in result files.
    """

    name: str = "loss"

    def stages(
        self, n_samples: int, n_sweeps: int, dt: float, method: str
    ) -> tuple[Stage, ...]:
        raise NotImplementedError

    def settings(self) -> dict:
        """JSON-able description of the loss (for result files and checkpoints);
        a function is described by its name (a checkpointed fit also compares the
        loss's values, see :func:`fitting.fit`)."""
        fields = dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}
        return {
            "name": self.name,
            **{k: _name_of(v) for k, v in fields.items() if k != "fn"},
        }


def _name_of(value: Any) -> Any:
    """A callable's qualified name, or its type's for a callable object such as a
    ``functools.partial`` (a repr holds a memory address, different in every
    process); other values as they are."""
    if not callable(value):
        return value
    return getattr(value, "__qualname__", type(value).__qualname__)


def simulate_samples(
    params: Any,
    i_ext: Array,
    dt: float,
    method: str,
    state0: Any,
    substeps: int = 1,
    record: Sequence[str] = ("v",),
    return_state: bool = False,
):
    """:func:`hhjax.simulate` on the data's time grid, with ``substeps`` steps of
    ``dt / substeps`` per sample (the current held over each sample), recording
    every sample. More substeps keep explicit methods stable for stiff parameter
    sets (e.g. large g_na / c_m) at the data's sampling interval."""
    if substeps > 1:
        i_ext = jnp.repeat(i_ext, substeps, axis=0)
    return hhjax.simulate(
        params,
        i_ext,
        dt / substeps,
        state0=state0,
        method=method,
        record=tuple(record),
        stride=substeps,
        return_state=return_state,
        check_inputs=False,
    )


def _positive(value: Any, name: str, expected: str) -> float:
    """``value`` as a finite float > 0, else a ValueError "{name} must be
    {expected}; got ..." (see :func:`fitting._params.real_in`)."""
    return real_in(value, name, expected, positive_finite)


def _check_substeps(substeps: Any) -> None:
    if not (isinstance(substeps, int) and substeps >= 1):
        raise ValueError(f"`substeps` must be an integer >= 1; got {substeps!r}.")


def windows_in_order(windows_ms: Sequence[float | None]) -> bool:
    """Whether shooting stages refine: each window longer than the one before,
    the whole sweep (``None``) last. Else the final loss and standard errors
    would come from a short-window stage."""
    lengths = [math.inf if w is None else w for w in windows_ms]
    return all(a < b for a, b in zip(lengths[:-1], lengths[1:], strict=True))


@dataclasses.dataclass(frozen=True)
class Shooting(Loss):
    """Multiple shooting with a continuation schedule of window lengths.

    Attributes:
        windows_ms: window lengths, ms, one stage each, in order; ``None`` is the
            whole sweep simulated from rest (a :class:`TraceMSE` stage). Default
            ``(2.0, 20.0, None)``: 2 ms windows make the loss nearly convex from
            starts a factor 2 off; 20 ms windows remove most of the bias that
            gate states driven by noisy V leave there; the whole sweep then gives
            the maximum-likelihood fit (it assumes each sweep starts at rest
            under its first current sample; for data that do not, or a model
            that cannot reproduce the spikes, use windows only, ``(2.0, 20.0)``).
        offsets: fit the starting-V offset ``δ`` of every window (``False``:
            start at the recorded V; kept for comparison — recording noise in
            the starting V then biases the fit, docs/fitting.md).
        robust_mv: each window's mean square error ``s`` enters the loss as
            ``c·log(1 + s/c)``, ``c = robust_mv²`` (mV²; :func:`robust_scale`), so
            that the few windows whose spike is out of alignment early in a stage
            do not dominate it; ``None``: plain squares.
        substeps: integration steps per data sample (see
            :func:`simulate_samples`).
        coarse_method: integrator of a window stage that is followed by another
            window stage, when it is of lower order than the fit's ``method``
            (``None``: the fit's method in every stage). Such a stage only has
            to bring each start into the next one's basin, and the next window
            stage, with the fit's method, removes the coarse integrator's bias
            from close by. The default second-order ``"exp_midpoint"`` (two
            right-hand sides per step against RK4's four) ends the 2 ms stage of
            the benchmark fit within 1.5 % of the truth (RK4: 2.0 %, the bias of
            the noise-driven gate states) in ~45 % less time (7.2 s against
            12.9 s for 33 and 35 iterations; docs/fitting.md). The stage before
            a whole-sweep stage and the last stage always use the fit's method:
            the whole-sweep loss is rough at fine scales and must be started
            close to its optimum.

    Each stage's windows are consecutive and non-overlapping; a window of ``L``
    samples starts at sample ``j·L`` from V = data + δ_j and the gates driven by
    the recorded V, and is compared with the data at its next ``L`` samples.
    Samples after the last whole window are not used by that stage. A window
    stage starts from the offsets fitted by the previous stage at the same
    samples.
    """

    windows_ms: tuple[float | None, ...] = (2.0, 20.0, None)
    offsets: bool = True
    robust_mv: float | None = 5.0
    substeps: int = 1
    coarse_method: str | None = "exp_midpoint"
    name: str = "shooting"

    def __post_init__(self):
        _check_substeps(self.substeps)
        if self.coarse_method is not None and self.coarse_method not in hhjax.METHODS:
            raise ValueError(
                f"`coarse_method` must be None or one of {list(hhjax.METHODS)}; "
                f"got {self.coarse_method!r}."
            )
        windows = tuple(self.windows_ms)
        if not windows:
            raise ValueError(
                "`windows_ms` must be a non-empty sequence of finite positive lengths "
                f"in ms (or None for the whole sweep); got {self.windows_ms!r}."
            )
        length = "a finite positive length in ms (or None for the whole sweep)"
        windows = tuple(
            w if w is None else _positive(w, f"`windows_ms[{k}]`", length)
            for k, w in enumerate(windows)
        )
        if not windows_in_order(windows):
            raise ValueError(
                "`windows_ms` must grow from stage to stage, the whole sweep "
                f"(None) last, e.g. (2.0, 20.0, None); got {self.windows_ms!r}."
            )
        object.__setattr__(self, "windows_ms", windows)
        if self.robust_mv is not None:
            robust = _positive(
                self.robust_mv, "`robust_mv`", "a finite scale > 0 in mV (or None "
                "for plain squares)",
            )  # fmt: skip
            object.__setattr__(self, "robust_mv", robust)

    def stages(self, n_samples, n_sweeps, dt, method):
        out = []
        windows = self.windows_ms
        for k, window in enumerate(windows):
            if window is None:  # the whole sweep from rest: TraceMSE
                whole = TraceMSE(start="rest", substeps=self.substeps)
                out.extend(whole.stages(n_samples, n_sweeps, dt, method))
                continue
            followed = k + 1 < len(windows) and windows[k + 1] is not None
            stage_method = self._coarse(method) if followed else method
            note = f", {stage_method}" if stage_method != method else ""
            if round(window / dt) < 1:
                raise ValueError(
                    f"`windows_ms[{k}]` ({window:g} ms) is shorter than the data's "
                    f"sampling interval ({dt:g} ms); a window needs >= 1 sample."
                )
            length = min(round(window / dt), n_samples - 1)
            label = f"{window:g} ms windows{note}"
            if length < round(window / dt):  # the data are shorter: say so
                label = f"one {length * dt:g} ms window ({window:g} asked){note}"
            n_windows = (n_samples - 1) // length
            out.append(
                Stage(
                    label=label,
                    residuals=_shooting_residuals(
                        length,
                        n_windows,
                        dt,
                        stage_method,
                        self.substeps,
                        self.robust_mv,
                        self.offsets,
                    ),  # fmt: skip
                    value=None,
                    delta_shape=(n_windows, n_sweeps) if self.offsets else None,
                    delta_starts=(
                        tuple(range(0, n_windows * length, length))
                        if self.offsets
                        else None
                    ),
                )
            )
        return tuple(out)

    def _coarse(self, method: str) -> str:
        """The integrator of a window stage followed by another window stage:
        ``coarse_method`` where it is of lower order than ``method``, else
        ``method``."""
        coarse = self.coarse_method
        if coarse is None:
            return method
        cheaper = hhjax.METHODS[coarse].order < hhjax.METHODS[method].order
        return coarse if cheaper else method


def robust_scale(r: Array, w: Array, scale: float | None) -> Array:
    """Per-window factor ``√(ρ(s)/s)`` of the Cauchy loss ``ρ(s) = c·log(1 + s/c)``,
    ``c = scale²``, where ``s`` is the window's weighted mean square residual:
    scaling a window's residuals by it makes their sum of squares ``ρ(s)`` times
    the window weight. ≈ 1 for ``s ≪ c``; a window whose spike came out of
    alignment (``s ≫ c``) then weighs ~``c·log(s/c)`` instead of ``s``.

    Args:
        r: weighted residuals ``(L, *G)``; ``w``: their weights, same shape.
        scale: ``√c`` in the residuals' unit (mV), or ``None`` for factor 1.
    """
    if scale is None:
        return jnp.ones(r.shape[1:], r.dtype)
    c = scale * scale
    count = jnp.sum(w, axis=0)
    s = jnp.sum(r * r, axis=0) / jnp.where(count > 0, count, 1.0)
    small = s < 1e-6 * c  # series of log1p(x)/x near 0, safe value and gradient
    x = jnp.where(small, 1.0, s / c)
    ratio = jnp.where(small, 1.0 - 0.5 * s / c, jnp.log1p(x) / x)
    return jnp.sqrt(ratio)


def _shooting_residuals(
    length: int,
    n_windows: int,
    dt: float,
    method: str,
    substeps: int,
    robust_mv: float | None,
    offsets: bool = True,
):
    starts_np = np.arange(n_windows) * length
    # Samples of window j: starts[j] + 1 .. starts[j] + length; (L, W) indices.
    index = starts_np[None, :] + np.arange(1, length + 1)[:, None]
    end = int(starts_np[-1]) + length

    def residuals(params, delta, data: FitArrays):
        model = hhjax.model_of(params)
        gates = gates_from_voltage(params, data.v[: end + 1], dt)
        starts = jnp.asarray(starts_np)
        v0 = data.v[starts] + delta if offsets else data.v[starts]
        state0 = model.state_type(v=v0, **{g: x[starts] for g, x in gates.items()})
        # The current over the steps from each sample of the window: (L, W, S).
        i_windows = data.i[index - 1]
        trace, final = simulate_samples(
            params, i_windows, dt, method, state0, substeps, return_state=True
        )
        simulated = jnp.concatenate([trace.v[1:], final.v[None]])
        w = data.w[index]
        w0 = data.w[starts]
        r = jnp.sqrt(w) * voltage_error(simulated, data.v[index])
        r = r * robust_scale(r, w, robust_mv)[None]
        if not offsets:
            return r, None, jnp.sum(w)
        prior = jnp.sqrt(w0) * delta
        return r, prior, jnp.sum(w) + jnp.sum(w0)

    return residuals


@dataclasses.dataclass(frozen=True)
class TraceMSE(Loss):
    """Mean squared error of V over whole sweeps, mV².

    Attributes:
        start: ``"rest"``: each sweep starts at the model's resting state for the
            sweep's first current sample (:func:`hhjax.resting_state`); ``"data"``:
            at the first recorded V with the gates at their steady state there.
        substeps: integration steps per data sample (see
            :func:`simulate_samples`).
    """

    start: str = "rest"
    substeps: int = 1
    name: str = "mse"

    def __post_init__(self):
        _check_substeps(self.substeps)
        check_start(self.start)

    def stages(self, n_samples, n_sweeps, dt, method):
        start, substeps = self.start, self.substeps

        def residuals(params, delta, data: FitArrays):
            state0 = initial_state(params, data, start)
            v = simulate_samples(params, data.i, dt, method, state0, substeps).v
            return jnp.sqrt(data.w) * voltage_error(v, data.v), None, jnp.sum(data.w)

        return (Stage("whole sweep", residuals, None, None),)


STARTS = ("rest", "data")


def check_start(start: Any) -> None:
    """A clear error for a ``start`` that is not one of :data:`STARTS`."""
    if start not in STARTS:
        raise ValueError(f"`start` must be 'rest' or 'data'; got {start!r}.")


def initial_state(params: Any, data: FitArrays, start: str = "rest") -> Any:
    """State at the first sample: resting state for the first current sample
    (``"rest"``) or the recorded V with steady-state gates (``"data"``)."""
    if start == "rest":
        return hhjax.resting_state(params, data.i[0])
    return hhjax.model_of(params).steady_state(data.v[0], params)


@dataclasses.dataclass(frozen=True)
class EquationError(Loss):
    """Current-balance (regression) loss, (µA/cm²)²; no simulation.

    With the gates driven by the recorded V (:func:`gates_from_voltage`), each
    block of ``block_ms`` ms gives the residual

        c_m (V_end − V_start) / T_b + mean(I_ion) − mean(I_ext)

    (ionic currents by the trapezoidal rule, the injected current piecewise
    constant), linear in conductances and ``c_m``. A block's weight is the
    smallest sample weight in it.

    Attributes:
        block_ms: block length, ms (integrating over a block averages recording
            noise instead of differentiating it).
    """

    block_ms: float = 0.5
    name: str = "regression"

    def __post_init__(self):
        block = _positive(self.block_ms, "`block_ms`", "a finite length > 0 in ms")
        object.__setattr__(self, "block_ms", block)

    def stages(self, n_samples, n_sweeps, dt, method):
        size = min(max(1, round(self.block_ms / dt)), n_samples - 1)
        n_blocks = (n_samples - 1) // size

        def residuals(params, delta, data: FitArrays):
            return current_balance(params, data, dt, size, n_blocks)

        return (Stage(f"{size * dt:g} ms blocks", residuals, None, None),)


def current_balance(params, data: FitArrays, dt: float, size: int, n_blocks: int):
    """Weighted block residuals of the current balance (see :class:`EquationError`)."""
    model = hhjax.model_of(params)
    end = n_blocks * size
    v = data.v[: end + 1]
    gates = gates_from_voltage(params, v, dt)
    state = model.state_type(v=v, **gates)
    ionic = model.total_current(state, params)  # (end + 1, S), uA/cm^2
    step_ionic = 0.5 * (ionic[:-1] + ionic[1:])
    n_sweeps = v.shape[1]

    def blocks(x):
        return x.reshape(n_blocks, size, n_sweeps)

    mean_ionic = jnp.mean(blocks(step_ionic), axis=1)
    mean_ext = jnp.mean(blocks(data.i[:end]), axis=1)
    dv = v[size::size] - v[:-1:size]
    r = params.c_m * dv / (size * dt) + mean_ionic - mean_ext
    w = jnp.minimum(jnp.min(blocks(data.w[1 : end + 1]), axis=1), data.w[:end:size])
    return jnp.sqrt(w) * r, None, jnp.sum(w)


@dataclasses.dataclass(frozen=True)
class CustomLoss(Loss):
    """A user loss ``fn(trace, data) -> scalar`` on whole simulated sweeps.

    ``trace`` is the model's trace tuple from :func:`hhjax.simulate` with the
    ``record`` fields, each ``(n_samples, n_sweeps)``, starting as ``start`` says
    (see :class:`TraceMSE`); ``data`` is :class:`FitArrays` (time first). ``fn``
    must be written in ``jax.numpy`` (it is jitted, vmapped and differentiated).
    Scalar losses are optimised with optax (not Levenberg–Marquardt) and get no
    Laplace uncertainty. Checkpoints name ``fn`` by its qualified name and check
    its values near the first start (see :func:`fitting.fit`).
    """

    fn: Callable[[Any, FitArrays], Array] = None
    record: Sequence[str] = ("v",)
    start: str = "rest"
    substeps: int = 1
    name: str = "custom"

    def __post_init__(self):
        _check_substeps(self.substeps)
        check_start(self.start)
        if not callable(self.fn):
            raise TypeError(f"A custom loss must be callable; got {self.fn!r}.")
        try:
            signature = inspect.signature(self.fn)
        except (TypeError, ValueError):  # some builtins have none: call and see
            signature = None
        if signature is not None:
            try:
                signature.bind(None, None)
            except TypeError as err:
                raise TypeError(
                    f"A custom loss is called as fn(trace, data); "
                    f"{_name_of(self.fn)}{signature} cannot be: {err}."
                ) from None
        object.__setattr__(self, "record", tuple(self.record))

    def stages(self, n_samples, n_sweeps, dt, method):
        fn, record, start, substeps = self.fn, self.record, self.start, self.substeps

        def value(params, delta, data: FitArrays):
            state0 = initial_state(params, data, start)
            trace = simulate_samples(
                params, data.i, dt, method, state0, substeps, record=record
            )
            value = jnp.asarray(fn(trace, data))
            if value.shape != ():
                raise ValueError(
                    f"A custom loss must return a scalar; {_name_of(fn)} returned "
                    f"shape {value.shape} (sum or average it, e.g. jnp.mean(...))."
                )
            return value.astype(
                jnp.float64 if jax.config.jax_enable_x64 else value.dtype
            )

        return (Stage("custom", None, value, None),)

    def settings(self) -> dict:
        return {
            "name": self.name,
            "fn": _name_of(self.fn),
            "record": list(self.record),
            "start": self.start,
            "substeps": self.substeps,
        }


LOSSES: dict[str, Callable[[], Loss]] = {
    "shooting": Shooting,
    "mse": TraceMSE,
    "regression": EquationError,
}
"""Built-in losses by name (as ``fit(loss=...)`` and ``hhjax fit --loss`` accept)."""


def get_loss(loss: str | Loss | Callable) -> Loss:
    """A :class:`Loss` from a name in :data:`LOSSES`, a ``Loss``, or a callable
    ``fn(trace, data)`` (wrapped as :class:`CustomLoss`)."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        try:
            return LOSSES[loss]()
        except KeyError:
            raise ValueError(
                f"Unknown loss {loss!r}; expected one of {', '.join(LOSSES)}, a "
                "fitting.Loss, or a function fn(trace, data) -> scalar."
            ) from None
    if callable(loss):
        return CustomLoss(fn=loss)
    raise TypeError(
        f"`loss` must be a name, a fitting.Loss or a callable; got {loss!r}."
    )
