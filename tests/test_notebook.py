"""The notebook in docs/ run by a real Jupyter kernel: every result it shows is HTML with
MathML (a softmax Jacobian, a network derivation, a matrix check, a model summary), each
``<math>`` with its alttext, a hat as an accent, the minus sign U+2212, and no memory address
in any output."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "notebook.ipynb"
MATHML = "{http://www.w3.org/1998/Math/MathML}"


@pytest.fixture(scope="module")
def outputs() -> dict[str, dict]:
    """Each code cell's source -> its display data (mime type -> text)."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    shown = {}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            for output in cell.outputs:
                assert output.output_type != "error", output.get("evalue")
            data = [o.data for o in cell.outputs if o.output_type == "execute_result"]
            shown[cell.source] = dict(data[0]) if data else {}
    return shown


def _html(outputs, start: str) -> str:
    [html] = [data["text/html"] for source, data in outputs.items() if start in source]
    return html


def _maths(html: str) -> list:
    root = ET.fromstring(f"<div>{html}</div>")  # well-formed
    return list(root.iter(f"{MATHML}math"))


@pytest.mark.parametrize("cell", ['activation="softmax"', 'network=["relu", "sigmoid"]',
                                  "check_matrix(", "check_formula(", 'derive("x*sigmoid(x)")'])
def test_each_result_is_mathml_with_alttext(outputs, cell):
    html = _html(outputs, cell)
    maths = _maths(html)
    assert maths and all(m.get("alttext") for m in maths)
    assert "<mo>-</mo>" not in html and "<mn>-" not in html
    assert "<style>" in html  # the look travels with the output


def test_the_softmax_jacobian_and_the_network_show_their_matrices(outputs):
    softmax = _html(outputs, 'activation="softmax"')
    assert "<msup><mi>p</mi><mo>⊤</mo></msup>" in softmax  # diag(p) - p pᵀ
    network = _html(outputs, 'network=["relu", "sigmoid"]')
    assert "<msup><mi>X</mi><mo>⊤</mo></msup>" in network and "<mo>⊙</mo>" in network
    assert '<mover accent="true"><mi>Y</mi><mo>^</mo></mover>' in network


def test_the_matrix_check_sets_the_formulas_side_by_side(outputs):
    html = _html(outputs, "check_matrix(")
    assert 'class="forms"' in html and "transpose missing" in html
    assert len(_maths(html)) >= 3


def test_the_model_shows_its_layer_table(outputs):
    html = _html(outputs, "Sequential(")
    assert "<th>output shape</th>" in html and "Dense(8, 3)" in html
    assert "Total parameters: 67" in html  # (4·8 + 8) + (8·3 + 3)


def test_no_output_holds_a_memory_address(outputs):
    for source, data in outputs.items():
        for mime, text in data.items():
            assert not re.search(r"0x[0-9a-fA-F]{4,}", str(text)), (source, mime)
