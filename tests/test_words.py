"""The product speaks to its users only: no file of the repository refers to documents, tickets or
machines that a reader of the code, the README or a message cannot see.

Every tracked text file (``git ls-files``) is searched for the patterns below; a hit fails with
the file, line and text. Name the mistake, the maths or a public reference instead: "dE/dyhat
used where dE/dz is needed", "the 1/m of the mean", "PyTorch issue #5351" (a public URL is
fine; an internal ticket number is not). The random-number ``seed=`` is of course fine: the
patterns are about numbered example documents ("seed 000"), internal tickets and local paths.
Only this file is excluded, for its own pattern list.
"""

from __future__ import annotations

import bisect
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PATTERNS = {
    "a numbered example document": r"\bseeds?[ _-]?0\d\d\b",
    "the example documents": r"\bseeds'|\bthe seeds\b|\bseed documents?\b",
    "an internal ticket number": r"\bissues?[ _-]?#?\d+\b|\bissues? \d+ and \d+\b",
    "an internal ticket": r"\bthe issue's\b|\bthe issue (names|lists|asks)\b|\bissue_[a-z]"
                          r"|_the_issues?|\baudit of issues?\b",
    "this machine": r"\bshared machine\b|\bthis workplace\b|\bthis project's machine\b",
    "an internal target": r"\bset itself\b|\btargets the project\b",
    "a local path": r"shared/data|/opt/wheels|--find-links|/work/|/tmp/bash_jobs|\.library/",
    "a local wheel folder": r"\blocal wheels?\b|\bwheel folder\b",
}

_COMPILED = {why: re.compile(rx, re.IGNORECASE) for why, rx in PATTERNS.items()}


def _tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout (git ls-files failed)")
    files = []
    for name in out.decode().split("\0"):
        path = ROOT / name
        if not name or path == Path(__file__).resolve() or name == "uv.lock":
            continue
        if path.is_file() and b"\0" not in path.read_bytes()[:8192]:
            files.append(path)
    return files


# What continues a wrapped sentence on its next line: indentation, then a comment marker or a
# quote marker of Markdown, if any.
_CONTINUATION = re.compile(r"[ \t]*(?:(?:#+|//+|\*|>)(?=[ \t]|$)[ \t]*)?")


def _joined(text: str) -> tuple[str, list[int]]:
    """``text`` with its lines joined by single spaces, the indentation and comment markers of
    each following line dropped (so a phrase wrapped in a comment or a docstring reads as one),
    and the offset in the joined text where each line starts."""
    parts, starts, offset = [], [], 0
    for number, line in enumerate(text.splitlines()):
        piece = line if number == 0 else line[_CONTINUATION.match(line).end():]
        piece = piece.rstrip()
        starts.append(offset)
        parts.append(piece)
        offset += len(piece) + 1
    return " ".join(parts), starts


def find_hits(text: str) -> list[tuple[int, str, str]]:
    """(line number, why, line) for each match of a pattern in ``text``, a phrase wrapped over
    lines included (reported at the line where it starts)."""
    lines = text.splitlines()
    joined, starts = _joined(text)
    hits = []
    for why, rx in _COMPILED.items():
        for match in rx.finditer(joined):
            number = bisect.bisect_right(starts, match.start())
            hit = (number, why, lines[number - 1].strip())
            if hit not in hits:
                hits.append(hit)
    return sorted(hits)


def test_no_file_refers_to_what_users_cannot_see():
    files = _tracked_text_files()
    assert any(f.name == "README.md" for f in files) and len(files) > 20
    hits = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        hits += [f"{path.relative_to(ROOT)}:{n}: {why}: {line[:120]}"
                 for n, why, line in find_hits(text)]
    assert not hits, "Words a user cannot decode:\n" + "\n".join(hits)


@pytest.mark.parametrize("line", [
    "the confusion of seed 000", "Seed 001's sigmoid", "SEED_002 = ...", "the seeds' real question",
    "Audit of issues 2 and 3", "issue 11", "def test_the_issue_list", "ISSUE_KINDS = [...]",
    "on this shared machine", "Measured on this project's machine",
    "the targets the project set itself", "data from ../shared/data",
    "uv pip install --find-links /opt/wheels torch", "from a local wheel folder",
])
def test_the_patterns_catch_what_they_are_for(line):
    assert find_hits(line)


@pytest.mark.parametrize(("text", "line"), [
    ("x = 1  # the confusion of seed\n# 000, below\n", 1),  # a comment wrapped
    ('def f():\n    """Measured on this\n    project\'s machine."""\n', 2),  # a docstring wrapped
    ("Measured on this project's\nmachine.\n", 1),  # prose wrapped
    ("first line\n> the targets the project set\n> itself\n", 2),  # a Markdown quote wrapped
    ("// see issue\n// 11\n", 1),
])
def test_a_phrase_wrapped_over_two_lines_is_caught_where_it_starts(text, line):
    assert [hit[0] for hit in find_hits(text)] == [line]


def test_lines_are_joined_only_where_they_touch():
    # the words of two separate lines meet only across the break, never elsewhere
    assert not find_hits("the seed\n\n= 0\nissues\nof data\n")
    assert find_hits("one\ntwo\nissue 7\n")[0][0] == 3


@pytest.mark.parametrize("line", [
    "model = mlp(sizes, seed=0)", "--seed 0", "the same seed gives the same model",
    "see https://github.com/pytorch/pytorch/issues/5351", "cite_pytorch_5351",
    "CHAINRULE_DATA_DIR", "the data set's cache folder", "all the cores of this machine",
])
def test_the_patterns_leave_ordinary_words_alone(line):
    assert not find_hits(line)
