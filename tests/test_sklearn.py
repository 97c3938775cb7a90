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
from itertools import pairwise

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
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

import chainrule
from chainrule import nn
from chainrule.sklearn import HIDDEN_ACTIVATIONS, SOLVERS, MLPClassifier, MLPRegressor
from sklearn_fixtures import binary_fixture, iris_fixture, quiet_fit  # noqa: F401 (fixtures)

# Checks that demand two fits to agree to 1e-7 relative: fitting with integer sample_weight and
# fitting on the repeated rows are the same objective, but in float32 their gradient sums round
# differently (a float32 epsilon is 1.2e-7, and the result depends on the BLAS kernel's order of
# summation), so float32 cannot promise 1e-7. They run on the instances that follow X's dtype
# (float64 on the checks' data), where the same comparison has eight orders of magnitude to spare.
_EXACT_EQUIVALENCE_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data",
    "check_sample_weight_equivalence_on_sparse_data",
}


def _check_name(check):
    return getattr(check, "func", check).__name__


# max_iter=100 as scikit-learn uses for its own MLP checks: the checks' data sets are tiny.
# The default dtype follows X; the float32 instances train in float32 whatever X is.
@parametrize_with_checks(
    [
        MLPClassifier(max_iter=100),
        MLPRegressor(max_iter=100),
        MLPClassifier(max_iter=100, dtype="float32"),
        MLPRegressor(max_iter=100, dtype="float32"),
        MLPClassifier(solver="lbfgs", max_iter=100),
        MLPRegressor(solver="lbfgs", max_iter=100),
    ],
)
def test_sklearn_estimator_checks(estimator, check):
    if estimator.dtype == "float32" and _check_name(check) in _EXACT_EQUIVALENCE_CHECKS:
        pytest.skip("float32 cannot promise the 1e-7 relative agreement this check demands; "
                    "the instances that follow X's dtype run it in float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


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
    quiet_fit(est, X, y)
    W1, W2 = (c.copy() for c in est.coefs_)
    b1, b2 = (b.copy() for b in est.intercepts_)
    est.set_params(warm_start=True, learning_rate_init=lr)
    quiet_fit(est, X, y)

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
        quiet_fit(est, X, y)
    for mine, theirs in zip([*ours.coefs_, *ours.intercepts_],
                            [*init.coefs_, *init.intercepts_], strict=True):
        mine[...] = theirs
    quiet_fit(ours.set_params(warm_start=True, learning_rate_init=0.01, max_iter=20), X, y)
    np.testing.assert_allclose(ours.loss_curve_[1:], reference.loss_curve_, rtol=rtol)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), atol=atol)


def test_regression_loss_is_half_squared_error_averaged_over_outputs():
    # scikit-learn's loss_ for regression: 0.5 * mean over samples AND outputs, plus the penalty.
    X, Y = make_regression(n_samples=30, n_features=4, n_targets=2, random_state=0)
    Y = Y / 100
    est = MLPRegressor(hidden_layer_sizes=(5,), solver="sgd", momentum=0.0, batch_size=30,
                       shuffle=False, max_iter=1, dtype="float64", learning_rate_init=1e-300,
                       alpha=0.3, random_state=0)
    quiet_fit(est, X, Y)
    pred = est.predict(X)
    penalty = 0.5 * 0.3 * sum(np.sum(c**2) for c in est.coefs_) / 30
    assert est.loss_ == pytest.approx(0.5 * np.mean((pred - Y) ** 2) + penalty, rel=1e-10)


def test_classifier_loss_curve_is_the_log_loss(binary):
    X, y = binary
    est = MLPClassifier((8,), solver="sgd", momentum=0.0, batch_size=len(X), shuffle=False,
                        max_iter=1, learning_rate_init=1e-300, alpha=0.0, dtype="float64",
                        random_state=0)
    quiet_fit(est, X, y)
    assert est.loss_ == pytest.approx(log_loss(y, est.predict_proba(X)), rel=1e-10)


# --- fitted attributes, targets and predictions -------------------------------------------------


