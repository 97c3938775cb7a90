"""Data sets and a quiet fit shared by the scikit-learn estimator tests (test_sklearn*.py)."""

from __future__ import annotations

import warnings

import pytest
from sklearn.datasets import load_iris, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler


@pytest.fixture(scope="module", name="iris")
def iris_fixture():
    """Iris, standardized."""
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module", name="binary")
def binary_fixture():
    """300 samples of two classes, 8 features."""
    X, y = make_classification(n_samples=300, n_features=8, n_informative=5, random_state=0)
    return X, y


def quiet_fit(est, *args, **kwargs):
    """``est.fit(...)`` without the ConvergenceWarning of a short max_iter."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)
