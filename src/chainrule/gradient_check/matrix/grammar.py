"""The whitelist grammar of a matrix formula, and its evaluation with NumPy.

A formula is parsed by Python's ``ast`` and evaluated node by node: names of the network's
arrays, numbers, ``+ - * / @ **``, ``.T``, comparisons, ``sum``/``mean`` and a few element-wise
functions, every built-in activation and its derivative. Anything else is refused with the
column and the fix; nothing is ever ``eval``\\ ed. Shapes that cannot multiply or add raise a
:class:`ShapeMismatch` that names the mistake (a transpose missing or extra, the order of the
factors) and the change that fits. Only NumPy is imported here.
"""

from __future__ import annotations

import ast
import re

import numpy as np

from chainrule.gradient_check.matrix.network import (
    MatrixFormulaError,
    MatrixFormulaSyntaxError,
    Spec,
    environment,
    fresh_activation,
    names_text,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Replace",
    "ShapeMismatch",
    "evaluate_formula",
    "evaluate_names",
    "parse_formula",
    "read_notation",
    "uses_bias",
]


#: Longest matrix formula accepted, in characters.
MAX_LENGTH = 500
#: Deepest nesting of brackets accepted.
MAX_DEPTH = 40


class ShapeMismatch(MatrixFormulaError):
    """Shapes that cannot multiply or add: a verdict on the gradient, with the mistake's kind."""

    def __init__(self, message: str, kind: str, target=None, replacement=None):
        super().__init__(message)
        self.kind = kind
        self.target = target  # the ast node to change, and what the fix puts there
        self.replacement = replacement


class Replace(ast.NodeTransformer):
    """A copy of a parsed formula with the node ``target`` replaced by ``replacement``."""

    def __init__(self, target, replacement):
        self.target, self.replacement = target, replacement

    def visit(self, node):
        if node is self.target:
            return self.replacement
        return self.generic_visit(node)


def _t(node):
    return ast.Attribute(value=node, attr="T", ctx=ast.Load())


def _mm(left, right):
    return ast.BinOp(left=left, op=ast.MatMult(), right=right)


_UNARY = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs}
_REDUCE = {"sum": np.sum, "mean": np.mean}
# Two- and three-argument functions of NumPy that people write in gradients.
_BINARY = {"multiply": np.multiply, "maximum": np.maximum, "minimum": np.minimum}
_PRODUCTS = ("dot", "matmul")
_METHODS = ("sum", "mean", "transpose", "dot", "astype")
_KNOWN_FUNCTIONS = ("use an activation (sigmoid, tanh, relu, softmax, ...), its derivative "
                    "(sigmoid_prime, tanh_prime, relu_prime, ...), exp, log, sqrt, abs, sum, "
                    "mean, maximum, minimum, where, dot, matmul, einsum or ones")
_EINSUM = re.compile(r"[a-zA-Z]{1,6}(,[a-zA-Z]{1,6}){0,3}(->[a-zA-Z]{0,3})?")
_COMPARE = {ast.Gt: np.greater, ast.GtE: np.greater_equal, ast.Lt: np.less, ast.LtE: np.less_equal}


def _activation_functions() -> tuple[dict, dict]:
    from chainrule import nn

    forward, derivative = {}, {}
    for name in [*nn.ACTIVATIONS, *nn.activations.ALIASES]:
        key = nn.activations.canonical_name(name)
        if key == "log_softmax":
            continue
        forward[name] = key
        if key != "softmax":
            derivative[f"{name}_prime"] = key
    derivative["softmax_prime"] = "softmax"
    return forward, derivative


