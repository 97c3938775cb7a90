"""check_layer: hand-written gradients of batch norm, layer norm and attention, checked against
finite differences, with each planted mistake named by its catalogue entry and equivalent
correct forms accepted."""

from __future__ import annotations

import json

import pytest

import chainrule
from chainrule._panels import CHECK, check, values_of
from chainrule.cli import main
from chainrule.gradient_check import MISTAKES, check_layer
from chainrule.gradient_check.matrix import MatrixFormulaError

BN_DX = "gamma / sqrt(var + eps) * (dY - mean(dY, axis=0) - Xhat * mean(dY * Xhat, axis=0))"
LN_DX = ("(dY * gamma - mean(dY * gamma, axis=1, keepdims=True) - Xhat * mean(dY * gamma * "
         "Xhat, axis=1, keepdims=True)) / sqrt(var + eps)")
DS = "(P * (dO @ V.T - sum((dO @ V.T) * P, axis=1, keepdims=True)))"

CORRECT = {
    ("batchnorm", "X"): [
        BN_DX,
        "gamma / sqrt(var + eps) * (dY - sum(dY, axis=0) / m - Xhat * sum(dY * Xhat, axis=0) / m)",
        "(m * dY - dY.sum(axis=0) - Xhat * (dY * Xhat).sum(axis=0)) * gamma / (m * np.sqrt(var "
        "+ eps))",
        # the staged form: the direct term, the mean's and the variance's, in X - mu
        "dY * gamma / sqrt(var + eps) - sum(dY * gamma, axis=0) / sqrt(var + eps) / m + 2 * (X "
        "- mu) / m * (-0.5 * sum(dY * gamma * (X - mu), axis=0) * (var + eps) ** -1.5)",
        "gamma * (var + eps) ** -0.5 * (dY - dY.mean(axis=0, keepdims=True)) - gamma * Xhat * "
        "np.mean(dY * Xhat, axis=0) / sqrt(var + eps)",
    ],
    ("batchnorm", "gamma"): ["sum(dY * Xhat, axis=0)", "(dY * Xhat).sum(axis=0, keepdims=True)",
                             "np.sum(Xhat * dY, 0)", "sum(dY * (X - mu), axis=0) / sqrt(var + eps)",
                             "m * mean(dY * Xhat, axis=0)"],
    ("batchnorm", "beta"): ["sum(dY, axis=0)", "dY.sum(axis=0)",
                            "np.sum(dY, axis=0, keepdims=True)", "m * mean(dY, axis=0)",
                            "sum(dY.T, axis=1)"],
    ("layernorm", "X"): [
        LN_DX,
        "(dY * gamma - sum(dY * gamma, axis=1, keepdims=True) / n - Xhat * sum(dY * gamma * "
        "Xhat, axis=1, keepdims=True) / n) / sqrt(var + eps)",
        "(n * dY * gamma - (dY * gamma).sum(axis=1, keepdims=True) - Xhat * (dY * gamma * "
        "Xhat).sum(axis=1, keepdims=True)) / (n * sqrt(var + eps))",
        "dY * gamma / sqrt(var + eps) - sum(dY * gamma, axis=1, keepdims=True) / sqrt(var + eps)"
        " / n + 2 * (X - mu) / n * (-0.5 * sum(dY * gamma * (X - mu), axis=1, keepdims=True) * "
        "(var + eps) ** -1.5)",
        "(var + eps) ** -0.5 * (gamma * dY - (gamma * dY).mean(axis=1, keepdims=True) - Xhat * "
        "(gamma * dY * Xhat).mean(axis=1, keepdims=True))",
    ],
    ("attention", "Q"): [
        f"{DS} @ K / sqrt(d)",
        "(P * (dO @ V.T) - P * (P * (dO @ V.T)).sum(axis=1, keepdims=True)) @ K / np.sqrt(d)",
        f"{DS} @ (K / d ** 0.5)",
        "(softmax(Q @ K.T / sqrt(d)) * (dO.dot(V.T) - sum(dO.dot(V.T) * softmax(Q @ K.T / "
        "sqrt(d)), axis=1, keepdims=True))) @ K / sqrt(d)",
        f"({DS} @ K) * d ** -0.5",
    ],
    ("attention", "K"): [
        f"{DS}.T @ Q / sqrt(d)", f"(Q.T @ {DS}).T / sqrt(d)", f"transpose({DS}) @ Q / sqrt(d)",
        f"np.matmul({DS}.T, Q) / np.sqrt(d)", f"{DS}.T @ (Q / sqrt(d))",
    ],
    ("attention", "V"): ["P.T @ dO", "(dO.T @ P).T", "np.matmul(P.T, dO)",
                         "softmax(Q @ K.T / sqrt(d)).T @ dO", "transpose(P) @ dO"],
}


