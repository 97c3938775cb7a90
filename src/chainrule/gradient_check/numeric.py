r"""Numerical gradient checking: :func:`gradcheck` for functions, :func:`check_model` for models.

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

import copy
import warnings
from dataclasses import dataclass, field

import numpy as np

from chainrule._checks import as_float_array, check_finite, check_scalar
from chainrule.gradient_check.diagnosis import (
    Diagnosis,
    Hints,
    diagnose_stack,
    shape_diagnosis,
)

__all__ = [
    "GradcheckReport",
    "LayerCheck",
    "ModelCheckReport",
    "PrecisionWarning",
    "check_model",
    "gradcheck",
]

_EPS = np.finfo(np.float64).eps
_MAX_SHRINK = 8
_SETTLED = 1e-8


class PrecisionWarning(UserWarning):
    """Gradient checking in float32 gives false failures (pytorch#5351): check in float64."""


@dataclass
class GradcheckReport:
    r"""The outcome of :func:`gradcheck`.

    ``passed``; the largest absolute and relative error (relative to :math:`\max(|T|,
    \mathrm{atol})`); where the worst element is (``worst_input``, ``worst_index``) with its
    ``claimed_value`` and ``numeric_value``; ``diagnosis`` (a sentence, or None when the check
    passed or no relation of the catalogue holds) with its ``kind`` and ``factor``. ``claimed``
    and ``numeric`` hold the compared arrays, one per input (with a leading axis of projections
    when the function returns an array). ``str(report)`` is a short readable summary.
    """

    passed: bool
    max_abs_error: float
    max_rel_error: float
    worst_input: int | None
    worst_index: tuple
    claimed_value: float
    numeric_value: float
    diagnosis: str | None
    kind: str | None
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
        if self.diagnosis:
            lines.append(f"  diagnosis: {self.diagnosis}")
        else:
            lines.append("  diagnosis: no relation of the catalogue holds at every point; "
                         "compare the arrays in report.claimed and report.numeric")
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


def _derivative(evaluate, arr, idx, x0: float, h0: float, where: str):
    """Richardson-extrapolated central difference at one element, with its noise estimate."""
    h = h0
    best = None
    for _ in range(_MAX_SHRINK):
        coarse = _central(evaluate, arr, idx, x0, h)
        fine = _central(evaluate, arr, idx, x0, h / 2) if coarse is not None else None
        if coarse is None or fine is None:
            h /= 4.0
            continue
        (d1, s1), (d2, s2) = coarse, fine
        r = (4.0 * d2 - d1) / 3.0
        trunc = np.abs(r - d2)
        roundoff = 8.0 * _EPS * np.maximum(s1, s2) / h
        noise = roundoff + trunc
        if best is None or np.max(noise) < np.max(best[1]):
            best = (r, noise)
        if np.all(trunc <= np.maximum(_SETTLED * np.abs(r), roundoff)):
            break
        h /= 4.0
    if best is None:
        raise ValueError(
            f"The function f is not finite near {where} (value {x0!r}) even with a step of "
            f"{h * 4:.1e}: the point is at the edge of f's domain (a log of 0, a division by "
            "0). Check at a point inside the domain, e.g. predictions in (0.01, 0.99) for a "
            "cross-entropy."
        )
    return best


def _numeric_gradient(evaluate, arr, pristine, indices, eps, label):
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


def _check_tolerances(rtol, atol, eps, projections, owner: str) -> None:
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
    f:
        ``f(*inputs)`` returns a scalar, or an array (then checked through ``projections``
        random projections :math:`v^\top f`).
    grad_f:
        The claimed gradient. For a scalar ``f``, ``grad_f(*inputs)`` returns an array of each
        input's shape (a tuple of them for several inputs). For an array ``f`` of shape ``S``,
        it returns the Jacobian of shape ``S + input.shape``; with ``vjp=True`` it is instead
        a vector-Jacobian product ``grad_f(v, *inputs)`` = :math:`v^\top J` (what a layer's
        ``backward(v)`` computes).
    inputs:
        The point, one or more arrays. They are never changed; float32 inputs trigger a
        :class:`PrecisionWarning` and are checked as float64 copies.
    eps:
        The first finite-difference step (default :math:`10^{-3}\max(1, |x|)`); it shrinks
        where needed.
    rtol, atol:
        An element passes when :math:`|G - T| \le \mathrm{atol} + \mathrm{rtol}|T|` plus the
        estimated numerical noise of :math:`T`.
    seed:
        Seeds the random projections.
    hints:
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

    >>> import numpy as np
    >>> w = np.array([0.5, -1.0])
    >>> report = gradcheck(lambda w: np.sum(w ** 2), lambda w: -2 * w, w)
    >>> report.passed, report.kind
    (False, 'sign_flipped')
    """
    hints = Hints.collect(hints, hint_fields, "gradcheck")
    _check_call(f, grad_f, inputs)
    _check_tolerances(rtol, atol, eps, projections, "gradcheck")
    point = _Point.at(f, _float64_inputs(inputs), seed, projections)
    if vjp:
        claimed, shape_problems = _claimed_by_vjp(grad_f, point), {}
    else:
        claimed, shape_problems = _claimed_by_jacobian(grad_f, point)
    numeric, noise = _numeric_stacks(f, point, eps)
    report = _compare(claimed, numeric, noise, shape_problems, rtol, atol, hints, point.inputs)
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


def _claimed_by_vjp(grad_f, point: _Point) -> list[np.ndarray]:
    """The vector-Jacobian products ``grad_f(v, *inputs)``, one per projection, stacked."""
    per_projection = []
    for j in range(point.n_proj):
        v = np.array(1.0) if point.scalar else point.V[j].copy()
        raw = _as_tuple(grad_f(v, *point.fresh()), len(point.inputs), "grad_f")
        per_projection.append([np.asarray(g, dtype=np.float64) for g in raw])
    claimed = []
    for k, a in enumerate(point.inputs):
        stack = [grads[k] for grads in per_projection]
        if any(g.shape != a.shape for g in stack):
            raise ValueError(
                f"The vector-Jacobian product grad_f(v, *inputs) returned shape {stack[0].shape} "
                f"for input {k}; it must have the input's shape {a.shape}."
            )
        claimed.append(np.stack(stack))
    return claimed


def _numeric_stacks(f, point: _Point, eps):
    """The numeric gradient and its noise, a stack ``(P, *input_shape)`` per input."""
    work = point.fresh()

    def evaluate():
        return point.project(f(*work))

    numeric, noise = [], []
    for k, (arr, base) in enumerate(zip(work, point.inputs, strict=True)):
        values, noises = _numeric_gradient(
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


def _compare(claimed, numeric, noise, shape_problems, rtol, atol, hints, pristine):
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
    return GradcheckReport(
        passed=not errors.failing,
        max_abs_error=errors.max_abs,
        max_rel_error=errors.max_rel,
        worst_input=worst_input,
        worst_index=worst_index,
        claimed_value=g_val,
        numeric_value=t_val,
        diagnosis=None if diagnosis is None else diagnosis.sentence,
        kind=None if diagnosis is None else diagnosis.kind,
        factor=None if diagnosis is None else diagnosis.factor,
        n_checked=errors.n_checked,
        n_failed=errors.n_failed,
        rtol=rtol,
        atol=atol,
        claimed=[g if g is not None else shape_problems[k] for k, g in enumerate(claimed)],
        numeric=numeric,
    )


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
                     diagnosis.indices)


# --- check_model --------------------------------------------------------------------------------


@dataclass
class LayerCheck:
    """The local check of one layer's backward: its input gradient and each parameter's."""

    index: int | None
    name: str
    parts: dict[str, GradcheckReport]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.parts.values())

    def first_failure(self) -> tuple[str, GradcheckReport] | None:
        for part, report in self.parts.items():
            if not report.passed:
                return part, report
        return None


@dataclass
class ModelCheckReport:
    """The outcome of :func:`check_model`.

    ``passed``; ``layer_index`` and ``layer`` (its repr) of the first layer whose backward
    disagrees, ``part`` (which of its gradients: ``"dE/dinput"`` or a parameter name) and
    ``diagnosis``; ``layers`` holds every local check (one :class:`LayerCheck` per layer, then
    the loss), and ``end_to_end`` the check of every parameter's gradient of the loss.
    """

    passed: bool
    layer_index: int | None
    layer: str | None
    part: str | None
    diagnosis: str | None
    kind: str | None
    layers: list[LayerCheck]
    end_to_end: GradcheckReport | None

    def __str__(self) -> str:
        if self.passed:
            n = sum(len(c.parts) for c in self.layers)
            return (f"check_model: passed ({len(self.layers) - 1} layers and the loss, {n} "
                    "gradients checked locally, and every parameter's gradient of the loss)")
        if self.layer_index is not None:
            head = (f"check_model: FAILED at layer {self.layer_index} ({self.layer}): its "
                    f"backward disagrees with finite differences in {self.part}")
        elif self.layer is not None:
            head = f"check_model: FAILED in {self.layer}: its {self.part} disagrees"
        else:
            head = ("check_model: FAILED end to end although every layer passes on its own: "
                    "model.backward does not chain the layers' gradients correctly")
        lines = [head]
        bad = next((c for c in self.layers if not c.passed), None)
        if bad is not None:
            _, report = bad.first_failure()
            lines.append("  " + str(report).replace("\n", "\n  "))
        elif self.end_to_end is not None:
            lines.append("  " + str(self.end_to_end).replace("\n", "\n  "))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """In a notebook: the verdict and one row per layer."""
        from chainrule._display import model_check_html

        return model_check_html(self)


def _param_names(layer, params) -> list[str]:
    names = []
    attrs = getattr(layer, "__dict__", {})
    for j, p in enumerate(params):
        name = next((k for k, v in attrs.items() if v is p), None)
        names.append(name or f"parameter {j}")
    return names


def _sample(size: int, limit: int | None, rng) -> np.ndarray:
    if limit is None or size <= limit:
        return np.arange(size)
    return np.sort(rng.choice(size, size=limit, replace=False))


def _compare_subset(claimed_full, numeric, noise, indices, rtol, atol, hints: Hints, label,
                    shape):
    """Compare at the sampled flat ``indices`` only; array hints are sampled alike."""
    indices = np.asarray(indices)
    full = len(indices) == int(np.prod(shape))
    g = np.asarray(claimed_full, dtype=np.float64).reshape(-1)[indices]
    sub_shape = shape if full else (len(indices),)
    g = g.reshape((1, *sub_shape))
    t = numeric.T.reshape((1, *sub_shape))
    nz = noise.T.reshape((1, *sub_shape))
    if not full:
        hints = _sampled_hints(hints, indices, shape)
    report = _compare([g], [t], [nz], {}, rtol, atol, hints, [np.empty(sub_shape)])
    report.label = label
    if not full and report.worst_index:
        flat = int(indices[report.worst_index[0]])
        report.worst_index = tuple(int(i) for i in np.unravel_index(flat, shape))
    return report


def _sampled_hints(hints: Hints, indices, shape) -> Hints:
    """The hints at the sampled flat ``indices``: ``z`` and ``y`` of the variable's shape
    sampled alike, the others (which need the whole array) dropped."""

    def sampled(value):
        if value is not None and np.shape(value) == tuple(shape):
            return np.asarray(value).reshape(-1)[indices]
        return None

    z = sampled(hints.z)
    return hints.but(x=None, terms=None, z=z, y=sampled(hints.y),
                     activation=hints.activation if z is not None else None)


@dataclass(frozen=True)
class _Settings:
    """How :func:`check_model` compares: tolerances, first step, elements per array, the
    random generator of the samples and upstream gradients, and the batch size."""

    rtol: float
    atol: float
    eps: float | None
    max_elements: int | None
    rng: np.random.Generator
    m: int | None

    def check(self, evaluate, arr, base, g, hints: Hints, name: str, label: str):
        """The report of the claimed gradient ``g`` of ``evaluate`` by ``arr`` (changed in
        place and restored from ``base``), on a sample of its elements."""
        idx = _sample(arr.size, self.max_elements, self.rng)
        t, noise = _numeric_gradient(evaluate, arr, base, idx, self.eps, name)
        return _compare_subset(g, t, noise, idx, self.rtol, self.atol, hints, label, arr.shape)


def check_model(
    model,
    X,
    y,
    loss,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    eps: float | None = None,
    seed: int = 0,
    max_elements: int | None = 64,
) -> ModelCheckReport:
    r"""Check the backward pass of every layer of ``model`` and name the first that disagrees.

    Each layer is checked on its own, at the input it receives from ``X``: with a random
    upstream gradient :math:`v`, its ``backward(v)`` must equal the finite-difference gradient
    of :math:`v \cdot \text{layer.forward}(h)` with respect to its input :math:`h` and to each
    of its parameters. Then the loss's ``backward`` is checked against its ``forward``, and
    finally every parameter's gradient of the loss through ``model.backward``. The first layer
    (in forward order) that disagrees is named, with the relation found (``"dE/dinput"`` of a
    sigmoid layer that multiplies by :math:`\sigma'(\sigma(z))`, say).

    The check runs on a float64 copy of the model in evaluation mode (no dropout): ``model``,
    ``X`` and ``y`` are never changed. ``max_elements`` caps the elements checked per array
    (a seeded random subset beyond it; None checks all).

    ``loss`` is a name of :func:`chainrule.losses.get` or an object with ``forward(pred,
    target)`` and ``backward()``.
    """
    _check_tolerances(rtol, atol, eps, 1, "check_model")
    check_scalar(max_elements, "max_elements", "check_model", kind=int, low=1, allow_none=True)
    _check_layers(model)
    loss_obj = _loss_object(loss)
    X64 = np.array(as_float_array(X, "X"), dtype=np.float64, copy=True)
    check_finite(X64, "X")
    m = int(X64.shape[0]) if X64.ndim >= 1 else None
    settings = _Settings(rtol, atol, eps, max_elements, np.random.default_rng(seed), m)
    work = _float64_evaluation_copy(model)
    inputs, pred = _layer_inputs(work, X64)
    target = _as_target(y, pred)
    checks = [_check_layer(i, layer, inputs[i], settings) for i, layer in enumerate(work.layers)]
    checks.append(_check_loss(loss_obj, pred, target, settings))
    end = _check_end_to_end(work, loss_obj, X64, target, settings)
    return _model_verdict(checks, end)


def _check_layers(model) -> None:
    layers = getattr(model, "layers", None)
    if not isinstance(layers, list | tuple) or not layers:
        raise ValueError(
            f"A model check needs a model with a list of layers (a chainrule.nn.Sequential); "
            "got "
            f"{type(model).__name__}."
        )


def _loss_object(loss):
    """A fresh loss of that name, or a copy of the loss object given."""
    if isinstance(loss, str):
        from chainrule import losses as _losses

        return _losses.get(loss)
    if hasattr(loss, "forward") and hasattr(loss, "backward"):
        return copy.deepcopy(loss)
    raise ValueError(
        f"The loss must be a loss name (e.g. 'bce', 'mse') or an object with forward(pred, "
        f"target) and backward(); got {type(loss).__name__}."
    )


def _float64_evaluation_copy(model):
    """A float64 copy of ``model`` in evaluation mode, with a :class:`PrecisionWarning` where
    its parameters stay float32."""
    work = copy.deepcopy(model)

    def any_low():
        return any(p.dtype.itemsize < 8 for layer in work.layers for p in layer.parameters())

    if any_low() and hasattr(work, "astype"):
        work.astype(np.float64)
    if any_low():
        warnings.warn(
            "The model's parameters are float32 and could not be converted to float64: "
            "finite differences in float32 give false failures (pytorch#5351).",
            PrecisionWarning,
            stacklevel=3,
        )
    if hasattr(work, "eval"):
        work.eval()
    else:
        for layer in work.layers:
            layer.training = False
    return work


def _layer_inputs(work, X64):
    """The input each layer receives from ``X64``, and the model's prediction."""
    h = X64
    if hasattr(work, "_as_input"):
        h = np.array(work._as_input(X64), dtype=np.float64, copy=True)
    inputs = []
    for layer in work.layers:
        inputs.append(h.copy())
        h = np.array(layer.forward(h.copy()), dtype=np.float64, copy=True)
    return inputs, h


def _as_target(y, pred) -> np.ndarray:
    """A copy of ``y``, float64 where it is floating; 1-D labels as a column, as fit takes them."""
    target = np.array(y, copy=True)
    if target.dtype.kind == "f":
        target = target.astype(np.float64)
    if target.ndim == 1 and pred.ndim == 2 and pred.shape[1] == 1 and len(target) == len(pred):
        target = target.reshape(-1, 1).astype(np.float64)
    return target


def _model_verdict(checks: list[LayerCheck], end: GradcheckReport) -> ModelCheckReport:
    """The first local check that fails names the layer; else the end-to-end check decides."""
    bad = next((c for c in checks if not c.passed), None)
    index = name = part = diagnosis = kind = None
    if bad is not None:
        part, report = bad.first_failure()
        index, name, diagnosis, kind = bad.index, bad.name, report.diagnosis, report.kind
    elif not end.passed:
        diagnosis, kind = end.diagnosis, end.kind
    return ModelCheckReport(
        passed=bad is None and end.passed, layer_index=index, layer=name, part=part,
        diagnosis=diagnosis, kind=kind, layers=checks, end_to_end=end,
    )


def _layer_name(layer) -> str:
    """The layer's repr, and its class where the repr hides it (a subclass of Dense)."""
    text = repr(layer)
    cls = type(layer).__name__
    return text if text.startswith(cls) else f"{text}, a {cls}"


def _check_layer(i, layer, h_in, settings: _Settings) -> LayerCheck:
    name = _layer_name(layer)
    out = np.asarray(layer.forward(h_in.copy()), dtype=np.float64)
    v = settings.rng.standard_normal(out.shape)
    dh = np.array(layer.backward(v.copy()), dtype=np.float64, copy=True)
    params = list(layer.parameters())
    grads = [np.array(g, dtype=np.float64, copy=True) for g in layer.gradients()]
    h_work = h_in.copy()

    def evaluate():
        return np.array([np.sum(v * np.asarray(layer.forward(h_work), dtype=np.float64))])

    is_activation = not params and isinstance(getattr(layer, "name", None), str) and hasattr(
        layer, "derivative")
    input_hints = Hints(m=settings.m, wrt="z") if not is_activation else Hints(
        m=settings.m, activation=layer, z=h_in, wrt="z")
    targets = [("dE/dinput", h_work, h_in, dh, input_hints)]
    for pname, p, g in zip(_param_names(layer, params), params, grads, strict=True):
        targets.append((pname, p, p.copy(), g, Hints(m=settings.m)))
    parts: dict[str, GradcheckReport] = {}
    for part, arr, base, g, hints in targets:
        label = f"layer {i} ({name}) {part}"
        if g.shape != arr.shape:
            report = _check_wrong_shape(evaluate, arr, base, g, hints, f"{name} {part}", settings)
            report.label = label
        else:
            report = settings.check(evaluate, arr, base, g, hints, f"{name} {part}", label)
        parts[part] = report
    return LayerCheck(index=i, name=name, parts=parts)


def _check_wrong_shape(evaluate, arr, base, g, hints: Hints, name: str, settings: _Settings):
    """A claimed gradient whose shape is not the array's: every element, and the shape
    diagnosis."""
    t_full, noise = _numeric_gradient(evaluate, arr, base, range(arr.size), settings.eps, name)
    return _compare([None], [t_full.T.reshape((1, *arr.shape))],
                    [noise.T.reshape((1, *arr.shape))], {0: g}, settings.rtol, settings.atol,
                    hints, [base])


def _check_loss(loss_obj, pred, target, settings: _Settings) -> LayerCheck:
    name = f"the loss {type(loss_obj).__name__}"
    p_work = pred.copy()
    loss_obj.forward(p_work.copy(), target)
    g = np.array(loss_obj.backward(), dtype=np.float64, copy=True)

    from chainrule.losses import Loss

    checked_target = loss_obj._check(pred.copy(), target)[1] if isinstance(loss_obj, Loss) else None

    def evaluate():
        try:
            return np.array([float(loss_obj.forward(p_work, target))])
        except ValueError:
            if checked_target is None:
                raise
            # A nudge of one entry can leave the loss's domain (CrossEntropy's rows must sum to
            # 1): the input was validated at the real point above, so evaluate the formula
            # itself there, the function whose gradient backward returns.
            return np.array([float(loss_obj._forward(p_work, checked_target))])

    y_hint = target if target.shape == pred.shape else None
    report = settings.check(evaluate, p_work, pred, g, Hints(m=settings.m, y=y_hint, wrt="yhat"),
                            name, f"{name} backward")
    return LayerCheck(index=None, name=name, parts={"backward": report})


def _check_end_to_end(work, loss_obj, X64, target, settings: _Settings) -> GradcheckReport:
    pred = work.forward(X64)
    loss_obj.forward(pred, target)
    work.backward(loss_obj.backward())
    arrays, claimed, labels = [], [], []
    for i, layer in enumerate(work.layers):
        params = list(layer.parameters())
        for pname, p, g in zip(_param_names(layer, params), params, layer.gradients(), strict=True):
            arrays.append(p)
            claimed.append(np.array(g, dtype=np.float64, copy=True))
            labels.append(f"layer {i} {pname}")

    def evaluate():
        return np.array([float(loss_obj.forward(work.forward(X64), target))])

    reports = [settings.check(evaluate, arr, arr.copy(), g, Hints(m=settings.m), label,
                              f"end to end: {label}")
               for arr, g, label in zip(arrays, claimed, labels, strict=True)]
    failed = [r for r in reports if not r.passed]
    if failed:
        return failed[0]
    return GradcheckReport(
        passed=True,
        max_abs_error=max((r.max_abs_error for r in reports), default=0.0),
        max_rel_error=max((r.max_rel_error for r in reports), default=0.0),
        worst_input=None, worst_index=(), claimed_value=np.nan, numeric_value=np.nan,
        diagnosis=None, kind=None, factor=None,
        n_checked=sum(r.n_checked for r in reports), n_failed=0,
        rtol=settings.rtol, atol=settings.atol, label="end to end",
    )
