r"""Compositions of an activation and a loss: the gradient backpropagation actually needs.

For :math:`E = L(\hat y, y)` with :math:`\hat y = f(z)` the derivation is the one a textbook does
by hand: :math:`\partial E/\partial \hat y`, then :math:`d\hat y/dz` written in terms of
:math:`\hat y`, then their product by the chain rule, simplified in :math:`\hat y` and
:math:`y`; with ``weights=True`` it goes on to :math:`z = w x`, :math:`\partial E/\partial w`
and the gradient-descent step :math:`\Delta w = -\eta\,\partial E/\partial w`.

Required results (tests check them as exact symbolic equalities):

============================  ================================================
sigmoid + bce                 :math:`\hat y - y`
softmax + ce                  :math:`p - t` (assuming :math:`\sum_k t_k = 1`)
identity + mse (half=True)    :math:`\hat y - y`
tanh + bce                    :math:`(1 + \hat y)(\hat y - y)/\hat y`
============================  ================================================

Each composition also reports where the result divides by zero (:math:`\hat y = 0` for
tanh + BCE) and where the activation's range leaves the loss's domain, with the fix in words.
"""

from __future__ import annotations

import numpy as np
import sympy

from chainrule.derivation import domain, library
from chainrule.derivation.domain import set_text
from chainrule.derivation.functions import sigmoid
from chainrule.derivation.printing import to_text
from chainrule.derivation.result import Derivation
from chainrule.derivation.rules import Step, differentiate
from chainrule.derivation.simplify import elementary, equivalent, orient, tidy
from chainrule.derivation.symbols import eta, p, t, w, x, y, yhat, z

__all__ = ["compose", "softmax_cross_entropy"]

def compose(
    activation: str,
    loss: str,
    *,
    weights: bool = False,
    half: bool = False,
    method: str | None = None,
) -> Derivation:
    r"""Derive :math:`\partial E/\partial z` (or :math:`\partial E/\partial w`).

    1. the setup: the loss :math:`E(\hat y, y)` of the output :math:`\hat y = f(z)`;
    2. :math:`\partial E/\partial \hat y`, simplified;
    3. :math:`d\hat y/dz`, in terms of :math:`\hat y` where the activation is invertible;
    4. the chain rule, simplified in :math:`\hat y` and :math:`y`, and its input form in z;
    5. with ``weights=True``, :math:`z = w x`, :math:`\partial E/\partial w` and the step
       :math:`\Delta w`;
    6. the singular points and domain conflicts.

    Each derivative is checked against ``sympy.diff`` on the way.
    """
    act = library.canonical_activation(activation)
    lss = library.canonical_loss(loss)
    library.refuse_logits_pairing(act, lss)
    if act in ("softmax", "log_softmax") or lss == "ce_with_logits":
        return softmax_cross_entropy(act, lss, weights=weights)
    E = library.loss_expr(lss, yhat, y, half=half)
    f = library.activation_expr(act, z)
    half_note = " (half)" if half and lss == "mse" else ""
    title = f"dE/d{'w' if weights else 'z'} for {act} + {lss}{half_note}"
    steps: list[Step] = [
        Step("given", None, None, None,
             "the loss E = {E} ({name}) of the output {yhat} = {f} of the activation",
             {"E": E, "yhat": yhat, "f": f, "name": sympy.Symbol(library.loss_title(lss))},
             kind="note", title="Setup"),
    ]
    dE_dyhat = _checked_derivative(
        E, yhat, method, ("dE/dyhat", r"\frac{\partial E}{\partial \hat y}"), lss, steps,
        show_simplification=True)
    dyhat_dz = _checked_derivative(
        f, z, method, ("dyhat/dz", r"\frac{d\hat y}{dz}"), act, steps,
        show_simplification=False)
    dyhat_dz = _output_form(act, f, dyhat_dz, steps)
    dE_dz, input_form = _chain(act, lss, E, f, dE_dyhat, dyhat_dz, steps)
    extra = {"dE/dyhat": dE_dyhat, "dyhat/dz": dyhat_dz, "dE/dz": dE_dz}
    result, result_input = dE_dz, input_form
    if weights:
        result, result_input = _through_weights(act, lss, E, f, dE_dz, input_form, steps, extra)
    singularities, warnings = _domain_findings(act, lss, E, f, dE_dyhat, dE_dz)
    return Derivation(
        kind="composition", title=title, var=w if weights else z, function=E.subs(yhat, f),
        steps=steps, result=result, result_input_form=result_input,
        result_output_form=None, singularities=singularities, warnings=warnings,
        method=method, extra=extra,
    )


