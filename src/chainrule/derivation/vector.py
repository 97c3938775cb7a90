r"""Vector derivations: the softmax and log-softmax Jacobians, and a loss summed over K outputs.

:func:`softmax_jacobian` derives :math:`\partial p_i/\partial z_j` for
:math:`p_i = e^{z_i}/\sum_k e^{z_k}` by the quotient rule, case by case, joins the cases with
the Kronecker delta into :math:`p_i(\delta_{ij} - p_j)`, writes the matrix
:math:`\operatorname{diag}(p) - p p^\top` and states its properties (symmetric, rows summing to
0, rank :math:`K - 1`). :func:`vector_composition` derives :math:`\partial E/\partial z_j` of a
loss summed over K outputs through the explicit sum over k.

Both are checked before they are returned: the cases with SymPy on three classes, and every
formula with NumPy against central finite differences for K = 2, 3 and 5.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy

from chainrule.derivation.delta import Names, loss_text, output_delta, refuse
from chainrule.derivation.vcheck import activation_numpy, compare, softmax, targets, verify_once
from chainrule.derivation.vresult import Claim, VectorDerivation, VStep

__all__ = ["softmax_jacobian", "vector_composition"]

_SIZES = (2, 3, 5)


def _fd_jacobian(f, zv: np.ndarray) -> np.ndarray:
    K = zv.size
    J = np.zeros((K, K))
    for j in range(K):
        h = 1e-6 * max(1.0, abs(zv[j]))
        up, down = zv.copy(), zv.copy()
        up[j] += h
        down[j] -= h
        J[:, j] = (f(up[None, :])[0] - f(down[None, :])[0]) / (2 * h)
    return J


def _check_cases_symbolically(log: bool) -> None:
    zs = sympy.symbols("z1:4", real=True)
    s = sum(sympy.exp(v) for v in zs)
    p = [sympy.exp(v) / s for v in zs]
    f = [sympy.log(pi) for pi in p] if log else p
    same = sympy.diff(f[0], zs[0]) - ((1 - p[0]) if log else p[0] * (1 - p[0]))
    other = sympy.diff(f[0], zs[1]) - ((-p[1]) if log else -p[0] * p[1])
    if sympy.cancel(same) != 0 or sympy.cancel(other) != 0:
        raise RuntimeError("Internal error: the softmax Jacobian's cases disagree with "
                           "sympy.diff; please report this.")


def softmax_jacobian(log: bool = False) -> VectorDerivation:
    """The Jacobian of softmax (or log-softmax), step by step, checked.

    1. the two cases, i = j and i ≠ j, checked with SymPy on three classes;
    2. the steps: the definition, the derivative case by case, the cases joined by the
       Kronecker delta, the K × K matrix and its properties;
    3. every formula and property checked against central differences for K = 2, 3, 5.
    """
    _check_cases_symbolically(log)
    steps, result, title = _log_softmax_steps() if log else _softmax_steps()
    checked = _verify_jacobian(steps, log)
    return VectorDerivation(
        kind="jacobian", title=title, steps=steps, result=result,
        shapes={"z": ("1", "K"), "p": ("1", "K"), "J": ("K", "K")},
        symbols=[("z", "K", "the scores"), ("p = softmax(z)", "K", "the probabilities"),
                 ("J", "K × K", "J_ij = ∂" + ("log p_i" if log else "p_i") + "/∂z_j"),
                 ("δ_ij", "", "the Kronecker delta"), ("1", "K", "a vector of ones")],
        variable="z", function="logsoftmax(z)" if log else "softmax(z)", checked=checked,
        assumptions=[],
    )


def _jacobian_cases(env, *, log: bool) -> np.ndarray:
    """The Jacobian entry by entry, case by case (i = j or not)."""
    p = env["p"]
    K = p.size
    J = np.empty((K, K))
    for i in range(K):
        for j in range(K):
            if log:
                J[i, j] = 1 - p[j] if i == j else -p[j]
            else:
                J[i, j] = p[i] * (1 - p[i]) if i == j else -p[i] * p[j]
    return J


def _jacobian_delta(env, *, log: bool) -> np.ndarray:
    """The Jacobian from the Kronecker-delta formula."""
    p = env["p"]
    delta = np.eye(p.size)
    return delta - p[None, :] if log else p[:, None] * (delta - p[None, :])


def _jacobian_matrix(env, *, log: bool) -> np.ndarray:
    """The Jacobian from the matrix formula."""
    p = env["p"]
    return np.eye(p.size) - np.outer(np.ones(p.size), p) if log else (
        np.diag(p) - np.outer(p, p))


def _entry_claim(lhs, index, evaluate, log: bool) -> Claim:
    """A claim about the entry ``J_ij`` (``lhs``), written as ``index``, checked by ``evaluate``."""
    return Claim(lhs, index=index, evaluate=functools.partial(evaluate, log=log), check="J")


def _kronecker_step(lhs, index, log: bool) -> VStep:
    return VStep("kronecker", "Kronecker delta",
                 "with δ_ij = 1 if i = j and 0 otherwise, both cases are one formula",
                 [_entry_claim(lhs, index, _jacobian_delta, log)])


def _matrix_step(explanation: str, index, log: bool) -> VStep:
    return VStep("matrix", "Matrix form", explanation,
                 [Claim(("J", "J", "J"), index=index,
                        evaluate=functools.partial(_jacobian_matrix, log=log), check="J")])


def _log_softmax_steps():
    """The steps of ∂log p_i/∂z_j, its result claims and its title."""
    lhs = ("∂log p_i/∂z_j", r"\frac{\partial \log p_i}{\partial z_j}", "J")
    steps = [
        VStep("definition", "Definition",
              "log p_i = z_i - log Σ_k e^(z_k) (the log of p_i = e^(z_i)/Σ_k e^(z_k))"),
        VStep("chain", "Differentiate (sum rule, chain rule on the log)",
              "∂z_i/∂z_j is 1 if i = j and 0 otherwise; ∂/∂z_j log Σ_k e^(z_k) = "
              "e^(z_j)/Σ_k e^(z_k) = p_j",
              [_entry_claim(lhs, ("1 - p_j if i = j; -p_j if i ≠ j",
                                  r"1 - p_j \ (i = j),\ -p_j \ (i \ne j)"), _jacobian_cases,
                            log=True)]),
        _kronecker_step(lhs, ("δ_ij - p_j", r"\delta_{ij} - p_j"), log=True),
        _matrix_step("row i of the K × K Jacobian is e_iᵀ - pᵀ",
                     ("I - 1 pᵀ", r"I - \mathbf{1} p^\top"), log=True),
        VStep("property", "Properties",
              "every row of J is e_iᵀ - pᵀ; J 1 = 1 - 1 (Σ_j p_j) = 0, so J is singular: "
              "adding a constant to every z_j leaves log-softmax unchanged. For "
              "cross-entropy on log-probabilities, E = -Σ_i t_i log p_i, the chain rule "
              "gives ∂E/∂z_j = -Σ_i t_i(δ_ij - p_j) = p_j Σ_i t_i - t_j = p_j - t_j when "
              "Σ_i t_i = 1"),
    ]
    result = {"J": steps[3].claims[0], "dlogp_i/dz_j": steps[2].claims[0]}
    return steps, result, "Jacobian of log_softmax: ∂log p_i/∂z_j"


def _softmax_steps():
    """The steps of ∂p_i/∂z_j, its result claims and its title."""
    lhs = ("∂p_i/∂z_j", r"\frac{\partial p_i}{\partial z_j}", "J")
    steps = [
        VStep("definition", "Definition",
              "p_i = e^(z_i)/S with S = Σ_k e^(z_k), for i = 1..K; ∂S/∂z_j = e^(z_j)"),
        VStep("quotient", "Quotient rule",
              "∂p_i/∂z_j = ((∂e^(z_i)/∂z_j)·S - e^(z_i)·e^(z_j))/S², and ∂e^(z_i)/∂z_j "
              "is e^(z_i) if i = j and 0 otherwise: two cases"),
        VStep("case", "The two cases",
              "i = j: (e^(z_i)·S - e^(z_i)·e^(z_i))/S² = e^(z_i)/S - (e^(z_i)/S)² "
              "= p_i - p_i²; i ≠ j: (0 - e^(z_i)·e^(z_j))/S² = -p_i p_j",
              [_entry_claim(lhs, ("p_i(1 - p_i) if i = j; -p_i p_j if i ≠ j",
                                  r"p_i(1 - p_i)\ (i = j),\ -p_i p_j\ (i \ne j)"),
                            _jacobian_cases, log=False)]),
        _kronecker_step(lhs, ("p_i(δ_ij - p_j)", r"p_i(\delta_{ij} - p_j)"), log=False),
        _matrix_step("the K × K Jacobian: p_i δ_ij is the diagonal matrix of p, p_i p_j the "
                     "outer product p pᵀ",
                     ("diag(p) - p pᵀ", r"\operatorname{diag}(p) - p p^\top"), log=False),
        VStep("property", "Properties",
              "J is symmetric (J_ij = J_ji = -p_i p_j off the diagonal); every row sums to "
              "0 (Σ_j p_i(δ_ij - p_j) = p_i - p_i Σ_j p_j = 0), so J 1 = 0 and J is singular "
              "with rank K - 1: adding a constant to every z_j leaves p unchanged. Hence "
              "the gradient J g of any loss has components summing to 0, and for "
              "cross-entropy J(-t/p) = p Σ_k t_k - t equals p - t only when Σ_k t_k = 1"),
    ]
    result = {"J": steps[4].claims[0], "dp_i/dz_j": steps[3].claims[0]}
    return steps, result, "Jacobian of softmax: ∂p_i/∂z_j"


def _verify_jacobian(steps, log: bool) -> str:
    rng = np.random.default_rng(7)
    f = activation_numpy("log_softmax" if log else "softmax")
    for K in _SIZES:
        for scale in (1.0, 4.0):
            zv = rng.normal(0.0, scale, K)
            p = softmax(zv[None, :])[0]
            num = _fd_jacobian(f, zv)
            for step in steps:
                for c in step.claims:
                    compare(f"{c.lhs[0]} = {c.rhs('text')}", c.value({"p": p}), num,
                             f"K = {K}")
            J = num
            row_sums = J.sum(axis=1)
            rank = np.linalg.matrix_rank(J, tol=1e-7)
            if not (np.allclose(row_sums, 0, atol=1e-7) and rank == K - 1
                    and (log or np.allclose(J, J.T, atol=1e-7))):
                raise RuntimeError("Internal error: a stated property of the Jacobian fails "
                                   f"numerically for K = {K}; please report this.")
    return (f"every formula against float64 central differences of {'log_' if log else ''}"
            "softmax for K = 2, 3, 5; "
            "the rows sum to 0, the rank is K - 1" + ("" if log else ", J is symmetric"))


def vector_composition(act: str, lss: str, *, half: bool = False) -> VectorDerivation:
    r"""``∂E/∂z`` for a loss summed over K outputs ``ŷ_k = g(z_k)``, through the sum over k."""
    refuse((act,), lss)
    n = Names((act,), single=True)
    loss_words = loss_text(lss, half)[0].replace("L_i = ", "").replace("_ik", "_k")
    loss_words = loss_words.replace(" on the logits Z_L", "")
    if act == "softmax":
        loss_words = loss_words.replace("ŷ_k", "p_k")
    steps = [VStep("definition", "Setup",
                   f"E = {loss_words} over the K outputs of one sample, "
                   + ("p = softmax(z)" if act == "softmax" else
                      f"ŷ_k = {act}(z_k)" if lss not in ("bce_with_logits", "ce_with_logits")
                      else "on the scores z"))]
    if act == "softmax" or lss == "ce_with_logits":
        sum_rule = ("∂E/∂z_j = Σ_k (∂E/∂p_k)(∂p_k/∂z_j): every p_k depends on every z_j "
                    "through the softmax's denominator, so no term of the sum vanishes; "
                    "∂p_k/∂z_j = p_k(δ_kj - p_j) (chainrule derive softmax)")
    elif act == "identity" or lss == "bce_with_logits":
        sum_rule = ("∂E/∂z_j = Σ_k (∂E/∂ŷ_k)(∂ŷ_k/∂z_j) with ∂ŷ_k/∂z_j = δ_kj: only "
                    "k = j is left")
    else:
        sum_rule = (f"∂E/∂z_j = Σ_k (∂E/∂ŷ_k)(∂ŷ_k/∂z_j); ŷ_k = {act}(z_k) depends on z_k "
                    f"only, so ∂ŷ_k/∂z_j = {act}'(z_j)·δ_kj (the Jacobian is diagonal) and "
                    "only k = j is left")
    steps.append(VStep("chain", "Chain rule through the sum over k", sum_rule))
    assumptions: list[str] = []
    output_delta((act,), lss, half, n, steps, assumptions)
    assumptions = [_one_sample(a) for a in assumptions]
    for step in steps[2:]:
        step.explanation = _one_sample(step.explanation)
        for c in step.claims:
            c.lhs = (_one_sample(c.lhs[0]), c.lhs[1].replace("L", "E"), c.lhs[2])
    final = steps[-1].claims[-1]
    checked = _verify_vector(steps, act, lss, half)
    return VectorDerivation(
        kind="vector", title=f"∂E/∂z for {act} + {lss}{' (half)' if half else ''} over K "
                             "outputs", steps=steps, result={"dE/dz": final},
        shapes={"z": ("1", "K"), "yhat": ("1", "K"), "t": ("1", "K")},
        symbols=[("z", "1 × K", "the scores of one sample"),
                 ("ŷ or p", "1 × K", "the outputs"), ("t", "1 × K", "the targets"),
                 ("1", "K × 1", "a column of ones: (a) 1 = Σ_k a_k")],
        variable="z", function=loss_words, checked=checked, assumptions=assumptions,
    )


def _verify_vector(steps, act, lss, half) -> str:
    rng = np.random.default_rng(11)
    f = activation_numpy(act)
    claims = [c for s in steps for c in s.claims if c.check is not None]
    for K in _SIZES:
        for normalised in ((True, False) if lss in ("ce", "ce_with_logits") else (True,)):
            X = rng.normal(0.0, 1.0, (1, 2))
            W = rng.normal(0.0, 1.0, (2, K))
            b = rng.normal(0.0, 0.5, (1, K))
            T = targets(lss, rng, (1, K), normalised)
            verify_once(claims, (act,), [f], lss, half, X, [W], [b], T, normalised,
                         f"K = {K}")
    return "every formula against float64 central differences for K = 2, 3, 5"


_ONE_SAMPLE = (
    ("every row of T sums to 1 (Σ_k t_ik = 1)", "the targets sum to 1, Σ_k t_k = 1"),
    ("each row of T sums to 1", "the targets sum to 1"),
    ("T 1 = 1", "Σ_k t_k = 1"), ("P ⊙ (T 1) - T", "p Σ_k t_k - t"), ("P - T", "p - t"),
    ("Δ_ij", "∂E/∂z_j"), ("_ik", "_k"), ("_ij", "_j"), ("∂L/∂", "∂E/∂"),
)


def _one_sample(text: str) -> str:
    """The batch wording of the output-delta step, for one sample's vectors."""
    for old, new in _ONE_SAMPLE:
        text = text.replace(old, new)
    return text
