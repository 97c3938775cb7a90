r"""The built-in activations and losses as SymPy expressions, with the facts the engine needs.

Names are those of the core's registries, ``chainrule.nn.ACTIVATIONS`` and
``chainrule.losses.LOSSES``, with their aliases (:func:`chainrule.nn.activations.canonical_name`
and :func:`chainrule.losses.canonical_name` resolve them); this module adds only what is its own:
the SymPy forms, and two activations of the textbooks that the core has no layer for
(``gaussian`` :math:`e^{-x^2}` and ``binary_step``, alias ``step`` or ``heaviside``).

For each activation the table holds its formula, its range (for the domain checks of a
composition) and, where the activation is invertible, its derivative written in terms of its
own output :math:`\hat y = f(z)`, the form backpropagation uses because :math:`\hat y` is
already computed (:math:`\sigma' = \hat y(1 - \hat y)`, :math:`\tanh' = 1 - \hat y^2`). The
engine checks every output form against ``sympy.diff`` before printing it.

>>> from chainrule.derivation.symbols import x
>>> activation_expr("silu", x)
x*sigmoid(x)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

import sympy
from sympy import Abs, Interval, Piecewise, exp, log, oo, sqrt

from chainrule import _registry
from chainrule import losses as _losses
from chainrule.derivation.functions import sigmoid, softplus
from chainrule.derivation.symbols import alpha, delta
from chainrule.nn import activations as _activations

__all__ = [
    "ACTIVATION_INFO",
    "DEFAULT_NUMERIC",
    "LOSS_INFO",
    "NOT_ELEMENTWISE",
    "SELU_ALPHA",
    "SELU_SCALE",
    "activation_definition",
    "activation_expr",
    "activation_names",
    "activation_title",
    "canonical_activation",
    "canonical_loss",
    "fused_activation",
    "loss_expr",
    "loss_names",
    "loss_title",
    "output_derivative",
    "refuse_logits_pairing",
]

#: SELU's fixed constants (Klambauer et al., 2017), those of ``chainrule.nn.SELU`` as exact
#: decimals of 17 digits (the shortest decimal of each double, read as a decimal).
SELU_ALPHA = sympy.Float(repr(_activations.SELU.alpha), 17)
SELU_SCALE = sympy.Float(repr(_activations.SELU.scale), 17)


@dataclass(frozen=True)
class ActivationInfo:
    """What the engine knows about one activation.

    ``expr(u)`` is the compact formula (using :func:`sigmoid`, :func:`softplus`), ``output_form``
    maps :math:`\\hat y` to :math:`f'` where :math:`f'` is a function of the output alone, and
    ``range`` is the set of values the activation takes; ``summary`` is the formula in words
    (for the core's activations, the class's ``formula``).
    """

    name: str
    expr: Callable[[sympy.Expr], sympy.Expr]
    range: sympy.Set
    output_form: Callable[[sympy.Expr], sympy.Expr] | None
    summary: str


def _relu(u):
    return Piecewise((u, u > 0), (0, True))


def _leaky_relu(u):
    return Piecewise((u, u > 0), (alpha * u, True))


def _elu(u):
    return Piecewise((u, u > 0), (alpha * (exp(u) - 1), True))


def _selu(u):
    return Piecewise((SELU_SCALE * u, u > 0), (SELU_SCALE * SELU_ALPHA * (exp(u) - 1), True))


def _gelu(u):
    return u * (1 + sympy.erf(u / sqrt(2))) / 2


def _step(u):
    return Piecewise((1, u >= 0), (0, True))


# The SymPy form of each of the core's elementwise activations, by the core's name: the formula
# of u, the range, and f' as a function of the output f (None where f is not invertible).
_SYMPY_FORMS: dict[str, tuple] = {
    "identity": (lambda u: u, Interval(-oo, oo), lambda f: sympy.S.One),
    "sigmoid": (sigmoid, Interval.open(0, 1), lambda f: f * (1 - f)),
    "tanh": (sympy.tanh, Interval.open(-1, 1), lambda f: 1 - f**2),
    "relu": (_relu, Interval(0, oo), lambda f: Piecewise((1, f > 0), (0, True))),
    "leaky_relu": (_leaky_relu, Interval(-oo, oo),
                   lambda f: Piecewise((1, f > 0), (alpha, True))),
    "elu": (_elu, Interval.open(-alpha, oo), lambda f: Piecewise((1, f > 0), (f + alpha, True))),
    "selu": (_selu, Interval.open(-SELU_SCALE * SELU_ALPHA, oo),
             lambda f: Piecewise((SELU_SCALE, f > 0), (f + SELU_SCALE * SELU_ALPHA, True))),
    "softplus": (softplus, Interval.open(0, oo), lambda f: 1 - exp(-f)),
    "softsign": (lambda u: u / (1 + Abs(u)), Interval.open(-1, 1), lambda f: (1 - Abs(f)) ** 2),
    "gelu": (_gelu, Interval(sympy.Float("-0.16997120697", 11), oo), None),
    "silu": (lambda u: u * sigmoid(u), Interval(sympy.Float("-0.27846454276", 11), oo), None),
    "mish": (lambda u: u * sympy.tanh(softplus(u)), Interval(sympy.Float("-0.30884003", 8), oo),
             None),
}

# The engine's own activations, which the core has no layer for: their formula text as well.
_OWN = (
    ActivationInfo("gaussian", lambda u: exp(-(u**2)), Interval.Lopen(0, 1), None, "e^(-z²)"),
    ActivationInfo("binary_step", _step, sympy.FiniteSet(0, 1), lambda f: sympy.S.Zero,
                   "1 for z ≥ 0, 0 otherwise"),
)

#: name -> ActivationInfo: the core's elementwise activations in the order of
#: ``chainrule.nn.ACTIVATIONS`` (their formula text is the class's ``formula``), then the
#: engine's own.
ACTIVATION_INFO: dict[str, ActivationInfo] = {
    **{name: ActivationInfo(name, *_SYMPY_FORMS[name], cls.formula)
       for name, cls in _activations.ACTIVATIONS.items() if name in _SYMPY_FORMS},
    **{a.name: a for a in _OWN},
}

#: The engine's own aliases, for its own activations; the core's aliases apply to the others.
_ACTIVATION_ALIASES = {
    "step": "binary_step",
    "heaviside": "binary_step",
}

#: The core's activations that act on a whole vector: no single-variable formula here.
NOT_ELEMENTWISE = tuple(n for n, c in _activations.ACTIVATIONS.items() if not c.elementwise)

#: The numbers that stand in for ``alpha`` where a number is needed (plots, domain maps);
#: they are the defaults of ``chainrule.nn``'s LeakyReLU and ELU.
DEFAULT_NUMERIC: dict[str, dict[sympy.Symbol, sympy.Expr]] = {
    "leaky_relu": {alpha: sympy.Rational(1, 100)},
    "elu": {alpha: sympy.S.One},
}


@dataclass(frozen=True)
class LossInfo:
    r"""One loss as a function of a single prediction :math:`\hat y` and its target :math:`y`.

    ``domain`` is where the loss is defined as a function of :math:`\hat y` (BCE needs
    :math:`0 < \hat y < 1`); ``on_logits`` marks losses that take the raw score instead.
    """

    name: str
    domain: sympy.Set
    on_logits: bool
    summary: str


# Where each of the core's losses is defined as a function of its prediction, by its name.
_LOSS_DOMAINS = {
    "mse": Interval(-oo, oo),
    "bce": Interval.open(0, 1),
    "bce_with_logits": Interval(-oo, oo),
    "ce": Interval.Lopen(0, 1),
    "ce_with_logits": Interval(-oo, oo),
    "huber": Interval(-oo, oo),
}

#: name -> LossInfo, for every loss of ``chainrule.losses.LOSSES`` (``on_logits`` is the
#: class's ``from_logits``, the summary its ``formula``).
LOSS_INFO: dict[str, LossInfo] = {
    name: LossInfo(name, _LOSS_DOMAINS[name], cls.from_logits, cls.formula)
    for name, cls in _losses.LOSSES.items()
}


def activation_title(name: str) -> str:
    """The activation in words: the core class's ``title``, or the engine's own name."""
    cls = _activations.ACTIVATIONS.get(name)
    return cls.title if cls is not None else name.replace("_", " ")


def loss_title(name: str) -> str:
    """The loss in words (``"binary cross-entropy"``): the core class's ``title``."""
    return _losses.LOSSES[canonical_loss(name)].title


