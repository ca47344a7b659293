"""ABF files made for tests by editing a shipped recording's header."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

RECORDINGS = Path(__file__).resolve().parents[1] / "examples" / "data" / "recordings"


def cell_on_dac1(path: Path, *, epochs_on_dac1: bool = True) -> Path:
    """Write ``18711001.abf`` as if the cell were on an amplifier's second
    channel: DAC 0 (paired with ADC 0 by index) outputs no waveform and DAC 1 (pA)
    is switched on. With ``epochs_on_dac1`` the file's epoch table drives DAC 1
    (the same command as the original's DAC 0); without, DAC 1 has no epochs and
    nothing drives the cell. Returns ``path``."""
    pyabf = pytest.importorskip("pyabf")
    original = RECORDINGS / "18711001.abf"
    header = pyabf.ABF(str(original), loadData=False)
    dacs, epochs = header._dacSection, header._epochPerDacSection
    raw = bytearray(original.read_bytes())
    struct.pack_into("h", raw, dacs._byteStart + 40, 0)  # DAC 0: no waveform
    struct.pack_into("2h", raw, dacs._byteStart + dacs._entrySize + 40, 1, 1)
    if epochs_on_dac1:
        for k in range(epochs._entryCount):
            struct.pack_into("h", raw, epochs._byteStart + k * epochs._entrySize + 2, 1)
    k = raw.find(b"\x00nA\x00")  # DAC 1's unit: nA -> pA, as DAC 0's
    raw[k + 1 : k + 3] = b"pA"
    path.write_bytes(bytes(raw))
    return path
