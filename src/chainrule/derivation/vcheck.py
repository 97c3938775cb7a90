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

__all__ = ["activation_numpy", "loss_numpy", "numeric_gradient", "verify_network"]

_ALPHA = 0.3
_STEP = 1e-5
_RTOL, _ATOL = 1e-6, 1e-7

_softmax = oracle.softmax


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


def _targets(lss, rng, shape, normalised=True):
    if lss in ("bce", "bce_with_logits"):
        return rng.uniform(0.05, 0.95, shape)
    if lss in ("ce", "ce_with_logits"):
        T = rng.uniform(0.1, 1.0, shape)
        T = T / T.sum(axis=1, keepdims=True)
        return T if normalised else T * rng.uniform(0.3, 2.5, (shape[0], 1))
    return rng.normal(0.0, 1.0, shape)


def _compare(name: str, claimed: np.ndarray, numeric: np.ndarray, where: str) -> None:
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
            T = _targets(lss, rng, (m, sizes[-1]), normalised)
            where = f"m = {m}, layer sizes {sizes}"
            _verify_once(claims, acts, fs, lss, half, X, Ws, bs, T, normalised, where)
    return ("every formula above against float64 central differences of the loss on random "
            "matrices (" + "; ".join(shapes_seen) + ")")


def _forward_from(fs, Ws, bs, start: int, A: np.ndarray, is_z: bool):
    """Run the layers from ``start`` (0-based) on ``A`` (a Z of that layer if ``is_z``)."""
    if is_z:
        nodes = oracle.forward(fs, None, Ws, bs, (f"Z{start + 1}", A), first=start + 1)
    else:
        nodes = oracle.forward(fs, A, Ws, bs, first=start + 1)
    return nodes[f"H{len(fs)}"], nodes[f"Z{len(fs)}"]


def _verify_once(claims, acts, fs, lss, half, X, Ws, bs, T, normalised, where):
    L = len(acts)
    m = X.shape[0]
    on_logits = lss in ("bce_with_logits", "ce_with_logits")
    env: dict[str, np.ndarray] = {"X": X, "T": T, "m": float(m)}
    nodes = oracle.forward(fs, X, Ws, bs)
    Zs = [nodes[f"Z{i}"] for i in range(1, L + 1)]
    Hs = [nodes[f"H{i}"] for i in range(L + 1)]
    H = Hs[-1]
    for i in range(L):
        env[f"W{i + 1}"], env[f"b{i + 1}"], env[f"Z{i + 1}"] = Ws[i], bs[i], Zs[i]
        if i + 1 < L:
            env[f"H{i + 1}"] = Hs[i + 1]
            if acts[i] == "log_softmax":
                env[f"P{i + 1}"] = _softmax(Zs[i])
    out_name = "P" if acts[-1] == "softmax" else "Yhat"
    env[out_name] = H
    if acts[-1] == "log_softmax" or lss == "ce_with_logits":
        env["P"] = _softmax(Zs[-1])

    def loss_of_output(out):
        return loss_numpy(lss, out, T, half)

    def loss_from_z(i, Z):
        if on_logits and i == L - 1:
            return loss_numpy(lss, Z, T, half)
        out, last_z = _forward_from(fs, Ws, bs, i, Z, True)
        return loss_numpy(lss, last_z if on_logits else out, T, half)

    # evaluate the claims in their order: G, g', then D_L, D_(L-1), ... and the gradients
    for c in claims:
        if c.assumes_normalised and not normalised:
            continue
        value = c.value(env)
        tag = c.check
        if tag == "G":
            num = m * numeric_gradient(loss_of_output, H.copy())
            env["G"] = value
        elif tag.startswith("g"):
            i = int(tag[1:]) - 1
            Z = Zs[i]
            h = 1e-6 * np.maximum(1.0, np.abs(Z))
            num = (fs[i](Z + h) - fs[i](Z - h)) / (2 * h)
        elif tag.startswith("D"):
            i = int(tag[1:]) - 1
            num = m * numeric_gradient(lambda Zv, i=i: loss_from_z(i, Zv), Zs[i].copy())
            env[tag] = value
        elif tag.startswith("W") or tag.startswith("b"):
            i = int(tag[1:]) - 1
            arr = Ws[i] if tag[0] == "W" else bs[i]

            def loss_of_param(v, i=i, kind=tag[0]):
                nodes = oracle.forward(fs, Hs[i], Ws, bs, (f"{kind}{i + 1}", v), first=i + 1)
                return loss_numpy(lss, nodes[f"Z{L}" if on_logits else f"H{L}"], T, half)

            num = numeric_gradient(loss_of_param, arr.copy())
        else:  # pragma: no cover
            raise RuntimeError(f"internal error: unknown check {tag!r}")
        _compare(f"{c.lhs[0]} = {c.rhs('text')}", value, num, where)