def activation_names() -> tuple[str, ...]:
    """The activation names the engine knows, built-in ones first."""
    return tuple(ACTIVATION_INFO)


def loss_names() -> tuple[str, ...]:
    """The loss names the engine knows."""
    return tuple(LOSS_INFO)


def canonical_activation(name: str) -> str:
    """The canonical activation name for ``name``, or a ValueError listing the known ones.

    Every name, alias and class name that ``chainrule.nn.get`` accepts, then the engine's own.
    """
    key = _activations.canonical_name(str(name))
    if key is None:
        key = _registry.normalize(str(name))
        key = _ACTIVATION_ALIASES.get(key, key)
    if key in ACTIVATION_INFO or key in NOT_ELEMENTWISE:
        return key
    known = (*ACTIVATION_INFO, *NOT_ELEMENTWISE)
    raise ValueError(f"Unknown activation {name!r}; known: {', '.join(known)}."
                     f"{_did_you_mean(name, known)}")


def _did_you_mean(name, known) -> str:
    """The sentence "Did you mean sigmoid?" for a near miss of one of ``known`` (by difflib), or "".

    The sentence ends the "Unknown ..." message, after the list of known names."""
    close = difflib.get_close_matches(str(name).strip().lower(), known, n=1, cutoff=0.7)
    return f" Did you mean {close[0]}?" if close else ""


