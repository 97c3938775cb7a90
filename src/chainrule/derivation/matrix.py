r"""Matrix formulas that print themselves three ways and evaluate with NumPy.

The vector and matrix derivations (:mod:`chainrule.derivation.network`) write every result as
a small tree of these nodes, so what is printed is exactly what is checked: the same tree gives
the Unicode text (``Xᵀ Δ₁ / m``), the LaTeX (``X^\top \Delta_1 / m``), the NumPy-style Python
(``X.T @ D1 / m``), its shape (``n₀ × n₁``, with the shapes of the factors of a product) and
its value on arrays.

=============  ================================  ==========================================
node           text                              meaning
=============  ================================  ==========================================
``Sym``        ``X``, ``W₂``, ``Δ₃``             a named array with a symbolic shape
``T``          ``Aᵀ``                            transpose
``MatMul``     ``A B``                           matrix product (inner sizes must agree)
``Had``        ``A ⊙ B``                         element-wise product
``Add/Sub``    ``A + B``, ``A - B``              element-wise, row vectors broadcast
``OverM``      ``A / m``                         the batch mean's factor
``Ones``       ``1ᵀ A``                          the column sums (the bias gradient)
``RowSum``     ``(A)𝟙``                          the row sums, an m × 1 column
``Elem``       ``Ŷ(1 - Ŷ)``                      a scalar formula applied element by element
=============  ================================  ==========================================
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy

from chainrule.derivation.functions import NUMPY_FUNCTIONS
from chainrule.derivation.printing import to_latex, to_python, to_text

__all__ = [
    "Add",
    "Elem",
    "Had",
    "MatMul",
    "Node",
    "Ones",
    "OverM",
    "RowSum",
    "ShapeError",
    "Sub",
    "Sym",
    "T",
    "dim_text",
]

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")
_ADD, _MUL, _ATOM = 1, 2, 3


class ShapeError(ValueError):
    """Two factors whose shapes cannot multiply."""


def dim_text(d: str) -> str:
    """``n2`` -> ``n₂``; ``1``, ``m`` and ``K`` stay as they are."""
    if len(d) > 1 and d[0].isalpha() and d[1:].isdigit():
        return d[0] + d[1:].translate(_SUB)
    return d


def shape_text(shape: tuple[str, ...]) -> str:
    """``m × n`` (any number of axes: ``N × C × h × w``)."""
    return " × ".join(dim_text(d) for d in shape)


class Node:
    """A matrix formula; subclasses implement ``_show``, ``shape`` and ``value``."""

    prec = _ATOM

    def show(self, fmt: str) -> str:
        """The formula for ``fmt``: ``"text"``, ``"latex"`` or ``"python"``."""
        return self._show(fmt)

    def wrap(self, fmt: str, prec: int) -> str:
        s = self._show(fmt)
        if self.prec < prec:
            return r"\left(" + s + r"\right)" if fmt == "latex" else f"({s})"
        return s

    def products(self) -> list[tuple[str, str, str]]:
        """Every matrix product inside, as (left shape, right shape, result shape) texts."""
        out = []
        for child in self.children():
            out.extend(child.products())
        return out

    def children(self) -> tuple[Node, ...]:
        return ()

    def _show(self, fmt: str) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def shape(self) -> tuple[str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def value(self, env: dict[str, np.ndarray]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(eq=False)
class Sym(Node):
    """A named array: ``text`` (``Δ₂``), ``latex`` (``\\Delta_2``), ``py`` (``D2``), shape."""

    py: str
    text: str
    latex: str
    dims: tuple[str, str]

    def _show(self, fmt):
        return {"text": self.text, "latex": self.latex, "python": self.py}[fmt]

    def shape(self):
        return self.dims

    def value(self, env):
        return env[self.py]


@dataclass(eq=False)
class _Unary(Node):
    """A node of one operand ``a``."""

    a: Node

    def children(self):
        return (self.a,)


@dataclass(eq=False)
class _Binary(Node):
    """A node of two operands ``a`` and ``b``."""

    a: Node
    b: Node

    def children(self):
        return (self.a, self.b)


class T(_Unary):
    def _show(self, fmt):
        inner = self.a.wrap(fmt, _ATOM + 1) if not isinstance(self.a, Sym) else self.a.show(fmt)
        return {"text": inner + "ᵀ", "latex": inner + r"^\top", "python": inner + ".T"}[fmt]

    def shape(self):
        r, c = self.a.shape()
        return (c, r)

    def value(self, env):
        return self.a.value(env).T


class MatMul(_Binary):
    prec = _MUL

    def _show(self, fmt):
        sep = {"text": " ", "latex": r"\,", "python": " @ "}[fmt]
        return self.a.wrap(fmt, _MUL) + sep + self.b.wrap(fmt, _MUL + 1)

    def shape(self):
        (r, k1), (k2, c) = self.a.shape(), self.b.shape()
        if k1 != k2:
            raise ShapeError(
                f"{self.a.show('text')} ({shape_text(self.a.shape())}) cannot multiply "
                f"{self.b.show('text')} ({shape_text(self.b.shape())}): {dim_text(k1)} ≠ "
                f"{dim_text(k2)}."
            )
        return (r, c)

    def products(self):
        return [*super().products(),
                (shape_text(self.a.shape()), shape_text(self.b.shape()), shape_text(self.shape()))]

    def value(self, env):
        return self.a.value(env) @ self.b.value(env)


def _broadcast(a: Node, b: Node, op: str) -> tuple[str, str]:
    sa, sb = a.shape(), b.shape()
    if sa == sb:
        return sa
    for x, y in ((sa, sb), (sb, sa)):
        if x[0] == "1" and x[1] == y[1]:
            return y
        if x[1] == "1" and x[0] == y[0]:
            return y
    raise ShapeError(f"{a.show('text')} ({shape_text(sa)}) and {b.show('text')} "
                     f"({shape_text(sb)}) have different shapes for {op}.")


def _factor(node: Node, fmt: str) -> str:
    """A factor of ``⊙``: a matrix product, a sum or a fraction goes in parentheses."""
    text = node.show(fmt)
    if isinstance(node, MatMul) or node.prec <= _ADD or text.startswith("-") or (
            isinstance(node, Elem) and ("/" in text or r"\frac" in text)):
        return r"\left(" + text + r"\right)" if fmt == "latex" else f"({text})"
    return text


class _Elementwise(_Binary):
    """An element-wise operation of two arrays of one shape (a row vector broadcasts).

    Each subclass names its operator: ``_op`` as printed, ``_name`` in a shape error and
    ``_apply`` on the arrays.
    """

    _op: str
    _name: str
    _apply: Callable[[np.ndarray, np.ndarray], np.ndarray]

    def shape(self):
        return _broadcast(self.a, self.b, self._name)

    def value(self, env):
        return self._apply(self.a.value(env), self.b.value(env))


class Had(_Elementwise):
    """Element-wise (Hadamard) product ``A ⊙ B``."""

    prec = _MUL
    _name, _apply = "an element-wise product", staticmethod(operator.mul)

    def _show(self, fmt):
        sep = {"text": " ⊙ ", "latex": r" \odot ", "python": " * "}[fmt]
        return _factor(self.a, fmt) + sep + _factor(self.b, fmt)


class _Sum(_Elementwise):
    """``A + B`` or ``A - B``."""

    prec = _ADD

    def _show(self, fmt):
        return self.a.wrap(fmt, _ADD) + f" {self._op} " + self.b.wrap(fmt, _ADD + 1)


class Add(_Sum):
    """Element-wise sum ``A + B``."""

    _op, _name, _apply = "+", "a sum", staticmethod(operator.add)


class Sub(_Sum):
    """Element-wise difference ``A - B``."""

    _op, _name, _apply = "-", "a difference", staticmethod(operator.sub)


class OverM(_Unary):
    """``A / m``: the factor of the mean over the batch."""

    prec = _MUL

    def _show(self, fmt):
        return self.a.wrap(fmt, _MUL) + " / m"

    def shape(self):
        return self.a.shape()

    def value(self, env):
        return self.a.value(env) / env["m"]


class Ones(_Unary):
    """``1ᵀ A``: the sum of the rows of ``A`` (an m × 1 column of ones, transposed, times A)."""

    prec = _MUL

    def _show(self, fmt):
        if fmt == "python":
            return self.a.wrap(fmt, _ATOM) + ".sum(axis=0, keepdims=True)"
        return ("1ᵀ " if fmt == "text" else r"\mathbf{1}^\top ") + self.a.wrap(fmt, _MUL + 1)

    def shape(self):
        return ("1", self.a.shape()[1])

    def products(self):
        s = self.a.shape()
        return [*super().products(), (shape_text(("1", s[0])), shape_text(s),
                                      shape_text(self.shape()))]

    def value(self, env):
        return self.a.value(env).sum(axis=0, keepdims=True)


class RowSum(_Unary):
    """``A 1``: the sum of each row of ``A``, an m × 1 column that broadcasts over columns."""

    prec = _MUL

    def _show(self, fmt):
        if fmt == "python":
            return self.a.wrap(fmt, _ATOM) + ".sum(axis=1, keepdims=True)"
        return self.a.wrap(fmt, _ATOM) + (" 1" if fmt == "text" else r"\,\mathbf{1}")

    def shape(self):
        return (self.a.shape()[0], "1")

    def value(self, env):
        return self.a.value(env).sum(axis=1, keepdims=True)


@dataclass(eq=False)
class Elem(Node):
    """A scalar SymPy formula applied element by element; ``args`` maps its symbols to arrays.

    ``Elem(yhat*(1 - yhat), {yhat: H2})`` prints ``H₂(1 - H₂)`` and evaluates
    ``H2 * (1 - H2)``; a 0/1 ``Piecewise`` prints as an Iverson bracket ``[Z₁ > 0]``.
    """

    expr: sympy.Expr
    args: dict
    numbers: dict | None = None  # numeric values of parameters (alpha, delta) for evaluation
    functions: dict | None = None  # NumPy versions of named functions (relu) for evaluation

    @property
    def prec(self):
        e = self.expr
        if _iverson(e) is not None:
            return _ATOM
        if e.is_Add:
            e = sympy.factor_terms(e)
        if e.is_Add:
            return _ADD
        if e.is_Mul or e.is_Pow or isinstance(e, sympy.Piecewise):
            return _MUL
        return _ATOM

    def children(self):
        return tuple(self.args.values())

    def _show(self, fmt):
        names, later = {}, {}
        for i, (s, node) in enumerate(self.args.items()):
            name = _fmt_name(node, fmt)
            if fmt == "latex" and name.startswith("("):  # SymPy would read W_1 as a subscript
                key = "xplaceholder" + "abcdefgh"[i]
                later[key] = name
                name = key
            names[s] = sympy.Symbol(name, real=True)
        e = self.expr.xreplace(names)
        if e.is_Add:  # 2(Ŷ - T), not 2Ŷ - 2T
            e = sympy.factor_terms(e)
        iverson = _iverson(e)
        printer = {"text": to_text, "latex": to_latex, "python": to_python}[fmt]
        if iverson is not None:
            out = printer(iverson)
            out = f"({out})" if fmt == "python" else f"[{out}]"
        else:
            out = printer(e)
        for key, name in later.items():
            out = out.replace(key, name)
        for node in self.args.values():  # a parenthesised name inside a call's parentheses
            name = _fmt_name(node, fmt)
            if name.startswith("("):
                out = out.replace("(" + name + ")", name)
                out = out.replace(r"\left(" + name + r"\right)", name)
                out = out.replace(r"\left(" + name + r" \right)", name)
        return out

    def shape(self):
        shapes = {node.shape() for node in self.args.values()}
        if len(shapes) > 1:
            nodes = list(self.args.values())
            _broadcast(nodes[0], nodes[1], "an element-wise formula")
        return max(shapes, key=lambda s: (s[0] != "1", s[1] != "1"))

    def value(self, env):
        f = self.__dict__.get("_compiled")
        if f is None:  # compiled once per formula: the checks evaluate it many times
            e = self.expr.subs(self.numbers or {})
            modules = [{"softmax": _row_softmax, **(self.functions or {})}, NUMPY_FUNCTIONS,
                       "numpy"]
            f = self.__dict__["_compiled"] = sympy.lambdify(list(self.args), e, modules=modules)
        vals = [np.asarray(node.value(env), dtype=float) for node in self.args.values()]
        out = f(*vals)
        return np.broadcast_to(np.asarray(out, dtype=float),
                               np.broadcast_shapes(*(v.shape for v in vals))).copy()


def _fmt_name(node: Sym, fmt: str) -> str:
    if fmt == "text":
        return node.text
    if fmt == "python":
        return node.py
    return _latex_symbol_name(node)


def _latex_symbol_name(node: Sym) -> str:
    if node.latex.startswith("("):
        return node.latex
    # SymPy's LaTeX printer writes Symbol("H_2") as H_{2} and Symbol("Yhat") as \hat{Y}
    if len(node.py) > 1 and node.py[1:].isdigit():
        return node.py[0] + "_" + node.py[1:]
    return node.py


def _iverson(e: sympy.Expr):
    if isinstance(e, sympy.Piecewise) and len(e.args) == 2:
        (a, c), (b, last) = e.args
        if a == 1 and b == 0 and last is sympy.true:
            return c
    return None


def _row_softmax(Z):
    Z = np.asarray(Z, dtype=float)
    e = np.exp(Z - Z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
