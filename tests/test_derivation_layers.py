"""Batch norm, layer norm and attention derived step by step: every printed formula is checked
before it is printed, and the NumPy result expressions of ``--format json`` evaluate to the true
gradient (central differences of a forward pass written here, a SymPy derivative, and the core
layers' own backward passes, none of which share the derivation's code)."""

from __future__ import annotations

import json

import numpy as np
import pytest

sympy = pytest.importorskip("sympy")

import chainrule  # noqa: E402
from chainrule.cli import main  # noqa: E402
from chainrule.derivation import derive  # noqa: E402

# --- an oracle written here: the forward passes and central differences -----------------------


def _norm_forward(X, gamma, beta, eps, axis):
    mu = X.mean(axis=axis, keepdims=True)
    var = ((X - mu) ** 2).mean(axis=axis, keepdims=True)
    Xhat = (X - mu) / np.sqrt(var + eps)
    return mu, var, Xhat, gamma * Xhat + beta


def _attention_forward(Q, K, V, causal):
    S = Q @ K.T / np.sqrt(Q.shape[1])
    if causal:
        S = np.where(np.tril(np.ones(S.shape, dtype=bool)), S, -np.inf)
    S = S - S.max(axis=1, keepdims=True)
    P = np.exp(S) / np.exp(S).sum(axis=1, keepdims=True)
    return P, P @ V


