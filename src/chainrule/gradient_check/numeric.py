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

from chainrule._checks import as_float_array, check_finite
from chainrule.gradient_check.diagnosis import Diagnosis, diagnose_stack, shape_diagnosis

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
            f"f is not finite near {where} (value {x0!r}) even with a step of {h * 4:.1e}: the "
            "point is at the edge of f's domain (a log of 0, a division by 0). Check at a point "
            "inside the domain, e.g. predictions in (0.01, 0.99) for a cross-entropy."
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


def _check_tolerances(rtol, atol, eps, projections):
    for name, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"{name} must be a number >= 0; got {value!r}.")
    if eps is not None and (
        isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < 1
    ):
        raise ValueError(f"eps must be None (automatic) or a step in (0, 1); got {eps!r}.")
    if isinstance(projections, bool) or not isinstance(projections, int) or projections < 1:
        raise ValueError(f"projections must be a positive integer; got {projections!r}.")


def _as_tuple(result, n: int, what: str) -> list:
    if n == 1:
        if isinstance(result, tuple) and len(result) == 1:
            result = result[0]
        return [result]
    if not isinstance(result, list | tuple) or len(result) != n:
        got = f"a {type(result).__name__}" + (
            f" of length {len(result)}" if isinstance(result, list | tuple) else "")
        raise ValueError(
            f"{what} must return one gradient per input ({n} arrays in a tuple); got {got}."
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
    activation: str | None = None,
    z=None,
    wrt: str | None = None,
    x=None,
    y=None,
    m: int | None = None,
    terms=None,
    label: str = "gradcheck",
) -> GradcheckReport:
    r"""Check the claimed gradient ``grad_f`` of ``f`` at ``inputs``; say what is wrong if it is.

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
    activation, z, wrt, x, y, m, terms:
        Optional context for the diagnosis (see :mod:`chainrule.gradient_check.diagnosis`):
        the activation and its input ``z`` (then ``wrt="z"`` or ``"yhat"`` says which
        gradient ``grad_f`` claims), the input ``x`` of a linear map ``z = x @ w``, the
        targets ``y``, the batch size ``m`` and the true gradient split into ``terms``. With
        several inputs, the array hints apply to the inputs whose shape they fit.

    Returns
    -------
    GradcheckReport

    >>> import numpy as np
    >>> w = np.array([0.5, -1.0])
    >>> report = gradcheck(lambda w: np.sum(w ** 2), lambda w: -2 * w, w)
    >>> report.passed, report.kind
    (False, 'sign_flipped')
    """
    if not callable(f) or not callable(grad_f):
        raise ValueError(
            f"gradcheck needs two callables, f and grad_f; got {type(f).__name__} and "
            f"{type(grad_f).__name__}."
        )
    if not inputs:
        raise ValueError("gradcheck needs at least one input array after f and grad_f.")
    _check_tolerances(rtol, atol, eps, projections)
    originals = [as_float_array(v, f"input {k}") for k, v in enumerate(inputs)]
    low = [k for k, a in enumerate(originals) if a.dtype.itemsize < 8]
    if low:
        warnings.warn(
            f"input {low[0]} is {originals[low[0]].dtype}: finite differences in float32 give "
            "false failures (pytorch#5351). gradcheck evaluates f on float64 copies, but if f "
            "computes in float32 inside, the check can still fail falsely: check in float64.",
            PrecisionWarning,
            stacklevel=2,
        )
    pristine = [np.array(a, dtype=np.float64, copy=True) for a in originals]
    for k, a in enumerate(pristine):
        check_finite(a, f"input {k}")

    def fresh():
        return [a.copy() for a in pristine]

    out0 = np.asarray(f(*fresh()), dtype=np.float64)
    if not np.all(np.isfinite(out0)):
        raise ValueError(f"f is not finite at the given inputs (got {out0.ravel()[:4]}); "
                         "check at a point inside f's domain.")
    scalar = out0.ndim == 0
    rng = np.random.default_rng(seed)
    out_shape = out0.shape
    if scalar:
        V = np.ones((1,))
        n_proj = 1
    else:
        n_proj = projections
        V = rng.standard_normal((n_proj, *out_shape))
        V /= np.sqrt(np.sum(V.reshape(n_proj, -1) ** 2, axis=1)).reshape(
            (n_proj,) + (1,) * len(out_shape))

    # The claimed gradient, as a stack (P, *input_shape) per input.
    claimed: list[np.ndarray | None] = []
    shape_problems: dict[int, np.ndarray] = {}
    if not vjp:
        raw = _as_tuple(grad_f(*fresh()), len(pristine), "grad_f")
        for k, (g, a) in enumerate(zip(raw, pristine, strict=True)):
            g = np.asarray(as_float_array(g, f"grad_f's gradient {k}"), dtype=np.float64)
            want = out_shape + a.shape
            if g.shape != want:
                if not scalar:
                    raise ValueError(
                        f"grad_f returned an array of shape {g.shape} for input {k}; for f with "
                        f"output shape {out_shape} it must be the Jacobian of shape {want}, or "
                        "pass vjp=True and return v·J from grad_f(v, *inputs)."
                    )
                shape_problems[k] = g
                claimed.append(None)
                continue
            if scalar:
                claimed.append(g[np.newaxis])
            else:
                axes = list(range(len(out_shape)))
                claimed.append(np.tensordot(V, g, axes=([a_ + 1 for a_ in axes], axes)))
    else:
        per_projection = []
        for j in range(n_proj):
            v = np.array(1.0) if scalar else V[j].copy()
            raw = _as_tuple(grad_f(v, *fresh()), len(pristine), "grad_f")
            per_projection.append([np.asarray(g, dtype=np.float64) for g in raw])
        for k, a in enumerate(pristine):
            stack = [per_projection[j][k] for j in range(n_proj)]
            if any(g.shape != a.shape for g in stack):
                raise ValueError(
                    f"grad_f(v, *inputs) returned shape {stack[0].shape} for input {k}; a "
                    f"vector-Jacobian product has the input's shape {a.shape}."
                )
            claimed.append(np.stack(stack))

    # The numeric gradient.
    work = fresh()

    def evaluate():
        out = np.asarray(f(*work), dtype=np.float64)
        if scalar:
            return out.reshape(1)
        return V.reshape(n_proj, -1) @ out.reshape(-1)

    numeric, noise = [], []
    for k, (arr, base) in enumerate(zip(work, pristine, strict=True)):
        values, noises = _numeric_gradient(
            evaluate, arr, base, range(arr.size), eps, f"input {k}"
        )
        numeric.append(values.T.reshape((n_proj, *arr.shape)))
        noise.append(noises.T.reshape((n_proj, *arr.shape)))
        if not np.array_equal(arr, base):
            raise ValueError(
                f"f changed input {k} in place while being evaluated; gradcheck needs an f "
                "that leaves its inputs alone (copy inside f before modifying)."
            )

    hints = dict(activation=activation, z=z, wrt=wrt, x=x, y=y, m=m, terms=terms)
    report = _compare(claimed, numeric, noise, shape_problems, rtol, atol, hints, pristine)
    report.projections = 0 if scalar else n_proj
    report.label = label
    report.n_inputs = len(pristine)
    return report


