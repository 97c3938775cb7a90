r"""The registry of layers whose known mistakes :func:`check_backward` tries (``layer=``).

Each :class:`LayerSpec` holds the layer's forward in float64, the shapes of inputs to draw when
the user gives none, and its *candidates*: builders of the backward pass as it is commonly got
wrong. A candidate returns, for one cotangent, the mistaken gradient of the inputs it touches
(``{input index: array}``); when the user's backward returns exactly that, the candidate's
``kind`` (a key of :data:`~chainrule.gradient_check.catalogue.MISTAKES`) names the mistake.

A new layer (normalization, attention, convolution, pooling, recurrent) adds one
:func:`register_layer` call with its forward and its candidates; the checker does not change.

- ``"dense"``: :math:`Z = XW + b` with inputs ``(x, W, b)``;
- every activation of :data:`chainrule.nn.ACTIVATIONS` (by name or alias) with input ``z``;
- ``"softmax"``: :math:`p = \mathrm{softmax}(z)` over the last axis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from chainrule import nn

__all__ = ["LAYERS", "Candidate", "LayerSpec", "get_layer", "register_layer"]


@dataclass(frozen=True)
class Candidate:
    """One known mistake of a layer's backward: its ``kind``, what was done (``sentence``),
    the right form (``expected``), and ``gradients(xs, dout) -> {input index: array}``."""

    kind: str
    sentence: str
    expected: str
    gradients: Callable[[list[np.ndarray], np.ndarray], dict[int, np.ndarray]]


@dataclass(frozen=True)
class LayerSpec:
    """A layer: its ``forward(*xs)`` in float64, default ``shapes``, input ``names`` and the
    ``candidates`` to try."""

    name: str
    forward: Callable[..., np.ndarray]
    shapes: tuple[tuple[int, ...], ...]
    names: tuple[str, ...]
    candidates: tuple[Candidate, ...]


#: name -> :class:`LayerSpec`; the activations are added on first use by :func:`get_layer`.
LAYERS: dict[str, LayerSpec] = {}


def register_layer(spec: LayerSpec) -> LayerSpec:
    """Add ``spec`` to :data:`LAYERS` under its name (replacing one of the same name)."""
    from chainrule.gradient_check.catalogue import mistake

    for candidate in spec.candidates:
        mistake(candidate.kind)
    LAYERS[spec.name] = spec
    return spec


register_layer(LayerSpec(
    name="dense",
    forward=lambda x, W, b: x @ W + b,
    shapes=((4, 3), (3, 5), (5,)),
    names=("x", "W", "b"),
    candidates=(
        Candidate("transposed", "dW is computed as doutᵀ·x, the transpose of xᵀ·dout",
                  "dW = x.T @ dout", lambda xs, d: {1: d.T @ xs[0]}),
        Candidate("transposed", "dx is computed with W where Wᵀ belongs (dout·W)",
                  "dx = dout @ W.T", lambda xs, d: {0: d @ xs[1]} if xs[1].shape[0] ==
                  xs[1].shape[1] else {}),
        Candidate("bias_not_summed", "db is dout itself, not summed over the batch",
                  "db = dout.sum(axis=0)", lambda xs, d: {2: d}),
        Candidate("bias_wrong_axis", "db is summed over the units (axis 1), not the batch",
                  "db = dout.sum(axis=0)", lambda xs, d: {2: d.sum(axis=1)}),
        Candidate("mean_twice", "the gradients are divided by the batch size m again; the "
                  "1/m belongs to the loss, whose dout already carries it",
                  "dW = x.T @ dout, db = dout.sum(axis=0), with no 1/m in the layer",
                  lambda xs, d: {0: d @ xs[1].T / len(d), 1: xs[0].T @ d / len(d),
                                 2: d.sum(axis=0) / len(d)}),
    ),
))


def _softmax(z):
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


register_layer(LayerSpec(
    name="softmax",
    forward=_softmax,
    shapes=((4, 5),),
    names=("z",),
    candidates=(
        Candidate("softmax_diagonal", "the Jacobian of softmax is taken as diagonal: "
                  "dout·p(1 - p)", "dz = p * (dout - (dout * p).sum(axis=-1, keepdims=True))",
                  lambda xs, d: {0: d * _softmax(xs[0]) * (1 - _softmax(xs[0]))}),
    ),
))


def _activation_spec(name: str) -> LayerSpec:
    act = nn.get(name)

    def g(z):
        return nn.get(name).forward(np.asarray(z, dtype=np.float64))

    def slope(z):
        return act.derivative(np.asarray(z, dtype=np.float64))

    return LayerSpec(
        name=name,
        forward=g,
        shapes=((4, 5),),
        names=("z",),
        candidates=(
            Candidate("derivative_missing", f"the derivative {name}'(z) is missing: dz = dout",
                      f"dz = dout * {name}'(z)", lambda xs, d: {0: d}),
            Candidate("derivative_twice", f"{name}'(z) is applied twice",
                      f"dz = dout * {name}'(z), once", lambda xs, d: {0: d * slope(xs[0]) ** 2}),
            Candidate("derivative_wrong_array", f"{name}' is taken at the output, "
                      f"{name}'({name}(z)), not at the input z",
                      f"dz = dout * {name}'(z)", lambda xs, d: {0: d * slope(g(xs[0]))}),
        ),
    )


# Activations with a Jacobian rather than an element-wise derivative; softmax has its own entry.
_NOT_ELEMENTWISE = ("log_softmax", "logsoftmax", "softmax")


def get_layer(name) -> LayerSpec:
    """The :class:`LayerSpec` of ``name`` (a layer of :data:`LAYERS` or an activation's name or
    alias); a ValueError naming the known layers otherwise."""
    if isinstance(name, LayerSpec):
        return name
    key = str(name).lower() if isinstance(name, str) else None
    if key in LAYERS:
        return LAYERS[key]
    canonical = nn.activations.canonical_name(key) if key else None
    if canonical in LAYERS:
        return LAYERS[canonical]
    if canonical is not None and canonical not in _NOT_ELEMENTWISE:
        return register_layer(_activation_spec(canonical))
    known = sorted({*LAYERS, *(n for n in nn.ACTIVATIONS if n not in _NOT_ELEMENTWISE)})
    raise ValueError(f"layer= must be one of {', '.join(known)}; got {name!r}.")