def _checked_derivative(expr, var, method, label, name: str, steps: list[Step], *,
                        show_simplification: bool) -> sympy.Expr:
    """Append the steps of ``d expr/d var``; return the derivative, simplified.

    ``label`` is the derivative's (text, LaTeX) name; ``name`` the activation or loss that the
    internal error names if ``sympy.diff`` disagrees; ``show_simplification`` adds the
    simplification as a step of its own.
    """
    tree = differentiate(expr, var, method)
    tree.title, tree.label = label[0], label
    steps.append(tree)
    simplified = tidy(tree.after)
    if not equivalent(simplified, sympy.diff(elementary(expr), var)):
        raise RuntimeError(f"Internal error: {label[0]} for {name} disagrees with sympy.diff.")
    if show_simplification and simplified != tree.after:
        steps.append(_simplify_step(tree.after, simplified, label[0]))
    return simplified


def _output_form(act: str, f, dyhat_dz, steps: list[Step]) -> sympy.Expr:
    """``dyhat/dz`` in terms of the output ``yhat`` where the activation has one."""
    out_form = library.output_derivative(act, yhat)
    if out_form is None:
        return dyhat_dz
    if not equivalent(out_form, dyhat_dz, ((yhat, f),)):
        raise RuntimeError(f"Internal error: the output form of {act}' does not match.")
    steps.append(Step(
        "output form", dyhat_dz, out_form, None,
        "backprop reuses the forward output {yhat} = {f}",
        {"yhat": yhat, "f": f, "d": dyhat_dz, "g": out_form}, kind="equal",
        given={yhat: f}, title="In terms of the output",
    ))
    return out_form


def _chain(act, lss, E, f, dE_dyhat, dyhat_dz, steps: list[Step]):
    """The chain rule ``dE/dz = dE/dyhat · dyhat/dz``, simplified; and its form in ``z``."""
    product = dE_dyhat * dyhat_dz
    steps.append(Step(
        "chain", E.subs(yhat, f), product, z,
        "dE/dz = dE/dyhat · dyhat/dz = ({a})·({b})",
        {"a": dE_dyhat, "b": dyhat_dz}, kind="diff", given={yhat: f},
        title="Chain rule", label=("dE/dz", r"\frac{\partial E}{\partial z}"),
    ))
    dE_dz = _tidy_in_output(product)
    if dE_dz != product:
        steps.append(_simplify_step(product, dE_dz, "dE/dz"))
    truth = sympy.diff(elementary(E.subs(yhat, elementary(f))), z)
    if not equivalent(dE_dz, truth, ((yhat, f),)):
        raise RuntimeError(f"Internal error: dE/dz for {act} + {lss} disagrees with sympy.diff.")
    input_form = _input_form(dE_dz, f, z, library.DEFAULT_NUMERIC.get(act, {}))
    if not equivalent(input_form, truth):
        raise RuntimeError(
            f"Internal error: the input form of dE/dz for {act} + {lss} disagrees with "
            "sympy.diff."
        )
    return dE_dz, input_form


