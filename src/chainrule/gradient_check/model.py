r"""Check a model's backward pass layer by layer: :func:`check_model`.

Each layer is checked on its own at the input it receives, against float64 central differences
(:func:`~chainrule.gradient_check.numeric.numeric_gradient`), then the loss, then every
parameter's gradient of the loss end to end; the first layer whose backward disagrees is named,
with the mistake of the catalogue that explains it. Only NumPy is imported here.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import numpy as np

from chainrule._checks import as_float_array, check_finite, check_scalar
from chainrule.gradient_check.catalogue import CheckResult
from chainrule.gradient_check.diagnosis import Hints
from chainrule.gradient_check.numeric import (
    GradcheckReport,
    PrecisionWarning,
    check_tolerances,
    compare_stacks,
    numeric_gradient,
)

__all__ = ["LayerCheck", "ModelCheckReport", "check_model"]


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
class ModelCheckReport(CheckResult):
    """The outcome of :func:`check_model`, a :class:`~chainrule.gradient_check.CheckResult`.

    ``correct`` (also ``passed``); ``kind`` and ``sentence`` (also ``diagnosis``) of the mistake
    found, ``where`` the layer and the gradient concerned (``"layer 1 (Sigmoid()) dE/dinput"``);
    ``layer_index`` and ``layer`` (its repr) of the first layer whose backward disagrees,
    ``part`` (which of its gradients: ``"dE/dinput"`` or a parameter name); ``layers`` holds
    every local check (one :class:`LayerCheck` per layer, then the loss), and ``end_to_end``
    the check of every parameter's gradient of the loss.
    """

    layer_index: int | None
    layer: str | None
    part: str | None
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
    report = compare_stacks([g], [t], [nz], {}, rtol, atol, hints, [np.empty(sub_shape)])
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
        t, noise = numeric_gradient(evaluate, arr, base, idx, self.eps, name)
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

    Parameters
    ----------
    model : chainrule.nn.Sequential
        The model whose backward pass is checked.
    X : numpy.ndarray
        A small batch of inputs.
    y : numpy.ndarray
        Its targets, as the loss takes them.
    loss : str or Loss
        The loss, by name or as an object.
    rtol, atol : float, default 1e-5 and 1e-7
        An element passes when :math:`|G - T| \le \mathrm{atol} + \mathrm{rtol}|T|`.
    eps : float or None
        The finite-difference step; None chooses one per element.
    seed : int, default 0
        Seeds the upstream gradients and the sampled elements.
    max_elements : int or None, default 64
        The elements checked per array (a seeded random subset beyond it; None checks all).

    Returns
    -------
    ModelCheck
        ``passed``, and for a failure the layer, the parameter and the mistake.

    Examples
    --------
    >>> from chainrule.nn import mlp
    >>> model = mlp([3, 4, 2], "tanh", "softmax", dtype="float64", seed=0)
    >>> X = np.random.default_rng(0).normal(size=(5, 3))
    >>> report = check_model(model, X, np.array([0, 1, 1, 0, 1]), loss="ce")
    >>> report.passed
    True
    >>> print(report)  # doctest: +NORMALIZE_WHITESPACE
    check_model: passed (4 layers and the loss, 9 gradients checked locally, and every
    parameter's gradient of the loss)
    """
    check_tolerances(rtol, atol, eps, 1, "check_model")
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
    index = name = part = where = None
    report = end
    if bad is not None:
        part, report = bad.first_failure()
        index, name = bad.index, bad.name
        where = f"{name} {part}" if index is None else f"layer {index} ({name}) {part}"
    elif not end.passed:
        where = end.label
    return ModelCheckReport(
        correct=bad is None and end.passed, kind=report.kind, where=where,
        sentence=report.sentence, expected=None, layer_index=index, layer=name, part=part,
        layers=checks, end_to_end=end,
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
    t_full, noise = numeric_gradient(evaluate, arr, base, range(arr.size), settings.eps, name)
    return compare_stacks([None], [t_full.T.reshape((1, *arr.shape))],
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
        correct=True, kind=None, where=None, sentence=reports[0].sentence if reports else
        "No parameter to check.", expected=None,
        max_abs_error=max((r.max_abs_error for r in reports), default=0.0),
        max_rel_error=max((r.max_rel_error for r in reports), default=0.0),
        worst_input=None, worst_index=(), claimed_value=np.nan, numeric_value=np.nan,
        factor=None,
        n_checked=sum(r.n_checked for r in reports), n_failed=0,
        rtol=settings.rtol, atol=settings.atol, label="end to end",
    )
