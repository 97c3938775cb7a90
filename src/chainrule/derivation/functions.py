r"""SymPy functions that SymPy lacks: the sigmoid :math:`\sigma` and softplus.

Both stay unevaluated, so a derivation can name them ("the sigmoid rule"), and both carry
their own derivative and a rewrite to ``exp``/``log`` that the checks use:

.. math::

    \sigma'(u) = \sigma(u)\,(1 - \sigma(u)), \qquad
    \operatorname{softplus}'(u) = \sigma(u).
"""

from __future__ import annotations

import numpy as np
import sympy

from chainrule._erf import erf

__all__ = ["NUMPY_FUNCTIONS", "product_form", "quotient_form", "sigmoid", "softplus"]


class _PositiveFunction(sympy.Function):
    """What the sigmoid and softplus share: one argument, real and positive for a real argument,
    evaluated numerically through their rewrite to ``exp``, printed in LaTeX as ``latex_name``."""

    nargs = 1
    latex_name = ""

    def _eval_evalf(self, prec):
        return self.rewrite(sympy.exp)._eval_evalf(prec)

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_positive(self):
        return self.args[0].is_real

    def _latex(self, printer):
        return self.latex_name + r"\left(" + printer._print(self.args[0]) + r"\right)"


class _RuleForm(sympy.Function):
    """The right side of a rule with its pieces written out and left unevaluated, the way a
    textbook substitutes before it simplifies; :meth:`doit` (and ``evalf``) evaluate it."""

    nargs = 4

    @classmethod
    def eval(cls, *args):
        return None

    def formula(self, a, b, c, d):
        raise NotImplementedError

    def doit(self, deep=True, **hints):
        args = [a.doit(deep=deep, **hints) if deep else a for a in self.args]
        return self.formula(*args)

    def _eval_evalf(self, prec):
        return self.doit()._eval_evalf(prec)

    def _eval_rewrite(self, rule, args, **hints):
        return self.formula(*args)


class quotient_form(_RuleForm):
    r"""The quotient rule's :math:`(u' v - u v') / v^2`; the arguments are ``(u', v, u, v')``."""

    def formula(self, du, v, u, dv):
        return (du * v - u * dv) / v**2


class product_form(_RuleForm):
    r"""The product rule's :math:`f' g + f g'`; the arguments are ``(f', g, f, g')``."""

    def formula(self, df, g, f, dg):
        return df * g + f * dg


class sigmoid(_PositiveFunction):
    r"""The logistic sigmoid :math:`\sigma(u) = 1 / (1 + e^{-u})`."""

    latex_name = r"\sigma"

    @classmethod
    def eval(cls, arg):
        if arg.is_zero:
            return sympy.S.Half
        if arg is sympy.S.Infinity:
            return sympy.S.One
        if arg is sympy.S.NegativeInfinity:
            return sympy.S.Zero
        return None

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sympy.ArgumentIndexError(self, argindex)
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, arg, **kwargs):
        return 1 / (1 + sympy.exp(-arg))


class softplus(_PositiveFunction):
    r""":math:`\operatorname{softplus}(u) = \log(1 + e^{u})`."""

    latex_name = r"\operatorname{softplus}"

    @classmethod
    def eval(cls, arg):
        if arg.is_zero:
            return sympy.log(2)
        return None

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sympy.ArgumentIndexError(self, argindex)
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, arg, **kwargs):
        return sympy.log(1 + sympy.exp(arg))

    _eval_rewrite_as_log = _eval_rewrite_as_exp


def _np_sigmoid(u):
    from chainrule._numerics import sigmoid as stable

    return stable(np.asarray(u, dtype=float))


def _np_softplus(u):
    return np.logaddexp(0.0, u)


def _np_erf(u):
    return erf(np.asarray(u, dtype=float))


#: NumPy versions for ``sympy.lambdify(..., modules=[NUMPY_FUNCTIONS, "numpy"])``: the sigmoid
#: and softplus without overflow, and ``erf`` (which NumPy lacks; Cody's rational
#: approximations, vectorised, from :mod:`chainrule._erf`).
NUMPY_FUNCTIONS = {"sigmoid": _np_sigmoid, "softplus": _np_softplus, "erf": _np_erf}
