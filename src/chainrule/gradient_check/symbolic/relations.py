"""The relations of a whole formula to the derivative: a sign, a constant factor or a factor of
the batch size, the activation's derivative missing or twice, the neighbouring variable, the
chain rule's inner derivative dropped, a short factor missing or extra. SymPy is imported here.
"""

from __future__ import annotations

import sympy

from chainrule.derivation import library
from chainrule.derivation.parser import SYMBOLS
from chainrule.derivation.simplify import textbook_form
from chainrule.gradient_check.symbolic.equality import equal_exprs, ratio_of
from chainrule.gradient_check.symbolic.target import Target, target_minus_prediction
from chainrule.gradient_check.symbolic.text import (
    expected_text,
    factor_problem,
    term_text,
    text_of,
    tidy_expr,
)
from chainrule.gradient_check.verdict import Finding

__all__ = [
    "global_relation",
    "inner_dropped",
    "learner_relation",
    "scaled_relation",
    "shortcut_relation",
    "simple_ratio",
]


def global_relation(U, D, target: Target, formula: str) -> tuple[str, str, Finding] | None:
    """(kind, sentence, finding) when U = r·D for a telling r."""
    r = ratio_of(U, D)
    if r is None or r == 0 or r.has(sympy.Piecewise, sympy.zoo, sympy.nan):
        return None
    var = target.var
    expected = expected_text(D)
    m = SYMBOLS["m"]
    if r.free_symbols <= {m}:
        c, k = r.as_coeff_exponent(m)
        if c.is_number and k.is_Integer and not c.has(m):
            return scaled_relation(c, int(k), target, formula, expected)
    if target.activation and not target.to_z and target.inner != [SYMBOLS["yhat"]]:
        chain = term_text(target.chain)
        if equal_exprs(r, target.chain):
            return "derivative_twice", (
                f"The formula has an extra activation factor {chain}: dyhat/dz = {chain} is "
                "multiplied in twice (the fused delta already contains it)."), Finding(
                    formula, f"extra factor {chain}", expected, f"dyhat/dz = {chain}, once")
        swapped = _other_output_form(r, target, formula, expected)
        if swapped is not None:
            return swapped
        if equal_exprs(r * target.chain, 1):
            return "derivative_missing", (
                f"The formula is dE/dyhat, not dE/dz: the activation's derivative dyhat/dz = "
                f"{chain} is missing (the chain rule through the {target.activation})."
            ), Finding(formula, f"missing factor {chain}", expected,
                       f"dE/dz = dE/dyhat·dyhat/dz, with dyhat/dz = {chain}")
    if not target.activation and var.name in ("yhat", "p"):
        for name in library.activation_names():
            form = library.output_derivative(name, var)
            if form is None or form.is_number or form.has(sympy.Piecewise):
                continue
            if equal_exprs(r, form):
                form_text = term_text(form)
                return "wrong_variable", (
                    f"The formula is dE/dz for a {name} output, not dE/d{var.name}: it carries "
                    f"the activation's derivative {form_text}, which belongs to dE/dz = "
                    f"dE/d{var.name}·{form_text} (dE/d{var.name} confused with dE/dz). Check it "
                    f"with activation={name!r}, or divide it by {form_text}."
                ), Finding(formula, f"extra factor {form_text}", expected,
                           f"dE/dz = dE/d{var.name}·dyhat/dz")
    return None


def _other_output_form(r, target: Target, formula: str, expected: str):
    """U = D·g_other'/g': the derivative of another activation in output form (yhat(1 - yhat),
    sigmoid's, for a tanh layer), where the layer's own is ``target.chain``."""
    yhat = SYMBOLS["yhat"]
    for name in ("sigmoid", "tanh"):
        form = library.output_derivative(name, yhat)
        if name == target.activation or equal_exprs(form, target.chain):
            continue
        if equal_exprs(r * target.chain, form):
            wrong, right = term_text(form), term_text(target.chain)
            finding = Finding(formula, f"{wrong} for {right}", expected,
                              f"dyhat/dz for the {target.activation} is {right}")
            sentence = (f"The derivative of the wrong activation, in output form: {wrong} is "
                        f"{name}' written through its output, where the activation is "
                        f"{target.activation}, whose derivative is {right}.")
            return "derivative_wrong_activation", sentence, finding
    return None


