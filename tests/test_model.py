"""Sequential: backprop through depth against finite differences, the fused output, model files."""

import json
import os
import warnings

import numpy as np
import pytest

import chainrule
from chainrule import losses
from chainrule.nn import ACTIVATIONS, Dense, Dropout, Sequential, get, mlp

SMOOTH = [
    "identity",
    "sigmoid",
    "tanh",
    "elu",
    "selu",
    "softplus",
    "softsign",
    "gelu",
    "silu",
    "mish",
    "leaky_relu",
    "relu",
]


def model_loss(model, X, y, loss):
    """E(params) through the public API only: forward, loss.forward."""
    return float(loss.forward(model.forward(X), y))


def finite_difference_grads(model, X, y, loss, eps=1e-6):
    grads = []
    for p in model.parameters():
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            fp = model_loss(model, X, y, loss)
            p[i] = old - eps
            fm = model_loss(model, X, y, loss)
            p[i] = old
            g[i] = (fp - fm) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("activation", SMOOTH)
def test_three_layer_gradients_match_finite_differences(activation, rng):
    # 3 Dense layers, the hidden activation under test, MSE on a linear output.
    model = Sequential(
        [
            Dense(4, 6, dtype="float64"),
            get(activation),
            Dense(6, 5, dtype="float64"),
            get(activation),
            Dense(5, 2, dtype="float64"),
        ],
        seed=3,
    )
    X = rng.normal(size=(8, 4))
    if activation in ("relu", "leaky_relu"):
        X += np.sign(X) * 0.1  # keep pre-activations away from the kink
    y = rng.normal(size=(8, 2))
    loss = losses.MSE()
    model.eval()
    loss.forward(model.forward(X), y)
    model.backward(loss.backward())
    analytic = [g.copy() for g in model.gradients()]
    numeric = finite_difference_grads(model, X, y, loss)
    for a, n in zip(analytic, numeric, strict=True):
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(
    ("output", "loss_name", "n_out"),
    [("sigmoid", "bce", 1), ("softmax", "ce", 3), ("identity", "mse", 2)],
)
def test_training_step_gradient_matches_finite_differences(output, loss_name, n_out, rng):
    """The trainer's fused path (yhat - y at the logits) gives the true gradient of E."""
    from chainrule.training import Trainer, _prepare_targets

    model = mlp([3, 5, 4, n_out], activation="tanh", output=output, dtype="float64", seed=1)
    X = rng.normal(size=(6, 3))
    if loss_name == "ce":
        y = rng.integers(0, 3, size=6)
    elif loss_name == "bce":
        y = rng.integers(0, 2, size=6).astype(float)
    else:
        y = rng.normal(size=(6, 2))
    loss = losses.get(loss_name)
    target, _ = _prepare_targets(model, y, loss, n_out)
    trainer = Trainer(model, loss, chainrule.optim.SGD(lr=1e-300))
    trainer.step(X, target)
    analytic = [g.copy() for g in model.gradients()]
    y_for_loss = target
    numeric = finite_difference_grads(model, X, y_for_loss, losses.get(loss_name))
    for a, n in zip(analytic, numeric, strict=True):
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-8)


def test_fused_delta_is_yhat_minus_y_and_finite_at_saturation():
    """Sigmoid + BCE: the delta at the logits is (yhat - y)/m, even where sigmoid saturates."""
    from chainrule.training import Trainer

    model = Sequential([Dense(1, 1, dtype="float64"), get("sigmoid")], seed=0)
    model.layers[0].W[...] = 1.0
    model.layers[0].b[...] = 0.0
    X = np.array([[-800.0], [0.0], [800.0], [2.0]])
    y = np.array([[1.0], [0.0], [0.0], [1.0]])
    trainer = Trainer(model, losses.BinaryCrossEntropy(), chainrule.optim.SGD(lr=1e-300))
    loss, _ = trainer.step(X, y)
    assert np.isfinite(loss)
    yhat = 1 / (1 + np.exp(-np.clip(X, -700, 700)))
    delta = (yhat - y) / 4
    np.testing.assert_allclose(model.layers[0].db, delta.sum(0), rtol=1e-12)
    np.testing.assert_allclose(model.layers[0].dW, X.T @ delta, rtol=1e-12)  # X^T(z - y)/m
    assert np.isfinite(model.layers[0].dW).all()


