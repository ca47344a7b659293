"""fitting: gradient-based fits of conductance-based models to voltage recordings.

Built on :mod:`hhjax` (public names only). Quick start::

    import fitting
    data = fitting.load_data("examples/data/synthetic_hh.npz")
    result = fitting.fit(data, ["g_na", "g_k", "g_l", "e_l"], n_starts=16)
    print(result.summary())
    result.save("params.json")

Units: mV, ms, µA/cm² (or pA with the cell capacitance in pF), mS/cm², µF/cm².
The fitting entry points compute in float64 (``dtype="float32"`` on request).
See ``docs/fitting.md`` for the losses, the measured accuracy and the CLI
(``hhjax fit`` / ``hhjax predict``).

Whole-cell recordings (``.abf``/``.nwb``, current in pA) are fitted by the
real-cell protocol, :mod:`fitting.protocol` (cortical models, training sweeps,
held-out prediction, report; ``docs/real_cells.md``)::

    from fitting import protocol
    fit = protocol.fit_to_directory("cell.abf", "out", "pospischil-rs")
"""

from fitting import protocol as protocol
from fitting._data import FitArrays as FitArrays
from fitting._data import FitData as FitData
from fitting._data import RecordingError as RecordingError
from fitting._data import load_data as load_data
from fitting._fit import fit as fit
from fitting._fit import regression as regression
from fitting._interrupt import FitInterrupted as FitInterrupted
from fitting._losses import LOSSES as LOSSES
from fitting._losses import CustomLoss as CustomLoss
from fitting._losses import EquationError as EquationError
from fitting._losses import Loss as Loss
from fitting._losses import Shooting as Shooting
from fitting._losses import Stage as Stage
from fitting._losses import TraceMSE as TraceMSE
from fitting._losses import gates_from_voltage as gates_from_voltage
from fitting._metrics import metrics as metrics
from fitting._metrics import simulate_data as simulate_data
from fitting._metrics import spike_times as spike_times
from fitting._optim import FORWARD_MODE_MAX_PARAMS as FORWARD_MODE_MAX_PARAMS
from fitting._optim import LM_MAX_PARAMS as LM_MAX_PARAMS
from fitting._params import ParamSpace as ParamSpace
from fitting._params import default_bounds as default_bounds
from fitting._report import report_figure as report_figure
from fitting._report import save_report as save_report
from fitting._results import FitResult as FitResult
from fitting._results import load_result as load_result
from fitting._synthetic import synthetic_data as synthetic_data
from fitting._uncertainty import Uncertainty as Uncertainty

__all__ = [
    "FORWARD_MODE_MAX_PARAMS",
    "LM_MAX_PARAMS",
    "LOSSES",
    "CustomLoss",
    "EquationError",
    "FitArrays",
    "FitData",
    "FitInterrupted",
    "FitResult",
    "Loss",
    "ParamSpace",
    "RecordingError",
    "Shooting",
    "Stage",
    "TraceMSE",
    "Uncertainty",
    "default_bounds",
    "fit",
    "gates_from_voltage",
    "load_data",
    "load_result",
    "metrics",
    "protocol",
    "regression",
    "report_figure",
    "save_report",
    "simulate_data",
    "spike_times",
    "synthetic_data",
]
