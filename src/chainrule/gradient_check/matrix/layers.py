r"""Check a hand-written gradient of batch norm, layer norm or attention, and name the mistake.

:func:`check_layer` reads the formula through the whitelist grammar (never ``eval``),
evaluates it on random arrays of three shapes, and compares it with the true gradient, computed
by the textbook formula and confirmed by central finite differences of
:mod:`chainrule._oracle`'s forward pass. When they disagree it evaluates each mistaken variant
of the gradient on the same arrays and names the one the formula matches on every draw: a path
of batch norm dropped, the unbiased variance, ε outside the square root, the wrong axis, γ
forgotten, sums for means; the softmax treated as element-wise, the 1/√d forgotten, a transpose
missing in dK or dV, the causal mask ignored. The loss is :math:`E = \sum (Y \odot dY)` (or
:math:`\sum O \odot dO`), so ``dY`` (``dO``) is any gradient from above.

>>> check_layer("gamma * dY / sqrt(var + eps)", layer="batchnorm", wrt="X").kind
'norm_both_paths_dropped'

Only NumPy is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrule import _oracle as oracle
from chainrule.gradient_check.catalogue import MISTAKES
from chainrule.gradient_check.matrix.check import MatrixCheck
from chainrule.gradient_check.matrix.grammar import (
    ShapeMismatch,
    evaluate_names,
    parse_formula,
    read_notation,
)
from chainrule.gradient_check.matrix.network import MatrixFormulaError
from chainrule.gradient_check.verdict import Finding

__all__ = ["LAYERS", "check_layer"]

_NORM_NAMES = "X, dY, gamma, beta, mu, var, Xhat, eps, m (the batch size), n (the features)"
_ATTENTION_NAMES = "Q, K, V, S, P, O, dO, d (the width of a query), t (the steps)"

#: Each layer: its names, the variables a gradient may be by, and the true gradients in words.
LAYERS = {
    "batchnorm": (_NORM_NAMES, ("X", "gamma", "beta"), {
        "X": "gamma / sqrt(var + eps) * (dY - mean(dY, axis=0) - Xhat * mean(dY * Xhat, axis=0))",
        "gamma": "sum(dY * Xhat, axis=0)", "beta": "sum(dY, axis=0)"}),
    "layernorm": (_NORM_NAMES, ("X", "gamma", "beta"), {
        "X": "(D - mean(D, axis=1, keepdims=True) - Xhat * mean(D * Xhat, axis=1, "
             "keepdims=True)) / sqrt(var + eps) with D = dY * gamma",
        "gamma": "sum(dY * Xhat, axis=0)", "beta": "sum(dY, axis=0)"}),
    "attention": (_ATTENTION_NAMES, ("Q", "K", "V"), {
        "Q": "dS @ K / sqrt(d) with dS = P * (dP - sum(dP * P, axis=1, keepdims=True)), "
             "dP = dO @ V.T",
        "K": "dS.T @ Q / sqrt(d) with dS = P * (dP - sum(dP * P, axis=1, keepdims=True)), "
             "dP = dO @ V.T",
        "V": "P.T @ dO"}),
}

_SHAPES = {"norm": ((4, 3), (3, 5), (6, 2)), "attention": ((3, 2, 2), (4, 3, 2), (5, 2, 3))}


# --- the arrays and the gradients, right and wrong ---------------------------------------------


def _norm_env(rng, m, n, axis) -> dict:
    X = rng.normal(0.5, 1.5, (m, n))
    gamma, beta = rng.normal(1.0, 0.5, (1, n)), rng.normal(0.0, 0.5, (1, n))
    eps = float(rng.uniform(0.1, 0.5))
    mu, var, Xhat, Y = oracle.normalization_forward(X, gamma, beta, eps, axis)
    return {"X": X, "dY": rng.normal(0.0, 1.0, (m, n)), "gamma": gamma, "beta": beta, "mu": mu,
            "var": var, "Xhat": Xhat, "Y": Y, "eps": eps, "m": float(m), "n": float(n)}


def _norm_dx(e, axis, *, D=None, mean_mu=None, mean_var=None, std=None, Xhat=None):
    """dX = (D - mean(D) - X̂ ⊙ mean(D ⊙ X̂)) / std, each piece replaceable by a mistake."""
    def mean(A):
        return A.mean(axis=axis, keepdims=True)

    D = e["dY"] * e["gamma"] if D is None else D
    Xhat = e["Xhat"] if Xhat is None else Xhat
    mean_mu = mean if mean_mu is None else mean_mu
    mean_var = mean if mean_var is None else mean_var
    std = np.sqrt(e["var"] + e["eps"]) if std is None else std
    return (D - mean_mu(D) - Xhat * mean_var(D * Xhat)) / std


def _norm_truth(e, axis, wrt):
    if wrt == "X":
        return _norm_dx(e, axis)
    return np.sum(e["dY"] * (e["Xhat"] if wrt == "gamma" else 1.0), axis=0, keepdims=True)


def _norm_mistakes(e, axis, wrt):
    """(kind, the gradient with that mistake) for the variable ``wrt``."""
    other = 1 - axis
    N = e["m"] if axis == 0 else e["n"]
    if wrt != "X":
        unsummed = e["dY"] * (e["Xhat"] if wrt == "gamma" else 1.0)
        yield "norm_wrong_axis", unsummed.sum(axis=1, keepdims=True)
        yield "bias_not_summed", unsummed
        if wrt == "beta":
            yield "wrong_variable", np.sum(unsummed * e["Xhat"], axis=0, keepdims=True)
        return
    def zero(A):  # a path dropped
        return 0.0 * A

    def total(A):
        return A.sum(axis=axis, keepdims=True)

    yield "norm_mean_path_dropped", _norm_dx(e, axis, mean_mu=zero)
    yield "norm_variance_path_dropped", _norm_dx(e, axis, mean_var=zero)
    yield "norm_both_paths_dropped", _norm_dx(e, axis, mean_mu=zero, mean_var=zero)
    yield "norm_unbiased_variance", _norm_dx(e, axis, mean_var=lambda A: total(A) / (N - 1))
    var_u = e["var"] * N / (N - 1)
    xhat_u = (e["X"] - e["mu"]) / np.sqrt(var_u + e["eps"])
    yield "norm_unbiased_variance", _norm_dx(e, axis, Xhat=xhat_u, std=np.sqrt(var_u + e["eps"]),
                                             mean_var=lambda A: total(A) / (N - 1))
    yield "norm_eps_outside_sqrt", _norm_dx(e, axis, std=np.sqrt(e["var"]) + e["eps"])
    def other_mean(A):
        return A.mean(axis=other, keepdims=True)

    yield "norm_wrong_axis", _norm_dx(e, axis, mean_mu=other_mean, mean_var=other_mean)
    yield "norm_wrong_axis", e["gamma"] * _norm_dx(e, axis, D=e["dY"], mean_mu=other_mean,
                                                   mean_var=other_mean)
    _, var_o, xhat_o, _ = oracle.normalization_forward(e["X"], e["gamma"], e["beta"],
                                                          e["eps"], other)
    yield "norm_wrong_axis", _norm_dx(e, other, Xhat=xhat_o, std=np.sqrt(var_o + e["eps"]))
    yield "norm_gamma_forgotten", _norm_dx(e, axis, D=e["dY"])
    if axis == 1:
        yield "norm_gamma_outside_means", e["gamma"] * _norm_dx(e, axis, D=e["dY"])
    yield "norm_sum_for_mean", _norm_dx(e, axis, mean_mu=total, mean_var=total)
    yield "norm_sum_for_mean", _norm_dx(e, axis, mean_mu=total)
    yield "norm_sum_for_mean", _norm_dx(e, axis, mean_var=total)


def _attention_env(rng, t, d, dv, causal) -> dict:
    Q, K = rng.normal(0.0, 1.0, (t, d)), rng.normal(0.0, 1.0, (t, d))
    V, dO = rng.normal(0.0, 1.0, (t, dv)), rng.normal(0.0, 1.0, (t, dv))
    S, P, O = oracle.attention_forward(Q, K, V, causal)
    env = {"Q": Q, "K": K, "V": V, "S": S, "P": P, "O": O, "dO": dO, "d": float(d),
           "t": float(t)}
    if causal:
        env["mask"] = np.tril(np.ones((t, t)))
    return env


def _attention_grads(e, wrt, P=None, *, elementwise=False, scale=True):
    """dQ, dK or dV from P (the masked one by default), each step replaceable by a mistake."""
    P = e["P"] if P is None else P
    if wrt == "V":
        return P.T @ e["dO"]
    dP = e["dO"] @ e["V"].T
    dS = dP * P * (1 - P) if elementwise else P * (dP - np.sum(dP * P, axis=1, keepdims=True))
    root = np.sqrt(e["d"]) if scale else 1.0
    return (dS @ e["K"] if wrt == "Q" else dS.T @ e["Q"]) / root


def _attention_mistakes(e, wrt, causal):
    if wrt != "V":
        yield "attention_softmax_elementwise", _attention_grads(e, wrt, elementwise=True)
        yield "attention_scale_forgotten", _attention_grads(e, wrt, scale=False)
    if wrt == "K":
        dP = e["dO"] @ e["V"].T
        dS = e["P"] * (dP - np.sum(dP * e["P"], axis=1, keepdims=True))
        yield "attention_dk_transpose_missing", dS @ e["Q"] / np.sqrt(e["d"])
    if wrt == "V":
        yield "attention_dv_transpose_missing", e["P"] @ e["dO"]
    if causal:
        P0 = oracle.attention_forward(e["Q"], e["K"], e["V"])[1]
        yield "attention_mask_ignored", _attention_grads(e, wrt, P0)
    for other in ("Q", "K", "V"):
        if other != wrt:
            yield "wrong_variable", _attention_grads(e, other)


def _finite_difference(layer, e, wrt, axis, causal) -> np.ndarray:
    """The central difference of E = Σ Y ⊙ dY (Σ O ⊙ dO) by the variable ``wrt``."""
    if layer == "attention":
        def loss(v):
            args = {"Q": e["Q"], "K": e["K"], "V": e["V"], wrt: v}
            return float(np.sum(oracle.attention_forward(
                args["Q"], args["K"], args["V"], causal)[2] * e["dO"]))
    else:
        def loss(v):
            args = {"X": e["X"], "gamma": e["gamma"], "beta": e["beta"], wrt: v}
            return float(np.sum(oracle.normalization_forward(
                args["X"], args["gamma"], args["beta"], e["eps"], axis)[3] * e["dY"]))
    return oracle.five_point_gradient(loss, np.array(e[wrt], dtype=float), 1e-5)


# --- the check -------------------------------------------------------------------------------


@dataclass
class _Draw:
    env: dict
    truth: np.ndarray
    mistakes: list
    size: str


def _draws(layer, wrt, causal, seed) -> list[_Draw]:
    rng = np.random.default_rng(seed)
    axis = 1 if layer == "layernorm" else 0
    draws = []
    for shape in _SHAPES["attention" if layer == "attention" else "norm"]:
        if layer == "attention":
            e = _attention_env(rng, *shape, causal)
            truth = _attention_grads(e, wrt)
            mistakes = list(_attention_mistakes(e, wrt, causal))
            size = "t = {}, d = {}, dv = {}".format(*shape)
        else:
            e = _norm_env(rng, *shape, axis)
            truth = _norm_truth(e, axis, wrt)
            mistakes = list(_norm_mistakes(e, axis, wrt))
            size = "m = {}, n = {}".format(*shape)
        if not _close(truth, _finite_difference(layer, e, wrt, axis, causal)):
            raise RuntimeError(f"internal error: the {layer} gradient by {wrt} disagrees with "
                               "finite differences; please report this")  # pragma: no cover
        draws.append(_Draw(e, truth, mistakes, size))
    return draws


def _close(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-12)
    return bool(np.all(np.abs(a - b) <= 1e-6 * scale + 1e-9))


def _same(G, T) -> bool:
    """Equal, a 1-D array read as the row or column of the same size it stands for."""
    if G.ndim == 1 and T.ndim == 2 and 1 in T.shape and G.size == T.size:
        G = G.reshape(T.shape)
    return _close(G, T)


_FACTORS = (("sign_flipped", lambda e: -1.0, "the sign is wrong"),
            ("scaled", lambda e: 2.0, "it is twice the gradient"),
            ("scaled", lambda e: 0.5, "it is half the gradient"),
            ("scaled", lambda e: e.get("m", 1.0), "it is m times the gradient"),
            ("scaled", lambda e: 1 / e.get("m", 1.0), "it is the gradient divided by m"),
            ("scaled", lambda e: e.get("n", 1.0), "it is n times the gradient"),
            ("scaled", lambda e: 1 / e.get("n", 1.0), "it is the gradient divided by n"))


def _diagnose(G_all, draws) -> tuple[str, str] | None:
    """(kind, the detail) of the one mistake that reproduces the formula on every draw."""
    for i, (kind, _) in enumerate(draws[0].mistakes):
        variants = [d.mistakes[i][1] for d in draws]
        if all(_close(v, d.truth) for v, d in zip(variants, draws, strict=True)):
            continue  # this mistake changes nothing here
        if all(_same(G, v) for G, v in zip(G_all, variants, strict=True)):
            return kind, ""
    for kind, factor, detail in _FACTORS:
        if all(_same(G, factor(d.env) * d.truth) for G, d in zip(G_all, draws, strict=True)):
            return kind, detail
    if all(G.shape == d.truth.T.shape != d.truth.shape and _close(G, d.truth.T)
           for G, d in zip(G_all, draws, strict=True)):
        return "transposed", ""
    return None


def check_layer(formula: str, *, layer: str, wrt: str | None = None, causal: bool = False,
                seed: int = 0) -> MatrixCheck:
    r"""Check the hand-written gradient ``formula`` of batch norm, layer norm or attention.

    Parameters
    ----------
    formula
        The gradient in NumPy notation. Batch and layer norm: ``X``, ``dY`` (the gradient from
        above), ``gamma``, ``beta`` (1 × n rows), ``mu``, ``var`` (the statistics: 1 × n for
        batch norm, m × 1 for layer norm), ``Xhat``, ``eps``, ``m``, ``n``; attention: ``Q``,
        ``K`` (t × d), ``V`` (t × dv), ``S``, ``P`` (t × t), ``O``, ``dO``, ``d``, ``t``
        (and ``mask``, 1 on and below the diagonal, with ``causal=True``). The operations of
        :func:`~chainrule.gradient_check.check_matrix`: ``@ .T + - * / **``, ``sum``, ``mean``
        (``axis=``, ``keepdims=True``), ``sqrt``, ``exp``, ``softmax`` (row by row), ...
    layer
        ``"batchnorm"``, ``"layernorm"`` or ``"attention"``.
    wrt
        ``"X"`` (default), ``"gamma"`` or ``"beta"``; for attention ``"Q"`` (default), ``"K"``
        or ``"V"``.
    causal
        Attention with the causal mask (each step attends to itself and the steps before).
    seed
        The random arrays are drawn from ``numpy.random.default_rng(seed)``.

    Returns
    -------
    MatrixCheck
        ``correct``, ``kind`` (a key of :data:`~chainrule.gradient_check.MISTAKES`) and
        ``sentence``, as :func:`~chainrule.gradient_check.check_matrix`.

    Raises
    ------
    MatrixFormulaError
        (a ValueError) for syntax outside the whitelist, unknown names or options.

    Examples
    --------
    >>> check_layer("dY.sum(axis=0)", layer="batchnorm", wrt="beta").correct
    True
    >>> result = check_layer("(dY * Xhat).sum(axis=1)", layer="batchnorm", wrt="gamma")
    >>> result.correct, result.kind
    (False, 'norm_wrong_axis')
    """
    layer = _layer(layer)
    names, variables, _ = LAYERS[layer]
    wrt = variables[0] if wrt is None else str(wrt).strip()
    if wrt not in variables:
        raise MatrixFormulaError(f"the {layer} check takes wrt= one of {', '.join(variables)}; "
                                 f"got wrt={wrt!r}.")
    if causal and layer != "attention":
        raise MatrixFormulaError(f"causal=True is for layer='attention'; got layer={layer!r}.")
    formula = read_notation(formula)  # Xᵀ, Ŷ, W₁ as the page prints them
    tree = parse_formula(formula)
    shown = " ".join(formula.split())
    draws = _draws(layer, wrt, bool(causal), seed)
    G_all = []
    for d in draws:
        try:
            G = evaluate_names(tree, shown, d.env, names)
        except ShapeMismatch as exc:
            return _verdict(layer, wrt, shown, draws, exc.kind, f"It has {_lower(str(exc))}")
        if not np.all(np.isfinite(G)):
            raise MatrixFormulaError(f"{shown!r} gives NaN or infinite values on finite arrays "
                                     f"({d.size}): a log or a division by 0 somewhere.")
        G_all.append(G)
    if all(_same(G, d.truth) for G, d in zip(G_all, draws, strict=True)):
        return _verdict(layer, wrt, shown, draws, None, "")
    found = _diagnose(G_all, draws)
    if found is None:
        return _verdict(layer, wrt, shown, draws, None, _unexplained(G_all[0], draws[0]))
    kind, detail = found
    entry = MISTAKES[kind]
    sentence = f"{entry.meaning[:1].upper()}{entry.meaning[1:]}"
    sentence += f" ({detail})" if detail else ""
    return _verdict(layer, wrt, shown, draws, kind, f"{sentence}. Fix: {entry.fix}.")


def _layer(layer) -> str:
    key = str(layer).strip().lower().replace("-", "_").replace("_", "")
    if key not in LAYERS:
        raise MatrixFormulaError(f"unknown layer={layer!r} for a layer check; use "
                                 f"{', '.join(repr(k) for k in LAYERS)}.")
    return key


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]


def _unexplained(G, draw) -> str:
    if G.shape != draw.truth.shape:
        return (f"Your formula gives a {'×'.join(map(str, G.shape)) or 'number'} array "
                f"({draw.size}), but the gradient has the shape of the variable, "
                f"{'×'.join(map(str, draw.truth.shape))}; no single mistake of the catalogue "
                "explains the rest.")
    idx = np.unravel_index(int(np.argmax(np.abs(G - draw.truth))), G.shape)
    return (f"No single mistake of the catalogue explains it: at [{', '.join(map(str, idx))}] "
            f"({draw.size}) your formula gives {G[idx]:.6g}, the gradient is "
            f"{draw.truth[idx]:.6g}.")


_TITLES = {"batchnorm": "batch normalization", "layernorm": "layer normalization",
           "attention": "scaled dot-product attention"}


def _verdict(layer, wrt, shown, draws, kind, sentence) -> MatrixCheck:
    right = LAYERS[layer][2][wrt]
    of = _TITLES[layer] + (" (training mode)" if layer != "attention" else "")
    subject = f"dE/d{wrt}"
    sizes = "; ".join(d.size for d in draws)
    correct = not sentence
    if correct:
        paragraph = (f"Correct: {shown} is {subject} of the {of}: {right}. Checked against "
                     f"float64 central finite differences on {len(draws)} random sets of "
                     f"arrays ({sizes}).")
    else:
        paragraph = (f"Not correct: your {subject}, {shown}, is not the gradient of the {of}, "
                     f"which is {right}. {sentence}")
    findings = [] if correct else [Finding(shown, (kind or "different").replace("_", " "),
                                           right, sentence)]
    shapes = {k: "×".join(map(str, np.shape(v))) or "number" for k, v in draws[0].env.items()}
    return MatrixCheck(
        correct=correct, kind=kind, where=None if correct else subject, sentence=paragraph,
        expected=right, formula=shown, derivative=right, simplified=right, variable=wrt, of=of,
        method="numeric", findings=findings, shapes=shapes,
        checked=[{"size": d.size} for d in draws])
