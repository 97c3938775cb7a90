r"""Domain analysis: where a derivative divides by zero, where a function has a corner, and
where an activation's outputs fall outside the loss's domain.

- :func:`singular_points` solves ``denominator = 0`` over the reals for every denominator;
- :func:`corners` finds the boundaries of piecewise pieces (ReLU at 0, ``|x|`` at 0) where
  the one-sided derivatives differ, so the derivative is not defined there;
- :func:`log_conflicts` finds, for each ``log(u)`` of a loss, the outputs of the activation
  that make ``u <= 0`` (tanh's :math:`(-1, 0]` for BCE's :math:`\log \hat y`);
- :func:`preimage` maps a set of outputs back to the inputs ``z`` that produce them, by a
  fine grid and bisection on the activation itself, and prints it (``z ≤ 0``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy

from chainrule.derivation.functions import NUMPY_FUNCTIONS
from chainrule.derivation.library import DEFAULT_NUMERIC
from chainrule.derivation.printing import to_python, to_text

__all__ = [
    "DEFAULT_PARAMETERS",
    "Singularity",
    "corners",
    "log_conflicts",
    "numeric_function",
    "preimage",
    "set_text",
    "singular_points",
    "solve_output",
    "why_undefined",
]

#: Values used for symbolic parameters where a number is needed (the library's defaults).
DEFAULT_PARAMETERS = DEFAULT_NUMERIC

_GRID = np.linspace(-12.0, 12.0, 24_001)


@dataclass
class Singularity:
    """A point where a derivative is undefined: a zero denominator or a corner."""

    variable: sympy.Symbol
    value: sympy.Expr
    kind: str  # "division by zero" or "corner"
    expression: sympy.Expr
    input_form: str | None = None
    note: str = ""

    def describe(self) -> str:
        where = point_text(self.variable, self.value)
        if self.input_form:
            where += f" ({self.input_form})"
        if self.kind == "corner":
            return f"{where}: {self.note}"
        return f"{where}: {to_text(self.expression)} divides by zero there{self.note}"

    def to_dict(self) -> dict:
        return {
            "variable": str(self.variable),
            "value": to_python(self.value),
            "kind": self.kind,
            "expression": to_python(self.expression),
            "input": self.input_form,
            "description": self.describe(),
        }


def _denominators(expr: sympy.Expr) -> list[sympy.Expr]:
    found = []
    for node in sympy.preorder_traversal(expr):
        if node.is_Pow and node.exp.is_number and node.exp.is_negative:
            found.append(node.base)
    return found


def singular_points(
    expr: sympy.Expr, var: sympy.Symbol, within: sympy.Set = sympy.S.Reals
) -> list[sympy.Expr]:
    """Real values of ``var`` in ``within`` where a denominator of ``expr`` vanishes."""
    points: set = set()
    for den in _denominators(sympy.piecewise_fold(expr) if expr.has(sympy.Piecewise) else expr):
        if not den.has(var) or den.is_positive:
            continue
        try:
            sol = sympy.solveset(den, var, sympy.S.Reals)
        except (NotImplementedError, ValueError, TypeError):
            continue
        if isinstance(sol, sympy.FiniteSet):
            points.update(p for p in sol if p.is_real and within.contains(p) is not sympy.false)
    return sorted(points, key=sympy.default_sort_key)


def corners(f: sympy.Expr, df: sympy.Expr, var: sympy.Symbol) -> list[tuple]:
    """Boundaries of the pieces of ``f`` where it jumps or its one-sided derivatives differ.

    Returns ``(point, left derivative, right derivative, jumps)`` per boundary: ReLU gives
    ``(0, 0, 1, False)``, the binary step ``(0, 0, 0, True)``. ``df`` is the derivative of ``f``.
    """
    pf = sympy.piecewise_fold(f.rewrite(sympy.Piecewise) if f.has(sympy.Abs) else f)
    if not pf.has(sympy.Piecewise):
        return []
    dpf = sympy.piecewise_fold(
        df.rewrite(sympy.Piecewise) if df.has(sympy.Abs, sympy.sign) else df
    )
    points, families = set(), set()
    for pw in pf.atoms(sympy.Piecewise):
        for _, cond in pw.args:
            for rel in cond.atoms(sympy.Rel):
                if rel.has(var):
                    try:
                        sol = sympy.solveset(rel.lhs - rel.rhs, var, sympy.S.Reals)
                    except (NotImplementedError, ValueError, TypeError):
                        continue
                    finite, periodic = finite_description(sol)
                    points.update(finite)
                    families.update(periodic)

    def corner_at(point):
        left, right = _one_sided(dpf, var, point, -1), _one_sided(dpf, var, point, 1)
        f_left, f_right = _one_sided(pf, var, point, -1), _one_sided(pf, var, point, 1)
        if None in (left, right, f_left, f_right):
            return None
        jumps = sympy.simplify(f_left - f_right) != 0
        if jumps or sympy.simplify(left - right) != 0:
            return (point, left, right, jumps)
        return None

    found = []
    for point in sorted(points, key=sympy.default_sort_key):
        if point.is_real and (corner := corner_at(point)) is not None:
            found.append(corner)
    for offset, period in sorted(families, key=sympy.default_sort_key):
        # a periodic set is examined at a few of its points, never enumerated
        reps = [corner_at(offset + n * period) for n in _PERIODIC_PROBES]
        if all(c is not None for c in reps):
            _, left, right, jumps = reps[_PERIODIC_PROBES.index(0)]
            found.append((offset + K * period, left, right, jumps))
        else:
            found.extend(c for c in reps if c is not None)
    return found


#: The integer of a periodic set of points, x = offset + k·period.
K = sympy.Symbol("k", integer=True)

_PERIODIC_PROBES = (-1, 0, 1, 2)


def finite_description(sol: sympy.Set) -> tuple[list, list]:
    r"""A solution set as finitely many points and periodic families ``(offset, period)``.

    ``solveset(sin(x), x)`` is the union of :math:`2n\pi` and :math:`2n\pi + \pi`; it comes
    back as the single family :math:`(0, \pi)`, i.e. :math:`x = k\pi` for every integer
    :math:`k`. Parts that are neither (intervals, conditions) are left out.
    """
    parts = sol.args if isinstance(sol, sympy.Union) else (sol,)
    points, families = [], {}
    for part in parts:
        if isinstance(part, sympy.FiniteSet):
            points.extend(part)
        elif isinstance(part, sympy.ImageSet) and part.base_sets == (sympy.S.Integers,):
            n = part.lamda.variables[0]
            expr = sympy.expand(part.lamda.expr)
            period = expr.coeff(n)
            offset = expr - period * n
            if period.is_zero is False and not offset.has(n) and period.is_number:
                period = abs(period)
                families.setdefault(period, []).append(sympy.Mod(offset, period))
    merged = []
    for period, offsets in families.items():
        offsets = sorted(set(offsets), key=lambda v: float(v))
        step = period / len(offsets)
        if len(offsets) > 1 and all(
            sympy.simplify(b - a - step) == 0 for a, b in itertools.pairwise(offsets)
        ):
            merged.append((offsets[0], step))
        else:
            merged.extend((o, period) for o in offsets)
    return points, merged


def point_text(var: sympy.Symbol, point: sympy.Expr) -> str:
    """``x = 0``, or ``x = k·π (k any integer)`` for a periodic family."""
    text = f"{to_text(var)} = {to_text(point)}"
    return text + " (k any integer)" if point.has(K) else text


def _one_sided(df, var, point, side):
    """The derivative's expression on one side of ``point``, evaluated at the point."""
    probe = point + side * sympy.Rational(1, 10**9)
    if isinstance(df, sympy.Piecewise):
        for piece, cond in df.args:
            holds = cond.subs(var, probe)
            if holds is sympy.true:
                return sympy.simplify(piece.subs(var, point))
            if holds is not sympy.false:
                return None
        return None
    value = df.subs(var, point)
    return None if value.has(sympy.nan, sympy.zoo) else value


