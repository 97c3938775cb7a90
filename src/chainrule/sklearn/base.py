"""What :class:`~chainrule.sklearn.MLPClassifier` and :class:`~chainrule.sklearn.MLPRegressor`
share: scikit-learn's parameter constraints, the checks of a fit, the network, inference and
chainrule model files."""

from __future__ import annotations

from itertools import pairwise
from numbers import Integral, Real
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted

from chainrule import losses as _losses
from chainrule.nn import activations as _act
from chainrule.nn.model import Sequential, mlp
from chainrule.sklearn import files
from chainrule.sklearn.lbfgs import LbfgsFit
from chainrule.sklearn.pieces import (
    HIDDEN_ACTIVATIONS,
    NON_FINITE,
    SOLVERS,
    validate_data,
)
from chainrule.sklearn.stochastic import StochasticFit
from chainrule.training import TrainingDivergedError

__all__ = ["BaseMLP"]


class BaseMLP(StochasticFit, LbfgsFit, BaseEstimator):
    """What the classifier and the regressor share: their parameters, validation, the network,
    inference and files; the two fits come from :class:`~chainrule.sklearn.stochastic.StochasticFit`
    and :class:`~chainrule.sklearn.lbfgs.LbfgsFit`."""

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
        raise TrainingDivergedError(NON_FINITE + self._divergence_hint())

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

    # --- chainrule model files (the format: chainrule.sklearn.files) ------------------------------

    def to_chainrule(self) -> Sequential:
        """The fitted network as a standalone :class:`chainrule.nn.Sequential`, output activation
        included (softmax, sigmoid; none for identity and for Poisson, whose output is then the
        log of the mean). Weights are copied; the estimator's settings travel in
        ``training_config["sklearn"]``."""
        check_is_fitted(self)
        return files.to_model(self)

    def save(self, path) -> Path:
        """Write the fitted estimator to ``path`` in chainrule's safetensors format (see
        :meth:`chainrule.nn.Sequential.save`); :meth:`load` reads it back. Returns the path."""
        return self.to_chainrule().save(path)

    @classmethod
    def load(cls, path):
        """Read an estimator written by :meth:`save`: fitted and ready to predict (a later
        ``partial_fit`` starts a fresh optimizer). Never executes code from the file."""
        return files.load(cls, path)
