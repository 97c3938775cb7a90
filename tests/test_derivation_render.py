"""Output formats: numbered text, LaTeX, Markdown, and JSON that parses back."""

import json

import pytest
import sympy

from chainrule.derivation import derive
from chainrule.derivation.parser import parse_expression
from chainrule.derivation.printing import mathml_body, to_latex, to_python, to_text
from chainrule.derivation.simplify import textbook_form
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


# --- one printed form of each derivative, in every face -------------------------------------------

_TEXTBOOK = [  # (derive's arguments, check_formula's arguments, the output form as a textbook)
    ({"expression": "sigmoid"}, {"activation": "sigmoid"}, "yhat(1 - yhat)"),
    ({"expression": "tanh"}, {"activation": "tanh"}, "1 - yhat²"),
    ({"expression": "bce"}, {"loss": "bce"}, "(yhat - y)/(yhat(1 - yhat))"),
    ({"expression": "mse"}, {"loss": "mse"}, "2(yhat - y)"),
    ({"activation": "sigmoid", "loss": "mse"}, {"loss": "mse", "activation": "sigmoid"},
     "2yhat(1 - yhat)(yhat - y)"),
]


@pytest.mark.parametrize(("derive_args", "check_args", "printed"), _TEXTBOOK)
def test_every_face_prints_the_one_textbook_form(derive_args, check_args, printed):
    from chainrule.gradient_check import check_formula

    d = derive(**derive_args)
    shown = d.result_output_form if d.result_output_form is not None else d.result
    form = textbook_form(shown)
    assert to_text(form) == printed
    assert check_formula("y", **check_args).expected == printed
    assert f" = {printed}" in d.to_text()
    assert to_latex(form) in d.to_latex()
    assert to_latex(form) in d.to_markdown()
    assert mathml_body(form) in d.to_html()


def test_the_sigmoid_derivative_has_one_form_on_the_page_in_latex_and_in_the_legend():
    from chainrule.derivation.plot import _curve

    d = derive("sigmoid")
    expression = sympy.exp(-x) / (1 + sympy.exp(-x)) ** 2
    assert to_text(d.result) == "e^(-x)/(1 + e^(-x))²"
    html = d.to_html()
    assert mathml_body(expression) in html
    assert mathml_body(expression).startswith("<mrow><mfrac><msup><mi>e</mi><mrow><mo>\u2212")
    assert "<mfrac><mn>1</mn><mrow><msup><mi>e</mi><mi>x</mi>" not in html  # not 1/(e^x(...)²)
    assert to_latex(expression) in d.to_latex()
    # the legend writes the output form through the input, the form backprop uses
    assert _curve("sigmoid")[1] == "sigmoid'(x) = σ(x)(1 - σ(x))"
    assert _curve("tanh")[1] == "tanh'(x) = 1 - tanh(x)²"
