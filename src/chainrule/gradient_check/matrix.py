r"""Check a hand-written matrix gradient of a dense network and name the mistake.

:func:`check_matrix` reads a gradient written the NumPy way, ``X.T @ (sigmoid(X @ W) - Y) / m``,
through a whitelist over Python's ``ast`` (nothing is evaluated but the whitelisted operations),
evaluates it with NumPy on random matrices of several shapes (the batch size ``m = 1`` and
``k = 2`` outputs among them), and compares it with the true gradient, computed independently
by float64 central finite differences of the loss. When the two disagree it tries the mistakes
learners make, each as a full alternative backward pass, and names the one that reproduces the
formula at every checked point: a missing or extra transpose, factors in the wrong order, the
1/m forgotten or doubled, the element-wise :math:`g'(Z)` missing, doubled or applied to the
wrong array, the sign (the update direction :math:`-\nabla E` written for the gradient), the
softmax Jacobian treated as diagonal, the gradient of another layer or of another variable.

The network: :math:`H_0 = X`, :math:`Z_l = H_{l-1} W_l + b_l`, :math:`H_l = g_l(Z_l)`,
:math:`\hat Y = H_L`, and the loss :math:`E = \frac1m \sum_{i,k} \ell(\hat Y_{ik}, Y_{ik})`
(the mean over the batch of the per-example loss summed over the outputs).

>>> check_matrix("X.T @ (sigmoid(X @ W) - Y) / m", activation="sigmoid", loss="bce").correct
True
>>> check_matrix("X.T @ (sigmoid(X @ W) - Y)", activation="sigmoid", loss="bce").kind
'mean_forgotten'

Only NumPy is imported here.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass, field

import numpy as np

from chainrule import _oracle as oracle
from chainrule.gradient_check.names import (
    FUSED,
    MATRIX_LOSS_ALIASES,
    MATRIX_LOSSES,
    MATRIX_OUTPUT_FORM,
)
from chainrule.gradient_check.verdict import Finding, FormulaCheck

__all__ = ["MatrixCheck", "MatrixFormulaError", "check_matrix"]

#: Longest matrix formula accepted, in characters.
MAX_LENGTH = 500
MAX_DEPTH = 40



class MatrixFormulaError(ValueError):
    """A matrix formula that the whitelist refuses, or whose shapes do not fit."""


class _ShapeMismatch(MatrixFormulaError):
    """Shapes that cannot multiply or add: a verdict on the gradient, with the mistake's kind."""

    def __init__(self, message: str, kind: str, target=None, replacement=None):
        super().__init__(message)
        self.kind = kind
        self.target = target  # the ast node to change, and what the fix puts there
        self.replacement = replacement


class _Replace(ast.NodeTransformer):
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


@dataclass
class MatrixCheck(FormulaCheck):
    """The outcome of :func:`check_matrix`; ``str()`` is the one-paragraph explanation.

    The keys are those of the scalar :class:`~chainrule.gradient_check.FormulaCheck` plus
    ``shapes`` (name -> shape in symbols, e.g. ``"W": "n×k"``) and ``checked`` (the sizes of
    every random set of matrices the formula was evaluated on)."""

    shapes: dict = field(default_factory=dict)
    checked: list = field(default_factory=list)


# --- the network ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    acts: tuple[str, ...]
    loss: str
    half: bool
    mean: bool
    single: bool  # one layer: names W, b, Z without a number
    lower: bool  # the vector form of one example: p, t, z, yhat, y


def _canonical_activation(name: str) -> str:
    from chainrule.nn import activations

    key = activations.canonical_name(str(name))
    if key is None or key == "log_softmax":
        from chainrule import nn

        known = [a for a in nn.ACTIVATIONS if a != "log_softmax"]
        raise MatrixFormulaError(
            f"unknown activation {name!r} for a matrix check; use one of {', '.join(known)}."
        )
    return key


def _canonical_loss(name: str) -> str:
    from chainrule import losses

    text = str(name).strip().lower().replace("-", "_")
    key = MATRIX_LOSS_ALIASES.get(text) or losses.canonical_name(text)
    if key not in MATRIX_LOSSES:
        raise MatrixFormulaError(
            f"unknown loss {name!r} for a matrix check; use one of {', '.join(MATRIX_LOSSES)} "
            "(loss='mse', 'bce' or 'ce')."
        )
    return key


def _layer_name(spec: _Spec, kind: str, layer: int) -> str:
    if spec.lower:
        return {"Z": "z", "H": "p" if spec.acts[-1] == "softmax" else "yhat"}.get(kind, kind)
    if kind == "H" and layer == 0:
        return "X"
    if kind == "H" and layer == len(spec.acts):
        return "Yhat"
    if kind == "D":
        return "D" if spec.single else f"D{layer}"
    return kind if spec.single else f"{kind}{layer}"


def _target_name(spec: _Spec) -> str:
    if spec.lower:
        return "t" if spec.acts[-1] == "softmax" else "y"
    return "Y"


@dataclass
class _Config:
    """One random set of matrices: sizes, the arrays of the forward pass, the true gradient."""

    sizes: tuple[int, ...]  # n, h1, ..., k
    m: int
    X: np.ndarray
    Y: np.ndarray
    Ws: list
    bs: list
    nodes: dict  # "W1", "b1", "Z1", "H1", ... -> array


def _act(name: str):
    from chainrule import nn

    return nn.get(name)


def _activation(name: str):
    """The activation ``name`` of :func:`chainrule.nn.get` as a function of a matrix."""
    return lambda Z: np.array(_act(name).forward(Z.copy()), dtype=np.float64)


def _forward(spec: _Spec, cfg: _Config, override: tuple[str, np.ndarray] | None = None):
    """The loss, with the node ``override[0]`` replaced by ``override[1]``; and the nodes."""
    nodes = oracle.forward([_activation(a) for a in spec.acts], cfg.X, cfg.Ws, cfg.bs, override)
    H = nodes[f"H{len(spec.acts)}"]
    return oracle.loss_value(spec.loss, H, cfg.Y, half=spec.half, mean=spec.mean), nodes


