r"""Expressions as text: one-line Unicode, Python syntax that SymPy parses back, LaTeX and
presentation MathML (which every current browser renders without a script).

All three put the terms of a sum in the order people write them: positive constants first,
then the other positive terms, then the subtracted ones, so :math:`\hat y - y` prints as
``yhat - y`` (SymPy's own order gives ``-y + yhat``) and :math:`1 + e^{-x}` as ``1 + e^(-x)``.

>>> from chainrule.derivation.symbols import yhat, y
>>> to_text((1 + yhat) * (yhat - y) / yhat)
'(1 + yhat)(yhat - y)/yhat'
>>> to_python((1 + yhat) * (yhat - y) / yhat)
'(1 + yhat)*(yhat - y)/yhat'
"""

from __future__ import annotations

import re

import sympy
from sympy.printing.latex import LatexPrinter
from sympy.printing.mathml import MathMLPresentationPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from chainrule._mathml import math_element
from chainrule.derivation.functions import product_form, quotient_form, sigmoid, softplus

__all__ = ["mathml", "mathml_body", "ordered_factors", "ordered_terms", "to_latex", "to_mathml",
           "to_python", "to_text"]

_SUPERSCRIPTS = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_GREEK = {"alpha": "α", "eta": "η", "delta": "δ", "lambda": "λ"}
_REL = {">": ">", "<": "<", ">=": "≥", "<=": "≤", "==": "=", "!=": "≠"}


def ordered_terms(expr: sympy.Add) -> list[sympy.Expr]:
    """The terms of a sum: positive numbers, then other positive terms, then negative ones."""
    terms = list(expr.as_ordered_terms())

    def rank(term):
        if term.could_extract_minus_sign():
            return 2
        return 0 if term.is_number else 1

    return sorted(terms, key=rank)


def ordered_factors(factors) -> list[sympy.Expr]:
    """Factors of a product as people write them: numbers, symbols, functions, then sums."""

    def rank(f):
        base = f.base if f.is_Pow else f
        if f.is_number:
            return 0
        if base.is_Symbol:
            return 1
        if base.is_Add:  # (1 - y)·log(1 - yhat), but σ(x)(1 - σ(x))
            return 3 if base.atoms(sympy.Function) else 1.5
        return 2

    def constant_first(f):
        return 0 if f.is_Add and any(term.is_number for term in f.args) else 1

    return sorted(factors, key=lambda f: (rank(f), constant_first(f), sympy.default_sort_key(f)))


class _HouseOrder:
    """Terms and factors in the order people write them (mixed into a SymPy printer)."""

    def _as_ordered_terms(self, expr, order=None):
        return ordered_terms(expr)

    def _print_Mul(self, expr):
        args = ordered_factors(sympy.Mul.make_args(expr))
        self._settings["order"] = "none"
        try:
            return super()._print_Mul(sympy.Mul._from_args(args))
        finally:
            self._settings["order"] = None


def _rule_form(printer, e, square) -> tuple[str, str, str, str, str]:
    """The four pieces of a written-out rule, each in brackets unless it is an atom or a
    function, the way a textbook writes ``(1/x)·x - log(x)·1``; returns them with the square of
    the second (the quotient rule's denominator)."""
    pieces = [printer.parenthesize(a, PRECEDENCE["Pow"]) for a in e.args]
    return (*pieces, square(printer.parenthesize(e.args[1], PRECEDENCE["Atom"], strict=True)))


class _PythonPrinter(_HouseOrder, StrPrinter):
    def _print_quotient_form(self, e):
        du, v, u, dv, v2 = _rule_form(self, e, lambda b: f"{b}**2")
        return f"({du}*{v} - {u}*{dv})/{v2}"

    def _print_product_form(self, e):
        df, g, f, dg, _ = _rule_form(self, e, str)
        return f"{df}*{g} + {f}*{dg}"


