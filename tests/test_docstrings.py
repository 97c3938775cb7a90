"""Every public name has a numpydoc Examples section whose examples run and print what they show.

The public names are the ``__all__`` of :mod:`chainrule`, :mod:`chainrule.nn`,
:mod:`chainrule.losses`, :mod:`chainrule.optim` and :mod:`chainrule.sklearn`. Where the example
lives:

- a class or a function: its own docstring;
- a module (``chainrule.nn``, ...): the module's docstring;
- a constant (a registry such as ``ACTIVATIONS``, or ``__version__``): the docstring of the
  module whose ``__all__`` lists it, whose Examples section must use the constant by name in a
  ``>>>`` line. A ``#:`` comment cannot be run; a module docstring can, and the API reference
  shows it on the module's page.

The examples run as doctests in the globals of the module that defines the object (as
``python -m doctest`` would), with ELLIPSIS on and NORMALIZE_WHITESPACE where an example asks
for it.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import re
import sys
import types

import numpy as np
import pytest

MODULES = ("chainrule", "chainrule.nn", "chainrule.losses", "chainrule.optim",
           "chainrule.sklearn")

# A numpydoc section header: a title line, then a line of dashes as long as it.
_SECTION = re.compile(r"^(?P<title>[A-Z][A-Za-z ]*)\n(?P<rule>-+)$", re.MULTILINE)


def _sections(doc: str) -> dict[str, str]:
    """The numpydoc sections of ``doc`` (title -> body), from the dedented docstring."""
    doc = inspect.cleandoc(doc)
    heads = [m for m in _SECTION.finditer(doc) if len(m["rule"]) == len(m["title"])]
    bodies = {}
    ends = [head.start() for head in heads[1:]] + [len(doc)]
    for head, end in zip(heads, ends, strict=True):
        bodies[head["title"]] = doc[head.end():end]
    return bodies


def _examples(doc: str | None) -> str:
    """The Examples section of ``doc``, or "" when it has none."""
    return _sections(doc or "").get("Examples", "")


def _public_names() -> list[tuple[str, str]]:
    return [(module, name) for module in MODULES
            for name in importlib.import_module(module).__all__]


def _is_documented_object(value) -> bool:
    return inspect.isclass(value) or inspect.isroutine(value) or isinstance(value, types.ModuleType)


def _home(module: str, name: str):
    """(object whose docstring holds the example, its globals, whether it is a constant)."""
    value = getattr(importlib.import_module(module), name)
    if isinstance(value, types.ModuleType):
        return value, vars(value), False
    if _is_documented_object(value):
        defining = sys.modules[inspect.unwrap(value).__module__]
        return value, vars(defining), False
    holder = importlib.import_module(module)
    return holder, vars(holder), True


def _id(pair):
    return f"{pair[0]}.{pair[1]}"


PUBLIC = _public_names()


def test_the_five_modules_have_about_ninety_public_names():
    # A guard against an empty parametrization: every name below is checked one by one.
    assert len(PUBLIC) > 80
    assert ("chainrule.nn", "ACTIVATIONS") in PUBLIC and ("chainrule", "derive") in PUBLIC


@pytest.mark.parametrize("pair", PUBLIC, ids=_id)
def test_every_public_name_has_an_examples_section_with_doctest_lines(pair):
    module, name = pair
    home, _, constant = _home(module, name)
    examples = _examples(home.__doc__)
    where = f"the docstring of {home.__name__}" if constant else f"{module}.{name}'s docstring"
    assert ">>>" in examples, f"{where} has no Examples section with '>>>' lines"
    if constant:
        used = [line for line in examples.splitlines()
                if line.lstrip().startswith((">>>", "...")) and re.search(rf"\b{name}\b", line)]
        assert used, f"the Examples section of {home.__name__} never uses {name} in a '>>>' line"


def _doctests(pair) -> list[doctest.DocTest]:
    module, name = pair
    home, globs, _ = _home(module, name)
    finder = doctest.DocTestFinder(recurse=False, exclude_empty=True)
    return finder.find(home, name=f"{module}.{name}", globs=dict(globs))


def _unique_homes() -> list[tuple[str, str]]:
    """One public name per docstring, so a module docstring shared by constants runs once."""
    seen, pairs = set(), []
    for pair in PUBLIC:
        home = _home(*pair)[0]
        if id(home) not in seen:
            seen.add(id(home))
            pairs.append(pair)
    return pairs


class _Collecting(doctest.DocTestRunner):
    """A runner that keeps each failure as a short text instead of printing it."""

    def __init__(self):
        super().__init__(optionflags=doctest.ELLIPSIS)
        self.problems: list[str] = []

    def report_failure(self, out, test, example, got):
        self.problems.append(f"{example.source.strip()}\n  expected: {example.want.strip()!r}"
                             f"\n  got:      {got.strip()!r}")

    def report_unexpected_exception(self, out, test, example, exc_info):
        self.problems.append(f"{example.source.strip()}\n  raised: {exc_info[0].__name__}: "
                             f"{exc_info[1]}")


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer:Warning")  # a short fit is the example
@pytest.mark.parametrize("pair", _unique_homes(), ids=_id)
def test_every_example_prints_what_it_shows(pair):
    tests = _doctests(pair)
    assert tests and any(test.examples for test in tests), f"{_id(pair)}: no doctest found"
    state = np.get_printoptions()
    try:
        for test in tests:
            runner = _Collecting()
            runner.run(test, out=lambda _text: None)
            assert not runner.problems, f"{test.name}:\n" + "\n".join(runner.problems)
    finally:
        np.set_printoptions(**state)


def test_a_missing_examples_section_is_found():
    documented = '''Summary.

    Parameters
    ----------
    x : float
        A value.
    '''
    assert _examples(documented) == ""
    assert ">>>" in _examples(documented + '''
    Examples
    --------
    >>> 1 + 1
    2
    ''')


def test_a_failing_example_fails():
    def shown_wrong():
        """Summary.

        Examples
        --------
        >>> 1 + 1
        3
        """

    test = doctest.DocTestFinder().find(shown_wrong, "shown_wrong", globs={})[0]
    result = doctest.DocTestRunner().run(test, out=lambda _text: None)
    assert result.failed == 1
