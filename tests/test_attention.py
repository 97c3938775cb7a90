"""MultiHeadAttention and the sequence layers (DenseOverTime, MeanOverTime, Residual): every
gradient against float64 central finite differences and against PyTorch, causal masks, extreme
inputs, and models of sequences that train, save and load."""

import json

import numpy as np
import pytest

from chainrule.nn import (
    Dense,
    DenseOverTime,
    Dropout,
    LayerNorm,
    MeanOverTime,
    MultiHeadAttention,
    PositionalEmbedding,
    ReLU,
    Residual,
    Sequential,
    Softmax,
    Tanh,
    load,
)
from chainrule.serialization import ModelFileError, read_safetensors, write_safetensors
from oracles import assert_model_gradients, numeric_grad


def check_layer_gradients(layer, x, rng, rtol=1e-6, atol=1e-8):
    """The input gradient and every parameter gradient of ``layer`` at ``x`` against finite
    differences of sum(y * U)."""
    upstream = rng.normal(size=layer.forward(x).shape)

    def loss():
        return float(np.sum(layer.forward(x) * upstream))

    loss()
    dx = layer.backward(upstream)
    grads = [g.copy() for g in layer.gradients()]
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=rtol, atol=atol)
    for param, grad in zip(layer.parameters(), grads, strict=True):
        np.testing.assert_allclose(grad, numeric_grad(loss, param), rtol=rtol, atol=atol)


def attention(d_model=8, num_heads=2, causal=False, seed=1, rng=None):
    """A float64 layer with non-zero biases, so that every parameter matters."""
    layer = MultiHeadAttention(d_model, num_heads, causal=causal, dtype="float64", seed=seed)
    rng = rng or np.random.default_rng(seed)
    layer.b_qkv[...] = rng.normal(size=layer.b_qkv.shape) * 0.5
    layer.b_out[...] = rng.normal(size=layer.b_out.shape) * 0.5
    return layer


# --- MultiHeadAttention: the maths --------------------------------------------------------------


def test_one_step_attends_only_to_itself():
    # t = 1: P = [[1]], so O = V and the output is the two projections applied in turn
    layer = attention(4, 2)
    x = np.random.default_rng(0).normal(size=(3, 1, 4))
    v = x @ layer.W_qkv[:, 8:] + layer.b_qkv[8:]
    np.testing.assert_allclose(layer.forward(x), v @ layer.W_out + layer.b_out, rtol=1e-12)


def test_forward_by_the_formula_one_head_at_a_time(rng):
    layer = attention(6, 3, causal=True)
    x = rng.normal(size=(2, 4, 6))
    q, k, v = np.split(x @ layer.W_qkv + layer.b_qkv, 3, axis=-1)
    heads = []
    for h in range(3):
        cols = slice(2 * h, 2 * h + 2)
        s = q[..., cols] @ k[..., cols].transpose(0, 2, 1) / np.sqrt(2)
        s = np.where(np.tril(np.ones((4, 4))) > 0, s, -np.inf)
        p = np.exp(s - s.max(-1, keepdims=True))
        heads.append(p / p.sum(-1, keepdims=True) @ v[..., cols])
    want = np.concatenate(heads, axis=-1) @ layer.W_out + layer.b_out
    np.testing.assert_allclose(layer.forward(x), want, rtol=1e-12)


@pytest.mark.parametrize("num_heads", [1, 2, 4])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_gradients_against_finite_differences(num_heads, causal, rng):
    layer = attention(8, num_heads, causal=causal, rng=rng)
    check_layer_gradients(layer, rng.normal(size=(2, 5, 8)), rng)


def test_causal_output_ignores_the_future_and_sends_it_no_gradient(rng):
    layer = attention(4, 2, causal=True)
    x = rng.normal(size=(2, 6, 4))
    out = layer.forward(x)
    later = x.copy()
    later[:, 3:] = rng.normal(size=(2, 3, 4)) * 100
    np.testing.assert_allclose(layer.forward(later)[:, :3], out[:, :3], rtol=1e-12)
    layer.forward(x)
    grad = np.zeros_like(out)
    grad[:, 2] = 1.0  # only step 2 of the output matters
    dx = layer.backward(grad)
    assert np.all(dx[:, 3:] == 0.0) and np.all(np.abs(dx[:, :3]).sum(-1) > 0)