@pytest.mark.parametrize("layer, wrt, formula",
                         [(k[0], k[1], f) for k, forms in CORRECT.items() for f in forms])
def test_equivalent_correct_forms_are_accepted(layer, wrt, formula):
    result = check_layer(formula, layer=layer, wrt=wrt)
    assert result.correct, result.sentence
    assert result.kind is None and result.sentence.startswith("Correct:")


PLANTED = [
    ("batchnorm", "X", "gamma / sqrt(var + eps) * (dY - Xhat * mean(dY * Xhat, axis=0))",
     "norm_mean_path_dropped"),
    ("batchnorm", "X", "gamma / sqrt(var + eps) * (dY - mean(dY, axis=0))",
     "norm_variance_path_dropped"),
    ("batchnorm", "X", "gamma * dY / sqrt(var + eps)", "norm_both_paths_dropped"),
    ("batchnorm", "X", BN_DX.replace("mean(dY * Xhat, axis=0)", "sum(dY * Xhat, axis=0) / (m - 1)"),
     "norm_unbiased_variance"),
    ("batchnorm", "X", BN_DX.replace("sqrt(var + eps)", "(sqrt(var) + eps)"),
     "norm_eps_outside_sqrt"),
    ("batchnorm", "X", BN_DX.replace("axis=0", "axis=1, keepdims=True"), "norm_wrong_axis"),
    ("batchnorm", "X", BN_DX.replace("gamma / ", "1 / "), "norm_gamma_forgotten"),
    ("batchnorm", "X", BN_DX.replace("mean(", "sum("), "norm_sum_for_mean"),
    ("batchnorm", "X", BN_DX.replace("mean(dY, axis=0)", "sum(dY, axis=0)"), "norm_sum_for_mean"),
    ("batchnorm", "X", f"-({BN_DX})", "sign_flipped"),
    ("batchnorm", "gamma", "(dY * Xhat).sum(axis=1)", "norm_wrong_axis"),
    ("batchnorm", "gamma", "dY * Xhat", "bias_not_summed"),
    ("batchnorm", "beta", "dY", "bias_not_summed"),
    ("batchnorm", "beta", "sum(dY, axis=1, keepdims=True)", "norm_wrong_axis"),
    ("layernorm", "X", LN_DX.replace("axis=1, keepdims=True", "axis=0"), "norm_wrong_axis"),
    ("layernorm", "X", LN_DX.replace("dY * gamma", "dY"), "norm_gamma_forgotten"),
    ("layernorm", "X", "gamma * " + LN_DX.replace("dY * gamma", "dY"), "norm_gamma_outside_means"),
    ("layernorm", "X", "(dY * gamma - mean(dY * gamma, axis=1, keepdims=True)) / sqrt(var + eps)",
     "norm_variance_path_dropped"),
    ("layernorm", "X", LN_DX.replace("mean(dY * gamma, axis=1, keepdims=True)", "0"),
     "norm_mean_path_dropped"),
    ("layernorm", "X", "dY * gamma / sqrt(var + eps)", "norm_both_paths_dropped"),
    ("layernorm", "X", LN_DX.replace("sqrt(var + eps)", "(sqrt(var) + eps)"),
     "norm_eps_outside_sqrt"),
    ("layernorm", "X", LN_DX.replace("mean(", "sum("), "norm_sum_for_mean"),
    ("attention", "Q", "((dO @ V.T) * P * (1 - P)) @ K / sqrt(d)",
     "attention_softmax_elementwise"),
    ("attention", "K", "((dO @ V.T) * P * (1 - P)).T @ Q / sqrt(d)",
     "attention_softmax_elementwise"),
    ("attention", "Q", f"{DS} @ K", "attention_scale_forgotten"),
    ("attention", "K", f"{DS}.T @ Q", "attention_scale_forgotten"),
    ("attention", "K", f"{DS} @ Q / sqrt(d)", "attention_dk_transpose_missing"),
    ("attention", "V", "P @ dO", "attention_dv_transpose_missing"),
    ("attention", "V", "-P.T @ dO", "sign_flipped"),
    ("attention", "K", f"{DS} @ K / sqrt(d)", "wrong_variable"),
]


