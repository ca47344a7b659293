"""Recorded current-clamp data: the :class:`Recording` type and its file loaders.

Every loader returns a :class:`Recording` (sweeps on a uniform time base, V in mV,
injected current in µA/cm² or in pA with the cell capacitance in pF).
:func:`load_recording` picks the loader from the file extension (``.npz``,
``.csv``, ``.abf`` via pyabf, ``.nwb`` via pynwb). :func:`cell_properties`
measures the passive properties (and the capacitance that turns pA into µA/cm²);
:func:`correct` applies liquid-junction, bridge-balance and drift corrections.
"""

from hhjax.recordings._abf import load_abf as load_abf
from hhjax.recordings._cell import CellProperties as CellProperties
from hhjax.recordings._cell import baseline_drift as baseline_drift
from hhjax.recordings._cell import cell_properties as cell_properties
from hhjax.recordings._cell import correct as correct
from hhjax.recordings._cell import fit_exponential as fit_exponential
from hhjax.recordings._cell import sweep_baselines as sweep_baselines
from hhjax.recordings._nwb import load_nwb as load_nwb
from hhjax.recordings._recording import Recording as Recording
from hhjax.recordings._recording import RecordingError as RecordingError
from hhjax.recordings._table import SELECTORS as SELECTORS
from hhjax.recordings._table import load_csv as load_csv
from hhjax.recordings._table import load_npz as load_npz
from hhjax.recordings._table import load_recording as load_recording
from hhjax.recordings._table import save_npz as save_npz
