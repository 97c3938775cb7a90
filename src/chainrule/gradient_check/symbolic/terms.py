"""The comparison term by term: which term of the derivative has the wrong sign or factor, which
is missing or extra, and the paragraph that says so. SymPy is imported here.
"""

from __future__ import annotations

from dataclasses import replace

import sympy

from chainrule.gradient_check.symbolic.equality import ratio_of
from chainrule.gradient_check.symbolic.target import (
    Target,
    rule_of,
    through_activation,
    user_bracket,
)
from chainrule.gradient_check.symbolic.text import (
    ORDINALS,
    factor_problem,
    sum_text,
    term_text,
)
from chainrule.gradient_check.verdict import Finding

__all__ = ["term_by_term", "term_paragraph"]


def _classify(v: sympy.Expr, c: sympy.Expr, var: sympy.Symbol):
    """How the user's term v relates to the right term c: (rank, relation, ratio) or None."""
    r = ratio_of(v, c)
    if r is None or r == 0:
        return None
    if r == 1:
        return 0, "ok", r
    if r == -1:
        return 1, "sign", r
    if r.is_number:
        return 2, "factor", r
    if not r.has(var):
        return 3, "factor", r
    if sympy.count_ops(r) <= sympy.count_ops(c):
        return 4, "factor", r
    return None


def _strip_chain(U: sympy.Expr, target: Target) -> list[sympy.Expr] | None:
    """The factors of U left once the activation's dyhat/dz is taken out, when U is written
    as (something)·dyhat/dz, e.g. -(y/yhat - (1-y)/(1-yhat))·yhat(1 - yhat) for BCE after a
    sigmoid."""
    if not (target.activation and not target.to_z and U.is_Mul):
        return None
    have = list(U.args)
    for f in sympy.Mul.make_args(target.chain):
        if f not in have:
            return None
        have.remove(f)
    return have


def _user_framing(U, formula: str, target: Target):
    """(framing, the user's terms inside the loss's leading minus, target to compare with)."""
    rest = _strip_chain(U, target)
    if rest is not None:
        target = replace(target, chain=sympy.S.One, activation=None)
        minus = sympy.S.NegativeOne in rest
        body = sympy.Mul(*[f for f in rest if f != sympy.S.NegativeOne])
        if minus and body.is_Add and target.sign < 0:
            return "kept", list(body.args), target
        U = -body if minus else body
        formula = ""
    user_terms = list(sympy.Add.make_args(sympy.expand_mul(U, deep=False)))
    all_negative = len(user_terms) > 1 and all(u.could_extract_minus_sign() for u in user_terms)
    if target.sign < 0 and (user_bracket(formula) or all_negative):
        return "kept", [-u for u in user_terms], target
    if (target.sign < 0 and len(user_terms) > 1
            and not any(u.could_extract_minus_sign() for u in user_terms)):
        return "dropped", user_terms, target
    return "plain", user_terms, target


def term_by_term(U, formula: str, target: Target, rights, origin):
    """(framing, findings) of the comparison term by term, or None when nothing pairs up."""
    framing, user_inner, target = _user_framing(U, formula, target)
    outer = target.coeff if framing != "plain" else target.sign * target.coeff
    expected = [through_activation(outer * c, target) for c in rights]
    expanded = None
    if framing == "plain" and (target.sign < 0 or target.coeff != 1):
        expanded = sum_text(expected)

    pairs: dict[int, tuple[int, str, sympy.Expr]] = {}
    used: set[int] = set()
    for k, c in enumerate(expected):
        best = None
        for j, v in enumerate(user_inner):
            if j in used:
                continue
            found = _classify(v, c, target.var)
            if found is not None and (best is None or found[0] < best[1][0]):
                best = (j, found)
        if best is not None:
            j, (_, relation, r) = best
            used.add(j)
            pairs[k] = (j, relation, r)
    if not pairs:
        return None
    findings: list[Finding] = []
    if framing == "dropped":
        # Multiplied out, the terms right inside the brackets are the ones with the wrong sign.
        wrong = [k for k, (_, relation, _) in sorted(pairs.items()) if relation == "ok"]
        note = "; ".join(
            f"the {ORDINALS[k] if k < len(ORDINALS) else f'term {k + 1}'} term, "
            f"{term_text(user_inner[pairs[k][0]])}, with the wrong sign: it should be "
            f"{term_text(-expected[k])}"
            for k in wrong)
        findings.append(Finding(" ".join(formula.split()), "leading minus dropped",
                                f"-({sum_text(user_inner)})",
                                "the loss is -(...), so its derivative is -(...) too",
                                note or None))
    for k, c in enumerate(expected):
        rule = rule_of(target.inner[origin[k]], target)
        position = (f"{ORDINALS[k]} term" if k < len(ORDINALS) else f"term {k + 1}")
        if k not in pairs:
            findings.append(Finding("", "missing term", term_text(c), rule, position))
            continue
        j, relation, r = pairs[k]
        if relation == "ok":
            continue
        v = user_inner[j]
        if relation == "sign":
            findings.append(Finding(term_text(v), "wrong sign", term_text(c), rule, position))
        else:
            what, negative = factor_problem(r)
            problem = what + (" and wrong sign" if negative else "")
            findings.append(Finding(term_text(v), problem, term_text(c), rule, position))
    for j, v in enumerate(user_inner):
        if j not in used:
            findings.append(Finding(term_text(v), "extra term", "0"))
    return framing, findings, expanded


def _describe(f: Finding) -> str:
    if f.problem == "wrong sign":
        return f"the {f.position} has the wrong sign: {f.term} should be {f.should_be}"
    if f.problem == "missing term":
        return f"the {f.position}, {f.should_be}, is missing"
    if f.problem == "extra term":
        return f"the term {f.term} should not be there"
    what = f.problem.replace(" and wrong sign", "")
    sign = ", and its sign is wrong" if f.problem.endswith("wrong sign") else ""
    return f"the {f.position} has a {what}{sign}: {f.term} should be {f.should_be}"


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return "; ".join(parts[:-1]) + "; and " + parts[-1]


def term_paragraph(framing: str, findings: list[Finding], expanded: str | None) -> str:
    body = [f for f in findings if f.problem != "leading minus dropped"]
    described = _join([_describe(f) for f in body])
    if framing == "dropped":
        if any(f.problem == "wrong sign" for f in body):
            first = (f"Two sign errors: the loss's leading minus was dropped (the loss is -(...), "
                     f"so its derivative is -(...) too), and inside the brackets {described}.")
        elif body:
            first = f"The loss's leading minus was dropped, and inside the brackets {described}."
        else:
            first = "The loss's leading minus was dropped; the terms inside are right."
    else:
        where = "Inside the leading minus" if framing == "kept" else "Term by term"
        if framing == "plain" and expanded is not None:
            where += f" (multiplied out, the derivative is {expanded})"
        first = f"{where}, {described}."
    sentences = [first[0].upper() + first[1:]]
    dropped = next((f for f in findings if f.problem == "leading minus dropped"), None)
    if dropped is not None and dropped.position and any(f.problem == "wrong sign" for f in body):
        sentences.append(f"Multiplied out, the sign errors cancel where both apply and leave "
                         f"{dropped.position}.")
    rules = []
    for f in body:
        if f.rule and f.rule not in rules:
            rules.append(f.rule)
    if rules:
        sentences.append("The rule that gives the right one: " + "; ".join(rules) + ".")
    return " ".join(s for s in sentences if s)
