r"""The step generator: a derivative as a tree of textbook rules.

:func:`differentiate` walks an expression from the outside in and applies one rule per node
(constant, constant multiple, sum, power, product, quotient, chain, exp, log, trigonometric,
hyperbolic, sigmoid, erf, piecewise). Each :class:`Step` records the rule, the expression
before, its derivative after, a one-line explanation and the sub-steps it used; a chain step
names the inner function (``Let u = 1 + e^(-x)``) and differentiates the outer one with respect
to ``u``. The claim of every step, ``after == d(before)/d(var)``, holds exactly, so tests check
each node of the tree against ``sympy.diff``.

``method`` decides between the two rules that both apply to a fraction: ``"quotient"``
(the default for fractions) or ``"chain"`` (write :math:`1/v` as :math:`v^{-1}` and use the
power rule inside the chain rule), as textbooks often do for the sigmoid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sympy

from chainrule.derivation.functions import product_form, quotient_form, sigmoid, softplus
from chainrule.derivation.printing import to_latex, to_python, to_text

__all__ = ["DIFF_RULES", "LAWS", "METHODS", "Step", "differentiate"]

#: The two ways to differentiate a fraction (``None`` lets the engine choose: quotient).
METHODS = ("quotient", "chain")

#: Each rule's statement, in text and in LaTeX.
LAWS: dict[str, tuple[str, str]] = {
    "constant": ("d/dx c = 0", r"\frac{d}{dx} c = 0"),
    "constant multiple": ("(c·f)' = c·f'", r"(c f)' = c f'"),
    "sum": ("(f + g)' = f' + g'", r"(f + g)' = f' + g'"),
    "power": ("(x^n)' = n·x^(n-1)", r"(x^n)' = n x^{n-1}"),
    "product": ("(f·g)' = f'·g + f·g'", r"(f g)' = f' g + f g'"),
    "quotient": (
        "(u/v)' = (u'·v - u·v')/v²",
        r"\left(\frac{u}{v}\right)' = \frac{u' v - u v'}{v^2}",
    ),
    "chain": ("d/dx f(u) = f'(u)·du/dx", r"\frac{d}{dx} f(u) = f'(u) \frac{du}{dx}"),
    "exp": ("(e^x)' = e^x, (a^x)' = a^x·log a", r"(e^x)' = e^x,\ (a^x)' = a^x \log a"),
    "log": ("(log x)' = 1/x", r"(\log x)' = \frac{1}{x}"),
    "trigonometric": (
        "sin' = cos, cos' = -sin, tan' = 1 + tan²",
        r"\sin' = \cos,\ \cos' = -\sin,\ \tan' = 1 + \tan^2",
    ),
    "hyperbolic": (
        "sinh' = cosh, cosh' = sinh, tanh' = 1 - tanh²",
        r"\sinh' = \cosh,\ \cosh' = \sinh,\ \tanh' = 1 - \tanh^2",
    ),
    "sigmoid": ("σ' = σ(1 - σ)", r"\sigma' = \sigma (1 - \sigma)"),
    "erf": ("erf'(x) = 2e^(-x²)/√π", r"\operatorname{erf}'(x) = \frac{2}{\sqrt{\pi}} e^{-x^2}"),
    "piecewise": ("differentiate each piece on its own interval", r"\text{piece by piece}"),
}

#: The rules whose steps claim ``after = d(before)/d(var)``.
DIFF_RULES = tuple(LAWS)

_CHAIN_NAMES = ("u", "v", "s", "q", "r", "k", "g", "h")
_MAX_DEPTH = 60


@dataclass
class Step:
    r"""One step of a derivation.

    ``kind`` says what the step claims: ``"diff"`` (``after`` is the derivative of ``before``
    with respect to ``var``), ``"equal"`` (``after`` equals ``before``: a simplification or a
    rewrite) or ``"note"`` (a statement: a definition, an assumption). ``given`` holds the
    substitutions under which the claim holds (:math:`\hat y = \tanh z` for a composition).
    ``explanation`` is a template whose ``{name}`` fields are the expressions in ``terms``,
    so each output format prints them its own way.
    """

    rule: str
    before: sympy.Expr | None
    after: sympy.Expr | None
    var: sympy.Symbol | None = None
    explanation: str = ""
    terms: dict[str, Any] = field(default_factory=dict)
    substeps: list[Step] = field(default_factory=list)
    kind: str = "diff"
    given: dict[sympy.Symbol, sympy.Expr] = field(default_factory=dict)
    title: str = ""
    label: tuple[str, str] | None = None  # (text, LaTeX) for the left side, e.g. "dE/dz"

    def explain(self, fmt: str = "text") -> str:
        """The explanation with its expressions printed for ``fmt`` (text, latex, python)."""
        if fmt == "latex":
            printed = {k: f"${to_latex(v)}$" for k, v in self.terms.items()}
        elif fmt == "python":
            printed = {k: to_python(v) for k, v in self.terms.items()}
        else:
            printed = {k: to_text(v) for k, v in self.terms.items()}
        return self.explanation.format(**printed)

    def walk(self):
        """This step and every step below it, depth first."""
        yield self
        for sub in self.substeps:
            yield from sub.walk()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; expressions are SymPy-parseable strings."""
        return {
            "rule": self.rule,
            "kind": self.kind,
            "title": self.title or self.rule,
            "variable": None if self.var is None else str(self.var),
            "before": None if self.before is None else to_python(self.before),
            "after": None if self.after is None else to_python(self.after),
            "explanation": self.explain("text"),
            "given": {str(k): to_python(v) for k, v in self.given.items()},
            "label": None if self.label is None else self.label[0],
            "substeps": [s.to_dict() for s in self.substeps],
        }


