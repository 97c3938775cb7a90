"""The file format of the scikit-learn estimators: a chainrule model file with their state.

:meth:`MLPClassifier.save <chainrule.sklearn.MLPClassifier.save>` writes the fitted network as
a :class:`chainrule.nn.Sequential` (output activation included, so ``chainrule.load`` predicts
with it too) whose ``training_config["sklearn"]`` holds what the estimator needs besides the
weights: its class, its parameters, its fitted attributes and, for a classifier, its classes.
Every value is JSON (tuples as lists, infinities as the strings "inf" and "-inf", dicts as
``{"__dict__": [[key, value], ...]}``, so that keys keep their type); :func:`load` reads it
back. Nothing from the file is executed.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from chainrule.nn.model import Sequential, mlp
from chainrule.nn.model import load as load_model

__all__ = ["load", "to_model"]


def json_safe(value):
    """``value`` as JSON (tuples as lists, NumPy scalars as Python ones), or None if it has none."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple):
        items = [json_safe(v) for v in value]
        lost = any(a is None and b is not None for a, b in zip(items, value, strict=True))
        return None if lost else items
    if isinstance(value, dict):
        return {"__dict__": [[json_safe(k), json_safe(v)] for k, v in value.items()]}
    return None


def from_json(value):
    """The inverse of :func:`json_safe`."""
    if isinstance(value, dict) and "__dict__" in value:
        return {k: v for k, v in value["__dict__"]}
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def to_model(est) -> Sequential:
    """The fitted estimator ``est`` as a model whose ``training_config["sklearn"]`` holds its
    state (see :meth:`chainrule.sklearn.MLPClassifier.to_chainrule`)."""
    out = {"softmax": "softmax", "logistic": "sigmoid"}.get(est.out_activation_)
    units = [est.coefs_[0].shape[0], *(c.shape[1] for c in est.coefs_)]
    model = mlp(units, activation=est.activation, output=out, dropout=float(est.dropout),
                dtype=est.coefs_[0].dtype, seed=0)
    for layer, c, b in zip(model.dense_layers, est.coefs_, est.intercepts_, strict=True):
        layer.W[...] = c
        layer.b[...] = b
    model.eval()
    state = {
        "estimator": type(est).__name__,
        "params": {k: json_safe(v) for k, v in est.get_params().items()},
        "n_features_in": int(est.n_features_in_),
        "feature_names_in": (None if not hasattr(est, "feature_names_in_")
                             else [str(f) for f in est.feature_names_in_]),
        "out_activation": est.out_activation_,
        "n_outputs": int(est.n_outputs_),
        "n_iter": int(est.n_iter_),
        "t": int(est.t_),
        "loss": json_safe(getattr(est, "loss_", None)),
        "loss_curve": [float(v) for v in est.loss_curve_],
        "best_loss": json_safe(est.best_loss_),
        "validation_scores": (None if est.validation_scores_ is None
                              else [float(v) for v in est.validation_scores_]),
        "best_validation_score": json_safe(est.best_validation_score_),
    }
    model.task = "regression"
    if hasattr(est, "classes_"):
        multilabel = est._y_type == "multilabel-indicator"
        model.task = "multilabel" if multilabel else "classification"
        model.classes_ = None if multilabel else np.asarray(est.classes_)
        state["y_type"] = est._y_type
        state["classes"] = np.asarray(est.classes_).tolist()
    model.training_config = {"sklearn": state}
    return model


def load(cls, path):
    """The estimator of class ``cls`` saved in ``path``, fitted and ready to predict."""
    model = load_model(path)
    state = _state(model, cls, path)
    valid = cls().get_params()
    params = {k: from_json(v) for k, v in state["params"].items() if k in valid}
    if isinstance(params.get("hidden_layer_sizes"), list):
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
    est = cls(**params)
    dense = model.dense_layers
    est.coefs_ = [np.array(d.W) for d in dense]
    est.intercepts_ = [np.array(d.b) for d in dense]
    est.n_features_in_ = state["n_features_in"]
    if state.get("feature_names_in") is not None:
        est.feature_names_in_ = np.asarray(state["feature_names_in"], dtype=object)
    est.n_outputs_ = state["n_outputs"]
    est.n_layers_ = len(dense) + 1
    est.out_activation_ = state["out_activation"]
    est.n_iter_ = state["n_iter"]
    est.t_ = state["t"]
    est.loss_ = from_json(state["loss"])
    est.loss_curve_ = list(state["loss_curve"])
    est.best_loss_ = from_json(state["best_loss"])
    est.validation_scores_ = state["validation_scores"]
    est.best_validation_score_ = from_json(state["best_validation_score"])
    est._no_improvement_count = 0
    est._best_coefs = [c.copy() for c in est.coefs_]
    est._best_intercepts = [b.copy() for b in est.intercepts_]
    if "y_type" in state:
        est._y_type = state["y_type"]
        est.classes_ = np.asarray(state["classes"])
    return est


def _state(model: Sequential, cls, path) -> dict:
    """The estimator's state in the model file, refused when it is another class's."""
    state = (model.training_config or {}).get("sklearn")
    if not isinstance(state, dict):
        raise ValueError(
            f"{path} holds a plain chainrule model, not a {cls.__name__}; load it with "
            "chainrule.load(path)."
        )
    if state.get("estimator") != cls.__name__:
        raise ValueError(
            f"{path} holds a {state.get('estimator')}, not a {cls.__name__}; load it with "
            f"chainrule.sklearn.{state.get('estimator')}.load(path)."
        )
    _check_state(state, model, cls, path)
    return state


#: The fields of a saved estimator's state that loading reads, with their types.
_STATE_FIELDS = {"params": dict, "n_features_in": int, "out_activation": str, "n_outputs": int,
                 "n_iter": int, "t": int, "loss_curve": list}


def _check_state(state: dict, model: Sequential, cls, path) -> None:
    """Refuse a state that lacks a field, holds one of another type, or does not fit the
    network in the file, naming the field (an altered or hand-made file)."""

    def refuse(what: str):
        raise ValueError(f"{path}: the {cls.__name__} state in this file {what}; the file was "
                         f"altered or not written by {cls.__name__}.save. Save the estimator "
                         "again.")

    for key, kind in _STATE_FIELDS.items():
        value = state.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            shown = "nothing" if key not in state else f"{type(value).__name__} {value!r:.40}"
            refuse(f"has {shown} for {key!r}, where a {kind.__name__} belongs")
    dense = model.dense_layers
    if not dense or state["n_features_in"] != dense[0].W.shape[0]:
        refuse(f"says {state['n_features_in']} input features, but its network takes "
               f"{dense[0].W.shape[0] if dense else 'none'}")
    if state["n_outputs"] != (dense[-1].W.shape[1] if dense else None):
        refuse(f"says {state['n_outputs']} outputs, but its network gives "
               f"{dense[-1].W.shape[1]}")
    if "y_type" in state and not isinstance(state.get("classes"), list):
        refuse("has no list of classes for its classifier")
