r"""Loss functions and their gradients with respect to the prediction.

Every loss is a class with ``forward(pred, target)`` and ``backward()``; ``backward`` returns
:math:`\partial L / \partial\,\text{pred}` for the arguments of the last ``forward``, with the
shape and dtype of ``pred``. They are also reachable by name: :data:`LOSSES` maps the canonical
names to the classes, :data:`ALIASES` maps other spellings to them and :func:`get` builds one.

>>> import numpy as np
>>> from chainrule.losses import get
>>> bce = get("bce")
>>> round(bce(np.array([0.8, 0.4]), np.array([1.0, 0.0])), 6)   # (-ln 0.8 - ln 0.6) / 2
0.366985
>>> bce.backward()                                              # -(y/yhat - (1-y)/(1-yhat)) / m
array([-0.625     ,  0.83333333])

Samples, reductions and how they differ from PyTorch
----------------------------------------------------
Samples run along axis 0: a batch has :math:`m` = ``pred.shape[0]`` samples (a 0-d ``pred`` is
one sample). The loss of sample :math:`i`, :math:`\ell_i`, **sums** over every other axis, as in
the textbook squared error :math:`E = \tfrac12\sum_k (g_k - t_k)^2` of a network with :math:`K`
outputs. The reductions are

.. math::

    \text{"mean"}: \frac{1}{m}\sum_{i=1}^m \ell_i \qquad
    \text{"sum"}: \sum_{i=1}^m \ell_i \qquad
    \text{"none"}: (\ell_1, \dots, \ell_m),

so "mean" is the :math:`J = -\frac1m \sum_i \dots` of the binary cross-entropy derivations.
When a sample has several outputs (``pred`` of shape ``(m, K)`` with ``K > 1``, for MSE, Huber
and the binary cross-entropies), this is :math:`K` times PyTorch's and scikit-learn's
element-wise mean, which divides by :math:`mK`. Cross-entropy over classes has one loss per
sample in both conventions, so there they agree (up to ``class_weight``, see
:class:`CrossEntropyWithLogits`).

With ``reduction="none"``, ``backward()`` returns the gradient of :math:`\sum_i \ell_i`: row
:math:`i` is :math:`\partial \ell_i / \partial\,\text{pred}_i`, since :math:`\ell_i` depends on
sample :math:`i` alone.

Validation and the unchecked path
---------------------------------
``forward`` checks its arguments (numeric, finite, matching shapes, probabilities where a loss
needs them, class labels in range) and then calls ``_forward``; ``backward`` checks that a
``forward`` came first and calls ``_backward``. The training loop, which validates its data once
before the first epoch, calls ``_forward(pred, target)`` and ``_backward()`` directly. They
expect ``pred`` a floating ndarray (2-D for the cross-entropies) and ``target`` of ``pred``'s
shape and dtype, or, for the cross-entropies, an integer array of ``m`` class labels. Reductions
"mean" and "sum" return a Python float, "none" an array of ``pred``'s dtype. The arrays passed
to ``forward`` are kept, not copied, until ``backward``: do not modify them in between.

float32 in gives float32 out; no float64 temporary is made from float32 input.

Examples
--------
>>> from chainrule.losses import ALIASES, LOSSES
>>> sorted(LOSSES), ALIASES["log_loss"], ALIASES["softmax_cross_entropy"]
(['bce', 'bce_with_logits', 'ce', 'ce_with_logits', 'huber', 'mse'], 'bce', 'ce_with_logits')
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from chainrule import _registry
from chainrule._checks import (
    as_float_array,
    check_finite,
    check_same_shape,
    check_scalar,
    describe_position,
)
from chainrule._numerics import constant_like

__all__ = [
    "ALIASES",
    "LOSSES",
    "MSE",
    "BinaryCrossEntropy",
    "BinaryCrossEntropyWithLogits",
    "CrossEntropy",
    "CrossEntropyWithLogits",
    "Huber",
    "Loss",
    "canonical_name",
    "get",
]

_REDUCTIONS = ("mean", "sum", "none")


def _clamp_eps(dtype: np.dtype) -> float:
    r"""The clamp for probabilities: :math:`\hat y \in [\epsilon, 1 - \epsilon]`.

    :math:`\epsilon` is the gap between 1 and the largest float below it (``finfo.epsneg``):
    :math:`2^{-24} \approx 5.96\times10^{-8}` in float32, :math:`2^{-53} \approx 1.11\times
    10^{-16}` in float64. So :math:`1 - \epsilon` is representable and only predictions of
    exactly 0 or 1, or below :math:`\epsilon`, are moved. Each clamped term of the loss is then at
    most :math:`-\log\epsilon` (16.6 in float32, 36.7 in float64).
    """
    return float(np.finfo(dtype).epsneg)


def _row_sum_tol(dtype: np.dtype, k: int) -> float:
    """How far a probability row may sum from 1 (rounding in a softmax, or printed values)."""
    return max(1e-3, 4.0 * k * float(np.finfo(dtype).eps))


def _row_off_one(rows: np.ndarray) -> tuple[int, float] | None:
    """The first row of ``rows`` (shape ``(m, K)``) whose sum is off 1 beyond rounding, and that
    sum; None when every row sums to 1."""
    sums = rows.sum(axis=1)
    off = np.abs(sums - 1.0) > _row_sum_tol(rows.dtype, rows.shape[1])
    if not off.any():
        return None
    i = int(np.argmax(off))
    return i, float(sums[i])


def _n_samples(pred: np.ndarray) -> int:
    return pred.shape[0] if pred.ndim else 1


def _per_sample(elem: np.ndarray) -> np.ndarray:
    """Sum an element-wise loss over every axis but the first: shape ``(m,)``."""
    if elem.ndim == 0:
        return elem.reshape(1)
    if elem.ndim == 1:
        return elem
    if elem.ndim == 2:
        return elem.sum(axis=1)
    return elem.reshape(elem.shape[0], math.prod(elem.shape[1:])).sum(axis=1)


def _describe_range(arr: np.ndarray, lo: float, hi: float) -> str:
    """``"values down to -0.76 at index 3"`` for the most extreme value outside ``[lo, hi]``."""
    parts = []
    if (arr < lo).any():
        parts.append(f"values down to {float(arr.min()):.4g} {describe_position(arr < lo)}")
    if (arr > hi).any():
        parts.append(f"values up to {float(arr.max()):.4g} {describe_position(arr > hi)}")
    return " and ".join(parts)


def _check_probabilities(target: np.ndarray, loss: str) -> None:
    """Targets of the probability losses must lie in [0, 1]."""
    if ((target < 0.0) | (target > 1.0)).any():
        raise ValueError(
            f"{loss} needs targets in [0, 1] (labels or probabilities); got "
            f"{_describe_range(target, 0.0, 1.0)}. Encode the classes as 0 and 1 (or one-hot "
            "rows), or use MSE for real-valued targets."
        )


def _check_weights(
    value, name: str, owner: str, *, positive: bool, scalar: bool, allowed: str
) -> np.ndarray | None:
    """``value`` as a float64 array of finite weights, > 0 (``positive``) or >= 0, 1-D (or 0-d
    where ``scalar``), not empty; None stays None. Else a ValueError saying what is ``allowed``."""
    if value is None:
        return None
    try:
        w = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        w = None
    ok = (
        w is not None
        and (w.ndim == 1 or (scalar and w.ndim == 0))
        and w.size > 0
        and bool(np.isfinite(w).all())
        and bool(((w > 0) if positive else (w >= 0)).all())
    )
    if not ok:
        raise ValueError(
            f"The {name!r} parameter of {owner} must be {allowed}; got {value!r} instead."
        )
    return w


class Loss:
    r"""Base class: a loss :math:`L(\text{pred}, \text{target})` and its gradient.

    Subclasses implement ``_forward`` and ``_backward``; ``_check`` may be overridden to
    validate more. See the module docstring for the reductions and the unchecked path. Each
    class is the one home of its names and of the facts that the training loop, the
    derivation engine and the checkers read:

    - ``name``: the key of :data:`LOSSES`; ``aliases``: other spellings, the keys of
      :data:`ALIASES` (the class name, lower-cased, is accepted as well);
    - ``title``: the loss in words (``"binary cross-entropy"``), for sentences;
    - ``formula``: one sample's loss as a textbook writes it (``"softplus(z) - y·z"``);
    - ``from_logits``: whether ``pred`` is a raw score rather than a probability or a value;
    - ``applies``: for a with-logits loss, the activation it applies to ``pred`` itself
      (``"sigmoid"``, ``"softmax"``), which must not come before it as well; else None;
    - ``fuses_with``: the output activation whose derivative cancels this loss's, so that
      :math:`\partial E/\partial z = (\hat y - y)/m` at the logits: ``"sigmoid"`` for BCE,
      ``"softmax"`` for CE, ``"identity"`` for MSE (``half=True``; twice that otherwise);
    - ``logits_loss``: the with-logits sibling, the same objective computed from the logits
      without forming ``fuses_with``'s output (``"bce_with_logits"`` for BCE); None where the
      loss itself takes the logits (MSE behind the identity).

    Examples
    --------
    >>> from chainrule.losses import LOSSES
    >>> [(n, c.fuses_with, c.logits_loss) for n, c in LOSSES.items() if c.logits_loss]
    [('bce', 'sigmoid', 'bce_with_logits'), ('ce', 'softmax', 'ce_with_logits')]
    """

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    title: ClassVar[str] = ""
    formula: ClassVar[str] = ""
    from_logits: ClassVar[bool] = False
    applies: ClassVar[str | None] = None
    fuses_with: ClassVar[str | None] = None
    logits_loss: ClassVar[str | None] = None

    def __init__(self, reduction: str = "mean"):
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"The 'reduction' parameter of {type(self).__name__} must be one of "
                f"{', '.join(map(repr, _REDUCTIONS))}; got {reduction!r} instead."
            )
        self.reduction = reduction
        self._ready = False
        self._scalar = False

    # --- public, validated --------------------------------------------------------------------

    def forward(self, pred, target) -> float | np.ndarray:
        """The loss of ``pred`` against ``target``: a float ("mean", "sum") or per-sample array."""
        pred, target = self._check(pred, target)
        self._scalar = pred.ndim == 0
        if self._scalar:
            pred, target = pred.reshape(1), target.reshape(1)
        if self.reduction == "mean" and pred.shape[0] == 0:
            raise ValueError(
                f"{type(self).__name__} got an empty batch (0 samples), whose mean is undefined. "
                "Pass at least one sample, or use reduction='sum' (0 for no samples)."
            )
        self._ready = False
        out = self._forward(pred, target)
        self._ready = True
        return out

    def backward(self) -> np.ndarray:
        r""":math:`\partial L/\partial\,\text{pred}` for the last ``forward``, shaped as pred."""
        if not self._ready:
            raise RuntimeError(
                f"{type(self).__name__}.backward() needs a forward(pred, target) first: the "
                "gradient is taken at the arguments of the last forward."
            )
        grad = self._backward()
        return grad.reshape(()) if self._scalar and grad.shape == (1,) else grad

    def __call__(self, pred, target):
        return self.forward(pred, target)

    def get_config(self) -> dict:
        """The constructor's keyword arguments, JSON-able: ``type(loss)(**loss.get_config())``."""
        return _registry.constructor_config(self)

    def __repr__(self) -> str:
        return _registry.config_repr(self)

    # --- validation ------------------------------------------------------------------------------

    def _check(self, pred, target) -> tuple[np.ndarray, np.ndarray]:
        """Float arrays of one shape, both finite; ``target`` in ``pred``'s dtype."""
        pred = as_float_array(pred, "pred")
        target = as_float_array(target, "target")
        check_same_shape(pred, target, ("pred", "target"))
        check_finite(pred, "pred")
        check_finite(target, "target")
        return pred, target.astype(pred.dtype, copy=False)

    # --- unchecked path: subclasses implement these ---------------------------------------------

    def _forward(self, pred: np.ndarray, target: np.ndarray) -> float | np.ndarray:
        raise NotImplementedError

    def _backward(self) -> np.ndarray:
        raise NotImplementedError

    def _reduce(self, elem: np.ndarray) -> float | np.ndarray:
        """Reduce an element-wise loss (shape of pred) by ``self.reduction``."""
        if self.reduction == "none":
            return _per_sample(elem)
        total = float(elem.sum())
        return total / _n_samples(elem) if self.reduction == "mean" else total

    def _reduce_samples(self, per: np.ndarray) -> float | np.ndarray:
        """Reduce per-sample losses, shape ``(m,)``, by ``self.reduction``."""
        if self.reduction == "none":
            return per
        total = float(per.sum())
        return total / per.shape[0] if self.reduction == "mean" else total


