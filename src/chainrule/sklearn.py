r"""scikit-learn estimators trained by chainrule: :class:`MLPClassifier` and :class:`MLPRegressor`.

Drop-in replacements for ``sklearn.neural_network.MLPClassifier`` and ``MLPRegressor``: the same
parameter names and meanings, the same fitted attributes (``coefs_``, ``loss_curve_``, ``t_``,
...), the same warnings, validated by scikit-learn's own constraint machinery. They go further
where scikit-learn's module is frozen: every chainrule activation (GELU, SiLU, ELU, ...),
``dropout``, ``class_weight``, the solvers ``"adamw"`` and ``"rmsprop"``, a Huber loss, float32
training of float64 data (``dtype="float32"``), and saving to chainrule's safetensors model files.

>>> from sklearn.datasets import load_iris
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from chainrule.sklearn import MLPClassifier
>>> X, y = load_iris(return_X_y=True)
>>> clf = make_pipeline(StandardScaler(), MLPClassifier((32,), activation="gelu", max_iter=300,
...                                                     random_state=0)).fit(X, y)
>>> clf.score(X, y) > 0.95
True

The objective
-------------
Each mini-batch :math:`B` minimizes scikit-learn's objective: the mean loss plus an L2 penalty
on the weight matrices (not the intercepts), divided by the batch size,

.. math::

    J_B = \frac{1}{|B|}\sum_{i\in B} \ell_i + \frac{\alpha}{2|B|}\sum_l \lVert W_l\rVert_F^2,
    \qquad
    \frac{\partial J_B}{\partial W_l} = \frac{1}{|B|}\Bigl(\sum_{i\in B}
        \frac{\partial \ell_i}{\partial W_l} + \alpha W_l\Bigr).

With ``sample_weight`` :math:`s_i`, :math:`|B|` becomes :math:`\sum_{i\in B} s_i` and
:math:`\ell_i` becomes :math:`s_i\ell_i`, so an integer weight acts like repeating the sample.
The output activation is fused with its loss (softmax + cross-entropy, sigmoid + binary
cross-entropy, identity + half squared error, exp + half Poisson deviance): backpropagation
starts from :math:`\partial \ell/\partial z = \hat y - y` at the raw scores :math:`z`.

``loss_`` and ``loss_curve_`` report :math:`J` over the epoch as scikit-learn does (for
regression, the squared error averaged over the outputs too).

``solver="lbfgs"`` minimizes the same objective over the whole training set at once: the
parameters flattened into one vector (every weight matrix, then every intercept), the loss and
its gradient from chainrule's forward and backward pass, handed to
``scipy.optimize.minimize(method="L-BFGS-B")`` with ``maxiter=max_iter``, ``maxfun=max_fun`` and
``gtol=tol``; a ConvergenceWarning names the reason when it stops short.

Where chainrule differs
-----------------------
- Weights start from chainrule's initializers (He for the ReLU family, Glorot otherwise) with
  zero intercepts; scikit-learn draws both from a Glorot uniform.
- Training runs in X's dtype, as scikit-learn's (or in ``dtype`` when it is given); predictions
  are computed in float64 from the weights and returned in the dtype NumPy gives X's and the
  weights' together (float32 only when both are).
- Samples with zero weight are dropped before training: they teach nothing.
- With ``solver="lbfgs"``, ``loss_curve_`` holds the objective after each L-BFGS iteration
  (scikit-learn's lbfgs leaves it unset), and for several regression outputs the objective
  L-BFGS sees sums the outputs' squared errors, so that it agrees with its gradient (the gradient
  both libraries follow); ``loss_`` still averages them.
- ``predict_proba`` never reports an exact 0 (an underflow gives ``np.finfo(dtype).tiny``), so
  ``predict_log_proba``, its logarithm, stays finite.
- A divergence ends the fit as scikit-learn's does: with ``early_stopping`` the
  validation scores turn NaN and the best epoch's weights are restored; without it, the error
  "Solver produced non-finite parameter weights" comes at the first non-finite loss, not after
  ``max_iter`` epochs of NaN. As in :func:`chainrule.training.fit`, it is a
  :class:`~chainrule.training.TrainingDivergedError` (a ValueError) that names the epoch and
  the batch, and the weights from the start of that epoch are restored.

The mini-batch steps are :class:`chainrule.training.Trainer`'s over
:class:`chainrule.training.Batches`, the loop of :func:`chainrule.training.fit`, with the L2
penalty added to the gradients before each optimizer step; BLAS runs on one thread below
:data:`chainrule.training.ONE_THREAD_WORK` multiply-adds per batch, as in ``fit``.
"""

from __future__ import annotations

import math
import warnings
from itertools import pairwise
from numbers import Integral, Real
from pathlib import Path
from typing import ClassVar

import numpy as np

try:  # one line naming the extra, instead of a traceback ending in "No module named 'scipy'"
    import scipy.sparse as sp
    import sklearn  # noqa: F401
except ModuleNotFoundError as _exc:
    from chainrule._extras import missing_extra

    raise missing_extra(_exc, "chainrule.sklearn", "sklearn") from None
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from chainrule import _sklearn_io
from chainrule import losses as _losses
from chainrule import optim as _optim
from chainrule._checks import check_scalar
from chainrule._numerics import sigmoid, softmax
from chainrule.nn import activations as _act
from chainrule.nn.layers import Dense
from chainrule.nn.model import Sequential, mlp
from chainrule.training import (
    Batches,
    Trainer,
    TrainingDivergedError,
    blas_threads,
    matmul_work,
)

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)


__all__ = ["HIDDEN_ACTIVATIONS", "SOLVERS", "MLPClassifier", "MLPRegressor"]

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
_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large "
               "values and need to be preprocessed. ")


class _PoissonLogLink(_losses.Loss):
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


class _L2Step:
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


