r"""The verdict on each input's gradient, and on the backward pass as a whole.

Per input, in order: ``None`` where a gradient is needed; a gradient of the wrong shape (the
layer's known mistakes, then :func:`.relations.shape_relation`); the values (where they differ,
then the relation: :func:`.relations.relation`, the layer's known mistakes, a forgotten use of
the input); a right gradient in the wrong dtype. Across inputs: two gradients swapped. For the
whole pass: a backward that changed its inputs or its cache in place, and one that gave two
different answers to the same cotangent.
"""

from __future__ import annotations

import numpy as np

from chainrule.gradient_check.backward.differences import Differences
from chainrule.gradient_check.backward.paths import path_finding
from chainrule.gradient_check.backward.relations import (
    Finding,
    Tolerance,
    locate,
    relation,
    shape_relation,
)
from chainrule.gradient_check.backward.report import BackwardCheck, InputCheck

__all__ = ["judge_inputs"]


def _tolerance(tol: Tolerance, run, d: Differences) -> Tolerance:
    """float32 rounding allowed for a forward that computes in float32."""
    if run.computed.itemsize >= 8:
        return tol
    eps = float(np.finfo(run.computed).eps)
    known = d.values[np.isfinite(d.values)]
    top = float(np.max(np.abs(known))) if known.size else 1.0
    return Tolerance(max(tol.rtol, np.sqrt(eps)), max(tol.atol, 1e-4 * top))


def _stack(run, k: int) -> list:
    return [p.grads[k] for p in run.pullbacks]


def _layer_finding(spec, run, k: int, grads: list, tol: Tolerance) -> Finding | None:
    """The layer's known mistake whose gradient of input ``k`` is the claimed one."""
    if spec is None or len(spec.shapes) != len(run.work):
        return None
    for candidate in spec.candidates:
        matches = True
        for p, g in enumerate(grads):
            wrong = candidate.gradients(run.work, run.douts[p][0]).get(k)
            if wrong is None or g is None or np.shape(g) != wrong.shape:
                matches = False
                break
            g = np.asarray(g, dtype=np.float64)
            if not tol.close(g, wrong, np.zeros_like(wrong)):
                matches = False
                break
        if matches:
            return Finding(candidate.kind, f"{candidate.sentence} (right: {candidate.expected})",
                           expected=candidate.expected)
    return None


def _errors(G, T, noise, tol: Tolerance):
    """The differing elements, the largest absolute and relative error, and the largest ratio
    of an error to its allowed bound."""
    known = np.isfinite(T)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(known, np.abs(G - T), 0.0)
    err = np.where(np.isfinite(err), err, np.inf)
    bound = np.where(known, tol.bound(np.nan_to_num(T), np.nan_to_num(noise)), np.inf)
    bad = err > bound
    scale = np.maximum(np.abs(np.nan_to_num(T)), max(tol.atol, 1e-300))
    max_abs = float(np.max(err)) if err.size else 0.0
    max_rel = float(np.max(err / scale)) if err.size else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.max(np.where(bound > 0, err / bound, 0.0))) if err.size else 0.0
    return bad, max_abs, max_rel, ratio


def _along_bad(G, d: Differences, tol: Tolerance) -> bool:
    if d.directions is None:
        return False
    claimed = G.reshape(len(G), -1) @ d.directions.reshape(len(d.directions), -1).T
    return bool(np.any(np.abs(claimed - d.along) > tol.bound(d.along, d.along_noise)))


def _result(k, name, correct, kind, sentence, **fields) -> InputCheck:
    label = f"input {k} ({name})" if name else f"input {k}"
    return InputCheck(correct=correct, kind=kind, where=label, sentence=f"{label}: {sentence}",
                      expected=fields.pop("expected", None), index=k, name=name, **fields)


def _judge_missing(k, name, d: Differences, tol: Tolerance) -> InputCheck:
    T = d.values
    known = np.isfinite(T)
    if not np.any(np.abs(T[known]) > tol.bound(T[known], d.noise[known])):
        return _result(k, name, True, None, "no gradient (None), and the output does not "
                       "depend on it", n_checked=int(np.count_nonzero(known[0])))
    return _result(k, name, False, "gradient_none", "the backward returned None, but the output "
                   "depends on this input: return its gradient (or zeros where it truly has "
                   "none)", location="every element", n_checked=int(np.count_nonzero(known[0])),
                   n_failed=int(np.count_nonzero(known[0])))


