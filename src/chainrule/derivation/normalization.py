r"""Batch normalization and layer normalization, derived step by step and checked.

The forward pass is a chain of named stages over the :math:`N` values of one group (the
:math:`m` samples of a feature for batch normalization, Ioffe & Szegedy 2015, arXiv:1502.03167;
the :math:`n` features of a sample for layer normalization, Ba, Kiros & Hinton 2016,
arXiv:1607.06450):

.. math::
    \mu = \operatorname{mean}(X), \quad \sigma^2 = \operatorname{mean}((X - \mu)^2), \quad
    \hat X = \frac{X - \mu}{\sqrt{\sigma^2 + \epsilon}}, \quad Y = \gamma \odot \hat X + \beta .

Given :math:`dY = \partial E/\partial Y`, :math:`X` reaches the loss by three paths: directly
through :math:`\hat X`, through :math:`\mu` and through :math:`\sigma^2`. Their three terms add
up to the compact form

.. math::
    dX = \frac{1}{\sqrt{\sigma^2 + \epsilon}} \big(D - \operatorname{mean}(D)
         - \hat X \odot \operatorname{mean}(D \odot \hat X)\big), \qquad D = dY \odot \gamma,

which for batch normalization, where :math:`\gamma` is constant along the batch, is
:math:`\gamma/\sqrt{\sigma^2+\epsilon}\,(dY - \operatorname{mean}(dY) - \hat X \odot
\operatorname{mean}(dY \odot \hat X))`. Every claim is evaluated with NumPy on random arrays of
three shapes and compared with central differences of a forward pass written here, apart from
:mod:`chainrule.nn.normalization` (:func:`chainrule._oracle.normalization_forward`); a
disagreement raises ``RuntimeError``.
"""

from __future__ import annotations

import functools

import numpy as np

from chainrule._oracle import normalization_forward
from chainrule.derivation.layernodes import Div, Mean, Scale, Sqrt, Sum, numeric, verify_claims
from chainrule.derivation.matrix import Add, Had, Sub, Sym
from chainrule.derivation.vresult import Claim, VectorDerivation, VStep

__all__ = ["NORMALIZATIONS", "derive_normalization"]

#: The normalization layers, by name: (title, the axis of the statistics, its word).
NORMALIZATIONS = {
    "batchnorm": ("batch normalization", 0, "batch"),
    "layernorm": ("layer normalization", 1, "features"),
}

_SHAPES = ((3, 4), (5, 2), (2, 3))


class _Names:
    """The symbols of one normalization: their shapes follow the axis of the statistics."""

    def __init__(self, axis: int, over: str):
        self.axis, self.over = axis, over
        stat = ("1", "n") if axis == 0 else ("m", "1")
        full, row = ("m", "n"), ("1", "n")
        self.count = "m" if axis == 0 else "n"
        self.X = Sym("X", "X", "X", full)
        self.dY = Sym("dY", "dY", "dY", full)
        self.gamma = Sym("gamma", "γ", r"\gamma", row)
        self.beta = Sym("beta", "β", r"\beta", row)
        self.mu = Sym("mu", "μ", r"\mu", stat)
        self.var = Sym("var", "σ²", r"\sigma^2", stat)
        self.Xhat = Sym("Xhat", "X̂", r"\hat X", full)
        self.eps = Sym("eps", "ε", r"\epsilon", ("1", "1"))
        self.N = Sym(self.count, self.count, self.count, ("1", "1"))
        self.dXhat = Sym("dXhat", "dX̂", r"d\hat X", full)
        self.dvar = Sym("dvar", "dσ²", r"d\sigma^2", stat)
        self.dmu = Sym("dmu", "dμ", r"d\mu", stat)
        self.std = Sqrt(Add(self.var, self.eps))

    def mean(self, a):
        return Mean(a, self.axis, self.over)

    def sum(self, a):
        return Sum(a, self.axis, self.over)


def _lhs(text: str, latex: str, py: str) -> tuple[str, str, str]:
    return (text, latex, py)