def _finite_difference(spec: _Spec, cfg: _Config, node: str) -> np.ndarray:
    """dE/d(node) by the five-point central difference in float64, element by element."""
    base = np.array(cfg.nodes[node], dtype=np.float64, copy=True)
    return oracle.five_point_gradient(lambda v: _forward(spec, cfg, (node, v))[0], base, 1e-4)


def _make_config(spec: _Spec, sizes, m, rng, bias: bool) -> _Config:
    L = len(spec.acts)
    for _ in range(100):
        X = rng.normal(size=(m, sizes[0]))
        Ws = [rng.normal(size=(sizes[i], sizes[i + 1])) / np.sqrt(sizes[i]) for i in range(L)]
        bs = [(0.5 * rng.normal(size=(sizes[i + 1],)) if bias else np.zeros(sizes[i + 1]))
              for i in range(L)]
        k = sizes[-1]
        if spec.loss == "mse":
            Y = rng.normal(size=(m, k))
        elif spec.loss == "bce":
            Y = rng.integers(0, 2, size=(m, k)).astype(np.float64)
            Y[0, 0] = rng.uniform(0.1, 0.9)  # a soft target too
        else:
            Y = np.eye(k)[rng.integers(0, k, size=m)]
        cfg = _Config(tuple(sizes), m, X, Y, Ws, bs, {})
        cfg.nodes = _forward(spec, cfg)[1]
        # Keep away from a ReLU's kink and from saturation, where differences mislead.
        zs = [cfg.nodes[f"Z{layer}"] for layer in range(1, L + 1)]
        if all(np.min(np.abs(z)) > 1e-2 and np.max(np.abs(z)) < 6 for z in zs):
            return cfg
    return cfg  # pragma: no cover - 100 unlucky draws


def _configs(spec: _Spec, bias: bool, seed: int) -> list[_Config]:
    """Three sets of sizes: all different (so a shape names its symbol), m = 1, and k = 1 (or
    k = 3 for a softmax, which needs two outputs or more)."""
    rng = np.random.default_rng(seed)
    L = len(spec.acts)
    hidden = list(range(4, 4 + L - 1))
    softmax = spec.acts[-1] == "softmax"
    if spec.lower:
        plans = [((3, 3), 1), ((3, 2), 1), ((3, 4), 1)]
        if spec.mean:
            plans = [((3, 3), 5), ((3, 2), 1), ((3, 4), 2)]
        sizes_m = plans
    else:
        m0 = 4 + L + 2
        sizes_m = [((3, *hidden, 2), m0), ((2, *[h - 1 for h in hidden], 2), 1),
                   ((3, *hidden, 3 if softmax else 1), 4)]
    return [_make_config(spec, s, m, rng, bias) for s, m in sizes_m]


def _symbols(spec: _Spec, cfg: _Config) -> dict[int, str]:
    """size -> symbol for the first configuration, whose sizes are all different."""
    names = {cfg.m: "m", cfg.sizes[0]: "n", cfg.sizes[-1]: "k"}
    for i, size in enumerate(cfg.sizes[1:-1], start=1):
        names[size] = f"h{i}"
    return names


# --- the backward pass, right and with a learner's mistake ----------------------------------------


def _dloss(spec: _Spec, H, Y, m):
    scale = 1.0 / m if spec.mean else 1.0
    if spec.loss == "mse":
        return (1.0 if spec.half else 2.0) * (H - Y) * scale
    if spec.loss == "bce":
        return (H - Y) / (H * (1.0 - H)) * scale
    return -Y / H * scale


def _backward(spec: _Spec, cfg: _Config, mistake: tuple[str, int] | None = None) -> dict:
    """Every node's gradient by the textbook backward pass; ``mistake`` = (kind, layer) replaces
    the step dE/dZ_l = dE/dH_l ⊙ g'(Z_l) by a learner's version of it."""
    L = len(spec.acts)
    nodes = cfg.nodes
    grads = {}
    dH = _dloss(spec, nodes[f"H{L}"], cfg.Y, cfg.m)
    for layer in range(L, 0, -1):
        grads[f"H{layer}"] = dH
        name = spec.acts[layer - 1]
        Z, H = nodes[f"Z{layer}"], nodes[f"H{layer}"]
        kind = mistake[0] if mistake is not None and mistake[1] == layer else None
        if name == "softmax":
            full = H * (dH - np.sum(dH * H, axis=-1, keepdims=True))
            dZ = dH * H * (1.0 - H) if kind == "softmax_diagonal" else full
            if kind == "derivative_missing":
                dZ = dH
            elif kind == "derivative_twice":
                dZ = full * H * (1.0 - H)
        else:
            d = np.array(_act(name).derivative(Z.copy()), dtype=np.float64)
            if kind == "derivative_missing":
                dZ = dH
            elif kind == "derivative_twice":
                dZ = dH * d * d
            elif kind == "derivative_at_output":
                dZ = dH * np.array(_act(name).derivative(H.copy()), dtype=np.float64)
            elif kind == "output_form_at_input":
                dZ = dH * (Z * (1.0 - Z) if name == "sigmoid" else 1.0 - Z**2)
            elif kind is not None and kind.startswith("other:"):
                other = kind.split(":", 1)[1]
                dZ = dH * np.array(_act(other).derivative(Z.copy()), dtype=np.float64)
            else:
                dZ = dH * d
        grads[f"Z{layer}"] = dZ
        grads[f"W{layer}"] = nodes[f"H{layer - 1}"].T @ dZ
        grads[f"b{layer}"] = np.sum(dZ, axis=0)
        dH = dZ @ nodes[f"W{layer}"].T
    grads["H0"] = dH
    return grads


