r"""From the formula as typed to Python syntax, keeping every character's column.

People type formulas as they write them on paper and as the page prints them, so before the
whitelist parser (:mod:`chainrule.derivation.parser`) sees a formula this module rewrites it,
token by token, into the Python syntax that :mod:`ast` reads:

* implicit multiplication: ``2x`` is ``2*x``, ``x(1-x)`` is ``x*(1-x)`` for a variable ``x``
  (while ``sigmoid(z)`` stays a call), ``(1-y)log(1-yhat)`` is ``(1-y)*log(1-yhat)``;
* a function applied without parentheses to one operand: ``sin x`` is ``sin(x)``, ``log yhat``
  is ``log(yhat)``, ``σ z`` is ``sigmoid(z)``; the operand is a number, a variable, a number
  times a variable (``sin 2x``) or any of these raised to a power (``sin x^2`` is ``sin(x^2)``);
* the notation of the page: ``ŷ``/``Ŷ`` (yhat), ``σ`` (sigmoid; ``sigma`` too), ``η α δ π``,
  superscript powers (``x²``, ``x⁻¹``), ``· × ⋅ ∗`` (times), ``−`` (minus), ``÷``, ``√`` and
  subscript digits (``x₁`` reads ``x1``);
* ``^`` means power.

Each character of the result keeps the span of the characters it came from, so that an error
quotes and points at what the user typed. Nothing is evaluated: the result is text for
:func:`ast.parse`, and the whitelist decides what it may hold. Other characters outside ASCII
are refused here, with their column.

>>> read_formula("2x(1 − x)")
'2*x*(1 - x)'
>>> read_formula("σ z + ŷ²")
'sigmoid(z) + yhat**2'
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass

__all__ = ["ELEMENTARY", "Reading", "function_names", "read_as_html", "read_formula",
           "read_source"]

#: Names a formula may use as variables or constants: followed by "(" they multiply it.
_OPERAND_NAMES = frozenset({"x", "z", "yhat", "y", "w", "p", "t", "eta", "alpha", "m", "delta",
                            "e", "E", "pi"})
#: ASCII names read as another name.
_ALIASES = {"sigma": "sigmoid"}
#: Single characters read as a name (letters of the page's notation).
_LETTERS = {"ŷ": "yhat", "Ŷ": "yhat", "σ": "sigmoid", "η": "eta", "α": "alpha", "δ": "delta",
            "π": "pi", "ℯ": "e"}
#: Single characters read as an operator.
_OPERATORS = {"·": "*", "×": "*", "⋅": "*", "∗": "*", "−": "-", "–": "-", "÷": "/", "^": "**"}
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
_TOKEN = re.compile(
    # Python's number literals whole (1j, 0x10, 1_000 reach the whitelist as Python reads them)
    r"(?P<num>0[xXoObB][0-9a-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?[jJ]?)"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<sup>[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+)"
    r"|(?P<pow>\*\*)"
    r"|(?P<space>[^\S\n\r\v\f]+)"  # a line break is no space: "x\nx" is not x*x
)
_HAT = "\u0302"  # a combining circumflex: y followed by it is ŷ


@dataclass
class _Token:
    kind: str  # num, name, func, sqrt, op, open, close, sup, other
    out: str
    start: int
    end: int

    @property
    def ends_operand(self) -> bool:
        return self.kind in ("num", "close", "sup") or (
            self.kind == "name" and self.out in _OPERAND_NAMES)

    @property
    def starts_operand(self) -> bool:
        if self.kind == "name" and keyword.iskeyword(self.out):
            return False  # "x if c else 1" stays Python's, for the whitelist to refuse
        return self.kind in ("num", "name", "func", "sqrt", "open")


@dataclass(frozen=True)
class Reading:
    """A formula as typed (``text``) and as Python syntax (``source``); ``starts[i]`` and
    ``ends[i]`` are the span in ``text`` of ``source[i]`` (one more entry each: the end)."""

    text: str
    source: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def span(self, first: int, stop: int) -> tuple[int, int]:
        """The columns in ``text`` of ``source[first:stop]`` (at least one character)."""
        last = len(self.source)
        first = min(max(first, 0), last)
        stop = min(max(stop, first + 1), last)
        start = self.starts[first]
        return start, max(self.ends[stop - 1] if stop > first else start + 1, start + 1)


def _tokens(text: str, unknown) -> list[_Token]:
    """The tokens of ``text``; ``unknown(column)`` is raised for a character outside the
    notation that is not ASCII."""
    out, i = [], 0
    while i < len(text):
        match = _TOKEN.match(text, i)
        ch = text[i]
        if match and match.lastgroup != "space":
            kind, piece = match.lastgroup, match.group()
            end = match.end()
            if kind == "name":
                while end < len(text) and text[end] in "₀₁₂₃₄₅₆₇₈₉":
                    end += 1
                piece = text[i:end].translate(_SUBSCRIPTS)
                if end < len(text) and text[end] == _HAT:
                    piece, end = piece + "hat", end + 1
                piece = _ALIASES.get(piece, piece)
            elif kind == "sup":
                piece = "**" + piece.translate(_SUPERSCRIPTS)
            elif kind == "pow":
                kind = "op"
            out.append(_Token(kind, piece, i, end))
            i = end
        elif match:  # white space
            i = match.end()
        elif ch in _LETTERS:
            out.append(_Token("name", _LETTERS[ch], i, i + 1))
            i += 1
        elif ch in _OPERATORS:
            out.append(_Token("op", _OPERATORS[ch], i, i + 1))
            i += 1
        elif ch == "√":
            out.append(_Token("sqrt", "sqrt", i, i + 1))
            i += 1
        elif ch.isascii():
            kind = {"(": "open", ")": "close"}.get(ch, "other")
            out.append(_Token(kind, ch, i, i + 1))
            i += 1
        else:
            raise unknown(i)
    return out


#: The elementary functions a formula may call, besides the activations and the losses.
ELEMENTARY = ("exp", "log", "ln", "sqrt", "abs", "Abs", "sin", "cos", "tan", "sinh", "cosh",
              "tanh", "sigmoid", "softplus", "erf", "max")


def function_names() -> tuple[str, ...]:
    """Every function name a formula may call: :data:`ELEMENTARY`, the activations and the
    losses (the parser's ``FUNCTIONS``)."""
    from chainrule.derivation import library

    return tuple(sorted({*ELEMENTARY, *library.activation_names(), *library.loss_names()}))


def _is_function(tok: _Token, functions) -> bool:
    return tok.kind == "sqrt" or (tok.kind == "name" and tok.out in functions)


def _group_end(toks: list[_Token], k: int) -> int:
    """The index after the parenthesis closing the one at ``k`` (or the end)."""
    depth = 0
    for j in range(k, len(toks)):
        depth += toks[j].kind == "open"
        depth -= toks[j].kind == "close"
        if depth == 0:
            return j + 1
    return len(toks)


def _argument_end(toks: list[_Token], k: int, functions) -> int | None:
    """Where the operand of a function written without parentheses ends (it starts at ``k``),
    or None when there is none: a number, a variable, a number times a variable written
    together, another function's application, each with an optional power."""
    n = len(toks)
    if k >= n:
        return None
    tok = toks[k]
    if _is_function(tok, functions):
        if k + 1 < n and toks[k + 1].kind == "open":
            return _power_end(toks, _group_end(toks, k + 1))
        return _argument_end(toks, k + 1, functions)
    if tok.kind == "num":
        k += 1
        if k < n and toks[k].kind == "name" and toks[k].out in _OPERAND_NAMES \
                and toks[k].start == tok.end:
            k += 1
    elif tok.kind == "name" and tok.out in _OPERAND_NAMES:
        k += 1
    else:
        return None
    return _power_end(toks, k)


def _power_end(toks: list[_Token], k: int) -> int:
    """After an operand ending before ``k``: past its power, if one follows."""
    n = len(toks)
    if k < n and toks[k].kind == "sup":
        return k + 1
    if k < n and toks[k].out == "**":
        j = k + 1
        if j < n and toks[j].out in ("-", "+"):
            j += 1
        if j < n and toks[j].kind == "open":
            return _group_end(toks, j)
        if j < n and (toks[j].kind == "num" or toks[j].out in _OPERAND_NAMES):
            return j + 1
    return k


def _apply_functions(toks: list[_Token], functions) -> list[_Token]:
    """Put parentheses around the operand of each function written without them."""
    for i in range(len(toks) - 1, -1, -1):
        if not _is_function(toks[i], functions):
            continue
        if i + 1 < len(toks) and toks[i + 1].kind == "open":
            continue
        end = _argument_end(toks, i + 1, functions)
        if end is None:
            continue
        first, last = toks[i + 1], toks[end - 1]
        toks[end:end] = [_Token("close", ")", last.end, last.end)]
        toks[i + 1:i + 1] = [_Token("open", "(", first.start, first.start)]
    return toks


def read_source(text: str, functions, unknown) -> Reading:
    """The :class:`Reading` of ``text``: Python syntax with explicit ``*``, ``**`` and calls.

    ``functions`` are the names that are called (a name followed by ``(`` that is neither a
    function nor a variable stays a call, so that the parser names the unknown function);
    ``unknown(column)`` is the error raised for a character outside the notation.
    """
    toks = _apply_functions(_tokens(text, unknown), functions)
    pieces: list[tuple[str, int, int]] = []
    previous = None
    for tok in toks:
        if previous is not None and previous.ends_operand and tok.starts_operand \
                and not (previous.kind == "num" and tok.kind == "num"):
            pieces.append(("*", tok.start, tok.start))
        elif previous is not None and tok.kind in ("num", "name") \
                and previous.kind in ("num", "name", "func", "sqrt"):
            pieces.append((" ", tok.start, tok.start))  # keep the names apart for ast
        pieces.append((tok.out, tok.start, tok.end))
        previous = tok
    source, starts, ends = [], [], []
    for piece, start, end in pieces:
        source.append(piece)
        starts.extend([start] * len(piece))
        ends.extend([end] * len(piece))
    starts.append(len(text))
    ends.append(len(text))
    return Reading(text, "".join(source), tuple(starts), tuple(ends))


def read_formula(text: str) -> str:
    """How a formula is read, in Python syntax (``"2x(1 − x)"`` reads ``"2*x*(1 - x)"``):
    the text the "read as" line of each face shows. Text that is not a formula is returned as
    far as it could be read."""
    def unknown(col: int) -> ValueError:
        return ValueError(col)

    try:
        source = read_source(text, function_names(), unknown).source
    except ValueError:
        return " ".join(text.split())
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, RecursionError, MemoryError):
        return source.strip()
    return unparse(tree.body)


