r"""Layers with parameters: :class:`Dense` and :class:`Dropout`.

In the usual notation, a dense layer computes :math:`Z = XW + b` for a batch :math:`X` of
shape ``(m, in_features)``, with :math:`W` of shape ``(in_features, out_features)``. Its backward
pass, given :math:`G = \partial E / \partial Z`, is the chain rule three times over:

.. math::

    \frac{\partial E}{\partial W} = X^\top G, \qquad
    \frac{\partial E}{\partial b} = \mathbf{1}^\top G, \qquad
    \frac{\partial E}{\partial X} = G W^\top .

The last one is what carries the error back to the earlier layers.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from chainrule._checks import backward_before_forward, check_scalar

__all__ = ["INITIALIZERS", "Dense", "Dropout", "Layer", "initialize"]


class Layer:
    """Base class of the layers: ``forward``, ``backward``, parameters and their gradients.

    Examples
    --------
    A layer caches what its backward pass needs; ``backward`` returns the gradient of the
    input and leaves the gradients of the parameters beside them:

    >>> from chainrule.nn import Dense, Layer
    >>> layer = Dense(3, 2, dtype="float64", seed=0)
    >>> isinstance(layer, Layer)
    True
    >>> x = np.ones((4, 3))
    >>> layer.forward(x).shape, layer.backward(np.ones((4, 2))).shape
    ((4, 2), (4, 3))
    >>> [p.shape for p in layer.parameters()], [g.shape for g in layer.gradients()]
    ([(3, 2), (2,)], [(3, 2), (2,)])
    """

    training: bool = True

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def parameters(self) -> list[np.ndarray]:
        return []

    def gradients(self) -> list[np.ndarray]:
        return []

    def get_config(self) -> dict:
        return {}


def _glorot_limit(fan_in: int, fan_out: int) -> float:
    return math.sqrt(6.0 / (fan_in + fan_out))


# Each initializer draws a (fan_in, fan_out) matrix from ``rng``; the variances are the papers':
# Glorot & Bengio (2010) 2 / (fan_in + fan_out), He et al. (2015) 2 / fan_in, LeCun 1 / fan_in.
INITIALIZERS = {
    "glorot_uniform": lambda rng, i, o: rng.uniform(
        -_glorot_limit(i, o), _glorot_limit(i, o), (i, o)
    ),
    "glorot_normal": lambda rng, i, o: rng.normal(0.0, math.sqrt(2.0 / (i + o)), (i, o)),
    "he_uniform": lambda rng, i, o: rng.uniform(-math.sqrt(6.0 / i), math.sqrt(6.0 / i), (i, o)),
    "he_normal": lambda rng, i, o: rng.normal(0.0, math.sqrt(2.0 / i), (i, o)),
    "lecun_normal": lambda rng, i, o: rng.normal(0.0, math.sqrt(1.0 / i), (i, o)),
    "zeros": lambda rng, i, o: np.zeros((i, o)),
}

# "auto" picks by the activation that follows the layer.
_AUTO_INIT = {
    "relu": "he_uniform",
    "leaky_relu": "he_uniform",
    "elu": "he_uniform",
    "gelu": "he_uniform",
    "silu": "he_uniform",
    "mish": "he_uniform",
    "selu": "lecun_normal",
}


def initialize(init: str, activation: str | None = None) -> str:
    """Resolve an initializer name; ``"auto"`` is He for the ReLU family, LeCun for SELU,
    Glorot otherwise."""
    if init == "auto":
        return _AUTO_INIT.get(activation or "", "glorot_uniform")
    if init not in INITIALIZERS:
        known = ", ".join(["auto", *INITIALIZERS])
        raise ValueError(f"Unknown initializer {init!r}; choose one of: {known}.")
    return init


class Dense(Layer):
    r"""Fully connected layer :math:`Z = XW + b`.

    Parameters are ``W`` (``in_features x out_features``) and ``b`` (``out_features``); after
    :meth:`backward`, ``dW`` and ``db`` hold :math:`\partial E/\partial W = X^\top G` and
    :math:`\partial E/\partial b = \mathbf{1}^\top G`.

    ``init`` names an initializer (:data:`INITIALIZERS`) or ``"auto"``, which a
    :class:`~chainrule.nn.Sequential` resolves by the activation that follows: He for the ReLU
    family, LeCun normal for SELU, Glorot uniform otherwise. ``dtype`` is float32 by default (the
    speed of the field); use float64 for gradient checking.

    Parameters
    ----------
    in_features, out_features : int
        The widths of :math:`X`'s rows and of :math:`Z`'s.
    init : str, default "auto"
        A key of :data:`INITIALIZERS`, or "auto".
    bias : bool, default True
        Whether :math:`b` is used.
    dtype : str or numpy.dtype, default "float32"
        The parameters' dtype (float64 for gradient checking).
    seed : int, numpy.random.Generator or None
        Where the initial parameters come from; the same seed gives the same layer.

    Examples
    --------
    >>> layer = Dense(3, 2, seed=0)
    >>> layer.forward(np.ones((4, 3), dtype=np.float32)).shape
    (4, 2)

    >>> layer = Dense(3, 2, dtype="float64", seed=0)
    >>> X, G = np.ones((4, 3)), np.ones((4, 2))
    >>> _ = layer.forward(X)
    >>> dX = layer.backward(G)  # and dW = X^T G, db = 1^T G
    >>> bool(np.allclose(layer.dW, X.T @ G)), layer.db, bool(np.allclose(dX, G @ layer.W.T))
    (True, array([4., 4.]), True)
    """

    kind: ClassVar[str] = "Dense"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        init: str = "auto",
        bias: bool = True,
        dtype="float32",
        seed: int | np.random.Generator | None = None,
    ):
        self.in_features = check_scalar(in_features, "in_features", "Dense", kind=int, low=1)
        self.out_features = check_scalar(out_features, "out_features", "Dense", kind=int, low=1)
        initialize(init)  # validates the name
        self.init = init
        self.bias = bool(bias)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(
                f"Dense needs a floating dtype; got {self.dtype}. Use float32 or float64."
            )
        self.W = np.empty((self.in_features, self.out_features), dtype=self.dtype)
        self.b = np.zeros(self.out_features, dtype=self.dtype) if self.bias else None
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b) if self.bias else None
        self._x: np.ndarray | None = None
        self._ones: np.ndarray | None = None  # the 1 of 1^T G, kept for the next batch
        self.reset_parameters(np.random.default_rng(seed))

    def reset_parameters(self, rng: np.random.Generator, activation: str | None = None) -> None:
        """Draw ``W`` from the initializer (``"auto"`` resolved for ``activation``); zero ``b``."""
        name = initialize(self.init, activation)
        self.W[...] = INITIALIZERS[name](rng, self.in_features, self.out_features)
        if self.b is not None:
            self.b[...] = 0.0

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"Dense({self.in_features}, {self.out_features}) expects input of shape "
                f"(m, {self.in_features}); got {x.shape}."
            )
        self._x = x
        z = x @ self.W
        if self.b is not None:
            z += self.b
        return z

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        r"""Store :math:`\partial E/\partial W = X^\top G` and
        :math:`\partial E/\partial b = \mathbf{1}^\top G`; return
        :math:`\partial E/\partial X = G W^\top` (skipped when ``need_input_grad`` is False)."""
        if self._x is None:
            raise backward_before_forward("Dense")
        np.matmul(self._x.T, grad, out=self.dW)
        if self.b is not None:
            # 1^T G as a matrix-vector product: several times faster than sum(axis=0) here
            ones = self._ones
            if ones is None or ones.shape[0] != grad.shape[0] or ones.dtype != grad.dtype:
                ones = self._ones = np.ones(grad.shape[0], dtype=grad.dtype)
            np.matmul(ones, grad, out=self.db)
        return grad @ self.W.T if need_input_grad else None

    def parameters(self) -> list[np.ndarray]:
        return [self.W, self.b] if self.b is not None else [self.W]

    def gradients(self) -> list[np.ndarray]:
        return [self.dW, self.db] if self.b is not None else [self.dW]

    def astype(self, dtype) -> Dense:
        """Convert parameters (and gradient buffers) to ``dtype`` in place; returns self."""
        self.dtype = np.dtype(dtype)
        self.W = self.W.astype(self.dtype)
        self.dW = np.zeros_like(self.W)
        if self.b is not None:
            self.b = self.b.astype(self.dtype)
            self.db = np.zeros_like(self.b)
        return self

    def get_config(self) -> dict:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "init": self.init,
            "bias": self.bias,
            "dtype": self.dtype.name,
        }

    def __repr__(self) -> str:
        extra = "" if self.bias else ", bias=False"
        return f"Dense({self.in_features}, {self.out_features}{extra})"


class Dropout(Layer):
    r"""Inverted dropout: zero each unit with probability ``p`` in training, scale the rest.

    The kept units are scaled by :math:`1/(1-p)`, so evaluation (which passes the input through
    unchanged) needs no rescaling.

    Backward multiplies by the same mask: :math:`\partial E/\partial x = G \odot M / (1-p)`.

    Parameters
    ----------
    p : float, default 0.5
        The probability of zeroing a unit, in :math:`[0, 1)`.
    seed : int, numpy.random.Generator or None
        Where the masks come from; the same seed gives the same masks.

    Examples
    --------
    >>> layer = Dropout(0.5, seed=0)
    >>> layer.forward(np.ones((1, 6)))  # kept units scaled by 1/(1 - p) = 2
    array([[0., 2., 2., 2., 0., 0.]])
    >>> layer.backward(np.ones((1, 6)))  # the same mask
    array([[0., 2., 2., 2., 0., 0.]])
    >>> layer.training = False  # evaluation passes the input through
    >>> layer.forward(np.ones((1, 6)))
    array([[1., 1., 1., 1., 1., 1.]])
    """

    kind: ClassVar[str] = "Dropout"

    def __init__(self, p: float = 0.5, seed: int | np.random.Generator | None = None):
        self.p = check_scalar(p, "p", "Dropout", low=0.0, high=1.0, high_open=True)
        self.rng = np.random.default_rng(seed)
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        keep = 1.0 - self.p
        mask = self.rng.random(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64)
        mask = (mask < keep).astype(x.dtype)
        mask *= 1.0 / keep
        self._mask = mask
        return x * mask

    def backward(self, grad: np.ndarray) -> np.ndarray:
        return grad if self._mask is None else grad * self._mask

    def get_config(self) -> dict:
        return {"p": self.p}

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"
