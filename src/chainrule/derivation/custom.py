r"""Custom activations from a formula: derived, compiled to NumPy, checked, ready for a model.

>>> from chainrule.derivation.custom import activation_from_formula
>>> swish = activation_from_formula("x * sigmoid(x)", name="swish")
>>> swish.get_config()
{'formula': 'x * sigmoid(x)', 'name': 'swish'}

The formula goes through the whitelist parser (never ``eval``); its derivative comes from the
derivation engine and is checked against ``sympy.diff``; both are compiled with
``sympy.lambdify`` (NumPy, with the overflow-free sigmoid and softplus) from the parsed
expressions only; and the compiled derivative is verified once against central finite
differences of the compiled function before the layer is returned.

The core (``chainrule.nn``) never imports the engine: importing this module registers
:class:`FormulaActivation` in ``chainrule.nn.activations.CUSTOM_BUILDERS`` under ``"formula"``,
so that :func:`chainrule.nn.activations.from_config` rebuilds a formula activation from its
config in a model file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy

from chainrule._checks import as_float_array
from chainrule.derivation.api import derive_formula
from chainrule.derivation.functions import NUMPY_FUNCTIONS
from chainrule.derivation.parser import FormulaError, parse_expression
from chainrule.derivation.printing import to_text
from chainrule.nn.activations import CUSTOM_BUILDERS, Activation

__all__ = ["FormulaActivation", "activation_from_formula"]

#: Points where the compiled derivative is compared with finite differences (0 is left out:
#: ReLU-like formulas have a corner there).
CHECK_POINTS = np.array([-2.3, -1.1, -0.37, 0.29, 0.83, 1.7, 3.1])
_STEP = 1e-6


@dataclass(frozen=True)
class _Compiled:
    expr: sympy.Expr
    derivative: sympy.Expr
    f: object
    df: object


@functools.lru_cache(maxsize=64)
def _compile(formula: str) -> _Compiled:
    expr = parse_expression(formula, symbols=("x", "z"))
    variables = sorted(expr.free_symbols, key=lambda s: s.name)
    if len(variables) > 1:
        raise FormulaError(
            f"An activation formula uses one variable, x or z; {formula!r} uses "
            f"{', '.join(v.name for v in variables)}."
        )
    var = variables[0] if variables else sympy.Symbol("x", real=True)
    derivation = derive_formula(expr, var.name, text=formula)
    modules = [NUMPY_FUNCTIONS, "numpy"]
    f = sympy.lambdify(var, expr, modules=modules)
    df = sympy.lambdify(var, derivation.result, modules=modules)
    compiled = _Compiled(expr, derivation.result, f, df)
    _verify(formula, compiled)
    return compiled


def _evaluate(fn, z: np.ndarray) -> np.ndarray:
    out = np.asarray(fn(z), dtype=np.float64)
    return np.broadcast_to(out, z.shape).copy() if out.shape != z.shape else out


def _verify(formula: str, c: _Compiled) -> None:
    """Compare the compiled f' with central differences of the compiled f, once."""
    with np.errstate(all="ignore"):
        f_plus = _evaluate(c.f, CHECK_POINTS + _STEP)
        f_minus = _evaluate(c.f, CHECK_POINTS - _STEP)
        numeric = (f_plus - f_minus) / (2 * _STEP)
        analytic = _evaluate(c.df, CHECK_POINTS)
        values = _evaluate(c.f, CHECK_POINTS)
    if not np.isfinite(values).all():
        i = int(np.argmin(np.isfinite(values)))
        raise FormulaError(
            f"{formula!r} is not finite at x = {CHECK_POINTS[i]}; an activation must be "
            "defined on the whole real line (log and sqrt need a positive argument)."
        )
    usable = np.isfinite(numeric) & np.isfinite(analytic)
    bad = usable & ~np.isclose(analytic, numeric, rtol=1e-4, atol=1e-6)
    if bad.any():
        i = int(np.argmax(bad))
        raise RuntimeError(
            f"Internal error: the compiled derivative of {formula!r} is {analytic[i]:.8g} at "
            f"x = {CHECK_POINTS[i]}, but finite differences give {numeric[i]:.8g}."
        )


class FormulaActivation(Activation):
    r"""An elementwise activation given by a formula; ``backward`` is ``grad * f'(z)``.

    The derivative is derived symbolically once per formula (and cached), so building many
    layers with the same formula is cheap.
    """

    elementwise = True

    def __init__(self, formula: str, name: str | None = None):
        if not isinstance(formula, str):
            raise FormulaError(
                f"The formula must be a string such as 'x * sigmoid(x)'; got "
                f"{type(formula).__name__} {formula!r}."
            )
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValueError(f"The name must be a non-empty string or None; got {name!r}.")
        self._compiled = _compile(formula.strip())
        self.formula = formula.strip()
        self.name = name if name is not None else self.formula
        self._z: np.ndarray | None = None

    @property
    def expression(self) -> sympy.Expr:
        """The parsed formula as a SymPy expression."""
        return self._compiled.expr

    @property
    def derivative_expression(self) -> sympy.Expr:
        """The derived, simplified derivative as a SymPy expression."""
        return self._compiled.derivative

    def forward(self, z) -> np.ndarray:
        z = as_float_array(z, "input")
        self._z = z
        return _evaluate(self._compiled.f, z).astype(z.dtype, copy=False)

    def derivative(self, z) -> np.ndarray:
        """:math:`f'(z)`, elementwise."""
        z = as_float_array(z, "input")
        return _evaluate(self._compiled.df, z).astype(z.dtype, copy=False)

    def backward(self, grad) -> np.ndarray:
        grad = self._grad(grad, self._z)
        return grad * self.derivative(self._z)

    def __repr__(self) -> str:
        return (f"FormulaActivation({self.formula!r}, name={self.name!r}; "
                f"f' = {to_text(self._compiled.derivative)})")


def activation_from_formula(formula: str, name: str | None = None) -> FormulaActivation:
    """A layer computing ``formula`` elementwise, with its derivative derived and verified."""
    return FormulaActivation(formula, name=name)


# A model file stores a formula activation as {"formula": ..., "name": ...}: rebuild it from that.
CUSTOM_BUILDERS["formula"] = FormulaActivation
