"""Shared by `chainrule predict` and `chainrule evaluate`: load a model and prepare data for it."""

from __future__ import annotations


def load_model_and_data(model_path: str, data: str, target: str | None,
                        held_out: bool | None = None, features_only: bool = False,
                        command: str = "predict"):
    """The model, and the dataset's features (test split when it has one) scaled as in training.

    With ``held_out`` True, data without a test split of its own that the model was trained on
    (same name and size) is split again as in training, and only the held-out rows are returned;
    with ``held_out`` True or False a fourth value says which rows were used. With
    ``features_only`` (new samples to predict) and no ``target``, every column of a file is a
    feature: none is guessed to be a target and dropped.

    A model file that records no preprocessing (a model saved from Python without
    ``model.preprocessing``) says nothing of how its features were scaled or which rows it was
    trained on: the features are fed as read, with a warning line on stderr naming what is
    missing, and with ``held_out`` True on data without a test split of its own it is refused
    (:class:`~chainrule._cli.UsageError`): only ``--all`` scores rows it may have been trained on.
    """
    import math

    import numpy as np

    import chainrule
    from chainrule import data as cdata

    model = chainrule.load(model_path)
    ds = cdata.load_dataset(data, target=target)
    X, y = (ds.X_test, ds.y_test) if ds.X_test is not None else (ds.X, ds.y)
    rows = "test split" if ds.X_test is not None else "all rows"
    split = (model.preprocessing or {}).get("split")
    if (held_out and ds.X_test is None and isinstance(split, dict)
            and split.get("data") == ds.name and split.get("samples") == len(ds.X)):
        _, _, X, y = cdata.split_dataset(ds, float(split["test_size"]), int(split["seed"]))
        rows = "held-out test rows"
    y_values = None if y is None else np.asarray(y)
    guessed = (target is None and np.ndim(X) == 2 and y_values is not None
               and y_values.ndim == 1 and y_values.dtype.kind in "biuf")
    # A model of images reads flat rows of its input shape's pixels (prepare_input reshapes).
    width = math.prod(model.input_shape) if model.input_shape else model.in_features
    if guessed and (features_only or X.shape[1] == width - 1):
        # A CSV of features only: its last column was read as the target; it is a feature.
        X, y = np.column_stack([X, y_values]), None
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != width:
        hint = (" (every column is read as a feature: name a target column with --target, and "
                "drop other columns such as an id)") if features_only else ""
        raise ValueError(
            f"{data} has {X.shape[1] if X.ndim == 2 else X.shape} features but the model "
            f"{model_path} expects {width}{hint}."
        )
    if not model.preprocessing:
        _unrecorded(model_path, data, command, bool(held_out) and ds.X_test is None)
    prep = model.preprocessing or {}
    scaler_cfg = prep.get("scaler")
    if scaler_cfg:
        X = cdata.scaler_from_config(scaler_cfg).transform(X)
    if held_out is not None:
        return model, X, y, rows
    return model, X, y


def _unrecorded(model_path: str, data: str, command: str, refuse: bool) -> None:
    """Refuse (``refuse``) or warn about a model file that records no preprocessing."""
    import sys

    from chainrule._cli import UsageError

    if refuse:
        raise UsageError(
            f"{model_path} records no preprocessing and no split (a model saved from Python), "
            f"so the rows of {data} it was trained on cannot be told from the others: pass "
            f"--all to score every row, training rows included, or evaluate on rows it never "
            f"saw. A model trained with prepare_dataset and saved with its preprocessing (see "
            f"the README) is scored on its held-out rows."
        )
    print(f"chainrule {command}: warning: {model_path} records no preprocessing (a model saved "
          f"from Python): the features of {data} are fed as read, unscaled; if the model was "
          f"trained on scaled features, its answers here are not those it was trained to give.",
          file=sys.stderr)
