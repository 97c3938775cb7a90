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
from chainrule.derivation.delta import (
    NUMBERS,
    Names,
    gprime_latex,
    gprime_node,
    gprime_text,
    loss_text,
    output_delta,
    refuse,
    sub,
)
from chainrule.derivation.matrix import Elem, Had, MatMul, Node, Ones, OverM, RowSum, Sub, Sym, T
from chainrule.derivation.symbols import z
from chainrule.derivation.vcheck import activation_numpy, verify_network
from chainrule.derivation.vector import vector_composition
from chainrule.derivation.vresult import Claim, VectorDerivation, VStep

__all__ = ["derive_layers", "derive_vector", "parse_network"]


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
                         "network='relu,tanh,sigmoid'.")
    return tuple(library.canonical_activation(n) for n in names)


def derive_vector(expression=None, *, activation=None, loss=None, layer=False, network=None,
                  vector=False, half=False, mean=False, weights=False,
                  wrt=None) -> VectorDerivation:
    """Dispatch of :func:`chainrule.derive` for the vector and matrix derivations."""
    if expression is not None:
        raise ValueError("The options layer=, network= and vector= take activation= and loss=, "
                         f"not a formula; got expression={expression!r}.")
    if loss is None:
        raise ValueError("A layer, a network or a vector derivation needs a loss: add loss= "
                         f"(one of {', '.join(library.loss_names())}).")
    if sum(bool(v) for v in (layer, network is not None, vector)) > 1:
        raise ValueError("Choose one of layer=True, network=[...] and vector=True.")
    if network is not None:
        if activation is not None:
            raise ValueError("The option network= lists every layer's activation; drop "
                             f"activation={activation!r} or put it in the list.")
        acts = parse_network(network)
    else:
        if activation is None:
            raise ValueError("The options layer=True and vector=True need activation= (e.g. "
                             "derive(activation='sigmoid', loss='bce', layer=True)).")
        acts = (library.canonical_activation(activation),)
    lss = library.canonical_loss(loss)
    if weights:
        raise ValueError("The option weights=True is for the scalar composition; layer=True "
                         "and network= already give every weight's gradient.")
    if vector:
        _vector_wrt(wrt)
        return _cached(acts, lss, bool(half), False, True, None)
    return _cached(acts, lss, bool(half), bool(layer), False, layer_wrt(wrt, len(acts)))


@functools.lru_cache(maxsize=64)
def _cached(acts, lss, half, layer, vector, wrt):
    if vector:
        return vector_composition(acts[0], lss, half=half)
    return derive_layers(acts, lss, half=half, index_form=layer, wrt=wrt)


def _vector_wrt(wrt) -> None:
    """A vector derivation gives dE/dz of one sample's scores: ``wrt`` may only say so."""
    if wrt is not None and str(wrt).strip() != "z":
        raise ValueError(
            f"vector=True derives dE/dz, the gradient by one sample's scores z; got wrt={wrt!r}. "
            "Leave out wrt (or give wrt='z'); for the gradients by W, b, X or a hidden layer's "
            "output use layer=True or network=[...] with wrt='W', 'b', 'X' or 'H1'.")


def layer_wrt(wrt, L: int) -> str | None:
    """``wrt`` of a layer or network derivation as the name of what to give, or None for every
    weight and bias gradient. ``"W"``/``"b"`` (every layer's), ``"W2"``/``"b2"`` (one layer's),
    ``"X"`` (the inputs) and ``"H1"`` .. ``"H{L-1}"`` (a hidden layer's output) are accepted,
    in either case; anything else is refused with the list."""
    if wrt is None:
        return None
    key = str(wrt).strip()
    key = key[:1].lower() + key[1:] if key[:1] in ("b", "B") else key[:1].upper() + key[1:]
    known = ["W", "b", *(f"{v}{l}" for l in range(1, L + 1) for v in "Wb"), "X",
             *(f"H{l}" for l in range(1, L))]
    if key in known:
        return key
    hidden = (f", {', '.join(repr(f'H{l}') for l in range(1, L))} (a hidden layer's output)"
              if L > 1 else "")
    raise ValueError(
        f"A {'network' if L > 1 else 'dense layer'} derivation gives the gradient of E by "
        f"wrt='W' or 'b' (every layer's), 'W1' .. 'b{L}' (one layer's), 'X' (the inputs)"
        f"{hidden}; got wrt={wrt!r}.")


