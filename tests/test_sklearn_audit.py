"""The parts of the estimators' contract test_sklearn.py does not pin down.

Parameter names and defaults against scikit-learn's own MLP, every chainrule activation
accepted, batch_size="auto" meaning min(200, n), the core never importing scikit-learn, and
the regressor's fitted attributes and pickling.
"""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor

from chainrule import nn
from chainrule.sklearn import HIDDEN_ACTIVATIONS, SOLVERS, MLPClassifier, MLPRegressor

SHARED = ["hidden_layer_sizes", "activation", "solver", "alpha", "batch_size", "learning_rate",
          "learning_rate_init", "power_t", "max_iter", "shuffle", "random_state", "tol",
          "verbose", "warm_start", "momentum", "nesterovs_momentum", "early_stopping",
          "validation_fraction", "beta_1", "beta_2", "epsilon", "n_iter_no_change"]


def _quiet(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


@pytest.mark.parametrize(("ours", "theirs"), [(MLPClassifier, SkClassifier),
                                              (MLPRegressor, SkRegressor)])
def test_shared_parameters_have_scikit_learns_names_and_defaults(ours, theirs):
    mine, ref = ours().get_params(), theirs().get_params()
    for name in SHARED:
        assert name in mine, name
        assert mine[name] == ref[name], (name, mine[name], ref[name])
    assert {"dropout", "loss"} <= set(mine)
    assert ("class_weight" in mine) == (ours is MLPClassifier)


def test_solvers_and_every_chainrule_activation_are_accepted():
    assert {"sgd", "adam", "adamw", "rmsprop"} <= set(SOLVERS)
    elementwise = {n for n in nn.ACTIVATIONS if nn.ACTIVATIONS[n].elementwise}
    assert elementwise <= set(HIDDEN_ACTIVATIONS)
    assert {"identity", "logistic", "tanh", "relu"} <= set(HIDDEN_ACTIVATIONS)  # scikit-learn's


def _fit(X, y, batch_size):
    est = MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", batch_size=batch_size,
                       shuffle=False, max_iter=2, learning_rate_init=0.01, dtype="float64",
                       random_state=0)
    return _quiet(est, X, y).coefs_[0]


def test_batch_size_auto_is_min_200_n():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(250, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    auto = _fit(X, y, "auto")
    np.testing.assert_array_equal(auto, _fit(X, y, 200))
    assert not np.array_equal(auto, _fit(X, y, 250))
    small = _fit(X[:60], y[:60], "auto")
    np.testing.assert_array_equal(small, _fit(X[:60], y[:60], 60))
    assert not np.array_equal(small, _fit(X[:60], y[:60], 30))


def test_the_core_never_imports_scikit_learn():
    code = ("import sys, numpy as np, chainrule, chainrule.nn, chainrule.training, "
            "chainrule.losses, chainrule.optim, chainrule.data, chainrule.serialization; "
            "from chainrule.nn import Dense, Sequential; "
            "m = Sequential([Dense(2, 1)]); m.forward(np.ones((3, 2))); "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "False"


def test_regressor_fitted_attributes_and_pickle():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    Y = np.c_[X[:, 0] - X[:, 1], 2 * X[:, 2]]
    est = _quiet(MLPRegressor(hidden_layer_sizes=(5, 4), max_iter=7, random_state=0), X, Y)
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
    from sklearn.datasets import load_iris

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
