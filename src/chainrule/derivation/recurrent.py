r"""The tanh RNN and the LSTM, derived step by step through time and checked.

Sequences are ``(N, T, D)``; both layers return every hidden state, ``h`` ``(N, T, H)``, with
PyTorch's parameters (:class:`chainrule.nn.RNN`, :class:`chainrule.nn.LSTM`): ``W_ih``
(``weight_ih_l0``, ``(G, D)``), ``W_hh`` (``weight_hh_l0``, ``(G, H)``), ``b_ih``, ``b_hh``
(``(G,)``), :math:`G = H` or :math:`4H` (gates :math:`i, f, g, o`), :math:`h_0 = c_0 = 0`:

.. math::
    z_t = x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh}, \qquad
    h_t = \tanh z_t \ \text{(RNN)} .

The layer's output *is* its hidden states, so :math:`dy_t = \partial E/\partial h_t` as the
layer above gives it (with a dense output :math:`y_t = h_t W_{hy}^\top` above, that is
:math:`dy_t W_{hy}`). Backpropagation through time (Werbos, 1990) adds to it what step
:math:`t+1` sends back, :math:`dh_t = dy_t + \delta_{t+1} W_{hh}`, :math:`\delta_t = dh_t \odot
(1 - h_t^2)`; the LSTM's cell state carries a second path, :math:`dc_{t-1} = dc_t \odot f_t`
plus what reaches :math:`c_{t-1}` through :math:`h_{t-1}`. Every per-step formula is a NumPy
expression of step ``t`` (``dY[:, t]``) and of what step ``t + 1`` sent back (``D_next``;
``dZ_next`` and ``dc_next``), compared at every step with central differences of a forward pass
written apart from :mod:`chainrule.nn.recurrent` (:func:`chainrule._oracle.rnn_step`,
:func:`chainrule._oracle.lstm_step`).
"""

from __future__ import annotations

import functools

import numpy as np

from chainrule._oracle import lstm_step, rnn_step
from chainrule.derivation.layernodes import Code, numeric, verify_claims
from chainrule.derivation.vresult import Claim, VectorDerivation, VStep

__all__ = ["RECURRENT", "derive_recurrent"]

#: The recurrent layers, by name: (title, the core layer, gates per hidden unit).
RECURRENT = {"rnn": ("a tanh RNN", "RNN", 1), "lstm": ("an LSTM", "LSTM", 4)}

_CASES = ((2, 3, 3, 2), (1, 1, 2, 3), (2, 4, 2, 2))  # N, T, D, H
_NH, _NG, _SEQ, _SEQX = ("N", "H"), ("N", "4H"), ("N", "T", "H"), ("N", "T", "D")
_H_PREV = "(h[:, t - 1] if t else 0 * h[:, 0])"
_C_PREV = "(c[:, t - 1] if t else 0 * c[:, 0])"


def _claim(lhs, text, latex, python, dims):
    return Claim(lhs, Code(text, latex, python, dims), lhs[2])


def _sums(delta: str, G: str) -> dict[str, Claim]:
    """The weight and bias gradients from the stack ``delta`` (N, T, G) of ∂E/∂z_t."""
    hprev = f"np.einsum('nti,ntj->ij', {delta}[:, 1:], h[:, :-1])"
    d = {"dW_ih": ("Σ_t δ_tᵀ x_t", r"\sum_t \delta_t^\top x_t",
                   f"np.einsum('nti,ntj->ij', {delta}, X)", (G, "D")),
         "dW_hh": ("Σ_t δ_tᵀ h_{t-1}", r"\sum_t \delta_t^\top h_{t-1}", hprev, (G, "H")),
         "db_ih": ("Σ_t 1ᵀ δ_t", r"\sum_t \mathbf 1^\top \delta_t",
                   f"np.sum({delta}, axis=(0, 1))", (G,)),
         "db_hh": ("Σ_t 1ᵀ δ_t", r"\sum_t \mathbf 1^\top \delta_t",
                   f"np.sum({delta}, axis=(0, 1))", (G,)),
         "dX": ("δ_t W_ih, every t", r"\delta_t W_{ih}", f"{delta} @ W_ih", _SEQX)}
    return {k: Claim((k, k.replace("_", r"\_"), k), Code(*v), k) for k, v in d.items()}


# --- the RNN -----------------------------------------------------------------------------------


