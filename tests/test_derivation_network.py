"""Backpropagation in matrix form: every derived formula against finite differences.

The oracle here is its own: a forward pass and the losses written again in NumPy, and
fourth-order central differences in float64. The derivation's formulas are evaluated on
random matrices (m = 1 and K = 2 among the shapes) and must match the differences of the
loss by every weight, bias, pre-activation and output.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.derivation import derive
from chainrule.derivation.library import ACTIVATION_INFO

ALPHA, DELTA = 0.3, 0.5  # the parameters the derivations evaluate with
ELEMENTWISE = [a for a in ACTIVATION_INFO if a != "binary_step"]
ACTIVATIONS = [*ELEMENTWISE, "softmax", "log_softmax"]
LOSSES = ["mse", "bce", "ce", "huber", "bce_with_logits", "ce_with_logits"]


# --- the oracle --------------------------------------------------------------------------------


def _sig(u):
    return 0.5 * (1 + np.tanh(u / 2))


def _softmax(Z):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _act(name):
    from math import erf, sqrt

    verf = np.vectorize(erf)
    lam, al = 1.0507009873554805, 1.6732632423543772
    return {
        "identity": lambda u: u,
        "sigmoid": _sig,
        "tanh": np.tanh,
        "relu": lambda u: np.maximum(u, 0),
        "leaky_relu": lambda u: np.where(u > 0, u, ALPHA * u),
        "elu": lambda u: np.where(u > 0, u, ALPHA * np.expm1(np.minimum(u, 0))),
        "selu": lambda u: lam * np.where(u > 0, u, al * np.expm1(np.minimum(u, 0))),
        "softplus": lambda u: np.logaddexp(0, u),
        "softsign": lambda u: u / (1 + np.abs(u)),
        "gelu": lambda u: u * (1 + verf(u / sqrt(2))) / 2,
        "silu": lambda u: u * _sig(u),
        "mish": lambda u: u * np.tanh(np.logaddexp(0, u)),
        "gaussian": lambda u: np.exp(-u * u),
        "softmax": _softmax,
        "log_softmax": lambda u: np.log(_softmax(u)),
    }[name]


def _loss(name, out, T, half=False):
    m = out.shape[0]
    if name == "mse":
        s = np.sum((out - T) ** 2) / (2 if half else 1)
    elif name == "bce":
        s = -np.sum(T * np.log(out) + (1 - T) * np.log1p(-out))
    elif name == "ce":
        s = -np.sum(T * np.log(out))
    elif name == "huber":
        r = np.abs(out - T)
        s = np.sum(np.where(r <= DELTA, 0.5 * r * r, DELTA * r - DELTA * DELTA / 2))
    elif name == "bce_with_logits":
        s = np.sum(np.logaddexp(0, out) - T * out)
    else:
        s = -np.sum(T * np.log(_softmax(out)))
    return s / m


def _diff(f, a):
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        h = 1e-5 * max(1.0, abs(a[i]))
        v = []
        for k in (1, -1, 2, -2):
            b = a.copy()
            b[i] += k * h
            v.append(f(b))
        g[i] = (8 * (v[0] - v[1]) - (v[2] - v[3])) / (12 * h)
    return g


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a, float), b, rtol=2e-6, atol=2e-7)


def _targets(rng, loss, shape, normalised):
    """Targets the loss accepts: probabilities for the cross-entropies (rows summing to 1 when
    ``normalised``), any reals for the others."""
    if loss in ("bce", "bce_with_logits"):
        return rng.uniform(0.05, 0.95, shape)
    if loss in ("ce", "ce_with_logits"):
        T = rng.uniform(0.1, 1, shape)
        T /= T.sum(axis=1, keepdims=True)
        return T if normalised else T * rng.uniform(0.3, 2, (shape[0], 1))
    return rng.normal(size=shape)


def _environment(acts, fs, loss, X, Ws, bs, T):
    """The arrays the claims read, by name, and the network's output."""
    L = len(acts)
    env = {"X": X, "T": T, "m": float(X.shape[0])}
    H = X
    for i in range(L):
        Z = H @ Ws[i] + bs[i]
        H = fs[i](Z)
        env.update({f"W{i+1}": Ws[i], f"b{i+1}": bs[i], f"Z{i+1}": Z})
        if i + 1 < L:
            env[f"H{i+1}"] = H
            env[f"P{i+1}"] = _softmax(Z)
    env["P" if acts[-1] == "softmax" else "Yhat"] = H
    if acts[-1] == "log_softmax" or loss == "ce_with_logits":
        env["P"] = _softmax(env[f"Z{L}"])
    return env, H


