"""Recorded current-clamp data: the :class:`Recording` type and its file loaders.

Every loader returns a :class:`Recording` (sweeps on a uniform time base, V in mV,
injected current in µA/cm² or in pA with the cell capacitance in pF).
:func:`load_recording` picks the loader from the file extension.
"""

from hhjax.recordings._recording import Recording as Recording
from hhjax.recordings._recording import RecordingError as RecordingError
from hhjax.recordings._table import load_csv as load_csv
from hhjax.recordings._table import load_npz as load_npz
from hhjax.recordings._table import load_recording as load_recording
from hhjax.recordings._table import save_npz as save_npz
