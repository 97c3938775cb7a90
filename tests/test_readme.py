"""Every example of README.md runs, and prints what the README shows.

How the README's fenced blocks are run (a new section needs nothing more than following this):

- ```` ```console ````: each ``$ uv run chainrule ARGS`` line runs ``python -m chainrule ARGS``
  in a fresh temporary folder (one folder per block, so a block's commands share files), with
  stdout and stderr merged as a terminal shows them. The lines after a command, up to the next
  ``$`` line, must match its output line by line: a line that is only ``...`` stands for any
  number of lines (none included), and ``...`` inside a line stands for any text (timings,
  samples/s, folders). Everything else must be equal (trailing spaces aside). Where the next
  line of the block is ``$ echo $?``, its output line is the expected exit code; elsewhere the
  exit code must be 0 or 1 (``chainrule check`` exits 1 for a wrong formula, and an error prints
  a line the README would have to show), never 2 (bad usage) or a crash's. Any other command
  fails the test, unless the block is skipped (below).
- ```` ```python ````: run in a fresh namespace in a fresh temporary folder. A block written as
  a doctest (lines starting with ``>>>``) must print what it shows, with ``...`` as above
  (doctest's ELLIPSIS) and whitespace normalised; any other block must run without an error.
- ```` ```bash ```` (the set-up commands) and ```` ```text ```` are not run.

An HTML comment on the line(s) just before a block (invisible on the rendered page) adjusts it:

- ``<!-- readme-test: skip REASON -->``: not run; the reason is the skip message. Only for
  examples that take minutes (a benchmark, a full MNIST training) or need the internet.
- ``<!-- readme-test: requires MODULE -->``: skipped where MODULE is not installed (PyTorch).
- ``<!-- readme-test: replace "OLD" "NEW" -->``: run with OLD replaced by NEW (smaller
  arguments for a long example); may repeat.
- ``<!-- readme-test: setup NAME -->``: prepares what the prose around the block describes;
  NAME is a key of :data:`SETUPS` below.

Numbers shown in full (losses, accuracies) are part of the contract: training is seeded and
bit-reproducible, so a changed number means changed behaviour, and the README must follow.
"""

from __future__ import annotations

import doctest
import functools
import http.server
import os
import re
import shlex
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The README and the guide pages that hold what the README links to; their examples run alike.
PAGES = [README, *sorted((ROOT / "docs" / "guide").glob("*.md"))]
MARKER = re.compile(r"^<!--\s*readme-test:\s*(\w+)\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")
DIRECTIVE = re.compile(r"^```\{[\w-]+\}")


@dataclass
class Block:
    lang: str
    line: int  # 1-based line of the opening fence
    text: str
    markers: list[tuple[str, str]] = field(default_factory=list)
    page: str = "README.md"

    @property
    def id(self) -> str:
        first = next((ln for ln in self.text.splitlines() if ln.strip()), "")
        first = first.removeprefix("$ uv run ").removeprefix(">>> ")
        where = "" if self.page == "README.md" else Path(self.page).stem + "-"
        return f"{where}L{self.line}-{self.lang}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', first)[:40]}"

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def parse_readme(text: str, page: str = "README.md") -> list[Block]:
    """The fenced blocks of ``text`` (the README or a guide page) with the readme-test markers
    just above each."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if DIRECTIVE.match(lines[i]):  # a MyST directive of a docs page (a toctree): not an example
            i += 1
            while i < len(lines) and lines[i].rstrip() != "```":
                i += 1
            i += 1
            continue
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        markers, j = [], i - 1
        while j >= 0 and (mk := MARKER.match(lines[j].strip())):
            markers.insert(0, (mk.group(1), mk.group(2)))
            j -= 1
        end = i + 1
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        blocks.append(Block(m.group(1), i + 1, "\n".join(lines[i + 1:end]), markers, page))
        i = end + 1
    return blocks


def line_matches(expected: str, actual: str) -> bool:
    parts = [re.escape(p) for p in expected.rstrip().split("...")]
    return re.fullmatch(".*?".join(parts), actual.rstrip(), flags=re.DOTALL) is not None


def lines_match(expected: list[str], actual: list[str]) -> bool:
    """``expected`` against ``actual``, a line of only ``...`` matching any number of lines."""

    @functools.cache
    def match(i: int, j: int) -> bool:
        if i == len(expected):
            return j == len(actual)
        if expected[i].strip() == "...":
            return any(match(i + 1, k) for k in range(j, len(actual) + 1))
        return j < len(actual) and line_matches(expected[i], actual[j]) and match(i + 1, j + 1)

    return match(0, 0)


# --- what the prose provides ----------------------------------------------------------------


def _setup_wine_samples(tmp_path, monkeypatch):
    """new_samples.csv: three rows of wine's 13 feature columns, with a header, no target."""
    from chainrule.data import load_dataset

    ds = load_dataset("wine")
    rows = [",".join(ds.feature_names)] + [",".join(f"{v:g}" for v in row) for row in ds.X[:3]]
    (tmp_path / "new_samples.csv").write_text("\n".join(rows) + "\n")


