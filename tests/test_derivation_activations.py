"""The engine reproduces f' of every built-in activation, and agrees with the library's backward."""

import numpy as np
import pytest
import sympy

from chainrule import losses, nn
from chainrule.derivation import derive
from chainrule.derivation.functions import NUMPY_FUNCTIONS
from chainrule.derivation.library import (
    ACTIVATION_INFO,
    LOSS_INFO,
    SELU_ALPHA,
    SELU_SCALE,
    activation_expr,
    activation_names,
    canonical_activation,
    canonical_loss,
    output_derivative,
)
from chainrule.derivation.symbols import alpha, x, yhat

ELEMENTWISE = [n for n in nn.ACTIVATIONS if nn.ACTIVATIONS[n].elementwise]

# f' by hand, as the textbooks write it (an oracle independent of the engine's steps)
HAND = {
    "identity": lambda z: np.ones_like(z),
    "sigmoid": lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2,
    "tanh": lambda z: 1 / np.cosh(z) ** 2,
    "relu": lambda z: (z > 0).astype(float),
    "softsign": lambda z: 1 / (1 + np.abs(z)) ** 2,
    "softplus": lambda z: 1 / (1 + np.exp(-z)),
    "gaussian": lambda z: -2 * z * np.exp(-(z**2)),
    "binary_step": lambda z: np.zeros_like(z),
}


def _compiled(expr, params=None):
    return sympy.lambdify(x, expr.subs(params or {}), modules=[NUMPY_FUNCTIONS, "numpy"])


def _points(rng, n=25):
    z = rng.uniform(-4, 4, n)
    return z[np.abs(z) > 1e-3]  # away from the corners at 0


def test_registries_use_the_engines_names():
    assert set(ELEMENTWISE) <= set(activation_names())
    assert set(nn.ACTIVATIONS) - set(ELEMENTWISE) == {"softmax", "log_softmax"}
    assert set(losses.LOSSES) == set(LOSS_INFO)
    for name in nn.ACTIVATIONS:
        assert canonical_activation(name) == name


def test_the_engine_reads_its_texts_from_the_core_classes():
    from chainrule.derivation.library import activation_title, loss_title

    for name, cls in nn.ACTIVATIONS.items():
        assert activation_title(name) == cls.title
        if name in ACTIVATION_INFO:
            assert ACTIVATION_INFO[name].summary == cls.formula
            # the engine's output form exists wherever the core computes one from the output
            assert (cls.output_form_text is None) or ACTIVATION_INFO[name].output_form
    for name, cls in losses.LOSSES.items():
        assert loss_title(name) == cls.title and LOSS_INFO[name].summary == cls.formula
        assert LOSS_INFO[name].on_logits == cls.from_logits
    assert activation_title("binary_step") == "binary step"
    assert loss_title("log_loss") == "binary cross-entropy"


def _spellings(registry, aliases):
    """Every spelling the core's get accepts: names, aliases, class names, other cases."""
    for name in registry:
        yield name, name
        yield registry[name].__name__, name
        yield name.upper().replace("_", "-"), name
    for alias, name in aliases.items():
        yield alias, name


@pytest.mark.parametrize(("spelling", "name"), list(_spellings(nn.ACTIVATIONS, nn.ALIASES)))
def test_every_activation_name_of_the_core_is_one_of_the_engine(spelling, name):
    assert type(nn.get(spelling)) is nn.ACTIVATIONS[name]
    assert canonical_activation(spelling) == name
    if name in ELEMENTWISE:
        assert derive(activation=spelling).result == derive(activation=name).result


@pytest.mark.parametrize(("spelling", "name"), list(_spellings(losses.LOSSES, losses.ALIASES)))
def test_every_loss_name_of_the_core_is_one_of_the_engine(spelling, name):
    assert type(losses.get(spelling)) is losses.LOSSES[name]
    assert canonical_loss(spelling) == name


