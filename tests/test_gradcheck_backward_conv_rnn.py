"""check_backward on hand-written NumPy backward passes of convolution, pooling, RNN and LSTM:
every planted mistake of these layers named by its kind, at the stride, padding and window of
the layer actually checked (found from its forward). The backward passes here loop over the
output pixels and time steps, apart from the library's vectorised ones; the oracle is float64
central differences of the forward."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.gradient_check import MISTAKES, check_backward
from chainrule.gradient_check.backward import conv2d_layer, pool_layer
from oracles import rnn_forward
from oracles import sigmoid as _sig

# --- convolution: forward and backward by the definition, one output pixel at a time ----------


def conv_forward(stride, padding):
    def forward(x, W, b):
        xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        k = W.shape[2]
        ho, wo = (xp.shape[2] - k) // stride + 1, (xp.shape[3] - k) // stride + 1
        y = np.empty((len(x), len(W), ho, wo))
        for r in range(ho):
            for c in range(wo):
                window = xp[:, :, r * stride: r * stride + k, c * stride: c * stride + k]
                y[:, :, r, c] = np.einsum("ncij,ocij->no", window, W) + b
        return y
    return forward


def conv_backward(stride, padding, slip=None):
    """dX scatters dY times W back onto each window; dW gathers each window times dY.
    ``slip``: "not_flipped", "valid", "valid_shape", "stride_dx" or "stride_dw"."""
    s, p = stride, padding

    def backward(d, x, W, b):
        k = W.shape[2]
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        dxp, dW = np.zeros_like(xp), np.zeros_like(W)
        kernel = W[:, :, ::-1, ::-1] if slip == "not_flipped" else W
        at_x = 1 if slip == "stride_dx" else s
        at_w = 1 if slip == "stride_dw" else s
        for r in range(d.shape[2]):
            for c in range(d.shape[3]):
                g = d[:, :, r, c]
                dxp[:, :, r * at_x: r * at_x + k, c * at_x: c * at_x + k] += np.einsum(
                    "no,ocij->ncij", g, kernel)
                dW += np.einsum("no,ncij->ocij", g, xp[:, :, r * at_w: r * at_w + k,
                                                        c * at_w: c * at_w + k])
        if slip in ("valid", "valid_shape"):
            return _valid_dx(d, x, W, s, p, slip == "valid_shape"), dW, d.sum(axis=(0, 2, 3))
        return dxp[:, :, p: p + x.shape[2], p: p + x.shape[3]], dW, d.sum(axis=(0, 2, 3))
    return backward


def _valid_dx(d, x, W, s, p, own_shape):
    """The valid correlation of the dilated dY with the rotated kernel (no k - 1 zeros around):
    in its own shape, or put where the full one would be, with zeros around."""
    n, o, ho, wo = d.shape
    k = W.shape[2]
    dilated = np.zeros((n, o, (ho - 1) * s + 1, (wo - 1) * s + 1))
    dilated[:, :, ::s, ::s] = d
    windows = np.lib.stride_tricks.sliding_window_view(dilated, (k, k), axis=(2, 3))
    valid = np.einsum("noyxij,ocij->ncyx", windows, W[:, :, ::-1, ::-1])
    if own_shape:
        return valid
    dxp = np.zeros((n, x.shape[1], x.shape[2] + 2 * p, x.shape[3] + 2 * p))
    dxp[:, :, k - 1: k - 1 + valid.shape[2], k - 1: k - 1 + valid.shape[3]] = valid
    return dxp[:, :, p: p + x.shape[2], p: p + x.shape[3]]


# --- pooling: each window in turn --------------------------------------------------------------


def _window_slices(shape, k, s):
    for r in range((shape[2] - k) // s + 1):
        for c in range((shape[3] - k) // s + 1):
            yield r, c, (slice(None), slice(None), slice(r * s, r * s + k), slice(c * s, c * s + k))


def pool_forward(kind, k, s):
    def forward(x):
        ho, wo = (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1
        y = np.empty((*x.shape[:2], ho, wo))
        for r, c, win in _window_slices(x.shape, k, s):
            y[:, :, r, c] = x[win].max(axis=(2, 3)) if kind == "max" else x[win].mean(axis=(2, 3))
        return y
    return forward


def pool_backward(kind, k, s, slip=None):
    """Max: dY to the first arg-max of each window; average: dY / k² to every entry. ``slip``:
    "every_entry" (max), "every_tie" (max, a mask x == max), "not_divided" (average)."""
    def backward(d, x):
        dx = np.zeros_like(x)
        for r, c, win in _window_slices(x.shape, k, s):
            g = d[:, :, r, c][:, :, None, None]
            w = x[win]
            if kind == "avg":
                dx[win] += g if slip == "not_divided" else g / (k * k)
            elif slip == "every_entry":
                dx[win] += g
            elif slip == "every_tie":
                dx[win] += g * (w == w.max(axis=(2, 3), keepdims=True))
            else:
                flat = w.reshape(*w.shape[:2], -1).argmax(axis=-1)
                mask = np.arange(k * k) == flat[..., None]
                dx[win] += g * mask.reshape(w.shape)
        return (dx,)
    return backward


def tied(shape, seed=0):
    """Distinct values, except that the first window's two largest entries tie."""
    x = np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) / 7.0
    x[:, :, 0, 0] = x[:, :, 0, 1] = x.max() + 1.0
    return x


