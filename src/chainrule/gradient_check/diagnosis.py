r"""Name the mistake: the relation between a claimed gradient :math:`G` and the true :math:`T`.

A relation is stated only when it holds at *every* checked point, within the tolerance of the
check (widened where the relation multiplies the numerical noise of :math:`T`). The catalogue,
in the order the relations are tried:

==========================  ==============================================================
kind                        relation
==========================  ==============================================================
``shape``                   :math:`G` does not have the shape of the variable
``non_finite``              :math:`G` is NaN or infinite where :math:`T` is finite
``zero``                    :math:`G = 0` although :math:`T \ne 0`
``sign_flipped``            :math:`G = -T`
``mean_forgotten``          :math:`G = \pm mT`: the :math:`1/m` of the mean forgotten
``mean_twice``              :math:`G = \pm T/m`: the :math:`1/m` applied twice
``scaled``                  :math:`G = cT` for another :math:`c` (2 or 1/2, say)
``transposed``              :math:`G = T^\top`
``derivative_missing``      :math:`T = G \odot f'(z)`: dE/dyhat given where dE/dz was asked
``derivative_twice``        :math:`G = T \odot f'(z)`: an extra activation factor
``derivative_wrong_array``  :math:`G \odot f'(z) = T \odot f'(f(z))`: :math:`f'` of the output
                            (or the output form fed the input)
``wrong_variable``          :math:`G = T \odot f'(z)` where dE/dyhat was asked: dE/dz given
``softmax_diagonal``        :math:`G = g \odot p(1-p)` where :math:`T = p \odot (g - g\cdot p)`
``term_sign``               :math:`G = T - 2\,t_k` for one (or more) of the given terms, or
                            :math:`G = \pm T` with the sign wrong on a subset of the elements
``term_missing``            :math:`G = T - t_k`: a term left out
==========================  ==============================================================

Every kind is a key of :data:`~chainrule.gradient_check.catalogue.MISTAKES`, the one catalogue
that every checker names its mistakes from.

Context comes as optional hints, one :class:`Hints` (or its fields as keywords of
:func:`diagnose` and :func:`~chainrule.gradient_check.gradcheck`), all NumPy arrays
broadcastable to the gradient unless said:

- ``activation`` (a name of :func:`chainrule.nn.get`) and ``z`` (its input, the
  pre-activation): the activation relations, and ``softmax_diagonal`` (softmax over the last
  axis of ``z``);
- ``wrt``: ``"z"`` (the default) when :math:`G` should be :math:`\partial E/\partial z`,
  ``"yhat"`` when it should be :math:`\partial E/\partial\hat y`;
- ``x``: the input :math:`X` (shape ``(m, n)``) of a linear map :math:`z = Xw`, when :math:`G`
  is the gradient of the weights :math:`w` and ``z`` has shape ``(m,)`` or ``(m, k)``: the
  activation relations are then tested on :math:`\partial E/\partial z` through
  :math:`\partial E/\partial w = X^\top \partial E/\partial z` (possible while
  :math:`m < 2n`);
- ``y``: the targets, to say *which* term of a cross-entropy has the wrong sign;
- ``m``: the batch size, to recognise :math:`c = m` and :math:`c = 1/m`;
- ``terms``: the true gradient split into named terms (a mapping name -> array, or a list),
  for ``term_sign`` and ``term_missing``.

>>> import numpy as np
>>> T = np.array([0.5, -1.0, 2.0])
>>> diagnose(-T, T).kind
'sign_flipped'
>>> diagnose(4 * T, T, m=4).factor
4.0
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

import numpy as np

from chainrule.gradient_check.catalogue import mistake
from chainrule.gradient_check.names import OUTPUT_FORMS, derivative_text

__all__ = ["KINDS", "Diagnosis", "Hints", "diagnose"]

#: The kinds :func:`diagnose` can name, in the order it tries them; each is a key of
#: :data:`~chainrule.gradient_check.catalogue.MISTAKES`.
KINDS = ("shape", "non_finite", "zero", "sign_flipped", "mean_forgotten", "mean_twice", "scaled",
         "transposed", "derivative_missing", "derivative_twice", "derivative_wrong_array",
         "wrong_variable", "softmax_diagonal", "term_sign", "term_missing")


@dataclass(frozen=True)
class Diagnosis:
    """One named relation between the claimed and the true gradient.

    ``kind`` is a key of :data:`~chainrule.gradient_check.catalogue.MISTAKES`; ``sentence`` says
    it to a person; ``factor`` is the constant :math:`c` where one was fitted (:math:`G = cT`),
    else None; ``indices`` lists the elements concerned where the relation holds on a subset
    only (``term_sign`` found from the elements), and ``where`` says them in words.
    """

    kind: str
    sentence: str
    factor: float | None = None
    indices: tuple = ()
    where: str | None = None

    def __post_init__(self) -> None:
        mistake(self.kind)

    def __str__(self) -> str:
        return self.sentence


@dataclass(frozen=True)
class Hints:
    """What is known about the gradient being checked, for the diagnosis (see the module
    docstring): the ``activation`` and its input ``z``, which gradient is claimed (``wrt``),
    the input ``x`` of a linear map, the targets ``y``, the batch size ``m`` and the true
    gradient split into ``terms``. Every field is optional."""

    activation: object = None
    z: object = None
    wrt: str | None = None
    x: object = None
    y: object = None
    m: int | None = None
    terms: object = None

    @classmethod
    def collect(cls, hints: Hints | None, keywords: dict, owner: str) -> Hints:
        """``hints``, or the :class:`Hints` made of ``keywords`` (its fields as keywords of
        ``owner``); never both."""
        names = [f.name for f in fields(cls)]
        unknown = [k for k in keywords if k not in names]
        if unknown:
            raise TypeError(
                f"{owner}() got an unexpected keyword argument {unknown[0]!r}. The hints are "
                f"{', '.join(names[:-1])} and {names[-1]}."
            )
        if hints is None:
            return cls(**keywords)
        if not isinstance(hints, cls):
            raise TypeError(f"The hints must be a Hints; got {type(hints).__name__}.")
        if keywords:
            raise TypeError(
                f"{owner}() got both hints= and the hint {next(iter(keywords))!r}; put it in "
                "the Hints instead."
            )
        return hints

    def but(self, **changes) -> Hints:
        """A copy with ``changes``."""
        return replace(self, **changes)


def diagnose(
    claimed,
    true,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    noise=None,
    hints: Hints | None = None,
    **hint_fields,
) -> Diagnosis | None:
    r"""Return the relation between ``claimed`` (:math:`G`) and ``true`` (:math:`T`), or None.

    None means either that :math:`G` agrees with :math:`T` within the tolerance, or that no
    relation of the catalogue holds at every point. ``noise`` is the per-element
    uncertainty of ``true`` (from finite differences), added to ``atol``. ``hints`` (a
    :class:`Hints`, or its fields as keywords: ``activation=``, ``z=``, ``m=``, ...) give the
    context; see the module docstring.
    """
    hints = Hints.collect(hints, hint_fields, "diagnose")
    g = np.asarray(claimed, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    if g.shape != t.shape:
        return shape_diagnosis(g, t, rtol=rtol, atol=atol)
    return diagnose_stack(
        g[np.newaxis], t[np.newaxis], rtol=rtol, atol=atol,
        noise=None if noise is None else np.asarray(noise, dtype=np.float64)[np.newaxis],
        hints=hints,
    )


def shape_diagnosis(
    claimed: np.ndarray, true: np.ndarray, *, rtol: float, atol: float
) -> Diagnosis:
    """The claimed gradient has the wrong shape: transposed (with or without a factor), or not."""
    if claimed.ndim == 2 and claimed.T.shape == true.shape:
        found = diagnose_stack(claimed.T[np.newaxis], true[np.newaxis], rtol=rtol, atol=atol)
        if found is not None:
            detail = f" Once transposed back: {found.sentence}"
        elif _close_all(claimed.T, true, rtol, atol):
            detail = ""
        else:
            detail = " Even transposed back it disagrees with the true gradient."
        factor = found.factor if found is not None else None
        return Diagnosis(
            "transposed",
            f"The claimed gradient has shape {claimed.shape}, the transpose of the variable's "
            f"shape {true.shape}: a gradient has the shape of what it differentiates. For "
            "Z = XW the weight gradient is dE/dW = Xᵀ·dE/dZ, not (dE/dZ)ᵀX." + detail,
            factor=factor,
        )
    return Diagnosis(
        "shape",
        f"The claimed gradient has shape {claimed.shape} but the variable has shape "
        f"{true.shape}: a gradient has exactly the shape of what it differentiates (sum over the "
        "batch axis for a bias, keep the (in, out) layout for a weight matrix).",
    )


def _close_all(a, b, rtol, atol) -> bool:
    return bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


def _fmt(v: float) -> str:
    return format(float(v), ".4g")


def _index_text(flat_index: int, shape: tuple) -> str:
    idx = np.unravel_index(flat_index, shape)
    if len(idx) == 1:
        return str(int(idx[0]))
    return "(" + ", ".join(str(int(i)) for i in idx) + ")"


class _Relations:
    """The tests of one pair (G, T); both have a leading axis of projections."""

    def __init__(self, g, t, rtol, atol, noise):
        self.g = g
        self.t = t
        self.atol = np.broadcast_to(atol + (0.0 if noise is None else noise), t.shape)
        # Relations are tested a little more loosely than the check itself; they remain exact
        # statements, since a wrong guess misses by far more than this.
        self.rel = min(max(10.0 * rtol, 1e-6), 0.05)
        self.informative = (np.abs(g) > self.atol + self.rel * np.abs(t)) | (
            np.abs(t) > self.atol + self.rel * np.abs(g)
        )

    def holds(self, lhs, rhs, amplify=1.0) -> bool:
        """Whether ``lhs == rhs`` at every point, allowing T's noise times ``amplify``."""
        err = np.abs(lhs - rhs)
        bound = self.atol * np.maximum(1.0, np.abs(amplify)) + self.rel * np.maximum(
            np.abs(lhs), np.abs(rhs)
        )
        return bool(np.all(err <= bound))

    def fit(self, lhs, rhs) -> float | None:
        """The least-squares c of ``lhs = c * rhs``, or None where rhs is all zero."""
        denom = float(np.sum(rhs * rhs))
        if denom == 0.0 or not np.isfinite(denom):
            return None
        return float(np.sum(lhs * rhs) / denom)


