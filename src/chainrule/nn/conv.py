r"""Convolution on images: :class:`Conv2D`, and :class:`Flatten` to hand its maps to a dense layer.

Images are ``(batch, channels, height, width)`` (NCHW, PyTorch's layout). A convolution layer
of a neural network computes a cross-correlation: with the input zero-padded by :math:`p` on each
side (:math:`X^p`) and a stride :math:`s`,

.. math::

    Y_{n,o,y,x} = b_o + \sum_{c,i,j} X^p_{n,c,\,sy+i,\,sx+j}\, W_{o,c,i,j},
    \qquad H_{out} = \left\lfloor \frac{H + 2p - k_h}{s} \right\rfloor + 1 .

Given :math:`G = \partial E/\partial Y`, the chain rule gives (Goodfellow, Bengio & Courville,
*Deep Learning*, 2016, section 9.5; Dumoulin & Visin, arXiv:1603.07285):

- :math:`\partial E/\partial W_{o,c,i,j} = \sum_{n,y,x} X^p_{n,c,\,sy+i,\,sx+j} G_{n,o,y,x}`:
  the correlation of the input with :math:`G` (at the stride);
- :math:`\partial E/\partial b_o = \sum_{n,y,x} G_{n,o,y,x}`;
- :math:`\partial E/\partial X`: the *full* convolution of :math:`G` dilated by the stride
  (:math:`s - 1` zeros between its entries) with the kernel rotated 180 degrees, summed over the
  output channels, then cropped by the padding :math:`p`.

The windows are read with :func:`numpy.lib.stride_tricks.sliding_window_view` and contracted
with :func:`numpy.tensordot`: no Python loop runs over the pixels.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from chainrule._checks import backward_before_forward, check_scalar
from chainrule.nn.layers import Layer
from chainrule.nn.state import take_tensor

__all__ = ["Conv2D", "Flatten", "conv2d", "conv2d_backward", "output_size", "pair"]


def pair(value, name: str, owner: str, low: int) -> tuple[int, int]:
    """An int or a pair of ints (height, width), each checked to be at least ``low``."""
    values = tuple(value) if isinstance(value, list | tuple) else (value, value)
    if len(values) != 2:
        raise ValueError(f"{owner} needs {name}= as an int or a pair (height, width); got "
                         f"{value!r}.")
    return tuple(check_scalar(v, name, owner, kind=int, low=low) for v in values)


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """:math:`\\lfloor (n + 2p - k)/s \\rfloor + 1`, the output length along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def _windows(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """The ``(n, c, h_out, w_out, kh, kw)`` windows of ``xp`` at the stride (a view)."""
    view = sliding_window_view(xp, kernel, axis=(2, 3))
    return view[:, :, :: stride[0], :: stride[1]]


def _pad(x: np.ndarray, top: int, left: int, bottom: int | None = None,
         right: int | None = None) -> np.ndarray:
    bottom = top if bottom is None else bottom
    right = left if right is None else right
    if not (top or left or bottom or right):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def conv2d(x: np.ndarray, W: np.ndarray, b: np.ndarray | None, stride=1, padding=0) -> np.ndarray:
    """The forward pass :math:`Y = X^p \\star W + b` (a cross-correlation, as PyTorch's
    ``conv2d``) of ``x`` ``(n, c, h, w)`` with ``W`` ``(out, c, kh, kw)``."""
    stride = pair(stride, "stride", "conv2d", 1)
    padding = pair(padding, "padding", "conv2d", 0)
    win = _windows(_pad(x, *padding), W.shape[2:], stride)
    y = np.tensordot(win, W, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)
    if b is not None:
        y = y + b[:, None, None]
    return np.ascontiguousarray(y)


def conv2d_backward(grad: np.ndarray, x: np.ndarray, W: np.ndarray, stride=1,
                    padding=0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""``(dX, dW, db)`` of :func:`conv2d` for :math:`G` = ``grad`` ``(n, out, h_out, w_out)``.

    :math:`dW` is the correlation of the padded input with :math:`G` at the stride;
    :math:`dX` is the full convolution of :math:`G`, dilated by the stride, with the kernel
    rotated 180 degrees (``W[:, :, ::-1, ::-1]``), summed over the output channels and cropped
    by the padding. Rows and columns of the input that no window reaches (when the stride does
    not divide :math:`h + 2p - k_h`) get zero.
    """
    (sh, sw), (ph, pw) = pair(stride, "stride", "conv2d", 1), pair(padding, "padding", "conv2d", 0)
    kh, kw = W.shape[2:]
    xp = _pad(x, ph, pw)
    n, o, ho, wo = grad.shape
    windows = _windows(xp, (kh, kw), (sh, sw))[:, :, :ho, :wo]
    dW = np.tensordot(grad, windows, axes=([0, 2, 3], [0, 2, 3]))
    db = grad.sum(axis=(0, 2, 3))
    dilated = np.zeros((n, o, (ho - 1) * sh + 1, (wo - 1) * sw + 1), dtype=grad.dtype)
    dilated[:, :, ::sh, ::sw] = grad
    # Full convolution: k - 1 zeros on each side, plus the rows the windows never reached.
    extra_h = xp.shape[2] - (dilated.shape[2] + kh - 1)
    extra_w = xp.shape[3] - (dilated.shape[3] + kw - 1)
    full = _pad(dilated, kh - 1, kw - 1, kh - 1 + extra_h, kw - 1 + extra_w)
    rotated = W[:, :, ::-1, ::-1]
    dxp = np.tensordot(_windows(full, (kh, kw), (1, 1)), rotated, axes=([1, 4, 5], [0, 2, 3]))
    dxp = dxp.transpose(0, 3, 1, 2)
    dX = dxp[:, :, ph: ph + x.shape[2], pw: pw + x.shape[3]]
    return np.ascontiguousarray(dX), dW, db


class Conv2D(Layer):
    r"""Two-dimensional convolution on ``(batch, in_channels, height, width)`` images.

    :math:`Y = X^p \star W + b`, with ``weight`` :math:`W` of shape
    ``(out_channels, in_channels, kh, kw)`` and ``bias`` of shape ``(out_channels,)``,
    PyTorch's ``nn.Conv2d`` names and layouts. The parameters are drawn as PyTorch draws them,
    :math:`\mathcal U(-1/\sqrt{\text{fan\_in}}, 1/\sqrt{\text{fan\_in}})` with
    :math:`\text{fan\_in} = c\,k_h k_w`.

    Backward (see :func:`conv2d_backward`): ``dW`` is the correlation of the input with
    :math:`G`; :math:`\partial E/\partial X` is the full convolution of :math:`G` dilated by the
    stride with the kernel rotated 180 degrees, cropped by the padding.

    Parameters
    ----------
    in_channels, out_channels : int
        The channels :math:`c` of the input and of the output.
    kernel_size : int or tuple of int
        :math:`(k_h, k_w)`; an int for a square kernel.
    stride : int or tuple of int, default 1
        The step of the kernel.
    padding : int or tuple of int, default 0
        Zeros added on each side of the height and the width.
    dtype : str or numpy.dtype, default "float32"
        The parameters' dtype (float64 for gradient checking).
    seed : int, numpy.random.Generator or None
        Where the initial parameters come from; the same seed gives the same layer.

    Examples
    --------
    >>> layer = Conv2D(1, 4, kernel_size=3, stride=2, padding=1, seed=0)
    >>> layer.forward(np.zeros((2, 1, 7, 7), np.float32)).shape
    (2, 4, 4, 4)

    >>> layer.backward(np.ones((2, 4, 4, 4), np.float32)).shape, layer.dweight.shape
    ((2, 1, 7, 7), (4, 1, 3, 3))
    """

    kind: ClassVar[str] = "Conv2D"
    input_ndim: ClassVar[int] = 4

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dtype="float32", seed: int | np.random.Generator | None = None):
        owner = "Conv2D"
        self.in_channels = check_scalar(in_channels, "in_channels", owner, kind=int, low=1)
        self.out_channels = check_scalar(out_channels, "out_channels", owner, kind=int, low=1)
        self.kernel_size = pair(kernel_size, "kernel_size", owner, 1)
        self.stride = pair(stride, "stride", owner, 1)
        self.padding = pair(padding, "padding", owner, 0)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"Conv2D needs a floating dtype; got {self.dtype}. Use float32 or "
                             "float64.")
        self.reset_parameters(np.random.default_rng(seed))
        self._x: np.ndarray | None = None

    def reset_parameters(self, rng: np.random.Generator, activation: str | None = None) -> None:
        """Draw ``weight`` and ``bias`` from :math:`\\mathcal U(\\pm 1/\\sqrt{c k_h k_w})`."""
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        self.weight = rng.uniform(-bound, bound, shape).astype(self.dtype)
        self.bias = rng.uniform(-bound, bound, self.out_channels).astype(self.dtype)
        self.dweight = np.zeros_like(self.weight)
        self.dbias = np.zeros_like(self.bias)

    def _checked(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r} expects images of shape (batch, {self.in_channels}, "
                             f"height, width); got {x.shape}.")
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
            raise ValueError(f"{self!r}: images of {x.shape[2]} x {x.shape[3]} pixels with "
                             f"padding {self.padding} are smaller than the kernel {kh} x {kw}; "
                             "use larger images, more padding= or a smaller kernel_size=.")
        return x

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = self._checked(x)
        return conv2d(self._x, self.weight, self.bias, self.stride, self.padding)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._x is None:
            raise backward_before_forward("Conv2D")
        dX, dW, db = conv2d_backward(np.asarray(grad, dtype=self.dtype), self._x, self.weight,
                                     self.stride, self.padding)
        self.dweight[...] = dW
        self.dbias[...] = db
        return dX

    def parameters(self) -> list[np.ndarray]:
        return [self.weight, self.bias]

    def gradients(self) -> list[np.ndarray]:
        return [self.dweight, self.dbias]

    def astype(self, dtype) -> Conv2D:
        """Convert the parameters (and their gradient buffers) to ``dtype``; returns self."""
        self.dtype = np.dtype(dtype)
        self.weight = self.weight.astype(self.dtype)
        self.bias = self.bias.astype(self.dtype)
        self.dweight = np.zeros_like(self.weight)
        self.dbias = np.zeros_like(self.bias)
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """``weight`` ``(out, in, kh, kw)`` and ``bias`` ``(out,)``, PyTorch's names."""
        return {"weight": self.weight, "bias": self.bias}

    def load_state_dict(self, state: dict) -> None:
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self.weight = take_tensor(state, "weight", shape, self.dtype, repr(self))
        self.bias = take_tensor(state, "bias", (self.out_channels,), self.dtype, repr(self))
        self.dweight = np.zeros_like(self.weight)
        self.dbias = np.zeros_like(self.bias)

    def get_config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride),
                "padding": list(self.padding), "dtype": self.dtype.name}

    def __repr__(self) -> str:
        def short(v):
            return v[0] if v[0] == v[1] else v

        extra = "" if self.stride == (1, 1) else f", stride={short(self.stride)}"
        extra += "" if self.padding == (0, 0) else f", padding={short(self.padding)}"
        return (f"Conv2D({self.in_channels}, {self.out_channels}, "
                f"kernel_size={short(self.kernel_size)}{extra})")


class Flatten(Layer):
    """Flatten all but the first axis: ``(batch, d1, d2, ...) -> (batch, d1 * d2 * ...)``.

    C order (PyTorch's ``nn.Flatten``); the backward reshapes the gradient back.

    Examples
    --------
    >>> layer = Flatten()
    >>> layer.forward(np.zeros((2, 3, 4, 4))).shape
    (2, 48)
    >>> layer.backward(np.ones((2, 48))).shape
    (2, 3, 4, 4)
    """

    kind: ClassVar[str] = "Flatten"

    def __init__(self):
        self._shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim < 2:
            raise ValueError(f"Flatten expects a batch (batch, ...); got shape {x.shape}.")
        self._shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._shape is None:
            raise backward_before_forward("Flatten")
        return np.asarray(grad).reshape(self._shape)

    def __repr__(self) -> str:
        return "Flatten()"