def _hints_for(shape: tuple, hints: dict, n_inputs: int) -> dict:
    """The hints that apply to an input of ``shape`` (all of them when there is one input)."""
    if n_inputs == 1:
        return dict(hints)

    def fits(value):
        if value is None:
            return False
        try:
            np.broadcast_shapes(np.shape(value), shape)
        except ValueError:
            return False
        return True

    out = {"m": hints["m"], "wrt": hints["wrt"]}
    if hints["x"] is not None:
        if len(shape) >= 1 and np.shape(hints["x"])[-1:] == shape[:1]:
            out.update(activation=hints["activation"], z=hints["z"], x=hints["x"])
    elif fits(hints["z"]):
        out.update(activation=hints["activation"], z=hints["z"])
    if fits(hints["y"]):
        out["y"] = hints["y"]
    terms = hints["terms"]
    if terms is not None:
        values = terms.values() if hasattr(terms, "values") else terms
        if all(fits(v) for v in values):
            out["terms"] = terms
    return out


def _compare(claimed, numeric, noise, shape_problems, rtol, atol, hints, pristine):
    n_checked = sum(a.size for a in pristine)
    n_failed = 0
    worst = (-1.0, None, (), np.nan, np.nan)  # (violation ratio, input, index, G, T)
    max_abs, max_rel = 0.0, 0.0
    failing: list[tuple[float, int]] = []
    for k, (g, t, nz) in enumerate(zip(claimed, numeric, noise, strict=True)):
        if g is None:
            n_failed += t[0].size
            failing.append((np.inf, k))
            max_abs = max_rel = np.inf
            continue
        with np.errstate(invalid="ignore"):
            err = np.abs(g - t)
        err = np.where(np.isfinite(err), err, np.inf)
        bound = atol + rtol * np.abs(t) + nz
        bad = err > bound
        n_failed += int(np.count_nonzero(bad.any(axis=0)))
        max_abs = max(max_abs, float(np.max(err)))
        scale = np.maximum(np.abs(t), atol) if atol > 0 else np.maximum(np.abs(t), 1e-300)
        max_rel = max(max_rel, float(np.max(err / scale)))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(bound > 0, err / bound, np.where(err > 0, np.inf, 0.0))
        pos = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        if ratio[pos] > worst[0]:
            worst = (float(ratio[pos]), k, tuple(int(i) for i in pos[1:]), float(g[pos]),
                     float(t[pos]))
        if bad.any():
            failing.append((float(ratio[pos]), k))
    passed = not failing
    diagnosis: Diagnosis | None = None
    if failing:
        failing.sort(reverse=True)
        found = {}
        for _, k in failing:
            if k in shape_problems:
                found[k] = shape_diagnosis(shape_problems[k], numeric[k][0], rtol=rtol, atol=atol)
            else:
                found[k] = diagnose_stack(
                    claimed[k], numeric[k], rtol=rtol, atol=atol, noise=noise[k],
                    **_hints_for(pristine[k].shape, hints, len(pristine)),
                )
        first = next((k for _, k in failing if found[k] is not None), None)
        if first is not None:
            diagnosis = found[first]
            if len(pristine) > 1:
                same = [k for _, k in failing if found[k] is not None
                        and found[k].kind == diagnosis.kind]
                who = "inputs " + " and ".join(map(str, sorted(same))) if len(same) > 1 \
                    else f"input {first}"
                diagnosis = Diagnosis(diagnosis.kind, f"{who}: {diagnosis.sentence}",
                                      diagnosis.factor, diagnosis.indices)
    _, worst_input, worst_index, g_val, t_val = worst
    if worst_input is None and failing:
        worst_input = failing[0][1]
    return GradcheckReport(
        passed=passed,
        max_abs_error=max_abs,
        max_rel_error=max_rel,
        worst_input=worst_input,
        worst_index=worst_index,
        claimed_value=g_val,
        numeric_value=t_val,
        diagnosis=None if diagnosis is None else diagnosis.sentence,
        kind=None if diagnosis is None else diagnosis.kind,
        factor=None if diagnosis is None else diagnosis.factor,
        n_checked=n_checked,
        n_failed=n_failed,
        rtol=rtol,
        atol=atol,
        claimed=[g if g is not None else shape_problems[k] for k, g in enumerate(claimed)],
        numeric=numeric,
    )


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