# --- RNN and LSTM through time ----------------------------------------------------------------


def rnn_backward(slip=None):
    """Backpropagation through time; ``slip="truncated"`` drops the dh from step t + 1."""
    def backward(d, x, W_ih, W_hh, b_ih, b_hh):
        hs = rnn_forward(x, W_ih, W_hh, b_ih, b_hh)
        dx, dWi, dWh, db = np.zeros_like(x), np.zeros_like(W_ih), np.zeros_like(W_hh), 0.0
        dh_next = np.zeros_like(hs[:, 0])
        for t in reversed(range(x.shape[1])):
            dz = (d[:, t] + (0.0 if slip == "truncated" else dh_next)) * (1 - hs[:, t] ** 2)
            h_prev = hs[:, t - 1] if t else np.zeros_like(hs[:, 0])
            dx[:, t] = dz @ W_ih
            dWi, dWh, db = dWi + dz.T @ x[:, t], dWh + dz.T @ h_prev, db + dz.sum(axis=0)
            dh_next = dz @ W_hh
        return dx, dWi, dWh, db, db
    return backward


def lstm_forward(x, W_ih, W_hh, b_ih, b_hh, keep=None):
    n, hidden = len(x), W_hh.shape[1]
    h, c, out = np.zeros((n, hidden)), np.zeros((n, hidden)), []
    for t in range(x.shape[1]):
        i, f, g, o = np.split(x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh, 4, axis=1)
        i, f, g, o = _sig(i), _sig(f), np.tanh(g), _sig(o)
        c_new = f * c + i * g
        if keep is not None:
            keep.append((i, f, g, o, c, c_new, h))
        c, h = c_new, o * np.tanh(c_new)
        out.append(h)
    return np.stack(out, axis=1)


def lstm_backward(slip=None):
    """Backpropagation through time of the LSTM (gates i, f, g, o). ``slip``: "truncated",
    "cell_path" (dc from step t + 1 dropped), "raw_cell" (tanh' as 1 - c_t²), "forget_c_t"
    (df_t = dc_t * c_t)."""
    def backward(d, x, W_ih, W_hh, b_ih, b_hh):
        keep = []
        lstm_forward(x, W_ih, W_hh, b_ih, b_hh, keep)
        dx, dWi, dWh, db = np.zeros_like(x), np.zeros_like(W_ih), np.zeros_like(W_hh), 0.0
        dh_next = dc_next = np.zeros((len(x), W_hh.shape[1]))
        for t in reversed(range(x.shape[1])):
            i, f, g, o, c_prev, c, h_prev = keep[t]
            dh = d[:, t] + (0.0 if slip == "truncated" else dh_next)
            slope = 1 - c ** 2 if slip == "raw_cell" else 1 - np.tanh(c) ** 2
            dc = dh * o * slope + (0.0 if slip in ("truncated", "cell_path") else dc_next)
            df = dc * (c if slip == "forget_c_t" else c_prev)
            dz = np.concatenate([dc * g * i * (1 - i), df * f * (1 - f),
                                 dc * i * (1 - g ** 2), dh * np.tanh(c) * o * (1 - o)], axis=1)
            dx[:, t] = dz @ W_ih
            dWi, dWh, db = dWi + dz.T @ x[:, t], dWh + dz.T @ h_prev, db + dz.sum(axis=0)
            dh_next, dc_next = dz @ W_hh, dc * f
        return dx, dWi, dWh, db, db
    return backward


