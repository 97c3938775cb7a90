"""Scores of a trained model shared by `chainrule train` and `chainrule evaluate`: R^2 for a
regressor, next to the loss (and accuracy) of ``model.evaluate``."""

from __future__ import annotations


def with_r2(model, X, y) -> dict:
    """``model.evaluate(X, y)``, plus R^2 for a regressor: 1 - SSE/SST, averaged over outputs
    (0 for predicting the mean, 1 for a perfect fit)."""
    metrics = model.evaluate(X, y)
    if model.task != "classification":
        metrics["r2"] = r2_score(model, X, y)
    return metrics


def r2_score(model, X, y) -> float:
    """R^2 = 1 - SSE/SST of the model's predictions, averaged over outputs (an output whose
    targets are all equal counts 0)."""
    import numpy as np

    pred = np.asarray(model.predict(X), dtype=np.float64).reshape(len(X), -1)
    y2 = np.asarray(y, dtype=np.float64).reshape(len(X), -1)
    sst = ((y2 - y2.mean(axis=0)) ** 2).sum(axis=0)
    sse = ((y2 - pred) ** 2).sum(axis=0)
    r2 = np.where(sst > 0, 1.0 - sse / np.where(sst > 0, sst, 1.0), 0.0)
    return float(r2.mean())
