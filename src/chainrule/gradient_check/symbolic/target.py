"""What a formula is the derivative of: a loss, a function or an activation, the variable, the
terms and the rule that differentiates each, and the names of a formula read as people write
them (t - o as y - yhat, sigmoid(z) as yhat). SymPy is imported here.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace

import sympy

from chainrule.derivation import library
from chainrule.derivation.parser import SYMBOLS, parse_expression
from chainrule.gradient_check.names import loss_title
from chainrule.gradient_check.symbolic.text import (
    bracket_text,
    orient,
    term_text,
    text_of,
)

__all__ = [
    "Target",
    "build_target",
    "choose_prediction",
    "derivative_terms",
    "derivative_text",
    "read_aliases",
    "relate_to_output",
    "rule_of",
    "split_terms",
    "symbol_named",
    "target_minus_prediction",
    "through_activation",
    "user_bracket",
]


@dataclass
class Target:
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
    loss: str | None = None  # the canonical loss name, for a loss= target


def split_terms(E: sympy.Expr, var: sympy.Symbol) -> tuple[int, sympy.Expr, list[sympy.Expr]]:
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


def choose_prediction(formula: sympy.Expr) -> tuple[sympy.Symbol, sympy.Symbol]:
    names = {s.name for s in formula.free_symbols}
    if names & {"p", "t"} and not names & {"yhat", "y"}:
        return SYMBOLS["p"], SYMBOLS["t"]
    return SYMBOLS["yhat"], SYMBOLS["y"]


def symbol_named(name: str) -> sympy.Symbol:
    if name not in SYMBOLS:
        raise ValueError(f"unknown variable wrt={name!r}; use one of {', '.join(SYMBOLS)}.")
    return SYMBOLS[name]


def _check_options(act, loss, function, wrt) -> None:
    """Refuse the options that contradict each other or say nothing to differentiate."""
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


def _loss_target(formula, loss, act, wrt, half):
    """(E, the variable E is written in, title, subject) of a loss."""
    name = library.canonical_loss(loss)
    pred, target = choose_prediction(formula)
    E = library.loss_expr(name, pred, target, half=half and name == "mse")
    title = loss_title(name)
    if half and name == "mse":
        title = "half squared-error loss"
    if act is None and wrt is not None:
        pred = symbol_named(wrt)
        if pred not in E.free_symbols:
            raise ValueError(
                f"the {title} is written in {', '.join(sorted(map(str, E.free_symbols)))}, "
                f"not {wrt}: use wrt={choose_prediction(formula)[0].name!r}."
            )
    return E, pred, title, f"dE/d{pred.name}"


def _function_target(function, act, wrt):
    """(E, the variable to differentiate by, title, subject) of an expression."""
    E = parse_expression(function)
    names = sorted(s.name for s in E.free_symbols)
    if wrt is not None:
        pred = symbol_named(wrt)
    elif act is not None:
        pred = SYMBOLS["yhat"]
    elif "x" in names:
        pred = SYMBOLS["x"]
    elif len(names) == 1:
        pred = SYMBOLS[names[0]]
    else:
        raise ValueError(
            f"the function uses {', '.join(names) or 'no variable'}; say which one to "
            "differentiate with wrt=."
        )
    return E, pred, f"function {text_of(E)}", f"d/d{pred.name}"


def build_target(formula, loss, function, activation, wrt, mean, half) -> Target:
    """What the formula is the derivative of: a loss, a function or an activation, averaged over
    m examples where ``mean``, and carried through the activation where one is given."""
    yhat, z = SYMBOLS["yhat"], SYMBOLS["z"]
    act = library.canonical_activation(activation) if activation else None
    _check_options(act, loss, function, wrt)
    if loss is not None:
        E, pred, title, subject = _loss_target(formula, loss, act, wrt, half)
    elif function is not None:
        E, pred, title, subject = _function_target(function, act, wrt)
    else:  # an activation alone: check its own derivative
        E, pred, title, subject = yhat, yhat, f"{act} activation", "dyhat/dz"
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
    sign, coeff, inner = split_terms(E, pred)
    return Target(title, subject, var, pred, sign, coeff, inner, chain, act, to_z, bool(mean),
                  E if function is not None and act is None else None,
                  library.canonical_loss(loss) if loss is not None else None)


def through_activation(d: sympy.Expr, target: Target) -> sympy.Expr:
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


def derivative_terms(target: Target) -> tuple[list[sympy.Expr], list[int]]:
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


def derivative_text(target: Target, rights: list[sympy.Expr]) -> str:
    text = bracket_text(target.sign, target.coeff, rights)
    if target.chain == 1 and not target.to_z:
        return text
    chain = term_text(target.chain)
    if target.inner == [SYMBOLS["yhat"]]:  # the activation alone
        return chain
    if orient(target.chain)[1].is_Add:
        chain = f"({chain})"
    if not _bracketed(text):
        text = f"({text})"
    where = f", with yhat = {target.activation}(z)" if target.to_z else ""
    return f"{text}·{chain}{where}"


def _bracketed(text: str) -> bool:
    """Whether ``text`` is one bracket, optionally after a minus: "-(a + b)" or "(a + b)"."""
    return user_bracket(text) or user_bracket("-" + text) or " " not in text


def rule_of(term: sympy.Expr, target: Target) -> str | None:
    """The differentiation rule that gives the derivative of ``term`` (a term inside the loss)."""
    var = target.pred
    _, h = term.as_independent(var, as_Add=False)
    v = var.name
    rule = None
    if isinstance(h, sympy.log):
        g = h.args[0]
        gp = sympy.diff(g, var)
        rule = f"d/d{v} log({text_of(g)}) = {term_text(gp / g)}"
        if g != var:
            rule += f": the chain rule's inner derivative is {term_text(gp)}"
    elif h.is_Pow and h.exp.is_number and h.base.has(var):
        g, n = h.base, h.exp
        gp = sympy.diff(g, var)
        rule = (f"d/d{v} {text_of(h)} = {term_text(sympy.diff(h, var))}: the power rule brings "
                f"down the {text_of(n)}")
        if gp != 1:
            rule += f", and the chain rule's inner derivative is {term_text(gp)}"
    elif h.is_Mul and sum(f.has(var) for f in h.args) >= 2:
        rule = "the product rule: d(u·v) = du·v + u·dv"
    elif h != var and h.has(var):
        rule = f"d/d{v} {text_of(h)} = {term_text(sympy.diff(h, var))}"
    if rule and target.activation and target.var != var:
        rule += (f"; then the chain rule through the {target.activation} multiplies by "
                 f"dyhat/dz = {term_text(target.chain)}")
    return rule


def read_aliases(formula: str) -> str:
    """The formula with the textbook names of t - o (target, output) written y - yhat; the names
    are found with Python's ``ast`` (nothing is evaluated)."""

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


def target_minus_prediction(formula: str) -> bool:
    """Whether the formula holds target - prediction (y - yhat, t - p, t - o), read with ``ast``."""

    try:
        tree = ast.parse(formula.replace("^", "**").strip(), mode="eval")
    except SyntaxError:
        return False
    return any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub)
               and isinstance(n.left, ast.Name) and n.left.id in ("y", "t")
               and isinstance(n.right, ast.Name) and n.right.id in ("yhat", "p", "o")
               for n in ast.walk(tree))


def relate_to_output(U, target: Target):
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


def user_bracket(text: str) -> bool:
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
