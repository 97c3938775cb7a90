r"""Naming a forgotten use of an input: the claimed gradient equals the gradient through one
path, or through all paths but one (:mod:`.uses` moves one use at a time).

Along random directions :math:`u`, the derivative of the projected forward through use
:math:`n` alone, :math:`D_n(u)`, is compared with :math:`\langle G, u\rangle`. The true
gradient is :math:`\sum_n D_n`; a backward that forgot use :math:`n` returns
:math:`\sum_{j \ne n} D_j`, one that kept only use :math:`n` returns :math:`D_n`.
"""

from __future__ import annotations

import numpy as np

from chainrule.gradient_check.backward.differences import richardson
from chainrule.gradient_check.backward.relations import Finding, Tolerance
from chainrule.gradient_check.backward.uses import Tracker

__all__ = ["path_finding"]

_MAX_USES = 24


def _use_derivatives(run, k: int, use: int, directions) -> np.ndarray:
    """:math:`D_{use}(u)` per cotangent and direction, shape ``(P, D)``."""
    base = run.work[k]
    projection = run.projection
    scale = 1e-3 * max(1.0, float(np.max(np.abs(base))) if base.size else 1.0)
    along = []
    for u in directions:
        state = {"t": 0.0}

        def set_point(t, state=state):
            state["t"] = t
            return t

        def phi(u=u, state=state):
            tracker = Tracker(use, base + state["t"] * u)
            return projection.of(run.subject.traced_forward([x.copy() for x in run.work], k,
                                                            tracker))

        r, _ = richardson(phi, set_point, 0.0, scale, float(np.finfo(np.float64).eps),
                          f"input {k} through one of its uses")
        along.append(r)
    return np.array(along).T


def path_finding(run, k: int, G: np.ndarray, name: str, rng) -> Finding | None:
    """``path_missing`` when the claimed stack ``G`` of input ``k`` is the gradient through one
    use of it, or through all uses but one; None otherwise (or when the forward cannot be
    traced)."""
    if run.computed != np.float64:
        return None
    tracker = Tracker()
    try:
        if run.subject.traced_forward([x.copy() for x in run.work], k, tracker) is None:
            return None
    except Exception:
        return None
    uses = tracker.differentiable
    if not 2 <= len(uses) <= _MAX_USES:
        return None
    directions = rng.standard_normal((3, *run.work[k].shape))
    claimed = G.reshape(len(G), -1) @ directions.reshape(len(directions), -1).T
    per_use = {n: _use_derivatives(run, k, n, directions) for n in uses}
    total = sum(per_use.values())
    scale = float(np.max(np.abs(total))) or 1.0
    tol = Tolerance(1e-5, 1e-7 * scale)
    zero = np.zeros_like(claimed)
    if tol.close(claimed, total, zero):
        return None
    for n in uses:
        op = tracker.ops.get(n, "an operation")
        if tol.close(claimed, per_use[n], zero) and not tol.close(per_use[n], total, zero):
            return Finding("path_missing", f"it is the gradient through one use of {name} only "
                           f"(in {op}); {name} has {len(uses)} uses in the forward and its "
                           "gradient is the sum over all of them")
        if tol.close(claimed, total - per_use[n], zero):
            return Finding("path_missing", f"the gradient through one of the {len(uses)} uses "
                           f"of {name} (in {op}) is missing: its gradient is the sum over all "
                           "of its uses")
    return None