def log_conflicts(
    loss: sympy.Expr, out: sympy.Symbol, outputs: sympy.Set
) -> list[tuple[sympy.Expr, sympy.Set]]:
    """For each ``log(u)`` in ``loss``: the outputs in ``outputs`` where ``u <= 0``."""
    conflicts = []
    for lg in sorted(loss.atoms(sympy.log), key=sympy.default_sort_key):
        arg = lg.args[0]
        if not arg.has(out):
            continue
        try:
            bad = sympy.solveset(arg <= 0, out, outputs)
        except (NotImplementedError, ValueError, TypeError):
            continue
        if bad is not sympy.S.EmptySet:
            conflicts.append((lg, bad))
    return conflicts


def numeric_function(expr: sympy.Expr, var: sympy.Symbol, params=None) -> Callable:
    """``expr`` compiled with NumPy (stable sigmoid/softplus), parameters set to numbers."""
    if params:
        expr = expr.subs(params)
    f = sympy.lambdify(var, expr, modules=[NUMPY_FUNCTIONS, "numpy"])

    def call(z):
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.asarray(f(z), dtype=float), np.shape(z))

    return call


def why_undefined(expr: sympy.Expr, var: sympy.Symbol, points, params=None) -> str:
    """Why ``expr`` has no real value at ``points`` (one span of a figure where it has none),
    in words for the figure's label: the innermost logarithm whose argument is not positive
    there (``"tanh(z) ≤ 0: log undefined"``), root of a negative number or zero denominator."""
    if params:
        expr = expr.subs(params)
    points = np.asarray(points, dtype=float)
    atoms = sorted(expr.atoms(sympy.log, sympy.Pow), key=lambda a: (sympy.count_ops(a),
                                                                     sympy.default_sort_key(a)))
    for atom in atoms:
        if isinstance(atom, sympy.log):
            arg, words = atom.args[0], "≤ 0: log undefined"
        elif atom.exp.is_Rational and atom.exp.q % 2 == 0:
            arg, words = atom.base, "< 0: no real root"
        elif atom.exp.is_number and atom.exp.is_negative:
            arg, words = atom.base, "= 0: division by zero"
        else:
            continue
        if arg.free_symbols - {var}:
            continue
        values = numeric_function(arg, var)(points)
        bad = {"≤": values <= 0, "<": values < 0}.get(words[0], values == 0)
        if np.any(bad):
            return f"{to_text(arg)} {words}"
    return "no real value"