def canonical_loss(name: str) -> str:
    """The canonical loss name for ``name`` (any ``chainrule.losses.get`` accepts), or raise."""
    key = _losses.canonical_name(str(name))
    if key in LOSS_INFO:
        return key
    raise ValueError(f"Unknown loss {name!r}; known: {', '.join(LOSS_INFO)}."
                     f"{_did_you_mean(name, tuple(LOSS_INFO))}")


def fused_activation(lss: str) -> str | None:
    r"""The output activation whose derivative cancels into the derivative of loss ``lss``
    (sigmoid for BCE, softmax for CE), which makes dE/dz the short :math:`\hat y - y`; None
    for a loss without one."""
    return _losses.LOSSES[canonical_loss(lss)].fuses_with


def refuse_logits_pairing(act: str, lss: str) -> None:
    """Refuse an activation other than the identity before a with-logits loss.

    Such a loss takes the raw scores and applies its own activation (the class's ``applies``):
    softmax + ce_with_logits would apply the softmax twice, and its dE/dz is not p - t. The
    message names both fixes: the probability loss whose ``logits_loss`` it is, after that
    activation, or the identity before the with-logits loss.
    """
    applies = _losses.LOSSES[lss].applies
    if applies is None or act == "identity":
        return
    plain = next((n for n, c in _losses.LOSSES.items() if c.logits_loss == lss), None)
    twice = f", which would apply the {act} twice" if act == applies else ""
    fixes = f"activation='identity' with loss={lss!r}"
    if act == applies and plain is not None:
        fixes = f"loss={plain!r} with activation={act!r}, or {fixes}"
    elif plain is not None:
        fixes = f"{fixes}, or loss={plain!r} with activation={applies!r}"
    raise ValueError(
        f"The loss {lss} takes the raw scores and applies the {applies} itself, so the "
        f"activation before it must be identity; got {act}{twice}. Use {fixes}."
    )