def _check(d, acts, loss, m, sizes, seed, normalised=True):
    """Evaluate every claim of ``d`` on random matrices and compare with the oracle."""
    rng = np.random.default_rng(seed)
    L = len(acts)
    fs = [_act(a) for a in acts]
    logits = loss.endswith("_with_logits")
    X = rng.normal(size=(m, sizes[0]))
    Ws = [rng.normal(0, 0.8, (sizes[i], sizes[i + 1])) for i in range(L)]
    bs = [rng.normal(0, 0.5, (1, sizes[i + 1])) for i in range(L)]
    T = _targets(rng, loss, (m, sizes[-1]), normalised)

    def run(Ws, bs, start=0, Zs=None):
        H, Z = X, None
        for i in range(L):
            Z = Zs if (Zs is not None and i == start) else H @ Ws[i] + bs[i]
            if Zs is not None and i < start:
                continue
            H = fs[i](Z)
        return _loss(loss, Z if logits else H, T)

    def run_from_input(i, H):
        """The loss with H as layer i's output (i = 0: the inputs X)."""
        Z = H
        for j in range(i, L):
            Z = H @ Ws[j] + bs[j]
            H = fs[j](Z)
        return _loss(loss, Z if logits else H, T)

    env, H = _environment(acts, fs, loss, X, Ws, bs, T)
    claims = [c for s in d.steps for c in s.claims if c.check]
    claims += list(d.result_input_form.values())
    checked = 0
    for c in claims:
        if c.assumes_normalised and not normalised:
            continue
        value = c.value(env)
        tag = c.check
        if tag == "G":
            env["G"] = value
            _close(value, m * _diff(lambda o: _loss(loss, o, T), H))
        elif tag.startswith("g"):
            continue  # g' alone: covered by the deltas that use it
        elif tag.startswith("D"):
            i = int(tag[1:]) - 1
            env[tag] = value
            _close(value, m * _diff(lambda Zv, i=i: run(Ws, bs, i, Zv), env[f"Z{i+1}"]))
        elif tag == "X" or tag.startswith("H"):
            i = 0 if tag == "X" else int(tag[1:])
            _close(value, _diff(lambda v, i=i: run_from_input(i, v), env[tag]))
        else:
            i = int(tag[1:]) - 1

            def f(v, i=i, kind=tag[0]):
                W2, b2 = list(Ws), list(bs)
                (W2 if kind == "W" else b2)[i] = v
                return run(W2, b2)

            _close(value, _diff(f, (Ws if tag[0] == "W" else bs)[i]))
        checked += 1
    assert checked >= 3 * L


def _valid(out, loss):
    if loss.endswith("_with_logits"):
        return out == "identity"
    if loss == "bce":
        return out in ("sigmoid", "softmax")
    if loss == "ce":
        return out in ("sigmoid", "softmax", "gaussian")
    return True


SHAPES = [(1, 2), (3, 3), (5, 4)]  # (m, width); the output width is 2 for m = 1 and m = 5


def _sizes(L, width, m):
    K = 2 if m != 3 else 3
    return [width] * L + [K]


