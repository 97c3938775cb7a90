"""gradcheck: the finite differences, the report, the inputs left alone, and the
logistic-regression diagnoses (1/m forgotten, sign flipped, sigmoid' on top of sigmoid + BCE)."""

import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import chainrule
from chainrule._numerics import sigmoid
from chainrule.gradient_check import GradcheckReport, Hints, PrecisionWarning, gradcheck

# --- logistic regression: the textbook mistakes --------------------------------------------------


@pytest.fixture
def logreg(rng):
    m, n = 5, 3
    X = rng.normal(size=(m, n))
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    w = rng.normal(size=n)

    def loss(w):
        s = sigmoid(X @ w)
        return -np.mean(y * np.log(s) + (1 - y) * np.log(1 - s))

    def grad(w):  # linear regression's X^T(z - y), with the mean's 1/m
        return X.T @ (sigmoid(X @ w) - y) / m

    return SimpleNamespace(X=X, y=y, w=w, loss=loss, grad=grad, m=m)


def test_logistic_regression_correct_gradient_passes(logreg):
    report = gradcheck(logreg.loss, logreg.grad, logreg.w, m=logreg.m)
    assert report.passed and report.diagnosis is None
    assert report.max_abs_error < 1e-9


def test_logistic_regression_missing_one_over_m_is_factor_m(logreg):
    m = logreg.m
    report = gradcheck(logreg.loss, lambda w: m * logreg.grad(w), logreg.w, m=m)
    assert not report.passed
    assert report.kind == "mean_forgotten" and report.factor == pytest.approx(m)
    assert "1/m" in report.diagnosis and "forgotten" in report.diagnosis


def test_hints_object_and_hint_keywords_give_the_same_diagnosis(logreg):
    m = logreg.m
    by_object = gradcheck(logreg.loss, lambda w: m * logreg.grad(w), logreg.w, hints=Hints(m=m))
    by_keyword = gradcheck(logreg.loss, lambda w: m * logreg.grad(w), logreg.w, m=m)
    assert by_object.diagnosis == by_keyword.diagnosis and by_object.kind == "mean_forgotten"


def test_unknown_or_doubled_hints_are_refused(logreg):
    with pytest.raises(TypeError, match="unexpected keyword argument 'batch'"):
        gradcheck(logreg.loss, logreg.grad, logreg.w, batch=8)
    with pytest.raises(TypeError, match="both hints= and the hint 'm'"):
        gradcheck(logreg.loss, logreg.grad, logreg.w, hints=Hints(m=8), m=8)


def test_logistic_regression_missing_one_over_m_without_the_hint(logreg):
    report = gradcheck(logreg.loss, lambda w: logreg.m * logreg.grad(w), logreg.w)
    assert report.kind == "scaled" and "if 5 is the batch size m" in report.diagnosis


def test_logistic_regression_flipped_sign(logreg):
    report = gradcheck(logreg.loss, lambda w: -logreg.grad(w), logreg.w, m=logreg.m)
    assert report.kind == "sign_flipped" and report.factor == -1.0


def test_logistic_regression_extra_sigmoid_derivative(logreg):
    X, y, w, loss, m = logreg.X, logreg.y, logreg.w, logreg.loss, logreg.m

    def doubled(w):
        s = sigmoid(X @ w)
        return X.T @ ((s - y) * s * (1 - s)) / m

    report = gradcheck(loss, doubled, w, activation="sigmoid", z=X @ w, x=X, m=m)
    assert report.kind == "derivative_twice"
    assert "extra activation factor" in report.diagnosis
    # The same mistake on dE/dz itself, where the relation is elementwise.
    z = X @ w
    report = gradcheck(
        lambda z: -np.mean(y * np.log(sigmoid(z)) + (1 - y) * np.log(1 - sigmoid(z))),
        lambda z: (sigmoid(z) - y) * sigmoid(z) * (1 - sigmoid(z)) / m,
        z, activation="sigmoid", z=z, m=m,
    )
    assert report.kind == "derivative_twice"


