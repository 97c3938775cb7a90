r"""The model: :class:`Sequential`, a stack of layers trained by backpropagation.

Backpropagation is the chain rule applied layer by layer, last to first: each layer receives
:math:`\partial E/\partial(\text{its output})`, stores the gradients of its own parameters and
returns :math:`\partial E/\partial(\text{its input})` for the layer before it.

Fused output
------------
When the model ends in :class:`Sigmoid` and the loss is binary cross-entropy (or :class:`Softmax`
and cross-entropy), training does not differentiate the activation and the loss separately:
it computes the loss from the logits :math:`z` with the stable with-logits form and starts
backpropagation from

.. math:: \frac{\partial E}{\partial z} = \frac{1}{m}(\hat y - y),

the well-known result for sigmoid + binary cross-entropy and softmax + cross-entropy (for a
linear model it gives the gradient :math:`\frac{1}{m} X^\top(\hat y - y)`). There is no division
by :math:`\hat y(1-\hat y)`, so a saturated output cannot produce NaN. The same holds for an
identity output with squared error. Any other output activation with a probability loss (a tanh
output with BCE, say) is refused with an error that names the fix. Which activation fuses with
which loss is training's decision: :func:`chainrule.training.fused_objective`.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
from pathlib import Path

import numpy as np

from chainrule._checks import as_float_array, check_finite
from chainrule.nn import activations as _act
from chainrule.nn._metadata import FORMAT_NAME, FORMAT_VERSION, check_metadata, load_json
from chainrule.nn.attention import MultiHeadAttention
from chainrule.nn.conv import Conv2D, Flatten
from chainrule.nn.layers import Dense, Dropout, Layer
from chainrule.nn.normalization import BatchNorm, LayerNorm
from chainrule.nn.pooling import AvgPool2D, MaxPool2D
from chainrule.nn.recurrent import LSTM, RNN
from chainrule.nn.sequence import (
    DenseOverTime,
    MeanOverTime,
    PositionalEmbedding,
    Residual,
    check_widths,
    input_ndim,
)
from chainrule.nn.shapes import TIME, describe, first_shape, output_shape
from chainrule.nn.state import load_state, state_of

__all__ = ["FORMAT_NAME", "LAYER_KINDS", "Sequential", "load", "mlp"]


#: The layers with a model-file entry of their own, by their ``kind`` (activations are entries
#: of kind "Activation", by name).
LAYER_KINDS: dict[str, type[Layer]] = {
    cls.kind: cls
    for cls in (Dense, Dropout, BatchNorm, LayerNorm, MultiHeadAttention, DenseOverTime,
                PositionalEmbedding, MeanOverTime, Residual, Conv2D, MaxPool2D, AvgPool2D,
                Flatten, RNN, LSTM)
}


class Sequential:
    """A stack of layers applied in order.

    ``seed`` (an int or a Generator) initializes every :class:`Dense` layer in order, resolving
    ``init="auto"`` by the activation that follows it, and every other layer that draws its
    parameters (attention, positional embeddings, the layers of a residual block). Without a
    seed the layers keep the weights they were built with (``"auto"`` layers are re-drawn from
    fresh entropy).

    The input is ``(m, in_features)`` rows, ``(m, time, in_features)`` sequences for a
    model that starts with a sequence layer (:class:`RNN`, :class:`LSTM`, :class:`DenseOverTime`,
    attention) or ``(m, channels, height, width)`` images for one that starts with
    :class:`Conv2D`: see :attr:`input_ndim` and :meth:`prepare_input`.

    ``input_shape`` is the shape of one sample without the batch axis, ``(1, 28, 28)`` for
    MNIST images. A model of images that knows it takes flat rows of ``1 * 28 * 28`` pixels too
    (reshaped in C order, as ``X.reshape(-1, 1, 28, 28)``), and :meth:`summary` shows every
    layer's output size; :meth:`fit` records the image size it trained on when none was given.

    Parameters
    ----------
    layers : list of Layer
        The layers and activations, in order.
    seed : int, numpy.random.Generator or None
        Initializes the layers that draw parameters (see above).
    input_shape : tuple of int or None
        The shape of one sample without the batch axis (see above).

    Examples
    --------
    >>> from chainrule.nn import Dense, ReLU, Softmax
    >>> model = Sequential([Dense(4, 8), ReLU(), Dense(8, 3), Softmax()], seed=0)
    >>> model.forward(np.zeros((2, 4), dtype=np.float32)).shape
    (2, 3)
    >>> model.backward(np.ones((2, 3), dtype=np.float32)).shape  # dE/dX; dW, db kept per layer
    (2, 4)
    """

    def __init__(self, layers: list, seed: int | np.random.Generator | None = None,
                 input_shape=None):
        layers = list(layers)
        if not layers:
            raise ValueError("Sequential needs at least one layer; got an empty list.")
        for i, layer in enumerate(layers):
            if not (hasattr(layer, "forward") and hasattr(layer, "backward")):
                raise ValueError(
                    f"Layer {i} ({layer!r}) is not a layer: it needs forward() and backward(). "
                    "Use chainrule.nn.Dense, an activation, or Dropout."
                )
        self.layers = layers
        self.classes_: np.ndarray | None = None
        self.task: str | None = None
        self.preprocessing: dict | None = None
        self.training_config: dict = {}
        self.input_shape = None if input_shape is None else self._checked_shape(input_shape)
        rng = np.random.default_rng(seed)
        for i, layer in enumerate(layers):
            if isinstance(layer, Dense) and (seed is not None or layer.init == "auto"):
                layer.reset_parameters(rng, self._activation_after(i))
            elif isinstance(layer, Dropout) and seed is not None:
                layer.rng = np.random.default_rng(rng.integers(2**63))
            elif seed is not None and hasattr(layer, "reset_parameters"):  # attention, blocks
                layer.reset_parameters(rng)
        self._check_shapes()

    # --- structure ------------------------------------------------------------------------------

    def _activation_after(self, i: int) -> str | None:
        for layer in self.layers[i + 1 :]:
            if isinstance(layer, Dense):
                return None
            name = getattr(layer, "name", None)
            if isinstance(layer, _act.Activation) and name:
                return name
        return None

    def _check_shapes(self) -> None:
        check_widths(self.layers)

    def _checked_shape(self, input_shape) -> tuple[int, ...]:
        """``input_shape`` as a tuple of ints that agrees with the first layer's sizes."""
        expected = first_shape(self.layers) or ()
        try:
            shape = tuple(int(size) for size in input_shape)
        except (TypeError, ValueError):
            shape = None
        agrees = shape is not None and len(shape) == len(expected) and all(
            size >= 1 and (want in (None, TIME) or size == want)
            for size, want in zip(shape, expected, strict=True))
        if not agrees:
            raise ValueError(f"input_shape={input_shape!r} does not fit the first layer, which "
                             f"takes samples of shape {describe(expected)[4:-1] or '()'}; give "
                             "the shape of one sample without the batch axis, as (1, 28, 28).")
        return shape

    @property
    def sample_shape(self) -> tuple:
        """The shape of one sample (:attr:`input_shape` when known); unknown sizes are None,
        a sequence's length ``"time"``."""
        return self.input_shape or first_shape(self.layers) or (self.in_features,)

    @property
    def dense_layers(self) -> list[Dense]:
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    @property
    def in_features(self) -> int:
        return self.dense_layers[0].in_features

    @property
    def out_features(self) -> int:
        return self.dense_layers[-1].out_features

    @property
    def dtype(self) -> np.dtype:
        dense = self.dense_layers
        return dense[0].dtype if dense else np.dtype(np.float64)

    @property
    def input_ndim(self) -> int:
        """2 for a model of rows ``(m, in_features)``, 3 for one of sequences
        ``(m, time, in_features)`` (it starts with a recurrent layer, attention or
        DenseOverTime), 4 for one of images ``(m, channels, height, width)`` (Conv2D)."""
        return input_ndim(self.layers) or 2

    @property
    def output_activation(self) -> str | None:
        last = self.layers[-1]
        return last.name if isinstance(last, _act.Activation) else None

    def parameters(self) -> list[np.ndarray]:
        return [p for layer in self.layers for p in layer.parameters()]

    def gradients(self) -> list[np.ndarray]:
        return [g for layer in self.layers for g in layer.gradients()]

    def n_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    def astype(self, dtype) -> Sequential:
        """Convert every layer with parameters to ``dtype`` (float32 or float64) in place;
        returns self."""
        for layer in self.layers:
            if hasattr(layer, "astype"):
                layer.astype(dtype)
        return self

    def train(self) -> Sequential:
        for layer in self.layers:
            layer.training = True
        return self

    def eval(self) -> Sequential:
        for layer in self.layers:
            layer.training = False
        return self

    # --- forward and backward -------------------------------------------------------------------

    def forward(self, x) -> np.ndarray:
        """Apply every layer in order; caches what :meth:`backward` needs."""
        h = self._as_input(x)
        for layer in self.layers:
            h = layer.forward(h)
        return h

    __call__ = forward

    def backward(self, grad) -> np.ndarray:
        r"""Backpropagate :math:`\partial E/\partial(\text{output})` through every layer, last to
        first; fills each layer's gradients and returns :math:`\partial E/\partial X`."""
        g = np.asarray(grad)
        for layer in reversed(self.layers):
            g = layer.backward(g)
        return g

    def _as_input(self, x) -> np.ndarray:
        x = as_float_array(x, "X")
        if x.ndim == len(self.sample_shape):  # one sample
            x = x[np.newaxis]
        return self.prepare_input(x).astype(self.dtype, copy=False)

    def prepare_input(self, X, name: str = "X") -> np.ndarray:
        """``X`` as the model takes it, ``(m, *sample_shape)``, or a ValueError naming the
        shape expected. Flat rows ``(m, C*H*W)`` of a model of images with a known
        :attr:`input_shape` are reshaped to ``(m, C, H, W)``."""
        X = as_float_array(X, name)
        shape = self.sample_shape
        size = math.prod(shape) if all(isinstance(s, int) for s in shape) else None
        if len(shape) > 1 and X.ndim == 2 and size is not None and X.shape[1] == size:
            return X.reshape(len(X), *shape)
        if X.ndim != len(shape) + 1:
            axes = {1: "samples x features", 2: "samples x time x features",
                    3: "samples x channels x height x width"}.get(len(shape), "samples x ...")
            raise ValueError(f"{name} must be {len(shape) + 1}-D ({axes}); got shape {X.shape}. "
                             + _expected(name, shape, size, X))
        wrong = [(got, want) for got, want in zip(X.shape[1:], shape, strict=True)
                 if want not in (None, TIME) and got != want]
        if wrong and len(shape) < 3:
            raise ValueError(f"{name} has {X.shape[-1]} features but the model's first layer "
                             f"expects {shape[-1]}. " + _expected(name, shape, size, X))
        if wrong:
            raise ValueError(_expected(name, shape, size, X))
        return X

    # --- training and inference (see chainrule.training) -----------------------------------------

    def fit(self, X, y, loss="mse", optimizer="adam", **kwargs):
        """Train the model; returns a History. Every option: :func:`chainrule.training.fit`."""
        from chainrule.training import fit

        history = fit(self, X, y, loss=loss, optimizer=optimizer, **kwargs)
        if self.input_shape is None and self.input_ndim == 4:  # the image size trained on
            self.input_shape = tuple(int(size) for size in np.shape(X)[1:])
        return history

    def predict_proba(self, X, batch_size: int = 4096) -> np.ndarray:
        """The network's output in evaluation mode (probabilities for a Sigmoid/Softmax output)."""
        X = self._as_input(X)
        check_finite(X, "X")
        was_training = [layer.training for layer in self.layers]
        self.eval()
        try:
            # Overflow is reported below with its cause, not as RuntimeWarnings.
            with np.errstate(over="ignore", invalid="ignore"):
                outs = [
                    self.forward(X[i : i + batch_size]).copy()
                    for i in range(0, len(X), batch_size)
                ]
        finally:
            for layer, flag in zip(self.layers, was_training, strict=True):
                layer.training = flag
        if not outs:
            return np.empty((0, self.out_features), dtype=self.dtype)
        out = np.concatenate(outs)
        if not np.isfinite(out).all():
            raise ValueError(self._nonfinite_output(out))
        return out

    def _nonfinite_output(self, out: np.ndarray) -> str:
        """Why the model's output holds NaN or inf although its input was finite."""
        row = int(np.argwhere(~np.isfinite(out))[0][0])
        largest = max((float(np.max(np.abs(p))) for p in self.parameters() if p.size), default=0)
        if not np.isfinite(largest):
            cause = "its weights hold NaN or inf"
        else:
            cause = (f"its weights reach {largest:.3g}, so the values overflow "
                     f"{self.dtype.name} on the way through the layers")
        return (
            f"The model's output is {out.reshape(len(out), -1)[row][~np.isfinite(out[row])][0]} "
            f"for sample {row} although the input is finite: {cause}. Retrain it (a lower "
            "learning rate, or clip_norm), or scale the input as in training."
        )

    def predict(self, X, batch_size: int = 4096) -> np.ndarray:
        """Class labels for a classifier (argmax, or output > 0.5 for a single sigmoid unit),
        the raw outputs otherwise."""
        out = self.predict_proba(X, batch_size)
        if self.task != "classification":
            return out
        if out.shape[1] == 1:
            idx = (out[:, 0] > 0.5).astype(np.int64)
        else:
            idx = np.argmax(out, axis=1)
        return self.classes_[idx] if self.classes_ is not None else idx

    def evaluate(self, X, y, loss=None) -> dict:
        """``{"loss": ..., "accuracy": ...}`` on ``(X, y)`` in evaluation mode (accuracy for
        classifiers only). ``loss`` defaults to the one the model was trained with."""
        from chainrule.training import evaluate

        return evaluate(self, X, y, loss=loss)

    # --- description ----------------------------------------------------------------------------

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"

    def _summary_rows(self) -> list[tuple[str, str, str, str]]:
        """(position, layer, output shape, parameter count) for each layer; sizes that depend
        on an input shape the model does not know yet show as ``?``."""
        rows, shape = [], self.sample_shape
        for i, layer in enumerate(self.layers):
            shape = output_shape(layer, shape)
            n = sum(p.size for p in layer.parameters())
            rows.append((str(i), repr(layer), describe(shape), f"{n:,}"))
        return rows

    def _repr_html_(self) -> str:
        """In a notebook: the :meth:`summary` as a table."""
        from chainrule._display import model_summary_html

        total = f"Total parameters: {self.n_parameters():,} ({self.dtype.name})"
        return model_summary_html(self._summary_rows(), total)

    def summary(self) -> str:
        """A table of layers, output shapes and parameter counts.

        >>> from chainrule.nn import Conv2D, Dense, Flatten, MaxPool2D, ReLU
        >>> model = Sequential([Conv2D(1, 8, 3), ReLU(), MaxPool2D(2), Flatten(), Dense(1352, 10)],
        ...                    input_shape=(1, 28, 28))
        >>> print(model.summary())
        #  layer                        output shape    parameters
        -  ---------------------------  --------------  ----------
        0  Conv2D(1, 8, kernel_size=3)  (m, 8, 26, 26)          80
        1  ReLU()                       (m, 8, 26, 26)           0
        2  MaxPool2D(2)                 (m, 8, 13, 13)           0
        3  Flatten()                    (m, 1352)                0
        4  Dense(1352, 10)              (m, 10)             13,530
        -  ---------------------------  --------------  ----------
        Total parameters: 13,610 (float32)
        """
        rows = [("#", "layer", "output shape", "parameters"), *self._summary_rows()]
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        line = "  ".join("-" * w for w in widths)
        fmt = [
            f"{r[0]:>{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:>{widths[3]}}"
            for r in rows
        ]
        total = f"Total parameters: {self.n_parameters():,} ({self.dtype.name})"
        return "\n".join([fmt[0], line, *fmt[1:], line, total])

    # --- model files ------------------------------------------------------------------------------

    def get_config(self) -> dict:
        return {"format": FORMAT_NAME, "version": FORMAT_VERSION,
                "layers": [_layer_entry(layer) for layer in self.layers]}

    def save(self, path, *, replace: bool = True) -> Path:
        """Write the model to ``path`` in safetensors format, atomically.

        Layout: for the layer at position ``i`` of the model (activations count, as in PyTorch's
        ``nn.Sequential``), ``"{i}.weight"`` holds :math:`W^\\top`, shape ``(out, in)`` (PyTorch's
        ``nn.Linear`` layout) and ``"{i}.bias"`` holds ``b``. The architecture, classes,
        preprocessing and training settings are JSON in the metadata key ``"chainrule"``.
        With ``replace=False`` an existing file is never overwritten (FileExistsError).
        """
        from chainrule.serialization import write_safetensors

        tensors = {}
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dense):
                for name, value in (("weight", layer.W), ("bias", layer.b)):
                    if value is not None and not np.isfinite(value).all():
                        raise ValueError(
                            f"Not saved: the {name} of layer {i} holds NaN or inf (training "
                            "diverged?). A model with non-finite weights predicts nothing "
                            "useful; retrain it with a lower learning rate."
                        )
                tensors[f"{i}.weight"] = np.ascontiguousarray(layer.W.T)
                if layer.b is not None:
                    tensors[f"{i}.bias"] = layer.b
            else:  # normalization, attention, residual blocks: PyTorch's names
                for name, value in state_of(layer).items():
                    if value.dtype.kind == "f" and not np.isfinite(value).all():
                        raise ValueError(
                            f"Not saved: the tensor {i}.{name} of {layer!r} holds NaN or inf "
                            "(training diverged?). Retrain with a lower learning rate."
                        )
                    tensors[f"{i}.{name}"] = value
        meta = self.get_config()
        meta["task"] = self.task
        meta["input_shape"] = None if self.input_shape is None else list(self.input_shape)
        meta["classes"] = None if self.classes_ is None else self.classes_.tolist()
        meta["preprocessing"] = self.preprocessing
        meta["training"] = self.training_config
        write_safetensors(path, tensors, {"chainrule": json.dumps(meta), "format": "pt"},
                          replace=replace)
        return Path(path)


