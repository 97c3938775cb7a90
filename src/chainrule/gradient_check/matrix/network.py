"""The network of a matrix check, its random matrices and its backward passes, right and wrong.

:math:`H_0 = X`, :math:`Z_l = H_{l-1} W_l + b_l`, :math:`H_l = g_l(Z_l)`, :math:`\\hat Y = H_L`,
and the loss the mean (or the sum) over the batch of the per-example loss summed over the
outputs. :func:`backward_pass` is the textbook backward pass; given a learner's mistake (one of
:func:`learner_mistakes`) it replaces one step dE/dZ_l = dE/dH_l ⊙ g'(Z_l) by the learner's
version. The true gradient is checked against :mod:`chainrule._oracle`'s finite differences.
Only NumPy is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrule import _oracle as oracle
from chainrule._checks import UnreadableFormulaError
from chainrule.gradient_check.names import MATRIX_LOSSES

__all__ = [
    "Config",
    "MatrixFormulaError",
    "MatrixFormulaSyntaxError",
    "Spec",
    "backward_pass",
    "canonical_activation",
    "canonical_loss",
    "draw_configs",
    "environment",
    "finite_difference",
    "fresh_activation",
    "layer_name",
    "learner_mistakes",
    "names_text",
    "size_symbols",
    "target_name",
    "wrt_node",
]


class MatrixFormulaError(ValueError):
    """A matrix formula that the whitelist refuses, or whose shapes do not fit."""


class MatrixFormulaSyntaxError(MatrixFormulaError, UnreadableFormulaError):
    """A matrix formula that cannot be read: empty, not text, or not an expression by Python's
    grammar (a :class:`MatrixFormulaError` that a face treats as bad usage)."""


@dataclass(frozen=True)
class Spec:
    acts: tuple[str, ...]
    loss: str
    half: bool
    mean: bool
    single: bool  # one layer: names W, b, Z without a number
    lower: bool  # the vector form of one example: p, t, z, yhat, y


def canonical_activation(name: str) -> str:
    from chainrule.nn import activations

    key = activations.canonical_name(str(name))
    if key is None or key == "log_softmax":
        from chainrule import nn

        known = [a for a in nn.ACTIVATIONS if a != "log_softmax"]
        raise MatrixFormulaError(
            f"unknown activation {name!r} for a matrix check; use one of {', '.join(known)}."
        )
    return key


def canonical_loss(name: str) -> str:
    from chainrule import losses

    text = str(name).strip().lower().replace("-", "_")
    key = losses.canonical_name(text)
    if key not in MATRIX_LOSSES:
        raise MatrixFormulaError(
            f"unknown loss {name!r} for a matrix check; use one of {', '.join(MATRIX_LOSSES)} "
            "(loss='mse', 'bce' or 'ce')."
        )
    return key


def layer_name(spec: Spec, kind: str, layer: int) -> str:
    if spec.lower:
        return {"Z": "z", "H": "p" if spec.acts[-1] == "softmax" else "yhat"}.get(kind, kind)
    if kind == "H" and layer == 0:
        return "X"
    if kind == "H" and layer == len(spec.acts):
        return "Yhat"
    if kind == "D":
        return "D" if spec.single else f"D{layer}"
    return kind if spec.single else f"{kind}{layer}"


def target_name(spec: Spec) -> str:
    if spec.lower:
        return "t" if spec.acts[-1] == "softmax" else "y"
    return "Y"


@dataclass
class Config:
    """One random set of matrices: sizes, the arrays of the forward pass, the true gradient."""

    sizes: tuple[int, ...]  # n, h1, ..., k
    m: int
    X: np.ndarray
    Y: np.ndarray
    Ws: list
    bs: list
    nodes: dict  # "W1", "b1", "Z1", "H1", ... -> array


def fresh_activation(name: str):
    from chainrule import nn

    return nn.get(name)


def _activation(name: str):
    """The activation ``name`` of :func:`chainrule.nn.get` as a function of a matrix."""
    return lambda Z: np.array(fresh_activation(name).forward(Z.copy()), dtype=np.float64)


def _forward(spec: Spec, cfg: Config, override: tuple[str, np.ndarray] | None = None):
    """The loss, with the node ``override[0]`` replaced by ``override[1]``; and the nodes."""
    nodes = oracle.forward([_activation(a) for a in spec.acts], cfg.X, cfg.Ws, cfg.bs, override)
    H = nodes[f"H{len(spec.acts)}"]
    return oracle.loss_value(spec.loss, H, cfg.Y, half=spec.half, mean=spec.mean), nodes


def finite_difference(spec: Spec, cfg: Config, node: str) -> np.ndarray:
    """dE/d(node) by the five-point central difference in float64, element by element."""
    base = np.array(cfg.nodes[node], dtype=np.float64, copy=True)
    return oracle.five_point_gradient(lambda v: _forward(spec, cfg, (node, v))[0], base, 1e-4)


def _make_config(spec: Spec, sizes, m, rng, bias: bool) -> Config:
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
        else:  # one-hot rows, and a soft one: a right formula holds for every row summing to 1
            Y = np.eye(k)[rng.integers(0, k, size=m)]
            Y[0] = rng.dirichlet(np.ones(k))
        cfg = Config(tuple(sizes), m, X, Y, Ws, bs, {})
        cfg.nodes = _forward(spec, cfg)[1]
        # Keep away from a ReLU's kink and from saturation, where differences mislead.
        zs = [cfg.nodes[f"Z{layer}"] for layer in range(1, L + 1)]
        if all(np.min(np.abs(z)) > 1e-2 and np.max(np.abs(z)) < 6 for z in zs):
            return cfg
    return cfg  # pragma: no cover - 100 unlucky draws


def draw_configs(spec: Spec, bias: bool, seed: int) -> list[Config]:
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


def size_symbols(spec: Spec, cfg: Config) -> dict[int, str]:
    """size -> symbol for the first configuration, whose sizes are all different."""
    names = {cfg.m: "m", cfg.sizes[0]: "n", cfg.sizes[-1]: "k"}
    for i, size in enumerate(cfg.sizes[1:-1], start=1):
        names[size] = f"h{i}"
    return names


def _dloss(spec: Spec, H, Y, m):
    scale = 1.0 / m if spec.mean else 1.0
    if spec.loss == "mse":
        return (1.0 if spec.half else 2.0) * (H - Y) * scale
    if spec.loss == "bce":
        return (H - Y) / (H * (1.0 - H)) * scale
    return -Y / H * scale


def _step_through(name: str, kind: str | None, dH, Z, H):
    """dE/dZ = dE/dH ⊙ g'(Z) through the activation ``name``, or a learner's ``kind`` of it."""
    if name == "softmax":
        full = H * (dH - np.sum(dH * H, axis=-1, keepdims=True))
        return {"softmax_diagonal": dH * H * (1.0 - H), "derivative_missing": dH,
                "derivative_twice": full * H * (1.0 - H)}.get(kind, full)
    d = np.array(fresh_activation(name).derivative(Z.copy()), dtype=np.float64)
    if kind == "derivative_missing":
        return dH
    if kind == "derivative_twice":
        return dH * d * d
    if kind == "derivative_at_output":
        return dH * np.array(fresh_activation(name).derivative(H.copy()), dtype=np.float64)
    if kind == "output_form_at_input":
        return dH * (Z * (1.0 - Z) if name == "sigmoid" else 1.0 - Z**2)
    if kind == "activation_for_derivative":
        return dH * np.array(fresh_activation(name).forward(Z.copy()), dtype=np.float64)
    if kind is not None and kind.startswith("other_output:"):
        return dH * (H * (1.0 - H) if kind.endswith(":sigmoid") else 1.0 - H**2)
    if kind is not None and kind.startswith("other:"):
        other = kind.split(":", 1)[1]
        return dH * np.array(fresh_activation(other).derivative(Z.copy()), dtype=np.float64)
    return dH * d


def backward_pass(spec: Spec, cfg: Config, mistake: tuple[str, int] | None = None) -> dict:
    """Every node's gradient by the textbook backward pass; ``mistake`` = (kind, layer) replaces
    the step dE/dZ_l = dE/dH_l ⊙ g'(Z_l) by a learner's version of it, or (for
    ``"preactivation_input"``) the weight step dE/dW_l = H_(l-1)ᵀ dE/dZ_l by Z_(l-1)ᵀ dE/dZ_l."""
    L = len(spec.acts)
    nodes = cfg.nodes
    grads = {}
    dH = _dloss(spec, nodes[f"H{L}"], cfg.Y, cfg.m)
    for layer in range(L, 0, -1):
        grads[f"H{layer}"] = dH
        kind = mistake[0] if mistake is not None and mistake[1] == layer else None
        dZ = _step_through(spec.acts[layer - 1], kind, dH, nodes[f"Z{layer}"],
                           nodes[f"H{layer}"])
        grads[f"Z{layer}"] = dZ
        below = "Z" if kind == "preactivation_input" else "H"
        grads[f"W{layer}"] = nodes[f"{below}{layer - 1}"].T @ dZ
        grads[f"b{layer}"] = np.sum(dZ, axis=0)
        dH = dZ @ nodes[f"W{layer}"].T
    grads["H0"] = dH
    return grads


def learner_mistakes(spec: Spec) -> list[tuple[str, int]]:
    """(kind, layer) of every learner's mistake that :func:`backward_pass` can make, last layer
    first."""
    out = []
    for layer in range(len(spec.acts), 0, -1):
        name = spec.acts[layer - 1]
        if layer > 1 and spec.acts[layer - 2] != "identity":
            out.append(("preactivation_input", layer))
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
        out += [(f"other_output:{other}", layer) for other in ("sigmoid", "tanh")
                if other != name]
        out.append(("activation_for_derivative", layer))
    return out


def environment(spec: Spec, cfg: Config) -> dict[str, np.ndarray | float]:
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


def names_text(spec: Spec) -> str:
    if spec.lower:
        return "z, p (or yhat), t (or y)" + (", m" if spec.mean else "")
    if spec.single:
        return "X, W, b, Z, Yhat (or H, P, O), Y (or T), m"
    L = len(spec.acts)
    return (f"X, W1..W{L}, b1..b{L}, Z1..Z{L}, H1..H{L} (H{L} is Yhat, also P or O), "
            "Y (or T), m")


def wrt_node(spec: Spec, wrt: str) -> tuple[str, int]:
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
