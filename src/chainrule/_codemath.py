r"""A formula typed in Python and NumPy syntax, set as maths: MathML and LaTeX.

A learner types ``X.T @ ((Yhat - T) @ W2.T * (Z1 > 0)) / m``; a check shows it back as
:math:`X^\top \left((\hat Y - T) W_2^\top \odot [Z_1 > 0]\right) / m`. The text is read with
:func:`ast.parse` (never evaluated): ``@`` is a matrix product, ``*`` between arrays the
element-wise product ⊙ (a number times an array stays a product), ``.T`` a transpose, a
comparison an Iverson bracket, ``W2`` is :math:`W_2`, ``Yhat`` is :math:`\hat Y`, ``D1`` is
:math:`\Delta_1`. A text that is not Python (or uses what a formula never needs) is ``None``,
and the caller shows it as written. Standard library only.
"""

from __future__ import annotations

import ast
import re
from html import escape

__all__ = ["code_maths", "expected_maths", "split_definitions"]

_FUNCTIONS = {"exp", "log", "tanh", "sigmoid", "relu", "softmax", "softplus", "sqrt", "abs",
              "diag", "sum", "mean", "max", "min", "sin", "cos", "sign", "elu", "gelu", "swish"}
_SCALARS = {"m", "alpha", "eta", "delta", "lam"}
_GREEK = {"alpha": ("α", r"\alpha"), "eta": ("η", r"\eta"), "delta": ("δ", r"\delta"),
          "lam": ("λ", r"\lambda"), "sigma": ("σ", r"\sigma")}
_NAME = re.compile(r"([A-Za-z]+?)(hat)?(\d*)$")
_ADD, _MUL, _POW, _ATOM = 1, 2, 3, 4
_COMPARE = {ast.Gt: (">", ">"), ast.Lt: ("<", "<"), ast.GtE: ("≥", r"\ge"),
            ast.LtE: ("≤", r"\le")}


class _Unreadable(Exception):
    """The text uses what a formula never needs."""


def _name(name: str) -> tuple[str, str]:
    if "_" in name:
        raise _Unreadable
    match = _NAME.match(name)
    if name in _GREEK:
        return f"<mi>{_GREEK[name][0]}</mi>", _GREEK[name][1]
    if match is None or (len(match.group(1)) > 1 and not match.group(2)):
        return f"<mi>{escape(name)}</mi>", rf"\mathit{{{name}}}"
    base, hat, digits = match.groups()
    if base == "D" and digits:  # the error signal Δ_l
        m, t = "<mi>Δ</mi>", r"\Delta"
    elif hat:
        m, t = f'<mover accent="true"><mi>{base}</mi><mo>^</mo></mover>', rf"\hat{{{base}}}"
    else:
        m, t = f"<mi>{base}</mi>", base
    if digits:
        return f"<msub>{m}<mn>{digits}</mn></msub>", f"{t}_{{{digits}}}"
    return m, t


def _paren(item: tuple[str, str, int], level: int) -> tuple[str, str]:
    m, t, prec = item
    if prec >= level:
        return m, t
    return f"<mrow><mo>(</mo>{m}<mo>)</mo></mrow>", rf"\left({t}\right)"


def _scalar(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) or (isinstance(node, ast.Name) and node.id in _SCALARS)
            or (isinstance(node, ast.UnaryOp) and _scalar(node.operand)))


def _matmul(node: ast.AST) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult)


def _binop(node: ast.BinOp, matrices: bool) -> tuple[str, str, int]:
    left, right = _show(node.left, matrices), _show(node.right, matrices)
    op = type(node.op)
    if op in (ast.Add, ast.Sub):
        sign = ("+", "+") if op is ast.Add else ("−", "-")
        (lm, lt), (rm, rt) = _paren(left, _ADD), _paren(right, _MUL)
        return f"<mrow>{lm}<mo>{sign[0]}</mo>{rm}</mrow>", f"{lt} {sign[1]} {rt}", _ADD
    if op is ast.Div:
        (lm, lt), (rm, rt) = _paren(left, _ADD), _paren(right, _ADD)
        return f"<mfrac>{lm}{rm}</mfrac>", rf"\frac{{{lt}}}{{{rt}}}", _ATOM
    if op is ast.Pow:
        (lm, lt), (rm, rt) = _paren(left, _ATOM), _paren(right, _ADD)
        return f"<msup>{lm}{rm}</msup>", f"{{{lt}}}^{{{rt}}}", _POW
    if op in (ast.Mult, ast.MatMult):
        (lm, lt), (rm, rt) = _paren(left, _MUL), _paren(right, _MUL + 1)
        if op is ast.Mult and matrices:  # (A B) ⊙ C: the product in parentheses
            (lm, lt), (rm, rt) = (_paren(left, _MUL + 1 if _matmul(node.left) else _MUL),
                                  _paren(right, _MUL + 1))
        if op is ast.MatMult:
            sep = ("<mo>&#8290;</mo>", r"\,")
        elif not matrices:
            sep = ("<mo>&#8290;</mo>", " ")
        elif _scalar(node.left) or _scalar(node.right):
            sep = ("<mo>⋅</mo>", r"\cdot ")
        else:
            sep = ("<mo>⊙</mo>", r" \odot ")
        return f"<mrow>{lm}{sep[0]}{rm}</mrow>", f"{lt}{sep[1]}{rt}", _MUL
    raise _Unreadable


