r"""Check a hand-derived derivative symbolically and say, term by term, what is wrong.

:func:`check_formula` parses the formula with the derivation engine's whitelist parser (never
``eval`` or ``sympify``), differentiates the loss, the activation or the function with SymPy,
and decides equality symbolically or, where SymPy cannot reduce the difference to 0, at random
points (a counterexample is conclusive). When the formula is wrong it looks for, in order:

1. one relation for the whole formula: the opposite sign (a leading minus dropped), a constant
   factor (2 versus 1/2 in a squared error, :math:`m`), an activation derivative missing or
   extra, or the gradient of the wrong variable (dE/dz written for dE/dyhat);
2. term by term against the terms of the loss: which term has the wrong sign, which factor is
   missing or extra, which term is missing or extra, and the rule that gives the right one
   ("d/dyhat log(1 - yhat) = -1/(1 - yhat): the chain rule's inner derivative is -1").

The classic sign slip in the binary cross-entropy's derivative:

>>> print(check_formula("-(y/yhat + (1-y)/(1-yhat))", loss="bce").findings[0].problem)
wrong sign

SymPy is imported by this module only.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import sympy

from chainrule.derivation import library
from chainrule.derivation.parser import SYMBOLS, parse_expression, refuse_runaway
from chainrule.derivation.printing import to_text
from chainrule.derivation.simplify import reading_score, tidy
from chainrule.gradient_check.names import LOSS_TITLES
from chainrule.gradient_check.verdict import Finding, FormulaCheck

__all__ = ["Finding", "FormulaCheck", "check_formula"]

_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
_POINTS = 24


# --- text ---------------------------------------------------------------------------------------


def _text(e) -> str:
    return to_text(sympy.sympify(e, strict=True))


def _orient(e: sympy.Expr) -> tuple[bool, sympy.Expr]:
    """(negative?, magnitude) of a term, written as people do: -(1 - y)/(1 - yhat), never
    (1 - y)/(yhat - 1); 2(yhat - y), never 2yhat - 2y. The magnitude is left unevaluated."""
    e = sympy.sympify(e, strict=True)
    if e.is_Add:
        factored = sympy.factor_terms(e)
        if factored.is_Add:
            return (True, -e) if reading_score(-e) > reading_score(e) else (False, e)
        e = factored
    coeff, factors = e.as_coeff_mul()
    negative = bool(coeff < 0)
    out = [] if abs(coeff) == 1 else [abs(coeff)]
    for f in factors:
        base, power = f.as_base_exp()
        if base.is_Add and power.is_Integer and power % 2 == 1 and \
                reading_score(-base) > reading_score(base):
            base, negative = -base, not negative
        out.append(base if power == 1 else sympy.Pow(base, power))
    if not out:
        return negative, sympy.S.One
    return negative, out[0] if len(out) == 1 else sympy.Mul(*out, evaluate=False)


def _signed(e: sympy.Expr) -> tuple[bool, str]:
    """(negative?, magnitude as text): -(1 - y)/(1 - yhat) gives (True, "(1 - y)/(1 - yhat)")."""
    negative, body = _orient(e)
    text = _text(body)
    if negative and body.is_Add:
        text = f"({text})"
    return negative, text


def _term_text(e: sympy.Expr) -> str:
    negative, body = _signed(e)
    return f"-{body}" if negative else body


def _sum_text(terms: list[sympy.Expr]) -> str:
    out = ""
    for i, term in enumerate(terms):
        negative, body = _signed(term)
        if i == 0:
            out = f"-{body}" if negative else body
        else:
            out += f" - {body}" if negative else f" + {body}"
    return out or "0"


def _bracket_text(sign: int, coeff: sympy.Expr, terms: list[sympy.Expr]) -> str:
    if coeff != 1 and (coeff.is_number or len(terms) == 1):
        terms, coeff = [coeff * t for t in terms], sympy.S.One
    inner = _sum_text(terms)
    if len(terms) > 1 and (sign < 0 or coeff != 1):
        inner = f"({inner})"
    elif sign < 0 and inner.startswith("-"):
        inner = f"({inner})"
    lead = "" if coeff == 1 else f"{_text(coeff)}·"
    if sign < 0 and coeff != 1:
        return f"-{lead}{inner}"
    return f"{'-' if sign < 0 else ''}{lead}{inner}"


def _tidy(e: sympy.Expr) -> sympy.Expr:
    try:
        return tidy(e)
    except (TypeError, ValueError, sympy.PolynomialError):
        try:
            return sympy.factor(sympy.cancel(sympy.together(e)))
        except (sympy.PolynomialError, NotImplementedError):
            return e


# --- equality -------------------------------------------------------------------------------------


def _sample(symbol: sympy.Symbol, rng: random.Random, i: int):
    name = symbol.name
    if name in ("yhat", "p"):
        return sympy.Rational(round(rng.uniform(0.04, 0.96) * 10_000), 10_000)
    if name in ("y", "t"):
        choices = (0, 1, None)
        pick = choices[i % 3]
        if pick is None:
            return sympy.Rational(round(rng.uniform(0.05, 0.95) * 10_000), 10_000)
        return sympy.Integer(pick)
    if name == "m":
        return sympy.Integer(rng.randint(2, 9))
    if symbol.is_positive:
        return sympy.Rational(round(rng.uniform(0.1, 2.0) * 10_000), 10_000)
    return sympy.Rational(round(rng.uniform(-2.5, 2.5) * 10_000), 10_000)


def _numeric_zero(d: sympy.Expr, scale: sympy.Expr, seed: int = 0) -> bool | None:
    """True if ``d`` vanishes at every random point, False at a counterexample, None if it could
    not be evaluated anywhere."""
    symbols = sorted(d.free_symbols | scale.free_symbols, key=lambda s: s.name)
    rng = random.Random(seed)
    hits = 0
    for i in range(_POINTS * 3):
        values = {s: _sample(s, rng, i) for s in symbols}
        try:
            dv = sympy.N(d.xreplace(values), 30)
            sv = sympy.N(scale.xreplace(values), 30)
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if not (dv.is_number and sv.is_number) or dv.has(sympy.nan, sympy.zoo, sympy.oo,
                                                         -sympy.oo, sympy.I):
            continue
        if sv.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo, sympy.I):
            continue
        if not (dv.is_real and sv.is_real):
            continue
        if abs(dv) > sympy.Float("1e-15", 30) * (1 + abs(sv)):
            return False
        hits += 1
        if hits >= _POINTS:
            break
    return True if hits else None


def _symbolic_zero(d: sympy.Expr) -> bool:
    if d == 0:
        return True
    try:
        if sympy.cancel(sympy.together(d)) == 0:
            return True
    except (sympy.PolynomialError, NotImplementedError, TypeError):
        pass
    if sympy.count_ops(d) <= 80 and not d.has(sympy.Piecewise):
        try:
            return sympy.simplify(d) == 0
        except (TypeError, NotImplementedError):
            return False
    return False


def _equal(a: sympy.Expr, b: sympy.Expr) -> tuple[bool, str]:
    """(equal?, "symbolic" or "numeric")."""
    d = a - b
    if _symbolic_zero(d):
        return True, "symbolic"
    verdict = _numeric_zero(d, abs(a) + abs(b))
    return bool(verdict), "numeric"


def _ratio(a: sympy.Expr, b: sympy.Expr) -> sympy.Expr | None:
    try:
        return sympy.cancel(sympy.together(a / b))
    except (sympy.PolynomialError, NotImplementedError, TypeError, ZeroDivisionError):
        return None


def _same(a: sympy.Expr, b: sympy.Expr) -> bool:
    return _equal(a, b)[0]


# --- the target -----------------------------------------------------------------------------------


@dataclass
class _Target:
    """What is differentiated: E = coeff·sign·sum(inner) in ``pred``; with an activation, the
    derivative is taken through ``yhat = f(z)``: dE/dz = dE/dyhat·chain."""

    title: str
    subject: str  # "dE/dyhat", "dE/dz", "d/dx", "dyhat/dz"
    var: sympy.Symbol  # the variable of the user's derivative
    pred: sympy.Symbol  # the variable E is written in
    sign: int
    coeff: sympy.Expr
    inner: list[sympy.Expr]
    chain: sympy.Expr
    activation: str | None
    to_z: dict  # yhat -> f(z) when the comparison happens in z
    mean: bool = False
    function: sympy.Expr | None = None  # the whole expression, for a function= target


def _split(E: sympy.Expr, var: sympy.Symbol) -> tuple[int, sympy.Expr, list[sympy.Expr]]:
    """E = coeff·sign·sum(inner), with coeff free of var and the terms in textbook order."""
    coeff = sympy.S.One
    core = E
    if E.is_Mul:
        # Numbers and the batch size m stay outside the brackets; y, t... stay with their term.
        outside = [f for f in E.args if f.is_number or f.free_symbols == {SYMBOLS["m"]}]
        coeff = sympy.Mul(*outside)
        core = sympy.Mul(*[f for f in E.args if f not in outside])
    sign = 1
    if coeff.could_extract_minus_sign():
        coeff, sign = -coeff, -sign
    terms = list(sympy.Add.make_args(core))
    if all(t.could_extract_minus_sign() for t in terms):
        terms = [-t for t in terms]
        sign = -sign
    terms.sort(key=lambda t: (int(sympy.count_ops(t)), sympy.default_sort_key(t)))
    return sign, coeff, terms


def _choose_prediction(formula: sympy.Expr) -> tuple[sympy.Symbol, sympy.Symbol]:
    names = {s.name for s in formula.free_symbols}
    if names & {"p", "t"} and not names & {"yhat", "y"}:
        return SYMBOLS["p"], SYMBOLS["t"]
    return SYMBOLS["yhat"], SYMBOLS["y"]


def _symbol(name: str) -> sympy.Symbol:
    if name not in SYMBOLS:
        raise ValueError(f"unknown variable wrt={name!r}; use one of {', '.join(SYMBOLS)}.")
    return SYMBOLS[name]


def _build_target(formula, loss, function, activation, wrt, mean, half) -> _Target:
    yhat = SYMBOLS["yhat"]
    z = SYMBOLS["z"]
    act = library.canonical_activation(activation) if activation else None
    if act == "log_softmax":
        raise ValueError(
            "activation='log_softmax' couples every class, so a one-variable check does not "
            "apply; check softmax + cross-entropy (activation='softmax', loss='ce') in vector "
            "form, or numerically with chainrule.gradcheck(..., activation='log_softmax')."
        )
    if loss is not None and function is not None:
        raise ValueError("give either a loss (loss=) or a function (function=), not both.")
    if loss is None and function is None and act is None:
        raise ValueError(
            "say what the formula is the derivative of: loss= NAME (e.g. bce), function= EXPR "
            "or activation= NAME."
        )
    if act is not None and wrt not in (None, "z"):
        raise ValueError(
            f"with activation= the formula is dE/dz (yhat stands for the activation of z); got "
            f"wrt={wrt!r}. Leave out wrt=, or leave out activation= to check d/d{wrt}."
        )
    if loss is not None:
        name = library.canonical_loss(loss)
        pred, target = _choose_prediction(formula)
        E = library.loss_expr(name, pred, target, half=half and name == "mse")
        title = LOSS_TITLES.get(name, f"{name} loss")
        if half and name == "mse":
            title = "half squared-error loss"
        if act is None and wrt is not None:
            pred = _symbol(wrt)
            if pred not in E.free_symbols:
                raise ValueError(
                    f"the {title} is written in {', '.join(sorted(map(str, E.free_symbols)))}, "
                    f"not {wrt}: use wrt={_choose_prediction(formula)[0].name!r}."
                )
        subject = f"dE/d{pred.name}"
    elif function is not None:
        E = parse_expression(function)
        title = f"function {_text(E)}"
        names = sorted(s.name for s in E.free_symbols)
        if wrt is not None:
            pred = _symbol(wrt)
        elif act is not None:
            pred = yhat
        elif "x" in names:
            pred = SYMBOLS["x"]
        elif len(names) == 1:
            pred = SYMBOLS[names[0]]
        else:
            raise ValueError(
                f"the function uses {', '.join(names) or 'no variable'}; say which one to "
                "differentiate with wrt=."
            )
        subject = f"d/d{pred.name}"
    else:  # an activation alone: check its own derivative
        E, pred = yhat, yhat
        title = f"{act} activation"
        subject = "dyhat/dz"
    if mean:
        E = E / SYMBOLS["m"]
        title = f"mean {title} over m examples"

    chain, to_z, var = sympy.S.One, {}, pred
    if act is not None:
        var = z
        out_form = library.output_derivative(act, yhat)
        if out_form is not None and pred == yhat:
            chain = out_form
        else:
            f_z = library.activation_expr(act, z)
            chain = sympy.diff(f_z, z)
            to_z = {yhat: f_z}
        if loss is not None or function is not None:
            title = f"{title} with yhat = {act}(z)"
            subject = "dE/dz"
    sign, coeff, inner = _split(E, pred)
    return _Target(title, subject, var, pred, sign, coeff, inner, chain, act, to_z, bool(mean),
                   E if function is not None and act is None else None)


def _through(d: sympy.Expr, target: _Target) -> sympy.Expr:
    """A derivative in ``pred`` carried through the activation (times dyhat/dz)."""
    if target.chain == 1 and not target.to_z:
        return d
    d = d * target.chain
    if target.to_z:
        d = d.xreplace(target.to_z)
    try:
        return sympy.cancel(d)
    except (sympy.PolynomialError, NotImplementedError):
        return d


def _derivative_terms(target: _Target) -> tuple[list[sympy.Expr], list[int]]:
    """The derivatives of the inner terms, nonzero only (a product alone is split by the product
    rule), with the index of the inner term each came from."""
    terms, origin = [], []
    for k, term in enumerate(target.inner):
        d = sympy.diff(term, target.pred)
        if d == 0:
            continue
        product = term.is_Mul and sum(f.has(target.pred) for f in term.args) >= 2
        parts = sympy.Add.make_args(d) if len(target.inner) == 1 and product else (d,)
        for part in parts:
            terms.append(part)
            origin.append(k)
    return terms, origin


def _derivative_text(target: _Target, rights: list[sympy.Expr]) -> str:
    text = _bracket_text(target.sign, target.coeff, rights)
    if target.chain == 1 and not target.to_z:
        return text
    chain = _term_text(target.chain)
    if target.inner == [SYMBOLS["yhat"]]:  # the activation alone
        return chain
    if _orient(target.chain)[1].is_Add:
        chain = f"({chain})"
    if not _bracketed(text):
        text = f"({text})"
    where = f", with yhat = {target.activation}(z)" if target.to_z else ""
    return f"{text}·{chain}{where}"


def _bracketed(text: str) -> bool:
    """Whether ``text`` is one bracket, optionally after a minus: "-(a + b)" or "(a + b)"."""
    return _user_bracket(text) or _user_bracket("-" + text) or " " not in text


# --- the rules ------------------------------------------------------------------------------------


def _rule(term: sympy.Expr, target: _Target) -> str | None:
    """The differentiation rule that gives the derivative of ``term`` (a term inside the loss)."""
    var = target.pred
    _, h = term.as_independent(var, as_Add=False)
    v = var.name
    rule = None
    if isinstance(h, sympy.log):
        g = h.args[0]
        gp = sympy.diff(g, var)
        rule = f"d/d{v} log({_text(g)}) = {_term_text(gp / g)}"
        if g != var:
            rule += f": the chain rule's inner derivative is {_term_text(gp)}"
    elif h.is_Pow and h.exp.is_number and h.base.has(var):
        g, n = h.base, h.exp
        gp = sympy.diff(g, var)
        rule = (f"d/d{v} {_text(h)} = {_term_text(sympy.diff(h, var))}: the power rule brings "
                f"down the {_text(n)}")
        if gp != 1:
            rule += f", and the chain rule's inner derivative is {_term_text(gp)}"
    elif h.is_Mul and sum(f.has(var) for f in h.args) >= 2:
        rule = "the product rule: d(u·v) = du·v + u·dv"
    elif h != var and h.has(var):
        rule = f"d/d{v} {_text(h)} = {_term_text(sympy.diff(h, var))}"
    if rule and target.activation and target.var != var:
        rule += (f"; then the chain rule through the {target.activation} multiplies by "
                 f"dyhat/dz = {_term_text(target.chain)}")
    return rule


# --- the whole-formula relations ------------------------------------------------------------------


def _global_relation(U, D, target: _Target, formula: str) -> tuple[str, str, Finding] | None:
    """(kind, sentence, finding) when U = r·D for a telling r."""
    r = _ratio(U, D)
    if r is None or r == 0 or r.has(sympy.Piecewise, sympy.zoo, sympy.nan):
        return None
    var = target.var
    expected = _text(_tidy(D))
    m = SYMBOLS["m"]
    if r.free_symbols <= {m}:
        c, k = r.as_coeff_exponent(m)
        if c.is_number and k.is_Integer and not c.has(m):
            return _scaled(c, int(k), target, formula, expected)
    if target.activation and not target.to_z and target.inner != [SYMBOLS["yhat"]]:
        chain = _term_text(target.chain)
        if _same(r, target.chain):
            return "derivative_twice", (
                f"The formula has an extra activation factor {chain}: dyhat/dz = {chain} is "
                "multiplied in twice (the fused delta already contains it)."), Finding(
                    formula, f"extra factor {chain}", expected, f"dyhat/dz = {chain}, once")
        if _same(r * target.chain, 1):
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
            if _same(r, form):
                form_text = _term_text(form)
                return "wrong_variable", (
                    f"The formula is dE/dz for a {name} output, not dE/d{var.name}: it carries "
                    f"the activation's derivative {form_text}, which belongs to dE/dz = "
                    f"dE/d{var.name}·{form_text} (dE/d{var.name} confused with dE/dz). Check it "
                    f"with activation={name!r}, or divide it by {form_text}."
                ), Finding(formula, f"extra factor {form_text}", expected,
                           f"dE/dz = dE/d{var.name}·dyhat/dz")
    return None


def _read_aliases(formula: str) -> str:
    """The formula with the textbook names of t - o (target, output) written y - yhat; the names
    are found with Python's ``ast`` (nothing is evaluated)."""
    import ast

    try:
        tree = ast.parse(formula.replace("^", "**").strip(), mode="eval")
    except SyntaxError:
        return formula  # the parser reports it
    if not any(isinstance(n, ast.Name) and n.id == "o" for n in ast.walk(tree)):
        return formula
    out, last = [], 0
    text = formula.replace("^", "**").strip()
    rename = {"o": "yhat"}
    if not any(isinstance(n, ast.Name) and n.id == "p" for n in ast.walk(tree)):
        rename["t"] = "y"
    names = sorted((n.col_offset, n.end_col_offset, rename[n.id]) for n in ast.walk(tree)
                   if isinstance(n, ast.Name) and n.id in rename)
    for start, end, new in names:
        out += [text[last:start], new]
        last = end
    return "".join(out) + text[last:]