def test_fitted_attributes_multiclass(iris):
    X, y = iris
    est = MLPClassifier((16, 8), max_iter=30, random_state=0)
    quiet_fit(est, X, y)
    assert est.classes_.tolist() == [0, 1, 2]
    assert est.n_layers_ == 4 and est.n_outputs_ == 3 and est.out_activation_ == "softmax"
    assert [c.shape for c in est.coefs_] == [(4, 16), (16, 8), (8, 3)]
    assert [b.shape for b in est.intercepts_] == [(16,), (8,), (3,)]
    assert est.coefs_[0].dtype == np.float64  # X's dtype
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
    est = quiet_fit(MLPClassifier((8,), max_iter=50, learning_rate_init=0.01, random_state=0),
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
    est = quiet_fit(MLPClassifier((32,), max_iter=200, learning_rate_init=0.01, random_state=0),
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
    est = quiet_fit(MLPClassifier((4,), max_iter=5, random_state=0), X, ["a"] * 10)
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
        est = quiet_fit(MLPRegressor(loss=loss, hidden_layer_sizes=(32,), max_iter=300,
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
    mse = quiet_fit(MLPRegressor(**kw), X, y_dirty)
    huber = quiet_fit(MLPRegressor(loss="huber", **kw), X, y_dirty)
    err = [np.abs(m.predict(X) - y).mean() for m in (mse, huber)]
    assert err[1] < err[0] / 3


def test_poisson_regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = rng.poisson(np.exp(0.5 * X[:, 0] + 0.2))
    est = quiet_fit(MLPRegressor(loss="poisson", hidden_layer_sizes=(4,), max_iter=200,
                              learning_rate_init=0.01, random_state=0), X, y)
    assert est.out_activation_ == "exp"
    pred = est.predict(X)
    assert (pred > 0).all()
    assert np.corrcoef(pred, np.exp(0.5 * X[:, 0] + 0.2))[0, 1] > 0.9
    with pytest.raises(ValueError, match="non-negative"):
        MLPRegressor(loss="poisson").fit(X, -np.ones(400))


def test_no_hidden_layer_is_logistic_regression(iris):
    X, y = iris
    est = quiet_fit(MLPClassifier(hidden_layer_sizes=(), max_iter=200, learning_rate_init=0.01,
                               random_state=0), X, y)
    assert est.n_layers_ == 2 and [c.shape for c in est.coefs_] == [(4, 3)]
    assert est.score(X, y) > 0.9


@pytest.mark.parametrize("activation", sorted(HIDDEN_ACTIVATIONS))
def test_every_activation_trains(iris, activation):
    X, y = iris
    est = quiet_fit(MLPClassifier((16,), activation=activation, max_iter=60,
                               learning_rate_init=0.01, random_state=0), X, y)
    assert np.isfinite(est.loss_) and est.loss_curve_[-1] < est.loss_curve_[0]


def test_sparse_input_matches_dense(iris):
    X, y = iris
    X = np.where(np.abs(X) < 0.5, 0.0, X)
    dense = quiet_fit(MLPClassifier((8,), max_iter=20, dtype="float64", random_state=0), X, y)
    sparse = quiet_fit(MLPClassifier((8,), max_iter=20, dtype="float64", random_state=0),
                    sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.predict_proba(sp.csr_matrix(X)), dense.predict_proba(X),
                               rtol=1e-9)


# --- sample and class weights ----------------------------------------------------------------


def test_zero_weight_is_removal_bit_for_bit(binary):
    X, y = binary
    w = np.ones(len(X))
    w[::3] = 0
    a = quiet_fit(MLPClassifier((8,), max_iter=20, random_state=0), X, y, sample_weight=w)
    b = quiet_fit(MLPClassifier((8,), max_iter=20, random_state=0), X[w > 0], y[w > 0])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_class_weight_is_a_sample_weight_per_class(binary):
    X, y = binary
    a = quiet_fit(MLPClassifier((8,), max_iter=20, class_weight={0: 1.0, 1: 3.0}, random_state=0),
               X, y)
    b = quiet_fit(MLPClassifier((8,), max_iter=20, random_state=0), X, y,
               sample_weight=np.where(y == 1, 3.0, 1.0))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_balanced_class_weight_lifts_minority_recall():
    X, y = make_classification(n_samples=600, n_features=6, weights=[0.93], flip_y=0.02,
                               class_sep=0.6, random_state=1)
    kw = dict(hidden_layer_sizes=(16,), max_iter=60, random_state=0)
    plain = quiet_fit(MLPClassifier(**kw), X, y)
    balanced = quiet_fit(MLPClassifier(class_weight="balanced", **kw), X, y)
    assert recall_score(y, balanced.predict(X)) > recall_score(y, plain.predict(X)) + 0.1
    with pytest.raises(ValueError, match="partial_fit never sees"):
        MLPClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1])


def test_negative_sample_weight_is_refused(binary):
    X, y = binary
    with pytest.raises(ValueError, match=r"[Nn]egative"):
        MLPClassifier().fit(X, y, sample_weight=-np.ones(len(X)))


# --- partial_fit and warm_start ------------------------------------------------------------------


def test_partial_fit_continues_like_fit(iris):
    X, y = iris
    kw = dict(hidden_layer_sizes=(8,), shuffle=False, random_state=0, n_iter_no_change=99)
    fitted = quiet_fit(MLPClassifier(max_iter=5, **kw), X, y)
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
    est = quiet_fit(MLPClassifier((8,), max_iter=5, warm_start=True, random_state=0), X, y)
    first = est.coefs_[0].copy()
    quiet_fit(est, X, y)
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
        ({"solver": "newton"}, "The 'solver' parameter of MLPClassifier must be a str among"),
        ({"max_fun": 0}, "The 'max_fun' parameter of MLPClassifier must be an int in the range "
                         "[1, inf). Got 0 instead."),
        ({"dtype": "float16"}, "The 'dtype' parameter of MLPClassifier must be a str among"),
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
    est = quiet_fit(MLPClassifier((8,), max_iter=10, random_state=0), X, y)
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
    copy.partial_fit(X, y)
    est.partial_fit(X, y)
    np.testing.assert_array_equal(copy.coefs_[0], est.coefs_[0])


def test_safetensors_roundtrip(iris, tmp_path):
    X, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    est = quiet_fit(MLPClassifier((8, 4), activation="silu", max_iter=20, random_state=0),
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


@pytest.mark.parametrize(("change", "message"), [
    (lambda st: st.pop("n_features_in"), "has nothing for 'n_features_in'"),
    (lambda st: st.update(n_features_in="4"), "has str '4' for 'n_features_in'"),
    (lambda st: st.update(n_features_in=7), "says 7 input features, but its network takes 4"),
    (lambda st: st.update(n_outputs=True), "has bool True for 'n_outputs'"),
    (lambda st: st.update(classes=None), "has no list of classes"),
])
def test_an_altered_estimator_state_is_refused_naming_the_field(iris, tmp_path, change,
                                                                message):
    # A crafted file used to fail with KeyError 'n_features_in' deep inside the loader.
    X, y = iris
    est = quiet_fit(MLPClassifier((4,), max_iter=5, random_state=0), X, y)
    model = chainrule.load(est.save(tmp_path / "est.safetensors"))
    change(model.training_config["sklearn"])
    path = model.save(tmp_path / "altered.safetensors")
    with pytest.raises(ValueError, match=r"altered or not written by MLPClassifier\.save") as err:
        MLPClassifier.load(path)
    assert message in str(err.value)


def test_safetensors_regressor_and_multilabel(tmp_path):
    X, Y = make_regression(n_samples=50, n_features=3, n_targets=2, random_state=0)
    reg = quiet_fit(MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0), X, Y)
    back = MLPRegressor.load(reg.save(tmp_path / "reg.safetensors"))
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    Xm, Ym = make_multilabel_classification(n_samples=50, n_classes=3, random_state=0)
    clf = quiet_fit(MLPClassifier((8,), max_iter=5, class_weight="balanced", random_state=0),
                 Xm, Ym)
    back = MLPClassifier.load(clf.save(tmp_path / "ml.safetensors"))
    np.testing.assert_array_equal(back.predict(Xm), clf.predict(Xm))
    assert back.class_weight == "balanced"


# --- dtypes: X's by default, as scikit-learn's ---------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parameters_and_predictions_follow_xs_dtype(iris, dtype):
    X, y = iris
    X = X.astype(dtype)
    clf = quiet_fit(MLPClassifier((8,), max_iter=5, random_state=0), X, y)
    reg = quiet_fit(MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0), X, X[:, 0])
    for est in (clf, reg):
        assert {a.dtype for a in (*est.coefs_, *est.intercepts_)} == {np.dtype(dtype)}
    assert reg.predict(X).dtype == dtype
    assert clf.predict_proba(X).dtype == dtype and clf.predict_log_proba(X).dtype == dtype
    # float32 weights meeting float64 data predict in float64, as NumPy combines them
    if dtype == np.float32:
        assert reg.predict(X.astype(np.float64)).dtype == np.float64


def test_explicit_dtype_overrides_x_and_continuing_keeps_the_fitted_dtype(iris):
    X, y = iris
    est = quiet_fit(MLPClassifier((8,), max_iter=5, dtype="float32", random_state=0), X, y)
    assert est.coefs_[0].dtype == np.float32
    assert est.predict_proba(X).dtype == np.float64  # float64 X, float32 weights
    follow = MLPClassifier((8,), random_state=0)
    follow.partial_fit(X, y, classes=[0, 1, 2])
    follow.partial_fit(X.astype(np.float32), y)  # continues in the precision it began in
    assert follow.coefs_[0].dtype == np.float64


def test_float32_and_float64_fits_agree_to_float32_precision(iris):
    X, _ = iris
    kw = dict(hidden_layer_sizes=(8,), solver="sgd", max_iter=20, random_state=0)
    a = quiet_fit(MLPRegressor(**kw), X, X[:, 0])
    b = quiet_fit(MLPRegressor(**kw), X.astype(np.float32), X[:, 0])
    # same initial weights (drawn in float64, then rounded), same arithmetic in two precisions
    np.testing.assert_allclose(b.predict(X), a.predict(X), rtol=1e-3, atol=1e-4)


# --- solver="lbfgs" -------------------------------------------------------------------------------


def _lbfgs_case(kind):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 3))
    sw = rng.uniform(0.2, 2.0, size=12)
    if kind == "regression":
        Y = rng.normal(size=(12, 2))
        est = MLPRegressor(hidden_layer_sizes=(4,), activation="tanh", solver="lbfgs")
    elif kind == "poisson":
        Y = rng.poisson(2.0, size=12).astype(float)
        est = MLPRegressor(loss="poisson", hidden_layer_sizes=(4,), activation="tanh",
                           solver="lbfgs")
    elif kind == "binary":
        Y = rng.integers(0, 2, size=12)
        est = MLPClassifier((4,), activation="logistic", solver="lbfgs")
    else:
        Y = rng.integers(0, 3, size=12)
        est = MLPClassifier((4,), activation="tanh", solver="lbfgs")
    est.set_params(alpha=0.7, max_iter=1, random_state=0)
    quiet_fit(est, X, Y, sample_weight=sw)
    theta = rng.normal(scale=0.5, size=sum(a.size for a in (*est.coefs_, *est.intercepts_)))
    return est, X, Y, sw, theta