def _forward_step(n: _Names) -> VStep:
    centred = Sub(n.X, n.mu)
    return VStep("definition", "Forward, stage by stage",
                 f"the statistics run over the {n.over} axis ({n.count} values each); ε keeps "
                 "the division finite when the variance is 0", [
                     Claim(_lhs("μ", r"\mu", "mu"), n.mean(n.X), "mu"),
                     Claim(_lhs("σ²", r"\sigma^2", "var"), n.mean(Had(centred, centred)), "var"),
                     Claim(_lhs("X̂", r"\hat X", "Xhat"), Div(centred, n.std), "Xhat"),
                     Claim(_lhs("Y", "Y", "Y"), Add(Had(n.gamma, n.Xhat), n.beta), "Y"),
                 ])


def _parameter_step(n: _Names) -> VStep:
    return VStep("parameters", "γ and β",
                 "γ and β are rows repeated over the batch, so their gradients sum over the "
                 "batch axis (whatever axis the statistics use)", [
                     Claim(_lhs("dβ", r"d\beta", "dbeta"), Sum(n.dY, 0, "batch"), "dbeta"),
                     Claim(_lhs("dγ", r"d\gamma", "dgamma"), Sum(Had(n.dY, n.Xhat), 0, "batch"),
                           "dgamma"),
                 ])


def _path_steps(n: _Names) -> list[VStep]:
    N = n.count
    direct = Div(n.dXhat, n.std)
    via_mu = Div(n.dmu, n.N)
    via_var = Div(Scale("2", Had(n.dvar, Sub(n.X, n.mu))), n.N)
    return [
        VStep("chain", "Into X̂", "Y = γ ⊙ X̂ + β, element by element",
              [Claim(_lhs("dX̂", r"d\hat X", "dXhat"), Had(n.dY, n.gamma), "dXhat")]),
        VStep("chain", "Three paths",
              "X reaches the loss three ways: directly through X̂ = (X - μ)/√(σ² + ε), through "
              "the mean μ, and through the variance σ²; the chain rule adds the three terms"),
        VStep("chain", "Through the variance",
              "∂X̂/∂σ² = -(X - μ)(σ² + ε)^(-3/2)/2 = -X̂/(2(σ² + ε)), summed over the group",
              [Claim(_lhs("dσ²", r"d\sigma^2", "dvar"),
                     Div(Scale("-1", n.sum(Had(n.dXhat, n.Xhat))),
                         Scale("2", Add(n.var, n.eps))), "dvar")]),
        VStep("chain", "Through the mean",
              "∂X̂/∂μ = -1/√(σ² + ε); the term through σ² is dσ² · mean(-2(X - μ)) = 0, "
              "because the deviations from the mean sum to 0",
              [Claim(_lhs("dμ", r"d\mu", "dmu"), Div(Scale("-1", n.sum(n.dXhat)), n.std),
                     "dmu")]),
        VStep("chain", "The three terms",
              f"∂X̂/∂X = 1/√(σ² + ε) (μ and σ² held), ∂μ/∂X = 1/{N}, "
              f"∂σ²/∂X = 2(X - μ)/{N}; the mean's term is the same for every value of a group",
              [
                  Claim(_lhs("dX (direct)", r"dX_{\text{direct}}", "dX_direct"), direct,
                        "direct"),
                  Claim(_lhs("dX (through μ)", r"dX_{\mu}", "dX_mu"), via_mu, "via_mu"),
                  Claim(_lhs("dX (through σ²)", r"dX_{\sigma^2}", "dX_var"), via_var,
                        "via_var"),
                  Claim(_lhs("dX", "dX", "dX"), Add(Add(direct, via_mu), via_var), "dX"),
              ]),
    ]


def _compact(n: _Names, batch: bool):
    """dX in the compact form: γ outside the bracket for batch norm, D = dY ⊙ γ inside for
    layer norm (γ varies along its features)."""
    D = n.dY if batch else Had(n.dY, n.gamma)
    bracket = Sub(Sub(D, n.mean(D)), Had(n.Xhat, n.mean(Had(D, n.Xhat))))
    return Had(Div(n.gamma, n.std), bracket) if batch else Div(bracket, n.std)


def _compact_step(n: _Names, batch: bool) -> VStep:
    if batch:
        words = ("with dX̂ = γ ⊙ dY and (X - μ)/(σ² + ε) = X̂/√(σ² + ε): the direct term is "
                 "γ ⊙ dY/√(σ² + ε), the mean's term -γ ⊙ mean(dY)/√(σ² + ε), the variance's "
                 "term -γ ⊙ X̂ ⊙ mean(dY ⊙ X̂)/√(σ² + ε); γ is constant down the batch, so it "
                 "comes out of the means")
    else:
        words = ("the same three terms with D = dY ⊙ γ: γ varies along the features the means "
                 "run over, so it stays inside them")
    return VStep("simplify", "Compact form", words,
                 [Claim(_lhs("dX", "dX", "dX"), _compact(n, batch), "dX")])


