"""Convolution, pooling, the RNN and the LSTM derived step by step: every printed formula is
checked before it is printed, and the NumPy expressions of ``--format json`` evaluate to the
true gradient (the core layers' own backward passes, PyTorch where it is installed, and central
differences of a forward pass written here, none of which share the derivation's code)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("sympy")

import chainrule
from chainrule import nn
from chainrule.cli import main
from chainrule.derivation import derive

LAYERS = ("conv2d", "maxpool", "avgpool", "rnn", "lstm")


def _evaluate(expression: str, names: dict) -> np.ndarray:
    # the test's own evaluation of the printed NumPy expression (trusted text from the library)
    return np.asarray(eval(expression, {"np": np}, dict(names)), dtype=float)


def _central(f, x, h=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        g[i] = (f(up) - f(down)) / (2 * h)
    return g


def _json(layer: str) -> dict:
    return json.loads(derive(layer).to_json())


# --- convolution ---------------------------------------------------------------------------------


def _conv_forward(X, W, b, s, pad):
    """A loop over every output entry: the definition, nothing shared with the library."""
    N, C, h, w = X.shape
    O, _, kh, kw = W.shape
    Xp = np.zeros((N, C, h + 2 * pad, w + 2 * pad))
    Xp[:, :, pad:pad + h, pad:pad + w] = X
    ho, wo = (h + 2 * pad - kh) // s + 1, (w + 2 * pad - kw) // s + 1
    Y = np.zeros((N, O, ho, wo))
    for n, o, i, j in np.ndindex(N, O, ho, wo):
        Y[n, o, i, j] = b[o] + np.sum(W[o] * Xp[n, :, s * i:s * i + kh, s * j:s * j + kw])
    return Y


CONV_CASES = [  # N, C, h, w, O, kernel, stride, padding
    (2, 3, 5, 5, 2, (3, 3), 1, 0), (1, 2, 7, 6, 3, (3, 3), 2, 1), (2, 1, 5, 7, 2, (2, 3), 2, 1),
    (1, 2, 6, 5, 2, (3, 2), 3, 0), (1, 1, 3, 3, 1, (1, 1), 1, 0)]


@pytest.mark.parametrize("N, C, h, w, O, kernel, s, pad", CONV_CASES)
def test_the_conv2d_json_results_equal_the_core_backward_and_central_differences(
        N, C, h, w, O, kernel, s, pad):
    result = _json("conv2d")["result"]
    assert set(result) == {"dX", "dW", "db"}
    rng = np.random.default_rng(N + 10 * h + 100 * s + pad)
    layer = nn.Conv2D(C, O, kernel, stride=s, padding=pad, dtype="float64", seed=1)
    X = rng.normal(size=(N, C, h, w))
    G = rng.normal(size=layer.forward(X).shape)
    core = {"dX": layer.backward(G), "dW": layer.dweight, "db": layer.dbias}
    names = {"X": X, "W": layer.weight, "b": layer.bias, "dY": G, "s": s, "pad": pad,
             "kh": kernel[0], "kw": kernel[1]}
    W, b = layer.weight, layer.bias
    truth = {"dX": _central(lambda v: np.sum(_conv_forward(v, W, b, s, pad) * G), X),
             "dW": _central(lambda v: np.sum(_conv_forward(X, v, b, s, pad) * G), W),
             "db": _central(lambda v: np.sum(_conv_forward(X, W, v, s, pad) * G), b)}
    for key, expression in result.items():
        value = _evaluate(expression, names)
        np.testing.assert_allclose(value, core[key], rtol=1e-9, atol=1e-12, err_msg=key)
        np.testing.assert_allclose(value, truth[key], rtol=1e-6, atol=1e-7, err_msg=key)


def test_the_conv2d_steps_evaluate_in_order_to_the_gradient():
    body = _json("conv2d")
    rng = np.random.default_rng(4)
    layer = nn.Conv2D(2, 3, 3, stride=2, padding=1, dtype="float64", seed=2)
    X = rng.normal(size=(2, 2, 6, 5))
    G = rng.normal(size=layer.forward(X).shape)
    core = layer.backward(G)
    names = {"X": X, "W": layer.weight, "b": layer.bias, "dY": G, "s": 2, "pad": 1, "kh": 3,
             "kw": 3}
    stride_steps = [s for s in body["steps"] if "stride 1" not in s["title"]
                    and "rotated kernel" not in s["title"]]
    for step in stride_steps:
        for claim in step["claims"]:
            names[claim["lhs"]] = _evaluate(claim["expression"], names)
            assert names[claim["lhs"]].ndim == len(claim["shape"]), claim["lhs"]
    np.testing.assert_allclose(names["Y"], layer.forward(X), rtol=1e-12)
    np.testing.assert_allclose(names["dX"], core, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(names["dW"], layer.dweight, rtol=1e-9)


@pytest.mark.parametrize("kernel, s, pad", [((3, 3), 2, 1), ((2, 3), 1, 2)])
def test_the_conv2d_json_results_equal_pytorch(kernel, s, pad):
    torch = pytest.importorskip("torch")
    result = _json("conv2d")["result"]
    rng = np.random.default_rng(9)
    X, W, b = rng.normal(size=(2, 2, 7, 6)), rng.normal(size=(3, 2, *kernel)), rng.normal(size=3)
    tX, tW, tb = (torch.tensor(a, requires_grad=True) for a in (X, W, b))
    Y = torch.nn.functional.conv2d(tX, tW, tb, stride=s, padding=pad)
    G = rng.normal(size=tuple(Y.shape))
    Y.backward(torch.tensor(G))
    names = {"X": X, "W": W, "b": b, "dY": G, "s": s, "pad": pad, "kh": kernel[0],
             "kw": kernel[1]}
    for key, grad in (("dX", tX.grad), ("dW", tW.grad), ("db", tb.grad)):
        np.testing.assert_allclose(_evaluate(result[key], names), grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=key)


def test_conv2d_text_shows_the_rotated_kernel_the_full_convolution_the_dilation_and_the_crop():
    text = derive("conv2d").to_text()
    for words in ("Y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q] Xᵖ[n,c,s·i+p,s·j+q]",
                  "db[o] = Σ_{n,i,j} dY[n,o,i,j]   [O]",
                  "dW[o,c,p,q] = Σ_{n,i,j} dY[n,o,i,j] Xᵖ[n,c,s·i+p,s·j+q]   [O × C × kh × kw]",
                  "A full convolution with the rotated kernel",
                  "dX = Σ_o pad(dY, kh - 1, kw - 1) ⋆ rot180(W)   [N × C × h × w]",
                  "s - 1 zeros between its entries", "dYᵈ[n,o,s·i,s·j] = dY[n,o,i,j], 0 elsewhere",
                  "What the padding changes", "crop pad rows and columns", "Checked:"):
        assert words in text, words


# --- pooling -------------------------------------------------------------------------------------


POOL_CASES = [(2, 2, 4, 4, (2, 2), None), (1, 2, 5, 5, (3, 3), 2), (2, 1, 5, 4, (2, 3), 1),
              (1, 1, 7, 5, (2, 2), None), (1, 1, 1, 1, (1, 1), None)]


def _pool_names(X, G, kernel, s):
    return {"X": X, "dY": G, "kh": kernel[0], "kw": kernel[1], "s": s or kernel[0]}


@pytest.mark.parametrize("name, core", [("maxpool", nn.MaxPool2D), ("avgpool", nn.AvgPool2D)])
@pytest.mark.parametrize("N, C, h, w, kernel, s", POOL_CASES)
def test_the_pooling_json_results_equal_the_core_backward_and_central_differences(
        name, core, N, C, h, w, kernel, s):
    result = _json(name)["result"]
    assert set(result) == {"dX"}
    rng = np.random.default_rng(h * w)
    X = rng.normal(size=(N, C, h, w))
    layer = core(kernel, s)
    G = rng.normal(size=layer.forward(X).shape)
    value = _evaluate(result["dX"], _pool_names(X, G, kernel, s))
    np.testing.assert_allclose(value, layer.backward(G), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        value, _central(lambda v: np.sum(core(kernel, s).forward(v) * G), X), atol=1e-6)


def test_maxpool_sends_a_tie_to_the_first_entry_as_pytorch_does():
    torch = pytest.importorskip("torch")
    X = np.array([[[[1.0, 1.0, 0.0], [1.0, 1.0, 2.0], [0.0, 2.0, 2.0]]]])  # ties everywhere
    G = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])
    tX = torch.tensor(X, requires_grad=True)
    torch.nn.functional.max_pool2d(tX, 2, stride=1).backward(torch.tensor(G))
    value = _evaluate(_json("maxpool")["result"]["dX"], _pool_names(X, G, (2, 2), 1))
    # window (0, 0) holds four 1s: the first, X[0, 0], takes its 1; the others their 2s
    np.testing.assert_array_equal(value, tX.grad.numpy())
    assert value[0, 0, 0, 0] == 1.0 and value[0, 0, 1, 2] == 10.0 + 1000.0


def test_pooling_text_routes_to_the_argmax_and_spreads_the_mean():
    text = derive("maxpool").to_text()
    assert "R[n,c,i,j,p,q] = [(p, q) = first arg-max" in text
    assert "the first in row-major order" in text
    assert "dX[n,c,r,t] = Σ_{i,j,p,q} [s·i+p = r] [s·j+q = t] R[n,c,i,j,p,q] dY[n,c,i,j]" in text
    assert "dY[n,c,i,j] / (kh kw)" in derive("avgpool").to_text()


# --- the RNN and the LSTM ------------------------------------------------------------------------


def _recurrent_names(layer, X, G):
    names = {"X": X, "dY": G, "W_ih": layer.weight_ih_l0, "W_hh": layer.weight_hh_l0,
             "b_ih": layer.bias_ih_l0, "b_hh": layer.bias_hh_l0}
    names["h"] = layer.forward(X)
    if isinstance(layer, nn.LSTM):
        names.update({k: layer._cache[k] for k in "ifgoc"})  # the forward pass's states
    return names


def _run_recursion(body: dict, names: dict, lstm: bool) -> dict:
    """Evaluate the per-step claims from t = T - 1 down to 0, as the json's recursion says."""
    per_step = [c for s in body["steps"][:-1] for c in s["claims"]
                if c["lhs"] not in ("h_t", "c_t", "dh3", "dh2", "dh1")]
    N, T, H = names["dY"].shape
    out, carry = [], {"dZ_next": np.zeros((N, 4 * H)), "dc_next": np.zeros((N, H))} \
        if lstm else {"D_next": np.zeros((N, H))}
    for t in reversed(range(T)):
        env = dict(names, t=t, **carry)
        for claim in per_step:
            env[claim["lhs"]] = _evaluate(claim["expression"], env)
        out.append(env["dZ" if lstm else "delta"])
        carry = {"dZ_next": env["dZ"], "dc_next": env["dc_path"]} if lstm \
            else {"D_next": env["delta"]}
    return dict(names, **{"dZ_all" if lstm else "D": np.stack(out[::-1], axis=1)})


