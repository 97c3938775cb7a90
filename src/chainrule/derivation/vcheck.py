r"""The numerical oracle of the vector and matrix derivations: float64 central differences.

The forward pass and the losses are written here in plain NumPy, independently of the
formulas being checked. Each formula of a derivation is evaluated on random matrices of
several shapes (m = 1 and K = 2 among them) and compared with the central difference
:math:`(E(\theta + h) - E(\theta - h)) / 2h` of the loss by every entry of the array it
claims to be the gradient of; a disagreement raises ``RuntimeError``.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy

from chainrule.derivation import library
from chainrule.derivation.functions import NUMPY_FUNCTIONS
from chainrule.derivation.symbols import alpha, z

__all__ = ["activation_numpy", "loss_numpy", "numeric_gradient", "verify_network"]

_ALPHA = 0.3
_DELTA = 0.5
_STEP = 1e-5
_RTOL, _ATOL = 1e-6, 1e-7


def _softmax(Z):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _log_softmax(Z):
    s = Z - Z.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


@functools.lru_cache(maxsize=32)
def activation_numpy(act: str):
    """The activation ``act`` as a NumPy function of a matrix (softmax row by row)."""
    if act == "softmax":
        return _softmax
    if act == "log_softmax":
        return _log_softmax
    expr = library.activation_expr(act, z).subs({alpha: _ALPHA})
    f = sympy.lambdify(z, expr, modules=[NUMPY_FUNCTIONS, "numpy"])
    return lambda Z: np.broadcast_to(np.asarray(f(Z), dtype=float), np.shape(Z)).copy()


def loss_numpy(lss: str, out: np.ndarray, T: np.ndarray, half: bool = False) -> float:
    """The mean over rows of the loss summed over the columns, in plain NumPy."""
    m = out.shape[0]
    if lss == "mse":
        per = ((out - T) ** 2).sum() * (0.5 if half else 1.0)
    elif lss == "bce":
        per = -(T * np.log(out) + (1 - T) * np.log(1 - out)).sum()
    elif lss == "ce":
        per = -(T * np.log(out)).sum()
    elif lss == "huber":
        r = np.abs(out - T)
        per = np.where(r <= _DELTA, r**2 / 2, _DELTA * (r - _DELTA / 2)).sum()
    elif lss == "bce_with_logits":
        per = (np.logaddexp(0.0, out) - T * out).sum()
    elif lss == "ce_with_logits":
        per = -(T * _log_softmax(out)).sum()
    else:  # pragma: no cover - the registry's names are all above
        raise ValueError(f"unknown loss {lss!r}")
    return float(per) / m


def numeric_gradient(f, x: np.ndarray) -> np.ndarray:
    """Central differences of ``f`` by every entry of ``x``, Richardson-extrapolated (float64).

    ``(8(f(x+h) - f(x-h)) - (f(x+2h) - f(x-2h))) / 12h`` has an error of order h⁴, so steep
    gradients (a BCE near ŷ = 1) are still resolved to about 1e-8.
    """
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        h = _STEP * max(1.0, abs(old))
        values = []
        for k in (1, -1, 2, -2):
            x[idx] = old + k * h
            values.append(f(x))
        x[idx] = old
        g[idx] = (8 * (values[0] - values[1]) - (values[2] - values[3])) / (12 * h)
    return g


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
    H = A
    for i in range(start, len(fs)):
        Z = A if (is_z and i == start) else H @ Ws[i] + bs[i]
        H = fs[i](Z)
    return H, Z


def _verify_once(claims, acts, fs, lss, half, X, Ws, bs, T, normalised, where):
    L = len(acts)
    m = X.shape[0]
    on_logits = lss in ("bce_with_logits", "ce_with_logits")
    env: dict[str, np.ndarray] = {"X": X, "T": T, "m": float(m)}
    H = X
    Zs, Hs = [], [X]
    for i in range(L):
        Z = H @ Ws[i] + bs[i]
        H = fs[i](Z)
        Zs.append(Z)
        Hs.append(H)
        env[f"W{i + 1}"], env[f"b{i + 1}"], env[f"Z{i + 1}"] = Ws[i], bs[i], Z
        if i + 1 < L:
            env[f"H{i + 1}"] = H
            if acts[i] == "log_softmax":
                env[f"P{i + 1}"] = _softmax(Z)
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
                W2 = list(Ws)
                b2 = list(bs)
                (W2 if kind == "W" else b2)[i] = v
                out, last_z = _forward_from(fs, W2, b2, i, Hs[i], False)
                return loss_numpy(lss, last_z if on_logits else out, T, half)

            num = numeric_gradient(loss_of_param, arr.copy())
        else:  # pragma: no cover
            raise RuntimeError(f"internal error: unknown check {tag!r}")
        _compare(f"{c.lhs[0]} = {c.rhs('text')}", value, num, where)
