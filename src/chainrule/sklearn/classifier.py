"""scikit-learn's ``MLPClassifier``, trained by chainrule."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.metrics import accuracy_score
from sklearn.utils import column_or_1d
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import _check_sample_weight

from chainrule import losses as _losses
from chainrule._checks import check_scalar
from chainrule._numerics import sigmoid, softmax
from chainrule.sklearn.base import BaseMLP
from chainrule.sklearn.pieces import keep_params, validate_data

__all__ = ["MLPClassifier"]


class MLPClassifier(ClassifierMixin, BaseMLP):
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
    feature_names_in_ : ndarray of shape ``(n_features_in_,)``
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
        **BaseMLP._parameter_constraints,
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
        keep_params(self, locals())

    # --- fit ----------------------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X`` (n_samples, n_features) and the labels ``y`` (n_samples,), or a
        multi-label indicator matrix (n_samples, n_labels). ``sample_weight`` (n_samples,)
        weighs each sample's loss. Returns self."""
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(BaseMLP._check_solver)
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