@pytest.mark.parametrize("name, core", [("rnn", nn.RNN), ("lstm", nn.LSTM)])
@pytest.mark.parametrize("N, T, D, H", [(2, 1, 3, 2), (1, 5, 2, 3), (3, 3, 1, 1)])
def test_the_recurrent_json_evaluates_to_the_core_backward_and_central_differences(
        name, core, N, T, D, H):
    body = _json(name)
    assert "t = T - 1 down to 0" in body["extra"]["recursion"]
    rng = np.random.default_rng(N * T * D * H)
    layer = core(D, H, dtype="float64", seed=3)
    X, G = rng.normal(size=(N, T, D)), rng.normal(size=(N, T, H))
    names = _run_recursion(body, _recurrent_names(layer, X, G), name == "lstm")
    core_dX = layer.backward(G)
    truth = {"dX": core_dX, **{k: layer.grads[f"{k[1:]}_l0".replace("W_", "weight_").replace(
        "b_", "bias_")] for k in ("dW_ih", "dW_hh", "db_ih", "db_hh")}}
    for key, expression in body["result"].items():
        np.testing.assert_allclose(_evaluate(expression, names), truth[key], rtol=1e-9,
                                   atol=1e-12, err_msg=key)
    central = _central(lambda v: np.sum(core(D, H, dtype="float64", seed=3).forward(v) * G), X)
    np.testing.assert_allclose(_evaluate(body["result"]["dX"], names), central, atol=1e-6)


