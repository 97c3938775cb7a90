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
- ``"softmax"``: :math:`p = \mathrm{softmax}(z)` over the last axis;
- ``"conv2d"``: :math:`Y = X^p \star W + b` with inputs ``(x, W, b)``, NCHW, stride 2, padding 1;
- ``"maxpool2d"``, ``"avgpool2d"``: 3 x 3 windows at stride 2 (they overlap), input ``x``;
- ``"rnn"``, ``"lstm"``: a whole sequence ``(batch, time, features)`` with inputs
  ``(x, W_ih, W_hh, b_ih, b_hh)`` (PyTorch's layouts, LSTM gates i, f, g, o), output every
  hidden state.
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


# --- convolution, pooling and recurrent layers ------------------------------------------------

_STRIDE, _PADDING = 2, 1


def _conv_valid_region(xs, d):
    """The right dX, zero outside the rows and columns a valid convolution of the dilated dY
    reaches (the border the full convolution's zero padding adds)."""
    x, W = xs[0], xs[1]
    dX = nn.conv.conv2d_backward(d, x, W, _STRIDE, _PADDING)[0]
    k, size = W.shape[2], (np.array(d.shape[2:]) - 1) * _STRIDE + 1
    rows = np.arange(x.shape[2]) + _PADDING
    cols = np.arange(x.shape[3]) + _PADDING
    inside = ((rows >= k - 1) & (rows < size[0]))[:, None] & ((cols >= k - 1) & (cols < size[1]))
    return dX * inside


def _conv_valid_shape(xs, d):
    """The valid correlation of the dilated dY with the rotated kernel, in its own shape."""
    W = xs[1]
    k = W.shape[2]
    dX = nn.conv.conv2d_backward(d, xs[0], W, _STRIDE, _PADDING)[0]
    size = (np.array(d.shape[2:]) - 1) * _STRIDE + 1
    lo = k - 1 - _PADDING
    return dX[:, :, lo: lo + size[0] - k + 1, lo: lo + size[1] - k + 1]


def _conv_stride_ignored_dW(xs, d):
    xp = np.pad(xs[0], ((0, 0), (0, 0), (_PADDING,) * 2, (_PADDING,) * 2))
    windows = np.lib.stride_tricks.sliding_window_view(xp, xs[1].shape[2:], axis=(2, 3))
    windows = windows[:, :, : d.shape[2], : d.shape[3]]
    return np.tensordot(d, windows, axes=([0, 2, 3], [0, 2, 3]))


register_layer(LayerSpec(
    name="conv2d",
    forward=lambda x, W, b: nn.conv.conv2d(x, W, b, _STRIDE, _PADDING),
    shapes=((2, 2, 5, 5), (3, 2, 3, 3), (3,)),
    names=("x", "W", "b"),
    candidates=(
        Candidate("conv_kernel_not_flipped", "dx correlates the dilated dout with W as it is, "
                  "not with W rotated 180 degrees", "dx = full convolution of the dilated dout "
                  "with W[:, :, ::-1, ::-1], cropped by the padding",
                  lambda xs, d: {0: nn.conv.conv2d_backward(d, xs[0], xs[1][:, :, ::-1, ::-1],
                                                            _STRIDE, _PADDING)[0]}),
        Candidate("conv_valid_not_full", "dx is a valid convolution of the dilated dout: the "
                  "border pixels get no gradient", "dx = full convolution (k - 1 zeros around "
                  "the dilated dout), cropped by the padding",
                  lambda xs, d: {0: _conv_valid_region(xs, d)}),
        Candidate("conv_valid_not_full", "dx is a valid convolution of the dilated dout, "
                  "smaller than x", "dx = full convolution (k - 1 zeros around the dilated "
                  "dout), cropped by the padding", lambda xs, d: {0: _conv_valid_shape(xs, d)}),
        Candidate("conv_stride_ignored", "dx spreads dout over windows one pixel apart, as if "
                  "the stride were 1", "dx = full convolution of dout dilated by the stride "
                  "with the rotated W", lambda xs, d: {
                      0: nn.conv.conv2d_backward(d, xs[0], xs[1], 1, _PADDING)[0]}),
        Candidate("conv_stride_ignored", "dW correlates x with dout at stride 1, not at the "
                  "stride", "dW[o, c, i, j] = sum of x_pad[n, c, s*y + i, s*x + j] * "
                  "dout[n, o, y, x]", lambda xs, d: {1: _conv_stride_ignored_dW(xs, d)}),
    ),
))


def _pool_spread(xs, d):
    """dout sent whole to every entry of its window (the average pool's spread times k²)."""
    layer = nn.AvgPool2D(3, stride=2)
    layer.forward(xs[0])
    return layer.backward(d) * 9


def _pool_spec(name: str, layer, kind: str, mistake: str, right: str) -> LayerSpec:
    """A 3 x 3 pool at stride 2 (its windows overlap), whose known mistake is the spread."""
    return LayerSpec(
        name=name, forward=lambda x: layer(3, stride=2).forward(x), shapes=((2, 2, 5, 5),),
        names=("x",),
        candidates=(Candidate(kind, mistake, right, lambda xs, d: {0: _pool_spread(xs, d)}),),
    )


register_layer(_pool_spec(
    "maxpool2d", nn.MaxPool2D, "pool_max_to_every_entry",
    "dout goes to every entry of its window, not only to the window's maximum",
    "dx = dout at each window's arg-max (the first on a tie), zero elsewhere"))
register_layer(_pool_spec(
    "avgpool2d", nn.AvgPool2D, "pool_average_not_divided",
    "dout is spread over the 3 x 3 window without dividing by its 9 entries",
    "dx = dout / 9 on every entry of the window"))


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _recurrent_steps(xs, lstm: bool) -> dict:
    """The forward pass through time in float64; every step's gates and states."""
    x, W_ih, W_hh, b_ih, b_hh = (np.asarray(v, dtype=np.float64) for v in xs)
    hidden = W_hh.shape[1]
    h = c = np.zeros((len(x), hidden))
    steps = []
    for t in range(x.shape[1]):
        z = x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh
        step = {"h_prev": h, "c_prev": c}
        if lstm:
            i, f, g, o = np.split(z, 4, axis=1)
            step.update(i=_sigmoid(i), f=_sigmoid(f), g=np.tanh(g), o=_sigmoid(o))
            c = step["f"] * c + step["i"] * step["g"]
            h = step["o"] * np.tanh(c)
        else:
            h = np.tanh(z)
        step.update(h=h, c=c)
        steps.append(step)
    return {"x": x, "W_ih": W_ih, "W_hh": W_hh, "steps": steps}


def _recurrent_vjp(xs, d, lstm: bool, through_time: bool = True, cell_path: bool = True):
    """The gradients of the five inputs; ``through_time=False`` cuts dh from the next step,
    ``cell_path=False`` cuts dc from the next step (the mistakes the candidates name)."""
    run = _recurrent_steps(xs, lstm)
    x, W_ih, W_hh = run["x"], run["W_ih"], run["W_hh"]
    grads = [np.zeros_like(x), np.zeros_like(W_ih), np.zeros_like(W_hh),
             np.zeros(len(W_ih)), np.zeros(len(W_ih))]
    dh_next = dc_next = np.zeros((len(x), W_hh.shape[1]))
    for t in reversed(range(x.shape[1])):
        s = run["steps"][t]
        dh = d[:, t] + (dh_next if through_time else 0.0)
        if lstm:
            tanh_c = np.tanh(s["c"])
            dc = dh * s["o"] * (1 - tanh_c ** 2) + (dc_next if cell_path else 0.0)
            dz = np.concatenate([dc * s["g"] * s["i"] * (1 - s["i"]),
                                 dc * s["c_prev"] * s["f"] * (1 - s["f"]),
                                 dc * s["i"] * (1 - s["g"] ** 2),
                                 dh * tanh_c * s["o"] * (1 - s["o"])], axis=1)
            dc_next = dc * s["f"]
        else:
            dz = dh * (1 - s["h"] ** 2)
        grads[0][:, t] = dz @ W_ih
        grads[1] += dz.T @ x[:, t]
        grads[2] += dz.T @ s["h_prev"]
        grads[3] += dz.sum(axis=0)
        grads[4] += dz.sum(axis=0)
        dh_next = dz @ W_hh
    return dict(enumerate(grads))


_TRUNCATED = ("only step t's own dout reaches h_t: the gradient from step t + 1 is dropped",
              "dh_t = dout_t + dz_(t+1) @ W_hh, from the last step to the first")
_RECURRENT_NAMES = ("x", "W_ih", "W_hh", "b_ih", "b_hh")

register_layer(LayerSpec(
    name="rnn",
    forward=lambda *xs: np.stack([s["h"] for s in _recurrent_steps(xs, False)["steps"]], 1),
    shapes=((2, 5, 3), (4, 3), (4, 4), (4,), (4,)),
    names=_RECURRENT_NAMES,
    candidates=(Candidate("bptt_truncated", *_TRUNCATED,
                          lambda xs, d: _recurrent_vjp(xs, d, False, through_time=False)),),
))

register_layer(LayerSpec(
    name="lstm",
    forward=lambda *xs: np.stack([s["h"] for s in _recurrent_steps(xs, True)["steps"]], 1),
    shapes=((2, 5, 3), (12, 3), (12, 3), (12,), (12,)),
    names=_RECURRENT_NAMES,
    candidates=(
        Candidate("bptt_truncated", *_TRUNCATED,
                  lambda xs, d: _recurrent_vjp(xs, d, True, through_time=False, cell_path=False)),
        Candidate("bptt_truncated", *_TRUNCATED,
                  lambda xs, d: _recurrent_vjp(xs, d, True, through_time=False)),
        Candidate("lstm_cell_path_dropped", "dc_t gets nothing from c_(t+1): the cell "
                  "state's path through the forget gate is dropped",
                  "dc_t = dh_t * o * (1 - tanh(c_t)**2) + dc_(t+1) * f_(t+1)",
                  lambda xs, d: _recurrent_vjp(xs, d, True, cell_path=False)),
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