class _Evaluator:
    """Evaluate a parsed formula on one set of matrices, refusing anything not whitelisted."""

    def __init__(self, text: str, spec: Spec | None, env: dict, symbols: dict[int, str] | None,
                 names: str = ""):
        self.text = text
        self.spec = spec
        self.names = names
        self.env = env
        self.symbols = symbols
        self.forward, self.derivative = _activation_functions()

    # -- messages --
    def segment(self, node: ast.AST) -> str:
        return ast.get_source_segment(self.text, node) or ast.unparse(node)

    def factor(self, node: ast.AST) -> str:
        """The segment of a factor, bracketed where it is a sum or a product."""
        text = self.segment(node)
        return f"({text})" if isinstance(node, ast.BinOp | ast.UnaryOp) else text

    def shape(self, value) -> str:
        shape = np.shape(value)
        if not shape:
            return "a number"
        if self.symbols is None:
            return "×".join(str(s) for s in shape)
        sym = "×".join(self.symbols.get(s, str(s)) for s in shape)
        return f"{sym} ({'×'.join(str(s) for s in shape)})"

    def fail(self, node: ast.AST, what: str, fix: str) -> MatrixFormulaError:
        col = getattr(node, "col_offset", 0)
        return MatrixFormulaError(f"{what} {self.segment(node)!r} at column {col + 1}: {fix}")

    # -- evaluation --
    def run(self, tree: ast.AST, depth: int = 0):
        if depth > MAX_DEPTH:
            raise self.fail(tree, "formula nested too deeply near", f"the limit is {MAX_DEPTH}")
        method = getattr(self, f"_{type(tree).__name__}", None)
        if method is None:
            raise self.fail(
                tree, f"unsupported syntax ({type(tree).__name__})",
                "use the names, numbers, + - * / @ **, .T, comparisons with 0 and calls of "
                "activations, their _prime derivatives, exp, log, sqrt, abs, sum and mean")
        return method(tree, depth + 1)

    def _Constant(self, node, depth):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise self.fail(node, "unsupported constant", "only real numbers are allowed")
        if not np.isfinite(node.value):
            raise self.fail(node, "number out of range", "use a finite number")
        return float(node.value)

    def _Name(self, node, depth):
        if node.id in self.env:
            return self.env[node.id]
        if node.id in self.forward or node.id in self.derivative or node.id in _UNARY:
            raise self.fail(node, "function name without arguments", f"write {node.id}(Z)")
        if self.spec is None:
            raise self.fail(node, "unknown name", f"the names are {self.names}")
        hint = ""
        if not self.spec.single and not self.spec.lower and node.id in ("W", "b", "Z", "H", "D"):
            hint = " (in a network, number the layer: W1, Z2, ...)"
        raise self.fail(node, "unknown name",
                        f"the names are {names_text(self.spec)}{hint}")

    def _UnaryOp(self, node, depth):
        value = self.run(node.operand, depth)
        if isinstance(node.op, ast.USub):
            return -value
        if isinstance(node.op, ast.UAdd):
            return value
        raise self.fail(node, "unsupported operator in", "use + - * / @ **")

    def _BinOp(self, node, depth):
        left = self.run(node.left, depth)
        right = self.run(node.right, depth)
        op = node.op
        if isinstance(op, ast.MatMult):
            return self.matmul(node, left, right)
        if isinstance(op, ast.Pow):
            if not isinstance(right, float) or abs(right) > 64:
                raise self.fail(node, "unsupported power", "the exponent must be a number "
                                "within ±64, e.g. H**2")
            return left**right
        if isinstance(op, ast.BitXor):
            raise self.fail(node, "^ is not a power in", "write ** for a power, e.g. H**2")
        ops = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
               ast.Div: np.divide}
        func = ops.get(type(op))
        if func is None:
            raise self.fail(node, "unsupported operator in", "use + - * / @ **")
        try:
            np.broadcast_shapes(np.shape(left), np.shape(right))
        except ValueError:
            symbol = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}[type(op)]
            raise ShapeMismatch(
                f"shapes that do not match in {self.segment(node)!r}: "
                f"{self.segment(node.left)!r} is {self.shape(left)} and "
                f"{self.segment(node.right)!r} is {self.shape(right)}; element-wise {symbol} "
                "needs equal shapes (or a row or column that broadcasts).", "shape") from None
        with np.errstate(all="ignore"):
            return func(left, right)

    def matmul(self, node, left, right, origin=None):
        if np.ndim(left) == 0 or np.ndim(right) == 0:
            raise self.fail(node, "@ with a number in", "use * to scale, @ for matrix products")
        try:
            return left @ right
        except ValueError:
            pass
        a, b = self.factor(node.left), self.factor(node.right)
        kind, fix, replacement = self.matmul_fix(node, left, right, a, b)
        raise ShapeMismatch(
            f"shapes that cannot multiply: {a} is "
            f"{self.shape(left)} and {b} is {self.shape(right)}, and @ needs the columns "
            f"of the left factor to match the rows of the right one. {fix}", kind,
            origin if origin is not None else node, replacement)

    def matmul_fix(self, node, left, right, a, b) -> str:
        def fits(x, y):
            try:
                return np.shape(x @ y)
            except ValueError:
                return None

        def is_t(n):
            return isinstance(n, ast.Attribute) and n.attr == "T"

        L, R = node.left, node.right
        if is_t(R) and fits(left, right.T):
            return "transpose_extra", (f"The transpose on {b} is extra: {a} @ "
                                       f"{self.factor(R.value)} fits."), _mm(L, R.value)
        if is_t(L) and fits(left.T, right):
            return "transpose_extra", (f"The transpose on {a} is extra: "
                                       f"{self.factor(L.value)} @ {b} fits."), _mm(L.value, R)
        if fits(right, left):
            return ("factor_order", f"The factors are in the wrong order: {b} @ {a} fits.",
                    _mm(R, L))
        if np.ndim(right) == 2 and fits(left, right.T):
            return ("transpose_missing", f"A transpose is missing: {a} @ {b}.T fits.",
                    _mm(L, _t(R)))
        if np.ndim(left) == 2 and fits(left.T, right):
            return ("transpose_missing", f"A transpose is missing: {a}.T @ {b} fits.",
                    _mm(_t(L), R))
        if np.ndim(left) == 2 and np.ndim(right) == 2 and fits(right.T, left.T):
            return "factor_order", (f"The factors are in the wrong order and transposed: "
                                    f"{b}.T @ {a}.T fits."), _mm(_t(R), _t(L))
        return "shape", ("Write the shapes of the factors under the formula to find the one "
                         "that differs."), None

    def astype(self, node, receiver, depth):
        kinds = ("float", "int", "float64", "float32", "np.float64", "np.float32", "bool")
        if len(node.args) != 1 or node.keywords or self.segment(node.args[0]) not in kinds:
            raise self.fail(node, "unsupported conversion", "write .astype(float)")
        return np.asarray(self.run(receiver, depth), dtype=np.float64)

    def elementwise(self, node, nodes, args, func, name):
        try:
            np.broadcast_shapes(*(np.shape(a) for a in args))
        except ValueError:
            shapes = " and ".join(f"{self.factor(n)} is {self.shape(a)}"
                                  for n, a in zip(nodes, args, strict=True))
            raise ShapeMismatch(
                f"shapes that do not match in {self.segment(node)!r}: {shapes}; {name} works "
                "element by element and needs equal shapes.", "shape") from None
        with np.errstate(all="ignore"):
            return np.asarray(func(*args), dtype=np.float64)

    def _Attribute(self, node, depth):
        if node.attr == "T":
            value = self.run(node.value, depth)
            return np.transpose(value) if np.ndim(value) else value
        raise self.fail(node, "unsupported attribute", "only .T (the transpose) and the methods "
                        ".sum(axis=0) and .mean(axis=0) are allowed")

    def _Compare(self, node, depth):
        if len(node.ops) != 1 or type(node.ops[0]) not in _COMPARE:
            raise self.fail(node, "unsupported comparison", "write one of > >= < <=, e.g. (Z > 0)")
        left = self.run(node.left, depth)
        right = self.run(node.comparators[0], depth)
        return _COMPARE[type(node.ops[0])](left, right).astype(np.float64)

    def _Call(self, node, depth):
        """A whitelisted call: its name, its arguments, then the reduction, product,
        element-wise function, activation or derivative it names."""
        name, receiver = self.callee(node.func)
        if receiver is not None and name == "astype":
            return self.astype(node, receiver, depth)
        if receiver is None and name == "einsum":
            return self.einsum(node, depth)
        if receiver is None and name == "ones":
            return self.ones(node, depth)
        if not self.known(name):
            raise self.fail(node.func, "unknown function", _KNOWN_FUNCTIONS)
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(node, "starred arguments are not supported in", f"write {name}(A)")
        args = [self.run(a, depth) for a in node.args]
        if receiver is not None:
            args.insert(0, self.run(receiver, depth))
        keywords = self.keywords(node)
        if name in _REDUCE:
            return self.reduce(node, name, args, keywords)
        if keywords:
            raise self.fail(node, "keyword arguments are not supported in", f"write {name}(A)")
        nodes = ([receiver] if receiver is not None else []) + list(node.args)
        if name in _PRODUCTS or name in _BINARY:
            if len(args) != 2:
                raise self.fail(node, f"{name} takes two arguments in", f"write {name}(A, B)")
            if name in _PRODUCTS:
                product = ast.BinOp(left=nodes[0], op=ast.MatMult(), right=nodes[1])
                return self.matmul(product, args[0], args[1], origin=node)
            return self.elementwise(node, nodes, args, _BINARY[name], name)
        if name == "where":
            if len(args) != 3:
                raise self.fail(node, "where takes three arguments in",
                                "write where(Z > 0, 1, 0)")
            return self.elementwise(node, nodes, args, np.where, name)
        if len(args) != 1:
            raise self.fail(node, f"{name} takes one argument, got {len(args)}, in",
                            f"write {name}(A)")
        return self.apply(node, name, args[0])

    def einsum(self, node, depth):
        """``np.einsum("ij,ik->jk", X, D)``: a literal subscript string, then one array per
        operand; at most 4 operands and 6 axis letters, so that no product grows large."""
        fix = 'write np.einsum("ij,ik->jk", X, D): the subscripts as a literal string first'
        first = node.args[0] if node.args else None
        if node.keywords or not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            raise self.fail(node, "einsum needs its subscripts as a literal string in", fix)
        subscripts = first.value.replace(" ", "")
        if not _EINSUM.fullmatch(subscripts) or len(set(subscripts) - set(",->")) > 6:
            raise self.fail(first, "unsupported einsum subscripts",
                            "write up to 6 axis letters for each operand, commas between the "
                            'operands and -> before the result\'s letters, e.g. "ij,ik->jk"')
        letters = subscripts.split("->")[0].split(",")
        arrays = node.args[1:]
        if len(letters) != len(arrays) or any(isinstance(a, ast.Starred) for a in arrays):
            raise self.fail(node, f"the subscripts name {len(letters)} operand(s) and "
                            f"{len(arrays)} follow in", fix)
        values = [self.run(a, depth) for a in arrays]
        shapes = ", ".join(f"{self.factor(a)} is {self.shape(v)}"
                           for a, v in zip(arrays, values, strict=True))
        if any(len(ax) != np.ndim(v) for ax, v in zip(letters, values, strict=True)):
            raise ShapeMismatch(
                f"operands that do not fit the subscripts {first.value!r} in "
                f"{self.segment(node)!r}: {shapes}; each operand needs one letter per axis.",
                "shape")
        try:
            return np.asarray(np.einsum(subscripts, *values), dtype=np.float64)
        except ValueError:
            raise ShapeMismatch(
                f"shapes that do not fit the subscripts {first.value!r} in "
                f"{self.segment(node)!r}: {shapes}; a letter names one size in every operand.",
                "shape") from None

    def ones(self, node, depth):
        """``np.ones((1, m))``, ``np.ones(m)``: a literal shape of one or two sizes, each a
        whole number or ``m``."""
        fix = "write np.ones((1, m)) or np.ones(m): a shape of sizes such as 1 or m"
        if len(node.args) != 1 or node.keywords:
            raise self.fail(node, "ones takes one shape in", fix)
        shape = node.args[0]
        items = shape.elts if isinstance(shape, ast.Tuple | ast.List) else [shape]
        if not 1 <= len(items) <= 2:
            raise self.fail(node, "ones takes a shape of one or two sizes in", fix)
        sizes = []
        for item in items:
            value = self.run(item, depth)
            if np.ndim(value) or not float(value).is_integer() or not 1 <= value <= 10_000:
                raise self.fail(item, "a size of ones must be a whole number from 1 to 10000,",
                                fix)
            sizes.append(int(value))
        if np.prod(sizes) > 10_000:
            raise self.fail(node, "ones of more than 10000 entries in", fix)
        return np.ones(tuple(sizes))

    def callee(self, func: ast.AST) -> tuple[str, ast.AST | None]:
        """The called name, and the receiver of a method call (None otherwise)."""
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and \
                func.value.id in ("np", "numpy"):
            return func.attr, None
        if isinstance(func, ast.Attribute):
            if func.attr not in _METHODS:
                raise self.fail(func, "unsupported method", "the methods are .sum(axis=0), "
                                ".mean(axis=0), .transpose(), .dot(B) and .astype(float)")
            return func.attr, func.value
        if isinstance(func, ast.Name):
            return func.id, None
        raise self.fail(func, "unsupported call of", "call a known function by its name")

    def known(self, name: str) -> bool:
        return (name in _REDUCE or name == "transpose" or name in _UNARY or name in _BINARY
                or name in _PRODUCTS or name == "where"
                or name in self.forward or name in self.derivative)

    def keywords(self, node: ast.Call) -> dict:
        """The keywords of a call: only ``axis=`` (an integer) and ``keepdims=`` (a bool)."""
        keywords = {}
        for kw in node.keywords:
            if kw.arg not in ("axis", "keepdims") or not isinstance(
                    kw.value, ast.Constant | ast.UnaryOp):
                raise self.fail(node, "unsupported keyword in",
                                "only axis=0 or 1 and keepdims=True are allowed")
            value = kw.value
            sign = 1
            if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub) and \
                    isinstance(value.operand, ast.Constant):
                value, sign = value.operand, -1
            if not isinstance(value, ast.Constant):
                raise self.fail(node, "unsupported keyword in", "write axis=0 or keepdims=True")
            if kw.arg == "axis" and (isinstance(value.value, bool)
                                     or not isinstance(value.value, int)):
                raise self.fail(node, "axis must be an integer in", "write axis=0")
            if kw.arg == "keepdims" and not isinstance(value.value, bool):
                raise self.fail(node, "keepdims must be True or False in", "write keepdims=True")
            keywords[kw.arg] = sign * value.value if kw.arg == "axis" else value.value
        return keywords

    def reduce(self, node, name: str, args: list, keywords: dict):
        """``sum`` or ``mean``; an axis may come second (``sum(A, 0)``); over the outputs of
        one example in the vector form."""
        if len(args) == 2 and "axis" not in keywords and isinstance(args[1], float) and \
                float(args[1]).is_integer():
            keywords["axis"] = int(args.pop())
        if len(args) != 1:
            raise self.fail(node, f"{name} takes one array in", f"write {name}(A, axis=0)")
        if self.spec is not None and self.spec.lower and "axis" not in keywords:
            keywords.update(axis=-1, keepdims=True)  # over the k outputs of one example
        try:
            return _REDUCE[name](args[0], **keywords)
        except ValueError as exc:  # numpy's AxisError is a ValueError
            raise self.fail(node, "cannot reduce", f"{exc}") from None

    def apply(self, node, name: str, arg):
        """A function of one array: transpose, exp/log/..., an activation or its derivative."""
        if name == "transpose":
            return np.transpose(arg)
        with np.errstate(all="ignore"):
            if name in _UNARY:
                return _UNARY[name](arg)
            if name in self.forward:
                layer = fresh_activation(self.forward[name])
                return np.array(layer.forward(np.array(arg, dtype=np.float64)), dtype=np.float64)
            key = self.derivative[name]
            if key == "softmax":
                raise self.fail(
                    node, "the softmax has no element-wise derivative:",
                    "its Jacobian is diag(p) - p pᵀ per row; write the product with it out, "
                    "P * (G - sum(G * P, axis=1, keepdims=True)) for an upstream G")
            return np.array(fresh_activation(key).derivative(np.array(arg, dtype=np.float64)),
                            dtype=np.float64)


