r"""Numerical gradient checking of a function: :func:`gradcheck`.

The true gradient :math:`T` comes from float64 central differences refined by Richardson
extrapolation,

.. math::

    D(h) = \frac{f(x + h) - f(x - h)}{2h}, \qquad
    R = \frac{4\,D(h/2) - D(h)}{3} = f'(x) + O(h^4),

with an adaptive step: starting from :math:`h = 10^{-3}\max(1, |x|)` (or ``eps``), the step
shrinks by 4 while :math:`|R - D(h/2)|` says the estimate has not settled, and whenever
:math:`f` is not finite at :math:`x \pm h` (a point near the edge of the domain, such as
:math:`\hat y = 0.999` in a cross-entropy). The roundoff of each difference,
:math:`\approx 8\epsilon\,|f| / h`, and the remaining :math:`|R - D(h/2)|` are added to the
tolerance, so an ill-conditioned point does not produce a false failure.

An element passes when :math:`|G - T| \le \mathrm{atol} + \mathrm{rtol}\,|T| + \text{noise}`.
Inputs are never changed: :math:`f` and the claimed gradient see float64 copies.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from chainrule._checks import as_float_array, check_finite, check_scalar
from chainrule.gradient_check.catalogue import CheckResult
from chainrule.gradient_check.diagnosis import (
    Diagnosis,
    Hints,
    diagnose_stack,
    shape_diagnosis,
)

__all__ = [
    "NO_RELATION",
    "GradcheckReport",
    "PrecisionWarning",
    "check_tolerances",
    "compare_stacks",
    "extrapolate",
    "gradcheck",
    "numeric_gradient",
]

_EPS = np.finfo(np.float64).eps
_MAX_SHRINK = 8
_SETTLED = 1e-8


class PrecisionWarning(UserWarning):
    """Gradient checking in float32 gives false failures (pytorch#5351): check in float64."""


@dataclass
class GradcheckReport(CheckResult):
    r"""The outcome of :func:`gradcheck`, a :class:`~chainrule.gradient_check.CheckResult`.

    ``correct`` (also ``passed``); ``kind``, the catalogue's name of the relation found, with
    its ``sentence`` (also ``diagnosis``: None when the check passed or no relation of the
    catalogue holds) and its ``factor``; ``where`` the input or the elements concerned; the
    largest absolute and relative error (relative to :math:`\max(|T|, \mathrm{atol})`); where
    the worst element is (``worst_input``, ``worst_index``) with its ``claimed_value`` and
    ``numeric_value``. ``claimed`` and ``numeric`` hold the compared arrays, one per input (with
    a leading axis of projections when the function returns an array). ``str(report)`` is a
    short readable summary.
    """

    max_abs_error: float
    max_rel_error: float
    worst_input: int | None
    worst_index: tuple
    claimed_value: float
    numeric_value: float
    factor: float | None
    n_checked: int
    n_failed: int
    rtol: float
    atol: float
    projections: int = 0
    label: str = "gradcheck"
    n_inputs: int = 1
    claimed: list = field(default_factory=list, repr=False)
    numeric: list = field(default_factory=list, repr=False)

    def __str__(self) -> str:
        where = ""
        if self.worst_input is not None:
            idx = self.worst_index
            index = str(idx[0]) if len(idx) == 1 else str(tuple(int(i) for i in idx))
            where = f"input {self.worst_input}" if self.n_inputs > 1 else ""
            if idx:
                where = f"{where} at index {index}".strip()
        projected = (f"; array output checked through {self.projections} random projections"
                     if self.projections else "")
        if self.passed:
            return (f"{self.label}: passed ({self.n_checked} elements; max abs error "
                    f"{self.max_abs_error:.2g}, max rel error {self.max_rel_error:.2g}; float64 "
                    f"central differences with Richardson extrapolation{projected})")
        lines = [f"{self.label}: FAILED ({self.n_failed} of {self.n_checked} elements disagree)"]
        if where and np.isfinite(self.claimed_value):
            lines.append(
                f"  worst: {where}: claimed {self.claimed_value:.6g}, numeric "
                f"{self.numeric_value:.6g} (abs error {self.max_abs_error:.3g}, rel error "
                f"{self.max_rel_error:.3g})"
            )
        lines.append(f"  tolerance: |G - T| <= {self.atol:g} + {self.rtol:g}·|T|{projected}")
        lines.append(f"  diagnosis: {self.sentence}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """In a notebook: the verdict and a small table (worst element, diagnosis)."""
        from chainrule._display import gradcheck_html

        return gradcheck_html(self)

    def _repr_markdown_(self) -> str:
        from chainrule._display import gradcheck_markdown

        return gradcheck_markdown(self)


# --- the finite differences ---------------------------------------------------------------------


def _central(evaluate, arr, idx, x0: float, h: float):
    # A step may leave f's domain (log of 0); the step then shrinks, so NumPy need not warn.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        arr[idx] = x0 + h
        fp = evaluate()
        arr[idx] = x0 - h
        fm = evaluate()
    arr[idx] = x0
    if not (np.all(np.isfinite(fp)) and np.all(np.isfinite(fm))):
        return None
    step = (x0 + h) - (x0 - h)  # the step the floats actually took
    return (fp - fm) / step, np.maximum(np.abs(fp), np.abs(fm))


def extrapolate(central, h0: float, shrink: int, settled: float, roundoff=None):
    r"""Richardson's extrapolation of central differences, the step shrinking until it settles.

    ``central(h)`` gives ``(quotient, r)`` at step :math:`h` (``r`` its round-off, or what
    ``roundoff(r_coarse, r_fine, h)`` turns into it; by default the larger of the two), or None
    where the function is not finite. Each round takes :math:`D_h` and :math:`D_{h/2}` and
    extrapolates :math:`(4 D_{h/2} - D_h)/3`; the truncation left is :math:`|r - D_{h/2}|`.
    Returns ``((derivative, noise), h)``: the round with the least noise, or None when no step
    gave finite values, and the last step tried.
    """
    h, best = h0, None
    for _ in range(shrink):
        coarse = central(h)
        fine = central(h / 2) if coarse is not None else None
        if coarse is None or fine is None:
            h /= 4.0
            continue
        (d1, r1), (d2, r2) = coarse, fine
        r = (4.0 * d2 - d1) / 3.0
        trunc = np.abs(r - d2)
        off = np.maximum(r1, r2) if roundoff is None else roundoff(r1, r2, h)
        noise = off + trunc
        if best is None or np.max(noise) < np.max(best[1]):
            best = (r, noise)
        if np.all(trunc <= np.maximum(settled * np.abs(r), off)):
            break
        h /= 4.0
    return best, h


def _derivative(evaluate, arr, idx, x0: float, h0: float, where: str):
    """Richardson-extrapolated central difference at one element, with its noise estimate."""
    best, h = extrapolate(lambda step: _central(evaluate, arr, idx, x0, step), h0, _MAX_SHRINK,
                          _SETTLED, roundoff=lambda s1, s2, h: 8.0 * _EPS * np.maximum(s1, s2) / h)
    if best is None:
        raise ValueError(
            f"The function f is not finite near {where} (value {x0!r}) even with a step of "
            f"{h * 4:.1e}: the point is at the edge of f's domain (a log of 0, a division by "
            "0). Check at a point inside the domain, e.g. predictions in (0.01, 0.99) for a "
            "cross-entropy."
        )
    return best


def numeric_gradient(evaluate, arr, pristine, indices, eps, label):
    """Numeric gradient of ``evaluate`` at the flat ``indices`` of ``arr`` (changed in place and
    restored). Returns values and noise of shape ``(len(indices), P)``."""
    values, noises = [], []
    for flat in indices:
        idx = np.unravel_index(int(flat), arr.shape) if arr.ndim else ()
        x0 = float(pristine[idx])
        h0 = float(eps) if eps is not None else 1e-3 * max(1.0, abs(x0))
        where = f"{label} at index {tuple(int(i) for i in idx) if len(idx) != 1 else int(idx[0])}"
        r, noise = _derivative(evaluate, arr, idx, x0, h0, where)
        arr[idx] = pristine[idx]
        values.append(r)
        noises.append(noise)
    return np.array(values, dtype=np.float64), np.array(noises, dtype=np.float64)


# --- gradcheck ----------------------------------------------------------------------------------


def check_tolerances(rtol, atol, eps, projections, owner: str) -> None:
    check_scalar(rtol, "rtol", owner, low=0)
    check_scalar(atol, "atol", owner, low=0)
    check_scalar(eps, "eps", owner, low=0, high=1, low_open=True, high_open=True,
                 allow_none=True)
    check_scalar(projections, "projections", owner, kind=int, low=1)


def _as_tuple(result, n: int, what: str) -> list:
    if n == 1:
        if isinstance(result, tuple) and len(result) == 1:
            result = result[0]
        return [result]
    if not isinstance(result, list | tuple) or len(result) != n:
        got = f"a {type(result).__name__}" + (
            f" of length {len(result)}" if isinstance(result, list | tuple) else "")
        raise ValueError(
            f"The claimed gradient {what} must return one gradient per input ({n} arrays in a "
            f"tuple); got {got}."
        )
    return list(result)


def gradcheck(
    f,
    grad_f,
    *inputs,
    eps: float | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    seed: int = 0,
    projections: int = 3,
    vjp: bool = False,
    hints: Hints | None = None,
    label: str = "gradcheck",
    **hint_fields,
) -> GradcheckReport:
    r"""Check the claimed gradient ``grad_f`` of ``f`` at ``inputs``; say what is wrong if it is.

    The steps: float64 copies of the inputs; ``f`` at the point (and, for an array output,
    the random projections); the claimed gradient as one stack per input; the numeric
    gradient of the same stacks; then the comparison, and the diagnosis where it fails.

    Parameters
    ----------
    f
        ``f(*inputs)`` returns a scalar, or an array (then checked through ``projections``
        random projections :math:`v^\top f`).
    grad_f
        The claimed gradient. For a scalar ``f``, ``grad_f(*inputs)`` returns an array of each
        input's shape (a tuple of them for several inputs). For an array ``f`` of shape ``S``,
        it returns the Jacobian of shape ``S + input.shape``; with ``vjp=True`` it is instead
        a vector-Jacobian product ``grad_f(v, *inputs)`` = :math:`v^\top J` (what a layer's
        ``backward(v)`` computes).
    *inputs
        The point, one or more arrays. They are never changed; float32 inputs trigger a
        :class:`PrecisionWarning` and are checked as float64 copies.
    eps
        The first finite-difference step (default :math:`10^{-3}\max(1, |x|)`); it shrinks
        where needed.
    rtol, atol
        An element passes when :math:`|G - T| \le \mathrm{atol} + \mathrm{rtol}|T|` plus the
        estimated numerical noise of :math:`T`.
    seed
        Seeds the random projections.
    projections
        How many random projections :math:`v^\top f` check an array output (default 3).
    vjp
        Whether ``grad_f`` is a vector-Jacobian product ``grad_f(v, *inputs)``.
    label
        The name that begins the report's text (default ``"gradcheck"``).
    hints, **hint_fields
        Optional context for the diagnosis, a :class:`~chainrule.gradient_check.Hints`, or its
        fields as keywords (``activation``, ``z``, ``wrt``, ``x``, ``y``, ``m``, ``terms``; see
        :mod:`chainrule.gradient_check.diagnosis`): the activation and its input ``z`` (then
        ``wrt="z"`` or ``"yhat"`` says which gradient ``grad_f`` claims), the input ``x`` of a
        linear map ``z = x @ w``, the targets ``y``, the batch size ``m`` and the true gradient
        split into ``terms``. With several inputs, the array hints apply to the inputs whose
        shape they fit.

    Returns
    -------
    GradcheckReport

    Examples
    --------
    >>> import numpy as np
    >>> w = np.array([0.5, -1.0])
    >>> report = gradcheck(lambda w: np.sum(w ** 2), lambda w: -2 * w, w)
    >>> report.passed, report.kind
    (False, 'sign_flipped')
    """
    hints = Hints.collect(hints, hint_fields, "gradcheck")
    _check_call(f, grad_f, inputs)
    check_tolerances(rtol, atol, eps, projections, "gradcheck")
    point = _Point.at(f, _float64_inputs(inputs), seed, projections)
    if vjp:
        claimed, shape_problems = _claimed_by_vjp(grad_f, point)
    else:
        claimed, shape_problems = _claimed_by_jacobian(grad_f, point)
    numeric, noise = _numeric_stacks(f, point, eps)
    report = compare_stacks(claimed, numeric, noise, shape_problems, rtol, atol, hints,
                            point.inputs)
    report.projections = 0 if point.scalar else point.n_proj
    report.label = label
    report.n_inputs = len(point.inputs)
    return report


def _check_call(f, grad_f, inputs) -> None:
    if not callable(f) or not callable(grad_f):
        raise ValueError(
            f"A gradient check needs two callables, f and grad_f; got {type(f).__name__} and "
            f"{type(grad_f).__name__}."
        )
    if not inputs:
        raise ValueError("A gradient check needs at least one input array after f and grad_f.")


def _float64_inputs(inputs) -> list[np.ndarray]:
    """Finite float64 copies of ``inputs``, with a :class:`PrecisionWarning` for float32 ones."""
    originals = [as_float_array(v, f"input {k}") for k, v in enumerate(inputs)]
    low = [k for k, a in enumerate(originals) if a.dtype.itemsize < 8]
    if low:
        warnings.warn(
            f"Input {low[0]} is {originals[low[0]].dtype}: finite differences in float32 give "
            "false failures (pytorch#5351). gradcheck evaluates f on float64 copies, but if f "
            "computes in float32 inside, the check can still fail falsely: check in float64.",
            PrecisionWarning,
            stacklevel=3,
        )
    pristine = [np.array(a, dtype=np.float64, copy=True) for a in originals]
    for k, a in enumerate(pristine):
        check_finite(a, f"input {k}")
    return pristine


@dataclass
class _Point:
    r"""The point of a check: the float64 inputs, ``f``'s output shape there, and the unit
    projections :math:`V` (one row of ones for a scalar ``f``)."""

    inputs: list[np.ndarray]
    out_shape: tuple
    V: np.ndarray

    @classmethod
    def at(cls, f, inputs: list[np.ndarray], seed: int, projections: int) -> _Point:
        out0 = np.asarray(f(*[a.copy() for a in inputs]), dtype=np.float64)
        if not np.all(np.isfinite(out0)):
            raise ValueError(f"The function f is not finite at the given inputs (got "
                             f"{out0.ravel()[:4]}); check at a point inside f's domain.")
        if out0.ndim == 0:
            return cls(inputs, (), np.ones((1,)))
        V = np.random.default_rng(seed).standard_normal((projections, *out0.shape))
        V /= np.sqrt(np.sum(V.reshape(projections, -1) ** 2, axis=1)).reshape(
            (projections,) + (1,) * out0.ndim)
        return cls(inputs, out0.shape, V)

    @property
    def scalar(self) -> bool:
        return not self.out_shape

    @property
    def n_proj(self) -> int:
        return len(self.V)

    def fresh(self) -> list[np.ndarray]:
        return [a.copy() for a in self.inputs]

    def project(self, out) -> np.ndarray:
        """:math:`V f` of one output of ``f`` (the output itself, as one value, when scalar)."""
        out = np.asarray(out, dtype=np.float64)
        if self.scalar:
            return out.reshape(1)
        return self.V.reshape(self.n_proj, -1) @ out.reshape(-1)


def _claimed_by_jacobian(grad_f, point: _Point):
    """The claimed gradient ``grad_f(*inputs)`` as a stack ``(P, *input_shape)`` per input;
    a scalar ``f``'s gradient of the wrong shape is set aside (None) for the diagnosis."""
    claimed: list[np.ndarray | None] = []
    shape_problems: dict[int, np.ndarray] = {}
    raw = _as_tuple(grad_f(*point.fresh()), len(point.inputs), "grad_f")
    for k, (g, a) in enumerate(zip(raw, point.inputs, strict=True)):
        g = np.asarray(as_float_array(g, f"grad_f's gradient {k}"), dtype=np.float64)
        want = point.out_shape + a.shape
        if g.shape != want:
            if not point.scalar:
                raise ValueError(
                    f"The claimed gradient grad_f returned an array of shape {g.shape} for input "
                    f"{k}; for f with "
                    f"output shape {point.out_shape} it must be the Jacobian of shape {want}, "
                    "or pass vjp=True and return v·J from grad_f(v, *inputs)."
                )
            shape_problems[k] = g
            claimed.append(None)
        elif point.scalar:
            claimed.append(g[np.newaxis])
        else:
            axes = list(range(len(point.out_shape)))
            claimed.append(np.tensordot(point.V, g, axes=([a_ + 1 for a_ in axes], axes)))
    return claimed, shape_problems


def _claimed_by_vjp(grad_f, point: _Point):
    """The vector-Jacobian products ``grad_f(v, *inputs)``, one per projection, stacked; a
    product of the wrong shape is set aside (None) for the diagnosis, as in
    :func:`_claimed_by_jacobian`."""
    per_projection = []
    for j in range(point.n_proj):
        v = np.array(1.0) if point.scalar else point.V[j].copy()
        raw = _as_tuple(grad_f(v, *point.fresh()), len(point.inputs), "grad_f")
        per_projection.append([np.asarray(as_float_array(g, f"grad_f's product {k}"),
                                          dtype=np.float64) for k, g in enumerate(raw)])
    claimed: list[np.ndarray | None] = []
    shape_problems: dict[int, np.ndarray] = {}
    for k, a in enumerate(point.inputs):
        stack = [grads[k] for grads in per_projection]
        wrong = next((g for g in stack if g.shape != a.shape), None)
        if wrong is not None:
            shape_problems[k] = wrong if wrong is stack[0] else stack[0]
            claimed.append(None)
        else:
            claimed.append(np.stack(stack))
    return claimed, shape_problems


def _numeric_stacks(f, point: _Point, eps):
    """The numeric gradient and its noise, a stack ``(P, *input_shape)`` per input."""
    work = point.fresh()

    def evaluate():
        return point.project(f(*work))

    numeric, noise = [], []
    for k, (arr, base) in enumerate(zip(work, point.inputs, strict=True)):
        values, noises = numeric_gradient(
            evaluate, arr, base, range(arr.size), eps, f"input {k}"
        )
        numeric.append(values.T.reshape((point.n_proj, *arr.shape)))
        noise.append(noises.T.reshape((point.n_proj, *arr.shape)))
        if not np.array_equal(arr, base):
            raise ValueError(
                f"The function f changed input {k} in place while being evaluated; a gradient "
                "check needs an f "
                "that leaves its inputs alone (copy inside f before modifying)."
            )
    return numeric, noise


def _hints_for(shape: tuple, hints: Hints, n_inputs: int) -> Hints:
    """The hints that apply to an input of ``shape`` (all of them when there is one input)."""
    if n_inputs == 1:
        return hints

    def fits(value):
        if value is None:
            return False
        try:
            np.broadcast_shapes(np.shape(value), shape)
        except ValueError:
            return False
        return True

    out = Hints(m=hints.m, wrt=hints.wrt)
    if hints.x is not None:
        if len(shape) >= 1 and np.shape(hints.x)[-1:] == shape[:1]:
            out = out.but(activation=hints.activation, z=hints.z, x=hints.x)
    elif fits(hints.z):
        out = out.but(activation=hints.activation, z=hints.z)
    if fits(hints.y):
        out = out.but(y=hints.y)
    terms = hints.terms
    if terms is not None:
        values = terms.values() if hasattr(terms, "values") else terms
        if all(fits(v) for v in values):
            out = out.but(terms=terms)
    return out


@dataclass
class _Errors:
    """The element-wise comparison of every input's stacks: counts, largest errors, the worst
    element (by the ratio of its error to its bound) and the failing inputs, worst first."""

    n_checked: int
    n_failed: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    worst: tuple = (-1.0, None, (), np.nan, np.nan)  # (ratio, input, index, G, T)
    failing: list = field(default_factory=list)  # (ratio, input)

    def add(self, k: int, g, t, nz, rtol: float, atol: float) -> None:
        with np.errstate(invalid="ignore"):
            err = np.abs(g - t)
        err = np.where(np.isfinite(err), err, np.inf)
        bound = atol + rtol * np.abs(t) + nz
        bad = err > bound
        self.n_failed += int(np.count_nonzero(bad.any(axis=0)))
        self.max_abs = max(self.max_abs, float(np.max(err)))
        scale = np.maximum(np.abs(t), atol) if atol > 0 else np.maximum(np.abs(t), 1e-300)
        self.max_rel = max(self.max_rel, float(np.max(err / scale)))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(bound > 0, err / bound, np.where(err > 0, np.inf, 0.0))
        pos = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        if ratio[pos] > self.worst[0]:
            self.worst = (float(ratio[pos]), k, tuple(int(i) for i in pos[1:]), float(g[pos]),
                          float(t[pos]))
        if bad.any():
            self.failing.append((float(ratio[pos]), k))

    def add_wrong_shape(self, k: int, t) -> None:
        self.n_failed += t[0].size
        self.failing.append((np.inf, k))
        self.max_abs = self.max_rel = np.inf


def compare_stacks(claimed, numeric, noise, shape_problems, rtol, atol, hints, pristine):
    """Compare the stacks input by input; diagnose the failing ones; one report."""
    errors = _Errors(sum(a.size for a in pristine))
    for k, (g, t, nz) in enumerate(zip(claimed, numeric, noise, strict=True)):
        if g is None:
            errors.add_wrong_shape(k, t)
        else:
            errors.add(k, g, t, nz, rtol, atol)
    errors.failing.sort(reverse=True)
    diagnosis = _diagnose_failing(errors.failing, claimed, numeric, noise, shape_problems,
                                  rtol, atol, hints, pristine)
    _, worst_input, worst_index, g_val, t_val = errors.worst
    if worst_input is None and errors.failing:
        worst_input = errors.failing[0][1]
    correct = not errors.failing
    where = None if diagnosis is None else diagnosis.where
    if where is None and not correct and len(pristine) > 1:
        where = f"input {worst_input}"
    return GradcheckReport(
        correct=correct,
        kind=None if diagnosis is None else diagnosis.kind,
        where=where,
        sentence=_sentence(correct, diagnosis),
        expected=None,
        max_abs_error=errors.max_abs,
        max_rel_error=errors.max_rel,
        worst_input=worst_input,
        worst_index=worst_index,
        claimed_value=g_val,
        numeric_value=t_val,
        factor=None if diagnosis is None else diagnosis.factor,
        n_checked=errors.n_checked,
        n_failed=errors.n_failed,
        rtol=rtol,
        atol=atol,
        claimed=[g if g is not None else shape_problems[k] for k, g in enumerate(claimed)],
        numeric=numeric,
    )


def _sentence(correct: bool, diagnosis: Diagnosis | None) -> str:
    if correct:
        return ("The claimed gradient agrees with float64 central differences at every checked "
                "element.")
    if diagnosis is None:
        return NO_RELATION
    return diagnosis.sentence


#: What a failed check says when no relation of the catalogue holds at every point.
NO_RELATION = ("no relation of the catalogue holds at every point; compare the arrays in "
               "report.claimed and report.numeric")


def _diagnose_failing(failing, claimed, numeric, noise, shape_problems, rtol, atol, hints,
                      pristine) -> Diagnosis | None:
    """The diagnosis of the worst failing input that has one; with several inputs, it names
    every input with the same relation."""
    found = {}
    for _, k in failing:
        if k in shape_problems:
            found[k] = shape_diagnosis(shape_problems[k], numeric[k][0], rtol=rtol, atol=atol)
        else:
            found[k] = diagnose_stack(
                claimed[k], numeric[k], rtol=rtol, atol=atol, noise=noise[k],
                hints=_hints_for(pristine[k].shape, hints, len(pristine)),
            )
    first = next((k for _, k in failing if found[k] is not None), None)
    if first is None:
        return None
    diagnosis = found[first]
    if len(pristine) == 1:
        return diagnosis
    same = [k for _, k in failing if found[k] is not None and found[k].kind == diagnosis.kind]
    who = "inputs " + " and ".join(map(str, sorted(same))) if len(same) > 1 else f"input {first}"
    return Diagnosis(diagnosis.kind, f"{who}: {diagnosis.sentence}", diagnosis.factor,
                     diagnosis.indices, diagnosis.where or who)
