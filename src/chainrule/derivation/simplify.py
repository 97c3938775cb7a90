r"""Simplification that ends a derivation, and the equality check behind every claim.

:func:`tidy` tries a few targeted rewrites (``cancel``, ``factor``, ``together``, the sigmoid
identities, :math:`x\,\operatorname{sign}(x) = |x|`) and keeps the shortest, rather than
calling SymPy's blanket ``simplify`` on everything, which is slow.

:func:`equivalent` decides whether two expressions are equal: exactly when a cheap symbolic
route proves it, otherwise by evaluating both at random points with 30 significant digits
(where a counterexample is conclusive and agreement at every point is strong evidence).
"""

from __future__ import annotations

import functools
import math
import random

import mpmath
import sympy
import sympy.physics.units

from chainrule.derivation.functions import sigmoid, softplus

# sympy.simplify imports sympy.physics.units on its first call. Loaded here, with the engine, so
# that a time limit (the command line's time limit) cannot stop that import halfway, which would
# leave SymPy unusable for the rest of the process.

__all__ = [
    "elementary",
    "equivalent",
    "orient",
    "reading_score",
    "recognize_sigmoid",
    "textbook_form",
    "tidy",
]

_SIMPLIFY_OPS_LIMIT = 60
# Above these sizes the polynomial rewrites (cancel, factor, together) grow exponentially with
# the number of function atoms, so only the cheap rewrites and the numeric check are used.
_REWRITE_OPS_LIMIT = 120
_REWRITE_FUNCTION_LIMIT = 6


def _heavy(e: sympy.Expr) -> bool:
    return len(e.atoms(sympy.Function)) > _REWRITE_FUNCTION_LIMIT or _size(e) > _REWRITE_OPS_LIMIT


def elementary(e: sympy.Expr) -> sympy.Expr:
    """Rewrite :class:`sigmoid` and :class:`softplus` with ``exp`` and ``log``."""
    if e.has(sigmoid, softplus):
        e = e.rewrite(sigmoid, sympy.exp).rewrite(softplus, sympy.exp)
    return e


def recognize_sigmoid(e: sympy.Expr) -> sympy.Expr:
    r"""Replace :math:`e^u/(1 + e^u)` and :math:`1/(1 + e^{-u})` by :math:`\sigma(u)`."""
    a = sympy.Wild("a")
    for n in sorted(e.find(lambda n: n.is_Mul), key=sympy.count_ops, reverse=True):
        m = n.match(sympy.exp(a) / (1 + sympy.exp(a)))
        if m:
            e = e.xreplace({n: sigmoid(m[a])})
    return e.replace(
        lambda n: n.is_Pow and n.exp == -1 and _sigmoid_argument(n.base) is not None,
        lambda n: sigmoid(_sigmoid_argument(n.base)),
    )


def _sigmoid_argument(base):
    """``u`` when ``base`` is ``1 + exp(-u)``, else None."""
    if base.is_Add and len(base.args) == 2 and sympy.S.One in base.args:
        other = base.args[0] if base.args[1] == 1 else base.args[1]
        if isinstance(other, sympy.exp):
            return -other.args[0]
    return None


def _size(e: sympy.Expr) -> int:
    """Operation count, with negation free (``e^(-x)`` is as simple as ``e^x``)."""
    e = e.replace(
        lambda n: n.is_Mul and n.args[0] is sympy.S.NegativeOne,
        lambda n: sympy.Mul(*n.args[1:]),
    )
    return int(sympy.count_ops(e))


def orient(e: sympy.Expr) -> sympy.Expr:
    r"""Write a factored fraction the way people do: :math:`(\hat y - y)/(\hat y(1 - \hat y))`.

    A denominator factor such as :math:`\hat y - 1` becomes :math:`-(1 - \hat y)`, and a
    leading minus sign is absorbed by the sum in the numerator that reads better negated:
    :math:`-(y - \hat y) = \hat y - y`.
    """
    if not e.is_Mul:
        return e
    sign = 1
    num, den = [], []
    for f in e.args:
        if f.is_number and f.is_negative:
            sign = -sign
            if -f != 1:
                num.append(-f)
            continue
        if f.is_Pow and f.exp.is_Integer and f.exp.is_negative:
            base, power = f.base, -f.exp
            if base.is_Add and power % 2 == 1 and reading_score(-base) > reading_score(base):
                base, sign = -base, -sign
            den.append(base**power)
        else:
            num.append(f)
    if sign < 0:
        best, gain = None, None
        for i, f in enumerate(num):
            base, power = (f.base, f.exp) if f.is_Pow else (f, sympy.S.One)
            if base.is_Add and power.is_Integer and power % 2 == 1:
                g = reading_score(-base) - reading_score(base)
                if gain is None or g > gain:
                    best, gain = i, g
        if best is not None:
            f = num[best]
            base, power = (f.base, f.exp) if f.is_Pow else (f, sympy.S.One)
            num[best], sign = (-base) ** power, 1
    body = sympy.Mul(*num) / sympy.Mul(*den)
    return body if sign > 0 else -body


