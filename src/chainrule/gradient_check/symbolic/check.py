"""The driver of the scalar check: :func:`check_formula` and its explanation. SymPy is imported
here.
"""

from __future__ import annotations

import sympy

from chainrule.derivation import library
from chainrule.derivation.parser import parse_expression, refuse_runaway
from chainrule.gradient_check.symbolic.equality import POINTS, compare_exprs
from chainrule.gradient_check.symbolic.relations import (
    global_relation,
    inner_dropped,
    learner_relation,
    shortcut_relation,
    simple_ratio,
)
from chainrule.gradient_check.symbolic.target import (
    build_target,
    derivative_terms,
    derivative_text,
    read_aliases,
    relate_to_output,
    through_activation,
)
from chainrule.gradient_check.symbolic.terms import term_by_term, term_paragraph
from chainrule.gradient_check.symbolic.text import expected_text, text_of, tidy_expr
from chainrule.gradient_check.verdict import Finding, FormulaCheck

__all__ = ["check_formula"]


def _softmax_vector_check(formula, loss, function, wrt, mean, half):
    """Softmax couples every output: judge the formula in vector form over k outputs."""
    if function is not None:
        raise ValueError("activation='softmax' checks dE/dz of a loss in vector form; give "
                         "loss= (e.g. loss='ce'), not function=.")
    if loss is None:
        raise ValueError("activation='softmax' alone has a Jacobian, not a derivative: give "
                         "loss= (e.g. loss='ce') to check dE/dz in vector form.")
    from chainrule.gradient_check.matrix import check_matrix

    name = library.canonical_loss(loss)
    return check_matrix(formula.replace("^", "**"), loss=name, activation="softmax", wrt=wrt,
                        mean=mean, half=half, _vector=True)


@refuse_runaway
def check_formula(
    formula: str,
    *,
    loss: str | None = None,
    function: str | None = None,
    activation: str | None = None,
    wrt: str | None = None,
    mean: bool = False,
    half: bool = False,
) -> FormulaCheck:
    r"""Check the hand-derived derivative ``formula`` and explain what is wrong with it.

    Parameters
    ----------
    formula
        The derivative as text, in the derivation engine's symbols (``yhat``, ``y``, ``z``,
        ``x``, ``w``, ``p``, ``t``, and ``m`` for the batch size).
    loss
        A loss name (``"bce"``, ``"mse"``, ``"ce"``, ...): check dE/dyhat of one example's
        loss. If the formula uses ``p`` and ``t`` instead of ``yhat`` and ``y``, the loss is
        written in those.
    function
        Any expression instead of a loss (``"x*sigmoid(x)"``); ``wrt`` picks the variable
        (``x`` when present, else the only variable).
    activation
        Check dE/dz, where ``yhat`` in the formula stands for the activation of ``z`` (so
        ``(yhat + 1)(yhat - y)/yhat`` is right for tanh + BCE). Alone, without a loss or
        a function, it checks the activation's own derivative dyhat/dz.
    wrt
        The variable (default ``yhat``, or ``p``; with ``activation``, ``z``).
    mean
        The loss is the mean over ``m`` examples: the derivative carries ``1/m``.
    half
        With ``loss="mse"``: the loss is :math:`\tfrac12(\hat y - y)^2`.

    Returns
    -------
    FormulaCheck
        ``correct``, ``kind`` (a key of :data:`~chainrule.gradient_check.MISTAKES`),
        ``sentence`` and the expected derivative. With ``activation="softmax"`` every output
        depends on every input: the formula (in ``p``, ``t``, ``z``) is judged in vector form
        over k outputs by :func:`chainrule.gradient_check.check_matrix`, whose
        :class:`MatrixCheck` has the same keys plus the shapes.

    Raises
    ------
    chainrule.derivation.FormulaError
        When the formula is not in the whitelist syntax (the message points at the part).
    ValueError
        For an unknown loss or activation, or options that contradict each other.

    Examples
    --------
    >>> check_formula("yhat - y", loss="bce", activation="sigmoid").correct
    True
    >>> result = check_formula("y - yhat", loss="mse", half=True)
    >>> result.correct, result.kind
    (False, 'sign_flipped')
    """
    _check_text(formula)
    if activation is not None and library.canonical_activation(activation) == "softmax":
        return _softmax_vector_check(formula, loss, function, wrt, mean, half)
    U, target, read_as = _read(formula, loss, function, activation, wrt, mean, half)
    rights, origin = derivative_terms(target)
    D = through_activation(target.sign * target.coeff * sympy.Add(*rights), target)
    derivative = derivative_text(target, rights)
    simplified = expected_text(D)
    equal, method = compare_exprs(U, D)
    shown = " ".join(formula.split())
    same = "" if len(simplified) >= len(derivative) - 2 else f" = {simplified}"
    subject, of = target.subject, target.title

    def result(correct, kind, findings, paragraph):
        where = ", ".join(f.position for f in findings
                          if f.position and f.problem != "leading minus dropped") or None
        return FormulaCheck(
            correct=correct, kind=kind, where=where, sentence=paragraph, expected=simplified,
            formula=shown, derivative=derivative, simplified=simplified,
            variable=target.var.name, of=of, method=method, findings=findings,
        )

    if equal:
        how = ("symbolically" if method == "symbolic" else
               f"at {POINTS} random points; SymPy could not reduce the difference to 0")
        return result(True, None, [],
                      f"Correct: {shown} is {subject} of the {of}, {derivative}{same} "
                      f"({read_as}{how}).")
    head = (f"Not correct: your {subject}, {shown}, is not the derivative of the {of}, which is "
            f"{derivative}{same}.")
    if read_as:
        head = head[:-1] + f" ({read_as.rstrip('; ')})."
    kind, findings, explanation = _explain(U, D, formula, target, rights, origin, simplified)
    return result(False, kind, findings, f"{head} {explanation}")


