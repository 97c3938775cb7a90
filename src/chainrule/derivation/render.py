r"""A :class:`Derivation` as text (Unicode, numbered steps), LaTeX, Markdown or HTML.

Each step prints as its number, its title (the rule), its one-line explanation and its claim:
``d/dx [before] = after`` for a differentiation, ``before = after`` for a simplification.
Sub-steps are numbered below their parent (2.1, 2.1.1, ...).
"""

from __future__ import annotations

import re
import string
from html import escape

from chainrule._mathml import prose_html
from chainrule.derivation.printing import mathml, mathml_body, to_latex, to_text
from chainrule.derivation.reading import read_as_html
from chainrule.derivation.rules import LAWS, Step
from chainrule.derivation.simplify import textbook_form as _shown

__all__ = ["notebook_steps", "render_html", "render_latex", "render_markdown", "render_text",
           "result_latex"]

_TITLES = {
    "constant multiple": "Constant multiple",
    "output form": "In terms of the output",
    "gradient descent": "Gradient-descent step",
}


def _title(step: Step) -> str:
    if step.title and step.title != step.rule:
        return step.title
    return _TITLES.get(step.rule, step.rule.capitalize() + (" rule" if step.rule in LAWS else ""))


def _rule_name(step: Step) -> str:
    name = _TITLES.get(step.rule, step.rule.capitalize())
    return name + (" rule" if step.rule in LAWS and step.rule not in ("constant multiple",) else "")


def _given_text(step: Step, printer) -> str:
    if not step.given:
        return ""
    return ", with " + ", ".join(f"{printer(k)} = {printer(v)}" for k, v in step.given.items())


# --- text -----------------------------------------------------------------------------------


def _claim_text(step: Step) -> str:
    if step.kind == "diff":
        lhs = step.label[0] if step.label else f"d/d{to_text(step.var)} [{to_text(step.before)}]"
        return f"{lhs} = {to_text(_shown(step.after))}{_given_text(step, to_text)}"
    if step.kind == "equal":
        return f"{to_text(step.before)} = {to_text(_shown(step.after))}{_given_text(step, to_text)}"
    return ""


def _step_text(step: Step, number: str, indent: int, lines: list[str]) -> None:
    pad = "   " * indent
    head = f"{pad}{number} {_title(step)}"
    if step.title and step.rule in LAWS and _rule_name(step) != step.title:
        head += f" ({_rule_name(step)})"
    lines.append(f"{head}: {step.explain('text')}")
    claim = _claim_text(step)
    if claim and not (step.kind == "equal" and claim in lines[-1]):
        lines.append(f"{pad}   {claim}")
    for i, sub in enumerate(step.substeps, 1):
        _step_text(sub, f"{number.rstrip('.')}.{i}", indent + 1, lines)


def render_text(d) -> str:
    """Unicode text with numbered steps, the result, singular points and warnings."""
    lines = [d.title + (f"  [method: {d.method} rule]" if d.method else ""), ""]
    if getattr(d, "read_differently", False):
        lines[1:1] = [f"read as: {d.read_as}"]
    for i, step in enumerate(d.steps, 1):
        _step_text(step, f"{i}.", 0, lines)
    lines.append("")
    lines.extend(_result_lines(d, to_text))
    if d.assumptions:
        lines.append("Assumptions: " + "; ".join(d.assumptions))
    lines.append("Singularities:" + (" none" if not d.singularities else ""))
    lines.extend(f"  - {s.describe()}" for s in d.singularities)
    if d.warnings:
        lines.append("Warnings:")
        lines.extend(f"  ! {w}" for w in d.warnings)
    return "\n".join(lines)


def _result_lines(d, printer) -> list[str]:
    out = []
    if d.kind == "composition":
        name = "dE/dw" if str(d.var) == "w" else "dE/dz"
        out.append(f"Result: {name} = {printer(_shown(d.result))}")
        out.append(f"        = {printer(_shown(d.result_input_form))}  (in terms of the input)")
        if "update" in d.extra:
            out.append(f"Gradient-descent step: Δw = {printer(_shown(d.extra['update']))}")
    else:
        result = printer(_shown(d.result))
        out.append(f"Result: d/d{printer(d.var)} {printer(d.function)} = {result}")
        if d.result_output_form is not None:
            output = printer(_shown(d.result_output_form))
            out.append(f"        = {output}  (in terms of the output yhat)")
    return out


