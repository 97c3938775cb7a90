"""Shared by `chainrule predict` and `chainrule evaluate`: load a model and prepare data for it."""

from __future__ import annotations


def load_model_and_data(model_path: str, data: str, target: str | None):
    """The model, and the dataset's features (test split when it has one) scaled as in training."""
    import numpy as np

    import chainrule
    from chainrule import data as cdata

    model = chainrule.load(model_path)
    ds = cdata.load_dataset(data, target=target)
    X, y = (ds.X_test, ds.y_test) if ds.X_test is not None else (ds.X, ds.y)
    y_values = None if y is None else np.asarray(y)
    if (
        target is None
        and np.ndim(X) == 2
        and X.shape[1] == model.in_features - 1
        and y_values is not None
        and y_values.ndim == 1
        and y_values.dtype.kind in "biuf"
    ):
        # A CSV of features only: its last column was read as the target; it is a feature.
        X, y = np.column_stack([X, y_values]), None
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != model.in_features:
        raise ValueError(
            f"{data} has {X.shape[1] if X.ndim == 2 else X.shape} features but the model "
            f"{model_path} expects {model.in_features}"
        )
    prep = model.preprocessing or {}
    scaler_cfg = prep.get("scaler")
    if scaler_cfg:
        X = cdata.scaler_from_config(scaler_cfg).transform(X)
    return model, X, y
