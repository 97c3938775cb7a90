r"""Normalization layers: :class:`BatchNorm` and :class:`LayerNorm`.

Both standardize their input and then scale and shift it by learned :math:`\gamma, \beta`:

.. math::

    \mu = \frac{1}{m}\sum_i x_i, \qquad \sigma^2 = \frac{1}{m}\sum_i (x_i - \mu)^2, \qquad
    \hat x_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad y_i = \gamma \hat x_i + \beta .

They differ in what the :math:`m` values are: batch normalization (Ioffe & Szegedy, 2015,
arXiv:1502.03167) takes one feature across the samples of the batch, layer normalization (Ba,
Kiros & Hinton, 2016, arXiv:1607.06450) takes the features of one sample. Given
:math:`G = \partial E/\partial y`, the backward pass of both is, over the same :math:`m` values,

.. math::

    D = \frac{\partial E}{\partial \hat x} = G \gamma, \qquad
    \frac{\partial E}{\partial x} = \frac{1}{\sqrt{\sigma^2 + \epsilon}}
        \big(D - \operatorname{mean}(D) - \hat x \operatorname{mean}(D \odot \hat x)\big),

the two means being the gradient through :math:`\mu` and through :math:`\sigma^2`. Both layers
read their features on the last axis, so they apply to ``(m, features)`` rows and to
``(batch, time, features)`` sequences alike.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from chainrule._checks import backward_before_forward, check_scalar
from chainrule.nn.layers import Layer
from chainrule.nn.state import take_tensor

__all__ = ["BatchNorm", "LayerNorm"]


class _Normalization(Layer):
    """What both layers share: ``num_features``, ``eps``, :math:`\\gamma` and :math:`\\beta`."""

    kind: ClassVar[str] = ""

    def __init__(self, num_features: int, eps: float, dtype):
        owner = type(self).__name__
        self.num_features = check_scalar(num_features, "num_features", owner, kind=int, low=1)
        self.eps = check_scalar(eps, "eps", owner, low=0.0, low_open=True)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"{owner} needs a floating dtype; got {self.dtype}. Use float32 or "
                             "float64.")
        self.gamma = np.ones(self.num_features, dtype=self.dtype)
        self.beta = np.zeros(self.num_features, dtype=self.dtype)
        self.dgamma = np.zeros_like(self.gamma)
        self.dbeta = np.zeros_like(self.beta)
        self._xhat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None

    def _checked(self, x: np.ndarray, ndims: tuple[int, ...]) -> np.ndarray:
        if x.ndim not in ndims or x.shape[-1] != self.num_features:
            n = self.num_features
            shapes = " or ".join({1: f"({n},)", 2: f"(m, {n})", 3: f"(batch, time, {n})"}[d]
                                 for d in ndims)
            raise ValueError(f"{self!r} expects input of shape {shapes}: the features on the "
                             f"last axis; got {x.shape}.")
        return x

    def parameters(self) -> list[np.ndarray]:
        return [self.gamma, self.beta]

    def gradients(self) -> list[np.ndarray]:
        return [self.dgamma, self.dbeta]

    def astype(self, dtype):
        """Convert the parameters (and their gradient buffers) to ``dtype``; returns self."""
        self.dtype = np.dtype(dtype)
        for name in self._tensor_attributes():
            setattr(self, name, getattr(self, name).astype(self.dtype))
        self.dgamma = np.zeros_like(self.gamma)
        self.dbeta = np.zeros_like(self.beta)
        return self

    def _tensor_attributes(self) -> tuple[str, ...]:
        return ("gamma", "beta")

    def state_dict(self) -> dict[str, np.ndarray]:
        """``weight`` (:math:`\\gamma`) and ``bias`` (:math:`\\beta`), PyTorch's names."""
        return {"weight": self.gamma, "bias": self.beta}

    def load_state_dict(self, state: dict) -> None:
        shape = (self.num_features,)
        self.gamma = take_tensor(state, "weight", shape, self.dtype, repr(self))
        self.beta = take_tensor(state, "bias", shape, self.dtype, repr(self))
        self.dgamma = np.zeros_like(self.gamma)
        self.dbeta = np.zeros_like(self.beta)