_PREDICTIONS = ("yhat", "p", "x", "z", "w")


def reading_score(add: sympy.Expr) -> int:
    """How naturally a sum reads: ``1 - yhat`` and ``yhat - y`` score above their negatives.

    +2 for a positive constant term (-2 for a negative one), and +1 when the prediction
    (``yhat``, ``p``, else the input) enters with a positive coefficient (-1 otherwise).
    """
    const = sum((t for t in add.args if t.is_number), sympy.S.Zero)
    score = 0 if const == 0 else (2 if const.is_positive else -2)
    names = {s.name: s for s in add.free_symbols}
    for name in _PREDICTIONS:
        if name in names:
            coeff = add.coeff(names[name])
            if coeff.is_number and coeff != 0:
                score += 1 if coeff.is_positive else -1
            break
    return score


def textbook_form(e) -> sympy.Expr:
    r"""The one printed form of a derivative, as a textbook writes it; every face (text, LaTeX,
    Markdown, the page's MathML, a plot's legend, a check's expected answer) prints this.

    A common factor comes out of a sum (:math:`2(\hat y - y)`, never :math:`2\hat y - 2y`),
    each bracket reads forwards (:math:`1 - \hat y` and :math:`\hat y - y`, flipping pairs of
    signs: :math:`2\hat y(\hat y - 1)(y - \hat y)` prints as
    :math:`2\hat y(1 - \hat y)(\hat y - y)`), and a leftover minus sign goes into a bracket
    only where that reads no worse. The product is left unevaluated, so print it, do not
    compute with it; its value is that of ``e``.

    >>> from chainrule.derivation.printing import to_text
    >>> from chainrule.derivation.symbols import y, yhat
    >>> to_text(textbook_form(2 * yhat - 2 * y))
    '2(yhat - y)'
    >>> to_text(textbook_form(2 * yhat * (yhat - 1) * (y - yhat)))
    '2yhat(1 - yhat)(yhat - y)'
    >>> to_text(textbook_form((2 * yhat - 2 * y) / 3))
    '2(yhat - y)/3'
    """
    e = sympy.sympify(e, strict=True)
    if e.has(sympy.Piecewise):
        return e
    e = sympy.factor_terms(e)
    if not e.is_Mul:
        return e
    coeff, factors = e.as_coeff_mul()
    sign = -1 if coeff < 0 else 1
    out = []
    for f in factors:
        base, power = f.as_base_exp()
        if base.is_Add and power.is_Integer and power % 2 and \
                reading_score(-base) > reading_score(base):
            base, sign = -base, -sign
        out.append([base, power])
    if sign < 0:
        gains = [(reading_score(-b) - reading_score(b), i) for i, (b, p) in enumerate(out)
                 if b.is_Add and p.is_Integer and p > 0 and p % 2]
        if gains and max(gains)[0] >= 0:
            i = max(gains)[1]
            out[i][0], sign = -out[i][0], 1
    lead = [sign * abs(coeff)] if sign * abs(coeff) != 1 else []
    return sympy.Mul(*lead, *(b if p == 1 else sympy.Pow(b, p) for b, p in out),
                     evaluate=False)


def _sign_to_abs(e: sympy.Expr) -> sympy.Expr:
    for s in e.atoms(sympy.sign):
        e = e.subs(s.args[0] * s, sympy.Abs(s.args[0]))
    return e


@functools.lru_cache(maxsize=512)
def tidy(e: sympy.Expr, extra: tuple[sympy.Expr, ...] = ()) -> sympy.Expr:
    """The shortest of a few equivalent forms of ``e`` (``extra`` adds known candidates).

    Piecewise expressions are tidied piece by piece. Every candidate is checked with
    :func:`equivalent` before it can win.
    """
    e = _sign_to_abs(sympy.sympify(e, strict=True))
    if isinstance(e, sympy.Piecewise):
        pieces = [(tidy(piece), cond) for piece, cond in e.args]
        return sympy.Piecewise(*pieces)
    candidates = [e]
    rewrites = (_factor_terms,) if _heavy(e) else (
        sympy.factor, sympy.cancel, sympy.together, _factor_terms)
    for rewrite in rewrites:
        try:
            candidates.append(orient(rewrite(e)))
        except (sympy.PolynomialError, NotImplementedError, TypeError, ValueError):
            continue
    if e.has(sympy.exp):
        candidates.append(recognize_sigmoid(e))
    if _size(e) < _SIMPLIFY_OPS_LIMIT and not e.has(sympy.Abs, sympy.erf):
        candidates.append(sympy.simplify(e))
    candidates.extend(extra)
    known = {type(f) for f in e.atoms(sympy.Function)} | {sigmoid}
    best = e
    for c in candidates:
        c = _sign_to_abs(c)
        if {type(f) for f in c.atoms(sympy.Function)} - known:
            continue  # a rewrite into new functions (cosh for a sigmoid) reads worse
        if _size(c) < _size(best) and equivalent(c, e):
            best = c
    return best