def _rnn_unrolled() -> VStep:
    return VStep("chain", "Unrolled over three steps",
                 "with T = 3 (t = 1, 2, 3): h₃ feeds only the output, h₂ feeds its output and "
                 "z₃ = ... + h₂ W_hhᵀ, h₁ its output and z₂; tanh' = 1 - tanh², read from h", [
                     _claim(("dh₃", "dh_3", "dh3"), "dy₃", "dy_3", "dY[:, 2]", _NH),
                     _claim(("dh₂", "dh_2", "dh2"), "dy₂ + (dh₃ ⊙ (1 - h₃²)) W_hh",
                            r"dy_2 + (dh_3 \odot (1 - h_3^2))\, W_{hh}",
                            "dY[:, 1] + (dh3 * (1 - h[:, 2] ** 2)) @ W_hh", _NH),
                     _claim(("dh₁", "dh_1", "dh1"), "dy₁ + (dh₂ ⊙ (1 - h₂²)) W_hh",
                            r"dy_1 + (dh_2 \odot (1 - h_2^2))\, W_{hh}",
                            "dY[:, 0] + (dh2 * (1 - h[:, 1] ** 2)) @ W_hh", _NH)])


def _rnn_steps() -> list[VStep]:
    return [
        VStep("definition", "Forward, step by step",
              "PyTorch's layout: the weights multiply from the right transposed; the output "
              "is every h_t, so dy_t = ∂E/∂h_t is what the layer above sends (through a dense "
              "output y_t = h_t W_hyᵀ it is dy_t W_hy)", [
                  _claim(("h_t", "h_t", "h_t"), "tanh(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)",
                         r"\tanh(x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh})",
                         f"np.tanh(X[:, t] @ W_ih.T + b_ih + {_H_PREV} @ W_hh.T + b_hh)",
                         _NH)]),
        _rnn_unrolled(),
        VStep("chain", "In general (backpropagation through time)",
              "going from t = T down to 1: h_t reaches the loss through its own output and "
              "through z_{t+1}; δ_t = ∂E/∂z_t; D_next is δ_{t+1}, zero at t = T", [
                  _claim(("dh_t", "dh_t", "dh"), "dy_t + δ_{t+1} W_hh",
                         r"dy_t + \delta_{t+1} W_{hh}", "dY[:, t] + D_next @ W_hh", _NH),
                  _claim(("δ_t", r"\delta_t", "delta"), "dh_t ⊙ (1 - h_t²)",
                         r"dh_t \odot (1 - h_t^2)", "dh * (1 - h[:, t] ** 2)", _NH),
                  _claim(("dx_t", "dx_t", "dx"), "δ_t W_ih", r"\delta_t W_{ih}",
                         "delta @ W_ih", ("N", "D"))]),
        VStep("sum", "The shared weights",
              "every step uses the same W_ih, W_hh and biases, so each gradient sums the "
              "steps' shares (h₀ = 0 adds nothing to dW_hh); in the layout of h_{t-1} W_hh, "
              "the same sum reads Σ_t h_{t-1}ᵀ δ_t", list(_sums("D", "H").values())),
    ]


# --- the LSTM ----------------------------------------------------------------------------------


_GATES = ("np.concatenate([di * i[:, t] * (1 - i[:, t]), df * f[:, t] * (1 - f[:, t]), "
          "dg * (1 - g[:, t] ** 2), do * o[:, t] * (1 - o[:, t])], axis=1)")


