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

The windows are read with :func:`numpy.lib.stride_tricks.sliding_window_view`, copied once into
rows (im2col) and multiplied by the kernel in one matrix product; the backward pass is two
matrix products and the adjoint of im2col. No Python loop runs over the pixels.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from chainrule._checks import backward_before_forward, check_scalar
from chainrule.nn.layers import Layer
from chainrule.nn.state import take_tensor

__all__ = ["Conv2D", "Flatten", "col2im", "conv2d", "conv2d_backward", "im2col", "output_size",
           "pair"]


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


def _pad(x: np.ndarray, top: int, left: int) -> np.ndarray:
    if not (top or left):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, top), (left, left)))


def im2col(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
           padding: tuple[int, int]) -> np.ndarray:
    """The windows of the padded ``x`` as rows: ``(n, h_out, w_out, c * kh * kw)``, one copy
    (the "im2col" of Chellapilla, Puri & Simard, 2006), so that the convolution is one matrix
    product with the kernel as a ``(out, c * kh * kw)`` matrix."""
    win = _windows(_pad(x, *padding), kernel, stride)  # (n, c, ho, wo, kh, kw), a view
    n, c, ho, wo, kh, kw = win.shape
    cols = np.empty((n, ho, wo, c, kh, kw), dtype=x.dtype)
    cols[...] = win.transpose(0, 2, 3, 1, 4, 5)
    return cols.reshape(n, ho, wo, c * kh * kw)


def col2im(dcols: np.ndarray, x_shape: tuple[int, ...], kernel: tuple[int, int],
           stride: tuple[int, int], padding: tuple[int, int]) -> np.ndarray:
    """The adjoint of :func:`im2col`: each window's gradient ``(n, h_out, w_out, c*kh*kw)``
    added back onto the pixels it was read from, then the padding cropped. The loop runs over
    the :math:`k_h k_w` offsets of a window, never over the pixels."""
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = dcols.shape[1:3]
    d = dcols.reshape(n, ho, wo, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)  # (n, c, kh, kw, ho, wo)
    dxp = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i: i + sh * (ho - 1) + 1: sh, j: j + sw * (wo - 1) + 1: sw] += d[:, :, i, j]
    return dxp[:, :, ph: ph + h, pw: pw + w]


def _as_nchw(rows: np.ndarray) -> np.ndarray:
    """``(n, h, w, c)`` rows of a matrix product as a C-contiguous ``(n, c, h, w)`` array."""
    return np.ascontiguousarray(rows.transpose(0, 3, 1, 2))


def conv2d(x: np.ndarray, W: np.ndarray, b: np.ndarray | None, stride=1, padding=0) -> np.ndarray:
    """The forward pass :math:`Y = X^p \\star W + b` (a cross-correlation, as PyTorch's
    ``conv2d``) of ``x`` ``(n, c, h, w)`` with ``W`` ``(out, c, kh, kw)``: the windows as rows
    (:func:`im2col`) times :math:`W^\\top` as a ``(c k_h k_w, out)`` matrix."""
    stride = pair(stride, "stride", "conv2d", 1)
    padding = pair(padding, "padding", "conv2d", 0)
    cols = im2col(x, W.shape[2:], stride, padding)
    y = cols @ W.reshape(len(W), -1).T
    if b is not None:
        y += b
    return _as_nchw(y)


def conv2d_backward(grad: np.ndarray, x: np.ndarray, W: np.ndarray, stride=1, padding=0,
                    cols: np.ndarray | None = None, need_input_grad: bool = True
                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    r"""``(dX, dW, db)`` of :func:`conv2d` for :math:`G` = ``grad`` ``(n, out, h_out, w_out)``.

    With the windows as rows :math:`C` (:func:`im2col`; ``cols`` when the forward pass kept
    them) and :math:`G` as a ``(n h_out w_out, out)`` matrix, :math:`dW = G^\top C`,
    :math:`db = \mathbf 1^\top G` and the gradient of the rows is :math:`G W`; :func:`col2im`
    adds each row back onto the pixels of its window. This is the full convolution of
    :math:`G`, dilated by the stride, with the kernel rotated 180 degrees, cropped by the
    padding; rows and columns of the input that no window reaches get zero.
    ``need_input_grad=False`` skips :math:`dX` (returned as None).
    """
    stride, padding = pair(stride, "stride", "conv2d", 1), pair(padding, "padding", "conv2d", 0)
    kernel = W.shape[2:]
    n, o, ho, wo = grad.shape
    if cols is None:  # the windows that produced grad (the first ho x wo: the catalogue's
        # planted mistakes hand in a grad of another stride)
        cols = np.ascontiguousarray(im2col(x, kernel, stride, padding)[:, :ho, :wo])
    g = np.ascontiguousarray(grad.transpose(0, 2, 3, 1)).reshape(-1, o)
    dW = (g.T @ cols.reshape(len(g), -1)).reshape(W.shape)
    db = grad.sum(axis=(0, 2, 3))
    if not need_input_grad:
        return None, dW, db
    dcols = (g @ W.reshape(o, -1)).reshape(n, ho, wo, -1)
    return col2im(dcols, x.shape, kernel, stride, padding), dW, db


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

    >>> layer = Conv2D(1, 4, kernel_size=3, stride=2, padding=1, seed=0)
    >>> layer.forward(np.zeros((2, 1, 7, 7), np.float32)).shape
    (2, 4, 4, 4)
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
        self._cols: np.ndarray | None = None

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
        self._cols = im2col(self._x, self.kernel_size, self.stride, self.padding)
        y = self._cols @ self.weight.reshape(self.out_channels, -1).T
        y += self.bias
        return _as_nchw(y)

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        if self._x is None:
            raise backward_before_forward("Conv2D")
        dX, dW, db = conv2d_backward(np.asarray(grad, dtype=self.dtype), self._x, self.weight,
                                     self.stride, self.padding, self._cols, need_input_grad)
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
    """``(batch, d1, d2, ...) -> (batch, d1 * d2 * ...)``, C order (PyTorch's ``nn.Flatten``);
    the backward reshapes the gradient back."""

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
