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
- ``"conv2d"``: :math:`Y = X^p \star W + b` with inputs ``(x, W, b)``, NCHW; its stride and
  padding are found from the forward checked (the first that reproduces it; stride 2, padding 1
  when none does), or fixed with :func:`conv2d_layer`;
- ``"maxpool2d"``, ``"avgpool2d"``: input ``x``; the window and stride are found the same way
  (3 x 3 at stride 2 by default), or fixed with :func:`pool_layer`;
- ``"rnn"``, ``"lstm"``: a whole sequence ``(batch, time, features)`` with inputs
  ``(x, W_ih, W_hh, b_ih, b_hh)`` (PyTorch's layouts, LSTM gates i, f, g, o), output every
  hidden state.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from chainrule import nn

__all__ = ["LAYERS", "Candidate", "LayerSpec", "conv2d_layer", "get_layer", "pool_layer",
           "register_layer", "settled"]


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
    ``candidates`` to try; ``settle(spec, points)``, where given, returns the spec of the
    settings (stride, padding, window) under which the layer reproduces the checked forward at
    each point ``(inputs, outputs)``."""

    name: str
    forward: Callable[..., np.ndarray]
    shapes: tuple[tuple[int, ...], ...]
    names: tuple[str, ...]
    candidates: tuple[Candidate, ...]
    settle: Callable[[LayerSpec, list], LayerSpec] | None = None


#: name -> :class:`LayerSpec`; the activations are added on first use by :func:`get_layer`.
LAYERS: dict[str, LayerSpec] = {}


def settled(spec: LayerSpec | None, forward, xs: list) -> LayerSpec | None:
    """``spec`` at the settings the checked ``forward`` (a list of inputs -> a list of
    outputs) shows at ``xs`` and at a random draw of their shapes (two points rule out a
    setting that agrees by chance, as ties can); ``spec`` itself where it has none to find
    or none fits."""
    if spec is None or spec.settle is None or len(spec.shapes) != len(xs):
        return spec
    draw = np.random.default_rng(0)
    points = []
    for inputs in (xs, [draw.standard_normal(np.shape(x)).astype(x.dtype) for x in xs]):
        try:
            outputs = forward([np.array(x, copy=True) for x in inputs])
        except Exception:  # the check itself reports a forward that fails
            continue
        points.append((inputs, outputs))
    return spec.settle(spec, points) if points else spec


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


# --- convolution and pooling: candidates built for the settings of the layer checked ----------

def _dxp(d, x, W, stride, padding):
    """The right dX of the padded input (before the padding is cropped)."""
    (ph, pw) = padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    return nn.conv.conv2d_backward(d, xp, W, stride, 0)[0]


def _conv_valid(xs, d, stride, padding, keep_shape: bool):
    """dX as the valid correlation of the dilated dY with the rotated kernel: where a full
    convolution puts it with zeros around (``keep_shape``), or in its own smaller shape."""
    x, W = xs[0], xs[1]
    (kh, kw), (sh, sw), (ph, pw) = W.shape[2:], stride, padding
    dh, dw = (d.shape[2] - 1) * sh + 1, (d.shape[3] - 1) * sw + 1
    if dh < kh or dw < kw:
        return {}
    dxp = _dxp(d, x, W, stride, padding)
    if not keep_shape:
        return {0: dxp[:, :, kh - 1: dh, kw - 1: dw]}
    inside = np.zeros(dxp.shape[2:], dtype=bool)
    inside[kh - 1: dh, kw - 1: dw] = True
    dxp = dxp * inside
    return {0: dxp[:, :, ph: ph + x.shape[2], pw: pw + x.shape[3]]}


def _conv_stride_ignored_dW(xs, d, padding):
    (ph, pw) = padding
    xp = np.pad(xs[0], ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, xs[1].shape[2:], axis=(2, 3))
    windows = windows[:, :, : d.shape[2], : d.shape[3]]
    if windows.shape[2:4] != d.shape[2:]:
        return {}
    return {1: np.tensordot(d, windows, axes=([0, 2, 3], [0, 2, 3]))}


def conv2d_layer(stride=2, padding=1) -> LayerSpec:
    r"""The ``"conv2d"`` :class:`LayerSpec` of :math:`Y = X^p \star W + b` at this ``stride`` and
    ``padding`` (ints or pairs), kept as given; the kernel is W's. ``layer="conv2d"`` finds
    them by itself: the first setting whose convolution reproduces the forward checked."""
    s = nn.conv.pair(stride, "stride", "conv2d_layer", 1)
    p = nn.conv.pair(padding, "padding", "conv2d_layer", 0)
    words = f"stride {s[0] if s[0] == s[1] else s}, padding {p[0] if p[0] == p[1] else p}"
    return LayerSpec(
        name="conv2d",
        forward=lambda x, W, b: nn.conv.conv2d(x, W, b, s, p),
        shapes=((2, 2, 5, 5), (3, 2, 3, 3), (3,)),
        names=("x", "W", "b"),
        candidates=(
            Candidate("conv_kernel_not_flipped", "dx correlates the dilated dout with W as it "
                      "is, not with W rotated 180 degrees", "dx = full convolution of the "
                      "dilated dout with W[:, :, ::-1, ::-1], cropped by the padding",
                      lambda xs, d: {0: nn.conv.conv2d_backward(
                          d, xs[0], xs[1][:, :, ::-1, ::-1], s, p)[0]}),
            Candidate("conv_valid_not_full", "dx is a valid convolution of the dilated dout: "
                      "the border pixels get no gradient", "dx = full convolution (k - 1 zeros "
                      "around the dilated dout), cropped by the padding",
                      lambda xs, d: _conv_valid(xs, d, s, p, True)),
            Candidate("conv_valid_not_full", "dx is a valid convolution of the dilated dout, "
                      "smaller than x", "dx = full convolution (k - 1 zeros around the dilated "
                      "dout), cropped by the padding",
                      lambda xs, d: _conv_valid(xs, d, s, p, False)),
            Candidate("conv_stride_ignored", "dx spreads dout over windows one pixel apart, as "
                      f"if the stride were 1 ({words})", "dx = full convolution of dout dilated "
                      "by the stride with the rotated W", lambda xs, d: {
                          0: nn.conv.conv2d_backward(d, xs[0], xs[1], 1, p)[0]}),
            Candidate("conv_stride_ignored", "dW correlates x with dout at stride 1, not at the "
                      f"stride ({words})", "dW[o, c, i, j] = sum of x_pad[n, c, s*y + i, s*x + j]"
                      " * dout[n, o, y, x]", lambda xs, d: _conv_stride_ignored_dW(xs, d, p)),
        ),
    )


def _agrees(ours, theirs) -> bool:
    theirs = np.asarray(theirs)
    if np.shape(ours) != theirs.shape or theirs.dtype.kind != "f":
        return False
    rtol = max(1e-9, 1e3 * float(np.finfo(theirs.dtype).eps))
    top = float(np.max(np.abs(ours))) if np.size(ours) else 0.0
    return bool(np.allclose(theirs.astype(np.float64), ours, rtol=rtol, atol=rtol * top))


def _settings(size: int, out: int, kernel: int, paddings) -> list[tuple[int, int]]:
    """The (stride, padding) pairs that give ``out`` outputs along an axis of ``size``."""
    return [(s, p) for p in paddings for s in range(1, size + 2 * p + 1)
            if size + 2 * p >= kernel and nn.conv.output_size(size, kernel, s, p) == out]


def _shows(layer, points) -> bool:
    """Whether ``layer(*inputs)`` gives the checked forward's output at every point."""
    return all(len(outs) == 1 and _agrees(layer(*(np.asarray(v, dtype=np.float64) for v in xs)),
                                          outs[0]) for xs, outs in points)


def _settle_conv(spec: LayerSpec, points) -> LayerSpec:
    xs, outputs = points[0]
    x, W = np.shape(xs[0]), np.shape(xs[1])
    if len(x) != 4 or len(W) != 4 or len(outputs) != 1 or np.ndim(outputs[0]) != 4:
        return spec
    (kh, kw), (ho, wo) = W[2:], np.shape(outputs[0])[2:]
    for (sh, ph) in _settings(x[2], ho, kh, range(kh)):
        for (sw, pw) in _settings(x[3], wo, kw, range(kw)):
            found = conv2d_layer((sh, sw), (ph, pw))
            if _shows(found.forward, points):
                return found
    return spec


def _spread(shape, d, share, kernel, stride):
    """``d * share(t)`` added back onto the entries at offset ``t`` of every window."""
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = d.shape[2:]
    dx = np.zeros(shape)
    for t in range(kh * kw):
        i, j = divmod(t, kw)
        dx[:, :, i: i + sh * (ho - 1) + 1: sh, j: j + sw * (wo - 1) + 1: sw] += d * share(t)
    return dx


def _windows(x, kernel, stride):
    view = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=(2, 3))
    view = view[:, :, :: stride[0], :: stride[1]]
    return view.reshape(*view.shape[:4], kernel[0] * kernel[1])


