r"""Backpropagation in matrix form: one dense layer, or a network of any depth, checked.

For a batch of :math:`m` samples (one per row) and layers :math:`l = 1..L`,

.. math::
    Z_l = H_{l-1} W_l + b_l, \quad H_l = g_l(Z_l), \quad H_0 = X, \quad \hat Y = H_L,
    \quad E = \frac1m \sum_i L(\hat y_i, t_i),

the derivation names the error signal of each layer :math:`\Delta_l = m\,\partial E/\partial
Z_l` (the per-sample derivative, without the batch's :math:`1/m`) and gives

.. math::
    \Delta_L = \frac{\partial L}{\partial \hat Y} \odot g_L'(Z_L) \ (\text{fused: } \hat Y - T),
    \quad \Delta_l = (\Delta_{l+1} W_{l+1}^\top) \odot g_l'(Z_l),
    \quad \frac{\partial E}{\partial W_l} = \frac{H_{l-1}^\top \Delta_l}{m},
    \quad \frac{\partial E}{\partial b_l} = \frac{\mathbf 1^\top \Delta_l}{m}.

The :math:`1/m` sits in the weight and bias gradients only, where the sum over the batch
happens. Softmax and log-softmax layers replace :math:`\odot g'` by their Jacobian applied to
each row: :math:`P \odot (G - (G \odot P)\mathbf 1)` and :math:`G - P \odot (G\mathbf 1)`.

Every formula is evaluated with NumPy on random float64 matrices of several shapes (m = 1,
K = 2 among them) and compared with central finite differences of the loss, written here
independently of the derivation; a disagreement raises ``RuntimeError`` and nothing is printed.
"""

from __future__ import annotations

import functools

import numpy as np
import sympy

from chainrule.derivation import library
from chainrule.derivation.functions import sigmoid
from chainrule.derivation.matrix import (
    Elem,
    Had,
    MatMul,
    Node,
    Ones,
    OverM,
    RowSum,
    Sub,
    Sym,
    T,
    dim_text,
)
from chainrule.derivation.simplify import orient
from chainrule.derivation.symbols import alpha, delta, t, y, yhat, z
from chainrule.derivation.vresult import Claim, VectorDerivation, VStep

__all__ = ["derive_layers", "derive_vector", "parse_network"]

#: Numbers for the activations' and losses' parameters in the numerical check.
_NUMBERS = {alpha: 0.3, delta: 0.5}

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


def parse_network(network) -> tuple[str, ...]:
    """``"relu,tanh,sigmoid"`` or a list of names -> canonical activation names."""
    if isinstance(network, str):
        names = [s for s in (part.strip() for part in network.split(",")) if s]
    else:
        try:
            names = [str(s).strip() for s in network]
        except TypeError:
            raise ValueError("The network must be a list of activation names or a "
                             "comma-separated string such as 'relu,tanh,sigmoid'; got "
                             f"{network!r}.") from None
    if not names:
        raise ValueError("The network is empty: give one activation per dense layer, e.g. "
                         "--network relu,tanh,sigmoid.")
    return tuple(library.canonical_activation(n) for n in names)


def derive_vector(expression=None, *, activation=None, loss=None, layer=False, network=None,
                  vector=False, half=False, mean=False, weights=False) -> VectorDerivation:
    """Dispatch of :func:`chainrule.derive` for the vector and matrix derivations."""
    if expression is not None:
        raise ValueError("The options layer=, network= and vector= take activation= and loss=, "
                         f"not a formula; got expression={expression!r}.")
    if loss is None:
        raise ValueError("A layer, a network or a vector derivation needs a loss: add "
                         "--loss (mse, bce, ce, huber, bce_with_logits, ce_with_logits).")
    if sum(bool(v) for v in (layer, network is not None, vector)) > 1:
        raise ValueError("Choose one of --layer, --network and --vector.")
    if network is not None:
        if activation is not None:
            raise ValueError("The --network option lists every layer's activation; drop "
                             f"--activation {activation!r} or put it in the list.")
        acts = parse_network(network)
    else:
        if activation is None:
            raise ValueError("The --layer and --vector options need --activation (e.g. "
                             "--activation sigmoid --loss bce).")
        acts = (library.canonical_activation(activation),)
    lss = library.canonical_loss(loss)
    if weights:
        raise ValueError("The --weights option is for the scalar composition; --layer and "
                         "--network already give every weight's gradient.")
    return _cached(acts, lss, bool(half), bool(layer), bool(vector))