def activation_expr(name: str, var: sympy.Expr) -> sympy.Expr:
    r"""The activation ``name`` applied to ``var``, e.g. ``sigmoid(var)`` or ``var*sigmoid(var)``.

    Sigmoid and softplus stay as the unevaluated functions :class:`sigmoid` and
    :class:`softplus`; ReLU, leaky ReLU, ELU, SELU and the binary step are ``Piecewise``;
    leaky ReLU and ELU keep their slope as the symbol ``alpha``. Softmax and log-softmax act
    on a vector and have no single-variable form: they raise ``ValueError``.
    """
    key = canonical_activation(name)
    if key in NOT_ELEMENTWISE:
        raise ValueError(
            f"The activation {key!r} acts on a whole vector, not one number, so it has no "
            "single-variable formula; derive it with its loss: "
            "derive(activation='softmax', loss='ce')."
        )
    return ACTIVATION_INFO[key].expr(sympy.sympify(var, strict=True))


def activation_definition(name: str, var: sympy.Expr) -> sympy.Expr:
    r"""The activation as a textbook defines it: where a derivation of ``name`` starts.

    The sigmoid and softplus are spelled out, :math:`\sigma(x) = 1 / (1 + e^{-x})` and
    :math:`\log(1 + e^x)`, since deriving them is the point; the activations built on them
    keep them as functions (SiLU is :math:`x\,\sigma(x)`) so that their steps use the
    sigmoid rule.
    """
    expr = activation_expr(name, var)
    if isinstance(expr, sigmoid | softplus):
        return expr.rewrite(sympy.exp)
    return expr


def output_derivative(name: str, out: sympy.Expr) -> sympy.Expr | None:
    r"""The derivative of activation ``name`` in terms of its output ``out``, or None.

    ``output_derivative("tanh", yhat)`` is :math:`1 - \hat y^2`. GELU, SiLU, Mish and the
    Gaussian are not invertible, so their derivative is not a function of the output alone.
    """
    form = ACTIVATION_INFO[canonical_activation(name)].output_form
    return None if form is None else sympy.sympify(form(out), strict=True)


def loss_expr(name: str, yhat: sympy.Expr, y: sympy.Expr, *, half: bool = False) -> sympy.Expr:
    r"""The per-example loss ``name`` as a SymPy expression of the prediction and the target.

    - ``mse``: :math:`(\hat y - y)^2`, or :math:`\tfrac12(\hat y - y)^2` with ``half=True``;
    - ``bce``: :math:`-(y \log \hat y + (1 - y)\log(1 - \hat y))`;
    - ``bce_with_logits``: :math:`\operatorname{softplus}(z) - y z`, with the logit as ``yhat``;
    - ``ce``: the term of one class, :math:`-t \log p` (``yhat`` is ``p``, ``y`` is ``t``);
    - ``huber``: :math:`\tfrac12 r^2` for :math:`|r| \le \delta`, else
      :math:`\delta(|r| - \delta/2)`, with :math:`r = \hat y - y`.

    ``ce_with_logits`` couples every class through the softmax: it raises ``ValueError`` and
    names the composition to derive instead.
    """
    key = canonical_loss(name)
    yhat, y = sympy.sympify(yhat, strict=True), sympy.sympify(y, strict=True)
    if key == "mse":
        return (yhat - y) ** 2 / 2 if half else (yhat - y) ** 2
    if key == "bce":
        return -(y * log(yhat) + (1 - y) * log(1 - yhat))
    if key == "bce_with_logits":
        return softplus(yhat) - y * yhat
    if key == "ce":
        return -y * log(yhat)
    if key == "huber":
        r = yhat - y
        return Piecewise((r**2 / 2, Abs(r) <= delta), (delta * (Abs(r) - delta / 2), True))
    raise ValueError(
        "The loss 'ce_with_logits' couples every class through the softmax and has no "
        "single-term form; derive it as derive(activation='softmax', loss='ce')."
    )
