r"""The matrix nodes of the normalization and attention derivations, and their numerical check.

Beside the nodes of :mod:`chainrule.derivation.matrix` these derivations need a mean or a sum
over one axis (the batch for batch normalization, the features for layer normalization, the
keys for a row of attention), a square root and a quotient that broadcast a row, a column or a
number. Each prints itself as text, LaTeX and NumPy-style Python and evaluates itself on arrays,
so what is printed is what is checked.

:func:`verify_claims` evaluates every claim of a derivation, in order, on random arrays and
compares it with the central differences of a forward pass written independently of the
claims; a disagreement raises ``RuntimeError`` and nothing is printed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import numpy.lib.stride_tricks  # loaded here: a formula reads np.lib.stride_tricks

from chainrule import _oracle as oracle
from chainrule.derivation.matrix import Node, ShapeError, Sym, shape_text
from chainrule.derivation.vcheck import compare

__all__ = ["Code", "Div", "Group", "Mean", "Scale", "Sqrt", "Sum", "broadcast_shape", "numeric",
           "verify_claims"]

_MUL, _ATOM = 2, 3  # the precedences of chainrule.derivation.matrix
_STEP = 1e-5


def broadcast_shape(a: Node, b: Node, what: str) -> tuple[str, str]:
    """The shape of an element-wise ``a`` and ``b``: equal shapes, a number, or a row or column
    that repeats along the other's axis."""
    sa, sb = a.shape(), b.shape()
    if sa == sb:
        return sa
    for x, y in ((sa, sb), (sb, sa)):
        if x == ("1", "1") or (x[0] == "1" and x[1] == y[1]) or (x[1] == "1" and x[0] == y[0]):
            return y
    raise ShapeError(f"{a.show('text')} ({shape_text(sa)}) and {b.show('text')} "
                     f"({shape_text(sb)}) have different shapes for {what}.")


@dataclass(eq=False)
class _Reduce(Node):
    """A mean or a sum of ``a`` over ``axis`` (0: down the rows, 1: along each row), kept 2-D;
    ``over`` names the axis in the printed formula (``mean_batch(dY)``)."""

    a: Node
    axis: int
    over: str = ""
    word = ""
    prec = _ATOM

    def children(self):
        return (self.a,)

    def _show(self, fmt):
        if fmt == "python":
            return f"{self.a.wrap(fmt, _ATOM)}.{self.word}(axis={self.axis}, keepdims=True)"
        inner = self.a.show(fmt)
        if fmt == "latex":
            sub = rf"_{{\text{{{self.over}}}}}" if self.over else ""
            return rf"\operatorname{{{self.word}}}{sub}\left({inner}\right)"
        return f"{self.word}{'_' + self.over if self.over else ''}({inner})"

    def shape(self):
        r, c = self.a.shape()
        return ("1", c) if self.axis == 0 else (r, "1")

    def value(self, env):
        return getattr(np, self.word)(self.a.value(env), axis=self.axis, keepdims=True)


class Mean(_Reduce):
    """``mean(A)`` over one axis: ``Mean(dY, 0, "batch")`` prints ``mean_batch(dY)``."""

    word = "mean"


class Sum(_Reduce):
    """``sum(A)`` over one axis, printed like :class:`Mean`."""

    word = "sum"


@dataclass(eq=False)
class _ElementWise(Node):
    """A node of one operand, of the operand's shape, printed as an atom."""

    a: Node
    prec = _ATOM

    def children(self):
        return (self.a,)

    def shape(self):
        return self.a.shape()


@dataclass(eq=False)
class Sqrt(_ElementWise):
    """The element-wise square root ``√(A)``."""

    def _show(self, fmt):
        inner = self.a.show(fmt)
        if fmt == "text" and isinstance(self.a, Sym):
            return f"√{inner}"
        return {"text": f"√({inner})", "latex": rf"\sqrt{{{inner}}}",
                "python": f"np.sqrt({inner})"}[fmt]

    def value(self, env):
        return np.sqrt(self.a.value(env))