@functools.lru_cache(maxsize=64)
def _cached(acts, lss, half, layer, vector):
    if vector:
        from chainrule.derivation.vector import vector_composition

        return vector_composition(acts[0], lss, half=half)
    return derive_layers(acts, lss, half=half, index_form=layer)


# --- symbols ----------------------------------------------------------------------------------


def _sub(n: int) -> str:
    return str(n).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


class _Names:
    """The named arrays of an L-layer network (``single``: one sample's row vectors)."""

    def __init__(self, acts: tuple[str, ...], single: bool = False):
        L = len(acts)
        self.L = L
        if single:
            self._single(acts)
            return
        self.X = Sym("X", "X", "X", ("m", "n0"))
        self.W = {l: Sym(f"W{l}", f"W{_sub(l)}", f"W_{l}", (f"n{l-1}", f"n{l}"))
                  for l in range(1, L + 1)}
        self.b = {l: Sym(f"b{l}", f"b{_sub(l)}", f"b_{l}", ("1", f"n{l}"))
                  for l in range(1, L + 1)}
        self.Z = {l: Sym(f"Z{l}", f"Z{_sub(l)}", f"Z_{l}", ("m", f"n{l}"))
                  for l in range(1, L + 1)}
        self.H = {0: self.X}
        for l in range(1, L):
            self.H[l] = Sym(f"H{l}", f"H{_sub(l)}", f"H_{l}", ("m", f"n{l}"))
        out = "P" if acts[-1] == "softmax" else "Yhat"
        self.H[L] = Sym(out, "P" if out == "P" else "Ŷ", "P" if out == "P" else r"\hat Y",
                        ("m", f"n{L}"))
        self.T = Sym("T", "T", "T", ("m", f"n{L}"))
        self.D = {l: Sym(f"D{l}", f"Δ{_sub(l)}", rf"\Delta_{l}", ("m", f"n{l}"))
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


@functools.lru_cache(maxsize=64)
def _gprime(act: str) -> tuple[sympy.Expr, str]:
    """g' as a scalar formula and the variable it is written in: ``"out"`` (yhat) or ``"in"`` (z).

    ReLU and leaky ReLU are written in z (``[Z > 0]``); an invertible activation in its output
    (``H(1 - H)``); the others (GELU, SiLU, Mish, Gaussian) in z.
    """
    out = library.output_derivative(act, yhat)
    if out is not None and act not in ("relu", "leaky_relu", "identity"):
        return out, "out"
    return sympy.diff(library.activation_expr(act, z), z), "in"


def _gprime_node(act: str, l: int, n: _Names) -> Node:
    expr, where = _gprime(act)
    return Elem(expr, {yhat: n.H[l]} if where == "out" else {z: n.Z[l]}, _NUMBERS)


def _gprime_text(act: str, l: int, n: _Names | None = None) -> str:
    return f"{act}'({n.Z[l].text if n is not None else 'Z' + _sub(l)})"


def _gprime_latex(act: str, l: int) -> str:
    name = act.replace("_", r"\_")
    return rf"\mathrm{{{name}}}'(Z_{l})"


def _refuse(acts: tuple[str, ...], lss: str) -> None:
    for i, a in enumerate(acts, 1):
        if a == "binary_step":
            raise ValueError(
                f"Layer {i}'s activation binary_step has derivative 0 wherever it is defined "
                "(and none at 0), so no gradient reaches the layers before it; use sigmoid, "
                "its smooth version.")
    out = acts[-1]
    if lss in ("bce_with_logits", "ce_with_logits"):
        if out != "identity":
            raise ValueError(
                f"The loss {lss} takes the raw scores Z_L and applies the "
                f"{'sigmoid' if lss == 'bce_with_logits' else 'softmax'} itself, so the last "
                f"layer's activation must be identity; got {out}.")
        return
    domain = library.LOSS_INFO[lss].domain
    if out == "log_softmax":
        rng = sympy.Interval.open(-sympy.oo, 0)
    elif out == "softmax":
        rng = sympy.Interval.open(0, 1)
    else:
        rng = library.ACTIVATION_INFO[out].range
    rng = rng.subs(_NUMBERS) if rng.free_symbols else rng
    if not rng.is_subset(domain):
        from chainrule.derivation.compose import _set_text

        raise ValueError(
            f"The output activation {out} takes values in {_set_text(rng)}, outside {lss}'s "
            f"domain {_set_text(domain)}, so the loss is undefined for some outputs; use "
            f"{'softmax' if lss == 'ce' else 'sigmoid'} as the last activation, or "
            f"{'ce' if lss == 'ce' else 'bce'}_with_logits on an identity output.")


# --- the derivation ----------------------------------------------------------------------------


def _loss_grad(lss: str, half: bool) -> sympy.Expr:
    """dL/dyhat for one output (y is the target)."""
    E = library.loss_expr(lss, yhat, y, half=half)
    d = sympy.diff(E, yhat)
    if isinstance(d, sympy.Piecewise) or d.has(sympy.Piecewise):
        return sympy.piecewise_fold(d)
    return orient(sympy.factor(sympy.cancel(d)))


def _fused(dl: sympy.Expr, act: str) -> sympy.Expr | None:
    """dL/dyhat · g'(yhat) simplified, when it is simpler than the product."""
    gp, where = _gprime(act)
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


def _output_delta(acts, lss, half, n: _Names, steps: list[VStep], assumptions: list[str]):
    """Append the output-delta step; return the node of Δ_L (what the recursion uses)."""
    L, out = n.L, acts[-1]
    Y, Tn, Z, D = n.H[L], n.T, n.Z[L], n.D[L]
    lhsD = (D.text, D.latex, D.py)
    G = Sym("G", "G", "G", D.dims)
    if lss == "bce_with_logits":
        dz = Elem(sigmoid(z) - y, {z: Z, y: Tn})
        steps.append(VStep(
            "chain", "Output delta (chain rule, fused)",
            "d/dz [softplus(z) - t·z] = σ(z) - t for each output, so the delta of the logits "
            "needs no separate activation derivative",
            [Claim(lhsD, dz, check=f"D{L}")]))
        return dz
    if lss == "ce_with_logits" or (out == "softmax" and lss == "ce"):
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
            [*claims, Claim(lhsD, general, check=f"D{L}")]))
        steps.append(VStep(
            "assumption", "Output delta (fused)",
            "each row of T sums to 1 (one-hot labels or a distribution), so T 1 = 1 and the "
            "delta is P - T; with soft or unnormalised targets keep P ⊙ (T 1) - T",
            [Claim(lhsD, fused, check=f"D{L}", assumes_normalised=True)]))
        assumptions.append("every row of T sums to 1 (Σ_k t_ik = 1); otherwise "
                           f"{D.text} = P ⊙ (T 1) - T")
        return fused
    dl = _loss_grad(lss, half)
    Gexpr = Elem(dl.subs(y, t), {yhat: Y, t: Tn}, _NUMBERS)
    gclaim = Claim(("∂L/∂" + Y.text, r"\frac{\partial L}{\partial " + Y.latex + "}", "G"),
                   Gexpr, check="G")
    if out in ("softmax", "log_softmax"):
        jvp = (Had(Y, Sub(G, RowSum(Had(G, Y)))) if out == "softmax"
               else Sub(G, Had(Sym("P", "P", "P", D.dims), RowSum(G))))
        rule = ("the softmax Jacobian diag(p) - p pᵀ applied to each row: "
                "Δ_ij = Σ_k G_ik p_ik(δ_kj - p_ij)" if out == "softmax" else
                "the log-softmax Jacobian I - 1 pᵀ applied to each row: "
                "Δ_ij = Σ_k G_ik(δ_kj - p_ij), with P = softmax(Z)")
        steps.append(VStep("chain", "Output delta (chain rule through the sum over k)",
                           f"with G = ∂L/∂{Y.text}, {rule}",
                           [gclaim, Claim(lhsD, jvp, check=f"D{L}")]))
        return jvp
    if out == "identity":
        steps.append(VStep("chain", "Output delta (chain rule; identity output)",
                           f"g'(z) = 1, so {D.text} = ∂L/∂{Y.text}",
                           [Claim(lhsD, Gexpr, check=f"D{L}")]))
        return Gexpr
    gp = _gprime_node(out, L, n)
    product = Had(Gexpr, gp)
    steps.append(VStep(
        "chain", "Output delta (chain rule; the Jacobian of an element-wise function is "
        "diagonal)",
        f"∂ŷ_ik/∂z_ij = g'(z_ij)·δ_kj, so the sum over k keeps k = j: "
        f"{D.text} = ∂L/∂{Y.text} ⊙ {_gprime_text(out, L, n)}",
        [gclaim, Claim((_gprime_text(out, L, n), _gprime_latex(out, L), f"dH{L}"), gp,
                       check=f"g{L}", show_shapes=False),
         Claim(lhsD, product, check=f"D{L}")]))
    fused = _fused(dl, out)
    if fused is None:
        return product
    node = Elem(fused.subs(y, t), {yhat: Y, t: Tn}, _NUMBERS)
    steps.append(VStep("simplify", "Output delta (fused)",
                       "the product simplifies element by element",
                       [Claim(lhsD, node, check=f"D{L}")]))
    return node