class _LatexPrinter(_HouseOrder, LatexPrinter):
    def _print_Float(self, expr):
        return sympy.latex(sympy.Float(expr, 6))

    def _print_quotient_form(self, e):
        du, v, u, dv, v2 = _rule_form(self, e, lambda b: f"{b}^{{2}}")
        return rf"\frac{{{du} \cdot {v} - {u} \cdot {dv}}}{{{v2}}}"

    def _print_product_form(self, e):
        df, g, f, dg, _ = _rule_form(self, e, str)
        return rf"{df} \cdot {g} + {f} \cdot {dg}"


class _MathMLPrinter(MathMLPresentationPrinter):
    """SymPy's presentation MathML with the house notation: :math:`\\hat y`, :math:`\\sigma`,
    sums and products in the order people write them, and piecewise functions as a brace."""

    def _as_ordered_terms(self, expr, order=None):
        return ordered_terms(expr)

    def _element(self, tag: str, *children, text: str | None = None, **attrs):
        node = self.dom.createElement(tag)
        for key, value in attrs.items():
            node.setAttribute(key, value)
        if text is not None:
            node.appendChild(self.dom.createTextNode(text))
        for child in children:
            node.appendChild(child)
        return node

    def _print_Symbol(self, sym, style="plain"):
        if sym.name == "yhat":
            return self._element("mover", self._element("mi", text="y"),
                                 self._element("mo", text="^"), accent="true")
        return super()._print_Symbol(sym, style)

    def _print_sigmoid(self, e):
        return self._element("mrow", self._element("mi", text="\u03c3"),
                             self._paren_comma_separated(*e.args))

    def _print_Float(self, expr):
        return self._element("mn", text=format(float(expr), ".6g"))

    def _rule_row(self, e, signs):
        """``a·b ± c·d`` from the four pieces of a written-out rule, each bracketed unless it
        is an atom or a function."""
        pieces = [self.parenthesize(a, PRECEDENCE["Pow"]) for a in e.args]
        row = self._element("mrow")
        for i, piece in enumerate(pieces):
            if i == 2:
                row.appendChild(self._element("mo", text=signs))
            row.appendChild(piece)
            if i in (0, 2):
                row.appendChild(self._element("mo", text="\u00b7"))
        return row

    def _print_quotient_form(self, e):
        base = self.parenthesize(e.args[1], PRECEDENCE["Atom"], strict=True)
        square = self._element("msup", base, self._element("mn", text="2"))
        return self._element("mfrac", self._rule_row(e, "-"), square)

    def _print_product_form(self, e):
        return self._rule_row(e, "+")

    def _print_Mul(self, expr):
        row = self._element("mrow")
        if expr.could_extract_minus_sign():
            row.appendChild(self._element("mo", text="-"))
            expr = -expr
        numer, denom = sympy.fraction(expr, exact=True)  # e^(-x) stays on top, as in text
        if denom is not sympy.S.One:
            row.appendChild(self._element("mfrac", self._print(numer), self._print(denom)))
            return row
        factors = ordered_factors(sympy.Mul.make_args(expr))
        for i, factor in enumerate(factors):
            if i:
                both_numbers = factors[i - 1].is_number and factor.is_number
                row.appendChild(self._element("mo", text="\u00d7" if both_numbers else "\u2062"))
            row.appendChild(self.parenthesize(factor, sympy.printing.precedence.PRECEDENCE["Mul"]))
        return row

    def _print_Piecewise(self, expr):
        table = self._element("mtable", columnalign="left")
        for piece, cond in expr.args:
            words = "otherwise" if cond is sympy.true else "if "
            cells = [self._element("mtd", self._print(piece)),
                     self._element("mtd", self._element("mtext", text="\u2003" + words),
                                   *([] if cond is sympy.true else [self._print(cond)]))]
            table.appendChild(self._element("mtr", *cells))
        return self._element("mrow", self._element("mo", text="{"), table)


# SymPy writes a few operators as HTML entities, which XML does not know: use the characters.
_ENTITIES = {"&InvisibleTimes;": "&#8290;", "&ExponentialE;": "e", "&ImaginaryI;": "i",
             "&dd;": "d", "&int;": "&#8747;", "&pi;": "&#960;"}
_ENTITY = re.compile("|".join(map(re.escape, _ENTITIES)))


