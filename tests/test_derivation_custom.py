"""Custom activations from formulas: derived, compiled, verified, usable in a model."""

import numpy as np
import pytest

from chainrule.derivation.custom import FormulaActivation, activation_from_formula
from chainrule.derivation.parser import FormulaError
from chainrule.nn import Activation, Dense, Sequential, from_config


def test_activation_from_formula_builds_a_layer():
    swish = activation_from_formula("x * sigmoid(x)", name="swish")
    assert isinstance(swish, Activation)
    assert isinstance(swish, FormulaActivation)
    assert swish.get_config() == {"formula": "x * sigmoid(x)", "name": "swish"}
    assert swish.name == "swish"
    assert swish.parameters() == [] and swish.gradients() == []


def test_the_model_file_config_rebuilds_the_layer():
    swish = activation_from_formula("x * sigmoid(x)", name="swish")
    again = from_config(swish.name, swish.get_config())
    assert isinstance(again, FormulaActivation) and again is not swish
    assert again.formula == swish.formula and again.name == "swish"


def test_forward_and_backward_are_swish(rng):
    swish = activation_from_formula("x * sigmoid(x)")
    z = rng.normal(size=(4, 3))
    s = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(swish.forward(z), z * s, rtol=1e-12)
    grad = rng.normal(size=z.shape)
    np.testing.assert_allclose(swish.backward(grad), grad * (s + z * s * (1 - s)), rtol=1e-12)
    np.testing.assert_allclose(swish.derivative(z), s + z * s * (1 - s), rtol=1e-12)


def test_extreme_inputs_stay_finite():
    swish = activation_from_formula("z * sigmoid(z)")
    z = np.array([-1e9, -1e3, 0.0, 1e3, 1e9])
    assert np.all(np.isfinite(swish.forward(z)))
    assert np.all(np.isfinite(swish.backward(np.ones_like(z))))


def test_dtype_is_kept():
    layer = activation_from_formula("tanh(x) + 0.1*x")
    z = np.linspace(-2, 2, 5, dtype=np.float32)
    assert layer.forward(z).dtype == np.float32
    assert layer.backward(np.ones_like(z)).dtype == np.float32


def test_constant_derivative_has_the_input_shape():
    layer = activation_from_formula("3*x + 1")
    z = np.zeros((2, 3))
    layer.forward(z)
    np.testing.assert_array_equal(layer.backward(np.ones_like(z)), np.full((2, 3), 3.0))


def test_usable_in_a_sequential_model(rng):
    model = Sequential([
        Dense(3, 4, seed=0, dtype="float64"),
        activation_from_formula("x*sigmoid(x)"),
        Dense(4, 1, seed=1, dtype="float64"),
    ])
    X = rng.normal(size=(5, 3))
    out = model.forward(X)
    g = model.backward(np.ones_like(out))
    assert g.shape == X.shape
    # the input gradient matches finite differences through the custom layer
    eps = 1e-6
    Xp, Xm = X.copy(), X.copy()
    Xp[0, 0] += eps
    Xm[0, 0] -= eps
    numeric = (model.forward(Xp).sum() - model.forward(Xm).sum()) / (2 * eps)
    assert np.isclose(g[0, 0], numeric, rtol=1e-6)


def test_backward_before_forward_and_shape_mismatch():
    layer = activation_from_formula("softplus(x)")
    with pytest.raises(RuntimeError, match=r"FormulaActivation\.backward\(\) was called before"):
        layer.backward(np.ones(3))
    layer.forward(np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        layer.backward(np.ones(4))


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("__import__('os').system('echo hi')", "column 1"),
        ("x * y", "Unknown name 'y'"),
        ("log(x)", "not finite at x = -2.3"),
        ("x +", "Cannot parse"),
    ],
)
def test_bad_formulas_are_refused(formula, message):
    with pytest.raises(FormulaError, match=message.replace("(", r"\(")):
        activation_from_formula(formula)


def test_leaky_relu_in_a_formula_uses_the_default_slope():
    layer = activation_from_formula("leaky_relu(x)")
    np.testing.assert_allclose(layer.forward(np.array([-2.0, 3.0])), [-0.02, 3.0])
