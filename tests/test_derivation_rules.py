"""The step tree: each node's claim holds, and the rules are the ones a textbook would use."""

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from chainrule.derivation import api, derive
from chainrule.derivation.library import activation_definition, activation_names, loss_expr
from chainrule.derivation.parser import FormulaError, parse_expression
from chainrule.derivation.rules import DIFF_RULES, differentiate
from chainrule.derivation.symbols import x, y, yhat
from test_derivation_oracle import check_tree, same


def _rules(step):
    return [node.rule for node in step.walk()]


@pytest.mark.parametrize("name", activation_names())
@pytest.mark.parametrize("method", [None, "quotient", "chain"])
def test_every_step_of_every_activation_holds(name, method):
    d = derive(name, method=method)
    assert sum(check_tree(s) for s in d.steps) >= 1


@pytest.mark.parametrize("loss", ["mse", "bce", "ce", "huber", "bce_with_logits"])
def test_every_step_of_every_loss_holds(loss):
    d = derive(loss=loss)
    assert sum(check_tree(s) for s in d.steps) >= 1


@pytest.mark.parametrize(
    ("activation", "loss", "half"),
    [("tanh", "bce", False), ("sigmoid", "bce", False), ("identity", "mse", True),
     ("relu", "mse", False), ("softsign", "bce", False), ("gelu", "mse", True)],
)
def test_every_step_of_compositions_holds(activation, loss, half):
    d = derive(activation=activation, loss=loss, half=half, weights=True)
    assert sum(check_tree(s) for s in d.steps) >= 5


def test_sigmoid_by_quotient_rule_differentiates_one_over_one_plus_e_to_the_minus_x():
    d = derive("sigmoid", method="quotient")
    top = [s.rule for s in d.steps]
    assert top[0] == "definition"
    assert d.steps[0].after == 1 / (1 + sympy.exp(-x))
    assert top[1] == "quotient"
    # u = 1 has derivative 0 (constant rule); v = 1 + e^(-x) needs the exp rule inside a chain
    rules = _rules(d.steps[1])
    assert {"constant", "sum", "chain", "exp"} <= set(rules)
    assert "e^(-x)/(1 + e^(-x))²" in d.to_text()
    assert d.result_output_form == yhat * (1 - yhat)


def test_sigmoid_by_chain_rule_uses_the_power_rule():
    d = derive("sigmoid", method="chain")
    tree = d.steps[1]
    assert tree.rule == "chain"
    assert "quotient" not in _rules(tree)
    assert tree.substeps[0].rule == "power"
    assert "Let u = 1 + e^(-x)" in tree.explain()
    assert same(d.result, sympy.exp(-x) / (1 + sympy.exp(-x)) ** 2)


def test_tanh_by_quotient_rule_goes_through_sinh_over_cosh():
    d = derive("tanh", method="quotient")
    assert d.steps[0].after == sympy.sinh(x) / sympy.cosh(x)
    assert "quotient" in _rules(d.steps[1])
    assert d.result_output_form == 1 - yhat**2


@pytest.mark.parametrize(
    ("formula", "rule"),
    [("3*x**2", "constant multiple"), ("x**3", "power"), ("sin(x)", "trigonometric"),
     ("cosh(x)", "hyperbolic"), ("sigmoid(x)", "sigmoid"), ("erf(x)", "erf"),
     ("log(x)", "log"), ("exp(x)", "exp"), ("relu(x)", "piecewise"), ("x*exp(x)", "product"),
     ("x/(1+x)", "quotient"), ("exp(2*x)", "chain"), ("2^x", "exp"), ("abs(x)", "piecewise"),
     ("x + 1", "sum"), ("x + y", "constant")],
)
def test_the_expected_rule_is_used(formula, rule):
    d = derive(formula)
    assert rule in _rules(d.steps[0])
    check_tree(d.steps[0])


def test_chain_step_names_inner_function():
    step = differentiate(sympy.log(1 + sympy.exp(x)), x)
    assert step.rule == "chain"
    assert step.explain() == "Let u = 1 + e^x. Then d/dx log(u) = 1/u·du/dx"
    assert step.substeps[0].var.name == "u"


def test_nested_chains_get_distinct_names():
    step = differentiate(sympy.exp(sympy.sin(x**2)), x)
    names = [n.terms["u"].name for n in step.walk() if n.rule == "chain"]
    assert len(names) == len(set(names)) == 2


def test_rule_names_come_from_the_documented_list():
    for name in ("sigmoid", "gelu", "mish", "elu", "softsign"):
        for s in derive(name).steps:
            for node in s.walk():
                if node.kind == "diff":
                    assert node.rule in DIFF_RULES


def test_method_is_validated():
    with pytest.raises(ValueError, match="method must be"):
        differentiate(x, x, method="product")
    with pytest.raises(ValueError, match="method must be"):
        derive("sigmoid", method="magic")


def test_bce_derivative_keeps_the_minus_sign_of_log_one_minus_yhat():
    # the chain rule on log(1 - yhat) gives the minus sign people lose
    d = derive(loss="bce")
    raw = d.steps[1].after
    assert same(raw, -(y / yhat - (1 - y) / (1 - yhat)))
    assert not same(raw, -(y / yhat + (1 - y) / (1 - yhat)))
    assert same(d.result, (yhat - y) / (yhat * (1 - yhat)))


