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

The windows are copied once into columns (im2col, one copy per offset of the window) and
multiplied by the kernel in one matrix product for the batch; the backward pass is two matrix
products and the adjoint of im2col. No Python loop runs over the pixels.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
from numpy.lib.stride_tricks import as_strided

from chainrule._checks import backward_before_forward, check_scalar
from chainrule.nn.layers import Layer
from chainrule.nn.state import take_tensor

__all__ = ["Conv2D", "Flatten", "conv2d", "conv2d_backward", "offsets", "output_size", "pair"]


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


def _pad(x: np.ndarray, top: int, left: int) -> np.ndarray:
    if not (top or left):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, top), (left, left)))


def offsets(kernel: tuple[int, int], stride: tuple[int, int], out: tuple[int, int]):
    """``(i, j, rows, cols)`` for each offset of a window: the slices of the (padded) input that
    the entries at offset ``(i, j)`` of all the windows read."""
    (kh, kw), (sh, sw), (ho, wo) = kernel, stride, out
    for i in range(kh):
        for j in range(kw):
            yield i, j, slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw)


class _Layout:
    """Where the columns of :func:`_im2col` sit: window ``(y, x)`` at position
    ``y * pitch + x`` of ``span`` positions. At stride 1 the pitch is the padded width, so the
    entries at one offset of every window are one contiguous run of the flattened image (the
    ``pitch - w_out`` positions at the end of each row are windows that wrap around the edge;
    they are computed and dropped); at a larger stride the pitch is ``w_out``."""

    def __init__(self, shape: tuple[int, ...], kernel, stride, padding):
        self.kernel, self.stride, self.padding = tuple(kernel), tuple(stride), tuple(padding)
        self.hp, self.wp = shape[2] + 2 * padding[0], shape[3] + 2 * padding[1]
        self.ho = (self.hp - kernel[0]) // stride[0] + 1
        self.wo = (self.wp - kernel[1]) // stride[1] + 1
        self.contiguous = self.stride == (1, 1)
        self.pitch = self.wp if self.contiguous else self.wo
        self.span = (self.ho - 1) * self.pitch + self.wo

    def to_image(self, y: np.ndarray) -> np.ndarray:
        """``(o, n * span)`` results as C-ordered ``(n, o, h_out, w_out)`` maps."""
        o, n = len(y), y.shape[1] // self.span
        item = y.strides[1]
        view = as_strided(y, (n, o, self.ho, self.wo),
                          (self.span * item, y.strides[0], self.pitch * item, item),
                          writeable=False)
        return np.ascontiguousarray(view)

    def from_image(self, g: np.ndarray) -> np.ndarray:
        """``(n, o, h_out, w_out)`` maps as ``(o, n * span)``, zero at the dropped windows."""
        n, o = g.shape[:2]
        wide = np.zeros((o, n, self.ho * self.pitch), dtype=g.dtype)
        wide.reshape(o, n, self.ho, self.pitch)[..., : self.wo] = g.transpose(1, 0, 2, 3)
        return wide[..., : self.span].reshape(o, n * self.span)


def _im2col(x: np.ndarray, lay: _Layout) -> np.ndarray:
    """The windows of the padded ``x`` as columns, ``(c * kh * kw, n * span)``: the "im2col" of
    Chellapilla, Puri & Simard (2006), so that the convolution of the whole batch is one matrix
    product with the kernel as an ``(out, c * kh * kw)`` matrix. One copy per offset of the
    window (contiguous runs at stride 1), never a loop over the pixels."""
    xp = _pad(x, *lay.padding)
    n, c = x.shape[:2]
    (kh, kw) = lay.kernel
    cols = np.empty((c, kh, kw, n, lay.span), dtype=x.dtype)
    if lay.contiguous:
        flat = np.ascontiguousarray(xp).reshape(n, c, lay.hp * lay.wp).transpose(1, 0, 2)
        for i in range(kh):
            for j in range(kw):
                start = i * lay.wp + j
                cols[:, i, j] = flat[:, :, start: start + lay.span]
    else:
        grid = cols.reshape(c, kh, kw, n, lay.ho, lay.wo)
        for i, j, rows, columns in offsets(lay.kernel, lay.stride, (lay.ho, lay.wo)):
            grid[:, i, j] = xp[:, :, rows, columns].transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * lay.span)