def _compare_subset(claimed_full, numeric, noise, indices, rtol, atol, hints, label, shape):
    """Compare at the sampled flat ``indices`` only; array hints are sampled alike."""
    indices = np.asarray(indices)
    full = len(indices) == int(np.prod(shape))
    g = np.asarray(claimed_full, dtype=np.float64).reshape(-1)[indices]
    sub_shape = shape if full else (len(indices),)
    g = g.reshape((1, *sub_shape))
    t = numeric.T.reshape((1, *sub_shape))
    nz = noise.T.reshape((1, *sub_shape))
    if not full:
        hints = dict(hints, x=None, terms=None)
        for key in ("z", "y"):
            value = hints[key]
            if value is not None and np.shape(value) == tuple(shape):
                hints[key] = np.asarray(value).reshape(-1)[indices]
            elif value is not None:
                hints[key] = None
        if hints["z"] is None:
            hints["activation"] = None
    report = _compare([g], [t], [nz], {}, rtol, atol, hints, [np.empty(sub_shape)])
    report.label = label
    if not full and report.worst_index:
        flat = int(indices[report.worst_index[0]])
        report.worst_index = tuple(int(i) for i in np.unravel_index(flat, shape))
    return report


def _no_hints(**kw):
    base = dict(activation=None, z=None, wrt=None, x=None, y=None, m=None, terms=None)
    base.update(kw)
    return base


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
    _check_tolerances(rtol, atol, eps, 1)
    if max_elements is not None and (
        isinstance(max_elements, bool) or not isinstance(max_elements, int) or max_elements < 1
    ):
        raise ValueError(f"max_elements must be a positive integer or None; got {max_elements!r}.")
    layers = getattr(model, "layers", None)
    if not isinstance(layers, list | tuple) or not layers:
        raise ValueError(
            f"check_model needs a model with a list of layers (a chainrule.nn.Sequential); got "
            f"{type(model).__name__}."
        )
    if isinstance(loss, str):
        from chainrule import losses as _losses

        loss_obj = _losses.get(loss)
    elif hasattr(loss, "forward") and hasattr(loss, "backward"):
        loss_obj = copy.deepcopy(loss)
    else:
        raise ValueError(
            f"loss must be a loss name (e.g. 'bce', 'mse') or an object with forward(pred, "
            f"target) and backward(); got {type(loss).__name__}."
        )
    X64 = np.array(as_float_array(X, "X"), dtype=np.float64, copy=True)
    check_finite(X64, "X")
    target = np.array(y, copy=True)
    if target.dtype.kind == "f":
        target = target.astype(np.float64)
    m = int(X64.shape[0]) if X64.ndim >= 1 else None

    work = copy.deepcopy(model)
    params_low = any(p.dtype.itemsize < 8 for layer in work.layers for p in layer.parameters())
    if params_low:
        if hasattr(work, "astype"):
            work.astype(np.float64)
        if any(p.dtype.itemsize < 8 for layer in work.layers for p in layer.parameters()):
            warnings.warn(
                "the model's parameters are float32 and could not be converted to float64: "
                "finite differences in float32 give false failures (pytorch#5351).",
                PrecisionWarning,
                stacklevel=2,
            )
    if hasattr(work, "eval"):
        work.eval()
    else:
        for layer in work.layers:
            layer.training = False
    rng = np.random.default_rng(seed)

    # Inputs of each layer.
    h = X64
    if hasattr(work, "_as_input"):
        h = np.array(work._as_input(X64), dtype=np.float64, copy=True)
    inputs = []
    for layer in work.layers:
        inputs.append(h.copy())
        h = np.array(layer.forward(h.copy()), dtype=np.float64, copy=True)
    pred = h

    checks: list[LayerCheck] = []
    for i, layer in enumerate(work.layers):
        checks.append(_check_layer(i, layer, inputs[i], rng, m, rtol, atol, eps, max_elements))
    checks.append(_check_loss(loss_obj, pred, target, m, rtol, atol, eps, max_elements, rng))

    end = _check_end_to_end(work, loss_obj, X64, target, m, rtol, atol, eps, max_elements, rng)
    bad = next((c for c in checks if not c.passed), None)
    passed = bad is None and end.passed
    index = name = part = diagnosis = kind = None
    if bad is not None:
        part, report = bad.first_failure()
        index, name, diagnosis, kind = bad.index, bad.name, report.diagnosis, report.kind
    elif not end.passed:
        diagnosis, kind = end.diagnosis, end.kind
    return ModelCheckReport(passed, index, name, part, diagnosis, kind, checks, end)


