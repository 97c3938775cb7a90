r"""The output delta of a dense network, and what every matrix derivation shares.

The names of a network's arrays (:class:`Names`), the derivative :math:`g'` of each activation
as a matrix node, the loss of one row in index notation (:func:`loss_text`), the refusal of a
network the chain rule cannot go through (:func:`refuse`) and the output delta
:math:`\Delta_L = m\,\partial E/\partial Z_L` (:func:`output_delta`), in one of four forms:

- a with-logits BCE: :math:`\sigma(Z_L) - T`, the sigmoid being the loss's own;
- softmax + CE or CE with logits: through the sum over the classes, then :math:`P - T` when the
  rows of :math:`T` sum to 1;
- a softmax or log-softmax output under another loss: its Jacobian applied to each row;
- an elementwise output: :math:`\partial L/\partial \hat Y \odot g'(Z_L)`, fused into one
  element-wise formula where the product simplifies (sigmoid + BCE: :math:`\hat Y - T`).

:mod:`~chainrule.derivation.network` (layers) and :mod:`~chainrule.derivation.vector` (one
sample's K outputs) both build on it.
"""

from __future__ import annotations

import functools

import sympy

from chainrule import losses as _losses
from chainrule.derivation import library
from chainrule.derivation.domain import set_text
from chainrule.derivation.functions import sigmoid
from chainrule.derivation.matrix import Elem, Had, Node, RowSum, Sub, Sym
from chainrule.derivation.simplify import orient
from chainrule.derivation.symbols import alpha, delta, t, y, yhat, z
from chainrule.derivation.vresult import Claim, VStep

__all__ = [
    "NUMBERS",
    "Names",
    "gprime",
    "gprime_latex",
    "gprime_node",
    "gprime_text",
    "loss_grad",
    "loss_text",
    "output_delta",
    "refuse",
    "sub",
]

#: Numbers for the activations' and losses' parameters in the numerical check.
NUMBERS = {alpha: 0.3, delta: 0.5}

# One row's loss in index notation (text, LaTeX), by the core's loss names.
_LOSS_TEXT = {
    "mse": ("L_i = Σ_k (ŷ_ik - t_ik)²", r"L_i = \sum_k (\hat y_{ik} - t_{ik})^2"),
    "mse_half": ("L_i = ½ Σ_k (ŷ_ik - t_ik)²", r"L_i = \frac12 \sum_k (\hat y_{ik} - t_{ik})^2"),
    "bce": ("L_i = -Σ_k [t_ik log ŷ_ik + (1 - t_ik) log(1 - ŷ_ik)]",
            r"L_i = -\sum_k [t_{ik} \log \hat y_{ik} + (1 - t_{ik}) \log(1 - \hat y_{ik})]"),
    "ce": ("L_i = -Σ_k t_ik log ŷ_ik", r"L_i = -\sum_k t_{ik} \log \hat y_{ik}"),
    "huber": ("L_i = Σ_k huber_δ(ŷ_ik - t_ik)",
              r"L_i = \sum_k \mathrm{huber}_\delta(\hat y_{ik} - t_{ik})"),
    "bce_with_logits": ("L_i = Σ_k [softplus(z_ik) - t_ik z_ik] on the logits Z_L",
                        r"L_i = \sum_k [\mathrm{softplus}(z_{ik}) - t_{ik} z_{ik}]"),
    "ce_with_logits": ("L_i = -Σ_k t_ik log softmax(z_i)_k on the logits Z_L",
                       r"L_i = -\sum_k t_{ik} \log \mathrm{softmax}(z_i)_k"),
}


def loss_text(lss: str, half: bool = False) -> tuple[str, str]:
    """One row's loss ``lss`` in index notation, (text, LaTeX): ``L_i = -Σ_k t_ik log ŷ_ik``."""
    return _LOSS_TEXT["mse_half" if lss == "mse" and half else lss]


# --- symbols ----------------------------------------------------------------------------------


def sub(n: int) -> str:
    """``n`` as subscript digits: ``sub(12) == "₁₂"``."""
    return str(n).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


