r""":func:`check_backward`: a hand-written backward pass against float64 central differences.

The steps: the inputs (the user's, or drawn from the given shapes); the adapter of the
framework; whether the forward runs in float64 (then the differences use float64 copies,
whatever dtype the user works in) or only in the dtype it was given (then the noise of float32
differences is estimated and allowed for); random output cotangents; the user's backward once
in the user's dtype (for ``None``, shapes, dtypes and changes in place) and once per cotangent
for the values; the numeric gradients; then per input the comparison, where it differs and
the relation that names the mistake (:mod:`.relations`, the layer's known mistakes of
:mod:`.layers`, the uses of the input of :mod:`.uses`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chainrule._checks import check_scalar
from chainrule._threads import BlasThreads
from chainrule.gradient_check.backward.adapters import Pullback, Subject, adapt
from chainrule.gradient_check.backward.differences import (
    Differences,
    Projection,
    directional,
    element_differences,
    sample_indices,
)
from chainrule.gradient_check.backward.inputs import input_arrays
from chainrule.gradient_check.backward.judge import judge_inputs
from chainrule.gradient_check.backward.layers import LayerSpec, get_layer, settled
from chainrule.gradient_check.backward.relations import Tolerance
from chainrule.gradient_check.backward.report import BackwardCheck

__all__ = ["Run", "check_backward"]


def check_backward(
    fn,
    backward=None,
    *,
    inputs=None,
    shapes=None,
    layer: str | LayerSpec | None = None,
    dtype=None,
    seed: int = 0,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    cotangents: int = 2,
    max_elements: int = 1024,
    style: str = "auto",
) -> BackwardCheck:
    r"""Check a hand-written backward pass; say per input where it is wrong and which mistake.

    Parameters
    ----------
    fn, backward
        A NumPy ``forward(*inputs) -> out`` and ``backward(dout, *inputs)`` returning one
        gradient per input (None for an input without one); or the course style
        ``forward(*inputs) -> (out, cache)`` and ``backward(dout, cache)``; or, with no
        ``backward``, a ``torch.autograd.Function`` subclass (or its ``apply``), a torch module
        whose backward is custom, or a ``jax.custom_vjp`` function. A JAX function with a
        hand-written ``backward(dout, *inputs)`` is a pair like NumPy's.
    inputs, shapes
        The point: arrays (float32 ones are checked as float32 for the dtype of the gradients,
        and through float64 copies for their values), or shapes to draw standard normal inputs
        from (``[(4, 3), (3, 5)]``). A ``layer=`` gives default shapes.
    layer
        A layer of :data:`~chainrule.gradient_check.backward.LAYERS` (``"dense"``, ``"softmax"``,
        an activation's name): its known mistakes are tried to name a difference. For
        ``"conv2d"``, ``"maxpool2d"`` and ``"avgpool2d"`` the stride, padding and window are
        those under which the layer reproduces ``fn`` at the inputs.
    dtype
        The dtype of drawn inputs (default float64) or to cast given ones to.
    seed
        Seeds the drawn inputs, cotangents and directions.
    rtol, atol
        An element passes when :math:`|G - T| \le \mathrm{atol} + \mathrm{rtol}|T|` plus the
        noise of :math:`T` (and, for a forward that computes in float32, float32 rounding).
    cotangents
        How many random output cotangents ``dout`` each gradient is checked with.
    max_elements
        An input with more elements is checked along random directions and on a random sample
        of its elements (a 256x256 weight matrix takes a fraction of a second).
    style
        ``"auto"``, ``"inputs"`` (``backward(dout, *inputs)``) or ``"cache"``
        (``backward(dout, cache)``), for NumPy pairs.

    Returns
    -------
    BackwardCheck
        ``correct``, ``kind``, ``where``, ``sentence`` and one ``InputCheck`` per input.

    Examples
    --------
    >>> import numpy as np
    >>> def forward(x, W):
    ...     return x @ W
    >>> def backward(dout, x, W):
    ...     return dout @ W.T, dout.T @ x          # dW transposed
    >>> report = check_backward(forward, backward, shapes=[(4, 3), (3, 5)])
    >>> report.correct, report.kind, report.where
    (False, 'transposed', 'input 1 (W)')
    """
    owner = "check_backward"
    check_scalar(rtol, "rtol", owner, low=0)
    check_scalar(atol, "atol", owner, low=0)
    check_scalar(cotangents, "cotangents", owner, kind=int, low=1, high=16)
    check_scalar(max_elements, "max_elements", owner, kind=int, low=1)
    spec = get_layer(layer) if layer is not None else None
    rng = np.random.default_rng(seed)
    xs = input_arrays(inputs, shapes, spec, dtype, rng)
    # Overflow and NaN in the user's code are found and named below; NumPy's warnings would
    # only say it first, in its own words. The many small forward passes of the differences run
    # fastest on one BLAS thread (where threadpoolctl is installed to set it).
    with np.errstate(all="ignore"), BlasThreads(1, owner, required=False):
        subject = adapt(fn, backward, style=style, probe=xs)
        spec = settled(spec, subject.forward, xs)
        run = Run.prepare(subject, xs, rng, cotangents)
        numeric = [run.differences(k, max_elements, rng) for k in range(len(xs))]
        names = _input_names(subject, spec, len(xs))
        return judge_inputs(run, numeric, names, Tolerance(rtol, atol), spec, rng)


def _input_names(subject: Subject, spec: LayerSpec | None, n: int) -> list[str]:
    names = subject.arg_names
    if names is not None and len(names) >= n:
        return list(names[:n])
    if spec is not None and len(spec.names) == n:
        return list(spec.names)
    return [""] * n


@dataclass
class Run:
    """Everything measured at the point: the inputs in the user's dtype (``native``) and in the
    dtype the differences use (``work``), the dtype the forward ``computed`` in, the cotangents
    ``douts`` (P lists, one array per output), the user's backward in the user's dtype
    (``native_pullback``) and per cotangent in the work dtype (``pullbacks``), and a second
    answer to the first cotangent (``repeat``)."""

    subject: Subject
    native: list[np.ndarray]
    work: list[np.ndarray]
    computed: np.dtype
    douts: list[list[np.ndarray]]
    native_pullback: Pullback
    pullbacks: list[Pullback]
    repeat: Pullback

    @classmethod
    def prepare(cls, subject: Subject, xs: list[np.ndarray], rng, P: int) -> Run:
        work, computed = _work_inputs(subject, xs)
        outs = _outputs(subject, xs)
        douts = [[rng.standard_normal(o.shape) for o in outs] for _ in range(P)]
        native_douts = [d.astype(o.dtype) if o.dtype.kind == "f" else d
                        for d, o in zip(douts[0], outs, strict=True)]
        native_pullback = subject.pullback([x.copy() for x in xs], native_douts)
        cast = [np.float64 if computed == np.float64 else o.dtype for o in outs]
        pullbacks = [subject.pullback([x.copy() for x in work],
                                      [d.astype(c) for d, c in zip(ds, cast, strict=True)])
                     for ds in douts]
        repeat = subject.pullback([x.copy() for x in work],
                                  [d.astype(c) for d, c in zip(douts[0], cast, strict=True)])
        return cls(subject, xs, work, computed, douts, native_pullback, pullbacks, repeat)

    @property
    def projection(self) -> Projection:
        return Projection(self.subject.forward, self.douts)

    @property
    def batch_size(self) -> int | None:
        outs = self.native_pullback.outputs
        return int(outs[0].shape[0]) if outs and outs[0].ndim >= 1 else None

    def differences(self, k: int, max_elements: int, rng) -> Differences:
        x = self.work[k]
        label = f"input {k}"
        if x.size <= max_elements:
            values, noise = element_differences(self.projection, self.work, k, range(x.size),
                                                label, self.computed)
            return Differences(values, noise)
        indices = sample_indices(x.shape, 48, rng)
        values, noise = element_differences(self.projection, self.work, k, indices, label,
                                            self.computed)
        directions = rng.standard_normal((6, *x.shape))
        along, along_noise = directional(self.projection, self.work, k, directions, label,
                                         self.computed)
        return Differences(values, noise, directions, along, along_noise)


def _outputs(subject: Subject, xs) -> list[np.ndarray]:
    copies = [x.copy() for x in xs]
    outs = subject.forward(copies)
    for k, (x, c) in enumerate(zip(xs, copies, strict=True)):
        if not np.array_equal(x, c, equal_nan=True):
            raise ValueError(
                f"The forward changed input {k} in place (x *= ..., x += ... or out=); a "
                "forward must leave its inputs alone for its gradient to be checked: compute "
                "into a new array (x = x * 2).")
    again = subject.forward([x.copy() for x in xs])
    if any(not np.array_equal(a, b, equal_nan=True) for a, b in zip(outs, again, strict=True)):
        raise ValueError(
            "The forward gives different outputs for the same inputs (a dropout mask or noise "
            "drawn inside it?); its gradient can only be checked with its randomness fixed: "
            "seed it the same way on every call, or switch it off (evaluation mode).")
    for j, o in enumerate(outs):
        if o.dtype.kind not in "fc" or not np.all(np.isfinite(o)):
            what = f"dtype {o.dtype}" if o.dtype.kind not in "fc" else "values that are not finite"
            raise ValueError(
                f"The forward's output {j} has {what} at the inputs checked; check at inputs "
                "where the forward gives finite floating-point outputs (pass inputs=)."
            )
    return outs


def _work_inputs(subject: Subject, xs) -> tuple[list[np.ndarray], np.dtype]:
    """float64 copies when the forward runs in float64 on them; the inputs as they are (and
    their dtype as the one computed in) otherwise."""
    copies = [np.array(x, dtype=np.float64, copy=True) for x in xs]
    try:
        outs = subject.forward([c.copy() for c in copies])
    except Exception:
        outs = None
    if outs is not None and all(o.dtype == np.float64 for o in outs):
        return copies, np.dtype(np.float64)
    if outs is not None:
        low = min((o.dtype for o in outs if o.dtype.kind == "f"),
                  key=lambda d: d.itemsize, default=np.dtype(np.float64))
        if low == np.float64:
            low = np.dtype(np.float32)
        return copies, low
    low = min((x.dtype for x in xs), key=lambda d: d.itemsize)
    return [x.copy() for x in xs], low