def _to_every_tie(xs, d, kernel, stride):
    """dout sent to every entry equal to its window's maximum (all of a tie)."""
    windows = _windows(xs[0], kernel, stride)[:, :, : d.shape[2], : d.shape[3]]
    ties = windows == windows.max(axis=-1, keepdims=True)
    if not np.any(ties.sum(axis=-1) > 1):
        return {}
    return {0: _spread(xs[0].shape, d, lambda t: ties[..., t], kernel, stride)}


def pool_layer(name: str, kernel_size=3, stride=None) -> LayerSpec:
    """The ``"maxpool2d"`` or ``"avgpool2d"`` :class:`LayerSpec` of this ``kernel_size`` and
    ``stride`` (ints or pairs; the stride is the window by default, as PyTorch's), kept as
    given. The names find them by themselves: the first setting whose pool reproduces the
    forward checked."""
    cls = {"maxpool2d": nn.MaxPool2D, "avgpool2d": nn.AvgPool2D}.get(name)
    if cls is None:
        raise ValueError(f"pool_layer needs name='maxpool2d' or 'avgpool2d'; got {name!r}.")
    k = nn.conv.pair(kernel_size, "kernel_size", "pool_layer", 1)
    s = k if stride is None else nn.conv.pair(stride, "stride", "pool_layer", 1)
    size = k[0] * k[1]
    every = Candidate(
        "pool_max_to_every_entry" if cls is nn.MaxPool2D else "pool_average_not_divided",
        "dout goes to every entry of its window, not only to the window's maximum"
        if cls is nn.MaxPool2D else f"dout is spread over the {k[0]} x {k[1]} window without "
        f"dividing by its {size} entries",
        "dx = dout at each window's arg-max (the first on a tie), zero elsewhere"
        if cls is nn.MaxPool2D else f"dx = dout / {size} on every entry of the window",
        lambda xs, d: {0: _spread(xs[0].shape, d, lambda t: 1.0, k, s)})
    ties = Candidate("pool_max_to_every_tie", "dout goes to every entry that ties for its "
                     "window's maximum (a mask x == max), so a tie of n entries passes it on "
                     "n times", "dx = dout at one arg-max per window (the first, as "
                     "np.argmax and PyTorch), zero elsewhere",
                     lambda xs, d: _to_every_tie(xs, d, k, s))
    return LayerSpec(
        name=name, forward=lambda x: cls(k, s).forward(x), shapes=((2, 2, 5, 5),),
        names=("x",), candidates=(every, ties) if cls is nn.MaxPool2D else (every,))