def derive_layers(acts: tuple[str, ...], lss: str, *, half: bool = False,
                  index_form: bool = False) -> VectorDerivation:
    """The backward pass of dense layers with activations ``acts`` under loss ``lss``.

    1. the forward pass and the loss, as definitions;
    2. the output delta Δ_L;
    3. from the last layer down: each layer's weight and bias gradients, then the delta of the
       layer before (chain rule through its activation);
    4. the gradient-descent step;
    5. every formula checked against finite differences.
    """
    _refuse(acts, lss)
    n = _Names(acts)
    L = n.L
    steps = _definitions(acts, lss, half, n)
    assumptions: list[str] = []
    _output_delta(acts, lss, half, n, steps, assumptions)
    result: dict[str, Claim] = {f"D{L}": steps[-1].claims[-1]}
    for l in range(L, 0, -1):
        index_claims = (_index_claims(n, acts[0], lss, half, result["D1"].expr)
                        if index_form and L == 1 else [])
        steps.append(_layer_gradients(n, l, index_claims, result))
        if l > 1:
            steps.append(_delta_before(n, l, acts[l - 2], result))
    steps.append(VStep(
        "gradient descent", "Gradient-descent step",
        "W_l ← W_l - η ∂E/∂W_l and b_l ← b_l - η ∂E/∂b_l for l = "
        + ", ".join(str(i) for i in range(1, L + 1))
        + ": the step goes against the gradient"))
    d = _layers_derivation(acts, lss, half, index_form, n, steps, result, assumptions)
    from chainrule.derivation.vcheck import verify_network

    d.checked = verify_network(d, acts, lss, half)
    return d


