"""The documentation site (docs/) builds with warnings as errors, and is complete and offline.

One build per run, as the documented command makes it but into a temporary folder
(``sphinx-build -W --keep-going -b html docs OUT``), checked for:

- no warning or error at all (Sphinx's, and docutils' messages about a docstring's markup);
- a reference entry (objects.inv) for every public name of chainrule, chainrule.nn,
  chainrule.losses, chainrule.optim and chainrule.sklearn (each module's ``__all__``);
- no script, style sheet, image or frame loaded from another site (links are fine);
- maths as MathML: a docstring's ``.. math::`` is a ``<math>`` element on its page.

The build here passes ``-D nb_execution_mode=off``: the tutorials' code is not run, to keep this
test fast; tests/test_tutorials.py runs each tutorial and compares its outputs. Skipped, with
the reason, where the documentation tools (the ``docs`` dependency group) are not installed.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

for _tool in ("sphinx", "myst_nb", "numpydoc", "furo"):
    pytest.importorskip(_tool, reason=f"{_tool} is missing: uv sync --group docs installs the "
                                      "documentation tools")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MODULES = ("chainrule", "chainrule.nn", "chainrule.losses", "chainrule.optim",
           "chainrule.sklearn")
# A message of Sphinx ("WARNING:", "ERROR:") or of docutils ("(WARNING/2)", "(ERROR/3)").
PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL|SEVERE)\b[:/]")


@pytest.fixture(scope="module")
def site(request, tmp_path_factory):
    """The built site's folder, and what the build printed: the build the test session started
    in the background when it collected this file, else one run here."""
    from conftest import docs_build_command

    started = getattr(request.config, "chainrule_docs_build", None)
    if started is None:
        out = tmp_path_factory.mktemp("site")
        done = subprocess.run(docs_build_command(out), cwd=ROOT, capture_output=True, text=True,
                              timeout=600)
        return out / "html", done
    process, out, log = started
    returncode = process.wait(timeout=600)
    log.close()
    printed = (out / "build.log").read_text(encoding="utf-8")
    return out / "html", subprocess.CompletedProcess(process.args, returncode, printed, "")


def test_build_passes_with_warnings_as_errors(site):
    html, done = site
    log = done.stdout + done.stderr
    problems = [line for line in log.splitlines() if PROBLEM.search(line)]
    assert done.returncode == 0, f"sphinx-build failed:\n{log[-4000:]}"
    assert not problems, "the build printed warnings:\n" + "\n".join(problems)
    assert (html / "index.html").is_file()


def _public_names() -> list[str]:
    names = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        names.append(module_name)
        names += [f"{module_name}.{name}" for name in module.__all__]
    return list(dict.fromkeys(names))


def test_every_public_name_has_a_reference_entry(site):
    from sphinx.util.inventory import InventoryFile

    html, _ = site
    inventory = InventoryFile.loads((html / "objects.inv").read_bytes(), uri="")
    documented = {name for role, items in inventory.data.items() if role.startswith("py:")
                  for name in items}
    missing = [name for name in _public_names() if name not in documented]
    assert not missing, f"public names with no entry in the API reference: {missing}"
    for name in MODULES:  # each module has its page, listing its names
        assert (html / "api" / "generated" / f"{name}.html").is_file()


# The attribute of each tag that loads an address (a link's href does not).
_LOADING = {"script": "src", "img": "src", "iframe": "src", "source": "src",
            "video": "src", "audio": "src", "embed": "src", "object": "data"}


class _Loads(HTMLParser):
    """The addresses a page loads (scripts, styles, images, frames, media), not its links."""

    def __init__(self):
        super().__init__()
        self.loads: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in _LOADING and attrs.get(_LOADING[tag]):
            self.loads.append(attrs[_LOADING[tag]])
        if tag == "img" and attrs.get("srcset"):
            self.loads.append(attrs["srcset"])
        if tag == "link" and attrs.get("href") and set((attrs.get("rel") or "").split()) & {
                "stylesheet", "preload", "modulepreload", "icon", "prefetch"}:
            self.loads.append(attrs["href"])


def _external(address: str) -> bool:
    return re.match(r"\s*(https?:)?//", address) is not None


def test_nothing_is_loaded_from_another_site(site):
    html, _ = site
    found = []
    for page in html.rglob("*.html"):
        parser = _Loads()
        parser.feed(page.read_text(encoding="utf-8"))
        found += [f"{page.relative_to(html)}: {a}" for a in parser.loads if _external(a)]
    for style in html.rglob("*.css"):
        text = style.read_text(encoding="utf-8")
        found += [f"{style.relative_to(html)}: {m}" for m in
                  re.findall(r"""(?:url\(|@import)\s*["']?((?:https?:)?//[^"')\s]+)""", text)]
    for script in html.rglob("*.js"):
        text = script.read_text(encoding="utf-8")
        found += [f"{script.relative_to(html)}: {m}" for m in
                  re.findall(r"""(?:import\s*\(?|src\s*=)\s*["'](https?://[^"']+)""", text)]
    assert not found, "the site loads from the internet:\n" + "\n".join(found)


def _with_display_maths() -> list[str]:
    names = []
    for name in _public_names():
        module_name, _, attr = name.rpartition(".")
        obj = getattr(importlib.import_module(module_name), attr) if module_name else None
        if ".. math::" in (getattr(obj, "__doc__", None) or ""):
            names.append(name)
    return names


def test_docstring_maths_is_mathml(site):
    html, _ = site
    names = _with_display_maths()
    assert names, "no public docstring has a '.. math::' block to check"
    for name in names:
        page = (html / "api" / "generated" / f"{name}.html").read_text(encoding="utf-8")
        assert re.search(r'<math xmlns="http://www\.w3\.org/1998/Math/MathML" '
                         r'display="block">', page), f"{name}: its .. math:: is no <math>"
        assert "\\frac" not in page, f"{name}: LaTeX left unconverted on its page"


def test_every_command_has_its_help_on_the_command_line_page(site):
    from chainrule.cli import COMMANDS, build_parser

    html, _ = site
    page = (html / "cli.html").read_text(encoding="utf-8")
    commands = build_parser().commands
    for name in COMMANDS:
        command = name.replace("_", "-")
        assert f'id="chainrule-{command}"' in page, f"no section for chainrule {command}"
        usage = commands[command].format_usage().split()[:3]  # usage: chainrule COMMAND
        assert " ".join(usage) in page, f"chainrule {command}: its usage is not on the page"


@pytest.mark.parametrize(("latex", "read_as"), [
    (r"1, \dots, K", r"1, \ldots, K"),
    (r"\big(G - \bar G\big)", r"(G - \bar G)"),
    (r"\Bigl[ x \Bigr]", r"[ x ]"),
    (r"\textstyle\sum_i x_i", r"\sum_i x_i"),
    (r"c = \tfrac12,\ \frac1m", r"c = \tfrac{1}{2},\ \frac{1}{m}"),
    (r"\frac{\partial L}{\partial w}", r"\frac{\partial L}{\partial w}"),
])
def test_latex_the_converter_lacks_is_rewritten(latex, read_as):
    from docutils.utils.math.latex2mathml import tex2mathml

    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from mathml import to_docutils
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    assert to_docutils(latex) == read_as
    assert "<math" in tex2mathml(to_docutils(latex))
