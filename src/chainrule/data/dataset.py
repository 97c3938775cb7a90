"""A data set as arrays: :class:`Dataset`, and whether its targets are classes or values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_INFERRED_CLASSES", "TASKS", "Dataset", "infer_task", "is_integer_valued",
           "label_names"]

TASKS = ("classification", "regression")

#: A numeric target with at most this many distinct integer values is read as class labels.
MAX_INFERRED_CLASSES = 20


@dataclass(repr=False)
class Dataset:
    """Features and targets, with an optional test split of their own.

    Attributes
    ----------
    X : ndarray, shape (n_samples, n_features)
        float32 in [0, 1] for images (IDX files: 28x28 pixels flattened to 784), float64
        otherwise.
    y : ndarray, shape (n_samples,) or (n_samples, n_outputs)
        Class labels for classification (integer indices for the built-in and IDX data, the
        strings themselves for a CSV's text column; :func:`encode_labels` turns any labels into
        indices), values for regression.
    X_test, y_test : ndarray or None
        A test split that came with the data (MNIST's 10,000 test images), else None.
    task : {"classification", "regression"}
    name : str
        The data set's name, or the file's.
    feature_names, class_names : list of str or None
        ``class_names[i]`` names the class with index ``i`` of ``encode_labels(y)``.
    """

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    task: str = "classification"
    name: str = ""
    feature_names: list[str] | None = None
    class_names: list[str] | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"Dataset task must be one of {', '.join(TASKS)}; got {self.task!r}.")
        for X, y, split in ((self.X, self.y, ""), (self.X_test, self.y_test, "_test")):
            if X is None and y is None:
                continue
            if X is None or y is None:
                raise ValueError(f"Dataset needs both X{split} and y{split}, or neither.")
            if np.ndim(X) != 2:
                raise ValueError(f"Dataset X{split} must be 2-D; got shape {np.shape(X)}.")
            if len(X) != len(y):
                raise ValueError(
                    f"Dataset X{split} has {len(X)} rows but y{split} has {len(y)}."
                )

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def __repr__(self) -> str:
        test = f", test {self.X_test.shape}" if self.X_test is not None else ""
        classes = f", {len(self.class_names)} classes" if self.class_names else ""
        return (f"Dataset({self.name!r}, {self.task}, X {self.X.shape} {self.X.dtype}"
                f"{test}{classes})")


# --- targets: class labels or values -------------------------------------------------------


def is_integer_valued(y: np.ndarray) -> bool:
    """Whether every target in ``y`` is a whole number (integer or boolean dtype, or finite
    floats without a fractional part)."""
    return y.dtype.kind in "iub" or (
        y.dtype.kind == "f" and bool(np.isfinite(y).all()) and bool((y == np.round(y)).all())
    )


def infer_task(y: np.ndarray, task: str | None, where: str) -> tuple[np.ndarray, str]:
    """Decide classification or regression for targets ``y``; integer-valued labels become int64.

    Text, booleans and integer dtypes are class labels; floats are class labels when they are
    whole numbers with at most :data:`MAX_INFERRED_CLASSES` distinct values, else regression
    targets. ``task`` overrides the guess.
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)} or None; got {task!r}.")
    text = y.dtype.kind in "USO"
    if task is None:
        if text or y.dtype.kind in "iub":
            task = "classification"
        elif (y.ndim == 1 and is_integer_valued(y)
              and len(np.unique(y)) <= MAX_INFERRED_CLASSES):
            task = "classification"
        else:
            task = "regression"
    if task == "regression":
        if text:
            raise ValueError(f"{where}: regression needs numeric targets; got text such as "
                             f"{y.reshape(-1)[0]!r}.")
        return y.astype(np.float64), task
    if y.ndim != 1:
        raise ValueError(f"{where}: class labels must be 1-D; got shape {y.shape}.")
    if not text and is_integer_valued(y):
        y = y.astype(np.int64)
    return y, task


def label_names(y: np.ndarray) -> list[str]:
    """The distinct class labels of ``y``, sorted, as text."""
    return [str(c) for c in np.unique(y).tolist()]

