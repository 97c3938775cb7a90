r"""The gated activations: GELU, SiLU (swish) and Mish, each :math:`z` times a smooth gate.

Each reads its cached **input** (and its gate) in ``backward``: their derivatives are not
functions of the output alone (``output_form_text`` is None).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from chainrule._checks import as_float_array
from chainrule._erf import erfc
from chainrule.nn.activation_base import Activation, silent_softplus, stable_sigmoid

__all__ = ["GELU", "Mish", "SiLU"]

# Python floats on purpose: a NumPy float64 scalar would upcast float32 arrays under NEP 50.
_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_TANH_K = 0.044715


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    r""":math:`\Phi(z) = \tfrac12 \operatorname{erfc}(-z/\sqrt2)`, accurate in both tails."""
    out = erfc(np.multiply(z, -_SQRT1_2))
    out *= 0.5
    return out


def _z_normal_pdf(z: np.ndarray) -> np.ndarray:
    r""":math:`z\,\varphi(z) = z e^{-z^2/2}/\sqrt{2\pi}`; z is clipped at 40 first (where
    :math:`\varphi` is 0 in any float) so that :math:`z^2` never overflows."""
    t = np.clip(z, -40.0, 40.0)
    p = np.square(t)
    p *= -0.5
    np.exp(p, out=p)
    p *= _INV_SQRT_2PI
    p *= t
    return p


class GELU(Activation):
    r"""The Gaussian error linear unit (Hendrycks & Gimpel, 2016).

    ``approximate="none"`` (exact):

    .. math::

        f(z) = z\,\Phi(z) = \frac{z}{2}\left(1 + \operatorname{erf}\frac{z}{\sqrt2}\right),
        \qquad f'(z) = \Phi(z) + z\,\varphi(z), \quad
        \varphi(z) = \frac{e^{-z^2/2}}{\sqrt{2\pi}},

    with :math:`\Phi(z) = \tfrac12\operatorname{erfc}(-z/\sqrt2)` from a vectorised Cody (1969)
    erfc (no cancellation in the left tail). ``approximate="tanh"``:

    .. math::

        f(z) = \frac{z}{2}\bigl(1 + \tanh u\bigr) = z\,\sigma(2u), \quad
        u = \sqrt{2/\pi}\,(z + 0.044715 z^3),

        f'(z) = \sigma(2u) + z\,\sigma(2u)\bigl(1 - \sigma(2u)\bigr)\,
                2\sqrt{2/\pi}\,(1 + 3 \cdot 0.044715 z^2),

    evaluated through :math:`\tfrac12(1 + \tanh u) = \sigma(2u)`, which does not cancel for
    negative :math:`z`; :math:`z` is clipped to :math:`\pm 10^4` inside :math:`u` (where
    :math:`\sigma(2u)` is already exactly 0 or 1) so that :math:`z^3` cannot overflow.
    ``backward`` reads the cached **input** and :math:`\Phi(z)` (or :math:`\sigma(2u)`).

    Parameters
    ----------
    approximate : {"none", "tanh"}, default "none"
        "none" for the exact erf form, "tanh" for the tanh approximation.

    Examples
    --------
    >>> from chainrule.nn import GELU
    >>> z = np.array([-2.0, 0.0, 1.5])
    >>> act = GELU()
    >>> act(z).round(4)
    array([-0.0455,  0.    ,  1.3998])
    >>> act.backward(np.ones(3)).round(4)  # f'(z), from what forward cached
    array([-0.0852,  0.5   ,  1.1275])
    """

    name = "gelu"
    title = "Gaussian error linear unit"
    formula = "gelu(z) = z·Φ(z) = z(1 + erf(z/√2))/2"
    derivative_text = "gelu'(z) = Φ(z) + z·φ(z)"
    output_form_text = None
    _APPROXIMATIONS: ClassVar[tuple[str, ...]] = ("none", "tanh")

    def __init__(self, approximate: str = "none"):
        if approximate not in self._APPROXIMATIONS:
            raise ValueError(
                "The 'approximate' parameter of GELU must be 'none' (exact, with erf) or 'tanh'; "
                f"got {approximate!r} instead."
            )
        self.approximate = approximate
        self._z: np.ndarray | None = None
        self._p: np.ndarray | None = None  # Phi(z), or sigma(2u) for "tanh"

    @staticmethod
    def _two_u(zc: np.ndarray) -> np.ndarray:
        t = np.square(zc)
        t *= _GELU_TANH_K
        t += 1.0
        t *= zc
        t *= 2.0 * _SQRT_2_OVER_PI
        return t

    @staticmethod
    def _two_du(zc: np.ndarray) -> np.ndarray:
        t = np.square(zc)
        t *= 3.0 * _GELU_TANH_K
        t += 1.0
        t *= 2.0 * _SQRT_2_OVER_PI
        return t

    def _gate(self, z: np.ndarray) -> np.ndarray:
        """Phi(z), or sigma(2u) for "tanh"."""
        if self.approximate == "none":
            return _normal_cdf(z)
        t = self._two_u(np.clip(z, -1e4, 1e4))
        return stable_sigmoid(t, out=t)

    def _slope(self, z: np.ndarray, p: np.ndarray) -> np.ndarray:
        if self.approximate == "none":
            d = _z_normal_pdf(z)
        else:
            zc = np.clip(z, -1e4, 1e4)
            d = self._two_du(zc)
            d *= zc
            d *= p
            d *= 1.0 - p
        d += p
        return d

    def forward(self, z):
        z = as_float_array(z, "z")
        p = self._gate(z)
        self._z, self._p = z, p
        return np.multiply(z, p)

    def backward(self, grad):
        grad = self._grad(grad, self._z)
        d = self._slope(self._z, self._p)
        return np.multiply(d, grad, out=d)

    def derivative(self, z):
        z = as_float_array(z, "z")
        return self._slope(z, self._gate(z))


class SiLU(Activation):
    r"""The sigmoid-weighted linear unit, also called swish.

    .. math::

        f(z) = z\,\sigma(z), \qquad
        f'(z) = \sigma(z) + z\,\sigma(z)(1 - \sigma(z)) = \sigma(z)\bigl(1 + z(1 - \sigma(z))\bigr).

    ``backward`` reads the cached **input** and :math:`\sigma(z)`. (The output form
    :math:`f + \sigma(1 - f)` cancels for large :math:`z`: in float32 it gives 0 at
    :math:`z = 10^9`.)

    Examples
    --------
    >>> from chainrule.nn import SiLU
    >>> z = np.array([-2.0, 0.0, 1.5])
    >>> act = SiLU()
    >>> act(z).round(4)
    array([-0.2384,  0.    ,  1.2264])
    >>> act.backward(np.ones(3)).round(4)  # f'(z), from what forward cached
    array([-0.0908,  0.5   ,  1.0413])
    """

    name = "silu"
    aliases = ("swish",)
    title = "sigmoid-weighted linear unit (swish)"
    formula = "silu(z) = z·σ(z)"
    derivative_text = "silu'(z) = σ(z)(1 + z(1 - σ(z)))"
    output_form_text = None

    def __init__(self):
        self._z: np.ndarray | None = None
        self._s: np.ndarray | None = None

    def forward(self, z):
        z = as_float_array(z, "z")
        self._z, self._s = z, stable_sigmoid(z)
        return np.multiply(z, self._s)

    @staticmethod
    def _slope(z: np.ndarray, s: np.ndarray) -> np.ndarray:
        d = np.subtract(1.0, s)
        d *= z
        d += 1.0
        d *= s
        return d

    def backward(self, grad):
        grad = self._grad(grad, self._z)
        d = self._slope(self._z, self._s)
        return np.multiply(d, grad, out=d)

    def derivative(self, z):
        z = as_float_array(z, "z")
        return self._slope(z, stable_sigmoid(z))


class Mish(Activation):
    r"""Mish (Misra, 2019).

    .. math::

        f(z) = z \tanh(\operatorname{softplus}(z)), \qquad
        f'(z) = \tanh(\operatorname{softplus}(z))
              + z\,\bigl(1 - \tanh^2(\operatorname{softplus}(z))\bigr)\,\sigma(z),

    since :math:`\operatorname{softplus}'(z) = \sigma(z) = 1 - e^{-\operatorname{softplus}(z)}`.
    ``backward`` reads the cached **input**, :math:`t = \tanh(\operatorname{softplus} z)` and
    :math:`\operatorname{softplus} z` (for :math:`\sigma(z)` as ``-expm1(-softplus)``).

    Examples
    --------
    >>> from chainrule.nn import Mish
    >>> z = np.array([-2.0, 0.0, 1.5])
    >>> act = Mish()
    >>> act(z).round(4)
    array([-0.2525,  0.    ,  1.4034])
    >>> act.backward(np.ones(3)).round(4)  # f'(z), from what forward cached
    array([-0.1084,  0.6   ,  1.0885])
    """

    name = "mish"
    title = "mish"
    formula = "mish(z) = z·tanh(softplus(z))"
    derivative_text = "mish'(z) = tanh(softplus(z)) + z(1 - tanh²(softplus(z)))σ(z)"
    output_form_text = None

    def __init__(self):
        self._z: np.ndarray | None = None
        self._t: np.ndarray | None = None
        self._sp: np.ndarray | None = None

    def forward(self, z):
        z = as_float_array(z, "z")
        sp = silent_softplus(z)
        t = np.tanh(sp)
        self._z, self._t, self._sp = z, t, sp
        return np.multiply(z, t)

    @staticmethod
    def _slope(z: np.ndarray, t: np.ndarray, sp: np.ndarray) -> np.ndarray:
        sig = np.negative(sp)
        np.expm1(sig, out=sig)
        np.negative(sig, out=sig)  # sigma(z) = 1 - exp(-softplus(z))
        d = np.square(t)
        np.subtract(1.0, d, out=d)
        d *= z
        d *= sig
        d += t
        return d

    def backward(self, grad):
        grad = self._grad(grad, self._z)
        d = self._slope(self._z, self._t, self._sp)
        return np.multiply(d, grad, out=d)

    def derivative(self, z):
        z = as_float_array(z, "z")
        sp = silent_softplus(z)
        return self._slope(z, np.tanh(sp), sp)