def _named_factor(c: float, m: int | None, rel: float) -> str | None:
    """The usual cause of a factor c, or None when c is not a value with a usual cause."""

    def near(a, b):
        return abs(a - b) <= max(rel, 1e-9) * max(abs(a), abs(b))

    sign = "the sign is flipped, and " if c < 0 else ""
    a = abs(c)
    if m is not None and m > 1:
        if near(a, m):
            return (f"{sign}the factor is m = {m}: the 1/m of the mean loss over the batch was "
                    "forgotten")
        if near(a, 1.0 / m):
            return (f"{sign}the factor is 1/m = 1/{m}: divided by m once too often (the loss is "
                    "a sum over the batch, or the 1/m was applied twice)")
    if near(a, 2.0):
        return (f"{sign}the factor is 2: the gradient is doubled; with the loss ½(yhat - y)² the "
                "derivative is yhat - y, not 2(yhat - y) (or one term was added twice)")
    if near(a, 0.5):
        return (f"{sign}the factor is 1/2: the gradient is halved; the derivative of "
                "(yhat - y)² is 2(yhat - y), and the 2 was dropped (the ½ belongs only to "
                "½(yhat - y)²)")
    if m is None and a >= 2 and near(a, round(a)):
        n = round(a)
        return (f"{sign}if {n} is the batch size m, the 1/m of the mean loss was forgotten "
                "(pass m= to be sure)")
    if m is None and 0 < a <= 0.5 and near(1.0 / a, round(1.0 / a)):
        n = round(1.0 / a)
        return (f"{sign}the factor is 1/{n}: if {n} is the batch size m, the gradient was "
                "divided by m once too often (pass m= to be sure)")
    return None


