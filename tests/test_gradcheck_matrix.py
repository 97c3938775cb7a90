"""check_matrix: hand-written matrix gradients of a dense layer or network, right or wrong, and
the mistake each wrong one must be called by."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from chainrule import _oracle as oracle
from chainrule.cli import main
from chainrule.gradient_check.matrix import MatrixFormulaError, check_matrix
from chainrule.gradient_check.matrix.check import build_spec
from chainrule.gradient_check.matrix.network import backward_pass, draw_configs, finite_difference

LAYER_BCE = {"activation": "sigmoid", "loss": "bce"}
NET_BCE = {"network": "relu,sigmoid", "loss": "bce", "wrt": "W1"}
NET_TANH = {"network": "tanh,sigmoid", "loss": "bce", "wrt": "W1"}
DEEP = {"network": "relu,tanh,sigmoid", "loss": "bce"}
DEEP4 = {"network": "tanh,relu,sigmoid,sigmoid", "loss": "mse", "half": True}

# Each wrong gradient, the options, the kind it must get and words its sentence must hold.
CATALOGUE = [
    ("transpose_output", "(Yhat - Y).T @ X / m", LAYER_BCE, "transposed",
     "transpose of dE/dW"),
    ("transpose_extra", "X.T @ (Yhat - Y).T / m", LAYER_BCE, "transpose_extra",
     "The transpose on (Yhat - Y).T is extra"),
    ("transpose_missing_deep", "X.T @ (((Yhat - Y) @ W2) * (Z1 > 0)) / m", NET_BCE,
     "transpose_missing", "(Yhat - Y) @ W2.T fits"),
    ("factor_order", "(Yhat - Y) @ X.T / m", LAYER_BCE, "factor_order",
     "m×k (7×2) and X.T is n×m (3×7)"),
    ("factor_order_deep", "(((Yhat - Y) @ W2.T) * (Z1 > 0)) @ X.T / m", NET_BCE,
     "factor_order", "wrong order"),
    ("mean_forgotten", "X.T @ (Yhat - Y)", LAYER_BCE, "mean_forgotten",
     "1/m of the mean over the batch is missing"),
    ("mean_twice", "X.T @ (Yhat - Y) / m / m", LAYER_BCE, "mean_twice",
     "1/m is applied twice"),
    ("mean_twice_deep", "X.T @ (((Yhat - Y) / m @ W2.T) * (Z1 > 0)) / m", NET_BCE,
     "mean_twice", "1/m is applied twice"),
    ("derivative_missing_hidden", "X.T @ ((Yhat - Y) @ W2.T) / m", NET_BCE,
     "derivative_missing", "relu'(Z1) = (Z1 > 0) is missing"),
    ("derivative_missing_output", "X.T @ (2 * (Yhat - Y)) / m",
     {"activation": "sigmoid", "loss": "mse"}, "derivative_missing",
     "sigmoid'(Z) = Yhat * (1 - Yhat) is missing"),
    ("derivative_of_output", "X.T @ (((Yhat - Y) @ W2.T) * tanh_prime(H1)) / m", NET_TANH,
     "derivative_wrong_array", "tanh_prime(H1) instead of tanh_prime(Z1)"),
    ("output_form_at_input", "X.T @ (((Yhat - Y) @ W2.T) * (1 - Z1**2)) / m", NET_TANH,
     "derivative_wrong_array", "1 - Z1**2"),
    ("derivative_of_another_activation",
     "X.T @ (((Yhat - Y) @ W2.T) * sigmoid_prime(Z1)) / m", NET_TANH,
     "derivative_wrong_activation", "sigmoid'(Z1) where layer 1's activation is tanh"),
    ("derivative_twice", "X.T @ ((Yhat - Y) * Yhat * (1 - Yhat)) / m", LAYER_BCE,
     "derivative_twice", "applied twice"),
    ("sign_update_direction", "X.T @ (Y - Yhat) / m", LAYER_BCE, "sign_flipped",
     "negative gradient"),
    ("sign_deep", "X.T @ (((Y - Yhat) @ W2.T) * (1 - H1**2)) / m", NET_TANH,
     "sign_flipped", "direction of the gradient-descent update"),
    ("softmax_diagonal", "X.T @ (2 * (Yhat - Y) * Yhat * (1 - Yhat)) / m",
     {"activation": "softmax", "loss": "mse"}, "softmax_diagonal", "diag(p) - p pᵀ"),
    ("wrong_layer", "H1.T @ (Yhat - Y) / m", NET_TANH, "wrong_layer",
     "gradient of layer 2, not of layer 1"),
    ("delta_for_weights", "(Yhat - Y) / m", LAYER_BCE, "wrong_variable",
     "This is dE/dZ (the layer's delta), not dE/dW"),
    ("bias_not_summed", "(Yhat - Y) / m", {**LAYER_BCE, "wrt": "b"}, "bias_not_summed",
     "sum over the batch is missing"),
    ("bias_wrong_axis", "sum(Yhat - Y, axis=1) / m", {**LAYER_BCE, "wrt": "b"},
     "bias_wrong_axis", "axis=1"),
    ("deep_missing_middle", "X.T @ ((((Yhat - Y) @ W3.T) @ W2.T) * (Z1 > 0)) / m",
     {**DEEP, "wrt": "W1"}, "derivative_missing", "tanh'(Z2) = (1 - H2**2) is missing"),
    ("deep_wrong_layer", "H2.T @ (Yhat - Y) / m", {**DEEP, "wrt": "W2"}, "wrong_layer",
     "gradient of layer 3, not of layer 2"),
    ("sigmoid_output_form_for_tanh", "X.T @ (((Yhat - Y) @ W2.T) * (H1 * (1 - H1))) / m",
     NET_TANH, "derivative_wrong_activation",
     "in output form: H1 * (1 - H1) is sigmoid' written through its output, where layer 1's "
     "activation is tanh"),
    ("tanh_output_form_for_sigmoid", "X.T @ (((Yhat - Y) @ W2.T) * (1 - H1**2)) / m",
     {**NET_TANH, "network": "sigmoid,sigmoid"}, "derivative_wrong_activation",
     "(1 - H1**2) is tanh' written through its output, where layer 1's activation is sigmoid"),
    ("preactivation_for_activation", "Z1.T @ (Yhat - Y) / m", {**NET_TANH, "wrt": "W2"},
     "preactivation_for_activation", "The pre-activation Z1 is used where the activation H1 "
     "belongs"),
    ("preactivation_deep", "Z2.T @ (Yhat - Y) / m", {**DEEP, "wrt": "W3"},
     "preactivation_for_activation", "dE/dW3 = H2.T @ D3 / m, not Z2.T @ D3 / m"),
    ("relu_as_its_own_derivative", "X.T @ (((Yhat - Y) @ W2.T) * relu(Z1)) / m", NET_BCE,
     "activation_for_derivative", "relu(Z1) where the chain rule through H1 = relu(Z1) "
     "multiplies by relu'(Z1) = (Z1 > 0)"),
    ("bias_wrong_axis_keepdims", "np.sum(Yhat - Y, axis=1, keepdims=True) / m",
     {**NET_BCE, "wrt": "b2"}, "bias_wrong_axis", "axis=1"),
    ("softmax_derivative_after_fused_delta", "(P - T) * P * (1 - P) / m",
     {"activation": "softmax", "loss": "ce", "wrt": "Z"}, "derivative_twice",
     "Softmax has no element-wise derivative: Yhat * (1 - Yhat) is the diagonal of its "
     "Jacobian diag(p) - p pᵀ, and it is multiplied in after the fused delta Yhat - Y"),
    ("deep4_halved", "H1.T @ ((((Yhat - Y) * Yhat * (1 - Yhat)) @ W4.T * H3 * (1 - H3)) @ W3.T"
     " * (Z2 > 0)) / m / 2", {**DEEP4, "wrt": "W2"}, "scaled", "2"),
]


@pytest.mark.parametrize(("name", "formula", "options", "kind", "words"), CATALOGUE,
                         ids=[c[0] for c in CATALOGUE])
def test_each_wrong_gradient_gets_its_diagnosis(name, formula, options, kind, words):
    result = check_matrix(formula, **options)
    assert not result.correct
    assert result.kind == kind, result.paragraph
    assert words in result.paragraph, result.paragraph
    assert result.findings and result.findings[0].term == " ".join(formula.split())


def test_the_catalogue_covers_every_kind_asked_for():
    kinds = {c[3] for c in CATALOGUE}
    assert len(CATALOGUE) >= 15
    assert {"transposed", "transpose_extra", "transpose_missing", "factor_order",
            "mean_forgotten", "mean_twice", "derivative_missing", "derivative_wrong_array",
            "sign_flipped", "softmax_diagonal", "wrong_layer"} <= kinds


ACCEPTED = [
    ("X.T @ (sigmoid(X @ W) - Y) / m", LAYER_BCE),
    ("X.T @ (sigmoid(X @ W + b) - Y) / m", LAYER_BCE),
    ("((Yhat - Y).T @ X).T / m", LAYER_BCE),
    ("X.transpose() @ (P - T) / m", LAYER_BCE),
    ("np.dot", None),  # placeholder removed below
    ("sum(Yhat - Y, axis=0) / m", {**LAYER_BCE, "wrt": "b"}),
    ("(Yhat - Y).sum(axis=0) / m", {**LAYER_BCE, "wrt": "b"}),
    ("np.mean(Yhat - Y, axis=0)", {**LAYER_BCE, "wrt": "b"}),
    ("sum(Yhat - Y, axis=0, keepdims=True) / m", {**LAYER_BCE, "wrt": "b"}),
    ("X.T @ (Yhat - Y) / m", {"activation": "softmax", "loss": "ce"}),
    ("2 * X.T @ (X @ W - Y) / m", {"activation": "identity", "loss": "mse"}),
    ("X.T @ (Z - Y) / m", {"activation": "linear", "loss": "mse", "half": True}),
    ("X.T @ (Yhat - Y)", {**LAYER_BCE, "mean": False}),
    ("X.T @ (((Yhat - Y) @ W2.T) * (Z1 > 0)) / m", NET_BCE),
    ("X.T @ (((Yhat - Y) @ W2.T) * relu_prime(Z1)) / m", NET_BCE),
    ("X.T @ (((Yhat - Y) @ W2.T) * (1 - H1**2)) / m", NET_TANH),
    ("X.T @ (((Yhat - Y) @ W2.T) * tanh_prime(Z1)) / m", NET_TANH),
    ("(X.T @ ((Yhat - Y) @ W2.T * (1 - tanh(Z1)**2))) / m", NET_TANH),
    ("H1.T @ (Yhat - Y) / m", {**NET_TANH, "wrt": "W2"}),
    ("np.sum((Yhat - Y) @ W2.T * (1 - H1**2), axis=0) / m", {**NET_TANH, "wrt": "b1"}),
    ("((Yhat - Y) @ W2.T) / m", {**NET_TANH, "wrt": "H1"}),
    ("X.T @ ((((Yhat - Y) @ W3.T * (1 - H2**2)) @ W2.T) * (Z1 > 0)) / m",
     {**DEEP, "wrt": "W1"}),
]
ACCEPTED = [a for a in ACCEPTED if a[1] is not None]


@pytest.mark.parametrize(("formula", "options"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_correct_forms_written_differently_are_accepted(formula, options):
    result = check_matrix(formula, **options)
    assert result.correct, result.paragraph
    assert result.kind is None and result.paragraph.startswith("Correct: ")


PAIRS = [(a, "mse") for a in ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu",
                               "selu", "softplus", "softsign", "gelu", "silu", "mish",
                               "softmax")]
PAIRS += [("sigmoid", "bce"), ("softmax", "bce"), ("sigmoid", "ce"), ("softmax", "ce")]


@pytest.mark.parametrize(("acts", "loss"), PAIRS)
def test_the_printed_gradient_is_judged_correct_for_every_activation(acts, loss):
    """The derivative the checker prints, with its named deltas written in, is the gradient:
    compared with finite differences by check_matrix itself."""
    result = check_matrix("X.T @ (Yhat - Y) / m", activation=acts, loss=loss)
    formula = _inline(result.derivative)
    assert check_matrix(formula, activation=acts, loss=loss).correct, formula


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("wrt", ["W1", "b1", "Z1"])
def test_the_printed_gradient_through_every_depth(depth, wrt):
    acts = ",".join([*["tanh", "relu", "sigmoid", "elu"][:depth - 1], "sigmoid"])
    result = check_matrix("X.T @ (Yhat - Y) / m", network=acts, loss="bce", wrt=wrt)
    formula = _inline(result.derivative)
    assert check_matrix(formula, network=acts, loss="bce", wrt=wrt).correct, formula


def _inline(text: str) -> str:
    """'X.T @ D1 where D1 = (D2 @ W2.T) * (Z1 > 0), D2 = ...' with every delta written in."""
    head, _, defs = text.partition(" where ")
    if not defs:
        return head
    definitions = {}
    for part in re.split(r", (?=D\d* = )", defs):
        name, _, value = part.partition(" = ")
        if " with G = " in value:
            value, _, upstream = value.partition(" with G = ")
            value = value.replace("G", f"({upstream})")
        definitions[name] = value
    for _ in range(len(definitions) + 1):
        for name, value in definitions.items():
            head = re.sub(rf"\b{name}\b", f"({value})", head)
    return head


@pytest.mark.parametrize("acts", ["tanh,sigmoid", "relu,relu,softmax", "sigmoid,elu,identity"])
def test_the_backward_pass_meets_finite_differences(acts):
    """The checker's own backward pass against float64 central differences of the loss."""
    loss = "ce" if acts.endswith("softmax") else ("mse" if acts.endswith("identity") else "bce")
    spec = build_spec(None, loss, acts, "W1", True, False, False)
    for cfg in draw_configs(spec, True, seed=3):
        grads = backward_pass(spec, cfg)
        for node in cfg.nodes:
            if node == "H0":
                continue
            numeric = finite_difference(spec, cfg, node)
            np.testing.assert_allclose(grads[node], numeric, rtol=1e-7, atol=1e-9)