def _col2im(dcols: np.ndarray, x_shape: tuple[int, ...], lay: _Layout) -> np.ndarray:
    """The adjoint of :func:`_im2col`: each column's gradient added back onto the pixels its
    window read, then the padding cropped. One addition per offset of the window."""
    n, c, h, w = x_shape
    (kh, kw), (ph, pw) = lay.kernel, lay.padding
    d = dcols.reshape(c, kh, kw, n, lay.span)
    dxp = np.zeros((n, c, lay.hp, lay.wp), dtype=dcols.dtype)
    if lay.contiguous:
        flat = dxp.reshape(n, c, lay.hp * lay.wp).transpose(1, 0, 2)
        for i in range(kh):
            for j in range(kw):
                start = i * lay.wp + j
                flat[:, :, start: start + lay.span] += d[:, i, j]
    else:
        grid = d.reshape(c, kh, kw, n, lay.ho, lay.wo)
        for i, j, rows, columns in offsets(lay.kernel, lay.stride, (lay.ho, lay.wo)):
            dxp[:, :, rows, columns] += grid[:, i, j].transpose(1, 0, 2, 3)
    return dxp[:, :, ph: ph + h, pw: pw + w]


def conv2d(x: np.ndarray, W: np.ndarray, b: np.ndarray | None, stride=1, padding=0) -> np.ndarray:
    """The forward pass :math:`Y = X^p \\star W + b` (a cross-correlation, as PyTorch's
    ``conv2d``) of ``x`` ``(n, c, h, w)`` with ``W`` ``(out, c, kh, kw)``: the kernel as an
    ``(out, c k_h k_w)`` matrix times the batch's windows as columns (im2col)."""
    stride = pair(stride, "stride", "conv2d", 1)
    padding = pair(padding, "padding", "conv2d", 0)
    lay = _Layout(x.shape, W.shape[2:], stride, padding)
    return _conv(_im2col(x, lay), W, b, lay)


def _conv(cols: np.ndarray, W: np.ndarray, b: np.ndarray | None, lay: _Layout) -> np.ndarray:
    """``W`` times the columns of every image, as ``(n, out, h_out, w_out)`` maps."""
    y = W.reshape(len(W), -1) @ cols
    if b is not None:
        y += b[:, None]
    return lay.to_image(y)


def conv2d_backward(grad: np.ndarray, x: np.ndarray, W: np.ndarray, stride=1, padding=0,
                    cols: np.ndarray | None = None, need_input_grad: bool = True
                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    r"""``(dX, dW, db)`` of :func:`conv2d` for :math:`G` = ``grad`` ``(n, out, h_out, w_out)``.

    With the batch's windows as columns :math:`C` (im2col; ``cols`` when the forward pass kept
    them) and :math:`G` as an ``(out, n h_out w_out)`` matrix, :math:`dW = G C^\top`,
    :math:`db = G \mathbf 1` and the gradient of the columns is :math:`W^\top G`; col2im adds
    each column back onto the pixels of its window.
    This is the full convolution of :math:`G`, dilated by the stride, with the kernel rotated
    180 degrees, cropped by the padding; rows and columns of the input that no window reaches
    get zero. ``need_input_grad=False`` skips :math:`dX` (returned as None).
    """
    stride, padding = pair(stride, "stride", "conv2d", 1), pair(padding, "padding", "conv2d", 0)
    lay = _Layout(x.shape, W.shape[2:], stride, padding)
    o, ho, wo = grad.shape[1:]
    if (ho, wo) != (lay.ho, lay.wo):  # fewer windows (a pass at another stride): the first
        grad = np.pad(grad, ((0, 0), (0, 0), (0, max(lay.ho - ho, 0)), (0, max(lay.wo - wo, 0))))
        grad = grad[:, :, : lay.ho, : lay.wo]
    if cols is None:
        cols = _im2col(x, lay)
    g = lay.from_image(grad)
    dW = (g @ cols.T).reshape(W.shape)
    db = grad.sum(axis=(0, 2, 3))
    if not need_input_grad:
        return None, dW, db
    dcols = W.reshape(o, -1).T @ g
    return _col2im(dcols, x.shape, lay), dW, db


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
        layout = _Layout(self._x.shape, self.kernel_size, self.stride, self.padding)
        self._cols = _im2col(self._x, layout)
        return _conv(self._cols, self.weight, self.bias, layout)

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