def _settle_pool(spec: LayerSpec, points) -> LayerSpec:
    xs, outputs = points[0]
    x = np.shape(xs[0])
    if len(x) != 4 or len(outputs) != 1 or np.ndim(outputs[0]) != 4:
        return spec
    ho, wo = np.shape(outputs[0])[2:]
    rows = [(k, s) for k in range(1, x[2] + 1) for s, _ in _settings(x[2], ho, k, [0])]
    cols = [(k, s) for k in range(1, x[3] + 1) for s, _ in _settings(x[3], wo, k, [0])]
    # Square windows whose stride is the window (PyTorch's default) first; at most _TRIES.
    tries = sorted(itertools.product(rows, cols),
                   key=lambda rc: (rc[0] != rc[1], rc[0][0] != rc[0][1], rc))
    for (kh, sh), (kw, sw) in tries[:_TRIES]:
        found = pool_layer(spec.name, (kh, kw), (sh, sw))
        if _shows(found.forward, points):
            return found
    return spec


_TRIES = 256


# The registered names find their settings; a spec built with given settings keeps them.
register_layer(replace(conv2d_layer(), settle=_settle_conv))
register_layer(replace(pool_layer("maxpool2d", 3, 2), settle=_settle_pool))
register_layer(replace(pool_layer("avgpool2d", 3, 2), settle=_settle_pool))


# --- recurrent layers ------------------------------------------------------------------------

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


def _recurrent_vjp(xs, d, lstm: bool, through_time: bool = True, cell_path: bool = True,
                   slip: str | None = None):
    """The gradients of the five inputs; ``through_time=False`` cuts dh from the next step,
    ``cell_path=False`` cuts dc from the next step, ``slip="raw_cell"`` takes tanh' as
    1 - c_t², ``slip="forget_c_t"`` takes df_t with c_t for c_(t-1) (the mistakes the
    candidates name)."""
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
            slope = 1 - (s["c"] if slip == "raw_cell" else tanh_c) ** 2
            dc = dh * s["o"] * slope + (dc_next if cell_path else 0.0)
            c_f = s["c"] if slip == "forget_c_t" else s["c_prev"]
            dz = np.concatenate([dc * s["g"] * s["i"] * (1 - s["i"]),
                                 dc * c_f * s["f"] * (1 - s["f"]),
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
        Candidate("lstm_tanh_derivative_of_raw_cell", "the derivative of tanh(c_t) in "
                  "h_t = o * tanh(c_t) is taken as 1 - c_t**2, on the cell state itself",
                  "dc_t = dh_t * o * (1 - tanh(c_t)**2) + dc_(t+1) * f_(t+1)",
                  lambda xs, d: _recurrent_vjp(xs, d, True, slip="raw_cell")),
        Candidate("lstm_forget_gate_new_cell", "the forget gate's gradient multiplies dc_t by "
                  "c_t, the new cell state, where the c_(t-1) it scales belongs",
                  "df_t = dc_t * c_(t-1) (then times f * (1 - f) for its pre-activation)",
                  lambda xs, d: _recurrent_vjp(xs, d, True, slip="forget_c_t")),
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