def shortcut_relation(U, D, target: Target, formula: str):
    """U is the fused shortcut of another output activation with this loss (yhat - y, for a
    sigmoid with BCE) handed in where the activation is a different one (tanh): the factor
    that cancels for the one does not cancel for the other."""
    if target.loss is None or target.activation is None or target.to_z:
        return None
    other = library.fused_activation(target.loss)
    if other is None or other == target.activation:
        return None
    yhat = SYMBOLS["yhat"]
    try:
        form = library.output_derivative(other, yhat)
    except ValueError:  # an activation the scalar engine does not know (softmax)
        return None
    if form is None or form.is_number:  # identity: the shortcut is dE/dyhat itself
        return None
    dE_dyhat = sympy.cancel(D / target.chain)
    shortcut = sympy.cancel(dE_dyhat * form)
    if not equal_exprs(U, shortcut):
        return None
    act, own = target.activation, term_text(target.chain)
    expected = expected_text(D)
    sentence = (
        f"{formula} is the shortcut of a {other} output with this loss: there dE/dyhat = "
        f"{text_of(textbook_form(sympy.factor(dE_dyhat)))} meets {other}' = {term_text(form)} and "
        f"the two cancel. It does not carry over to {act}: {act}' = {own}, not "
        f"{term_text(form)}, so dE/dz = dE/dyhat·({own}) = {expected}.")
    warnings = _pairing_warnings(act, target.loss)
    if warnings:
        sentence += " " + " ".join(warnings)
    return "shortcut_wrong_activation", sentence, Finding(
        formula, f"the {other} shortcut for a {act} output", expected,
        f"dE/dz = dE/dyhat·dyhat/dz, with dyhat/dz = {own} for the {act}")


def _pairing_warnings(act: str, lss: str) -> list[str]:
    """What the derivation of this activation and loss warns of (a domain conflict, a point
    where dE/dz divides by zero), so the check says it too."""
    from chainrule.derivation import derive

    try:
        return list(derive(activation=act, loss=lss).warnings)
    except ValueError:
        return []


def learner_relation(U, D, target: Target, formula: str):
    """The relations a learner makes beyond one term or factor: the derivative with respect to
    the neighbouring variable of z = w·x (dE/dw handed in for dE/dz, or dE/dz for dE/dw)."""
    if target.activation and target.inner != [SYMBOLS["yhat"]] and equal_exprs(U * target.chain, D):
        chain = term_text(target.chain)
        return "derivative_missing", (
            f"The formula is dE/dyhat, not dE/dz: the activation's derivative dyhat/dz = "
            f"{chain} is missing (the chain rule through the {target.activation})."
        ), Finding(formula, f"missing factor {chain}", expected_text(D),
                   f"dE/dz = dE/dyhat·dyhat/dz, with dyhat/dz = {chain}")
    r = ratio_of(U, D)
    if r is None or r == 0:
        return None
    x, w, z = SYMBOLS["x"], SYMBOLS["w"], SYMBOLS["z"]
    var = target.var
    expected = expected_text(D)
    cases = []
    if var in (z, SYMBOLS["yhat"], SYMBOLS["p"]):
        cases += [(x, "w", "x"), (w, "x", "w")]
    for factor, other, dz in cases:
        if equal_exprs(r, factor):
            return "wrong_variable", (
                f"The formula is dE/d{other} = {target.subject}·{dz}, not {target.subject}: with "
                f"z = w·x the chain rule multiplies by dz/d{other} = {dz} only when it continues "
                f"from z to {other}; {target.subject} stops at {var.name}."
            ), Finding(formula, f"extra factor {dz}", expected,
                       f"dE/d{other} = dE/dz·dz/d{other}, dz/d{other} = {dz}")
    if var in (w, x):
        dz = x if var == w else w
        if equal_exprs(r * dz, 1):
            return "wrong_variable", (
                f"The formula is dE/dz, not dE/d{var.name}: the chain rule through z = w·x "
                f"still multiplies by dz/d{var.name} = {dz.name}."
            ), Finding(formula, f"missing factor {dz.name}", expected,
                       f"dE/d{var.name} = dE/dz·{dz.name}")
        if equal_exprs(r, dz):
            return "factor_twice", (
                f"The factor dz/d{var.name} = {dz.name} is applied twice: the chain rule "
                "through z = w·x multiplies by it once."
            ), Finding(formula, f"extra factor {dz.name}", expected)
    return None


