r"""What a model of sequences needs besides attention: :class:`DenseOverTime`,
:class:`PositionalEmbedding`, :class:`MeanOverTime` and :class:`Residual`.

A sequence is an array ``(batch, time, features)``. :class:`DenseOverTime` applies one dense
layer at every time step (PyTorch's ``nn.Linear`` on a 3-D input), :class:`PositionalEmbedding`
adds a learned vector per step (attention by itself does not know the order of the steps),
:class:`MeanOverTime` averages the steps into one row per sample, ``(batch, features)``, for the
layers of an MLP, and :class:`Residual` adds a block's input to its output, :math:`y = x + f(x)`,
as a transformer block does around its attention and around its feed-forward layers.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from chainrule._checks import backward_before_forward, check_scalar
from chainrule.nn import activations as _act
from chainrule.nn.layers import Dense, Dropout, Layer
from chainrule.nn.state import load_state, state_of, take_tensor

__all__ = ["DenseOverTime", "MeanOverTime", "PositionalEmbedding", "Residual", "check_widths",
           "layer_widths"]


class DenseOverTime(Dense):
    r"""A :class:`~chainrule.nn.Dense` layer applied at every time step.

    ``(batch, time, in_features) -> (batch, time, out_features)``.

    The steps are rows of one matrix, so forward and backward are Dense's on
    :math:`X` reshaped to ``(batch * time, in_features)``: :math:`Z = XW + b`,
    :math:`\partial E/\partial W = X^\top G` (summing over samples and steps alike),
    :math:`\partial E/\partial b = \mathbf 1^\top G`, :math:`\partial E/\partial X = G W^\top`.
    Same parameters, options and file layout as Dense (``weight`` :math:`W^\top`, ``bias``),
    which is PyTorch's ``nn.Linear``.

    Parameters
    ----------
    in_features, out_features : int
        The widths of each step's input and output.
    init : str, default "auto"
        A key of :data:`~chainrule.nn.INITIALIZERS`, or "auto".
    bias : bool, default True
        Whether :math:`b` is used.
    dtype : str or numpy.dtype, default "float32"
        The parameters' dtype (float64 for gradient checking).
    seed : int, numpy.random.Generator or None
        Where the initial parameters come from; the same seed gives the same layer.

    Examples
    --------
    >>> DenseOverTime(28, 16, seed=0).forward(np.zeros((2, 28, 28), np.float32)).shape
    (2, 28, 16)
    """

    kind: ClassVar[str] = "DenseOverTime"
    input_ndim: ClassVar[int] = 3

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim < 2 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{self!r} expects input of shape (batch, time, {self.in_features}); got "
                f"{x.shape}."
            )
        z = super().forward(x.reshape(-1, self.in_features))
        return z.reshape(*x.shape[:-1], self.out_features)

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        dx = super().backward(grad.reshape(-1, self.out_features), need_input_grad)
        return None if dx is None else dx.reshape(*grad.shape[:-1], self.in_features)

    def __repr__(self) -> str:
        return "DenseOverTime" + super().__repr__().removeprefix("Dense")


class PositionalEmbedding(Layer):
    r"""A learned vector added at each time step: :math:`y_{s} = x_{s} + p_{s}`.

    For the steps :math:`s = 1 \dots t` of every sample, ``(batch, time, d_model)`` in and out.

    Self-attention treats the steps as a set: permuting them permutes its output the same way,
    so without this layer (or a causal mask) a model cannot tell which step is which. The
    table ``P`` has ``max_len`` rows, drawn from :math:`\mathcal N(0, 0.02^2)` as in GPT-2
    (Radford et al., 2019); a sequence uses its first :math:`t`. Backward: the input gradient
    passes unchanged, and row :math:`s` of the table receives the sum over the batch,
    :math:`\partial E/\partial p_s = \sum_{i} G_{i,s}`. In a model file: ``weight``, shape
    ``(max_len, d_model)`` (an ``nn.Parameter`` added to the input in PyTorch).

    Parameters
    ----------
    max_len : int
        The longest sequence the table covers.
    d_model : int
        The width of each step's vector.
    dtype : str, default "float32"
        The table's dtype.
    seed : int, numpy.random.Generator or None
        Where the table's initial values come from.

    Examples
    --------
    >>> layer = PositionalEmbedding(max_len=10, d_model=4, seed=0)
    >>> layer.forward(np.zeros((2, 3, 4), np.float32)).shape  # the first 3 rows of the table
    (2, 3, 4)
    >>> _ = layer.backward(np.ones((2, 3, 4), np.float32))
    >>> layer.dP[:4, 0]  # the sum over the batch of 2, for the 3 steps used
    array([2., 2., 2., 0.], dtype=float32)
    """

    kind: ClassVar[str] = "PositionalEmbedding"
    input_ndim: ClassVar[int] = 3

    def __init__(self, max_len: int, d_model: int, dtype="float32",
                 seed: int | np.random.Generator | None = None):
        self.max_len = check_scalar(max_len, "max_len", "PositionalEmbedding", kind=int, low=1)
        self.d_model = check_scalar(d_model, "d_model", "PositionalEmbedding", kind=int, low=1)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"PositionalEmbedding needs a floating dtype; got {self.dtype}. Use "
                             "float32 or float64.")
        self.P = np.empty((self.max_len, self.d_model), dtype=self.dtype)
        self.dP = np.zeros_like(self.P)
        self._steps: int | None = None
        self.reset_parameters(np.random.default_rng(seed))

    def reset_parameters(self, rng: np.random.Generator) -> None:
        self.P[...] = rng.normal(0.0, 0.02, self.P.shape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 3 or x.shape[-1] != self.d_model or not 1 <= x.shape[1] <= self.max_len:
            raise ValueError(
                f"{self!r} expects input of shape (batch, time, {self.d_model}) with 1 <= time "
                f"<= {self.max_len}; got {x.shape}. For longer sequences raise max_len."
            )
        self._steps = x.shape[1]
        return x + self.P[: self._steps]

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._steps is None:
            raise backward_before_forward("PositionalEmbedding")
        self.dP[...] = 0.0
        self.dP[: self._steps] = grad.sum(axis=0)
        return grad

    def parameters(self) -> list[np.ndarray]:
        return [self.P]

    def gradients(self) -> list[np.ndarray]:
        return [self.dP]

    def astype(self, dtype) -> PositionalEmbedding:
        self.dtype = np.dtype(dtype)
        self.P = self.P.astype(self.dtype)
        self.dP = np.zeros_like(self.P)
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"weight": self.P}

    def load_state_dict(self, state: dict) -> None:
        shape = (self.max_len, self.d_model)
        self.P = take_tensor(state, "weight", shape, self.dtype, repr(self))
        self.dP = np.zeros_like(self.P)

    def get_config(self) -> dict:
        return {"max_len": self.max_len, "d_model": self.d_model, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        return f"PositionalEmbedding({self.max_len}, {self.d_model})"


class MeanOverTime(Layer):
    r"""The mean over the time steps: ``(batch, time, d) -> (batch, d)``.

    :math:`y = \frac{1}{t}\sum_{s=1}^{t} x_s`, so every step receives an equal share of the
    gradient: :math:`\partial E/\partial x_s = G / t`. In PyTorch, ``x.mean(dim=1)``.

    Examples
    --------
    >>> MeanOverTime().forward(np.array([[[1.0, 2.0], [3.0, 6.0]]]))
    array([[2., 4.]])

    >>> layer = MeanOverTime()
    >>> _ = layer.forward(np.zeros((1, 2, 2)))
    >>> layer.backward(np.array([[3.0, 6.0]]))  # G / t to every step
    array([[[1.5, 3. ],
            [1.5, 3. ]]])
    """

    kind: ClassVar[str] = "MeanOverTime"
    input_ndim: ClassVar[int] = 3

    def __init__(self):
        self._steps: int | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 3 or x.shape[1] == 0:
            raise ValueError(f"MeanOverTime expects input of shape (batch, time, features) with "
                             f"time >= 1; got {x.shape}.")
        self._steps = x.shape[1]
        return x.mean(axis=1)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._steps is None:
            raise backward_before_forward("MeanOverTime")
        return np.repeat(grad[:, None, :] / self._steps, self._steps, axis=1)

    def __repr__(self) -> str:
        return "MeanOverTime()"


class Residual(Layer):
    r"""A residual connection around a block of layers: :math:`y = x + f(x)`.

    He et al., 2016, arXiv:1512.03385; :math:`f` is the layers in order, which must keep the
    input's shape.

    Backward adds the two paths: :math:`\partial E/\partial x = G + J_f^\top G`, the identity
    passing the upstream gradient :math:`G` on unchanged. A pre-norm transformer block is two
    of them (Xiong et al., 2020, arXiv:2002.04745)::

        Residual([LayerNorm(d), MultiHeadAttention(d, num_heads=4)])
        Residual([LayerNorm(d), DenseOverTime(d, 4 * d), ReLU(), DenseOverTime(4 * d, d)])

    Its tensors are the block's, numbered from 0 inside it: ``{i}.{j}.weight`` in a model file
    is the weight of layer ``j`` of the block at position ``i`` (PyTorch's names for an
    ``nn.Sequential`` subclass whose forward returns ``x + super().forward(x)``). ``seed``
    initializes the block's layers as :class:`~chainrule.nn.Sequential` does.

    Parameters
    ----------
    layers : list of Layer
        The block :math:`f`, applied in order.
    seed : int, numpy.random.Generator or None
        Initializes the block's layers, as :class:`~chainrule.nn.Sequential` does.

    Examples
    --------
    >>> from chainrule.nn import Dense, Identity
    >>> block = Residual([Dense(2, 2, dtype="float64"), Identity()], seed=0)
    >>> x = np.array([[1.0, -1.0]])
    >>> bool(np.allclose(block.forward(x), x + block.layers[0].forward(x)))
    True
    >>> W = block.layers[0].W
    >>> bool(np.allclose(block.backward(np.ones((1, 2))), 1 + np.ones((1, 2)) @ W.T))  # G + J^T G
    True
    """

    kind: ClassVar[str] = "Residual"

    def __init__(self, layers, seed: int | np.random.Generator | None = None):
        layers = list(layers)
        if not layers:
            raise ValueError("Residual needs at least one layer; got an empty list.")
        for j, layer in enumerate(layers):
            if not (hasattr(layer, "forward") and hasattr(layer, "backward")):
                raise ValueError(f"Residual: layer {j} ({layer!r}) is not a layer: it needs "
                                 "forward() and backward().")
        self.widths = check_widths(layers, "Residual: layer")
        if self.widths is not None and self.widths[0] != self.widths[1]:
            raise ValueError(
                f"Residual adds the block's input to its output, so the block must keep the "
                f"width; {layers!r} takes {self.widths[0]} features and gives {self.widths[1]}."
            )
        self.layers = layers
        self._training = True
        self._x_shape: tuple | None = None
        self._rng = rng = np.random.default_rng(seed)
        for j, layer in enumerate(layers):
            if isinstance(layer, Dense) and (seed is not None or layer.init == "auto"):
                layer.reset_parameters(rng, activation_after(layers, j))
            elif seed is not None:
                _reseed(layer, rng)

    @property
    def training(self) -> bool:
        return self._training

    @training.setter
    def training(self, flag: bool) -> None:
        self._training = flag
        for layer in self.layers:
            layer.training = flag

    @property
    def rng(self) -> np.random.Generator:
        """Setting it re-seeds the block's Dropout layers from it, one draw each, as
        ``fit(seed=...)`` does for a model's own Dropout layers; a block without any has no
        ``rng``."""
        if not any(hasattr(layer, "rng") for layer in self.layers):
            raise AttributeError("this Residual block holds no layer that draws random numbers")
        return self._rng

    @rng.setter
    def rng(self, rng: np.random.Generator) -> None:
        self._rng = rng
        for layer in self.layers:
            if hasattr(layer, "rng"):
                layer.rng = np.random.default_rng(rng.integers(2**63))

    @property
    def input_ndim(self) -> int | None:
        """2 or 3, the input rank of the block's first layer that fixes one (None if none)."""
        return input_ndim(self.layers)

    def reset_parameters(self, rng: np.random.Generator, activation: str | None = None) -> None:
        """Draw the block's parameters (and its Dropout generators) from ``rng``, in order."""
        for j, layer in enumerate(self.layers):
            if isinstance(layer, Dense):
                layer.reset_parameters(rng, activation_after(self.layers, j))
            else:
                _reseed(layer, rng)

    def forward(self, x: np.ndarray) -> np.ndarray:
        h = x
        for layer in self.layers:
            h = layer.forward(h)
        if h.shape != x.shape:
            raise ValueError(f"{self!r} turns input of shape {x.shape} into {h.shape}; a "
                             "residual connection adds the two, so the block must keep the shape.")
        self._x_shape = x.shape
        return x + h

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._x_shape is None:
            raise backward_before_forward("Residual")
        g = grad
        for layer in reversed(self.layers):
            g = layer.backward(g)
        return grad + g

    def parameters(self) -> list[np.ndarray]:
        return [p for layer in self.layers for p in layer.parameters()]

    def gradients(self) -> list[np.ndarray]:
        return [g for layer in self.layers for g in layer.gradients()]

    def astype(self, dtype) -> Residual:
        """Convert the block's layers to ``dtype`` in place; returns self."""
        for layer in self.layers:
            if hasattr(layer, "astype"):
                layer.astype(dtype)
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """The block's tensors, ``"{j}.{name}"`` for layer ``j``."""
        return {f"{j}.{name}": value for j, layer in enumerate(self.layers)
                for name, value in state_of(layer).items()}

    def load_state_dict(self, state: dict) -> None:
        for j, layer in enumerate(self.layers):
            prefix = f"{j}."
            load_state(layer, {key.removeprefix(prefix): value for key, value in state.items()
                               if key.startswith(prefix)})

    def __repr__(self) -> str:
        return f"Residual([{', '.join(map(repr, self.layers))}])"