def test_bce_sign_slip_is_named_numerically_as_the_one_minus_y_term(rng):
    yhat = rng.uniform(0.1, 0.9, 6)
    y = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])

    def loss(p):
        return -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))

    report = gradcheck(loss, lambda p: -(y / p + (1 - y) / (1 - p)), yhat, y=y)
    assert report.kind == "term_sign" and report.where.startswith("elements ")
    assert "where y = 0" in report.diagnosis and "inner derivative is -1" in report.diagnosis


# --- the numerics -------------------------------------------------------------------------------


def test_richardson_is_accurate_near_the_edge_of_the_domain():
    # log(1 - p) at p = 0.999: a step of 1e-3 would reach log(0). The step adapts.
    p = np.array([0.999, 0.5, 1e-3])
    report = gradcheck(lambda p: -np.sum(np.log(1 - p)), lambda p: 1 / (1 - p), p)
    assert report.passed
    assert report.numeric[0][0, 0] == pytest.approx(1000.0, rel=1e-8)


def test_a_one_percent_error_is_caught(rng):
    x = rng.normal(size=4)
    report = gradcheck(lambda x: np.sum(np.sin(x)), lambda x: 1.01 * np.cos(x), x)
    assert not report.passed and report.kind == "scaled"


def test_a_kink_is_not_crossed_by_the_step():
    x = np.array([-0.5, 2e-4, 0.7])  # 2e-4 is closer to the ReLU kink than the first step
    report = gradcheck(lambda x: np.sum(np.maximum(x, 0.0) ** 2),
                       lambda x: 2 * np.maximum(x, 0.0), x)
    assert report.passed


def test_function_not_finite_at_the_point_is_an_error():
    with pytest.raises(ValueError, match="not finite at the given inputs"), np.errstate(
        divide="ignore"
    ):
        gradcheck(lambda p: np.log(p).sum(), lambda p: 1 / p, np.array([0.0, 0.5]))


@given(
    coef=st.lists(st.floats(-3, 3), min_size=3, max_size=3),
    x=st.lists(st.floats(-2, 2), min_size=1, max_size=5),
)
def test_property_exact_gradient_passes_and_negation_is_named(coef, x):
    a, b, c = coef
    x = np.array(x)

    def f(x):
        return np.sum(a * np.sin(x) + b * x**3 + c * np.exp(0.3 * x))

    def g(x):
        return a * np.cos(x) + 3 * b * x**2 + 0.3 * c * np.exp(0.3 * x)

    assert gradcheck(f, g, x).passed
    flipped = gradcheck(f, lambda x: -g(x), x)
    if np.any(np.abs(g(x)) > 1e-3):
        assert not flipped.passed and flipped.kind == "sign_flipped"


# --- the inputs are never changed ---------------------------------------------------------------


def test_inputs_are_never_changed(rng):
    x = rng.normal(size=(3, 2))
    w = rng.normal(size=2)
    before = (x.copy(), w.copy())

    def f(x, w):
        return np.sum(np.tanh(x @ w))

    def g(x, w):
        d = 1 - np.tanh(x @ w) ** 2
        return np.outer(d, w), x.T @ d

    report = gradcheck(f, g, x, w)
    assert report.passed
    np.testing.assert_array_equal(x, before[0])
    np.testing.assert_array_equal(w, before[1])


def test_inputs_are_not_changed_even_by_a_grad_f_that_writes_into_them(rng):
    x = rng.normal(size=4)
    before = x.copy()

    def g(x):
        x *= 2.0  # a careless in-place update
        return 2 * x / 2

    gradcheck(lambda x: np.sum(x**2), g, x)
    np.testing.assert_array_equal(x, before)


def test_f_that_changes_its_input_is_refused(rng):
    def f(x):
        x[0] += 1.0
        return float(np.sum(x))

    with pytest.raises(ValueError, match="changed input 0 in place"):
        gradcheck(f, np.ones_like, rng.normal(size=3))


def test_float32_inputs_warn_and_cite_pytorch_5351(rng):
    x = rng.normal(size=3).astype(np.float32)
    with pytest.warns(PrecisionWarning, match=r"pytorch#5351"):
        report = gradcheck(lambda x: np.sum(x**2), lambda x: 2 * x, x)
    assert report.passed  # checked on float64 copies
    assert x.dtype == np.float32


