"""Every numbered example script runs in a fresh process and writes its figure(s).

Examples are found by name (``examples/NN_*.py``); each writes
``examples/output/NN_*.png``. Those listed in ``SLOW`` run only with ``-m slow``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
OUTPUT = EXAMPLES / "output"
# 40 fits a real cell (minutes); 50's channel and model are tested by
# tests/test_custom_model.py, which imports it, and its fit takes ~30 s.
SLOW = {"40_fit_real_recording.py", "50_custom_channel.py"}


def _cases():
    for script in sorted(EXAMPLES.glob("[0-9][0-9]_*.py")):
        marks = [pytest.mark.slow] if script.name in SLOW else []
        yield pytest.param(script, id=script.stem, marks=marks)


@pytest.mark.parametrize("script", list(_cases()))
def test_example_runs_and_writes_its_figure(script):
    started = time.time()
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    prefix = script.name.split("_")[0]
    written = [
        p for p in OUTPUT.glob(f"{prefix}_*.png") if p.stat().st_mtime >= started - 1
    ]
    assert written, f"{script.name} wrote no examples/output/{prefix}_*.png"
    assert all(p.stat().st_size > 10_000 for p in written)