def test_without_the_mask_the_future_matters(rng):
    layer = attention(4, 2, causal=False)
    x = rng.normal(size=(1, 3, 4))
    later = x.copy()
    later[:, 2] += 1.0
    assert not np.allclose(layer.forward(later)[:, 0], layer.forward(x)[:, 0])


def test_without_a_mask_permuting_the_steps_permutes_the_output(rng):
    # softmax(P Q K^T P^T) P V = P softmax(Q K^T) V for a permutation P of the rows
    layer = attention(6, 3)
    x = rng.normal(size=(2, 5, 6))
    order = np.array([3, 0, 4, 1, 2])
    np.testing.assert_allclose(layer.forward(x[:, order]), layer.forward(x)[:, order], rtol=1e-12)


def test_all_heads_and_samples_without_a_python_loop_match_one_sample_at_a_time(rng):
    layer = attention(8, 4, causal=True)
    x = rng.normal(size=(3, 5, 8))
    together = layer.forward(x)
    for i in range(3):
        np.testing.assert_allclose(layer.forward(x[i : i + 1])[0], together[i], rtol=1e-12)


@pytest.mark.parametrize("scale", [1e3, 1e9])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_huge_inputs_give_finite_outputs_and_gradients(scale, dtype, rng):
    layer = attention(4, 2, causal=True).astype(dtype)
    x = (np.sign(rng.normal(size=(2, 5, 4))) * scale).astype(dtype)
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == np.dtype(dtype)
    assert np.isfinite(out).all() and np.isfinite(dx).all()
    assert all(np.isfinite(g).all() for g in layer.gradients())


def test_zero_input_attends_uniformly(rng):
    layer = attention(4, 1)
    layer.b_qkv[...] = 0.0
    x = np.zeros((1, 3, 4))
    # S = 0, so P = 1/3 everywhere and O = V = 0: the output is the output bias
    np.testing.assert_allclose(layer.forward(x), np.broadcast_to(layer.b_out, (1, 3, 4)))


def test_nan_propagates_within_its_sample_only():
    layer = attention(4, 2, causal=True)
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    x[0, 2, 1] = np.nan
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    assert np.isnan(out[0]).any() and np.isfinite(out[1]).all()
    assert np.isnan(dx[0]).any() and np.isfinite(dx[1]).all()


def test_float32_stays_float32(rng):
    layer = MultiHeadAttention(8, 2, seed=0)
    out = layer.forward(rng.normal(size=(2, 3, 8)).astype(np.float32))
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == layer.dW_qkv.dtype == np.float32


def test_seed_gives_the_same_weights():
    a, b = MultiHeadAttention(8, 2, seed=3), MultiHeadAttention(8, 2, seed=3)
    np.testing.assert_array_equal(a.W_qkv, b.W_qkv)
    assert not np.array_equal(a.W_qkv, MultiHeadAttention(8, 2, seed=4).W_qkv)


@pytest.mark.parametrize("kwargs, message", [
    ({"d_model": 6, "num_heads": 4}, r"num_heads to divide d_model.*d_model=6, num_heads=4\. "
                                     r"Choose num_heads among 1, 2, 3, 6\."),
    ({"d_model": 0}, r"'d_model' parameter of MultiHeadAttention must be an integer"),
    ({"d_model": 4, "num_heads": 0}, r"'num_heads' parameter of MultiHeadAttention"),
    ({"d_model": 4, "causal": "yes"}, r"'causal' parameter .* True or False; got 'yes'"),
])
def test_bad_arguments_name_the_value_and_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiHeadAttention(**kwargs)


@pytest.mark.parametrize("shape", [(2, 8), (2, 3, 4), (2, 0, 8), (1, 2, 3, 8)])
def test_wrong_input_shape_names_the_expected_shape(shape):
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, time, 8\)"):
        MultiHeadAttention(8, 2).forward(np.ones(shape, np.float32))