def _central(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        step = h * max(1.0, abs(x[i]))
        up[i] += step
        down[i] -= step
        g[i] = (f(up) - f(down)) / (2 * step)
    return g


def _evaluate(expression: str, names: dict) -> np.ndarray:
    # the test's own evaluation of the printed NumPy expression (trusted text from the library)
    return np.asarray(eval(expression, {"np": np}, dict(names)))


def _norm_case(rng, m, n, axis, scale=1.0):
    X = rng.normal(0.3, 1.0, (m, n)) * scale
    gamma, beta = rng.normal(1.0, 0.3, (1, n)), rng.normal(0.0, 0.3, (1, n))
    eps, G = 0.1, rng.normal(0.0, 1.0, (m, n))
    mu, var, Xhat, _ = _norm_forward(X, gamma, beta, eps, axis)
    names = {"X": X, "dY": G, "gamma": gamma, "beta": beta, "mu": mu, "var": var, "Xhat": Xhat,
             "eps": eps, "m": float(m), "n": float(n)}

    def loss(X=X, gamma=gamma, beta=beta):
        return float(np.sum(_norm_forward(X, gamma, beta, eps, axis)[3] * G))

    truth = {"dX": _central(lambda v: loss(X=v), X),
             "dgamma": _central(lambda v: loss(gamma=v), gamma),
             "dbeta": _central(lambda v: loss(beta=v), beta)}
    return names, truth


@pytest.mark.parametrize("layer, axis", [("batchnorm", 0), ("layernorm", 1)])
@pytest.mark.parametrize("m, n", [(2, 3), (4, 2), (5, 5)])
def test_the_json_results_of_a_normalization_evaluate_to_the_gradient(layer, axis, m, n):
    result = json.loads(derive(layer).to_json())["result"]
    assert set(result) == {"dX", "dgamma", "dbeta"}
    names, truth = _norm_case(np.random.default_rng(m * 10 + n), m, n, axis)
    for key, expression in result.items():
        value = np.broadcast_to(_evaluate(expression, names), truth[key].shape)
        np.testing.assert_allclose(value, truth[key], rtol=1e-6, atol=1e-7, err_msg=key)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("t, d, dv", [(3, 2, 4), (5, 3, 2), (1, 2, 2)])
def test_the_json_results_of_attention_evaluate_to_the_gradient(causal, t, d, dv):
    result = derive("attention").to_dict()["result"]
    assert set(result) == {"dQ", "dK", "dV"}
    rng = np.random.default_rng(t + d + dv)
    Q, K, V, G = (rng.normal(size=s) for s in ((t, d), (t, d), (t, dv), (t, dv)))
    P, _ = _attention_forward(Q, K, V, causal)
    names = {"Q": Q, "K": K, "V": V, "P": P, "dO": G, "d": float(d)}

    def loss(Q=Q, K=K, V=V):
        return float(np.sum(_attention_forward(Q, K, V, causal)[1] * G))

    truth = {"dQ": _central(lambda v: loss(Q=v), Q), "dK": _central(lambda v: loss(K=v), K),
             "dV": _central(lambda v: loss(V=v), V)}
    for key, expression in result.items():
        np.testing.assert_allclose(_evaluate(expression, names), truth[key], rtol=1e-6,
                                   atol=1e-7, err_msg=key)


def test_the_batch_norm_result_agrees_with_sympy_on_a_batch_of_three():
    xs = sympy.symbols("x1:4", real=True)
    gs = sympy.symbols("g1:4", real=True)
    gamma, beta, eps = sympy.symbols("gamma beta epsilon", positive=True)
    mu = sum(xs) / 3
    var = sum((x - mu) ** 2 for x in xs) / 3
    E = sum(g * (gamma * (x - mu) / sympy.sqrt(var + eps) + beta)
            for g, x in zip(gs, xs, strict=True))
    values = {xs[0]: 0.3, xs[1]: -1.2, xs[2]: 2.0, gs[0]: 0.7, gs[1]: -0.4, gs[2]: 1.1,
              gamma: 1.5, beta: 0.2, eps: 0.01}
    exact = np.array([[float(sympy.diff(E, x).subs(values))] for x in xs])
    X, G = np.array([[0.3], [-1.2], [2.0]]), np.array([[0.7], [-0.4], [1.1]])
    mu_, var_, Xhat, _ = _norm_forward(X, 1.5, 0.2, 0.01, 0)
    names = {"X": X, "dY": G, "gamma": 1.5, "mu": mu_, "var": var_, "Xhat": Xhat, "eps": 0.01,
             "m": 3.0}
    np.testing.assert_allclose(_evaluate(derive("batchnorm").to_dict()["result"]["dX"], names),
                               exact, rtol=1e-10)


def test_the_results_agree_with_the_core_layers_backward_passes():
    rng = np.random.default_rng(5)
    X, G = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    for name, layer, axis in (("batchnorm", chainrule.nn.BatchNorm(4, eps=1e-3), 0),
                              ("layernorm", chainrule.nn.LayerNorm(4, eps=1e-3), 1)):
        layer.astype(np.float64)
        layer.gamma[:] = rng.normal(1.0, 0.2, 4)
        layer.forward(X)
        core = layer.backward(G)
        mu, var, Xhat, _ = _norm_forward(X, layer.gamma[None, :], 0.0, 1e-3, axis)
        names = {"X": X, "dY": G, "gamma": layer.gamma[None, :], "mu": mu, "var": var,
                 "Xhat": Xhat, "eps": 1e-3, "m": 6.0, "n": 4.0}
        result = derive(name).to_dict()["result"]
        np.testing.assert_allclose(_evaluate(result["dX"], names), core, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(_evaluate(result["dgamma"], names)[0], layer.dgamma,
                                   rtol=1e-9)


@pytest.mark.parametrize("scale", [1e3, -1e3, 1e9, -1e9])
def test_the_normalization_results_stay_finite_and_right_at_extreme_inputs(scale):
    rng = np.random.default_rng(3)
    X, G = rng.normal(size=(5, 3)) * scale, rng.normal(size=(5, 3))
    for name, layer, axis in (("batchnorm", chainrule.nn.BatchNorm(3, dtype=np.float64), 0),
                              ("layernorm", chainrule.nn.LayerNorm(3, dtype=np.float64), 1)):
        layer.forward(X)
        core = layer.backward(G)
        mu, var, Xhat, _ = _norm_forward(X, np.ones((1, 3)), 0.0, layer.eps, axis)
        names = {"X": X, "dY": G, "gamma": np.ones((1, 3)), "mu": mu, "var": var, "Xhat": Xhat,
                 "eps": layer.eps, "m": 5.0, "n": 3.0}
        value = _evaluate(derive(name).to_dict()["result"]["dX"], names)
        assert np.all(np.isfinite(value))
        np.testing.assert_allclose(value, core, rtol=1e-6, atol=1e-12 / abs(scale))


def test_the_normalization_results_at_zero_and_nan_inputs():
    result = derive("batchnorm").to_dict()["result"]
    G = np.arange(6.0).reshape(3, 2)
    zeros = {"X": np.zeros((3, 2)), "dY": G, "gamma": np.ones((1, 2)), "mu": np.zeros((1, 2)),
             "var": np.zeros((1, 2)), "Xhat": np.zeros((3, 2)), "eps": 1e-5, "m": 3.0}
    # all equal inputs: X̂ = 0 and only the mean's path is left, dY - mean(dY) over √ε
    np.testing.assert_allclose(_evaluate(result["dX"], zeros),
                               (G - G.mean(axis=0)) / np.sqrt(1e-5))
    nan = dict(zeros, X=np.full((3, 2), np.nan), Xhat=np.full((3, 2), np.nan))
    assert np.all(np.isnan(_evaluate(result["dX"], nan)))


def test_the_attention_results_stay_finite_at_saturated_scores():
    result = derive("attention").to_dict()["result"]
    rng = np.random.default_rng(8)
    for scale in (1e3, -1e3, 1e9, -1e9):
        Q, K, V, G = (rng.normal(size=(3, 2)) for _ in range(4))
        Q = Q * scale
        P, _ = _attention_forward(Q, K, V, False)
        names = {"Q": Q, "K": K, "V": V, "P": P, "dO": G, "d": 2.0}
        for key in ("dQ", "dK", "dV"):
            assert np.all(np.isfinite(_evaluate(result[key], names))), (key, scale)
        # a saturated softmax row is one-hot and passes no gradient to the scores
        np.testing.assert_allclose(_evaluate(result["dQ"], names), 0.0, atol=1e-6)


# --- the steps ----------------------------------------------------------------------------------


def test_batch_norm_names_its_stages_paths_and_compact_form():
    d = derive("batchnorm")
    text = d.to_text()
    for words in ("μ = mean_batch(X)", "σ² = mean_batch((X - μ) ⊙ (X - μ))",
                  "X̂ = (X - μ) / √(σ² + ε)", "Y = γ ⊙ X̂ + β", "Three paths",
                  "dX (direct) = dX̂ / √(σ² + ε)", "dX (through μ) = dμ / m",
                  "dX (through σ²) = 2 dσ² ⊙ (X - μ) / m",
                  "dX = γ / √(σ² + ε) ⊙ (dY - mean_batch(dY) - X̂ ⊙ mean_batch(dY ⊙ X̂))",
                  "dγ = sum_batch(dY ⊙ X̂)", "dβ = sum_batch(dY)", "[m × n]", "Checked:"):
        assert words in text, words
    assert derive(layer="batchnorm").to_text() == text
    assert d.to_dict()["shapes"]["mu"] == ["1", "n"]


def test_layer_norm_runs_over_the_features_with_gamma_inside_the_means():
    d = derive("layernorm")
    assert d.to_dict()["shapes"]["var"] == ["m", "1"]
    assert "dX = (dY ⊙ γ - mean_features(dY ⊙ γ)" in d.to_text()
    assert "axis=1" in d.to_dict()["result"]["dX"]


def test_attention_shows_the_softmax_jacobian_the_element_wise_mistake_and_the_mask():
    text = derive("attention").to_text()
    for words in ("S = Q Kᵀ / √d   [(t × d)(d × t) = t × t]", "dV = Pᵀ dO", "dP = dO Vᵀ",
                  "dS = P ⊙ (dP - (dP ⊙ P) 1)", "Why not dP ⊙ P ⊙ (1 - P)",
                  "dQ = dS K / √d", "dK = dSᵀ Q / √d", "The causal mask"):
        assert words in text, words


@pytest.mark.parametrize("layer", ["batchnorm", "layernorm", "attention"])
def test_every_face_of_a_layer_derivation_renders(layer):
    d = derive(layer)
    assert d.to_latex().count(r"\item") == len(d.steps)
    assert d.to_latex().isascii()  # every symbol of the explanations written as maths
    assert d.to_markdown().startswith("### Backpropagation through")
    body = json.loads(d.to_json())
    assert body["kind"] in ("normalization", "attention")
    assert all(c["expression"] for s in body["steps"] for c in s["claims"])


def test_a_wrong_claim_is_refused_before_it_is_printed():
    from chainrule.derivation import layernodes
    from chainrule.derivation.matrix import Sym
    from chainrule.derivation.vresult import Claim

    wrong = Claim(("dX", "dX", "dX"), Sym("dY", "dY", "dY", ("m", "n")), "dX")
    env = {"dY": np.ones((2, 2))}
    with pytest.raises(RuntimeError, match="disagrees with central finite differences"):
        layernodes.verify_claims([wrong], [(env, {"dX": np.zeros((2, 2))}, "m = 2")])


@pytest.mark.parametrize("kwargs, words", [
    ({"expression": "batchnorm", "loss": "mse"}, "takes no other option; got loss='mse'"),
    ({"layer": "conv"}, "Unknown layer='conv'"),
    ({"expression": "x", "layer": "attention"}, "drop the expression 'x'"),
    ({"layer": "attention", "wrt": "Q"}, "got wrt='Q'"),
])
def test_bad_layer_arguments_are_refused_by_name(kwargs, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        derive(**kwargs)


def test_layer_dense_is_the_dense_layer():
    assert derive(activation="sigmoid", loss="bce", layer="dense").to_text() == derive(
        activation="sigmoid", loss="bce", layer=True).to_text()


@pytest.mark.parametrize("argv", [["derive", "batchnorm"], ["derive", "layernorm"],
                                  ["derive", "--layer", "attention"],
                                  ["derive", "Batch-Norm", "--format", "markdown"]])
def test_the_command_line_derives_the_layers(argv, capsys):
    assert main(argv) == 0
    assert "Backpropagation through" in capsys.readouterr().out


def test_the_command_line_gives_json_results_for_every_gradient(capsys):
    assert main(["derive", "attention", "--format", "json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["result"]) == {"dQ", "dK", "dV"}
