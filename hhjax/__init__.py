"""hhjax: a differentiable Hodgkin–Huxley neuron simulator in JAX.

Units everywhere: mV, ms, µA/cm², mS/cm², µF/cm² (pA and pF only where stated).
Voltage convention: modern (rest ≈ −65 mV) unless the parameters say otherwise
(:meth:`HHParams.hh1952` gives HH's 1952 / pyHH convention, rest at 0 mV).

``hhjax.analysis``, ``hhjax.io``, ``hhjax.plot``, ``hhjax.pyhh``,
``hhjax.recordings`` and ``hhjax.cli`` are imported on first use.

``import hhjax`` does not enable float64; do that yourself with
``jax.config.update("jax_enable_x64", True)`` before creating arrays. It does add
two XLA:CPU compilation flags to ``XLA_FLAGS`` (faster loops; results unchanged;
opt out with ``HHJAX_NO_XLA_TUNING=1``), see ``hhjax/_xla_flags.py``.
"""

# ruff: noqa: E402 (the XLA flags must be set before anything below touches JAX)
from hhjax import _xla_flags

_xla_flags.tune_cpu_backend()

from hhjax import channels as channels
from hhjax import rates as rates
from hhjax import stimulus as stimulus
from hhjax._autodiff import FORWARD_MODE_MAX as FORWARD_MODE_MAX
from hhjax._autodiff import grad as grad
from hhjax._autodiff import value_and_grad as value_and_grad
from hhjax._checks import MAX_PLAUSIBLE_CONDUCTANCE as MAX_PLAUSIBLE_CONDUCTANCE
from hhjax._checks import MAX_PLAUSIBLE_CURRENT as MAX_PLAUSIBLE_CURRENT
from hhjax._checks import is_out_of_memory as is_out_of_memory
from hhjax._equilibrium import resting_state as resting_state
from hhjax._integrators import DEFAULT_METHOD as DEFAULT_METHOD
from hhjax._integrators import METHODS as METHODS
from hhjax._integrators import Integrator as Integrator
from hhjax._model import Channel as Channel
from hhjax._model import ChannelCheckError as ChannelCheckError
from hhjax._model import GateRates as GateRates
from hhjax._model import Model as Model
from hhjax._model import model_of as model_of
from hhjax._registry import MODELS as MODELS
from hhjax._registry import default_params as default_params
from hhjax._registry import model_names as model_names
from hhjax._registry import voltage_convention as voltage_convention
from hhjax._simulate import NonFiniteSimulationError as NonFiniteSimulationError
from hhjax._simulate import StepSizeWarning as StepSizeWarning
from hhjax._simulate import TimeAxisWarning as TimeAxisWarning
from hhjax._simulate import compiled_fields as compiled_fields
from hhjax._simulate import simulate as simulate
from hhjax._simulate import step as step
from hhjax.models.hh import HH as HH
from hhjax.models.hh import HHParams as HHParams
from hhjax.models.hh import HHState as HHState
from hhjax.models.hh import Trace as Trace
from hhjax.models.pospischil import POSPISCHIL as POSPISCHIL
from hhjax.models.pospischil import PospischilParams as PospischilParams
from hhjax.models.pospischil import PospischilState as PospischilState
from hhjax.models.pospischil import PospischilTrace as PospischilTrace

__version__ = "0.1.0"

# Subpackages outside the numerical core, imported on first use (``hhjax.plot``
# loads matplotlib): ``import hhjax`` then ``hhjax.analysis.fi_curve(...)`` works.
_LAZY_SUBMODULES = ("analysis", "cli", "io", "plot", "pyhh", "recordings")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"hhjax.{name}")
    raise AttributeError(f"module 'hhjax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY_SUBMODULES])
