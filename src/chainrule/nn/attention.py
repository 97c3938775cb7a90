r"""Multi-head self-attention (Vaswani et al., 2017, "Attention is all you need", section 3.2).

For a sequence :math:`X` of :math:`t` steps of :math:`d` features, each of the :math:`h` heads
takes its :math:`d_k = d/h` columns of the projections :math:`Q = XW_Q + b_Q`,
:math:`K = XW_K + b_K`, :math:`V = XW_V + b_V` and computes

.. math::

    S = \frac{Q K^\top}{\sqrt{d_k}} \;(+M), \qquad P = \operatorname{softmax}_{\text{rows}}(S),
    \qquad O = P V ;

the heads' :math:`O` side by side are projected once more, :math:`Y = [O_1 \dots O_h] W_O + b_O`.
The causal mask :math:`M` is :math:`-\infty` above the diagonal, so step :math:`i` attends to
steps :math:`j \le i` only. Backward, from :math:`\partial E/\partial O` per head (each product
is the matrix rule for :math:`C = AB`: :math:`\partial A = \partial C\,B^\top`,
:math:`\partial B = A^\top \partial C`):

.. math::

    \partial V = P^\top \partial O, \qquad \partial P = \partial O\, V^\top, \qquad
    \partial S = P \odot \big(\partial P - \operatorname{rowsum}(\partial P \odot P)\big),

    \partial Q = \frac{\partial S\, K}{\sqrt{d_k}}, \qquad
    \partial K = \frac{\partial S^\top Q}{\sqrt{d_k}} .

The third is the softmax Jacobian :math:`\operatorname{diag}(p) - pp^\top` applied to each row;
a masked entry has :math:`P = 0`, so it gets no gradient.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from chainrule._checks import backward_before_forward, check_scalar
from chainrule._numerics import softmax
from chainrule.nn.layers import INITIALIZERS, Layer
from chainrule.nn.state import take_tensor

__all__ = ["MultiHeadAttention"]


class MultiHeadAttention(Layer):
    r"""Multi-head self-attention over ``(batch, time, d_model)`` sequences.

    ``MultiHeadAttention(d_model, num_heads, causal=False)``: ``num_heads`` must divide
    ``d_model``. Parameters, in the layout of :class:`~chainrule.nn.Dense` (:math:`Z = XW + b`):
    ``W_qkv`` ``(d_model, 3 d_model)`` (the columns of :math:`W_Q`, :math:`W_K`, :math:`W_V`
    side by side), ``b_qkv``, ``W_out`` ``(d_model, d_model)`` and ``b_out``; after
    :meth:`backward`, ``dW_qkv``, ``db_qkv``, ``dW_out``, ``db_out`` hold their gradients.
    Model files use the names and the ``(out, in)`` layout of PyTorch's
    ``torch.nn.MultiheadAttention(d_model, num_heads, batch_first=True)``: ``in_proj_weight``,
    ``in_proj_bias``, ``out_proj.weight``, ``out_proj.bias``. The input projection starts
    Glorot-uniform (as PyTorch's), the output projection too, the biases at zero.

    All heads and samples go through batched matrix products on 4-D arrays
    ``(batch, heads, time, d_k)``; the softmax is max-shifted, so scores of any size stay finite.

    Parameters
    ----------
    d_model : int
        The width of each step, in and out.
    num_heads : int, default 1
        The heads, each of width ``d_model // num_heads``.
    causal : bool, default False
        Whether step :math:`s` attends only to the steps up to :math:`s`.
    dtype : str or numpy.dtype, default "float32"
        The parameters' dtype (float64 for gradient checking).
    seed : int, numpy.random.Generator or None
        Where the initial parameters come from; the same seed gives the same layer.

    Examples
    --------
    >>> layer = MultiHeadAttention(8, num_heads=2, causal=True, seed=0)
    >>> layer.forward(np.zeros((3, 5, 8), dtype=np.float32)).shape
    (3, 5, 8)
    """

    kind: ClassVar[str] = "MultiHeadAttention"
    input_ndim: ClassVar[int] = 3

    def __init__(self, d_model: int, num_heads: int = 1, causal: bool = False, dtype="float32",
                 seed: int | np.random.Generator | None = None):
        owner = "MultiHeadAttention"
        self.d_model = check_scalar(d_model, "d_model", owner, kind=int, low=1)
        self.num_heads = check_scalar(num_heads, "num_heads", owner, kind=int, low=1)
        if self.d_model % self.num_heads:
            raise ValueError(
                f"MultiHeadAttention needs num_heads to divide d_model (each head takes d_model "
                f"/ num_heads features); got d_model={self.d_model}, num_heads={self.num_heads}."
                f" Choose num_heads among {_divisors(self.d_model)}."
            )
        if not isinstance(causal, bool | np.bool_):
            raise ValueError(f"The 'causal' parameter of MultiHeadAttention must be True or False;"
                             f" got {causal!r}.")
        self.causal = bool(causal)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"MultiHeadAttention needs a floating dtype; got {self.dtype}. Use "
                             "float32 or float64.")
        d = self.d_model
        self.W_qkv = np.empty((d, 3 * d), dtype=self.dtype)
        self.b_qkv = np.zeros(3 * d, dtype=self.dtype)
        self.W_out = np.empty((d, d), dtype=self.dtype)
        self.b_out = np.zeros(d, dtype=self.dtype)
        self._zero_gradients()
        self._cache: tuple | None = None
        self.reset_parameters(np.random.default_rng(seed))

    @property
    def d_k(self) -> int:
        return self.d_model // self.num_heads

    def reset_parameters(self, rng: np.random.Generator) -> None:
        """Draw both projections Glorot-uniform from ``rng``; zero the biases."""
        d = self.d_model
        self.W_qkv[...] = INITIALIZERS["glorot_uniform"](rng, d, 3 * d)
        self.W_out[...] = INITIALIZERS["glorot_uniform"](rng, d, d)
        self.b_qkv[...] = 0.0
        self.b_out[...] = 0.0

    def _zero_gradients(self) -> None:
        self.dW_qkv, self.db_qkv = np.zeros_like(self.W_qkv), np.zeros_like(self.b_qkv)
        self.dW_out, self.db_out = np.zeros_like(self.W_out), np.zeros_like(self.b_out)

    # --- forward and backward --------------------------------------------------------------------

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 3 or x.shape[-1] != self.d_model or x.shape[1] == 0:
            raise ValueError(f"{self!r} expects input of shape (batch, time, {self.d_model}) "
                             f"with time >= 1; got {x.shape}.")
        b, t, d = x.shape
        rows = x.reshape(b * t, d)
        qkv = rows @ self.W_qkv + self.b_qkv
        # (b*t, 3d) -> (3, b, heads, t, d_k): head j takes columns j*d_k ... (j+1)*d_k - 1
        q, k, v = qkv.reshape(b, t, 3, self.num_heads, self.d_k).transpose(2, 0, 3, 1, 4)
        scale = 1.0 / math.sqrt(self.d_k)
        s = (q @ k.swapaxes(-1, -2)) * scale
        if self.causal:
            s[..., _above_diagonal(t)] = -np.inf
        p = softmax(s, axis=-1, out=s)
        o = p @ v
        heads = o.transpose(0, 2, 1, 3).reshape(b * t, d)  # heads side by side
        self._cache = (rows, q, k, v, p, heads, x.shape)
        return (heads @ self.W_out + self.b_out).reshape(b, t, d)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        r"""Store the four parameter gradients; return :math:`\partial E/\partial X`."""
        if self._cache is None:
            raise backward_before_forward("MultiHeadAttention")
        rows, q, k, v, p, heads, shape = self._cache
        b, t, d = shape
        g = grad.reshape(b * t, d)
        self.dW_out[...] = heads.T @ g
        self.db_out[...] = g.sum(axis=0)
        do = (g @ self.W_out.T).reshape(b, t, self.num_heads, self.d_k).transpose(0, 2, 1, 3)
        dv = p.swapaxes(-1, -2) @ do
        dp = do @ v.swapaxes(-1, -2)
        ds = p * (dp - np.sum(dp * p, axis=-1, keepdims=True))
        scale = 1.0 / math.sqrt(self.d_k)
        dq = (ds @ k) * scale
        dk = (ds.swapaxes(-1, -2) @ q) * scale
        # (3, b, heads, t, d_k) -> (b*t, 3d), the layout of qkv in forward
        dqkv = np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4).reshape(b * t, 3 * d)
        self.dW_qkv[...] = rows.T @ dqkv
        self.db_qkv[...] = dqkv.sum(axis=0)
        return (dqkv @ self.W_qkv.T).reshape(shape)

    # --- parameters and files --------------------------------------------------------------------

    def parameters(self) -> list[np.ndarray]:
        return [self.W_qkv, self.b_qkv, self.W_out, self.b_out]

    def gradients(self) -> list[np.ndarray]:
        return [self.dW_qkv, self.db_qkv, self.dW_out, self.db_out]

    def astype(self, dtype) -> MultiHeadAttention:
        """Convert the parameters (and their gradient buffers) to ``dtype``; returns self."""
        self.dtype = np.dtype(dtype)
        for name in ("W_qkv", "b_qkv", "W_out", "b_out"):
            setattr(self, name, getattr(self, name).astype(self.dtype))
        self._zero_gradients()
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """PyTorch's names and ``(out, in)`` layout."""
        return {"in_proj_weight": np.ascontiguousarray(self.W_qkv.T), "in_proj_bias": self.b_qkv,
                "out_proj.weight": np.ascontiguousarray(self.W_out.T),
                "out_proj.bias": self.b_out}

    def load_state_dict(self, state: dict) -> None:
        d, owner, dtype = self.d_model, repr(self), self.dtype
        self.W_qkv = take_tensor(state, "in_proj_weight", (3 * d, d), dtype, owner).T.copy()
        self.b_qkv = take_tensor(state, "in_proj_bias", (3 * d,), dtype, owner)
        self.W_out = take_tensor(state, "out_proj.weight", (d, d), dtype, owner).T.copy()
        self.b_out = take_tensor(state, "out_proj.bias", (d,), dtype, owner)
        self._zero_gradients()

    def get_config(self) -> dict:
        return {"d_model": self.d_model, "num_heads": self.num_heads, "causal": self.causal,
                "dtype": self.dtype.name}

    def __repr__(self) -> str:
        causal = ", causal=True" if self.causal else ""
        return f"MultiHeadAttention({self.d_model}, num_heads={self.num_heads}{causal})"


def _above_diagonal(t: int) -> np.ndarray:
    """The (t, t) mask of the entries j > i: the future steps a causal step must not see."""
    return np.triu(np.ones((t, t), dtype=bool), k=1)


def _divisors(n: int) -> str:
    small = [k for k in range(1, math.isqrt(n) + 1) if n % k == 0]
    return ", ".join(str(k) for k in sorted({*small, *(n // k for k in small)}))