def test_tanh_with_bce_is_refused_with_the_fix():
    model = mlp([2, 3, 1], activation="relu", output="tanh", seed=0)
    with pytest.raises(ValueError, match=r"ends in Tanh.*\(-1, 1\).*Sigmoid.*bce_with_logits"):
        model.fit(np.zeros((4, 2)), np.zeros(4), loss="bce", epochs=1, verbose=0)


def test_logits_loss_after_sigmoid_is_refused():
    model = mlp([2, 3, 1], output="sigmoid", seed=0)
    with pytest.raises(ValueError, match="applied twice"):
        model.fit(np.zeros((4, 2)), np.zeros(4), loss="bce_with_logits", epochs=1, verbose=0)


def test_shape_mismatch_between_layers():
    with pytest.raises(ValueError, match="in_features=4"):
        Sequential([Dense(3, 4), get("relu"), Dense(5, 2)])


def test_not_a_layer():
    with pytest.raises(ValueError, match="not a layer"):
        Sequential([Dense(3, 4), "relu"])


def test_repr_and_summary():
    model = mlp([4, 8, 3], output="softmax", seed=0)
    text = model.summary()
    assert "Dense(4, 8)" in text and "(m, 8)" in text and "Total parameters: 67" in text
    # 4*8 + 8 + 8*3 + 3 = 67
    assert repr(model).splitlines()[1].strip() == "(0): Dense(4, 8)"


def test_auto_init_uses_he_for_relu_and_seed_is_reproducible():
    a = mlp([100, 200, 2], activation="relu", seed=7)
    b = mlp([100, 200, 2], activation="relu", seed=7)
    np.testing.assert_array_equal(a.layers[0].W, b.layers[0].W)
    limit = np.sqrt(6 / 100)  # He uniform
    assert a.layers[0].W.max() <= limit and a.layers[0].W.max() > 0.95 * limit


def test_train_eval_switches_dropout(rng):
    model = Sequential([Dense(5, 5), Dropout(0.5), get("relu")], seed=0)
    X = rng.normal(size=(50, 5)).astype(np.float32)
    model.eval()
    np.testing.assert_array_equal(model.forward(X), model.forward(X))
    model.train()
    assert not np.array_equal(model.forward(X), model.forward(X))


class TestModelFiles:
    def test_round_trip(self, tmp_path, rng):
        model = mlp([4, 6, 3], activation="leaky_relu", output="softmax", dropout=0.2, seed=0)
        model.classes_ = np.array(["a", "b", "c"])
        model.task = "classification"
        path = model.save(tmp_path / "m.safetensors")
        loaded = chainrule.load(path)
        X = rng.normal(size=(5, 4)).astype(np.float32)
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
        assert list(loaded.predict(X)) == list(model.predict(X))
        assert repr(loaded) == repr(model)
        assert loaded.layers[1].get_config() == model.layers[1].get_config()

    def test_pytorch_layout_readable_with_safetensors(self, tmp_path):
        safetensors_numpy = pytest.importorskip("safetensors.numpy")
        model = mlp([4, 6, 3], output="softmax", seed=0)
        path = model.save(tmp_path / "m.safetensors")
        tensors = safetensors_numpy.load_file(str(path))
        assert sorted(tensors) == ["0.bias", "0.weight", "2.bias", "2.weight"]
        assert tensors["0.weight"].shape == (6, 4)  # (out, in), as torch.nn.Linear
        np.testing.assert_array_equal(tensors["2.weight"], model.layers[2].W.T)

    def test_interrupted_save_keeps_the_old_file(self, tmp_path, monkeypatch):
        import chainrule.serialization as ser

        path = tmp_path / "m.safetensors"
        good = mlp([2, 3, 1], seed=0)
        good.save(path)
        before = path.read_bytes()

        def broken_dumps(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(ser.json, "dumps", broken_dumps)
        with pytest.raises(KeyboardInterrupt):
            mlp([2, 3, 1], seed=1).save(path)
        assert path.read_bytes() == before
        assert os.listdir(tmp_path) == ["m.safetensors"]

    def test_truncated_file_names_the_file(self, tmp_path):
        path = tmp_path / "m.safetensors"
        mlp([2, 3, 1], seed=0).save(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) - 10])
        with pytest.raises(ValueError, match=r"m\.safetensors"):
            chainrule.load(path)

    def test_foreign_file(self, tmp_path):
        path = tmp_path / "picture.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
        with pytest.raises(ValueError, match=r"picture\.png"):
            chainrule.load(path)

    def test_safetensors_without_chainrule_metadata(self, tmp_path):
        from chainrule.serialization import write_safetensors

        path = tmp_path / "other.safetensors"
        write_safetensors(path, {"w": np.zeros(3, np.float32)})
        with pytest.raises(ValueError, match="not a chainrule model"):
            chainrule.load(path)

    def test_metadata_cannot_smuggle_code(self, tmp_path):
        from chainrule.serialization import read_safetensors, write_safetensors

        path = tmp_path / "m.safetensors"
        mlp([2, 3, 1], seed=0).save(path)
        tensors, meta = read_safetensors(path)
        config = json.loads(meta["chainrule"])
        config["layers"][1] = {
            "type": "Activation",
            "name": "__import__('os').system('x')",
            "config": {},
        }
        write_safetensors(path, tensors, {"chainrule": json.dumps(config)})
        with pytest.raises(ValueError, match="unknown activation"):
            chainrule.load(path)

    def test_every_activation_survives_a_round_trip(self, tmp_path):
        for name in ACTIVATIONS:
            model = Sequential([Dense(3, 3), get(name)], seed=0)
            path = model.save(tmp_path / f"{name}.safetensors")
            assert chainrule.load(path).layers[1].name == name


