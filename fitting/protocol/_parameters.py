"""Parameters of the search: the leak reversal that keeps the recorded rest, the
starting point from the cell's properties, and the search coordinates (log scale
except potentials and temperature).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

import hhjax
from fitting._metrics import spike_times
from fitting.protocol._prepare import Prepared
from fitting.protocol._settings import BOUNDS, LINEAR, START
from fitting.protocol._sweeps import spike_counts


def rest_leak(params: Any, v_rest: float) -> Any:
    """``params`` with ``e_l`` set so that the model rests at ``v_rest`` (mV):
    ``e_l = v_rest + Σ I_other(v_rest) / g_l`` with the other currents at their
    steady state. Works on batched leaves."""
    model = hhjax.model_of(params)
    state = model.steady_state(jnp.asarray(v_rest), params)
    currents = model.currents(state, params)
    scale = model.conductance_factor(params)
    other = sum(v for k, v in currents.items() if k != "i_l")
    return params._replace(e_l=v_rest + other / (scale * params.g_l))


def initial_values(
    prepared: Prepared, base: Any, names: Sequence[str], train: Sequence[int]
) -> dict[str, float]:
    """Starting point of the search from the cell's properties.

    ``g_l`` from the depolarised input resistance of the strongest training sweep
    without spikes (steady ΔV over the last 100 ms of the step), else from
    ``R_in`` of the hyperpolarising step: ``g_l = c_m / (R·C)``; ``v_t`` 5 mV
    below the voltage where the first training spike takes off (dV/dt > 10
    mV/ms); the rest from ``base``, except that a conductance that is zero in
    ``base`` (a channel switched off) starts at :data:`START`.
    """
    rec = prepared.recording
    t, dt = rec.t, rec.dt
    values = {n: float(np.asarray(getattr(base, n))) for n in names}
    values.update({n: START[n] for n in names if n in START and values[n] == 0.0})
    counts = spike_counts(prepared)
    rows = [rec.sweeps.index(s) for s in train]
    quiet = [r for r in rows if counts[r] == 0 and prepared.amplitudes[r] > 0]
    r_mohm = prepared.props.r_in if prepared.props is not None else None
    if quiet:
        r = max(quiet, key=lambda k: prepared.amplitudes[k])
        tail = (t >= prepared.step[1] - 100.0) & (t < prepared.step[1])
        dv = float(np.median(rec.v[r, tail])) - prepared.v_rest
        if dv > 0.5:
            r_mohm = dv / prepared.amplitudes[r] * 1e3
    if "g_l" in values and r_mohm:
        values["g_l"] = float(values.get("c_m", 1.0) * 1e3 / (r_mohm * prepared.c_pf))
    spiking = [r for r in rows if counts[r] > 0]
    if "v_t" in values and spiking:
        r = spiking[0]
        first = spike_times(rec.v[r], dt, t0=rec.t0)
        first = first[first >= prepared.step[0]][0]
        slope = np.diff(rec.v[r]) / dt
        near = (t[:-1] >= first - 3.0) & (t[:-1] <= first) & (slope > 10.0)
        if near.any():
            values["v_t"] = float(rec.v[r, int(np.argmax(near))]) - 5.0
    return {
        n: float(np.clip(v, *BOUNDS.get(n, (-np.inf, np.inf))))
        for n, v in values.items()
    }


def search_box(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The search box in the transformed space."""
    lo = to_search_coordinates({n: BOUNDS[n][0] for n in names}, names)
    hi = to_search_coordinates({n: BOUNDS[n][1] for n in names}, names)
    return lo, hi


def to_search_coordinates(values: dict, names: Sequence[str]) -> np.ndarray:
    """Physical values (``{name: value}``) as the search's coordinates: the
    value for the names in :data:`LINEAR`, its logarithm for the others."""
    return np.array([values[n] if n in LINEAR else np.log(values[n]) for n in names])


def from_search_coordinates(z: Any, names: Sequence[str]) -> dict:
    """The inverse of :func:`to_search_coordinates` for ``z[..., k]`` (batched),
    clipped into the search box (:data:`BOUNDS`)."""
    out = {}
    for k, n in enumerate(names):
        lo, hi = BOUNDS.get(n, (-np.inf, np.inf))
        x = z[..., k] if n in LINEAR else jnp.exp(z[..., k])
        out[n] = jnp.clip(x, lo, hi)
    return out
