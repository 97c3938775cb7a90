"""BatchNorm and LayerNorm: forward by hand, every gradient against float64 central finite
differences and against PyTorch, running statistics, evaluation mode, extreme inputs and model
files."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chainrule.nn import BatchNorm, Dense, LayerNorm, ReLU, Sequential, Softmax, load
from chainrule.serialization import ModelFileError, read_safetensors, write_safetensors
from oracles import assert_model_gradients, numeric_grad


def randomized(layer, rng):
    """The layer with gamma and beta away from their initial 1 and 0, so both matter."""
    layer.gamma[...] = rng.uniform(0.5, 2.0, layer.num_features)
    layer.beta[...] = rng.normal(size=layer.num_features)
    return layer


def check_gradients(layer, x, rng, rtol=1e-6, atol=1e-8):
    """dX, dgamma and dbeta of ``layer`` at ``x`` against finite differences of sum(y * U)."""
    upstream = rng.normal(size=x.shape)
    training = layer.training

    def loss():
        layer.training = training
        if isinstance(layer, BatchNorm):  # finite differences must not move the statistics
            saved = layer.running_mean.copy(), layer.running_var.copy(), layer.num_batches_tracked
            out = layer.forward(x)
            layer.running_mean[...], layer.running_var[...], layer.num_batches_tracked = saved
        else:
            out = layer.forward(x)
        return float(np.sum(out * upstream))

    loss()
    dx = layer.backward(upstream)
    dgamma, dbeta = layer.dgamma.copy(), layer.dbeta.copy()
    np.testing.assert_allclose(dx, numeric_grad(loss, x), rtol=rtol, atol=atol)
    np.testing.assert_allclose(dgamma, numeric_grad(loss, layer.gamma), rtol=rtol, atol=atol)
    np.testing.assert_allclose(dbeta, numeric_grad(loss, layer.beta), rtol=rtol, atol=atol)


# --- BatchNorm: forward and gradients ------------------------------------------------------------


def test_batch_norm_forward_by_hand():
    layer = BatchNorm(2, eps=0.0 + 1e-5, dtype="float64")
    layer.gamma[...] = [2.0, 1.0]
    layer.beta[...] = [0.5, -1.0]
    x = np.array([[1.0, 0.0], [3.0, 0.0], [5.0, 3.0]])
    # feature 0: mean 3, biased variance (4 + 0 + 4) / 3 = 8/3; feature 1: mean 1, variance 2
    want0 = 2.0 * (x[:, 0] - 3.0) / np.sqrt(8 / 3 + 1e-5) + 0.5
    want1 = (x[:, 1] - 1.0) / np.sqrt(2.0 + 1e-5) - 1.0
    np.testing.assert_allclose(layer.forward(x), np.column_stack([want0, want1]), rtol=1e-14)


@pytest.mark.parametrize("shape", [(2, 3), (7, 4), (3, 5, 4), (1, 6, 2)])
def test_batch_norm_gradients_in_training(shape, rng):
    layer = randomized(BatchNorm(shape[-1], dtype="float64"), rng)
    check_gradients(layer, rng.normal(size=shape) * 3 + 1, rng)


def test_batch_norm_gradients_in_evaluation(rng):
    layer = randomized(BatchNorm(3, dtype="float64"), rng)
    layer.running_mean[...] = [0.5, -1.0, 2.0]
    layer.running_var[...] = [0.25, 4.0, 1.0]
    layer.training = False
    check_gradients(layer, rng.normal(size=(5, 3)), rng)


def test_batch_norm_compact_backward_is_the_chain_rule_through_mean_and_variance(rng):
    # The textbook route: dxhat -> dvar -> dmean -> dx (Ioffe & Szegedy, 2015, section 3).
    layer = randomized(BatchNorm(4, dtype="float64"), rng)
    x, g = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    layer.forward(x)
    dx = layer.backward(g)
    m, mu, var = len(x), x.mean(0), x.var(0)
    dxhat = g * layer.gamma
    dvar = np.sum(dxhat * (x - mu), 0) * -0.5 * (var + layer.eps) ** -1.5
    dmean = -np.sum(dxhat, 0) / np.sqrt(var + layer.eps) - 2 * dvar * np.mean(x - mu, 0)
    want = dxhat / np.sqrt(var + layer.eps) + dvar * 2 * (x - mu) / m + dmean / m
    np.testing.assert_allclose(dx, want, rtol=1e-10, atol=1e-12)


def test_batch_norm_of_a_constant_feature_outputs_beta_with_finite_gradients(rng):
    layer = randomized(BatchNorm(2, dtype="float64"), rng)
    x = np.column_stack([np.full(4, 7.0), rng.normal(size=4)])  # feature 0: variance 0
    out = layer.forward(x)
    np.testing.assert_allclose(out[:, 0], layer.beta[0])
    check_gradients(layer, x, rng, rtol=1e-5, atol=1e-6)
    g = rng.normal(size=x.shape)
    layer.forward(x)
    dx = layer.backward(g)
    # xhat = 0, so dX = gamma / sqrt(eps) (G - mean G): finite, and summing to zero
    want = layer.gamma[0] / np.sqrt(1e-5) * (g[:, 0] - g[:, 0].mean())
    np.testing.assert_allclose(dx[:, 0], want)


@pytest.mark.parametrize("scale", [1e3, 1e9])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batch_norm_of_huge_inputs_is_standardized(scale, dtype, rng):
    layer = BatchNorm(3, dtype=dtype)
    x = (rng.normal(size=(8, 3)) * scale).astype(dtype)
    x[:, 1] = np.where(np.arange(8) % 2, scale, -scale)  # +/- scale exactly
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out) + x / scale)
    assert out.dtype == dtype and np.isfinite(out).all() and np.isfinite(dx).all()
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(0), 1.0, rtol=1e-3)
    np.testing.assert_allclose(out[:, 1], np.where(np.arange(8) % 2, 1.0, -1.0), rtol=1e-4)


def test_batch_norm_nan_propagates_to_its_feature_only():
    layer = BatchNorm(2, dtype="float64")
    x = np.array([[np.nan, 1.0], [2.0, 3.0], [4.0, 0.0]])
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(x))
    assert np.isnan(out[:, 0]).all() and np.isfinite(out[:, 1]).all()
    assert np.isnan(dx[:, 0]).all() and np.isfinite(dx[:, 1]).all()
    assert np.isnan(layer.running_mean[0]) and np.isfinite(layer.running_mean[1])


def test_batch_norm_float32_stays_float32(rng):
    layer = BatchNorm(3)
    out = layer.forward(rng.normal(size=(4, 3)).astype(np.float32))
    dx = layer.backward(np.ones((4, 3), np.float32))
    assert out.dtype == dx.dtype == layer.dgamma.dtype == layer.running_var.dtype == np.float32


def test_batch_norm_refuses_one_value_per_feature_in_training_and_names_the_fix():
    layer = BatchNorm(3)
    with pytest.raises(ValueError, match=r"shape \(1, 3\).*batch_size.*model.eval\(\)"):
        layer.forward(np.ones((1, 3), np.float32))
    layer.training = False
    assert layer.forward(np.ones((1, 3), np.float32)).shape == (1, 3)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_features": 0}, r"'num_features' parameter of BatchNorm must be an integer"),
    ({"num_features": 2.0}, r"'num_features' parameter of BatchNorm must be an integer"),
    ({"num_features": 2, "eps": 0.0}, r"'eps' parameter of BatchNorm .* \(0, inf\); got 0.0"),
    ({"num_features": 2, "momentum": 1.5}, r"'momentum' .* \[0, 1\] or None; got 1.5"),
    ({"num_features": 2, "dtype": "int32"}, r"floating dtype; got int32"),
])
def test_batch_norm_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BatchNorm(**kwargs)


@pytest.mark.parametrize("shape", [(4,), (4, 2), (2, 3, 2), (1, 2, 3, 3)])
def test_batch_norm_wrong_input_shape_names_both_shapes(shape):
    with pytest.raises(ValueError, match=r"\(m, 3\) or \(batch, time, 3\).*got \(" + str(shape[0])):
        BatchNorm(3).forward(np.ones(shape, np.float32))


def test_backward_before_forward_is_refused():
    for layer in (BatchNorm(2), LayerNorm(2)):
        with pytest.raises(RuntimeError, match=r"backward\(\) was called before forward"):
            layer.backward(np.ones((2, 2)))


@given(m=st.integers(2, 6), n=st.integers(1, 4), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([1e-3, 1.0, 1e3]), batch=st.booleans())
def test_the_input_gradient_is_blind_to_a_shift_and_nearly_to_a_scale(m, n, seed, scale, batch):
    # The output depends on x only through xhat = (x - mu) / sqrt(var + eps). Shifting the m
    # values by c changes nothing, so dX sums to 0 over them; stretching x - mu by (1 + a)
    # changes y by gamma (x - mu) eps / (var + eps)^(3/2) per unit of a, so
    # sum dX (x - mu) = eps / (var + eps) * sum G gamma xhat.
    rng = np.random.default_rng(seed)
    layer = randomized((BatchNorm if batch else LayerNorm)(n, dtype="float64"), rng)
    x = rng.normal(size=(m, n)) * scale
    axis = 0 if batch else -1
    g = rng.normal(size=x.shape)
    out = layer.forward(x)
    dx = layer.backward(g)
    centered = x - x.mean(axis=axis, keepdims=True)
    var = np.mean(centered**2, axis=axis, keepdims=True)
    xhat = centered / np.sqrt(var + layer.eps)
    size = np.abs(g * layer.gamma).sum(axis=axis) / np.sqrt(var + layer.eps).squeeze(axis)
    np.testing.assert_allclose(dx.sum(axis=axis), 0.0, atol=1e-12 * (1 + size.max()))
    want = (layer.eps / (var + layer.eps)).squeeze(axis) * np.sum(g * layer.gamma * xhat, axis)
    np.testing.assert_allclose(np.sum(dx * centered, axis=axis), want, rtol=1e-6,
                               atol=1e-12 * (1 + size.max()) * scale)
    assert np.isfinite(out).all()


# --- BatchNorm: running statistics and evaluation mode ------------------------------------------


def test_running_statistics_by_hand():
    layer = BatchNorm(1, momentum=0.1, dtype="float64")
    layer.forward(np.array([[1.0], [3.0]]))   # mean 2, unbiased variance 2
    # running_mean = 0.9 * 0 + 0.1 * 2; running_var = 0.9 * 1 + 0.1 * 2
    np.testing.assert_allclose([layer.running_mean[0], layer.running_var[0]], [0.2, 1.1])
    assert layer.num_batches_tracked == 1
    layer.training = False
    # evaluation: (x - 0.2) / sqrt(1.1 + eps), whatever the batch holds
    np.testing.assert_allclose(layer.forward(np.array([[0.2], [5.0]]))[:, 0],
                               [0.0, 4.8 / np.sqrt(1.1 + 1e-5)])
    assert layer.num_batches_tracked == 1


def test_momentum_none_averages_all_batches():
    layer = BatchNorm(1, momentum=None, dtype="float64")
    for batch in ([[0.0], [2.0]], [[4.0], [6.0]], [[8.0], [12.0]]):
        layer.forward(np.array(batch))
    # the plain average of the batch means 1, 5, 10 and unbiased variances 2, 2, 8
    np.testing.assert_allclose([layer.running_mean[0], layer.running_var[0]], [16 / 3, 4.0])


def test_momentum_zero_keeps_the_running_statistics():
    layer = BatchNorm(2, momentum=0.0)
    layer.forward(np.array([[1.0, 2.0], [5.0, 9.0]], np.float32))
    np.testing.assert_array_equal(layer.running_mean, 0.0)
    np.testing.assert_array_equal(layer.running_var, 1.0)


def test_model_eval_and_train_switch_batch_norm():
    model = Sequential([Dense(2, 2, dtype="float64"), BatchNorm(2, dtype="float64")], seed=0)
    x = np.array([[1.0, 2.0], [3.0, -1.0], [0.0, 0.5]])
    train_out = model.forward(x)
    np.testing.assert_allclose(train_out.mean(0), 0.0, atol=1e-12)
    model.eval()
    eval_out = model.forward(x)
    assert not np.allclose(eval_out, train_out)
    assert model.layers[1].num_batches_tracked == 1


# --- LayerNorm ----------------------------------------------------------------------------------


def test_layer_norm_forward_by_hand():
    layer = LayerNorm(3, dtype="float64")
    layer.gamma[...] = [1.0, 2.0, 3.0]
    x = np.array([[1.0, 2.0, 6.0]])
    # mean 3, biased variance (4 + 1 + 9) / 3 = 14/3
    want = np.array([-2.0, -1.0, 3.0]) / np.sqrt(14 / 3 + 1e-5) * [1.0, 2.0, 3.0]
    np.testing.assert_allclose(layer.forward(x), [want], rtol=1e-14)


@pytest.mark.parametrize("shape", [(1, 4), (5, 3), (2, 4, 5), (6,), (3, 1)])
def test_layer_norm_gradients(shape, rng):
    layer = randomized(LayerNorm(shape[-1], dtype="float64"), rng)
    check_gradients(layer, rng.normal(size=shape) * 2 - 1, rng)


def test_layer_norm_is_the_same_in_training_and_evaluation(rng):
    layer = LayerNorm(4, dtype="float64")
    x = rng.normal(size=(3, 4))
    out = layer.forward(x)
    layer.training = False
    np.testing.assert_array_equal(layer.forward(x), out)
    np.testing.assert_allclose(layer.forward(x[:1]), out[:1])  # a sample alone: the same


def test_layer_norm_of_a_constant_sample_outputs_beta(rng):
    layer = randomized(LayerNorm(3, dtype="float64"), rng)
    x = np.array([[5.0, 5.0, 5.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(layer.forward(x)[0], layer.beta)
    check_gradients(layer, x, rng, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale", [1e3, 1e9])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_norm_of_huge_inputs_is_standardized(scale, dtype, rng):
    layer = LayerNorm(4, dtype=dtype)
    x = np.array([[-scale, scale, -scale, scale], [scale, scale, scale, -scale]], dtype)
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dtype and np.isfinite(out).all() and np.isfinite(dx).all()
    np.testing.assert_allclose(out[0], [-1.0, 1.0, -1.0, 1.0], rtol=1e-4)
    np.testing.assert_allclose(out.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(dx, 0.0, atol=1e-4 / scale)  # a shift of all features: no change


def test_layer_norm_nan_propagates_to_its_sample_only():
    layer = LayerNorm(2, dtype="float64")
    out = layer.forward(np.array([[np.nan, 1.0], [2.0, 3.0]]))
    dx = layer.backward(np.ones((2, 2)))
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()
    assert np.isnan(dx[0]).all() and np.isfinite(dx[1]).all()


def test_layer_norm_bad_arguments_and_shapes():
    with pytest.raises(ValueError, match=r"'num_features' parameter of LayerNorm"):
        LayerNorm(-1)
    with pytest.raises(ValueError, match=r"'eps' parameter of LayerNorm"):
        LayerNorm(3, eps=-1e-5)
    with pytest.raises(ValueError, match=r"LayerNorm\(3\) expects .*\(m, 3\).*got \(2, 4\)"):
        LayerNorm(3).forward(np.ones((2, 4), np.float32))


# --- against PyTorch ----------------------------------------------------------------------------


def _torch_tensor(torch, x, requires_grad=False):
    return torch.tensor(np.ascontiguousarray(x), requires_grad=requires_grad)


def _copy_into(torch, module, layer):
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                            layer.state_dict().items()})


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 2e-4)])
@pytest.mark.parametrize("shape", [(2, 3), (16, 5), (4, 6, 5)])
def test_batch_norm_matches_torch_in_training(shape, dtype, tol, rng):
    torch = pytest.importorskip("torch")
    layer = randomized(BatchNorm(shape[-1], dtype=dtype), rng)
    theirs = torch.nn.BatchNorm1d(shape[-1], dtype=getattr(torch, dtype))
    _copy_into(torch, theirs, layer)
    x = (rng.normal(size=shape) * 4 + 2).astype(dtype)
    g = rng.normal(size=shape).astype(dtype)
    xt = _torch_tensor(torch, x, requires_grad=True)
    # BatchNorm1d reads (batch, features, time): the features move to axis 1 and back
    yt = theirs(xt if len(shape) == 2 else xt.transpose(1, 2))
    yt = yt if len(shape) == 2 else yt.transpose(1, 2)
    yt.backward(_torch_tensor(torch, g))
    out = layer.forward(x)
    dx = layer.backward(g)
    np.testing.assert_allclose(out, yt.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.dgamma, theirs.weight.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.dbeta, theirs.bias.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.running_mean, theirs.running_mean.numpy(), rtol=tol)
    np.testing.assert_allclose(layer.running_var, theirs.running_var.numpy(), rtol=tol)


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_running_statistics_match_torch_over_several_steps_then_eval(momentum, rng):
    torch = pytest.importorskip("torch")
    layer = BatchNorm(3, momentum=momentum, dtype="float64")
    theirs = torch.nn.BatchNorm1d(3, momentum=momentum, dtype=torch.float64)
    for step in range(6):
        x = rng.normal(size=(2 + step, 3)) * (step + 1) + step
        layer.forward(x)
        theirs(_torch_tensor(torch, x))
    np.testing.assert_allclose(layer.running_mean, theirs.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, theirs.running_var.numpy(), rtol=1e-12)
    assert layer.num_batches_tracked == int(theirs.num_batches_tracked) == 6
    layer.training = False
    theirs.eval()
    x = rng.normal(size=(4, 3)) * 5
    g = rng.normal(size=(4, 3))
    xt = _torch_tensor(torch, x, requires_grad=True)
    yt = theirs(xt)
    yt.backward(_torch_tensor(torch, g))
    np.testing.assert_allclose(layer.forward(x), yt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.backward(g), xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.dgamma, theirs.weight.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("x", [
    np.array([[3.0, 1e3], [3.0, -1e3], [3.0, 1e3]]),       # a constant feature; +/-1e3
    np.array([[1e9, -1e9], [-1e9, 1e9], [1e9, 1e9]]),
    np.array([[0.0, 0.0], [0.0, 0.0]]),
], ids=["constant-and-1e3", "1e9", "zeros"])
def test_batch_norm_extreme_inputs_match_torch(x, rng):
    torch = pytest.importorskip("torch")
    layer = randomized(BatchNorm(2, dtype="float64"), rng)
    theirs = torch.nn.BatchNorm1d(2, dtype=torch.float64)
    _copy_into(torch, theirs, layer)
    g = rng.normal(size=x.shape)
    xt = _torch_tensor(torch, x, requires_grad=True)
    yt = theirs(xt)
    yt.backward(_torch_tensor(torch, g))
    np.testing.assert_allclose(layer.forward(x), yt.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(layer.backward(g), xt.grad.numpy(), rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(layer.running_var, theirs.running_var.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 2e-4)])
@pytest.mark.parametrize("shape", [(1, 4), (6, 4), (3, 5, 4), (2, 1)])
def test_layer_norm_matches_torch(shape, dtype, tol, rng):
    torch = pytest.importorskip("torch")
    layer = randomized(LayerNorm(shape[-1], dtype=dtype), rng)
    theirs = torch.nn.LayerNorm(shape[-1], dtype=getattr(torch, dtype))
    _copy_into(torch, theirs, layer)
    x = (rng.normal(size=shape) * 3).astype(dtype)
    g = rng.normal(size=shape).astype(dtype)
    xt = _torch_tensor(torch, x, requires_grad=True)
    theirs(xt).backward(_torch_tensor(torch, g))
    np.testing.assert_allclose(layer.forward(x), theirs(xt).detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.backward(g), xt.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.dgamma, theirs.weight.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.dbeta, theirs.bias.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("scale", [1e3, 1e9])
def test_layer_norm_huge_inputs_match_torch(scale, rng):
    torch = pytest.importorskip("torch")
    layer = randomized(LayerNorm(3, dtype="float64"), rng)
    theirs = torch.nn.LayerNorm(3, dtype=torch.float64)
    _copy_into(torch, theirs, layer)
    x = np.array([[scale, -scale, scale], [0.0, 0.0, 0.0]])
    g = rng.normal(size=x.shape)
    xt = _torch_tensor(torch, x, requires_grad=True)
    yt = theirs(xt)
    yt.backward(_torch_tensor(torch, g))
    np.testing.assert_allclose(layer.forward(x), yt.detach().numpy(), rtol=1e-9)
    np.testing.assert_allclose(layer.backward(g), xt.grad.numpy(), rtol=1e-7, atol=1e-15)


# --- in a model: training, model files, PyTorch -------------------------------------------------


def _bn_model(seed=0):
    return Sequential([Dense(4, 8, dtype="float64"), BatchNorm(8, dtype="float64"), ReLU(),
                       Dense(8, 3, dtype="float64"), LayerNorm(3, dtype="float64"), Softmax()],
                      seed=seed)


def _blobs(rng, n=96):
    y = np.arange(n) % 3
    return rng.normal(size=(n, 4)) + np.eye(3, 4)[y] * 3, y


def test_a_model_with_normalization_gradchecks_end_to_end(rng):
    X, y = _blobs(rng, 6)
    assert_model_gradients(_bn_model(), X, y)



def test_a_model_with_batch_norm_trains_and_predicts_in_eval_mode(rng):
    X, y = _blobs(rng)
    model = _bn_model()
    history = model.fit(X, y, loss="ce", optimizer="adam", lr=0.01, epochs=5, batch_size=16,
                        verbose=0, seed=0)
    assert history.loss[-1] < history.loss[0]
    assert not model.layers[1].training  # fit leaves the model in evaluation mode
    assert model.layers[1].num_batches_tracked == 5 * 6
    np.testing.assert_array_equal(model.predict(X[:3]), model.predict(X[:3]))
    assert model.evaluate(X, y)["accuracy"] > 0.6


def test_a_last_batch_of_one_sample_is_refused_with_the_fix(rng):
    X, y = _blobs(rng, 17)
    with pytest.raises(ValueError, match="batch_size that leaves no last batch of 1"):
        _bn_model().fit(X, y, loss="ce", epochs=1, batch_size=16, verbose=0, seed=0)


def test_save_and_load_keep_the_running_statistics(tmp_path, rng):
    X, y = _blobs(rng)
    model = _bn_model()
    model.fit(X, y, loss="ce", epochs=2, batch_size=32, verbose=0, seed=0)
    path = model.save(tmp_path / "bn.safetensors")
    again = load(path)
    bn, bn_again = model.layers[1], again.layers[1]
    np.testing.assert_array_equal(bn_again.running_mean, bn.running_mean)
    np.testing.assert_array_equal(bn_again.running_var, bn.running_var)
    assert bn_again.num_batches_tracked == bn.num_batches_tracked == 6
    assert (bn_again.eps, bn_again.momentum) == (bn.eps, bn.momentum)
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    tensors, _ = read_safetensors(path)
    assert sorted(k for k in tensors if k.startswith("1.")) == [
        "1.bias", "1.num_batches_tracked", "1.running_mean", "1.running_var", "1.weight"]
    assert tensors["1.num_batches_tracked"].dtype == np.int64
    assert sorted(k for k in tensors if k.startswith("4.")) == ["4.bias", "4.weight"]


def test_a_saved_model_loads_into_torch_and_predicts_the_same(tmp_path, rng):
    torch = pytest.importorskip("torch")
    X, y = _blobs(rng)
    model = _bn_model()
    model.fit(X, y, loss="ce", epochs=2, batch_size=32, verbose=0, seed=0)
    tensors, _ = read_safetensors(model.save(tmp_path / "bn.safetensors"))
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3),
        torch.nn.LayerNorm(3), torch.nn.Softmax(dim=1)).double()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})
    net.eval()
    with torch.no_grad():
        theirs = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model.predict_proba(X), theirs, rtol=1e-10, atol=1e-12)


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


@pytest.mark.parametrize("edit_meta, edit_tensors, message", [
    (lambda m: m["layers"][1]["config"].update(num_features=9), None,
     r"tensor '1.weight' has shape \(8,\); layer 1 \(BatchNorm\) needs \(9,\)"),
    (lambda m: m["layers"][1]["config"].update(momentum=2.0), None,
     r"layers\[1\].config.momentum must be in \[0, 1\] or null; got 2.0"),
    (lambda m: m["layers"][4]["config"].update(eps=0), None,
     r"layers\[4\].config.eps must be positive"),
    (None, lambda t: t.pop("1.running_var"), r"tensor '1.running_var' is missing"),
    (None, lambda t: t.update({"1.running_var": -t["1.running_var"]}), "negative variance"),
    (None, lambda t: t.update({"4.weight": np.full(3, np.nan)}),
     r"tensor 'weight' is not a finite floating array"),
    (None, lambda t: t.update({"1.num_batches_tracked": np.array(1.5)}),
     "num_batches_tracked' must be a non-negative integer"),
])
def test_a_damaged_model_file_is_refused_naming_the_tensor_or_field(
        tmp_path, edit_meta, edit_tensors, message):
    path = _bn_model().save(tmp_path / "bn.safetensors")
    with pytest.raises(ModelFileError, match=message):
        load(_rewrite(path, tmp_path, edit_meta, edit_tensors))


def test_a_model_with_nan_running_statistics_is_not_saved(tmp_path):
    model = _bn_model()
    model.layers[1].running_mean[0] = np.nan
    with pytest.raises(ValueError, match=r"Not saved: the tensor 1.running_mean"):
        model.save(tmp_path / "nan.safetensors")


def test_astype_converts_the_normalization_layers():
    model = Sequential([Dense(2, 2), BatchNorm(2), LayerNorm(2)], seed=0).astype("float64")
    bn, ln = model.layers[1], model.layers[2]
    assert bn.gamma.dtype == bn.running_var.dtype == bn.dgamma.dtype == ln.beta.dtype == np.float64


def test_a_normalization_layer_of_the_wrong_width_is_refused_in_the_model():
    with pytest.raises(ValueError, match=r"Layer 1 is BatchNorm\(5\) .* outputs 4 features; "
                                         r"make num_features=4"):
        Sequential([Dense(3, 4), BatchNorm(5)])


def test_module_examples_run():
    import doctest

    import chainrule.nn.normalization

    assert doctest.testmod(chainrule.nn.normalization).failed == 0
