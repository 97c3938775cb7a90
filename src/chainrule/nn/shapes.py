r"""The shape of one sample as it passes through a stack of layers.

A shape here leaves out the batch axis: ``(784,)`` for a row, ``(1, 28, 28)`` for an image
(channels, height, width), ``("time", 16)`` for a sequence of any length. ``None`` stands for a
size not known until data arrives (the height of an image when the model was given no input
shape). A convolution or a pooling window maps a length :math:`n` to
:math:`\lfloor (n + 2p - k)/s \rfloor + 1`; :class:`Flatten` multiplies the sizes.
"""

from __future__ import annotations

import math

from chainrule.nn.conv import Conv2D, Flatten, output_size
from chainrule.nn.layers import Dense
from chainrule.nn.pooling import AvgPool2D, MaxPool2D
from chainrule.nn.recurrent import LSTM, RNN
from chainrule.nn.sequence import DenseOverTime, MeanOverTime

__all__ = ["TIME", "describe", "first_shape", "output_shape"]

#: The size of the time axis of a sequence: any length.
TIME = "time"


def first_shape(layers: list) -> tuple | None:
    """The sample shape the first layer that fixes one expects, unknown sizes as None (or
    :data:`TIME`); None when no layer fixes a shape."""
    for layer in layers:
        if isinstance(layer, Conv2D):
            return (layer.in_channels, None, None)
        if isinstance(layer, MaxPool2D | AvgPool2D):
            return (None, None, None)
        if isinstance(layer, RNN | LSTM):
            return (TIME, layer.input_size)
        if isinstance(layer, DenseOverTime):
            return (TIME, layer.in_features)
        if isinstance(layer, Dense):
            return (layer.in_features,)
        if getattr(layer, "input_ndim", None) == 3:
            width = getattr(layer, "d_model", None) or getattr(layer, "num_features", None)
            return (TIME, width)
    return None


def _along(size, kernel: int, stride: int, padding: int):
    return None if not isinstance(size, int) else output_size(size, kernel, stride, padding)


def output_shape(layer, shape: tuple) -> tuple:
    """The sample shape ``layer`` gives for a sample of ``shape`` (layers that keep the shape,
    as activations, normalization and attention, give it back)."""
    if isinstance(layer, Conv2D):
        (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
        return (layer.out_channels, _along(shape[1], kh, sh, ph), _along(shape[2], kw, sw, pw))
    if isinstance(layer, MaxPool2D | AvgPool2D):
        (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
        return (shape[0], _along(shape[1], kh, sh, 0), _along(shape[2], kw, sw, 0))
    if isinstance(layer, Flatten):
        known = all(isinstance(size, int) for size in shape)
        return (math.prod(shape) if known else None,)
    if isinstance(layer, RNN | LSTM):
        return (*shape[:-1], layer.hidden_size)
    if isinstance(layer, Dense):  # DenseOverTime too: the last axis
        return (*shape[:-1], layer.out_features)
    if isinstance(layer, MeanOverTime):
        return shape[1:]
    return shape


def describe(shape: tuple) -> str:
    """``(m, 32, 13, 13)``: the batch axis as ``m``, an unknown size as ``?``."""
    sizes = ["?" if size is None else str(size) for size in shape]
    return f"(m, {', '.join(sizes)})"
