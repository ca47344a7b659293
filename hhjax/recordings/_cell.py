"""Passive cell properties from a recording, and recording corrections.

:func:`cell_properties` measures the resting potential, input resistance,
membrane time constant and capacitance from the hyperpolarising current step of a
current-clamp recording. The capacitance turns the whole-cell current (pA) into a
current density: ``recording.replace(c_pf=props.c_pf)``, membrane area
``c_pf / c_m`` (``c_m`` = 1 µF/cm² gives ``area_cm2 = c_pf · 1e-6``).

:func:`correct` applies the usual recording corrections, each a parameter that
defaults to 0 (no change):

    V_corrected = V_recorded − liquid_junction − series_resistance · I − offset

with ``liquid_junction`` in mV (the junction potential of the pipette solution
against the bath, e.g. ≈ +12 mV for K-gluconate: corrected potentials are more
negative), ``series_resistance`` in MΩ (the part of the electrode resistance the
amplifier's bridge balance did not remove; MΩ · pA = 10⁻³ mV), and ``offset`` in
mV per sweep (baseline drift, see :func:`baseline_drift`). A fit that frees these
parameters applies the same formula to the data, or its opposite to the model.

Voltages in mV, currents in pA, times in ms, resistances in MΩ, capacitance in pF.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence

import numpy as np

from hhjax.recordings._recording import Recording, RecordingError, real_number

_MV_PER_MOHM_PA = 1e-3  # 1 MOhm * 1 pA = 1 uV
_SPIKE_MV = -20.0  # a sample above this inside the step window marks a spike
_MIN_STEP_MS = 20.0
_SMOOTH_MS = 1.0
_PRE_ONSET_MS = 0.5  # the jump at onset is measured from this last stretch
_HOLDING_TOL_PA = 0.5  # pA: a smaller change of the command is not a step
_NOMINAL_C_PF = 100.0  # pF: scales a density without c_pf for step detection
_MIN_C_PF = 1.0  # pF: no whole cell is smaller (a current in nA gives 1000x less)
_SMALL_STEP_PA = 10.0  # pA: a step this small with C < _MIN_C_PF: a current in nA


@dataclasses.dataclass(frozen=True)
class CellProperties:
    """Passive properties measured from a hyperpolarising step.

    Attributes:
        v_rest: resting potential, mV: median over sweeps of the pre-stimulus
            median voltage (the potential at the holding current, if that is not
            0 pA).
        r_in: steady-state input resistance, MΩ: mean ΔV over the last 20 % of the
            step divided by the step current (it includes ``r_series`` unless the
            bridge was balanced; low if the step is shorter than ~4 ``tau``).
        tau: membrane time constant, ms, from the exponential fit.
        tau_se: standard error of ``tau``, ms (from the fit's Jacobian).
        c_pf: whole-cell capacitance, pF: ``1000 · tau / r_membrane`` (ms / MΩ
            is nF).
        r_membrane: resistance of the exponential charging curve, MΩ (fit
            amplitude / step current; excludes the instantaneous jump).
        r_series: apparent series resistance, MΩ: the instantaneous voltage jump
            at step onset / step current. The jump is the response on
            0.1..max(skip_ms, 0.3) ms after onset, extrapolated linearly back to
            the onset, minus the mean of the last 0.5 ms before it. About 0 when
            the bridge was balanced.
        sag: ``(ΔV_peak − ΔV_ss) / ΔV_peak``, dimensionless (0: no sag; I_h gives
            a positive sag).
        fit_rmse: root-mean-square residual of the fit, mV.
        fit_r2: coefficient of determination of the fit, dimensionless.
        step_pa: mean step current of the sweeps used, pA (negative).
        window: ``(onset, end)`` of the step, ms, in the recording's time
            base (:attr:`Recording.t`).
        fit_window: ``[start, end)`` of the fitted interval, ms, likewise.
        sweeps: source-file indices of the sweeps used.
        t_fit: times of the fitted samples, ms, shape ``(n,)``.
        v_fit: fitted curve, mV relative to the baseline, shape ``(n,)``.
        v_mean: averaged response ``ΔV`` (mV, scaled to ``step_pa``) at ``t_fit``.
    """

    v_rest: float
    r_in: float
    tau: float
    tau_se: float
    c_pf: float
    r_membrane: float
    r_series: float
    sag: float
    fit_rmse: float
    fit_r2: float
    step_pa: float
    window: tuple[float, float]
    fit_window: tuple[float, float]
    sweeps: tuple[int, ...]
    t_fit: np.ndarray = dataclasses.field(repr=False)
    v_fit: np.ndarray = dataclasses.field(repr=False)
    v_mean: np.ndarray = dataclasses.field(repr=False)

    def area_cm2(self, c_m: float = 1.0) -> float:
        """Membrane area, cm², for a specific capacitance ``c_m`` (µF/cm²)."""
        return self.c_pf * 1e-6 / c_m

    def summary(self) -> str:
        """One line per property, with units."""
        fit = (
            f"RMSE {self.fit_rmse:.3f} mV, R^2 {self.fit_r2:.4f}, "
            f"{self.fit_window[0]:.2f}-{self.fit_window[1]:.2f} ms"
        )
        step = (
            f"{self.step_pa:.1f} pA, {self.window[0]:.2f}-{self.window[1]:.2f} ms, "
            f"sweeps {list(self.sweeps)}"
        )
        lines = [
            f"resting potential    {self.v_rest:8.2f} mV",
            f"input resistance     {self.r_in:8.1f} MOhm (steady state)",
            f"membrane resistance  {self.r_membrane:8.1f} MOhm (fit amplitude)",
            f"time constant        {self.tau:8.2f} +- {self.tau_se:.2f} ms",
            f"capacitance          {self.c_pf:8.1f} pF",
            f"series resistance    {self.r_series:8.1f} MOhm (onset jump)",
            f"sag ratio            {self.sag:8.3f}",
            f"fit                  {fit}",
            f"step                 {step}",
        ]
        return "\n".join(lines)


# ----------------------------------------------------------------- the command
def _samples(ms: float, dt: float) -> int:
    """Number of samples (at least 1) in ``ms`` milliseconds at step ``dt`` ms."""
    return max(round(ms / dt), 1)


def _current_pa(recording: Recording, c_m: float) -> np.ndarray:
    if recording.i_unit == "pA":
        return recording.i
    if recording.c_pf is None:
        raise RecordingError(
            f"{recording.source or 'recording'}: the current is a density "
            "(uA/cm2) and `c_pf` is unknown, so it cannot be turned into pA."
        )
    return recording.i * (recording.c_pf / c_m)


def _tolerance(i_pa: np.ndarray) -> float:
    """How far (pA) the command may move before it counts as off holding.

    ``_HOLDING_TOL_PA`` plus 1e-6 of the largest ``|i_pa|`` (pA, any shape); the
    one rule for step detection, always applied to a current in pA.
    """
    return _HOLDING_TOL_PA + 1e-6 * float(np.max(np.abs(i_pa)))


def _command_pa(recording: Recording) -> np.ndarray:
    """The command current in pA, only for finding where it leaves holding.

    A density (µA/cm²) is scaled by ``c_pf`` at 1 µF/cm², or by a nominal
    ``_NOMINAL_C_PF`` (100 pF) when ``c_pf`` is unknown; :func:`_tolerance`'s
    0.5 pA is then 0.005 µA/cm². Shape ``(n_sweeps, n_samples)``.
    """
    if recording.i_unit == "pA" or recording.c_pf is not None:
        return _current_pa(recording, c_m=1.0)
    return recording.i * _NOMINAL_C_PF


def _first_change(i_sweep: np.ndarray, tol: float) -> int:
    """Index of the first sample that leaves the holding level ``i[0]``; or len."""
    moved = np.abs(i_sweep - i_sweep[0]) > tol
    return int(np.argmax(moved)) if moved.any() else i_sweep.size


def _hyperpolarising_step(
    i_sweep: np.ndarray, tol: float, min_samples: int, n_base: int
) -> tuple[int, int, float] | None:
    """``(onset, stop, amplitude)`` of the first epoch of the command that lasts
    >= ``min_samples``, if it is below holding and follows >= ``n_base`` samples
    at holding; or None. Shorter epochs before it (e.g. a test pulse) are passed
    over; a long step of another kind ends the search (a hyperpolarising step
    after it does not start from rest)."""
    holding = i_sweep[0]
    onset = _first_change(i_sweep, tol)
    while onset < i_sweep.size - 1:
        level = i_sweep[onset]
        after = np.abs(i_sweep[onset:] - level) > tol
        stop = onset + (int(np.argmax(after)) if after.any() else after.size)
        before = i_sweep[max(onset - n_base, 0) : onset]
        from_holding = np.all(np.abs(before - holding) <= tol)
        if stop - onset >= min_samples and abs(level - holding) > tol:
            below = level - holding < -tol
            return (
                (onset, stop, float(level - holding))
                if below and from_holding
                else None
            )
        onset = stop
    return None


def _given_step(i_sweep: np.ndarray, onset: int, stop: int, tol: float) -> bool:
    """Whether samples ``[onset, stop)`` of a command are one step, or holding: the
    command constant there and, unless at holding, different two samples before
    ``onset`` (the step begins at ``onset``, to a sample of rounding). The edge
    samples may differ (the window's edges rounded to the grid)."""
    inside = i_sweep[onset:stop]
    level = float(np.median(inside))
    if np.any(np.abs(inside[1:-1] - level) > tol):
        return False  # the command changes inside the window
    at_holding = abs(level - i_sweep[0]) <= tol
    return at_holding or abs(i_sweep[max(onset - 2, 0)] - level) > tol


def _command_edges(i_sweep: np.ndarray, tol: float, dt: float, t0: float) -> str:
    """Times (ms, sweep starting at ``t0``) where a command changes, for a message."""
    edges = t0 + (np.flatnonzero(np.abs(np.diff(i_sweep)) > tol) + 1) * dt
    shown = ", ".join(f"{t:g}" for t in edges[:6]) + (", ..." if edges.size > 6 else "")
    return shown or "nowhere"


def _choose_step(
    i: np.ndarray,
    v: np.ndarray,
    dt: float,
    window: tuple | None,
    n_base: int,
    *,
    t0: float = 0.0,
    where: str = "recording",
    sweeps: tuple[int, ...] | None = None,
) -> tuple[int, int, list[int], float]:
    """The hyperpolarising step: ``(onset, stop, rows, amplitude_pA)``.

    Candidates are each sweep's first epoch >= ``_MIN_STEP_MS`` long (shorter ones,
    e.g. a test pulse, passed over) if it is hyperpolarising and follows
    ``n_base`` samples at holding (or the given window), with no spike from
    ``n_base`` samples before onset to the end. They are grouped by window and amplitude;
    the group with the largest ``count × |amplitude|`` wins (ties: earliest).
    ``window`` is in ms from the sweep's start (``t0``, ``where``, the source, and
    ``sweeps``, the file's indices of the rows, only name things in messages).

    Raises:
        RecordingError: ``window`` is not where the command steps in any sweep.
    """
    tol = _tolerance(i)
    groups: dict[tuple[int, int, int], list[int]] = {}
    misplaced = []
    for r in range(i.shape[0]):
        if window is not None:
            onset, stop = (round(w / dt) for w in window)
            if not _given_step(i[r], onset, stop, tol):
                misplaced.append(r)
                continue
            amp = float(np.median(i[r, onset:stop]) - i[r, 0])
        else:
            step = _hyperpolarising_step(i[r], tol, _samples(_MIN_STEP_MS, dt), n_base)
            if step is None:
                continue
            onset, stop, amp = step
        long_enough = (stop - onset) * dt >= _MIN_STEP_MS and onset * dt >= 1.0
        quiet = v[r, max(onset - n_base, 0) : stop].max() <= _SPIKE_MV
        if amp < -tol and long_enough and quiet:
            groups.setdefault((onset, stop, round(amp)), []).append(r)
    if not groups and misplaced:
        r = misplaced[0]
        raise RecordingError(
            f"{where}: `window` {t0 + window[0]:g}..{t0 + window[1]:g} ms is not a "
            f"step of the command current in {len(misplaced)} sweep(s): it must "
            "start where the command steps and end before it changes again. In "
            f"sweep {r if sweeps is None else sweeps[r]} the command changes at "
            f"{_command_edges(i[r], tol, dt, t0)} ms; or leave `window` out to "
            "detect the step."
        )
    if not groups:
        return 0, 0, [], 0.0
    (onset, stop, _), rows = max(
        groups.items(), key=lambda kv: (-len(kv[1]) * kv[0][2], -kv[0][0])
    )
    amp = float(np.mean([i[r, onset:stop].mean() - i[r, 0] for r in rows]))
    return onset, stop, rows, amp


# ------------------------------------------------------------ exponential fit
def _linear_fit(t: np.ndarray, y: np.ndarray, tau: float):
    """Best ``c + a exp(−t/tau)`` for fixed tau: ``(sse, c, a)``."""
    e = np.exp(-t / tau)
    design = np.stack([np.ones_like(t), e], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    return float(resid @ resid), float(coef[0]), float(coef[1])


def fit_exponential(t: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Least-squares fit of ``y = c + a exp(−t / tau)``.

    ``c`` and ``a`` are solved linearly for each ``tau``; ``tau`` is found on a
    log-spaced grid and refined by golden-section search. No scipy needed.

    Args:
        t: times, ms, shape ``(n,)``, starting near 0, ``n >= 4``.
        y: values (any unit), shape ``(n,)``.

    Returns:
        ``{"tau", "tau_se", "c", "a", "rmse", "r2"}``: tau and its standard error in
        ms, ``c`` and ``a`` and ``rmse`` in the unit of ``y``, ``r2`` unitless.
        ``tau`` is searched in [0.001, 20] × the span of ``t``; a best fit at
        either end (the data do not determine it: no curvature, or a decay much
        slower or faster than the span) gives that end with ``tau_se`` = inf and a
        ``RuntimeWarning``.

    Raises:
        ValueError: ``t`` and ``y`` not 1-D of one length ``n >= 4``, not finite, or
            ``t`` not increasing.
    """
    t = np.asarray(t, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if t.ndim != 1 or t.shape != y.shape or t.size < 4:
        raise ValueError(
            f"`t` (ms) and `y` must be 1-D of one length >= 4; got shapes {t.shape} "
            f"and {y.shape}."
        )
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
        raise ValueError("`t` (ms) and `y` must be finite (no NaN or inf).")
    if not np.all(np.diff(t) > 0):
        raise ValueError("`t` (ms) must be strictly increasing.")
    span = float(t[-1] - t[0])
    logs = np.linspace(np.log(span * 1e-3), np.log(span * 20.0), 120)
    sse = [_linear_fit(t, y, np.exp(x))[0] for x in logs]
    best = int(np.argmin(sse))
    k = int(np.clip(best, 1, len(logs) - 2))
    lo, hi = logs[k - 1], logs[k + 1]
    golden = (np.sqrt(5.0) - 1.0) / 2.0
    for _ in range(60):
        a = hi - golden * (hi - lo)
        b = lo + golden * (hi - lo)
        if _linear_fit(t, y, np.exp(a))[0] < _linear_fit(t, y, np.exp(b))[0]:
            hi = b
        else:
            lo = a
    tau = float(np.exp(0.5 * (lo + hi)))
    at_edge = best in (0, len(logs) - 1)
    if at_edge:  # the search cannot leave its range: say so
        tau = float(np.exp(logs[best]))
        warnings.warn(
            f"fit_exponential: the best tau lies at the end of the searched range "
            f"({tau:.3g} ms for data spanning {span:.3g} ms): the data do not "
            "determine it; tau_se is inf.",
            RuntimeWarning,
            stacklevel=2,
        )
    sse_min, c, amp = _linear_fit(t, y, tau)
    e = np.exp(-t / tau)
    jac = np.stack([np.ones_like(t), e, amp * t / tau**2 * e], axis=1)
    dof = max(t.size - 3, 1)
    try:
        cov = np.linalg.inv(jac.T @ jac) * (sse_min / dof)
        tau_se = float(np.sqrt(max(cov[2, 2], 0.0)))
    except np.linalg.LinAlgError:
        tau_se = float("inf")
    if at_edge:
        tau_se = float("inf")
    total = float(np.sum((y - y.mean()) ** 2))
    return {
        "tau": tau,
        "tau_se": tau_se,
        "c": c,
        "a": amp,
        "rmse": float(np.sqrt(sse_min / t.size)),
        "r2": 1.0 - sse_min / total if total > 0 else float("nan"),
    }


# --------------------------------------------------------------- the measure
def _onset_jump(t: np.ndarray, response: np.ndarray, until: float) -> float:
    """Response extrapolated back to the onset by a line through 0.1..until ms."""
    sel = (t >= 0.1 - 1e-9) & (t <= until + 1e-9)
    if sel.sum() < 2:
        return float(response[0])
    return float(np.polyfit(t[sel], response[sel], 1)[1])


def _baselines(v: np.ndarray, onset: int, n_base: int) -> np.ndarray:
    return np.median(v[:, max(onset - n_base, 0) : onset], axis=1)


def cell_properties(
    recording: Recording,
    *,
    sweeps: Sequence[int] | None = None,
    window: tuple[float, float] | None = None,
    baseline_ms: float = 20.0,
    skip_ms: float = 0.5,
    c_m: float = 1.0,
) -> CellProperties:
    """Resting potential, input resistance, time constant and capacitance.

    The hyperpolarising step is the first epoch of a sweep at least 20 ms long
    (shorter ones before it, e.g. a test pulse, are passed over) if its command is
    below the holding level and follows ``baseline_ms`` at holding (so it starts
    from rest), with no spike (V > −20 mV) from ``baseline_ms`` before it to its
    end. Such steps are
    grouped by window and amplitude, and the group with the largest
    ``count × |amplitude|`` is used (e.g. 23.4–323.4 ms, −100 pA, all 30 sweeps of
    ``18711001.abf``; in the dual-step files, the first sweep's −100 pA step at
    146.85 ms: the later −100 pA steps follow a depolarising step that changes the
    input resistance). The responses ``ΔV = V − baseline`` of the group are
    averaged and fit with ``c + a exp(−(t − onset)/tau)`` from ``onset + skip_ms``
    to the peak of the hyperpolarisation (the sag of I_h, if any, comes after it).

    Args:
        recording: current-clamp sweeps, current in pA (or µA/cm² with ``c_pf``).
        sweeps: source-file indices of the sweeps to consider; default all.
        window: ``(onset, end)`` of the step, ms, in the recording's time base;
            default detected from the command. The command must step at
            ``onset`` and stay constant up to ``end`` (to a sample).
        baseline_ms: length of the pre-step baseline, ms.
        skip_ms: time after onset left out of the fit (electrode artefact), ms.
        c_m: specific capacitance, µF/cm², used only to turn a current density
            back into pA.

    Returns:
        The :class:`CellProperties`.

    Raises:
        RecordingError: ``sweeps`` empty or unknown; ``baseline_ms`` or ``c_m`` not
            a number > 0, ``skip_ms`` not a number >= 0, ``window`` not two
            numbers inside the sweep; no hyperpolarising step in the chosen sweeps,
            or too few samples to fit; a current that looks like nA rather than pA
            (a step below 10 pA giving a capacitance below 1 pF).
    """
    where = recording.source or "recording"
    baseline_ms = real_number(
        baseline_ms, "baseline_ms", "ms", f"{where}: ", positive=True
    )
    skip_ms = real_number(skip_ms, "skip_ms", "ms", f"{where}: ")
    if skip_ms < 0:
        raise RecordingError(f"{where}: `skip_ms` must be >= 0 ms; got {skip_ms}.")
    c_m = real_number(c_m, "c_m", "µF/cm²", f"{where}: ", positive=True)
    rec = recording if sweeps is None else recording.select(sweeps)
    i = _current_pa(rec, c_m)
    dt = rec.dt
    n_base = _samples(baseline_ms, dt)
    if window is not None:
        if len(window) != 2:
            raise RecordingError(
                f"{where}: `window` must be (onset, end) in ms; got {window!r}."
            )
        window = tuple(real_number(w, "window", "ms", f"{where}: ") for w in window)
        if not rec.t0 < window[0] < window[1] <= rec.t[-1] + dt:
            raise RecordingError(
                f"{where}: `window` {window} ms must satisfy start < end inside the "
                f"sweep ({rec.t0:g}..{rec.t[-1] + dt:g} ms)."
            )
        window = (window[0] - rec.t0, window[1] - rec.t0)
    onset, stop, rows, step_pa = _choose_step(
        i, rec.v, dt, window, n_base, t0=rec.t0, where=where, sweeps=rec.sweeps
    )
    if not rows:
        change = float(np.max(np.abs(i - i[:, :1])))  # pA
        tiny = 0.0 < change <= _tolerance(i)
        raise RecordingError(
            f"{where}: no hyperpolarising current step (from rest, >= "
            f"{_MIN_STEP_MS:g} ms, without spikes) in sweeps "
            f"{list(rec.sweeps)}; pass `window=(onset_ms, end_ms)` or other sweeps."
            + (
                f" The command changes by at most {change:.3g} pA, below the "
                f"{_HOLDING_TOL_PA:g} pA that counts as a step: is the current in nA? "
                "It must be in pA (nA x 1000)."
                if tiny
                else ""
            )
        )
    v = rec.v[rows]
    base = _baselines(v, onset, n_base)
    response = (v - base[:, None]).mean(axis=0)  # mV, the mean response
    n_pre = _samples(_PRE_ONSET_MS, dt)
    just_before = float(response[onset - n_pre : onset].mean())
    response = response[onset:stop]
    t_step = dt * np.arange(stop - onset)

    n_smooth = _samples(_SMOOTH_MS, dt)
    smooth = np.convolve(response, np.ones(n_smooth) / n_smooth, mode="same")
    inner = slice(n_smooth, max(len(smooth) - n_smooth, n_smooth + 1))
    peak = inner.start + int(np.argmin(smooth[inner]))
    first = _samples(skip_ms, dt)
    if peak - first < 8:
        raise RecordingError(
            f"{where}: the step response peaks {peak * dt:g} ms after onset, too "
            "early to fit an exponential; check `window` and `skip_ms`."
        )
    fit = fit_exponential(t_step[first:peak], response[first:peak])
    tail = response[int(0.8 * len(response)) :].mean()
    r_in = float(tail / step_pa) / _MV_PER_MOHM_PA
    r_membrane = float(-fit["a"] / step_pa) / _MV_PER_MOHM_PA
    r_series = _onset_jump(t_step, response, max(skip_ms, 0.3)) - just_before
    r_series = float(r_series / step_pa) / _MV_PER_MOHM_PA
    v_peak = float(smooth[peak])
    t0 = onset * dt
    c_pf = fit["tau"] / r_membrane * 1e3
    if 0.0 < c_pf < _MIN_C_PF and abs(step_pa) < _SMALL_STEP_PA:
        raise RecordingError(
            f"{where}: the {step_pa:.3g} pA step gives an input resistance of "
            f"{r_in * 1e-3:.3g} GOhm and a capacitance of {c_pf:.3g} pF; a whole "
            f"cell has > {_MIN_C_PF:g} pF: is the current in nA? It must be in pA "
            "(nA x 1000)."
        )
    return CellProperties(
        v_rest=float(np.median(sweep_baselines(rec))),
        r_in=r_in,
        tau=fit["tau"],
        tau_se=fit["tau_se"],
        c_pf=c_pf,
        r_membrane=r_membrane,
        r_series=r_series,
        sag=(v_peak - tail) / v_peak if v_peak != 0 else 0.0,
        fit_rmse=fit["rmse"],
        fit_r2=fit["r2"],
        step_pa=step_pa,
        window=(rec.t0 + t0, rec.t0 + stop * dt),
        fit_window=(rec.t0 + t0 + first * dt, rec.t0 + t0 + peak * dt),
        sweeps=tuple(rec.sweeps[r] for r in rows),
        t_fit=rec.t0 + t0 + t_step[first:peak],
        v_fit=fit["c"] + fit["a"] * np.exp(-t_step[first:peak] / fit["tau"]),
        v_mean=response[first:peak],
    )


# ------------------------------------------------------------- corrections
def sweep_baselines(recording: Recording, window: tuple | None = None) -> np.ndarray:
    """Median voltage of each sweep before its stimulus, mV, shape ``(n_sweeps,)``.

    Args:
        recording: the sweeps.
        window: ``(start, stop)`` in ms; default, for each sweep, from its start to
            the first change of the command current (at least 1 ms of samples).
            A change counts when it exceeds 0.5 pA (a density in µA/cm² is
            converted with ``c_pf`` at 1 µF/cm²; without ``c_pf``, 0.005 µA/cm²,
            i.e. 0.5 pA on a 100 pF cell).
    """
    if window is not None:
        part = recording.crop(*window)
        return np.median(part.v, axis=1)
    i = _command_pa(recording)
    tol = _tolerance(i)
    min_n = _samples(1.0, recording.dt)
    ends = [max(_first_change(row, tol), min_n) for row in i]
    return np.array(
        [np.median(v[:end]) for v, end in zip(recording.v, ends, strict=True)]
    )


def baseline_drift(recording: Recording, window: tuple | None = None) -> np.ndarray:
    """Each sweep's baseline minus the median baseline, mV, shape ``(n_sweeps,)``.

    Pass it as ``offset`` to :func:`correct` to bring every sweep to the common
    baseline (see :func:`sweep_baselines` for ``window``).
    """
    b = sweep_baselines(recording, window)
    return b - np.median(b)


def correct(
    recording: Recording,
    *,
    liquid_junction: float = 0.0,
    series_resistance: float = 0.0,
    offset: float | Sequence[float] | np.ndarray = 0.0,
    c_m: float = 1.0,
) -> Recording:
    """Recording with corrected voltages (all corrections default to none).

    ``V_corrected = V − liquid_junction − series_resistance · I − offset``.

    Args:
        recording: the sweeps; current in pA, or µA/cm² with ``c_pf`` set.
        liquid_junction: liquid-junction potential, mV (pipette vs bath; the
            corrected membrane potential is ``V − liquid_junction``).
        series_resistance: uncompensated series resistance, MΩ (bridge balance:
            subtracts the electrode's ``R_s · I`` drop, MΩ · pA = 10⁻³ mV).
        offset: baseline drift to remove, mV: a scalar or one value per sweep
            (e.g. :func:`baseline_drift`).
        c_m: specific capacitance, µF/cm², to turn a density back into pA.

    Returns:
        A new :class:`Recording`; currents unchanged.

    Raises:
        RecordingError: a correction that is not a finite number (``offset``: or
            not one per sweep), ``c_m`` not > 0, or a density current without
            ``c_pf`` when ``series_resistance`` is not 0.
    """
    where = f"{recording.source or 'recording'}: "
    liquid_junction = real_number(liquid_junction, "liquid_junction", "mV", where)
    series_resistance = real_number(series_resistance, "series_resistance", "MΩ", where)
    c_m = real_number(c_m, "c_m", "µF/cm²", where, positive=True)
    offset = np.asarray(offset)
    if offset.dtype.kind not in "iuf" or not np.all(np.isfinite(offset)):
        raise RecordingError(
            f"{where}`offset` must be finite numbers (mV); got {offset.tolist()!r}."
        )
    if offset.ndim > 1 or offset.size not in (1, recording.n_sweeps):
        raise RecordingError(
            f"{where}`offset` must be a scalar or one value per sweep "
            f"({recording.n_sweeps}); got shape {offset.shape}."
        )
    v = recording.v - liquid_junction - np.reshape(offset, (-1, 1))
    if series_resistance:
        v = v - series_resistance * _MV_PER_MOHM_PA * _current_pa(recording, c_m)
    return recording.replace(v=v)
