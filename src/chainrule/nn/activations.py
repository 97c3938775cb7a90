r"""Activation functions, each with its derivative right beside it, and a registry by name.

Every activation :math:`f` is a layer: ``forward(z)`` returns :math:`f(z)` and caches what the
backward pass needs; ``backward(grad)`` receives :math:`\partial L / \partial f` and returns
:math:`\partial L / \partial z`. For the elementwise ones that is ``grad * f'(z)``; where
:math:`f'` is a function of the output (sigmoid :math:`s(1-s)`, tanh :math:`1-t^2`, ReLU, ELU,
SELU, softplus, softmax) it is computed from the cached output, which
saves recomputing :math:`f`. Each class's docstring says which.

- dtypes: float32 in, float32 out (forward and backward); float64 stays float64; integers are
  promoted to float64. Constants are Python floats, so no float64 temporaries appear for float32.
- Stability: no ``exp`` of a large positive number anywhere; every activation is finite and warns
  of nothing at :math:`\pm 10^9`. NaN is neither rejected nor hidden: it propagates to NaN.
- Conventions at the kinks (the point :math:`z = 0`): the left branch, as PyTorch does.
  :math:`\mathrm{ReLU}'(0) = 0`, :math:`\mathrm{LeakyReLU}'(0) = \alpha`,
  :math:`\mathrm{ELU}'(0) = \alpha`, :math:`\mathrm{SELU}'(0) = \lambda\alpha`.
- ``derivative(z)`` is :math:`f'(z)` computed from ``z`` alone (no caching), for plots and
  diagnosis; Softmax and LogSoftmax have a Jacobian instead and raise TypeError there.

>>> from chainrule.nn import get
>>> act = get("tanh")
>>> act(np.array([0.0, 1.0])).round(4)
array([0.    , 0.7616])
>>> act.backward(np.ones(2)).round(4)  # 1 - tanh(z)^2, from the cached output
array([1.  , 0.42])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np

from chainrule import _registry
from chainrule._checks import as_float_array, check_scalar
from chainrule._numerics import constant_like as _const
from chainrule._numerics import softmax as _softmax
from chainrule.nn.activation_base import (
    Activation,
    branches,
    silent_softplus,
    stable_sigmoid,
    step,
)
from chainrule.nn.gated import GELU, Mish, SiLU

__all__ = [
    "ACTIVATIONS",
    "ALIASES",
    "CUSTOM_BUILDERS",
    "ELU",
    "GELU",
    "SELU",
    "Activation",
    "Identity",
    "LeakyReLU",
    "LogSoftmax",
    "Mish",
    "ReLU",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Softsign",
    "Tanh",
    "canonical_name",
    "from_config",
    "get",
]

# SELU's constants (Klambauer et al., 2017, "Self-Normalizing Neural Networks"), to double
# precision: lambda = 1.0507009873554804934..., alpha = 1.6732632423543772848...
_SELU_SCALE = 1.0507009873554805
_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE_ALPHA = _SELU_SCALE * _SELU_ALPHA


# --- elementwise activations ---------------------------------------------------------------------


class Identity(Activation):
    r"""The identity, for regression outputs.

    .. math:: f(z) = z, \qquad f'(z) = 1.

    ``forward`` returns a copy of ``z``; ``backward`` a copy of ``grad`` (nothing is cached but
    the shape and dtype).

    Examples
    --------
    >>> from chainrule.nn import Identity
    >>> z = np.array([-2.0, 0.0, 1.5])
    >>> act = Identity()
    >>> act(z).round(4)
    array([-2. ,  0. ,  1.5])
    >>> act.backward(np.ones(3)).round(4)  # f'(z), from what forward cached
    array([1., 1., 1.])
    """

    name = "identity"
    aliases = ("linear",)
    title = "identity"
    formula = "f(z) = z"
    derivative_text = "f'(z) = 1"
    output_form_text = "1"

    def __init__(self):
        self._ref: np.ndarray | None = None

    def forward(self, z):
        z = as_float_array(z, "z")
        self._ref = np.broadcast_to(np.zeros((), dtype=z.dtype), z.shape)  # shape + dtype, no data
        return np.array(z, copy=True)

    def backward(self, grad):
        grad = self._grad(grad, self._ref)
        return np.array(grad, dtype=self._ref.dtype, copy=True)

    def derivative(self, z):
        return np.ones_like(as_float_array(z, "z"))

    def output_form(self, out):
        return np.ones_like(as_float_array(out, "out"))


class Sigmoid(Activation):
    r"""The logistic sigmoid.

    .. math::

        f(z) = \sigma(z) = \frac{1}{1 + e^{-z}}, \qquad f'(z) = \sigma(z)\,(1 - \sigma(z)).

    ``forward`` uses ``chainrule._numerics.sigmoid`` (never ``exp`` of a large positive number,
    finite at :math:`\pm 10^9`). ``backward`` reads the cached **output** :math:`s`:
    ``grad * s * (1 - s)``. ``derivative(z)`` uses :math:`\sigma(z)\sigma(-z)`, which keeps its
    relative accuracy for large :math:`z` where :math:`1 - s` rounds.

    Examples
    --------
    >>> from chainrule.nn import Sigmoid
    >>> z = np.array([-2.0, 0.0, 1.5])
    >>> act = Sigmoid()
    >>> act(z).round(4)
    array([0.1192, 0.5   , 0.8176])
    >>> act.backward(np.ones(3)).round(4)  # f'(z), from what forward cached
    array([0.105 , 0.25  , 0.1491])
    >>> act.derivative(np.array([0.0, 40.0]))  # sigma(z) sigma(-z): e^-40 survives
    array([2.50000000e-01, 4.24835426e-18])
    """

    name = "sigmoid"
    aliases = ("logistic",)
    title = "sigmoid"
    formula = "σ(z) = 1/(1 + e^(-z))"
    derivative_text = "σ'(z) = σ(z)(1 - σ(z))"
    output_form_text = "yhat(1 - yhat)"

    def __init__(self):
        self._out: np.ndarray | None = None

    def forward(self, z):
        self._out = stable_sigmoid(as_float_array(z, "z"))
        return self._out

    def backward(self, grad):
        grad = self._grad(grad, self._out)
        s = self._out
        d = np.subtract(1.0, s)
        d *= s
        return np.multiply(d, grad, out=d)

    def derivative(self, z):
        z = as_float_array(z, "z")
        d = stable_sigmoid(z)
        d *= stable_sigmoid(-z)
        return d

    def output_form(self, out):
        out = as_float_array(out, "out")
        d = np.subtract(1.0, out)
        d *= out
        return d


class Tanh(Activation):
    r"""The hyperbolic tangent.

    .. math:: f(z) = \tanh z, \qquad f'(z) = 1 - \tanh^2 z.

    ``backward`` reads the cached **output** :math:`t`: ``grad * (1 - t**2)``.
    ``derivative(z)`` uses :math:`\operatorname{sech}^2 z = 4e^{-2|z|}/(1 + e^{-2|z|})^2`, which
    neither overflows nor loses relative accuracy for large :math:`|z|`.

    Examples
    --------
    >>> from chainrule.nn import Tanh
    >>> z = np.array([-2.0, 0.0, 1.5])
    >>> act = Tanh()
    >>> act(z).round(4)
    array([-0.964 ,  0.    ,  0.9051])
    >>> act.backward(np.ones(3)).round(4)  # f'(z), from what forward cached
    array([0.0707, 1.    , 0.1807])
    """

    name = "tanh"
    title = "hyperbolic tangent"
    formula = "tanh(z) = (e^z - e^(-z))/(e^z + e^(-z))"
    derivative_text = "tanh'(z) = 1 - tanh²(z)"
    output_form_text = "1 - yhat²"

    def __init__(self):
        self._out: np.ndarray | None = None

    def forward(self, z):
        self._out = np.tanh(as_float_array(z, "z"))
        return self._out

    def backward(self, grad):
        grad = self._grad(grad, self._out)
        d = np.square(self._out)
        np.subtract(1.0, d, out=d)
        return np.multiply(d, grad, out=d)

    def derivative(self, z):
        z = as_float_array(z, "z")
        e = np.abs(z)
        e *= -2.0
        np.exp(e, out=e)
        d = e + 1.0
        np.square(d, out=d)
        np.divide(e, d, out=d)
        d *= 4.0
        return d

    def output_form(self, out):
        d = np.square(as_float_array(out, "out"))
        return np.subtract(1.0, d, out=d)


class ReLU(Activation):
    r"""The rectified linear unit.

    .. math::

        f(z) = \max(0, z), \qquad
        f'(z) = \begin{cases} 1 & z > 0 \\ 0 & z \le 0 \end{cases}

    :math:`f'(0) = 0` by convention (PyTorch's; the kink has no derivative). ``backward`` reads
    the cached **output**: :math:`f'` is 1 exactly where the output is positive (a NaN output
    gives a NaN derivative, so a NaN is never turned into a zero gradient).

    Examples
    --------
    >>> from chainrule.nn import ReLU
    >>> z = np.array([-2.0, 0.0, 1.5])
    >>> act = ReLU()
    >>> act(z).round(4)
    array([0. , 0. , 1.5])
    >>> act.backward(np.ones(3)).round(4)  # f'(z), from what forward cached
    array([0., 0., 1.])
    >>> act.derivative(np.array([0.0]))  # the kink takes the left branch
    array([0.])
    """

    name = "relu"
    title = "rectified linear unit"
    formula = "relu(z) = max(0, z)"
    derivative_text = "relu'(z) = 1 for z > 0, 0 otherwise"
    output_form_text = "1 for yhat > 0, 0 otherwise"

    def __init__(self):
        self._out: np.ndarray | None = None

    def forward(self, z):
        z = as_float_array(z, "z")
        self._out = np.maximum(z, _const(z, 0.0))  # maximum propagates NaN
        return self._out

    def backward(self, grad):
        grad = self._grad(grad, self._out)
        # step without its first pass: the output is already >= 0 (or NaN), so ceil then
        # min(., 1) gives 1 where out > 0, 0 where out == 0 and NaN where NaN.
        d = np.ceil(self._out)
        np.minimum(d, _const(d, 1.0), out=d)
        return np.multiply(d, grad, out=d)

    def derivative(self, z):
        return step(as_float_array(z, "z"))

    def output_form(self, out):
        return step(as_float_array(out, "out"))


class LeakyReLU(Activation):
    r"""ReLU with a slope :math:`\alpha` for negative inputs.

    .. math::

        f(z) = \begin{cases} z & z > 0 \\ \alpha z & z \le 0 \end{cases}, \qquad
        f'(z) = \begin{cases} 1 & z > 0 \\ \alpha & z \le 0 \end{cases}

    :math:`f'(0) = \alpha` by convention. ``backward`` reads the cached **input** (its sign), so
    that any finite :math:`\alpha` works, negative or above 1 included.

    Parameters
    ----------
    alpha : float, default 0.01
        The slope for :math:`z \le 0`; any finite value.

    Examples
    --------
    >>> from chainrule.nn import LeakyReLU
    >>> z = np.array([-2.0, 0.0, 1.5])
    >>> act = LeakyReLU(alpha=0.1)
    >>> act(z).round(4)
    array([-0.2,  0. ,  1.5])
    >>> act.backward(np.ones(3)).round(4)  # f'(z), from what forward cached
    array([0.1, 0.1, 1. ])
    """

    name = "leaky_relu"
    aliases = ("leakyrelu", "lrelu")
    title = "leaky rectified linear unit"
    formula = "f(z) = z for z > 0, α·z otherwise"
    derivative_text = "f'(z) = 1 for z > 0, α otherwise"
    output_form_text = None

    def __init__(self, alpha: float = 0.01):
        self.alpha = check_scalar(alpha, "alpha", "LeakyReLU")
        self._z: np.ndarray | None = None

    def forward(self, z):
        z = as_float_array(z, "z")
        out = np.minimum(z, _const(z, 0.0))
        out *= self.alpha
        out += np.maximum(z, _const(z, 0.0))  # max(z, 0) + alpha min(z, 0); NaN stays NaN
        self._z = z
        return out

    def _slope(self, z: np.ndarray) -> np.ndarray:
        h = step(z)
        d = np.subtract(1.0, h)
        d *= self.alpha
        d += h  # 1 where z > 0, alpha where z <= 0, exactly; NaN where z is NaN
        return d

    def backward(self, grad):
        grad = self._grad(grad, self._z)
        d = self._slope(self._z)
        return np.multiply(d, grad, out=d)

    def derivative(self, z):
        return self._slope(as_float_array(z, "z"))


class ELU(Activation):
    r"""The exponential linear unit (Clevert et al., 2016).

    .. math::

        f(z) = \begin{cases} z & z > 0 \\ \alpha (e^{z} - 1) & z \le 0 \end{cases}, \qquad
        f'(z) = \begin{cases} 1 & z > 0 \\ \alpha e^{z} = f(z) + \alpha & z \le 0 \end{cases}

    :math:`f'(0) = \alpha` by convention (the left branch, as PyTorch; with the default
    :math:`\alpha = 1` the function is differentiable there and both branches give 1).
    ``backward`` reads the cached **output**: 1 where it is positive, :math:`f + \alpha` elsewhere.
    That needs :math:`\alpha \ge 0` (so that the output's sign is the input's).
    ``forward`` uses ``expm1(min(z, 0))``, exact near 0 and never overflowing.

    Parameters
    ----------
    alpha : float, default 1.0
        The scale of the negative branch, :math:`\alpha \ge 0`.

    Examples
    --------
    >>> from chainrule.nn import ELU
    >>> z = np.array([-2.0, 0.0, 1.5])
    >>> act = ELU()
    >>> act(z).round(4)
    array([-0.8647,  0.    ,  1.5   ])
    >>> act.backward(np.ones(3)).round(4)  # f'(z), from what forward cached
    array([0.1353, 1.    , 1.    ])
    """

    name = "elu"
    title = "exponential linear unit"
    formula = "elu(z) = z for z > 0, α(e^z - 1) otherwise"
    derivative_text = "elu'(z) = 1 for z > 0, α·e^z otherwise"
    output_form_text = "1 for yhat > 0, yhat + α otherwise"

    def __init__(self, alpha: float = 1.0):
        self.alpha = check_scalar(alpha, "alpha", "ELU", low=0.0)
        self._out: np.ndarray | None = None

    def forward(self, z):
        z = as_float_array(z, "z")
        out = np.minimum(z, _const(z, 0.0))
        np.expm1(out, out=out)
        out *= self.alpha
        out += np.maximum(z, _const(z, 0.0))  # exactly one of the two terms is nonzero
        self._out = out
        return out

    def backward(self, grad):
        grad = self._grad(grad, self._out)
        out = self._out
        d = branches(step(out), 1.0, np.add(out, self.alpha))
        return np.multiply(d, grad, out=d)

    def derivative(self, z):
        z = as_float_array(z, "z")
        left = np.minimum(z, _const(z, 0.0))
        np.exp(left, out=left)
        left *= self.alpha
        return branches(step(z), 1.0, left)

    def output_form(self, out):
        out = as_float_array(out, "out")
        return branches(step(out), 1.0, np.add(out, self.alpha))


class SELU(Activation):
    r"""The scaled ELU (Klambauer et al., 2017), with its fixed :math:`\lambda` and :math:`\alpha`.

    .. math::

        f(z) = \lambda \begin{cases} z & z > 0 \\ \alpha (e^{z} - 1) & z \le 0 \end{cases},
        \qquad
        f'(z) = \begin{cases} \lambda & z > 0 \\
                              \lambda\alpha e^{z} = f(z) + \lambda\alpha & z \le 0 \end{cases}

    with :math:`\lambda \approx 1.0507009873554805` and :math:`\alpha \approx 1.6732632423543772`.
    :math:`f'(0) = \lambda\alpha \approx 1.7581` by convention (the left branch, as PyTorch).
    ``backward`` reads the cached **output**: :math:`\lambda` where it is positive,
    :math:`f + \lambda\alpha` elsewhere.

    Examples
    --------
    >>> from chainrule.nn import SELU
    >>> z = np.array([-2.0, 0.0, 1.5])
    >>> act = SELU()
    >>> act(z).round(4)
    array([-1.5202,  0.    ,  1.5761])
    >>> act.backward(np.ones(3)).round(4)  # f'(z), from what forward cached
    array([0.2379, 1.7581, 1.0507])
    """

    name = "selu"
    title = "scaled exponential linear unit"
    formula = "selu(z) = λz for z > 0, λα(e^z - 1) otherwise (λ ≈ 1.0507, α ≈ 1.6733)"
    derivative_text = "selu'(z) = λ for z > 0, λα·e^z otherwise"
    output_form_text = "λ for yhat > 0, yhat + λα otherwise"
    scale: ClassVar[float] = _SELU_SCALE
    alpha: ClassVar[float] = _SELU_ALPHA

    def __init__(self):
        self._out: np.ndarray | None = None

    def forward(self, z):
        z = as_float_array(z, "z")
        out = np.minimum(z, _const(z, 0.0))
        np.expm1(out, out=out)
        out *= _SELU_SCALE_ALPHA
        right = np.maximum(z, _const(z, 0.0))
        right *= _SELU_SCALE
        out += right  # exactly one of the two terms is nonzero
        self._out = out
        return out

    def backward(self, grad):
        grad = self._grad(grad, self._out)
        out = self._out
        d = branches(step(out), _SELU_SCALE, np.add(out, _SELU_SCALE_ALPHA))
        return np.multiply(d, grad, out=d)

    def derivative(self, z):
        z = as_float_array(z, "z")
        left = np.minimum(z, _const(z, 0.0))
        np.exp(left, out=left)
        left *= _SELU_SCALE_ALPHA
        return branches(step(z), _SELU_SCALE, left)

    def output_form(self, out):
        out = as_float_array(out, "out")
        return branches(step(out), _SELU_SCALE, np.add(out, _SELU_SCALE_ALPHA))


class Softplus(Activation):
    r"""The softplus, a smooth ReLU.

    .. math::

        f(z) = \log(1 + e^{z}), \qquad f'(z) = \sigma(z) = 1 - e^{-f(z)}.

    ``forward`` is ``logaddexp(0, z)``. ``backward`` reads the cached **output**:
    :math:`1 - e^{-f}`, evaluated as ``-expm1(-f)`` so that it stays accurate when :math:`f` is
    tiny (very negative :math:`z`). ``derivative(z)`` is the stable sigmoid of :math:`z`.

    Examples
    --------
    >>> from chainrule.nn import Softplus
    >>> z = np.array([-2.0, 0.0, 1.5])
    >>> act = Softplus()
    >>> act(z).round(4)
    array([0.1269, 0.6931, 1.7014])
    >>> act.backward(np.ones(3)).round(4)  # f'(z), from what forward cached
    array([0.1192, 0.5   , 0.8176])
    """

    name = "softplus"
    title = "softplus"
    formula = "softplus(z) = log(1 + e^z)"
    derivative_text = "softplus'(z) = σ(z)"
    output_form_text = "1 - e^(-yhat)"

    def __init__(self):
        self._out: np.ndarray | None = None

    def forward(self, z):
        self._out = silent_softplus(as_float_array(z, "z"))
        return self._out

    def backward(self, grad):
        grad = self._grad(grad, self._out)
        d = np.negative(self._out)
        np.expm1(d, out=d)
        np.negative(d, out=d)
        return np.multiply(d, grad, out=d)

    def derivative(self, z):
        return stable_sigmoid(as_float_array(z, "z"))

    def output_form(self, out):
        d = np.negative(as_float_array(out, "out"))
        np.expm1(d, out=d)
        return np.negative(d, out=d)


class Softsign(Activation):
    r"""The softsign.

    .. math::

        f(z) = \frac{z}{1 + |z|}, \qquad f'(z) = \frac{1}{(1 + |z|)^2} = (1 - |f(z)|)^2.

    ``backward`` reads the cached **denominator** :math:`1 + |z|` rather than the output: the
    output form :math:`(1 - |f|)^2` cancels catastrophically for large :math:`|z|`. It divides
    twice instead of squaring, so that nothing overflows.

    Examples
    --------
    >>> from chainrule.nn import Softsign
    >>> z = np.array([-2.0, 0.0, 1.5])
    >>> act = Softsign()
    >>> act(z).round(4)
    array([-0.6667,  0.    ,  0.6   ])
    >>> act.backward(np.ones(3)).round(4)  # f'(z), from what forward cached
    array([0.1111, 1.    , 0.16  ])
    """

    name = "softsign"
    title = "softsign"
    formula = "softsign(z) = z/(1 + |z|)"
    derivative_text = "softsign'(z) = 1/(1 + |z|)²"
    output_form_text = None

    def __init__(self):
        self._den: np.ndarray | None = None

    def forward(self, z):
        z = as_float_array(z, "z")
        den = np.abs(z)
        den += 1.0
        self._den = den
        return np.divide(z, den)

    def backward(self, grad):
        grad = self._grad(grad, self._den)
        d = np.divide(grad, self._den, out=np.empty_like(self._den))
        d /= self._den
        return d

    def derivative(self, z):
        den = np.abs(as_float_array(z, "z"))
        den += 1.0
        d = np.reciprocal(den)
        d /= den
        return d



# --- activations over an axis --------------------------------------------------------------------


def _no_elementwise_derivative(owner: str):
    raise TypeError(
        f"{owner} has no elementwise derivative: each output depends on the whole row, so its "
        "derivative is a Jacobian matrix, not an array of f'(z). Use forward(z) and then "
        "backward(grad) for the Jacobian-vector product."
    )


class Softmax(Activation):
    r"""The softmax over ``axis``: a probability distribution per row.

    .. math::

        s_k = \frac{e^{z_k}}{\sum_j e^{z_j}}, \qquad
        \frac{\partial s_k}{\partial z_i} = s_k(\delta_{ki} - s_i), \qquad
        \frac{\partial L}{\partial z_i} = s_i\Bigl(g_i - \sum_k g_k s_k\Bigr).

    ``forward`` shifts by the row maximum. ``backward`` reads the cached **output** and returns the
    full Jacobian-vector product above, never the diagonal :math:`s_i(1 - s_i)` alone.

    Parameters
    ----------
    axis : int, default -1
        The axis the distribution runs along.

    Examples
    --------
    >>> from chainrule.nn import Softmax
    >>> act = Softmax()
    >>> s = act(np.array([[1.0, 2.0, 3.0]]))
    >>> s.round(4)
    array([[0.09  , 0.2447, 0.6652]])
    >>> act.backward(np.array([[1.0, 0.0, 0.0]])).round(4)  # s_1 (e_1 - s): a Jacobian row
    array([[ 0.0819, -0.022 , -0.0599]])
    """

    name = "softmax"
    title = "softmax"
    formula = "p_k = e^(z_k)/Σ_j e^(z_j)"
    derivative_text = "∂p_k/∂z_i = p_k(δ_ki - p_i)"
    output_form_text = None
    elementwise = False

    def __init__(self, axis: int = -1):
        self.axis = check_scalar(axis, "axis", "Softmax", kind=int)
        self._out: np.ndarray | None = None

    def forward(self, z):
        self._out = _softmax(as_float_array(z, "z"), axis=self.axis)
        return self._out

    def backward(self, grad):
        grad = self._grad(grad, self._out)
        s = self._out
        res = np.multiply(grad, s, out=np.empty_like(s))
        dot = np.sum(res, axis=self.axis, keepdims=True)
        np.subtract(grad, dot, out=res)
        res *= s
        return res

    def derivative(self, z):
        _no_elementwise_derivative("Softmax")


class LogSoftmax(Activation):
    r"""The log of the softmax over ``axis``, computed without forming the softmax's log.

    .. math::

        f_k = z_k - \log\sum_j e^{z_j}, \qquad
        \frac{\partial f_k}{\partial z_i} = \delta_{ki} - s_i, \qquad
        \frac{\partial L}{\partial z_i} = g_i - s_i \sum_k g_k,

    where :math:`s = \operatorname{softmax}(z)`. ``forward`` is max-shifted
    (:math:`f = (z - m) - \log\sum_j e^{z_j - m}`, :math:`m = \max_j z_j`) and caches
    :math:`s`, which ``backward`` reads.

    Parameters
    ----------
    axis : int, default -1
        The axis the distribution runs along.

    Examples
    --------
    >>> from chainrule.nn import LogSoftmax
    >>> act = LogSoftmax()
    >>> act(np.array([[1.0, 2.0, 3.0]])).round(4)
    array([[-2.4076, -1.4076, -0.4076]])
    >>> act.backward(np.array([[1.0, 0.0, 0.0]])).round(4)  # e_1 - s
    array([[ 0.91  , -0.2447, -0.6652]])
    >>> LogSoftmax()(np.array([[0.0, 1e9]]))  # max-shifted: finite at 1e9
    array([[-1.e+09,  0.e+00]])
    """

    name = "log_softmax"
    aliases = ("logsoftmax",)
    title = "log-softmax"
    formula = "f_k = z_k - log Σ_j e^(z_j)"
    derivative_text = "∂f_k/∂z_i = δ_ki - p_i"
    output_form_text = None
    elementwise = False

    def __init__(self, axis: int = -1):
        self.axis = check_scalar(axis, "axis", "LogSoftmax", kind=int)
        self._soft: np.ndarray | None = None

    def forward(self, z):
        z = as_float_array(z, "z")
        out = np.subtract(z, np.max(z, axis=self.axis, keepdims=True))
        soft = np.exp(out)
        total = np.sum(soft, axis=self.axis, keepdims=True)
        soft /= total
        out -= np.log(total)
        self._soft = soft
        return out

    def backward(self, grad):
        grad = self._grad(grad, self._soft)
        s = self._soft
        res = np.multiply(s, np.sum(grad, axis=self.axis, keepdims=True), out=np.empty_like(s))
        np.subtract(grad, res, out=res)
        return res

    def derivative(self, z):
        _no_elementwise_derivative("LogSoftmax")


# --- the registry --------------------------------------------------------------------------------

#: Canonical name -> class: the one list of activation names (the CLI's choices come from it).
ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls
    for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, SELU, Softplus, Softsign, GELU,
                SiLU, Mish, Softmax, LogSoftmax)
}

#: Other names people type -> canonical name, from each class's ``aliases`` (scikit-learn's
#: "identity", "logistic", "tanh" and "relu" all resolve; the class names, lower-cased, too).
ALIASES: dict[str, str] = {alias: cls.name for cls in ACTIVATIONS.values() for alias in cls.aliases}


def get(name_or_instance, **kwargs) -> Activation:
    """A fresh activation by name (``get("leaky_relu", alpha=0.1)``) or class, or the instance.

    Names are those of :data:`ACTIVATIONS` and :data:`ALIASES`, case-insensitive; an unknown name
    raises ValueError listing the known ones. An instance is returned as it is and takes no
    keyword arguments (the rule of every ``get`` in chainrule, see :mod:`chainrule._registry`).

    Parameters
    ----------
    name_or_instance : str, type or Activation
        A name of :data:`ACTIVATIONS` or :data:`ALIASES` (any case), an activation class, or an
        instance.
    **kwargs
        The constructor's arguments, for a name or a class.

    Returns
    -------
    Activation
        A new activation, or ``name_or_instance`` itself when it is one.

    Examples
    --------
    >>> from chainrule.nn import get
    >>> get("leaky_relu", alpha=0.1)(np.array([-1.0, 2.0]))
    array([-0.1,  2. ])
    >>> type(get("Logistic")).__name__
    'Sigmoid'
    """
    return _registry.build(name_or_instance, kwargs, kind="activation", base=Activation,
                           registry=ACTIVATIONS, aliases=ALIASES, example="relu")


def canonical_name(name: str) -> str | None:
    """The key of :data:`ACTIVATIONS` that ``name`` means (case, aliases, class names), or None.

    Parameters
    ----------
    name : str
        A name, an alias or a class name, in any case.

    Returns
    -------
    str or None
        The registry key, or None for a name that means no activation.

    Examples
    --------
    >>> from chainrule.nn import canonical_name
    >>> canonical_name("Logistic"), canonical_name("LeakyReLU"), canonical_name("swishy")
    ('sigmoid', 'leaky_relu', None)
    """
    return _registry.canonical(name, ACTIVATIONS, ALIASES)


#: Builders of the activations defined outside this module, by the key of their config that
#: marks them: :func:`from_config` calls ``builder(**config)`` for a config holding that key
#: (whatever its name). A module defining such activations registers its builder here when it
#: is imported (the derivation engine registers ``"formula"``).
CUSTOM_BUILDERS: dict[str, Callable[..., Activation]] = {}


def from_config(name: str, config: dict | None = None) -> Activation:
    """Rebuild an activation from its name and :meth:`Activation.get_config` (a model file).

    A config carrying a key of :data:`CUSTOM_BUILDERS` goes to that builder, whatever its name
    (a formula activation may be named like a built-in). A key that no builder has registered
    yet but that :data:`chainrule._registry.OPTIONAL_BUILDERS` names (``"formula"``: the
    derivation engine, which needs SymPy) has its module imported first, through that fixed
    list of module names. Any other config goes to :func:`get` with its name (built-ins,
    aliases, and the error for an unknown name).

    Parameters
    ----------
    name : str
        The activation's name as saved.
    config : dict or None
        What :meth:`Activation.get_config` returned (None or empty for no settings).

    Returns
    -------
    Activation
        A new activation equal to the saved one.

    Examples
    --------
    >>> from chainrule.nn import LeakyReLU, from_config
    >>> saved = LeakyReLU(alpha=0.2)
    >>> act = from_config(saved.name, saved.get_config())
    >>> type(act).__name__, act.alpha
    ('LeakyReLU', 0.2)
    """
    config = config or {}
    for key in config:
        if key not in CUSTOM_BUILDERS:
            _registry.load_optional_builder(key)
        if key in CUSTOM_BUILDERS:
            return CUSTOM_BUILDERS[key](**config)
    return get(name, **config)