def _mistakes(spec: _Spec) -> list[tuple[str, int]]:
    out = []
    for layer in range(len(spec.acts), 0, -1):
        name = spec.acts[layer - 1]
        if name == "identity":
            continue
        if name == "softmax":
            out += [("softmax_diagonal", layer), ("derivative_missing", layer),
                    ("derivative_twice", layer)]
            continue
        out += [("derivative_missing", layer), ("derivative_twice", layer)]
        if name != "relu":  # relu'(H) = relu'(Z): the mistake changes nothing
            out.append(("derivative_at_output", layer))
        if name in ("sigmoid", "tanh"):
            out.append(("output_form_at_input", layer))
        out += [(f"other:{other}", layer) for other in ("sigmoid", "tanh", "relu")
                if other != name]
    return out


# --- the whitelist grammar ------------------------------------------------------------------------

_UNARY = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs}
_REDUCE = {"sum": np.sum, "mean": np.mean}
# Two- and three-argument functions of NumPy that people write in gradients.
_BINARY = {"multiply": np.multiply, "maximum": np.maximum, "minimum": np.minimum}
_PRODUCTS = ("dot", "matmul")
_METHODS = ("sum", "mean", "transpose", "dot", "astype")
_KNOWN_FUNCTIONS = ("use an activation (sigmoid, tanh, relu, softmax, ...), its derivative "
                    "(sigmoid_prime, tanh_prime, relu_prime, ...), exp, log, sqrt, abs, sum or "
                    "mean")
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


def _environment(spec: _Spec, cfg: _Config) -> dict[str, np.ndarray | float]:
    """The names a formula may use, bound to the arrays of ``cfg``."""
    L = len(spec.acts)
    nodes = cfg.nodes
    if spec.lower:
        out = nodes[f"H{L}"]
        env = {"z": nodes["Z1"], "Z": nodes["Z1"], "t": cfg.Y, "y": cfg.Y, "T": cfg.Y,
               "Y": cfg.Y, "p": out, "yhat": out, "o": out, "P": out, "Yhat": out}
        if spec.mean:
            env["m"] = float(cfg.m)
        return env
    env = {"X": cfg.X, "H0": cfg.X, "Y": cfg.Y, "T": cfg.Y, "m": float(cfg.m)}
    out = nodes[f"H{L}"]
    env.update(Yhat=out, P=out, O=out)
    for layer in range(1, L + 1):
        for kind in ("W", "b", "Z", "H"):
            env[f"{kind}{layer}"] = nodes[f"{kind}{layer}"]
    if spec.single:
        env.update(W=nodes["W1"], b=nodes["b1"], Z=nodes["Z1"], H=nodes["H1"])
    return env


def _names_text(spec: _Spec) -> str:
    if spec.lower:
        return "z, p (or yhat), t (or y)" + (", m" if spec.mean else "")
    if spec.single:
        return "X, W, b, Z, Yhat (or H, P, O), Y (or T), m"
    L = len(spec.acts)
    return (f"X, W1..W{L}, b1..b{L}, Z1..Z{L}, H1..H{L} (H{L} is Yhat, also P or O), "
            "Y (or T), m")


