"""Research toolkit: spike times, f–I curves, fixed points, stability, bifurcations,
phase response curves and parameter sensitivities — differentiable where it makes
sense, and generic over every :class:`hhjax.Model` (dispatch on the params type).

Units: mV, ms, µA/cm², mS/cm², Hz for rates. Voltages are in the convention of the
parameters passed in (modern by default). Importing this module does not import
matplotlib; the ``plot_*`` functions do, when called.
"""

from hhjax.analysis._bifurcation import HopfPoint as HopfPoint
from hhjax.analysis._bifurcation import classify_hopf as classify_hopf
from hhjax.analysis._bifurcation import hopf_current as hopf_current
from hhjax.analysis._bifurcation import hopf_points as hopf_points
from hhjax.analysis._fi import FICurve as FICurve
from hhjax.analysis._fi import fi_curve as fi_curve
from hhjax.analysis._fixed_points import eigenvalues as eigenvalues
from hhjax.analysis._fixed_points import fixed_point as fixed_point
from hhjax.analysis._fixed_points import is_stable as is_stable
from hhjax.analysis._fixed_points import jacobian as jacobian
from hhjax.analysis._limit_cycle import CycleFold as CycleFold
from hhjax.analysis._limit_cycle import LimitCycle as LimitCycle
from hhjax.analysis._limit_cycle import fold_current as fold_current
from hhjax.analysis._limit_cycle import fold_sensitivity as fold_sensitivity
from hhjax.analysis._limit_cycle import limit_cycle as limit_cycle
from hhjax.analysis._limit_cycle import limit_cycle_fold as limit_cycle_fold
from hhjax.analysis._plots import plot_prc as plot_prc
from hhjax.analysis._plots import plot_sensitivities as plot_sensitivities
from hhjax.analysis._prc import PhaseResponse as PhaseResponse
from hhjax.analysis._prc import phase_response_curve as phase_response_curve
from hhjax.analysis._sensitivity import Sensitivity as Sensitivity
from hhjax.analysis._sensitivity import sensitivities as sensitivities
from hhjax.analysis._spikes import DEFAULT_MAX_SPIKES as DEFAULT_MAX_SPIKES
from hhjax.analysis._spikes import firing_rate as firing_rate
from hhjax.analysis._spikes import first_spike_time as first_spike_time
from hhjax.analysis._spikes import soft_spike_count as soft_spike_count
from hhjax.analysis._spikes import spike_count as spike_count
from hhjax.analysis._spikes import spike_times as spike_times
