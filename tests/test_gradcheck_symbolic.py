"""check_formula: the classic hand-derivation mistakes (the BCE sign slip, dE/dz given for dE/dyhat,
the fused sigmoid + BCE result) and the relations it names."""

import json

import pytest

pytest.importorskip("sympy")

from chainrule.derivation.parser import FormulaError
from chainrule.gradient_check import FormulaCheck, check_formula

# --- the classic mistakes of the BCE derivative -------------------------------------------------


def test_bce_second_term_with_the_wrong_sign_is_named():
    result = check_formula("-(y/yhat + (1-y)/(1-yhat))", loss="bce", wrt="yhat")
    assert isinstance(result, FormulaCheck)
    assert not result.correct and result.kind == "term_sign"
    [finding] = result.findings
    assert finding.problem == "wrong sign" and finding.position == "second term"
    assert finding.term == "(1 - y)/(1 - yhat)"
    assert finding.should_be == "-(1 - y)/(1 - yhat)"
    assert finding.rule == ("d/dyhat log(1 - yhat) = -1/(1 - yhat): the chain rule's inner "
                            "derivative is -1")
    text = str(result)
    assert "the second term has the wrong sign" in text
    assert "\n" not in text  # one paragraph


def test_a_dropped_leading_minus_and_a_wrong_second_sign_are_both_named():
    result = check_formula("t/p + (1-t)/(1-p)", loss="bce")
    assert not result.correct and result.kind == "term_sign"
    problems = [f.problem for f in result.findings]
    assert problems == ["leading minus dropped", "wrong sign"]
    assert result.findings[1].position == "second term"
    text = result.paragraph
    assert "Two sign errors" in text and "leading minus was dropped" in text
    assert "second term has the wrong sign" in text
    assert "first term, t/p, with the wrong sign: it should be -t/p" in text
    assert "d/dp log(1 - p) = -1/(1 - p)" in text


@pytest.mark.parametrize(
    "formula",
    [
        "-(y/yhat - (1-y)/(1-yhat))",  # the textbook form
        "(yhat - y)/(yhat*(1 - yhat))",  # the same after simplification (the usual answer)
        "-y/yhat + (1 - y)/(1 - yhat)",
        "(y - yhat)/(yhat^2 - yhat)",
    ],
)
def test_correct_forms_of_the_bce_derivative_are_accepted(formula):
    result = check_formula(formula, loss="bce", wrt="yhat")
    assert result.correct and result.kind is None and result.findings == []
    assert result.method == "symbolic"
    assert result.paragraph.startswith("Correct:")


def test_tanh_bce_result_is_correct_for_dE_dz():
    result = check_formula("(yhat + 1)*(yhat - y)/yhat", loss="bce", activation="tanh")
    assert result.correct and result.variable == "z"
    assert "yhat = tanh(z)" in result.paragraph


def test_the_famous_fused_delta_is_correct_for_dE_dz():
    # The fused result: with a sigmoid output, dE/dz = yhat - y.
    assert check_formula("yhat - y", loss="bce", activation="sigmoid").correct


# --- whole-formula relations --------------------------------------------------------------------


def test_dropped_leading_minus_is_a_sign_flip():
    result = check_formula("y/yhat - (1-y)/(1-yhat)", loss="bce")
    assert result.kind == "sign_flipped" and "leading minus" in result.paragraph


def test_mse_factor_two_and_one_half():
    half = check_formula("yhat - y", loss="mse")
    assert half.kind == "scaled" and "power rule brings down the 2" in half.paragraph
    double = check_formula("2*(yhat - y)", loss="mse", half=True)
    assert double.kind == "scaled" and "½ cancels the 2" in double.paragraph
    assert check_formula("yhat - y", loss="mse", half=True).correct


def test_mean_loss_and_the_forgotten_one_over_m():
    assert check_formula("-(y/yhat - (1-y)/(1-yhat))/m", loss="bce", mean=True).correct
    result = check_formula("-(y/yhat - (1-y)/(1-yhat))", loss="bce", mean=True)
    assert result.kind == "mean_forgotten" and "1/m of the mean" in result.paragraph
    extra = check_formula("(yhat - y)/m", loss="mse", half=True)
    assert extra.kind == "scaled" and "mean=True" in extra.paragraph


def test_extra_and_missing_activation_factor():
    extra = check_formula("(yhat - y)*yhat*(1 - yhat)", loss="bce", activation="sigmoid")
    assert extra.kind == "derivative_twice"
    missing = check_formula("(yhat - y)/(yhat*(1 - yhat))", loss="bce", activation="sigmoid")
    assert missing.kind == "derivative_missing" and "dE/dyhat, not dE/dz" in missing.paragraph


