r"""The numerical oracle of the matrix checks, in plain NumPy (float64).

A dense network :math:`H_0 = X`, :math:`Z_l = H_{l-1} W_l + b_l`, :math:`H_l = g_l(Z_l)`, its
losses (the mean over the m rows, or the sum, of the loss summed over the columns) and the
five-point central difference

.. math::

    \frac{\partial f}{\partial x} \approx
    \frac{8\,(f(x + h) - f(x - h)) - (f(x + 2h) - f(x - 2h))}{12h},

whose error is of order :math:`h^4`, so steep gradients (a BCE near :math:`\hat y = 1`) are
still resolved to about :math:`10^{-8}`. One evaluator serves both the check of a hand-written
matrix gradient (:func:`chainrule.gradient_check.check_matrix`) and the derivation engine's
checks of its own vector and matrix derivations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["HUBER_DELTA", "attention_forward", "conv2d_forward", "five_point_gradient", "forward",
           "log_softmax", "loss_value", "lstm_step", "normalization_forward", "pool_forward",
           "rnn_step", "softmax"]

#: The threshold :math:`\delta` of the Huber loss.
HUBER_DELTA = 0.5


def softmax(Z: np.ndarray) -> np.ndarray:
    """The softmax of every row of ``Z``."""
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """The log of the softmax of every row of ``Z``."""
    s = Z - Z.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def loss_value(loss: str, out: np.ndarray, T: np.ndarray, *, half: bool = False,
               mean: bool = True) -> float:
    """The loss ``loss`` of the outputs ``out`` (m×k) against the targets ``T``, summed over the
    k columns, then the mean over the m rows (the sum if not ``mean``).

    ``mse`` (with ``half``: ½ of it), ``bce``, ``ce``, ``huber``, and on logits
    ``bce_with_logits`` and ``ce_with_logits``.
    """
    if loss == "mse":
        per = np.sum((out - T) ** 2) * (0.5 if half else 1.0)
    elif loss == "bce":
        per = -np.sum(T * np.log(out) + (1.0 - T) * np.log1p(-out))
    elif loss == "ce":
        per = -np.sum(T * np.log(out))
    elif loss == "huber":
        r = np.abs(out - T)
        per = np.sum(np.where(r <= HUBER_DELTA, r**2 / 2, HUBER_DELTA * (r - HUBER_DELTA / 2)))
    elif loss == "bce_with_logits":
        per = np.sum(np.logaddexp(0.0, out) - T * out)
    elif loss == "ce_with_logits":
        per = -np.sum(T * log_softmax(out))
    else:
        raise ValueError(
            f"Unknown loss {loss!r} for the numerical oracle; use mse, bce, ce, huber, "
            "bce_with_logits or ce_with_logits."
        )
    return float(per) / out.shape[0] if mean else float(per)


def forward(
    activations: Sequence[Callable[[np.ndarray], np.ndarray]],
    X: np.ndarray,
    Ws: Sequence[np.ndarray],
    bs: Sequence[np.ndarray],
    override: tuple[str, np.ndarray] | None = None,
    first: int = 1,
) -> dict[str, np.ndarray]:
    """Every node of the forward pass, ``"H0"`` (= X), ``"W1"``, ``"b1"``, ``"Z1"``,
    ``"H1"``, ...; ``override = (node, array)`` puts ``array`` in the place of that node (a
    parameter, a pre-activation or a layer's output), for a difference quotient by it.

    From a layer ``first`` > 1 on, ``X`` is that layer's input :math:`H_{first - 1}` (or None
    when ``override`` replaces its ``Z``) and the nodes of the layers before it are left out.
    """
    over_name, over_value = override if override is not None else (None, None)
    start = f"H{first - 1}"
    H = over_value if over_name == start else X
    nodes = {start: H}
    for layer in range(first, len(activations) + 1):
        g = activations[layer - 1]
        W = over_value if over_name == f"W{layer}" else Ws[layer - 1]
        b = over_value if over_name == f"b{layer}" else bs[layer - 1]
        Z = over_value if over_name == f"Z{layer}" else H @ W + b
        H = over_value if over_name == f"H{layer}" else g(Z)
        nodes[f"W{layer}"], nodes[f"b{layer}"] = W, b
        nodes[f"Z{layer}"], nodes[f"H{layer}"] = Z, H
    return nodes


def five_point_gradient(f: Callable[[np.ndarray], float], x: np.ndarray,
                        step: float) -> np.ndarray:
    """The gradient of ``f`` by every entry of ``x`` (changed in place and restored), by the
    five-point central difference with :math:`h` = ``step`` · max(1, |x|) per entry."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        h = step * max(1.0, abs(old))
        values = []
        for k in (1, -1, 2, -2):
            x[idx] = old + k * h
            values.append(f(x))
        x[idx] = old
        g[idx] = (8 * (values[0] - values[1]) - (values[2] - values[3])) / (12 * h)
    return g


