"""check_model: every layer's backward checked on its own; the first one that disagrees named."""

import numpy as np
import pytest

from chainrule.gradient_check import ModelCheckReport, check_model
from chainrule.nn import Dense, Dropout, ReLU, Sequential, Sigmoid, Tanh


class FlippedWeightGradient(Dense):
    """A Dense layer whose backward stores -dE/dW."""

    def backward(self, grad, need_input_grad=True):
        out = super().backward(grad, need_input_grad)
        self.dW *= -1.0
        return out


class ForgetsTheInputGradientsTranspose(Dense):
    """A Dense layer whose backward returns G·W instead of G·Wᵀ (square W, so it runs)."""

    def backward(self, grad, need_input_grad=True):
        super().backward(grad, need_input_grad)
        return grad @ self.W


class SigmoidOfTheOutput(Sigmoid):
    """A sigmoid whose backward evaluates σ' at its output: σ(s)(1 - σ(s))."""

    def backward(self, grad):
        s = 1.0 / (1.0 + np.exp(-self._out))
        return grad * s * (1.0 - s)


@pytest.fixture
def data(rng):
    X = rng.normal(size=(6, 3))
    y = (rng.random((6, 1)) > 0.5).astype(float)
    return X, y


def _model(middle=Dense, last=Sigmoid, width=4):
    return Sequential([Dense(3, width), Tanh(), middle(width, 1), last()], seed=0)


def test_correct_model_passes(data):
    X, y = data
    report = check_model(_model(), X, y, "bce")
    assert isinstance(report, ModelCheckReport)
    assert report.passed and report.layer_index is None and report.diagnosis is None
    assert report.end_to_end.passed
    assert str(report).startswith("check_model: passed")


def test_the_model_and_the_data_are_not_changed(data):
    X, y = data
    model = _model()
    model.train()
    params = [p.copy() for p in model.parameters()]
    dtypes = [p.dtype for p in model.parameters()]
    X0, y0 = X.copy(), y.copy()
    check_model(model, X, y, "bce")
    for p, before, dtype in zip(model.parameters(), params, dtypes, strict=True):
        np.testing.assert_array_equal(p, before)
        assert p.dtype == dtype
    assert all(layer.training for layer in model.layers)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_broken_weight_gradient_names_the_layer(data):
    X, y = data
    report = check_model(_model(middle=FlippedWeightGradient), X, y, "bce")
    assert not report.passed
    assert report.layer_index == 2 and "FlippedWeightGradient" in report.layer
    assert report.part == "W" and report.kind == "sign_flipped"
    text = str(report)
    assert "FAILED at layer 2 (Dense(4, 1), a FlippedWeightGradient)" in text
    # The layers before it are fine on their own: the culprit is not blamed on them.
    assert report.layers[0].passed and report.layers[1].passed


def test_broken_input_gradient_names_the_layer_not_the_earlier_ones(data):
    X, y = data
    model = Sequential([Dense(3, 4), Tanh(), ForgetsTheInputGradientsTranspose(4, 4), Tanh(),
                        Dense(4, 1), Sigmoid()], seed=0)
    report = check_model(model, X, y, "bce")
    assert report.layer_index == 2 and report.part == "dE/dinput"
    assert not report.end_to_end.passed  # the earlier layer's W gradient is wrong end to end


def test_broken_activation_is_named_with_its_mistake(data):
    X, y = data
    report = check_model(_model(last=SigmoidOfTheOutput), X, y, "bce")
    assert report.layer_index == 3 and report.part == "dE/dinput"
    assert report.kind == "derivative_wrong_array"
    assert "evaluated at the output" in report.diagnosis


def test_a_broken_loss_is_named(data):
    from chainrule.losses import BinaryCrossEntropy

    class Summed(BinaryCrossEntropy):
        def backward(self):
            return super().backward() * self._pred_count

        def forward(self, pred, target):
            self._pred_count = np.asarray(pred).shape[0]
            return super().forward(pred, target)

    X, y = data
    report = check_model(_model(), X, y, Summed())
    assert report.layer_index is None and report.layer.startswith("the loss")
    assert report.kind == "mean_forgotten" and "1/m" in report.diagnosis


def test_dropout_is_checked_in_evaluation_mode(data):
    X, y = data
    model = Sequential([Dense(3, 5), ReLU(), Dropout(0.5), Dense(5, 1)], seed=0)
    report = check_model(model, X, y, "mse")
    assert report.passed


def test_max_elements_samples_large_arrays(rng):
    X = rng.normal(size=(4, 20))
    y = rng.normal(size=(4, 2))
    model = Sequential([Dense(20, 30), Tanh(), Dense(30, 2)], seed=1)
    report = check_model(model, X, y, "mse", max_elements=10)
    assert report.passed
    assert report.layers[0].parts["W"].n_checked == 10


def test_bad_arguments(data):
    X, y = data
    with pytest.raises(ValueError, match="list of layers"):
        check_model(object(), X, y, "bce")
    with pytest.raises(ValueError, match="loss must be a loss name"):
        check_model(_model(), X, y, 3)
    with pytest.raises(ValueError, match="max_elements"):
        check_model(_model(), X, y, "bce", max_elements=0)


# --- a softmax output with cross-entropy, and 1-D labels ------------------------------------------


def _softmax_model():
    from chainrule.nn import Softmax

    return Sequential([Dense(3, 4), Tanh(), Dense(4, 3), Softmax()], seed=0)


def test_softmax_with_cross_entropy_passes(rng):
    # Each finite-difference nudge of one probability leaves the row's sum off 1, which
    # CrossEntropy's forward refuses; the check must still compare -t/p with the numbers.
    X, labels = rng.normal(size=(6, 3)), np.array([0, 1, 2, 0, 1, 2])
    assert check_model(_softmax_model(), X, labels, "ce").passed
    assert check_model(_softmax_model(), X, np.eye(3)[labels], "ce").passed


def test_a_broken_cross_entropy_is_still_caught(rng):
    from chainrule.losses import CrossEntropy

    class ForgetsTheMinus(CrossEntropy):
        def backward(self):
            return -super().backward()

    X, labels = rng.normal(size=(6, 3)), np.array([0, 1, 2, 0, 1, 2])
    report = check_model(_softmax_model(), X, labels, ForgetsTheMinus())
    assert not report.passed and report.layer.startswith("the loss")
    assert report.kind == "sign_flipped"


def test_one_dimensional_labels_for_a_sigmoid_model(data):
    X, y = data
    # fit accepts 1-D labels for a one-unit sigmoid output; so does the check.
    report = check_model(_model(), X, y[:, 0], "bce")
    assert report.passed
    assert check_model(_model(), X, y[:, 0].astype(bool), "bce").passed
    broken = check_model(_model(middle=FlippedWeightGradient), X, y[:, 0], "bce")
    assert not broken.passed and broken.layer_index == 2
