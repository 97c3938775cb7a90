"""How the scalar check writes expressions: a term with its sign as people write it, a sum, a
bracket, a ratio as a factor missing or extra. SymPy is imported here.
"""

from __future__ import annotations

import sympy

from chainrule.derivation.printing import to_text
from chainrule.derivation.simplify import reading_score, textbook_form, tidy

__all__ = [
    "ORDINALS",
    "bracket_text",
    "expected_text",
    "factor_problem",
    "orient",
    "signed_text",
    "sum_text",
    "term_text",
    "text_of",
    "tidy_expr",
]


ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


def text_of(e) -> str:
    return to_text(sympy.sympify(e, strict=True))


def expected_text(e) -> str:
    """The right derivative as every check prints it: simplified, then in the textbook form the
    derivation prints (:func:`chainrule.derivation.simplify.textbook_form`)."""
    return text_of(textbook_form(tidy_expr(e)))


def orient(e: sympy.Expr) -> tuple[bool, sympy.Expr]:
    """(negative?, magnitude) of a term, written as people do: -(1 - y)/(1 - yhat), never
    (1 - y)/(yhat - 1); 2(yhat - y), never 2yhat - 2y. The magnitude is left unevaluated."""
    e = sympy.sympify(e, strict=True)
    if e.is_Add:
        factored = sympy.factor_terms(e)
        if factored.is_Add:
            return (True, -e) if reading_score(-e) > reading_score(e) else (False, e)
        e = factored
    coeff, factors = e.as_coeff_mul()
    negative = bool(coeff < 0)
    out = [] if abs(coeff) == 1 else [abs(coeff)]
    for f in factors:
        base, power = f.as_base_exp()
        if base.is_Add and power.is_Integer and power % 2 == 1 and \
                reading_score(-base) > reading_score(base):
            base, negative = -base, not negative
        out.append(base if power == 1 else sympy.Pow(base, power))
    if not out:
        return negative, sympy.S.One
    return negative, out[0] if len(out) == 1 else sympy.Mul(*out, evaluate=False)


def signed_text(e: sympy.Expr) -> tuple[bool, str]:
    """(negative?, magnitude as text): -(1 - y)/(1 - yhat) gives (True, "(1 - y)/(1 - yhat)")."""
    negative, body = orient(e)
    text = text_of(body)
    if negative and body.is_Add:
        text = f"({text})"
    return negative, text


def term_text(e: sympy.Expr) -> str:
    negative, body = signed_text(e)
    return f"-{body}" if negative else body


def sum_text(terms: list[sympy.Expr]) -> str:
    out = ""
    for i, term in enumerate(terms):
        negative, body = signed_text(term)
        if i == 0:
            out = f"-{body}" if negative else body
        else:
            out += f" - {body}" if negative else f" + {body}"
    return out or "0"


def bracket_text(sign: int, coeff: sympy.Expr, terms: list[sympy.Expr]) -> str:
    if coeff != 1 and (coeff.is_number or len(terms) == 1):
        terms, coeff = [coeff * t for t in terms], sympy.S.One
    inner = sum_text(terms)
    if len(terms) > 1 and (sign < 0 or coeff != 1):
        inner = f"({inner})"
    elif sign < 0 and inner.startswith("-"):
        inner = f"({inner})"
    lead = "" if coeff == 1 else f"{text_of(coeff)}·"
    if sign < 0 and coeff != 1:
        return f"-{lead}{inner}"
    return f"{'-' if sign < 0 else ''}{lead}{inner}"


def tidy_expr(e: sympy.Expr) -> sympy.Expr:
    try:
        return tidy(e)
    except (TypeError, ValueError, sympy.PolynomialError):
        try:
            return sympy.factor(sympy.cancel(sympy.together(e)))
        except (sympy.PolynomialError, NotImplementedError):
            return e


def factor_problem(r: sympy.Expr) -> tuple[str, bool]:
    """A ratio user/right as "missing factor ..." / "extra factor ...", and whether the sign is
    wrong as well."""
    try:
        r = sympy.factor(r)
    except (sympy.PolynomialError, NotImplementedError):
        pass
    negative, body = orient(r)
    num, den = sympy.fraction(sympy.sympify(body, strict=True))
    parts = []
    if den != 1:
        parts.append(f"missing factor {term_text(den)}")
    if num != 1:
        parts.append(f"extra factor {term_text(num)}")
    return " and ".join(parts) or "a different factor", negative
