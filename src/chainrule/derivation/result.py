"""The result of a derivation: its steps, its answer in two forms, and its domain findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sympy

from chainrule.derivation.domain import Singularity
from chainrule.derivation.printing import to_python
from chainrule.derivation.rules import Step

__all__ = ["Derivation"]


@dataclass
class Derivation:
    r"""A derivation, as :func:`chainrule.derive` returns it.

    Attributes
    ----------
    kind:
        ``"function"`` (a formula), ``"activation"``, ``"loss"`` or ``"composition"``.
    title:
        What was derived, e.g. ``"dE/dz for tanh + bce"``.
    var:
        The variable of differentiation (``x``; ``z`` or ``w`` for a composition).
    function:
        The expression differentiated (for a composition, the loss of the activation).
    steps:
        The numbered top-level steps; each may hold sub-steps (see :class:`Step`).
    result:
        The answer: for a composition, in terms of the output :math:`\hat y` (or :math:`p`);
        otherwise in terms of the input.
    result_input_form:
        The answer in terms of the input (``x`` or ``z``, and ``w`` with weights).
    result_output_form:
        For an invertible activation, its derivative in terms of its output ``yhat``.
    singularities, warnings, assumptions:
        Where the derivative is undefined, what may go wrong (with the fix) and what was assumed.
    typed, read_as:
        For a formula: the text as typed, and how it was read in Python syntax (``"2x(1-x)"``
        reads ``"2*x*(1 - x)"``; see :func:`chainrule.derivation.reading.read_formula`);
        None otherwise.
    extra:
        Further named results: ``dE/dyhat``, ``dyhat/dz``, ``dE/dw``, ``update`` (the
        gradient-descent step :math:`\Delta w = -\eta\,\partial E/\partial w`).
    """

    kind: str
    title: str
    var: sympy.Symbol
    function: sympy.Expr
    steps: list[Step]
    result: sympy.Expr
    result_input_form: sympy.Expr
    result_output_form: sympy.Expr | None = None
    singularities: list[Singularity] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    method: str | None = None
    extra: dict[str, sympy.Expr] = field(default_factory=dict)
    typed: str | None = None
    read_as: str | None = None

    @property
    def read_differently(self) -> bool:
        """Whether the formula was read other than as typed (spaces aside): the text face
        prints its "read as" line only then."""
        if self.typed is None or self.read_as is None:
            return False
        return "".join(self.typed.split()) != "".join(self.read_as.split())

    def walk(self):
        """Every step of the derivation, depth first."""
        for step in self.steps:
            yield from step.walk()

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure: ``steps``, ``result``, ``result_input_form``, ``singularities``,
        ``warnings`` and more; every expression is a string SymPy parses."""
        return {
            "kind": self.kind,
            "title": self.title,
            "variable": str(self.var),
            "function": to_python(self.function),
            "method": self.method,
            "steps": [s.to_dict() for s in self.steps],
            "result": to_python(self.result),
            "result_input_form": to_python(self.result_input_form),
            "result_output_form": (
                None if self.result_output_form is None else to_python(self.result_output_form)
            ),
            "singularities": [s.to_dict() for s in self.singularities],
            "warnings": list(self.warnings),
            "assumptions": list(self.assumptions),
            "extra": {k: to_python(v) for k, v in self.extra.items()},
            "read_as": self.read_as,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string."""
        import json

        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_text(self) -> str:
        """Numbered steps in Unicode text, ending with the result and the warnings."""
        from chainrule.derivation.render import render_text

        return render_text(self)

    def to_latex(self) -> str:
        """A LaTeX fragment (an ``enumerate`` of the steps and the results in display maths)."""
        from chainrule.derivation.render import render_latex

        return render_latex(self)

    def to_markdown(self) -> str:
        """Markdown with ``$...$`` maths, for notebooks and READMEs."""
        from chainrule.derivation.render import render_markdown

        return render_markdown(self)

    def to_html(self) -> str:
        """An HTML fragment with the maths in MathML: numbered steps, the result in input and
        output form, then the singular points and warnings set apart."""
        from chainrule.derivation.render import render_html

        return render_html(self)

    def __str__(self) -> str:
        return self.to_text()

    # Rich display in Jupyter; the plain repr stays the dataclass's.
    def _repr_html_(self) -> str:
        from chainrule._display import STYLE

        return STYLE + self.to_html()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_latex_(self) -> str:
        """The numbered steps with their rules and claims, then the result, as display maths."""
        from chainrule.derivation.render import notebook_steps, result_latex
        from chainrule.derivation.vrender import notebook_latex

        return notebook_latex(self.title, notebook_steps(self), result_latex(self))