def test_backward_before_forward_is_refused():
    for layer in (MultiHeadAttention(4), MeanOverTime(), Residual([LayerNorm(4)])):
        with pytest.raises(RuntimeError, match=r"backward\(\) was called before forward"):
            layer.backward(np.ones((1, 2, 4)))


# --- MultiHeadAttention against PyTorch ---------------------------------------------------------


def _torch_attention(torch, layer):
    theirs = torch.nn.MultiheadAttention(layer.d_model, layer.num_heads, batch_first=True,
                                         dtype=getattr(torch, layer.dtype.name))
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                            layer.state_dict().items()})
    return theirs


def _run_torch(torch, theirs, x, g, causal):
    xt = torch.tensor(x, requires_grad=True)
    t = x.shape[1]
    mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1) if causal else None
    yt, _ = theirs(xt, xt, xt, attn_mask=mask, need_weights=False)
    yt.backward(torch.tensor(g))
    return yt.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 1e-4)])
@pytest.mark.parametrize("num_heads", [1, 2, 4])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_torch(num_heads, causal, dtype, tol, rng):
    torch = pytest.importorskip("torch")
    layer = attention(8, num_heads, causal=causal, rng=rng).astype(dtype)
    theirs = _torch_attention(torch, layer)
    x = rng.normal(size=(3, 6, 8)).astype(dtype)
    g = rng.normal(size=(3, 6, 8)).astype(dtype)
    y_t, dx_t = _run_torch(torch, theirs, x, g, causal)
    np.testing.assert_allclose(layer.forward(x), y_t, rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.backward(g), dx_t, rtol=tol, atol=tol)
    for ours, name, transpose in ((layer.dW_qkv, "in_proj_weight", True),
                                  (layer.db_qkv, "in_proj_bias", False),
                                  (layer.dW_out, "out_proj.weight", True),
                                  (layer.db_out, "out_proj.bias", False)):
        want = theirs.get_parameter(name).grad.numpy()
        np.testing.assert_allclose(ours.T if transpose else ours, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("scale", [1e3, 1e9])
def test_huge_inputs_match_torch(scale, rng):
    torch = pytest.importorskip("torch")
    layer = attention(4, 2, causal=True, rng=rng)
    theirs = _torch_attention(torch, layer)
    x = rng.normal(size=(2, 4, 4)) * scale
    g = rng.normal(size=x.shape)
    y_t, dx_t = _run_torch(torch, theirs, x, g, causal=True)
    np.testing.assert_allclose(layer.forward(x), y_t, rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_allclose(layer.backward(g), dx_t, rtol=1e-7, atol=1e-9)


# --- DenseOverTime, MeanOverTime, Residual ------------------------------------------------------


def test_dense_over_time_is_dense_at_every_step(rng):
    layer = DenseOverTime(3, 2, dtype="float64", seed=0)
    dense = Dense(3, 2, dtype="float64", seed=0)
    x = rng.normal(size=(4, 5, 3))
    out = layer.forward(x)
    assert out.shape == (4, 5, 2)
    for s in range(5):
        np.testing.assert_allclose(out[:, s], dense.forward(x[:, s]), rtol=1e-14)


def test_dense_over_time_gradients(rng):
    check_layer_gradients(DenseOverTime(3, 4, dtype="float64", seed=0), rng.normal(size=(2, 5, 3)),
                          rng)


def test_dense_over_time_skips_the_input_gradient_when_not_needed(rng):
    layer = DenseOverTime(3, 2, dtype="float64", seed=0)
    layer.forward(rng.normal(size=(2, 4, 3)))
    assert layer.backward(np.ones((2, 4, 2)), need_input_grad=False) is None
    np.testing.assert_allclose(layer.db, [8.0, 8.0])  # 2 samples x 4 steps


def test_dense_over_time_wrong_width():
    with pytest.raises(ValueError, match=r"DenseOverTime\(3, 2\) expects input of shape "
                                         r"\(batch, time, 3\); got \(2, 4, 4\)"):
        DenseOverTime(3, 2).forward(np.ones((2, 4, 4), np.float32))


def test_positional_embedding_adds_a_row_per_step_and_sums_its_gradient_over_the_batch(rng):
    layer = PositionalEmbedding(6, 3, dtype="float64", seed=0)
    x = rng.normal(size=(4, 5, 3))
    np.testing.assert_allclose(layer.forward(x), x + layer.P[:5])
    check_layer_gradients(layer, x, rng)
    assert np.all(layer.dP[5] == 0.0)  # the unused sixth row gets no gradient
    with pytest.raises(ValueError, match=r"1 <= time <= 6; got \(2, 7, 3\)\. For longer "
                                         r"sequences raise max_len"):
        layer.forward(np.zeros((2, 7, 3)))


@pytest.mark.parametrize("kwargs, message", [
    ({"max_len": 0, "d_model": 4}, r"'max_len' parameter of PositionalEmbedding"),
    ({"max_len": 4, "d_model": 2.5}, r"'d_model' parameter of PositionalEmbedding"),
    ({"max_len": 4, "d_model": 4, "dtype": "int8"}, r"floating dtype; got int8"),
])
def test_positional_embedding_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PositionalEmbedding(**kwargs)


def test_mean_over_time_by_hand_and_by_finite_differences(rng):
    layer = MeanOverTime()
    # the mean of the rows [1, 2] and [3, 6]: [2, 4]
    np.testing.assert_allclose(layer.forward(np.array([[[1.0, 2.0], [3.0, 6.0]]])), [[2.0, 4.0]])
    check_layer_gradients(layer, rng.normal(size=(3, 4, 2)), rng)
    with pytest.raises(ValueError, match=r"\(batch, time, features\) with time >= 1; got \(3, 4\)"):
        layer.forward(np.ones((3, 4)))


def test_residual_adds_the_input_and_its_gradient(rng):
    block = Residual([LayerNorm(4, dtype="float64"), DenseOverTime(4, 8, dtype="float64"),
                      Tanh(), DenseOverTime(8, 4, dtype="float64")], seed=0)
    x = rng.normal(size=(2, 3, 4))
    h = x
    for layer in block.layers:
        h = layer.forward(h)
    np.testing.assert_allclose(block.forward(x), x + h, rtol=1e-14)
    check_layer_gradients(block, x, rng)


def test_residual_around_attention_gradients(rng):
    block = Residual([LayerNorm(4, dtype="float64"), attention(4, 2, causal=True, rng=rng)])
    check_layer_gradients(block, rng.normal(size=(2, 5, 4)), rng)


def test_residual_refuses_a_block_that_changes_the_width():
    with pytest.raises(ValueError, match=r"must keep the width.*takes 4 features and gives 8"):
        Residual([Dense(4, 8)])
    with pytest.raises(ValueError, match=r"Residual: layer 1 is Dense\(5, 4\) but the layer before "
                                         r"it outputs 8 features; make in_features=8"):
        Residual([Dense(4, 8), Dense(5, 4)])
    with pytest.raises(ValueError, match=r"must keep the shape"):
        Residual([MeanOverTime()]).forward(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="is not a layer"):
        Residual([LayerNorm(4), "relu"])


def test_residual_passes_training_mode_to_its_layers():
    dropout = Dropout(0.5, seed=0)
    model = Sequential([Dense(4, 4), Residual([Dense(4, 4), dropout])], seed=0)
    model.eval()
    assert not dropout.training
    model.train()
    assert dropout.training


def test_fit_seed_reseeds_dropout_inside_a_residual_block(rng):
    X, y = rng.normal(size=(40, 4)), np.arange(40) % 2
    model = Sequential([Dense(4, 4), Residual([Dense(4, 4), ReLU(), Dropout(0.5)]),
                        Dense(4, 2), Softmax()], seed=0)
    start = [p.copy() for p in model.parameters()]
    trained = []
    for _ in range(2):
        for p, s in zip(model.parameters(), start, strict=True):
            p[...] = s
        model.fit(X, y, loss="ce", epochs=2, batch_size=8, verbose=0, seed=7)
        trained.append([p.copy() for p in model.parameters()])
    for a, b in zip(*trained, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not hasattr(Residual([LayerNorm(4)]), "rng")


def test_residual_seed_draws_the_block_reproducibly():
    def build(seed):
        return Residual([LayerNorm(4), MultiHeadAttention(4, 2), DenseOverTime(4, 4)], seed=seed)

    a, b = build(5), build(5)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(a.layers[1].W_qkv, build(6).layers[1].W_qkv)


# --- models of sequences ------------------------------------------------------------------------


def transformer(d=8, heads=2, seed=0, dtype="float64", causal=False):
    """Rows of 5 pixels -> d features and the row's position, a pre-norm transformer block,
    mean over rows, 3 classes."""
    return Sequential([
        DenseOverTime(5, d, dtype=dtype), PositionalEmbedding(4, d, dtype=dtype),
        Residual([LayerNorm(d, dtype=dtype), MultiHeadAttention(d, heads, causal=causal,
                                                                 dtype=dtype)]),
        Residual([LayerNorm(d, dtype=dtype), DenseOverTime(d, 2 * d, dtype=dtype), ReLU(),
                  DenseOverTime(2 * d, d, dtype=dtype)]),
        LayerNorm(d, dtype=dtype), MeanOverTime(), Dense(d, 3, dtype=dtype), Softmax(),
    ], seed=seed)


def sequences(rng, n=60):
    """Class c puts a bright row at step c of 4: only where it is tells the classes apart."""
    y = np.arange(n) % 3
    X = rng.normal(size=(n, 4, 5)) * 0.3
    X[np.arange(n), y] += 2.0
    return X, y


def test_a_transformer_gradchecks_end_to_end(rng):
    X, y = sequences(rng, 3)
    assert_model_gradients(transformer(d=4, heads=2, causal=True), X, y)



def test_a_model_of_sequences_takes_3d_input_and_names_the_shape():
    model = transformer()
    assert model.input_ndim == 3 and model.in_features == 5
    assert model.predict_proba(np.zeros((2, 4, 5))).shape == (2, 3)
    assert model.predict_proba(np.zeros((4, 5))).shape == (1, 3)  # one sequence
    with pytest.raises(ValueError, match=r"expects X of shape \(m, time, 5\); got \(2, 4, 6\)"):
        model.predict(np.zeros((2, 4, 6)))
    with pytest.raises(ValueError, match=r"X must be 3-D \(samples x time x features\); got "
                                         r"shape \(2, 20\)"):
        model.fit(np.zeros((2, 20)), [0, 1], loss="ce", epochs=1, verbose=0)
    assert "(m, time, 8)" in model.summary() and "(m, 3)" in model.summary()


def test_a_model_of_rows_still_refuses_3d_input():
    model = Sequential([Dense(5, 3), Softmax()], seed=0)
    assert model.input_ndim == 2
    with pytest.raises(ValueError, match=r"X must be 2-D \(samples x features\)"):
        model.fit(np.zeros((2, 4, 5)), [0, 1], loss="ce", epochs=1, verbose=0)


def test_a_transformer_learns_where_the_bright_row_is(rng):
    X, y = sequences(rng, 90)
    model = transformer(dtype="float32")
    history = model.fit(X, y, loss="ce", optimizer="adam", lr=0.01, epochs=12, batch_size=15,
                        verbose=0, seed=0)
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert model.evaluate(X, y)["accuracy"] > 0.9


def test_the_same_seed_trains_the_same_transformer(rng):
    X, y = sequences(rng, 30)
    weights = []
    for _ in range(2):
        model = transformer(dtype="float32", seed=1)
        model.fit(X, y, loss="ce", epochs=2, batch_size=10, verbose=0, seed=3)
        weights.append(model.parameters())
    for a, b in zip(*weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_save_and_load_a_transformer(tmp_path, rng):
    X, y = sequences(rng, 30)
    model = transformer(dtype="float32", causal=True)
    model.fit(X, y, loss="ce", epochs=1, batch_size=10, verbose=0, seed=0)
    path = model.save(tmp_path / "t.safetensors")
    again = load(path)
    assert repr(again) == repr(model)
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    tensors, _ = read_safetensors(path)
    assert {"0.weight", "1.weight", "2.0.weight", "2.1.in_proj_weight", "2.1.in_proj_bias",
            "2.1.out_proj.weight", "3.1.weight", "3.3.bias", "6.weight"} <= set(tensors)
    assert tensors["2.1.in_proj_weight"].shape == (24, 8)


def test_a_saved_transformer_loads_into_torch_and_predicts_the_same(tmp_path, rng):
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Residual(nn.Sequential):
        def forward(self, x):
            return x + super().forward(x)

    class SelfAttention(nn.MultiheadAttention):
        def forward(self, x):
            mask = torch.triu(torch.ones(x.shape[1], x.shape[1], dtype=torch.bool), 1)
            return super().forward(x, x, x, attn_mask=mask, need_weights=False)[0]

    class Positions(nn.Module):
        def __init__(self, max_len, d):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(max_len, d))

        def forward(self, x):
            return x + self.weight[: x.shape[1]]

    class MeanOverRows(nn.Module):
        def forward(self, x):
            return x.mean(dim=1)

    X, y = sequences(rng, 30)
    model = transformer(causal=True)
    model.fit(X, y, loss="ce", epochs=1, batch_size=10, verbose=0, seed=0)
    tensors, _ = read_safetensors(model.save(tmp_path / "t.safetensors"))
    net = nn.Sequential(
        nn.Linear(5, 8), Positions(4, 8),
        Residual(nn.LayerNorm(8), SelfAttention(8, 2, batch_first=True)),
        Residual(nn.LayerNorm(8), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 8)),
        nn.LayerNorm(8), MeanOverRows(), nn.Linear(8, 3), nn.Softmax(dim=1)).double()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})
    with torch.no_grad():
        theirs = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model.predict_proba(X), theirs, rtol=1e-9, atol=1e-12)