def test_dE_dz_given_for_dE_dyhat_is_named_as_the_wrong_variable():
    result = check_formula("yhat - y", loss="bce", wrt="yhat")
    assert result.kind == "wrong_variable"
    assert "activation='sigmoid'" in result.paragraph


# --- term by term -------------------------------------------------------------------------------


def test_missing_factor_in_one_term():
    result = check_formula("-(y/yhat - 1/(1-yhat))", loss="bce")
    assert result.kind == "term_factor"
    [finding] = result.findings
    assert finding.problem == "missing factor 1 - y" and finding.position == "second term"


def test_missing_term():
    result = check_formula("-y/yhat", loss="bce")
    assert result.kind == "term_missing"
    assert result.findings[0].problem == "missing term"
    assert "(1 - y)/(1 - yhat), is missing" in result.paragraph


def test_extra_term():
    result = check_formula("-(y/yhat - (1-y)/(1-yhat)) + yhat", loss="bce")
    assert result.kind == "term_missing"
    assert any(f.problem == "extra term" and f.term == "yhat" for f in result.findings)


def test_product_rule_term_with_the_wrong_sign():
    result = check_formula("sigmoid(x)*(1 - x*(1 - sigmoid(x)))", function="x*sigmoid(x)")
    assert result.kind == "term_sign"
    assert "product rule" in result.paragraph
    assert check_formula("sigmoid(x)*(1 + x*(1 - sigmoid(x)))", function="x*sigmoid(x)").correct


def test_power_rule_and_its_inner_derivative():
    result = check_formula("2*(y - yhat)", loss="mse")
    assert result.kind == "sign_flipped" and "update" in result.paragraph
    result = check_formula("-(w*x - y)*x + x", function="(w*x - y)^2/2 + x*w", wrt="w")
    assert not result.correct
    rules = " ".join(f.rule or "" for f in result.findings)
    assert "power rule" in rules and "inner derivative is x" in rules


def test_activation_alone_checks_its_own_derivative():
    assert check_formula("yhat*(1 - yhat)", activation="sigmoid").correct
    assert check_formula("1 - yhat^2", activation="tanh").correct
    assert not check_formula("1 - yhat", activation="tanh").correct


def test_activation_without_an_output_form_compares_in_z():
    result = check_formula("sigmoid(z) + z*sigmoid(z)*(1 - sigmoid(z))", activation="silu")
    assert result.correct


def test_unexplained_difference_is_stated():
    result = check_formula("-2*yhat", loss="bce")
    assert result.kind is None and "minus the derivative is" in result.paragraph


def test_numeric_fallback_decides_equality_when_needed():
    # (1 - tanh(z)^2) written as a sech: SymPy's cheap routes may not see it; random points do.
    result = check_formula("1/cosh(x)^2", function="tanh(x)")
    assert result.correct


# --- input handling -----------------------------------------------------------------------------


def test_json_round_trip():
    data = json.loads(check_formula("-(y/yhat + (1-y)/(1-yhat))", loss="bce").to_json())
    assert data["correct"] is False and data["kind"] == "term_sign"
    assert data["findings"][0]["position"] == "second term"


@pytest.mark.parametrize("text", ["__import__('os').system('echo hi')", "yhat.real", "lambda: 1"])
def test_user_text_is_never_evaluated(text):
    with pytest.raises(FormulaError):
        check_formula(text, loss="bce")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "say what the formula is the derivative of"),
        ({"loss": "bce", "function": "x"}, "not both"),
        ({"loss": "bce", "activation": "tanh", "wrt": "yhat"}, "formula is dE/dz"),
        ({"loss": "nope"}, "loss 'nope'"),
        ({"loss": "ce", "activation": "log_softmax"}, "couples every class"),
        ({"loss": "bce", "wrt": "x"}, "not x"),
        ({"function": "z*w"}, "wrt="),
    ],
)
def test_contradictory_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_formula("yhat - y" if "function" not in kwargs else "x", **kwargs)


def test_function_defaults_to_x_or_the_only_variable():
    assert check_formula("2*x", function="x^2 + w").correct
    assert check_formula("cos(z)", function="sin(z)").correct


def test_the_bce_sign_slip_written_through_the_activation_is_named():
    # dE/dz written as (the sign-slipped dE/dyhat)·σ'(z): the sign of the (1 - y) term is named.
    result = check_formula("-(y/yhat + (1-y)/(1-yhat))*yhat*(1-yhat)", loss="bce",
                           activation="sigmoid")
    assert result.kind == "term_sign"
    [finding] = result.findings
    assert finding.position == "second term" and finding.term == "(1 - y)/(1 - yhat)"


def test_a_short_ratio_names_the_missing_factor():
    # tanh' written as 1 - yhat instead of 1 - yhat²: the factor 1 + yhat is missing.
    result = check_formula("2*(yhat-y)*(1-yhat)", loss="mse", activation="tanh")
    assert result.kind == "wrong_factor" and "the factor 1 + yhat is missing" in result.paragraph