@pytest.mark.parametrize("kind", ["regression", "poisson", "binary", "multiclass"])
def test_lbfgs_gradient_matches_central_differences(kind):
    est, X, Y, sw, theta = _lbfgs_case(kind)
    Yt = est._encode(Y) if kind in ("binary", "multiclass") else Y
    value, grad = est._loss_grad_lbfgs(theta, X, Yt, sw)
    assert grad.dtype == np.float64 and grad.shape == theta.shape
    h = 1e-6
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        step = np.zeros_like(theta)
        step[i] = h
        numeric[i] = (est._loss_grad_lbfgs(theta + step, X, Yt, sw)[0]
                      - est._loss_grad_lbfgs(theta - step, X, Yt, sw)[0]) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)
    assert np.isfinite(value)


def test_lbfgs_objective_matches_the_formula():
    # G = sum_i s_i * 0.5 * |yhat_i - y_i|^2 / S + alpha/2 * (|W1|^2 + |W2|^2) / S, S = sum_i s_i,
    # with yhat = tanh(X W1 + b1) W2 + b2 and theta = [W1, W2, b1, b2] flattened row-major.
    est, X, Y, sw, theta = _lbfgs_case("regression")
    value, _ = est._loss_grad_lbfgs(theta, X, Y, sw)
    W1, W2 = theta[:12].reshape(3, 4), theta[12:20].reshape(4, 2)
    b1, b2 = theta[20:24], theta[24:26]
    pred = np.tanh(X @ W1 + b1) @ W2 + b2
    S = sw.sum()
    expected = (sw * 0.5 * ((pred - Y) ** 2).sum(axis=1)).sum() / S
    expected += 0.5 * 0.7 * (np.sum(W1**2) + np.sum(W2**2)) / S
    assert value == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(est.coefs_[0], W1)  # the point evaluated becomes the weights