def _judge_shape(k, name, run, spec, d: Differences, tol: Tolerance) -> InputCheck:
    grads = _stack(run, k)
    found = _layer_finding(spec, run, k, grads, tol)
    if found is not None:
        found = Finding(found.kind, f"it has shape {np.shape(grads[0])}, not "
                        f"{run.work[k].shape}: {found.sentence}", expected=found.expected)
    else:
        found = shape_relation(np.asarray(grads[0], dtype=np.float64), d.values[0], d.noise[0],
                               tol, name or f"input {k}")
    size = int(np.prod(run.work[k].shape))
    claimed = None
    if len({np.shape(g) for g in grads}) == 1:
        claimed = np.stack([np.asarray(g, dtype=np.float64) for g in grads])
    location = ("the broadcast axis (its shape)" if found.kind == "bias_not_summed"
                else "the whole gradient (its shape)")
    return _result(k, name, False, found.kind, found.sentence, location=location,
                   n_checked=size, n_failed=size, expected=found.expected, claimed=claimed)


def _method(d: Differences) -> str:
    if d.complete:
        return "every element"
    n = int(np.count_nonzero(d.known))
    return f"{len(d.directions)} random directions and {n} sampled elements"


def judge_input(k, name, run, d: Differences, tol: Tolerance, spec, rng) -> InputCheck:
    """The verdict on the gradient of input ``k``."""
    x = run.native[k]
    tol = _tolerance(tol, run, d)
    raw = run.native_pullback.grads[k]
    grads = _stack(run, k)
    if raw is None or any(g is None for g in grads):
        return _judge_missing(k, name, d, tol)
    if any(np.shape(g) != x.shape for g in [raw, *grads]):
        return _judge_shape(k, name, run, spec, d, tol)
    G = np.stack([np.asarray(g, dtype=np.float64) for g in grads])
    bad, max_abs, max_rel, ratio = _errors(G, d.values, d.noise, tol)
    fields = dict(max_abs_error=max_abs, max_rel_error=max_rel, method=_method(d),
                  n_checked=int(np.count_nonzero(d.known)), claimed=G, numeric=d.values)
    where = bad.any(axis=0)
    if np.any(where) or _along_bad(G, d, tol):
        found = _value_finding(k, name, run, d, G, grads, tol, spec, rng)
        location = (locate(where, d.known) if np.any(where) else
                    "some elements, seen along random directions (pass max_elements= above "
                    f"{x.size} to locate them)")
        return _result(k, name, False, None if found is None else found.kind,
                       _failed_sentence(found, location, (max_abs, ratio), run, k, spec),
                       location=location,
                       factor=None if found is None else found.factor,
                       expected=None if found is None else found.expected,
                       n_failed=int(np.count_nonzero(where)), **fields)
    dtype = np.asarray(raw).dtype
    if dtype != x.dtype:
        return _result(k, name, False, "wrong_dtype", f"the values are right but the gradient "
                       f"is {dtype} for a {x.dtype} input: return it in the input's dtype "
                       f"(.astype(x.dtype)); a float64 constant can promote a float32 product",
                       location="the whole gradient (its dtype)", **fields)
    return _result(k, name, True, None, _passed_sentence(run, d, max_abs, max_rel), **fields)


def _value_finding(k, name, run, d, G, grads, tol, spec, rng) -> Finding | None:
    """The relation, the layer's known mistake or the forgotten use that explains the values;
    a forgotten use is preferred to a bare factor (x * x with one use forgotten is half)."""
    found = relation(G, d.values, d.noise, tol, run.batch_size)
    if found is not None and found.kind != "scaled":
        return found
    found = _layer_finding(spec, run, k, grads, tol) or found
    if found is None or found.kind == "scaled":
        found = path_finding(run, k, G, name or f"input {k}", rng) or found
    return found


def _failed_sentence(found: Finding | None, location: str, errors: tuple, run, k: int,
                     spec) -> str:
    max_abs, ratio = errors
    if found is None:
        what = (f"no known mistake explains the difference; compare report[{k}].claimed with "
                f"report[{k}].numeric")
        if spec is None:
            what += " (layer= adds the known mistakes of a dense layer, softmax or an activation)"
    else:
        what = found.sentence
    rounding = ""
    if run.computed.itemsize < 8:
        name = run.computed.name
        rounding = (f" (far beyond {name} rounding: a mistake, not precision)" if ratio > 10
                    else f" ({ratio:.2g} times the {name} rounding estimated: most likely a "
                    f"mistake; a forward that runs in float64 would settle it)")
    return f"differs at {location} (largest difference {max_abs:.3g}){rounding}; {what}"


