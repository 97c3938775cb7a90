r"""Adapters: each turns a user's backward pass into "inputs in, vector-Jacobian products out".

A :class:`Subject` is what the checker sees, whatever the framework: ``forward(xs)`` gives the
outputs as NumPy arrays, and ``pullback(xs, douts)`` runs the forward and then the user's own
backward with the cotangents ``douts``, returning the gradients exactly as the backward gave
them (their shape and dtype untouched, ``None`` kept) and what the backward changed in place.

- :class:`NumpyPair`: ``forward(*inputs) -> out`` and ``backward(dout, *inputs)``;
- :class:`NumpyCache`: the course style ``forward(*inputs) -> (out, cache)`` and
  ``backward(dout, cache)``;
- :class:`TorchFunction`: a ``torch.autograd.Function`` subclass (its raw ``backward`` output,
  before autograd validates or sums it);
- :class:`TorchModule`: a ``torch.nn.Module`` (or any callable on tensors) whose backward is
  custom, through ``torch.autograd.grad``;
- :class:`JaxCustomVjp`: a ``jax.custom_vjp`` function (its ``fwd`` and ``bwd``).

PyTorch and JAX are imported only inside the adapters that need them; a user's object of those
frameworks means the framework is installed.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from dataclasses import dataclass, field

import numpy as np

__all__ = ["JaxCustomVjp", "NumpyCache", "NumpyPair", "Pullback", "Subject", "TorchFunction",
           "TorchModule", "adapt"]


@dataclass
class Pullback:
    """One forward and backward run: the outputs, the gradients as returned (an array in its
    own dtype, or None), and what the backward changed in place (``"x"``, ``"the cache"``)."""

    outputs: list[np.ndarray]
    grads: list
    changed: list[str] = field(default_factory=list)


def _names(fn, n_skip: int = 0) -> list[str] | None:
    try:
        params = list(inspect.signature(fn).parameters.values())[n_skip:]
    except (TypeError, ValueError):
        return None
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return None
    return [p.name for p in params]


def _as_outputs(value) -> list[np.ndarray]:
    values = list(value) if isinstance(value, list | tuple) else [value]
    outputs = []
    for j, v in enumerate(values):
        try:
            outputs.append(np.asarray(v))
        except ValueError:
            outputs.append(None)
        if outputs[-1] is None or outputs[-1].dtype == object:
            raise ValueError(
                f"The forward returned {len(values)} values and value {j} is not an array; a "
                "forward that returns (out, cache) goes with backward(dout, cache): pass "
                "style='cache'.")
    return outputs


def _as_grads(value, n: int, owner: str) -> list:
    if n == 1 and not isinstance(value, list | tuple):
        value = (value,)
    if not isinstance(value, list | tuple):
        raise ValueError(
            f"{owner} returned a {type(value).__name__}; it must return one gradient per input "
            f"({n} in a tuple, None for an input without a gradient)."
        )
    value = list(value)
    if len(value) != n:
        raise ValueError(
            f"{owner} returned {len(value)} gradients for {n} inputs; return one per input, in "
            "the order of the inputs (None for an input without a gradient)."
        )
    return value


class Subject:
    """A user's forward and backward pass, as the checker sees it."""

    framework = "NumPy"
    label = "backward"
    arg_names: list[str] | None = None

    def context(self):
        """The context every call of the user's code runs in (JAX's float64 switch)."""
        return contextlib.nullcontext()

    def forward(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        raise NotImplementedError

    def pullback(self, xs: list[np.ndarray], douts: list[np.ndarray]) -> Pullback:
        raise NotImplementedError

    def traced_forward(self, xs, k: int, tracker):
        """The outputs with input ``k`` seen through ``tracker`` (one use of it at a time may
        be moved); None where the framework cannot be traced."""
        return None


def _arrays_in(obj, found: list, depth: int = 0) -> list:
    if depth > 6:
        return found
    if isinstance(obj, np.ndarray):
        found.append(obj)
    elif isinstance(obj, list | tuple):
        for item in obj:
            _arrays_in(item, found, depth + 1)
    elif isinstance(obj, dict):
        for item in obj.values():
            _arrays_in(item, found, depth + 1)
    return found


def _changed(before: list[np.ndarray], after: list[np.ndarray], names: list[str]) -> list[str]:
    return [name for b, a, name in zip(before, after, names, strict=True)
            if b.shape != a.shape or not np.array_equal(b, a, equal_nan=True)]


class _NumpyFunctions(Subject):
    """A user's two NumPy functions, ``forward`` and ``backward``."""

    def __init__(self, forward, backward):
        self._forward, self._backward = forward, backward
        self.label = getattr(backward, "__name__", "backward")
        self.arg_names = _names(forward)


class NumpyPair(_NumpyFunctions):
    """``forward(*inputs) -> out`` and ``backward(dout, *inputs) -> gradients``."""

    def forward(self, xs):
        return _as_outputs(self._forward(*xs))

    def pullback(self, xs, douts):
        outputs = self.forward(xs)
        before = [x.copy() for x in xs]
        raw = self._backward(douts[0] if len(douts) == 1 else tuple(douts), *xs)
        grads = _as_grads(raw, len(xs), f"{self.label}(dout, *inputs)")
        changed = _changed(before, xs, [f"input {k}" for k in range(len(xs))])
        return Pullback(outputs, grads, changed)

    def traced_forward(self, xs, k, tracker):
        return _as_outputs(self._forward(*tracker.wrap(xs, k)))


class NumpyCache(_NumpyFunctions):
    """The course style: ``forward(*inputs) -> (out, cache)``, ``backward(dout, cache)``."""

    def _run(self, xs):
        result = self._forward(*xs)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise ValueError(
                f"{getattr(self._forward, '__name__', 'forward')} must return (out, cache) for a "
                f"backward(dout, cache); got a {type(result).__name__}. Pass style='inputs' for "
                "a backward(dout, *inputs)."
            )
        return result

    def forward(self, xs):
        return _as_outputs(self._run(xs)[0])

    def pullback(self, xs, douts):
        out, cache = self._run(xs)
        saved = _arrays_in(cache, [])
        before = [a.copy() for a in saved]
        inputs_before = [x.copy() for x in xs]
        grads = _as_grads(self._backward(douts[0], cache), len(xs), f"{self.label}(dout, cache)")
        changed = _changed(inputs_before, xs, [f"input {k}" for k in range(len(xs))])
        if not changed and _changed(before, saved, ["the cache"] * len(saved)):
            changed = ["the cache"]
        return Pullback(_as_outputs(out), grads, changed)

    def traced_forward(self, xs, k, tracker):
        return _as_outputs(self._run(tracker.wrap(xs, k))[0])


# --- PyTorch --------------------------------------------------------------------------------------


def _torch_tensors(xs, grad: bool):
    import torch

    return [torch.tensor(x, requires_grad=grad) for x in xs]


def _to_numpy(value):
    if value is None:
        return None
    if hasattr(value, "detach"):
        value = value.detach()
        if hasattr(value, "cpu"):
            value = value.cpu()
        return value.numpy().copy()
    return np.asarray(value)


class TorchFunction(Subject):
    """A ``torch.autograd.Function`` subclass; its own ``backward`` is called through the graph
    node (``out.grad_fn.apply``), so its raw answer is seen before autograd checks or sums it."""

    framework = "PyTorch"

    def __init__(self, function):
        self.function = function
        self.label = function.__name__
        self.arg_names = _names(function.forward, 0 if _has_setup_context(function) else 1)

    def forward(self, xs):
        import torch

        with torch.no_grad():
            return [_to_numpy(o) for o in _as_list(self.function.apply(*_torch_tensors(xs, False)))]

    def pullback(self, xs, douts):
        import torch

        ts = _torch_tensors(xs, True)
        outs = _as_list(self.function.apply(*ts))
        node = next((o.grad_fn for o in outs if getattr(o, "grad_fn", None) is not None), None)
        if node is None:
            raise ValueError(
                f"{self.label}.apply returned no tensor attached to the graph; return the "
                "forward's result as a tensor (not a NumPy array or a detached copy)."
            )
        before = [t.detach().clone() for t in ts]
        with torch.no_grad():
            raw = node.apply(*[torch.as_tensor(d) for d in douts])
        grads = _as_grads(raw, len(xs), f"{self.label}.backward")
        names = [f"input {k}" for k in range(len(xs))]
        changed = _changed([_to_numpy(b) for b in before], [_to_numpy(t) for t in ts], names)
        return Pullback([_to_numpy(o) for o in outs], [_to_numpy(g) for g in grads], changed)

    def traced_forward(self, xs, k, tracker):
        from chainrule.gradient_check.backward.uses import torch_forward

        return torch_forward(self.function, xs, k, tracker)


def _has_setup_context(function) -> bool:
    import torch

    return getattr(function, "setup_context", None) is not getattr(
        torch.autograd.Function, "setup_context", None)


def _as_list(value) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


class TorchModule(Subject):
    """A module (or any callable on tensors); the gradients through ``torch.autograd.grad``."""

    framework = "PyTorch"

    def __init__(self, module):
        self.module = module
        self.label = type(module).__name__ if not inspect.isfunction(module) else module.__name__
        self.arg_names = _names(getattr(module, "forward", module))

    def forward(self, xs):
        import torch

        with torch.no_grad():
            return [_to_numpy(o) for o in _as_list(self.module(*_torch_tensors(xs, False)))]

    def pullback(self, xs, douts):
        import torch

        ts = _torch_tensors(xs, True)
        outs = _as_list(self.module(*ts))
        grads = torch.autograd.grad(outs, ts, grad_outputs=[torch.as_tensor(d) for d in douts],
                                    allow_unused=True)
        return Pullback([_to_numpy(o) for o in outs], [_to_numpy(g) for g in grads])

    def traced_forward(self, xs, k, tracker):
        from chainrule.gradient_check.backward.uses import torch_forward

        return torch_forward(self.module, xs, k, tracker)


# --- JAX ------------------------------------------------------------------------------------------


class JaxCustomVjp(Subject):
    """A ``jax.custom_vjp`` function: its ``fwd`` gives the residuals, its ``bwd`` the
    gradients, called directly so that their raw shapes and dtypes are seen."""

    framework = "JAX"

    def __init__(self, function):
        if getattr(function, "bwd", None) is None:
            raise ValueError(
                "This jax.custom_vjp function has no backward yet: call f.defvjp(f_fwd, f_bwd) "
                "before checking it."
            )
        if getattr(function, "nondiff_argnums", ()):
            raise ValueError(
                "check_backward takes a jax.custom_vjp without nondiff_argnums; close over the "
                "non-differentiable arguments (functools.partial) and check the rest."
            )
        self.function = function
        self.label = getattr(function.fun, "__name__", "custom_vjp")
        self.arg_names = _names(function.fun)

    def context(self):
        import jax

        return jax.enable_x64(True)

    def forward(self, xs):
        with self.context():
            return [np.asarray(o) for o in _as_list(self.function(*xs))]

    def pullback(self, xs, douts):
        with self.context():
            out, residuals = self.function.fwd(*xs)
            cotangent = douts[0] if not isinstance(out, list | tuple) else type(out)(douts)
            raw = self.function.bwd(residuals, cotangent)
        grads = _as_grads(raw, len(xs), f"{self.label}'s bwd")
        return Pullback([np.asarray(o) for o in _as_list(out)],
                        [None if g is None else np.asarray(g) for g in grads])

    def traced_forward(self, xs, k, tracker):
        from chainrule.gradient_check.backward.uses import jax_forward

        return jax_forward(self.function.fun, xs, k, tracker)


class JaxPair(NumpyPair):
    """Any JAX function and a hand-written ``vjp(dout, *inputs)``, run with float64 enabled."""

    framework = "JAX"

    def context(self):
        import jax

        return jax.enable_x64(True)

    def forward(self, xs):
        with self.context():
            return [np.asarray(o) for o in super().forward(xs)]

    def pullback(self, xs, douts):
        with self.context():
            result = super().pullback(xs, douts)
        result.grads = [None if g is None else np.asarray(g) for g in result.grads]
        return result

    def traced_forward(self, xs, k, tracker):
        from chainrule.gradient_check.backward.uses import jax_forward

        return jax_forward(self._forward, xs, k, tracker)


# --- choosing the adapter ------------------------------------------------------------------------


def _framework(obj) -> str:
    """The modules of ``obj``'s class and its bases (``obj``'s own bases for a class)."""
    cls = obj if inspect.isclass(obj) else type(obj)
    return " ".join(str(getattr(c, "__module__", "")) for c in cls.__mro__)


def _is_torch_function(obj) -> bool:
    return inspect.isclass(obj) and any(
        c.__module__.startswith("torch.autograd") and c.__name__ == "Function"
        for c in obj.__mro__)


def _returns_jax(forward, probe) -> bool:
    if probe is None:
        return False
    try:
        out = forward(*[copy.deepcopy(p) for p in probe])
    except Exception:
        return False
    first = out[0] if isinstance(out, tuple) and out else out
    return type(first).__module__.startswith("jax")


def adapt(fn, backward=None, *, style: str = "auto", probe=None) -> Subject:
    """The :class:`Subject` for what the user passed (see :func:`check_backward`)."""
    owner = getattr(fn, "__self__", None)
    if inspect.ismethod(fn) and _is_torch_function(owner) and fn.__name__ == "apply":
        fn = owner
    if _is_torch_function(fn):
        return TorchFunction(fn)
    if "jax" in _framework(fn) and hasattr(fn, "fwd"):
        return JaxCustomVjp(fn)
    if backward is None:
        if "torch" in _framework(fn):
            return TorchModule(fn)
        raise ValueError(
            f"check_backward got {getattr(fn, '__name__', type(fn).__name__)} and no backward: "
            "pass backward= (a NumPy backward(dout, *inputs) or backward(dout, cache)), or a "
            "torch.autograd.Function, a torch module or a jax.custom_vjp function."
        )
    if not callable(fn) or not callable(backward):
        raise ValueError(
            f"check_backward needs a forward and a backward that can be called; got "
            f"{type(fn).__name__} and {type(backward).__name__}."
        )
    if style not in ("auto", "inputs", "cache"):
        raise ValueError(f"style= must be 'auto', 'inputs' or 'cache'; got {style!r}.")
    if style == "auto":
        style = _guess_style(fn, backward, probe)
    if style == "cache":
        return NumpyCache(fn, backward)
    return JaxPair(fn, backward) if _returns_jax(fn, probe) else NumpyPair(fn, backward)


def _guess_style(fn, backward, probe) -> str:
    """'cache' when the backward takes exactly (dout, cache) and the forward returns a pair."""
    names = _names(backward)
    if names is None or len(names) != 2:
        return "inputs"
    if probe is None:
        return "inputs" if _names(fn) is not None and len(_names(fn)) == 1 else "cache"
    try:
        result = fn(*[np.array(p, copy=True) for p in probe])
    except Exception:
        return "inputs"
    return "cache" if isinstance(result, tuple) and len(result) == 2 else "inputs"
