"""Each example script runs in a fresh process and writes its figure(s)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
OUTPUT = EXAMPLES / "output"


@pytest.mark.parametrize(
    "script, figures",
    [
        ("01_pyhh_quickstart.py", ["01_pyhh_quickstart.png"]),
        ("02_batch_simulation.py", ["02_batch_simulation.png", "02_batch_cell.png"]),
        ("03_gradients.py", ["03_gradients.png"]),
    ],
)
def test_example_runs_and_writes_its_figure(script, figures):
    for name in figures:  # a figure left over from an earlier run proves nothing
        (OUTPUT / name).unlink(missing_ok=True)
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name in figures:
        assert (OUTPUT / name).stat().st_size > 10_000, name