def _through_weights(act, lss, E, f, dE_dz, input_form, steps: list[Step], extra: dict):
    """Continue through ``z = w x`` to ``dE/dw`` and the gradient-descent step."""
    dE_dw = orient(x * dE_dz) if dE_dz.is_Mul else x * dE_dz
    fw = f.subs(z, w * x)
    dz_dw = differentiate(w * x, w)
    steps.append(Step(
        "chain", E.subs(yhat, fw), dE_dw, w,
        "with z = {wx}, dz/dw = {x}, so dE/dw = dE/dz · {x}",
        {"wx": w * x, "x": x}, [dz_dw], kind="diff", given={yhat: fw, z: w * x},
        title="Weights", label=("dE/dw", r"\frac{\partial E}{\partial w}"),
    ))
    update = -eta * dE_dw
    steps.append(_descent_step(update))
    extra.update({"dE/dw": dE_dw, "update": update})
    result_input = x * input_form.subs(z, w * x)
    truth_w = sympy.diff(elementary(E.subs(yhat, elementary(fw))), w)
    if not equivalent(result_input, truth_w):
        raise RuntimeError(f"Internal error: dE/dw for {act} + {lss} disagrees with sympy.diff.")
    return dE_dw, result_input


def _descent_step(update: sympy.Expr) -> Step:
    return Step(
        "gradient descent", None, None, None,
        "the gradient-descent step is Δw = -{eta}·dE/dw = {update}",
        {"eta": eta, "update": update}, kind="note", title="Gradient-descent step",
    )


def _input_form(out_form: sympy.Expr, f: sympy.Expr, var: sympy.Symbol, params) -> sympy.Expr:
    """``out_form`` (in ``yhat``) rewritten in the input ``var`` by putting ``yhat = f``.

    For a piecewise activation (ReLU, ELU) each piece of ``f`` settles the conditions of
    ``out_form`` that depend on ``yhat`` alone (decided at a sample point of the piece); the
    conditions that involve other symbols too (Huber's ``|yhat - y| <= delta``) are kept, with
    ``yhat`` replaced by the piece. The result is one flat ``Piecewise`` in ``var``.
    """
    if not isinstance(f, sympy.Piecewise):
        return out_form.subs(yhat, f)
    pieces, earlier = [], []
    for fe, fc in f.args:
        sample = _sample_point(var, fc, earlier)
        earlier.append(fc)
        if sample is None:
            continue
        if not isinstance(out_form, sympy.Piecewise):
            pieces.append((tidy(out_form.subs(yhat, fe)), fc))
            continue
        value = fe.subs(params).subs(var, sample)
        for oe, oc in out_form.args:
            settled = oc.xreplace({
                rel: rel.subs(params).subs(yhat, value)
                for rel in oc.atoms(sympy.core.relational.Relational)
                if rel.free_symbols <= {yhat} | set(params)
            })
            if settled is sympy.false:
                continue
            cond = fc if settled is sympy.true else sympy.And(fc, settled.subs(yhat, fe))
            pieces.append((tidy(oe.subs(yhat, fe)), cond))
            if settled is sympy.true:
                break
    return sympy.Piecewise(*pieces)


def _sample_point(var, cond, earlier):
    for v in (1, -1, sympy.Rational(1, 2), -sympy.Rational(1, 2), 2, -2):
        if cond.subs(var, v) is sympy.true and all(c.subs(var, v) is sympy.false for c in earlier):
            return sympy.Integer(v) if isinstance(v, int) else v
    return None


def _simplify_step(before, after, name: str) -> Step:
    return Step("simplify", before, after, None, name + ": {a} = {b}",
                {"a": before, "b": after}, kind="equal", title="Simplify")


def _tidy_in_output(e: sympy.Expr) -> sympy.Expr:
    """Simplify a product in ``yhat`` and ``y``, factoring rational functions fully."""
    if isinstance(e, sympy.Piecewise) or e.has(sympy.Piecewise):
        return tidy(sympy.piecewise_fold(e))
    best = tidy(e)
    try:
        factored = orient(sympy.factor(sympy.cancel(e)))
    except (sympy.PolynomialError, NotImplementedError):
        return best
    if sympy.count_ops(factored) <= sympy.count_ops(best) and equivalent(factored, e):
        return factored
    return best