@pytest.mark.parametrize("Estimator", [MLPClassifier, MLPRegressor])
def test_lbfgs_follows_scikit_learns_lbfgs_from_the_same_weights(binary, Estimator):
    from sklearn import neural_network

    X, y = binary
    X = StandardScaler().fit_transform(X)
    if Estimator is MLPRegressor:
        y = X[:, 0] - 2 * X[:, 1] ** 2
    theirs_cls = getattr(neural_network, Estimator.__name__)
    kw = dict(hidden_layer_sizes=(6,), activation="tanh", solver="lbfgs", alpha=0.01,
              random_state=0)
    ours = quiet_fit(Estimator(**kw, max_iter=1), X, y)
    theirs = quiet_fit(theirs_cls(**kw, max_iter=1), X, y)
    theirs.coefs_ = [c.copy() for c in ours.coefs_]
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    for est in (ours, theirs):
        quiet_fit(est.set_params(warm_start=True, max_iter=15), X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 15
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)
    for mine, ref in zip(ours.coefs_, theirs.coefs_, strict=True):
        np.testing.assert_allclose(mine, ref, rtol=1e-4, atol=1e-6)


def test_lbfgs_iterations_curve_and_warnings(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match=r"(?s)lbfgs failed to converge after 5 "
                                                r"iteration\(s\).*max_iter=5"):
        est = MLPClassifier((8,), solver="lbfgs", max_iter=5, random_state=0).fit(X, y)
    assert est.n_iter_ == 5 == len(est.loss_curve_)
    assert est.loss_ == est.loss_curve_[-1] == est.best_loss_
    assert all(b <= a for a, b in pairwise(est.loss_curve_))  # each line search decreases G
    assert est.t_ == 0 and est.validation_scores_ is None  # as scikit-learn's lbfgs
    assert not hasattr(est, "partial_fit")
    with pytest.warns(ConvergenceWarning, match="EVALUATIONS EXCEEDS LIMIT"):
        capped = MLPClassifier((8,), solver="lbfgs", max_fun=4, random_state=0).fit(X, y)
    assert capped.n_iter_ <= 4
    loose = quiet_fit(MLPClassifier((8,), solver="lbfgs", tol=1e9, random_state=0), X, y)
    assert loose.n_iter_ == 0  # the first gradient is already below tol
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fitted = MLPClassifier((16,), solver="lbfgs", max_iter=1000, random_state=0).fit(X, y)
    assert fitted.score(X, y) > 0.97


