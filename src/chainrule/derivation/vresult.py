r"""The result of a vector or matrix derivation, and its four faces (text, LaTeX, Markdown, JSON).

A :class:`VectorDerivation` has the keys of the scalar :class:`~chainrule.derivation.Derivation`
(``kind``, ``title``, ``steps``, ``result``, ``result_input_form``, ``result_output_form``,
``singularities``, ``warnings``, ``assumptions``, ``extra``) plus ``shapes`` (every symbol's
shape) and ``checked`` (what the formulas were verified against). Each step's claims are
matrix formulas (:mod:`chainrule.derivation.matrix`); in JSON they are NumPy-style Python
(``X.T @ D1 / m``) with their shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chainrule.derivation.matrix import Node, shape_text

__all__ = ["Claim", "VStep", "VectorDerivation"]

@dataclass
class Claim:
    """``lhs = expr``; ``check`` names what the value is verified against (None: not numeric).

    ``lhs`` is (text, LaTeX, Python). ``index`` is an optional index-form text (and LaTeX)
    printed instead of ``expr``, verified by ``evaluate`` (a function of the arrays).
    """

    lhs: tuple[str, str, str]
    expr: Node | None = None
    check: str | None = None
    index: tuple[str, str] | None = None
    evaluate: Callable | None = field(default=None, repr=False)
    assumes_normalised: bool = False
    show_shapes: bool = True

    def rhs(self, fmt: str) -> str:
        if self.index is not None:
            return self.index[0 if fmt == "text" else 1] if fmt != "python" else self.index[0]
        return self.expr.show(fmt)

    def shape_note(self) -> str:
        if self.expr is None or not self.show_shapes:
            return ""
        products = self.expr.products()
        parts = [f"({a})({b}) = {c}" for a, b, c in products]
        shape = shape_text(self.expr.shape())
        if not parts:
            return shape
        if len(parts) == 1:
            return parts[0]
        return "; ".join(parts)

    def value(self, env):
        return self.evaluate(env) if self.evaluate is not None else self.expr.value(env)

    def to_dict(self) -> dict[str, Any]:
        out = {"lhs": self.lhs[2], "text": f"{self.lhs[0]} = {self.rhs('text')}"}
        if self.expr is not None and self.index is None:
            out["expression"] = self.expr.show("python")
            out["shape"] = list(self.expr.shape())
            out["products"] = [f"({a})({b}) = {c}" for a, b, c in self.expr.products()]
        return out


@dataclass
class VStep:
    """One numbered step: its rule, a one-line explanation and its claims."""

    rule: str
    title: str
    explanation: str
    claims: list[Claim] = field(default_factory=list)
    explanation_latex: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "kind": "matrix",
            "title": self.title,
            "explanation": self.explanation,
            "claims": [c.to_dict() for c in self.claims],
            "substeps": [],
        }


@dataclass
class VectorDerivation:
    r"""A vector or matrix derivation, as :func:`chainrule.derive` returns it for ``softmax``,
    ``layer=True``, ``network=[...]`` or ``vector=True``.

    ``result`` maps each result's name (``"D2"``, ``"dE/dW1"``) to its :class:`Claim`;
    ``shapes`` maps each symbol to its shape (``{"X": ("m", "n0")}``).
    """

    kind: str
    title: str
    steps: list[VStep]
    result: dict[str, Claim]
    shapes: dict[str, tuple[str, str]] = field(default_factory=dict)
    symbols: list[tuple[str, str, str]] = field(default_factory=list)  # (symbol, shape, meaning)
    result_input_form: dict[str, Claim] = field(default_factory=dict)
    result_output_form: dict[str, Claim] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)
    checked: str = ""
    variable: str = ""
    function: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def walk(self):
        yield from self.steps

    def to_dict(self) -> dict[str, Any]:
        """The JSON structure of the scalar derivation, plus ``shapes`` and ``checked``."""
        def forms(d):
            return {k: (c.expr.show("python") if c.index is None else c.index[0])
                    for k, c in d.items()}

        return {
            "kind": self.kind,
            "title": self.title,
            "variable": self.variable,
            "function": self.function,
            "method": None,
            "read_as": None,  # named, never typed: nothing was read otherwise than written
            "steps": [s.to_dict() for s in self.steps],
            "result": forms(self.result),
            "result_input_form": forms(self.result_input_form) or None,
            "result_output_form": forms(self.result_output_form) or None,
            "singularities": [],
            "warnings": list(self.warnings),
            "assumptions": list(self.assumptions),
            "extra": dict(self.extra),
            "shapes": {k: list(v) for k, v in self.shapes.items()},
            "checked": self.checked,
        }

    def to_json(self, indent: int | None = 2) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def _numbered_steps(self, step_line, claim_line) -> list[str]:
        """A line per step, ``step_line(number, step)``, each followed by a line per claim,
        ``claim_line(claim, shape note)``: the text and Markdown lists differ only in markup."""
        lines = []
        for i, step in enumerate(self.steps, 1):
            lines.append(step_line(i, step))
            lines.extend(claim_line(c, c.shape_note()) for c in step.claims)
        return lines

    # --- text --------------------------------------------------------------------------------

    def to_text(self) -> str:
        lines = [self.title, ""]
        if self.symbols:
            lines.append("Symbols: " + "; ".join(f"{s} ({sh}) {meaning}" if sh else
                                                 f"{s} {meaning}"
                                                 for s, sh, meaning in self.symbols))
            lines.append("")
        lines += self._numbered_steps(
            lambda i, step: f"{i}. {step.title}: {step.explanation}",
            lambda c, note: f"   {c.lhs[0]} = {c.rhs('text')}" + (f"   [{note}]" if note else ""),
        )
        lines.append("")
        lines.append("Result:")
        lines.extend(f"  {c.lhs[0]} = {c.rhs('text')}" for c in self.result.values())
        if self.result_input_form:
            lines.append("In terms of the input:")
            lines.extend(f"  {c.lhs[0]} = {c.rhs('text')}"
                         for c in self.result_input_form.values())
        if self.assumptions:
            lines.append("Assumptions: " + "; ".join(self.assumptions))
        if self.checked:
            lines.append("Checked: " + self.checked)
        if self.warnings:
            lines.append("Warnings:")
            lines.extend(f"  ! {w}" for w in self.warnings)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    # --- LaTeX and Markdown ------------------------------------------------------------------

    def _claim_latex(self, c: Claim) -> str:
        return f"{c.lhs[1]} = {c.rhs('latex')}"

    def to_latex(self) -> str:
        from chainrule._mathml import prose_latex as _latex_text

        lines = [f"% {self.title}", r"\begin{enumerate}"]
        for step in self.steps:
            expl = step.explanation_latex or _latex_text(step.explanation)
            lines.append(rf"\item \textbf{{{_latex_text(step.title)}.}} {expl}")
            for c in step.claims:
                lines.append(rf"\[ {self._claim_latex(c)} \]")
        lines.append(r"\end{enumerate}")
        for c in self.result.values():
            lines.append(rf"\[ {self._claim_latex(c)} \]")
        for a in self.assumptions:
            lines.append(rf"% assumption: {a}")
        for w in self.warnings:
            lines.append(rf"% warning: {w}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        from chainrule._mathml import prose_latex

        lines = [f"### {prose_latex(self.title)}", ""]
        if self.symbols:
            lines += ["| symbol | shape | meaning |", "| --- | --- | --- |"]
            lines += [f"| {prose_latex(s)} | {prose_latex(sh)} | {prose_latex(meaning)} |"
                      for s, sh, meaning in self.symbols]
            lines.append("")
        lines += self._numbered_steps(
            lambda i, step: f"{i}. **{step.title}**: {prose_latex(step.explanation)}",
            lambda c, note: f"   ${self._claim_latex(c)}$" + (f" ({prose_latex(note)})"
                                                                  if note else ""),
        )
        lines.append("")
        lines.append("**Result**")
        lines.append("")
        lines.extend(f"- ${self._claim_latex(c)}$" for c in self.result.values())
        lines.append("")
        if self.assumptions:
            lines += ["Assumptions: " + "; ".join(self.assumptions), ""]
        if self.checked:
            lines += ["Checked: " + self.checked, ""]
        if self.warnings:
            lines.append("Warnings:")
            lines.extend(f"- {w}" for w in self.warnings)
        return "\n".join(lines).rstrip() + "\n"

    # --- HTML and the notebook ---------------------------------------------------------------

    def to_html(self) -> str:
        """An HTML fragment with the maths in MathML: the symbols and their shapes, numbered
        steps, each claim with its shapes, the result and what it was checked against."""
        from chainrule.derivation.vrender import vector_html

        return vector_html(self)

    def __repr__(self) -> str:
        results = ", ".join(f"{c.lhs[0]} = {c.rhs('text')}" for c in self.result.values())
        return f"<VectorDerivation {self.title!r}: {results}>"

    def _repr_html_(self) -> str:
        from chainrule._display import STYLE

        return STYLE + self.to_html()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_latex_(self) -> str:
        from chainrule.derivation.vrender import notebook_latex, sentence_latex

        steps = [(f"{i}.", s.title, sentence_latex(s.explanation),
                  [self._claim_latex(c) for c in s.claims]) for i, s in enumerate(self.steps, 1)]
        return notebook_latex(self.title, steps,
                              [self._claim_latex(c) for c in self.result.values()])