def _expected(name: str, shape: tuple, size: int | None, X: np.ndarray) -> str:
    """"The model expects X of shape (m, 1, 28, 28); got (5, 3, 28, 28).", with a hint for
    flat rows given to a model of images."""
    flat = f" or flat rows (m, {size})" if len(shape) > 1 and size else ""
    hint = ""
    if len(shape) == 3 and X.ndim == 2:
        hint = (f"; reshape flat rows to (m, {shape[0]}, height, width)"
                + ("" if size else f", or build the model with input_shape=({shape[0]}, "
                                   "height, width)"))
    return f"The model expects {name} of shape {describe(shape)}{flat}; got {X.shape}{hint}."


def _layer_entry(layer) -> dict:
    """A layer's model-file entry: its kind (or "Activation" and its name) and its config."""
    if isinstance(layer, _act.Activation):
        return {"type": "Activation", "name": layer.name, "config": layer.get_config()}
    if isinstance(layer, Residual):
        return {"type": Residual.kind,
                "config": {"layers": [_layer_entry(inner) for inner in layer.layers]}}
    kind = getattr(layer, "kind", None)
    if kind in LAYER_KINDS and isinstance(layer, LAYER_KINDS[kind]):
        return {"type": kind, "config": layer.get_config()}
    raise ValueError(
        f"Cannot save layer {layer!r}: only {', '.join(LAYER_KINDS)} and activations are "
        "supported in model files."
    )