def _passed_sentence(run, d: Differences, max_abs: float, max_rel: float) -> str:
    if d.values[0].size == 0:
        return "passed (an empty input: no element to check)"
    text = f"passed ({_method(d)}; largest difference {max_abs:.2g}, relative {max_rel:.2g})"
    if run.computed.itemsize < 8:
        noise = float(np.nanmax(d.noise)) if d.noise.size else 0.0
        text += (f"; the forward computes in {run.computed.name}, so differences up to about "
                 f"{max(noise, max_abs):.1g} are {run.computed.name} rounding, not a mistake")
    return text


def _swapped(checks: list[InputCheck], numeric: list[Differences], tols: list) -> None:
    failing = [c for c in checks if not c.correct and c.claimed is not None]
    for a in failing:
        for b in failing:
            da, db = numeric[a.index], numeric[b.index]
            if (a.index >= b.index or a.claimed.shape != db.values.shape
                    or b.claimed.shape != da.values.shape):
                continue
            if (tols[a.index].close(a.claimed, db.values, db.noise)
                    and tols[b.index].close(b.claimed, da.values, da.noise)):
                for c, other in ((a, b), (b, a)):
                    c.kind = "gradients_swapped"
                    c.sentence = (f"{c.where}: differs at every element; it is the gradient "
                                  f"of {other.where}: the two gradients are returned in "
                                  "swapped order")
                    c.location = "every element"


def _whole(run, tol: Tolerance, labels: list[str]) -> tuple[str, str] | None:
    changed = run.native_pullback.changed or next((p.changed for p in run.pullbacks
                                                   if p.changed), [])
    changed = [labels[int(c.split()[1])] if c.startswith("input ") else c for c in changed]
    if changed:
        return ("inputs_modified", f"the backward changed {', '.join(changed)} in place (an "
                "x += ..., x *= ... or out= on a saved array): a second backward, or anything "
                "else holding it, sees the changed values; copy before modifying")
    for k, (a, b) in enumerate(zip(run.pullbacks[0].grads, run.repeat.grads, strict=True)):
        if a is None or b is None or np.shape(a) != np.shape(b):
            continue
        a64, b64 = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if np.array_equal(a64, b64, equal_nan=True):
            continue
        if not tol.close(a64, b64, np.zeros_like(a64)):
            return ("nondeterministic", f"the backward gave two different gradients of "
                    f"{labels[k]} for the same dout (largest difference "
                    f"{float(np.max(np.abs(a64 - b64))):.3g}): it draws random numbers or "
                    "reads state that changes between calls")
    return None


def judge_inputs(run, numeric, names, tol: Tolerance, spec, rng) -> BackwardCheck:
    """One :class:`BackwardCheck` from the measurements of a :class:`~.check.Run`."""
    checks = [judge_input(k, names[k], run, numeric[k], tol, spec, rng)
              for k in range(len(run.work))]
    _swapped(checks, numeric, [_tolerance(tol, run, d) for d in numeric])
    whole = _whole(run, tol, [c.where for c in checks])
    first = next((c for c in checks if not c.correct), None)
    if whole is not None:
        kind, sentence, where = whole[0], whole[1], None
    elif first is not None:
        kind, sentence, where = first.kind, first.sentence, first.where
    else:
        kind, sentence, where = None, "every input's gradient agrees with central differences", None
    notes = _notes(run)
    return BackwardCheck(correct=whole is None and first is None, kind=kind, where=where,
                         sentence=sentence, expected=None if first is None else first.expected,
                         subject=run.subject.label, framework=run.subject.framework,
                         computed_in=run.computed.name, cotangents=len(run.douts), inputs=checks,
                         notes=notes)


def _notes(run) -> list[str]:
    notes = []
    low = sorted({x.dtype.name for x in run.native if x.dtype.itemsize < 8})
    if low and run.computed.itemsize >= 8:
        notes.append(f"the inputs are {', '.join(low)}; the forward also runs in float64, so the "
                     "values were checked through float64 copies, free of float32 rounding")
    if run.computed.itemsize < 8:
        notes.append(f"the forward computes in {run.computed.name} only: its finite differences "
                     "were taken with a larger step and their rounding allowed for")
    return notes
