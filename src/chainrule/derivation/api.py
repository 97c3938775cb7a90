r"""``derive``: one entry point for formulas, built-in activations, losses and compositions.

>>> from chainrule.derivation import derive
>>> derive("sigmoid").to_dict()["result_output_form"]
'yhat*(1 - yhat)'
>>> derive(activation="tanh", loss="bce").to_dict()["result"]
'(1 + yhat)*(yhat - y)/yhat'

Every result is checked against ``sympy.diff`` before it is returned; a disagreement raises
``RuntimeError`` instead of printing a wrong answer.
"""

from __future__ import annotations

import copy
import functools

import sympy

from chainrule.derivation import domain, library
from chainrule.derivation.compose import compose
from chainrule.derivation.parser import FormulaError, parse_expression, refuse_runaway
from chainrule.derivation.printing import to_text
from chainrule.derivation.reading import read_formula
from chainrule.derivation.result import Derivation
from chainrule.derivation.rules import METHODS, Step, differentiate
from chainrule.derivation.simplify import elementary, equivalent, tidy
from chainrule.derivation.symbols import SYMBOLS, m, p, t, x, y, yhat, z

__all__ = ["Derivation", "derive"]

_WRT_ORDER = ("x", "z", "yhat", "p", "w", "y", "t")


def derive(
    expression: str | None = None,
    *,
    activation: str | None = None,
    loss: str | None = None,
    weights: bool = False,
    method: str | None = None,
    half: bool = False,
    wrt: str | None = None,
    mean: bool = False,
    layer: bool | str = False,
    network=None,
    vector: bool = False,
) -> Derivation:
    r"""Derive step by step, simplify, check against SymPy and flag singular points.

    Parameters
    ----------
    expression
        A built-in activation (``"sigmoid"``), a loss (``"bce"``) or a formula
        (``"x*sigmoid(x)"``) in the documented symbols ``x, z, yhat, y, w, p, t, eta, alpha, m``.
    activation, loss
        Instead of ``expression``: an activation, a loss, or both for the composition
        :math:`\partial E/\partial z` of the loss of the activation's output.
    weights
        For a composition, continue through :math:`z = w x` to :math:`\partial E/\partial w`
        and the gradient-descent step :math:`\Delta w = -\eta\,\partial E/\partial w`.
    method
        ``"quotient"`` or ``"chain"`` for fractions such as the sigmoid (both give the same result);
        None uses the quotient rule.
    half
        With ``loss="mse"``: the squared error with a factor 1/2, whose gradient has no 2.
    wrt
        The variable of a formula; by default the first of x, z, yhat, p, w, y, t it uses.
        For a built-in activation ``"x"`` (the default) or ``"z"``; for a loss its prediction
        (``"yhat"``, ``"p"`` for ``ce``, ``"z"`` on logits); for a composition ``"z"`` or
        ``"w"`` (the same as ``weights=True``); any other is refused, never ignored.
        With ``layer=`` or ``network=``: what the result is the gradient by, ``"X"`` (the
        inputs, :math:`\Delta_1 W_1^\top / m`), ``"H1"`` .. (a hidden layer's output),
        ``"W"``, ``"b"``, ``"W2"``, ...; by default every weight and bias gradient.
    mean
        With a loss: the mean loss over ``m`` samples, :math:`E = \frac1m \sum_i L_i`, whose
        derivative by one sample's prediction carries the factor :math:`1/m`.
    layer
        With ``activation=`` and ``loss=``: one dense layer :math:`Z = XW + b` over a batch of
        ``m`` samples, in index form and in matrix form with every shape, checked against
        finite differences (:mod:`chainrule.derivation.network`). ``"batchnorm"``,
        ``"layernorm"``, ``"attention"``, ``"conv2d"``, ``"maxpool"``, ``"avgpool"``, ``"rnn"``
        or ``"lstm"`` (also as the expression, ``derive("batchnorm")``): that layer's backward
        pass stage by stage, every gradient with its shapes, checked the same way
        (:mod:`chainrule.derivation.normalization`, :mod:`chainrule.derivation.attention`,
        :mod:`chainrule.derivation.conv`, :mod:`chainrule.derivation.pooling`,
        :mod:`chainrule.derivation.recurrent`).
    network
        A list of activations (or one comma-separated string), one per dense layer, with
        ``loss=``: the whole backward pass with named deltas, checked the same way.
    vector
        With ``activation=`` and ``loss=``: the derivation through the explicit sum over the
        K outputs (softmax + cross-entropy always takes this route).

    Returns
    -------
    Derivation
        ``.steps``, ``.result``, ``.result_input_form``, ``.singularities``, ``.warnings``,
        and ``.to_dict()``, ``.to_text()``, ``.to_latex()``, ``.to_markdown()``.

    Raises
    ------
    FormulaError
        For a formula the whitelist parser refuses (a subclass of ``ValueError``).
    ValueError
        For unknown names or inconsistent arguments.

    Examples
    --------
    The sigmoid's derivative by the quotient rule, and the cancellation that makes sigmoid with
    binary cross-entropy train so well:

    >>> d = derive("sigmoid")
    >>> d.result
    exp(-x)/(1 + exp(-x))**2
    >>> derive(activation="sigmoid", loss="bce").result  # dE/dz
    -y + yhat
    """
    if expression is not None and not isinstance(expression, str):
        raise FormulaError(f"The expression must be a string; got {type(expression).__name__}.")
    activation = _name_of(activation, "activation")
    loss = _name_of(loss, "loss")
    named_layer = _layer_derivation(expression, layer)
    if named_layer is not None:
        from chainrule.derivation.layers import derive_layer

        return derive_layer(named_layer, activation=activation, loss=loss, weights=weights,
                            method=method, half=half, wrt=wrt, mean=mean, network=network,
                            vector=vector)
    if isinstance(layer, str):
        layer = True  # "dense"
    if layer or network is not None or vector:
        from chainrule.derivation import network as _network

        return copy.deepcopy(_network.derive_vector(
            expression, activation=activation, loss=loss, layer=layer, network=network,
            vector=vector, half=half, mean=mean, weights=weights, wrt=wrt,
        ))
    _refuse_arguments(expression, activation, loss, method, mean, weights, wrt)
    result = _derive_cached(
        None if expression is None else expression.strip(),
        activation, loss, bool(weights), method, bool(half), wrt,
    )
    result = copy.deepcopy(result)
    return _over_batch(result) if mean else result