def _build_layer(spec: dict, where: str):
    if not isinstance(spec, dict) or not isinstance(spec.get("config", {}), dict):
        raise ValueError(f"{where}: a layer entry must be a JSON object with a 'config' object.")
    kind = spec.get("type")
    config = spec.get("config", {})
    try:
        if kind == Residual.kind:
            return Residual([_build_layer(inner, where) for inner in config.get("layers", [])])
        if kind in LAYER_KINDS:
            cls = LAYER_KINDS[kind]
            accepted = set(inspect.signature(cls).parameters) - {"seed"}
            return cls(**{k: v for k, v in config.items() if k in accepted})
        if kind == "Activation":  # a formula activation is re-derived through the whitelist
            return _act.from_config(spec.get("name"), config)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: invalid layer {spec!r}. {exc}") from exc
    raise ValueError(
        f"{where}: unknown layer type {kind!r} (expected {', '.join(LAYER_KINDS)} or Activation)."
    )


def load(path) -> Sequential:
    """Load a model written by :meth:`Sequential.save`. Never executes code from the file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` file written by :meth:`Sequential.save`.

    Returns
    -------
    Sequential
        The model, its layers and weights as they were saved.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from chainrule.nn import load, mlp
    >>> model = mlp([4, 8, 3], "tanh", "softmax", seed=0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = model.save(Path(folder) / "model.safetensors")
    ...     again = load(path)
    >>> x = np.ones((2, 4), np.float32)
    >>> bool(np.array_equal(again.predict_proba(x), model.predict_proba(x)))
    True
    """
    from chainrule.serialization import ModelFileError, read_safetensors

    tensors, metadata = read_safetensors(path)
    path = Path(path)
    raw = metadata.get("chainrule")
    if raw is None:
        raise ModelFileError(
            f"{path}: a safetensors file, but not a chainrule model (no 'chainrule' metadata); "
            "it holds the tensors " + ", ".join(sorted(tensors)[:8])
        )
    meta = check_metadata(load_json(raw, str(path), "the chainrule metadata"), str(path), tensors)
    specs = meta["layers"]
    try:
        layers = [_build_layer(spec, str(path)) for spec in specs]
        model = Sequential(layers, input_shape=meta.get("input_shape"))
    except ValueError as exc:
        raise ModelFileError(str(exc)) from exc
    for i, layer in enumerate(model.layers):
        if not isinstance(layer, Dense):
            prefix = f"{i}."
            try:
                load_state(layer, {key.removeprefix(prefix): value
                                   for key, value in tensors.items() if key.startswith(prefix)})
            except ValueError as exc:
                raise ModelFileError(f"{path}: layer {i}: {exc}") from None
            continue
        for key, attr, shape in (
            (f"{i}.weight", "W", (layer.out_features, layer.in_features)),
            (f"{i}.bias", "b", (layer.out_features,)),
        ):
            if attr == "b" and layer.b is None:
                continue
            if key not in tensors:
                raise ModelFileError(f"{path}: tensor {key!r} is missing.")
            value = tensors[key]
            if value.shape != shape:
                raise ModelFileError(
                    f"{path}: tensor {key!r} has shape {value.shape}; layer {i} needs {shape}."
                )
            if value.dtype.kind != "f" or not np.isfinite(value).all():
                raise ModelFileError(f"{path}: tensor {key!r} is not a finite floating array.")
            setattr(
                layer,
                attr,
                np.ascontiguousarray(value.T if attr == "W" else value, dtype=layer.dtype),
            )
        layer.dW = np.zeros_like(layer.W)
        layer.db = None if layer.b is None else np.zeros_like(layer.b)
    model.task = meta.get("task")
    classes = meta.get("classes")
    model.classes_ = None if classes is None else np.asarray(classes)
    model.preprocessing = meta.get("preprocessing")
    model.training_config = meta.get("training") or {}
    return model