# --- one layer: every activation with every loss it accepts -----------------------------------


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_one_layer_matches_finite_differences(act, loss):
    if not _valid(act, loss):
        with pytest.raises(ValueError, match=f"{act}|{loss}"):
            derive(activation=act, loss=loss, layer=True)
        return
    d = derive(activation=act, loss=loss, layer=True)
    if (act, loss) == ("gaussian", "ce"):
        # -t·log(e^(-z²)) is fine in exact arithmetic, but e^(-z²) underflows to 0 in float64
        # for |z| > 27, and a random batch's differences then meet 0·log(0)
        assert d.result["D1"].rhs("text") == "(-T/Ŷ) ⊙ (-2Z₁·e^(-Z₁²))"
        return
    for seed, (m, width) in enumerate(SHAPES):
        _check(d, (act,), loss, m, _sizes(1, width, m), seed)
        if loss in ("ce", "ce_with_logits"):
            _check(d, (act,), loss, m, _sizes(1, width, m), seed, normalised=False)


# --- depths 2 to 4: every activation in a hidden layer ----------------------------------------


@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("hidden", ACTIVATIONS)
def test_hidden_layers_match_finite_differences(hidden, depth):
    i = ACTIVATIONS.index(hidden)
    loss = LOSSES[(i + depth) % len(LOSSES)]
    out = {"bce": "sigmoid", "ce": "softmax", "bce_with_logits": "identity",
           "ce_with_logits": "identity"}.get(loss, ELEMENTWISE[(i * depth) % len(ELEMENTWISE)])
    others = [ELEMENTWISE[(i + k) % len(ELEMENTWISE)] for k in range(1, depth - 1)]
    acts = (hidden, *others, out)
    d = derive(network=",".join(acts), loss=loss)
    assert len([k for k in d.result if k.startswith("dE/dW")]) == depth
    for seed, (m, width) in enumerate(SHAPES):
        _check(d, acts, loss, m, _sizes(depth, width, m), 10 + seed)


def test_a_four_layer_network_reads_with_named_deltas():
    d = derive(network="relu,tanh,sigmoid,sigmoid", loss="bce")
    text = d.to_text()
    assert "Δ₄ = Ŷ - T" in text
    assert "Δ₃ = (Δ₄ W₄ᵀ) ⊙ H₃(1 - H₃)" in text
    assert "Δ₁ = (Δ₂ W₂ᵀ) ⊙ [Z₁ > 0]" in text
    assert "∂E/∂W₁ = Xᵀ Δ₁ / m   [(n₀ × m)(m × n₁) = n₀ × n₁]" in text
    assert "∂E/∂b₂ = 1ᵀ Δ₂ / m   [(1 × m)(m × n₂) = 1 × n₂]" in text
    assert max(len(line) for line in text.splitlines() if line.startswith("  Δ")) < 60


# --- the textbook results ----------------------------------------------------------------------


def test_logistic_and_linear_regression_come_out_of_one_layer():
    logistic = derive(activation="sigmoid", loss="bce", layer=True).to_dict()
    assert logistic["result_input_form"]["dE/dW1"] == "X.T @ (sigmoid(X @ W1 + b1) - T) / m"
    assert logistic["result"]["D1"] == "Yhat - T"
    linear = derive(activation="identity", loss="mse", half=True, layer=True).to_dict()
    assert linear["result_input_form"]["dE/dW1"] == "X.T @ ((X @ W1 + b1) - T) / m"
    assert linear["result"]["dE/db1"] == "D1.sum(axis=0, keepdims=True) / m"


def test_output_forms_of_the_activation_derivatives():
    d = derive(network="sigmoid,tanh,relu", loss="mse")
    forms = {k: c.rhs("text") for k, c in d.result_output_form.items()}
    assert forms == {"g1'": "H₁(1 - H₁)", "g2'": "1 - H₂²", "g3'": "[Z₃ > 0]"}


def test_softmax_ce_states_where_the_targets_sum_to_one():
    d = derive(activation="softmax", loss="ce", layer=True)
    text = d.to_text()
    assert "Δ₁ = P ⊙ (T 1) - T" in text and "Δ₁ = P - T" in text
    assert any("Σ_k t_ik = 1" in a for a in d.assumptions)