# --- every kind of these layers, planted in a hand-written NumPy backward -------------------------

S, P = 2, 1  # the default settings of layer="conv2d"
PLANTED = [  # (kind, forward, backward, layer, keywords)
    ("conv_kernel_not_flipped", conv_forward(S, P), conv_backward(S, P, "not_flipped"),
     "conv2d", {}),
    ("conv_valid_not_full", conv_forward(S, P), conv_backward(S, P, "valid"), "conv2d", {}),
    ("conv_stride_ignored", conv_forward(S, P), conv_backward(S, P, "stride_dx"), "conv2d", {}),
    ("pool_max_to_every_entry", pool_forward("max", 3, 2),
     pool_backward("max", 3, 2, "every_entry"), "maxpool2d", {}),
    ("pool_average_not_divided", pool_forward("avg", 3, 2),
     pool_backward("avg", 3, 2, "not_divided"), "avgpool2d", {}),
    ("pool_max_to_every_tie", pool_forward("max", 3, 2), pool_backward("max", 3, 2, "every_tie"),
     "maxpool2d", dict(inputs=[tied((2, 2, 5, 5))])),
    ("bptt_truncated", rnn_forward, rnn_backward("truncated"), "rnn", {}),
    ("bptt_truncated", lstm_forward, lstm_backward("truncated"), "lstm", {}),
    ("lstm_cell_path_dropped", lstm_forward, lstm_backward("cell_path"), "lstm", {}),
    ("lstm_tanh_derivative_of_raw_cell", lstm_forward, lstm_backward("raw_cell"), "lstm", {}),
    ("lstm_forget_gate_new_cell", lstm_forward, lstm_backward("forget_c_t"), "lstm", {}),
]


def test_the_planted_list_covers_every_kind_of_these_layers():
    kinds = {case[0] for case in PLANTED}
    assert kinds == {"conv_kernel_not_flipped", "conv_valid_not_full", "conv_stride_ignored",
                     "pool_max_to_every_entry", "pool_average_not_divided",
                     "pool_max_to_every_tie", "bptt_truncated", "lstm_cell_path_dropped",
                     "lstm_tanh_derivative_of_raw_cell", "lstm_forget_gate_new_cell"}
    assert kinds <= set(MISTAKES)


@pytest.mark.parametrize("kind, forward, backward, layer, keywords", PLANTED,
                         ids=[f"{c[3]}-{c[0]}" for c in PLANTED])
def test_every_planted_mistake_is_named(kind, forward, backward, layer, keywords):
    report = check_backward(forward, backward, layer=layer, **keywords)
    assert not report.correct, str(report)
    assert report.kind == kind, str(report)
    assert report.mistake is MISTAKES[kind]


@pytest.mark.parametrize("forward, backward, layer", [
    (conv_forward(S, P), conv_backward(S, P), "conv2d"),
    (pool_forward("max", 3, 2), pool_backward("max", 3, 2), "maxpool2d"),
    (pool_forward("avg", 3, 2), pool_backward("avg", 3, 2), "avgpool2d"),
    (rnn_forward, rnn_backward(), "rnn"),
    (lstm_forward, lstm_backward(), "lstm"),
])
def test_the_same_backward_without_its_slip_passes(forward, backward, layer):
    report = check_backward(forward, backward, layer=layer)
    assert report.correct, str(report)


