r"""Scaled dot-product attention (Vaswani et al., 2017, section 3.2.1), derived step by step.

For one head, queries :math:`Q` and keys :math:`K` (:math:`t \times d`), values :math:`V`
(:math:`t \times d_v`) and :math:`dO = \partial E/\partial O` from the layer above,

.. math::
    S = \frac{Q K^\top}{\sqrt d}\ (+M), \quad P = \operatorname{softmax}_{\text{rows}}(S), \quad
    O = P V ;

    dV = P^\top dO, \quad dP = dO\,V^\top, \quad
    dS = P \odot \big(dP - \operatorname{rowsum}(dP \odot P)\big), \quad
    dQ = \frac{dS\,K}{\sqrt d}, \quad dK = \frac{dS^\top Q}{\sqrt d} .

The third is the softmax Jacobian :math:`\operatorname{diag}(p) - p p^\top` applied to each row;
the element-wise :math:`dP \odot P \odot (1 - P)` keeps only its diagonal. A causal mask
:math:`M` (:math:`-\infty` above the diagonal) makes those entries of :math:`P` zero, so they
get no gradient and the formulas hold unchanged. Every claim is evaluated with NumPy on random
arrays of three shapes, with and without the mask, and compared with central differences of a
forward pass written apart from :mod:`chainrule.nn.attention`
(:func:`chainrule._oracle.attention_forward`).
"""

from __future__ import annotations

import functools

import numpy as np

from chainrule._oracle import attention_forward
from chainrule.derivation.layernodes import Div, Group, Sqrt, numeric, verify_claims
from chainrule.derivation.matrix import Had, MatMul, RowSum, Sub, Sym, T
from chainrule.derivation.vresult import Claim, VectorDerivation, VStep

__all__ = ["derive_attention"]

_SHAPES = ((3, 2, 2), (4, 3, 2), (2, 2, 3))  # (t, d, dv)


class _Names:
    Q = Sym("Q", "Q", "Q", ("t", "d"))
    K = Sym("K", "K", "K", ("t", "d"))
    V = Sym("V", "V", "V", ("t", "dᵥ"))
    P = Sym("P", "P", "P", ("t", "t"))
    dO = Sym("dO", "dO", "dO", ("t", "dᵥ"))
    dP = Sym("dP", "dP", "dP", ("t", "t"))
    dS = Sym("dS", "dS", "dS", ("t", "t"))
    root = Sqrt(Sym("d", "d", "d", ("1", "1")))


def _softmax_backward(P, dP):
    return Had(P, Sub(dP, RowSum(Had(dP, P))))


def _steps(n=_Names) -> list[VStep]:
    dS = _softmax_backward(n.P, n.dP)
    return [
        VStep("definition", "Forward, stage by stage",
              "the scores of every query against every key, scaled by √d so that their spread "
              "does not grow with d; each row of P is a softmax over the keys", [
                  Claim(("S", "S", "S"), Div(MatMul(n.Q, T(n.K)), n.root), "S"),
                  Claim(("O", "O", "O"), MatMul(n.P, n.V), "O")]),
        VStep("chain", "Through O = P V",
              "the matrix product rule for C = A B: dA = dC Bᵀ, dB = Aᵀ dC", [
                  Claim(("dV", "dV", "dV"), MatMul(T(n.P), n.dO), "dV"),
                  Claim(("dP", "dP", "dP"), MatMul(n.dO, T(n.V)), "dP")]),
        VStep("jacobian", "Through the softmax of each row",
              "row i of P depends on row i of S only: ∂P_ij/∂S_ik = P_ij(δ_jk - P_ik) "
              "(chainrule derive softmax), so dS_ik = Σ_j dP_ij P_ij (δ_jk - P_ik) = "
              "P_ik (dP_ik - Σ_j dP_ij P_ij)",
              [Claim(("dS", "dS", "dS"), dS, "dS")]),
        VStep("property", "Why not dP ⊙ P ⊙ (1 - P)",
              "that element-wise form keeps only the diagonal j = k of the Jacobian "
              "diag(p) - p pᵀ; every P_ik moves when any score of its row moves (they share "
              "the denominator), and the dropped off-diagonal terms are",
              [Claim(("dS - dP ⊙ P ⊙ (1 - P)", r"dS - dP \odot P \odot (1 - P)", "dS_offdiag"),
                     Had(n.P, Sub(Had(n.P, n.dP), RowSum(Had(n.dP, n.P)))), "offdiag")]),
        VStep("chain", "Through S = Q Kᵀ / √d",
              "the product rule again, with the factor 1/√d of the scores", [
                  Claim(("dQ", "dQ", "dQ"), Div(MatMul(n.dS, n.K), n.root), "dQ"),
                  Claim(("dK", "dK", "dK"), Div(MatMul(T(n.dS), n.Q), n.root), "dK")]),
        VStep("mask", "The causal mask",
              "S_ij + M_ij with M_ij = -∞ for j > i gives P_ij = 0 above the diagonal, so "
              "dS_ij = P_ij(...) = 0 there: a masked score gets no gradient, and the formulas "
              "above hold unchanged with the masked P (checked with and without the mask)"),
    ]