# --- backprop through depth: row-wise activations, no biases, dropout, saturation ----------------

EPS = float(np.finfo(np.float64).eps)


def finite_difference_grads_and_noise(model, X, y, loss_name, h=1e-6):
    """float64 central differences of the loss through forward() only, and their rounding noise."""
    grads, noise = [], []
    for p in model.parameters():
        g, n = np.zeros_like(p), np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            fp = float(losses.get(loss_name)(model.forward(X), y))
            p[i] = old - h
            fm = float(losses.get(loss_name)(model.forward(X), y))
            p[i] = old
            g[i] = (fp - fm) / (2 * h)
            n[i] = 16 * EPS * (abs(fp) + abs(fm)) / (2 * h)
        grads.append(g)
        noise.append(n)
    return grads, noise


def backprop_gradients(model, X, y, loss_name):
    loss = losses.get(loss_name)
    loss(model.forward(X), y)
    model.backward(loss.backward())
    return [g.copy() for g in model.gradients()]


def assert_close_within_noise(analytic, numeric, noise, rtol=1e-5, atol=1e-9):
    for a, n, e in zip(analytic, numeric, noise, strict=True):
        bound = rtol * np.maximum(np.abs(a), np.abs(n)) + e + atol
        assert (np.abs(a - n) <= bound).all(), (a, n)


@pytest.mark.parametrize("hidden", ["softmax", "log_softmax"])
def test_three_layer_network_with_a_row_wise_hidden_activation(hidden, rng):
    # the depth test above covers the element-wise activations; these two mix the units
    model = Sequential([Dense(4, 5, dtype="float64"), get(hidden), Dense(5, 4, dtype="float64"),
                        get(hidden), Dense(4, 2, dtype="float64")], seed=2).eval()
    X, y = rng.normal(size=(6, 4)), rng.normal(size=(6, 2))
    analytic = backprop_gradients(model, X, y, "mse")
    assert_close_within_noise(analytic, *finite_difference_grads_and_noise(model, X, y, "mse"))


def test_gradient_reaches_the_first_layer_without_biases_and_through_dropout_in_eval(rng):
    model = Sequential([Dense(3, 4, bias=False, dtype="float64"), get("tanh"), Dropout(0.5),
                        Dense(4, 4, dtype="float64"), get("sigmoid"),
                        Dense(4, 1, bias=False, dtype="float64")], seed=5).eval()
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 1))
    analytic = backprop_gradients(model, X, y, "mse")
    assert len(analytic) == 4 and np.abs(analytic[0]).max() > 1e-3  # the first W is reached
    assert_close_within_noise(analytic, *finite_difference_grads_and_noise(model, X, y, "mse"))


# SELU is left out: its slope jumps at 0 (lambda alpha vs lambda), where the all-zero row sits
SATURATING = ["tanh", "sigmoid", "softplus", "elu", "gelu", "silu", "mish", "softsign"]


@pytest.mark.parametrize("activation", SATURATING)
def test_model_gradients_at_extreme_inputs_match_finite_differences(activation):
    # inputs of +/-1e3, +/-30 and 0 drive hidden units deep into saturation (and 0 onto the
    # origin); the gradient there is tiny but must still be the true one, and finite
    X = np.array([[1e3, -1e3, 0.0], [-30.0, 30.0, 0.0], [0.0, 0.0, 0.0], [0.5, -1.5, 2.0]])
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    model = mlp([3, 4, 3, 1], activation=activation, output="sigmoid", dtype="float64", seed=1)
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        analytic = backprop_gradients(model, X, y, "bce")
    assert all(np.isfinite(g).all() for g in analytic)
    assert_close_within_noise(analytic, *finite_difference_grads_and_noise(model, X, y, "bce"))


