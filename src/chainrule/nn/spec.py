r"""A network written as one line of comma-separated layers: ``"c32k3,p2,c64k3,p2,128"``.

The grammar (:data:`LAYER_GRAMMAR`), token by token:

- ``<n>``: a dense layer of ``n`` units, followed by the hidden activation;
- ``c<out>k<kernel>[s<stride>][p<pad>]``: a :class:`Conv2D` of ``out`` channels and a
  ``kernel x kernel`` window (stride 1 and no padding unless given), followed by the hidden
  activation;
- ``p<k>``: a :class:`MaxPool2D` of ``k x k`` windows, ``a<k>``: an :class:`AvgPool2D`
  (stride ``k`` for both).

Convolutions and pools come first, on images ``(channels, height, width)``; :class:`Flatten`
is inserted before the first dense layer that follows them (or before the output layer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chainrule.nn import activations as _act
from chainrule.nn.conv import Conv2D, Flatten
from chainrule.nn.layers import Dense, Dropout, Layer
from chainrule.nn.model import Sequential
from chainrule.nn.pooling import AvgPool2D, MaxPool2D
from chainrule.nn.shapes import output_shape

__all__ = ["LAYER_GRAMMAR", "LayerToken", "network", "parse_layers"]

#: The grammar of :func:`parse_layers`, as its error messages state it.
LAYER_GRAMMAR = ("<n> (a dense layer of n units), c<out>k<kernel>[s<stride>][p<pad>] (a "
                 "convolution), p<k> (max pooling), a<k> (average pooling), comma-separated, "
                 "convolutions and pools before dense layers; e.g. c32k3,p2,c64k3,p2,128")

_CONV = re.compile(r"c(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?")
_POOL = re.compile(r"([pa])(\d+)")


@dataclass(frozen=True)
class LayerToken:
    """One token of a layer line: ``kind`` is "dense", "conv", "maxpool" or "avgpool"."""

    kind: str
    size: int  # units, output channels or the pooling window
    kernel: int = 0
    stride: int = 1
    padding: int = 0
    text: str = ""

    @property
    def is_image(self) -> bool:
        return self.kind != "dense"


def _token(text: str) -> LayerToken:
    """One token, or a ValueError naming it and the grammar."""
    word = text.strip().lower()
    shown = repr(text if len(text) <= 40 else text[:20] + "...")
    if len(word) > 40 or any(len(digits) > 9 for digits in re.findall(r"\d+", word)):
        raise ValueError(f"layers={shown}: too long (sizes have at most 9 digits); the grammar "
                         f"is {LAYER_GRAMMAR}.")
    conv, pool = _CONV.fullmatch(word), _POOL.fullmatch(word)
    if word.isdigit():
        token = LayerToken("dense", int(word), text=word)
    elif conv:
        out, kernel, stride, pad = (int(v) if v is not None else None for v in conv.groups())
        token = LayerToken("conv", out, kernel, 1 if stride is None else stride, pad or 0, word)
    elif pool:
        kind = "maxpool" if pool.group(1) == "p" else "avgpool"
        token = LayerToken(kind, int(pool.group(2)), text=word)
    else:
        raise ValueError(f"layers={shown}: not a layer; the grammar is {LAYER_GRAMMAR}.")
    if min(token.size, token.kernel if token.kind == "conv" else 1, token.stride) < 1:
        raise ValueError(f"layers={shown}: sizes, kernels and strides must be >= 1; the grammar "
                         f"is {LAYER_GRAMMAR}.")
    return token


def parse_layers(text: str) -> list[LayerToken]:
    """The tokens of a layer line (``""`` or ``"none"``: no hidden layer).

    >>> [t.kind for t in parse_layers("c32k3,p2,128")]
    ['conv', 'maxpool', 'dense']
    """
    if text.strip().lower() in ("", "none"):
        return []
    tokens = [_token(part) for part in text.split(",")]
    seen_dense = False
    for token in tokens:
        if token.is_image and seen_dense:
            raise ValueError(f"layers={text!r}: {token.text} follows a dense layer; convolutions "
                             f"and pools come before the dense layers ({LAYER_GRAMMAR}).")
        seen_dense = seen_dense or not token.is_image
    return tokens


def network(tokens: list[LayerToken], input_shape: tuple[int, ...], n_out: int,
            activation="relu", output=None, dropout: float = 0.0, dtype="float32",
            seed=None) -> Sequential:
    """The model a layer line describes, for samples of ``input_shape`` (``(features,)`` rows,
    or ``(channels, height, width)`` images when the line has convolutions or pools) and
    ``n_out`` outputs. ``activation`` follows every convolution and hidden dense layer (then
    ``Dropout(dropout)`` after a hidden dense layer if > 0); ``output`` names the output
    activation."""
    layers: list[Layer] = []
    shape = tuple(input_shape)
    for token in [*tokens, LayerToken("dense", n_out, text="output")]:
        if token.kind == "conv":
            layer = Conv2D(shape[0], token.size, token.kernel, token.stride, token.padding,
                           dtype=dtype)
        elif token.is_image:
            pool = MaxPool2D if token.kind == "maxpool" else AvgPool2D
            layer = pool(token.size)
        else:
            if len(shape) > 1:
                layers.append(Flatten())
                shape = output_shape(layers[-1], shape)
            layer = Dense(shape[0], token.size, dtype=dtype)
        if token.is_image and min(output_shape(layer, shape)[1:], default=1) < 1:
            raise ValueError(f"layers: {token.text} gets images of {shape[1]} x {shape[2]} "
                             "pixels, smaller than its window; use fewer pools, smaller kernels "
                             "or padding.")
        layers.append(layer)
        shape = output_shape(layer, shape)
        if token.kind in ("conv", "dense") and token.text != "output":
            layers.append(_act.get(activation))
            if token.kind == "dense" and dropout:
                layers.append(Dropout(dropout))
    if output is not None:
        layers.append(_act.get(output))
    image = len(input_shape) > 1
    return Sequential(layers, seed=seed, input_shape=input_shape if image else None)