# --- LaTeX ----------------------------------------------------------------------------------


def _claim_latex(step: Step) -> str:
    given = _given_text(step, to_latex).replace(", with ", r",\quad ")
    if step.kind == "diff":
        if step.label:
            lhs = step.label[1]
        else:
            lhs = rf"\frac{{d}}{{d{to_latex(step.var)}}}\left[{to_latex(step.before)}\right]"
        return f"{lhs} = {to_latex(_shown(step.after))}{given}"
    if step.kind == "equal":
        return f"{to_latex(step.before)} = {to_latex(_shown(step.after))}{given}"
    return ""


_LATEX_TEXT = {"·": r"$\cdot$", "²": "$^2$", "Σ": r"$\Sigma$", "δ": r"$\delta$",
               "Δ": r"$\Delta$", "η": r"$\eta$", "≤": r"$\le$", "≥": r"$\ge$", "_": r"\_",
               "^": r"\^{}", "%": r"\%", "&": r"\&", "#": r"\#"}


def latex_text(text: str) -> str:
    """Escape the Unicode and underscores of plain explanation text for LaTeX."""
    out, in_math = [], False
    for ch in text:
        if ch == "$":
            in_math = not in_math
            out.append(ch)
        else:
            out.append(ch if in_math else _LATEX_TEXT.get(ch, ch))
    return "".join(out)


def _step_latex(step: Step, lines: list[str], depth: int) -> None:
    law = LAWS.get(step.rule)
    head = rf"\item \textbf{{{latex_text(_title(step))}.}} {latex_text(step.explain('latex'))}"
    if law:
        head += rf" \quad (${law[1]}$)"
    lines.append(head)
    claim = _claim_latex(step)
    if claim:
        lines.append(rf"\[ {claim} \]")
    if not step.substeps:
        return
    if depth < 3:
        lines.append(r"\begin{enumerate}")
    for sub in step.substeps:
        _step_latex(sub, lines, depth + 1)
    if depth < 3:
        lines.append(r"\end{enumerate}")


def result_latex(d) -> list[str]:
    """The result as LaTeX equations (no delimiters): the derivative in both forms, and the
    gradient-descent step where there is one."""
    if d.kind == "composition":
        name = r"\frac{\partial E}{\partial " + str(d.var) + "}"
        out = [rf"{name} = {to_latex(_shown(d.result))} = {to_latex(_shown(d.result_input_form))}"]
        if "update" in d.extra:
            out.append(rf"\Delta w = {to_latex(_shown(d.extra['update']))}")
        return out
    lhs = rf"\frac{{d}}{{d{to_latex(d.var)}}} {to_latex(d.function)}"
    rhs = to_latex(_shown(d.result))
    if d.result_output_form is not None:
        rhs += rf" = {to_latex(_shown(d.result_output_form))}"
    return [rf"{lhs} = {rhs}"]


def notebook_steps(d) -> list[tuple[str, str, str, list[str]]]:
    """Every step, sub-steps included, as (number, title, explanation in maths mode, claims)
    for :func:`chainrule.derivation.vrender.notebook_latex`."""
    from chainrule.derivation.vrender import dollars_latex

    out = []

    def visit(step: Step, number: str) -> None:
        claim = _claim_latex(step)
        out.append((number, _title(step), dollars_latex(step.explain("latex")),
                    [claim] if claim else []))
        for i, sub in enumerate(step.substeps, 1):
            visit(sub, f"{number.rstrip('.')}.{i}")

    for i, step in enumerate(d.steps, 1):
        visit(step, f"{i}.")
    return out