def test_lbfgs_sparse_input_and_sample_weights(iris):
    X, y = iris
    X = np.where(np.abs(X) < 0.5, 0.0, X)
    kw = dict(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30, random_state=0)
    dense = quiet_fit(MLPClassifier(**kw), X, y)
    sparse = quiet_fit(MLPClassifier(**kw), sp.csr_matrix(X), y)
    np.testing.assert_allclose(sparse.predict_proba(X), dense.predict_proba(X), rtol=1e-7,
                               atol=1e-9)
    twice = quiet_fit(MLPClassifier(**kw), np.vstack([X, X[:10]]), np.r_[y, y[:10]])
    weighted = quiet_fit(MLPClassifier(**kw), X, y, sample_weight=np.r_[[2.0] * 10, [1.0] * 140])
    np.testing.assert_allclose(weighted.predict_proba(X), twice.predict_proba(X), rtol=1e-6,
                               atol=1e-8)


def test_lbfgs_refuses_dropout_and_extreme_inputs_end_finite_or_named(iris):
    X, y = iris
    with pytest.raises(ValueError, match=r"dropout=0.2.*dropout=0"):
        MLPClassifier(solver="lbfgs", dropout=0.2).fit(X, y)
    for scale in (1e3, 1e9):
        est = MLPRegressor(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=20, random_state=0)
        try:
            quiet_fit(est, X * scale, y)
        except ValueError as err:
            assert str(err).startswith("Solver produced non-finite parameter weights.")
        else:
            assert all(np.isfinite(c).all() for c in est.coefs_)
            assert np.isfinite(est.predict(X * scale)).all()
    zeros = quiet_fit(MLPClassifier((4,), solver="lbfgs", random_state=0), np.zeros_like(X), y)
    # no signal in X: only the intercepts can learn, and they learn the class frequencies
    np.testing.assert_allclose(zeros.predict_proba(np.zeros_like(X)), 1 / 3, atol=1e-3)
    with pytest.raises(ValueError, match="NaN"):
        MLPClassifier(solver="lbfgs").fit(np.where(X > 2, np.nan, X), y)


