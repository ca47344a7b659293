"""README.md stays true: its set-up commands and its Python example."""

import re
import runpy
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_opens_with_the_two_setup_commands():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1).strip().splitlines()
    assert len(first_block) == 2
    assert "pip install -e" in first_block[0] and "hhjax fit" in first_block[0]
    assert "pip install -e" in first_block[1] and "pytest" in first_block[1]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "-m pytest -q" in first_block[1] and "-m pytest -q" in ci


def test_readme_python_example_runs(tmp_path):
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    script = tmp_path / "readme_example.py"
    script.write_text(code)
    namespace = runpy.run_path(str(script))
    assert namespace["trace"].v.shape == (5000,)
    assert namespace["batch"].v.shape == (5000, 100)
    assert float(namespace["trace"].v.max()) > 20.0  # the step makes the cell spike