class _SparseInputDense(Dense):
    r"""The first Dense layer when X is a SciPy sparse matrix: :math:`Z = XW + b` and
    :math:`\partial E/\partial W = X^\top G` as sparse-dense products (the sparse batch is never
    densified). It shares ``W``, ``b`` and their gradients with the layer it replaces."""

    @classmethod
    def replacing(cls, layer: Dense) -> _SparseInputDense:
        new = cls(layer.in_features, layer.out_features, dtype=layer.dtype, seed=0)
        new.W, new.b, new.dW, new.db = layer.W, layer.b, layer.dW, layer.db
        return new

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        self.dW[...] = self._x.T @ grad
        if self.b is not None:
            np.sum(grad, axis=0, out=self.db)
        return grad @ self.W.T if need_input_grad else None


class _Solver:
    r"""A stochastic fit's optimizer under the names scikit-learn's own solvers give it.

    ``learning_rate`` is the current step size (read and set through to the chainrule optimizer
    that takes the steps), ``learning_rate_init`` the first one; :meth:`iteration_ends` applies
    the "invscaling" schedule :math:`\eta = \eta_0 / (t + 1)^{\text{power\_t}}` after each epoch
    and :meth:`trigger_stopping` the "adaptive" one (divide by 5 on a stall, stop below 1e-6).
    ``momentum``, ``nesterov``, ``beta_1``, ``beta_2``, ``epsilon`` and ``t`` read the wrapped
    optimizer's settings.
    """

    _READ_THROUGH: ClassVar[dict[str, str]] = {
        "momentum": "momentum", "nesterov": "nesterov", "beta_1": "beta1", "beta_2": "beta2",
        "epsilon": "eps", "t": "t",
    }

    def __init__(self, optimizer: _optim.Optimizer, lr_schedule: str, power_t: float):
        self.optimizer = optimizer
        self.learning_rate_init = optimizer.lr
        self.lr_schedule = lr_schedule
        self.power_t = power_t

    @property
    def learning_rate(self) -> float:
        return self.optimizer.lr

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        self.optimizer.lr = float(value)

    def __getattr__(self, name):
        inner = self.__dict__.get("optimizer")
        if name in self._READ_THROUGH and inner is not None:
            return getattr(inner, self._READ_THROUGH[name])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def iteration_ends(self, time_step: int) -> None:
        """After an epoch, ``time_step`` samples seen in all: the "invscaling" step size."""
        if self.lr_schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (time_step + 1) ** self.power_t

    def trigger_stopping(self, msg: str, verbose) -> bool:
        """The loss or score stalled: True to stop; with "adaptive", shrink the step first."""
        if self.lr_schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + f" Setting learning rate to {self.learning_rate:f}")
        return False


class _FullBatchObjective:
    r"""The objective that ``solver="lbfgs"`` minimizes, as a function of one flat vector.

    :math:`\theta` holds every weight matrix (row-major) and then every intercept, scikit-learn's
    packing. Over the whole training set, with :math:`S = \sum_i s_i` (the sample count without
    weights),

    .. math::

        G(\theta) = \frac{1}{S}\sum_i s_i \ell_i + \frac{\alpha}{2S}\sum_l \lVert W_l\rVert_F^2,
        \qquad
        \nabla_{W_l} G = \frac{1}{S}\Bigl(\sum_i s_i \frac{\partial \ell_i}{\partial W_l}
        + \alpha W_l\Bigr),

    the same objective and gradient a single batch of the stochastic solvers uses, computed by
    chainrule's own forward and backward pass. Calling it with :math:`\theta` writes
    :math:`\theta` into the network and returns :math:`(G, \nabla G)` in float64, as
    :func:`scipy.optimize.minimize` wants them with ``jac=True``. :meth:`reported` gives
    ``loss_``'s value at the same point (for regression, the squared error averaged over the
    outputs too; :math:`G` sums them, and its gradient is what the stochastic solvers follow).
    """

    def __init__(self, net: Sequential, loss: _losses.Loss, loss_scale: float, X, Y, sw,
                 alpha: float):
        dense = net.dense_layers
        self.X, self.Y, self.sw = X, Y, sw
        self.loss_scale = loss_scale
        self.coefs = [d.W for d in dense]
        self.intercepts = [d.b for d in dense]
        arrays = [*self.coefs, *self.intercepts]
        bounds = np.cumsum([0, *(a.size for a in arrays)])
        self.slices = [slice(int(a), int(b)) for a, b in pairwise(bounds)]
        self.grad = np.empty(int(bounds[-1]))
        where = {id(a): s for a, s in zip(arrays, self.slices, strict=True)}
        self.params = net.parameters()
        self.grads = net.gradients()
        self.grad_slices = [where[id(p)] for p in self.params]
        self.penalty_coef = float(alpha) / (X.shape[0] if sw is None else float(sw.sum()))
        positions = [i for i, p in enumerate(self.params) if any(p is c for c in self.coefs)]
        self.stepper = _L2Step(self, positions)
        self.stepper.coef = self.penalty_coef
        self.trainer = Trainer(net, loss, self.stepper, weighted=sw is not None)
        self._last: tuple[np.ndarray, float] | None = None

    def pack(self) -> np.ndarray:
        """The network's parameters as one float64 vector."""
        return np.concatenate([a.ravel() for a in (*self.coefs, *self.intercepts)]).astype(
            np.float64)

    def unpack(self, theta: np.ndarray) -> None:
        """Write ``theta`` into the network's parameters (in their own dtype)."""
        for a, s in zip([*self.coefs, *self.intercepts], self.slices, strict=True):
            a[...] = theta[s].reshape(a.shape)

    def step(self, params, grads) -> None:
        """Called by the :class:`~chainrule.training.Trainer` in place of an optimizer step:
        gather the gradient."""
        for g, s in zip(grads, self.grad_slices, strict=True):
            self.grad[s] = g.ravel()

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        self.unpack(theta)
        data_loss, _ = self.trainer.step(self.X, self.Y, self.sw)
        if not math.isfinite(data_loss):  # the trainer skips the step; the gradient is wanted
            self.stepper.step(self.params, self.grads)
        penalty = 0.5 * self.penalty_coef * sum(float(np.vdot(c, c)) for c in self.coefs)
        self._last = (np.array(theta, copy=True), data_loss * self.loss_scale + penalty)
        return data_loss + penalty, self.grad.copy()

    def reported(self, theta: np.ndarray) -> float:
        """``loss_`` at ``theta`` (from the last evaluation when it was at ``theta``)."""
        if self._last is None or not np.array_equal(self._last[0], theta):
            self(theta)
        return self._last[1]


