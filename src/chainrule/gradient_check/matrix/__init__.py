r"""Check a hand-written matrix gradient of a dense network and name the mistake.

:func:`check_matrix` reads a gradient written the NumPy way, ``X.T @ (sigmoid(X @ W) - Y) / m``,
through a whitelist over Python's ``ast`` (nothing is evaluated but the whitelisted operations),
evaluates it with NumPy on random matrices of several shapes (the batch size ``m = 1`` and
``k = 2`` outputs among them), and compares it with the true gradient, computed independently
by float64 central finite differences of the loss. When the two disagree it tries the mistakes
learners make, each as a full alternative backward pass, and names the one that reproduces the
formula at every checked point: a missing or extra transpose, factors in the wrong order, the
1/m forgotten or doubled, the element-wise :math:`g'(Z)` missing, doubled or applied to the
wrong array, the sign (the update direction :math:`-\nabla E` written for the gradient), the
softmax Jacobian treated as diagonal, the gradient of another layer or of another variable.

The network: :math:`H_0 = X`, :math:`Z_l = H_{l-1} W_l + b_l`, :math:`H_l = g_l(Z_l)`,
:math:`\hat Y = H_L`, and the loss :math:`E = \frac1m \sum_{i,k} \ell(\hat Y_{ik}, Y_{ik})`
(the mean over the batch of the per-example loss summed over the outputs).

>>> check_matrix("X.T @ (sigmoid(X @ W) - Y) / m", activation="sigmoid", loss="bce").correct
True
>>> check_matrix("X.T @ (sigmoid(X @ W) - Y)", activation="sigmoid", loss="bce").kind
'mean_forgotten'

The work is split by job: :mod:`.grammar` (the whitelist and the evaluation),
:mod:`.network` (the network, its random matrices, its backward passes right and wrong),
:mod:`.layers` (:func:`check_layer`: batch norm, layer norm and attention),
:mod:`.sentences` (what the check says) and :mod:`.check` (the driver and the verdict).
Only NumPy is imported here.
"""

from __future__ import annotations

from chainrule.gradient_check.matrix.check import MatrixCheck, check_matrix
from chainrule.gradient_check.matrix.grammar import MAX_DEPTH, MAX_LENGTH
from chainrule.gradient_check.matrix.layers import check_layer
from chainrule.gradient_check.matrix.network import MatrixFormulaError, MatrixFormulaSyntaxError

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "MatrixCheck", "MatrixFormulaError",
           "MatrixFormulaSyntaxError", "check_layer", "check_matrix"]
