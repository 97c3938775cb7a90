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


# --- normalization, attention and sequence layers ---------------------------------------------


def _check_tensors(c: _Checker, i, kind: str, tensors: dict, shapes: dict[str, tuple]) -> None:
    """Each tensor ``{i}.{name}`` is in the file with its shape, before anything is allocated."""
    for name, shape in shapes.items():
        value = tensors.get(f"{i}.{name}")
        if value is None:
            raise ModelFileError(f"{c.where}: tensor '{i}.{name}' is missing (layer {i} is "
                                 f"{kind}).")
        if value.shape != shape:
            raise ModelFileError(f"{c.where}: tensor '{i}.{name}' has shape {value.shape}; "
                                 f"layer {i} ({kind}) needs {shape}.")


def _check_width(c: _Checker, field: str, n: int, width: int | None) -> int:
    if width is not None and n != width:
        c.fail(field, f"is {n} but the layer before outputs {width}")
    return n


def _check_dtype_and_eps(c: _Checker, field: str, config: dict) -> None:
    c.choice(config.get("dtype", "float32"), f"{field}.config.dtype",
             ("float16", "float32", "float64"))
    if "eps" in config and c.number(config["eps"], f"{field}.config.eps") <= 0:
        c.fail(f"{field}.config.eps", f"must be positive; got {config['eps']}")


def _check_norm(c: _Checker, field: str, config: dict, i, tensors: dict, width: int | None,
                kind: str) -> int:
    n = c.int(config.get("num_features"), f"{field}.config.num_features", 1, 2**31)
    _check_dtype_and_eps(c, field, config)
    shapes = {"weight": (n,), "bias": (n,)}
    if kind == "BatchNorm":
        if config.get("momentum") is not None:
            momentum = c.number(config["momentum"], f"{field}.config.momentum")
            if not 0.0 <= momentum <= 1.0:
                c.fail(f"{field}.config.momentum", f"must be in [0, 1] or null; got {momentum}")
        shapes.update({"running_mean": (n,), "running_var": (n,), "num_batches_tracked": ()})
    _check_tensors(c, i, kind, tensors, shapes)
    return _check_width(c, f"{field}.config.num_features", n, width)


def _check_batch_norm(c: _Checker, field: str, config: dict, i, tensors: dict,
                      width: int | None) -> int:
    return _check_norm(c, field, config, i, tensors, width, "BatchNorm")


def _check_layer_norm(c: _Checker, field: str, config: dict, i, tensors: dict,
                      width: int | None) -> int:
    return _check_norm(c, field, config, i, tensors, width, "LayerNorm")


def _check_attention(c: _Checker, field: str, config: dict, i, tensors: dict,
                     width: int | None) -> int:
    d = c.int(config.get("d_model"), f"{field}.config.d_model", 1, 2**20)
    heads = c.int(config.get("num_heads", 1), f"{field}.config.num_heads", 1, d)
    if d % heads:
        c.fail(f"{field}.config.num_heads", f"must divide d_model={d}; got {heads}")
    c.choice(config.get("causal", False), f"{field}.config.causal", (True, False))
    _check_dtype_and_eps(c, field, config)
    _check_tensors(c, i, "MultiHeadAttention", tensors, {
        "in_proj_weight": (3 * d, d), "in_proj_bias": (3 * d,),
        "out_proj.weight": (d, d), "out_proj.bias": (d,)})
    return _check_width(c, f"{field}.config.d_model", d, width)


def _check_residual(c: _Checker, field: str, config: dict, i, tensors: dict,
                    width: int | None) -> int | None:
    specs = config.get("layers")
    if not isinstance(specs, list) or not specs:
        c.fail(f"{field}.config.layers", f"must be a non-empty list of layers; got "
                                         f"{_show(specs)}")
    if len(specs) > MAX_LAYERS:
        c.fail(f"{field}.config.layers", f"lists {len(specs):,} layers")
    inner = width
    for j, spec in enumerate(specs):
        inner = _check_layer(c, spec, f"{i}.{j}", tensors, inner, f"{field}.config.layers[{j}]")
    if width is not None and inner is not None and inner != width:
        c.fail(f"{field}.config.layers", f"turn {width} features into {inner}; a residual "
                                         "block must keep the width")
    return inner


def _check_positions(c: _Checker, field: str, config: dict, i, tensors: dict,
                     width: int | None) -> int:
    n = c.int(config.get("max_len"), f"{field}.config.max_len", 1, 2**31)
    d = c.int(config.get("d_model"), f"{field}.config.d_model", 1, 2**31)
    _check_dtype_and_eps(c, field, config)
    _check_tensors(c, i, "PositionalEmbedding", tensors, {"weight": (n, d)})
    return _check_width(c, f"{field}.config.d_model", d, width)


def _keeps_width(c: _Checker, field: str, config: dict, i, tensors: dict,
                 width: int | None) -> int | None:
    return width


_LAYER_CHECKS.update({
    "BatchNorm": _check_batch_norm, "LayerNorm": _check_layer_norm,
    "MultiHeadAttention": _check_attention,
    "DenseOverTime": _check_dense, "PositionalEmbedding": _check_positions,
    "MeanOverTime": _keeps_width, "Residual": _check_residual,
})