def preimage(
    f: Callable[[np.ndarray], np.ndarray],
    bad: Callable[[np.ndarray], np.ndarray],
    var_name: str = "z",
) -> str | None:
    """Describe ``{z : bad(f(z))}`` in words, e.g. ``"z ≤ 0"`` or ``"z = 0"``; None if empty.

    ``bad`` takes output values and returns a boolean mask. Boundaries are refined by
    bisection to 1e-12 and printed exactly when they round to a whole number.
    """
    mask = bad(f(_GRID))
    if not mask.any():
        return None
    pieces = []
    edges = np.flatnonzero(np.diff(mask.astype(np.int8)))
    starts = [0] if mask[0] else []
    ends = []
    for i in edges:
        if mask[i + 1]:
            starts.append(i + 1)
        else:
            ends.append(i)
    if mask[-1]:
        ends.append(len(_GRID) - 1)
    for s, e in zip(starts, ends, strict=True):
        lo = None if s == 0 else _bisect(f, bad, _GRID[s - 1], _GRID[s])
        hi = None if e == len(_GRID) - 1 else _bisect(f, bad, _GRID[e + 1], _GRID[e])
        pieces.append(_interval_text(lo, hi, f, bad, var_name))
    # a bad set of isolated points (yhat = 0 at z = 0) slips between grid points: sign changes
    return " or ".join(pieces)


def _bisect(f, bad, good_x: float, bad_x: float) -> float:
    for _ in range(60):
        mid = (good_x + bad_x) / 2
        if bad(f(np.array([mid])))[0]:
            bad_x = mid
        else:
            good_x = mid
    return bad_x


def _nice(v: float) -> tuple[str, float]:
    r = round(v)
    if abs(v - r) < 1e-7:
        return str(int(r)), float(r)
    return f"{v:.4g}", v


def _interval_text(lo, hi, f, bad, var) -> str:
    def closed(v):
        return bool(bad(f(np.array([v])))[0])

    if lo is None and hi is None:
        return f"every {var}"
    if lo is None:
        text, v = _nice(hi)
        return f"{var} {'≤' if closed(v) else '<'} {text}"
    if hi is None:
        text, v = _nice(lo)
        return f"{var} {'≥' if closed(v) else '>'} {text}"
    lt, lv = _nice(lo)
    ht, hv = _nice(hi)
    if lt == ht:
        return f"{var} = {lt}"
    return f"{lt} {'≤' if closed(lv) else '<'} {var} {'≤' if closed(hv) else '<'} {ht}"


def solve_output(
    f: Callable[[np.ndarray], np.ndarray], value: float, var_name: str = "z"
) -> str | None:
    """The inputs where the activation ``f`` equals ``value``: ``"z = 0"``, ``"z ≤ 0"``."""
    flat = preimage(f, lambda out: out == value, var_name)
    if flat is not None:
        return flat
    g = f(_GRID) - value
    crossings = np.flatnonzero(np.sign(g[:-1]) * np.sign(g[1:]) < 0)
    roots = []
    for i in crossings[:5]:
        a, b = _GRID[i], _GRID[i + 1]
        for _ in range(60):
            mid = (a + b) / 2
            if np.sign(f(np.array([mid]))[0] - value) == np.sign(g[i]):
                a = mid
            else:
                b = mid
        roots.append(f"{var_name} = {_nice((a + b) / 2)[0]}")
    return " or ".join(roots) if roots else None


def set_text(s: sympy.Set) -> str:
    """A set as a reader writes it: ``(0, 1)``, ``[0, ∞)``, ``{0, 1}``."""
    if isinstance(s, sympy.Interval):
        lo = "-∞" if s.start is -sympy.oo else to_text(s.start)
        hi = "∞" if s.end is sympy.oo else to_text(s.end)
        return f"{'(' if s.left_open else '['}{lo}, {hi}{')' if s.right_open else ']'}"
    if isinstance(s, sympy.FiniteSet):
        return "{" + ", ".join(to_text(v) for v in s) + "}"
    if isinstance(s, sympy.Intersection) and all(isinstance(a, sympy.Interval) for a in s.args):
        def num(v):
            return float(v.subs({k: 1 for k in v.free_symbols})) if v.is_finite else float(v)

        low = max(s.args, key=lambda a: num(a.start))
        high = min(s.args, key=lambda a: num(a.end))
        return set_text(sympy.Interval(low.start, high.end, low.left_open, high.right_open))
    return str(s)