def render_latex(d) -> str:
    r"""A LaTeX fragment: an ``enumerate`` of the steps, then the results in display maths.

    Nesting deeper than LaTeX's four levels of ``enumerate`` is flattened.
    """
    lines = [rf"% {d.title}", r"\begin{enumerate}"]
    for step in d.steps:
        _step_latex(step, lines, 0)
    lines.append(r"\end{enumerate}")
    lines.extend(rf"\[ {equation} \]" for equation in result_latex(d))
    for s in d.singularities:
        lines.append(rf"% singular: {s.describe()}")
    for w in d.warnings:
        lines.append(rf"% warning: {w}")
    return "\n".join(lines)


# --- Markdown -------------------------------------------------------------------------------


def _step_markdown(step: Step, lines: list[str], depth: int, number: int) -> None:
    pad = "   " * depth
    lines.append(f"{pad}{number}. **{_title(step)}**: {step.explain('latex')}")
    claim = _claim_latex(step)
    if claim:
        lines.append(f"{pad}   ${claim}$")
    for i, sub in enumerate(step.substeps, 1):
        _step_markdown(sub, lines, depth + 1, i)


def render_markdown(d) -> str:
    """Markdown: numbered (nested) steps with ``$...$`` maths, then the result and warnings."""
    lines = [f"### {d.title}", ""]
    for i, step in enumerate(d.steps, 1):
        _step_markdown(step, lines, 0, i)
    lines.append("")
    for line in _result_lines(d, lambda e: f"${to_latex(e)}$"):
        lines.append(f"**{line.strip()}**" if line.startswith("Result") else f"{line.strip()}")
        lines.append("")
    if d.assumptions:
        lines.append("Assumptions: " + "; ".join(d.assumptions))
        lines.append("")
    if d.singularities:
        lines.append("Singularities:")
        lines.extend(f"- {s.describe()}" for s in d.singularities)
        lines.append("")
    if d.warnings:
        lines.append("Warnings:")
        lines.extend(f"- {w}" for w in d.warnings)
    return "\n".join(lines).rstrip() + "\n"


# --- HTML (with MathML) -----------------------------------------------------------------------


def _mo(op: str) -> str:
    return f"<mo>{escape(op)}</mo>"


def _derivative_of(var) -> str:
    """d/dvar as a MathML fraction."""
    return f"<mfrac><mi>d</mi><mrow><mi>d</mi>{mathml_body(var)}</mrow></mfrac>"


def _label_mathml(text: str) -> str:
    """A label such as ``dE/dz`` as the partial derivative fraction."""
    match = re.fullmatch(r"d(\w+)/d(\w+)", text)
    if match is None:
        return f"<mi>{escape(text)}</mi>"
    import sympy

    top, bottom = (mathml_body(sympy.Symbol(name)) for name in match.groups())
    return (f"<mfrac><mrow><mo>&#8706;</mo>{top}</mrow>"
            f"<mrow><mo>&#8706;</mo>{bottom}</mrow></mfrac>")


def _term_html(value) -> str:
    """A term of an explanation: maths as MathML, a name with spaces as plain text."""
    name = getattr(value, "name", value)
    if isinstance(name, str) and not name.isidentifier():
        return escape(name)
    return mathml(mathml_body(value), alttext=to_text(value))


def _explain_html(step: Step) -> str:
    """The explanation template with its text escaped and its expressions as MathML."""
    out = []
    for literal, name, _, _ in string.Formatter().parse(step.explanation):
        out.append(prose_html(literal))
        if name is not None:
            out.append(_term_html(step.terms[name]))
    return "".join(out)


def _claim_html(step: Step) -> str:
    if step.kind == "diff":
        lhs = (_label_mathml(step.label[0]) if step.label else
               _derivative_of(step.var) + _mo("[") + mathml_body(step.before) + _mo("]"))
    elif step.kind == "equal":
        lhs = mathml_body(step.before)
    else:
        return ""
    parts = [lhs, _mo("="), mathml_body(_shown(step.after))]
    for k, v in step.given.items():
        parts += [_mo(","), "<mspace width=\"1em\"/>", mathml_body(k), _mo("="), mathml_body(v)]
    return mathml(*parts, display=True, alttext=_claim_text(step))


