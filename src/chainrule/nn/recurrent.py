r"""Recurrent layers on sequences ``(batch, time, features)``: :class:`RNN` (tanh) and
:class:`LSTM`, each returning every step's hidden state, ``(batch, time, hidden_size)``.

Both start from :math:`h_0 = 0` (and :math:`c_0 = 0`) and use PyTorch's parameters:
``weight_ih_l0`` ``(G, input_size)``, ``weight_hh_l0`` ``(G, hidden_size)``, ``bias_ih_l0`` and
``bias_hh_l0`` ``(G,)``, with :math:`G = H` for the RNN and :math:`G = 4H` for the LSTM, whose
gates are stacked in PyTorch's order :math:`i, f, g, o`. A step's pre-activation is
:math:`z_t = x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}`.

Backward is backpropagation through time (Werbos, 1990): going from the last step to the first,
the hidden state :math:`h_t` receives the gradient of its own output *and* the gradient that
step :math:`t+1` sends back through :math:`W_{hh}`,

.. math::

    \frac{\partial E}{\partial h_t} = G_t + \frac{\partial E}{\partial z_{t+1}} W_{hh},

and every step adds its share to the gradients of the shared weights:
:math:`\partial E/\partial W_{ih} = \sum_t \delta_t^\top x_t`,
:math:`\partial E/\partial W_{hh} = \sum_t \delta_t^\top h_{t-1}`, both biases
:math:`\sum_t \mathbf 1^\top \delta_t`, with :math:`\delta_t = \partial E/\partial z_t`.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from chainrule._checks import backward_before_forward, check_scalar
from chainrule._numerics import sigmoid
from chainrule.nn.layers import Layer
from chainrule.nn.state import take_tensor

__all__ = ["LSTM", "RNN"]

_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


class _Recurrent(Layer):
    """Parameters, their files and the loop of backpropagation through time."""

    kind: ClassVar[str] = ""
    input_ndim: ClassVar[int] = 3
    gates: ClassVar[int] = 1

    def __init__(self, input_size: int, hidden_size: int, dtype="float32",
                 seed: int | np.random.Generator | None = None):
        owner = type(self).__name__
        self.input_size = check_scalar(input_size, "input_size", owner, kind=int, low=1)
        self.hidden_size = check_scalar(hidden_size, "hidden_size", owner, kind=int, low=1)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"{owner} needs a floating dtype; got {self.dtype}. Use float32 or "
                             "float64.")
        self.reset_parameters(np.random.default_rng(seed))
        self._cache: dict | None = None

    def _shapes(self) -> tuple[tuple[int, ...], ...]:
        g, h = self.gates * self.hidden_size, self.hidden_size
        return (g, self.input_size), (g, h), (g,), (g,)

    def reset_parameters(self, rng: np.random.Generator, activation: str | None = None) -> None:
        """Every parameter from :math:`\\mathcal U(\\pm 1/\\sqrt{H})`, as PyTorch draws them."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for name, shape in zip(_NAMES, self._shapes(), strict=True):
            setattr(self, name, rng.uniform(-bound, bound, shape).astype(self.dtype))
        self._zero_gradients()

    def _zero_gradients(self) -> None:
        self.grads = {name: np.zeros_like(getattr(self, name)) for name in _NAMES}

    def _checked(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[2] != self.input_size or x.shape[1] < 1:
            raise ValueError(f"{self!r} expects sequences of shape (batch, time, "
                             f"{self.input_size}) with at least one step; got {x.shape}.")
        return x

    def _pre(self, x_t: np.ndarray, h: np.ndarray) -> np.ndarray:
        return (x_t @ self.weight_ih_l0.T + self.bias_ih_l0 + h @ self.weight_hh_l0.T
                + self.bias_hh_l0)

    def _accumulate(self, dz: np.ndarray, x_t: np.ndarray, h_prev: np.ndarray):
        """Add step t's share to the parameter gradients; return (dx_t, dh_prev)."""
        self.grads["weight_ih_l0"] += dz.T @ x_t
        self.grads["weight_hh_l0"] += dz.T @ h_prev
        db = dz.sum(axis=0)
        self.grads["bias_ih_l0"] += db
        self.grads["bias_hh_l0"] += db
        return dz @ self.weight_ih_l0, dz @ self.weight_hh_l0

    def parameters(self) -> list[np.ndarray]:
        return [getattr(self, name) for name in _NAMES]

    def gradients(self) -> list[np.ndarray]:
        return [self.grads[name] for name in _NAMES]

    def astype(self, dtype):
        """Convert the parameters (and their gradient buffers) to ``dtype``; returns self."""
        self.dtype = np.dtype(dtype)
        for name in _NAMES:
            setattr(self, name, getattr(self, name).astype(self.dtype))
        self._zero_gradients()
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """PyTorch's names: ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``."""
        return {name: getattr(self, name) for name in _NAMES}

    def load_state_dict(self, state: dict) -> None:
        for name, shape in zip(_NAMES, self._shapes(), strict=True):
            setattr(self, name, take_tensor(state, name, shape, self.dtype, repr(self)))
        self._zero_gradients()

    def get_config(self) -> dict:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size,
                "dtype": self.dtype.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size})"