class Names:
    """The named arrays of an L-layer network (``single``: one sample's row vectors)."""

    def __init__(self, acts: tuple[str, ...], single: bool = False):
        L = len(acts)
        self.L = L
        if single:
            self._single(acts)
            return
        self.X = Sym("X", "X", "X", ("m", "n0"))
        self.W = {l: Sym(f"W{l}", f"W{sub(l)}", f"W_{l}", (f"n{l-1}", f"n{l}"))
                  for l in range(1, L + 1)}
        self.b = {l: Sym(f"b{l}", f"b{sub(l)}", f"b_{l}", ("1", f"n{l}"))
                  for l in range(1, L + 1)}
        self.Z = {l: Sym(f"Z{l}", f"Z{sub(l)}", f"Z_{l}", ("m", f"n{l}"))
                  for l in range(1, L + 1)}
        self.H = {0: self.X}
        for l in range(1, L):
            self.H[l] = Sym(f"H{l}", f"H{sub(l)}", f"H_{l}", ("m", f"n{l}"))
        out = "P" if acts[-1] == "softmax" else "Yhat"
        self.H[L] = Sym(out, "P" if out == "P" else "Ŷ", "P" if out == "P" else r"\hat Y",
                        ("m", f"n{L}"))
        self.T = Sym("T", "T", "T", ("m", f"n{L}"))
        self.D = {l: Sym(f"D{l}", f"Δ{sub(l)}", rf"\Delta_{l}", ("m", f"n{l}"))
                  for l in range(1, L + 1)}

    def _single(self, acts):
        dims = ("1", "K")
        self.X = Sym("X", "x", "x", ("1", "n0"))
        self.W = {1: Sym("W1", "W", "W", ("n0", "K"))}
        self.b = {1: Sym("b1", "b", "b", dims)}
        self.Z = {1: Sym("Z1", "z", "z", dims)}
        out = "P" if acts[-1] == "softmax" else "Yhat"
        self.H = {0: self.X, 1: Sym(out, "p" if out == "P" else "ŷ",
                                     "p" if out == "P" else r"\hat y", dims)}
        self.T = Sym("T", "t", "t", dims)
        self.D = {1: Sym("D1", "∂E/∂z", r"\frac{\partial E}{\partial z}", dims)}


# --- derivatives of the activations ------------------------------------------------------------


# --- derivatives of the activations ------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def gprime(act: str) -> tuple[sympy.Expr, str]:
    """g' as a scalar formula and the variable it is written in: ``"out"`` (yhat) or ``"in"`` (z).

    ReLU and leaky ReLU are written in z (``[Z > 0]``); an invertible activation in its output
    (``H(1 - H)``); the others (GELU, SiLU, Mish, Gaussian) in z.
    """
    out = library.output_derivative(act, yhat)
    if out is not None and act not in ("relu", "leaky_relu", "identity"):
        return out, "out"
    return sympy.diff(library.activation_expr(act, z), z), "in"


def gprime_node(act: str, l: int, n: Names) -> Node:
    expr, where = gprime(act)
    return Elem(expr, {yhat: n.H[l]} if where == "out" else {z: n.Z[l]}, NUMBERS)


def gprime_text(act: str, l: int, n: Names | None = None) -> str:
    return f"{act}'({n.Z[l].text if n is not None else 'Z' + sub(l)})"


def gprime_latex(act: str, l: int) -> str:
    name = act.replace("_", r"\_")
    return rf"\mathrm{{{name}}}'(Z_{l})"