def _results(n=_Names) -> dict[str, Claim]:
    """dQ, dK, dV written with the arrays of the forward pass and dO only."""
    dS = _softmax_backward(n.P, MatMul(n.dO, T(n.V)))
    return {"dQ": Claim(("dQ", "dQ", "dQ"), Div(MatMul(Group(dS), n.K), n.root), "dQ"),
            "dK": Claim(("dK", "dK", "dK"), Div(MatMul(T(dS), n.Q), n.root), "dK"),
            "dV": Claim(("dV", "dV", "dV"), MatMul(T(n.P), n.dO), "dV")}


def _draws():
    rng = np.random.default_rng(31)
    for t, d, dv in _SHAPES:
        for causal in (False, True):
            Q, K = rng.normal(0.0, 1.0, (t, d)), rng.normal(0.0, 1.0, (t, d))
            V, G = rng.normal(0.0, 1.0, (t, dv)), rng.normal(0.0, 1.0, (t, dv))
            S, P, O = attention_forward(Q, K, V, causal)

            def loss(q=Q, k=K, v=V, s=None, p=None, causal=causal, G=G):
                return float(np.sum(attention_forward(q, k, v, causal, s, p)[2] * G))

            dS = numeric(lambda s: loss(s=s), S)
            dP = numeric(lambda p: loss(p=p), P)
            truths = {"S": S, "O": O, "dV": numeric(lambda v: loss(v=v), V), "dP": dP,
                      "dS": dS, "offdiag": dS - dP * P * (1 - P),
                      "dQ": numeric(lambda q: loss(q=q), Q),
                      "dK": numeric(lambda k: loss(k=k), K)}
            env = {"Q": Q, "K": K, "V": V, "P": P, "dO": G, "d": float(d)}
            yield env, truths, f"t = {t}, d = {d}, dv = {dv}{', causal' if causal else ''}"


def derive_attention() -> VectorDerivation:
    """The derivation of scaled dot-product attention, every claim checked."""
    return _derive()


@functools.lru_cache(maxsize=1)
def _derive() -> VectorDerivation:
    steps = _steps()
    result = _results()
    verify_claims([c for s in steps for c in s.claims], _draws())
    verify_claims(list(result.values()), _draws())
    return VectorDerivation(
        kind="attention", title="Backpropagation through scaled dot-product attention",
        steps=steps, result=result,
        shapes={"Q": ("t", "d"), "K": ("t", "d"), "V": ("t", "dᵥ"), "S": ("t", "t"),
                "P": ("t", "t"), "O": ("t", "dᵥ"), "dO": ("t", "dᵥ"), "d": ("1", "1")},
        symbols=[("Q, K", "t × d", "the queries and keys, one step per row"),
                 ("V", "t × dᵥ", "the values"),
                 ("S, P", "t × t", "the scores and their softmax over each row"),
                 ("O", "t × dᵥ", "the output"),
                 ("dO", "t × dᵥ", "∂E/∂O, the gradient from the layer above"),
                 ("d", "", "the width of a query (d_k)")],
        variable="Q, K, V", function="O = softmax_rows(Q Kᵀ / √d) V",
        checked=("every formula against float64 central differences of a forward pass "
                 "written apart from the layer, on random arrays (t, d, dᵥ = 3, 2, 2; 4, 3, 2; "
                 "2, 2, 3), with and without the causal mask"),
        assumptions=["one head; multi-head attention applies this to each head's columns"],
    )
