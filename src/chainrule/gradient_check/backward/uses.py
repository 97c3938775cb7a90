r"""The uses of one input inside a forward pass, each moved on its own.

An input :math:`x` that a forward uses twice, :math:`f(x) = g(x, x)`, has the gradient
:math:`\partial_1 g + \partial_2 g`: one term per use. A backward that forgets one use returns
the other term alone. To see it, the forward runs with :math:`x` wrapped so that every
operation that reads it counts as one *use*; in one run a single use (number ``target``) reads
:math:`x + t u` and every other use reads :math:`x`, which gives the derivative along
:math:`u` of that path alone.

- NumPy: an ``ndarray`` subclass; every ufunc (``+``, ``*``, ``@``, ``np.exp``, reductions) and
  every NumPy function (``np.sum``, ``np.dot``) that receives :math:`x` or a view of it
  (``x.T``, ``x[0]``, ``x.reshape``) counts one use per argument.
- PyTorch: a ``torch.Tensor`` subclass whose ``__torch_function__`` counts every operation
  on it; a ``torch.autograd.Function``'s ``forward`` is run directly with a stand-in context.
- JAX: the forward's jaxpr (``jax.make_jaxpr``) is evaluated equation by equation; every
  equation that reads :math:`x` counts one use per argument.

A copy of :math:`x` (``x.copy()``, ``x.astype``) is not followed: its uses stay fixed, so the
paths found then add up to less than the whole gradient and no path is named.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Tracker", "jax_forward", "torch_forward"]


class Tracker:
    """Counts the uses of one input during one forward run; use ``target`` reads
    ``replacement`` instead of the input. ``differentiable`` lists the uses whose result is a
    floating array (the others, such as ``x.shape``, are not paths)."""

    def __init__(self, target: int | None = None, replacement: np.ndarray | None = None):
        self.target = target
        self.replacement = replacement
        self.count = 0
        self.differentiable: list[int] = []
        self.ops: dict[int, str] = {}
        self.root: np.ndarray | None = None

    def next_use(self) -> int:
        self.count += 1
        return self.count - 1

    def source(self, use: int) -> np.ndarray:
        return self.replacement if use == self.target else self.root

    def wrap(self, xs: list[np.ndarray], k: int) -> list:
        """The inputs with input ``k`` replaced by a tracked copy."""
        self.root = np.array(xs[k], dtype=np.float64, order="C", copy=True)
        tracked = self.root.view(_Tracked)
        tracked._tracker = self
        return [tracked if j == k else x.copy() for j, x in enumerate(xs)]

    def note(self, use: int, result, op: str) -> None:
        self.ops[use] = op
        if _floating(result):
            self.differentiable.append(use)


def _floating(result) -> bool:
    if isinstance(result, tuple | list):
        return any(_floating(r) for r in result)
    dtype = getattr(result, "dtype", None)
    if dtype is None:
        return False
    return getattr(dtype, "is_floating_point", None) or getattr(dtype, "kind", "") == "f"


class _Tracked(np.ndarray):
    """An input (or a view of it) whose every use in a NumPy operation is counted."""

    _tracker: Tracker | None = None

    def __array_finalize__(self, obj):
        self._tracker = getattr(obj, "_tracker", None)

    def _resolve(self, use: int) -> np.ndarray:
        """This view, laid over the array that use ``use`` reads."""
        tracker = self._tracker
        plain = self.view(np.ndarray)
        root = tracker.root
        offset = (plain.__array_interface__["data"][0] - root.__array_interface__["data"][0])
        if offset < 0 or offset >= max(root.nbytes, 1) or not np.shares_memory(plain, root):
            return plain
        return np.ndarray(plain.shape, plain.dtype, buffer=tracker.source(use), offset=offset,
                          strides=plain.strides)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        tracker = self._tracker
        uses, args = _substitute(inputs, tracker)
        if "out" in kwargs:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, _Tracked) else o
                                  for o in kwargs["out"])
        result = getattr(ufunc, method)(*args, **kwargs)
        name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        for use in uses:
            tracker.note(use, result, name)
        return result

    def __array_function__(self, func, types, args, kwargs):
        tracker = self._tracker
        uses, new_args = _substitute(args, tracker)
        more, new_kwargs = _substitute(tuple(kwargs.values()), tracker)
        result = func(*new_args, **dict(zip(kwargs, new_kwargs, strict=True)))
        for use in [*uses, *more]:
            tracker.note(use, result, f"np.{func.__name__}")
        return result


def _substitute(items, tracker: Tracker, depth: int = 0):
    uses, out = [], []
    for item in items:
        if isinstance(item, _Tracked) and item._tracker is tracker:
            use = tracker.next_use()
            uses.append(use)
            out.append(item._resolve(use))
        elif isinstance(item, list | tuple) and depth < 4:
            inner_uses, inner = _substitute(item, tracker, depth + 1)
            uses.extend(inner_uses)
            out.append(type(item)(inner) if isinstance(item, tuple) else inner)
        else:
            out.append(item)
    return uses, out


# --- PyTorch -------------------------------------------------------------------------------------


class _Context:
    """A stand-in for the ``ctx`` of a ``torch.autograd.Function``'s forward."""

    def __init__(self, n: int):
        self.needs_input_grad = (True,) * n
        self.saved_tensors = ()

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors

    def mark_dirty(self, *tensors):
        pass

    def mark_non_differentiable(self, *tensors):
        pass

    def set_materialize_grads(self, value):
        pass


