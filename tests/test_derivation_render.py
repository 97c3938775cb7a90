"""Output formats: numbered text, LaTeX, Markdown, and JSON that parses back."""

import json

import sympy

from chainrule.derivation import derive
from chainrule.derivation.parser import parse_expression
from chainrule.derivation.printing import to_latex, to_python, to_text
from chainrule.derivation.symbols import x, y, yhat


def test_text_is_numbered_and_ends_with_the_result():
    text = derive(activation="tanh", loss="bce").to_text()
    lines = text.splitlines()
    numbered = [line for line in lines if line[:2] in ("1.", "2.", "3.")]
    assert len(numbered) == 3
    assert "   2.1 " in text  # sub-steps are numbered below their parent
    assert "Result: dE/dz = (1 + yhat)(yhat - y)/yhat" in text
    warnings = text.split("Warnings:")[1]
    assert "yhat = 0" in warnings and "Domain conflict" in warnings


def test_json_has_the_documented_keys_and_parses_with_sympy():
    d = derive(activation="tanh", loss="bce", weights=True)
    data = json.loads(d.to_json())
    for key in ("steps", "result", "result_input_form", "singularities", "warnings"):
        assert key in data
    local = {s.name: s for s in (x, y, yhat, sympy.Symbol("w", real=True))}
    parsed = sympy.parse_expr(data["result"], local_dict=local)
    assert sympy.simplify(parsed - x * (1 + yhat) * (yhat - y) / yhat) == 0
    assert data["singularities"][0]["value"] == "0"
    assert data["steps"][1]["substeps"], "the step tree is kept in JSON"
    assert data["extra"]["update"].startswith("-eta*x")


def test_json_result_round_trips_through_the_safe_parser():
    for spec in ("sigmoid", "tanh", "softsign", "gaussian", "x*sigmoid(x)"):
        d = derive(spec)
        back = parse_expression(d.to_dict()["result"])
        assert sympy.simplify(back - d.result) == 0 or back == d.result


def test_latex_and_markdown():
    d = derive("sigmoid", method="quotient")
    latex = d.to_latex()
    assert latex.count(r"\begin{enumerate}") == latex.count(r"\end{enumerate}")
    assert r"\frac{e^{- x}}{\left(1 + e^{- x}\right)^{2}}" in latex
    assert r"\hat{y} \left(1 - \hat{y}\right)" in latex
    assert "·" not in latex and "²" not in latex.replace("$^2$", "")
    md = d.to_markdown()
    assert md.startswith("### ")
    assert "1. **Definition**" in md
    assert "$" in md


def test_printers_order_terms_as_people_write_them():
    e = (1 + yhat) * (yhat - y) / yhat
    assert to_text(e) == "(1 + yhat)(yhat - y)/yhat"
    assert to_python(e) == "(1 + yhat)*(yhat - y)/yhat"
    assert to_latex(e) == r"\frac{\left(1 + \hat{y}\right) \left(\hat{y} - y\right)}{\hat{y}}"
    assert to_text(sympy.exp(-x) / (1 + sympy.exp(-x)) ** 2) == "e^(-x)/(1 + e^(-x))²"
    assert to_text(x / (1 + sympy.Abs(x))) == "x/(1 + |x|)"
    assert to_text(1 - yhat**2) == "1 - yhat²"


def test_str_is_text():
    d = derive("relu")
    assert str(d) == d.to_text()
    assert "Corner at x = 0" in str(d)