def _rewrite(path, tmp_path, edit_meta=None, edit_tensors=None):
    tensors, metadata = read_safetensors(path)
    meta = json.loads(metadata["chainrule"])
    if edit_meta:
        edit_meta(meta)
    if edit_tensors:
        edit_tensors(tensors)
    out = tmp_path / "edited.safetensors"
    write_safetensors(out, tensors, {"chainrule": json.dumps(meta)})
    return out


def _inner(meta, j):
    return meta["layers"][2]["config"]["layers"][j]["config"]


@pytest.mark.parametrize("edit_meta, edit_tensors, message", [
    (lambda m: _inner(m, 1).update(num_heads=3), None,
     r"layers\[2\].config.layers\[1\].config.num_heads must divide d_model=8; got 3"),
    (lambda m: _inner(m, 1).update(d_model=16), None,
     r"tensor '2.1.in_proj_weight' has shape \(24, 8\); layer 2.1 \(MultiHeadAttention\) "
     r"needs \(48, 16\)"),
    (lambda m: _inner(m, 1).update(causal="yes"), None, r"config.causal must be one of"),
    (lambda m: m["layers"][2]["config"].update(layers=[]), None,
     r"layers\[2\].config.layers must be a non-empty list"),
    (lambda m: m["layers"][1]["config"].update(max_len=5), None,
     r"tensor '1.weight' has shape \(4, 8\); layer 1 \(PositionalEmbedding\) needs \(5, 8\)"),
    (None, lambda t: t.pop("2.1.out_proj.bias"), r"tensor '2.1.out_proj.bias' is missing"),
    (None, lambda t: t.update({"3.1.weight": t["3.1.weight"][:, :4]}),
     r"tensor '3.1.weight' has shape \(16, 4\)"),
    (lambda m: m["layers"][0]["config"].update(out_features=6), None,
     r"tensor '0.weight' has shape \(8, 5\); layer 0 \(5 -> 6\) needs \(6, 5\)"),
])
def test_a_damaged_transformer_file_is_refused_naming_the_field_or_tensor(
        tmp_path, edit_meta, edit_tensors, message):
    path = transformer().save(tmp_path / "t.safetensors")
    with pytest.raises(ModelFileError, match=message):
        load(_rewrite(path, tmp_path, edit_meta, edit_tensors))


def test_module_examples_run():
    import doctest

    import chainrule.nn.attention
    import chainrule.nn.sequence

    for module in (chainrule.nn.attention, chainrule.nn.sequence):
        assert doctest.testmod(module).failed == 0