class _Evaluator:
    """Evaluate a parsed formula on one set of matrices, refusing anything not whitelisted."""

    def __init__(self, text: str, spec: _Spec, env: dict, symbols: dict[int, str] | None):
        self.text = text
        self.spec = spec
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
        hint = ""
        if not self.spec.single and not self.spec.lower and node.id in ("W", "b", "Z", "H", "D"):
            hint = " (in a network, number the layer: W1, Z2, ...)"
        raise self.fail(node, "unknown name",
                        f"the names are {_names_text(self.spec)}{hint}")

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
            raise _ShapeMismatch(
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
        raise _ShapeMismatch(
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
            raise _ShapeMismatch(
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
        if self.spec.lower and "axis" not in keywords:
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
                return np.array(_act(self.forward[name]).forward(np.array(arg, dtype=np.float64)),
                                dtype=np.float64)
            key = self.derivative[name]
            if key == "softmax":
                raise self.fail(
                    node, "the softmax has no element-wise derivative:",
                    "its Jacobian is diag(p) - p pᵀ per row; write the product with it out, "
                    "P * (G - sum(G * P, axis=1, keepdims=True)) for an upstream G")
            return np.array(_act(key).derivative(np.array(arg, dtype=np.float64)),
                            dtype=np.float64)


def _parse(formula: str) -> ast.AST:
    if not isinstance(formula, str):
        raise MatrixFormulaError(
            f"a formula must be text such as 'X.T @ (Yhat - Y) / m'; got {type(formula).__name__}.")
    if len(formula) > MAX_LENGTH:
        raise MatrixFormulaError(
            f"the formula is {len(formula)} characters long; the limit is {MAX_LENGTH}.")
    text = formula.strip()
    if not text:
        raise MatrixFormulaError("the formula is empty; write one such as 'X.T @ (Yhat - Y) / m'.")
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
        raise MatrixFormulaError(
            f"cannot parse {text!r}: {exc.msg} at column {col + 1} (near {text[col:col + 12]!r})."
        ) from None


def _evaluate(tree, text, spec, cfg, symbols=None) -> np.ndarray:
    with np.errstate(all="ignore"):
        value = _Evaluator(text, spec, _environment(spec, cfg), symbols).run(tree)
    return np.asarray(value, dtype=np.float64)


def _uses_bias(tree: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and (n.id == "b" or (n.id[:1] == "b" and n.id[1:].isdigit()))
               for n in ast.walk(tree))


# --- the textbook answer --------------------------------------------------------------------------


def _derivative_texts(spec: _Spec) -> list[str]:
    """The output delta and each hidden one, in the formula grammar: [D_L, ..., D_1]."""
    L = len(spec.acts)
    yhat, y = _layer_name(spec, "H", L), _target_name(spec)
    over_m = " / m" if spec.mean else ""
    two = "" if spec.half or spec.loss != "mse" else "2 * "
    lines = []
    for layer in range(L, 0, -1):
        name = spec.acts[layer - 1]
        Z, H = _layer_name(spec, "Z", layer), _layer_name(spec, "H", layer)
        if layer == L:
            if (name, spec.loss) in FUSED:
                diff = f"{yhat} - {y}" if not (two or over_m) else f"({yhat} - {y})"
                lines.append(f"{two}{diff}{over_m}")
                continue
            upstream = {"mse": f"{two}({yhat} - {y}){over_m}",
                        "bce": f"({yhat} - {y}) / ({yhat} * (1 - {yhat})){over_m}",
                        "ce": f"-{y} / {yhat}{over_m}"}[spec.loss]
        else:
            D = _layer_name(spec, "D", layer + 1)
            upstream = f"{D} @ {_layer_name(spec, 'W', layer + 1)}.T"
        if name == "identity":
            lines.append(upstream)
        elif name == "softmax":
            lines.append(f"{H} * (G - sum(G * {H}, axis=1, keepdims=True)) with G = {upstream}")
        else:
            form = MATRIX_OUTPUT_FORM.get(name, f"{name}_prime({{Z}})").format(H=H, Z=Z)
            lines.append(f"({upstream}) * {form}")
    return lines


def _wrt_node(spec: _Spec, wrt: str) -> tuple[str, int]:
    """("W", 2) for "W2"; ("W", 1) for "W" in a one-layer check."""
    L = len(spec.acts)
    text = wrt.strip()
    if spec.lower:
        if text.lower() in ("z", ""):
            return "Z", 1
        raise MatrixFormulaError(f"the vector form checks dE/dz; got wrt={wrt!r}. Leave out wrt=.")
    aliases = {"X": ("H", 0), "Yhat": ("H", L), "P": ("H", L), "O": ("H", L)}
    if text in aliases:
        return aliases[text]
    kind, number = text[:1], text[1:]
    if kind in ("W", "b", "Z", "H") and ((number == "" and spec.single) or number.isdigit()):
        layer = 1 if number == "" else int(number)
        low = 0 if kind == "H" else 1
        if low <= layer <= L:
            return kind, layer
    choices = ("W, b, Z, X or Yhat" if spec.single else
               f"W1..W{L}, b1..b{L}, Z1..Z{L}, H1..H{L} or X")
    raise MatrixFormulaError(f"cannot take the gradient with respect to {wrt!r}; use one of "
                             f"{choices}.")


def _gradient_text(spec: _Spec, kind: str, layer: int) -> str:
    lines = _derivative_texts(spec)
    L = len(spec.acts)
    if kind == "H":
        if layer == L:
            up = {"mse": "2 * " if not spec.half else "", "bce": "", "ce": ""}[spec.loss]
            yhat, y = _layer_name(spec, "H", L), _target_name(spec)
            over_m = " / m" if spec.mean else ""
            return {"mse": f"{up}({yhat} - {y}){over_m}",
                    "bce": f"({yhat} - {y}) / ({yhat} * (1 - {yhat})){over_m}",
                    "ce": f"-{y} / {yhat}{over_m}"}[spec.loss]
        first = layer + 1
        head = f"{_layer_name(spec, 'D', first)} @ {_layer_name(spec, 'W', first)}.T"
    else:
        first = layer
        D = _layer_name(spec, "D", layer)
        head = {"W": f"{_layer_name(spec, 'H', layer - 1)}.T @ {D}",
                "b": f"sum({D}, axis=0)", "Z": D}[kind]
    wheres = [f"{_layer_name(spec, 'D', L - i)} = {text}" for i, text in enumerate(lines)
              if L - i >= first]
    wheres.reverse()
    if kind == "Z" and len(wheres) == 1:
        return lines[-1 - (layer - 1)] if L == 1 else f"{head} where {wheres[0]}"
    return f"{head} where " + ", ".join(wheres)


def _title(spec: _Spec, bias: bool) -> str:
    mean = "mean " if spec.mean else ""
    over = " over m examples" if spec.mean else " summed over the examples"
    loss = MATRIX_LOSSES[spec.loss]
    if spec.loss == "mse" and spec.half:
        loss = "half squared error"
    if spec.lower:
        out = _layer_name(spec, "H", 1)
        norm = f" and Σ_k {_target_name(spec)}_k = 1" if spec.loss == "ce" else ""
        return (f"{mean}{loss}{over if spec.mean else ''} with {out} = {spec.acts[0]}(z) over k "
                f"outputs{norm}")
    plus = " + b" if bias else ""
    if spec.single:
        return (f"{mean}{loss}{over} of one dense layer, Z = X @ W{plus}, "
                f"Yhat = {spec.acts[0]}(Z)")
    layers = ", ".join(spec.acts)
    return f"{mean}{loss}{over} of a {len(spec.acts)}-layer network ({layers})"


# --- naming the mistake ---------------------------------------------------------------------------

_FACTORS = [
    ("", lambda m: 1.0), ("sign", lambda m: -1.0),
    ("m", lambda m: float(m)), ("-m", lambda m: -float(m)),
    ("1/m", lambda m: 1.0 / m), ("-1/m", lambda m: -1.0 / m),
    ("2", lambda m: 2.0), ("1/2", lambda m: 0.5), ("-2", lambda m: -2.0), ("-1/2", lambda m: -0.5),
    ("2m", lambda m: 2.0 * m), ("1/(2m)", lambda m: 0.5 / m),
]


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-12)
    return bool(np.all(np.abs(a - b) <= 1e-6 * scale + 1e-9))


def _factor_sentence(label: str, spec: _Spec, variable: str) -> str:
    if label in ("sign", "-1"):
        return ""
    sign = label.startswith("-")
    core = label.lstrip("-")
    parts = []
    if "m" in core and spec.mean:
        if core.startswith("1/") or core == "1/(2m)":
            parts.append("the 1/m is applied twice (your formula is divided by m once more than "
                         "the gradient of the mean loss)")
        else:
            parts.append("the 1/m of the mean over the batch is missing (your formula is m times "
                         "the gradient)")
    elif "m" in core:
        if core.startswith("1/") or core == "1/(2m)":
            parts.append("there is a 1/m too many: the loss is summed over the examples, not "
                         "averaged (pass mean=True to check the mean)")
        else:
            parts.append(f"there is an extra factor m: your formula is m times dE/d{variable}")
    if core.startswith("2") or core.endswith("2)") or core == "1/2":
        if "1/2" in core or "2m)" in core:
            parts.append("the 2 of the squared error is missing: d/dYhat (Yhat - Y)² = "
                         "2(Yhat - Y); only the loss ½(Yhat - Y)² (half=True) has none")
        else:
            parts.append("the factor 2 is extra: with ½(Yhat - Y)² the ½ cancels the 2 that the "
                         "power rule brings down" if spec.loss == "mse" and spec.half else
                         "a factor 2 is extra (a term counted twice)")
    if sign:
        parts.append("the sign is wrong as well")
    return "; ".join(parts)


def _mistake_sentence(kind: str, layer: int, spec: _Spec) -> tuple[str, str]:
    name = spec.acts[layer - 1]
    Z, H = _layer_name(spec, "Z", layer), _layer_name(spec, "H", layer)
    form = MATRIX_OUTPUT_FORM.get(name, f"{name}_prime({{Z}})").format(H=H, Z=Z)
    if kind == "softmax_diagonal":
        return "softmax_diagonal", (
            f"the softmax Jacobian was treated as diagonal: {H} * (1 - {H}) multiplies "
            "element-wise, but every output depends on every input, ∂p_i/∂z_j = p_i(δ_ij - p_j), "
            f"the matrix diag(p) - p pᵀ for each example; through it dE/d{Z} = "
            f"{H} * (G - sum(G * {H}, axis=1, keepdims=True)) for the upstream G = dE/d{H}"
            + (f" (with cross-entropy this collapses to {H} - {_target_name(spec)})"
               if spec.loss == "ce" else ""))
    if kind == "derivative_missing" and name == "softmax":
        return "derivative_missing", (
            f"the softmax's Jacobian is missing: the chain rule through {H} = softmax({Z}) "
            f"multiplies dE/d{H} by diag(p) - p pᵀ for each example, which gives "
            f"{H} * (G - sum(G * {H}, axis=1, keepdims=True)) for the upstream G = dE/d{H}")
    if kind == "derivative_missing":
        extra = ""
        if (name, spec.loss) in FUSED and layer == len(spec.acts):
            extra = (f"; here the fused form (Yhat - Y) already contains it, so the formula "
                     f"stops at dE/d{H}")
        return "derivative_missing", (
            f"the element-wise factor {name}'({Z}) = {form} is missing: the chain rule through "
            f"{H} = {name}({Z}) multiplies by it, and since the Jacobian of an element-wise "
            f"function is diagonal it acts element-wise, (...) * {form}{extra}")
    if kind == "derivative_twice":
        extra = ""
        if (name, spec.loss) in FUSED:
            extra = (f" ({'Yhat' if not spec.lower else H} - {_target_name(spec)} of "
                     f"{name} + {MATRIX_LOSSES[spec.loss]} already contains it: it cancelled the "
                     "loss's denominator)")
        return "derivative_twice", (
            f"the derivative {name}'({Z}) = {form} is applied twice{extra}")
    if kind == "derivative_at_output":
        return "derivative_wrong_array", (
            f"the derivative g' is applied to the wrong array: {name}_prime({H}) instead of "
            f"{name}_prime({Z}); "
            f"the derivative is taken at the activation's input {Z}"
            + (f", or in output form {form}" if name in ("sigmoid", "tanh") else ""))
    if kind.startswith("other:"):
        other = kind.split(":", 1)[1]
        return "derivative_wrong_activation", (
            f"the derivative of the wrong activation: {other}'({Z}) where layer {layer}'s "
            f"activation is {name}, whose derivative is {form}")
    if kind == "output_form_at_input":
        wrong = f"{Z} * (1 - {Z})" if name == "sigmoid" else f"1 - {Z}**2"
        return "derivative_wrong_array", (
            f"the derivative g' is applied to the wrong array: the output form of {name}' was "
            f"fed the input, "
            f"{wrong}, where it takes the output, {form}")
    raise AssertionError(kind)  # pragma: no cover


def _node_label(spec: _Spec, node: str) -> str:
    kind, layer = node[:1], int(node[1:])
    if kind == "H" and layer == len(spec.acts):
        return _layer_name(spec, "H", layer)
    return _layer_name(spec, kind, layer)


def _other_node_sentence(spec: _Spec, node: str, kind: str, layer: int) -> tuple[str, str]:
    other_kind, other_layer = node[:1], int(node[1:])
    label = _node_label(spec, node)
    wrt = _layer_name(spec, kind, layer)
    if other_kind == kind and other_layer != layer:
        if other_layer > layer:
            return "wrong_layer", (
                f"this is dE/d{label}, the gradient of layer {other_layer}, not of layer {layer}: "
                f"carry the delta back through the layers above, D{other_layer - 1} = "
                f"(D{other_layer} @ W{other_layer}.T) * g'(Z{other_layer - 1}), and use "
                f"{_layer_name(spec, 'H', layer - 1)} for layer {layer}" if kind in "WbZ" else
                f"this is dE/d{label}, the gradient of layer {other_layer}, not of layer {layer}")
        return "wrong_layer", (f"this is dE/d{label}, the gradient of layer {other_layer}, not "
                               f"of layer {layer}")
    if other_kind == "Z" and other_layer == layer and kind == "W":
        return "wrong_variable", (
            f"this is dE/d{label} (the layer's delta), not dE/d{wrt}: the chain rule through "
            f"{label} = {_layer_name(spec, 'H', layer - 1)} @ {wrt} + b still multiplies by "
            f"{_layer_name(spec, 'H', layer - 1)}.T on the left")
    if other_kind == "Z" and other_layer == layer and kind == "b":
        return "bias_not_summed", (
            f"the sum over the batch is missing: this is dE/d{label}, one row per example; the "
            f"bias is added to every row, so its gradient sums the rows: sum(..., axis=0)")
    if other_kind == "H" and other_layer == layer and kind == "Z":
        return "derivative_missing", (
            f"this is dE/d{label}, not dE/d{wrt}: the element-wise factor g'({wrt}) is missing")
    return "wrong_variable", f"this is dE/d{label}, not dE/d{wrt}"


def _diagnose(G_all, spec, configs, truths, kind, layer) -> tuple[str, str] | None:
    """(kind, sentence) of the one mistake that reproduces the formula at every point."""
    node = f"{kind}{layer}"
    variable = _layer_name(spec, kind, layer)
    if kind == "H" and layer == len(spec.acts):
        variable = _layer_name(spec, "H", layer)

    def match(candidates):
        """candidates: per config, the array. Returns (factor label, transposed?) or None."""
        for transposed in (False, True):
            for label, f in _FACTORS:
                if all(_close(G.T if transposed else G, f(c.m) * V)
                       for G, c, V in zip(G_all, configs, candidates, strict=True)):
                    if transposed and all(np.shape(G) == np.shape(G.T) for G in G_all):
                        continue
                    return label, transposed
        return None

    def with_extras(kind_name, sentence, label, transposed):
        extras = []
        if transposed:
            extras.append(f"the result is transposed (a gradient has the shape of what it "
                          f"differentiates: dE/d{variable} has the shape of {variable})")
        factor = _factor_sentence(label, spec, variable)
        if factor:
            extras.append(factor)
        if label == "sign":
            extras.append("the sign is wrong")
        return kind_name, sentence + ("; and " + "; and ".join(extras) if extras else "")

    right = [t[node] for t in truths]
    found = match(right)
    if found is not None:
        label, transposed = found
        if label == "" and transposed:
            return "transposed", (
                f"your formula is the transpose of dE/d{variable}: a gradient has the shape of "
                f"what it differentiates, {_shape_sym(spec, configs, right)}"
                + ("; X.T @ D, not D.T @ X" if kind == "W" else ""))
        if label == "sign":
            sentence = _update_sentence(spec, variable)
            return "sign_flipped", sentence + ("; and the result is transposed"
                                                   if transposed else "")
        names = {"m": "mean_forgotten", "1/m": "mean_twice"} if spec.mean else {}
        name = "transposed" if transposed else names.get(label.lstrip("-"), "scaled")
        sentence = _factor_sentence(label, spec, variable)
        if transposed:
            sentence = (f"your formula is the transpose of dE/d{variable} (a gradient has the "
                        f"shape of what it differentiates); and {sentence}")
        return name, sentence
    for mistake in _mistakes(spec):
        variants = [_backward(spec, c, mistake)[node] for c in configs]
        if all(_close(v, t) for v, t in zip(variants, right, strict=True)):
            continue  # the mistake changes nothing here
        found = match(variants)
        if found is not None:
            kind_name, sentence = _mistake_sentence(*mistake, spec)
            return with_extras(kind_name, sentence, *found)
    others = [n for n in truths[0] if n != node and n != "H0"]
    for other in others:
        found = match([t[other] for t in truths])
        if found is not None:
            kind_name, sentence = _other_node_sentence(spec, other, kind, layer)
            return with_extras(kind_name, sentence, *found)
    if kind == "b":
        found = match([np.sum(t[f"Z{layer}"], axis=1) for t in truths])
        if found is not None:
            return with_extras("bias_wrong_axis", (
                "the sum runs over the wrong axis: axis=1 adds up the outputs of each example; "
                "the bias gradient sums over the batch, axis=0"), *found)
    return None


def _shape_sym(spec, configs, arrays) -> str:
    symbols = _symbols(spec, configs[0])
    shape = np.shape(arrays[0])
    return "×".join(symbols.get(s, str(s)) for s in shape) or "a number"


def _update_sentence(spec: _Spec, variable: str) -> str:
    y, yhat = _target_name(spec), _layer_name(spec, "H", len(spec.acts))
    return (f"this is -dE/d{variable}, the negative gradient: the direction of the "
            f"gradient-descent update, {variable} ← {variable} - η·dE/d{variable} = {variable} + "
            f"η·(your formula). Many tutorials write this {y} - {yhat} form and call it the "
            f"gradient; the gradient itself has {yhat} - {y}")


# --- the entry point ------------------------------------------------------------------------------


def _build_spec(activation, loss, network, wrt, mean, half, lower) -> _Spec:
    if loss is None:
        raise MatrixFormulaError("say which loss the gradient is of: loss='mse', 'bce' or 'ce'.")
    loss = _canonical_loss(loss)
    if network is not None:
        names = network.split(",") if isinstance(network, str) else list(network)
        names = [n.strip() for n in names if n.strip()]
        if not names:
            raise MatrixFormulaError(
                f"network= needs the activation of every layer, e.g. 'relu,sigmoid'; got "
                f"{network!r}.")
        acts = tuple(_canonical_activation(n) for n in names)
        if activation is not None and _canonical_activation(activation) != acts[-1]:
            raise MatrixFormulaError(
                f"activation={activation!r} disagrees with the last layer of "
                f"network={network!r}; leave out activation= (the last name is the output's).")
    else:
        acts = (_canonical_activation(activation or "identity"),)
    if "softmax" in acts[:-1]:
        raise MatrixFormulaError("softmax is an output activation here; put it last in network=.")
    if loss == "bce" and acts[-1] not in ("sigmoid", "softmax"):
        raise MatrixFormulaError(
            f"bce needs outputs in (0, 1), and {acts[-1]} gives other values; use a sigmoid "
            "output (activation='sigmoid', or sigmoid last in network=).")
    if loss == "ce" and acts[-1] not in ("softmax", "sigmoid"):
        raise MatrixFormulaError(
            f"ce needs probabilities, and {acts[-1]} gives other values; use a softmax output "
            "(activation='softmax', or softmax last in network=).")
    if half and loss != "mse":
        raise MatrixFormulaError("half=True applies to the squared error only (loss='mse').")
    return _Spec(acts, loss, bool(half), bool(mean), network is None, bool(lower))


def check_matrix(
    formula: str,
    *,
    loss: str | None = None,
    activation: str | None = None,
    network=None,
    wrt: str | None = None,
    mean: bool = True,
    half: bool = False,
    seed: int = 0,
    _vector: bool = False,
    _depth: int = 0,
) -> MatrixCheck:
    r"""Check the hand-written matrix gradient ``formula`` and name the mistake.

    The steps: read the formula through the whitelist; draw random matrices of three sets of
    sizes and compute the true gradient on each (checked against finite differences); evaluate
    the formula on them; then the verdict: shapes that cannot fit (with the fix, and what the
    fixed formula still gets wrong), correct, or the learner's mistake that reproduces it.

    Parameters
    ----------
    formula:
        The gradient in NumPy notation: ``X.T @ (Yhat - Y) / m``. Names: ``X`` (m×n input),
        ``Y`` or ``T`` (m×k targets), ``Yhat``, ``P`` or ``O`` (m×k output), ``m``; for one
        layer ``W`` (n×k), ``b`` (k), ``Z`` (m×k); in a network ``W1``, ``b1``, ``Z1``,
        ``H1`` (m×h1), ... Operations: ``@``, ``.T``, element-wise ``+ - * /``, ``**`` with a
        number, comparisons such as ``(Z > 0)``, ``sum`` and ``mean`` (``axis=0``, also as
        ``.sum(axis=0)``), ``exp``, ``log``, ``sqrt``, ``abs``, every built-in activation
        (``sigmoid(Z)``, ``softmax(Z)`` row by row) and its derivative (``sigmoid_prime(Z)``).
    loss:
        ``"mse"``, ``"bce"`` or ``"ce"``; summed over the k outputs of an example.
    activation:
        The output activation of one dense layer (default identity).
    network:
        Instead of ``activation``: the activation of every layer, first to last
        (``"relu,sigmoid"`` or a list); names then carry the layer's number.
    wrt:
        The variable: ``"W"`` (default), ``"b"``, ``"Z"``, ``"X"``, ``"Yhat"``; in a network
        ``"W1"``, ``"b2"``, ``"Z1"``, ``"H1"``, ...
    mean:
        The loss is the mean over the m examples (default; the gradient carries 1/m); False:
        the sum.
    half:
        With ``loss="mse"``: the loss is ½(Yhat - Y)².
    seed:
        The random matrices are drawn from ``numpy.random.default_rng(seed)``.

    Raises
    ------
    MatrixFormulaError
        (a ValueError) for syntax outside the whitelist, unknown names, shapes that cannot
        multiply, or options that contradict each other; one line naming the problem.
    """
    tree = _parse(formula)
    spec = _build_spec(activation, loss, network, wrt, mean, half, _vector)
    problem = _Problem.make(spec, tree, formula, wrt, seed)
    try:
        G_all = problem.evaluate(tree)
    except _ShapeMismatch as exc:

        def recheck(fixed: str) -> MatrixCheck:
            return check_matrix(fixed, loss=loss, activation=activation, network=network,
                                wrt=wrt, mean=mean, half=half, seed=seed, _vector=_vector,
                                _depth=_depth + 1)

        return _shape_verdict(problem, tree, exc, recheck if _depth < 3 else None)
    return _verdict(problem, G_all)


@dataclass
class _Problem:
    """What a formula is checked against: the variable, the random sets of matrices, the true
    gradient on each, and the texts of the verdict."""

    spec: _Spec
    shown: str
    kind: str
    layer: int
    bias: bool
    configs: list
    truths: list
    symbols: dict

    @classmethod
    def make(cls, spec: _Spec, tree, formula: str, wrt: str | None, seed: int) -> _Problem:
        L = len(spec.acts)
        default_wrt = "z" if spec.lower else ("W" if spec.single else f"W{L}")
        kind, layer = _wrt_node(spec, wrt or default_wrt)
        bias = (_uses_bias(tree) or kind == "b") and not spec.lower
        configs = _configs(spec, bias, seed)
        truths = [_backward(spec, c) for c in configs]
        node = f"{kind}{layer}"
        for c, t in zip(configs, truths, strict=True):  # the backward pass meets the oracle
            if not _close(t[node], _finite_difference(spec, c, node)):  # pragma: no cover
                raise RuntimeError(f"the backward pass disagrees with finite differences for "
                                   f"{node}; please report this with the formula.")
        return cls(spec, " ".join(formula.split()), kind, layer, bias, configs, truths,
                   _symbols(spec, configs[0]))

    @property
    def node(self) -> str:
        return f"{self.kind}{self.layer}"

    @property
    def variable(self) -> str:
        return _layer_name(self.spec, self.kind, self.layer)

    @property
    def subject(self) -> str:
        return f"dE/d{self.variable}"

    @functools.cached_property
    def derivative(self) -> str:
        return _gradient_text(self.spec, self.kind, self.layer)

    @functools.cached_property
    def of(self) -> str:
        return _title(self.spec, self.bias)

    def evaluate(self, tree) -> list[np.ndarray]:
        """The formula on every set of matrices (shapes in symbols on the first)."""
        return [_evaluate(tree, self.shown, self.spec, c, self.symbols if i == 0 else None)
                for i, c in enumerate(self.configs)]

    def result(self, correct: bool, kind: str | None, findings: list, paragraph: str):
        return MatrixCheck(
            correct=correct, kind=kind, where=None if correct else self.subject,
            sentence=paragraph, expected=self.derivative, formula=self.shown,
            derivative=self.derivative, simplified=self.derivative, variable=self.variable,
            of=self.of, method="numeric", findings=findings,
            shapes=_shape_table(self.spec, self.configs[0], self.symbols, self.bias),
            checked=[{"m": c.m, "sizes": list(c.sizes)} for c in self.configs],
        )

    def wrong(self, kind: str | None, problem: str, sentence: str, paragraph: str) -> MatrixCheck:
        """A verdict of one finding."""
        return self.result(False, kind, [Finding(self.shown, problem, self.derivative, sentence)],
                           paragraph)


def _shape_verdict(problem: _Problem, tree, exc: _ShapeMismatch, recheck) -> MatrixCheck:
    """Shapes that cannot multiply or add: the mistake, and what its fix leaves wrong."""
    message = str(exc)
    sentence = f"It has {message[0].lower()}{message[1:]}"
    if exc.replacement is not None and recheck is not None:
        fixed = ast.unparse(_Replace(exc.target, exc.replacement).visit(tree))
        try:
            again = recheck(fixed)
        except MatrixFormulaError:
            again = None
        if again is not None and again.correct:
            sentence += f" With that change, {fixed}, the gradient is right."
        elif again is not None and again.findings and again.findings[0].rule:
            rest = again.findings[0].rule
            sentence += (f" With that change, {fixed}, it is still wrong: "
                         f"{rest[:1].lower()}{rest[1:]}")
    p = problem
    return p.wrong(exc.kind, exc.kind.replace("_", " "), sentence,
                   f"Not correct: your {p.subject}, {p.shown}, cannot be the gradient of the "
                   f"{p.of}, which is {p.derivative}. {sentence}")


def _same(G: np.ndarray, T: np.ndarray) -> bool:
    if G.shape != T.shape and G.size == T.size and T.ndim == 1 and G.ndim == 2 and 1 in G.shape:
        G = G.reshape(T.shape)  # a bias gradient kept as a 1×k row
    return _close(G, T)


def _verdict(p: _Problem, G_all: list[np.ndarray]) -> MatrixCheck:
    """Correct, the mistake of the catalogue that reproduces the formula, or what differs."""
    for G, c in zip(G_all, p.configs, strict=True):
        if not np.all(np.isfinite(G)):
            raise MatrixFormulaError(
                f"{p.shown!r} gives NaN or infinite values on finite matrices (m = {c.m}): a "
                "log or a division of 0 somewhere.")
    bias_note = "" if p.bias or p.spec.lower else " (no bias: your formula does not use b)"
    if all(_same(G, t[p.node]) for G, t in zip(G_all, p.truths, strict=True)):
        sizes_text = "; ".join(_sizes_text(p.spec, c) for c in p.configs)
        what = "vectors" if p.spec.lower and not p.spec.mean else "sets of matrices"
        return p.result(True, None, [], (
            f"Correct: {p.shown} is {p.subject} of the {p.of}{bias_note}: {p.derivative}. "
            f"Checked against float64 central finite differences on {len(p.configs)} random "
            f"{what} ({sizes_text})."))
    head = (f"Not correct: your {p.subject}, {p.shown}, is not the gradient of the "
            f"{p.of}{bias_note}, which is {p.derivative}.")
    found = _diagnose(G_all, p.spec, p.configs, p.truths, p.kind, p.layer)
    if found is not None:
        kind_name, sentence = found
        sentence = sentence[:1].upper() + sentence[1:]
        return p.wrong(kind_name, kind_name.replace("_", " "), f"{sentence}.",
                       f"{head} {sentence}.")
    return _unexplained(p, G_all[0], head)


def _unexplained(p: _Problem, G0: np.ndarray, head: str) -> MatrixCheck:
    """No mistake of the catalogue: the shapes that differ, or the worst element."""
    T0 = p.truths[0][p.node]
    if G0.shape != T0.shape:
        want = "×".join(p.symbols.get(s, str(s)) for s in T0.shape) or "a number"
        got = "×".join(p.symbols.get(s, str(s)) for s in G0.shape) or "a number"
        sentence = (f"Your formula gives a {got} array, but {p.subject} has the shape of "
                    f"{p.variable}, {want}; no single mistake of the catalogue explains the rest.")
        return p.wrong("shape", "shape", sentence, f"{head} {sentence}")
    idx = np.unravel_index(int(np.argmax(np.abs(G0 - T0))), T0.shape)
    where = ", ".join(str(int(i)) for i in idx)
    sentence = (f"No single mistake of the catalogue explains it (a transpose, the order of "
                f"the factors, the 1/m, g'(Z), the sign, the softmax Jacobian, another layer): "
                f"at [{where}] with m = {p.configs[0].m} your formula gives {G0[idx]:.6g}, the "
                f"gradient is {T0[idx]:.6g}.")
    return p.wrong(None, "different", sentence, f"{head} {sentence}")


def _sizes_text(spec: _Spec, cfg: _Config) -> str:
    if spec.lower:
        return f"k = {cfg.sizes[-1]}" + (f", m = {cfg.m}" if spec.mean else "")
    names = ["n", *[f"h{i}" for i in range(1, len(cfg.sizes) - 1)], "k"]
    return ", ".join([f"m = {cfg.m}", *(f"{n} = {s}" for n, s in zip(names, cfg.sizes,
                                                                      strict=True))])


def _shape_table(spec: _Spec, cfg: _Config, symbols, bias) -> dict:
    """name -> shape in symbols ("m×n"), for every array a formula may use."""
    if spec.lower:
        return {"z": "k", _layer_name(spec, "H", 1): "k", _target_name(spec): "k"}

    def sym(shape):
        return "×".join(symbols.get(s, str(s)) for s in shape)

    shapes = {"X": sym(cfg.X.shape)}
    for layer_i in range(1, len(spec.acts) + 1):
        for k in ("W", "b", "Z", "H"):
            if k == "b" and not bias:
                continue
            label = _layer_name(spec, k, layer_i)
            shapes[label] = sym(cfg.nodes[f"{k}{layer_i}"].shape)
    shapes["Y"] = sym(cfg.Y.shape)
    return shapes