def test_the_oracle_differences_a_known_gradient_and_starts_at_any_layer():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2))
    numeric = oracle.five_point_gradient(lambda v: float(np.sum(np.sin(v))), x.copy(), 1e-4)
    np.testing.assert_allclose(numeric, np.cos(x), rtol=1e-9)
    Ws = [rng.normal(size=(2, 3)), rng.normal(size=(3, 2))]
    bs = [np.zeros(3), np.zeros(2)]
    full = oracle.forward([np.tanh, np.tanh], x, Ws, bs)
    tail = oracle.forward([np.tanh, np.tanh], full["H1"], Ws, bs, first=2)
    np.testing.assert_array_equal(tail["H2"], full["H2"])
    assert oracle.loss_value("mse", full["H2"], 0 * full["H2"], mean=False) == pytest.approx(
        3 * oracle.loss_value("mse", full["H2"], 0 * full["H2"]))


def test_m_equals_one_and_two_outputs_are_among_the_checked_shapes():
    result = check_matrix("X.T @ (Yhat - Y) / m", activation="softmax", loss="ce")
    assert any(c["m"] == 1 for c in result.checked)
    assert all(c["sizes"][-1] >= 2 for c in result.checked)
    assert any(c["sizes"][-1] == 2 for c in result.checked)


