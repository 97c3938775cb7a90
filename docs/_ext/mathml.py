"""Maths as MathML, written into the page when it is built: nothing loaded from the internet.

Registers the HTML math renderer ``mathml``: ``:math:`` and ``.. math::`` become ``<math>``
elements made by docutils' own LaTeX-to-MathML converter
(``docutils.utils.math.latex2mathml``), which browsers show natively. A formula the converter
cannot read is a build warning naming it (an error under ``-W``) and is shown as its LaTeX.

A few common LaTeX forms that the converter lacks are rewritten first (:func:`to_docutils`):
``\\dots`` as ``\\ldots``, the sizing commands ``\\big(`` and the like as the plain bracket,
``\\textstyle`` dropped, and the one-token arguments of ``\\frac12`` braced.
"""

from __future__ import annotations

import re

from docutils import nodes
from docutils.utils.math.latex2mathml import tex2mathml
from sphinx.util import logging
from sphinx.util.math import get_node_equation_number

logger = logging.getLogger(__name__)


_REWRITES = [
    (re.compile(r"\\dots(?![a-zA-Z])"), r"\\ldots"),
    (re.compile(r"\\(?:big|Big|bigg|Bigg)[lrm]?(?![a-zA-Z])\s*"), ""),
    (re.compile(r"\\textstyle(?![a-zA-Z])\s*"), ""),
    # \frac12, \tfrac1m: TeX's one-token arguments, which the converter wants in braces.
    (re.compile(r"\\([dt]?frac)\s*([0-9a-zA-Z])\s*([0-9a-zA-Z])"), r"\\\1{\2}{\3}"),
]


def to_docutils(latex: str) -> str:
    """``latex`` in the subset of LaTeX that docutils' converter reads (same maths)."""
    for pattern, replacement in _REWRITES:
        latex = pattern.sub(replacement, latex)
    return latex


def _mathml(translator, node, latex: str, block: bool) -> str | None:
    try:
        return tex2mathml(to_docutils(latex), as_block=block)
    except Exception as exc:  # the converter raises SyntaxError and others on unknown LaTeX
        logger.warning("cannot write the formula %r as MathML: %s", latex, exc,
                       location=node, type="mathml")
        return None


def visit_math(translator, node: nodes.math) -> None:
    latex = node.astext()
    mathml = _mathml(translator, node, latex, block=False)
    if mathml is None:
        translator.body.append(f"<code class=\"math\">{translator.encode(latex)}</code>")
    else:
        translator.body.append(f"<span class=\"math notranslate\">{mathml}</span>")
    raise nodes.SkipNode


def visit_displaymath(translator, node: nodes.math_block) -> None:
    translator.body.append(translator.starttag(node, "div", CLASS="math notranslate"))
    if node.get("number"):
        number = get_node_equation_number(translator, node)
        translator.body.append(f"<span class=\"eqno\">({number})")
        translator.add_permalink_ref(node, "Link to this equation")
        translator.body.append("</span>")
    if node.get("no-wrap", node.get("nowrap", False)):
        parts = [node.astext()]
    else:
        parts = [part for part in node.astext().split("\n\n") if part.strip()]
    for part in parts:
        mathml = _mathml(translator, node, part, block=True)
        if mathml is None:
            translator.body.append(f"<pre class=\"math\">{translator.encode(part)}</pre>")
        else:
            translator.body.append(mathml)
    translator.body.append("</div>\n")
    raise nodes.SkipNode


def setup(app):
    app.add_html_math_renderer("mathml", (visit_math, None), (visit_displaymath, None))
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
