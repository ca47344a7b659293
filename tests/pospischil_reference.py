"""Independent NumPy reference for the Pospischil et al. (2008) model with every
extra channel of hhjax switched on, for ``tests/test_accuracy_pospischil.py``.

Written from the published equations (Pospischil et al. 2008, Table 1; Traub &
Miles 1991 rates with the threshold shift ``v_t``; Yamada et al. 1989 M current)
and the channel docstrings of ``hhjax.channels`` (slow AHP, I_h, I_NaP, Kv1-type
D current, inward rectifier), in plain Python floats: it imports nothing from
hhjax. Units: mV, ms, µA/cm², mS/cm², µF/cm². Voltage convention: modern.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.integrate import solve_ivp

T_REF = 36.0  # °C, temperature of the published rates
FIELDS = ("v", "m", "h", "n", "p", "w", "r", "a", "b")  # state order


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _linoid(a: float, x: float, k: float) -> float:
    """``a x / (1 - exp(-x / k))``, 1/ms, with its limit ``a k`` at ``x = 0``."""
    u = x / k
    if abs(u) < 1e-8:
        return a * k * (1.0 + 0.5 * u)
    return a * x / -math.expm1(-u)


def rates(v: float, p: dict) -> dict[str, tuple[float, float]]:
    """``{gate: (alpha, beta)}`` in 1/ms at ``v`` mV, temperature-scaled."""
    u = v - p["v_t"]

    def phi(q10: str) -> float:
        return p[q10] ** ((p["temperature"] - T_REF) / 10.0)

    x = v + 35.0
    p_inf = _sigmoid(x / 10.0)
    tau_p = p["tau_max"] / (3.3 * math.exp(x / 20.0) + math.exp(-x / 20.0))
    r_inf = _sigmoid(-(v - p["v_h"]) / 8.0)
    a_inf = _sigmoid((v + 50.0) / 20.0)
    b_inf = _sigmoid(-(v - p["v_b"]) / 6.0)
    pairs = {
        "m": (_linoid(0.32, u - 13.0, 4.0), _linoid(0.28, -(u - 40.0), 5.0)),
        "h": (
            0.128 * math.exp(-(u - 17.0) / 18.0),
            4.0 / (1.0 + math.exp(-(u - 40.0) / 5.0)),
        ),
        "n": (_linoid(0.032, u - 15.0, 5.0), 0.5 * math.exp(-(u - 10.0) / 40.0)),
        "p": (p_inf / tau_p, (1.0 - p_inf) / tau_p),
        "w": (0.5 * _sigmoid((v - p["v_w"]) / 5.0), 1.0 / p["tau_w"]),
        "r": (r_inf / p["tau_h"], (1.0 - r_inf) / p["tau_h"]),
        "a": (a_inf / 2.0, (1.0 - a_inf) / 2.0),
        "b": (b_inf / p["tau_b"], (1.0 - b_inf) / p["tau_b"]),
    }
    scale = {"m": "q10", "h": "q10", "n": "q10", "p": "q10_m", "w": "q10_ahp",
             "r": "q10_h", "a": "q10_d", "b": "q10_d"}  # fmt: skip
    return {
        g: (phi(scale[g]) * al, phi(scale[g]) * be) for g, (al, be) in pairs.items()
    }


def rhs(t: float, y: np.ndarray, i_ext: float, p: dict) -> list[float]:
    """``dy/dt`` of the state ``y`` (order :data:`FIELDS`), per ms."""
    v, m, h, n, pm, w, r, a, b = y
    e_k = p["e_k"]
    ionic = (
        p["g_na"] * m**3 * h * (v - p["e_na"])
        + p["g_kd"] * n**4 * (v - e_k)
        + p["g_m"] * pm * (v - e_k)
        + p["g_ahp"] * w * (v - e_k)
        + p["g_h"] * r * (v - p["e_h"])
        + p["g_nap"] * _sigmoid((v - p["v_nap"]) / 5.0) * (v - p["e_na"])
        + p["g_d"] * a**3 * b * (v - e_k)
        + p["g_kir"] * _sigmoid(-(v - p["v_kir"]) / 5.0) * (v - e_k)
        + p["g_l"] * (v - p["e_l"])
    )
    conductance_factor = p["q10_g"] ** ((p["temperature"] - T_REF) / 10.0)
    out = [(i_ext - conductance_factor * ionic) / p["c_m"]]
    gate_rates = rates(v, p)
    for gate, x in zip(FIELDS[1:], y[1:], strict=True):
        alpha, beta = gate_rates[gate]
        out.append(alpha * (1.0 - x) - beta * x)
    return out


def solve(
    edges: np.ndarray, currents: np.ndarray, y0: np.ndarray, p: dict, t: np.ndarray
) -> np.ndarray:
    """States at times ``t`` (ms), shape ``(9, len(t))``, under the current
    ``currents[k]`` (µA/cm²) on ``[edges[k], edges[k+1])``: Radau, rtol 1e-10,
    atol 1e-12, restarted at every jump of the current."""
    y = np.asarray(y0, float)
    out = np.empty((len(y0), len(t)))
    for k, (start, stop, i_ext) in enumerate(zip(edges[:-1], edges[1:], currents, strict=True)):
        sol = solve_ivp(
            rhs, (start, stop), y, method="Radau", rtol=1e-10, atol=1e-12,
            dense_output=True, args=(float(i_ext), p),
        )  # fmt: skip
        assert sol.status == 0, sol.message
        last = k == len(currents) - 1
        inside = (t >= start) & ((t <= stop) if last else (t < stop))
        out[:, inside] = sol.sol(t[inside])
        y = sol.y[:, -1]
    return out