def _factor_clause(c: float, m, rel: float) -> str:
    if abs(c - 1.0) <= rel:
        return ""
    if abs(c + 1.0) <= rel:
        return ", and the sign is flipped as well"
    named = _named_factor(c, m, rel)
    return f", and G is off by a factor c = {_fmt(c)} as well" + (f" ({named})" if named else "")


def _activation_name(activation) -> str:
    """The registry name of ``activation`` (a name or an activation instance)."""
    if isinstance(activation, str):
        from chainrule import nn

        return nn.get(activation).name
    name = getattr(activation, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"The activation must be a name such as 'sigmoid' or a chainrule activation; got "
            f"{type(activation).__name__}."
        )
    return name


def _activation_arrays(activation, z):
    """(f(z), f'(z), f'(f(z))) through :func:`chainrule.nn.get`, on copies."""
    from chainrule import nn

    def fresh():
        return copy.deepcopy(activation) if not isinstance(activation, str) else nn.get(activation)

    zz = np.array(z, dtype=np.float64, copy=True)
    fz = np.array(fresh().forward(zz.copy()), dtype=np.float64, copy=True)
    d = np.array(fresh().derivative(zz.copy()), dtype=np.float64, copy=True)
    d_out = np.array(fresh().derivative(fz.copy()), dtype=np.float64, copy=True)
    return fz, d, d_out


