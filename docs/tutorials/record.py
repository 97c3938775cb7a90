"""Run the tutorials and record what each code cell shows, as plain text.

    uv run python docs/tutorials/record.py             # every tutorial
    uv run python docs/tutorials/record.py 03 05       # the tutorials whose names start so

writes ``docs/tutorials/_outputs/NN-slug.txt`` for each tutorial ``docs/tutorials/NN-slug.md``.
``tests/test_tutorials.py`` runs the tutorials the same way and fails, naming the cell and
showing a diff, where an output differs from the recorded one: re-record after reading the
diff, and commit the new outputs with the change that explains them.

What is recorded for a cell, in order: its printed text (stdout and stderr), and each value it
displays: the plain-text form, or for a value that displays as HTML, the HTML's text with
each formula as its ``alttext`` (what a screen reader reads), one line per block. Figures and
other images are recorded as ``[image/png]``. Times and speeds, which change from run to run,
are replaced by ``<time>`` and ``<speed>``, and rounding noise (a number below 1e-8 in
scientific notation, which another BLAS rounds otherwise) by ``<tiny>``. A tutorial cell
tagged ``mnist`` shows results on the MNIST files; where they are absent (looked up in
``CHAINRULE_DATA_DIR``, then beside the project, as the tests do) the tutorial falls back to a
built-in data set and those cells are not compared.
"""

from __future__ import annotations

import html
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUTPUTS = HERE / "_outputs"
MNIST_TAG = "mnist"
#: A cell tagged so shows PyTorch's answer, or says PyTorch is missing where it is.
TORCH_TAG = "torch"

_TIME = re.compile(r"\b\d+(?:\.\d+)?\s?(?:s|ms|µs|min)\b")
_SPEED = re.compile(r"\b[\d,.]+\s?(?:samples|it|images)/s\b")
_TINY = re.compile(r"\b\d(?:\.\d+)?e-(?:09|1\d|2\d)\b")  # rounding noise: differs by BLAS
_BLOCK_END = re.compile(r"</(?:p|div|li|tr|h\d|table|pre|caption|summary|details)>|<br\s*/?>", re.I)
_MATH = re.compile(r"<math\b[^>]*?alttext=\"([^\"]*)\"[^>]*>.*?</math>", re.S)
_KERNEL_NOTE = re.compile(r"\[IPKernelApp\] [A-Z]+ \|[^\n]*\n?")  # the kernel's own log lines
_CELL_HEADER = re.compile(r"^=== code cell (\d+): (.*) ===$")


@dataclass
class Cell:
    number: int  # 1-based among the code cells
    first_line: str
    text: str
    tags: tuple[str, ...] = ()


def tutorials() -> list[Path]:
    return sorted(p for p in HERE.glob("[0-9][0-9]-*.md"))


def data_folder() -> Path | None:
    """Where the MNIST IDX files are: ``$CHAINRULE_DATA_DIR``, else the data folder beside the
    project (as the tests look them up); None when neither holds them."""
    for place in (os.environ.get("CHAINRULE_DATA_DIR"), ROOT.parent / "shared" / "data"):
        if place and (Path(place) / "mnist" / "train-images-idx3-ubyte.gz").is_file():
            return Path(place)
    return None


def html_text(markup: str) -> str:
    """The text of an HTML output: each formula as its alttext, one line per block."""
    markup = re.sub(r"<style\b.*?</style>", "", markup, flags=re.S | re.I)
    markup = re.sub(r"<svg\b.*?</svg>", "[svg]", markup, flags=re.S | re.I)
    markup = _MATH.sub(lambda m: " " + m.group(1) + " ", markup)
    markup = re.sub(r"</t[dh]>", " | ", markup, flags=re.I)
    markup = _BLOCK_END.sub("\n", markup)
    text = html.unescape(re.sub(r"<[^>]+>", " ", markup))
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def normalise(text: str) -> str:
    text = _KERNEL_NOTE.sub("", text)
    text = _SPEED.sub("<speed>", text)
    text = _TINY.sub("<tiny>", text)
    text = _TIME.sub("<time>", text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def output_text(output: dict) -> str:
    kind = output["output_type"]
    if kind == "stream":
        return output["text"]
    if kind == "error":
        return f"ERROR {output['ename']}: {output['evalue']}"
    data = output.get("data", {})
    if "text/html" in data:
        return html_text(data["text/html"])
    if "text/markdown" in data:
        return data["text/markdown"]
    if "image/png" in data or "image/svg+xml" in data:
        return "[image]"
    return data.get("text/plain", "")


def cell_text(outputs: list[dict]) -> str:
    """A cell's outputs as one text: printed text as a terminal shows it (a kernel may send one
    print in several pieces), each displayed value on lines of its own."""
    parts: list[str] = []
    after_print = False
    for output in outputs:
        text = output_text(output)
        printed = output["output_type"] == "stream"
        if printed and after_print:
            parts[-1] += text
        else:
            parts.append(text)
        after_print = printed
    return "\n".join(part.rstrip("\n") for part in parts)


def execute(path: Path, timeout: int = 120) -> list[Cell]:
    """Run the tutorial in a python3 kernel, in a fresh temporary folder (the files a tutorial
    writes land there), and return its code cells."""
    import tempfile

    import jupytext
    import nbclient

    notebook = jupytext.read(path)
    env_dir = data_folder()
    saved = os.environ.get("CHAINRULE_DATA_DIR")
    if env_dir is not None:
        os.environ["CHAINRULE_DATA_DIR"] = str(env_dir)
    os.environ.setdefault("NO_COLOR", "1")
    try:
        with tempfile.TemporaryDirectory(prefix="tutorial-") as folder:
            nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": folder}}).execute()
    finally:
        if saved is None:
            os.environ.pop("CHAINRULE_DATA_DIR", None)
        else:
            os.environ["CHAINRULE_DATA_DIR"] = saved
    cells = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        text = cell_text(cell.outputs)
        first = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
        cells.append(Cell(len(cells) + 1, first.strip()[:70],
                          normalise(text), tuple(cell.metadata.get("tags", ()))))
    return cells


def render(path: Path, cells: list[Cell]) -> str:
    head = (f"# Outputs of {path.name}, one block per code cell; "
            "re-record with: uv run python docs/tutorials/record.py\n")
    blocks = [f"=== code cell {c.number}: {c.first_line} ===\n{c.text}".rstrip() for c in cells]
    return head + "\n".join(blocks) + "\n"


def parse(text: str) -> dict[int, str]:
    """Recorded file -> {cell number: text}."""
    cells: dict[int, list[str]] = {}
    current = None
    for line in text.splitlines()[1:]:
        m = _CELL_HEADER.match(line)
        if m:
            current = cells.setdefault(int(m.group(1)), [])
        elif current is not None:
            current.append(line)
    return {k: "\n".join(v) for k, v in cells.items()}


def recorded_path(path: Path) -> Path:
    return OUTPUTS / (path.stem + ".txt")


def main(prefixes: list[str]) -> int:
    if data_folder() is None:
        print("The MNIST files are absent: the cells tagged 'mnist' would record the fallback; "
              "set CHAINRULE_DATA_DIR to the folder that holds mnist/ first.", file=sys.stderr)
        return 1
    OUTPUTS.mkdir(exist_ok=True)
    for path in tutorials():
        if prefixes and not any(path.name.startswith(p) for p in prefixes):
            continue
        cells = execute(path)
        recorded_path(path).write_text(render(path, cells), encoding="utf-8")
        print(f"recorded {len(cells)} cells of {path.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