# --- the fused softmax + cross-entropy output, predictions ----------------------------------------


def test_fused_softmax_ce_delta_is_softmax_minus_onehot_at_huge_logits():
    from chainrule.training import Trainer

    model = Sequential([Dense(2, 3, dtype="float64"), get("softmax")], seed=0)
    model.layers[0].W[...] = [[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]
    X = np.array([[1e3, 0.0], [-1e3, 0.0], [0.0, 1e9], [0.0, 0.0]])
    labels = np.array([1, 1, 0, 2])
    trainer = Trainer(model, losses.CrossEntropy(), chainrule.optim.SGD(lr=1e-300))
    value, _ = trainer.step(X, labels)
    # logits: (1e3, -1e3, 0) -> softmax (1, 0, 0); (-1e3, 1e3, 0) -> (0, 1, 0);
    # (0, 0, 1e9) -> (0, 0, 1); (0, 0, 0) -> 1/3 each. Losses 2e3, 0, 1e9, ln 3 over m = 4.
    assert value == pytest.approx((2e3 + 1e9 + np.log(3.0)) / 4, rel=1e-12)
    s = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1 / 3, 1 / 3, 1 / 3]])
    delta = (s - np.eye(3)[labels]) / 4
    np.testing.assert_allclose(model.layers[0].db, delta.sum(0), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(model.layers[0].dW, X.T @ delta, rtol=1e-12, atol=1e-300)


def test_predict_refuses_nan_and_predict_proba_rows_are_probabilities(rng):
    model = mlp([3, 5, 4], output="softmax", seed=0)
    model.task, model.classes_ = "classification", np.array(["a", "b", "c", "d"])
    X = rng.normal(size=(7, 3)).astype(np.float32)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert list(model.predict(X)) == list(model.classes_[proba.argmax(axis=1)])
    X[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN at index \(4, 2\)"):
        model.predict(X)


# --- model files: float64 without biases, non-finite or misshapen weights -------------------------


def test_float64_model_without_biases_and_with_dropout_round_trips(tmp_path, rng):
    model = Sequential([Dense(3, 4, bias=False, dtype="float64"), get("elu"), Dropout(0.3),
                        Dense(4, 2, dtype="float64"), get("softmax")], seed=4)
    path = model.save(tmp_path / "m.safetensors")
    loaded = chainrule.load(path)
    assert repr(loaded) == repr(model) and loaded.dtype == np.float64
    assert loaded.layers[0].b is None and loaded.layers[2].p == 0.3
    for a, b in zip(loaded.parameters(), model.parameters(), strict=True):
        assert a.dtype == np.float64 and a.tobytes() == b.tobytes()
    X = rng.normal(size=(5, 3))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_model_file_with_non_finite_weights_is_refused_by_name(tmp_path, bad):
    from chainrule.serialization import ModelFileError, read_safetensors, write_safetensors

    path = mlp([2, 3, 1], seed=0).save(tmp_path / "m.safetensors")
    tensors, meta = read_safetensors(path)
    tensors["0.weight"][1, 0] = bad
    write_safetensors(path, tensors, meta)
    with pytest.raises(ModelFileError, match=r"m\.safetensors: tensor '0\.weight'.*finite"):
        chainrule.load(path)


def test_a_model_file_with_a_wrongly_shaped_weight_is_refused_by_name(tmp_path):
    from chainrule.serialization import ModelFileError, read_safetensors, write_safetensors

    path = mlp([2, 3, 1], seed=0).save(tmp_path / "m.safetensors")
    tensors, meta = read_safetensors(path)
    tensors["2.weight"] = np.zeros((1, 4), np.float32)
    write_safetensors(path, tensors, meta)
    with pytest.raises(ModelFileError, match=r"m\.safetensors: tensor '2\.weight' has shape"):
        chainrule.load(path)


# --- models of images and sequences: shapes, summary, files -------------------------------------


def _lenet(input_shape=(1, 28, 28)):
    from chainrule.nn import AvgPool2D, Conv2D, Flatten, MaxPool2D, ReLU

    return Sequential([Conv2D(1, 6, 5, padding=2), ReLU(), AvgPool2D(2), Conv2D(6, 16, 5), ReLU(),
                       MaxPool2D(2), Flatten(), Dense(400, 120), ReLU(), Dense(120, 10)],
                      seed=0, input_shape=input_shape)


def test_summary_of_a_cnn_shows_each_output_shape_and_parameter_count():
    rows = _lenet()._summary_rows()
    # 28 + 2*2 - 5 + 1 = 28; pool 2: 14; 14 - 5 + 1 = 10; pool 2: 5; 16 * 5 * 5 = 400
    assert [row[2] for row in rows] == [
        "(m, 6, 28, 28)", "(m, 6, 28, 28)", "(m, 6, 14, 14)", "(m, 16, 10, 10)",
        "(m, 16, 10, 10)", "(m, 16, 5, 5)", "(m, 400)", "(m, 120)", "(m, 120)", "(m, 10)"]
    # 6*1*5*5 + 6 = 156; 16*6*5*5 + 16 = 2,416; 400*120 + 120 = 48,120; 120*10 + 10 = 1,210
    assert [row[3] for row in rows] == ["156", "0", "0", "2,416", "0", "0", "0", "48,120", "0",
                                        "1,210"]
    assert "Total parameters: 51,902 (float32)" in _lenet().summary()
    assert "(m, 6, 28, 28)" in _lenet()._repr_html_()


def test_summary_with_stride_and_without_an_input_shape():
    from chainrule.nn import Conv2D, Flatten

    model = Sequential([Conv2D(1, 4, 3, stride=2, padding=1), Flatten(), Dense(64, 2)],
                       input_shape=(1, 7, 7))
    assert model._summary_rows()[0][2] == "(m, 4, 4, 4)"  # (7 + 2 - 3) // 2 + 1 = 4
    unknown = Sequential([Conv2D(1, 4, 3), Flatten(), Dense(64, 2)])
    assert [row[2] for row in unknown._summary_rows()] == ["(m, 4, ?, ?)", "(m, ?)", "(m, 2)"]


def test_summary_of_recurrent_layers():
    from chainrule.nn import LSTM, RNN, MeanOverTime

    model = Sequential([RNN(3, 4), LSTM(4, 5), MeanOverTime(), Dense(5, 2)], seed=0)
    rows = model._summary_rows()
    assert [row[2] for row in rows] == ["(m, time, 4)", "(m, time, 5)", "(m, 5)", "(m, 2)"]
    # RNN: 4*3 + 4*4 + 4 + 4 = 36; LSTM: 4*5*(4 + 5) + 2*4*5 = 220; Dense 5*2 + 2 = 12
    assert [row[3] for row in rows] == ["36", "220", "0", "12"]


def test_a_cnn_with_an_input_shape_takes_flat_rows_and_names_the_shape_it_expects():
    model = _lenet()
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(model.forward(x.reshape(3, 784)), model.forward(x))
    with pytest.raises(ValueError, match=r"The model expects X of shape \(m, 1, 28, 28\) or flat "
                                         r"rows \(m, 784\); got \(3, 2, 28, 28\)"):
        model.forward(np.zeros((3, 2, 28, 28)))
    with pytest.raises(ValueError, match=r"X must be 4-D \(samples x channels x height x width\); "
                                         r"got shape \(3, 100\)"):
        model.forward(np.zeros((3, 100)))


def test_a_cnn_without_an_input_shape_says_how_to_give_one():
    model = _lenet(input_shape=None)
    with pytest.raises(ValueError, match=r"reshape flat rows to \(m, 1, height, width\), or "
                                         r"build the model with input_shape=\(1, height, width\)"):
        model.forward(np.zeros((3, 784)))


@pytest.mark.parametrize("shape", [(2, 28, 28), (1, 28), "28x28", (0, 28, 28)])
def test_an_input_shape_that_does_not_fit_the_first_layer_is_refused(shape):
    with pytest.raises(ValueError, match=r"input_shape=.* does not fit the first layer, which "
                                         r"takes samples of shape 1, \?, \?"):
        _lenet(input_shape=shape)


def test_a_cnn_model_file_keeps_its_input_shape_and_weights(tmp_path):
    model = _lenet()
    x = np.random.default_rng(1).random((2, 784), dtype=np.float32)
    loaded = chainrule.load(model.save(tmp_path / "cnn.safetensors"))
    assert loaded.input_shape == (1, 28, 28) and repr(loaded) == repr(model)
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