_FIXES = {
    "bce": (
        "use a sigmoid output, whose range (0, 1) is BCE's domain{rescale}; or feed the raw "
        "score z to bce_with_logits, which is finite for every z"
    ),
    "ce": (
        "use softmax (or sigmoid) outputs, which are positive; or ce_with_logits on the raw "
        "scores"
    ),
}


def _fix(act: str, lss: str) -> str:
    rescale = ""
    if act == "tanh":
        rescale = "; or rescale tanh into (0, 1): (tanh(z) + 1)/2 = sigmoid(2z)"
    elif act == "softsign":
        rescale = "; or rescale softsign into (0, 1): (softsign(z) + 1)/2"
    return _FIXES.get(lss, "choose an activation whose outputs the loss accepts").format(
        rescale=rescale
    )


def _domain_findings(act, lss, E, f, dE_dyhat, dE_dz):
    info = library.ACTIVATION_INFO[act]
    params = domain.DEFAULT_PARAMETERS.get(act)
    numeric_f = domain.numeric_function(f, z, params)
    outputs = info.range
    warnings: list[str] = []
    singularities: list[domain.Singularity] = []
    note = "" if not params else " (with " + ", ".join(
        f"{k} = {v}" for k, v in params.items()) + ")"

    conflicts = domain.log_conflicts(E, yhat, outputs)
    if conflicts:
        parts = []
        for lg, bad in conflicts:
            predicate = sympy.lambdify(yhat, lg.args[0] <= 0, "numpy")
            where = domain.preimage(numeric_f, lambda v, pr=predicate: np.asarray(pr(v), bool))
            where = f", i.e. {where}{note}" if where else ""
            parts.append(f"{to_text(lg)} is the log of a non-positive number for {to_text(yhat)} "
                         f"in {set_text(bad)}{where}")
        domain_set = library.LOSS_INFO[lss].domain
        warnings.append(
            f"Domain conflict: {act}'s range {set_text(outputs)} is not inside {lss}'s domain "
            f"{set_text(domain_set)}: " + "; ".join(parts) + ", so the loss is undefined "
            f"there. Fix: {_fix(act, lss)}."
        )
    fix = f" Fix: {_fix(act, lss)}." if not warnings else " (Fix: as above.)"

    seen = set()
    for expr, name in ((dE_dz, "dE/dz"), (dE_dyhat, "dE/dyhat")):
        for point in domain.singular_points(expr, yhat, outputs):
            if point in seen:
                continue
            seen.add(point)
            value = float(point) if point.is_number else None
            where = None if value is None else domain.solve_output(numeric_f, value)
            singularities.append(domain.Singularity(
                yhat, point, "division by zero", expr, where, f" ({name})"))
            warnings.append(
                f"Singular point: {name} = {to_text(expr)} divides by zero at "
                f"{to_text(yhat)} = {to_text(point)}"
                + (f" ({where})" if where else "")
                + f", an output {act} reaches: the gradient is undefined there and huge near "
                "it." + fix
            )
    for point, left, right, jumps in domain.corners(f, sympy.diff(f, z), z):
        singularities.append(domain.Singularity(
            z, point, "corner", f, None,
            f"{act} has a corner; dyhat/dz is {to_text(left)} on the left and "
            f"{to_text(right)} on the right" + (" and yhat jumps" if jumps else "")))
    return singularities, warnings


