"""The diagnosis catalogue: every kind fires on its mistake and stays quiet otherwise.

Each case builds a true gradient T (from a closed form, not from the diagnoser's code), a
claimed gradient G with one textbook mistake, and the hints the relation needs. Each kind is
tested three ways: it fires on its mistake; it is silent when G = T (also with noise far below
the tolerance); and it does not fire on an unrelated wrong gradient with the same hints.
"""

import numpy as np
import pytest

from chainrule._numerics import sigmoid, softmax
from chainrule.gradient_check import MISTAKES, diagnose
from chainrule.gradient_check.diagnosis import KINDS


def _bce_case(rng, n=8):
    z = rng.normal(size=n)
    y = np.tile([0.0, 1.0], n // 2)
    s = sigmoid(z)
    return z, y, s


def case_shape(rng):
    T = rng.normal(size=(3, 2))
    return T.sum(axis=0), T, {}  # a bias gradient summed over the wrong axis


def case_non_finite(rng):
    T = rng.normal(size=5)
    G = T.copy()
    G[2] = np.nan  # (yhat - y)/(yhat(1 - yhat)) at a saturated yhat = 1
    return G, T, {}


def case_zero(rng):
    T = rng.normal(size=(3, 4))
    return np.zeros_like(T), T, {}


def case_sign_flipped(rng):
    T = rng.normal(size=6)
    return -T, T, {}


def case_mean_forgotten(rng):
    m = 4
    T = rng.normal(size=(3, 2))
    return m * T, T, {"m": m}  # the 1/m of the mean forgotten


def case_mean_twice(rng):
    m = 4
    T = rng.normal(size=(3, 2))
    return T / m, T, {"m": m}  # the 1/m applied twice


def case_scaled(rng):
    T = rng.normal(size=(3, 2))
    return 2 * T, T, {"m": 4}  # the 2 of a square where the loss was ½(yhat - y)²


def case_transposed(rng):
    T = rng.normal(size=(3, 3))
    return T.T.copy(), T, {}


def case_derivative_missing(rng):
    z, y, s = _bce_case(rng)
    T = s - y  # dE/dz for sigmoid + BCE
    G = (s - y) / (s * (1 - s))  # dE/dyhat handed over as dE/dz
    return G, T, {"activation": "sigmoid", "z": z}


def case_derivative_twice(rng):
    z, y, s = _bce_case(rng)
    T = s - y
    G = (s - y) * s * (1 - s)  # sigmoid' multiplied in on top of the fused delta
    return G, T, {"activation": "sigmoid", "z": z}


def case_derivative_wrong_array(rng):
    z = rng.normal(size=6)
    upstream = rng.normal(size=6)
    t = np.tanh(z)
    T = upstream * (1 - t**2)
    G = upstream * (1 - np.tanh(t) ** 2)  # tanh'(tanh(z)) instead of tanh'(z)
    return G, T, {"activation": "tanh", "z": z}


def case_wrong_variable(rng):
    z, y, s = _bce_case(rng)
    T = (s - y) / (s * (1 - s))  # dE/dyhat
    G = s - y  # dE/dz given where dE/dyhat was asked
    return G, T, {"activation": "sigmoid", "z": z, "wrt": "yhat"}


def case_softmax_diagonal(rng):
    z = rng.normal(size=(4, 3))
    t = np.eye(3)[[0, 2, 1, 2]]
    p = softmax(z)
    g = -t / p  # dE/dp of the cross-entropy
    T = p - t
    G = g * p * (1 - p)  # only the diagonal of the softmax Jacobian
    return G, T, {"activation": "softmax", "z": z}


def case_term_sign(rng):
    _, y, s = _bce_case(rng)
    a, b = -y / s, (1 - y) / (1 - s)
    return a - b, a + b, {"terms": {"y/yhat": a, "(1-y)/(1-yhat)": b}}


def case_term_missing(rng):
    _, y, s = _bce_case(rng)
    a, b = -y / s, (1 - y) / (1 - s)
    return a, a + b, {"terms": {"y/yhat": a, "(1-y)/(1-yhat)": b}}


def case_sign_wrong_on_some_elements(rng):
    _, y, s = _bce_case(rng)
    T = -(y / s - (1 - y) / (1 - s))
    G = -(y / s + (1 - y) / (1 - s))  # the BCE sign slip: + where - belongs
    return G, T, {"y": y}


CASES = {
    "shape": case_shape,
    "non_finite": case_non_finite,
    "zero": case_zero,
    "sign_flipped": case_sign_flipped,
    "mean_forgotten": case_mean_forgotten,
    "mean_twice": case_mean_twice,
    "scaled": case_scaled,
    "transposed": case_transposed,
    "derivative_missing": case_derivative_missing,
    "derivative_twice": case_derivative_twice,
    "derivative_wrong_array": case_derivative_wrong_array,
    "wrong_variable": case_wrong_variable,
    "softmax_diagonal": case_softmax_diagonal,
    "term_sign": case_term_sign,
    "term_missing": case_term_missing,
    "sign_wrong_on_some_elements": case_sign_wrong_on_some_elements,
}


def kind_of(case: str) -> str:
    """The kind a case must be named: its own name, but a sign wrong on some elements only is
    one term's sign."""
    return "term_sign" if case == "sign_wrong_on_some_elements" else case


def test_every_kind_the_diagnosis_names_has_a_case_and_is_in_the_catalogue():
    assert {kind_of(c) for c in CASES} == set(KINDS)
    assert set(KINDS) <= set(MISTAKES)
    assert len(KINDS) >= 10


def test_a_sign_wrong_on_some_elements_is_a_term_sign(rng):
    G, T, _ = case_sign_wrong_on_some_elements(rng)
    found = diagnose(G, T)
    assert found.kind == "term_sign" and found.where.startswith("elements ")
    assert found.where == "elements " + ", ".join(str(i) for i in found.indices)


@pytest.mark.parametrize("case", sorted(CASES))
def test_kind_fires_on_its_mistake(case, rng):
    G, T, hints = CASES[case](rng)
    found = diagnose(G, T, **hints)
    assert found is not None and found.kind == kind_of(case), found
    assert found.sentence and found.sentence[0].isupper()


@pytest.mark.parametrize("case", sorted(CASES))
def test_kind_is_silent_on_a_correct_gradient(case, rng):
    _, T, hints = CASES[case](rng)
    assert diagnose(T, T, **hints) is None
    # A numerically noisy but correct gradient (noise 1e-11, tolerance 1e-7) is not a mistake.
    noisy = T + 1e-11 * rng.standard_normal(T.shape)
    assert diagnose(noisy, T, **hints) is None


@pytest.mark.parametrize("case", sorted(CASES))
def test_kind_does_not_fire_on_an_unrelated_error(case, rng):
    _, T, hints = CASES[case](rng)
    wrong = T + rng.uniform(0.5, 1.5, T.shape) * rng.choice([-1.0, 1.0], T.shape)
    found = diagnose(wrong, T, **hints)
    assert found is None, found


def test_scaled_names_m_and_its_cause(rng):
    T = rng.normal(size=5)
    found = diagnose(8 * T, T, m=8)
    assert found.factor == pytest.approx(8.0)
    assert "1/m" in found.sentence and "forgotten" in found.sentence


def test_scaled_names_one_over_m(rng):
    T = rng.normal(size=5)
    found = diagnose(T / 8, T, m=8)
    assert found.kind == "mean_twice" and "once too often" in found.sentence


@pytest.mark.parametrize(("c", "phrase"), [(2.0, "doubled"), (0.5, "halved")])
def test_scaled_names_the_squared_error_factor(c, phrase, rng):
    T = rng.normal(size=5)
    found = diagnose(c * T, T)
    assert found.kind == "scaled" and phrase in found.sentence
    assert "(yhat - y)" in found.sentence


def test_scaled_negative_factor_says_both(rng):
    T = rng.normal(size=5)
    found = diagnose(-4 * T, T, m=4)
    assert found.kind == "mean_forgotten" and found.factor == pytest.approx(-4.0)
    assert "sign is flipped" in found.sentence and "1/m" in found.sentence


def test_an_arbitrary_factor_is_named_without_a_cause(rng):
    T = rng.normal(size=5)
    found = diagnose(3.7 * T, T)
    assert found.kind == "scaled" and "3.7" in found.sentence


def test_a_factor_is_not_claimed_from_one_number():
    # One element fits any factor: 3.7 is not a value with a usual cause, so nothing is proven.
    assert diagnose(np.array([3.7]), np.array([1.0])) is None


def test_the_relation_must_hold_at_every_point(rng):
    T = rng.normal(size=6)
    G = 4 * T
    G[3] = 4.5 * T[3]  # one element off: no factor may be stated
    assert diagnose(G, T, m=4) is None


def test_transposed_non_square_weight_gradient(rng):
    T = rng.normal(size=(3, 2))
    found = diagnose(T.T.copy(), T)
    assert found.kind == "transposed" and "(2, 3)" in found.sentence


def test_transposed_and_scaled(rng):
    T = rng.normal(size=(3, 3))
    found = diagnose(5 * T.T, T, m=5)
    assert found.kind == "transposed" and "1/m" in found.sentence


def test_symmetric_matrix_is_not_called_transposed(rng):
    A = rng.normal(size=(3, 3))
    T = A + A.T
    found = diagnose(T + rng.normal(size=(3, 3)), T)
    assert found is None or found.kind != "transposed"


def test_relu_derivative_missing(rng):
    z = rng.normal(size=8)
    upstream = rng.normal(size=8)
    T = upstream * (z > 0)
    found = diagnose(upstream, T, activation="relu", z=z)
    assert found.kind == "derivative_missing"


def test_activation_relation_with_a_forgotten_m(rng):
    z, y, s = _bce_case(rng)
    T = (s - y) / 8
    found = diagnose((s - y) * s * (1 - s), T, activation="sigmoid", z=z, m=8)
    assert found.kind == "derivative_twice" and "1/m" in found.sentence


def test_output_form_evaluated_at_the_input(rng):
    z = rng.normal(size=6)
    upstream = rng.normal(size=6)
    s = sigmoid(z)
    T = upstream * s * (1 - s)
    found = diagnose(upstream * z * (1 - z), T, activation="sigmoid", z=z)
    assert found.kind == "derivative_wrong_array" and "at the input z" in found.sentence


def test_sign_wrong_on_some_elements_names_the_one_minus_y_term(rng):
    G, T, hints = case_sign_wrong_on_some_elements(rng)
    found = diagnose(G, T, **hints)
    assert "y = 0" in found.sentence and "(1 - y)" in found.sentence
    assert "inner derivative is -1" in found.sentence
    assert found.indices == (0, 2, 4, 6)


def test_sign_wrong_on_some_elements_without_targets_lists_the_elements(rng):
    G, T, _ = case_sign_wrong_on_some_elements(rng)
    found = diagnose(G, T)
    assert found.kind == "term_sign" and "4 of 8" in found.sentence


def test_two_terms_with_the_wrong_sign(rng):
    _, y, s = _bce_case(rng)
    a, b, c = -y / s, (1 - y) / (1 - s), 0.1 * s
    found = diagnose(-a - b + c, a + b + c, terms=[a, b, c])
    assert found.kind == "term_sign" and "'term 1' and 'term 2'" in found.sentence


def test_terms_that_do_not_add_up_are_refused(rng):
    T = rng.normal(size=4)
    with pytest.raises(ValueError, match="do not add up"):
        diagnose(-T, T + 1, terms=[T, T])


def test_wrt_is_validated(rng):
    T = rng.normal(size=4)
    with pytest.raises(ValueError, match="wrt must be 'z' or 'yhat'"):
        diagnose(2 * T + 1, T, activation="tanh", z=T, wrt="w")


def test_hints_of_the_wrong_shape_are_refused(rng):
    T = rng.normal(size=4)
    with pytest.raises(ValueError, match=r"hint z has shape \(3,\)"):
        diagnose(2 * T + 1, T, activation="tanh", z=np.zeros(3))
    with pytest.raises(ValueError, match="hint y"):
        diagnose(2 * T + 1, T, y=np.zeros(5))


def test_extra_activation_factor_through_the_linear_map(rng):
    # Logistic regression, dE/dw = Xᵀ(σ(Xw) - y)/m, with σ' multiplied in: the relation lives
    # on dE/dz, and is found through X while m < 2n.
    m, n = 5, 4
    X = rng.normal(size=(m, n))
    w = rng.normal(size=n)
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    z = X @ w
    s = sigmoid(z)
    T = X.T @ (s - y) / m
    G = X.T @ ((s - y) * s * (1 - s)) / m
    found = diagnose(G, T, activation="sigmoid", z=z, x=X)
    assert found.kind == "derivative_twice" and "Xᵀ" in found.sentence
    assert diagnose(T, T, activation="sigmoid", z=z, x=X) is None
    assert diagnose(T + 0.3, T, activation="sigmoid", z=z, x=X) is None


def test_linear_route_declines_when_it_cannot_tell(rng):
    m, n = 10, 2  # m >= 2n: every pair (G, T) is consistent with some dE/dz
    X = rng.normal(size=(m, n))
    z = rng.normal(size=m)
    T = rng.normal(size=n)
    assert diagnose(T + 1, T, activation="sigmoid", z=z, x=X) is None


# --- every documented kind, and no diagnosis stated on a relation broken at one element ----------

DOCUMENTED_KINDS = ["sign_flipped", "mean_forgotten", "mean_twice", "scaled", "transposed",
                    "derivative_missing", "derivative_twice", "derivative_wrong_array",
                    "softmax_diagonal", "wrong_variable"]


def test_catalogue_holds_every_documented_kind():
    assert set(DOCUMENTED_KINDS) <= set(MISTAKES)
    assert len(MISTAKES) >= 10


@pytest.mark.parametrize("kind", [*DOCUMENTED_KINDS, "zero"])
def test_a_relation_broken_at_one_element_is_not_stated(kind, rng):
    G, T, hints = CASES[kind](rng)
    G = np.array(G, dtype=float)
    assert diagnose(G, T, **hints).kind == kind  # the case as built does fire
    for i in (0, G.size - 1):
        broken = G.copy()
        broken.flat[i] += 0.75 * (1.0 + abs(broken.flat[i]))
        found = diagnose(broken, T, **hints)
        assert found is None or found.kind != kind, (i, found)
