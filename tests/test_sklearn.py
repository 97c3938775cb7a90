"""chainrule.sklearn: scikit-learn's own estimator checks, then the estimators' meaning.

Estimator checks that scikit-learn itself skips here, and why (none is skipped by this file):
- "pandas is not installed": three checks feed pandas objects; pandas is a dev dependency, so they
  run under `uv run pytest`.
- "SCIPY_ARRAY_API is not set": the array-API checks run only with that environment variable.
- "does not have a decision_function method": neither scikit-learn's MLPClassifier nor ours has one.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import (
    load_iris,
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss, recall_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

import chainrule
from chainrule.sklearn import HIDDEN_ACTIVATIONS, MLPClassifier, MLPRegressor

# Checks that demand two fits to agree to 1e-7 relative: fitting with integer sample_weight and
# fitting on the repeated rows are the same objective, but in float32 their gradient sums round
# differently (a float32 epsilon is 1.2e-7, and the result depends on the BLAS kernel's order of
# summation), so float32 cannot promise 1e-7. They run on the float64 instances below, where the
# same comparison has eight orders of magnitude to spare.
_EXACT_EQUIVALENCE_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data",
    "check_sample_weight_equivalence_on_sparse_data",
}


def _check_name(check):
    return getattr(check, "func", check).__name__


# max_iter=100 as scikit-learn uses for its own MLP checks: the checks' data sets are tiny.
@parametrize_with_checks(
    [
        MLPClassifier(max_iter=100),
        MLPRegressor(max_iter=100),
        MLPClassifier(max_iter=100, dtype="float64"),
        MLPRegressor(max_iter=100, dtype="float64"),
    ],
)
def test_sklearn_estimator_checks(estimator, check):
    if estimator.dtype == "float32" and _check_name(check) in _EXACT_EQUIVALENCE_CHECKS:
        pytest.skip("float32 cannot promise the 1e-7 relative agreement this check demands; "
                    "the float64 instance runs it")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def binary():
    X, y = make_classification(n_samples=300, n_features=8, n_informative=5, random_state=0)
    return X, y


def _quiet(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


# --- the objective, checked against a hand-written NumPy oracle --------------------------------


def test_one_sgd_step_matches_the_formula():
    # One full-batch SGD step from known weights W (float64, no momentum), the oracle written
    # out: H = tanh(X W1 + b1), P = softmax(H W2 + b2), D2 = (P - Y)/n,
    # dW2 = H^T D2 + alpha W2 / n, D1 = D2 W2^T (1 - H^2), dW1 = X^T D1 + alpha W1 / n,
    # loss = mean(-log P_y) + alpha/2 (|W1|^2 + |W2|^2) / n.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = rng.integers(0, 3, size=20)
    n, alpha, lr = len(X), 0.5, 0.1
    est = MLPClassifier((4,), activation="tanh", solver="sgd", momentum=0.0, alpha=alpha,
                        batch_size=n, shuffle=False, max_iter=1, dtype="float64",
                        learning_rate_init=1e-12, random_state=0)
    _quiet(est, X, y)
    W1, W2 = (c.copy() for c in est.coefs_)
    b1, b2 = (b.copy() for b in est.intercepts_)
    est.set_params(warm_start=True, learning_rate_init=lr)
    _quiet(est, X, y)

    H = np.tanh(X @ W1 + b1)
    Z = H @ W2 + b2
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    Y = np.eye(3)[y]
    D2 = (P - Y) / n
    D1 = (D2 @ W2.T) * (1 - H**2)
    expected = [W1 - lr * (X.T @ D1 + alpha * W1 / n), W2 - lr * (H.T @ D2 + alpha * W2 / n)]
    np.testing.assert_allclose(est.coefs_[0], expected[0], rtol=1e-12)
    np.testing.assert_allclose(est.coefs_[1], expected[1], rtol=1e-12)
    np.testing.assert_allclose(est.intercepts_[1], b2 - lr * D2.sum(axis=0), rtol=1e-12)
    loss = -np.log(P[np.arange(n), y]).mean() + 0.5 * alpha * (np.sum(W1**2) + np.sum(W2**2)) / n
    assert est.loss_ == pytest.approx(loss, rel=1e-12)
    assert est.loss_curve_[-1] == est.loss_


@pytest.mark.parametrize(
    ("solver", "rtol", "atol"),
    # SGD is the same arithmetic as scikit-learn's; Adam differs in where epsilon enters
    # (chainrule bias-corrects it, as Kingma & Ba's algorithm 1): a few parts in 1e6 per step.
    [("sgd", 1e-12, 1e-12), ("adam", 1e-4, 1e-3)],
)
def test_same_weights_same_trajectory_as_sklearn(solver, rtol, atol):
    from sklearn.neural_network import MLPClassifier as SklearnMLP

    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    kw = dict(hidden_layer_sizes=(16,), solver=solver, alpha=0.01, batch_size=50, shuffle=False,
              learning_rate_init=0.01, max_iter=20, random_state=0)
    # scikit-learn's initial weights: one step at a rate that underflows to no change
    init = SklearnMLP(**{**kw, "solver": "sgd", "momentum": 0.0, "learning_rate_init": 1e-300,
                         "max_iter": 1})
    reference = SklearnMLP(**kw)
    ours = MLPClassifier(**{**kw, "max_iter": 1, "learning_rate_init": 1e-300}, dtype="float64")
    for est in (init, reference, ours):
        _quiet(est, X, y)
    for mine, theirs in zip([*ours.coefs_, *ours.intercepts_],
                            [*init.coefs_, *init.intercepts_], strict=True):
        mine[...] = theirs
    _quiet(ours.set_params(warm_start=True, learning_rate_init=0.01, max_iter=20), X, y)
    np.testing.assert_allclose(ours.loss_curve_[1:], reference.loss_curve_, rtol=rtol)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), atol=atol)


def test_regression_loss_is_half_squared_error_averaged_over_outputs():
    # scikit-learn's loss_ for regression: 0.5 * mean over samples AND outputs, plus the penalty.
    X, Y = make_regression(n_samples=30, n_features=4, n_targets=2, random_state=0)
    Y = Y / 100
    est = MLPRegressor(hidden_layer_sizes=(5,), solver="sgd", momentum=0.0, batch_size=30,
                       shuffle=False, max_iter=1, dtype="float64", learning_rate_init=1e-300,
                       alpha=0.3, random_state=0)
    _quiet(est, X, Y)
    pred = est.predict(X)
    penalty = 0.5 * 0.3 * sum(np.sum(c**2) for c in est.coefs_) / 30
    assert est.loss_ == pytest.approx(0.5 * np.mean((pred - Y) ** 2) + penalty, rel=1e-10)


def test_classifier_loss_curve_is_the_log_loss(binary):
    X, y = binary
    est = MLPClassifier((8,), solver="sgd", momentum=0.0, batch_size=len(X), shuffle=False,
                        max_iter=1, learning_rate_init=1e-300, alpha=0.0, dtype="float64",
                        random_state=0)
    _quiet(est, X, y)
    assert est.loss_ == pytest.approx(log_loss(y, est.predict_proba(X)), rel=1e-10)


# --- fitted attributes, targets and predictions -------------------------------------------------


def test_fitted_attributes_multiclass(iris):
    X, y = iris
    est = MLPClassifier((16, 8), max_iter=30, random_state=0)
    _quiet(est, X, y)
    assert est.classes_.tolist() == [0, 1, 2]
    assert est.n_layers_ == 4 and est.n_outputs_ == 3 and est.out_activation_ == "softmax"
    assert [c.shape for c in est.coefs_] == [(4, 16), (16, 8), (8, 3)]
    assert [b.shape for b in est.intercepts_] == [(16,), (8,), (3,)]
    assert est.coefs_[0].dtype == np.float32
    assert est.n_iter_ == 30 == len(est.loss_curve_) and est.t_ == 30 * len(X)
    assert est.loss_ == est.loss_curve_[-1] and est.best_loss_ == min(est.loss_curve_)
    assert est.validation_scores_ is None and est.best_validation_score_ is None
    assert est.n_features_in_ == 4
    proba = est.predict_proba(X)
    assert proba.shape == (150, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(proba), atol=1e-12)
    np.testing.assert_array_equal(est.predict(X), proba.argmax(axis=1))


def test_binary_string_labels_and_one_sigmoid_output(binary):
    X, y = binary
    labels = np.array(["no", "yes"])[y]
    est = _quiet(MLPClassifier((8,), max_iter=50, learning_rate_init=0.01, random_state=0),
                 X, labels)
    assert est.classes_.tolist() == ["no", "yes"]
    assert est.n_outputs_ == 1 and est.out_activation_ == "logistic"
    proba = est.predict_proba(X)
    assert proba.shape == (300, 2)
    assert set(est.predict(X)) <= {"no", "yes"}
    assert est.score(X, labels) > 0.85
    # log-probabilities stay finite where the probability rounds to 0
    assert np.isfinite(est.predict_log_proba(X * 1e6)).all()


def test_multilabel():
    X, Y = make_multilabel_classification(n_samples=200, n_features=10, n_classes=4,
                                          random_state=0)
    X = StandardScaler().fit_transform(X)
    est = _quiet(MLPClassifier((32,), max_iter=200, learning_rate_init=0.01, random_state=0),
                 X, Y)
    assert est.classes_.tolist() == [0, 1, 2, 3]
    assert est.n_outputs_ == 4 and est.out_activation_ == "logistic"
    pred = est.predict(X)
    assert pred.shape == (200, 4) and set(np.unique(pred)) <= {0, 1}
    proba = est.predict_proba(X)
    assert proba.shape == (200, 4)
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(int))
    assert est.score(X, Y) > 0.8  # subset accuracy (scikit-learn's MLP: 0.86 to 0.9)


def test_one_class_predicts_it():
    X = np.random.default_rng(0).normal(size=(10, 2))
    est = _quiet(MLPClassifier((4,), max_iter=5, random_state=0), X, ["a"] * 10)
    assert est.predict(X).tolist() == ["a"] * 10
    np.testing.assert_array_equal(est.predict_proba(X), np.ones((10, 1)))


def test_multiclass_multioutput_is_refused():
    X = np.zeros((6, 2))
    y = np.array([[0, 1], [1, 2], [2, 0], [0, 1], [1, 2], [2, 0]])
    with pytest.raises(ValueError, match="MultiOutputClassifier"):
        MLPClassifier().fit(X, y)


def test_multioutput_regression_and_losses():
    X, Y = make_regression(n_samples=200, n_features=5, n_targets=2, noise=0.5, random_state=0)
    Y = Y / 100
    for loss in ("squared_error", "huber"):
        est = _quiet(MLPRegressor(loss=loss, hidden_layer_sizes=(32,), max_iter=300,
                                  learning_rate_init=0.01, random_state=0), X, Y)
        assert est.predict(X).shape == (200, 2) and est.n_outputs_ == 2
        assert est.out_activation_ == "identity"
        assert est.score(X, Y) > 0.9


def test_huber_resists_outliers():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(200, 1))
    y = 2 * X[:, 0]
    y_dirty = y.copy()
    y_dirty[::10] += 30.0  # 10% gross outliers
    kw = dict(hidden_layer_sizes=(16,), max_iter=400, learning_rate_init=0.01, random_state=0)
    mse = _quiet(MLPRegressor(**kw), X, y_dirty)
    huber = _quiet(MLPRegressor(loss="huber", **kw), X, y_dirty)
    err = [np.abs(m.predict(X) - y).mean() for m in (mse, huber)]
    assert err[1] < err[0] / 3


def test_poisson_regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = rng.poisson(np.exp(0.5 * X[:, 0] + 0.2))
    est = _quiet(MLPRegressor(loss="poisson", hidden_layer_sizes=(4,), max_iter=200,
                              learning_rate_init=0.01, random_state=0), X, y)
    assert est.out_activation_ == "exp"
    pred = est.predict(X)
    assert (pred > 0).all()
    assert np.corrcoef(pred, np.exp(0.5 * X[:, 0] + 0.2))[0, 1] > 0.9
    with pytest.raises(ValueError, match="non-negative"):
        MLPRegressor(loss="poisson").fit(X, -np.ones(400))


def test_no_hidden_layer_is_logistic_regression(iris):
    X, y = iris
    est = _quiet(MLPClassifier(hidden_layer_sizes=(), max_iter=200, learning_rate_init=0.01,
                               random_state=0), X, y)
    assert est.n_layers_ == 2 and [c.shape for c in est.coefs_] == [(4, 3)]
    assert est.score(X, y) > 0.9


@pytest.mark.parametrize("activation", sorted(HIDDEN_ACTIVATIONS))
def test_every_activation_trains(iris, activation):
    X, y = iris
    est = _quiet(MLPClassifier((16,), activation=activation, max_iter=60,
                               learning_rate_init=0.01, random_state=0), X, y)
    assert np.isfinite(est.loss_) and est.loss_curve_[-1] < est.loss_curve_[0]


def test_sparse_input_matches_dense(iris):
    X, y = iris
    X = np.where(np.abs(X) < 0.5, 0.0, X)
    dense = _quiet(MLPClassifier((8,), max_iter=20, dtype="float64", random_state=0), X, y)
    sparse = _quiet(MLPClassifier((8,), max_iter=20, dtype="float64", random_state=0),
                    sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.predict_proba(sp.csr_matrix(X)), dense.predict_proba(X),
                               rtol=1e-9)


# --- sample and class weights ----------------------------------------------------------------


def test_zero_weight_is_removal_bit_for_bit(binary):
    X, y = binary
    w = np.ones(len(X))
    w[::3] = 0
    a = _quiet(MLPClassifier((8,), max_iter=20, random_state=0), X, y, sample_weight=w)
    b = _quiet(MLPClassifier((8,), max_iter=20, random_state=0), X[w > 0], y[w > 0])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_class_weight_is_a_sample_weight_per_class(binary):
    X, y = binary
    a = _quiet(MLPClassifier((8,), max_iter=20, class_weight={0: 1.0, 1: 3.0}, random_state=0),
               X, y)
    b = _quiet(MLPClassifier((8,), max_iter=20, random_state=0), X, y,
               sample_weight=np.where(y == 1, 3.0, 1.0))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_balanced_class_weight_lifts_minority_recall():
    X, y = make_classification(n_samples=600, n_features=6, weights=[0.93], flip_y=0.02,
                               class_sep=0.6, random_state=1)
    kw = dict(hidden_layer_sizes=(16,), max_iter=60, random_state=0)
    plain = _quiet(MLPClassifier(**kw), X, y)
    balanced = _quiet(MLPClassifier(class_weight="balanced", **kw), X, y)
    assert recall_score(y, balanced.predict(X)) > recall_score(y, plain.predict(X)) + 0.1
    with pytest.raises(ValueError, match="partial_fit never sees"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1])


def test_negative_sample_weight_is_refused(binary):
    X, y = binary
    with pytest.raises(ValueError, match=r"[Nn]egative"):
        MLPClassifier().fit(X, y, sample_weight=-np.ones(len(X)))


# --- the training loop's rules -----------------------------------------------------------------


def test_same_random_state_same_model_and_dropout_only_in_training(iris):
    X, y = iris
    make = lambda rs: MLPClassifier((16,), dropout=0.3, max_iter=20, random_state=rs)  # noqa: E731
    a, b, c = (_quiet(make(rs), X, y) for rs in (0, 0, 1))
    for ca, cb in zip(a.coefs_, b.coefs_, strict=True):
        np.testing.assert_array_equal(ca, cb)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])
    np.testing.assert_array_equal(a.predict_proba(X), a.predict_proba(X))  # no dropout at predict
    no_dropout = _quiet(clone(a).set_params(dropout=0.0), X, y)
    assert not np.array_equal(a.coefs_[1], no_dropout.coefs_[1])


def test_convergence_warning_at_max_iter(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        MLPClassifier((4,), max_iter=3, random_state=0).fit(X, y)


def test_tol_stops_training(iris):
    X, y = iris
    est = MLPClassifier((4,), max_iter=500, tol=1.0, n_iter_no_change=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
    assert est.n_iter_ == 4  # epoch 1 improves on inf; epochs 2-4 miss tol=1.0, and 3 > 2


def test_early_stopping_keeps_the_best_epoch(binary):
    X, y = binary
    est = _quiet(MLPClassifier((16,), early_stopping=True, n_iter_no_change=5, max_iter=200,
                               random_state=0), X, y)
    assert est.best_loss_ is None and len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    with pytest.raises(ValueError, match="validation set is too small"):
        MLPClassifier(early_stopping=True, validation_fraction=0.01).fit(X[:20], y[:20])
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1])
    # switching early stopping on for a warm start
    warm = _quiet(MLPClassifier((8,), max_iter=5, warm_start=True, random_state=0), X, y)
    _quiet(warm.set_params(early_stopping=True), X, y)
    assert len(warm.validation_scores_) == warm.n_iter_


def test_learning_rate_schedules(iris):
    X, y = iris
    est = _quiet(MLPClassifier((4,), solver="sgd", learning_rate="invscaling", power_t=0.5,
                               learning_rate_init=0.1, max_iter=4, random_state=0), X, y)
    assert est._optimizer.lr == pytest.approx(0.1 / (est.t_ + 1) ** 0.5)
    # "adaptive": every epoch after the first misses tol=1e9, so every second epoch divides the
    # rate by 5; at 0.1 / 5^8 = 2.56e-7 <= 1e-6 the next trigger stops: 1 + 2 * 9 epochs.
    est = MLPClassifier((4,), solver="sgd", learning_rate="adaptive", learning_rate_init=0.1,
                        tol=1e9, n_iter_no_change=1, max_iter=500, random_state=0).fit(X, y)
    assert est._optimizer.lr == pytest.approx(0.1 / 5**8)
    assert est.n_iter_ == 19


@pytest.mark.parametrize("solver", ["sgd", "adam", "adamw", "rmsprop"])
def test_every_solver_learns(iris, solver):
    X, y = iris
    lr = 0.05 if solver == "sgd" else 0.01
    est = _quiet(MLPClassifier((16,), solver=solver, learning_rate_init=lr, max_iter=100,
                               random_state=0), X, y)
    assert est.score(X, y) > 0.9


def test_divergence_names_the_fix():
    X, y = make_regression(n_samples=50, n_features=3, random_state=0)
    est = MLPRegressor(solver="sgd", learning_rate_init=10.0, max_iter=50, random_state=0)
    with pytest.raises(ValueError, match="StandardScaler"):
        est.fit(X * 1e3, y * 1e3)


def test_verbose_prints_the_loss(iris, capsys):
    X, y = iris
    _quiet(MLPClassifier((4,), max_iter=2, verbose=True, random_state=0), X, y)
    assert "Iteration 1, loss = " in capsys.readouterr().out


# --- partial_fit and warm_start ------------------------------------------------------------------


def test_partial_fit_continues_like_fit(iris):
    X, y = iris
    kw = dict(hidden_layer_sizes=(8,), shuffle=False, random_state=0, n_iter_no_change=99)
    fitted = _quiet(MLPClassifier(max_iter=5, **kw), X, y)
    stepped = MLPClassifier(**kw)
    with pytest.raises(ValueError, match="classes must be passed"):
        stepped.partial_fit(X, y)
    for _ in range(5):
        stepped.partial_fit(X, y, classes=[0, 1, 2])
    assert stepped.n_iter_ == 1 and stepped.t_ == 5 * len(X)
    np.testing.assert_array_equal(stepped.coefs_[0], fitted.coefs_[0])
    assert stepped.loss_curve_ == fitted.loss_curve_
    with pytest.raises(ValueError, match="classes not in"):
        stepped.partial_fit(X, y + 5)


def test_partial_fit_with_a_subset_of_classes(iris):
    X, y = iris
    est = MLPClassifier((8,), random_state=0)
    est.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert est.out_activation_ == "softmax" and est.predict_proba(X).shape == (150, 3)
    reg = MLPRegressor(hidden_layer_sizes=(8,), random_state=0)
    for _ in range(3):
        reg.partial_fit(X, y.astype(float))
    assert reg.n_iter_ == 1 and reg.t_ == 3 * len(X)


def test_warm_start(iris):
    X, y = iris
    est = _quiet(MLPClassifier((8,), max_iter=5, warm_start=True, random_state=0), X, y)
    first = est.coefs_[0].copy()
    _quiet(est, X, y)
    assert len(est.loss_curve_) == 10 and not np.array_equal(first, est.coefs_[0])
    with pytest.raises(ValueError, match="same classes"):
        est.fit(X[y < 2], y[y < 2])
    est.set_params(hidden_layer_sizes=(9,))
    with pytest.raises(ValueError, match="keep hidden_layer_sizes"):
        est.fit(X, y)


# --- parameter validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"alpha": -1}, "The 'alpha' parameter of MLPClassifier must be a float in the range "
                        "[0.0, inf). Got -1 instead."),
        ({"solver": "lbfgs"}, "The 'solver' parameter of MLPClassifier must be a str among"),
        ({"activation": "sinh"}, "The 'activation' parameter of MLPClassifier must be a str"),
        ({"dropout": 1.0}, "The 'dropout' parameter of MLPClassifier must be a float in the "
                           "range [0.0, 1.0)"),
        ({"batch_size": 0}, "The 'batch_size' parameter of MLPClassifier"),
        ({"loss": "hinge"}, "The 'loss' parameter of MLPClassifier must be a str among"),
    ],
)
def test_parameters_are_validated_like_sklearn(iris, params, message):
    X, y = iris
    with pytest.raises(InvalidParameterError) as info:
        MLPClassifier(**params).fit(X, y)
    assert message in str(info.value)


def test_hidden_layer_sizes_must_be_positive(iris):
    X, y = iris
    with pytest.raises(ValueError, match=r"positive integers.*\(64, 32\)"):
        MLPClassifier(hidden_layer_sizes=(10, 0)).fit(X, y)
    with pytest.raises(InvalidParameterError, match="'loss' parameter of MLPRegressor"):
        MLPRegressor(loss="log_loss").fit(X, y)


# --- scikit-learn's tools ------------------------------------------------------------------------


def test_pipeline_grid_search_cross_val_and_clone(iris):
    X, y = load_iris(return_X_y=True)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("mlp", MLPClassifier((16,), max_iter=150, learning_rate_init=0.01,
                                           random_state=0))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(pipe, {"mlp__alpha": [1e-4, 1e-1], "mlp__activation": ["relu",
                              "gelu"]}, cv=3, n_jobs=2).fit(X, y)
        scores = cross_val_score(pipe, X, y, cv=3)
    assert search.best_score_ > 0.9 and set(search.best_params_) == {"mlp__alpha",
                                                                      "mlp__activation"}
    assert scores.mean() > 0.9
    twin = clone(pipe)
    assert twin.get_params()["mlp__hidden_layer_sizes"] == (16,)
    assert not hasattr(twin.named_steps["mlp"], "coefs_")


def test_pickle_roundtrip_and_continue(iris):
    X, y = iris
    est = _quiet(MLPClassifier((8,), max_iter=10, random_state=0), X, y)
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
    copy.partial_fit(X, y)
    est.partial_fit(X, y)
    np.testing.assert_array_equal(copy.coefs_[0], est.coefs_[0])


def test_safetensors_roundtrip(iris, tmp_path):
    X, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    est = _quiet(MLPClassifier((8, 4), activation="silu", max_iter=20, random_state=0),
                 X, labels)
    path = est.save(tmp_path / "iris.safetensors")
    back = MLPClassifier.load(path)
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    assert back.predict(X).tolist() == est.predict(X).tolist()
    assert back.get_params() == est.get_params()
    assert back.loss_curve_ == pytest.approx(est.loss_curve_)
    model = chainrule.load(path)  # a plain chainrule model, softmax output included
    np.testing.assert_allclose(model.predict_proba(X), est.predict_proba(X), rtol=1e-4,
                               atol=1e-6)
    assert model.predict(X).tolist() == est.predict(X).tolist()
    with pytest.raises(ValueError, match="not a MLPRegressor"):
        MLPRegressor.load(path)


def test_safetensors_regressor_and_multilabel(tmp_path):
    X, Y = make_regression(n_samples=50, n_features=3, n_targets=2, random_state=0)
    reg = _quiet(MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0), X, Y)
    back = MLPRegressor.load(reg.save(tmp_path / "reg.safetensors"))
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    Xm, Ym = make_multilabel_classification(n_samples=50, n_classes=3, random_state=0)
    clf = _quiet(MLPClassifier((8,), max_iter=5, class_weight="balanced", random_state=0),
                 Xm, Ym)
    back = MLPClassifier.load(clf.save(tmp_path / "ml.safetensors"))
    np.testing.assert_array_equal(back.predict(Xm), clf.predict(Xm))
    assert back.class_weight == "balanced"