def _step_html(step: Step, lines: list[str]) -> None:
    law = LAWS.get(step.rule)
    rule = _rule_name(step) if step.rule in LAWS else ""
    head = f'<span class="step-title">{escape(_title(step))}</span>'
    if rule and rule != _title(step):
        head += f' <span class="rule">({escape(rule)})</span>'
    head += f": {_explain_html(step)}"
    if law and law[0] not in step.explain("text"):
        head += f' <span class="law" title="the {escape(rule)}">{escape(law[0])}</span>'
    lines.append(f'<li class="step" data-rule="{escape(step.rule)}">{head}')
    claim = _claim_html(step)
    if claim:
        lines.append(f'<div class="claim">{claim}</div>')
    if step.substeps:
        lines.append('<ol class="substeps">')
        for sub in step.substeps:
            _step_html(sub, lines)
        lines.append("</ol>")
    lines.append("</li>")


def _result_html(d) -> list[str]:
    rows = []
    texts = _result_lines(d, to_text)
    if d.kind == "composition":
        lhs = _label_mathml("dE/dw" if str(d.var) == "w" else "dE/dz")
        rows.append(("output form", mathml(lhs, _mo("="), mathml_body(_shown(d.result)),
                                           display=True)))
        rows.append(("input form", mathml(lhs, _mo("="), mathml_body(_shown(d.result_input_form)),
                                          display=True)))
        if "update" in d.extra:
            rows.append(("gradient-descent step",
                         mathml("<mi>&#916;</mi><mi>w</mi>", _mo("="),
                                mathml_body(_shown(d.extra["update"])), display=True)))
    else:
        lhs = _derivative_of(d.var) + mathml_body(d.function)
        rows.append(("input form", mathml(lhs, _mo("="), mathml_body(_shown(d.result)),
                                          display=True)))
        if d.result_output_form is not None:
            output = mathml_body(_shown(d.result_output_form))
            rows.append(("output form", mathml(lhs, _mo("="), output, display=True)))
    return [f'<div class="result-row" data-form="{form.split()[0]}">'
            f'<span class="form">{escape(form)}</span>{_alttext(math, text)}</div>'
            for (form, math), text in zip(rows, texts, strict=False)]


def _alttext(math: str, line: str) -> str:
    """``math`` with the text of its result line as its alttext."""
    text = line.strip().removeprefix("Result:").removeprefix("Gradient-descent step:")
    text = re.sub(r"^=|\s+\(in terms of the (input|output yhat)\)$", "", text.strip()).strip()
    return re.sub(r'alttext="[^"]*"', lambda _: f'alttext="{escape(text, quote=True)}"', math,
                  count=1)


def render_html(d) -> str:
    """An HTML fragment: the numbered steps with their rules, the result in input and output
    form, then the singular points, warnings and assumptions in sections of their own. Maths
    is presentation MathML; the fragment is well-formed XML and loads nothing."""
    method = f' <span class="method">[method: {escape(d.method)} rule]</span>' if d.method else ""
    lines = ['<div class="chainrule-derivation">',
             f'<p class="derivation-title"><strong>{escape(d.title)}</strong>{method}</p>',
             *([read_as_html(d.typed)] if getattr(d, "typed", None) else []),
             '<ol class="steps">']
    for step in d.steps:
        _step_html(step, lines)
    lines.append("</ol>")
    lines.append('<section class="result"><h4>Result</h4>')
    lines.extend(_result_html(d))
    lines.append("</section>")
    lines.append('<section class="singularities"><h4>Singular points</h4>')
    if d.singularities:
        lines.append("<ul>" + "".join(f"<li>{escape(s.describe())}</li>" for s in d.singularities)
                     + "</ul>")
    else:
        lines.append("<p>none</p>")
    lines.append("</section>")
    if d.warnings:
        lines.append('<section class="warnings"><h4>Warnings</h4><ul>'
                     + "".join(f"<li>{escape(w)}</li>" for w in d.warnings) + "</ul></section>")
    if d.assumptions:
        lines.append('<section class="assumptions"><h4>Assumptions</h4><ul>'
                     + "".join(f"<li>{escape(a)}</li>" for a in d.assumptions) + "</ul></section>")
    lines.append("</div>")
    return "\n".join(lines)
