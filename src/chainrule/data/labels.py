"""Class labels as indices, and indices as one-hot rows."""

from __future__ import annotations

import numpy as np

from chainrule._checks import check_scalar

__all__ = ["encode_labels", "encode_with", "one_hot"]


def encode_labels(y) -> tuple[np.ndarray, np.ndarray]:
    """Map class labels to indices: ``classes, indices`` with ``classes[indices] == y``.

    ``classes`` are the sorted distinct labels (numbers or strings); ``indices`` are int64 in
    ``0..len(classes) - 1``.

    >>> encode_labels(["cat", "dog", "cat"])
    (array(['cat', 'dog'], dtype='<U3'), array([0, 1, 0]))
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"encode_labels needs 1-D labels; got shape {y.shape}.")
    if len(y) == 0:
        raise ValueError("encode_labels got no labels (an empty array).")
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError(f"The labels contain NaN at index {int(np.flatnonzero(np.isnan(y))[0])}; "
                         "drop the unlabelled samples.")
    if y.dtype.kind not in "iufbUS":
        raise ValueError(f"The labels must be numbers or strings; got dtype {y.dtype}.")
    classes, indices = np.unique(y, return_inverse=True)
    return classes, indices.reshape(-1).astype(np.int64)


def one_hot(indices, n_classes: int | None = None, dtype=np.float32) -> np.ndarray:
    """Rows of zeros with a one at each index: shape ``(len(indices), n_classes)``.

    ``n_classes`` defaults to ``max(indices) + 1``.

    >>> one_hot([0, 2], 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    idx = np.asarray(indices)
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise ValueError(f"one_hot needs a 1-D array of integer class indices; got shape "
                         f"{idx.shape} of {idx.dtype}. Map labels to indices with "
                         "encode_labels first.")
    if n_classes is None:
        n_classes = int(idx.max()) + 1 if len(idx) else 0
    n_classes = check_scalar(n_classes, "n_classes", "one_hot", kind=int, low=1)
    bad = (idx < 0) | (idx >= n_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"Class index {idx[i]} at position {i} is outside 0..{n_classes - 1}.")
    out = np.zeros((len(idx), n_classes), dtype=dtype)
    out[np.arange(len(idx)), idx] = 1
    return out


def encode_with(classes, y) -> np.ndarray:
    """Map labels ``y`` to their indices in the sorted ``classes`` of :func:`encode_labels` (the
    training data's classes); a label that is not among them raises ValueError naming it."""
    y = np.asarray(y)
    idx = np.clip(np.searchsorted(classes, y), 0, len(classes) - 1)
    bad = classes[idx] != y
    if bad.any():
        known = ", ".join(map(str, classes[:10])) + ("..." if len(classes) > 10 else "")
        raise ValueError(f"Label {y[bad][0].item()!r} does not occur in the training data "
                         f"(known: {known}).")
    return idx