def _lstm_steps() -> list[VStep]:
    c = ("dc_t", "dc_t", "dc")
    return [
        VStep("definition", "Forward, step by step",
              "z_t (N × 4H) holds the gates in PyTorch's order i, f, g, o: i = σ(z_i), "
              "f = σ(z_f), g = tanh(z_g), o = σ(z_o); the output is every h_t", [
                  _claim(("c_t", "c_t", "c_t"), "f_t ⊙ c_{t-1} + i_t ⊙ g_t",
                         r"f_t \odot c_{t-1} + i_t \odot g_t",
                         f"f[:, t] * {_C_PREV} + i[:, t] * g[:, t]", _NH),
                  _claim(("h_t", "h_t", "h_t"), "o_t ⊙ tanh(c_t)", r"o_t \odot \tanh(c_t)",
                         "o[:, t] * np.tanh(c[:, t])", _NH)]),
        VStep("chain", "Into h_t and c_t",
              "going from t = T down to 1: dZ_next is ∂E/∂z_{t+1} and dc_next the cell path "
              "dc_{t+1} ⊙ f_{t+1} (both zero at t = T); tanh' at c_t is 1 - tanh²(c_t), read "
              "from tanh(c_t)", [
                  _claim(("dh_t", "dh_t", "dh"), "dy_t + dz_{t+1} W_hh",
                         r"dy_t + dz_{t+1} W_{hh}", "dY[:, t] + dZ_next @ W_hh", _NH),
                  _claim(c, "dc_next + dh_t ⊙ o_t ⊙ (1 - tanh²(c_t))",
                         r"dc_{\text{next}} + dh_t \odot o_t \odot (1 - \tanh^2 c_t)",
                         "dc_next + dh * o[:, t] * (1 - np.tanh(c[:, t]) ** 2)", _NH)]),
        VStep("chain", "The gates",
              "h_t = o_t ⊙ tanh(c_t) and c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t, element by element", [
                  _claim(("do_t", "do_t", "do"), "dh_t ⊙ tanh(c_t)", r"dh_t \odot \tanh c_t",
                         "dh * np.tanh(c[:, t])", _NH),
                  _claim(("di_t", "di_t", "di"), "dc_t ⊙ g_t", r"dc_t \odot g_t",
                         "dc * g[:, t]", _NH),
                  _claim(("dg_t", "dg_t", "dg"), "dc_t ⊙ i_t", r"dc_t \odot i_t",
                         "dc * i[:, t]", _NH),
                  _claim(("df_t", "df_t", "df"), "dc_t ⊙ c_{t-1}", r"dc_t \odot c_{t-1}",
                         f"dc * {_C_PREV}", _NH)]),
        VStep("chain", "Through the gates' activations",
              "σ' = σ(1 - σ) and tanh' = 1 - tanh², read from the gates; stacked in the "
              "order i, f, g, o of W_ih's rows", [
                  _claim(("dz_t", "dz_t", "dZ"), "[di ⊙ i(1 - i), df ⊙ f(1 - f), dg ⊙ (1 - g²), "
                         "do ⊙ o(1 - o)]_t", r"\left[di \odot i(1 - i),\ df \odot f(1 - f),\ "
                         r"dg \odot (1 - g^2),\ do \odot o(1 - o)\right]_t", _GATES, _NG)]),
        VStep("chain", "Back to step t - 1",
              "c_{t-1} reaches the loss through c_t = f_t ⊙ c_{t-1} + ... (the cell path, "
              "where the gradient is only scaled by f_t) and through h_{t-1}, which the next "
              "step down adds as dh_{t-1} ⊙ o_{t-1} ⊙ (1 - tanh²(c_{t-1}))", [
                  _claim(("dc_{t-1} (cell path)", r"dc_{t-1}^{\text{cell}}", "dc_path"),
                         "dc_t ⊙ f_t", r"dc_t \odot f_t", "dc * f[:, t]", _NH),
                  _claim(("dh_{t-1} (recurrence)", r"dh_{t-1}^{\text{rec}}", "dh_path"),
                         "dz_t W_hh", r"dz_t W_{hh}", "dZ @ W_hh", _NH)]),
        VStep("sum", "The shared weights",
              "each step's share, summed (δ_t = dz_t)", list(_sums("dZ_all", "4H").values())),
    ]


# --- the checks --------------------------------------------------------------------------------


