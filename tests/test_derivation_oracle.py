"""Helpers for the derivation tests: an equality oracle that does not use the engine's own."""

import random

import sympy

from chainrule.derivation.functions import sigmoid, softplus


def elementary(e):
    return _elementary(e)


def _elementary(e):
    return e.rewrite(sigmoid, sympy.exp).rewrite(softplus, sympy.exp)


def _real_value(e, values):
    """``e`` at ``values`` to 30 digits, or None where it is not a finite real number."""
    try:
        v = sympy.N(e.subs(values), 30)
    except (TypeError, ValueError, ZeroDivisionError):
        return None  # e.g. a piecewise condition on a complex number
    if not v.is_number or v.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
        return None
    re, im = v.as_real_imag()
    if abs(im) > 1e-25 * (1 + abs(re)):
        return None  # outside the real domain: the rules of real calculus make no claim here
    return re


def _real_inside(e, values):
    """Whether every root's radicand and every log's argument in ``e`` is a real number >= 0 at
    ``values``: outside, |sqrt(x)| and sign(sqrt(x)) are real through complex arithmetic, where
    real calculus makes no claim."""
    inner = [p.base for p in e.atoms(sympy.Pow) if p.exp.is_Rational and not p.exp.is_integer]
    inner += [f.args[0] for f in e.atoms(sympy.log)]
    for arg in inner:
        v = _real_value(arg, values)
        if v is None or v < 0:
            return False
    return True


def same(a, b, samples=6, seed=0):
    """``a == b`` by SymPy's simplify, or else by 30-digit evaluation at random real points."""
    a, b = _elementary(sympy.sympify(a)), _elementary(sympy.sympify(b))
    d = a - b
    if d == 0:
        return True
    if not d.has(sympy.Piecewise) and sympy.count_ops(d) < 120 and sympy.simplify(d) == 0:
        return True
    rng = random.Random(seed)
    symbols = sorted(d.free_symbols, key=lambda s: s.name)
    checked = 0
    for _ in range(samples * 5):
        values = {}
        for s in symbols:
            lo, hi = (0.05, 0.95) if s.name in ("yhat", "y", "p", "t") else (-2.5, 2.5)
            if s.is_positive:
                lo = max(lo, 0.1)
            values[s] = sympy.Rational(round(rng.uniform(lo, hi) * 1000), 1000)
        if not _real_inside(a, values) or not _real_inside(b, values):
            continue
        va, vb = _real_value(a, values), _real_value(b, values)
        if va is None or vb is None:
            continue
        if abs(va - vb) > 1e-15 * (1 + abs(va)):
            return False
        checked += 1
        if checked >= samples:
            return True
    return checked > 0


def check_tree(step):
    """Every diff step's after is the derivative of its before; every equal step is an identity."""
    count = 0
    for node in step.walk():
        given = dict(node.given)
        if node.kind == "diff":
            before = node.before.subs(given)
            after = node.after.subs(given)
            truth = sympy.diff(_elementary(before), node.var)
            assert same(after, truth), (node.rule, node.before, node.after, truth)
            count += 1
        elif node.kind == "equal":
            assert same(node.before.subs(given), node.after.subs(given)), (
                node.rule, node.before, node.after)
            count += 1
    return count


# --- the oracle itself must tell right from wrong ----------------------------------------------

x = sympy.Symbol("x", real=True)


def test_same_accepts_identities_and_rejects_near_misses():
    assert same(sigmoid(x) * (1 - sigmoid(x)), sympy.exp(-x) / (1 + sympy.exp(-x)) ** 2)
    assert not same(sigmoid(x) * (1 - sigmoid(x)), sympy.exp(x) / (1 + sympy.exp(-x)) ** 2)
    assert same(sympy.Piecewise((1, x > 0), (0, True)), sympy.Heaviside(x))
    assert not same(sympy.Piecewise((1, x > 0), (0, True)), sympy.Piecewise((1, x > 0), (1, True)))


def test_check_tree_catches_a_wrong_step():
    from chainrule.derivation.rules import Step

    good = Step("power", x**2, 2 * x, x)
    bad = Step("sum", x**2 + x, 2 * x, x, substeps=[good])  # forgot the derivative of x
    assert check_tree(good) == 1
    try:
        check_tree(bad)
    except AssertionError:
        return
    raise AssertionError("check_tree accepted a wrong step")