def _definitions(acts, lss: str, half: bool, n: _Names) -> list[VStep]:
    """The forward pass and the loss, as the derivation's first two steps."""
    L = n.L
    fwd = []
    for l in range(1, L + 1):
        Zdef = f"{n.Z[l].text} = {n.H[l-1].text} {n.W[l].text} + {n.b[l].text}"
        Hname = n.H[l].text if l < L else f"{n.H[L].text} = H{_sub(L)}"
        fwd.append(f"{Zdef}, {Hname} = {acts[l-1]}({n.Z[l].text})")
    key = "mse_half" if lss == "mse" and half else lss
    return [
        VStep("definition", "Forward pass (definition)", "; ".join(fwd)),
        VStep("definition", "Loss (definition)",
              f"E = (1/m) Σ_i L_i, the mean over the m rows, with {_LOSS_TEXT[key][0]}; "
              f"Δ_l = m·∂E/∂Z_l = ∂L_i/∂z_i row by row, so the 1/m appears where the batch is "
              "summed, in ∂E/∂W_l and ∂E/∂b_l",
              explanation_latex=(rf"$E = \frac1m \sum_i L_i$, ${_LOSS_TEXT[key][1]}$; "
                                 r"$\Delta_l = m\,\partial E/\partial Z_l$")),
    ]