def _call(node: ast.Call, matrices: bool) -> tuple[str, str, int]:
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == "sum" and node.keywords:
        axis = next((k.value.value for k in node.keywords if k.arg == "axis"
                     and isinstance(k.value, ast.Constant)), None)
        inner = _paren(_show(func.value, matrices), _ATOM)
        if axis == 0:  # 1ᵀ A, the column sums
            return (f'<mrow><msup><mn mathvariant="bold">1</mn><mo>⊤</mo></msup>{inner[0]}'
                    "</mrow>", rf"\mathbf{{1}}^\top {inner[1]}", _MUL)
        return (f'<mrow>{inner[0]}<mn mathvariant="bold">1</mn></mrow>',
                rf"{inner[1]}\,\mathbf{{1}}", _MUL)
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    args = [_show(a, matrices) for a in node.args]
    if name is None or not args:
        raise _Unreadable
    inner_m = "<mo>,</mo>".join(a[0] for a in args)
    inner_t = ", ".join(a[1] for a in args)
    if name not in _FUNCTIONS:  # yhat(1 - yhat): a product, written without its sign
        base = _name(name)
        return (f"<mrow>{base[0]}<mrow><mo>(</mo>{inner_m}<mo>)</mo></mrow></mrow>",
                rf"{base[1]}\left({inner_t}\right)", _MUL)
    shown = "σ" if name == "sigmoid" else name
    tex = r"\sigma" if name == "sigmoid" else rf"\operatorname{{{name}}}"
    return (f"<mrow><mi>{shown}</mi><mo>&#8289;</mo><mrow><mo>(</mo>{inner_m}<mo>)</mo></mrow>"
            "</mrow>", rf"{tex}\left({inner_t}\right)", _ATOM)


def _show(node: ast.AST, matrices: bool) -> tuple[str, str, int]:
    if isinstance(node, ast.Expression):
        return _show(node.body, matrices)
    if isinstance(node, ast.Name):
        return (*_name(node.id), _ATOM)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        text = repr(node.value)
        return f"<mn>{text}</mn>", text, _ATOM
    if isinstance(node, ast.BinOp):
        return _binop(node, matrices)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = ("−", "-") if isinstance(node.op, ast.USub) else ("+", "+")
        m, t = _paren(_show(node.operand, matrices), _MUL)
        return f"<mrow><mo>{sign[0]}</mo>{m}</mrow>", f"{sign[1]}{t}", _ADD
    if isinstance(node, ast.Attribute) and node.attr == "T":
        m, t = _paren(_show(node.value, matrices), _ATOM)
        if m.startswith("<msub>") and m.count("<msub>") == 1:  # W₂ᵀ: one script element
            return (f"<msubsup>{m[6:-7]}<mo>⊤</mo></msubsup>", t + r"^\top", _POW)
        return f"<msup>{m}<mo>⊤</mo></msup>", rf"{{{t}}}^\top", _POW
    if isinstance(node, ast.Call):
        return _call(node, matrices)
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        (lm, lt, _), (rm, rt, _) = (_show(node.left, matrices),
                                    _show(node.comparators[0], matrices))
        om, ot = _COMPARE[type(node.ops[0])]
        return (f"<mrow><mo>[</mo>{lm}<mo>{escape(om)}</mo>{rm}<mo>]</mo></mrow>",
                f"[{lt} {ot} {rt}]", _ATOM)
    raise _Unreadable


def code_maths(text: str, matrices: bool = True) -> tuple[str, str] | None:
    """A formula in Python syntax as (MathML body, LaTeX), or None when it is not one.
    ``matrices``: ``*`` between arrays is the element-wise product ⊙ (else a product)."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
        m, t, _ = _show(tree, matrices)
    except (SyntaxError, ValueError, _Unreadable, RecursionError):
        return None
    return m, t


def _top_level_split(text: str, sep: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i])
            start = i + len(sep)
    parts.append(text[start:])
    return [p.strip() for p in parts]


def split_definitions(text: str) -> tuple[str, list[str]]:
    """``"X.T @ D1 where D1 = ..., D2 = ..."`` -> ``("X.T @ D1", ["D1 = ...", "D2 = ..."])``."""
    head, _, rest = text.partition(" where ")
    return head, (_top_level_split(rest, ", ") if rest else [])


def expected_maths(text: str, matrices: bool = True) -> tuple[str, str] | None:
    """An expected form such as ``X.T @ D1 where D1 = (D2 @ W2.T) * (Z1 > 0), D2 = ...`` as
    (MathML body, LaTeX): the formula, then each definition after "where"."""
    head, _, rest = text.partition(" where ")
    pieces = [code_maths(head, matrices)]
    for definition in (_top_level_split(rest, ", ") if rest else []):
        name, eq, value = definition.partition(" = ")
        pieces.append(code_maths(name, matrices) if eq else None)
        pieces.append(code_maths(value, matrices) if eq else None)
    if any(p is None for p in pieces):
        return None
    mathml, latex = [pieces[0][0]], [pieces[0][1]]
    for i in range(1, len(pieces), 2):
        mathml.append("<mtext>\u2003where\u2002</mtext>" if i == 1 else
                      '<mo separator="true">,</mo><mspace width="0.5em"/>')
        latex.append(r"\quad\text{where}\quad " if i == 1 else r",\ ")
        mathml += [pieces[i][0], "<mo>=</mo>", pieces[i + 1][0]]
        latex += [pieces[i][1], " = ", pieces[i + 1][1]]
    return "<mrow>" + "".join(mathml) + "</mrow>", "".join(latex)