def _reseed(layer, rng: np.random.Generator) -> None:
    """Re-draw a layer other than Dense from ``rng``: its parameters, or its dropout masks."""
    if isinstance(layer, Dropout):
        layer.rng = np.random.default_rng(rng.integers(2**63))
    elif hasattr(layer, "reset_parameters"):
        layer.reset_parameters(rng)


def activation_after(layers: list, i: int) -> str | None:
    """The name of the activation that follows layer ``i`` before the next Dense (which picks
    its ``init="auto"``), or None."""
    for layer in layers[i + 1:]:
        if isinstance(layer, Dense):
            return None
        if isinstance(layer, _act.Activation) and getattr(layer, "name", None):
            return layer.name
    return None


def input_ndim(layers: list) -> int | None:
    """The input rank the first of ``layers`` that fixes one expects: 2 for ``(m, features)``
    (Dense), 3 for ``(batch, time, features)`` (attention, DenseOverTime, MeanOverTime)."""
    for layer in layers:
        ndim = getattr(layer, "input_ndim", 2 if isinstance(layer, Dense) else None)
        if ndim is not None:
            return ndim
    return None


def layer_widths(layer) -> tuple[int, int, str] | None:
    """``(input width, output width, the parameter that sets the input width)`` of a layer
    that fixes its widths; None for one that takes any width (activations, Dropout,
    MeanOverTime)."""
    if isinstance(layer, Dense):
        return layer.in_features, layer.out_features, "in_features"
    if isinstance(layer, Residual):
        return layer.widths
    for name in ("num_features", "d_model"):
        width = getattr(layer, name, None)
        if isinstance(width, int):
            return width, width, name
    return None


def check_widths(layers: list, what: str = "Layer") -> tuple[int, int, str] | None:
    """Check that each layer takes the width the one before gives; return the widths of the
    whole stack (as :func:`layer_widths`), or None when no layer fixes one."""
    first = width = None
    for i, layer in enumerate(layers):
        widths = layer_widths(layer)
        if widths is None:
            continue
        n_in, n_out, name = widths
        if width is not None and n_in != width:
            raise ValueError(f"{what} {i} is {layer!r} but the layer before it outputs {width} "
                             f"features; make {name}={width}.")
        first = first or widths
        width = n_out
    return None if first is None else (first[0], width, first[2])