def _layer_gradients(n: _Names, l: int, claims: list[Claim], result: dict) -> VStep:
    """The step of ∂E/∂W_l = H_{l-1}ᵀ Δ_l / m and ∂E/∂b_l = 1ᵀ Δ_l / m (into ``result``)."""
    Wg = Claim((f"∂E/∂{n.W[l].text}", rf"\frac{{\partial E}}{{\partial W_{l}}}", f"dE/dW{l}"),
               OverM(MatMul(T(n.H[l-1]), n.D[l])), check=f"W{l}")
    bg = Claim((f"∂E/∂{n.b[l].text}", rf"\frac{{\partial E}}{{\partial b_{l}}}", f"dE/db{l}"),
               OverM(Ones(n.D[l])), check=f"b{l}")
    result[f"dE/dW{l}"], result[f"dE/db{l}"] = Wg, bg
    return VStep(
        "chain", f"Layer {l}: weights and bias (chain rule through "
        f"{n.Z[l].text} = {n.H[l-1].text} {n.W[l].text} + {n.b[l].text})",
        f"∂z_ik/∂w_jk = h_ij and ∂z_ik/∂b_k = 1, so ∂E/∂w_jk = (1/m) Σ_i h_ij δ_ik: the sum "
        f"over the batch is the product {n.H[l-1].text}ᵀ {n.D[l].text}, and the bias sums the "
        f"rows of {n.D[l].text}",
        [*claims, Wg, bg])


def _delta_before(n: _Names, l: int, act: str, result: dict) -> VStep:
    """The step from Δ_l back to Δ_{l-1} through layer ``l - 1``'s activation ``act``."""
    back = MatMul(n.D[l], T(n.W[l]))
    if act == "identity":
        Dprev = back
        rule = "g'(z) = 1 for the identity"
    elif act == "softmax":
        G = back
        Dprev = Had(n.H[l-1], Sub(G, RowSum(Had(G, n.H[l-1]))))
        rule = "the softmax Jacobian diag(p) - p pᵀ applied to each row"
    elif act == "log_softmax":
        P = Sym(f"P{l-1}", f"P{_sub(l-1)}", f"P_{l-1}", ("m", f"n{l-1}"))
        Dprev = Sub(back, Had(P, RowSum(back)))
        rule = (f"the log-softmax Jacobian I - 1 pᵀ applied to each row, with "
                f"{P.text} = softmax({n.Z[l-1].text})")
    else:
        Dprev = Had(back, _gprime_node(act, l - 1, n))
        rule = ("the Jacobian of the element-wise " + act + " is diagonal, so it "
                "multiplies element by element")
    Dc = Claim((n.D[l-1].text, n.D[l-1].latex, n.D[l-1].py), Dprev, check=f"D{l-1}")
    result[f"D{l-1}"] = Dc
    return VStep(
        "chain", f"Back to layer {l-1} (chain rule through {n.Z[l].text}, then {act}')",
        f"∂E/∂{n.H[l-1].text} = {n.D[l].text} {n.W[l].text}ᵀ / m (each h_ij feeds every "
        f"z_ik of the next layer through w_jk); {rule}",
        [Dc])