def mathml_body(expr) -> str:
    """The presentation MathML of ``expr`` without the ``<math>`` element around it; the
    minus sign is U+2212."""
    body = _MathMLPrinter().doprint(sympy.sympify(expr, strict=True))
    body = _ENTITY.sub(lambda m: _ENTITIES[m.group(0)], body)
    return body.replace("<mo>-</mo>", "<mo>\u2212</mo>").replace("<mn>-", "<mo>\u2212</mo><mn>")


def mathml(*bodies: str, display: bool = False, alttext: str | None = None) -> str:
    """One ``<math>`` element around MathML ``bodies`` (see :func:`mathml_body`), with its
    ``alttext`` (the text of the bodies when None)."""
    alt = None if alttext is None else alttext.replace("yhat", "ŷ")
    return math_element("".join(bodies), alt, display=display)


def to_mathml(expr, display: bool = False) -> str:
    """A ``<math>`` element in presentation MathML, valid as XML (no named entities), with the
    one-line text form as its ``alttext``.

    >>> from chainrule.derivation.symbols import x
    >>> to_mathml(x**2).split(">", 1)[1]
    '<msup><mi>x</mi><mn>2</mn></msup></math>'
    >>> 'alttext="x²"' in to_mathml(x**2)
    True
    """
    return mathml(mathml_body(expr), display=display, alttext=to_text(expr))


def to_python(expr) -> str:
    """Python/SymPy syntax (``**``, ``*``) that :func:`parse_expression` and SymPy read back."""
    return _PythonPrinter({"full_prec": False}).doprint(sympy.sympify(expr, strict=True))


def to_latex(expr) -> str:
    r"""LaTeX, with :math:`\sigma` for the sigmoid and :math:`\hat y` for ``yhat``."""
    return _LatexPrinter().doprint(sympy.sympify(expr, strict=True))


def to_text(expr) -> str:
    """One line of Unicode: ``e^(-x)/(1 + e^(-x))²``, ``σ(x)(1 - σ(x))``, ``|x|``."""
    return _text(sympy.sympify(expr, strict=True))


# --- the one-line Unicode printer -------------------------------------------------------------

_ATOM, _POW, _MUL, _ADD = 4, 3, 2, 1


def _text(e) -> str:
    return _show(e)[0]


def _wrap(e, level: int) -> str:
    """Print ``e`` and parenthesize it when it binds less tightly than ``level``."""
    s, prec = _show(e)
    return f"({s})" if prec < level else s


def _show(e) -> tuple[str, int]:
    if isinstance(e, sympy.Symbol):
        return _GREEK.get(e.name, e.name), _ATOM
    if e.is_Rational:
        if e.q == 1:
            return str(e.p), (_ATOM if e.p >= 0 else _ADD)
        return f"{e.p}/{e.q}", (_MUL if e.p > 0 else _ADD)
    if e.is_Float:
        s = format(float(e), ".6g")
        return s, (_ATOM if float(e) >= 0 else _ADD)
    if e is sympy.E:
        return "e", _ATOM
    if e is sympy.pi:
        return "π", _ATOM
    if e in (sympy.oo, -sympy.oo):
        return ("∞" if e is sympy.oo else "-∞"), _ATOM
    if e.is_Add:
        return _add(e), _ADD
    if e.is_Mul:
        return _mul(e)
    if e.is_Pow:
        return _pow(e)
    if isinstance(e, sympy.exp):
        return f"e^{_exponent(e.args[0])}", _POW
    if isinstance(e, sympy.Abs):
        return f"|{_text(e.args[0])}|", _ATOM
    if isinstance(e, sigmoid):
        return f"σ({_text(e.args[0])})", _ATOM
    if isinstance(e, softplus):
        return f"softplus({_text(e.args[0])})", _ATOM
    if isinstance(e, sympy.Piecewise):
        return _piecewise(e), _ATOM
    if isinstance(e, quotient_form | product_form):
        return _rule_form_text(e)
    if isinstance(e, sympy.Rel):
        return f"{_text(e.lhs)} {_REL.get(e.rel_op, e.rel_op)} {_text(e.rhs)}", _ADD
    if isinstance(e, sympy.And | sympy.Or):
        joiner = " and " if isinstance(e, sympy.And) else " or "
        return joiner.join(_wrap(a, _ATOM) for a in e.args), _ADD
    if isinstance(e, sympy.Function):
        name = type(e).__name__
        return f"{name}({', '.join(_text(a) for a in e.args)})", _ATOM
    if isinstance(e, sympy.Derivative):
        var = e.variables[0]
        return f"d/d{_text(var)} [{_text(e.expr)}]", _ATOM
    return str(e), _ATOM


