"""A layer's tensors under PyTorch's names, for model files and for ``load_state_dict``.

Each layer with tensors of its own answers ``state_dict()`` (name -> array, PyTorch's names and
layouts: ``weight`` of a dense layer is :math:`W^\\top`, shape ``(out, in)``) and
``load_state_dict(state)``. :func:`state_of` and :func:`load_state` extend this to
:class:`~chainrule.nn.Dense`, whose file layout :meth:`Sequential.save` writes itself, so that a
block nested in another (a :class:`~chainrule.nn.Residual`) saves every layer the same way.
"""

from __future__ import annotations

import numpy as np

from chainrule.nn.layers import Dense

__all__ = ["load_state", "state_of", "take_tensor"]


def take_tensor(state: dict, name: str, shape: tuple, dtype, owner: str) -> np.ndarray:
    """``state[name]`` as a contiguous array of ``dtype``, after checking that it is there, has
    ``shape`` and holds finite floats; a ValueError names the tensor and what is wrong."""
    if name not in state:
        raise ValueError(f"{owner} needs the tensor {name!r}, which is missing.")
    value = np.asarray(state[name])
    if value.shape != tuple(shape):
        raise ValueError(f"{owner}: tensor {name!r} has shape {value.shape}; it needs "
                         f"{tuple(shape)}.")
    if value.dtype.kind != "f" or not np.isfinite(value).all():
        raise ValueError(f"{owner}: tensor {name!r} is not a finite floating array.")
    return np.ascontiguousarray(value, dtype=dtype)


def state_of(layer) -> dict[str, np.ndarray]:
    """The layer's tensors by PyTorch name (empty for a layer without any)."""
    if hasattr(layer, "state_dict"):
        return layer.state_dict()
    if isinstance(layer, Dense):
        state = {"weight": np.ascontiguousarray(layer.W.T)}
        if layer.b is not None:
            state["bias"] = layer.b
        return state
    return {}


def load_state(layer, state: dict) -> None:
    """Put ``state`` (as :func:`state_of` returns it) into ``layer``, checking every tensor."""
    if hasattr(layer, "load_state_dict"):
        layer.load_state_dict(state)
    elif isinstance(layer, Dense):
        owner = repr(layer)
        shape = (layer.out_features, layer.in_features)
        layer.W = take_tensor(state, "weight", shape, layer.dtype, owner).T.copy()
        layer.dW = np.zeros_like(layer.W)
        if layer.b is not None:
            layer.b = take_tensor(state, "bias", (layer.out_features,), layer.dtype, owner)
            layer.db = np.zeros_like(layer.b)