def _layers_derivation(acts, lss, half, index_form, n: _Names, steps, result,
                       assumptions) -> VectorDerivation:
    """The derivation of the layers' steps, with its input and output forms (not yet checked)."""
    L = n.L
    key = "mse_half" if lss == "mse" and half else lss
    half_note = " (half)" if half else ""
    one_layer = index_form and L == 1
    d = VectorDerivation(
        kind="layer" if one_layer else "network",
        title=(f"Dense layer {acts[0]} + {lss}{half_note}, mean over m samples" if one_layer else
               f"Backpropagation through {L} dense layer{'s' if L > 1 else ''}: "
               f"{', '.join(acts)} + {lss}{half_note}, mean over m samples"),
        steps=steps, result=result,
        result_input_form=_input_form(n, acts, lss, half, result) if L == 1 else {},
        shapes=_shapes(n), symbols=_symbol_table(n, acts), assumptions=assumptions,
        variable="W", function=(_LOSS_TEXT[key][0]),
    )
    d.result_output_form = {
        f"g{l}'": Claim((_gprime_text(acts[l-1], l), _gprime_latex(acts[l-1], l), f"dH{l}"),
                        _gprime_node(acts[l-1], l, n))
        for l in range(1, L + 1)
        if acts[l-1] not in ("identity", "softmax", "log_softmax")
    }
    return d


_INDEX_NAMES = (("Ŷ", "ŷ_ik"), ("P", "p_ik"), ("Z₁", "z_ik"), ("T", "t_ik"), (" ⊙ ", "·"))


def _index_text(D: Node) -> str:
    """The element (i, k) of an element-wise delta, e.g. ``(ŷ_ik - t_ik)·(1 - ŷ_ik²)``."""
    text = D.show("text")
    if "G" in text or " 1" in text:  # a row-wise Jacobian: no short element form
        return "[Δ₁]_ik"
    for old, new in _INDEX_NAMES:
        text = text.replace(old, new)
    return text


def _index_claims(n: _Names, act: str, lss: str, half: bool, D: Node) -> list[Claim]:
    """The index form of one layer's gradients, verified through an explicit loop."""
    def w_loop(env):
        X, D, m = env["X"], env["D1"], env["m"]
        out = np.zeros((X.shape[1], D.shape[1]))
        for j in range(X.shape[1]):
            for k in range(D.shape[1]):
                out[j, k] = sum(D[i, k] * X[i, j] for i in range(X.shape[0])) / m
        return out

    def b_loop(env):
        D, m = env["D1"], env["m"]
        return np.array([[sum(D[i, k] for i in range(D.shape[0])) / m
                          for k in range(D.shape[1])]])

    return [
        Claim(("∂E/∂w_jk", r"\frac{\partial E}{\partial w_{jk}}", "dE/dw_jk"),
              index=("(1/m) Σ_i δ_ik x_ij, with z_ik = Σ_j x_ij w_jk + b_k and "
                     f"δ_ik = ∂L_i/∂z_ik = {_index_text(D)}",
                     r"\frac1m \sum_i \delta_{ik} x_{ij}"),
              evaluate=w_loop, check="W1"),
        Claim(("∂E/∂b_k", r"\frac{\partial E}{\partial b_k}", "dE/db_k"),
              index=("(1/m) Σ_i δ_ik", r"\frac1m \sum_i \delta_{ik}"),
              evaluate=b_loop, check="b1"),
    ]