def _layer_name(layer) -> str:
    """The layer's repr, and its class where the repr hides it (a subclass of Dense)."""
    text = repr(layer)
    cls = type(layer).__name__
    return text if text.startswith(cls) else f"{text}, a {cls}"


def _check_layer(i, layer, h_in, rng, m, rtol, atol, eps, max_elements) -> LayerCheck:
    name = _layer_name(layer)
    out = np.asarray(layer.forward(h_in.copy()), dtype=np.float64)
    v = rng.standard_normal(out.shape)
    dh = np.array(layer.backward(v.copy()), dtype=np.float64, copy=True)
    params = list(layer.parameters())
    grads = [np.array(g, dtype=np.float64, copy=True) for g in layer.gradients()]
    pristine_params = [p.copy() for p in params]
    h_work = h_in.copy()

    def evaluate():
        return np.array([np.sum(v * np.asarray(layer.forward(h_work), dtype=np.float64))])

    is_activation = not params and isinstance(getattr(layer, "name", None), str) and hasattr(
        layer, "derivative")
    parts: dict[str, GradcheckReport] = {}
    targets = [("dE/dinput", h_work, h_in, dh, _no_hints(
        m=m, activation=layer if is_activation else None,
        z=h_in if is_activation else None, wrt="z"))]
    for pname, p, base, g in zip(_param_names(layer, params), params, pristine_params, grads,
                                 strict=True):
        targets.append((pname, p, base, g, _no_hints(m=m)))
    for part, arr, base, g, hints in targets:
        if g.shape != arr.shape:
            t_full, noise = _numeric_gradient(evaluate, arr, base, range(arr.size), eps,
                                              f"{name} {part}")
            report = _compare([None], [t_full.T.reshape((1, *arr.shape))],
                              [noise.T.reshape((1, *arr.shape))], {0: g}, rtol, atol, hints,
                              [base])
            report.label = f"layer {i} ({name}) {part}"
        else:
            idx = _sample(arr.size, max_elements, rng)
            t, noise = _numeric_gradient(evaluate, arr, base, idx, eps, f"{name} {part}")
            report = _compare_subset(g, t, noise, idx, rtol, atol, hints,
                                     f"layer {i} ({name}) {part}", arr.shape)
        parts[part] = report
    return LayerCheck(i, name, parts)


