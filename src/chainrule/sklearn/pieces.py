"""The pieces the estimators are built from: the names they accept, the Poisson loss, the
first layer for sparse input, the L2 term's step, and scikit-learn's conventions."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from chainrule import losses as _losses
from chainrule import optim as _optim
from chainrule.nn import activations as _act
from chainrule.nn.layers import Dense

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)


__all__ = ["HIDDEN_ACTIVATIONS", "NON_FINITE", "SOLVERS", "L2Step", "PoissonLogLink",
           "SparseInputDense", "keep_params", "training_arrays", "validate_data"]

#: Names accepted by ``activation``: every elementwise chainrule activation and its aliases
#: (scikit-learn's "identity", "logistic", "tanh" and "relu" among them).
HIDDEN_ACTIVATIONS: frozenset[str] = frozenset(
    {name for name, cls in _act.ACTIVATIONS.items() if cls.elementwise}
    | {alias for alias, name in _act.ALIASES.items() if _act.ACTIVATIONS[name].elementwise}
)

#: ``solver`` -> the chainrule optimizer class it builds; None for "lbfgs", which hands the
#: full-batch objective and its gradient to SciPy's L-BFGS-B instead of taking steps itself.
SOLVERS: dict[str, type[_optim.Optimizer] | None] = {
    "sgd": _optim.SGD,
    "adam": _optim.Adam,
    "adamw": _optim.AdamW,
    "rmsprop": _optim.RMSprop,
    "lbfgs": None,
}

# scikit-learn's first sentence when a fit diverges (its own tests look for it).
NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large "
               "values and need to be preprocessed. ")


class PoissonLogLink(_losses.Loss):
    r"""Half Poisson deviance on the log of the predicted mean, :math:`\hat y = e^{z}`.

    .. math::

        \ell_i = \sum_k \bigl(e^{z_{ik}} - y_{ik} z_{ik} + y_{ik}\log y_{ik} - y_{ik}\bigr),
        \qquad \frac{\partial \ell_i}{\partial z_{ik}} = e^{z_{ik}} - y_{ik},

    scikit-learn's ``loss="poisson"`` (the :math:`y\log y - y` term only makes the minimum 0).
    """

    name = "poisson"
    from_logits = True

    def _forward(self, pred, target):
        mu = np.exp(pred)
        safe = np.where(target > 0, target, 1.0)
        elem = mu - target * pred + target * np.log(safe) - target  # y log y = 0 at y = 0
        self._mu, self._target = mu, target
        return self._reduce(elem)

    def _backward(self):
        grad = self._mu - self._target
        if self.reduction == "mean":
            grad /= grad.shape[0]
        return grad


class L2Step:
    r"""An optimizer front that adds the penalty's gradient :math:`c\,W_l` (with
    :math:`c = \alpha / \sum_{i \in B} s_i`, set before each batch) to each weight matrix's
    gradient, then takes the wrapped optimizer's step. Intercepts are not penalized."""

    def __init__(self, optimizer: _optim.Optimizer, positions: list[int]):
        self.optimizer = optimizer
        self.positions = positions
        self.coef = 0.0
        self._scratch: dict[int, np.ndarray] = {}

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        if self.coef:
            for i in self.positions:
                buf = self._scratch.get(i)
                if buf is None or buf.shape != params[i].shape or buf.dtype != params[i].dtype:
                    buf = self._scratch[i] = np.empty_like(params[i])
                np.multiply(params[i], self.coef, out=buf)
                grads[i] += buf
        self.optimizer.step(params, grads)


class SparseInputDense(Dense):
    r"""The first Dense layer when X is a SciPy sparse matrix: :math:`Z = XW + b` and
    :math:`\partial E/\partial W = X^\top G` as sparse-dense products (the sparse batch is never
    densified). It shares ``W``, ``b`` and their gradients with the layer it replaces."""

    @classmethod
    def replacing(cls, layer: Dense) -> SparseInputDense:
        new = cls(layer.in_features, layer.out_features, dtype=layer.dtype, seed=0)
        new.W, new.b, new.dW, new.db = layer.W, layer.b, layer.dW, layer.db
        return new

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        self.dW[...] = self._x.T @ grad
        if self.b is not None:
            np.sum(grad, axis=0, out=self.db)
        return grad @ self.W.T if need_input_grad else None


def keep_params(estimator, arguments: dict) -> None:
    """Store every ``__init__`` argument under its own name, unchanged (scikit-learn's rule for
    estimators: ``__init__`` only records its parameters; ``fit`` validates them)."""
    for name, value in arguments.items():
        if name != "self":
            setattr(estimator, name, value)


def training_arrays(X, Y, sw, dtype: np.dtype):
    """X, Y and the sample weights in the training dtype (CSR for sparse X; label indices
    stay integers)."""
    if sp.issparse(X):
        X = X.tocsr().astype(dtype)
    else:
        X = np.ascontiguousarray(X, dtype=dtype)
    Y = np.ascontiguousarray(Y, dtype=np.int64 if Y.dtype.kind in "iu" else dtype)
    if sw is not None:
        sw = np.ascontiguousarray(sw, dtype=dtype)
    return X, Y, sw
