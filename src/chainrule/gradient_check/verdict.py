"""What a check of a hand-derived gradient answers: the verdict and its findings.

Shared by the scalar check (:mod:`chainrule.gradient_check.symbolic`) and the matrix check
(:mod:`chainrule.gradient_check.matrix`); NumPy and SymPy free.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

__all__ = ["Finding", "FormulaCheck"]


@dataclass
class Finding:
    """One thing wrong: the user's ``term`` (text), the ``problem`` ("wrong sign", "missing
    factor 1 - y", "missing term", "extra term", "leading minus dropped", ...), what it
    ``should_be``, the ``rule`` that gives the right one (or None) and the ``position`` of the
    term in the derivative ("second term"), where one applies."""

    term: str
    problem: str
    should_be: str
    rule: str | None = None
    position: str | None = None


@dataclass
class FormulaCheck:
    """The outcome of :func:`check_formula`; ``str()`` is the one-paragraph explanation."""

    correct: bool
    formula: str
    derivative: str
    simplified: str
    variable: str
    of: str
    method: str
    kind: str | None
    findings: list[Finding] = field(default_factory=list)
    paragraph: str = ""

    def __str__(self) -> str:
        return self.paragraph

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def _repr_html_(self) -> str:
        """In a notebook: the verdict, the explanation and a table of the findings."""
        from chainrule._display import formula_check_html

        return formula_check_html(self)

    def _repr_markdown_(self) -> str:
        from chainrule._display import formula_check_markdown

        return formula_check_markdown(self)