class BatchNorm(_Normalization):
    r"""Batch normalization over the samples of the batch, one feature at a time.

    In training (``model.train()``, the default) each feature is standardized with the mean
    and the biased variance of the batch, and the running statistics move towards them as in
    PyTorch's ``BatchNorm1d``:

    .. math::

        \text{running} \leftarrow (1 - \text{momentum})\,\text{running}
            + \text{momentum}\,\text{batch statistic},

    with the unbiased variance :math:`\frac{m}{m-1}\sigma^2` for ``running_var``
    (``momentum=None`` takes the plain average of all batches so far). In evaluation
    (``model.eval()``) the running statistics standardize instead, and the layer is a fixed
    affine map. Input ``(m, features)`` or ``(batch, time, features)``: for sequences the
    statistics run over batch and time, one per feature of the last axis (PyTorch's
    ``BatchNorm1d`` reads ``(batch, features, time)``, the features on axis 1).

    Backward in training, :math:`G = \partial E/\partial y` over the :math:`m` values of a
    feature, :math:`\mathbf 1^\top` summing over them:

    .. math::

        \frac{\partial E}{\partial \gamma} = \mathbf 1^\top (G \odot \hat X), \quad
        \frac{\partial E}{\partial \beta} = \mathbf 1^\top G, \quad
        \frac{\partial E}{\partial X} = \frac{\gamma}{\sqrt{\sigma^2 + \epsilon}}
            \big(G - \operatorname{mean}(G) - \hat X \operatorname{mean}(G \odot \hat X)\big);

    in evaluation :math:`\partial E/\partial X = G\,\gamma / \sqrt{\text{running\_var} + \epsilon}`.
    Model files hold ``weight``, ``bias``, ``running_mean``, ``running_var`` and
    ``num_batches_tracked``, PyTorch's names.

    Parameters
    ----------
    num_features : int
        The features of the last axis, each with its own :math:`\gamma`, :math:`\beta`.
    eps : float, default 1e-5
        :math:`\epsilon`, added to the variance.
    momentum : float or None, default 0.1
        The weight of each batch in the running statistics; None for their plain average.
    dtype : str or numpy.dtype, default "float32"
        The parameters' dtype (float64 for gradient checking).

    Examples
    --------
    >>> layer = BatchNorm(2, dtype="float64")
    >>> layer.forward(np.array([[1.0, 10.0], [3.0, 30.0]]))   # mean 2, 20; variance 1, 100
    array([[-0.999995  , -0.99999995],
           [ 0.999995  ,  0.99999995]])

    >>> dX = layer.backward(np.array([[1.0, 2.0], [3.0, 4.0]]))
    >>> layer.dbeta, layer.dgamma.round(4)  # 1^T G and 1^T (G * Xhat)
    (array([4., 6.]), array([2., 2.]))
    """

    kind: ClassVar[str] = "BatchNorm"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 dtype="float32"):
        super().__init__(num_features, eps, dtype)
        self.momentum = check_scalar(momentum, "momentum", "BatchNorm", low=0.0, high=1.0,
                                     allow_none=True)
        self.running_mean = np.zeros(self.num_features, dtype=self.dtype)
        self.running_var = np.ones(self.num_features, dtype=self.dtype)
        self.num_batches_tracked = 0
        self._batch_statistics = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        rows = self._checked(x, (2, 3)).reshape(-1, self.num_features)
        if self.training:
            if len(rows) < 2:
                raise ValueError(self._single_value(x.shape))
            mean = rows.mean(axis=0)
            centered = rows - mean
            var = np.mean(centered * centered, axis=0)
            self._update_running(mean, var, len(rows))
        else:
            centered = rows - self.running_mean
            var = self.running_var
        self._inv_std = 1.0 / np.sqrt(var + self.eps)
        self._xhat = centered * self._inv_std
        self._batch_statistics = self.training
        return (self._xhat * self.gamma + self.beta).reshape(x.shape)

    def _update_running(self, mean: np.ndarray, var: np.ndarray, m: int) -> None:
        self.num_batches_tracked += 1
        f = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum
        self.running_mean *= 1.0 - f
        self.running_mean += f * mean
        self.running_var *= 1.0 - f
        self.running_var += (f * m / (m - 1)) * var

    def _single_value(self, shape) -> str:
        return (f"{self!r} in training needs more than one value per feature to take batch "
                f"statistics; got input of shape {shape}, one value each (the batch would "
                "normalize to 0). Train on batches of 2 or more samples (a batch_size that leaves "
                "no last batch of 1), or call model.eval() to use the running statistics.")

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._xhat is None:
            raise backward_before_forward("BatchNorm")
        xhat = self._xhat
        g = grad.reshape(xhat.shape)
        dgamma = np.sum(g * xhat, axis=0)
        dbeta = np.sum(g, axis=0)
        self.dgamma[...] = dgamma
        self.dbeta[...] = dbeta
        scale = self.gamma * self._inv_std
        if not self._batch_statistics:
            return (g * scale).reshape(grad.shape)
        m = len(g)
        dx = scale * (g - dbeta / m - xhat * (dgamma / m))
        return dx.reshape(grad.shape)

    def _tensor_attributes(self) -> tuple[str, ...]:
        return ("gamma", "beta", "running_mean", "running_var")

    def state_dict(self) -> dict[str, np.ndarray]:
        """PyTorch's names: ``weight``, ``bias``, ``running_mean``, ``running_var`` and
        ``num_batches_tracked`` (int64, a scalar)."""
        return {**super().state_dict(), "running_mean": self.running_mean,
                "running_var": self.running_var,
                "num_batches_tracked": np.array(self.num_batches_tracked, dtype=np.int64)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        shape = (self.num_features,)
        self.running_mean = take_tensor(state, "running_mean", shape, self.dtype, repr(self))
        running_var = take_tensor(state, "running_var", shape, self.dtype, repr(self))
        if (running_var < 0).any():
            raise ValueError(f"{self!r}: tensor 'running_var' holds a negative variance, "
                             f"{running_var.min():g}.")
        self.running_var = running_var
        tracked = np.asarray(state.get("num_batches_tracked", 0))
        if tracked.shape != () or tracked.dtype.kind not in "iu" or tracked < 0:
            raise ValueError(f"{self!r}: tensor 'num_batches_tracked' must be a non-negative "
                             f"integer scalar; got dtype {tracked.dtype}, shape {tracked.shape}.")
        self.num_batches_tracked = int(tracked)

    def get_config(self) -> dict:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "dtype": self.dtype.name}

    def __repr__(self) -> str:
        extra = "" if self.eps == 1e-5 else f", eps={self.eps:g}"
        extra += "" if self.momentum == 0.1 else f", momentum={self.momentum}"
        return f"BatchNorm({self.num_features}{extra})"


