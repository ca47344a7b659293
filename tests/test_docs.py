"""Docs stay true: every public name is documented and docs/api.md is current."""

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _make_api():
    spec = importlib.util.spec_from_file_location("make_api", DOCS / "make_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_public_name_has_a_docstring():
    _, missing = _make_api().render()
    assert not missing, f"public names without a docstring: {missing}"


def test_api_reference_is_up_to_date():
    text, _ = _make_api().render()
    assert (DOCS / "api.md").read_text() == text, "run `python docs/make_api.py`"