def diagnose_stack(
    g: np.ndarray,
    t: np.ndarray,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    noise=None,
    hints: Hints = Hints(),
) -> Diagnosis | None:
    """:func:`diagnose` for arrays with a leading axis of projections (shape ``(k, *var)``)."""
    activation, z, wrt, x = hints.activation, hints.z, hints.wrt, hints.x
    y, m, terms = hints.y, hints.m, hints.terms
    if wrt is not None and wrt not in ("z", "yhat"):
        raise ValueError(f"The hint wrt must be 'z' or 'yhat'; got {wrt!r}.")
    var_shape = t.shape[1:]
    if x is None:
        _check_hint_shape("z", z, var_shape, " (or x= when the gradient is a linear map's weights)")
    _check_hint_shape("y", y, var_shape, "")
    if terms is not None:
        values = terms.values() if isinstance(terms, Mapping) else terms
        for value in values:
            _check_hint_shape("each of terms", value, var_shape, "")

    bad = ~np.isfinite(g) & np.isfinite(t)
    if bad.any():
        flat = int(np.argmax(bad.reshape(bad.shape[0], -1).any(axis=0)))
        first = np.argwhere(bad)[0]
        return Diagnosis(
            "non_finite",
            f"The claimed gradient is {'NaN' if np.isnan(g[tuple(first)]) else 'infinite'} at "
            f"index {_index_text(flat, var_shape)} where the true gradient is finite "
            f"({_fmt(t[tuple(first)])}): a division by yhat(1 - yhat) or a log of 0 at a "
            "saturated output. Start backpropagation from the fused dE/dz = yhat - y "
            "(sigmoid + BCE, softmax + CE) instead of dividing by yhat(1 - yhat).",
        )
    if not np.all(np.isfinite(g)):
        return None
    rel = _Relations(g, t, rtol, atol, noise)
    if not rel.informative.any():
        return None
    if np.all(np.abs(g) <= rel.atol) and not np.all(np.abs(t) <= rel.atol):
        return Diagnosis(
            "zero",
            "The claimed gradient is zero everywhere but the true one is not: the backward pass "
            "never wrote this gradient (or wrote it into a copy, or the parameter is not "
            "connected to the output in the backward pass).",
        )

    found = _scaled(rel, m)
    if found is None and len(var_shape) == 2 and var_shape[0] == var_shape[1]:
        found = _transposed(g, t, rtol, atol, m)
    if found is None and activation is not None and z is not None:
        found = _activation(rel, activation, z, wrt, x, m)
    if found is None and terms is not None:
        found = _terms(rel, terms)
    if found is None:
        found = _sign_on_some_elements(rel, y)
    return found


def _check_hint_shape(name: str, value, var_shape: tuple, extra: str) -> None:
    if value is None:
        return
    try:
        np.broadcast_shapes(np.shape(value), var_shape)
    except ValueError:
        raise ValueError(
            f"The hint {name} has shape {np.shape(value)} but the gradient has shape "
            f"{var_shape}; pass an array of the gradient's shape{extra}."
        ) from None