def test_two_constant_causes_at_once():
    result = check_formula("(yhat-y)*(1-yhat^2)", loss="mse", activation="tanh", mean=True)
    assert result.kind == "scaled" and "m/2 times" in result.paragraph
    assert "power rule brings down the 2" in result.paragraph and "1/m" in result.paragraph


# --- formulas in z, learners' relations, the update direction, softmax in vector form ---------


@pytest.mark.parametrize(("formula", "options"), [
    ("sigmoid(z) - y", {"loss": "bce", "activation": "sigmoid"}),
    ("1 - tanh(z)**2", {"activation": "tanh"}),
    ("1 - tanh(z)**2", {"activation": "tanh", "function": "yhat"}),
    ("(2/(e^z + e^-z))^2", {"activation": "tanh"}),
    ("sigmoid(z)*(1 - sigmoid(z))", {"activation": "sigmoid"}),
    ("exp(-z)/(1 + exp(-z))^2", {"activation": "sigmoid"}),
])
def test_a_right_answer_written_in_z_is_correct(formula, options):
    result = check_formula(formula, **options)
    assert result.correct, result.paragraph


def test_a_wrong_answer_written_in_z_is_compared_in_z():
    result = check_formula("(1/(e^z + e^-z))^2", activation="tanh")
    assert not result.correct and "compared in z" in result.paragraph
    result = check_formula("sigmoid(z)", loss="bce", activation="sigmoid")
    assert not result.correct and "should not be there" not in result.paragraph


def test_dE_dw_handed_in_for_dE_dz_is_named():
    result = check_formula("x*(yhat - y)/m", loss="bce", activation="sigmoid", mean=True)
    assert result.kind == "wrong_variable"
    assert "dE/dw = dE/dz·x" in result.paragraph and "mean=True" not in result.paragraph
    result = check_formula("yhat - y", function="(sigmoid(w*x) - y)**2/2", wrt="w")
    assert not result.correct


def test_the_mean_applied_twice_is_named_as_such():
    result = check_formula("(yhat - y)/m^2", loss="bce", activation="sigmoid", mean=True)
    assert result.kind == "mean_twice" and "applied twice" in result.paragraph
    assert "mean=True" not in result.paragraph


@pytest.mark.parametrize(("function", "formula", "inner"), [
    ("exp(-x)", "exp(-x)", "-1"),
    ("sin(x^2)", "cos(x^2)", "2x"),
    ("log(1 - x)", "1/(1 - x)", "-1"),
    ("(3*x + 1)^4", "4*(3*x + 1)^3", "3"),
])
def test_the_chain_rules_inner_derivative_dropped(function, formula, inner):
    result = check_formula(formula, function=function)
    assert result.kind == "inner_derivative_dropped", result.paragraph
    assert f"= {inner}." in result.paragraph


@pytest.mark.parametrize(("formula", "options"), [
    ("y - yhat", {"loss": "mse", "half": True}),
    ("t - o", {"loss": "mse", "half": True}),
    ("y - yhat", {"loss": "bce", "activation": "sigmoid"}),
    ("2*(y - yhat)", {"loss": "mse"}),
])
def test_target_minus_output_is_the_update_direction(formula, options):
    result = check_formula(formula, **options)
    assert result.kind == "sign_flipped", result.paragraph
    assert "negative gradient" in result.paragraph and "update" in result.paragraph


def test_softmax_cross_entropy_in_vector_form():
    right = check_formula("p - t", loss="ce", activation="softmax")
    assert right.correct and right.variable == "z"
    wrong = check_formula("t - p", loss="ce", activation="softmax")
    assert wrong.kind == "sign_flipped" and "negative gradient" in wrong.paragraph
    diagonal = check_formula("2*(p - t)*p*(1 - p)", loss="mse", activation="softmax")
    assert diagonal.kind == "softmax_diagonal"
    assert check_formula("(p - t)/m", loss="ce", activation="softmax", mean=True).correct
    assert check_formula("p - t*sum(t)", loss="ce", activation="softmax").correct


@pytest.mark.parametrize("formula", ["yhat - y", "relu(z) - y"])
def test_relu_is_compared_in_z_where_it_is_flat(formula):
    """yhat = relu(z) is 0 for every z < 0, where dE/dz is 0 and yhat - y is -y: a comparison in
    yhat alone would never look there."""
    result = check_formula(formula, loss="mse", activation="relu", half=True)
    assert not result.correct and result.kind == "derivative_missing"
    assert check_formula("(relu(z) - y)*relu(z)/z", loss="mse", activation="relu",
                         half=True).correct


