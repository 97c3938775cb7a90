"""What a check of a hand-derived gradient answers: the verdict and its findings.

Shared by the scalar check (:mod:`chainrule.gradient_check.symbolic`) and the matrix check
(:mod:`chainrule.gradient_check.matrix`); NumPy and SymPy free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chainrule.gradient_check.catalogue import CheckResult

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
class FormulaCheck(CheckResult):
    """The outcome of :func:`~chainrule.gradient_check.check_formula`, a
    :class:`~chainrule.gradient_check.CheckResult`.

    ``correct``, ``kind`` (a key of :data:`~chainrule.gradient_check.MISTAKES`; None when correct
    or when no single mistake explains the difference), ``where`` (the term concerned, or None
    for the whole formula), ``sentence`` (the one-paragraph explanation, also ``paragraph``;
    ``str()`` gives it) and ``expected`` (the right derivative, simplified); then the checked
    ``formula``, the ``derivative`` as the rules give it, its ``simplified`` form, the
    ``variable``, what it is the derivative ``of``, the ``method`` of the comparison
    (``"symbolic"``, ``"numeric"``) and the ``findings``, one per thing wrong.
    """

    formula: str = ""
    derivative: str = ""
    simplified: str = ""
    variable: str = ""
    of: str = ""
    method: str = ""
    findings: list[Finding] = field(default_factory=list)

    @property
    def paragraph(self) -> str:
        """The explanation, :attr:`sentence`."""
        return self.sentence

    def _repr_html_(self) -> str:
        """In a notebook: the verdict, the explanation and a table of the findings."""
        from chainrule._display import formula_check_html

        return formula_check_html(self)

    def _repr_markdown_(self) -> str:
        from chainrule._display import formula_check_markdown

        return formula_check_markdown(self)