def _name_of(value, what: str) -> str | None:
    """The name an ``activation=`` or ``loss=`` argument stands for: a name string as it is, an
    Activation or Loss object (or class) by its ``name``; anything else is refused, naming what
    was expected and what was received."""
    from chainrule import losses, nn

    base = nn.Activation if what == "activation" else losses.Loss
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, base) or (isinstance(value, type) and issubclass(value, base)):
        return value.name
    example = ("'sigmoid' or an Activation such as chainrule.nn.Sigmoid()" if what == "activation"
               else "'bce' or a Loss such as chainrule.losses.BinaryCrossEntropy()")
    hint = (" (for one activation per layer, give network=[...] with loss=)"
            if what == "activation" and isinstance(value, list | tuple) else "")
    raise TypeError(f"{what}= takes one name, a string such as {example}; got "
                    f"{_article(type(value).__name__)}: {value!r}{hint}.")


def _article(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _layer_derivation(expression, layer) -> str | None:
    """The layer derivation asked for, by ``derive("batchnorm")`` or ``layer="batchnorm"``;
    None for the rest (``layer=True`` or ``"dense"`` is the dense layer)."""
    from chainrule.derivation.layers import LAYER_DERIVATIONS, layer_name

    if isinstance(layer, str):
        name = layer_name(layer)
        if name is None and layer.strip().lower() != "dense":
            raise ValueError(
                f"Unknown layer={layer!r}; use True or 'dense' (one dense layer), or one of "
                f"{', '.join(repr(k) for k in LAYER_DERIVATIONS)}.")
        if name is not None and expression is not None:
            raise ValueError(f"layer={layer!r} derives the whole layer; drop the expression "
                             f"{expression!r}.")
        return name
    return layer_name(expression) if expression is not None and not layer else None


def _refuse_arguments(expression, activation, loss, method, mean, weights, wrt) -> None:
    """Refuse inconsistent arguments of a scalar derivation, naming the fix."""
    if method not in (None, *METHODS):
        raise ValueError(f"The method must be 'quotient' or 'chain' (or None); got {method!r}.")
    if expression is not None and (activation is not None or loss is not None):
        raise ValueError(
            "Give either an expression or activation=/loss=, not both; "
            f"got expression={expression!r}, activation={activation!r}, loss={loss!r}."
        )
    if expression is None and activation is None and loss is None:
        raise ValueError("Nothing to derive: give an expression, an activation or a loss.")
    named = None if expression is None else _as_name(expression)
    if mean and loss is None and named not in library.LOSS_INFO:
        raise ValueError("The option mean=True needs a loss (derive(loss='mse', mean=True)): it "
                         "is the mean of the loss over m samples.")
    if weights and (activation is None or loss is None):
        raise ValueError("The option weights=True needs both activation= and loss= (a "
                         "composition).")
    if wrt is not None and wrt not in SYMBOLS:
        raise ValueError(f"The argument wrt must be one of {', '.join(SYMBOLS)}; got {wrt!r}.")


def _over_batch(d: Derivation) -> Derivation:
    r"""The derivation of one sample's loss, carried to the mean :math:`\frac1m\sum_i L_i`."""
    var = to_text(d.var)
    scaled = tidy(d.result / m)
    d.steps.append(Step(
        "mean", d.result, scaled, None,
        "the mean loss over m samples is E = (1/m)·Σ_i L_i; only the term of sample i "
        f"depends on its {var}_i, so dE/d{var}_i = (1/m)·dL_i/d{var}_i = (1/m)·({{a}}) = {{b}}",
        {"a": d.result, "b": scaled}, kind="note", title="Mean over the batch"))
    d.result = scaled
    d.result_input_form = tidy(d.result_input_form / m)
    if d.result_output_form is not None:
        d.result_output_form = tidy(d.result_output_form / m)
    d.extra = {k: tidy(v / m) if k in ("dE/dz", "dE/dw", "update") else v
               for k, v in d.extra.items()}
    d.function = d.function / m
    d.title = d.title + ", mean over m samples"
    d.assumptions.append("E is the mean of the per-sample loss over a batch of m samples")
    if not equivalent(d.result * m, d.steps[-1].before):
        raise RuntimeError("Internal error: the batch mean changed the derivative.")
    return d


@functools.lru_cache(maxsize=128)
def _derive_cached(expression, activation, loss, weights, method, half, wrt) -> Derivation:
    if expression is not None:
        name = _as_name(expression)
        if name in library.ACTIVATION_INFO or name in ("softmax", "log_softmax"):
            activation = name
        elif name in library.LOSS_INFO:
            loss = name
        else:
            d = derive_formula(parse_expression(expression), wrt, method, text=expression)
            d.typed, d.read_as = expression, read_formula(expression)
            return d
    if activation is not None and loss is not None:
        weights = _composition_weights(weights, wrt)
        return compose(activation, loss, weights=weights, half=half, method=method)
    if activation is not None:
        return derive_activation(activation, method, wrt)
    return derive_loss(loss, half=half, method=method, wrt=wrt)


def _composition_weights(weights: bool, wrt: str | None) -> bool:
    """A composition gives dE/dz, or dE/dw with ``weights=True`` or ``wrt="w"``; any other
    ``wrt`` is refused, naming those two."""
    if wrt is None or (wrt == "w") or (wrt == "z" and not weights):
        return weights or wrt == "w"
    hint = (" (dE/dyhat is the loss's own derivative: derive(loss=...))" if wrt == "yhat"
            else " (weights=True asks for dE/dw)" if wrt == "z" else "")
    raise ValueError(
        f"A composition of an activation and a loss gives dE/dz (wrt='z', the default) or "
        f"dE/dw (wrt='w', or weights=True); got wrt={wrt!r}{hint}.")


def _activation_variable(act: str, wrt: str | None) -> sympy.Symbol:
    """The input an activation is derived by: ``x`` unless ``wrt`` says ``"z"``; the softmax
    Jacobians are by z, whatever their title calls it."""
    allowed = ("z",) if act in ("softmax", "log_softmax") else ("x", "z")
    if wrt is None or wrt in allowed:
        return SYMBOLS[wrt or "x"]
    raise ValueError(
        f"The activation {act} is derived by its input; give wrt="
        f"{' or '.join(repr(a) for a in allowed)}, or leave it out; got wrt={wrt!r}.")


def _as_name(text: str) -> str | None:
    key = text.strip().lower().replace("-", "_")
    if not key.isidentifier():
        return None
    for canon in (library.canonical_activation, library.canonical_loss):
        try:
            return canon(key)
        except ValueError:
            continue
    return None


def derive_activation(name: str, method: str | None = None, wrt: str | None = None):
    """Derive a built-in activation from its definition, and give f' in terms of its output.

    ``wrt`` names the input, ``"x"`` (the default) or ``"z"``; the Jacobian of softmax and
    log-softmax is by ``z``."""
    act = library.canonical_activation(name)
    var = _activation_variable(act, wrt)
    if act in ("softmax", "log_softmax"):
        from chainrule.derivation.vector import softmax_jacobian

        return softmax_jacobian(log=act == "log_softmax")
    f = library.activation_expr(act, var)
    start = library.activation_definition(act, var)
    if act == "tanh" and method == "quotient":  # tanh = sinh/cosh, a fraction
        start = sympy.sinh(var) / sympy.cosh(var)
    steps: list[Step] = []
    if start != f:
        steps.append(Step("definition", f, start, None, "{f} = {g}",
                          {"f": f, "g": start}, kind="equal", title="Definition"))
    derivative, simplified = _derivative_steps(start, var, method, "Differentiate")
    steps += derivative
    _check(simplified, start, var, f"{act}'")
    out = library.output_derivative(act, yhat)
    if out is not None:
        if not equivalent(out, simplified, ((yhat, f),)):
            raise RuntimeError(f"Internal error: the output form of {act}' disagrees.")
        in_f = out.subs(yhat, f)
        steps.append(Step(
            "output form", simplified, out, None,
            "backprop reuses the forward output {yhat} = {f}: the derivative is {b}",
            {"yhat": yhat, "f": f, "a": simplified, "b": in_f, "c": out},
            kind="equal", given={yhat: f}, title="In terms of the output",
        ))
    singularities, warnings = _single_findings(f, simplified, var)
    if act == "binary_step":
        warnings.append(
            "The binary step's derivative is 0 wherever it exists, so no gradient flows "
            "through it: gradient descent cannot train a layer behind it. Use a sigmoid."
        )
    return Derivation(
        kind="activation", title=f"d/d{var} {to_text(f)} ({act})", var=var, function=f, steps=steps,
        result=simplified, result_input_form=simplified, result_output_form=out,
        singularities=singularities, warnings=warnings, method=method,
    )


def derive_loss(name: str, *, half: bool = False, method: str | None = None,
                wrt: str | None = None) -> Derivation:
    """Derive a loss by its prediction (``yhat``; ``p`` for ``ce``; ``z`` for logits), the one
    ``wrt`` it accepts besides None."""
    lss = library.canonical_loss(name)
    info = library.LOSS_INFO[lss]
    pred, target = (p, t) if lss == "ce" else (z if info.on_logits else yhat, y)
    if wrt is not None and wrt != str(pred):
        raise ValueError(
            f"The loss {lss} is derived by its prediction {pred}; got wrt={wrt!r}. Leave out "
            f"wrt (or give wrt={str(pred)!r}).")
    if lss == "ce_with_logits":
        return compose("softmax", "ce")
    E = library.loss_expr(lss, pred, target, half=half)
    derivative, simplified = _derivative_steps(E, pred, method, f"dE/d{pred}")
    steps = [Step("given", None, None, None, "the loss E = {E}", {"E": E}, kind="note",
                  title="Setup"), *derivative]
    _check(simplified, E, pred, f"d{lss}/d{pred}")
    singularities, warnings = [], []
    for point in domain.singular_points(simplified, pred):
        singularities.append(domain.Singularity(pred, point, "division by zero", simplified))
    if singularities:
        where = " and ".join(f"{pred} = {to_text(s.value)}" for s in singularities)
        warnings.append(
            f"dE/d{pred} = {to_text(simplified)} divides by zero at {where}, the ends of "
            f"{lss}'s domain {domain.set_text(info.domain)}: keep predictions strictly inside it "
            "(a sigmoid output does), or use the with-logits form on raw scores."
        )
    return Derivation(
        kind="loss", title=f"dE/d{pred} for {lss}", var=pred, function=E, steps=steps,
        result=simplified, result_input_form=simplified, singularities=singularities,
        warnings=warnings, method=method,
    )


@refuse_runaway
def derive_formula(
    expr: sympy.Expr, wrt: str | None = None, method: str | None = None, text: str = ""
) -> Derivation:
    """Derive a parsed formula with respect to ``wrt`` (or its first documented variable)."""
    var = _choose_variable(expr, wrt)
    steps, simplified = _derivative_steps(expr, var, method, "Differentiate")
    _check(simplified, expr, var, f"d/d{var} {text or expr}")
    out = None
    for name in library.ACTIVATION_INFO:
        if library.activation_expr(name, var) == expr:
            out = library.output_derivative(name, yhat)
            if out is not None:
                steps.append(Step(
                    "output form", simplified, out, None,
                    "with {yhat} = {f}, the derivative is {c}",
                    {"yhat": yhat, "f": expr, "c": out}, kind="equal", given={yhat: expr},
                    title="In terms of the output",
                ))
            break
    singularities, warnings = _single_findings(expr, simplified, var)
    return Derivation(
        kind="function", title=f"d/d{var} {to_text(expr)}", var=var, function=expr, steps=steps,
        result=simplified, result_input_form=simplified, result_output_form=out,
        singularities=singularities, warnings=warnings, method=method,
    )


def _derivative_steps(expr, var, method, title: str) -> tuple[list[Step], sympy.Expr]:
    """The step tree of ``d expr/d var`` titled ``title``, then its simplification if that
    changes it; and the simplified derivative."""
    tree = differentiate(expr, var, method)
    tree.title = title
    steps = [tree]
    simplified = tidy(tree.after)
    if simplified != tree.after:
        steps.append(Step("simplify", tree.after, simplified, None, "{a} = {b}",
                          {"a": tree.after, "b": simplified}, kind="equal", title="Simplify"))
    return steps, simplified


def _choose_variable(expr: sympy.Expr, wrt: str | None) -> sympy.Symbol:
    if wrt is not None:
        return SYMBOLS[wrt]
    names = {s.name for s in expr.free_symbols}
    for name in _WRT_ORDER:
        if name in names:
            return SYMBOLS[name]
    return x


def _check(result: sympy.Expr, f: sympy.Expr, var: sympy.Symbol, what: str) -> None:
    """Refuse to return a derivative that ``sympy.diff`` disagrees with."""
    truth = sympy.diff(elementary(f), var)
    if not equivalent(result, truth):
        raise RuntimeError(
            f"Internal error: the derived {what} = {result} disagrees with sympy.diff ({truth}); "
            "please report this formula."
        )


def _single_findings(f: sympy.Expr, df: sympy.Expr, var: sympy.Symbol):
    singularities: list[domain.Singularity] = []
    warnings: list[str] = []
    for point in domain.singular_points(df, var):
        singularities.append(domain.Singularity(var, point, "division by zero", df))
    for point, left, right, jumps in domain.corners(f, df, var):
        where = domain.point_text(var, point)
        at = ""
        if point.has(domain.K):
            at = f" (at {var} = {to_text(point.subs(domain.K, 0))})"
        note = (
            f"the function jumps at {where}, so it has no derivative there"
            if jumps else
            f"the derivative is {to_text(left)} on the left and {to_text(right)} on the right"
            f"{at}, so it is undefined at {where}"
        )
        singularities.append(domain.Singularity(var, point, "corner", f, None, note))
        warnings.append(
            f"Corner at {where}: {note}; backpropagation uses one of the "
            "one-sided values there by convention."
        )
    for s in singularities:
        if s.kind == "division by zero":
            warnings.append(f"Singular point: {s.describe()}.")
    for lg in f.atoms(sympy.log):
        if lg.args[0].is_positive is not True:
            warnings.append(f"Domain: {to_text(lg)} is defined only where "
                            f"{to_text(lg.args[0])} > 0.")
    for pw in f.atoms(sympy.Pow):
        if pw.exp.is_Rational and not pw.exp.is_Integer and pw.base.is_nonnegative is not True:
            warnings.append(f"Domain: {to_text(pw)} is real only where "
                            f"{to_text(pw.base)} ≥ 0.")
    return singularities, warnings


_ = (FormulaError, parse_expression)