def mlp(
    sizes,
    activation="relu",
    output=None,
    dropout: float = 0.0,
    dtype="float32",
    seed: int | np.random.Generator | None = None,
) -> Sequential:
    """Build a multi-layer perceptron: ``mlp([64, 128, 10], "relu", "softmax")``.

    ``sizes`` lists the input width, the hidden widths and the output width; ``activation``
    follows every hidden Dense layer (then ``Dropout(dropout)`` if > 0); ``output`` names the
    output activation (None for raw scores).

    Parameters
    ----------
    sizes : sequence of int
        Input width, hidden widths, output width.
    activation : str or Activation, default "relu"
        The hidden activation.
    output : str, Activation or None
        The output activation; None leaves raw scores.
    dropout : float, default 0.0
        The dropout probability after each hidden activation.
    dtype : str, default "float32"
        The parameters' dtype.
    seed : int, numpy.random.Generator or None
        Initializes every layer (see :class:`Sequential`).

    Returns
    -------
    Sequential
        The model.

    Examples
    --------
    >>> model = mlp([4, 16, 3], "relu", "softmax", seed=0)
    >>> [type(layer).__name__ for layer in model.layers]
    ['Dense', 'ReLU', 'Dense', 'Softmax']
    >>> model.predict_proba(np.zeros((2, 4), np.float32)).shape
    (2, 3)
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"mlp needs at least an input and an output width, all >= 1; got {sizes}.")
    layers: list[Layer] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(Dense(a, b, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(_act.get(activation))
            if dropout:
                layers.append(Dropout(dropout))
    if output is not None:
        layers.append(_act.get(output))
    return Sequential(layers, seed=seed)