def _check_loss(loss_obj, pred, target, m, rtol, atol, eps, max_elements, rng) -> LayerCheck:
    name = f"the loss {type(loss_obj).__name__}"
    p_work = pred.copy()
    loss_obj.forward(p_work.copy(), target)
    g = np.array(loss_obj.backward(), dtype=np.float64, copy=True)

    def evaluate():
        return np.array([float(loss_obj.forward(p_work, target))])

    idx = _sample(pred.size, max_elements, rng)
    t, noise = _numeric_gradient(evaluate, p_work, pred, idx, eps, name)
    y_hint = target if target.shape == pred.shape else None
    report = _compare_subset(g, t, noise, idx, rtol, atol, _no_hints(m=m, y=y_hint, wrt="yhat"),
                             f"{name} backward", pred.shape)
    return LayerCheck(None, name, {"backward": report})


def _check_end_to_end(work, loss_obj, X64, target, m, rtol, atol, eps, max_elements, rng):
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

    reports = []
    for arr, g, label in zip(arrays, claimed, labels, strict=True):
        base = arr.copy()
        idx = _sample(arr.size, max_elements, rng)
        t, noise = _numeric_gradient(evaluate, arr, base, idx, eps, label)
        reports.append(_compare_subset(g, t, noise, idx, rtol, atol, _no_hints(m=m),
                                       f"end to end: {label}", arr.shape))
    failed = [r for r in reports if not r.passed]
    if failed:
        return failed[0]
    total = sum(r.n_checked for r in reports)
    worst_abs = max((r.max_abs_error for r in reports), default=0.0)
    worst_rel = max((r.max_rel_error for r in reports), default=0.0)
    return GradcheckReport(True, worst_abs, worst_rel, None, (), np.nan, np.nan, None, None,
                           None, total, 0, rtol, atol, label="end to end")