def test_a_formula_true_only_when_m_is_one_is_refused():
    # Without the 1/m, the formula is right for m = 1 only.
    assert not check_matrix("X.T @ (Yhat - Y)", **LAYER_BCE).correct


@pytest.mark.parametrize(("formula", "options", "words"), [
    ("X.T @ (Yhat - Q) / m", LAYER_BCE, "unknown name 'Q'"),
    ("X.T @ (Yhat - Y) / m", {"network": "relu,sigmoid", "loss": "bce", "wrt": "W"},
     "cannot take the gradient with respect to 'W'"),
    ("X.T @ (Yhat - Y) / W", {"network": "relu,sigmoid", "loss": "bce", "wrt": "W1"},
     "number the layer"),
    ("__import__('os')", LAYER_BCE, "unknown function"),
    ("X.__class__", LAYER_BCE, "unsupported attribute"),
    ("X[0]", LAYER_BCE, "unsupported syntax (Subscript)"),
    ("lambda: 0", LAYER_BCE, "unsupported syntax (Lambda)"),
    ("X.T @ (Yhat - Y) ^ 2", LAYER_BCE, "write ** for a power"),
    ("X.T @ (Yhat - Y) / m", {"activation": "tanh", "loss": "bce"}, "bce needs outputs in (0, 1)"),
    ("X.T @ (Yhat - Y) / m", {"activation": "sigmoid", "loss": "hinge"}, "unknown loss 'hinge'"),
    ("X.T @ (Yhat - Y) / m", {"activation": "sigmod", "loss": "bce"}, "unknown activation"),
    ("X.T @ (softmax_prime(Z) * (Yhat - Y))", {"activation": "softmax", "loss": "mse"},
     "diag(p) - p pᵀ"),
    ("X.T @ log(Yhat - Yhat) / m", LAYER_BCE, "NaN or infinite"),
    ("X.T @ (Yhat - Y) / 0", LAYER_BCE, "NaN or infinite"),
    ("", LAYER_BCE, "empty"),
    ("X.T @ (Yhat - Y", LAYER_BCE, "cannot parse"),
    ("(" * 60 + "X" + ")" * 60, LAYER_BCE, "nested deeper"),
    ("X" + " + X" * 200, LAYER_BCE, "limit is 500"),
])
def test_bad_input_gets_one_clear_line(formula, options, words):
    with pytest.raises(MatrixFormulaError) as info:
        check_matrix(formula, **options)
    message = str(info.value)
    assert words in message and "\n" not in message