def _draws(axis: int):
    """For each shape: the arrays a formula reads, the central differences by every node a
    claim names, and where."""
    rng = np.random.default_rng(23)
    for m, k in _SHAPES:
        yield _draw(rng, m, k, axis)


def _draw(rng, m: int, k: int, axis: int):
    X = rng.normal(0.5, 1.5, (m, k))
    gamma, beta = rng.normal(1.0, 0.5, (1, k)), rng.normal(0.0, 0.5, (1, k))
    eps, G = float(rng.uniform(0.05, 0.5)), rng.normal(0.0, 1.0, (m, k))
    mu, var, Xhat, Y = normalization_forward(X, gamma, beta, eps, axis)
    env = {"X": X, "dY": G, "gamma": gamma, "beta": beta, "mu": mu, "var": var,
           "Xhat": Xhat, "eps": eps, "m": float(m), "n": float(k)}

    def loss(**kw):
        return float(np.sum(normalization_forward(
            kw.pop("X", X), kw.pop("gamma", gamma), kw.pop("beta", beta), eps, axis,
            **kw)[3] * G))

    truths = {
        "mu": mu, "var": var, "Xhat": Xhat, "Y": Y,
        "dbeta": numeric(lambda v: loss(beta=v), beta),
        "dgamma": numeric(lambda v: loss(gamma=v), gamma),
        "dXhat": numeric(lambda v: float(np.sum((gamma * v + beta) * G)), Xhat),
        "dvar": numeric(lambda v: loss(mu=mu, var=v), var),
        "dmu": numeric(lambda v: loss(mu=v, var=var), mu),
        "direct": numeric(lambda v: loss(X=v, mu=mu, var=var), X),
        "via_mu": numeric(lambda v: loss(X_mu=v), X),
        "via_var": numeric(lambda v: loss(X_var=v), X),
        "dX": numeric(lambda v: loss(X=v), X),
    }
    return env, truths, f"m = {m}, n = {k}"


def derive_normalization(name: str) -> VectorDerivation:
    """The derivation of ``"batchnorm"`` or ``"layernorm"``, every claim checked."""
    return _derive(name)


@functools.lru_cache(maxsize=4)
def _derive(name: str) -> VectorDerivation:
    title, axis, over = NORMALIZATIONS[name]
    n = _Names(axis, over)
    batch = axis == 0
    steps = [_forward_step(n), _parameter_step(n), *_path_steps(n), _compact_step(n, batch)]
    claims = [c for s in steps for c in s.claims]
    verify_claims(claims, _draws(axis))
    compact = steps[-1].claims[0]
    stat = "1 × n" if batch else "m × 1"
    return VectorDerivation(
        kind="normalization", title=f"Backpropagation through {title}", steps=steps,
        result={"dX": compact, "dgamma": steps[1].claims[1], "dbeta": steps[1].claims[0]},
        shapes={"X": ("m", "n"), "dY": ("m", "n"), "gamma": ("1", "n"), "beta": ("1", "n"),
                "mu": n.mu.dims, "var": n.var.dims, "Xhat": ("m", "n"), "eps": ("1", "1")},
        symbols=[("X", "m × n", "the input, one sample per row"),
                 ("dY", "m × n", "∂E/∂Y, the gradient from the layer above"),
                 ("γ, β", "1 × n", "the learned scale and shift (gamma, beta)"),
                 ("μ, σ²", stat, f"the mean and the biased variance over the {over} (mu, var)"),
                 ("X̂", "m × n", "the standardized input (Xhat)"),
                 ("ε", "", "a small constant inside the square root (eps)")],
        variable="X", function=f"Y = γ ⊙ X̂ + β ({title})",
        checked=("every formula against float64 central differences of a forward pass "
                 "written apart from the layer, on random arrays (m × n = 3 × 4, 5 × 2, "
                 "2 × 3), each path term by its own copy of X"),
        assumptions=["training mode: the mean and the variance are the statistics of the "
                     "current batch, the variance biased (divided by the count, not the count "
                     "- 1)"],
    )
