r"""A whitelist parser from user text to SymPy, over Python's ``ast``; nothing is evaluated.

Accepted: numbers, the names of :data:`SYMBOLS` (plus ``e`` and ``pi``), ``+ - * / **``
(``^`` also means power), unary minus, and calls of known functions: ``exp``, ``log``
(``ln``), ``sqrt``, ``abs``, ``sin``, ``cos``, ``tan``, ``sinh``, ``cosh``, ``tanh``,
``sigmoid``, ``softplus``, ``erf``, ``max(0, u)``, every built-in activation name
(``relu(u)``, ``gelu(u)``, ...) and the losses as two-argument calls (``bce(yhat, y)``).

Anything else (attribute access, subscripts, lambdas, strings, keywords, comparisons, unknown
names) raises :class:`FormulaError`, which quotes the offending part and its column. Text
longer than :data:`MAX_LENGTH` characters or nested deeper than :data:`MAX_DEPTH` is refused
before it is parsed. ``eval`` and ``sympify`` never see the text.

>>> parse_expression("x * sigmoid(x)")
x*sigmoid(x)
>>> parse_expression("2^x")
2**x
"""

from __future__ import annotations

import ast
import difflib
import functools
from collections.abc import Callable, Iterable

import sympy

from chainrule._checks import UnreadableFormulaError
from chainrule.derivation import library
from chainrule.derivation.functions import sigmoid, softplus
from chainrule.derivation.reading import Reading, function_names, read_source
from chainrule.derivation.symbols import SYMBOLS

__all__ = ["FUNCTIONS", "MAX_DEPTH", "MAX_LENGTH", "SYMBOLS", "FormulaError", "FormulaSyntaxError",
           "parse_expression"]

#: Longest formula accepted, in characters.
MAX_LENGTH = 500
#: Deepest nesting of parentheses and operators accepted.
MAX_DEPTH = 40
#: Largest numeric exponent of a power: of a number, SymPy would compute it; of a sum such as
#: ``(x + 1)**1000``, simplification would expand it (minutes for a 20-character formula).
MAX_NUMERIC_EXPONENT = 64
_MAX_LITERAL_DIGITS = 30

_UNARY = {
    "exp": sympy.exp,
    "log": sympy.log,
    "ln": sympy.log,
    "sqrt": sympy.sqrt,
    "abs": sympy.Abs,
    "Abs": sympy.Abs,  # as SymPy prints it, so printed results parse back
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "sigmoid": sigmoid,
    "softplus": softplus,
    "erf": sympy.erf,
}
_CONSTANTS = {"e": sympy.E, "E": sympy.E, "pi": sympy.pi}  # E as SymPy prints it

#: Every function name a formula may call.
FUNCTIONS: tuple[str, ...] = function_names()


class FormulaError(ValueError):
    """A formula that the whitelist parser refuses; the message quotes the part and its column."""


class FormulaSyntaxError(FormulaError, UnreadableFormulaError):
    """A formula that cannot be read: empty, holding characters that are not text, or not an
    expression by Python's grammar (a :class:`FormulaError` that a face treats as bad usage)."""


def unknown_name_hint(name: str, variables: Iterable[str]) -> str:
    """What an unknown name probably is ("did you mean sigmoid?", by :mod:`difflib`), then the
    activations, the losses and the variables a formula may use."""
    variables = list(variables)
    activations, losses = library.activation_names(), library.loss_names()
    every = [*activations, "softmax", "log_softmax", *losses, *variables]
    close = difflib.get_close_matches(name.lower(), every, n=1, cutoff=0.7)
    guess = f"did you mean {close[0]}? " if close else ""
    return (f"{guess}The activations are {', '.join(activations)}; the losses are "
            f"{', '.join(losses)}; the variables of a formula are {', '.join(variables)} "
            "(and e, pi)")


def refuse_runaway(func: Callable) -> Callable:
    """Turn SymPy or mpmath running out of stack or memory on a user's formula into a
    :class:`FormulaError` (a power tower such as ``x**x**x**x**x**x**x**x`` has values with
    more digits than memory holds; deeply nested calls exhaust the recursion limit)."""

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (RecursionError, MemoryError, OverflowError):
            raise FormulaError(
                "The formula is too large or nested too deeply to work with: its derivative or "
                "its values outgrow what can be computed; write it with less nesting."
            ) from None

    return guarded