@pytest.mark.parametrize("scale", ["1e3", "1e9", "0", "-1e9"])
def test_extreme_constants_give_a_verdict_never_a_crash(scale):
    result = check_matrix(f"{scale} * X.T @ (Yhat - Y) / m", **LAYER_BCE)
    assert not result.correct
    assert np.isfinite(float(scale)) and result.kind in ("scaled", None, "zero",
                                                          "mean_forgotten")


def test_shapes_that_do_not_add_up_are_a_verdict_with_the_shapes():
    result = check_matrix("X.T @ ((Yhat - Y) + H1) / m", **NET_BCE)
    assert not result.correct and result.kind == "shape"
    assert "m×k" in result.paragraph and "m×h1" in result.paragraph


def test_json_and_text_faces_agree():
    argv = ["check", "--network", "relu,sigmoid", "--loss", "bce", "--wrt", "W1",
            "X.T @ ((Yhat - Y) @ W2.T) / m"]
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--format", "json"])
    data = json.loads(out.getvalue())
    assert code == 1 and data["correct"] is False and data["kind"] == "derivative_missing"
    assert data["shapes"]["W1"] == "n×h1" and data["shapes"]["Yhat"] == "m×k"
    assert set(data) >= {"correct", "formula", "derivative", "simplified", "variable", "of",
                         "method", "kind", "where", "expected", "findings", "sentence",
                         "shapes", "checked"}
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(argv) == 1
    assert " ".join(text.getvalue().split()) == " ".join(data["sentence"].split())


