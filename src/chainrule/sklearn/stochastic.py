"""The stochastic solvers' fit: chainrule's epoch loop under scikit-learn's bookkeeping.

:class:`StochasticFit` runs :class:`chainrule.training.EpochLoop`, the loop of
:func:`chainrule.training.fit`, with :class:`EstimatorEpochs` as its hooks: the L2 term before
each step, ``loss_curve_``, ``n_iter_no_change`` and ``tol`` after each epoch, scikit-learn's
divergence message, and one epoch per ``partial_fit``. :class:`Solver` gives the optimizer the
names scikit-learn's solvers have.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from chainrule import optim as _optim
from chainrule.sklearn.pieces import (
    NON_FINITE,
    SOLVERS,
    L2Step,
    SparseInputDense,
    training_arrays,
)
from chainrule.training import (
    Batches,
    BlasThreads,
    EpochLoop,
    EpochStats,
    LoopHooks,
    Trainer,
    TrainingDivergedError,
)

__all__ = ["EstimatorEpochs", "Solver", "StochasticFit"]


class Solver:
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


class EstimatorEpochs(LoopHooks):
    r"""The estimators' hooks into :class:`~chainrule.training.EpochLoop`.

    Before each step of a batch of weight sum :math:`s` (its size without weights) the L2 term
    :math:`\frac{\alpha}{2s}\sum_l\lVert W_l\rVert^2` is added to the batch's objective and its
    gradient coefficient :math:`\alpha/s` handed to the :class:`~chainrule.sklearn.pieces.L2Step`;
    after each epoch the estimator's bookkeeping decides whether to stop. A divergence ends the
    fit with scikit-learn's message, except with ``early_stopping``: then, as scikit-learn does,
    the step is taken, the validation score turns NaN and the best epoch returns at the end.
    """

    def __init__(self, est, trainer: Trainer, stepper: L2Step, loss_scale: float, n: int,
                 validation: tuple, incremental: bool):
        self.est, self.trainer, self.stepper = est, trainer, stepper
        self.loss_scale, self.n = loss_scale, n
        self.validation, self.incremental = validation, incremental
        self.alpha = float(est.alpha)
        if self.alpha:
            self.penalty = self._l2_term

    def _l2_term(self, weight_sum: float) -> float:
        self.stepper.coef = self.alpha / weight_sum
        squares = sum(float(np.vdot(c, c)) for c in self.est.coefs_)
        return 0.5 * self.alpha * squares / weight_sum

    def end_epoch(self, epoch: int, stats: EpochStats) -> bool:
        return self.est._end_iteration(stats.loss, self.n, *self.validation, self.incremental)

    def diverged(self, epoch: int, what: str, batch: int | None) -> Exception | None:
        if self.est.early_stopping:
            if batch is not None:  # the trainer skipped the step; scikit-learn takes it
                self.stepper.step(self.trainer.params, self.trainer.grads)
            return None
        return TrainingDivergedError.at(epoch + 1, what, self.est._divergence_hint(),
                                        batch=batch, lead=NON_FINITE)


class StochasticFit:
    """The estimators' stochastic fit (a mixin of :class:`~chainrule.sklearn.base.BaseMLP`)."""

    def _make_optimizer(self) -> Solver:
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
        return Solver(optimizer, schedule, float(self.power_t))

    def _fit_stochastic(self, net, X, Y, sw, X_val, y_val, sw_val, incremental, rng):
        """Up to ``max_iter`` epochs of mini-batch steps (one for ``partial_fit``), with
        scikit-learn's bookkeeping after each; early stopping puts the best epoch back."""
        loss, loss_scale = self._objective()
        params = net.parameters()
        positions = [i for i, p in enumerate(params) if any(p is d.W for d in net.dense_layers)]
        stepper = L2Step(self._optimizer.optimizer, positions)
        X, Y, sw = training_arrays(X, Y, sw, self.coefs_[0].dtype)
        if sp.issparse(X):
            net.layers[0] = SparseInputDense.replacing(net.layers[0])
        trainer = Trainer(net, loss, stepper, weighted=sw is not None)
        batches = Batches(X, Y, self._batch_size(X.shape[0]), sw)
        hooks = EstimatorEpochs(self, trainer, stepper, loss_scale, batches.n,
                                (X_val, y_val, sw_val), incremental)
        net.train()
        self.n_iter_ = 0
        try:
            with BlasThreads(None, report=print if self.verbose else None) as blas, np.errstate(
                    over="ignore", invalid="ignore"):
                EpochLoop(trainer, batches, hooks, rng=rng, shuffle=self.shuffle,
                          blas=blas).run(self.max_iter)
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
                stacklevel=6,
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