def _keep_params(estimator, arguments: dict) -> None:
    """Store every ``__init__`` argument under its own name, unchanged (scikit-learn's rule for
    estimators: ``__init__`` only records its parameters; ``fit`` validates them)."""
    for name, value in arguments.items():
        if name != "self":
            setattr(estimator, name, value)


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: validation, the training loop, inference."""

    _parameter_constraints: ClassVar[dict] = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(HIDDEN_ACTIVATIONS))],
        "solver": [StrOptions(set(SOLVERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [
            Interval(Integral, 1, None, closed="left"),
            Options(Real, {np.inf}),
        ],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dtype": [StrOptions({"float32", "float64"}), None],
    }

    # --- set by the subclasses ----------------------------------------------------------------

    def _validate_input(self, X, y, incremental: bool, reset: bool):  # pragma: no cover
        raise NotImplementedError

    def _sample_weights(self, sample_weight, X, y, incremental: bool):  # pragma: no cover
        raise NotImplementedError

    def _objective(self) -> tuple[_losses.Loss, float]:  # pragma: no cover
        raise NotImplementedError

    def _validation_score(self, X, y, sample_weight) -> float:  # pragma: no cover
        raise NotImplementedError

    # --- structure ----------------------------------------------------------------------------

    def _hidden_sizes(self) -> list[int]:
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if any(isinstance(s, bool) or not isinstance(s, Integral) or s < 1 for s in sizes):
            raise ValueError(
                f"hidden_layer_sizes must hold positive integers, one width per hidden layer; got "
                f"{self.hidden_layer_sizes!r}. Use for example (100,) or (64, 32)."
            )
        return [int(s) for s in sizes]

    def _training_dtype(self, X, first_pass: bool) -> np.dtype:
        """``dtype`` when given; else X's on a first fit, and the fitted weights' after it (a
        warm start or partial_fit continues in the precision it began in, as scikit-learn's)."""
        if self.dtype is not None:
            return np.dtype(self.dtype)
        if not first_pass:
            fitted = np.asarray(self.coefs_[0]).dtype
            if fitted in (np.float32, np.float64):
                return fitted
            return np.dtype(np.float64)
        return np.dtype(X.dtype)

    def _build_net(self, layer_units: list[int], rng: np.random.Generator,
                   dtype: np.dtype) -> Sequential:
        """The training network: hidden layers, then a Dense output without activation (the
        output activation is fused with the loss). Weights drawn from ``rng``."""
        return mlp(layer_units, activation=self.activation, output=None,
                   dropout=float(self.dropout), dtype=dtype, seed=rng)

    def _make_optimizer(self) -> _Solver:
        lr = float(self.learning_rate_init)
        schedule = "constant"
        if self.solver == "sgd":
            momentum = float(self.momentum)
            optimizer = _optim.SGD(lr=lr, momentum=momentum,
                                   nesterov=bool(self.nesterovs_momentum) and momentum > 0)
            schedule = self.learning_rate
        elif self.solver == "rmsprop":
            optimizer = _optim.RMSprop(lr=lr, eps=float(self.epsilon))
        else:
            kwargs = {"lr": lr, "beta1": float(self.beta_1), "beta2": float(self.beta_2),
                      "eps": float(self.epsilon)}
            if self.solver == "adamw":
                kwargs["weight_decay"] = float(self.weight_decay)
            optimizer = SOLVERS[self.solver](**kwargs)
        return _Solver(optimizer, schedule, float(self.power_t))

    def _check_solver(self) -> bool:
        if self.solver == "lbfgs":
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers; solver='lbfgs' needs "
                "the whole training set at every step. Use fit(), or solver='adam' or 'sgd'."
            )
        return True

    # --- fit ----------------------------------------------------------------------------------

    def _fit(self, X, y, sample_weight=None, incremental: bool = False):
        sizes = self._hidden_sizes()
        stochastic = self.solver != "lbfgs"
        if incremental and self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True: there is no held-out set "
                "across calls. Set early_stopping=False, or use fit()."
            )
        if not stochastic and self.dropout:
            raise ValueError(
                f"solver='lbfgs' cannot train with dropout={self.dropout}: dropout draws a new "
                "objective at every evaluation, and L-BFGS's line search needs one fixed "
                "function. Set dropout=0, or use solver='adam' or 'sgd'."
            )
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, Y, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sp.issparse(X):
            X = X.tocsr()
        sw = self._sample_weights(sample_weight, X, y, incremental)
        if sw is not None:
            keep = sw > 0  # zero-weight samples teach nothing: drop them
            if not keep.all():
                X, Y, y, sw = X[keep], Y[keep], y[keep], sw[keep]
            if np.all(sw == 1.0):
                sw = None
        layer_units = [X.shape[1], *sizes, self._n_outputs(Y)]
        dtype = self._training_dtype(X, first_pass)
        random_state = check_random_state(self.random_state)
        rng = np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
        if stochastic and self.early_stopping:
            X, Y, sw, X_val, y_val, sw_val = self._split(X, Y, y, sw, random_state)
        else:
            X_val = y_val = sw_val = None
        net = self._build_net(layer_units, rng, dtype)
        if first_pass:
            self._initialize(net, layer_units)
        else:
            self._adopt_weights(net, layer_units, dtype)
        if stochastic:
            if not incremental or not hasattr(self, "_optimizer"):
                self._optimizer = self._make_optimizer()
            self._fit_stochastic(net, X, Y, sw, X_val, y_val, sw_val, incremental, rng)
        else:
            self._fit_lbfgs(net, X, Y, sw)
        if not all(np.isfinite(p).all() for p in (*self.coefs_, *self.intercepts_)):
            self._raise_non_finite()
        return self

    def _divergence_hint(self) -> str:
        hint = "Standardize X (StandardScaler)"
        if self.solver != "lbfgs":
            hint += (f", lower learning_rate_init (it is {self.learning_rate_init:g}), or set "
                     "early_stopping=True to keep the best epoch's weights")
        return hint + "."

    def _raise_non_finite(self):
        raise TrainingDivergedError(_NON_FINITE + self._divergence_hint())

    def _initialize(self, net: Sequential, layer_units: list[int]) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = layer_units[-1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._out_activation()
        self.coefs_ = [layer.W for layer in net.dense_layers]
        self.intercepts_ = [layer.b for layer in net.dense_layers]
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping and self.solver != "lbfgs":
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]

    def _adopt_weights(self, net: Sequential, layer_units: list[int], dtype: np.dtype) -> None:
        """Continue from the fitted weights (warm_start, partial_fit): put them into ``net``."""
        shapes = [(a, b) for a, b in pairwise(layer_units)]
        have = [np.shape(c) for c in self.coefs_]
        if have != shapes:
            raise ValueError(
                f"The fitted weights have shapes {have} but hidden_layer_sizes="
                f"{self.hidden_layer_sizes!r} and the data need {shapes}. warm_start and "
                "partial_fit continue the same network: keep hidden_layer_sizes, or refit from "
                "scratch (warm_start=False)."
            )
        self.coefs_ = [np.array(c, dtype=dtype, order="C") for c in self.coefs_]
        self.intercepts_ = [np.array(b, dtype=dtype) for b in self.intercepts_]
        for layer, c, b in zip(net.dense_layers, self.coefs_, self.intercepts_, strict=True):
            layer.W, layer.b = c, b
        if self.solver == "lbfgs":
            return
        if self.early_stopping and self.validation_scores_ is None:  # switched on since
            self.validation_scores_, self.best_validation_score_ = [], -np.inf
        elif not self.early_stopping and self.best_loss_ is None:  # switched off since
            self.best_loss_ = np.inf

    def _stratify_by(self, Y, y):
        """The labels the early-stopping split keeps in proportion (None: a plain split)."""
        return None

    def _split(self, X, Y, y, sw, random_state):
        """Hold out ``validation_fraction`` of the samples, stratified by class for single-label
        classification; scikit-learn's splitter and its errors, then its size check."""
        stratify = self._stratify_by(Y, y)
        arrays = [X, Y, y] if sw is None else [X, Y, y, sw]
        try:
            parts = train_test_split(*arrays, random_state=random_state,
                                     test_size=self.validation_fraction, stratify=stratify)
        except ValueError as err:
            what = "stratified by class, " if stratify is not None else ""
            raise ValueError(
                f"{err} (early_stopping=True holds out validation_fraction="
                f"{self.validation_fraction} of the {X.shape[0]} samples, {what}as scikit-learn "
                "does.) Set early_stopping=False, or change validation_fraction or the data."
            ) from err
        X_tr, X_val, Y_tr, _, _, y_val = parts[:6]
        if X_val.shape[0] < 2:
            raise ValueError(
                f"The validation set is too small: validation_fraction="
                f"{self.validation_fraction} of {X.shape[0]} samples leaves {X_val.shape[0]}. "
                "Increase validation_fraction or the size of the data set, or set "
                "early_stopping=False."
            )
        sw_tr, sw_val = (None, None) if sw is None else (parts[6], parts[7])
        return X_tr, Y_tr, sw_tr, X_val, y_val, sw_val

    @staticmethod
    def _training_arrays(X, Y, sw, dtype: np.dtype):
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

    def _fit_lbfgs(self, net, X, Y, sw):
        """Minimize the full-batch objective with SciPy's L-BFGS-B from the current weights:
        at most ``max_iter`` iterations and ``max_fun`` evaluations, stopping once the largest
        gradient component is below ``tol``."""
        from scipy.optimize import minimize

        loss, loss_scale = self._objective()
        X, Y, sw = self._training_arrays(X, Y, sw, self.coefs_[0].dtype)
        if sp.issparse(X):
            net.layers[0] = _SparseInputDense.replacing(net.layers[0])
        objective = _FullBatchObjective(net, loss, loss_scale, X, Y, sw, float(self.alpha))
        curve: list[float] = []

        def record(theta):  # after each iteration, at the point it accepted
            curve.append(objective.reported(theta))
            if self.verbose:
                print(f"Iteration {len(curve)}, loss = {curve[-1]:.8f}")

        net.train()
        try:
            with blas_threads(None, matmul_work(net, X.shape[0])), np.errstate(over="ignore",
                                                                               invalid="ignore"):
                result = minimize(objective, objective.pack(), method="L-BFGS-B", jac=True,
                                  callback=record,
                                  options={"maxiter": self.max_iter, "maxfun": self.max_fun,
                                           "gtol": self.tol})
                objective.unpack(result.x)
                self.loss_ = objective.reported(result.x)
        finally:
            net.eval()
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        self.loss_curve_.extend(curve)
        previous = np.inf if self.best_loss_ is None else self.best_loss_
        self.best_loss_ = min(self.loss_, *curve, previous)

    def _loss_grad_lbfgs(self, packed_coef_inter, X, y, sample_weight=None, *buffers):
        """The full-batch objective and its gradient at ``packed_coef_inter`` (every weight
        matrix, then every intercept, flattened), which become the fitted parameters; ``y`` in
        training form or label-binarized, as scikit-learn's own method takes it. The trailing
        buffers scikit-learn passes are accepted and not needed."""
        check_is_fitted(self)
        dtype = np.asarray(self.coefs_[0]).dtype
        Y = self._lbfgs_targets(np.asarray(y))
        units = [self.coefs_[0].shape[0], *(np.shape(c)[1] for c in self.coefs_)]
        net = self._build_net(units, np.random.default_rng(0), dtype)
        self._adopt_weights(net, units, dtype)
        if sp.issparse(X):
            X = X.tocsr()
            net.layers[0] = _SparseInputDense.replacing(net.layers[0])
        sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        X, Y, sw = self._training_arrays(X, Y, sw, dtype)
        loss, loss_scale = self._objective()
        objective = _FullBatchObjective(net, loss, loss_scale, X, Y, sw, float(self.alpha))
        with np.errstate(over="ignore", invalid="ignore"):
            return objective(np.asarray(packed_coef_inter, dtype=np.float64))

    def _lbfgs_targets(self, y: np.ndarray) -> np.ndarray:
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def _fit_stochastic(self, net, X, Y, sw, X_val, y_val, sw_val, incremental, rng):
        """Up to ``max_iter`` epochs of mini-batch steps (one for ``partial_fit``), with
        scikit-learn's bookkeeping after each; early stopping puts the best epoch back."""
        loss, loss_scale = self._objective()
        params = net.parameters()
        positions = [i for i, p in enumerate(params) if any(p is d.W for d in net.dense_layers)]
        stepper = _L2Step(self._optimizer.optimizer, positions)
        X, Y, sw = self._training_arrays(X, Y, sw, self.coefs_[0].dtype)
        if sp.issparse(X):
            net.layers[0] = _SparseInputDense.replacing(net.layers[0])
        trainer = Trainer(net, loss, stepper, weighted=sw is not None)
        batches = Batches(X, Y, self._batch_size(X.shape[0]), sw)
        net.train()
        self.n_iter_ = 0
        try:
            with blas_threads(None, matmul_work(net, batches.batch_size)), np.errstate(
                    over="ignore", invalid="ignore"):
                for epoch in range(self.max_iter):
                    order = rng.permutation(batches.n) if self.shuffle else None
                    loss_ = self._train_epoch(trainer, stepper, batches, order, loss_scale, epoch)
                    if self._end_iteration(loss_, batches.n, X_val, y_val, sw_val, incremental):
                        break
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.", stacklevel=3)
        finally:
            net.eval()
        if self.early_stopping:
            for c, best in zip(self.coefs_, self._best_coefs, strict=True):
                c[...] = best
            for b, best in zip(self.intercepts_, self._best_intercepts, strict=True):
                b[...] = best

    def _batch_size(self, n: int) -> int:
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                          "to be clipped", stacklevel=4)
        return int(np.clip(self.batch_size, 1, n))

    def _train_epoch(self, trainer: Trainer, stepper: _L2Step, batches: Batches, order,
                     loss_scale: float, epoch: int) -> float:
        """One epoch of steps; returns its objective :math:`J`, averaged over the samples.

        A non-finite loss ends the fit as in :func:`chainrule.training.fit` (the weights from
        the start of the epoch restored, :class:`~chainrule.training.TrainingDivergedError`),
        except with ``early_stopping``: then, as scikit-learn does, the step is taken and the
        validation score turns NaN, and the best epoch's weights return at the end.
        """
        alpha = float(self.alpha)
        start = None if self.early_stopping else trainer.snapshot()
        accumulated = 0.0
        for b, (xb, yb, wb) in enumerate(batches(order)):
            m = len(yb)
            sw_sum = float(m) if wb is None else float(wb.sum())
            penalty = 0.0
            if alpha:
                stepper.coef = alpha / sw_sum
                penalty = 0.5 * alpha * sum(float(np.vdot(c, c)) for c in self.coefs_) / sw_sum
            batch_loss, _ = trainer.step(xb, yb, wb)
            if not math.isfinite(batch_loss):
                if start is not None:
                    raise self._diverged(trainer, start, epoch, f"the loss became {batch_loss}",
                                         batch=b + 1)
                stepper.step(trainer.params, trainer.grads)
            accumulated += (batch_loss * loss_scale + penalty) * m
        if start is not None and not trainer.weights_finite():
            raise self._diverged(trainer, start, epoch,
                                 "the weights became NaN or inf in its last update")
        return accumulated / batches.n

    def _diverged(self, trainer: Trainer, start: list[np.ndarray], epoch: int, what: str,
                  batch: int | None = None) -> TrainingDivergedError:
        trainer.restore(start)
        return TrainingDivergedError.at(epoch + 1, what, self._divergence_hint(), batch=batch,
                                        lead=_NON_FINITE)

    def _end_iteration(self, loss, n, X_val, y_val, sw_val, incremental) -> bool:
        """scikit-learn's bookkeeping at the end of an epoch; True means stop."""
        self.n_iter_ += 1
        self.loss_ = loss
        self.t_ += n
        self.loss_curve_.append(loss)
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
        self._update_no_improvement_count(X_val, y_val, sw_val)
        self._optimizer.iteration_ends(self.t_)
        if self._no_improvement_count > self.n_iter_no_change:
            what = "Validation score" if self.early_stopping else "Training loss"
            msg = (f"{what} did not improve more than tol={self.tol:f} for "
                   f"{self.n_iter_no_change} consecutive epochs.")
            if self._optimizer.trigger_stopping(msg, self.verbose):
                return True
            self._no_improvement_count = 0
        if incremental:
            return True
        if self.n_iter_ == self.max_iter:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )
        return False

    def _update_no_improvement_count(self, X_val, y_val, sw_val) -> None:
        if self.early_stopping:
            score = self._validation_score(X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print(f"Validation score: {score:f}")
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_coefs = [c.copy() for c in self.coefs_]
                self._best_intercepts = [b.copy() for b in self.intercepts_]
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    # --- inference ----------------------------------------------------------------------------

    def _scores(self, X) -> np.ndarray:
        """The raw output scores :math:`z` of the last layer, computed in float64 (no dropout)."""
        h = X.astype(np.float64) if sp.issparse(X) else np.asarray(X, dtype=np.float64)
        act = _act.get(self.activation)  # a fresh instance: nothing is cached on the estimator
        last = len(self.coefs_) - 1
        for i, (W, b) in enumerate(zip(self.coefs_, self.intercepts_, strict=True)):
            h = h @ np.asarray(W, dtype=np.float64)
            h += b
            if i < last:
                h = act.forward(h)
        return h

    def _out_dtype(self, X) -> np.dtype:
        """The dtype of predictions: X's and the weights' together, as NumPy would combine them
        (float32 only when both are)."""
        return np.result_type(X.dtype, np.asarray(self.coefs_[0]).dtype)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _check_X(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, accept_sparse=["csr", "csc"],
                             dtype=(np.float64, np.float32), reset=False)

    # --- chainrule model files (the format: chainrule._sklearn_io) ------------------------------

    def to_chainrule(self) -> Sequential:
        """The fitted network as a standalone :class:`chainrule.nn.Sequential`, output activation
        included (softmax, sigmoid; none for identity and for Poisson, whose output is then the
        log of the mean). Weights are copied; the estimator's settings travel in
        ``training_config["sklearn"]``."""
        check_is_fitted(self)
        return _sklearn_io.to_model(self)

    def save(self, path) -> Path:
        """Write the fitted estimator to ``path`` in chainrule's safetensors format (see
        :meth:`chainrule.nn.Sequential.save`); :meth:`load` reads it back. Returns the path."""
        return self.to_chainrule().save(path)

    @classmethod
    def load(cls, path):
        """Read an estimator written by :meth:`save`: fitted and ready to predict (a later
        ``partial_fit`` starts a fresh optimizer). Never executes code from the file."""
        return _sklearn_io.load(cls, path)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    r"""Multi-layer perceptron classifier trained by chainrule; scikit-learn's API.

    Binary targets get one sigmoid output, multi-class targets a softmax, multi-label indicator
    matrices one sigmoid per label; all are trained with the matching cross-entropy from the
    raw scores (the fused :math:`\hat y - y` delta).

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default=(100,)
        The width of each hidden layer; ``()`` gives logistic regression.
    activation : str, default="relu"
        The hidden layers' activation: scikit-learn's "identity", "logistic", "tanh", "relu",
        or any elementwise chainrule activation ("gelu", "silu", "elu", "selu", "leaky_relu",
        "softplus", "softsign", "mish", ...); see :data:`HIDDEN_ACTIVATIONS`.
    solver : {"adam", "sgd", "lbfgs", "adamw", "rmsprop"}, default="adam"
        The optimizer (:mod:`chainrule.optim`); "lbfgs" is SciPy's L-BFGS-B on the full-batch
        objective (often the best for small data sets; no ``partial_fit``, no ``dropout``).
    alpha : float, default=1e-4
        L2 penalty on the weights, divided by the batch size: the term
        :math:`\frac{\alpha}{2|B|}\sum_l\lVert W_l\rVert^2` (scikit-learn's meaning).
    batch_size : int or "auto", default="auto"
        Mini-batch size; "auto" is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Schedule of the step size (solver "sgd" only): "invscaling" sets
        :math:`\eta = \eta_0 / (t + 1)^{\text{power\_t}}` after each epoch (:math:`t` samples
        seen); "adaptive" divides it by 5 when ``n_iter_no_change`` epochs fail to improve by
        ``tol``, and stops once it is below 1e-6.
    learning_rate_init : float, default=1e-3
        The initial step size.
    power_t : float, default=0.5
        Exponent of "invscaling".
    max_iter : int, default=200
        Maximum number of epochs (of iterations for "lbfgs").
    shuffle : bool, default=True
        Shuffle the samples every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the shuffling, dropout and the validation split: the same value gives
        the same model, bit for bit.
    tol : float, default=1e-4
        Training stops (or, with "adaptive", the step shrinks) when the loss, or the validation
        score with ``early_stopping``, fails to improve by ``tol`` for ``n_iter_no_change``
        consecutive epochs; "lbfgs" stops when no gradient component exceeds ``tol``.
    verbose : bool or int, default=False
        Print the loss after every epoch.
    warm_start : bool, default=False
        Continue from the previous fit's weights.
    momentum : float in [0, 1), default=0.9
        Momentum of "sgd".
    nesterovs_momentum : bool, default=True
        Nesterov momentum for "sgd" (when ``momentum > 0``).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified by class, as scikit-learn's;
        a class with one sample is then an error), stop when its accuracy stalls, and keep the
        best epoch's weights. Stochastic solvers only.
    validation_fraction : float in [0, 1), default=0.1
        The held-out fraction for ``early_stopping``.
    beta_1, beta_2 : float in [0, 1), default=0.9, 0.999
        Adam's (and AdamW's) moment decay rates.
    epsilon : float, default=1e-8
        Adam's, AdamW's and RMSprop's :math:`\epsilon`.
    n_iter_no_change : int or inf, default=10
        Patience, in epochs, of the ``tol`` rule.
    max_fun : int, default=15000
        "lbfgs" only: the most loss-and-gradient evaluations (line-search steps included).
    loss : {"log_loss", "cross_entropy"}, default="log_loss"
        Two names for the same objective: softmax cross-entropy for multi-class targets, binary
        cross-entropy for binary and multi-label ones.
    dropout : float in [0, 1), default=0.0
        Inverted dropout after every hidden activation, in training only.
    class_weight : dict, list of dicts, "balanced" or None, default=None
        Multiplies each sample's weight by its class's weight (as
        :func:`sklearn.utils.class_weight.compute_sample_weight`); "balanced" uses
        ``n_samples / (n_classes * count(class))``.
    weight_decay : float, default=0.01
        AdamW's decoupled weight decay (solver "adamw" only), in addition to ``alpha``.
    dtype : {"float32", "float64"} or None, default=None
        The training precision: None follows X (float32 data train in float32, anything else
        in float64), as scikit-learn's; "float32" trains float64 data in float32, for speed.
        A warm start or ``partial_fit`` continues in the precision of the fitted weights.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (``arange(n_labels)`` for multi-label targets).
    loss_ : float
        The objective over the last epoch.
    best_loss_ : float or None
        The lowest ``loss_`` so far (None with ``early_stopping``).
    loss_curve_ : list of float
        ``loss_`` after each epoch (after each iteration for "lbfgs").
    validation_scores_ : list of float or None
        Validation accuracy after each epoch (``early_stopping`` only).
    best_validation_score_ : float or None
        The best of ``validation_scores_``.
    t_ : int
        Training samples seen.
    coefs_ : list of ndarray
        ``coefs_[l]`` is the weight matrix of layer ``l``, shape (fan_in, fan_out), in the
        training dtype.
    intercepts_ : list of ndarray
        ``intercepts_[l]`` is the bias of layer ``l``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when X has string column names.
    n_iter_ : int
        Epochs (L-BFGS iterations) run by the last call to fit (1 after partial_fit).
    n_layers_ : int
        Layers, input and output included.
    n_outputs_ : int
        Output units (1 for binary targets).
    out_activation_ : str
        "logistic" or "softmax".

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = make_pipeline(StandardScaler(), MLPClassifier(random_state=0, max_iter=50))
    >>> model.fit(X, y).score(X, y) > 0.97
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"log_loss", "cross_entropy"})],
        "class_weight": [dict, list, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        loss="log_loss",
        dropout=0.0,
        class_weight=None,
        weight_decay=0.01,
        dtype=None,
    ):
        _keep_params(self, locals())

    # --- fit ----------------------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X`` (n_samples, n_features) and the labels ``y`` (n_samples,), or a
        multi-label indicator matrix (n_samples, n_labels). ``sample_weight`` (n_samples,)
        weighs each sample's loss. Returns self."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(_BaseMLP._check_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``(X, y)``, continuing from the current weights and optimizer state.

        ``classes`` (every label of the whole data, e.g. ``np.unique(y_all)``) is required on
        the first call and may be omitted afterwards. Returns self.
        """
        if _check_partial_fit_first_call(self, classes):
            if type_of_target(y).startswith("multilabel"):
                self.classes_ = np.arange(np.shape(y)[1])
                self._y_type = "multilabel-indicator"
            else:
                self._y_type = "multiclass" if len(self.classes_) > 2 else "binary"
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _out_activation(self) -> str:
        return "softmax" if self._y_type == "multiclass" else "logistic"

    def _n_outputs(self, Y: np.ndarray) -> int:
        return len(self.classes_) if self._y_type == "multiclass" else Y.shape[1]

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if sp.issparse(y):
            y = y.toarray()
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        y_type = type_of_target(y)
        if y_type not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(
                f"MLPClassifier handles binary, multi-class and multi-label targets; got a "
                f"{y_type} target of shape {y.shape}. Fit one classifier per output "
                "(sklearn.multioutput.MultiOutputClassifier)."
            )
        multilabel = y_type == "multilabel-indicator"
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            if multilabel:
                self.classes_ = np.arange(y.shape[1])
                self._y_type = y_type
            else:
                self.classes_ = unique_labels(y)
                self._y_type = "multiclass" if len(self.classes_) > 2 else "binary"
        else:
            if multilabel != (self._y_type == "multilabel-indicator"):
                raise ValueError(
                    f"The model was fitted on a {self._y_type} target but y is {y_type}; refit "
                    "from scratch (warm_start=False) to change the kind of target."
                )
            if multilabel:
                if y.shape[1] != len(self.classes_):
                    raise ValueError(
                        f"y has {y.shape[1]} labels but the model was fitted with "
                        f"{len(self.classes_)}."
                    )
            else:
                classes = unique_labels(y)
                if self.warm_start and not incremental:
                    if set(classes) != set(self.classes_):
                        raise ValueError(
                            "warm_start can only be used where `y` has the same classes as in "
                            f"the previous call to fit. Previously got {self.classes_}, `y` has "
                            f"{classes}"
                        )
                elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                    raise ValueError(
                        f"`y` has classes not in `self.classes_`. `self.classes_` has "
                        f"{self.classes_}. 'y' has {classes}."
                    )
        return X, self._encode(y), y

    def _encode(self, y) -> np.ndarray:
        """Targets in training form: label indices (multi-class), 0/1 columns (otherwise)."""
        if self._y_type == "multilabel-indicator":
            return np.asarray(y, dtype=np.float64)
        if self._y_type == "multiclass":
            return np.searchsorted(self.classes_, y).astype(np.int64)
        if len(self.classes_) < 2:
            return np.zeros((len(y), 1))
        return (np.asarray(y) == self.classes_[1]).astype(np.float64).reshape(-1, 1)

    def _sample_weights(self, sample_weight, X, y, incremental):
        sw = None
        if sample_weight is not None:
            sw = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                      ensure_non_negative=True)
        if self.class_weight is not None:
            self._check_class_weight()
            if incremental and isinstance(self.class_weight, str):
                raise ValueError(
                    "class_weight='balanced' needs the class counts of the whole data set, "
                    "which partial_fit never sees. Pass a dict computed once with "
                    "sklearn.utils.class_weight.compute_class_weight, or use fit()."
                )
            cw = compute_sample_weight(self.class_weight, y)
            sw = cw if sw is None else sw * cw
            if not sw.any():
                raise ValueError(
                    "class_weight and sample_weight give every sample a weight of zero; "
                    "nothing is left to learn from."
                )
        return sw

    def _check_class_weight(self) -> None:
        """Every weight a class weight dict gives must be a finite number >= 0."""
        if isinstance(self.class_weight, str):
            return
        dicts = self.class_weight if isinstance(self.class_weight, list) else [self.class_weight]
        for d in dicts:
            if not isinstance(d, dict):
                raise ValueError(
                    f"class_weight must be 'balanced', a dict {{class: weight}} or a list of "
                    f"such dicts (one per label); got a list holding {d!r}."
                )
            for label, w in d.items():  # a weight of 0 ignores the class
                check_scalar(w, f"class_weight[{label!r}]", type(self).__name__, low=0)

    def _stratify_by(self, Y, y):
        # Single-label targets only. Binary targets are stratified by the positive class's
        # indicator, as scikit-learn does (its errors name the classes 'False' and 'True'); the
        # split is the same as by the labels themselves.
        if self._y_type == "multilabel-indicator":
            return None
        if self._y_type == "binary":
            return Y.astype(bool)
        return y

    def _lbfgs_targets(self, y: np.ndarray) -> np.ndarray:
        if self._y_type == "multiclass":  # class indices; label-binarized: one column a class
            return (np.argmax(y, axis=1) if y.ndim == 2 else y).astype(np.int64)
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def _objective(self):
        if self._y_type == "multiclass":
            return _losses.CrossEntropyWithLogits(), 1.0
        return _losses.BinaryCrossEntropyWithLogits(), 1.0

    def _validation_score(self, X, y, sample_weight) -> float:
        pred = self._predict_labels(self._scores(X))
        if pred is None:
            return np.nan
        return float(accuracy_score(y, pred, sample_weight=sample_weight))

    # --- predict ------------------------------------------------------------------------------

    def _proba_from_scores(self, z: np.ndarray) -> np.ndarray:
        if self.out_activation_ == "softmax":
            return softmax(z, axis=1)
        if self._y_type == "multilabel-indicator":
            return sigmoid(z)
        if len(self.classes_) < 2:
            return np.ones((len(z), 1))
        return np.hstack([sigmoid(-z), sigmoid(z)])  # each exact, no 1 - p cancellation

    def _predict_labels(self, z: np.ndarray):
        """Labels from the scores (None when a score is not finite)."""
        if not np.isfinite(z).all():
            return None
        proba = self._proba_from_scores(z)
        if self._y_type == "multilabel-indicator":
            return (proba > 0.5).astype(np.int64)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict(self, X):
        """Class labels for ``X``: the most probable class (an indicator matrix for multi-label
        targets, 1 where the label's probability exceeds 0.5)."""
        proba = self._proba_from_scores(self._scores(self._check_X(X)))
        if self._y_type == "multilabel-indicator":
            return (proba > 0.5).astype(np.int64)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``
        (for multi-label targets, each label's own probability). A probability that underflows
        is reported as the dtype's smallest normal number (``np.finfo(dtype).tiny``, 2.2e-308 in
        float64) rather than 0, so that its logarithm stays finite."""
        X = self._check_X(X)
        proba = self._proba_from_scores(self._scores(X)).astype(self._out_dtype(X), copy=False)
        return np.maximum(proba, np.finfo(proba.dtype).tiny, out=proba)

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``: finite, and ranking the classes as ``predict_proba`` does,
        ties included."""
        return np.log(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    r"""Multi-layer perceptron regressor trained by chainrule; scikit-learn's API.

    An identity output trained with half squared error (or Huber), or an exponential output
    trained with the half Poisson deviance; one output per target column.

    Parameters
    ----------
    loss : {"squared_error", "huber", "poisson"}, default="squared_error"
        "squared_error" is :math:`\tfrac12(\hat y - y)^2`; "huber" is quadratic within
        ``huber_delta`` of the target and linear beyond (robust to outliers); "poisson" is the
        half Poisson deviance with a log link (counts and rates; y >= 0).
    huber_delta : float, default=1.0
        The Huber loss's threshold, in units of y.

    The other parameters are :class:`MLPClassifier`'s (less ``class_weight``), with the same
    meanings; ``early_stopping`` monitors the validation :math:`R^2`.

    Attributes
    ----------
    The same as :class:`MLPClassifier`'s, less ``classes_``; ``out_activation_`` is "identity"
    (or "exp" for Poisson) and ``validation_scores_`` holds :math:`R^2` scores.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> X, y = make_regression(n_samples=200, n_features=10, noise=1.0, random_state=0)
    >>> reg = MLPRegressor(hidden_layer_sizes=(64,), max_iter=500, learning_rate_init=0.01,
    ...                    random_state=0)
    >>> reg.fit(X, y / 100).score(X, y / 100) > 0.95
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error", "huber", "poisson"})],
        "huber_delta": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        huber_delta=1.0,
        dropout=0.0,
        weight_decay=0.01,
        dtype=None,
    ):
        _keep_params(self, locals())

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X`` (n_samples, n_features) and the targets ``y``, of shape
        (n_samples,) or (n_samples, n_outputs). ``sample_weight`` (n_samples,) weighs each
        sample's loss. Returns self."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(_BaseMLP._check_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``(X, y)``, continuing from the current weights and optimizer state.
        Returns self."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def _out_activation(self) -> str:
        return "exp" if self.loss == "poisson" else "identity"

    def _n_outputs(self, Y: np.ndarray) -> int:
        return Y.shape[1]

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        if self.loss == "poisson" and (Y < 0).any():
            raise ValueError(
                f"loss='poisson' needs non-negative targets (counts or rates); y has values down "
                f"to {Y.min():g}. Use loss='squared_error' or 'huber' for signed targets."
            )
        if not reset and hasattr(self, "n_outputs_") and Y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {Y.shape[1]} output columns but the model was fitted with "
                f"{self.n_outputs_}; refit from scratch (warm_start=False)."
            )
        return X, Y, y

    def _sample_weights(self, sample_weight, X, y, incremental):
        if sample_weight is None:
            return None
        return _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)

    def _objective(self):
        # scikit-learn reports the squared error averaged over the outputs as well as the samples
        n_out = self.n_outputs_
        if self.loss == "huber":
            return _losses.Huber(delta=float(self.huber_delta)), 1.0 / n_out
        if self.loss == "poisson":
            return _PoissonLogLink(), 1.0
        return _losses.MSE(half=True), 1.0 / n_out

    def _outputs(self, z: np.ndarray) -> np.ndarray:
        if self.out_activation_ == "exp":
            z = np.exp(z)
        return z.ravel() if z.shape[1] == 1 else z

    def _validation_score(self, X, y, sample_weight) -> float:
        pred = self._outputs(self._scores(X))
        if not np.isfinite(pred).all():
            return np.nan
        return float(r2_score(y, pred, sample_weight=sample_weight))

    def predict(self, X):
        """Predicted targets: shape (n_samples,) for one output, (n_samples, n_outputs) else."""
        X = self._check_X(X)
        with np.errstate(over="ignore"):  # a float32 exp beyond 3.4e38 is inf, as in float32
            return self._outputs(self._scores(X)).astype(self._out_dtype(X), copy=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