def softmax_cross_entropy(act: str, lss: str, *, weights: bool = False) -> Derivation:
    r"""Softmax + cross-entropy: :math:`\partial E/\partial z_i = p_i - t_i`, :math:`\sum t = 1`.

    The steps are written for K classes with indices; the claim is verified with SymPy on
    three classes (``z1, z2, z3``), where it is exact.
    """
    library.refuse_logits_pairing(act, lss)
    if lss not in ("ce", "ce_with_logits") or act not in ("softmax", "identity"):
        raise ValueError(
            f"The composition {act} + {lss} has no single-output form: softmax pairs with "
            "cross-entropy (derive(activation='softmax', loss='ce')); for another loss derive it "
            f"over the K outputs with vector=True (derive(activation={act!r}, loss={lss!r}, "
            "vector=True))."
        )
    _verify_softmax_ce()
    E_term = library.loss_expr("ce", p, t)
    d_term = differentiate(E_term, p)
    d_term.title, d_term.label = "dE/dp_k", ("dE/dp_k", r"\frac{\partial E}{\partial p_k}")
    steps = [
        Step("given", None, None, None,
             "E = -Σ_k t_k·log(p_k) with p_k = e^(z_k)/Σ_j e^(z_j) (softmax); "
             "each term of the sum has the single-class form {term}",
             {"term": E_term}, kind="note", title="Setup"),
        d_term,
        Step("softmax", None, None, None,
             "the softmax Jacobian: dp_k/dz_i = p_k(δ_ki - p_i), where δ_ki is 1 if k = i "
             "and 0 otherwise (quotient rule on e^(z_k)/Σ_j e^(z_j))",
             {}, kind="note", title="dp_k/dz_i"),
        Step("chain", None, None, None,
             "chain rule through the sum over every class (each p_k depends on every z_i): "
             "dE/dz_i = Σ_k (dE/dp_k)(dp_k/dz_i) = Σ_k (-t_k/p_k)·p_k(δ_ki - p_i) "
             "= -Σ_k t_k·δ_ki + p_i·Σ_k t_k = -t_i + p_i·Σ_k t_k", {}, kind="note",
             title="Chain rule"),
        Step("assumption", p * 1 - t, p - t, None,
             "the targets sum to one, Σ_k t_k = 1 (one-hot labels or a distribution), "
             "so dE/dz_i = {r}; with soft or unnormalised targets it stays "
             "p_i·Σ_k t_k - t_i", {"r": p - t}, kind="note", title="Simplify"),
    ]
    result, result_input = p - t, sympy.Function("softmax")(z) - t
    extra = {"dE/dz": p - t}
    if weights:
        steps.append(Step(
            "chain", None, None, None,
            "with z = {wx}, dz/dw = {x}, so dE/dw = {r}",
            {"wx": w * x, "x": x, "r": x * (p - t)}, kind="note", title="Weights"))
        steps.append(Step(
            "gradient descent", None, None, None,
            "the gradient-descent step is Δw = -{eta}·dE/dw = {u}",
            {"eta": eta, "u": -eta * x * (p - t)}, kind="note", title="Gradient-descent step"))
        result, result_input = x * (p - t), x * (sympy.Function("softmax")(w * x) - t)
        extra.update({"dE/dw": x * (p - t), "update": -eta * x * (p - t)})
    return Derivation(
        kind="composition", title=f"dE/d{'w' if weights else 'z'} for softmax + cross-entropy",
        var=w if weights else z, function=-t * sympy.log(p), steps=steps, result=result,
        result_input_form=result_input,
        assumptions=["sum_k t_k = 1 (the targets sum to one); otherwise dE/dz_i = "
                     "p_i*sum_k t_k - t_i"],
        extra=extra, warnings=[], singularities=[],
    )


def _verify_softmax_ce() -> None:
    """Check dE/dz_1 = p_1 - t_1 exactly for three classes with t_3 = 1 - t_1 - t_2."""
    zs = sympy.symbols("z1:4", real=True)
    ts = sympy.symbols("t1:4", real=True)
    s = sum(sympy.exp(v) for v in zs)
    probs = [sympy.exp(v) / s for v in zs]
    E = -sum(tk * sympy.log(pk) for tk, pk in zip(ts, probs, strict=True))
    grad = sympy.diff(E, zs[0]).subs(ts[2], 1 - ts[0] - ts[1])
    if sympy.simplify(grad - (probs[0] - ts[0])) != 0:
        raise RuntimeError("Internal error: the softmax + cross-entropy check failed.")


_ = sigmoid  # the sigmoid function is part of the composed expressions' vocabulary