def unparse(node: ast.AST) -> str:
    """Python text of a parsed formula, products and powers written tight (``2*x**2``)."""
    return ast.unparse(node).replace(" ** ", "**").replace(" * ", "*")


# --- the reading as MathML ----------------------------------------------------------------------

_SHOWN_NAMES = {"yhat": '<mover accent="true"><mi>y</mi><mo>^</mo></mover>', "eta": "<mi>η</mi>",
                "alpha": "<mi>α</mi>", "delta": "<mi>δ</mi>", "pi": "<mi>π</mi>",
                "sigmoid": "<mi>σ</mi>", "e": "<mi>e</mi>", "E": "<mi>e</mi>"}
_PRECEDENCE = {ast.Add: 1, ast.Sub: 1, ast.Mult: 2, ast.Div: 2, ast.Pow: 4}


def _precedence(node: ast.AST) -> int:
    if isinstance(node, ast.BinOp):
        return _PRECEDENCE.get(type(node.op), 0)
    if isinstance(node, ast.UnaryOp):
        return 3
    return 5


def _bracket(body: str) -> str:
    return f"<mrow><mo>(</mo>{body}<mo>)</mo></mrow>"


def _mathml(node: ast.AST) -> str:
    """Presentation MathML of a node of a read formula; every product is shown with a dot, so
    that the line shows how the text was read, not how it simplifies."""
    from html import escape

    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) \
            and not isinstance(node.value, bool):
        return f"<mn>{escape(repr(node.value))}</mn>"
    if isinstance(node, ast.Name):
        return _SHOWN_NAMES.get(node.id, f"<mi>{escape(node.id)}</mi>")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _mathml(node.operand)
        inner = _bracket(inner) if _precedence(node.operand) < 3 else inner
        return f"<mrow><mo>{'−' if isinstance(node.op, ast.USub) else '+'}</mo>{inner}</mrow>"
    if isinstance(node, ast.BinOp) and type(node.op) in _PRECEDENCE:
        return _binop_mathml(node)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        args = "<mo>,</mo>".join(_mathml(a) for a in node.args)
        if node.func.id == "sqrt" and len(node.args) == 1:
            return f"<msqrt>{args}</msqrt>"
        return f"<mrow>{_mathml(node.func)}<mo>&#x2061;</mo>{_bracket(args)}</mrow>"
    return f"<mtext>{escape(unparse(node))}</mtext>"


