"""The one schema of a model file's ``"chainrule"`` metadata, checked before anything is built.

:func:`parse_metadata` turns the metadata text into a dict whose every field has the type and
range :func:`chainrule.nn.model.load` relies on, or raises :class:`ModelFileError` naming the file
and the field (``layers[2].config.out_features``). Layer sizes are checked against the tensors
the file actually holds before any layer is allocated, so a header that claims a 60000 x 60000
layer costs nothing.
"""

from __future__ import annotations

import json
import math

import numpy as np

from chainrule.nn import activations as _act
from chainrule.nn.layers import Dense, Dropout
from chainrule.serialization import ModelFileError, bounded_json

#: The format a model file names in its metadata, and the version of it this chainrule reads.
FORMAT_NAME = "chainrule.sequential"
FORMAT_VERSION = 1

#: Most layers, classes and characters of metadata accepted (far beyond any real model).
MAX_LAYERS = 10_000
MAX_CLASSES = 1_000_000
MAX_METADATA_CHARS = 50_000_000

TASKS = ("classification", "multilabel", "regression")
_SCALAR = (str, int, float, bool)


def load_json(text: str, where: str, what: str):
    """The metadata text as JSON (bounded nesting and integer size), errors naming ``where``."""
    if len(text) > MAX_METADATA_CHARS:
        raise ModelFileError(f"{where}: {what} is {len(text):,} characters long; at most "
                             f"{MAX_METADATA_CHARS:,} are read.")
    try:
        return bounded_json(text)
    except ValueError as exc:
        raise ModelFileError(f"{where}: {what} is not valid JSON ({exc}).") from None


class _Checker:
    def __init__(self, where: str):
        self.where = where

    def fail(self, field: str, message: str):
        raise ModelFileError(f"{self.where}: corrupted model metadata: {field} {message}.")

    def dict(self, value, field: str) -> dict:
        if not isinstance(value, dict):
            self.fail(field, f"must be a JSON object; got {_show(value)}")
        return value

    def int(self, value, field: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(field, f"must be an integer from {low} to {high:,}; got {_show(value)}")
        return value

    def number(self, value, field: str) -> float:
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value)):
            self.fail(field, f"must be a finite number; got {_show(value)}")
        return float(value)

    def choice(self, value, field: str, options) -> None:
        if value not in options:
            self.fail(field, f"must be one of {', '.join(map(repr, options))}; got "
                             f"{_show(value)}")


def _show(value) -> str:
    text = json.dumps(value) if isinstance(value, (*_SCALAR, type(None))) else type(value).__name__
    if isinstance(value, list | dict):
        text = f"a {'list' if isinstance(value, list) else 'JSON object'}"
    return text if len(text) <= 60 else text[:57] + "..."


def _check_dense(c: _Checker, field: str, config: dict, i: int, tensors: dict,
                 width: int | None) -> int:
    n_in = c.int(config.get("in_features"), f"{field}.config.in_features", 1, 2**31)
    n_out = c.int(config.get("out_features"), f"{field}.config.out_features", 1, 2**31)
    if width is not None and n_in != width:
        c.fail(f"{field}.config.in_features", f"is {n_in} but the layer before outputs {width}")
    weight = tensors.get(f"{i}.weight")
    if weight is None:
        raise ModelFileError(f"{c.where}: tensor '{i}.weight' is missing (layer {i} is "
                             f"{Dense.kind}).")
    if weight.shape != (n_out, n_in):
        raise ModelFileError(f"{c.where}: tensor '{i}.weight' has shape {weight.shape}; "
                             f"layer {i} ({n_in} -> {n_out}) needs {(n_out, n_in)}.")
    c.choice(config.get("bias", True), f"{field}.config.bias", (True, False))
    c.choice(config.get("dtype", "float32"), f"{field}.config.dtype",
             ("float16", "float32", "float64"))
    if not isinstance(config.get("init", "auto"), str):
        c.fail(f"{field}.config.init", f"must be a string; got {_show(config['init'])}")
    return n_out


def _check_dropout(c: _Checker, field: str, config: dict, i: int, tensors: dict,
                   width: int | None) -> int | None:
    p = c.number(config.get("p", 0.5), f"{field}.config.p")
    if not 0.0 <= p < 1.0:
        c.fail(f"{field}.config.p", f"must be in [0, 1); got {p}")
    return width


# The check of each layer kind with parameters of its own (see chainrule.nn.model.LAYER_KINDS).
_LAYER_CHECKS = {Dense.kind: _check_dense, Dropout.kind: _check_dropout}