def test_selu_constants_are_the_cores():
    assert float(SELU_SCALE) == nn.SELU.scale and float(SELU_ALPHA) == nn.SELU.alpha


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_engine_agrees_with_the_library_backward(name, rng):
    layer = nn.get(name)
    params = {alpha: layer.alpha} if hasattr(layer, "alpha") and name != "selu" else {}
    d = derive(name)
    z = _points(rng)
    # forward values agree too: the engine differentiates the function the library computes
    np.testing.assert_allclose(layer.forward(z), _compiled(d.function, params)(z), rtol=1e-10,
                               atol=1e-12)
    backward = layer.backward(np.ones_like(z))
    engine = np.broadcast_to(_compiled(d.result, params)(z), z.shape)
    np.testing.assert_allclose(engine, backward, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", activation_names())
def test_engine_agrees_with_finite_differences(name, rng):
    params = {alpha: sympy.Rational(1, 10)}
    d = derive(name)
    f = _compiled(d.function, params)
    df = _compiled(d.result, params)
    z = _points(rng)
    h = 1e-6
    numeric = (f(z + h) - f(z - h)) / (2 * h)
    np.testing.assert_allclose(np.broadcast_to(df(z), z.shape), numeric, rtol=1e-6, atol=1e-7)
    if name in HAND:
        np.testing.assert_allclose(np.broadcast_to(df(z), z.shape), HAND[name](z), rtol=1e-9,
                                   atol=1e-12)


@pytest.mark.parametrize("name", [n for n in activation_names()
                                  if ACTIVATION_INFO[n].output_form is not None])
def test_output_form_matches_the_derivative(name, rng):
    params = {alpha: sympy.Rational(3, 10)}
    d = derive(name)
    assert d.result_output_form == output_derivative(name, yhat)
    z = _points(rng)
    out = _compiled(d.function, params)(z)
    by_output = sympy.lambdify(yhat, d.result_output_form.subs(params), modules="numpy")
    np.testing.assert_allclose(np.broadcast_to(by_output(out), z.shape),
                               np.broadcast_to(_compiled(d.result, params)(z), z.shape),
                               rtol=1e-9, atol=1e-12)


def test_output_forms_as_backprop_uses_them():
    s, t_, f = yhat, yhat, yhat
    assert derive("sigmoid").result_output_form == s * (1 - s)
    assert derive("tanh").result_output_form == 1 - t_**2
    assert derive("softplus").result_output_form == 1 - sympy.exp(-f)
    elu = derive("elu").result_output_form
    assert elu.args[1][0] == f + alpha  # f + alpha for z < 0


def test_non_invertible_activations_have_no_output_form():
    for name in ("gelu", "silu", "mish", "gaussian"):
        assert derive(name).result_output_form is None


def test_activation_expr_matches_library_numerics(rng):
    from chainrule._numerics import sigmoid as stable_sigmoid

    z = rng.normal(size=10)
    np.testing.assert_allclose(_compiled(activation_expr("sigmoid", x))(z), stable_sigmoid(z))


def test_softmax_alone_derives_its_jacobian():
    d = derive("softmax")
    assert d.kind == "jacobian"
    assert d.to_dict()["result"]["J"] == "diag(p) - p pᵀ"


# --- the activations the engine documents ---------------------------------------------------------

DOCUMENTED_ACTIVATIONS = ["identity", "sigmoid", "tanh", "softsign", "relu", "leaky_relu",
                          "elu", "selu", "softplus", "gelu", "silu", "mish", "gaussian",
                          "binary_step"]


def test_the_documented_list_is_the_tested_list():
    assert [canonical_activation(n) for n in DOCUMENTED_ACTIVATIONS] == DOCUMENTED_ACTIVATIONS
    assert set(DOCUMENTED_ACTIVATIONS) <= set(activation_names())
    # The backward comparison runs over the library's elementwise activations: every documented
    # name the library implements is in it (gaussian and the binary step are engine-only).
    assert set(DOCUMENTED_ACTIVATIONS) - set(ELEMENTWISE) == {"gaussian", "binary_step"}


