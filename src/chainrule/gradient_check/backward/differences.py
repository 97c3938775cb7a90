r"""Central differences of a forward pass, projected on the output cotangents.

For cotangents :math:`v_1, \dots, v_P` the scalar functions :math:`\phi_p(x) = \langle v_p,
f(x)\rangle` have the gradients :math:`v_p^\top J`: exactly what a backward pass given
``dout = v_p`` must return. Each element's derivative is a central difference refined by
Richardson extrapolation, as :func:`chainrule.gradient_check.gradcheck` does,

.. math::

    D(h) = \frac{\phi(x + h) - \phi(x - h)}{2h}, \qquad R = \frac{4 D(h/2) - D(h)}{3},

with :math:`h = s \max(1, |x|)`, where :math:`s = 10^{-3}` for a float64 forward and
:math:`s = 10^{-2}` for one that computes in float32 (a smaller step would drown in rounding).
The noise of :math:`R` is its rounding, :math:`8\epsilon \sum_i |v_i f_i| / h` with the
:math:`\epsilon` of the dtype the forward computes in, plus the remaining :math:`|R - D(h/2)|`.

Inputs too large for one difference per element are checked along random directions
:math:`u`: :math:`\langle G, u\rangle` against the derivative of :math:`\phi(x + t u)` in
:math:`t`, and element by element on a random sample (with the transposed positions of a square
matrix, so that a transpose can still be recognised).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrule.gradient_check.numeric import extrapolate

__all__ = ["Differences", "Projection", "directional", "element_differences", "sample_indices"]

_SHRINK = 6


@dataclass
class Projection:
    r"""The forward at a point, seen through the cotangents: ``value(xs)`` gives, per
    cotangent, :math:`\langle v_p, f(x)\rangle` and :math:`\sum_i |v_{p,i} f_i|` (the scale of
    its rounding)."""

    forward: object  # Callable[[list[np.ndarray]], list[np.ndarray]]
    douts: list  # P lists of one array per output

    def value(self, xs) -> tuple[np.ndarray, np.ndarray]:
        return self.of(self.forward(xs))

    def of(self, outputs) -> tuple[np.ndarray, np.ndarray]:
        """The projections of given ``outputs`` and their rounding scales."""
        outs = [np.asarray(o, dtype=np.float64) for o in outputs]
        values, scales = [], []
        for vs in self.douts:
            values.append(sum(float(np.sum(v * o)) for v, o in zip(vs, outs, strict=True)))
            scales.append(sum(float(np.sum(np.abs(v * o))) for v, o in zip(vs, outs, strict=True)))
        return np.array(values), np.array(scales)


@dataclass
class Differences:
    """The numeric gradients of one input: ``values`` and ``noise`` of shape ``(P, *shape)``
    (NaN where an element was not computed), and along ``directions`` (``(D, *shape)``) the
    directional derivatives ``along`` and their noise ``along_noise`` (``(P, D)``)."""

    values: np.ndarray
    noise: np.ndarray
    directions: np.ndarray | None = None
    along: np.ndarray | None = None
    along_noise: np.ndarray | None = None

    @property
    def known(self) -> np.ndarray:
        return np.isfinite(self.values[0])

    @property
    def complete(self) -> bool:
        return bool(np.all(self.known))


def _central(phi, set_point, x0: float, h: float, eps: float):
    with np.errstate(all="ignore"):
        plus = set_point(x0 + h)
        fp, sp = phi()
        minus = set_point(x0 - h)
        fm, sm = phi()
    set_point(x0)
    if not (np.all(np.isfinite(fp)) and np.all(np.isfinite(fm))):
        return None
    step = plus - minus
    return (fp - fm) / step, 8.0 * eps * np.maximum(sp, sm) / step


def richardson(phi, set_point, x0: float, h0: float, eps: float, where: str):
    """The Richardson-extrapolated derivative of ``phi`` in one coordinate, and its noise."""
    best, h = extrapolate(lambda step: _central(phi, set_point, x0, step, eps), h0, _SHRINK,
                          1e-8)
    if best is None:
        raise ValueError(
            f"The forward is not finite near {where} (value {x0!r}) even with a step of "
            f"{h * 4:.1e}: the point is at the edge of its domain (a log of 0, a division by 0). "
            "Pass inputs= inside the domain."
        )
    return best


def _step(dtype) -> float:
    return 1e-2 if np.dtype(dtype).itemsize < 8 else 1e-3


def element_differences(projection: Projection, xs: list, k: int, indices, label: str,
                        computed) -> tuple[np.ndarray, np.ndarray]:
    """The numeric gradient of input ``k`` at the flat ``indices``: ``(values, noise)`` of shape
    ``(P, *shape)``, NaN elsewhere. ``computed`` is the dtype the forward computes in."""
    work = [np.array(x, order="C", copy=True) for x in xs]
    arr = work[k]
    eps = float(np.finfo(computed).eps)
    P = len(projection.douts)
    values = np.full((P, *arr.shape), np.nan)
    noise = np.full((P, *arr.shape), np.nan)
    flat = arr.reshape(-1)  # a view: work[k] is contiguous

    for i in indices:
        i = int(i)
        x0 = float(flat[i])

        def set_point(value, i=i):
            flat[i] = value
            return float(flat[i])

        where = f"{label} at flat index {i}"
        r, nz = richardson(lambda: projection.value(work), set_point, x0,
                           _step(computed) * max(1.0, abs(x0)), eps, where)
        values.reshape(P, -1)[:, i] = r
        noise.reshape(P, -1)[:, i] = nz
    return values, noise


def directional(projection: Projection, xs: list, k: int, directions: np.ndarray, label: str,
                computed) -> tuple[np.ndarray, np.ndarray]:
    r"""The derivatives of :math:`\phi_p(x + t u_d)` at :math:`t = 0`: ``(along, noise)`` of
    shape ``(P, D)``."""
    base = xs[k]
    eps = float(np.finfo(computed).eps)
    scale = max(1.0, float(np.max(np.abs(base))) if base.size else 1.0)
    along, noise = [], []
    for u in directions:
        work = [x.copy() for x in xs]

        def set_point(t, u=u, work=work):
            work[k] = (base + t * u).astype(base.dtype)
            return t

        r, nz = richardson(lambda work=work: projection.value(work), set_point, 0.0,
                           _step(computed) * scale, eps, f"{label} along a random direction")
        along.append(r)
        noise.append(nz)
    return np.array(along).T, np.array(noise).T


def sample_indices(shape: tuple, n: int, rng) -> np.ndarray:
    """``n`` random flat indices of an array of ``shape``; for a square matrix (last two axes),
    each with its transposed position too."""
    size = int(np.prod(shape))
    chosen = rng.choice(size, size=min(n, size), replace=False)
    if len(shape) >= 2 and shape[-1] == shape[-2]:
        idx = np.array(np.unravel_index(chosen, shape))
        idx[[-1, -2]] = idx[[-2, -1]]
        chosen = np.concatenate([chosen, np.ravel_multi_index(tuple(idx), shape)])
    return np.unique(chosen)
