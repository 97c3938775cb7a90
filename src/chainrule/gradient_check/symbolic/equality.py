"""Whether two expressions are equal: symbolically where SymPy can reduce the difference to 0,
else at random points (a counterexample is conclusive). SymPy is imported here.
"""

from __future__ import annotations

import random

import sympy

__all__ = ["POINTS", "compare_exprs", "equal_exprs", "ratio_of"]


POINTS = 24


def _sample(symbol: sympy.Symbol, rng: random.Random, i: int):
    name = symbol.name
    if name in ("yhat", "p"):
        return sympy.Rational(round(rng.uniform(0.04, 0.96) * 10_000), 10_000)
    if name in ("y", "t"):
        choices = (0, 1, None)
        pick = choices[i % 3]
        if pick is None:
            return sympy.Rational(round(rng.uniform(0.05, 0.95) * 10_000), 10_000)
        return sympy.Integer(pick)
    if name == "m":
        return sympy.Integer(rng.randint(2, 9))
    if symbol.is_positive:
        return sympy.Rational(round(rng.uniform(0.1, 2.0) * 10_000), 10_000)
    return sympy.Rational(round(rng.uniform(-2.5, 2.5) * 10_000), 10_000)


def _numeric_zero(d: sympy.Expr, scale: sympy.Expr, seed: int = 0) -> bool | None:
    """True if ``d`` vanishes at every random point, False at a counterexample, None if it could
    not be evaluated anywhere."""
    symbols = sorted(d.free_symbols | scale.free_symbols, key=lambda s: s.name)
    rng = random.Random(seed)
    hits = 0
    for i in range(POINTS * 3):
        values = {s: _sample(s, rng, i) for s in symbols}
        try:
            dv = sympy.N(d.xreplace(values), 30)
            sv = sympy.N(scale.xreplace(values), 30)
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if not (dv.is_number and sv.is_number) or dv.has(sympy.nan, sympy.zoo, sympy.oo,
                                                         -sympy.oo, sympy.I):
            continue
        if sv.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo, sympy.I):
            continue
        if not (dv.is_real and sv.is_real):
            continue
        if abs(dv) > sympy.Float("1e-15", 30) * (1 + abs(sv)):
            return False
        hits += 1
        if hits >= POINTS:
            break
    return True if hits else None


def _symbolic_zero(d: sympy.Expr) -> bool:
    if d == 0:
        return True
    try:
        if sympy.cancel(sympy.together(d)) == 0:
            return True
    except (sympy.PolynomialError, NotImplementedError, TypeError):
        pass
    if sympy.count_ops(d) <= 80 and not d.has(sympy.Piecewise):
        try:
            return sympy.simplify(d) == 0
        except (TypeError, NotImplementedError):
            return False
    return False


def compare_exprs(a: sympy.Expr, b: sympy.Expr) -> tuple[bool, str]:
    """(equal?, "symbolic" or "numeric")."""
    d = a - b
    if _symbolic_zero(d):
        return True, "symbolic"
    verdict = _numeric_zero(d, abs(a) + abs(b))
    return bool(verdict), "numeric"


def ratio_of(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr | None:
    try:
        return sympy.cancel(sympy.together(a / b))
    except (sympy.PolynomialError, NotImplementedError, TypeError, ZeroDivisionError):
        return None


def equal_exprs(a: sympy.Expr, b: sympy.Expr) -> bool:
    return compare_exprs(a, b)[0]