class _Sequence:
    """One random sequence, its parameters, the forward pass of the oracle and its loss
    Σ_t dY[:, t] · h_t."""

    def __init__(self, rng, N, T, D, H, lstm):
        G = 4 * H if lstm else H
        self.lstm, self.T = lstm, T
        self.X, self.dY = rng.normal(0.0, 1.0, (N, T, D)), rng.normal(0.0, 1.0, (N, T, H))
        self.p = [rng.normal(0.0, 0.6, s) for s in ((G, D), (G, H), (G,), (G,))]
        self.states = self.run(self.X, self.p, 0, np.zeros((N, H)), np.zeros((N, H)))

    def step(self, x_t, h, c, p, **over):
        if self.lstm:
            z, gates, c, h = lstm_step(x_t, h, c, *p, **over)
            return {"z": z, "gates": gates, "c": c, "h": h}
        return {"h": rnn_step(x_t, h, *p) if "z" not in over else np.tanh(over["z"]), "c": c}

    def run(self, X, p, first, h, c):
        out = []
        for t in range(first, self.T):
            out.append(self.step(X[:, t], h, c, p))
            h, c = out[-1]["h"], out[-1]["c"]
        return out

    def loss(self, X=None, p=None, first=0, h=None, c=None, after=None):
        """The loss from step ``first`` on (from (h, c) before it), or of ``after`` = a step's
        state and the steps after it."""
        X, p = self.X if X is None else X, self.p if p is None else p
        total = 0.0
        if after is not None:
            total, first, h, c = float(np.sum(self.dY[:, first] * after["h"])), first + 1, \
                after["h"], after["c"]
        zeros = np.zeros_like(self.dY[:, 0])
        h, c = zeros if h is None else h, zeros if c is None else c
        for t, s in enumerate(self.run(X, p, first, h, c), first):
            total += float(np.sum(self.dY[:, t] * s["h"]))
        return total

    def before(self, t):
        zeros = np.zeros_like(self.dY[:, 0])
        return (self.states[t - 1]["h"], self.states[t - 1]["c"]) if t else (zeros, zeros)


def _step_truths(q: _Sequence, t: int) -> dict[str, np.ndarray]:
    """Central differences at step ``t``: by h_t and c_t (the rest of the sequence run from
    them), by the gates and the pre-activations, by x_t, and by h_{t-1} and c_{t-1} each
    alone."""
    hp, cp = q.before(t)
    s, x_t = q.states[t], q.X[:, t]

    def after(**over):
        return q.loss(first=t, after=q.step(x_t, hp, cp, q.p, **over))

    def with_x(v):
        X = q.X.copy()
        X[:, t] = v
        return q.loss(X=X, first=t, h=hp, c=cp)

    z = x_t @ q.p[0].T + q.p[2] + hp @ q.p[1].T + q.p[3]
    out = {"h_t": s["h"], "c_t": s["c"], "dx": numeric(with_x, x_t.copy()),
           "dh": numeric(lambda v: q.loss(first=t, after={"h": v, "c": s["c"]}), s["h"]),
           "dZ" if q.lstm else "delta": numeric(lambda v: after(z=v), z)}
    if q.lstm:
        o = s["gates"][3]
        out["dc"] = numeric(lambda v: q.loss(first=t, after={"h": o * np.tanh(v), "c": v}),
                            s["c"])
        for k, name in enumerate(("di", "df", "dg", "do")):
            def by_gate(v, k=k):
                return after(gates=tuple(v if j == k else a for j, a in enumerate(s["gates"])))
            out[name] = numeric(by_gate, s["gates"][k].copy())
        out["dc_path"] = numeric(lambda v: q.loss(first=t, h=hp, c=v), cp.copy())
        out["dh_path"] = numeric(lambda v: q.loss(first=t, h=v, c=cp), hp.copy())
    return out


def _environment(q: _Sequence, per_step: list[dict]) -> dict:
    """The arrays a formula reads: the sequence, the parameters, the stacked states (and
    gates), the stacked ∂E/∂z_t of the oracle (``D`` or ``dZ_all``)."""
    env = {"X": q.X, "dY": q.dY, "W_ih": q.p[0], "W_hh": q.p[1], "b_ih": q.p[2],
           "b_hh": q.p[3], "h": np.stack([s["h"] for s in q.states], axis=1)}
    env["dZ_all" if q.lstm else "D"] = np.stack([d["dZ" if q.lstm else "delta"]
                                                 for d in per_step], axis=1)
    if q.lstm:
        env["c"] = np.stack([s["c"] for s in q.states], axis=1)
        for k, name in enumerate("ifgo"):
            env[name] = np.stack([s["gates"][k] for s in q.states], axis=1)
    return env


def _whole_truths(q: _Sequence, per_step: list[dict]) -> dict[str, np.ndarray]:
    """Central differences of the loss by each parameter and by X (and, for the RNN over three
    steps, by h₁, h₂, h₃)."""
    truths = {name: numeric(lambda v, k=k: q.loss(p=[v if j == k else a for j, a in
                                                     enumerate(q.p)]), q.p[k].copy())
              for k, name in enumerate(("dW_ih", "dW_hh", "db_ih", "db_hh"))}
    truths["dX"] = numeric(lambda v: q.loss(X=v), q.X.copy())
    if q.T == 3 and not q.lstm:
        truths.update({f"dh{t + 1}": per_step[t]["dh"] for t in range(3)})
    return truths