def differentiate(expr: sympy.Expr, var: sympy.Symbol, method: str | None = None) -> Step:
    """Differentiate ``expr`` with respect to ``var`` and return the root of the step tree.

    ``method`` is ``"quotient"``, ``"chain"`` or None (quotient rule for fractions).
    """
    if method not in (None, *METHODS):
        raise ValueError(f"The method must be 'quotient', 'chain' or None; got {method!r}.")
    return _Deriver(method or "quotient").diff(sympy.sympify(expr, strict=True), var, 0)


class _Deriver:
    def __init__(self, method: str):
        self.method = method
        self.used = 0

    def fresh(self, avoid) -> sympy.Symbol:
        names = {s.name for s in avoid}
        while True:
            base = _CHAIN_NAMES[self.used % len(_CHAIN_NAMES)]
            name = base if self.used < len(_CHAIN_NAMES) else f"{base}{self.used}"
            self.used += 1
            if name not in names:
                return sympy.Symbol(name, real=True)

    # -- dispatch ---------------------------------------------------------------------------

    def diff(self, e: sympy.Expr, x: sympy.Symbol, depth: int) -> Step:
        if depth > _MAX_DEPTH:
            raise ValueError("The expression is nested too deeply to derive step by step.")
        if not e.has(x):
            return Step("constant", e, sympy.S.Zero, x,
                        "{f} does not depend on {x}, so its derivative is 0", {"f": e, "x": x})
        if e == x:
            return Step("power", e, sympy.S.One, x, "d/d{x} {x} = 1 (the power rule with n = 1)",
                        {"x": x})
        if e.is_Add:
            return self.sum(e, x, depth)
        if e.is_Mul:
            return self.mul(e, x, depth)
        if e.is_Pow:
            return self.pow(e, x, depth)
        if isinstance(e, sympy.Piecewise):
            return self.piecewise(e, x, depth)
        if isinstance(e, sympy.Function) and len(e.args) == 1:
            return self.function(e, x, depth)
        return self.table(e, x)

    # -- sums and products ------------------------------------------------------------------

    def sum(self, e, x, depth) -> Step:
        subs = [self.diff(term, x, depth + 1) for term in e.args]
        after = sympy.Add(*[s.after for s in subs])
        return Step("sum", e, after, x,
                    "differentiate the {n} terms one by one and add the results",
                    {"n": sympy.Integer(len(subs))}, subs)

    def mul(self, e, x, depth) -> Step:
        const = sympy.Mul(*[f for f in e.args if not f.has(x)])
        rest = sympy.Mul(*[f for f in e.args if f.has(x)])
        if const != 1:
            if rest == x:  # c·x: one step, no sub-step for d/dx x = 1
                return Step("constant multiple", e, const, x,
                            "the factor {c} does not depend on {x}, and d/d{x} {x} = 1",
                            {"c": const, "x": x})
            sub = self.diff(rest, x, depth + 1)
            return Step("constant multiple", e, const * sub.after, x,
                        "keep the factor {c}, which does not depend on {x}, and differentiate {f}",
                        {"c": const, "x": x, "f": rest}, [sub])
        num, den = _fraction(e)
        if den.has(x) and self.method == "quotient":
            return self.quotient(e, num, den, x, depth)
        return self.product(e, x, depth)

    def product(self, e, x, depth) -> Step:
        factors = list(e.args)
        if len(factors) > 2:  # (f·g·h)' as (f·(g·h))': two factors at a time
            first, second = factors[0], sympy.Mul(*factors[1:])
        else:
            first, second = factors
        d1 = self.diff(first, x, depth + 1)
        d2 = self.diff(second, x, depth + 1)
        after = d1.after * second + first * d2.after
        written = product_form(d1.after, second, first, d2.after)
        assemble = Step("product", written, after, x,
                        "put f' = {df} and g' = {dg} into f'·g + f·g' and simplify",
                        {"df": d1.after, "dg": d2.after}, kind="equal", title="Substitute")
        return Step("product", e, after, x,
                    "f = {f}, g = {g}; (f·g)' = f'·g + f·g'",
                    {"f": first, "g": second}, [d1, d2, assemble])

    def quotient(self, e, num, den, x, depth) -> Step:
        du = self.diff(num, x, depth + 1)
        dv = self.diff(den, x, depth + 1)
        after = (du.after * den - num * dv.after) / den**2
        written = quotient_form(du.after, den, num, dv.after)
        assemble = Step("quotient", written, after, x,
                        "put u' = {du} and v' = {dv} into (u'·v - u·v')/v² and simplify",
                        {"du": du.after, "dv": dv.after}, kind="equal", title="Substitute")
        return Step("quotient", e, after, x,
                    "u = {u}, v = {v}; (u/v)' = (u'·v - u·v')/v²",
                    {"u": num, "v": den}, [du, dv, assemble])

    # -- powers -----------------------------------------------------------------------------

    def pow(self, e, x, depth) -> Step:
        base, power = e.base, e.exp
        if not power.has(x):
            if (
                self.method == "quotient"
                and power.is_number and power.is_negative and base != x
            ):
                return self.quotient(e, sympy.S.One, base ** (-power), x, depth)
            if base == x:
                after = power * x ** (power - 1)
                return Step("power", e, after, x, "n = {n}; (x^n)' = n·x^(n-1)",
                            {"n": power, "x": x})
            u = self.fresh(e.free_symbols)
            outer = Step("power", u**power, power * u ** (power - 1), u,
                         "n = {n}; (u^n)' = n·u^(n-1)", {"n": power})
            return self.chain(e, base, u, outer, x, depth)
        if not base.has(x):
            if base.is_zero:  # 0^u (a ReLU output raised to a power): 0 wherever it is defined
                return Step("constant", e, sympy.S.Zero, x,
                            "{f} is 0 wherever it is defined, so its derivative is 0", {"f": e})
            if base == sympy.E:
                return self.function(sympy.exp(power), x, depth)
            if power == x:
                return Step("exp", e, e * sympy.log(base), x,
                            "exponential rule: d/d{x} a^{x} = a^{x}·log(a) with a = {a}",
                            {"x": x, "a": base})
            u = self.fresh(e.free_symbols)
            outer = Step("exp", base**u, base**u * sympy.log(base), u,
                         "exponential rule with base {a}", {"a": base})
            return self.chain(e, power, u, outer, x, depth)
        # u^v with both depending on x: u^v = e^(v·log u)
        rewritten = sympy.exp(power * sympy.log(base))
        sub = self.diff(rewritten, x, depth + 1)
        return Step("exp", e, sub.after.subs(rewritten, e), x,
                    "write {f} = {g} and differentiate that", {"f": e, "g": rewritten}, [sub])

    # -- functions --------------------------------------------------------------------------

    def function(self, e, x, depth) -> Step:
        inner = e.args[0]
        if inner == x:
            return self.outer(e, x)
        u = self.fresh(e.free_symbols)
        outer = self.outer(type(e)(u), u)
        return self.chain(e, inner, u, outer, x, depth)

    def outer(self, f, u) -> Step:
        """The derivative of a known function of a bare variable ``u``: one table entry."""
        rule, template = _FUNCTION_RULES.get(type(f), ("chain", "by the table of derivatives"))
        if isinstance(f, sympy.Abs):
            after = sympy.sign(u)
        elif isinstance(f, softplus):
            after = sigmoid(u)
        else:
            after = sympy.diff(f, u)
        return Step(rule, f, after, u, template, {"u": u, "f": f, "df": after})

    def chain(self, e, inner, u, outer: Step, x, depth) -> Step:
        d_inner = self.diff(inner, x, depth + 1)
        after = outer.after.subs(u, inner) * d_inner.after
        return Step("chain", e, after, x,
                    "Let {u} = {g}. Then d/d{x} {f} = {df}·d{u}/d{x}",
                    {"u": u, "g": inner, "x": x, "f": outer.before, "df": outer.after},
                    [outer, d_inner])

    def piecewise(self, e, x, depth) -> Step:
        subs = [self.diff(piece, x, depth + 1) for piece, _ in e.args]
        pieces = zip(subs, e.args, strict=True)
        after = sympy.Piecewise(*[(s.after, cond) for s, (_, cond) in pieces])
        return Step("piecewise", e, after, x,
                    "differentiate each piece on its own interval; at a boundary the "
                    "derivative exists only where the one-sided derivatives agree",
                    {}, subs)

    def table(self, e, x) -> Step:
        return Step("chain", e, sympy.diff(e, x), x, "by the table of derivatives", {"f": e})