def _setup_digits_model(tmp_path, monkeypatch):
    """digits.safetensors, as the "Train from Python" example saves it."""
    from chainrule.nn import Dense, ReLU, Sequential, Softmax

    model = Sequential([Dense(64, 128), ReLU(), Dense(128, 10), Softmax()], seed=0)
    model.save(tmp_path / "digits.safetensors")


def _setup_mnist_mirror(tmp_path, monkeypatch):
    """The MNIST and Fashion-MNIST files served from 127.0.0.1, as their public mirrors do."""
    from conftest import SHARED_DATA

    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip("the MNIST IDX files are absent")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(SHARED_DATA))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("CHAINRULE_DATA_MIRROR", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("CHAINRULE_DATA_DIR", str(tmp_path / "data"))
    return server.shutdown


def _setup_backward_layers(tmp_path, monkeypatch):
    """layers.py: the course-style affine layer of "Check a backward pass you wrote", whose
    bias gradient is not summed over the batch."""
    (tmp_path / "layers.py").write_text(
        "def affine_forward(x, w, b):\n"
        "    return x @ w + b, (x, w, b)\n\n\n"
        "def affine_backward(dout, cache):\n"
        "    x, w, b = cache\n"
        "    return dout @ w.T, x.T @ dout, dout\n"
    )


#: ``setup NAME`` markers: NAME -> a function of (tmp_path, monkeypatch) run before the block.
SETUPS = {
    "wine-samples": _setup_wine_samples,
    "digits-model": _setup_digits_model,
    "mnist-mirror": _setup_mnist_mirror,
    "backward-layers": _setup_backward_layers,
}


# --- running a block ----------------------------------------------------------------------------


def _commands(text: str) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for each ``$`` line of a console block."""
    out: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            out.append((line[2:].strip(), []))
        elif out:
            out[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"console block starts with output, not a $ line: {line!r}")
    return out


def _run_console(block: Block, cwd: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "100", "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    commands = _commands(block.text)
    last_code = None
    for k, (command, expected) in enumerate(commands):
        where = f"{block.where} `{command}`"
        if command == "echo $?":
            actual = [str(last_code)]
        else:
            words = shlex.split(command, comments=True)
            if words[:3] != ["uv", "run", "chainrule"]:
                raise AssertionError(f"{where}: the harness runs `uv run chainrule ...` and "
                                     "`echo $?` only; mark the block skip with a reason")
            proc = subprocess.run([sys.executable, "-m", "chainrule", *words[3:]], cwd=cwd,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, timeout=600)
            last_code, actual = proc.returncode, proc.stdout.splitlines()
            checked_next = k + 1 < len(commands) and commands[k + 1][0] == "echo $?"
            if not checked_next and last_code not in (0, 1):
                raise AssertionError(f"{where} exited {last_code}:\n{proc.stdout}")
        if not lines_match(expected, actual):
            raise AssertionError(
                f"{where} printed what the README does not show.\n--- README:\n"
                + "\n".join(expected) + "\n--- program:\n" + "\n".join(actual)
            )


def _run_python(block: Block, source: str) -> None:
    name = block.where
    if any(line.lstrip().startswith(">>>") for line in source.splitlines()):
        test = doctest.DocTestParser().get_doctest(source, {"__name__": "readme"}, name, name,
                                                   block.line)
        runner = doctest.DocTestRunner(
            optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        report: list[str] = []
        runner.run(test, out=report.append)
        assert runner.failures == 0, "".join(report)
    else:
        exec(compile(source, name, "exec"), {"__name__": "readme"})


BLOCKS = [block for page in PAGES
          for block in parse_readme(page.read_text(encoding="utf-8"),
                                    str(page.relative_to(ROOT)))]
RUN = [b for b in BLOCKS if b.lang in ("console", "python")]


@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_readme_example(block, tmp_path, monkeypatch):
    source = block.text
    cleanups = []
    for kind, arg in block.markers:
        if kind == "skip":
            pytest.skip(arg.lstrip(",: ") or "marked skip in the README")
        elif kind == "requires":
            for module in arg.replace(",", " ").split():
                pytest.importorskip(module)
        elif kind == "replace":
            old, new = shlex.split(arg)
            assert old in source, f"{block.where}: replace marker: {old!r} not found"
            source = source.replace(old, new)
        elif kind == "setup":
            assert arg in SETUPS, f"{block.where}: unknown setup {arg!r}"
            cleanup = SETUPS[arg](tmp_path, monkeypatch)
            if cleanup:
                cleanups.append(cleanup)
        else:
            raise AssertionError(f"{block.where}: unknown readme-test marker {kind!r}")
    monkeypatch.chdir(tmp_path)
    try:
        if block.lang == "console":
            _run_console(Block(block.lang, block.line, source, block.markers, block.page),
                         tmp_path)
        else:
            _run_python(block, source)
    finally:
        for cleanup in cleanups:
            cleanup()


def test_every_block_is_run_or_skipped_for_a_reason():
    assert len(RUN) >= 10
    for block in BLOCKS:
        assert block.lang in ("console", "python", "bash", "text"), (
            f"{block.where}: fence ```{block.lang}: say console, python, bash or text")
        for kind, arg in block.markers:
            if kind == "skip":
                assert arg.lstrip(",: "), f"{block.where}: a skip needs its reason"
    skipped = [b for b in RUN if any(k == "skip" for k, _ in b.markers)]
    assert len(skipped) <= 3, "skip sparingly: " + ", ".join(b.id for b in skipped)


# --- the harness itself ---------------------------------------------------------------------------


def test_ellipsis_rules():
    assert line_matches("Epoch 1/30  loss 1.7903  ...", "Epoch 1/30  loss 1.7903  0.13s")
    assert not line_matches("Epoch 1/30  loss 1.7903  ...", "Epoch 1/30  loss 1.7904  0.13s")
    assert line_matches("in ...s (... samples/s).", "in 4.0s (11,800 samples/s).")
    assert lines_match(["a", "...", "d"], ["a", "b", "c", "d"])
    assert lines_match(["a", "...", "b"], ["a", "b"])
    assert not lines_match(["a", "b"], ["a", "b", "c"])
    assert not lines_match(["a", "...", "d"], ["a", "b", "c"])


def test_markers_and_blocks_are_parsed():
    text = ("x\n<!-- readme-test: skip, takes minutes -->\n```console\n$ uv run chainrule x\n"
            "out\n```\n```python\nprint(1)\n```\n")
    console, python = parse_readme(text)
    assert console.markers == [("skip", ", takes minutes")] and console.line == 3
    assert console.text == "$ uv run chainrule x\nout" and python.markers == []
    assert parse_readme("```{toctree}\nguide\n```\n```text\nx\n```\n")[0].lang == "text"
    assert _commands(console.text) == [("uv run chainrule x", ["out"])]


# --- the first commands and the loss example's numbers, checked by hand ---------------------------


def test_readme_starts_with_the_two_commands():
    block = re.search(r"```\w*\n(.*?)```", README.read_text(), re.S).group(1)
    lines = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert lines == ["pip install uv && uv run chainrule train", "pip install uv && uv run pytest"]


def test_readme_loss_example_shows_the_textbook_gradient():
    # test_readme_example runs the block as a doctest; here its numbers are checked by hand.
    section = README.read_text().split("## A loss and its gradient", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    # yhat = (0.9, 0.2), y = (1, 0), m = 2: -(1/0.9)/2 = -0.5556 and (1/0.8)/2 = 0.625;
    # loss = (-ln 0.9 - ln 0.8)/2 = (0.1053605 + 0.2231436)/2 = 0.1642520
    assert "\n0.16425...\n" in code
    assert "array([-0.55555556,  0.625     ])" in code


# --- what a reader pasting the examples in order meets ----------------------------------------


def test_the_sample_file_is_written_before_predict_reads_it():
    text = (ROOT / "docs" / "guide" / "training.md").read_text(encoding="utf-8")
    written = text.index('open("new_samples.csv", "w")')
    assert written < text.index("predict wine.safetensors --data new_samples.csv")


def test_the_first_python_block_says_how_to_run_it():
    text = README.read_text(encoding="utf-8")
    before = text[:text.index("```python")]
    assert "uv run python" in before.rsplit("```", 1)[-1]


def test_a_figure_no_test_reproduces_is_marked_a_benchmark_figure():
    # the accuracies of a block the tests skip are a benchmark's: the prose just above says so
    for block in BLOCKS:
        if not any(kind == "skip" for kind, _ in block.markers):
            continue
        if not re.search(r"\d+\.\d+%", block.text):
            continue
        lines = (ROOT / block.page).read_text(encoding="utf-8").splitlines()
        above = "\n".join(lines[max(0, block.line - 12):block.line - 1])
        above = " ".join(above.split())
        assert "benchmark figure" in above, f"{block.where}: {above[-300:]}"
