r"""The numerical check of the vector and matrix derivations: float64 central differences.

The forward pass, the losses and the differences are those of
:mod:`chainrule._oracle` (plain NumPy, independent of the formulas being
checked); the activations are the library's expressions, evaluated by NumPy. Each formula of a
derivation is evaluated on random matrices of several shapes (m = 1 and K = 2 among them) and
compared with the central difference :math:`(E(\theta + h) - E(\theta - h)) / 2h` of the loss
by every entry of the array it claims to be the gradient of; a disagreement raises
``RuntimeError``.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy

from chainrule import _oracle as oracle
from chainrule.derivation import library
from chainrule.derivation.functions import NUMPY_FUNCTIONS
from chainrule.derivation.symbols import alpha, z

__all__ = [
    "activation_numpy",
    "compare",
    "loss_numpy",
    "numeric_gradient",
    "softmax",
    "targets",
    "verify_network",
    "verify_once",
]

_ALPHA = 0.3
_STEP = 1e-5
_RTOL, _ATOL = 1e-6, 1e-7

#: The softmax of each row, in plain NumPy (the oracle's).
softmax = oracle.softmax


@functools.lru_cache(maxsize=32)
def activation_numpy(act: str):
    """The activation ``act`` as a NumPy function of a matrix (softmax row by row)."""
    if act == "softmax":
        return oracle.softmax
    if act == "log_softmax":
        return oracle.log_softmax
    expr = library.activation_expr(act, z).subs({alpha: _ALPHA})
    f = sympy.lambdify(z, expr, modules=[NUMPY_FUNCTIONS, "numpy"])
    return lambda Z: np.broadcast_to(np.asarray(f(Z), dtype=float), np.shape(Z)).copy()


def loss_numpy(lss: str, out: np.ndarray, T: np.ndarray, half: bool = False) -> float:
    """The mean over rows of the loss summed over the columns, in plain NumPy."""
    return oracle.loss_value(lss, out, T, half=half)


def numeric_gradient(f, x: np.ndarray) -> np.ndarray:
    """Central differences of ``f`` by every entry of ``x``, Richardson-extrapolated (float64):
    the five-point difference of :func:`chainrule._oracle.five_point_gradient`."""
    return oracle.five_point_gradient(f, x, _STEP)


def _configs(L: int, K_min: int = 2):
    """(m, layer sizes) for the checks: m = 1 with K = 2, and two larger batches."""
    yield 1, [2] * (L + 1)
    yield 3, [3] + [4] * (L - 1) + [3]
    yield 5, [4] + [3] * (L - 1) + [K_min]


def targets(lss, rng, shape, normalised=True):
    """Random targets that ``lss`` accepts: probabilities for the cross-entropies (rows summing
    to 1 where ``normalised``), any reals for the others."""
    if lss in ("bce", "bce_with_logits"):
        return rng.uniform(0.05, 0.95, shape)
    if lss in ("ce", "ce_with_logits"):
        T = rng.uniform(0.1, 1.0, shape)
        T = T / T.sum(axis=1, keepdims=True)
        return T if normalised else T * rng.uniform(0.3, 2.5, (shape[0], 1))
    return rng.normal(0.0, 1.0, shape)


def compare(name: str, claimed: np.ndarray, numeric: np.ndarray, where: str) -> None:
    """Raise RuntimeError naming ``name`` and ``where`` unless ``claimed`` matches ``numeric``."""
    claimed = np.asarray(claimed, dtype=float)
    if claimed.shape != numeric.shape:
        raise RuntimeError(f"internal error: {name} has shape {claimed.shape} but the gradient "
                           f"has shape {numeric.shape} ({where}); please report this")
    bad = ~(np.abs(claimed - numeric) <= _ATOL + _RTOL * np.abs(numeric))
    if bad.any():
        i = np.argwhere(bad)[0]
        raise RuntimeError(
            f"internal error: {name} disagrees with central finite differences ({where}): "
            f"{claimed[tuple(i)]!r} against {numeric[tuple(i)]!r} at index {tuple(i)}; "
            "please report this")


def verify_network(d, acts: tuple[str, ...], lss: str, half: bool) -> str:
    """Check every claim of a network derivation; return what was checked, in words."""
    L = len(acts)
    fs = [activation_numpy(a) for a in acts]
    rng = np.random.default_rng(20240611)
    claims = [c for s in d.steps for c in s.claims if c.check is not None]
    claims += [c for c in d.result_input_form.values() if c.check is not None]
    shapes_seen = []
    for m, sizes in _configs(L):
        variants = (True, False) if lss in ("ce", "ce_with_logits") else (True,)
        X = rng.normal(0.0, 1.0, (m, sizes[0]))
        Ws = [rng.normal(0.0, 0.8, (sizes[i], sizes[i + 1])) for i in range(L)]
        bs = [rng.normal(0.0, 0.5, (1, sizes[i + 1])) for i in range(L)]
        shapes_seen.append(f"m = {m}, sizes {'-'.join(map(str, sizes))}")
        for normalised in variants:
            T = targets(lss, rng, (m, sizes[-1]), normalised)
            where = f"m = {m}, layer sizes {sizes}"
            verify_once(claims, acts, fs, lss, half, X, Ws, bs, T, normalised, where)
    return ("every formula above against float64 central differences of the loss on random "
            "matrices (" + "; ".join(shapes_seen) + ")")


def verify_once(claims, acts, fs, lss, half, X, Ws, bs, T, normalised, where):
    """Check every claim of ``claims`` on one set of arrays against central differences."""
    net = _Network(acts, fs, lss, half, X, Ws, bs, T)
    env = net.environment()
    # evaluate the claims in their order: G, g', then D_L, D_(L-1), ... and the gradients
    for c in claims:
        if c.assumes_normalised and not normalised:
            continue
        value = c.value(env)
        tag = c.check
        if tag == "G" or tag.startswith("D"):
            env[tag] = value
        compare(f"{c.lhs[0]} = {c.rhs('text')}", value, net.numeric(tag), where)


class _Network:
    """One set of arrays of a dense network, its forward pass, and the central differences of
    its loss by any node that a claim names (``G``, ``g2``, ``D2``, ``W1``, ``b1``, ``X``,
    ``H1``)."""

    def __init__(self, acts, fs, lss, half, X, Ws, bs, T):
        self.acts, self.fs, self.lss, self.half = acts, fs, lss, half
        self.X, self.Ws, self.bs, self.T = X, Ws, bs, T
        self.L, self.m = len(acts), X.shape[0]
        self.on_logits = library.LOSS_INFO[lss].on_logits
        nodes = oracle.forward(fs, X, Ws, bs)
        self.Zs = [nodes[f"Z{i}"] for i in range(1, self.L + 1)]
        self.Hs = [nodes[f"H{i}"] for i in range(self.L + 1)]

    def environment(self) -> dict[str, np.ndarray]:
        """The arrays a claim's formula reads, by name."""
        L, Zs, Hs = self.L, self.Zs, self.Hs
        env: dict[str, np.ndarray] = {"X": self.X, "T": self.T, "m": float(self.m)}
        for i in range(L):
            env[f"W{i + 1}"], env[f"b{i + 1}"], env[f"Z{i + 1}"] = self.Ws[i], self.bs[i], Zs[i]
            if i + 1 < L:
                env[f"H{i + 1}"] = Hs[i + 1]
                if self.acts[i] == "log_softmax":
                    env[f"P{i + 1}"] = softmax(Zs[i])
        env["P" if self.acts[-1] == "softmax" else "Yhat"] = Hs[-1]
        if self.acts[-1] == "log_softmax" or self.lss == "ce_with_logits":
            env["P"] = softmax(Zs[-1])
        return env

    def _loss(self, nodes) -> float:
        L = self.L
        return loss_numpy(self.lss, nodes[f"Z{L}" if self.on_logits else f"H{L}"], self.T,
                          self.half)

    def _loss_from(self, layer: int, override) -> float:
        """The loss with ``override = (node, array)`` in place, from layer ``layer`` on."""
        return self._loss(oracle.forward(self.fs, self.Hs[layer - 1], self.Ws, self.bs,
                                         override, first=layer))

    def numeric(self, tag: str) -> np.ndarray:
        """The central difference of the loss by the node ``tag`` names (``m`` times it for a
        delta or ``G``, which are per-sample derivatives)."""
        m = self.m
        if tag == "G":
            out = self.Hs[-1].copy()
            return m * numeric_gradient(
                lambda v: loss_numpy(self.lss, v, self.T, self.half), out)
        if tag.startswith("g"):
            i = int(tag[1:]) - 1
            Z = self.Zs[i]
            h = 1e-6 * np.maximum(1.0, np.abs(Z))
            return (self.fs[i](Z + h) - self.fs[i](Z - h)) / (2 * h)
        if tag.startswith("D"):
            i = int(tag[1:])
            return m * numeric_gradient(lambda v: self._loss_from(i, (f"Z{i}", v)),
                                        self.Zs[i - 1].copy())
        if tag[0] in "Wb":
            i = int(tag[1:])
            arr = self.Ws[i - 1] if tag[0] == "W" else self.bs[i - 1]
            return numeric_gradient(lambda v: self._loss_from(i, (f"{tag[0]}{i}", v)), arr.copy())
        if tag == "X" or tag.startswith("H"):
            i = 0 if tag == "X" else int(tag[1:])
            return numeric_gradient(lambda v: self._loss_from(i + 1, (f"H{i}", v)),
                                    self.Hs[i].copy())
        raise RuntimeError(f"internal error: unknown check {tag!r}")  # pragma: no cover
