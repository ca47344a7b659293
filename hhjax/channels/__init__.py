"""Ion channels: gates, their voltage-dependent rates, and the current they carry.

Each channel is a small frozen dataclass (see :class:`hhjax.Channel`); a model is a
tuple of channels (see :class:`hhjax.Model`).
"""

from hhjax.channels.hh import Leak as Leak
from hhjax.channels.hh import Potassium as Potassium
from hhjax.channels.hh import Sodium as Sodium
from hhjax.channels.ih import HCurrent as HCurrent
from hhjax.channels.kir import InwardRectifier as InwardRectifier
from hhjax.channels.kv1 import DCurrent as DCurrent
from hhjax.channels.nap import PersistentSodium as PersistentSodium
from hhjax.channels.pospischil import MCurrent as MCurrent
from hhjax.channels.pospischil import TraubPotassium as TraubPotassium
from hhjax.channels.pospischil import TraubSodium as TraubSodium
from hhjax.channels.slow_ahp import SlowAHPCurrent as SlowAHPCurrent