class RNN(_Recurrent):
    r"""Elman recurrent layer :math:`h_t = \tanh(z_t)` over ``(batch, time, features)``.

    PyTorch's ``nn.RNN``, one layer, ``batch_first=True``. Backward through time with
    :math:`\delta_t = (G_t + \delta_{t+1} W_{hh}) \odot (1 - h_t^2)`.

    Parameters
    ----------
    input_size : int
        The features of each step of the input.
    hidden_size : int
        The width of :math:`h_t`.
    dtype : str or numpy.dtype, default "float32"
        The parameters' dtype (float64 for gradient checking).
    seed : int, numpy.random.Generator or None
        Where the initial parameters come from; the same seed gives the same layer.

    Examples
    --------
    >>> RNN(3, 5, seed=0).forward(np.zeros((2, 4, 3), np.float32)).shape
    (2, 4, 5)

    >>> layer = RNN(3, 5, dtype="float64", seed=0)
    >>> _ = layer.forward(np.ones((2, 4, 3)))
    >>> layer.backward(np.ones((2, 4, 5))).shape  # dE/dX, through time
    (2, 4, 3)
    """

    kind: ClassVar[str] = "RNN"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._checked(x)
        h = np.zeros((len(x), self.hidden_size), dtype=np.result_type(x, self.dtype))
        hs = []
        for t in range(x.shape[1]):
            h = np.tanh(self._pre(x[:, t], h))
            hs.append(h)
        out = np.stack(hs, axis=1)
        self._cache = {"x": x, "h": out}
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise backward_before_forward("RNN")
        x, hs = self._cache["x"], self._cache["h"]
        self._zero_gradients()
        dx = np.zeros(x.shape, dtype=hs.dtype)
        dh_next = np.zeros_like(hs[:, 0])
        for t in reversed(range(x.shape[1])):
            h_prev = hs[:, t - 1] if t else np.zeros_like(dh_next)
            dz = (grad[:, t] + dh_next) * (1.0 - hs[:, t] ** 2)
            dx[:, t], dh_next = self._accumulate(dz, x[:, t], h_prev)
        return dx


class LSTM(_Recurrent):
    r"""Long short-term memory (Hochreiter & Schmidhuber, 1997) over ``(batch, time, features)``.

    PyTorch's ``nn.LSTM``, one layer, ``batch_first=True``. With :math:`z_t` split into the
    gates :math:`i, f, g, o`:

    .. math::

        c_t = \sigma(f) \odot c_{t-1} + \sigma(i) \odot \tanh(g), \qquad
        h_t = \sigma(o) \odot \tanh(c_t).

    Backward through time: the cell state carries a second path,
    :math:`\partial E/\partial c_t = \partial E/\partial h_t \odot \sigma(o)(1 - \tanh^2 c_t)
    + \partial E/\partial c_{t+1} \odot \sigma(f_{t+1})`, beside the hidden state's.

    Parameters
    ----------
    input_size : int
        The features of each step of the input.
    hidden_size : int
        The width of :math:`h_t` and :math:`c_t`.
    dtype : str or numpy.dtype, default "float32"
        The parameters' dtype (float64 for gradient checking).
    seed : int, numpy.random.Generator or None
        Where the initial parameters come from; the same seed gives the same layer.

    Examples
    --------
    >>> LSTM(3, 5, seed=0).forward(np.zeros((2, 4, 3), np.float32)).shape
    (2, 4, 5)
    """

    kind: ClassVar[str] = "LSTM"
    gates: ClassVar[int] = 4

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._checked(x)
        n, steps, hsize = len(x), x.shape[1], self.hidden_size
        dtype = np.result_type(x, self.dtype)
        h = np.zeros((n, hsize), dtype=dtype)
        c = np.zeros_like(h)
        keep = {k: [] for k in ("i", "f", "g", "o", "c", "h")}
        for t in range(steps):
            z = self._pre(x[:, t], h)
            i, f, o = (sigmoid(z[:, k * hsize: (k + 1) * hsize]) for k in (0, 1, 3))
            g = np.tanh(z[:, 2 * hsize: 3 * hsize])
            c = f * c + i * g
            h = o * np.tanh(c)
            for k, v in zip("ifgoch", (i, f, g, o, c, h), strict=True):
                keep[k].append(v)
        self._cache = {"x": x, **{k: np.stack(v, axis=1) for k, v in keep.items()}}
        return self._cache["h"]

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise backward_before_forward("LSTM")
        s = self._cache
        x, hs, cs = s["x"], s["h"], s["c"]
        self._zero_gradients()
        dx = np.zeros(x.shape, dtype=hs.dtype)
        dh_next = np.zeros_like(hs[:, 0])
        dc_next = np.zeros_like(dh_next)
        for t in reversed(range(x.shape[1])):
            i, f, g, o = s["i"][:, t], s["f"][:, t], s["g"][:, t], s["o"][:, t]
            tanh_c = np.tanh(cs[:, t])
            c_prev = cs[:, t - 1] if t else np.zeros_like(dc_next)
            h_prev = hs[:, t - 1] if t else np.zeros_like(dh_next)
            dh = grad[:, t] + dh_next
            dc = dh * o * (1.0 - tanh_c ** 2) + dc_next
            dz = np.concatenate([dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f),
                                 dc * i * (1.0 - g ** 2), dh * tanh_c * o * (1.0 - o)], axis=1)
            dc_next = dc * f
            dx[:, t], dh_next = self._accumulate(dz, x[:, t], h_prev)
        return dx