def inner_dropped(U, target: Target, formula: str):
    """U is the derivative with one chain rule's inner derivative left out: d/dx e^(-x) written
    as e^(-x) instead of -e^(-x)."""
    E, var = target.function, target.var
    if E is None:
        return None
    # A Piecewise (relu, binary_step) holds (expression, condition) pairs, not an inner
    # function: it has no single inner derivative to drop.
    candidates = [h for h in sympy.preorder_traversal(E)
                  if (isinstance(h, sympy.Function) or (h.is_Pow and not h.exp.has(var)))
                  and not isinstance(h, sympy.Piecewise) and h.has(var) and len(h.args) >= 1
                  and isinstance(h.base if h.is_Pow else h.args[0], sympy.Expr)]
    for h in candidates[:12]:
        g = h.args[0] if not h.is_Pow else h.base
        if g == var:
            continue
        gp = sympy.diff(g, var)
        if gp == 1:
            continue
        s, t = sympy.Dummy("s"), sympy.Dummy("t")
        E_s = E.xreplace({h: s})
        outer = sympy.diff(h.xreplace({g: t}), t).xreplace({t: g})
        dropped = (sympy.diff(E_s, var) + sympy.diff(E_s, s) * outer).xreplace({s: h})
        if equal_exprs(U, dropped):
            full = term_text(sympy.diff(h, var))
            return "inner_derivative_dropped", (
                f"The chain rule's inner derivative was dropped: d/d{var.name} {text_of(h)} = "
                f"{full}, the outer derivative times d/d{var.name}({text_of(g)}) = "
                f"{term_text(gp)}."
            ), Finding(formula, f"missing factor {term_text(gp)}",
                       text_of(tidy_expr(sympy.diff(E, var))),
                       f"d/d{var.name} f(g) = f'(g)·g', with g' = {term_text(gp)}")
    return None


def scaled_relation(c, k: int, target: Target, formula: str, expected: str):
    """U = c·m^k·D: a sign, a 2 or 1/2, an m too many or too few."""
    if c == -1 and k == 0:
        if target_minus_prediction(formula):
            v = target.var.name
            return "sign_flipped", (
                f"The whole formula has the opposite sign: it is -{target.subject}, the negative "
                f"gradient, which is the direction of the gradient-descent update ({v} moves by "
                f"-η·{target.subject}). Tutorials that write y - yhat (or t - o) mean this "
                f"direction; the gradient itself has yhat - y."
            ), Finding(formula, "negative gradient (the update direction)", expected,
                       "the update is -η·gradient; the gradient has yhat - y")
        sentence = f"The whole formula has the opposite sign: it is -({target.subject})."
        if target.sign < 0:
            sentence += (" The loss carries a leading minus, -(...), and the minus stays in "
                         "front of its derivative: it was dropped.")
        return "sign_flipped", sentence, Finding(formula, "wrong sign", expected, "d(-u) = -du")
    factor = text_of(c * SYMBOLS["m"] ** k)
    causes = []
    if c < 0:
        causes.append("the sign is wrong as well")
    if abs(c) == 2:
        causes.append("the derivative of ½(yhat - y)² is yhat - y: the ½ cancels the 2 that the "
                      "power rule brings down (or one term was counted twice)")
    elif abs(c) == sympy.Rational(1, 2):
        causes.append("the derivative of (yhat - y)² is 2(yhat - y): the power rule brings down "
                      "the 2; only the loss ½(yhat - y)² has a derivative without it")
    elif abs(c) != 1:
        causes.append(f"a constant {text_of(abs(c))} is applied once too often or forgotten")
    if k > 0 and target.mean:
        causes.append("the 1/m of the mean over the batch was forgotten")
    elif k > 0:
        causes.append(f"there is an extra factor {text_of(SYMBOLS['m'] ** k)}: the loss of one "
                      "example has no m in its derivative")
    elif k < 0 and target.mean:
        times = {2: "twice", 3: "three times"}.get(1 - k, f"{1 - k} times")
        causes.append(f"the 1/m is applied {times}: the mean's 1/m appears once in the "
                      "derivative, however the formula is written")
    elif k < 0:
        causes.append("there is an extra 1/m: the derivative of one example's loss has none "
                      "(pass mean=True to check the mean over m examples)")
    sentence = " ".join([f"The formula is {factor} times the derivative.",
                         *(c[0].upper() + c[1:] + "." for c in causes)])
    kind = "scaled"
    if abs(c) == 1 and target.mean:
        kind = {1: "mean_forgotten", -1: "mean_twice"}.get(k, "scaled")
    return kind, sentence, Finding(formula, f"extra factor {factor}", expected)


def simple_ratio(U, D, target: Target, formula: str) -> tuple[str, str, Finding] | None:
    """U = r·D for a short r that involves the variable: a factor missing or extra."""
    r = ratio_of(U, D)
    if (r is None or r == 0 or sympy.count_ops(r) > 6 or not r.free_symbols
            or r.has(sympy.Piecewise, sympy.zoo, sympy.nan)):
        return None
    what, negative = factor_problem(r)
    phrases = []
    for part in what.split(" and "):
        kind, _, factor = part.partition(" factor ")
        phrases.append(f"the factor {factor} is missing" if kind == "missing"
                       else f"there is an extra factor {factor}")
    sentence = (f"The formula is the derivative times {term_text(r)}: " + " and ".join(phrases)
                + (", and the sign is wrong" if negative else "") + ".")
    if target.activation and not target.to_z:
        sentence += (f" (dyhat/dz for the {target.activation} is {term_text(target.chain)}.)")
    return "wrong_factor", sentence, Finding(formula, what, expected_text(D))