@pytest.mark.parametrize("act,loss,result", [
    ("sigmoid", "bce", "ŷ - t"),
    ("softmax", "ce", "p - t"),
    ("identity", "mse", "2(ŷ - t)"),
    ("tanh", "mse", "2(ŷ - t) ⊙ (1 - ŷ²)"),
    ("softmax", "mse", "p ⊙ (G - (G ⊙ p) 1)"),
])
def test_vector_compositions_through_the_sum(act, loss, result):
    d = derive(activation=act, loss=loss, vector=True)
    assert d.result["dE/dz"].rhs("text") == result
    assert "Σ_k" in d.steps[1].explanation


# --- softmax and log-softmax Jacobians ---------------------------------------------------------


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("K", [2, 3, 6])
def test_softmax_jacobian_matches_finite_differences(log, K):
    d = derive("log_softmax" if log else "softmax")
    rng = np.random.default_rng(K)
    z = rng.normal(0, 3, K)
    p = _softmax(z[None])[0]
    f = (lambda v: np.log(_softmax(v[None])[0])) if log else (lambda v: _softmax(v[None])[0])
    J = np.column_stack([
        (f(z + h * e) - f(z - h * e)) / (2 * h) for e, h in zip(np.eye(K), [1e-6] * K,
                                                                 strict=True)
    ])
    claims = [c for s in d.steps for c in s.claims]
    assert len(claims) == 3
    for c in claims:
        np.testing.assert_allclose(c.value({"p": p}), J, atol=1e-8)
    assert np.linalg.matrix_rank(J, tol=1e-8) == K - 1
    np.testing.assert_allclose(J.sum(axis=1), 0, atol=1e-8)


def test_softmax_jacobian_text():
    text = derive("softmax").to_text()
    for piece in ("p_i(1 - p_i) if i = j; -p_i p_j if i ≠ j", "p_i(δ_ij - p_j)",
                  "diag(p) - p pᵀ", "rank K - 1", "Σ_k t_k = 1"):
        assert piece in text
    assert "δ_ij - p_j" in derive("log_softmax").to_text()


def test_softmax_jacobian_stays_finite_at_extreme_scores():
    d = derive("softmax")
    for z in ([1e3, -1e3, 0.0], [1e9, 1e9 - 1, -1e9], [0.0, 0.0]):
        p = _softmax(np.array([z]))[0]
        J = d.result["J"].value({"p": p})
        assert np.isfinite(J).all()
        np.testing.assert_allclose(J.sum(axis=1), 0, atol=1e-12)


def test_fused_deltas_stay_finite_at_extreme_logits():
    d = derive(activation="sigmoid", loss="bce", layer=True)
    X = np.array([[1e3], [-1e3], [1e9], [0.0]])
    env = {"X": X, "W1": np.ones((1, 1)), "b1": np.zeros((1, 1)), "m": 4.0,
           "T": np.array([[1.0], [0.0], [1.0], [0.5]])}
    g = d.result_input_form["dE/dW1"].value(env)
    assert np.isfinite(g).all()
    env["T"][0, 0] = np.nan
    assert np.isnan(d.result_input_form["dE/dW1"].value(env)).all()


# --- a wrong formula is an error, never an answer ---------------------------------------------


def test_a_disagreeing_formula_raises_instead_of_printing(monkeypatch):
    from chainrule.derivation import network
    from chainrule.derivation.matrix import MatMul, T

    original = network.OverM

    def forgets_the_mean(a):  # the 1/m of the weight gradient dropped
        return a if isinstance(a, MatMul) and isinstance(a.a, T) else original(a)

    network._cached.cache_clear()
    monkeypatch.setattr(network, "OverM", forgets_the_mean)
    with pytest.raises(RuntimeError, match="disagrees with central finite differences"):
        network.derive_layers(("tanh", "sigmoid"), "bce")
    network._cached.cache_clear()


def test_shapes_that_cannot_multiply_are_named():
    from chainrule.derivation.matrix import MatMul, ShapeError, Sym

    X = Sym("X", "X", "X", ("m", "n0"))
    W2 = Sym("W2", "W₂", "W_2", ("n1", "n2"))
    with pytest.raises(ShapeError, match=r"X \(m × n₀\) cannot multiply W₂ \(n₁ × n₂\)"):
        MatMul(X, W2).shape()