# --- the early-stopping split ---------------------------------------------------------------------


def test_early_stopping_split_is_stratified_for_classifiers():
    X = np.arange(40.0).reshape(20, 2)
    y = np.array([0] * 10 + [1] * 6 + [2] * 4)
    est = quiet_fit(MLPClassifier((4,), early_stopping=True, validation_fraction=0.5, max_iter=2,
                               random_state=0), X, y)
    # half of each class is held out: 5 + 3 + 2 samples, so 10 are trained on per epoch
    assert est.t_ == 2 * 10
    with pytest.raises(ValueError, match=r"least populated classes in y have only 1 member.*"
                                         r"Classes with too few members are: \['True'\]"):
        MLPClassifier(early_stopping=True).fit(X[:4], [0, 0, 0, 1])
    with pytest.raises(ValueError, match=r"Classes with too few members are: \['c'\]"):
        MLPClassifier(early_stopping=True).fit(X[:5], ["a", "a", "b", "b", "c"])


# --- hostile parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize("class_weight", [{0: -1.0}, {0: np.nan}, {1: np.inf}, [{0: 1.0}, 3]])
def test_class_weight_must_be_finite_and_non_negative(binary, class_weight):
    X, y = binary
    with pytest.raises(ValueError, match="class_weight"):
        MLPClassifier(class_weight=class_weight).fit(X, y)


def test_optimizer_attributes_have_scikit_learns_names(iris):
    X, y = iris
    sgd = quiet_fit(MLPClassifier((4,), solver="sgd", momentum=0.5, max_iter=2, random_state=0),
                 X, y)
    opt = sgd._optimizer
    assert opt.learning_rate == opt.learning_rate_init == 0.001
    assert opt.momentum == 0.5 and opt.nesterov is True and opt.lr_schedule == "constant"
    adam = quiet_fit(MLPClassifier((4,), beta_1=0.8, max_iter=2, random_state=0), X, y)
    assert adam._optimizer.beta_1 == 0.8 and adam._optimizer.epsilon == 1e-8
    with pytest.raises(AttributeError, match="no attribute 'velocities'"):
        _ = adam._optimizer.velocities
    back = pickle.loads(pickle.dumps(adam))
    assert back._optimizer.learning_rate == adam._optimizer.learning_rate


