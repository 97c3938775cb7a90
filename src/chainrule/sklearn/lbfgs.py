"""``solver="lbfgs"``: the full-batch objective and its gradient, handed to SciPy's L-BFGS-B."""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import scipy.sparse as sp
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import check_is_fitted

from chainrule import losses as _losses
from chainrule.nn.model import Sequential
from chainrule.sklearn.pieces import L2Step, SparseInputDense, training_arrays
from chainrule.training import BlasThreads, Trainer

__all__ = ["FullBatchObjective", "LbfgsFit"]


class FullBatchObjective:
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
        self.stepper = L2Step(self, positions)
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


class LbfgsFit:
    """The estimators' L-BFGS fit (a mixin of :class:`~chainrule.sklearn.base.BaseMLP`)."""

    def _fit_lbfgs(self, net, X, Y, sw):
        """Minimize the full-batch objective with SciPy's L-BFGS-B from the current weights:
        at most ``max_iter`` iterations and ``max_fun`` evaluations, stopping once the largest
        gradient component is below ``tol``."""
        from scipy.optimize import minimize

        loss, loss_scale = self._objective()
        X, Y, sw = training_arrays(X, Y, sw, self.coefs_[0].dtype)
        if sp.issparse(X):
            net.layers[0] = SparseInputDense.replacing(net.layers[0])
        objective = FullBatchObjective(net, loss, loss_scale, X, Y, sw, float(self.alpha))
        curve: list[float] = []

        def record(theta):  # after each iteration, at the point it accepted
            curve.append(objective.reported(theta))
            if self.verbose:
                print(f"Iteration {len(curve)}, loss = {curve[-1]:.8f}")

        net.train()
        try:
            with BlasThreads(None, report=print if self.verbose else None) as blas, np.errstate(
                    over="ignore", invalid="ignore"):
                blas.remeasure()

                def evaluate(theta):  # the first evaluations measure the BLAS threads
                    if not blas.probing:
                        return objective(theta)
                    blas.before()
                    value = objective(theta)
                    blas.after()
                    return value

                result = minimize(evaluate, objective.pack(), method="L-BFGS-B", jac=True,
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
            net.layers[0] = SparseInputDense.replacing(net.layers[0])
        sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        X, Y, sw = training_arrays(X, Y, sw, dtype)
        loss, loss_scale = self._objective()
        objective = FullBatchObjective(net, loss, loss_scale, X, Y, sw, float(self.alpha))
        with np.errstate(over="ignore", invalid="ignore"):
            return objective(np.asarray(packed_coef_inter, dtype=np.float64))

    def _lbfgs_targets(self, y: np.ndarray) -> np.ndarray:
        return y.reshape(-1, 1) if y.ndim == 1 else y