def _target_minus_prediction(formula: str) -> bool:
    """Whether the formula holds target - prediction (y - yhat, t - p, t - o), read with ``ast``."""
    import ast

    try:
        tree = ast.parse(formula.replace("^", "**").strip(), mode="eval")
    except SyntaxError:
        return False
    return any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub)
               and isinstance(n.left, ast.Name) and n.left.id in ("y", "t")
               and isinstance(n.right, ast.Name) and n.right.id in ("yhat", "p", "o")
               for n in ast.walk(tree))


def _relate_to_output(U, target: _Target):
    """A formula written in z where the derivative is in yhat = f(z): read f(z) as yhat where
    it appears as such (sigmoid(z) - y is yhat - y), else compare both in z."""
    z, yhat = SYMBOLS["z"], SYMBOLS["yhat"]
    if target.activation is None or target.to_z:
        return U, target, ""
    # A piecewise activation is not invertible where it is flat (relu(z) = 0 for every z < 0),
    # so yhat - y and its derivative differ only there: the comparison has to happen in z.
    piecewise = target.chain.has(sympy.Piecewise)
    if z not in U.free_symbols and not piecewise:
        return U, target, ""
    f_z = library.activation_expr(target.activation, z)
    name = f"{target.activation}(z)"
    read = U.xreplace({f_z: yhat})
    if z not in read.free_symbols and not piecewise:
        return read, target, f"reading {name} as yhat; "
    target = replace(target, chain=sympy.diff(f_z, z), to_z={yhat: f_z})
    return U, target, f"compared in z, with yhat = {name}; "


