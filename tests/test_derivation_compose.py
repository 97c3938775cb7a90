"""Compositions: the four textbook results, the weight step, and the domain findings."""

import numpy as np
import pytest
import sympy

from chainrule.derivation import derive
from chainrule.derivation.functions import sigmoid
from chainrule.derivation.printing import to_text
from chainrule.derivation.symbols import eta, p, t, w, x, y, yhat, z
from test_derivation_oracle import elementary, same


def _exactly(a, b):
    return sympy.simplify(sympy.sympify(a) - sympy.sympify(b)) == 0


def test_sigmoid_bce_is_yhat_minus_y():
    d = derive(activation="sigmoid", loss="bce")
    assert _exactly(d.result, yhat - y)
    assert d.result == yhat - y  # already in its simplest form, not only equal to it
    assert _exactly(d.result_input_form, sigmoid(z) - y)
    assert d.warnings == []
    assert d.singularities == []


def test_sigmoid_bce_with_weights_is_x_times_yhat_minus_y():
    d = derive(activation="sigmoid", loss="bce", weights=True)
    assert _exactly(d.result, x * (yhat - y))
    assert _exactly(d.extra["update"], -eta * x * (yhat - y))
    assert _exactly(d.result_input_form, x * (sigmoid(w * x) - y))


def test_softmax_ce_is_p_minus_t_under_the_stated_assumption():
    d = derive(activation="softmax", loss="ce")
    assert _exactly(d.result, p - t)
    assert any("t_k = 1" in a for a in d.assumptions)
    assert "Σ_k t_k = 1" in d.to_text()
    # ce_with_logits is the same derivation
    assert _exactly(derive(loss="ce_with_logits").result, p - t)
    assert _exactly(derive(activation="softmax", loss="ce", weights=True).result, x * (p - t))


def test_identity_half_squared_error_is_yhat_minus_y():
    d = derive(activation="identity", loss="mse", half=True)
    assert _exactly(d.result, yhat - y)
    # without the 1/2 the factor 2 stays
    assert _exactly(derive(activation="identity", loss="mse").result, 2 * (yhat - y))


def test_tanh_bce_is_one_plus_yhat_times_yhat_minus_y_over_yhat():
    d = derive(activation="tanh", loss="bce")
    assert _exactly(d.result, (1 + yhat) * (yhat - y) / yhat)
    assert to_text(d.result) == "(1 + yhat)(yhat - y)/yhat"
    assert _exactly(d.result_input_form, (1 + sympy.tanh(z)) * (sympy.tanh(z) - y) / sympy.tanh(z))
    dw = derive(activation="tanh", loss="bce", weights=True)
    # tanh + BCE: (yhat + 1) x (yhat - y) / yhat
    assert _exactly(dw.result, (yhat + 1) * x * (yhat - y) / yhat)
    assert _exactly(dw.extra["update"], -eta * (yhat + 1) * x * (yhat - y) / yhat)


def test_tanh_bce_flags_yhat_zero_and_the_domain_conflict():
    d = derive(activation="tanh", loss="bce")
    sing = [s for s in d.singularities if s.kind == "division by zero"]
    assert [(str(s.variable), s.value) for s in sing] == [("yhat", 0)]
    assert sing[0].input_form == "z = 0"
    text = " ".join(d.warnings)
    assert "yhat = 0 (z = 0)" in text
    assert "(-1, 1)" in text and "(0, 1)" in text  # tanh's range against BCE's domain
    assert "(-1, 0]" in text and "z ≤ 0" in text
    # the fix, in words
    assert "sigmoid" in text and "(tanh(z) + 1)/2 = sigmoid(2z)" in text
    assert "bce_with_logits" in text


def test_relu_bce_conflicts_on_both_logs():
    d = derive(activation="relu", loss="bce")
    text = " ".join(d.warnings)
    assert "log(yhat)" in text and "z ≤ 0" in text
    assert "log(1 - yhat)" in text and "z ≥ 1" in text
    assert any(s.kind == "corner" and s.value == 0 for s in d.singularities)


def test_sigmoid_mse_has_no_warnings():
    d = derive(activation="sigmoid", loss="mse", half=True)
    assert _exactly(d.result, yhat * (1 - yhat) * (yhat - y))
    assert d.warnings == []


