"""A stratified train/test split."""

from __future__ import annotations

import math

import numpy as np

from chainrule._checks import check_scalar
from chainrule.data.dataset import is_integer_valued

__all__ = ["train_test_split"]


def _test_count(test_size, n: int) -> int:
    """The number of test samples: ``ceil(test_size * n)`` for a fraction, else the count."""
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float, np.integer,
                                                                   np.floating)):
        raise ValueError(f"test_size must be a fraction in (0, 1) or a count; got {test_size!r}.")
    if isinstance(test_size, (float, np.floating)):
        fraction = check_scalar(test_size, "test_size", "train_test_split", low=0.0, high=1.0,
                                low_open=True, high_open=True)
        n_test = math.ceil(fraction * n)
    else:
        n_test = int(test_size)
    if not 1 <= n_test <= n - 1:
        raise ValueError(f"test_size={test_size} leaves {n_test} of {n} samples for testing; "
                         "both the training and the test set need at least one.")
    return n_test


def train_test_split(X, y, test_size: float = 0.2, stratify: bool = True, seed: int = 0):
    """Split ``X`` and ``y`` into training and test sets: ``X_train, X_test, y_train, y_test``.

    ``test_size`` is a fraction (the test set gets ``ceil(test_size * n)`` samples, as in
    scikit-learn) or a count. With ``stratify`` (for class labels) each class gets its share of
    the test set, ``n_c * n_test / n`` rounded down or up, so the proportions hold within one
    sample; the shares left over after rounding down go to the classes with the largest
    remainders. The same ``seed`` gives the same split.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)}; they must be equal.")
    n_test = _test_count(test_size, n)
    rng = np.random.default_rng(seed)
    if not stratify:
        order = rng.permutation(n)
        test, train = order[:n_test], order[n_test:]
        return X[train], X[test], y[train], y[test]

    if y.ndim != 1:
        raise ValueError(f"stratify=True needs 1-D class labels; y has shape {y.shape}. Pass "
                         "stratify=False.")
    if y.dtype.kind == "f" and not is_integer_valued(y):
        raise ValueError(f"stratify=True needs class labels, but y holds values such as "
                         f"{y[~(y == np.round(y))][0]}; for regression targets pass "
                         "stratify=False.")
    _, labels = np.unique(y, return_inverse=True)
    labels = labels.reshape(-1)
    counts = np.bincount(labels)
    ideal = counts * (n_test / n)
    share = np.floor(ideal).astype(np.int64)
    # The largest remainders get the samples that rounding down left over (ties: random).
    tie_break = rng.random(len(counts))
    order = np.lexsort((tie_break, -(ideal - share)))
    share[order[: n_test - share.sum()]] += 1

    by_class = np.split(np.argsort(labels, kind="stable"), np.cumsum(counts)[:-1])
    test_parts, train_parts = [], []
    for members, k in zip(by_class, share, strict=True):
        members = rng.permutation(members)
        test_parts.append(members[:k])
        train_parts.append(members[k:])
    test = rng.permutation(np.concatenate(test_parts))
    train = rng.permutation(np.concatenate(train_parts))
    return X[train], X[test], y[train], y[test]