def derive_layers(acts: tuple[str, ...], lss: str, *, half: bool = False,
                  index_form: bool = False, wrt: str | None = None) -> VectorDerivation:
    r"""The backward pass of dense layers with activations ``acts`` under loss ``lss``.

    1. the forward pass and the loss, as definitions;
    2. the output delta Δ_L;
    3. from the last layer down: each layer's weight and bias gradients, then the delta of the
       layer before (chain rule through its activation);
    4. with ``wrt="X"`` or ``"H1"``..: the gradient by the inputs or a hidden layer's output,
       :math:`\partial E/\partial H_{l-1} = \Delta_l W_l^\top / m`;
    5. the gradient-descent step;
    6. every formula checked against finite differences.

    ``wrt`` (see :func:`layer_wrt`) chooses what the result holds: by default every delta,
    weight and bias gradient.
    """
    refuse(acts, lss)
    n = Names(acts)
    L = n.L
    steps = _definitions(acts, lss, half, n)
    assumptions: list[str] = []
    output_delta(acts, lss, half, n, steps, assumptions)
    result: dict[str, Claim] = {f"D{L}": steps[-1].claims[-1]}
    for l in range(L, 0, -1):
        index_claims = (_index_claims(n, acts[0], lss, half, result["D1"].expr)
                        if index_form and L == 1 else [])
        steps.append(_layer_gradients(n, l, index_claims, result))
        if l > 1:
            steps.append(_delta_before(n, l, acts[l - 2], result))
    if wrt is not None and wrt[0] in "XH":
        steps.append(_input_gradient(n, 0 if wrt == "X" else int(wrt[1:]), result))
    steps.append(VStep(
        "gradient descent", "Gradient-descent step",
        "W_l ← W_l - η ∂E/∂W_l and b_l ← b_l - η ∂E/∂b_l for l = "
        + ", ".join(str(i) for i in range(1, L + 1))
        + ": the step goes against the gradient"))
    d = _layers_derivation(acts, lss, half, index_form, n, steps, result, assumptions)
    d.result = _chosen(result, wrt, L)
    d.result_input_form = {k: c for k, c in d.result_input_form.items() if k in d.result}
    d.checked = verify_network(d, acts, lss, half)
    return d


def _chosen(result: dict[str, Claim], wrt: str | None, L: int) -> dict[str, Claim]:
    """The results that ``wrt`` asks for (all of them for None)."""
    if wrt is None:
        return result
    if wrt in ("W", "b"):
        return {f"dE/d{wrt}{l}": result[f"dE/d{wrt}{l}"] for l in range(1, L + 1)}
    return {f"dE/d{wrt}": result[f"dE/d{wrt}"]}


def _input_gradient(n: Names, l: int, result: dict) -> VStep:
    """The step of ∂E/∂H_l = Δ_(l+1) W_(l+1)ᵀ / m (l = 0: the inputs X), into ``result``."""
    H, W, D = n.H[l], n.W[l + 1], n.D[l + 1]
    name = "X" if l == 0 else f"H{l}"
    latex = "X" if l == 0 else f"H_{l}"
    claim = Claim((f"∂E/∂{H.text}", rf"\frac{{\partial E}}{{\partial {latex}}}", f"dE/d{name}"),
                  OverM(MatMul(D, T(W))), check=name)
    result[f"dE/d{name}"] = claim
    what, h = ("the inputs", "x") if l == 0 else (f"layer {l}'s output", "h")
    return VStep(
        "chain", f"Gradient by {what} (chain rule through "
        f"{n.Z[l + 1].text} = {H.text} {W.text} + {n.b[l + 1].text})",
        f"∂z_ik/∂{h}_ij = w_jk: each {h}_ij feeds every z_ik of layer {l + 1}, so "
        f"∂E/∂{h}_ij = Σ_k (∂E/∂z_ik) w_jk = (1/m) Σ_k δ_ik w_jk, the product "
        f"{D.text} {W.text}ᵀ / m (the "
        "1/m of the mean, with no sum over the batch: row i depends on sample i alone)",
        [claim])