# --- correct forms for the other losses and activations -------------------------------------------


def test_check_formula_correct_forms_are_not_flagged_for_other_losses():
    assert check_formula("2*(yhat - y)", loss="mse").correct
    assert check_formula("yhat - y", loss="mse", half=True).correct
    assert check_formula("(1 + yhat)*(yhat - y)/yhat", loss="bce", activation="tanh").correct
    assert check_formula("yhat*(1 - yhat)*(yhat - y)", loss="mse", half=True,
                         activation="sigmoid").correct


# --- piecewise functions: relu and binary_step inside a formula -----------------------------------


@pytest.mark.parametrize(("function", "claim"), [("relu(x)**2", "2*x"),
                                                 ("binary_step(x)*x", "0")])
def test_a_wrong_derivative_of_a_piecewise_function_is_answered(function, claim):
    """relu and binary_step are Piecewise in SymPy: their (expression, condition) pairs are no
    inner function whose derivative could be dropped, and the check must still answer."""
    result = check_formula(claim, function=function)
    assert not result.correct
    assert "otherwise" in result.paragraph  # the piecewise derivative is written out


@pytest.mark.parametrize(("function", "claim"), [("relu(x)**2", "2*relu(x)"),
                                                 ("binary_step(x)*x", "binary_step(x)"),
                                                 ("relu(x)**3", "3*relu(x)**2")])
def test_the_right_derivative_of_a_piecewise_function_is_correct(function, claim):
    assert check_formula(claim, function=function).correct


def test_a_piecewise_function_under_a_power_still_names_a_dropped_inner_derivative():
    # d/dx relu(x)**2 is 2 relu(x); with an inner 3x: d/dx relu(3x)**2 = 6 relu(3x)
    result = check_formula("2*relu(3*x)", function="relu(3*x)**2")
    assert not result.correct


# --- the derivative of the other activation, in output form ------------------------------------


@pytest.mark.parametrize(("formula", "options", "words"), [
    ("(yhat - y)*yhat*(1 - yhat)", {"loss": "mse", "half": True, "activation": "tanh"},
     "yhat(1 - yhat) is sigmoid' written through its output, where the activation is tanh"),
    ("(yhat - y)*(1 - yhat**2)", {"loss": "mse", "half": True, "activation": "sigmoid"},
     "1 - yhat² is tanh' written through its output, where the activation is sigmoid"),
    ("-(y/yhat - (1-y)/(1-yhat))*(1 - yhat**2)", {"loss": "bce", "activation": "sigmoid"},
     "tanh' written through its output"),
])
def test_the_other_activations_output_form_is_named(formula, options, words):
    result = check_formula(formula, **options)
    assert not result.correct and result.kind == "derivative_wrong_activation"
    assert words in result.paragraph


# --- another activation's fused shortcut --------------------------------------------------------


@pytest.mark.parametrize("formula", ["yhat - y", "-(y - yhat)", "(yhat - y)"])
def test_the_sigmoid_bce_shortcut_after_tanh_is_named(formula):
    result = check_formula(formula, loss="bce", activation="tanh")
    assert not result.correct and result.kind == "shortcut_wrong_activation"
    text = " ".join(result.paragraph.split())
    assert "shortcut of a sigmoid output" in text
    assert "tanh' = 1 - yhat², not yhat(1 - yhat)" in text
    assert "(1 + yhat)(yhat - y)/yhat" in text  # what dE/dz is for tanh + BCE
    # the derive panel's warnings: BCE takes the log of a negative number, and a pole at 0
    assert "Domain conflict: tanh's range (-1, 1) is not inside bce's domain (0, 1)" in text
    assert "divides by zero at yhat = 0" in text
    assert "missing factor" not in text and "extra factor" not in text
    assert result.expected == "(1 + yhat)(yhat - y)/yhat"


def test_the_sigmoid_bce_shortcut_still_passes_for_a_sigmoid():
    assert check_formula("yhat - y", loss="bce", activation="sigmoid").correct
    mean = check_formula("(yhat - y)/m", loss="bce", activation="sigmoid", mean=True)
    assert mean.correct


def test_the_shortcut_of_a_mean_after_tanh_is_named_too():
    result = check_formula("(yhat - y)/m", loss="bce", activation="tanh", mean=True)
    assert result.kind == "shortcut_wrong_activation"


def test_the_shortcut_kind_is_not_given_to_other_mistakes():
    # dE/dyhat of MSE after a sigmoid: the activation's derivative is missing, as before
    missing = check_formula("2*(yhat - y)", loss="mse", activation="sigmoid")
    assert missing.kind == "derivative_missing"
    # a wrong formula that is no shortcut
    other = check_formula("yhat + y", loss="bce", activation="tanh")
    assert other.kind != "shortcut_wrong_activation"
