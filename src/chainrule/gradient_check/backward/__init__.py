r"""Check the backward pass people write: NumPy, ``torch.autograd.Function``, ``jax.custom_vjp``.

:func:`check_backward` compares each input's vector-Jacobian product with float64 central
differences of the forward, and answers per input: passed, or where it differs (every element,
a row or column, the border, every k-th element, the diagonal) and which mistake of
:data:`~chainrule.gradient_check.catalogue.MISTAKES` explains it. :data:`LAYERS` is the
registry of layers whose known mistakes it also tries (``layer="dense"``).

>>> import numpy as np
>>> def affine_forward(x, w, b):
...     return x @ w + b, (x, w, b)
>>> def affine_backward(dout, cache):
...     x, w, b = cache
...     return dout @ w.T, x.T @ dout, dout          # db not summed over the batch
>>> report = check_backward(affine_forward, affine_backward, shapes=[(4, 3), (3, 5), (5,)])
>>> report.kind, report.where
('bias_not_summed', 'input 2 (b)')

Only NumPy is imported here; PyTorch and JAX are imported by the adapters that need them.
"""

from __future__ import annotations

from chainrule.gradient_check.backward.check import check_backward
from chainrule.gradient_check.backward.layers import (
    LAYERS,
    Candidate,
    LayerSpec,
    conv2d_layer,
    get_layer,
    pool_layer,
    register_layer,
)
from chainrule.gradient_check.backward.report import BackwardCheck, InputCheck

__all__ = ["LAYERS", "BackwardCheck", "Candidate", "InputCheck", "LayerSpec", "check_backward",
           "conv2d_layer", "get_layer", "pool_layer", "register_layer"]