def test_cli_layer_and_network_forms(capsys):
    assert main(["check", "--layer", "--activation", "sigmoid", "--loss", "bce",
                 "X.T @ (sigmoid(X @ W) - Y) / m"]) == 0
    assert capsys.readouterr().out.startswith("Correct: ")
    # A formula with @ is a matrix formula without --layer.
    assert main(["check", "--activation", "sigmoid", "--loss", "bce", "X.T @ (Y - Yhat) / m"]) == 1
    assert "negative gradient" in capsys.readouterr().out
    # a formula that cannot be read is bad usage
    assert main(["check", "--network", "relu,sigmoid", "--loss", "bce", "--wrt", "W1",
                 "X.T @ (Yhat - Q) / m"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("chainrule check: error: unknown name 'Q'") and err.count("\n") == 1
    assert main(["check", "--layer", "--loss", "mse", "--sum", "2 * X.T @ (Z - Y)"]) == 0


def test_python_api_is_exposed():
    import chainrule
    from chainrule.gradient_check import MatrixCheck

    result = chainrule.check_matrix("X.T @ (Yhat - Y) / m", activation="sigmoid", loss="bce")
    assert isinstance(result, MatrixCheck) and result.correct
    assert str(result) == result.paragraph


@pytest.mark.parametrize(("formula", "options", "kind", "then"), [
    ("(Yhat - Y) @ X.T / m", LAYER_BCE, "factor_order",
     "X.T @ (Yhat - Y) / m, the gradient is right"),
    ("X @ (Yhat - Y)", LAYER_BCE, "transpose_missing", "1/m of the mean over the batch is missing"),
    ("np.dot(Yhat - Y, X) / m", LAYER_BCE, "transpose_missing", "transpose of dE/dW"),
    ("X @ (((Yhat - Y) @ W2) * (Z1 > 0)) / m", NET_BCE, "transpose_missing",
     "X.T @ ((Yhat - Y) @ W2.T * (Z1 > 0)) / m, the gradient is right"),
])
def test_a_shape_fix_is_followed_by_what_remains_wrong(formula, options, kind, then):
    result = check_matrix(formula, **options)
    assert result.kind == kind and then in result.paragraph, result.paragraph


@pytest.mark.parametrize("formula", [
    "np.dot(X.T, Yhat - Y) / m",
    "X.T.dot(Yhat - Y) / m",
    "np.matmul(X.T, P - T) / m",
    "1/m * X.T @ (Yhat - Y)",
])
def test_numpy_spellings_of_the_product_are_accepted(formula):
    assert check_matrix(formula, **LAYER_BCE).correct


@pytest.mark.parametrize("formula", [
    "X.T @ (((Yhat - Y) @ W2.T) * (Z1 > 0).astype(float)) / m",
    "X.T @ np.multiply((Yhat - Y) @ W2.T, np.where(Z1 > 0, 1, 0)) / m",
])
def test_numpy_spellings_of_the_relu_derivative(formula):
    assert check_matrix(formula, **NET_BCE).correct


@pytest.mark.parametrize(("argv", "words"), [
    (["--layer", "--loss", "bce", "--activation", "sigmoid", "--mean", "--sum",
      "X.T @ (Yhat - Y)"], "--mean and --sum contradict each other"),
    (["--loss", "bce", "--sum", "yhat - y"], "--sum applies to matrix formulas"),
    (["--layer", "--function", "x", "X.T @ Y"], "--function is for one-variable formulas"),
    (["--layer", "--activation", "sigmoid", "X.T @ (Yhat - Y)"], "say which loss"),
    (["--network", "relu,softmax,sigmoid", "--loss", "bce", "X.T @ Y"],
     "softmax is an output activation"),
    (["--network", "relu,sigmoid", "--activation", "tanh", "--loss", "bce", "X.T @ Y"],
     "disagrees with the last layer"),
])
def test_cli_contradictions_get_one_line(argv, words, capsys):
    assert main(["check", *argv]) == 2  # options that contradict each other: bad usage
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


# --- one convention for the deltas: the derivation engine's -----------------------------------


@pytest.mark.parametrize(("network", "loss"), [("relu,tanh,sigmoid", "bce"),
                                               ("relu,sigmoid", "mse"), ("tanh,softmax", "ce")])
def test_the_deltas_are_the_engines_without_the_one_over_m(network, loss):
    """D_l = m·dE/dZ_l, as chainrule.derive writes it: the 1/m of the batch mean sits in the
    weight and bias gradients, and the output delta of a fused pair is Yhat - Y."""
    import chainrule

    pytest.importorskip("sympy")
    derived = chainrule.derive(network=network.split(","), loss=loss).to_dict()["result"]
    expected = check_matrix("X", network=network, loss=loss, wrt="W1").expected
    assert expected.startswith("X.T @ D1 / m where ")
    assert derived["dE/dW1"] == "X.T @ D1 / m"
    assert f"D1 = {derived['D1']}" in expected
    assert "/ m," not in expected and not expected.endswith("/ m")
    assert check_matrix("sum(Z2, axis=0)", network=network, loss=loss, wrt="b2").expected \
        .startswith("sum(D2, axis=0) / m where D2 = ")
    if network.endswith("sigmoid") and loss == "bce":
        assert expected.endswith(", D3 = Yhat - Y")


def test_a_summed_loss_has_no_one_over_m_anywhere():
    expected = check_matrix("X", network="relu,sigmoid", loss="bce", wrt="W1", mean=False).expected
    assert expected == "X.T @ D1 where D1 = (D2 @ W2.T) * (Z1 > 0), D2 = Yhat - Y"


@pytest.mark.parametrize(("formula", "gives"), [("(P - T).sum() / m", "gives a number, but"),
                                                ("X", "gives an array of shape m×n, but")])
def test_a_gradient_of_the_wrong_shape_is_described_in_words(formula, gives):
    result = check_matrix(formula, **{**LAYER_BCE, "wrt": "b"})
    assert result.kind == "shape" and gives in result.paragraph
    assert "a a " not in result.paragraph


# --- cross-entropy targets: one-hot rows and soft rows ------------------------------------------


@pytest.mark.parametrize("formula", ["(P - T**2) / m", "(P - (T > 0.5)) / m",
                                     "(P - T**3 * 2 + T) / m"])
def test_a_formula_right_only_for_one_hot_targets_is_wrong(formula):
    """CrossEntropy takes probability rows as targets, not only one-hot ones: T**2 = T holds
    for one-hot rows alone."""
    result = check_matrix(formula, activation="softmax", loss="ce", wrt="Z")
    assert not result.correct, result.paragraph


@pytest.mark.parametrize("formula", ["(P - T) / m", "(P * T.sum(1, keepdims=True)**3 - T) / m"])
def test_a_formula_right_for_every_row_that_sums_to_one_is_right(formula):
    # Σ_k t_k = 1 for every target CrossEntropy accepts, so T 1 = 1 and any power of it is 1
    assert check_matrix(formula, activation="softmax", loss="ce", wrt="Z").correct


def test_the_cross_entropy_targets_hold_a_soft_row_that_sums_to_one():
    spec = build_spec("softmax", "ce", None, "Z", True, False, False)
    for cfg in draw_configs(spec, False, seed=0):
        assert np.allclose(cfg.Y.sum(axis=1), 1.0) and np.all(cfg.Y >= 0)
        assert np.any((cfg.Y > 0) & (cfg.Y < 1))


def test_the_vector_form_judges_soft_targets_too():
    from chainrule.gradient_check import check_formula

    pytest.importorskip("sympy")
    assert not check_formula("p - t**2", loss="ce", activation="softmax").correct
    assert check_formula("p*sum(t)**3 - t", loss="ce", activation="softmax").correct


# --- einsum with literal subscripts, ones with a literal shape -----------------------------------


@pytest.mark.parametrize(("formula", "options"), [
    ('np.einsum("ij,ik->jk", X, Yhat - Y) / m', LAYER_BCE),
    ('np.einsum("ij,ik", X, Yhat - Y) / m', LAYER_BCE),
    ('np.einsum("ij, ik -> jk", X, (((Yhat - Y) @ W2.T) * (Z1 > 0))) / m', NET_BCE),
    ("np.ones((1, m)) @ (Yhat - Y) / m", {**LAYER_BCE, "wrt": "b"}),
    ("np.ones(m) @ (Yhat - Y) / m", {**LAYER_BCE, "wrt": "b"}),
    ("np.ones((1, m)) @ (Yhat - Y) / m", {**NET_BCE, "wrt": "b2"}),
])
def test_einsum_and_ones_are_read(formula, options):
    result = check_matrix(formula, **options)
    assert result.correct, result.paragraph


@pytest.mark.parametrize(("formula", "options", "kind"), [
    ('np.einsum("ij,ik->kj", X, Yhat - Y) / m', LAYER_BCE, "transposed"),
    ('np.einsum("ij,ik->jk", X, Yhat - Y)', LAYER_BCE, "mean_forgotten"),
    ("np.ones((1, m)) @ (Yhat - Y)", {**LAYER_BCE, "wrt": "b"}, "mean_forgotten"),
    ('np.einsum("ij,jk->ik", X, Yhat - Y) / m', LAYER_BCE, "shape"),
])
def test_wrong_einsum_and_ones_forms_are_named(formula, options, kind):
    result = check_matrix(formula, **options)
    assert not result.correct and result.kind == kind, result.paragraph


@pytest.mark.parametrize(("formula", "words"), [
    ("np.einsum(s, X)", "einsum needs its subscripts as a literal string"),
    ('np.einsum("ij->", X, Y)', "the subscripts name 1 operand(s) and 2 follow"),
    ('np.einsum("i...j", X)', "unsupported einsum subscripts"),
    ('np.einsum("abcdefg,a->a", X, Y)', "up to 6 axis letters"),
    ('np.einsum("ij,ik->jk", X, Y, optimize=True)', "literal string"),
    ("np.ones((1, X))", "a size of ones must be a whole number"),
    ("np.ones((1, 1e9))", "a size of ones must be a whole number from 1 to 10000"),
    ("np.ones((1, m, 1))", "one or two sizes"),
    ("np.ones(m, m)", "ones takes one shape"),
])
def test_bad_einsum_and_ones_are_refused_with_the_fix(formula, words):
    with pytest.raises(MatrixFormulaError, match=re.escape(words)):
        check_matrix(formula, **LAYER_BCE)


# --- an unreadable formula is its own error -----------------------------------------------------


@pytest.mark.parametrize("formula", ["X.T @@ Y", "X.T @ (Yhat - Y", "   ", "X +* Y"])
def test_an_unreadable_matrix_formula_raises_the_syntax_error(formula):
    from chainrule._checks import UnreadableFormulaError
    from chainrule.gradient_check.matrix import MatrixFormulaSyntaxError

    with pytest.raises(MatrixFormulaSyntaxError) as info:
        check_matrix(formula, **LAYER_BCE)
    assert isinstance(info.value, MatrixFormulaError | UnreadableFormulaError)


@pytest.mark.parametrize("formula", ["foo(X)", "X.T @ Q", "X[0]"])
def test_a_readable_formula_that_is_refused_is_no_syntax_error(formula):
    from chainrule._checks import UnreadableFormulaError

    with pytest.raises(MatrixFormulaError) as info:
        check_matrix(formula, **LAYER_BCE)
    assert not isinstance(info.value, UnreadableFormulaError)


@pytest.mark.parametrize(("pasted", "options", "correct"), [
    ("Xᵀ @ (Ŷ − Y) / m", {"loss": "bce", "activation": "sigmoid"}, True),
    ("X^T @ (Yhat - Y) / m", {"loss": "bce", "activation": "sigmoid"}, True),
    ("X^{T} @ (Yhat - Y) / m", {"loss": "bce", "activation": "sigmoid"}, True),
    ("(Ŷ − Y) @ Xᵀ / m", {"loss": "bce", "activation": "sigmoid"}, False),  # shapes refuse it
    ("H₁ᵀ @ ((Ŷ − Y) / m)", {"loss": "bce", "network": "relu,sigmoid", "wrt": "W₂"}, True),
    ("X.T @ ((Ŷ − Y) ⊙ (1 − Ŷ ⊙ Ŷ)) / m",
     {"loss": "mse", "activation": "tanh", "half": True}, True),
])
def test_the_pages_matrix_notation_pasted_back_is_read(pasted, options, correct):
    options = {**options, "wrt": options.get("wrt", "W").replace("₂", "2")}
    try:
        result = check_matrix(pasted, **options)
    except MatrixFormulaError:
        assert not correct
        return
    assert result.correct is correct, result