def _input_form(n: _Names, acts, lss, half, result) -> dict[str, Claim]:
    """For one layer: the gradients with Δ₁ written in X, W₁, b₁ and T (logistic regression)."""
    Zx = _Compound(n)
    act = acts[0]
    if act in ("softmax", "log_softmax") and not (act == "softmax" and lss == "ce"):
        return {}
    if act == "softmax":
        Dx = Sub(Elem(sympy.Function("softmax")(z), {z: Zx}), n.T)
    else:
        Dx = _in_terms_of_input(result["D1"].expr, n, act, Zx)
    normalised = lss in ("ce", "ce_with_logits")
    return {
        "dE/dW1": Claim(("∂E/∂W₁", r"\frac{\partial E}{\partial W_1}", "dE/dW1"),
                        OverM(MatMul(T(n.X), Dx)), check="W1", assumes_normalised=normalised),
        "dE/db1": Claim(("∂E/∂b₁", r"\frac{\partial E}{\partial b_1}", "dE/db1"),
                        OverM(Ones(Dx)), check="b1", assumes_normalised=normalised),
    }


def _named(act: str):
    """The activation of z as a formula, kept as a named function where it is piecewise."""
    f = library.activation_expr(act, z)
    if isinstance(f, sympy.Piecewise):
        from chainrule.derivation.vcheck import activation_numpy

        return sympy.Function(act)(z), {act: activation_numpy(act)}
    return f, {}


def _in_terms_of_input(node: Node, n: _Names, act: str, Zx: Node) -> Node:
    """``node`` with the layer's output and pre-activation written as g(X W₁ + b₁)."""
    f, functions = _named(act)
    if node is n.H[1]:
        return Elem(f, {z: Zx}, _NUMBERS, functions)
    if node is n.Z[1]:
        return Zx
    if isinstance(node, Elem):
        expr, args = node.expr, {}
        for s, arg in node.args.items():
            if arg is n.H[1]:
                expr = expr.subs(s, f)
                args[z] = Zx
            elif arg is n.Z[1]:
                expr = expr.subs(s, z)
                args[z] = Zx
            else:
                args[s] = arg
        return Elem(expr, args, node.numbers, functions)
    if isinstance(node, Sym):
        if node.py == "P":  # the softmax of the logits (ce_with_logits)
            return Elem(sympy.Function("softmax")(z), {z: Zx})
        return node
    fields = {k: _in_terms_of_input(v, n, act, Zx) if isinstance(v, Node) else v
              for k, v in vars(node).items()}
    return type(node)(**fields)


class _Compound(Sym):
    """``X W₁ + b₁`` as one name inside an element-wise formula, evaluated from X, W1, b1."""

    def __init__(self, n: _Names):
        super().__init__("(X @ W1 + b1)", "(X W₁ + b₁)", r"(X W_1 + b_1)", ("m", "n1"))

    def value(self, env):
        return env["X"] @ env["W1"] + env["b1"]


def _shapes(n: _Names) -> dict[str, tuple[str, str]]:
    out = {"X": n.X.dims, "T": n.T.dims}
    for l in range(1, n.L + 1):
        for s in (n.W[l], n.b[l], n.Z[l], n.H[l], n.D[l]):
            out[s.py] = s.dims
    return out


def _symbol_table(n: _Names, acts) -> list[tuple[str, str, str]]:
    L = n.L
    rows = [("X = H₀", "m × n₀", "inputs, one row per sample")]
    rows.append(("W_l, b_l", "n_(l-1) × n_l, 1 × n_l", "weights and bias of layer l"))
    rows.append(("Z_l = H_(l-1) W_l + b_l", "m × n_l", "pre-activations (b_l added to each row)"))
    rows.append((f"H_l = g_l(Z_l), {n.H[L].text} = H{_sub(L)}", "m × n_l", "activations"))
    rows.append(("T", f"m × n{_sub(L)}", "targets"))
    rows.append(("Δ_l = m·∂E/∂Z_l", "m × n_l", "error signal of layer l"))
    rows.append(("1", "m × 1", "a column of ones; 1ᵀ Δ sums the rows"))
    rows.append(("⊙", "", "element-wise product"))
    return rows


_ = (Node, dim_text)
