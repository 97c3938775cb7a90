r"""The error function and its complement, vectorised over float arrays, without SciPy.

.. math::

    \operatorname{erf}(x) = \frac{2}{\sqrt\pi}\int_0^x e^{-t^2}\,dt, \qquad
    \operatorname{erfc}(x) = 1 - \operatorname{erf}(x).

W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969)
631-638, with the coefficients of his SPECFUN routine CALERF. Three intervals of y = |x|:

- :math:`y \le 0.46875`: :math:`\operatorname{erf}(x) = x R_1(x^2)`;
- :math:`0.46875 < y \le 4`: :math:`\operatorname{erfc}(y) = e^{-y^2} R_2(y)`;
- :math:`4 < y < 26.543`: :math:`\operatorname{erfc}(y) = e^{-y^2} / y\,(1/\sqrt\pi + y^{-2}
  R_3(y^{-2}))`, and :math:`\operatorname{erfc}(y)` underflows to 0 beyond.

:math:`e^{-y^2}` is formed as :math:`e^{-t^2} e^{-(y-t)(y+t)}` with :math:`t` = y rounded down to
a multiple of 1/16, so that :math:`t^2` is exact and no accuracy is lost to :math:`y^2`. The
approximations are accurate to about 1e-18; in float64 the result is good to a few ulp. The dtype
is kept (float32 in, float32 out) and NaN gives NaN.

>>> import numpy as np
>>> erf(np.array([0.0, 0.5])).round(6)
array([0.    , 0.5205])
"""

from __future__ import annotations

import math

import numpy as np

from chainrule._checks import as_float_array

__all__ = ["erf", "erfc"]

_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERFC_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
           2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
           2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERFC_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
           1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
           3.43936767414372164e03, 1.23033935480374942e03)
_ERFC_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
           1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERFC_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
           6.05183413124413191e-2, 2.33520497626869185e-3)
_ERF_SMALL = 0.46875
_ERFC_BIG = 26.543  # erfc(y) < the smallest normal float64 beyond this
_INV_SQRT_PI = 1.0 / math.sqrt(math.pi)


def _rational(t: np.ndarray, p: tuple, q: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator of Cody's ratio, by Horner's rule in ``t`` (n = len(q) - 1).

    num = p[n] + t(p[n-1] + ... + t(p[0] + p[n+1] t)), den = q[n] + t(q[n-1] + ... + t(q[0] + t)),
    in that order of operations (the coefficients are indexed as in CALERF).
    """
    n = len(q) - 1
    num = p[n + 1] * t
    den = t.copy()
    for i in range(n):
        num += p[i]
        num *= t
        den += q[i]
        den *= t
    num += p[n]
    den += q[n]
    return num, den


def _erf_small(x: np.ndarray) -> np.ndarray:
    """erf(x) for |x| <= 0.46875: x (A3 + t(A2 + t(A1 + t(A0 + A4 t)))) / (B3 + t(...))."""
    num, den = _rational(x * x, _ERF_A, _ERF_B)
    num *= x
    num /= den
    return num


def _exp_minus_square(y: np.ndarray) -> np.ndarray:
    """e^{-y^2} as e^{-t^2} e^{-(y-t)(y+t)}, t = floor(16 y)/16 (t^2 is exact)."""
    t = np.trunc(y * 16.0)
    t /= 16.0
    d = y - t
    d *= y + t
    np.negative(d, out=d)
    np.exp(d, out=d)
    np.square(t, out=t)
    np.negative(t, out=t)
    np.exp(t, out=t)
    t *= d
    return t


def _erfc_mid(y: np.ndarray) -> np.ndarray:
    """erfc(y) for 0.46875 < y <= 4."""
    num, den = _rational(y, _ERFC_C, _ERFC_D)
    num /= den
    num *= _exp_minus_square(y)
    return num


def _erfc_large(y: np.ndarray) -> np.ndarray:
    """erfc(y) for 4 < y < 26.543 (the asymptotic form)."""
    r = 1.0 / (y * y)
    num, den = _rational(r, _ERFC_P, _ERFC_Q)
    num *= r
    num /= den
    np.subtract(_INV_SQRT_PI, num, out=num)
    num /= y
    num *= _exp_minus_square(y)
    return num


def _erfc_abs(y: np.ndarray) -> np.ndarray:
    """erfc(y) for y = |x| > 0.46875 (smaller y are clipped up; the caller discards them).

    The middle interval is evaluated on the whole array; the asymptotic one only where some
    y > 4 (rare in activations), through a sparse gather.
    """
    out = _erfc_mid(np.clip(y, _ERF_SMALL, 4.0))
    far = y > 4.0
    if far.any():
        yf = y[far]
        tail = _erfc_large(np.minimum(yf, _ERFC_BIG))
        tail[yf >= _ERFC_BIG] = 0.0
        out[far] = tail
    return out


def _blend(mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a`` where ``mask``, else ``b``, into ``a``: ``a*mask + b*~mask``, exact for finite a, b.

    Arithmetic instead of ``np.where``: a random mask makes a select several times slower than
    two multiplications. A NaN in ``a`` or ``b`` (only where the input was NaN) stays NaN.
    """
    a *= mask
    b *= ~mask
    a += b
    return a


def erf(x) -> np.ndarray:
    r"""The error function :math:`\operatorname{erf}(x) = \frac{2}{\sqrt\pi}\int_0^x e^{-t^2}dt`.

    Vectorised over a float array (dtype kept), after Cody (1969); NaN gives NaN. A 0-d input
    gives a 0-d array.
    """
    x = as_float_array(x, "x")
    if x.ndim == 0:
        return erf(x.reshape(1)).reshape(())
    y = np.abs(x)
    tail = _erfc_abs(y)
    np.subtract(1.0, tail, out=tail)
    np.copysign(tail, x, out=tail)
    return _blend(y <= _ERF_SMALL, _erf_small(np.clip(x, -_ERF_SMALL, _ERF_SMALL)), tail)


def erfc(x) -> np.ndarray:
    r"""The complementary error function :math:`\operatorname{erfc}(x) = 1 - \operatorname{erf}(x)`.

    Computed without the cancellation of ``1 - erf(x)``: relative accuracy holds far into the
    tail (down to :math:`10^{-308}` near :math:`x = 26.5`). Dtype kept; NaN gives NaN; a 0-d
    input gives a 0-d array.
    """
    x = as_float_array(x, "x")
    if x.ndim == 0:
        return erfc(x.reshape(1)).reshape(())
    y = np.abs(x)
    tail = _erfc_abs(y)  # erfc(|x|); erfc(x) = 2 - erfc(|x|) for x < 0
    _blend(x >= 0.0, tail, np.subtract(2.0, tail))
    head = _erf_small(np.clip(x, -_ERF_SMALL, _ERF_SMALL))
    np.subtract(1.0, head, out=head)
    return _blend(y <= _ERF_SMALL, head, tail)