def _check_text(formula) -> None:
    if not isinstance(formula, str):
        raise ValueError(f"The formula must be text such as '-(y/yhat - (1-y)/(1-yhat))'; got "
                         f"{type(formula).__name__}.")


def _read(formula: str, loss, function, activation, wrt, mean, half):
    """The formula as SymPy (in z where it is checked through an activation), what it is the
    derivative of, and how its names were read."""
    U = parse_expression(read_aliases(formula))
    target = build_target(U, loss, function, activation, wrt, mean, half)
    U, target, read_as = relate_to_output(U, target)
    if target.to_z:
        U = U.xreplace(target.to_z)
    return U, target, read_as


def _explain(U, D, formula: str, target, rights, origin, simplified: str):
    """(kind, findings, sentences) of a wrong formula: the first explanation that holds of the
    inner function dropped, another activation's fused shortcut, a relation of the whole, a
    learner's mistake, the terms one by one and a simple ratio; else the difference itself."""
    shown = " ".join(formula.split())
    found = inner_dropped(U, target, shown) if target.function is not None else None
    if found is None:
        found = shortcut_relation(U, D, target, shown)
    if found is None:
        found = global_relation(U, D, target, shown)
    if found is None:
        found = learner_relation(U, D, target, shown)
    if found is not None:
        kind, sentence, finding = found
        return kind, [finding], sentence
    if len(rights) > 1:
        compared = term_by_term(U, formula, target, rights, origin)
        if compared is not None and compared[1]:
            framing, findings, expanded = compared
            problems = {f.problem for f in findings}
            if problems <= {"wrong sign", "leading minus dropped"}:
                kind = "term_sign"
            elif problems & {"missing term", "extra term"}:
                kind = "term_missing"
            else:
                kind = "term_factor"
            return kind, findings, term_paragraph(framing, findings, expanded)
    found = simple_ratio(U, D, target, shown)
    if found is not None:
        kind, sentence, finding = found
        return kind, [finding], sentence
    difference = text_of(tidy_expr(U - D))
    return (None, [Finding(shown, "different", simplified)],
            f"No single term or factor explains it: your formula minus the derivative is "
            f"{difference}.")
