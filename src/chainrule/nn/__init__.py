"""Neural-network building blocks: activations, layers and models (NumPy only).

``chainrule.nn.get("tanh")`` returns a fresh activation by name; ``ACTIVATIONS`` is the registry.

Attributes
----------
ACTIVATIONS
    Canonical name -> activation class; the one list of activation names that the command
    line, the estimators and the checkers read.
ALIASES
    Other spelling -> canonical name (``"logistic"`` -> ``"sigmoid"``).
CUSTOM_BUILDERS
    Config key -> builder of the activations defined outside :mod:`chainrule.nn`, which
    :func:`from_config` calls (the derivation engine registers ``"formula"``).
INITIALIZERS
    Name -> ``init(rng, fan_in, fan_out)``, the weight initializers of :class:`Dense`.

Examples
--------
>>> import numpy as np
>>> from chainrule.nn import ACTIVATIONS, ALIASES, CUSTOM_BUILDERS, INITIALIZERS
>>> sorted(ACTIVATIONS)  # doctest: +NORMALIZE_WHITESPACE
['elu', 'gelu', 'identity', 'leaky_relu', 'log_softmax', 'mish', 'relu', 'selu',
 'sigmoid', 'silu', 'softmax', 'softplus', 'softsign', 'tanh']
>>> ACTIVATIONS["tanh"]().derivative(np.array([0.0, 1.0])).round(4)  # 1 - tanh^2
array([1.  , 0.42])
>>> ALIASES["swish"], ALIASES["logistic"]
('silu', 'sigmoid')
>>> import chainrule.derivation.custom  # the derivation engine's formula activations
>>> sorted(CUSTOM_BUILDERS)
['formula']
>>> sorted(INITIALIZERS)
['glorot_normal', 'glorot_uniform', 'he_normal', 'he_uniform', 'lecun_normal', 'zeros']
>>> W = INITIALIZERS["he_normal"](np.random.default_rng(0), 512, 256)  # N(0, 2 / fan_in)
>>> W.shape, round(float(W.std()), 2)
((512, 256), 0.06)
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
