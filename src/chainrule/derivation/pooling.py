r"""Max pooling and average pooling, derived step by step and checked.

Images are ``(N, C, h, w)``; window :math:`(i, j)` covers the :math:`k_h \times k_w` entries
whose corner is :math:`(si, sj)` (no padding, as :class:`chainrule.nn.MaxPool2D` and
:class:`chainrule.nn.AvgPool2D`). The backward pass sends each :math:`dY_{n,c,i,j}` back into
its window: all of it to the arg-max for max pooling (the first one in row-major order on a
tie, as the core layer and PyTorch do), :math:`1/(k_h k_w)` of it to every entry for average
pooling; windows that overlap (:math:`s < k`) add their shares. The scatter is written with the
0/1 arrays :math:`[si + p = r]`, so every formula is one NumPy expression, evaluated on random
arrays and compared with central differences of a forward pass written apart from
:mod:`chainrule.nn.pooling` (:func:`chainrule._oracle.pool_forward`); the tie rule is compared
with the core layer's backward pass on an input with ties.
"""

from __future__ import annotations

import functools

import numpy as np

from chainrule._oracle import pool_forward
from chainrule.derivation.layernodes import Code, numeric, verify_claims
from chainrule.derivation.vcheck import compare
from chainrule.derivation.vresult import Claim, VectorDerivation, VStep

__all__ = ["POOLINGS", "derive_pooling"]

#: The pooling layers, by name: (title, the core layer's name).
POOLINGS = {"maxpool": ("max pooling", "MaxPool2D"), "avgpool": ("average pooling", "AvgPool2D")}

_CASES = ((2, 2, 4, 4, 2, 2, 2), (1, 2, 5, 5, 3, 3, 2), (2, 1, 5, 4, 2, 3, 1))  # N C h w kh kw s

_WIN = "np.lib.stride_tricks.sliding_window_view(X, (kh, kw), axis=(2, 3))[:, :, ::s, ::s]"
_ROUTE = (f"np.reshape(np.arange(kh * kw) == np.argmax(np.reshape({_WIN}, dY.shape + "
          "(kh * kw,)), axis=-1)[..., None], dY.shape + (kh, kw))")
_ROWS = ("(s * np.arange(dY.shape[2])[:, None, None] + np.arange(kh)[:, None] "
         "== np.arange(X.shape[2]))")
_COLS = ("(s * np.arange(dY.shape[3])[:, None, None] + np.arange(kw)[:, None] "
         "== np.arange(X.shape[3]))")
_X, _Y, _R = ("N", "C", "h", "w"), ("N", "C", "h'", "w'"), ("N", "C", "h'", "w'", "kh", "kw")
_SCATTER = "Σ_{i,j,p,q} [s·i+p = r] [s·j+q = t]"
_SCATTER_TEX = r"\sum_{i,j,p,q} [si+p = r]\,[sj+q = t]\,"


def _lhs(text: str, latex: str, py: str) -> tuple[str, str, str]:
    return (text, latex, py)


def _max_dx(route: str) -> str:
    return f"np.einsum('ncij,ncijpq,ipr,jqt->ncrt', dY, {route}, {_ROWS}, {_COLS})"


_AVG_DX = f"np.einsum('ncij,ipr,jqt->ncrt', dY, {_ROWS}, {_COLS}) / (kh * kw)"


def _forward_step(word: str, text: str, latex: str) -> VStep:
    """Y as the maximum or the mean (``word``, NumPy's name) of each window."""
    return VStep("definition", "Forward, in index form",
                 f"the {'largest entry' if word == 'max' else 'mean'} of window (i, j), the "
                 "kh × kw block whose corner is (s·i, s·j); h' = ⌊(h - kh)/s⌋ + 1", [
                     Claim(_lhs("Y[n,c,i,j]", "Y_{n,c,i,j}", "Y"), Code(
                         text, latex, f"np.{word}({_WIN}, axis=(4, 5))", _Y), "Y")])


def _max_steps() -> list[VStep]:
    return [
        _forward_step("max", "max_{p,q} X[n,c,s·i+p,s·j+q]",
                      r"\max_{p,q} X_{n,c,\,si+p,\,sj+q}"),
        VStep("jacobian", "The derivative of a maximum",
              "the maximum moves with its largest entry only: ∂Y[n,c,i,j]/∂X[n,c,s·i+p,s·j+q] "
              "is 1 at the arg-max of the window and 0 elsewhere; on a tie the core layer, as "
              "PyTorch, routes to one entry, the first in row-major order (np.argmax)", [
                  Claim(_lhs("R[n,c,i,j,p,q]", "R_{n,c,i,j,p,q}", "R"), Code(
                      "[(p, q) = first arg-max_{p',q'} X[n,c,s·i+p',s·j+q']]",
                      r"\left[(p, q) = \operatorname{argmax}_{p',q'} "
                      r"X_{n,c,\,si+p',\,sj+q'}\right]", _ROUTE, _R), "R")]),
        VStep("chain", "Back into the windows",
              "each dY[n,c,i,j] goes to the entry its window took the maximum from; an entry "
              "in several windows (s < k) adds what each sends, one in none gets 0", [
                  Claim(_lhs("dX[n,c,r,t]", "dX_{n,c,r,t}", "dX"), Code(
                      f"{_SCATTER} R[n,c,i,j,p,q] dY[n,c,i,j]",
                      _SCATTER_TEX + r"R_{n,c,i,j,p,q}\, dY_{n,c,i,j}", _max_dx("R"), _X),
                      "dX")]),
    ]