def _rule_form_text(e) -> tuple[str, int]:
    a, b, c, d = (_wrap(arg, _POW) for arg in e.args)
    if isinstance(e, product_form):
        return f"{a}·{b} + {c}·{d}", _ADD
    return f"({a}·{b} - {c}·{d})/{_wrap(e.args[1], _ATOM)}²", _MUL


def _add(e) -> str:
    out = ""
    for i, term in enumerate(ordered_terms(e)):
        negative = term.could_extract_minus_sign()
        body = _wrap(-term if negative else term, _MUL)
        if i == 0:
            out = f"-{body}" if negative else body
        else:
            out += f" - {body}" if negative else f" + {body}"
    return out


def _split_fraction(e):
    """Split a product into (sign, numerator factors, denominator factors)."""
    coeff, factors = e.as_coeff_mul()
    negative = coeff < 0
    coeff = abs(coeff)
    num, den = [], []
    if coeff != 1:
        if coeff.is_Rational:
            if coeff.p != 1:
                num.append(sympy.Integer(coeff.p))
            if coeff.q != 1:
                den.append(sympy.Integer(coeff.q))
        else:
            num.append(coeff)
    for f in factors:
        if f.is_Pow and f.exp.is_number and f.exp.is_negative:
            den.append(f.base ** (-f.exp))
        else:
            num.append(f)
    return negative, num, den


def _product(factors) -> str:
    out, previous = "", None
    for f in ordered_factors(factors):
        s = _wrap(f, _MUL) if not f.is_Add else f"({_text(f)})"
        if previous is None:
            out = s
        elif s.startswith("(") or (previous.is_Integer and not s[0].isdigit()):
            out += s
        else:
            out += "·" + s
        previous = f
    return out


def _mul(e) -> tuple[str, int]:
    negative, num, den = _split_fraction(e)
    top = _product(num) if num else "1"
    if den:
        bottom = _product(den)
        if len(den) > 1 or (not den[0].is_Add and _show(den[0])[1] < _POW):
            bottom = f"({bottom})"
        body = f"{top}/{bottom}"
    else:
        body = top
    return (f"-{body}", _ADD) if negative else (body, _MUL)


def _exponent(power) -> str:
    s, prec = _show(power)
    if prec == _ATOM and not s.startswith("-"):
        return s
    return f"({s})"


def _pow(e) -> tuple[str, int]:
    base, power = e.base, e.exp
    if power == sympy.S.Half:
        return f"√{_wrap(base, _ATOM) if not base.is_Symbol else _text(base)}", _POW
    if power.is_number and power.is_negative:
        return f"1/{_wrap(base ** (-power), _POW)}", _MUL
    plain = base.is_Symbol or (base.is_Integer and base > 0)
    b = _text(base) if plain else _wrap(base, _ATOM)
    if isinstance(base, sympy.Function | sympy.Piecewise) and not isinstance(base, sympy.Abs):
        b = _text(base)
    if power.is_Integer and power > 1:
        return f"{b}{str(power).translate(_SUPERSCRIPTS)}", _POW
    return f"{b}^{_exponent(power)}", _POW


def _piecewise(e) -> str:
    pieces = []
    for expr, cond in e.args:
        if cond is sympy.true:
            pieces.append(f"{_text(expr)} otherwise")
        else:
            pieces.append(f"{_text(expr)} for {_text(cond)}")
    return "{" + "; ".join(pieces) + "}"