_ATOMS = st.sampled_from(["x", "2", "y", "0.5"])
_UNARY = st.sampled_from(["exp", "log", "sin", "cos", "tanh", "sigmoid", "softplus", "sqrt",
                          "erf", "abs", "relu", "cosh"])


def _formula(depth):
    if depth == 0:
        return _ATOMS
    sub = _formula(depth - 1)
    return st.one_of(
        _ATOMS,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/", "^"]), sub).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
        st.tuples(_UNARY, sub).map(lambda t: f"{t[0]}({t[1]})"),
    )


@settings(max_examples=40)
@given(_formula(3))
def test_random_formulas_every_step_holds(text):
    try:
        expr = parse_expression(text)
    except FormulaError:
        return
    if not expr.has(x) or expr.has(sympy.zoo, sympy.nan):
        return
    if any(p.base.is_zero for p in expr.atoms(sympy.Pow)):
        return  # 0^x: SymPy's own derivative is nan, there is nothing to compare with
    step = differentiate(expr, x)
    check_tree(step)
    for method in ("chain",):
        check_tree(differentiate(expr, x, method))


def test_steps_of_definitions_without_api():
    for name in ("sigmoid", "softplus", "gaussian"):
        f = activation_definition(name, x)
        step = differentiate(f, x)
        assert same(step.after, sympy.diff(f, x))
    assert same(differentiate(loss_expr("mse", yhat, y, half=True), yhat).after, yhat - y)


# --- the engine never returns what SymPy disagrees with -------------------------------------------


@pytest.fixture
def fresh_cache():
    api._derive_cached.cache_clear()
    yield
    api._derive_cached.cache_clear()


def test_a_wrong_simplification_of_a_formula_is_refused(monkeypatch, fresh_cache):
    monkeypatch.setattr(api, "tidy", lambda e, *args: e + 1)
    with pytest.raises(RuntimeError, match=r"disagrees with sympy\.diff"):
        derive("x**3 + 7*x")


def test_a_wrong_simplification_of_an_activation_is_refused(monkeypatch, fresh_cache):
    monkeypatch.setattr(api, "tidy", lambda e, *args: 2 * e)
    with pytest.raises(RuntimeError, match=r"disagrees with sympy\.diff"):
        derive("softsign")


def test_a_wrong_composition_is_refused(monkeypatch, fresh_cache):
    from chainrule.derivation import compose

    monkeypatch.setattr(compose, "_tidy_in_output", lambda e: -e)
    with pytest.raises(RuntimeError, match=r"disagrees with sympy\.diff"):
        derive(activation="tanh", loss="bce")


@pytest.mark.parametrize(("activation", "loss", "half"),
                         [("tanh", "bce", False), ("sigmoid", "bce", False),
                          ("softplus", "mse", True)])
def test_every_step_holds_by_the_chain_method_with_weights(activation, loss, half):
    d = derive(activation=activation, loss=loss, half=half, weights=True, method="chain")
    assert sum(check_tree(s) for s in d.steps) >= 5


@pytest.mark.parametrize("expr, law", [
    (1 / (1 + sympy.exp(-x)), "quotient"),
    (sympy.log(x) / x, "quotient"),
    (x * sympy.exp(x), "product"),
    (sympy.sin(x) * x**2, "product"),
])
def test_quotient_and_product_rules_write_out_their_pieces(expr, law):
    from chainrule.derivation.functions import product_form, quotient_form

    step = differentiate(expr, x)
    written = [n for n in step.walk() if n.kind == "equal" and n.rule == law]
    assert len(written) == 1
    form = written[0].before
    assert isinstance(form, quotient_form if law == "quotient" else product_form)
    # the pieces are the ones the sub-steps derived, and the written-out form is the derivative
    assert same(form.doit(), sympy.diff(expr, x))
    assert same(written[0].after, sympy.diff(expr, x))
    for value in (0.5, 2.0, 1e3):  # log(x) needs x > 0
        assert float(form.evalf(subs={x: value})) == pytest.approx(
            float(sympy.diff(expr, x).evalf(subs={x: value})), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("text", ["abs(sqrt(x))", "abs(log(x))", "sqrt(abs(x))"])
def test_an_absolute_value_of_a_root_is_derived_on_the_roots_domain(text):
    # For x < 0, sqrt(x) is imaginary and sign(sqrt(x))/(2 sqrt(x)) comes out real by accident;
    # the check against sympy.diff compares the two only where the root is real.
    d = derive(text)
    xs = [0.3, 1.7, 2.9]
    f = sympy.lambdify(x, parse_expression(text))
    df = sympy.lambdify(x, d.result)
    for v in xs:
        fd = (f(v + 1e-6) - f(v - 1e-6)) / 2e-6
        assert abs(df(v) - fd) < 1e-6 * (1 + abs(fd))


def test_a_wrong_sign_is_still_refused_on_the_roots_domain():
    from chainrule.derivation.simplify import equivalent

    truth = sympy.diff(sympy.Abs(sympy.sqrt(x)), x)
    assert equivalent(sympy.sign(sympy.sqrt(x)) / (2 * sympy.sqrt(x)), truth)
    assert not equivalent(-sympy.sign(sympy.sqrt(x)) / (2 * sympy.sqrt(x)), truth)