def test_float64_inputs_do_not_warn(rng, recwarn):
    gradcheck(lambda x: np.sum(x**2), lambda x: 2 * x, rng.normal(size=3))
    assert not [w for w in recwarn if issubclass(w.category, PrecisionWarning)]


# --- array outputs through random projections ---------------------------------------------------


def test_array_output_with_jacobian(rng):
    x = rng.normal(size=4)
    report = gradcheck(np.tanh, lambda x: np.diag(1 - np.tanh(x) ** 2), x)
    assert report.passed and report.projections == 3


def test_array_output_with_vector_jacobian_product(rng):
    x = rng.normal(size=(2, 3))
    report = gradcheck(np.tanh, lambda v, x: v * (1 - np.tanh(x) ** 2), x, vjp=True)
    assert report.passed
    bad = gradcheck(np.tanh, lambda v, x: v * (1 - np.tanh(x) ** 2) * 2, x, vjp=True)
    assert bad.kind == "scaled" and bad.factor == pytest.approx(2.0)


def test_vector_jacobian_product_of_a_scalar_function(rng):
    x = rng.normal(size=3)
    report = gradcheck(lambda x: np.sum(x**3), lambda v, x: v * 3 * x**2, x, vjp=True)
    assert report.passed and report.projections == 0


def test_array_output_softmax_diagonal_through_projections(rng):
    from chainrule._numerics import softmax

    z = rng.normal(size=(2, 3))

    def diag_backward(v, z):
        p = softmax(z)
        return v * p * (1 - p)

    report = gradcheck(softmax, diag_backward, z, vjp=True, activation="softmax", z=z)
    assert report.kind == "softmax_diagonal"


def test_array_output_jacobian_of_wrong_shape_is_an_error(rng):
    with pytest.raises(ValueError, match="Jacobian of shape"):
        gradcheck(np.tanh, lambda x: 1 - np.tanh(x) ** 2, rng.normal(size=3))


# --- the report ---------------------------------------------------------------------------------


def test_report_fields_and_text(rng):
    x = rng.normal(size=(2, 3))
    report = gradcheck(lambda x: np.sum(x**2) / 2, lambda x: -x, x)
    assert isinstance(report, GradcheckReport)
    assert not report.passed and report.n_failed == 6 and report.n_checked == 6
    assert report.max_abs_error == pytest.approx(2 * np.max(np.abs(x)))
    assert report.max_rel_error == pytest.approx(2.0)
    assert report.worst_index == tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(x)),
                                                                        x.shape))
    assert report.claimed_value == pytest.approx(-x[report.worst_index])
    text = str(report)
    assert text.startswith("gradcheck: FAILED (6 of 6 elements disagree)")
    assert "diagnosis: G = -T" in text and "worst: at index" in text


def test_passed_report_text(rng):
    report = gradcheck(lambda x: np.sum(x**2), lambda x: 2 * x, rng.normal(size=3))
    assert str(report).startswith("gradcheck: passed (3 elements")


def test_failure_without_relation_says_so(rng):
    x = rng.normal(size=3)
    report = gradcheck(lambda x: np.sum(x**2), lambda x: 2 * x + np.array([0.3, -1.0, 0.2]), x)
    assert not report.passed and report.diagnosis is None
    assert "no relation of the catalogue" in str(report)


def test_several_inputs_name_the_input(rng):
    a, b = rng.normal(size=3), rng.normal(size=2)
    report = gradcheck(lambda a, b: np.sum(a**2) + np.sum(b**3),
                       lambda a, b: (2 * a, -3 * b**2), a, b)
    assert report.worst_input == 1 and report.diagnosis.startswith("input 1:")


def test_several_inputs_sharing_one_mistake(rng):
    a, b = rng.normal(size=3), rng.normal(size=2)
    report = gradcheck(lambda a, b: np.sum(a**2) + np.sum(b**3),
                       lambda a, b: (8 * a, 12 * b**2), a, b, m=4)
    assert report.diagnosis.startswith("inputs 0 and 1:") and "1/m" in report.diagnosis