def _learner_relation(U, D, target: _Target, formula: str):
    """The relations a learner makes beyond one term or factor: the derivative with respect to
    the neighbouring variable of z = w·x (dE/dw handed in for dE/dz, or dE/dz for dE/dw)."""
    if target.activation and target.inner != [SYMBOLS["yhat"]] and _same(U * target.chain, D):
        chain = _term_text(target.chain)
        return "derivative_missing", (
            f"The formula is dE/dyhat, not dE/dz: the activation's derivative dyhat/dz = "
            f"{chain} is missing (the chain rule through the {target.activation})."
        ), Finding(formula, f"missing factor {chain}", _text(_tidy(D)),
                   f"dE/dz = dE/dyhat·dyhat/dz, with dyhat/dz = {chain}")
    r = _ratio(U, D)
    if r is None or r == 0:
        return None
    x, w, z = SYMBOLS["x"], SYMBOLS["w"], SYMBOLS["z"]
    var = target.var
    expected = _text(_tidy(D))
    cases = []
    if var in (z, SYMBOLS["yhat"], SYMBOLS["p"]):
        cases += [(x, "w", "x"), (w, "x", "w")]
    for factor, other, dz in cases:
        if _same(r, factor):
            return "wrong_variable", (
                f"The formula is dE/d{other} = {target.subject}·{dz}, not {target.subject}: with "
                f"z = w·x the chain rule multiplies by dz/d{other} = {dz} only when it continues "
                f"from z to {other}; {target.subject} stops at {var.name}."
            ), Finding(formula, f"extra factor {dz}", expected,
                       f"dE/d{other} = dE/dz·dz/d{other}, dz/d{other} = {dz}")
    if var in (w, x):
        dz = x if var == w else w
        if _same(r * dz, 1):
            return "wrong_variable", (
                f"The formula is dE/dz, not dE/d{var.name}: the chain rule through z = w·x "
                f"still multiplies by dz/d{var.name} = {dz.name}."
            ), Finding(formula, f"missing factor {dz.name}", expected,
                       f"dE/d{var.name} = dE/dz·{dz.name}")
        if _same(r, dz):
            return "factor_twice", (
                f"The factor dz/d{var.name} = {dz.name} is applied twice: the chain rule "
                "through z = w·x multiplies by it once."
            ), Finding(formula, f"extra factor {dz.name}", expected)
    return None