@pytest.mark.parametrize(
    ("activation", "loss", "half"),
    [("tanh", "bce", False), ("sigmoid", "bce", False), ("identity", "mse", True),
     ("softplus", "mse", False), ("elu", "mse", True), ("gelu", "mse", True),
     ("silu", "bce", False), ("softsign", "huber", False), ("identity", "bce_with_logits", False)],
)
def test_input_form_matches_finite_differences(activation, loss, half, rng):
    d = derive(activation=activation, loss=loss, half=half)
    params = {sympy.Symbol("alpha", positive=True): 1, sympy.Symbol("delta", positive=True): 1}
    E = sympy.lambdify((z, y), elementary(d.function.subs(params)), modules=["mpmath"])
    grad = sympy.lambdify((z, y), elementary(d.result_input_form.subs(params)), modules=["mpmath"])
    # z below 0.9 keeps every activation's output below 1, inside BCE's domain
    for zv, yv in zip(rng.uniform(0.1, 0.9, 4), rng.uniform(0.05, 0.95, 4), strict=True):
        h = 1e-6
        numeric = (float(E(zv + h, yv)) - float(E(zv - h, yv))) / (2 * h)
        assert np.isclose(float(grad(zv, yv)), numeric, rtol=1e-6, atol=1e-8)


def test_result_in_output_form_equals_input_form():
    for activation in ("tanh", "sigmoid", "softsign", "softplus"):
        d = derive(activation=activation, loss="bce")
        f = d.steps[0].terms["f"]
        assert same(d.result.subs(yhat, f), d.result_input_form)


def test_unsupported_softmax_pairing_is_explained():
    with pytest.raises(ValueError, match="softmax pairs with cross-entropy"):
        derive(activation="softmax", loss="mse")


def test_bad_names_and_arguments():
    with pytest.raises(ValueError, match="activation 'tan_h'; known: identity, sigmoid"):
        derive(activation="tan_h", loss="bce")
    with pytest.raises(ValueError, match="loss 'bce2'"):
        derive(activation="tanh", loss="bce2")
    with pytest.raises(ValueError, match="not both"):
        derive("x", activation="tanh")
    with pytest.raises(ValueError, match="needs both"):
        derive("sigmoid", weights=True)
    with pytest.raises(ValueError, match="Nothing to derive"):
        derive()


# --- every printed form is right: piecewise activations with the Huber loss -----------------


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "selu"])
def test_huber_input_form_keeps_the_quadratic_zone(activation):
    import sympy

    from chainrule.derivation.library import DEFAULT_NUMERIC, activation_expr, loss_expr
    from chainrule.derivation.symbols import delta, y, yhat, z

    d = derive(activation=activation, loss="huber")
    E = loss_expr("huber", yhat, y).subs(yhat, activation_expr(activation, z))
    truth = sympy.diff(E.rewrite(sympy.Piecewise), z)
    params = {**DEFAULT_NUMERIC.get(activation, {})}
    # z = 0.945, y = 0.209, delta = 0.992: |yhat - y| <= delta for relu, the quadratic zone,
    # where dE/dz = yhat - y = 0.736 (not delta = 0.992); and points in every other zone
    for zv, yv, dv in ((0.945, 0.209, 0.992), (3.0, 0.2, 0.5), (-0.4, 0.3, 1.0),
                       (-2.0, 1.5, 0.25), (0.1, -0.3, 2.0)):
        at = {z: zv, y: yv, delta: dv, **params}
        got = float(d.result_input_form.subs(at))
        want = float(truth.subs(at))
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12), (zv, yv, dv)
        h = 1e-6
        numeric = (float(E.subs({**at, z: zv + h})) - float(E.subs({**at, z: zv - h}))) / (2 * h)
        assert got == pytest.approx(numeric, rel=1e-6, abs=1e-8)
    if activation == "relu":
        assert float(d.result_input_form.subs({z: 0.945, y: 0.209, delta: 0.992})) == (
            pytest.approx(0.736))


def test_weights_input_form_is_checked_too():
    import sympy

    from chainrule.derivation.symbols import delta, w, x, y

    d = derive(activation="relu", loss="huber", weights=True)
    at = {w: 0.5, x: 1.89, y: 0.209, delta: 0.992}  # z = w·x = 0.945
    assert float(d.result_input_form.subs(at)) == pytest.approx(1.89 * 0.736)
    assert isinstance(d.result_input_form, sympy.Expr)


# --- the mean over a batch --------------------------------------------------------------------


def test_mean_loss_carries_one_over_m():
    from chainrule.derivation.symbols import m, y, yhat

    d = derive(loss="mse", mean=True)
    assert _exactly(d.result, 2 * (yhat - y) / m)
    assert "Mean over the batch" in d.to_text()
    composed = derive(activation="sigmoid", loss="bce", mean=True)
    assert _exactly(composed.result, (yhat - y) / m)
    with pytest.raises(ValueError, match="mean=True needs a loss"):
        derive("sigmoid", mean=True)


# --- softmax + cross-entropy: p - t against finite differences ------------------------------------


def _softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


