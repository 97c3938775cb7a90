r"""Where a claimed gradient differs from the true one, and which relation holds between them.

Both are stacks of shape ``(P, *input_shape)``, one gradient per cotangent; the true one
:math:`T` may be known only at some elements (NaN elsewhere). An element differs when
:math:`|G - T| > \mathrm{atol} + \mathrm{rtol}\,|T| + \text{noise}`.

*Where*: every element, one row or column (one index along an axis), the diagonal, the border
of the last two axes (what padding touches), every k-th element along an axis (what a stride
touches), or a list of positions.

*Which relation* (each a kind of :data:`~chainrule.gradient_check.catalogue.MISTAKES`):
:math:`G = 0`, :math:`G = -T`, :math:`G = cT` (with the usual cause of :math:`c`: :math:`m`, the
forgotten :math:`1/m`; :math:`1/m`, the mean taken twice; 2 and 1/2), :math:`G = T^\top`; and
for a gradient of the wrong shape: the sum over a broadcast axis missing, a transpose, or values
that are right in another layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Finding", "Tolerance", "locate", "relation", "shape_relation"]


@dataclass(frozen=True)
class Finding:
    """A relation that holds: its ``kind``, a ``sentence``, for a factor its value, and the
    right form where one is known as text (``expected``)."""

    kind: str
    sentence: str
    factor: float | None = None
    expected: str | None = None


@dataclass(frozen=True)
class Tolerance:
    """An element passes when :math:`|G - T| \\le` ``atol + rtol·|T|`` + ``noise``."""

    rtol: float
    atol: float

    def bound(self, T: np.ndarray, noise: np.ndarray) -> np.ndarray:
        return self.atol + self.rtol * np.abs(T) + noise

    def close(self, G: np.ndarray, T: np.ndarray, noise: np.ndarray) -> bool:
        known = np.isfinite(T)
        if not np.any(known):
            return False
        with np.errstate(invalid="ignore", over="ignore"):
            err = np.abs(G[known] - T[known])
        return bool(np.all(err <= self.bound(T[known], noise[known])))


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def _index(flat: int, shape: tuple) -> str:
    idx = tuple(int(i) for i in np.unravel_index(flat, shape))
    return str(idx[0]) if len(idx) == 1 else str(idx)


def _one_index(bad, known, shape) -> str | None:
    if len(shape) < 2:
        return None
    for axis in range(len(shape)):
        at = np.unique(np.nonzero(bad)[axis])
        if len(at) == 1 and shape[axis] > 1:
            i = int(at[0])
            rest = np.take(known, i, axis=axis)
            if not np.all(np.take(bad, i, axis=axis)[rest]):
                continue
            if len(shape) == 2:
                return f"row {i}" if axis == 0 else f"column {i}"
            return f"index {i} along axis {axis}"
    return None


def _border(bad, known, shape) -> str | None:
    if len(shape) < 2 or min(shape[-2:]) < 4:
        return None
    rows, cols = np.indices(shape[-2:])
    depth = np.minimum(np.minimum(rows, shape[-2] - 1 - rows),
                       np.minimum(cols, shape[-1] - 1 - cols))
    depth = np.broadcast_to(depth, shape)
    width = int(depth[bad].max()) + 1
    if 2 * width >= min(shape[-2:]):
        return None
    ring = depth < width
    if np.any(bad & ~ring) or not np.all(bad[ring & known]):
        return None
    return f"the border ({width} element{'s' if width > 1 else ''} wide: where padding reaches)"


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _stride(bad, known, shape) -> str | None:
    for axis in range(len(shape)):
        if shape[axis] < 4:
            continue
        at = np.unique(np.nonzero(bad)[axis])
        if len(at) < 2:
            continue
        k = int(np.gcd.reduce(np.diff(at)))
        if k < 2:
            continue
        r = int(at[0]) % k
        on = (np.arange(shape[axis]) % k) == r
        sel, seen = np.moveaxis(bad, axis, 0), np.moveaxis(known, axis, 0)
        if np.any(sel[~on]) or not np.all(sel[on][seen[on]]):
            continue
        what = "element" if len(shape) == 1 else f"index along axis {axis}"
        return f"every {_ordinal(k)} {what}, from {r} (a stride of {k})"
    return None


def locate(bad: np.ndarray, known: np.ndarray) -> str:
    """Where the differing elements ``bad`` lie among the ``known`` ones, in words."""
    n_bad, n_known = int(np.count_nonzero(bad)), int(np.count_nonzero(known))
    shape = bad.shape
    if n_bad == 0:
        return "nowhere"
    if n_bad == n_known:
        return "every element" if n_known == bad.size else f"every checked element ({n_known})"
    if len(shape) >= 2 and shape[-1] == shape[-2]:
        eye = np.broadcast_to(np.eye(shape[-1], dtype=bool), shape)
        if not np.any(bad & ~eye) and np.all(bad[eye & known]):
            return "the diagonal"
        if not np.any(bad & eye) and np.all(bad[~eye & known]):
            return "every element off the diagonal"
    if n_known == bad.size:
        for test in (_one_index, _border, _stride):
            found = test(bad, known, shape)
            if found:
                return found
    positions = np.flatnonzero(bad)
    listed = ", ".join(_index(int(i), shape) for i in positions[:4])
    more = ", ..." if n_bad > 4 else ""
    sampled = "" if n_known == bad.size else " sampled"
    return f"{n_bad} of {n_known}{sampled} elements: {listed}{more}"


def _factor(G, T, known):
    t, g = T[known].ravel(), G[known].ravel()
    denom = float(np.dot(t, t))
    if denom == 0.0 or not np.all(np.isfinite(g)):
        return None
    return float(np.dot(g, t)) / denom


def _scale_finding(c: float, m: int | None) -> Finding:
    if m and m > 1 and np.isclose(c, m, rtol=1e-6):
        return Finding("mean_forgotten", f"it is {_fmt(c)} times the true gradient, the batch "
                       f"size m = {m}: the 1/m of the mean over the batch is missing", c)
    if m and m > 1 and np.isclose(c, 1.0 / m, rtol=1e-6):
        return Finding("mean_twice", f"it is 1/{m} of the true gradient (m = {m}, the batch "
                       "size): the 1/m of the mean is applied again in the backward", c)
    causes = {
        2.0: "a factor 2 too many: the 2 of a square counted again, or one use of the input "
             "counted twice",
        0.5: "half the true gradient: the 2 of d(x²) = 2x dx dropped, or one of two equal uses "
             "of the input forgotten",
    }
    for value, cause in causes.items():
        if np.isclose(c, value, rtol=1e-6):
            return Finding("scaled", f"it is {cause}", c)
    return Finding("scaled", f"it is {_fmt(c)} times the true gradient everywhere: a constant "
                   "of the chain rule is wrong", c)


def relation(G, T, noise, tol: Tolerance, m: int | None = None) -> Finding | None:
    """The relation between the claimed stack ``G`` and the true one ``T`` that holds at every
    known element, or None."""
    known = np.isfinite(T)
    if not np.all(np.isfinite(G)):
        bad = ~np.isfinite(G) & known
        if np.any(bad & np.isfinite(T)):
            return Finding("non_finite", "it is NaN or infinite at "
                           f"{locate(bad[0] | bad.any(axis=0), known[0])} where the true "
                           "gradient is finite")
        return None
    if np.all(G[known] == 0) and np.any(np.abs(T[known]) > tol.bound(T[known], noise[known])):
        return Finding("zero", "it is zero, but the input changes the output: no gradient "
                       "flows back to it")
    if tol.close(-G, T, noise):
        return Finding("sign_flipped", "it has the wrong sign everywhere (G = -T)", -1.0)
    c = _factor(G, T, known)
    if c is not None and abs(c) > 1e-12 and not np.isclose(c, 1.0, rtol=1e-3):
        if tol.close(G / c, T, noise / abs(c)) and (np.isclose(c, round(c), rtol=1e-6) or
                                                    np.isclose(1 / c, round(1 / c), rtol=1e-6)):
            return _scale_finding(c, m)
    if G.ndim >= 3 and G.shape[-1] == G.shape[-2]:
        Tt = np.swapaxes(T, -1, -2)
        if tol.close(G, Tt, np.swapaxes(noise, -1, -2)) and not tol.close(G, T, noise):
            return Finding("transposed", "it is the transpose of the true gradient (G = Tᵀ): "
                           "the factors of the product are transposed or swapped")
    return None


def shape_relation(g: np.ndarray, T: np.ndarray, noise, tol: Tolerance, name: str) -> Finding:
    """Why a gradient ``g`` of the wrong shape (one cotangent: ``T`` has the input's shape)."""
    shape = T.shape
    try:
        broadcasts = g.ndim >= len(shape) and np.broadcast_shapes(g.shape, shape) == g.shape
    except ValueError:
        broadcasts = False
    if broadcasts:
        extra = g.ndim - len(shape)
        axes = tuple(range(extra)) + tuple(
            extra + i for i, n in enumerate(shape) if n == 1 and g.shape[extra + i] != 1)
        summed = np.sum(g, axis=axes).reshape(shape)
        if tol.close(summed, T, noise):
            axis = axes[0] if len(axes) == 1 else axes
            return Finding("bias_not_summed", f"it has shape {g.shape}, not {shape}: {name} is "
                           f"broadcast over axis {axis} in the forward, and its gradient is not "
                           f"summed over that axis (np.sum(dout, axis={axis}))")
    if g.ndim == 2 and g.T.shape == shape and tol.close(g.T, T, noise):
        return Finding("transposed", f"it has shape {g.shape}, the transpose of {name}'s "
                       f"{shape}, and its transpose is right: the factors of the product are "
                       "transposed (dW = Xᵀ·dout keeps W's (in, out) layout)")
    if g.size == T.size and tol.close(g.reshape(shape), T, noise):
        return Finding("shape", f"it has shape {g.shape}, not {shape}, though its values are "
                       f"right: reshape it to {shape}")
    return Finding("shape", f"it has shape {g.shape}, not {name}'s shape {shape}: a gradient has "
                   "exactly the shape of what it differentiates")