# --- conv and pool mistakes at the settings of the layer checked ----------------------------------

SETTINGS = [(1, 0), (1, 1), (2, 0), (2, 1)]  # (stride, padding)
CONV_SLIPS = [("not_flipped", "conv_kernel_not_flipped", "x"),
              ("valid", "conv_valid_not_full", "x"),
              ("valid_shape", "conv_valid_not_full", "x"),
              ("stride_dx", "conv_stride_ignored", "x"),
              ("stride_dw", "conv_stride_ignored", "W")]


@pytest.mark.parametrize("slip, kind, where", CONV_SLIPS, ids=[c[0] for c in CONV_SLIPS])
@pytest.mark.parametrize("stride, padding", SETTINGS)
def test_a_conv_mistake_is_named_at_any_stride_and_padding(stride, padding, slip, kind, where):
    if slip.startswith("stride") and stride == 1:
        pytest.skip("at stride 1 ignoring the stride changes nothing")
    shapes = [(1, 2, 5, 7), (3, 2, 3, 3), (3,)]  # odd sizes, several channels
    forward = conv_forward(stride, padding)
    assert check_backward(forward, conv_backward(stride, padding), shapes=shapes,
                          layer="conv2d").correct
    report = check_backward(forward, conv_backward(stride, padding, slip), shapes=shapes,
                            layer="conv2d")
    assert report.kind == kind, str(report)
    assert report[where].kind == kind


POOLS = [(3, 1), (3, 2), (2, 1), (2, 2)]  # (window, stride)
POOL_SLIPS = [("max", "every_entry", "pool_max_to_every_entry"),
              ("max", "every_tie", "pool_max_to_every_tie"),
              ("avg", "not_divided", "pool_average_not_divided")]


@pytest.mark.parametrize("kind_, slip, kind", POOL_SLIPS, ids=[c[1] for c in POOL_SLIPS])
@pytest.mark.parametrize("window, stride", POOLS)
def test_a_pool_mistake_is_named_at_any_window_and_stride(window, stride, kind_, slip, kind):
    x = tied((1, 2, 7, 5))  # odd sizes, several channels, one tie
    forward = pool_forward(kind_, window, stride)
    layer = f"{kind_}pool2d"
    report = check_backward(forward, pool_backward(kind_, window, stride, slip), inputs=[x],
                            layer=layer)
    assert report.kind == kind, str(report)


def test_the_settings_can_be_given_instead_of_found():
    forward = conv_forward(1, 0)
    report = check_backward(forward, conv_backward(1, 0, "not_flipped"),
                            shapes=[(1, 1, 5, 5), (1, 1, 3, 3), (1,)], layer=conv2d_layer(1, 0))
    assert report.kind == "conv_kernel_not_flipped"
    # settings given are kept, even wrong ones: then no candidate fits
    wrong = check_backward(forward, conv_backward(1, 0, "not_flipped"),
                           shapes=[(1, 1, 5, 5), (1, 1, 3, 3), (1,)], layer=conv2d_layer(2, 1))
    assert not wrong.correct and wrong.kind is None
    pool = pool_layer("avgpool2d", 2, 1)
    assert pool.name == "avgpool2d" and "4 entries" in pool.candidates[0].sentence
    report = check_backward(pool_forward("avg", 2, 1), pool_backward("avg", 2, 1, "not_divided"),
                            shapes=[(1, 1, 5, 5)], layer=pool)
    assert report.kind == "pool_average_not_divided"


@pytest.mark.parametrize("call, message", [
    (lambda: pool_layer("minpool2d"), "name='maxpool2d' or 'avgpool2d'; got 'minpool2d'"),
    (lambda: pool_layer("maxpool2d", 0), "kernel_size"),
    (lambda: conv2d_layer(stride=0), "stride"),
    (lambda: conv2d_layer(padding=-1), "padding"),
])
def test_bad_settings_are_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()