class LayerNorm(_Normalization):
    r"""Layer normalization over the features of each sample (the last axis).

    Every sample (and every time step of a sequence) is standardized with its own mean and
    biased variance, in training and evaluation alike, so there are no running statistics and
    a batch of one sample is fine. PyTorch's ``LayerNorm(num_features)``.

    Backward, with :math:`G = \partial E/\partial y` and the means over the features of a
    sample (:math:`\gamma` varies along them, so it enters inside):

    .. math::

        \frac{\partial E}{\partial \gamma} = \textstyle\sum_{\text{samples}} G \odot \hat x, \quad
        \frac{\partial E}{\partial \beta} = \textstyle\sum_{\text{samples}} G, \quad
        \frac{\partial E}{\partial x} = \frac{1}{\sqrt{\sigma^2 + \epsilon}}
            \big(D - \operatorname{mean}(D) - \hat x \operatorname{mean}(D \odot \hat x)\big),
            \ D = G \odot \gamma .

    Parameters
    ----------
    num_features : int
        The features of the last axis, each with its own :math:`\gamma`, :math:`\beta`.
    eps : float, default 1e-5
        :math:`\epsilon`, added to the variance.
    dtype : str or numpy.dtype, default "float32"
        The parameters' dtype (float64 for gradient checking).

    Examples
    --------
    >>> LayerNorm(2, dtype="float64").forward(np.array([[1.0, 3.0]]))   # mean 2, variance 1
    array([[-0.999995,  0.999995]])

    >>> layer = LayerNorm(3, dtype="float64")
    >>> _ = layer.forward(np.array([[1.0, 2.0, 4.0]]))
    >>> dx = layer.backward(np.ones((1, 3)))
    >>> bool(np.allclose(dx, 0.0))  # a shift of every output changes nothing
    True
    """

    kind: ClassVar[str] = "LayerNorm"

    def __init__(self, num_features: int, eps: float = 1e-5, dtype="float32"):
        super().__init__(num_features, eps, dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._checked(x, (1, 2, 3))
        centered = x - x.mean(axis=-1, keepdims=True)
        var = np.mean(centered * centered, axis=-1, keepdims=True)
        self._inv_std = 1.0 / np.sqrt(var + self.eps)
        self._xhat = centered * self._inv_std
        return self._xhat * self.gamma + self.beta

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._xhat is None:
            raise backward_before_forward("LayerNorm")
        xhat = self._xhat
        self.dgamma[...] = np.sum((grad * xhat).reshape(-1, self.num_features), axis=0)
        self.dbeta[...] = np.sum(grad.reshape(-1, self.num_features), axis=0)
        d = grad * self.gamma
        mean_d = d.mean(axis=-1, keepdims=True)
        mean_dx = np.mean(d * xhat, axis=-1, keepdims=True)
        return self._inv_std * (d - mean_d - xhat * mean_dx)

    def get_config(self) -> dict:
        return {"num_features": self.num_features, "eps": self.eps, "dtype": self.dtype.name}

    def __repr__(self) -> str:
        extra = "" if self.eps == 1e-5 else f", eps={self.eps:g}"
        return f"LayerNorm({self.num_features}{extra})"