def refuse(acts: tuple[str, ...], lss: str) -> None:
    """Refuse, naming the fix, a network the chain rule cannot go through: a binary step (no
    gradient), an activation before a with-logits loss, an output outside the loss's domain."""
    for i, a in enumerate(acts, 1):
        if a == "binary_step":
            raise ValueError(
                f"Layer {i}'s activation binary_step has derivative 0 wherever it is defined "
                "(and none at 0), so no gradient reaches the layers before it; use sigmoid, "
                "its smooth version.")
    out = acts[-1]
    library.refuse_logits_pairing(out, lss)
    if library.LOSS_INFO[lss].on_logits:
        return
    domain = library.LOSS_INFO[lss].domain
    if out == "log_softmax":
        rng = sympy.Interval.open(-sympy.oo, 0)
    elif out == "softmax":
        rng = sympy.Interval.open(0, 1)
    else:
        rng = library.ACTIVATION_INFO[out].range
    rng = rng.subs(NUMBERS) if rng.free_symbols else rng
    if not rng.is_subset(domain):
        cls = _losses.LOSSES[lss]
        raise ValueError(
            f"The output activation {out} takes values in {set_text(rng)}, outside {lss}'s "
            f"domain {set_text(domain)}, so the loss is undefined for some outputs; use "
            f"{cls.fuses_with} as the last activation, or {cls.logits_loss} on an identity "
            "output.")


# --- the output delta ---------------------------------------------------------------------------


def loss_grad(lss: str, half: bool) -> sympy.Expr:
    """dL/dyhat for one output (y is the target)."""
    E = library.loss_expr(lss, yhat, y, half=half)
    d = sympy.diff(E, yhat)
    if isinstance(d, sympy.Piecewise) or d.has(sympy.Piecewise):
        return sympy.piecewise_fold(d)
    return orient(sympy.factor(sympy.cancel(d)))


def fused_delta(dl: sympy.Expr, act: str) -> sympy.Expr | None:
    """dL/dyhat · g'(yhat) simplified, when it is simpler than the product."""
    gp, where = gprime(act)
    if where != "out" or dl.has(sympy.Piecewise) or gp.has(sympy.Piecewise):
        return None
    prod = dl * gp
    try:
        simple = orient(sympy.factor(sympy.cancel(prod)))
    except (sympy.PolynomialError, NotImplementedError):
        return None
    if sympy.count_ops(simple) < sympy.count_ops(dl) + sympy.count_ops(gp):
        return simple
    return None


def output_delta(acts, lss, half, n: Names, steps: list[VStep], assumptions: list[str]) -> Node:
    """Append the output-delta steps to ``steps``; return the node of Δ_L (what the recursion
    uses). ``assumptions`` receives what the result assumes of the targets."""
    out = acts[-1]
    if lss == "bce_with_logits":
        return _bce_logits_delta(n, steps)
    if lss == "ce_with_logits" or (out == "softmax" and lss == "ce"):
        return _softmax_ce_delta(n, out, steps, assumptions)
    dl = loss_grad(lss, half)
    Y = n.H[n.L]
    G = Elem(dl.subs(y, t), {yhat: Y, t: n.T}, NUMBERS)
    gclaim = Claim(("∂L/∂" + Y.text, r"\frac{\partial L}{\partial " + Y.latex + "}", "G"), G,
                   check="G")
    if out in ("softmax", "log_softmax"):
        return _row_jacobian_delta(n, out, gclaim, steps)
    if out == "identity":
        steps.append(VStep("chain", "Output delta (chain rule; identity output)",
                           f"g'(z) = 1, so {n.D[n.L].text} = ∂L/∂{Y.text}",
                           [Claim(_lhs(n), G, check=f"D{n.L}")]))
        return G
    return _elementwise_delta(n, out, dl, gclaim, steps)


def _lhs(n: Names) -> tuple[str, str, str]:
    D = n.D[n.L]
    return D.text, D.latex, D.py


def _bce_logits_delta(n: Names, steps: list[VStep]) -> Node:
    """Δ_L = σ(Z_L) - T: the with-logits BCE differentiated at the logits."""
    dz = Elem(sigmoid(z) - y, {z: n.Z[n.L], y: n.T})
    steps.append(VStep(
        "chain", "Output delta (chain rule, fused)",
        "d/dz [softplus(z) - t·z] = σ(z) - t for each output, so the delta of the logits "
        "needs no separate activation derivative",
        [Claim(_lhs(n), dz, check=f"D{n.L}")]))
    return dz