def _scaled(rel: _Relations, m) -> Diagnosis | None:
    c = rel.fit(rel.g, rel.t)
    if c is None or not rel.holds(rel.g, c * rel.t, amplify=c):
        return None
    if abs(c - 1.0) <= rel.rel:
        return None  # equal within the looser tolerance: nothing to name
    if abs(c + 1.0) <= rel.rel:
        return Diagnosis(
            "sign_flipped",
            "G = -T at every checked point: the sign is flipped. Look for a dropped minus (the "
            "leading one of a cross-entropy, -(y·log(yhat) + ...)), or y - yhat where yhat - y "
            "belongs.",
            factor=-1.0,
        )
    named = _named_factor(c, m, rel.rel)
    n_informative = int(np.count_nonzero(np.abs(rel.t) > rel.atol))
    if named is None and n_informative < 2:
        return None  # one number fits any factor: nothing is proven
    cause = named or ("look for a constant applied once too often or forgotten (a 1/m, the "
                      "2 of a square, a learning rate)")
    return Diagnosis(
        _factor_kind(c, m, rel.rel),
        f"G = c·T with c = {_fmt(c)} at every checked point; {cause}.",
        factor=c,
    )


def _factor_kind(c: float, m, rel: float) -> str:
    """``mean_forgotten`` for c = ±m, ``mean_twice`` for c = ±1/m (m known), else ``scaled``."""
    if m is None or m <= 1:
        return "scaled"
    a = abs(c)
    tol = max(rel, 1e-9)
    if abs(a - m) <= tol * max(a, m):
        return "mean_forgotten"
    if abs(a - 1.0 / m) <= tol * max(a, 1.0 / m):
        return "mean_twice"
    return "scaled"


def _transposed(g, t, rtol, atol, m) -> Diagnosis | None:
    gt = np.swapaxes(g, -1, -2)
    if np.allclose(gt, g, rtol=rtol, atol=atol):
        return None  # symmetric: a transpose changes nothing
    rel = _Relations(gt, t, rtol, atol, None)
    c = rel.fit(gt, t)
    if c is None or not rel.holds(gt, c * t, amplify=c):
        return None
    clause = _factor_clause(c, m, rel.rel)
    return Diagnosis(
        "transposed",
        "G = Tᵀ at every checked point: the gradient is transposed (for Z = XW, "
        f"dE/dW = Xᵀ·dE/dZ, not (dE/dZ)ᵀX){clause}.",
        factor=None if abs(c - 1.0) <= rel.rel else c,
    )


def _activation(rel: _Relations, activation, z, wrt, x, m) -> Diagnosis | None:
    name = _activation_name(activation)
    zz = np.asarray(z, dtype=np.float64)
    if name == "softmax":
        if x is not None:
            return None
        return _softmax_diagonal(rel, zz)
    if name == "log_softmax":
        return None
    _, d, d_out = _activation_arrays(activation, zz)
    hypotheses = _activation_hypotheses(name, zz, d, d_out, wrt or "z")
    if x is not None:
        return _through_linear(rel, hypotheses, x, zz)
    for kind, a, b, sentence in hypotheses:
        a = np.broadcast_to(a, rel.t.shape)
        b = np.broadcast_to(b, rel.t.shape)
        # The hypothesis must say something that G = cT does not: a/b must vary where it counts.
        ratio_differs = np.abs(a - b) > rel.rel * np.maximum(np.abs(a), np.abs(b))
        if not (ratio_differs & rel.informative).any():
            continue
        lhs, rhs = rel.g * a, rel.t * b
        c = rel.fit(lhs, rhs)
        if c is None:
            continue
        if _named_factor(c, m, rel.rel) is None and abs(abs(c) - 1.0) > rel.rel:
            continue
        if not rel.holds(lhs, c * rhs, amplify=c * b):
            continue
        return Diagnosis(kind, sentence + _factor_clause(c, m, rel.rel) + ".",
                         factor=None if abs(c - 1.0) <= rel.rel else c)
    return None