@dataclass(eq=False)
class Div(Node):
    """``A / B`` element by element; ``B`` may be a number, a row or a column."""

    a: Node
    b: Node
    prec = _MUL

    def children(self):
        return (self.a, self.b)

    def _show(self, fmt):
        if fmt == "latex":
            return rf"\frac{{{self.a.show(fmt)}}}{{{self.b.show(fmt)}}}"
        return f"{self.a.wrap(fmt, _MUL)} / {self.b.wrap(fmt, _MUL + 1)}"

    def shape(self):
        return broadcast_shape(self.a, self.b, "a quotient")

    def value(self, env):
        return self.a.value(env) / self.b.value(env)


@dataclass(eq=False)
class Scale(Node):
    """A number times an array, ``2 A`` (``coef`` as printed: ``"2"``, ``"-1"`` prints ``-A``)."""

    coef: str
    a: Node
    prec = _MUL

    def children(self):
        return (self.a,)

    def _show(self, fmt):
        inner = self.a.wrap(fmt, _MUL + (fmt == "python"))
        if self.coef == "-1":
            return "-" + inner
        return f"{self.coef} * {inner}" if fmt == "python" else f"{self.coef} {inner}"

    def shape(self):
        return self.a.shape()

    def value(self, env):
        return float(self.coef) * self.a.value(env)


@dataclass(eq=False)
class Group(_ElementWise):
    """``(A)``: brackets that make a product's left factor plain to read."""

    def _show(self, fmt):
        inner = self.a.show(fmt)
        return rf"\left({inner}\right)" if fmt == "latex" else f"({inner})"

    def value(self, env):
        return self.a.value(env)


@dataclass(eq=False)
class Code(Node):
    r"""An array formula of any number of axes, written out in its three forms: ``text`` (an
    index form, ``dW[o,c,p,q] = Σ_{n,i,j} ...``), ``latex`` and ``python``, a NumPy expression
    of the named arrays (``np.einsum(...)``). Its value is that of the ``python`` form,
    compiled from this module's own text (never from user input) and evaluated with NumPy
    only, so the expression that ``--format json`` carries is the one that was checked.
    """

    text: str
    latex: str
    python: str
    dims: tuple[str, ...]
    prec = _ATOM

    def _show(self, fmt):
        return {"text": self.text, "latex": self.latex, "python": self.python}[fmt]

    def shape(self):
        return self.dims

    def value(self, env):
        code = self.__dict__.get("_code")
        if code is None:
            code = self.__dict__["_code"] = compile(self.python, "<formula>", "eval")
        return np.asarray(eval(code, {"__builtins__": {}, "np": np}, dict(env)),
                          dtype=float)


def numeric(loss, x: np.ndarray) -> np.ndarray:
    """The five-point central difference of ``loss`` by every entry of ``x`` (float64)."""
    return oracle.five_point_gradient(loss, np.array(x, dtype=float), _STEP)


def verify_claims(claims, draws) -> None:
    """Check every claim on every draw: ``draws`` yields ``(env, truths)`` where ``env`` holds
    the arrays a formula reads and ``truths`` maps each claim's ``check`` tag to its central
    difference. A claim's value joins ``env`` under its tag, so later claims read it as the
    derivation does; a term that repeats along an axis (a row added to every row) is
    compared repeated."""
    for env, truths, where in draws:
        env = dict(env)
        for c in claims:
            value = c.value(env)
            truth = truths[c.check]
            if np.shape(value) != np.shape(truth) and c.check not in env:
                with contextlib.suppress(ValueError):  # else compare names both shapes
                    value = np.broadcast_to(value, np.shape(truth))  # a term that repeats
            compare(f"{c.lhs[0]} = {c.rhs('text')}", value, truth, where)
            env[c.check] = value