# --- bad input: one clear line -----------------------------------------------------------------


@pytest.mark.parametrize("argv,message", [
    (["--network", "relu,foo", "--loss", "mse"], "activation 'foo'"),
    (["--network", "relu,binary_step,sigmoid", "--loss", "bce"], "binary_step has derivative 0"),
    (["--layer", "--activation", "tanh", "--loss", "bce"], "outside bce's domain"),
    (["--layer", "--activation", "relu"], "needs a loss"),
    (["--network", "relu", "--activation", "tanh", "--loss", "mse"], "drop --activation"),
    (["--network", ",", "--loss", "mse"], "network is empty"),
    (["--layer", "--activation", "sigmoid", "--loss", "ce_with_logits"], "must be identity"),
    (["--layer", "--activation", "sigmoid", "--loss", "nope"], "loss 'nope'"),
])
def test_bad_input_gets_one_line(capsys, argv, message):
    assert main(["derive", *argv]) == 2  # options the engine refuses: bad usage
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


# --- every face --------------------------------------------------------------------------------


def test_json_has_the_scalar_keys_plus_shapes(capsys):
    assert main(["derive", "--network", "relu,sigmoid", "--loss", "bce", "--format",
                 "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    scalar = derive(activation="sigmoid", loss="bce").to_dict()
    assert set(scalar) <= set(data)
    assert data["shapes"]["W2"] == ["n1", "n2"] and data["shapes"]["X"] == ["m", "n0"]
    assert data["result"]["dE/dW1"] == "X.T @ D1 / m"
    assert data["result"]["D1"] == "(D2 @ W2.T) * (Z1 > 0)"
    claim = data["steps"][-2]["claims"][0]
    assert claim["products"] == ["(n₀ × m)(m × n₁) = n₀ × n₁"]


def test_latex_and_markdown(capsys):
    assert main(["derive", "--layer", "--activation", "tanh", "--loss", "mse", "--format",
                 "latex"]) == 0
    latex = capsys.readouterr().out
    assert r"\odot" in latex and r"X^\top" in latex and r"\begin{enumerate}" in latex
    md = derive(network="tanh,sigmoid", loss="bce").to_markdown()
    assert "| symbol | shape | meaning |" in md and r"\Delta_1" in md


def test_mean_loss_is_derivable(capsys):
    assert main(["derive", "--loss", "mse", "--mean"]) == 0
    out = capsys.readouterr().out
    assert "Result: d/dyhat (yhat - y)²/m = 2(yhat - y)/m" in out


# --- the examples of docs/guide/derivation.md are what the program prints -----------------------


def _readme_section():
    from pathlib import Path

    guide = Path(__file__).resolve().parents[1] / "docs" / "guide" / "derivation.md"
    text = guide.read_text(encoding="utf-8")
    return text.split("## Vectors and matrices", 1)[1].split("\n## ", 1)[0]


def _blocks(expected: list[str]) -> list[list[str]]:
    """Runs of consecutive lines between the ``...`` that stand for omitted lines."""
    blocks, run = [], []
    for line in expected:
        if line == "...":
            blocks.append(run)
            run = []
        else:
            run.append(line)
    blocks.append(run)
    return [b for b in blocks if b]


def test_readme_console_examples(capsys):
    import re
    import shlex

    console = re.search(r"```console\n(.*?)```", _readme_section(), re.S).group(1)
    commands = re.split(r"^\$ ", console, flags=re.M)[1:]
    assert len(commands) == 3
    for chunk in commands:
        first, *expected = chunk.rstrip("\n").splitlines()
        argv = shlex.split(first)
        assert argv[:3] == ["uv", "run", "chainrule"]
        assert main(argv[3:]) == 0
        printed = capsys.readouterr().out.splitlines()
        position = 0
        for block in _blocks(expected):
            for start in range(position, len(printed) - len(block) + 1):
                if printed[start:start + len(block)] == block:
                    position = start + len(block)
                    break
            else:
                raise AssertionError(f"{first}: the guide's lines {block} are not printed")
        if expected[0] != "...":
            assert printed[0] == expected[0]


def test_readme_python_example():
    import doctest
    import re

    import chainrule

    code = re.search(r"```python\n(.*?)```", _readme_section(), re.S).group(1)
    test = doctest.DocTestParser().get_doctest(code, {"chainrule": chainrule}, "README", None, 0)
    runner = doctest.DocTestRunner()
    runner.run(test)
    assert runner.failures == 0 and runner.tries >= 3


# --- wrt: the gradient by the inputs or a hidden layer's output --------------------------------


@pytest.mark.parametrize(("act", "loss"), [("sigmoid", "bce"), ("tanh", "mse"),
                                           ("softmax", "ce"), ("identity", "ce_with_logits"),
                                           ("relu", "huber")])
def test_one_layer_by_its_inputs_is_delta_times_w_transposed_over_m(act, loss):
    d = derive(activation=act, loss=loss, layer=True, wrt="X")
    assert list(d.result) == ["dE/dX"]
    assert d.result["dE/dX"].rhs("text") == "Δ₁ W₁ᵀ / m"
    assert "∂E/∂X = Δ₁ W₁ᵀ / m   [(m × n₁)(n₁ × n₀) = m × n₀]" in d.to_text()
    for seed, (m, width) in enumerate(SHAPES):
        _check(d, (act,), loss, m, _sizes(1, width, m), 40 + seed)


@pytest.mark.parametrize("wrt", ["X", "H1", "H2", "x", "h2"])
def test_a_network_by_its_inputs_or_a_hidden_output_matches_finite_differences(wrt):
    acts = ("relu", "tanh", "sigmoid")
    d = derive(network=",".join(acts), loss="bce", wrt=wrt)
    name = wrt.upper()
    assert list(d.result) == [f"dE/d{name}"]
    for seed, (m, width) in enumerate(SHAPES):
        _check(d, acts, "bce", m, _sizes(3, width, m), 50 + seed)


@pytest.mark.parametrize(("wrt", "keys"), [("W", ["dE/dW1", "dE/dW2"]),
                                           ("b", ["dE/db1", "dE/db2"]),
                                           ("W2", ["dE/dW2"]), ("b1", ["dE/db1"])])
def test_wrt_a_parameter_gives_only_its_gradients(wrt, keys):
    assert list(derive(network="tanh,sigmoid", loss="bce", wrt=wrt).result) == keys


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"activation": "sigmoid", "layer": True, "wrt": "yhat"}, "'X' (the inputs); got wrt='yhat'"),
    ({"network": "tanh,sigmoid", "wrt": "H2"}, "'H1' (a hidden layer's output); got wrt='H2'"),
    ({"network": "tanh,sigmoid", "wrt": "Z1"}, "got wrt='Z1'"),
    ({"activation": "sigmoid", "vector": True, "wrt": "X"}, "Leave out wrt (or give wrt='z')"),
])
def test_a_wrt_the_derivation_cannot_give_is_refused_naming_those_it_can(kwargs, words):
    with pytest.raises(ValueError) as err:
        derive(loss="bce", **kwargs)
    assert words in str(err.value)


def test_the_engine_check_catches_an_input_gradient_without_its_one_over_m():
    from chainrule.derivation import vcheck
    from chainrule.derivation.matrix import MatMul, Sym, T
    from chainrule.derivation.vresult import Claim

    d = derive(activation="sigmoid", loss="bce", layer=True, wrt="X")
    D1, W1 = Sym("D1", "Δ₁", r"\Delta_1", ("m", "n1")), Sym("W1", "W₁", "W_1", ("n0", "n1"))
    wrong = Claim(("∂E/∂X", "X", "dE/dX"), MatMul(D1, T(W1)), check="X")
    d.steps[-2].claims[:] = [wrong]
    with pytest.raises(RuntimeError, match="disagrees with central finite differences"):
        vcheck.verify_network(d, ("sigmoid",), "bce", False)