def _avg_steps() -> list[VStep]:
    return [
        _forward_step("mean", "Σ_{p,q} X[n,c,s·i+p,s·j+q] / (kh kw)",
                      r"\frac{1}{k_h k_w} \sum_{p,q} X_{n,c,\,si+p,\,sj+q}"),
        VStep("chain", "Spread over the window",
              "∂Y[n,c,i,j]/∂X[n,c,s·i+p,s·j+q] = 1/(kh kw) for every entry of the window: "
              "each entry gets dY divided by the window size, and an entry in several windows "
              "(s < k) adds their shares", [
                  Claim(_lhs("dX[n,c,r,t]", "dX_{n,c,r,t}", "dX"), Code(
                      f"{_SCATTER} dY[n,c,i,j] / (kh kw)",
                      _SCATTER_TEX + r"\frac{dY_{n,c,i,j}}{k_h k_w}", _AVG_DX, _X), "dX")]),
    ]


def _draws(kind: str) -> list:
    rng = np.random.default_rng(43)
    return [_draw(rng, kind, *case) for case in _CASES]


def _draw(rng, kind, N, C, h, w, kh, kw, s):
    """The arrays of one case, the central differences by each, and where."""
    X = rng.normal(0.0, 1.0, (N, C, h, w))
    Y = pool_forward(X, (kh, kw), s, kind)
    G = rng.normal(0.0, 1.0, Y.shape)
    windows = np.lib.stride_tricks.sliding_window_view(X, (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::s, ::s].copy()
    truths = {"Y": Y, "dX": numeric(
        lambda v: float(np.sum(pool_forward(v, (kh, kw), s, kind) * G)), X)}
    if kind == "max":  # ∂Y/∂(each entry of each window), the windows as their own copies
        truths["R"] = numeric(lambda v: float(np.sum(np.max(v, axis=(4, 5)))), windows)
    env = {"X": X, "dY": G, "kh": kh, "kw": kw, "s": s}
    return env, truths, f"N, C, h, w = {N}, {C}, {h}, {w}; window {kh} × {kw}, s = {s}"


def _check_ties(name: str, result: Claim) -> None:
    """The formula against the core layer's backward pass on inputs with ties (small integers:
    every window holds repeated values)."""
    from chainrule import nn

    rng = np.random.default_rng(47)
    for N, C, h, w, kh, kw, s in _CASES:
        X = rng.integers(0, 2, (N, C, h, w)).astype(float)
        layer = getattr(nn, POOLINGS[name][1])((kh, kw), s)
        G = rng.normal(0.0, 1.0, layer.forward(X).shape)
        env = {"X": X, "dY": G, "kh": kh, "kw": kw, "s": s}
        compare(f"dX = {result.rhs('text')}", result.value(env), layer.backward(G),
                f"ties, window {kh} × {kw}, s = {s}, against {POOLINGS[name][1]}.backward")


def _result(name: str) -> Claim:
    """dX as one NumPy expression of X, dY, kh, kw, s."""
    if name == "maxpool":
        return Claim(_lhs("dX[n,c,r,t]", "dX_{n,c,r,t}", "dX"), Code(
            f"{_SCATTER} R[n,c,i,j,p,q] dY[n,c,i,j]",
            _SCATTER_TEX + r"R_{n,c,i,j,p,q}\, dY_{n,c,i,j}", _max_dx(_ROUTE), _X), "dX")
    return _avg_steps()[-1].claims[0]


def derive_pooling(name: str) -> VectorDerivation:
    """The derivation of ``"maxpool"`` or ``"avgpool"``, every claim checked."""
    return _derive(name)


@functools.lru_cache(maxsize=2)
def _derive(name: str) -> VectorDerivation:
    title, layer = POOLINGS[name]
    kind = "max" if name == "maxpool" else "avg"
    steps = _max_steps() if kind == "max" else _avg_steps()
    draws = _draws(kind)
    verify_claims([c for s in steps for c in s.claims], draws)
    result = {"dX": _result(name)}
    verify_claims(list(result.values()), draws)
    _check_ties(name, result["dX"])
    shapes = {"X": _X, "Y": _Y, "dY": _Y, "kh": (), "kw": (), "s": ()}
    symbols = [("X", "N × C × h × w", "the input images"),
               ("dY", "N × C × h' × w'", "∂E/∂Y, the gradient from the layer above"),
               ("kh, kw, s", "", f"the window and the stride ({layer}'s kernel_size and "
                                 "stride, the stride the window by default)"),
               ("[s·i+p = r]", "", "1 where window row i, offset p, is input row r, else 0")]
    if kind == "max":
        shapes["R"] = _R
        symbols.insert(2, ("R", "N × C × h' × w' × kh × kw",
                           "1 at the entry each window's maximum comes from, else 0"))
    return VectorDerivation(
        kind="pooling", title=f"Backpropagation through {title}", steps=steps, result=result,
        shapes=shapes, symbols=symbols, variable="X",
        function=f"Y = {'max' if kind == 'max' else 'mean'} of each window ({layer})",
        checked=("every formula against float64 central differences of a forward pass "
                 "written apart from the layer, on random arrays (windows 2 × 2 at stride 2, "
                 "3 × 3 overlapping at stride 2, 2 × 3 at stride 1), and against "
                 f"{layer}.backward on inputs with ties"),
        assumptions=["no padding; the maximum of a window with ties is taken at its first "
                     "entry in row-major order" if kind == "max" else "no padding"],
    )