# --- convolution, pooling and recurrent layers ----------------------------------------------


def _check_pair(c: _Checker, field: str, value, low: int) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        c.fail(field, f"must be a list of two integers (height, width); got {_show(value)}")
    return tuple(c.int(v, field, low, 2**20) for v in value)


def _check_conv(c: _Checker, field: str, config: dict, i, tensors: dict,
                width: int | None) -> None:
    n_in = c.int(config.get("in_channels"), f"{field}.config.in_channels", 1, 2**20)
    n_out = c.int(config.get("out_channels"), f"{field}.config.out_channels", 1, 2**20)
    kh, kw = _check_pair(c, f"{field}.config.kernel_size", config.get("kernel_size"), 1)
    _check_pair(c, f"{field}.config.stride", config.get("stride", [1, 1]), 1)
    _check_pair(c, f"{field}.config.padding", config.get("padding", [0, 0]), 0)
    _check_dtype_and_eps(c, field, config)
    _check_tensors(c, i, "Conv2D", tensors, {"weight": (n_out, n_in, kh, kw), "bias": (n_out,)})
    return None


def _check_pool(c: _Checker, field: str, config: dict, i, tensors: dict,
                width: int | None) -> None:
    _check_pair(c, f"{field}.config.kernel_size", config.get("kernel_size"), 1)
    if config.get("stride") is not None:
        _check_pair(c, f"{field}.config.stride", config["stride"], 1)
    return None


def _no_width(c: _Checker, field: str, config: dict, i, tensors: dict, width) -> None:
    return None


def _check_recurrent(c: _Checker, field: str, config: dict, i, tensors: dict,
                     width: int | None, kind: str) -> int:
    n_in = c.int(config.get("input_size"), f"{field}.config.input_size", 1, 2**20)
    hidden = c.int(config.get("hidden_size"), f"{field}.config.hidden_size", 1, 2**20)
    _check_dtype_and_eps(c, field, config)
    rows = (4 if kind == "LSTM" else 1) * hidden
    _check_tensors(c, i, kind, tensors, {"weight_ih_l0": (rows, n_in), "weight_hh_l0":
                                         (rows, hidden), "bias_ih_l0": (rows,),
                                         "bias_hh_l0": (rows,)})
    _check_width(c, f"{field}.config.input_size", n_in, width)
    return hidden


_LAYER_CHECKS.update({
    "Conv2D": _check_conv, "MaxPool2D": _check_pool, "AvgPool2D": _check_pool,
    "Flatten": _no_width,
    "RNN": lambda *a: _check_recurrent(*a, kind="RNN"),
    "LSTM": lambda *a: _check_recurrent(*a, kind="LSTM"),
})


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


def _check_layer(c: _Checker, spec, i, tensors: dict, width: int | None,
                 field: str | None = None) -> int | None:
    """Check layer ``i`` (``"3.0"`` for the first layer of the block at 3); return the width
    after it (None when it is not known yet)."""
    field = field or f"layers[{i}]"
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


def _first_width(c: _Checker, meta: dict, specs: list, dense_in: int) -> int | None:
    """The number of features a sample holds: the product of ``input_shape`` when the file
    gives one (checked to be a list of at most 3 sizes >= 1), the first Dense layer's width for
    a model of rows, None where the model's first layer takes images or sequences of any
    size."""
    shape = meta.get("input_shape")
    if shape is not None:
        if not (isinstance(shape, list) and 1 <= len(shape) <= 3 and all(
                isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 2**31
                for v in shape)):
            c.fail("input_shape", f"must be a list of 1 to 3 sizes >= 1; got {_show(shape)}")
        return math.prod(shape)
    if specs[0].get("type") in ("Conv2D", "RNN", "LSTM"):
        return None
    return dense_in


def _check_preprocessing(c: _Checker, prep: dict, first_in: int | None) -> None:
    """The scaler (its width against the first layer's) and the feature names."""
    scaler = prep.get("scaler")
    if scaler is not None:
        from chainrule import data as _data

        c.dict(scaler, "preprocessing.scaler")
        try:
            fitted = _data.scaler_from_config(scaler)
        except ValueError as exc:
            c.fail("preprocessing.scaler", f"is invalid ({exc})")
        n = fitted.n_features_
        if n is not None and first_in is not None and n != first_in:
            c.fail("preprocessing.scaler", f"scales {n} features but the first layer takes "
                                           f"{first_in}")
    names = prep.get("feature_names", [])
    if not isinstance(names, list) or not all(isinstance(v, str) for v in names):
        c.fail("preprocessing.feature_names", f"must be a list of strings; got {_show(names)}")


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
    dense = [s for s in specs if s["type"] in (Dense.kind, "DenseOverTime")]
    if width is None or not dense:
        raise ModelFileError(f"{where}: the model has no Dense layer.")
    first_in = _first_width(c, meta, specs, dense[0]["config"]["in_features"])

    _check_classes(c, meta, width)
    if meta.get("preprocessing") is not None:
        _check_preprocessing(c, c.dict(meta["preprocessing"], "preprocessing"), first_in)
    training = meta.get("training")
    if training is not None:
        c.dict(training, "training")
    return meta