def _inner_dropped(U, target: _Target, formula: str):
    """U is the derivative with one chain rule's inner derivative left out: d/dx e^(-x) written
    as e^(-x) instead of -e^(-x)."""
    E, var = target.function, target.var
    if E is None:
        return None
    candidates = [h for h in sympy.preorder_traversal(E)
                  if (isinstance(h, sympy.Function) or (h.is_Pow and not h.exp.has(var)))
                  and h.has(var) and len(h.args) >= 1]
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
        if _same(U, dropped):
            full = _term_text(sympy.diff(h, var))
            return "inner_derivative_dropped", (
                f"The chain rule's inner derivative was dropped: d/d{var.name} {_text(h)} = "
                f"{full}, the outer derivative times d/d{var.name}({_text(g)}) = "
                f"{_term_text(gp)}."
            ), Finding(formula, f"missing factor {_term_text(gp)}",
                       _text(_tidy(sympy.diff(E, var))),
                       f"d/d{var.name} f(g) = f'(g)·g', with g' = {_term_text(gp)}")
    return None


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


def _scaled(c, k: int, target: _Target, formula: str, expected: str):
    """U = c·m^k·D: a sign, a 2 or 1/2, an m too many or too few."""
    if c == -1 and k == 0:
        if _target_minus_prediction(formula):
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
    factor = _text(c * SYMBOLS["m"] ** k)
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
        causes.append(f"a constant {_text(abs(c))} is applied once too often or forgotten")
    if k > 0 and target.mean:
        causes.append("the 1/m of the mean over the batch was forgotten")
    elif k > 0:
        causes.append(f"there is an extra factor {_text(SYMBOLS['m'] ** k)}: the loss of one "
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


def _simple_ratio(U, D, target: _Target, formula: str) -> tuple[str, str, Finding] | None:
    """U = r·D for a short r that involves the variable: a factor missing or extra."""
    r = _ratio(U, D)
    if (r is None or r == 0 or sympy.count_ops(r) > 6 or not r.free_symbols
            or r.has(sympy.Piecewise, sympy.zoo, sympy.nan)):
        return None
    what, negative = _factor_problem(r)
    phrases = []
    for part in what.split(" and "):
        kind, _, factor = part.partition(" factor ")
        phrases.append(f"the factor {factor} is missing" if kind == "missing"
                       else f"there is an extra factor {factor}")
    sentence = (f"The formula is the derivative times {_term_text(r)}: " + " and ".join(phrases)
                + (", and the sign is wrong" if negative else "") + ".")
    if target.activation and not target.to_z:
        sentence += (f" (dyhat/dz for the {target.activation} is {_term_text(target.chain)}.)")
    return "wrong_factor", sentence, Finding(formula, what, _text(_tidy(D)))


# --- term by term ---------------------------------------------------------------------------------


def _user_bracket(text: str) -> bool:
    """Whether the text is -( ... ) as a whole: a leading minus in front of one bracket."""
    s = text.strip()
    if not s.startswith("-"):
        return False
    s = s[1:].lstrip()
    if not s.startswith("("):
        return False
    depth = 0
    for i, ch in enumerate(s):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return i == len(s) - 1
    return False


def _classify(v: sympy.Expr, c: sympy.Expr, var: sympy.Symbol):
    """How the user's term v relates to the right term c: (rank, relation, ratio) or None."""
    r = _ratio(v, c)
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


def _factor_problem(r: sympy.Expr) -> tuple[str, bool]:
    """A ratio user/right as "missing factor ..." / "extra factor ...", and whether the sign is
    wrong as well."""
    try:
        r = sympy.factor(r)
    except (sympy.PolynomialError, NotImplementedError):
        pass
    negative, body = _orient(r)
    num, den = sympy.fraction(sympy.sympify(body, strict=True))
    parts = []
    if den != 1:
        parts.append(f"missing factor {_term_text(den)}")
    if num != 1:
        parts.append(f"extra factor {_term_text(num)}")
    return " and ".join(parts) or "a different factor", negative


def _strip_chain(U: sympy.Expr, target: _Target) -> list[sympy.Expr] | None:
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


def _user_framing(U, formula: str, target: _Target):
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
    if target.sign < 0 and (_user_bracket(formula) or all_negative):
        return "kept", [-u for u in user_terms], target
    if (target.sign < 0 and len(user_terms) > 1
            and not any(u.could_extract_minus_sign() for u in user_terms)):
        return "dropped", user_terms, target
    return "plain", user_terms, target


def _term_by_term(U, formula: str, target: _Target, rights, origin):
    """(framing, findings) of the comparison term by term, or None when nothing pairs up."""
    framing, user_inner, target = _user_framing(U, formula, target)
    outer = target.coeff if framing != "plain" else target.sign * target.coeff
    expected = [_through(outer * c, target) for c in rights]
    expanded = None
    if framing == "plain" and (target.sign < 0 or target.coeff != 1):
        expanded = _sum_text(expected)

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
            f"the {_ORDINALS[k] if k < len(_ORDINALS) else f'term {k + 1}'} term, "
            f"{_term_text(user_inner[pairs[k][0]])}, with the wrong sign: it should be "
            f"{_term_text(-expected[k])}"
            for k in wrong)
        findings.append(Finding(" ".join(formula.split()), "leading minus dropped",
                                f"-({_sum_text(user_inner)})",
                                "the loss is -(...), so its derivative is -(...) too",
                                note or None))
    for k, c in enumerate(expected):
        rule = _rule(target.inner[origin[k]], target)
        position = (f"{_ORDINALS[k]} term" if k < len(_ORDINALS) else f"term {k + 1}")
        if k not in pairs:
            findings.append(Finding("", "missing term", _term_text(c), rule, position))
            continue
        j, relation, r = pairs[k]
        if relation == "ok":
            continue
        v = user_inner[j]
        if relation == "sign":
            findings.append(Finding(_term_text(v), "wrong sign", _term_text(c), rule, position))
        else:
            what, negative = _factor_problem(r)
            problem = what + (" and wrong sign" if negative else "")
            findings.append(Finding(_term_text(v), problem, _term_text(c), rule, position))
    for j, v in enumerate(user_inner):
        if j not in used:
            findings.append(Finding(_term_text(v), "extra term", "0"))
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


