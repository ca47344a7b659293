"""Docs stay true: every public name is documented, docs/api.md is current and
every field of a model's parameters, state and trace states its unit."""

import importlib.util
import re
from pathlib import Path
from typing import NamedTuple

import pytest

import hhjax
from hhjax._model import document_fields

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


_UNIT = re.compile(r"(?<!\w)(mV|ms|mS/cm²|µF/cm²|µA/cm²|°C|dimensionless)(?!\w)")


@pytest.mark.parametrize(
    "model",
    sorted({hhjax.model_of(m()) for m in hhjax.MODELS.values()}, key=lambda m: m.name),
    ids=lambda m: m.name,
)
def test_every_field_states_its_unit(model):
    # help(hhjax.HHParams.g_na) shows the field's meaning and unit.
    for cls in (model.params_type, model.state_type, model.trace_type):
        for field in cls._fields:
            doc = getattr(cls, field).__doc__
            assert doc and _UNIT.search(doc), f"{cls.__name__}.{field}: {doc!r}"


def test_a_field_without_an_entry_is_an_error_at_import():
    class Point(NamedTuple):
        """A point.

        Attributes:
            x: abscissa, mV
        """

        x: float
        y: float

    with pytest.raises(TypeError, match=r"documents \['x'\].*fields are \['x', 'y'\]"):
        document_fields(Point)
