r"""The fixed, documented symbol names of the derivation engine.

=========  ===========================================================
name       meaning
=========  ===========================================================
``x``      the input of a single function (``derive("x*sigmoid(x)")``)
``z``      the pre-activation :math:`z = w x` of a composition
``yhat``   an activation's output :math:`\hat y = f(z)`
``y``      the target
``w``      a weight
``p``      a softmax probability (softmax + cross-entropy)
``t``      a one-hot target (softmax + cross-entropy)
``eta``    the learning rate :math:`\eta`
``alpha``  the slope or scale of leaky ReLU and ELU
``m``      the number of examples in a batch
``delta``  the threshold of the Huber loss
=========  ===========================================================

Every symbol is real (``sympy.Symbol(name, real=True)``), and every module of the engine uses
these same objects, so ``parse_expression("yhat - y")`` and ``derive(...).result`` agree.
"""

from __future__ import annotations

import sympy

__all__ = ["SYMBOLS", "alpha", "delta", "eta", "m", "p", "t", "w", "x", "y", "yhat", "z"]

x, z, yhat, y, w, p, t = (
    sympy.Symbol(name, real=True) for name in ("x", "z", "yhat", "y", "w", "p", "t")
)
eta = sympy.Symbol("eta", positive=True)
alpha = sympy.Symbol("alpha", positive=True)
m = sympy.Symbol("m", positive=True, integer=True)
delta = sympy.Symbol("delta", positive=True)

#: name -> Symbol: the only free names a formula may use.
SYMBOLS: dict[str, sympy.Symbol] = {
    s.name: s for s in (x, z, yhat, y, w, p, t, eta, alpha, m, delta)
}
