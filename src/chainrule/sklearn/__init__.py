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

The epochs are :class:`chainrule.training.EpochLoop`'s, the loop of
:func:`chainrule.training.fit`, with scikit-learn's bookkeeping as its hooks
(:mod:`chainrule.sklearn.stochastic`) and the L2 penalty added to the gradients before each
optimizer step; the BLAS threads are measured as in ``fit`` (one thread or all, whichever steps
faster, measured again each epoch), and ``verbose`` names the choice.

Attributes
----------
HIDDEN_ACTIVATIONS
    The values ``activation`` accepts: every elementwise chainrule activation and its aliases
    (scikit-learn's four among them).
SOLVERS
    Name -> optimizer class of :mod:`chainrule.optim` (``"lbfgs"`` -> None: it runs through
    SciPy instead).

Examples
--------
>>> from chainrule.sklearn import HIDDEN_ACTIVATIONS, SOLVERS
>>> {"relu", "tanh", "logistic", "identity", "gelu"} <= HIDDEN_ACTIVATIONS
True
>>> "softmax" in HIDDEN_ACTIVATIONS  # an output activation, chosen by the estimator
False
>>> sorted(SOLVERS), SOLVERS["adamw"].__name__
(['adam', 'adamw', 'lbfgs', 'rmsprop', 'sgd'], 'AdamW')
"""

from __future__ import annotations

try:  # one line naming the extra, instead of a traceback ending in "No module named 'scipy'"
    import scipy.sparse  # noqa: F401
    import sklearn  # noqa: F401
except ModuleNotFoundError as _exc:
    from chainrule._extras import missing_extra

    raise missing_extra(_exc, "chainrule.sklearn", "sklearn") from None

from chainrule.sklearn.classifier import MLPClassifier
from chainrule.sklearn.pieces import HIDDEN_ACTIVATIONS, SOLVERS
from chainrule.sklearn.regressor import MLPRegressor

__all__ = ["HIDDEN_ACTIVATIONS", "SOLVERS", "MLPClassifier", "MLPRegressor"]