@pytest.mark.parametrize("targets", ["one-hot", "distribution"])
def test_softmax_ce_p_minus_t_against_finite_differences(targets, rng):
    d = derive(activation="softmax", loss="ce")
    grad = sympy.lambdify((p, t), d.result, modules="numpy")
    zv = rng.normal(size=4)
    tv = np.eye(4)[2] if targets == "one-hot" else rng.dirichlet(np.ones(4))

    def E(v):
        return -np.sum(tv * np.log(_softmax(v)))

    h = 1e-6
    numeric = np.array([(E(zv + h * e) - E(zv - h * e)) / (2 * h) for e in np.eye(4)])
    np.testing.assert_allclose(grad(_softmax(zv), tv), numeric, rtol=1e-6, atol=1e-9)


def test_softmax_ce_assumption_is_needed():
    # With targets that do not sum to one the true gradient is p·Σt - t, not p - t: the
    # stated assumption carries weight, and the test above would notice it missing.
    zv = np.array([0.3, -1.2, 0.8])
    tv = np.array([0.5, 0.5, 0.5])

    def E(v):
        return -np.sum(tv * np.log(_softmax(v)))

    h = 1e-6
    numeric = np.array([(E(zv + h * e) - E(zv - h * e)) / (2 * h) for e in np.eye(3)])
    assert not np.allclose(numeric, _softmax(zv) - tv, atol=1e-3)


# --- a with-logits loss applies its own activation: never a second one before it ----------------


@pytest.mark.parametrize("path", [{}, {"vector": True}, {"layer": True}])
@pytest.mark.parametrize(("activation", "loss", "fix"), [
    ("softmax", "ce_with_logits", "Use loss='ce' with activation='softmax', or "
                                  "activation='identity' with loss='ce_with_logits'."),
    ("sigmoid", "bce_with_logits", "Use loss='bce' with activation='sigmoid', or "
                                   "activation='identity' with loss='bce_with_logits'."),
])
def test_an_activation_applied_twice_is_refused_on_every_path(activation, loss, fix, path):
    # softmax then ce_with_logits is softmax(softmax(z)): its gradient is not p - t
    with pytest.raises(ValueError, match=f"would apply the {activation} twice") as err:
        derive(activation=activation, loss=loss, **path)
    assert fix in str(err.value)


def test_a_network_ending_in_the_activation_of_its_logits_loss_is_refused():
    with pytest.raises(ValueError, match="would apply the softmax twice"):
        derive(network="relu,softmax", loss="ce_with_logits")


@pytest.mark.parametrize("loss", ["bce_with_logits", "ce_with_logits"])
def test_any_activation_before_a_logits_loss_is_refused_naming_identity(loss):
    with pytest.raises(ValueError, match="must be identity; got tanh"):
        derive(activation="tanh", loss=loss)


def test_the_logits_losses_on_the_identity_still_derive():
    assert _exactly(derive(activation="identity", loss="ce_with_logits").result, p - t)
    assert derive(activation="identity", loss="bce_with_logits").warnings == []


def test_loss_titles_come_from_the_loss_classes():
    from chainrule import losses

    d = derive(activation="sigmoid", loss="bce")
    assert str(d.steps[0].terms["name"]) == losses.BinaryCrossEntropy.title


# --- wrt is never ignored: a named derivation takes the variable it derives by, or refuses ------


def test_a_composition_by_w_is_the_weights_derivation():
    by_w = derive(activation="sigmoid", loss="bce", wrt="w")
    assert by_w.var == w and _exactly(by_w.result, derive(activation="sigmoid", loss="bce",
                                                              weights=True).result)
    assert derive(activation="sigmoid", loss="bce", wrt="z").var == z


def test_an_activation_by_z_is_written_in_z():
    d = derive(activation="sigmoid", wrt="z")
    assert d.var == z and d.title.startswith("d/dz")
    assert _exactly(d.result.subs(z, x), derive("sigmoid").result)


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"activation": "sigmoid", "loss": "bce", "wrt": "yhat"}, "dE/dyhat is the loss's own"),
    ({"activation": "sigmoid", "loss": "bce", "wrt": "x"}, "or dE/dw (wrt='w'"),
    ({"activation": "tanh", "loss": "bce", "weights": True, "wrt": "z"}, "got wrt='z'"),
    ({"activation": "sigmoid", "wrt": "y"}, "give wrt='x' or 'z'"),
    ({"expression": "softmax", "wrt": "x"}, "give wrt='z'"),
    ({"loss": "bce", "wrt": "t"}, "derived by its prediction yhat"),
    ({"loss": "ce", "wrt": "yhat"}, "or give wrt='p'"),
])
def test_a_wrt_a_named_derivation_cannot_take_is_refused(kwargs, words):
    with pytest.raises(ValueError) as err:
        derive(**kwargs)
    assert words in str(err.value)