def _binop_mathml(node: ast.BinOp) -> str:
    own = _precedence(node)
    left, right = _mathml(node.left), _mathml(node.right)
    if isinstance(node.op, ast.Div):
        return f"<mfrac>{left}{right}</mfrac>"
    if isinstance(node.op, ast.Pow):
        left = _bracket(left) if _precedence(node.left) <= own else left
        return f"<msup>{left}{right}</msup>"
    if _precedence(node.left) < own:
        left = _bracket(left)
    # a - (b + c) and a*(b*c)/a*(-b) keep the brackets that were typed or are needed
    if _precedence(node.right) < own or (_precedence(node.right) == own
                                         and isinstance(node.op, ast.Sub | ast.Mult)) \
            or isinstance(node.right, ast.UnaryOp):
        right = _bracket(right)
    sign = {ast.Add: "+", ast.Sub: "−", ast.Mult: "·"}[type(node.op)]
    return f"<mrow>{left}<mo>{sign}</mo>{right}</mrow>"


def read_as_html(text: str) -> str:
    """The "read as" line of the web page: how ``text`` was read, in MathML (every product
    with a dot) with the Python text as its alttext; as text where it is not a formula."""
    from html import escape

    from chainrule._mathml import math_element

    read = read_formula(text)
    try:
        tree = ast.parse(read, mode="eval")
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        shown = ""
    else:
        shown = math_element(_mathml(tree.body), alttext=read) + " "
    return (f'<p class="read-as"><span class="form">read as</span> {shown}'
            f'<code class="read-as-text">{escape(read)}</code></p>')
