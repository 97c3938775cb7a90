"""Every closed-form derivative against SymPy's symbolic derivative, at random points.

The SymPy expressions are written here from the definitions (papers and textbooks), not taken
from ``chainrule``: they share no code with the module under test. Each is differentiated by
SymPy and evaluated with mpmath at 250 significant digits (SymPy's own forms cancel: at
z = -30, ``1 + erf(z / sqrt 2)`` is 1e-197 and ``1 - tanh(z)^2`` is 1e-26), which makes it an
exact reference for float64. ``derivative(z)`` is held to 1e-12 relative; ``backward`` with
``grad = 1`` to 1e-9, because where ``f'`` is read from the cached output (``1 - t^2`` for
tanh, ``s(1 - s)`` for sigmoid) it loses relative accuracy as ``f'`` becomes small, by design.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp

from chainrule.nn.activations import (
    ELU,
    GELU,
    SELU,
    Identity,
    LeakyReLU,
    LogSoftmax,
    Mish,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Softsign,
    Tanh,
)

x = sp.Symbol("x", real=True)

# Klambauer et al. (2017), eq. 14, to 32 digits
LAMBDA = sp.Float("1.0507009873554804934193349852946", 32)
ALPHA = sp.Float("1.6732632423543772848170429916717", 32)


def _softplus(u):
    return sp.log(1 + sp.exp(u))


EXPRESSIONS = {
    "identity": (Identity, x),
    "sigmoid": (Sigmoid, 1 / (1 + sp.exp(-x))),
    "tanh": (Tanh, sp.tanh(x)),
    "relu": (ReLU, sp.Piecewise((x, x > 0), (0, True))),
    "leaky_relu": (LeakyReLU, sp.Piecewise((x, x > 0), (sp.Rational(1, 100) * x, True))),
    "leaky_relu(-0.5)": (lambda: LeakyReLU(-0.5), sp.Piecewise((x, x > 0), (-x / 2, True))),
    "elu": (ELU, sp.Piecewise((x, x > 0), (sp.exp(x) - 1, True))),
    "elu(0.5)": (lambda: ELU(0.5), sp.Piecewise((x, x > 0), ((sp.exp(x) - 1) / 2, True))),
    "selu": (SELU, LAMBDA * sp.Piecewise((x, x > 0), (ALPHA * (sp.exp(x) - 1), True))),
    "softplus": (Softplus, _softplus(x)),
    "softsign": (Softsign, x / (1 + sp.Abs(x))),
    "gelu": (GELU, x / 2 * (1 + sp.erf(x / sp.sqrt(2)))),
    "gelu(tanh)": (
        lambda: GELU(approximate="tanh"),
        x / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (x + sp.Float("0.044715", 30) * x**3))),
    ),
    "silu": (SiLU, x / (1 + sp.exp(-x))),
    "mish": (Mish, x * sp.tanh(_softplus(x))),
}


def _reference(expr, points):
    """f and f' of ``expr`` at ``points``, evaluated by mpmath at 250 digits, as float64."""
    f = sp.lambdify(x, expr, modules="mpmath")
    df = sp.lambdify(x, sp.diff(expr, x), modules="mpmath")
    with mpmath.workdps(250):
        values = [(float(f(mpmath.mpf(p))), float(df(mpmath.mpf(p)))) for p in points]
    return np.array(values).T


@pytest.mark.parametrize("case", list(EXPRESSIONS))
def test_derivative_and_backward_match_sympy(case, rng):
    factory, expr = EXPRESSIONS[case]
    z = np.concatenate([rng.uniform(-6.0, 6.0, size=24), [-30.0, -12.5, 12.5, 30.0]])
    f, df = _reference(expr, z)
    act = factory()
    np.testing.assert_allclose(act.forward(z), f, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(factory().derivative(z), df, rtol=1e-12, atol=1e-300)
    moderate = np.abs(z) <= 6.0
    back = act.backward(np.ones_like(z))
    np.testing.assert_allclose(back[moderate], df[moderate], rtol=1e-9, atol=1e-300)
    # at +/-12.5 and +/-30 the output-based forms are exact in absolute terms
    np.testing.assert_allclose(back, df, rtol=1e-9, atol=1e-15)


def _row_function(kind, n):
    zs = sp.symbols(f"z0:{n}", real=True)
    total = sum(sp.exp(z) for z in zs)
    if kind == "softmax":
        outs = [sp.exp(z) / total for z in zs]
    else:
        outs = [z - sp.log(total) for z in zs]
    return zs, outs


@pytest.mark.parametrize(("kind", "cls"), [("softmax", Softmax), ("log_softmax", LogSoftmax)])
def test_softmax_vector_jacobian_product_matches_sympy(kind, cls, rng):
    n = 4
    zs, outs = _row_function(kind, n)
    gs = sp.symbols(f"g0:{n}", real=True)
    loss = sum(g * o for g, o in zip(gs, outs, strict=True))
    grad = sp.lambdify([*zs, *gs], [sp.diff(loss, z) for z in zs], modules="mpmath")
    z = rng.normal(0.0, 3.0, size=(6, n))
    g = rng.normal(size=(6, n))
    with mpmath.workdps(30):
        expected = np.array([[float(v) for v in grad(*map(mpmath.mpf, [*zr, *gr]))]
                             for zr, gr in zip(z, g, strict=True)])
    act = cls()
    act.forward(z)
    np.testing.assert_allclose(act.backward(g), expected, rtol=1e-11, atol=1e-14)