# --- regression ----------------------------------------------------------------------------------


class MSE(Loss):
    r"""Squared error, summed over each sample's outputs.

    .. math::

        \ell_i = c \sum_k (\hat y_{ik} - y_{ik})^2, \qquad
        \frac{\partial \ell_i}{\partial \hat y_{ik}} = 2c\,(\hat y_{ik} - y_{ik}),

    with :math:`c = 1` by default and :math:`c = \tfrac12` for ``half=True`` (the textbook
    :math:`E = \tfrac12\sum_k (g_k - t_k)^2`, whose gradient is the plain residual). "mean"
    divides by the number of samples :math:`m`, not by the number of elements.

    Examples
    --------
    >>> loss = MSE()
    >>> loss(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 2.0], [3.0, 6.0]]))
    2.5
    >>> loss.backward()  # 2 (yhat - y) / m, m = 2
    array([[ 1.,  0.],
           [ 0., -2.]])
    """

    name = "mse"
    aliases = ("squared_error", "mean_squared_error", "l2")
    title = "squared error"
    formula = "(yhat - y)², or (yhat - y)²/2 with half=True"
    fuses_with = "identity"
    from_logits = False

    def __init__(self, half: bool = False, reduction: str = "mean"):
        super().__init__(reduction)
        if not isinstance(half, bool | np.bool_):
            raise ValueError(f"The 'half' parameter of MSE must be True or False; got {half!r}.")
        self.half = bool(half)

    def _forward(self, pred, target):
        diff = pred - target
        self._diff = diff
        c = 0.5 if self.half else 1.0
        if self.reduction == "none":
            return _per_sample(np.square(diff)) * c
        total = c * float(np.vdot(diff, diff))
        return total / _n_samples(diff) if self.reduction == "mean" else total

    def _backward(self):
        grad = self._diff * (1.0 if self.half else 2.0)
        if self.reduction == "mean":
            grad /= _n_samples(grad)
        return grad


