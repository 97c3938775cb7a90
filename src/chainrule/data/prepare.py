"""A :class:`~chainrule.data.dataset.Dataset` made ready for training, as ``chainrule train``
does: checked, split, its labels encoded and its features scaled."""

from __future__ import annotations

import numpy as np

from chainrule.data.dataset import Dataset
from chainrule.data.labels import encode_labels, encode_with
from chainrule.data.scaling import make_scaler, resolve_scale
from chainrule.data.split import train_test_split

__all__ = ["check_enough_samples", "prepare_dataset", "split_dataset"]


def check_enough_samples(ds: Dataset) -> None:
    """Refuse data that cannot be split and trained on: no samples, one class, a class with a
    single sample (it cannot be in both the training and the test set), targets of 3+ axes."""
    n = len(ds.X)
    y = np.asarray(ds.y)
    if n == 0:
        raise ValueError(f"{ds.name}: no samples; training needs at least two.")
    if y.ndim > 2:
        raise ValueError(f"{ds.name}: the targets have shape {y.shape}; expected one value per "
                         "sample, shape (n,), or one row per sample, shape (n, k).")
    if ds.task != "classification":
        if n < 2 and ds.X_test is None:
            raise ValueError(f"{ds.name}: 1 sample is too few to split into a training and a "
                             "test set; add samples.")
        return
    labels, counts = np.unique(y, return_counts=True)
    if len(labels) < 2:
        raise ValueError(f"{ds.name}: every sample has the label {labels[0].item()!r}; a "
                         "classifier needs at least two classes. Is the target column right?")
    if ds.X_test is None and counts.min() < 2:
        rare = labels[int(np.argmin(counts))].item()
        raise ValueError(f"{ds.name}: {n} sample{'s' if n != 1 else ''} are too few: class "
                         f"{rare!r} has a single sample, so it cannot be in both the training "
                         "and the test set. Add samples.")


def split_dataset(ds: Dataset, test_size: float, seed: int):
    """``X, y, X_test, y_test``: the data's own test set, else a split by
    :func:`~chainrule.data.split.train_test_split` (stratified for classes)."""
    if ds.X_test is not None:
        return ds.X, ds.y, ds.X_test, ds.y_test
    X, Xt, y, yt = train_test_split(ds.X, ds.y, test_size=test_size,
                                    stratify=ds.task == "classification", seed=seed)
    return X, y, Xt, yt


def prepare_dataset(ds: Dataset, test_size: float, scale: str, seed: int) -> dict:
    """The arrays to train and test on, and the preprocessing a model file records.

    1. Refuse data too small to split (:func:`check_enough_samples`).
    2. Split, unless the data has its own test set (:func:`split_dataset`).
    3. Encode class labels as indices of the training labels' classes.
    4. Fit the scaler (``scale``, "auto" resolved by
       :func:`~chainrule.data.scaling.resolve_scale`) on the training features; apply it to both.

    Returns a dict with ``X``, ``y``, ``X_test``, ``y_test``, ``classes`` (None for regression)
    and ``preprocessing``: the scaler's config, the feature names, the task and, for a split
    made here, how the test rows were held out (so that they can be found again).
    """
    check_enough_samples(ds)
    X, y, Xt, yt = split_dataset(ds, test_size, seed)
    classes = None
    if ds.task == "classification":
        classes, y = encode_labels(y)
        yt = encode_with(classes, yt)
    scaler = make_scaler(resolve_scale(scale, X))
    X = scaler.fit_transform(X)
    Xt = scaler.transform(Xt)
    preprocessing = {
        "scaler": scaler.get_config(),
        "feature_names": list(ds.feature_names or []),
        "task": ds.task,
    }
    if ds.X_test is None:
        preprocessing["split"] = {"data": ds.name, "samples": len(ds.X),
                                  "test_size": test_size, "seed": seed}
    return {"X": X, "y": y, "X_test": Xt, "y_test": yt, "classes": classes,
            "preprocessing": preprocessing}