#: The page's notation of matrices, pasted back, as the grammar writes it.
_NOTATION = {"ᵀ": ".T", "Ŷ": "Yhat", "ŷ": "yhat", "σ": "sigmoid", "⊙": "*", "∘": "*",
             "·": "*", "⋅": "*", "−": "-", "–": "-", **{chr(0x2080 + d): str(d) for d in range(10)}}
_NOTATION_RE = re.compile("|".join(map(re.escape, _NOTATION)) + r"|\^T\b|\^\{T\}")


def read_notation(formula):
    """``formula`` with the page's Unicode notation in the grammar's ASCII: ``Xᵀ`` (and
    ``X^T``) is ``X.T``, ``Ŷ`` is ``Yhat``, ``W₁`` is ``W1``, ``⊙`` and ``·`` are ``*``,
    ``−`` is ``-``; anything else is left for the grammar to judge."""
    if not isinstance(formula, str):
        return formula
    return _NOTATION_RE.sub(lambda m: _NOTATION.get(m.group(), ".T"), formula)


def parse_formula(formula: str) -> ast.AST:
    if not isinstance(formula, str):
        raise MatrixFormulaSyntaxError(
            f"a formula must be text such as 'X.T @ (Yhat - Y) / m'; got {type(formula).__name__}.")
    if len(formula) > MAX_LENGTH:
        raise MatrixFormulaError(
            f"the formula is {len(formula)} characters long; the limit is {MAX_LENGTH}.")
    text = formula.strip()
    if not text:
        raise MatrixFormulaSyntaxError(
            "the formula is empty; write one such as 'X.T @ (Yhat - Y) / m'.")
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth > MAX_DEPTH:
            raise MatrixFormulaError(f"the formula is nested deeper than {MAX_DEPTH} levels.")
    try:
        return ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        col = max((exc.offset or 1) - 1, 0)
        raise MatrixFormulaSyntaxError(
            f"cannot parse {text!r}: {exc.msg} at column {col + 1} (near {text[col:col + 12]!r})."
        ) from None


def evaluate_formula(tree, text, spec, cfg, symbols=None) -> np.ndarray:
    with np.errstate(all="ignore"):
        value = _Evaluator(text, spec, environment(spec, cfg), symbols).run(tree)
    return np.asarray(value, dtype=np.float64)


def evaluate_names(tree, text: str, env: dict, names: str, symbols=None) -> np.ndarray:
    """The formula on the arrays ``env`` (name -> array or number) of a layer other than a dense
    one; ``names`` lists them for the message about an unknown name."""
    with np.errstate(all="ignore"):
        value = _Evaluator(text, None, env, symbols, names).run(tree)
    return np.asarray(value, dtype=np.float64)


def uses_bias(tree: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and (n.id == "b" or (n.id[:1] == "b" and n.id[1:].isdigit()))
               for n in ast.walk(tree))