def _term_paragraph(framing: str, findings: list[Finding], expanded: str | None) -> str:
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


# --- the entry point ------------------------------------------------------------------------------


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
    formula:
        The derivative as text, in the derivation engine's symbols (``yhat``, ``y``, ``z``,
        ``x``, ``w``, ``p``, ``t``, and ``m`` for the batch size).
    loss:
        A loss name (``"bce"``, ``"mse"``, ``"ce"``, ...): check dE/dyhat of one example's
        loss. If the formula uses ``p`` and ``t`` instead of ``yhat`` and ``y``, the loss is
        written in those.
    function:
        Any expression instead of a loss (``"x*sigmoid(x)"``); ``wrt`` picks the variable
        (``x`` when present, else the only variable).
    activation:
        Check dE/dz, where ``yhat`` in the formula stands for the activation of ``z`` (so
        ``(yhat + 1)(yhat - y)/yhat`` is right for tanh + BCE). Alone, without a loss or
        a function, it checks the activation's own derivative dyhat/dz.
    wrt:
        The variable (default ``yhat``, or ``p``; with ``activation``, ``z``).
    mean:
        The loss is the mean over ``m`` examples: the derivative carries ``1/m``.
    half:
        With ``loss="mse"``: the loss is :math:`\tfrac12(\hat y - y)^2`.

    With ``activation="softmax"`` every output depends on every input: the formula (in ``p``,
    ``t``, ``z``) is judged in vector form over k outputs by
    :func:`chainrule.gradient_check.check_matrix`, whose :class:`MatrixCheck` has the same keys
    plus the shapes.

    Raises
    ------
    chainrule.derivation.FormulaError
        When the formula is not in the whitelist syntax (the message points at the part).
    ValueError
        For an unknown loss or activation, or options that contradict each other.
    """
    _check_text(formula)
    if activation is not None and library.canonical_activation(activation) == "softmax":
        return _softmax_vector_check(formula, loss, function, wrt, mean, half)
    U, target, read_as = _read(formula, loss, function, activation, wrt, mean, half)
    rights, origin = _derivative_terms(target)
    D = _through(target.sign * target.coeff * sympy.Add(*rights), target)
    derivative = _derivative_text(target, rights)
    simplified = _text(_tidy(D))
    equal, method = _equal(U, D)
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
               f"at {_POINTS} random points; SymPy could not reduce the difference to 0")
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
    U = parse_expression(_read_aliases(formula))
    target = _build_target(U, loss, function, activation, wrt, mean, half)
    U, target, read_as = _relate_to_output(U, target)
    if target.to_z:
        U = U.xreplace(target.to_z)
    return U, target, read_as


def _explain(U, D, formula: str, target, rights, origin, simplified: str):
    """(kind, findings, sentences) of a wrong formula: the first explanation that holds of the
    inner function dropped, a relation of the whole, a learner's mistake, the terms one by one
    and a simple ratio; else the difference itself."""
    shown = " ".join(formula.split())
    found = _inner_dropped(U, target, shown) if target.function is not None else None
    if found is None:
        found = _global_relation(U, D, target, shown)
    if found is None:
        found = _learner_relation(U, D, target, shown)
    if found is not None:
        kind, sentence, finding = found
        return kind, [finding], sentence
    if len(rights) > 1:
        compared = _term_by_term(U, formula, target, rights, origin)
        if compared is not None and compared[1]:
            framing, findings, expanded = compared
            problems = {f.problem for f in findings}
            if problems <= {"wrong sign", "leading minus dropped"}:
                kind = "term_sign"
            elif problems & {"missing term", "extra term"}:
                kind = "term_missing"
            else:
                kind = "term_factor"
            return kind, findings, _term_paragraph(framing, findings, expanded)
    found = _simple_ratio(U, D, target, shown)
    if found is not None:
        kind, sentence, finding = found
        return kind, [finding], sentence
    difference = _text(_tidy(U - D))
    return (None, [Finding(shown, "different", simplified)],
            f"No single term or factor explains it: your formula minus the derivative is "
            f"{difference}.")