@pytest.mark.parametrize("seed", [0, 7])
@pytest.mark.parametrize("layer, wrt, formula, kind", PLANTED)
def test_each_planted_mistake_is_named(layer, wrt, formula, kind, seed):
    result = check_layer(formula, layer=layer, wrt=wrt, seed=seed)
    assert not result.correct
    assert result.kind == kind, result.sentence
    assert MISTAKES[kind].fix in result.sentence
    assert result.where == f"dE/d{wrt}"


@pytest.mark.parametrize("wrt, formula", [
    ("V", "softmax(Q @ K.T / sqrt(d)).T @ dO"),
    ("Q", "(softmax(Q @ K.T / sqrt(d)) * (dO @ V.T - sum((dO @ V.T) * softmax(Q @ K.T / "
          "sqrt(d)), axis=1, keepdims=True))) @ K / sqrt(d)"),
])
def test_the_causal_mask_ignored_is_named_and_the_masked_forms_accepted(wrt, formula):
    assert check_layer(formula, layer="attention", wrt=wrt, causal=True).kind == (
        "attention_mask_ignored")
    assert check_layer(formula, layer="attention", wrt=wrt).correct
    masked = formula.replace("softmax(Q @ K.T / sqrt(d))",
                             "softmax(where(mask > 0, Q @ K.T / sqrt(d), -1e30))")
    assert check_layer(masked, layer="attention", wrt=wrt, causal=True).correct
    assert check_layer(formula.replace("softmax(Q @ K.T / sqrt(d))", "P"), layer="attention",
                       wrt=wrt, causal=True).correct


def test_every_kind_of_the_block_is_named_by_some_planted_formula():
    named = {kind for *_, kind in PLANTED} | {"attention_mask_ignored"}
    block = [k for k in MISTAKES if k.startswith(("norm_", "attention_"))]
    assert set(block) <= named


def test_a_formula_that_no_mistake_explains_says_where_it_differs():
    result = check_layer("dY * 3", layer="batchnorm", wrt="X")
    assert not result.correct and result.kind is None
    assert "No single mistake of the catalogue explains it" in result.sentence


@pytest.mark.parametrize("formula, words", [
    ("dY / (var - var)", "NaN or infinite values"),
    ("log(-var - 1)", "NaN or infinite values"),
    ("dY * 1e309", "number out of range"),
    ("__import__('os')", "unknown function"),
    ("W @ X", "unknown name 'W'"),
    ("dY +", "cannot parse"),
])
def test_bad_formulas_get_one_clear_line(formula, words):
    with pytest.raises(MatrixFormulaError, match=words.replace("(", r"\(")):
        check_layer(formula, layer="batchnorm", wrt="X")


def test_extreme_constants_in_a_formula_are_judged_not_crashed():
    assert check_layer(f"1e9 * ({BN_DX})", layer="batchnorm").kind is None
    assert check_layer(f"-1e3 * ({BN_DX}) + 1001 * ({BN_DX})", layer="batchnorm").correct
    assert check_layer(f"-1e3 * ({BN_DX}) + 1002 * ({BN_DX})", layer="batchnorm").kind == "scaled"
    assert check_layer(f"0 * ({BN_DX})", layer="batchnorm").kind is None


