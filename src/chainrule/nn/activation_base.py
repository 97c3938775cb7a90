r"""The base class of the activations, and the elementwise primitives they share.

Every activation of :mod:`chainrule.nn.activations` derives from :class:`Activation`; the
primitives are exact at the kinks and silent on NaN, which they propagate.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np

from chainrule import _registry
from chainrule._checks import as_float_array, backward_before_forward
from chainrule._numerics import constant_like as _const
from chainrule._numerics import sigmoid as _sigmoid

__all__ = ["Activation", "branches", "silent_softplus", "stable_sigmoid", "step"]


def stable_sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``chainrule._numerics.sigmoid``, silent on NaN (``logaddexp`` flags NaN as invalid)."""
    with np.errstate(invalid="ignore"):
        return _sigmoid(z, out=out)


def silent_softplus(z: np.ndarray) -> np.ndarray:
    r""":math:`\log(1 + e^z)` as ``logaddexp(0, z)``, silent on NaN (which it propagates)."""
    with np.errstate(invalid="ignore"):
        return np.logaddexp(0.0, z)



_SCALAR_SAFE = ("forward", "backward", "derivative", "output_form")


def _scalar_safe(method):
    """``method`` taking a scalar or 0-d array as the one-element vector it is, and answering
    with a 0-d array: the primitives write in place (``out=``), which NumPy refuses for the
    scalars its ufuncs return on 0-d input."""

    def call(self, x, *args, **kwargs):
        if np.ndim(x) != 0:
            return method(self, x, *args, **kwargs)
        return np.reshape(method(self, np.reshape(x, 1), *args, **kwargs), ())

    return functools.wraps(method)(call)


class Activation:
    r"""Base class of the activations: a layer without parameters.

    Subclasses implement ``forward`` (which caches what the backward pass needs), ``backward``
    and ``derivative``. ``backward(grad)`` returns a new array of the forward pass's dtype and
    shape; it never modifies ``grad``. Each class is the one home of its names and texts, from
    which the registries, the derivation engine and the checkers read them:

    - ``name``: the key of :data:`ACTIVATIONS`; ``aliases``: other names for it, the keys of
      :data:`ALIASES` (the class name, lower-cased, is accepted as well);
    - ``title``: the activation in words (``"hyperbolic tangent"``), for sentences;
    - ``formula``: its textbook definition (``"σ(z) = 1/(1 + e^(-z))"``);
    - ``derivative_text``: the textbook derivative in :math:`z`
      (``"σ'(z) = σ(z)(1 - σ(z))"``);
    - ``output_form_text``: the derivative written through the output :math:`\hat y = f(z)`
      where backpropagation computes it so (``"yhat(1 - yhat)"``, ``"1 - yhat²"``), else None;
      :meth:`output_form` evaluates it;
    - ``elementwise``: False for the activations over an axis (softmax, log-softmax).

    Examples
    --------
    A subclass needs ``forward``, ``backward`` and ``derivative``; the registry's classes are the
    models:

    >>> from chainrule.nn import Activation, Tanh
    >>> issubclass(Tanh, Activation), Tanh.name, Tanh.derivative_text
    (True, 'tanh', "tanh'(z) = 1 - tanh²(z)")
    >>> act = Tanh()
    >>> act.derivative(np.array([0.0, 1.0])).round(4)
    array([1.  , 0.42])
    >>> act.output_form(act(np.array([0.0, 1.0]))).round(4)  # the same, from the output 1 - yhat^2
    array([1.  , 0.42])
    """

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    title: ClassVar[str] = ""
    formula: ClassVar[str] = ""
    derivative_text: ClassVar[str] = ""
    output_form_text: ClassVar[str | None] = None
    elementwise: ClassVar[bool] = True
    training: bool = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for method in _SCALAR_SAFE:
            if method in cls.__dict__:
                setattr(cls, method, _scalar_safe(cls.__dict__[method]))

    def forward(self, z) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, z):
        return self.forward(z)

    def derivative(self, z) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def output_form(self, out) -> np.ndarray:
        r""":math:`f'` as a function of the output ``out`` :math:`= f(z)`: the formula of
        ``output_form_text``. An activation whose derivative is not a function of its output
        alone (``output_form_text`` None) raises TypeError."""
        raise TypeError(
            f"{type(self).__name__}'s derivative is not written through its output "
            f"(output_form_text is None); use derivative(z), which takes the input."
        )

    def parameters(self) -> list:
        return []

    def gradients(self) -> list:
        return []

    def get_config(self) -> dict:
        """The constructor's keyword arguments, JSON-able (``{}`` when there are none)."""
        return _registry.constructor_config(self)

    def __repr__(self) -> str:
        return _registry.config_repr(self)

    def _grad(self, grad, cached: np.ndarray | None) -> np.ndarray:
        """``grad`` as a float array, after checking forward ran and the shapes agree (O(1))."""
        if cached is None:
            raise backward_before_forward(type(self).__name__)
        grad = as_float_array(grad, "grad")
        if grad.shape != cached.shape:
            raise ValueError(
                f"Shape mismatch: grad has shape {grad.shape} but {type(self).__name__}'s forward "
                f"output had shape {cached.shape}; pass dL/d(output) of the output's shape."
            )
        return grad


def step(a: np.ndarray) -> np.ndarray:
    """A fresh array: 1 where ``a > 0``, 0 where ``a <= 0``, NaN where ``a`` is NaN."""
    h = np.maximum(a, _const(a, 0.0))  # maximum, ceil and minimum all propagate NaN
    np.ceil(h, out=h)  # 0 stays 0; anything positive, subnormals included, becomes >= 1
    return np.minimum(h, _const(h, 1.0), out=h)  # (np.sign would do, but is several times slower)


def branches(h: np.ndarray, right: float, left: np.ndarray) -> np.ndarray:
    """``right`` where ``h == 1``, ``left`` where ``h == 0`` (``h`` from :func:`step`).

    ``h right + (1 - h) left``, exact for finite ``left``, written into ``left``. Arithmetic
    rather than ``np.where``/``copyto(where=)``: with a random sign pattern, as in a hidden
    layer, a masked select is several times slower than the four operations.
    """
    t = np.subtract(1.0, h)
    left *= t
    h *= right
    left += h
    return left