def _softmax_ce_delta(n: Names, out: str, steps: list[VStep], assumptions: list[str]) -> Node:
    """Δ_L through the sum over the classes, then P - T where the rows of T sum to 1."""
    L, Tn, D = n.L, n.T, n.D[n.L]
    P = n.H[L] if out == "softmax" else Sym("P", "P", "P", D.dims)
    general = Sub(Had(P, RowSum(Tn)), Tn)
    fused = Sub(P, Tn)
    claims = []
    if out == "softmax":
        lhs = (f"∂L/∂{P.text}", rf"\frac{{\partial L}}{{\partial {P.latex}}}", "G")
        claims.append(Claim(lhs, Elem(-t / yhat, {t: Tn, yhat: P}), check="G"))
    steps.append(VStep(
        "chain", "Output delta (chain rule through the sum over k)",
        "Δ_ij = Σ_k (∂L/∂p_ik)(∂p_ik/∂z_ij) = Σ_k (-t_ik/p_ik)·p_ik(δ_kj - p_ij) "
        "= -t_ij + p_ij Σ_k t_ik: the softmax Jacobian p_k(δ_kj - p_j) cancels the 1/p_k",
        [*claims, Claim(_lhs(n), general, check=f"D{L}")]))
    steps.append(VStep(
        "assumption", "Output delta (fused)",
        "each row of T sums to 1 (one-hot labels or a distribution), so T 1 = 1 and the "
        "delta is P - T; with soft or unnormalised targets keep P ⊙ (T 1) - T",
        [Claim(_lhs(n), fused, check=f"D{L}", assumes_normalised=True)]))
    assumptions.append("every row of T sums to 1 (Σ_k t_ik = 1); otherwise "
                       f"{D.text} = P ⊙ (T 1) - T")
    return fused


def _row_jacobian_delta(n: Names, out: str, gclaim: Claim, steps: list[VStep]) -> Node:
    """Δ_L for a softmax or log-softmax output: its Jacobian applied to each row of G."""
    Y, D = n.H[n.L], n.D[n.L]
    G = Sym("G", "G", "G", D.dims)
    jvp = (Had(Y, Sub(G, RowSum(Had(G, Y)))) if out == "softmax"
           else Sub(G, Had(Sym("P", "P", "P", D.dims), RowSum(G))))
    rule = ("the softmax Jacobian diag(p) - p pᵀ applied to each row: "
            "Δ_ij = Σ_k G_ik p_ik(δ_kj - p_ij)" if out == "softmax" else
            "the log-softmax Jacobian I - 1 pᵀ applied to each row: "
            "Δ_ij = Σ_k G_ik(δ_kj - p_ij), with P = softmax(Z)")
    steps.append(VStep("chain", "Output delta (chain rule through the sum over k)",
                       f"with G = ∂L/∂{Y.text}, {rule}",
                       [gclaim, Claim(_lhs(n), jvp, check=f"D{n.L}")]))
    return jvp


def _elementwise_delta(n: Names, out: str, dl, gclaim: Claim, steps: list[VStep]) -> Node:
    """Δ_L = ∂L/∂Ŷ ⊙ g'(Z_L), then fused element by element where the product simplifies."""
    L, Y = n.L, n.H[n.L]
    gp = gprime_node(out, L, n)
    product = Had(gclaim.expr, gp)
    steps.append(VStep(
        "chain", "Output delta (chain rule; the Jacobian of an element-wise function is "
        "diagonal)",
        f"∂ŷ_ik/∂z_ij = g'(z_ij)·δ_kj, so the sum over k keeps k = j: "
        f"{n.D[L].text} = ∂L/∂{Y.text} ⊙ {gprime_text(out, L, n)}",
        [gclaim, Claim((gprime_text(out, L, n), gprime_latex(out, L), f"dH{L}"), gp,
                       check=f"g{L}", show_shapes=False),
         Claim(_lhs(n), product, check=f"D{L}")]))
    fused = fused_delta(dl, out)
    if fused is None:
        return product
    node = Elem(fused.subs(y, t), {yhat: Y, t: n.T}, NUMBERS)
    steps.append(VStep("simplify", "Output delta (fused)",
                       "the product simplifies element by element",
                       [Claim(_lhs(n), node, check=f"D{L}")]))
    return node