def _draws(lstm: bool, whole: bool):
    """Per step (``whole`` False) or per sequence: (the arrays, the central differences,
    where)."""
    rng = np.random.default_rng(53)
    for N, T, D, H in _CASES:
        q = _Sequence(rng, N, T, D, H, lstm)
        per_step = [_step_truths(q, t) for t in range(T)]
        env = _environment(q, per_step)
        where = f"N = {N}, T = {T}, D = {D}, H = {H}"
        if whole:
            yield env, _whole_truths(q, per_step), where
            continue
        for t in reversed(range(T)):
            later = per_step[t + 1] if t + 1 < T else None
            zeros = np.zeros_like(per_step[t]["dZ" if lstm else "delta"])
            step_env = dict(env, t=t)
            if lstm:
                step_env["dZ_next"] = zeros if later is None else later["dZ"]
                step_env["dc_next"] = 0 * q.dY[:, 0] if later is None else later["dc_path"]
            else:
                step_env["D_next"] = zeros if later is None else later["delta"]
            yield step_env, per_step[t], f"{where}, t = {t + 1}"


def derive_recurrent(name: str) -> VectorDerivation:
    """The derivation of ``"rnn"`` or ``"lstm"``, every claim checked."""
    return _derive(name)


@functools.lru_cache(maxsize=2)
def _derive(name: str) -> VectorDerivation:
    title, layer, _ = RECURRENT[name]
    lstm = name == "lstm"
    steps = _lstm_steps() if lstm else _rnn_steps()
    per_step = [c for s in steps[:-1] for c in s.claims if c.check not in ("dh3", "dh2", "dh1")]
    verify_claims(per_step, _draws(lstm, whole=False))
    whole = list(_draws(lstm, whole=True))
    verify_claims(steps[-1].claims, whole)
    if not lstm:  # the three unrolled steps, on the sequence of three steps
        verify_claims(steps[1].claims, [d for d in whole if d[0]["X"].shape[1] == 3])
    G = "4H" if lstm else "H"
    delta = "dZ_all" if lstm else "D"
    return VectorDerivation(
        kind="recurrent", title=f"Backpropagation through time in {title}", steps=steps,
        result={c.check: c for c in steps[-1].claims},
        shapes={"X": _SEQX, "h": _SEQ, "dY": _SEQ, "W_ih": (G, "D"), "W_hh": (G, "H"),
                "b_ih": (G,), "b_hh": (G,), delta: ("N", "T", G), "t": (),
                **({"c": _SEQ, "i": _SEQ, "f": _SEQ, "g": _SEQ, "o": _SEQ, "dZ_next": _NG,
                    "dc_next": _NH} if lstm else {"D_next": _NH})},
        symbols=[("X", "N × T × D", "the input sequences"),
                 ("h", "N × T × H", "the hidden states, the layer's output"),
                 ("dY", "N × T × H", "∂E/∂h_t from the layer above (dy_t = dY[:, t])"),
                 ("W_ih, W_hh", f"{G} × D, {G} × H", f"{layer}'s weight_ih_l0, weight_hh_l0"),
                 ("b_ih, b_hh", G, "bias_ih_l0, bias_hh_l0"),
                 (delta, f"N × T × {G}", "∂E/∂z_t of every step, stacked by the recursion")],
        variable="X, W_ih, W_hh, b_ih, b_hh", function=f"{layer}, h₀ = 0",
        extra={"recursion": (
            "evaluate the per-step claims in order for t = T - 1 down to 0 (0-based), each "
            "claim's value named by its lhs; then " + (
                "dZ_next = dZ and dc_next = dc_path for the step below (zeros at t = T - 1), "
                "and dZ_all stacks dZ over t" if lstm else
                "D_next = delta for the step below (zeros at t = T - 1), and D stacks delta "
                "over t"))},
        checked=("every formula against float64 central differences of a forward pass "
                 "written apart from the layer, at every step of random sequences (N, T, D, H = "
                 "2, 3, 3, 2; 1, 1, 2, 3; 2, 4, 2, 2), each path by its own copy of the state"),
        assumptions=["one layer, batch first, h_0 = 0" + (", c_0 = 0" if lstm else "")],
    )
