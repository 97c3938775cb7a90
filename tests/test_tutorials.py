"""Every tutorial in docs/tutorials runs in a real Jupyter kernel, and every code cell shows
what its recorded output (docs/tutorials/_outputs/NN-slug.txt) says it shows.

A changed output fails with the tutorial, the cell and a diff. Read the diff; where the change is
right, record the outputs again with ``uv run python docs/tutorials/record.py`` and commit them
with the change that explains them. No output may hold a memory address or a traceback.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import sys
from pathlib import Path

import pytest

pytest.importorskip("jupytext")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("tutorial_record",
                                               ROOT / "docs" / "tutorials" / "record.py")
record = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = record  # dataclasses look their module up there
_spec.loader.exec_module(record)

TUTORIALS = record.tutorials()


def test_the_tutorials_are_listed_in_order_in_the_index():
    index = (ROOT / "docs" / "tutorials" / "index.md").read_text(encoding="utf-8")
    listed = re.findall(r"^(\d\d-[\w-]+)$", index, flags=re.M)
    assert listed == [p.stem for p in TUTORIALS]
    assert len(TUTORIALS) >= 8


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_each_tutorial_is_a_myst_notebook_with_an_exercise(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\njupytext:") and "name: python3" in text.split("---")[1]
    assert "## Exercise" in text and ":class: dropdown" in text
    assert "{py:" in text  # it links the reference pages


def _execute(path):
    """``record.execute(path)``, or the exception it raised, to be raised by that test alone."""
    try:
        return record.execute(path)
    except Exception as exc:  # a failing cell: its test reports it
        return RuntimeError(f"{path.name} did not run: {type(exc).__name__}: {exc}")


@pytest.fixture(scope="module")
def executed():
    """Every tutorial run once, two kernels at a time, each from a fresh interpreter (spawn:
    forking a process that holds threads, JAX's or BLAS's, can deadlock)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
        return dict(zip(TUTORIALS, pool.map(_execute, TUTORIALS), strict=True))


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_each_tutorial_shows_its_recorded_outputs(path, executed):
    recorded_file = record.recorded_path(path)
    assert recorded_file.is_file(), (
        f"no recorded outputs for {path.name}: run uv run python docs/tutorials/record.py")
    recorded = record.parse(recorded_file.read_text(encoding="utf-8"))
    cells = executed[path]
    if isinstance(cells, Exception):
        raise cells
    mnist_present = record.data_folder() is not None
    torch_present = importlib.util.find_spec("torch") is not None
    assert len(cells) == len(recorded), (
        f"{path.name} has {len(cells)} code cells, its recording {len(recorded)}")
    for cell in cells:
        assert not re.search(r"0x[0-9a-fA-F]{4,}", cell.text), (path.name, cell.number)
        assert "Traceback" not in cell.text and "ERROR " not in cell.text, (path.name, cell.number)
        if record.MNIST_TAG in cell.tags and not mnist_present:
            continue  # the fallback data set shows other numbers
        if record.TORCH_TAG in cell.tags and not torch_present:
            assert cell.text == "PyTorch is not installed: skipped", (path.name, cell.number)
            continue
        expected = recorded[cell.number]
        if cell.text != expected:
            diff = "\n".join(difflib.unified_diff(expected.splitlines(), cell.text.splitlines(),
                                                  "recorded", "now", lineterm=""))
            pytest.fail(f"{path.name}, code cell {cell.number} ({cell.first_line}): its output "
                        f"changed\n{diff}")


def test_html_outputs_are_read_as_text_with_each_formula_as_its_alttext():
    html = ('<style>p {}</style><div><p>Result: <math alttext="p - t"><mi>p</mi></math></p>'
            "<p>Checked &amp; done</p></div>")
    assert record.html_text(html) == "Result: p - t\nChecked & done"


def test_timings_speeds_and_rounding_noise_are_normalised_and_nothing_else():
    text = "1 epoch in 0.83s (2,400 samples/s); difference 3e-12, relative 1.9e-11; tol 1e-07"
    assert record.normalise(text) == (
        "1 epoch in <time> (<speed>); difference <tiny>, relative <tiny>; tol 1e-07")
    assert record.normalise("loss 0.6238, accuracy 84.19%") == "loss 0.6238, accuracy 84.19%"


def test_a_changed_recording_is_parsed_back_cell_by_cell():
    cells = [record.Cell(1, "import chainrule", "a\nb"), record.Cell(2, "x = 1", "")]
    assert record.parse(record.render(Path("01-x.md"), cells)) == {1: "a\nb", 2: ""}


def test_a_print_sent_in_pieces_is_one_line():
    pieces = [{"output_type": "stream", "name": "stdout", "text": t}
              for t in ("loss:", " 1.5", "\n")]
    shown = {"output_type": "execute_result", "data": {"text/plain": "2"}}
    assert record.cell_text([*pieces, shown]) == "loss: 1.5\n2"
