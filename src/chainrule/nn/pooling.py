r"""Pooling on images: :class:`MaxPool2D` and :class:`AvgPool2D`, ``(batch, channels, h, w)``.

Each window of :math:`k_h \times k_w` pixels (every :math:`s` pixels, no padding; the stride is
the window by default, as in PyTorch) gives one output. Backward, with
:math:`G = \partial E/\partial Y`:

- max pooling: :math:`\partial E/\partial X` receives :math:`G_{y,x}` at the arg-max of window
  :math:`(y, x)` only (the first one on a tie, as PyTorch), zero elsewhere in the window; the
  arg-max is found in the backward pass, as the first entry equal to the window's maximum;
- average pooling: every entry of the window receives :math:`G_{y,x} / (k_h k_w)`.

Overlapping windows (a stride below the window) add their contributions. The loop runs over the
:math:`k_h k_w` offsets of a window (one strided view of the input each), never over the
pixels.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from chainrule._checks import backward_before_forward
from chainrule.nn.conv import offsets, pair
from chainrule.nn.layers import Layer

__all__ = ["AvgPool2D", "MaxPool2D"]


class _Pool2D(Layer):
    """What both pools share: the window, the stride, the windows of the input."""

    kind: ClassVar[str] = ""
    input_ndim: ClassVar[int] = 4

    def __init__(self, kernel_size, stride=None):
        owner = type(self).__name__
        self.kernel_size = pair(kernel_size, "kernel_size", owner, 1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", owner, 1)
        self._x_shape: tuple[int, ...] | None = None

    def _slices(self, x: np.ndarray):
        """``(t, slice)``: for each offset ``t`` of a window, the ``(n, c, h_out, w_out)``
        strided view of the entries at that offset in every window."""
        x = np.asarray(x)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if x.ndim != 4 or x.shape[2] < kh or x.shape[3] < kw:
            raise ValueError(f"{self!r} expects images (batch, channels, height, width) of at "
                             f"least {kh} x {kw} pixels; got shape {x.shape}.")
        self._x_shape = x.shape
        ho, wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
        return [(t, x[:, :, rows, cols])
                for t, (_, _, rows, cols) in enumerate(offsets((kh, kw), (sh, sw), (ho, wo)))]

    def _spread(self, grad: np.ndarray, share) -> np.ndarray:
        """Add ``grad * share(t)`` back onto the entries at offset ``t`` of every window."""
        if self._x_shape is None:
            raise backward_before_forward(type(self).__name__)
        dx = np.zeros(self._x_shape, dtype=np.result_type(grad, np.float32))
        overlap = self.stride[0] < self.kernel_size[0] or self.stride[1] < self.kernel_size[1]
        for t, view in self._slices(dx):
            if overlap:
                view += grad * share(t)
            else:  # each entry of dx is in one window at most
                np.multiply(grad, share(t), out=view, casting="unsafe")
        return dx

    def get_config(self) -> dict:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride)}

    def __repr__(self) -> str:
        k, s = self.kernel_size, self.stride
        extra = "" if s == k else f", stride={s[0] if s[0] == s[1] else s}"
        return f"{type(self).__name__}({k[0] if k[0] == k[1] else k}{extra})"


class MaxPool2D(_Pool2D):
    r"""Max pooling: the largest entry of each window of ``(batch, channels, height, width)``.

    Its gradient goes to that entry (the first on a tie, as PyTorch's ``MaxPool2d``); the other
    entries of the window get none from it.

    Parameters
    ----------
    kernel_size : int or tuple of int
        The window :math:`(k_h, k_w)`; an int for a square one.
    stride : int, tuple of int or None
        The step between windows; None for ``kernel_size`` (windows that do not overlap).

    Examples
    --------
    >>> MaxPool2D(2).forward(np.arange(16.0).reshape(1, 1, 4, 4))
    array([[[[ 5.,  7.],
             [13., 15.]]]])

    >>> layer = MaxPool2D(2)
    >>> _ = layer.forward(np.array([[[[1.0, 3.0], [2.0, 0.0]]]]))
    >>> layer.backward(np.array([[[[5.0]]]]))  # all of G to the maximum
    array([[[[0., 5.],
             [0., 0.]]]])
    """

    kind: ClassVar[str] = "MaxPool2D"

    def __init__(self, kernel_size, stride=None):
        super().__init__(kernel_size, stride)
        self._views: list | None = None
        self._y: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._views = self._slices(x)
        (_, first), *rest = self._views
        y = first.copy()
        for _, view in rest:
            np.maximum(y, view, out=y)  # propagates NaN, as PyTorch's max pooling
        self._y = y
        return y

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._x_shape is None:
            raise backward_before_forward("MaxPool2D")
        grad, y = np.asarray(grad), self._y
        nan = np.isnan(y)
        nan = nan if nan.any() else None
        taken = np.zeros(y.shape, dtype=bool)
        winners = []  # the first entry of each window equal to its maximum (or its first NaN)
        for _, view in self._views:
            hit = view == y
            if nan is not None:
                hit |= nan & np.isnan(view)
            hit &= ~taken
            taken |= hit
            winners.append(hit)
        return self._spread(grad, lambda t: winners[t])


class AvgPool2D(_Pool2D):
    r"""Average pooling: the mean of each window of ``(batch, channels, height, width)``.

    Each entry of the window receives :math:`G / (k_h k_w)` (PyTorch's ``AvgPool2d`` without
    padding).

    Parameters
    ----------
    kernel_size : int or tuple of int
        The window :math:`(k_h, k_w)`; an int for a square one.
    stride : int, tuple of int or None
        The step between windows; None for ``kernel_size`` (windows that do not overlap).

    Examples
    --------
    >>> AvgPool2D(2).forward(np.arange(16.0).reshape(1, 1, 4, 4))
    array([[[[ 2.5,  4.5],
             [10.5, 12.5]]]])

    >>> layer = AvgPool2D(2)
    >>> _ = layer.forward(np.zeros((1, 1, 2, 2)))
    >>> layer.backward(np.array([[[[4.0]]]]))  # G / (k_h k_w) to each entry
    array([[[[1., 1.],
             [1., 1.]]]])
    """

    kind: ClassVar[str] = "AvgPool2D"

    def forward(self, x: np.ndarray) -> np.ndarray:
        (_, first), *rest = self._slices(x)
        total = first.astype(np.result_type(first, np.float32))
        for _, view in rest:
            total += view
        return total / np.asarray(self.kernel_size[0] * self.kernel_size[1], total.dtype)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        grad = np.asarray(grad)
        size = self.kernel_size[0] * self.kernel_size[1]
        return self._spread(grad / np.asarray(size, dtype=grad.dtype), lambda t: 1)