class Huber(Loss):
    r"""Huber loss: squared near the target, linear beyond ``delta``.

    With :math:`r = \hat y - y` and :math:`\delta > 0`, summed over each sample's outputs:

    .. math::

        h(r) = \begin{cases} \tfrac12 r^2 & |r| \le \delta \\
                             \delta\,(|r| - \tfrac12\delta) & |r| > \delta \end{cases}
        \qquad h'(r) = \operatorname{clip}(r, -\delta, \delta).

    :math:`h` is continuously differentiable (both pieces meet with slope :math:`\pm\delta`);
    its second derivative jumps at :math:`|r| = \delta`. Computed branch-free as
    :math:`a\,(|r| - a/2)` with :math:`a = \min(|r|, \delta)`.

    Examples
    --------
    >>> loss = Huber(delta=1.0, reduction="sum")
    >>> loss(np.array([0.5, -3.0]), np.array([0.0, 0.0]))
    2.625
    >>> loss.backward()  # clip(r, -1, 1)
    array([ 0.5, -1. ])
    """

    name = "huber"
    aliases = ("huber_loss",)
    title = "Huber"
    formula = "(yhat - y)²/2 for |yhat - y| ≤ δ, δ(|yhat - y| - δ/2) otherwise"
    from_logits = False

    def __init__(self, delta: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.delta = check_scalar(delta, "delta", "Huber", low=0.0, low_open=True)

    def _forward(self, pred, target):
        r = pred - target
        self._r = r
        elem = np.abs(r)
        clipped = np.minimum(elem, self.delta)
        elem -= 0.5 * clipped
        elem *= clipped  # min(|r|, delta) * (|r| - min(|r|, delta)/2)
        return self._reduce(elem)

    def _backward(self):
        grad = np.clip(self._r, -self.delta, self.delta)
        if self.reduction == "mean":
            grad /= _n_samples(grad)
        return grad


# --- binary classification -----------------------------------------------------------------------


class BinaryCrossEntropy(Loss):
    r"""Binary cross-entropy on predicted probabilities :math:`\hat y \in [0, 1]`.

    .. math::

        \ell_i = -\sum_k \bigl(y_{ik}\log\hat y_{ik} + (1 - y_{ik})\log(1 - \hat y_{ik})\bigr),
        \qquad
        \frac{\partial \ell_i}{\partial \hat y_{ik}}
            = -\Bigl(\frac{y_{ik}}{\hat y_{ik}} - \frac{1 - y_{ik}}{1 - \hat y_{ik}}\Bigr).

    The minus between the two fractions comes from the chain rule on :math:`\log(1 - \hat y)`,
    whose inner derivative is :math:`-1`. "mean" divides by :math:`m`.

    Predictions of exactly 0 or 1 are clamped to :math:`[\epsilon, 1-\epsilon]` with
    :math:`\epsilon` = :math:`2^{-24}` (float32) or :math:`2^{-53}` (float64), so the loss and
    gradient stay finite: each term of the loss is at most :math:`-\log\epsilon` (16.6 in float32,
    36.7 in float64). At a clamped prediction the gradient is the formula above at the clamped
    value (it points back inside), not the zero slope of the clamp.

    A network whose output is a sigmoid trains better with :class:`BinaryCrossEntropyWithLogits`
    on the scores before the sigmoid: chaining this gradient through :math:`\sigma' = \hat y(1 -
    \hat y)` gives :math:`(\hat y - y)/m`, which the with-logits form computes without dividing
    by :math:`\hat y(1 - \hat y)`.

    Examples
    --------
    >>> round(BinaryCrossEntropy()(np.array([0.8, 0.4]), np.array([1.0, 0.0])), 6)
    0.366985
    """

    name = "bce"
    aliases = ("binary_cross_entropy", "binary_crossentropy", "log_loss", "logloss")
    title = "binary cross-entropy"
    formula = "-(y·log(yhat) + (1 - y)·log(1 - yhat))"
    fuses_with = "sigmoid"
    logits_loss = "bce_with_logits"
    from_logits = False

    def _check(self, pred, target):
        pred, target = super()._check(pred, target)
        if ((pred < 0.0) | (pred > 1.0)).any():
            lo, hi = float(pred.min()), float(pred.max())
            hint = " (a tanh output?)" if -1.0 <= lo < 0.0 and hi <= 1.0 else ""
            raise ValueError(
                "BinaryCrossEntropy needs predicted probabilities in [0, 1]; got "
                f"{_describe_range(pred, 0.0, 1.0)}{hint}. Use a Sigmoid output layer, or "
                "BinaryCrossEntropyWithLogits on the raw scores."
            )
        _check_probabilities(target, "BinaryCrossEntropy")
        return pred, target

    def _forward(self, pred, target):
        eps = _clamp_eps(pred.dtype)
        p = np.clip(pred, eps, 1.0 - eps)
        self._p, self._y = p, target
        # -(y log p + (1 - y) log(1 - p)); log1p(-p) keeps the digits of 1 - p for small p.
        one_minus_y = 1.0 - target
        elem = np.log1p(-p)
        elem *= one_minus_y
        elem += target * np.log(p)
        np.negative(elem, out=elem)
        return self._reduce(elem)

    def _backward(self):
        p, y = self._p, self._y
        grad = -(y / p - (1.0 - y) / (1.0 - p))
        if self.reduction == "mean":
            grad /= _n_samples(grad)
        return grad


class BinaryCrossEntropyWithLogits(Loss):
    r"""Binary cross-entropy on raw scores (logits) :math:`x`, with :math:`\hat y = \sigma(x)`.

    With positive-class weight :math:`w` (``pos_weight``, 1 by default):

    .. math::

        \ell_i = -\sum_k \bigl(w\,y_{ik}\log\sigma(x_{ik})
                               + (1 - y_{ik})\log\sigma(-x_{ik})\bigr),
        \qquad
        \frac{\partial \ell_i}{\partial x_{ik}}
            = (w y_{ik} + 1 - y_{ik})\,\sigma(x_{ik}) - w y_{ik}.

    For :math:`w = 1` the gradient is :math:`\sigma(x) - y`. "mean" divides by :math:`m`.

    Exact and finite for any finite logit, :math:`\pm 10^9` included, in float32 and float64.
    Everything comes from one :math:`z = e^{-|x|} \in (0, 1]`, which cannot overflow:

    .. math::

        -\log\sigma(\pm x) = \max(\mp x, 0) + \operatorname{log1p}(z), \qquad
        \sigma(|x|) = \frac{1}{1 + z}, \quad \sigma(-|x|) = \frac{z}{1 + z},

    so the loss is a sum of non-negative terms and never forms :math:`\log(\sigma(x))`. The
    gradient is evaluated as :math:`(1 - y)\,\sigma(x) - w y\,\sigma(-x)` (the same number,
    since :math:`\sigma(x) - 1 = -\sigma(-x)`), so that a confident correct score, where
    :math:`\sigma(x) \approx y`, loses no digits to cancellation. (This is the stable form of
    ``_numerics.log_sigmoid``/``sigmoid`` with the exponential shared: NumPy's float32
    ``logaddexp`` is about 40 times slower than ``exp``.)

    ``pos_weight`` is a positive number, or an array broadcast along the trailing axes of
    ``pred`` (one weight per output column).

    Examples
    --------
    >>> loss = BinaryCrossEntropyWithLogits()
    >>> round(loss(np.array([0.0, np.log(3.0)]), np.array([1.0, 0.0])), 6)
    1.039721
    >>> loss.backward()  # (sigmoid(x) - y) / m
    array([-0.25 ,  0.375])
    """

    name = "bce_with_logits"
    aliases = ("binary_cross_entropy_with_logits", "bce_logits")
    title = "binary cross-entropy on logits"
    formula = "softplus(z) - y·z"
    applies = "sigmoid"
    from_logits = True

    def __init__(self, pos_weight=None, reduction: str = "mean"):
        super().__init__(reduction)
        w = _check_weights(
            pos_weight, "pos_weight", "BinaryCrossEntropyWithLogits", positive=True,
            scalar=True, allowed="None, a positive float or a 1-D array of positive floats",
        )
        self.pos_weight = float(w) if w is not None and w.ndim == 0 else w

    def _check(self, pred, target):
        pred, target = super()._check(pred, target)
        w = self.pos_weight
        if isinstance(w, np.ndarray) and (pred.ndim == 0 or w.shape[0] not in (1, pred.shape[-1])):
            raise ValueError(
                f"pos_weight has {w.shape[0]} entries, one per output column, but pred has shape "
                f"{pred.shape}; pass a pos_weight with {pred.shape[-1] if pred.ndim else 1} "
                "entries, or a single number."
            )
        _check_probabilities(target, "BinaryCrossEntropyWithLogits")
        return pred, target

    def _weight(self, dtype):
        w = self.pos_weight
        return w.astype(dtype, copy=False) if isinstance(w, np.ndarray) else w

    def _forward(self, pred, target):
        w = self._weight(pred.dtype)
        wy = target if w is None else target * w  # weight of the log(sigma(x)) term
        one_minus_y = 1.0 - target  # weight of the log(sigma(-x)) term
        z = np.abs(pred)
        np.negative(z, out=z)
        np.exp(z, out=z)  # z = exp(-|x|) in (0, 1]
        # -wy log sigma(x) - (1 - y) log sigma(-x)
        #   = wy max(-x, 0) + (1 - y) max(x, 0) + (wy + 1 - y) log1p(z)
        elem = np.log1p(z)
        if w is not None:
            elem *= wy + one_minus_y
        zero = constant_like(pred, 0.0)  # an array operand: NumPy's fast maximum/minimum loop
        elem += one_minus_y * np.maximum(pred, zero)
        elem -= wy * np.minimum(pred, zero)
        self._x, self._z, self._wy, self._one_minus_y = pred, z, wy, one_minus_y
        return self._reduce(elem)

    def _backward(self):
        x, z = self._x, self._z
        r = z + 1.0
        np.reciprocal(r, out=r)  # sigma(|x|) = 1/(1 + z)
        q = z * r  # sigma(-|x|) = z/(1 + z)
        d = r - q
        pos = x >= 0.0
        s_pos = pos * d  # sigma(x) = q + [x >= 0] (r - q), exact in both cases
        s_pos += q
        s_neg = ~pos * d  # sigma(-x) = q + [x < 0] (r - q)
        s_neg += q
        grad = self._one_minus_y * s_pos
        grad -= self._wy * s_neg
        if self.reduction == "mean":
            grad /= _n_samples(grad)
        return grad


# --- multi-class classification ------------------------------------------------------------------


def _check_class_target(pred: np.ndarray, target, loss: str):
    """Integer labels of shape ``(m,)`` (returned as intp) or probability rows of pred's shape."""
    m, k = pred.shape
    raw = np.asarray(target)
    if raw.dtype.kind not in "biuf":
        raise ValueError(
            f"target must be numeric class labels or probability rows; got dtype {raw.dtype}. "
            "Encode class names as integers 0..K-1 first."
        )
    if raw.ndim == 1:
        if raw.shape[0] != m:
            raise ValueError(
                f"Shape mismatch: pred has shape {pred.shape} and target has shape {raw.shape}; "
                f"class labels need shape ({m},), one per row of pred."
            )
        if raw.dtype.kind == "f":
            check_finite(raw, "target")
            frac = raw != np.round(raw)
            if frac.any():
                raise ValueError(
                    f"target of shape ({m},) is read as class labels, but holds the non-integer "
                    f"{float(raw[frac][0]):g} {describe_position(frac)}. Pass integer labels in "
                    f"0..{k - 1}, or probability rows of shape ({m}, {k})."
                )
        bad = (raw < 0) | (raw >= k)
        if bad.any():
            raise ValueError(
                f"target has the class label {int(raw[bad][0])} {describe_position(bad)}, but pred "
                f"has K={k} classes, so labels must be in 0..{k - 1}. Re-encode the labels, or "
                "give pred one column per class."
            )
        return raw.astype(np.intp)
    target = as_float_array(raw, "target")
    check_same_shape(pred, target, ("pred", "target"))
    check_finite(target, "target")
    if (target < 0.0).any() or (target > 1.0).any():
        raise ValueError(
            f"{loss} needs one-hot or probability rows in target, values in [0, 1]; got "
            f"{_describe_range(target, 0.0, 1.0)}. Or pass integer class labels of shape ({m},)."
        )
    off = _row_off_one(target)
    if off is not None:
        raise ValueError(
            f"{loss} needs target rows that sum to 1 (one-hot or probabilities); row {off[0]} "
            f"sums to {off[1]:.6g}. Normalize the rows, or pass integer class labels."
        )
    return target.astype(pred.dtype, copy=False)


def _check_class_pred(pred, loss: str) -> np.ndarray:
    pred = as_float_array(pred, "pred")
    if pred.ndim != 2 or pred.shape[1] == 0:
        raise ValueError(
            f"{loss} needs pred of shape (m, K): one row per sample, one column per class; got "
            f"shape {pred.shape}. For a single sample use pred[None, :]; for one output per "
            "sample use the binary cross-entropy."
        )
    check_finite(pred, "pred")
    return pred


class CrossEntropy(Loss):
    r"""Categorical cross-entropy on predicted class probabilities (rows of a softmax).

    ``pred`` has shape ``(m, K)`` with rows of non-negative numbers that sum to 1; ``target`` is
    either integer class labels :math:`c_i \in \{0, \dots, K-1\}` of shape ``(m,)`` or rows
    :math:`t_i` of shape ``(m, K)`` (one-hot or probabilities, summing to 1):

    .. math::

        \ell_i = -\sum_k t_{ik} \log p_{ik}, \qquad
        \frac{\partial \ell_i}{\partial p_{ik}} = -\frac{t_{ik}}{p_{ik}},

    which for a label is :math:`-\log p_{i c_i}`. "mean" divides by :math:`m`. Probabilities
    below :math:`\epsilon` (:math:`2^{-24}` in float32, :math:`2^{-53}` in float64) are raised to
    it, so a predicted 0 gives a loss of at most :math:`-\log\epsilon` per sample and a finite
    gradient. For a softmax output, prefer :class:`CrossEntropyWithLogits` on the scores.

    Examples
    --------
    >>> round(CrossEntropy()(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]), np.array([0, 2])), 6)
    0.289909
    """

    name = "ce"
    aliases = ("cross_entropy", "categorical_cross_entropy", "categorical_crossentropy")
    title = "cross-entropy"
    formula = "-t·log(p), one term per class"
    fuses_with = "softmax"
    logits_loss = "ce_with_logits"
    from_logits = False

    def _check(self, pred, target):
        pred = _check_class_pred(pred, "CrossEntropy")
        if (pred < 0.0).any():
            raise ValueError(
                "CrossEntropy needs predicted probabilities (rows >= 0 that sum to 1); got "
                f"{_describe_range(pred, 0.0, np.inf)}. Use a Softmax output layer, or "
                "CrossEntropyWithLogits on the raw scores."
            )
        off = _row_off_one(pred)
        if off is not None:
            raise ValueError(
                f"CrossEntropy needs predicted probabilities whose rows sum to 1; row {off[0]} of "
                f"pred sums to {off[1]:.6g}. Use a Softmax output layer, or "
                "CrossEntropyWithLogits on the raw scores."
            )
        return pred, _check_class_target(pred, target, "CrossEntropy")

    def _forward(self, pred, target):
        eps = _clamp_eps(pred.dtype)
        self._target = target
        if target.ndim == 1:
            rows = np.arange(pred.shape[0])
            p = np.maximum(pred[rows, target], eps)
            self._p, self._shape = p, pred.shape
            return self._reduce_samples(-np.log(p))
        p = np.maximum(pred, eps)
        self._p = p
        elem = np.log(p)
        elem *= target
        return self._reduce_samples(-elem.sum(axis=1))

    def _backward(self):
        p, target = self._p, self._target
        if target.ndim == 1:
            grad = np.zeros(self._shape, dtype=p.dtype)
            grad[np.arange(p.shape[0]), target] = -1.0 / p
        else:
            grad = -target / p
        if self.reduction == "mean":
            grad /= grad.shape[0]
        return grad


class CrossEntropyWithLogits(Loss):
    r"""Softmax cross-entropy on raw scores (logits) :math:`x` of shape ``(m, K)``.

    ``target`` is integer class labels of shape ``(m,)`` or rows :math:`t_i` of shape
    ``(m, K)`` (one-hot or probabilities, summing to 1). Label smoothing :math:`s` replaces a
    target row by :math:`t' = (1 - s)\,t + s/K`; ``class_weight`` :math:`w` multiplies sample
    :math:`i`'s loss by :math:`v_i = w_{c_i}`, the weight of its class (:math:`v_i = \sum_k w_k
    t_{ik}` for probability rows, taken before smoothing):

    .. math::

        \ell_i = -v_i \sum_k t'_{ik} \log\operatorname{softmax}(x_i)_k, \qquad
        \frac{\partial \ell_i}{\partial x_{ik}}
            = v_i\bigl(\operatorname{softmax}(x_i)_k - t'_{ik}\bigr).

    "mean" divides :math:`\sum_i \ell_i` by :math:`m`, **not** by :math:`\sum_i v_i` as PyTorch
    does: every reduction is a plain sum or average of per-sample losses, and a mini-batch's
    loss and gradient stay unbiased estimates of the weighted loss over the whole data set
    (dividing by each batch's weight total would not be). With unit weights the two agree.

    Exact and finite for logits up to :math:`\pm 10^9` in float32 and float64. Each row is
    shifted by its maximum :math:`x_{i,\max}`; with :math:`r_i = \sum_{k \ne \max} e^{x_{ik} -
    x_{i,\max}}`, :math:`\log\sum_k e^{x_{ik}} = x_{i,\max} + \operatorname{log1p}(r_i)` and the
    loss is formed from the shifted logits, so neither the :math:`10^9` offset nor a tiny
    :math:`r_i` loses digits (``_numerics.logsumexp`` adds the maximum back, which in float32
    rounds a tie at :math:`10^9` from :math:`\log 2` to 0). Likewise
    :math:`1 - \operatorname{softmax}(x)_{c}` is formed as a sum of the other classes'
    probabilities, so a confident correct prediction gets its tiny gradient with full
    relative accuracy.

    Examples
    --------
    >>> loss = CrossEntropyWithLogits()
    >>> round(loss(np.log([[1.0, 2.0, 5.0]]), np.array([2])), 6)   # -ln(5/8)
    0.470004
    >>> loss.backward()                                            # [1, 2, 5]/8 - [0, 0, 1]
    array([[ 0.125,  0.25 , -0.375]])
    """

    name = "ce_with_logits"
    aliases = ("cross_entropy_with_logits", "softmax_cross_entropy", "ce_logits")
    title = "cross-entropy on logits"
    formula = "-t·log(softmax(z))"
    applies = "softmax"
    from_logits = True

    def __init__(self, label_smoothing: float = 0.0, class_weight=None, reduction: str = "mean"):
        super().__init__(reduction)
        self.label_smoothing = check_scalar(
            label_smoothing, "label_smoothing", "CrossEntropyWithLogits", low=0.0, high=1.0
        )
        self.class_weight = _check_weights(
            class_weight, "class_weight", "CrossEntropyWithLogits", positive=False, scalar=False,
            allowed="None or a 1-D array of non-negative floats, one per class",
        )

    def _check(self, pred, target):
        pred = _check_class_pred(pred, "CrossEntropyWithLogits")
        w = self.class_weight
        if w is not None and w.shape[0] != pred.shape[1]:
            raise ValueError(
                f"class_weight has {w.shape[0]} entries but pred has K={pred.shape[1]} classes "
                f"(shape {pred.shape}); pass one weight per class."
            )
        return pred, _check_class_target(pred, target, "CrossEntropyWithLogits")

    def _forward(self, pred, target):
        m, k = pred.shape
        rows = np.arange(m)
        top = np.argmax(pred, axis=1)
        shifted = pred - pred[rows, top][:, None]  # <= 0, exactly 0 at the row maximum
        e = np.exp(shifted)
        e[rows, top] = 0.0
        rest = e.sum(axis=1)  # sum of exp over the classes other than the maximum
        e[rows, top] = 1.0
        log_s = np.log1p(rest)  # log sum_k exp(shifted_k)
        s = self.label_smoothing
        w = self.class_weight
        if target.ndim == 1:
            # -sum_k t'_k (shifted_k - log_s) with t' = (1 - s) onehot + s/K, sum_k t'_k = 1
            per = (
                log_s - shifted[rows, target]
                if s == 0.0
                else (log_s - (1.0 - s) * shifted[rows, target] - (s / k) * shifted.sum(axis=1))
            )
            weight = None if w is None else w.astype(pred.dtype, copy=False)[target]
            t = target
        else:
            t = target if s == 0.0 else (1.0 - s) * target + s / k
            per = t.sum(axis=1) * log_s - (t * shifted).sum(axis=1)
            weight = None if w is None else target @ w.astype(pred.dtype, copy=False)
        if weight is not None:
            per *= weight
        self._e, self._rest, self._top, self._t, self._weight = e, rest, top, t, weight
        return self._reduce_samples(per)

    def _backward(self):
        e, rest, top, t = self._e, self._rest, self._top, self._t
        m, k = e.shape
        rows = np.arange(m)
        total = (rest + 1.0)[:, None]
        prob = e / total
        if t.ndim == 1:
            # prob - onehot, with 1 - prob_c summed from the other classes (no cancellation)
            prob[rows, t] = 0.0
            prob[rows, t] = -prob.sum(axis=1)
            if self.label_smoothing:
                s = self.label_smoothing
                prob[rows, t] += s
                prob -= s / k
            grad = prob
        else:
            # prob * sum(t) - t = prob * (sum(t) - t) - t * (1 - prob), each product >= 0
            q = total - e
            q[rows, top] = rest
            q /= total
            q *= t
            grad = t.sum(axis=1, keepdims=True) - t
            grad *= prob
            grad -= q
        if self._weight is not None:
            grad *= self._weight[:, None]
        if self.reduction == "mean":
            grad /= m
        return grad


# --- registry ------------------------------------------------------------------------------------

LOSSES: dict[str, type[Loss]] = {
    cls.name: cls
    for cls in (
        MSE,
        BinaryCrossEntropy,
        BinaryCrossEntropyWithLogits,
        CrossEntropy,
        CrossEntropyWithLogits,
        Huber,
    )
}
"""Canonical loss names -> classes: the one list of names (CLI, derivation engine, tests)."""

ALIASES: dict[str, str] = {alias: cls.name for cls in LOSSES.values() for alias in cls.aliases}
"""Other spellings -> canonical names, from each class's ``aliases``. :func:`get` also accepts
the class names."""


def get(name_or_instance, **kwargs) -> Loss:
    """A fresh loss from a name (``"bce"``, an alias, or a class name) or a :class:`Loss` class.

    ``kwargs`` go to the constructor: ``get("ce_with_logits", label_smoothing=0.1)``. A
    :class:`Loss` instance is returned as it is (and then takes no ``kwargs``): the rule of every
    ``get`` in chainrule, see :mod:`chainrule._registry`.

    Examples
    --------
    >>> get("ce_with_logits", label_smoothing=0.1)
    CrossEntropyWithLogits(label_smoothing=0.1, class_weight=None, reduction='mean')
    """
    return _registry.build(name_or_instance, kwargs, kind="loss", base=Loss, registry=LOSSES,
                           aliases=ALIASES, example="mse")


def canonical_name(name: str) -> str | None:
    """The key of :data:`LOSSES` that ``name`` means (case, aliases, class names), or None.

    Examples
    --------
    >>> canonical_name("Log_Loss"), canonical_name("BinaryCrossEntropyWithLogits")
    ('bce', 'bce_with_logits')
    """
    return _registry.canonical(name, LOSSES, ALIASES)
