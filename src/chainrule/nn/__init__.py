"""Neural-network building blocks: activations, layers and models (NumPy only).

``chainrule.nn.get("tanh")`` returns a fresh activation by name; ``ACTIVATIONS`` is the registry.
"""

from chainrule.nn.activations import *  # noqa: F403
from chainrule.nn.activations import __all__ as _activation_names
from chainrule.nn.attention import MultiHeadAttention
from chainrule.nn.conv import Conv2D, Flatten
from chainrule.nn.layers import INITIALIZERS, Dense, Dropout, Layer
from chainrule.nn.model import Sequential, load, mlp
from chainrule.nn.normalization import BatchNorm, LayerNorm
from chainrule.nn.pooling import AvgPool2D, MaxPool2D
from chainrule.nn.recurrent import LSTM, RNN
from chainrule.nn.sequence import DenseOverTime, MeanOverTime, PositionalEmbedding, Residual

__all__ = [
    *_activation_names,
    "INITIALIZERS",
    "LSTM",
    "RNN",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "DenseOverTime",
    "Dropout",
    "Flatten",
    "Layer",
    "LayerNorm",
    "MaxPool2D",
    "MeanOverTime",
    "MultiHeadAttention",
    "PositionalEmbedding",
    "Residual",
    "Sequential",
    "load",
    "mlp",
]
