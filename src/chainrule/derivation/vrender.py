r"""A vector or matrix derivation as HTML with MathML, and as LaTeX for a notebook.

The claims of a :class:`~chainrule.derivation.vresult.VectorDerivation` are printed from their
LaTeX (``H_1^\top\,\Delta_2 / m``) by :func:`chainrule._mathml.latex_mathml`: transposes are
``<msup>`` with ⊤, Hadamard products ⊙, sums carry their limits, subscripts are ``<msub>``;
each formula keeps its LaTeX as an ``<annotation>`` and its shapes beside it. Explanations are
sentences whose maths becomes inline MathML (:func:`chainrule._mathml.prose_html`). The page,
the notebook (``_repr_html_``, ``_repr_latex_``) and Markdown all print from here.
"""

from __future__ import annotations

from html import escape

from chainrule._mathml import latex_mathml, math_element, prose_html, prose_maths, segments

__all__ = ["claim_mathml", "dollars_latex", "notebook_latex", "sentence_latex", "vector_html"]


def claim_mathml(lhs_latex: str, rhs_latex: str, alttext: str, display: bool = True) -> str:
    """``lhs = rhs`` as one ``<math>`` element, its LaTeX kept as an annotation."""
    tex = f"{lhs_latex} = {rhs_latex}"
    body = latex_mathml(tex)
    semantics = (f'<semantics>{body}<annotation encoding="application/x-tex">{escape(tex)}'
                 "</annotation></semantics>")
    return math_element(semantics, alttext, display=display)


def _claim_html(claim) -> str:
    text = f"{claim.lhs[0]} = {claim.rhs('text')}"
    parts = [f'<div class="claim">{claim_mathml(claim.lhs[1], claim.rhs("latex"), text)}']
    note = claim.shape_note()
    if note:
        parts.append(f'<span class="shape" title="shapes">{prose_html(note)}</span>')
    parts.append("</div>")
    return "".join(parts)


def _symbols_html(d) -> str:
    if not d.symbols:
        return ""
    rows = "".join(
        f"<tr><td>{prose_html(symbol)}</td><td>{prose_html(shape) if shape else ''}</td>"
        f"<td>{prose_html(meaning)}</td></tr>" for symbol, shape, meaning in d.symbols)
    return ('<table class="symbols"><tr><th>symbol</th><th>shape</th><th>meaning</th></tr>'
            f"{rows}</table>")


def _section(css: str, heading: str, items: list[str]) -> str:
    if not items:
        return ""
    body = "".join(f"<li>{prose_html(item)}</li>" for item in items)
    return f'<section class="{css}"><h4>{heading}</h4><ul>{body}</ul></section>'


def vector_html(d) -> str:
    """An HTML fragment: the title, the symbols with their shapes, the numbered steps (the
    rule, the explanation, each claim as displayed MathML with its shapes), the result, what
    it was checked against, assumptions and warnings. Well-formed XML; loads nothing."""
    lines = [f'<div class="chainrule-derivation chainrule-vector" data-kind="{escape(d.kind)}">',
             f'<p class="derivation-title"><strong>{prose_html(d.title)}</strong></p>',
             _symbols_html(d), '<ol class="steps">']
    for step in d.steps:
        lines.append(f'<li class="step" data-rule="{escape(step.rule)}">'
                     f'<span class="step-title">{escape(step.title)}</span>: '
                     f"{prose_html(step.explanation)}")
        lines.extend(_claim_html(c) for c in step.claims)
        lines.append("</li>")
    lines.append("</ol>")
    lines.append('<section class="result"><h4>Result</h4>')
    lines.extend(f'<div class="result-row">{_claim_html(c)}</div>' for c in d.result.values())
    if d.result_input_form:
        lines.append('<p class="form">In terms of the input:</p>')
        lines.extend(f'<div class="result-row">{_claim_html(c)}</div>'
                     for c in d.result_input_form.values())
    lines.append("</section>")
    if d.checked:
        lines.append(f'<p class="checked"><strong>Checked</strong>: {prose_html(d.checked)}</p>')
    lines.append(_section("assumptions", "Assumptions", d.assumptions))
    lines.append(_section("warnings", "Warnings", d.warnings))
    lines.append("</div>")
    return "\n".join(line for line in lines if line)


# --- LaTeX for a notebook ------------------------------------------------------------------------


def _text(words: str) -> str:
    """Words inside maths mode (MathJax and KaTeX read ``\\text``)."""
    clean = words.replace("\\", "").replace("{", "(").replace("}", ")").replace("$", "")
    return rf"\text{{{clean}}}" if clean else ""


def sentence_latex(sentence: str) -> str:
    """A sentence inside display maths: its words as ``\\text``, its maths as LaTeX."""
    return "".join(prose_maths(piece)[1] if is_maths else _text(piece)
                   for is_maths, piece in segments(sentence))


def dollars_latex(sentence: str) -> str:
    """A sentence with its maths between ``$`` signs, inside display maths."""
    parts = sentence.split("$")
    return "".join(part if i % 2 else _text(part) for i, part in enumerate(parts))


def notebook_latex(title: str, steps: list[tuple[str, str, list[str]]],
                   results: list[str]) -> str:
    r"""``$$\begin{array}{l} ... \end{array}$$``: the title, each step (its number, title,
    explanation, then its claims in LaTeX) and the results; what Jupyter's ``_repr_latex_``
    renders with MathJax. ``steps`` holds (number, title, explanation in maths mode (see
    :func:`sentence_latex`), claims)."""
    rows = [rf"\textbf{{{_text(title)[6:-1]}}}"]
    for number, head, sentence, claims in steps:
        rows.append(rf"\textbf{{{number} {_text(head)[6:-1]}:}}\ " + sentence)
        rows.extend(rf"\qquad {claim}" for claim in claims)
    rows.append(r"\textbf{Result}")
    rows.extend(rf"\qquad {r}" for r in results)
    return "$$\\begin{array}{l}" + r" \\ ".join(rows) + r"\end{array}$$"

