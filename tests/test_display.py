"""Rich display in notebooks: HTML, Markdown and LaTeX of derivations, checks, reports and
histories, the MathML printer and the inline SVG charts.

The MathML oracle reads the printed MathML back into a formula with a small reader written
here (sharing no code with the printer), parses it with the whitelist parser and compares it
with the printed expression at random points.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import sympy

from chainrule._svg import line_chart, nice_ticks
from chainrule.derivation import derive, parse_expression
from chainrule.derivation.printing import to_mathml
from chainrule.derivation.symbols import SYMBOLS
from chainrule.gradient_check import check_formula, check_model, gradcheck
from chainrule.training import History

MATHML = "{http://www.w3.org/1998/Math/MathML}"
SVG = "{http://www.w3.org/2000/svg}"


# --- reading MathML back --------------------------------------------------------------------------


def _tag(node) -> str:
    return node.tag.rsplit("}", 1)[-1]


def _read(node) -> str:
    """Presentation MathML (the subset a derivation uses) as formula text."""
    tag, kids = _tag(node), list(node)
    if tag in ("math", "mrow", "mtd"):
        return "".join(_read(k) for k in kids)
    if tag == "mi":
        return {"σ": "sigmoid", "η": "eta", "α": "alpha", "π": "pi"}.get(node.text, node.text)
    if tag == "mn":
        return node.text
    if tag == "mo":
        return {"\u2062": "*", "×": "*", "−": "-"}.get(node.text, node.text)
    if tag == "mfrac":
        return f"(({_read(kids[0])})/({_read(kids[1])}))"
    if tag == "msup":
        return f"(({_read(kids[0])})**({_read(kids[1])}))"
    if tag == "msqrt":
        return f"sqrt({''.join(_read(k) for k in kids)})"
    if tag == "mover" and kids[1].text == "^":
        return _read(kids[0]) + "hat"
    raise AssertionError(f"unexpected MathML element <{tag}>")


def _same(a, b, names=("x", "yhat", "y", "z", "w")) -> bool:
    """Equal at random points (targets and outputs kept inside (0, 1))."""
    rng = np.random.default_rng(0)
    syms = [SYMBOLS[n] for n in names]
    fa, fb = (sympy.lambdify(syms, sympy.sympify(e).rewrite(sympy.exp), "numpy") for e in (a, b))
    for _ in range(8):
        point = rng.uniform(0.05, 0.95, len(syms))
        va, vb = complex(fa(*point)), complex(fb(*point))
        if not np.isclose(va, vb, rtol=1e-9, atol=1e-12):
            return False
    return True


def _sigmoid_free(expr):
    from chainrule.derivation.functions import sigmoid

    return expr.replace(sigmoid, lambda u: 1 / (1 + sympy.exp(-u)))


EXPRESSIONS = [
    "yhat*(1 - yhat)",
    "(1 + yhat)*(yhat - y)/yhat",
    "exp(-x)/(1 + exp(-x))**2",
    "x**3 - 2*x + 1/2",
    "sigmoid(x)*(1 + x*(1 - sigmoid(x)))",
    "log(1 + exp(x))",
    "-y*log(yhat) - (1 - y)*log(1 - yhat)",
    "1 - tanh(z)**2",
    "2.5*x - sqrt(x)",
    "-(y/yhat - (1 - y)/(1 - yhat))",
]


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_mathml_reads_back_as_the_same_expression(text):
    expr = parse_expression(text)
    root = ET.fromstring(to_mathml(expr))  # well-formed XML: no named entities
    assert root.tag == MATHML + "math"
    back = parse_expression(_read(root))
    assert _same(_sigmoid_free(back), _sigmoid_free(expr)), (_read(root), text)


def test_mathml_uses_the_house_notation():
    html = to_mathml(parse_expression("yhat*(1 - yhat) + sigmoid(x)"))
    assert html.count('<mover accent="true"><mi>y</mi><mo>^</mo></mover>') == 2
    assert "&#963;" in html  # σ
    # 1 - ŷ, not -ŷ + 1: the constant first, as people write it
    assert re.search(r"<mn>1</mn><mo>\u2212</mo><mover", html)  # the minus sign, U+2212
    assert "yhat" not in html


def test_mathml_of_a_piecewise_function_is_a_brace():
    root = ET.fromstring(to_mathml(derive("relu").result))
    assert [_tag(n) for n in root.iter()].count("mtr") == 2
    assert "otherwise" in "".join(root.itertext())


# --- Derivation ---------------------------------------------------------------------------------


def _equation_sides(math) -> list[list]:
    """The top-level children of a MathML equation split at its = signs."""
    sides, current = [], []
    for node in math:
        if _tag(node) == "mo" and node.text == "=":
            sides.append(current)
            current = []
        else:
            current.append(node)
    sides.append(current)
    return sides


@pytest.mark.parametrize("kwargs", [
    {"expression": "sigmoid"}, {"expression": "x*sigmoid(x)"}, {"expression": "tanh"},
    {"expression": "log(x)"}, {"activation": "tanh", "loss": "bce"},
    {"activation": "sigmoid", "loss": "bce", "weights": True}, {"expression": "bce"},
    {"expression": "relu"},
])
def test_derivation_html_holds_every_step_and_the_result(kwargs):
    d = derive(**kwargs)
    html = d._repr_html_()
    root = ET.fromstring(f"<div>{html}</div>")
    steps = root.findall(".//li[@class='step']")
    assert len(steps) == len(list(d.walk()))
    assert [s.get("data-rule") for s in steps] == [s.rule for s in d.walk()]
    rows = {row.get("data-form"): row.find(MATHML + "math")
            for row in root.iter("div") if row.get("class") == "result-row"}
    expected = {"input": d.result_input_form}
    if d.kind == "composition":
        expected["output"] = d.result
    elif d.result_output_form is not None:
        expected["output"] = d.result_output_form
    assert set(expected) <= set(rows)
    for form, value in expected.items():
        if value.has(sympy.Piecewise):
            continue
        rhs = _equation_sides(rows[form])[-1]
        text = "".join(_read(n) for n in rhs)
        assert _same(_sigmoid_free(parse_expression(text)), _sigmoid_free(value)), (form, text)
    singular = root.find(".//section[@class='singularities']")
    assert len(singular.findall(".//li")) == len(d.singularities)
    warnings = root.find(".//section[@class='warnings']")
    assert (warnings is None) == (not d.warnings)


def test_derivation_keeps_its_plain_repr_and_offers_markdown_and_latex():
    d = derive("sigmoid")
    assert repr(d).startswith("Derivation(kind='activation'")
    assert d._repr_markdown_() == d.to_markdown()
    latex = d._repr_latex_()
    assert latex.startswith("$$") and latex.endswith("$$")
    assert r"\frac{d}{dx}" in latex and "<" not in latex


def test_explanation_text_is_escaped():
    d = derive("x**2 + 1/(x - 1)")
    html = d.to_html()
    ET.fromstring(html)
    assert "<script" not in html


# --- checks and reports -------------------------------------------------------------------------


def test_formula_check_html_shows_the_verdict_and_findings():
    wrong = check_formula("-(y/yhat + (1-y)/(1-yhat))", loss="bce")
    root = ET.fromstring(f"<div>{wrong._repr_html_()}</div>")
    report = root.find(".//div[@data-correct]")
    assert report.get("data-correct") == "false"
    cells = ["".join(td.itertext()) for td in root.find(".//table[@class='findings']").iter("td")]
    assert cells[:3] == ["second term", "(1 - y)/(1 - yhat)", "wrong sign"]
    assert "| second term | (1 - y)/(1 - yhat) | wrong sign |" in wrong._repr_markdown_()
    right = check_formula("(yhat - y)/(yhat*(1 - yhat))", loss="bce")
    root = ET.fromstring(f"<div>{right._repr_html_()}</div>")
    assert root.find(".//div[@data-correct]").get("data-correct") == "true"
    assert root.find(".//table") is None


def test_matrix_check_html():
    from chainrule.gradient_check.matrix import check_matrix

    wrong = check_matrix("X.T @ (sigmoid(X @ W) - Y)", loss="bce", activation="sigmoid",
                         mean=True)
    root = ET.fromstring(f"<div>{wrong._repr_html_()}</div>")
    assert root.find(".//div[@data-correct]").get("data-correct") == "false"
    assert wrong._repr_markdown_().startswith(wrong.paragraph.replace("|", "\\|"))


def test_formula_check_text_is_escaped():
    from chainrule.gradient_check.symbolic import FormulaCheck

    check = FormulaCheck(correct=False, kind=None, where=None, sentence="Not correct: <script>",
                         expected="1", formula="<b>x</b>", derivative="1", simplified="1",
                         variable="x", of="function <i>", method="symbolic")
    html = check._repr_html_()
    ET.fromstring(f"<div>{html}</div>")
    assert "<b>" not in html and "<script>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


@pytest.mark.parametrize("scale", [1.0, 1e3, 1e9])
def test_gradcheck_report_html(scale):
    x = np.array([0.5, -1.0, 2.0]) * scale
    right = gradcheck(lambda v: np.sum(v**2), lambda v: 2 * v, x)
    wrong = gradcheck(lambda v: np.sum(v**2), lambda v: -2 * v, x)
    for report in (right, wrong):
        ET.fromstring(f"<div>{report._repr_html_()}</div>")
    assert ">passed<" in right._repr_html_() and ">FAILED<" in wrong._repr_html_()
    assert "sign is flipped" in wrong._repr_html_()
    assert "| elements that disagree | 3 |" in wrong._repr_markdown_()
    assert repr(wrong).startswith("GradcheckReport(correct=False, kind='sign_flipped'")


def test_gradcheck_report_with_nan_renders():
    report = gradcheck(lambda v: np.sum(np.sqrt(v)), lambda v: np.full_like(v, np.nan),
                       np.array([1.0, 4.0]))
    ET.fromstring(f"<div>{report._repr_html_()}</div>")
    assert not report.passed


def test_model_check_report_html(rng):
    from chainrule.nn import Dense, Sequential, Sigmoid, Tanh

    model = Sequential([Dense(3, 4), Tanh(), Dense(4, 1), Sigmoid()], seed=0)
    X, y = rng.normal(size=(6, 3)), (rng.random((6, 1)) > 0.5).astype(float)
    report = check_model(model, X, y, "bce")
    root = ET.fromstring(f"<div>{report._repr_html_()}</div>")
    assert len(root.findall(".//tr")) == len(report.layers)
    assert "passed" in "".join(root.itertext())


# --- History ------------------------------------------------------------------------------------


def _path_points(path) -> np.ndarray:
    return np.array([[float(v) for v in p.split(",")]
                     for p in re.findall(r"-?[\d.]+,-?[\d.]+", path.get("d"))])


def test_history_html_draws_the_loss_and_accuracy_curves():
    loss = [1.0, 0.6, 0.4, 0.3, 0.25]
    h = History(epoch=[1, 2, 3, 4, 5], loss=loss, accuracy=[0.5, 0.6, 0.7, 0.8, 0.85],
                val_loss=[1.1, 0.7, 0.5, 0.45, 0.44], val_accuracy=[0.5, 0.55, 0.6, 0.7, 0.7])
    root = ET.fromstring(f"<div>{h._repr_html_()}</div>")
    charts = root.findall(f".//{SVG}svg")
    assert [c.get("aria-label") for c in charts] == ["loss by epoch", "accuracy by epoch"]
    paths = charts[0].findall(f"{SVG}path")
    assert len(paths) == 2 and paths[1].get("stroke-dasharray")  # validation dashed
    points = _path_points(paths[0])
    assert len(points) == 5
    # A falling loss is a line going down the picture (SVG's y grows downwards) ...
    assert np.all(np.diff(points[:, 1]) > 0) and np.all(np.diff(points[:, 0]) > 0)
    # ... with the gaps between epochs in proportion to the drops in loss.
    drops = -np.diff(loss)
    assert np.allclose(np.diff(points[:, 1]) / drops, np.diff(points[:, 1])[0] / drops[0],
                       rtol=0.02)
    assert repr(h) == "History(epochs=5, loss=0.25)"
    assert "| 5 | 0.25 | 0.85 | 0.44 | 0.7 |" in h._repr_markdown_()


def test_history_from_fit_and_an_empty_history(rng):
    from chainrule.nn import Dense, Sequential, Sigmoid
    from chainrule.training import fit

    X = rng.normal(size=(32, 2))
    y = (X[:, :1] > 0).astype(float)
    model = Sequential([Dense(2, 1), Sigmoid()], seed=0)
    history = fit(model, X, y, loss="bce", epochs=3, seed=0, verbose=0)
    ET.fromstring(f"<div>{history._repr_html_()}</div>")
    empty = History()
    assert "no epoch run" in empty._repr_html_()
    ET.fromstring(f"<div>{empty._repr_html_()}</div>")


# --- the SVG chart ------------------------------------------------------------------------------


def test_nice_ticks():
    assert np.allclose(nice_ticks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert nice_ticks(-5, 5, 8)[0] == -4.0 and 0.0 in nice_ticks(-5, 5, 8)
    assert nice_ticks(3, 3) == [3.0]
    assert nice_ticks(float("nan"), 1) == []


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e9])
def test_a_gap_or_a_pole_breaks_the_line(bad):
    x = np.linspace(0.0, 5.0, 101)
    y = x.copy()
    y[50] = bad
    root = ET.fromstring(line_chart([("f", x, y)]))
    paths = root.findall(f"{SVG}path")
    assert len(paths) == 2  # before and after the bad point
    for path in paths:
        assert np.all(np.isfinite(_path_points(path)))
    assert len(_path_points(paths[0])) == 50 and len(_path_points(paths[1])) == 50


def test_labels_are_escaped_and_extreme_values_draw():
    svg = line_chart([("a<b & c", np.array([0.0, 1.0]), np.array([-1e9, 1e9]))],
                     title="<t>")
    root = ET.fromstring(svg)
    assert "a<b & c" in "".join(root.itertext())
    zeros = line_chart([("z", np.zeros(3), np.zeros(3))])
    ET.fromstring(zeros)
    empty = line_chart([("nan", np.arange(3.0), np.full(3, np.nan))])
    assert ET.fromstring(empty).findall(f"{SVG}path") == []


# --- vector and matrix derivations in MathML ------------------------------------------------------

_VECTOR_QUERIES = [
    {"activation": "softmax"},
    {"activation": "tanh", "loss": "mse", "layer": True},
    {"network": "relu,sigmoid", "loss": "bce"},
    {"network": "tanh,softmax", "loss": "ce"},
]


def _maths(html: str) -> list:
    root = ET.fromstring(f"<root>{html}</root>")  # well-formed XML
    return list(root.iter(f"{MATHML}math"))


@pytest.mark.parametrize("query", _VECTOR_QUERIES, ids=lambda q: "-".join(map(str, q.values())))
def test_vector_derivations_are_mathml_with_alttext_and_a_formula_per_step(query):
    d = derive(**query)
    html = d._repr_html_()
    maths = _maths(html)
    assert maths and all(m.get("alttext") for m in maths)
    assert "<pre" not in html and "0x" not in html
    assert "<mo>-</mo>" not in html and "<mn>-" not in html  # the minus sign is U+2212
    assert "<mo>^</mo>" not in html.replace('<mo>^</mo></mover>', "")  # a hat is an accent
    root = ET.fromstring(f"<root>{d.to_html()}</root>")
    for step in root.iter("li"):
        assert step.find(f".//{MATHML}math") is not None, "".join(step.itertext())[:80]
    assert html.count(d.title.split(":")[0]) <= 1 or "<math" in d.title  # the title once


def test_a_network_derivation_has_transposes_hadamard_products_and_shapes():
    html = derive(network="relu,sigmoid", loss="bce").to_html()
    assert "<msup><mi>X</mi><mo>⊤</mo></msup>" in html  # Xᵀ Δ₁ / m
    assert "<msubsup><mi>H</mi><mn>1</mn><mo>⊤</mo></msubsup>" in html  # H₁ᵀ
    assert "<mo>⊙</mo>" in html
    assert "<munder><mo" in html  # Σ_i with its limit below
    assert '<annotation encoding="application/x-tex">' in html
    assert 'class="shape"' in html and "<mo>×</mo>" in html  # (n₀ × m)(m × n₁) = n₀ × n₁
    assert '<mover accent="true"><mi>Y</mi><mo>^</mo></mover>' in html


def test_softmax_shows_the_kronecker_delta_and_the_matrix_form():
    d = derive(activation="softmax")
    html = d.to_html()
    assert "<msub><mi>δ</mi><mrow><mi>i</mi><mi>j</mi></mrow></msub>" in html
    assert '<mi>diag</mi>' in html and "<msup><mi>p</mi><mo>⊤</mo></msup>" in html
    assert html.count(">Jacobian of softmax") == 1


@pytest.mark.parametrize("tex, expected", [
    (r"X^\top", "<msup><mi>X</mi><mo>⊤</mo></msup>"),
    (r"\frac{\partial E}{\partial W_1}",
     '<mfrac><mrow><mi mathvariant="normal">∂</mi><mi>E</mi></mrow><mrow><mi mathvariant='
     '"normal">∂</mi><msub><mi>W</mi><mn>1</mn></msub></mrow></mfrac>'),
    (r"\sum_{k=1}^{K} z_k", '<mrow><munderover><mo largeop="true" movablelimits="false">∑</mo>'
                            "<mrow><mi>k</mi><mo>=</mo><mn>1</mn></mrow><mi>K</mi></munderover>"
                            "<msub><mi>z</mi><mi>k</mi></msub></mrow>"),
    (r"\hat{Y} - T", '<mrow><mover accent="true"><mi>Y</mi><mo>^</mo></mover><mo>−</mo>'
                     "<mi>T</mi></mrow>"),
    (r"\left(A \odot B\right)", "<mrow><mo>(</mo><mi>A</mi><mo>⊙</mo><mi>B</mi><mo>)</mo></mrow>"),
])
def test_latex_becomes_presentation_mathml(tex, expected):
    from chainrule._mathml import latex_mathml

    assert latex_mathml(tex) == expected


@pytest.mark.parametrize("sentence, maths", [
    ("p_i = e^(z_i)/S with S = Σ_k e^(z_k), for i = 1..K",
     ["p_i = e^(z_i)/S", "S = Σ_k e^(z_k)", "i = 1..K"]),
    ("the sum over the batch is the product H₁ᵀ Δ₂, and the bias sums the rows of Δ₂",
     ["H₁ᵀ Δ₂", "Δ₂"]),
    ("each h_ij feeds every z_ik of the next layer's element-wise relu", ["h_ij", "z_ik"]),
    ("", []),
])
def test_prose_keeps_its_words_and_sets_its_maths(sentence, maths):
    from chainrule._mathml import prose_html, segments

    assert [piece for is_maths, piece in segments(sentence) if is_maths] == maths
    assert "".join(piece for _, piece in segments(sentence)) == sentence
    found = _maths(prose_html(sentence))
    assert [m.get("alttext") for m in found] == maths


def test_repr_latex_of_derivations_holds_the_steps():
    scalar = derive(activation="tanh", loss="bce")._repr_latex_()
    assert scalar.startswith("$$") and r"\textbf{1." in scalar and r"\textbf{2.1" in scalar
    vector = derive(network="relu,sigmoid", loss="bce")._repr_latex_()
    assert r"\textbf{8." in vector and r"H_1^\top" in vector


def test_vector_derivation_repr_has_no_address():
    d = derive(network="relu,sigmoid", loss="bce")
    assert "0x" not in repr(d) and "functools" not in repr(d)
    assert "∂E/∂W₁ = Xᵀ Δ₁ / m" in repr(d)


def test_a_wrong_matrix_check_sets_your_formula_the_expected_one_and_the_difference():
    from chainrule.gradient_check.matrix import check_matrix

    wrong = check_matrix("X @ ((Yhat - T) @ W2.T * (Z1 > 0)) / m", network="relu,sigmoid",
                         loss="bce", wrt="W1")
    html = wrong._repr_html_()
    root = ET.fromstring(f"<div>{html}</div>")
    forms = {"".join(tr.find("th").itertext()): tr.find("td")
             for tr in root.find(".//table[@class='forms']").iter("tr")}
    assert set(forms) == {"your formula", "expected", "difference"}
    assert forms["your formula"].find(f"{MATHML}math").get("alttext") == wrong.formula
    expected = ET.tostring(forms["expected"], encoding="unicode")
    assert "<ns0:msup><ns0:mi>X</ns0:mi><ns0:mo>⊤</ns0:mo></ns0:msup>" in expected  # Xᵀ Δ₁
    assert "⊙" in expected and "<ns0:mi>Δ</ns0:mi>" in expected
    assert "transpose missing" in "".join(forms["difference"].itertext())
    assert all(m.get("alttext") for m in _maths(html))
    markdown = wrong._repr_markdown_()
    assert "Expected: $" in markdown and r"{X}^\top\,\Delta_{1}" in markdown  # Xᵀ Δ₁ / m


def test_a_correct_check_sets_the_formula_as_maths_without_a_table():
    right = check_formula("(yhat - y)/(yhat*(1 - yhat))", loss="bce")
    html = right._repr_html_()
    [math] = _maths(html)
    assert math.get("alttext") == "(yhat - y)/(yhat*(1 - yhat))"
    assert "⊙" not in html  # one-variable formulas multiply, they have no Hadamard product


@pytest.mark.parametrize("text", ["__import__('os')", "x +", "lambda: 1", "[1, 2]", "a.b.c()"])
def test_a_formula_that_is_not_maths_is_shown_as_written(text):
    from chainrule._codemath import code_maths
    from chainrule._display import formula_maths

    assert code_maths(text) is None
    assert formula_maths(text, True).startswith("<code>")


def test_sequential_shows_a_layer_table_in_a_notebook():
    from chainrule.nn import Dense, Sequential, get

    model = Sequential([Dense(4, 8), get("relu"), Dense(8, 3)])
    root = ET.fromstring(f"<div>{model._repr_html_()}</div>")
    rows = [["".join(td.itertext()) for td in tr.iter("td")] for tr in root.iter("tr")][1:]
    # 4·8 + 8 = 40 and 8·3 + 3 = 27 parameters
    assert rows == [["0", "Dense(4, 8)", "(m, 8)", "40"], ["1", "ReLU()", "(m, 8)", "0"],
                    ["2", "Dense(8, 3)", "(m, 3)", "27"]]
    assert "Total parameters: 67" in model._repr_html_()


def _printed_objects():
    import numpy as np

    from chainrule.gradient_check.matrix import check_matrix
    from chainrule.nn import Dense, Sequential, get

    model = Sequential([Dense(4, 8), get("relu"), Dense(8, 3), get("softmax")])
    X = np.random.default_rng(0).normal(size=(5, 4))
    return [derive("x*sigmoid(x)"), derive(activation="tanh", loss="bce", weights=True),
            derive(activation="softmax"), derive(activation="tanh", loss="mse", layer=True),
            derive(activation="sigmoid", loss="bce", vector=True),
            derive(network="relu,tanh,softmax", loss="ce"),
            check_formula("yhat - y", loss="mse"),
            check_matrix("X.T @ (Yhat - T)", loss="mse", activation="sigmoid"),
            model, check_model(model, X, np.array([0, 1, 2, 1, 0]), loss="ce")]


def test_no_printed_object_shows_a_memory_address():
    for obj in _printed_objects():
        shown = [repr(obj), str(obj)] + [getattr(obj, name)() for name in
                                          ("_repr_html_", "_repr_markdown_", "_repr_latex_")
                                          if hasattr(obj, name)]
        assert not re.search(r"0x[0-9a-f]{4,}", " ".join(shown)), type(obj).__name__
        assert hasattr(obj, "_repr_html_"), type(obj).__name__


# --- any text at all: well-formed output, never an exception -------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_MATHS_ALPHABET = st.lists(st.sampled_from([
    *"xyzXWHΔδΣσŷŶ∂_^()[]{}\\=+-−/·⊙ᵀ²₀₁₂ 0123456789.,;:'<>&\"",
    "\\frac", "\\left(", "\\right)", "\\hat", "\\sum", "\\begin{cases}", "\\end{cases}",
    "\\text{", "@", ".T", "*", "**", " where "]), max_size=40).map("".join)


@given(_MATHS_ALPHABET)
def test_any_text_gives_well_formed_mathml(text):
    from chainrule._codemath import code_maths, expected_maths
    from chainrule._display import formula_maths
    from chainrule._mathml import latex_mathml, math_element, prose_html, prose_latex

    ET.fromstring(math_element(latex_mathml(text), text))
    ET.fromstring(f"<p>{prose_html(text)}</p>")
    assert isinstance(prose_latex(text), str)
    for got in (code_maths(text), expected_maths(text)):
        if got is not None:
            ET.fromstring(math_element(got[0], text))
    ET.fromstring(f"<p>{formula_maths(text, True)}</p>")


@pytest.mark.parametrize("text", ["", " ", "1e9", "-1e308", "nan", "NaN*x", "x" * 500,
                                  "(" * 200 + "x" + ")" * 200, "\\frac{", "}}}", "^_^",
                                  "\\left(", "Σ_", "x_(", "e^(",
                                  "7[W@&\\begin{cases}\\right)"])  # a stray \right in cases
def test_extreme_texts_give_well_formed_mathml(text):
    from chainrule._display import formula_maths
    from chainrule._mathml import latex_mathml, math_element, prose_html

    ET.fromstring(math_element(latex_mathml(text), text))
    ET.fromstring(f"<p>{prose_html(text)}</p>")
    ET.fromstring(f"<p>{formula_maths(text, True)}</p>")