@pytest.mark.parametrize("kwargs, words", [
    ({"layer": "conv"}, "unknown layer='conv'"),
    ({"layer": "batchnorm", "wrt": "Q"}, "wrt= one of X, gamma, beta; got wrt='Q'"),
    ({"layer": "batchnorm", "causal": True}, "causal=True is for layer='attention'"),
])
def test_bad_options_are_refused_by_name(kwargs, words):
    with pytest.raises(MatrixFormulaError, match=words):
        check_layer("dY", **kwargs)


def test_a_shape_mismatch_is_a_verdict():
    result = check_layer("gamma / sqrt(var + eps) * (dY - mean(dY, axis=1))", layer="batchnorm")
    assert not result.correct and result.kind == "shape"
    assert "shapes that do not match" in result.sentence


def test_the_result_is_a_check_result_with_json():
    body = json.loads(check_layer(BN_DX, layer="batchnorm").to_json())
    assert body["correct"] is True and body["variable"] == "X"
    assert len(body["checked"]) == 3
    assert chainrule.check_layer is check_layer


def test_the_derivations_json_results_are_accepted_by_the_checker():
    sympy = pytest.importorskip("sympy")  # the derivation engine
    assert sympy
    for layer, wrts in (("batchnorm", ("X", "gamma", "beta")),
                        ("layernorm", ("X", "gamma", "beta")), ("attention", ("Q", "K", "V"))):
        result = chainrule.derive(layer).to_dict()["result"]
        for wrt in wrts:
            assert check_layer(result[f"d{wrt}"], layer=layer, wrt=wrt).correct, (layer, wrt)


# --- the faces ----------------------------------------------------------------------------------


def test_the_panel_routes_a_named_layer_to_check_layer_and_refuses_dense_options():
    assert check({"formula": BN_DX, "layer": "batchnorm", "wrt": "X"}).correct
    with pytest.raises(ValueError, match="loss= does not apply to layer='layernorm'"):
        check({"formula": "dY", "layer": "layernorm", "loss": "mse"})
    with pytest.raises(ValueError, match="causal=True is for layer='attention'"):
        check({"formula": "X.T @ Y", "layer": True, "loss": "mse", "causal": True})
    layer = next(o for o in CHECK if o.name == "layer")
    assert layer.parse("BatchNorm") == "batchnorm" and layer.parse("1") is True
    assert values_of("check", {"layer": "attention"})["layer"] == "attention"
    with pytest.raises(ValueError, match="or one of dense, batchnorm, layernorm, attention"):
        layer.parse("conv")


def test_the_command_line_names_the_mistake_and_exits_1(capsys):
    argv = ["check", "--layer", "batchnorm", "--wrt", "X", "gamma * dY / sqrt(var + eps)"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "both dropped" in out
    assert main(["check", "--layer", "attention", "--wrt", "V", "--causal", "P.T @ dO"]) == 0
    capsys.readouterr()
    assert main(["check", "--layer", "layernorm", "--format", "json", LN_DX]) == 0
    assert json.loads(capsys.readouterr().out)["correct"] is True


def test_a_bare_layer_flag_stays_the_dense_layer_before_or_after_the_formula(capsys):
    for argv in (["check", "--layer", "X.T @ (Yhat - Y) * 2 / m", "--loss", "mse"],
                 ["check", "--loss", "mse", "--layer", "X.T @ (Yhat - Y) * 2 / m"],
                 ["check", "--loss", "mse", "X.T @ (Yhat - Y) * 2 / m", "--layer"]):
        assert main(argv) == 0, argv
        assert "of one dense layer" in " ".join(capsys.readouterr().out.split())


def test_the_command_line_refuses_an_unknown_layer_with_the_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["check", "--layer", "conv", "dY"])
    assert exc.value.code == 2
    assert "invalid choice: 'conv'" in capsys.readouterr().err
    assert main(["check", "--layer", "layernorm", "--loss", "mse", "dY"]) == 2  # usage
    assert "--loss does not apply to --layer 'layernorm'" in capsys.readouterr().err