def test_gradient_of_wrong_shape_is_diagnosed(rng):
    W = rng.normal(size=(3, 2))
    report = gradcheck(lambda W: np.sum(W**2), lambda W: 2 * W.T, W)
    assert not report.passed and report.kind == "transposed"
    assert report.sentence.startswith("The claimed gradient has shape (2, 3), the transpose of "
                                      "the variable's shape (3, 2)")


@pytest.mark.parametrize(("claim", "kind", "shapes"), [
    (lambda W: np.zeros(5), "shape", "has shape (5,) but the variable has shape (3, 2)"),
    (lambda W: (2 * W).ravel(), "shape", "has shape (6,) but the variable has shape (3, 2)"),
    (lambda W: 2.0, "shape", "has shape () but the variable has shape (3, 2)"),
    (lambda W: 2 * W[:1], "shape", "has shape (1, 2) but the variable has shape (3, 2)"),
])
def test_a_gradient_of_the_wrong_shape_names_both_shapes(claim, kind, shapes, rng):
    report = gradcheck(lambda W: np.sum(W**2), claim, rng.normal(size=(3, 2)))
    assert not report.passed and report.kind == kind
    assert shapes in report.sentence


@pytest.mark.parametrize(("backward", "kind", "shapes"), [
    (lambda g, W: (2 * W * g).T, "transposed", "has shape (2, 3), the transpose of the "
                                               "variable's shape (3, 2)"),
    (lambda g, W: np.zeros(5), "shape", "has shape (5,) but the variable has shape (3, 2)"),
    (lambda g, W: np.sum(2 * W * g, axis=0), "shape",
     "has shape (2,) but the variable has shape (3, 2)"),
])
@pytest.mark.parametrize("f", [lambda W: W**2, lambda W: np.sum(W**2)], ids=["array", "scalar"])
def test_a_vector_jacobian_product_of_the_wrong_shape_is_a_named_mistake(backward, kind, shapes,
                                                                         f, rng):
    report = gradcheck(f, backward, rng.normal(size=(3, 2)), vjp=True)
    assert not report.passed and report.kind == kind
    assert shapes in report.sentence


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rtol": -1.0}, r"'rtol' parameter of gradcheck must be .* in the range \[0, inf\)"),
        ({"eps": 2.0}, r"'eps' parameter of gradcheck must be .* in the range \(0, 1\) or None"),
        ({"projections": 0}, "'projections' parameter of gradcheck must be an integer"),
    ],
)
def test_bad_settings_are_refused(kwargs, message, rng):
    with pytest.raises(ValueError, match=message):
        gradcheck(lambda x: np.sum(x), np.ones_like, rng.normal(size=2), **kwargs)


def test_bad_call_is_refused(rng):
    with pytest.raises(ValueError, match="two callables"):
        gradcheck(np.sum, "not callable", rng.normal(size=2))
    with pytest.raises(ValueError, match="at least one input"):
        gradcheck(np.sum, np.ones_like)
    with pytest.raises(ValueError, match="one gradient per input"):
        gradcheck(lambda a, b: np.sum(a * b), lambda a, b: b, np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="contains NaN"):
        gradcheck(np.sum, np.ones_like, np.array([1.0, np.nan]))


def test_lazy_attributes_and_no_sympy_on_import():
    assert chainrule.gradcheck is gradcheck
    code = ("import sys, chainrule, chainrule.gradient_check; chainrule.gradcheck; "
            "chainrule.check_model; print('sympy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- a function with an array output --------------------------------------------------------------


def test_array_output_with_a_wrong_jacobian_fails(rng):
    A = rng.normal(size=(3, 4))
    x0 = rng.normal(size=4)
    assert gradcheck(lambda v: A @ v, lambda v: A, x0).passed
    wrong = A.copy()
    wrong[1, 2] += 0.5
    assert not gradcheck(lambda v: A @ v, lambda v: wrong, x0).passed
    assert not gradcheck(lambda v: A @ v, lambda v: -A, x0).passed