def _check_activation(c: _Checker, field: str, spec: dict, config: dict) -> None:
    name = spec.get("name")
    if not isinstance(name, str):
        c.fail(f"{field}.name", f"must be an activation name; got {_show(name)}")
    for key, value in config.items():
        if not isinstance(value, str | int | float) or (
                isinstance(value, float) and not math.isfinite(value)):
            c.fail(f"{field}.config.{key}", f"must be a number or a string; got {_show(value)}")
    if "axis" in config and config["axis"] not in (1, -1):
        c.fail(f"{field}.config.axis", f"must be -1 or 1 (the class axis of (samples, classes) "
                                       f"rows); got {_show(config['axis'])}")
    if name not in _act.ACTIVATIONS and "formula" not in config:
        c.fail(f"{field}.name", f"names an unknown activation {_show(name)} (known: "
                                f"{', '.join(sorted(_act.ACTIVATIONS))})")


def _check_layer(c: _Checker, spec, i: int, tensors: dict, width: int | None) -> int | None:
    """Check layer ``i``; return the width after it (None when it is not known yet)."""
    field = f"layers[{i}]"
    spec = c.dict(spec, field)
    c.choice(spec.get("type"), f"{field}.type", (*_LAYER_CHECKS, "Activation"))
    config = c.dict(spec.get("config", {}), f"{field}.config")
    check = _LAYER_CHECKS.get(spec["type"])
    if check is not None:
        return check(c, field, config, i, tensors, width)
    _check_activation(c, field, spec, config)
    return width


def _check_classes(c: _Checker, meta: dict, width: int) -> None:
    """The task, and the class labels against the model's ``width`` outputs."""
    task = meta.get("task")
    if task is not None:
        c.choice(task, "task", TASKS)
    classes = meta.get("classes")
    if classes is not None:
        if not isinstance(classes, list) or not all(
                isinstance(v, _SCALAR) and not isinstance(v, bool) for v in classes):
            c.fail("classes", f"must be a list of class labels (numbers or strings); got "
                              f"{_show(classes)}")
        if len(classes) > MAX_CLASSES:
            c.fail("classes", f"lists {len(classes):,} labels")
        if len({type(v) is str for v in classes}) > 1:
            c.fail("classes", "mixes numbers and strings")
        needed = 2 if width == 1 else width
        if task == "classification" and len(classes) != needed:
            c.fail("classes", f"lists {len(classes)} labels but the model has {width} "
                              f"output{'s' if width != 1 else ''}, so it needs {needed}")


def check_metadata(meta, where: str, tensors: dict[str, np.ndarray]) -> dict:
    """Check the parsed metadata against the schema and the tensors; return it unchanged."""
    c = _Checker(where)
    if not isinstance(meta, dict):
        raise ModelFileError(f"{where}: the chainrule metadata must be a JSON object; got "
                             f"{_show(meta)}.")
    if meta.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{where}: unknown model format {_show(meta.get('format'))} "
                             f"(expected {FORMAT_NAME!r}).")
    if meta.get("version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{where}: model format version {_show(meta.get('version'))}; this chainrule reads "
            f"version {FORMAT_VERSION}. Upgrade chainrule."
        )
    specs = meta.get("layers")
    if not isinstance(specs, list) or not specs:
        raise ModelFileError(f"{where}: the model lists no layers.")
    if len(specs) > MAX_LAYERS:
        c.fail("layers", f"lists {len(specs):,} layers; at most {MAX_LAYERS:,} are accepted")
    width = None
    for i, spec in enumerate(specs):
        width = _check_layer(c, spec, i, tensors, width)
    if width is None:
        raise ModelFileError(f"{where}: the model has no Dense layer.")
    first_in = specs[next(i for i, s in enumerate(specs) if s["type"] == Dense.kind)]["config"][
        "in_features"]

    _check_classes(c, meta, width)
    prep = meta.get("preprocessing")
    if prep is not None:
        prep = c.dict(prep, "preprocessing")
        scaler = prep.get("scaler")
        if scaler is not None:
            from chainrule import data as _data

            c.dict(scaler, "preprocessing.scaler")
            try:
                fitted = _data.scaler_from_config(scaler)
            except ValueError as exc:
                c.fail("preprocessing.scaler", f"is invalid ({exc})")
            n = fitted.n_features_
            if n is not None and n != first_in:
                c.fail("preprocessing.scaler", f"scales {n} features but the first layer takes "
                                               f"{first_in}")
        names = prep.get("feature_names", [])
        if not isinstance(names, list) or not all(isinstance(v, str) for v in names):
            c.fail("preprocessing.feature_names", f"must be a list of strings; got {_show(names)}")
    training = meta.get("training")
    if training is not None:
        c.dict(training, "training")
    return meta