def parse_expression(text: str, symbols: Iterable[str] | None = None) -> sympy.Expr:
    """Parse ``text`` into a SymPy expression using only whitelisted syntax.

    Parameters
    ----------
    text:
        The formula, e.g. ``"x * sigmoid(x)"`` or ``"-(y*log(yhat) + (1-y)*log(1-yhat))"``.
    symbols:
        The variable names allowed, a subset of :data:`SYMBOLS`; all of them when None.

    Raises
    ------
    FormulaError
        For any syntax outside the whitelist, naming the part, its column and the fix.
    """
    if not isinstance(text, str):
        raise FormulaSyntaxError(f"A formula must be a string; got {type(text).__name__}.")
    if len(text) > MAX_LENGTH:
        raise FormulaError(
            f"The formula is {len(text)} characters long; the limit is {MAX_LENGTH}. "
            "Split it into smaller parts."
        )
    if not text.strip():
        raise FormulaSyntaxError("The formula is empty; write one such as 'x * sigmoid(x)'.")
    for col, ch in enumerate(text):
        if ch == "\0" or "\ud800" <= ch <= "\udfff":
            what = "a NUL character" if ch == "\0" else "a byte that is not UTF-8 text"
            raise FormulaSyntaxError(f"The formula holds {what} at column {col + 1}; write it as "
                               "plain text such as 'x * sigmoid(x)'.")
    allowed = _allowed_symbols(symbols)
    _check_paren_depth(text)
    reading = read_source(text, FUNCTIONS, functools.partial(_unknown_character, text))
    try:
        tree = ast.parse(reading.source, mode="eval")
    except SyntaxError as exc:
        if not exc.offset:  # Python's offset 0: the text ended where more was expected
            end = len(text.rstrip())
            raise FormulaSyntaxError(
                f"Cannot parse {text.strip()!r}: it ends too early at column {end + 1} (after "
                f"{text.strip()[-12:]!r}); an operand or a closing parenthesis is missing."
            ) from None
        col = reading.starts[min(max(exc.offset - 1, 0), len(reading.source))]
        raise FormulaSyntaxError(
            f"Cannot parse {text.strip()!r}: {exc.msg} at column {col + 1} "
            f"(near {text[col:col + 12]!r}); it reads as {_short(reading.source)!r}."
        ) from None
    except (RecursionError, MemoryError):
        raise FormulaError(
            f"The formula is nested too deeply (limit {MAX_DEPTH} levels)."
        ) from None
    try:
        expr = _Builder(reading, allowed).build(tree.body, 0)
    except (TypeError, ZeroDivisionError) as exc:  # SymPy meeting zoo: a comparison with log(0)
        raise FormulaError(
            f"The formula {text.strip()!r} is undefined ({exc}): look for a log of 0 or a "
            "division by 0."
        ) from None
    for power in expr.atoms(sympy.Pow):  # also (x**64)**64, which SymPy combines into x**4096
        if power.exp.is_number and abs(power.exp) > MAX_NUMERIC_EXPONENT:
            raise FormulaError(
                f"The formula {text.strip()!r} has the power {power} with an exponent over "
                f"{MAX_NUMERIC_EXPONENT}: keep numeric exponents within ±{MAX_NUMERIC_EXPONENT}."
            )
    if expr.has(sympy.I, sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise FormulaError(
            f"The formula {text.strip()!r} is not a finite real expression (it is {expr}); check "
            "the constants, e.g. the log of a negative number."
        )
    _check_powers(expr, text.strip())
    return expr


#: Points at which powers and denominators are tried (exact rationals, so that a sum that
#: cancels to 0, such as sin(x)**2 + cos(x)**2 - 1, evaluates to exactly 0).
_PROBES = tuple(sympy.Rational(n, 10) for n in (-25, -7, 3, 19))


def _is_zero_at(expr: sympy.Expr, point: dict) -> bool:
    value = expr.subs(point).evalf(30, chop=True)
    return value.is_number and value == 0


def _check_powers(expr: sympy.Expr, text: str) -> None:
    """Refuse a power or a quotient that is undefined wherever the formula is tried: a
    non-positive number to a variable power (``0**x``, ``(-1)**x``), a base that is 0 where
    the exponent is not positive (``max(x, 0)**x`` for x < 0), and a denominator that is 0
    everywhere (``1/(sin(x)**2 + cos(x)**2 - 1)``)."""
    variables = sorted(expr.free_symbols, key=str)
    points = [{v: _PROBES[(i + j) % len(_PROBES)] for j, v in enumerate(variables)}
              for i in range(len(_PROBES))]
    for power in expr.atoms(sympy.Pow):
        base, exponent = power.as_base_exp()
        if exponent.is_number:
            if exponent.is_negative and variables and all(_is_zero_at(base, p) for p in points):
                raise FormulaError(
                    f"The formula {text!r} divides by {base}, which is 0 for every value of "
                    f"{', '.join(map(str, variables))}: the expression is undefined everywhere."
                )
            continue
        if base.is_number and (base.is_zero or base.is_negative):
            raise FormulaError(
                f"The formula {text!r} raises {base} to the variable power {exponent}: "
                + ("0**u is undefined (a division by 0) wherever u <= 0"
                   if base.is_zero else f"({base})**u is not a real number for non-integer u")
                + "; write a positive base, e.g. exp(u*log(2)) for 2**u."
            )
        for point in points:
            if _is_zero_at(base, point):
                value = exponent.subs(point).evalf(15)
                if value.is_number and value.is_real and value <= 0:
                    where = ", ".join(f"{k} = {v}" for k, v in point.items())
                    raise FormulaError(
                        f"The formula {text!r} raises {base} to the power {exponent}, which is "
                        f"0 to the power {value:.3g} at {where}: undefined there (a division by "
                        "0). Keep the base positive, e.g. with softplus or exp."
                    )


#: log10 of the largest float64, about 1.8e308: larger constants cannot be evaluated.
_LOG10_FLOAT_MAX = 308.25


def _log10_abs(value: sympy.Expr) -> float:
    """log10 |value| of a number (-inf for 0), without forming its digits when it is a power."""
    magnitude = sympy.Abs(value).evalf(15)
    if not magnitude.is_Float or magnitude <= 0:
        return float("-inf") if magnitude == 0 else 0.0
    return float(sympy.log(magnitude, 10).evalf(15))


def _short(source: str, limit: int = 80) -> str:
    return source if len(source) <= limit else source[:limit - 1] + "…"


def _unknown_character(text: str, col: int) -> FormulaSyntaxError:
    ch = text[col]
    hint = (" (a transpose belongs to a matrix formula, checked with a layer or a network)"
            if ch == "ᵀ" else "")
    return FormulaSyntaxError(
        f"Cannot parse {text.strip()!r}: the character {ch!r} (U+{ord(ch):04X}) at column "
        f"{col + 1} is not part of a formula{hint}; write it as plain text such as "
        "'x * sigmoid(x)' (ŷ, "
        "σ, √, superscript powers such as x², and · × − are read too)."
    )


def _allowed_symbols(symbols) -> dict[str, sympy.Symbol]:
    if symbols is None:
        return SYMBOLS
    chosen = {}
    for name in symbols:
        if name not in SYMBOLS:
            raise FormulaError(
                f"Unknown symbol {name!r}; the documented symbols are {', '.join(SYMBOLS)}."
            )
        chosen[name] = SYMBOLS[name]
    return chosen


def _check_paren_depth(text: str) -> None:
    depth = 0
    for col, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth > MAX_DEPTH:
            raise FormulaError(
                f"The formula is nested too deeply at column {col + 1} (limit {MAX_DEPTH} "
                "levels)."
            )


class _Builder:
    """Walk the ``ast`` and build the SymPy expression, refusing anything not whitelisted."""

    def __init__(self, reading: Reading, allowed):
        self.text = reading.text
        self.source = reading.source
        self.reading = reading
        self.allowed = allowed

    def fail(self, node: ast.AST, what: str, fix: str) -> FormulaError:
        """The error for ``node``: "<What> '<segment>' at column <n>: <fix>." as one sentence;
        the segment and the column are those of the text as typed."""
        stop = getattr(node, "end_col_offset", None) or node.col_offset + 1
        start, end = self.reading.span(node.col_offset, stop)
        segment = self.text[start:end]
        fix = fix if fix.endswith(".") else fix + "."
        what = what[:1].upper() + what[1:]
        return FormulaError(f"{what} {segment!r} at column {start + 1}: {fix}")

    def build(self, node: ast.AST, depth: int) -> sympy.Expr:
        expr = self._build(node, depth)
        if expr.is_number and _log10_abs(expr) > _LOG10_FLOAT_MAX:
            raise self.fail(
                node,
                "constant beyond the float range in",
                f"its value is about 10**{_log10_abs(expr):.0f}, more than the largest float "
                "(about 1.8e308); use smaller constants",
            )
        return expr

    def _build(self, node: ast.AST, depth: int) -> sympy.Expr:
        if depth > MAX_DEPTH:
            raise self.fail(node, "the formula is nested too deeply near",
                            f"the limit is {MAX_DEPTH}")
        if isinstance(node, ast.Constant):
            return self._number(node)
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            operand = self.build(node.operand, depth + 1)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and isinstance(
            node.op, ast.Add | ast.Sub | ast.Mult | ast.Div | ast.Pow
        ):
            return self._binop(node, depth)
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        kind = type(node).__name__
        raise self.fail(
            node,
            f"unsupported syntax ({kind})",
            "use numbers, variables, + - * / ** and calls of known functions "
            f"({', '.join(FUNCTIONS)})",
        )

    def _number(self, node: ast.Constant) -> sympy.Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(node, "unsupported constant", "only real numbers are allowed")
        segment = ast.get_source_segment(self.source, node) or repr(value)
        if len(segment) > _MAX_LITERAL_DIGITS:
            raise self.fail(
                node, "number too long", f"use at most {_MAX_LITERAL_DIGITS} characters"
            )
        if isinstance(value, int):
            return sympy.Integer(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise self.fail(node, "number out of range", "use a finite number")
        # Keep the digits the user wrote: 0.5 stays 1/2 so that results stay exact.
        return sympy.Rational(segment) if "e" not in segment.lower() else sympy.Float(value)

    def _name(self, node: ast.Name) -> sympy.Expr:
        if node.id in self.allowed:
            return self.allowed[node.id]
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if node.id in FUNCTIONS:
            raise self.fail(node, "function name without arguments", f"write {node.id}(x)")
        raise self.fail(node, "unknown name", unknown_name_hint(node.id, self.allowed))

    def _binop(self, node: ast.BinOp, depth: int) -> sympy.Expr:
        left = self.build(node.left, depth + 1)
        right = self.build(node.right, depth + 1)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            if right.is_zero:
                raise self.fail(node, "division by zero in", "the denominator is 0")
            return left / right
        if right.is_number and abs(right) > MAX_NUMERIC_EXPONENT:
            raise self.fail(
                node,
                "numeric power too large",
                f"keep numeric exponents within ±{MAX_NUMERIC_EXPONENT}",
            )
        if left.is_number and right.is_number:
            # Judge the size of a number's power before SymPy computes all its digits:
            # ((9**64)**64)**64 has 250,000 of them.
            size = _log10_abs(left) * float(sympy.re(right).evalf(15))
            if size > _LOG10_FLOAT_MAX:
                raise self.fail(
                    node,
                    "constant beyond the float range in",
                    f"its value is about 10**{size:.0f}, more than the largest float (about "
                    "1.8e308); use smaller constants",
                )
        return left**right

    def _call(self, node: ast.Call, depth: int) -> sympy.Expr:
        func = node.func
        if not isinstance(func, ast.Name):
            raise self.fail(
                func, "unsupported call of", "call a known function by its plain name"
            )
        name = func.id
        if name not in FUNCTIONS:
            raise self.fail(func, "unknown function", f"known functions: {', '.join(FUNCTIONS)}")
        if node.keywords:
            raise self.fail(node, "keyword arguments are not supported in", f"write {name}(x)")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(node, "starred arguments are not supported in", f"write {name}(x)")
        args = [self.build(a, depth + 1) for a in node.args]
        if name == "max":
            return self._max(node, args)
        if name in library.LOSS_INFO:
            if len(args) != 2:
                raise self.fail(node, f"the loss {name} takes 2 arguments (prediction, target)"
                                " in", f"write {name}(yhat, y)")
            try:
                return library.loss_expr(name, args[0], args[1])
            except ValueError as exc:
                raise self.fail(node, "unsupported loss", str(exc)) from None
        if len(args) != 1:
            raise self.fail(node, f"the function {name} takes 1 argument, got {len(args)}, in",
                            f"write {name}(x)")
        if name in _UNARY:
            return _UNARY[name](args[0])
        expr = library.activation_expr(name, args[0])
        if "alpha" not in self.allowed:  # no symbol alpha here: the library's default slope
            expr = expr.subs(library.DEFAULT_NUMERIC.get(name, {}))
        return expr

    def _max(self, node: ast.Call, args: list[sympy.Expr]) -> sympy.Expr:
        if len(args) == 2 and (args[0] == 0 or args[1] == 0):
            other = args[1] if args[0] == 0 else args[0]
            return library.activation_expr("relu", other)
        raise self.fail(node, "unsupported max", "only max(0, u) (a ReLU) is supported")