_FUNCTION_RULES = {
    sympy.exp: ("exp", "the exponential is its own derivative: d/d{u} {f} = {df}"),
    sympy.log: ("log", "d/d{u} log({u}) = {df}"),
    sympy.sin: ("trigonometric", "d/d{u} {f} = {df}"),
    sympy.cos: ("trigonometric", "d/d{u} {f} = {df}"),
    sympy.tan: ("trigonometric", "d/d{u} {f} = {df}"),
    sympy.sinh: ("hyperbolic", "d/d{u} {f} = {df}"),
    sympy.cosh: ("hyperbolic", "d/d{u} {f} = {df}"),
    sympy.tanh: ("hyperbolic", "d/d{u} {f} = 1 - tanh²({u})"),
    sigmoid: ("sigmoid", "the sigmoid rule: d/d{u} {f} = {df}"),
    softplus: ("log", "softplus({u}) = log(1 + e^{u}); its derivative e^{u}/(1 + e^{u}) is {df}"),
    sympy.erf: ("erf", "d/d{u} {f} = {df}"),
    sympy.Abs: ("piecewise", "|{u}| is {u} for {u} > 0 and -{u} for {u} < 0, so its derivative is "
                             "{df}"),
}


def _fraction(e: sympy.Mul) -> tuple[sympy.Expr, sympy.Expr]:
    """Numerator and denominator of a product, keeping ``exp(-x)`` in the numerator."""
    num, den = [], []
    for f in e.args:
        if f.is_Pow and f.exp.is_number and f.exp.is_negative:
            den.append(f.base ** (-f.exp))
        else:
            num.append(f)
    return sympy.Mul(*num), sympy.Mul(*den)