def normalization_forward(X, gamma, beta, eps, axis, X_mu=None, X_var=None, mu=None, var=None):
    r"""``(mu, var, Xhat, Y)`` of batch (``axis=0``) or layer (``axis=1``) normalization:
    :math:`\hat X = (X - \mu)/\sqrt{\sigma^2 + \epsilon}`, :math:`Y = \gamma \hat X + \beta`,
    the biased variance.

    ``X_mu`` and ``X_var`` (default ``X``) are the copies of the input the mean and the
    variance are taken of, so that a difference by each follows one path of the three;
    ``mu`` or ``var`` given are used as they are (a difference by a statistic)."""
    X_mu = X if X_mu is None else X_mu
    X_var = X if X_var is None else X_var
    if mu is None:
        mu = X_mu.mean(axis=axis, keepdims=True)
    if var is None:
        centre = X_var - X_var.mean(axis=axis, keepdims=True)
        var = (centre * centre).mean(axis=axis, keepdims=True)
    Xhat = (X - mu) / np.sqrt(var + eps)
    return mu, var, Xhat, gamma * Xhat + beta


def attention_forward(Q, K, V, causal=False, S=None, P=None):
    r"""``(S, P, O)`` of one attention head, :math:`S = QK^\top/\sqrt d`, :math:`P` the softmax
    of each row (entries above the diagonal masked out when ``causal``), :math:`O = PV`; ``S``
    or ``P`` given are used as they are (a difference by them)."""
    t = Q.shape[0]
    if P is None:
        if S is None:
            S = Q @ K.T / np.sqrt(Q.shape[1])
        scores = np.where(np.tril(np.ones((t, t), dtype=bool)), S, -np.inf) if causal else S
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        P = e / e.sum(axis=1, keepdims=True)
    return S, P, P @ V


def conv2d_forward(X, W, b, stride: int, pad: int):
    r"""The output of a convolution layer (a cross-correlation, PyTorch's ``conv2d``) of ``X``
    ``(N, C, h, w)`` with ``W`` ``(O, C, kh, kw)`` and ``b`` ``(O,)``, by a loop over the
    kernel offsets: :math:`Y_{n,o,i,j} = b_o + \sum_{c,p,q} W_{o,c,p,q}
    X^p_{n,c,si+p,sj+q}`."""
    N, C, h, w = X.shape
    kh, kw = W.shape[2:]
    Xp = np.zeros((N, C, h + 2 * pad, w + 2 * pad))
    Xp[:, :, pad: pad + h, pad: pad + w] = X
    ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    Y = np.zeros((N, W.shape[0], ho, wo)) + b[None, :, None, None]
    for p in range(kh):
        for q in range(kw):
            patch = Xp[:, :, p: p + stride * (ho - 1) + 1: stride,
                       q: q + stride * (wo - 1) + 1: stride]
            Y += np.einsum("ncij,oc->noij", patch, W[:, :, p, q])
    return Y


def pool_forward(X, kernel: tuple[int, int], stride: int, kind: str):
    """Max (``kind="max"``) or average pooling of ``X`` ``(N, C, h, w)``, no padding, by a loop
    over the offsets of the window."""
    kh, kw = kernel
    ho, wo = (X.shape[2] - kh) // stride + 1, (X.shape[3] - kw) // stride + 1
    patches = [X[:, :, p: p + stride * (ho - 1) + 1: stride, q: q + stride * (wo - 1) + 1: stride]
               for p in range(kh) for q in range(kw)]
    return np.max(patches, axis=0) if kind == "max" else np.mean(patches, axis=0)


def rnn_step(x_t, h_prev, W_ih, W_hh, b_ih, b_hh):
    r"""One step of the tanh recurrence, PyTorch's layout:
    :math:`h_t = \tanh(x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh})`."""
    return np.tanh(x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh)


def lstm_step(x_t, h_prev, c_prev, W_ih, W_hh, b_ih, b_hh, z=None, gates=None):
    r"""One LSTM step, PyTorch's layout and gate order :math:`i, f, g, o`: returns
    ``(z, (i, f, g, o), c, h)``. ``z`` (the pre-activations) or ``gates`` given are used as
    they are (a difference by them)."""
    H = h_prev.shape[1]
    if gates is None:
        if z is None:
            z = x_t @ W_ih.T + b_ih + h_prev @ W_hh.T + b_hh
        s = 1.0 / (1.0 + np.exp(-z))
        gates = (s[:, :H], s[:, H: 2 * H], np.tanh(z[:, 2 * H: 3 * H]), s[:, 3 * H:])
    i, f, g, o = gates
    c = f * c_prev + i * g
    return z, gates, c, o * np.tanh(c)
