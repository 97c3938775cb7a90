"""scikit-learn's ``MLPRegressor``, trained by chainrule."""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _check_sample_weight

from chainrule import losses as _losses
from chainrule.sklearn.base import BaseMLP
from chainrule.sklearn.pieces import PoissonLogLink, keep_params, validate_data

__all__ = ["MLPRegressor"]


class MLPRegressor(RegressorMixin, BaseMLP):
    r"""Multi-layer perceptron regressor trained by chainrule; scikit-learn's API.

    An identity output trained with half squared error (or Huber), or an exponential output
    trained with the half Poisson deviance; one output per target column.

    The parameters other than those below are :class:`MLPClassifier`'s (less ``class_weight``),
    with the same meanings; ``early_stopping`` monitors the validation :math:`R^2`. The fitted
    attributes are :class:`MLPClassifier`'s, less ``classes_``; ``out_activation_`` is
    "identity" (or "exp" for Poisson) and ``validation_scores_`` holds :math:`R^2` scores.

    Parameters
    ----------
    loss : {"squared_error", "huber", "poisson"}, default="squared_error"
        "squared_error" is :math:`\tfrac12(\hat y - y)^2`; "huber" is quadratic within
        ``huber_delta`` of the target and linear beyond (robust to outliers); "poisson" is the
        half Poisson deviance with a log link (counts and rates; y >= 0).
    huber_delta : float, default=1.0
        The Huber loss's threshold, in units of y.

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
        **BaseMLP._parameter_constraints,
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
        keep_params(self, locals())

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X`` (n_samples, n_features) and the targets ``y``, of shape
        (n_samples,) or (n_samples, n_outputs). ``sample_weight`` (n_samples,) weighs each
        sample's loss. Returns self."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(BaseMLP._check_solver)
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
            return PoissonLogLink(), 1.0
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