def _definitions(acts, lss: str, half: bool, n: Names) -> list[VStep]:
    """The forward pass and the loss, as the derivation's first two steps."""
    L = n.L
    fwd = []
    for l in range(1, L + 1):
        Zdef = f"{n.Z[l].text} = {n.H[l-1].text} {n.W[l].text} + {n.b[l].text}"
        Hname = n.H[l].text if l < L else f"{n.H[L].text} = H{sub(L)}"
        fwd.append(f"{Zdef}, {Hname} = {acts[l-1]}({n.Z[l].text})")
    text, latex = loss_text(lss, half)
    return [
        VStep("definition", "Forward pass (definition)", "; ".join(fwd)),
        VStep("definition", "Loss (definition)",
              f"E = (1/m) Σ_i L_i, the mean over the m rows, with {text}; "
              f"Δ_l = m·∂E/∂Z_l = ∂L_i/∂z_i row by row, so the 1/m appears where the batch is "
              "summed, in ∂E/∂W_l and ∂E/∂b_l",
              explanation_latex=(rf"$E = \frac1m \sum_i L_i$, ${latex}$; "
                                 r"$\Delta_l = m\,\partial E/\partial Z_l$")),
    ]


def _layer_gradients(n: Names, l: int, claims: list[Claim], result: dict) -> VStep:
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


def _delta_before(n: Names, l: int, act: str, result: dict) -> VStep:
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
        P = Sym(f"P{l-1}", f"P{sub(l-1)}", f"P_{l-1}", ("m", f"n{l-1}"))
        Dprev = Sub(back, Had(P, RowSum(back)))
        rule = (f"the log-softmax Jacobian I - 1 pᵀ applied to each row, with "
                f"{P.text} = softmax({n.Z[l-1].text})")
    else:
        Dprev = Had(back, gprime_node(act, l - 1, n))
        rule = ("the Jacobian of the element-wise " + act + " is diagonal, so it "
                "multiplies element by element")
    Dc = Claim((n.D[l-1].text, n.D[l-1].latex, n.D[l-1].py), Dprev, check=f"D{l-1}")
    result[f"D{l-1}"] = Dc
    return VStep(
        "chain", f"Back to layer {l-1} (chain rule through {n.Z[l].text}, then {act}')",
        f"∂E/∂{n.H[l-1].text} = {n.D[l].text} {n.W[l].text}ᵀ / m (each h_ij feeds every "
        f"z_ik of the next layer through w_jk); {rule}",
        [Dc])


def _layers_derivation(acts, lss, half, index_form, n: Names, steps, result,
                       assumptions) -> VectorDerivation:
    """The derivation of the layers' steps, with its input and output forms (not yet checked)."""
    L = n.L
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
        variable="W", function=loss_text(lss, half)[0],
    )
    d.result_output_form = {
        f"g{l}'": Claim((gprime_text(acts[l-1], l), gprime_latex(acts[l-1], l), f"dH{l}"),
                        gprime_node(acts[l-1], l, n))
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


def _index_claims(n: Names, act: str, lss: str, half: bool, D: Node) -> list[Claim]:
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


def _input_form(n: Names, acts, lss, half, result) -> dict[str, Claim]:
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
        return sympy.Function(act)(z), {act: activation_numpy(act)}
    return f, {}


def _in_terms_of_input(node: Node, n: Names, act: str, Zx: Node) -> Node:
    """``node`` with the layer's output and pre-activation written as g(X W₁ + b₁)."""
    f, functions = _named(act)
    if node is n.H[1]:
        return Elem(f, {z: Zx}, NUMBERS, functions)
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

    def __init__(self, n: Names):
        super().__init__("(X @ W1 + b1)", "(X W₁ + b₁)", r"(X W_1 + b_1)", ("m", "n1"))

    def value(self, env):
        return env["X"] @ env["W1"] + env["b1"]


def _shapes(n: Names) -> dict[str, tuple[str, str]]:
    out = {"X": n.X.dims, "T": n.T.dims}
    for l in range(1, n.L + 1):
        for s in (n.W[l], n.b[l], n.Z[l], n.H[l], n.D[l]):
            out[s.py] = s.dims
    return out


def _symbol_table(n: Names, acts) -> list[tuple[str, str, str]]:
    L = n.L
    rows = [("X = H₀", "m × n₀", "inputs, one row per sample")]
    rows.append(("W_l, b_l", "n_(l-1) × n_l, 1 × n_l", "weights and bias of layer l"))
    rows.append(("Z_l = H_(l-1) W_l + b_l", "m × n_l", "pre-activations (b_l added to each row)"))
    rows.append((f"H_l = g_l(Z_l), {n.H[L].text} = H{sub(L)}", "m × n_l", "activations"))
    rows.append(("T", f"m × n{sub(L)}", "targets"))
    rows.append(("Δ_l = m·∂E/∂Z_l", "m × n_l", "error signal of layer l"))
    rows.append(("1", "m × 1", "a column of ones; 1ᵀ Δ sums the rows"))
    rows.append(("⊙", "", "element-wise product"))
    return rows

