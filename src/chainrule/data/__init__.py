"""Data sets in, arrays out: loaders, a stratified split, label encoding and feature scaling.

Loaders, each returning a :class:`Dataset` (:mod:`~chainrule.data.dataset`):

- :func:`load_idx` / :func:`load_idx_folder` (:mod:`~chainrule.data.idx`): the IDX files of
  MNIST and Fashion-MNIST, gzipped or raw. ``"mnist"`` and ``"fashion-mnist"`` name such
  folders, searched for by :func:`find_data_folder`.
- :func:`load_csv` (:mod:`~chainrule.data.csvfile`): a CSV file with a header row and a named
  target column.
- :func:`load_npz` (:mod:`~chainrule.data.npz`): a NumPy ``.npz`` archive with arrays ``X``
  and ``y``.
- :func:`load_builtin` (:mod:`~chainrule.data.builtin`): the small data sets that scikit-learn
  ships inside its package (:data:`BUILTINS`), read from its data files without importing
  scikit-learn.
- :func:`load_dataset` (:mod:`~chainrule.data.load`): any of the above from one string, as the
  command line's ``--data``.

Then :func:`train_test_split` (:mod:`~chainrule.data.split`), :func:`encode_labels` and
:func:`one_hot` (:mod:`~chainrule.data.labels`) and the scalers of :data:`SCALERS`
(:mod:`~chainrule.data.scaling`; fitted on the training data; ``get_config()`` is JSON, so a
saved model carries its preprocessing and :func:`scaler_from_config` rebuilds it).
:func:`prepare_dataset` (:mod:`~chainrule.data.prepare`) does all of it as ``chainrule train``
does.

Only NumPy and the standard library are used; every error names the file and what to do.

Examples
--------
>>> import numpy as np
>>> from chainrule.data import one_hot, train_test_split
>>> X, y = np.arange(20.0).reshape(10, 2), np.array([0, 1] * 5)
>>> X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, seed=0)
>>> X_train.shape, X_test.shape, np.bincount(y_test)  # stratified: one of each class
((8, 2), (2, 2), array([1, 1]))
>>> one_hot(np.array([0, 2, 1]), 3)
array([[1., 0., 0.],
       [0., 0., 1.],
       [0., 1., 0.]], dtype=float32)
"""

from __future__ import annotations

from chainrule.data.builtin import BUILTINS, load_builtin
from chainrule.data.csvfile import load_csv
from chainrule.data.dataset import TASKS, Dataset
from chainrule.data.idx import NAMED_IDX, find_data_folder, load_idx, load_idx_folder
from chainrule.data.labels import encode_labels, encode_with, one_hot
from chainrule.data.load import load_dataset
from chainrule.data.npz import load_npz
from chainrule.data.prepare import check_enough_samples, prepare_dataset, split_dataset
from chainrule.data.scaling import (
    SCALERS,
    MinMaxScaler,
    NoScaling,
    Scaler,
    Standardizer,
    make_scaler,
    resolve_scale,
    scaler_from_config,
)
from chainrule.data.split import train_test_split

__all__ = [
    "BUILTINS",
    "NAMED_IDX",
    "SCALERS",
    "TASKS",
    "Dataset",
    "MinMaxScaler",
    "NoScaling",
    "Scaler",
    "Standardizer",
    "check_enough_samples",
    "encode_labels",
    "encode_with",
    "find_data_folder",
    "load_builtin",
    "load_csv",
    "load_dataset",
    "load_idx",
    "load_idx_folder",
    "load_npz",
    "make_scaler",
    "one_hot",
    "prepare_dataset",
    "resolve_scale",
    "scaler_from_config",
    "split_dataset",
    "train_test_split",
]