def test_the_rnn_unrolled_steps_match_pytorch_autograd_over_three_steps():
    torch = pytest.importorskip("torch")
    body = _json("rnn")
    layer = nn.RNN(2, 3, dtype="float64", seed=5)
    rng = np.random.default_rng(6)
    X, G = rng.normal(size=(2, 3, 2)), rng.normal(size=(2, 3, 3))
    names = _recurrent_names(layer, X, G)
    W_ih, W_hh, b_ih, b_hh = (torch.tensor(names[k], requires_grad=True)
                              for k in ("W_ih", "W_hh", "b_ih", "b_hh"))
    h, hs = torch.zeros(2, 3, dtype=torch.float64), []
    for t in range(3):  # the recurrence unrolled by hand; autograd gives ∂E/∂h_t in full
        h = torch.tanh(torch.tensor(X[:, t]) @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
        hs.append(h)
    loss = sum(torch.sum(hs[t] * torch.tensor(G[:, t])) for t in range(3))
    grads = torch.autograd.grad(loss, hs)
    for claim in body["steps"][1]["claims"]:
        names[claim["lhs"]] = _evaluate(claim["expression"], names)
    for t in range(3):
        np.testing.assert_allclose(names[f"dh{t + 1}"], grads[t].numpy(), rtol=1e-10,
                                   err_msg=f"dh{t + 1}")


def test_recurrent_text_shows_bptt_and_the_cell_path():
    rnn = derive("rnn").to_text()
    for words in ("dh₃ = dy₃", "dh₂ = dy₂ + (dh₃ ⊙ (1 - h₃²)) W_hh", "dh_t = dy_t + δ_{t+1} W_hh",
                  "δ_t = dh_t ⊙ (1 - h_t²)", "dW_hh = Σ_t δ_tᵀ h_{t-1}   [H × H]",
                  "dy_t = ∂E/∂h_t is what the layer above sends"):
        assert words in rnn, words
    lstm = derive("lstm").to_text()
    for words in ("c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t", "h_t = o_t ⊙ tanh(c_t)",
                  "dc_t = dc_next + dh_t ⊙ o_t ⊙ (1 - tanh²(c_t))", "do_t = dh_t ⊙ tanh(c_t)",
                  "df_t = dc_t ⊙ c_{t-1}", "dc_{t-1} (cell path) = dc_t ⊙ f_t",
                  "dW_ih = Σ_t δ_tᵀ x_t   [4H × D]"):
        assert words in lstm, words


# --- extreme inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e3, -1e3, 1e9, -1e9, 0.0])
def test_the_results_stay_finite_and_right_at_extreme_inputs(scale):
    rng = np.random.default_rng(12)
    X = rng.normal(size=(1, 2, 5, 5)) * scale
    conv = nn.Conv2D(2, 2, 3, stride=2, padding=1, dtype="float64", seed=0)
    G = rng.normal(size=conv.forward(X).shape)
    names = {"X": X, "W": conv.weight, "b": conv.bias, "dY": G, "s": 2, "pad": 1, "kh": 3,
             "kw": 3}
    result = _json("conv2d")["result"]
    np.testing.assert_allclose(_evaluate(result["dX"], names), conv.backward(G), atol=1e-12)
    np.testing.assert_allclose(_evaluate(result["dW"], names), conv.dweight, rtol=1e-9,
                               atol=1e-12 * max(1.0, abs(scale)))
    pool = nn.MaxPool2D(2)
    Gp = rng.normal(size=pool.forward(X).shape)
    value = _evaluate(_json("maxpool")["result"]["dX"], _pool_names(X, Gp, (2, 2), 2))
    np.testing.assert_array_equal(value, pool.backward(Gp))
    avg = nn.AvgPool2D(2, 1)
    Ga = rng.normal(size=avg.forward(X).shape)
    value = _evaluate(_json("avgpool")["result"]["dX"], _pool_names(X, Ga, (2, 2), 1))
    np.testing.assert_allclose(value, avg.backward(Ga), atol=1e-15)
    Xs, Gs = rng.normal(size=(1, 3, 2)) * scale, rng.normal(size=(1, 3, 2))
    for name, core in (("rnn", nn.RNN), ("lstm", nn.LSTM)):
        layer = core(2, 2, dtype="float64", seed=0)
        names = _run_recursion(_json(name), _recurrent_names(layer, Xs, Gs), name == "lstm")
        value = _evaluate(_json(name)["result"]["dX"], names)
        assert np.all(np.isfinite(value))  # saturated gates pass (almost) nothing back
        np.testing.assert_allclose(value, layer.backward(Gs), atol=1e-12)


def test_a_nan_input_gives_nan_gradients_not_a_silent_number():
    X = np.full((1, 1, 3, 3), np.nan)
    conv = nn.Conv2D(1, 1, 2, dtype="float64", seed=0)
    G = np.ones(conv.forward(X).shape)
    names = {"X": X, "W": conv.weight, "b": conv.bias, "dY": G, "s": 1, "pad": 0, "kh": 2,
             "kw": 2}
    assert np.all(np.isnan(_evaluate(_json("conv2d")["result"]["dW"], names)))


# --- the faces -----------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", LAYERS)
def test_every_face_of_the_new_layer_derivations_renders(layer, capsys):
    d = derive(layer)
    assert derive(layer=layer).to_text() == d.to_text()
    assert chainrule.derive(layer).to_text() == d.to_text()
    assert d.to_latex().count(r"\item") == len(d.steps)
    assert d.to_latex().isascii()
    assert d.to_markdown().startswith("### Backpropagation through")
    html = d.to_html()
    assert "<math" in html and "merror" not in html
    body = json.loads(d.to_json())
    assert all(c["expression"] for s in body["steps"] for c in s["claims"])
    assert main(["derive", layer, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["result"] == body["result"]
    assert main(["derive", "--layer", layer]) == 0
    assert "Backpropagation through" in capsys.readouterr().out


def test_a_wrong_index_formula_is_refused_before_it_is_printed():
    from chainrule.derivation.layernodes import Code, verify_claims
    from chainrule.derivation.vresult import Claim

    # db divided by the batch size, a mean for a sum: a mistake the check must catch
    wrong = Claim(("db", "db", "db"), Code("Σ_{n,i} dY[n,o,i] / N", "",
                                           "np.sum(dY, axis=(0, 2)) / 2", ("O",)), "db")
    env = {"dY": np.ones((2, 3, 4))}
    with pytest.raises(RuntimeError, match="disagrees with central finite differences"):
        verify_claims([wrong], [(env, {"db": np.full(3, 8.0)}, "N = 2")])


def test_an_unknown_layer_lists_the_new_names():
    with pytest.raises(ValueError, match="'conv2d', 'maxpool', 'avgpool', 'rnn', 'lstm'"):
        derive(layer="gru")
    with pytest.raises(ValueError, match="takes no other option; got wrt='X'"):
        derive("conv2d", wrt="X")


def test_the_kernel_left_unrotated_is_refused():
    from chainrule.derivation import conv
    from chainrule.derivation.layernodes import Code, verify_claims
    from chainrule.derivation.vresult import Claim

    unrotated = conv._full("dY").replace("W[:, :, ::-1, ::-1]", "W")
    wrong = Claim(("dX", "dX", "dX"), Code("Σ_o pad(dY) ⋆ W", "", unrotated, conv._X), "dX")
    plain = [d for d in conv._draws() if (d[0]["s"], d[0]["pad"]) == (1, 0)]
    with pytest.raises(RuntimeError, match=r"dX = Σ_o pad\(dY\) ⋆ W disagrees"):
        verify_claims([wrong], plain)


def test_the_forget_gate_times_the_new_cell_state_is_refused():
    from chainrule.derivation import recurrent
    from chainrule.derivation.layernodes import Code, verify_claims
    from chainrule.derivation.vresult import Claim

    steps = recurrent._lstm_steps()
    into = [c for s in steps[1:3] for c in s.claims if c.check != "df"]
    wrong = Claim(("df_t", "df_t", "df"), Code("dc_t ⊙ c_t", "", "dc * c[:, t]", ("N", "H")),
                  "df")
    with pytest.raises(RuntimeError, match="df_t = dc_t ⊙ c_t disagrees"):
        verify_claims([*into, wrong], recurrent._draws(True, whole=False))