# --- scikit-learn's parameter names and defaults, batch_size="auto", the regressor's attributes ---

SHARED_PARAMETERS = [
    "hidden_layer_sizes", "activation", "solver", "alpha", "batch_size", "learning_rate",
    "learning_rate_init", "power_t", "max_iter", "shuffle", "random_state", "tol", "verbose",
    "warm_start", "momentum", "nesterovs_momentum", "early_stopping", "validation_fraction",
    "beta_1", "beta_2", "epsilon", "n_iter_no_change",
]


@pytest.mark.parametrize(("ours", "theirs"), [(MLPClassifier, SkClassifier),
                                              (MLPRegressor, SkRegressor)])
def test_shared_parameters_have_scikit_learns_names_and_defaults(ours, theirs):
    mine, ref = ours().get_params(), theirs().get_params()
    for name in SHARED_PARAMETERS:
        assert name in mine, name
        assert mine[name] == ref[name], (name, mine[name], ref[name])
    assert {"dropout", "loss"} <= set(mine)
    assert ("class_weight" in mine) == (ours is MLPClassifier)


def test_solvers_and_every_chainrule_activation_are_accepted():
    assert {"sgd", "adam", "adamw", "rmsprop"} <= set(SOLVERS)
    elementwise = {n for n in nn.ACTIVATIONS if nn.ACTIVATIONS[n].elementwise}
    assert elementwise <= set(HIDDEN_ACTIVATIONS)
    assert {"identity", "logistic", "tanh", "relu"} <= set(HIDDEN_ACTIVATIONS)  # scikit-learn's


def _first_layer_after_two_epochs(X, y, batch_size):
    est = MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", batch_size=batch_size,
                       shuffle=False, max_iter=2, learning_rate_init=0.01, dtype="float64",
                       random_state=0)
    return quiet_fit(est, X, y).coefs_[0]


def test_batch_size_auto_is_min_200_n():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(250, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    fit = _first_layer_after_two_epochs
    auto = fit(X, y, "auto")
    np.testing.assert_array_equal(auto, fit(X, y, 200))
    assert not np.array_equal(auto, fit(X, y, 250))
    small = fit(X[:60], y[:60], "auto")
    np.testing.assert_array_equal(small, fit(X[:60], y[:60], 60))
    assert not np.array_equal(small, fit(X[:60], y[:60], 30))


def test_regressor_fitted_attributes_and_pickle():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    Y = np.c_[X[:, 0] - X[:, 1], 2 * X[:, 2]]
    est = quiet_fit(MLPRegressor(hidden_layer_sizes=(5, 4), max_iter=7, random_state=0), X, Y)
    assert est.n_features_in_ == 3 and est.n_outputs_ == 2 and est.n_layers_ == 4
    assert est.out_activation_ == "identity"
    assert [c.shape for c in est.coefs_] == [(3, 5), (5, 4), (4, 2)]
    assert [b.shape for b in est.intercepts_] == [(5,), (4,), (2,)]
    assert est.n_iter_ == 7 == len(est.loss_curve_) and est.t_ == 7 * 40
    assert est.loss_ == est.loss_curve_[-1] and est.best_loss_ == min(est.loss_curve_)
    assert not hasattr(est, "classes_")
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    assert back.score(X, Y) == est.score(X, Y)


def test_feature_names_in_from_a_dataframe_survive_saving(tmp_path):
    pd = pytest.importorskip("pandas")

    frame = load_iris(as_frame=True)
    X, y = frame.data, frame.target
    with pytest.warns(ConvergenceWarning):
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X, y)
    assert list(clf.feature_names_in_) == list(X.columns)
    path = tmp_path / "iris.safetensors"
    clf.save(path)
    loaded = MLPClassifier.load(path)
    assert list(loaded.feature_names_in_) == list(X.columns)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    renamed = pd.DataFrame(X.to_numpy(), columns=[f"f{i}" for i in range(X.shape[1])])
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(renamed)