def _factor_terms(e):
    return sympy.factor_terms(e)


@functools.lru_cache(maxsize=2048)
def equivalent(a, b, given: tuple = (), points: int = 7) -> bool:
    """Whether ``a == b`` for all real values of their symbols (after the ``given`` substitutions).

    ``given`` is a tuple of ``(symbol, expression)`` pairs, e.g. ``((yhat, tanh(z)),)``.
    """
    a, b = sympy.sympify(a, strict=True), sympy.sympify(b, strict=True)
    if given:
        mapping = dict(given)
        a, b = a.subs(mapping), b.subs(mapping)
    d = elementary(sympy.sympify(a - b, strict=True))
    if d == 0:
        return True
    if not d.has(sympy.Piecewise) and not _heavy(d):
        for route in (sympy.expand, lambda v: sympy.cancel(sympy.together(v))):
            try:
                if route(d) == 0:
                    return True
            except (sympy.PolynomialError, NotImplementedError, TypeError):
                pass
    return _numerically_zero(d, a, points)


_MPMATH_FUNCTIONS = {
    "sigmoid": lambda u: 1 / (1 + mpmath.exp(-u)),
    "softplus": lambda u: mpmath.log(1 + mpmath.exp(u)),
}


def _numerically_zero(d: sympy.Expr, scale_expr: sympy.Expr, points: int) -> bool:
    """Evaluate ``d`` at random points with 30 digits (mpmath, no adaptive precision)."""
    symbols = sorted(d.free_symbols | scale_expr.free_symbols, key=lambda s: s.name)
    modules = [_MPMATH_FUNCTIONS, "mpmath"]
    undefined = {sympy.zoo: sympy.nan}  # a piece where the function is undefined (log 0)
    d, scale_expr = d.xreplace(undefined), scale_expr.xreplace(undefined)
    try:
        fd = sympy.lambdify(symbols, d, modules=modules)
        fs = sympy.lambdify(symbols, scale_expr, modules=modules)
    except (TypeError, ValueError, NameError, SyntaxError, KeyError):
        return False  # not printable as numeric code (zoo, nan): no evidence of equality
    guards = _domain_guards(d, symbols, modules)
    rng = random.Random(20240601)
    hits = 0
    # a float constant (SELU's lambda, 17 digits) limits the agreement two forms can reach
    tolerance = 1e-13 if d.atoms(sympy.Float) else 1e-20
    with mpmath.workdps(30):
        for _ in range(points * 4):
            values = [mpmath.mpf(_sample(s, rng)) for s in symbols]
            try:
                dc, sc = complex(fd(*values)), complex(fs(*values))
            except (TypeError, ValueError, ZeroDivisionError, OverflowError, NameError, KeyError):
                continue  # not a number here (a pole, a symbol left over)
            if not (math.isfinite(abs(dc)) and math.isfinite(abs(sc))):
                continue
            if abs(sc.imag) > 1e-12 * (1 + abs(sc.real)):
                continue  # outside the real domain (log of a negative number): no evidence
            if not _inside(guards, values):
                continue  # a root or log of a negative number inside, real only by accident
            if abs(dc) > tolerance * (1 + abs(sc)):
                return False
            hits += 1
            if hits >= points:
                return True
    return hits > 0


def _domain_guards(d: sympy.Expr, symbols: list, modules: list) -> list:
    """The arguments that must be real and non-negative where ``d`` is evaluated: the bases of
    fractional powers (roots) and the arguments of logarithms. Outside, a formula can come out
    real through complex arithmetic (the sign of an imaginary root) and prove nothing."""
    inner = {p.base for p in d.atoms(sympy.Pow) if p.exp.is_Rational and not p.exp.is_integer}
    inner |= {f.args[0] for f in d.atoms(sympy.log)}
    guards = []
    for arg in inner:
        try:
            guards.append(sympy.lambdify(symbols, arg, modules=modules))
        except (TypeError, ValueError, NameError, SyntaxError, KeyError):
            continue
    return guards


def _inside(guards: list, values: list) -> bool:
    """Whether every guarded argument is real and non-negative at ``values``."""
    for guard in guards:
        try:
            v = complex(guard(*values))
        except (TypeError, ValueError, ZeroDivisionError, OverflowError, NameError, KeyError):
            return False
        if abs(v.imag) > 1e-12 * (1 + abs(v.real)) or v.real < 0:
            return False
    return True


def _sample(s: sympy.Symbol, rng: random.Random) -> float:
    """A random value respecting the symbol's assumptions (positive, in (0, 1)...)."""
    if s.name in ("yhat", "p", "y", "t"):
        return rng.uniform(0.05, 0.95)
    if s.is_positive:
        return rng.uniform(0.1, 3.0)
    return rng.uniform(-3.0, 3.0)