def _activation_hypotheses(name: str, zz, d, d_out, wrt: str) -> list[tuple]:
    """Each mistake through the activation as ``(kind, a, b, sentence)``: it holds when
    ``G * a == c * T * b``."""
    deriv = derivative_text(name)
    if wrt != "z":
        return [
            ("wrong_variable", np.ones_like(d), d,
             f"G = T·f'(z) at every checked point: this is dE/dz, not dE/dyhat; the derivative "
             f"of the {name} activation, {deriv}, was multiplied in, but dE/dyhat stops before "
             "the activation (dE/dyhat was confused with dE/dz = dE/dyhat·f'(z))"),
        ]
    hypotheses = [
        ("derivative_missing", d, np.ones_like(d),
         f"T = G·f'(z) at every checked point: the derivative of the {name} activation, "
         f"{deriv}, is missing. The claimed gradient is dE/dyhat, not dE/dz: the chain rule "
         "still has to multiply by dyhat/dz"),
        ("derivative_twice", np.ones_like(d), d,
         f"G = T·f'(z) at every checked point: an extra activation factor; the derivative "
         f"of the {name} activation, {deriv}, is applied twice" + (
             " (sigmoid + BCE's delta yhat - y already contains σ'(z): it cancelled the BCE "
             "denominator yhat(1 - yhat))" if name == "sigmoid" else
             " (the gradient reaching the activation already contained it)")),
        ("derivative_wrong_array", d, d_out,
         f"G·f'(z) = T·f'(f(z)) at every checked point: the {name} derivative was "
         "evaluated at the output yhat = f(z) instead of at the input z (f'(yhat) rather "
         "than f'(z))" + (f"; written through the output it is {OUTPUT_FORMS[name][0]}"
                          if name in OUTPUT_FORMS else "")),
    ]
    if name in OUTPUT_FORMS:
        text, form = OUTPUT_FORMS[name]
        hypotheses.append((
            "derivative_wrong_array", d, form(zz),
            f"G·f'(z) = T·({text} at yhat = z) at every checked point: the {name} "
            f"derivative's output form {text} was evaluated at the input z instead of at "
            "the output yhat = f(z)"))
    return hypotheses