def torch_forward(function, xs: list[np.ndarray], k: int, tracker: Tracker) -> list[np.ndarray]:
    """The outputs of ``function.forward`` (a ``torch.autograd.Function``; any other callable is
    called as it is) with input ``k`` tracked (see :class:`Tracker`)."""
    import torch

    class Tracked(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            uses, new_args = _torch_substitute(args, tracker, Tracked)
            more, values = _torch_substitute(tuple((kwargs or {}).values()), tracker, Tracked)
            result = func(*new_args, **dict(zip(kwargs or {}, values, strict=True)))
            for use in [*uses, *more]:
                tracker.note(use, result, getattr(func, "__name__", str(func)))
            return result

    tracker.root = np.array(xs[k], dtype=np.float64, order="C", copy=True)
    ts = [torch.tensor(x) for x in xs]
    ts[k] = torch.tensor(tracker.root).as_subclass(Tracked)
    with torch.no_grad():
        if not isinstance(function, type):
            out = function(*ts)
        elif _has_setup_context(function, torch):
            out = function.forward(*ts)
        else:
            out = function.forward(_Context(len(xs)), *ts)
    outs = list(out) if isinstance(out, list | tuple) else [out]
    return [o.detach().numpy().copy() if hasattr(o, "detach") else np.asarray(o) for o in outs]


def _has_setup_context(function, torch) -> bool:
    return getattr(function, "setup_context", None) is not getattr(
        torch.autograd.Function, "setup_context", None)


def _torch_substitute(items, tracker: Tracker, tracked_type, depth: int = 0):
    import torch

    uses, out = [], []
    for item in items:
        if isinstance(item, tracked_type):
            use = tracker.next_use()
            uses.append(use)
            out.append(torch.tensor(tracker.source(use)))
        elif isinstance(item, list | tuple) and depth < 4:
            inner_uses, inner = _torch_substitute(item, tracker, tracked_type, depth + 1)
            uses.extend(inner_uses)
            out.append(type(item)(inner) if isinstance(item, tuple) else inner)
        else:
            out.append(item)
    return uses, out


# --- JAX -----------------------------------------------------------------------------------------


def jax_forward(fun, xs: list[np.ndarray], k: int, tracker: Tracker) -> list[np.ndarray]:
    """The outputs of the JAX function ``fun``, its jaxpr evaluated one equation at a time
    with input ``k`` tracked (see :class:`Tracker`)."""
    import jax

    with jax.enable_x64(True):
        closed = jax.make_jaxpr(fun)(*xs)
        jaxpr = closed.jaxpr
        env = dict(zip(jaxpr.constvars, closed.consts, strict=True))
        env.update(zip(jaxpr.invars, xs, strict=True))
        target = jaxpr.invars[k]
        tracker.root = np.array(xs[k], dtype=np.float64, order="C", copy=True)

        def read(v, uses):
            if type(v).__name__ == "Literal":
                return v.val
            if v is target:
                use = tracker.next_use()
                uses.append(use)
                return tracker.source(use)
            return env[v]

        for eqn in jaxpr.eqns:
            uses: list[int] = []
            args = [read(v, uses) for v in eqn.invars]
            out = eqn.primitive.bind(*args, **eqn.params)
            outs = out if eqn.primitive.multiple_results else [out]
            for use in uses:
                tracker.note(use, outs, eqn.primitive.name)
            env.update(zip(eqn.outvars, outs, strict=True))
        finals = []
        for v in jaxpr.outvars:
            uses = []
            finals.append(np.asarray(read(v, uses)))
            for use in uses:
                tracker.note(use, finals[-1], "the output")
        return finals