def _through_linear(rel: _Relations, hypotheses, x, z) -> Diagnosis | None:
    r"""Test ``G_w = Xᵀ δ_G``, ``T_w = Xᵀ δ_T`` with ``δ_G = φ ⊙ δ_T`` for some unknown δ_T."""
    X = np.asarray(x, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(
            f"The hint x must be the 2-D input of the linear map z = x @ w; got shape {X.shape}."
        )
    n_ex, n_feat = X.shape
    var_shape = rel.t.shape[1:]
    if var_shape[:1] != (n_feat,) or z.shape[:1] != (n_ex,) or z.shape[1:] != var_shape[1:]:
        raise ValueError(
            f"With x of shape {X.shape}, the gradient must have shape ({n_feat},) or "
            f"({n_feat}, k) and z shape ({n_ex},) or ({n_ex}, k); got gradient {var_shape} and "
            f"z {z.shape}."
        )
    if n_ex >= 2 * n_feat:
        return None  # any pair (G, T) fits: the relation cannot be tested through X
    for kind, a, b, sentence in hypotheses:
        with np.errstate(divide="ignore", invalid="ignore"):
            phi = b / a
        if not np.all(np.isfinite(phi)) or np.allclose(phi, 1.0, rtol=rel.rel, atol=0):
            continue
        ok = True
        for p in range(rel.t.shape[0]):
            g = rel.g[p].reshape(n_feat, -1)
            t = rel.t[p].reshape(n_feat, -1)
            ph = phi.reshape(n_ex, -1)
            for j in range(t.shape[1]):
                A = np.vstack([X.T, X.T * ph[:, j]])
                rhs = np.concatenate([t[:, j], g[:, j]])
                delta, *_ = np.linalg.lstsq(A, rhs, rcond=None)
                scale = np.abs(A) @ np.abs(delta)
                tol = np.concatenate([rel.atol[p].reshape(n_feat, -1)[:, j]] * 2)
                if np.any(np.abs(A @ delta - rhs) > tol * (1 + np.max(np.abs(phi)))
                          + rel.rel * np.maximum(scale, np.abs(rhs))):
                    ok = False
                    break
            if not ok:
                break
        if ok:
            return Diagnosis(kind, sentence + " (tested on dE/dz through dE/dw = Xᵀ·dE/dz).")
    return None


def _softmax_diagonal(rel: _Relations, z: np.ndarray) -> Diagnosis | None:
    from chainrule._numerics import softmax

    p = np.broadcast_to(softmax(np.array(z, dtype=np.float64), axis=-1), rel.t.shape)
    diag = p * (1.0 - p)
    if np.any(diag <= 0):
        return None
    upstream = rel.g / diag  # the g for which G = g * p(1 - p)
    full = p * (upstream - np.sum(upstream * p, axis=-1, keepdims=True))
    if np.allclose(full, rel.g, rtol=rel.rel, atol=float(np.max(rel.atol))):
        return None  # diagonal and full agree here: nothing to tell apart
    if not rel.holds(full, rel.t, amplify=1.0 / diag):
        return None
    return Diagnosis(
        "softmax_diagonal",
        "The softmax Jacobian was treated as diagonal: G = g·p(1 - p) at every checked point, "
        "but each softmax output depends on every input, ∂p_i/∂z_j = p_i(δ_ij - p_j), so "
        "dE/dz = p·(g - Σ_j g_j·p_j). (With cross-entropy it all collapses to p - t.)",
    )


def _terms(rel: _Relations, terms) -> Diagnosis | None:
    if isinstance(terms, Mapping):
        items = [(str(k), np.asarray(v, dtype=np.float64)) for k, v in terms.items()]
    else:
        items = [(f"term {i + 1}", np.asarray(v, dtype=np.float64)) for i, v in enumerate(terms)]
    if not items:
        return None
    arrays = [np.broadcast_to(v, rel.t.shape) for _, v in items]
    if not rel.holds(sum(arrays), rel.t):
        raise ValueError(
            "The terms given do not add up to the true gradient; pass the terms of the "
            "correct gradient, e.g. terms={'y/yhat': -y/yhat, '(1-y)/(1-yhat)': (1-y)/(1-yhat)}."
        )
    for size in range(1, len(items) + 1):
        for subset in itertools.combinations(range(len(items)), size):
            flipped = sum(arrays[i] for i in subset)
            if not (np.abs(flipped) > rel.atol).any():
                continue
            if rel.holds(rel.g, rel.t - 2.0 * flipped):
                names = " and ".join(repr(items[i][0]) for i in subset)
                which = "has" if size == 1 else "have"
                return Diagnosis(
                    "term_sign",
                    f"G = T - 2·({' + '.join(items[i][0] for i in subset)}) at every checked "
                    f"point: the term{'s' if size > 1 else ''} {names} {which} the wrong sign.",
                )
    for i, (label, arr) in enumerate(items):
        if (np.abs(arr) > rel.atol).any() and rel.holds(rel.g, rel.t - arrays[i]):
            return Diagnosis(
                "term_missing",
                f"G = T - {label} at every checked point: the term {label!r} is missing.",
            )
    return None


# The term of the binary cross-entropy that alone contributes where y is 0 or 1, and the rule
# of its derivative.
_CROSS_ENTROPY_TERMS = (
    (0, "(1 - y)·log(1 - yhat)", ". d/dyhat log(1 - yhat) = -1/(1 - yhat): the chain rule's "
                                 "inner derivative is -1."),
    (1, "y·log(yhat)", ": d/dyhat log(yhat) = 1/yhat, and the loss carries a leading minus."),
)


def _sign_on_some_elements(rel: _Relations, y) -> Diagnosis | None:
    g, t = rel.g, rel.t
    bound = rel.atol + rel.rel * np.maximum(np.abs(g), np.abs(t))
    same = np.abs(g - t) <= bound
    opposite = np.abs(g + t) <= bound
    if not np.all(same | opposite):
        return None
    flipped = ~same
    kept = same & (np.abs(t) > bound)
    if not flipped.any() or not kept.any():
        return None
    var_shape = t.shape[1:]
    where = flipped.reshape(flipped.shape[0], -1).any(axis=0)
    idx = tuple(int(i) for i in np.flatnonzero(where))
    shown = ", ".join(_index_text(i, var_shape) for i in idx[:6])
    shown += ", ..." if len(idx) > 6 else ""
    where = f"elements {shown}"
    sentence = (f"G = T at some points and G = -T at the others (wrong sign at {len(idx)} of "
                f"{int(np.prod(var_shape))} elements: {shown}): one term of the gradient, "
                "nonzero only there, has the wrong sign.")
    if y is not None:
        yy = np.broadcast_to(np.asarray(y, dtype=np.float64), t.shape)
        for value, term, rule in _CROSS_ENTROPY_TERMS:
            if np.all(yy[flipped] == value) and np.all(yy[kept] != value):
                sentence = (
                    f"G = -T exactly where y = {value} and G = T elsewhere (elements {shown}): "
                    f"where y = {value} only the {term} term of the cross-entropy contributes, "
                    f"so that term's derivative has the wrong sign{rule}"
                )
                break
    return Diagnosis("term_sign", sentence, indices=idx, where=where)
