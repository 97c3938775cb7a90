r"""Gradient-descent optimizers, gradient clipping and learning-rate schedules.

Sorted in order of increasing complexity. The plain update is gradient descent's

.. math::

    w \leftarrow w - \eta \frac{\partial E}{\partial w},

and every optimizer here is that update applied to a transformed gradient (a velocity, or a
gradient divided by a running root-mean-square). Each ``step(params, grads)`` updates the
parameter arrays in place; the state (velocities, moments) is kept per parameter, by position.

>>> w = np.array([1.0, -2.0]); g = np.array([0.5, 0.5])
>>> SGD(lr=0.1).step([w], [g]); w
array([ 0.95, -2.05])
"""

from __future__ import annotations

import math

import numpy as np

from chainrule import _registry
from chainrule._checks import check_scalar

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD",
    "Adam",
    "AdamW",
    "ConstantLR",
    "CosineLR",
    "ExponentialLR",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "Schedule",
    "StepLR",
    "clip_grad_norm",
    "get",
    "get_schedule",
]


def clip_grad_norm(grads: list[np.ndarray], max_norm: float) -> float:
    r"""Scale ``grads`` in place so that their joint L2 norm is at most ``max_norm``.

    .. math:: g \leftarrow g \cdot \min\left(1, \frac{\text{max\_norm}}{\lVert g \rVert_2}\right)

    Returns the norm before clipping.
    """
    total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    if total > max_norm > 0.0:
        scale = max_norm / (total + 1e-12)
        for g in grads:
            g *= scale
    return total


class Optimizer:
    """Base class: holds the learning rate ``lr`` (changed by schedules) and per-parameter state."""

    name = "optimizer"

    def __init__(self, lr: float, weight_decay: float = 0.0, clip_norm: float | None = None):
        owner = type(self).__name__
        self.lr = check_scalar(lr, "lr", owner, low=0.0, low_open=True)
        self.weight_decay = check_scalar(weight_decay, "weight_decay", owner, low=0.0)
        self.clip_norm = check_scalar(
            clip_norm, "clip_norm", owner, low=0.0, low_open=True, allow_none=True
        )
        self.state: list[dict] = []
        self.t = 0

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """Apply one update to every parameter in place (gradients may be scaled in place too)."""
        if self.clip_norm is not None:
            clip_grad_norm(grads, self.clip_norm)
        if len(self.state) != len(params):
            self.state = [{} for _ in params]
        self.t += 1
        for p, g, s in zip(params, grads, self.state, strict=True):
            self._update(p, g, s)

    def _update(self, p, g, state) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the state (velocities, moments, step count)."""
        self.state = []
        self.t = 0

    def get_config(self) -> dict:
        """The constructor's keyword arguments: ``type(opt)(**opt.get_config())``."""
        return _registry.constructor_config(self)

    def __repr__(self) -> str:
        return _registry.config_repr(self)


class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional (Nesterov) momentum and L2 weight decay.

    .. math::

        g &\leftarrow \nabla_w E + \lambda w \\
        v &\leftarrow \mu v + g \\
        w &\leftarrow w - \eta\,(g + \mu v \text{ if Nesterov else } v)

    With ``momentum=0`` this is exactly :math:`w \leftarrow w - \eta\,\partial E/\partial w`.
    """

    name = "sgd"

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ):
        super().__init__(lr, weight_decay, clip_norm)
        self.momentum = check_scalar(
            momentum, "momentum", "SGD", low=0.0, high=1.0, high_open=True
        )
        if nesterov and self.momentum == 0.0:
            raise ValueError("SGD with nesterov=True needs momentum > 0; got momentum=0.")
        self.nesterov = bool(nesterov)

    def _update(self, p, g, state) -> None:
        if self.weight_decay:
            g += self.weight_decay * p
        if self.momentum:
            v = state.get("v")
            if v is None:
                v = state["v"] = np.zeros_like(p)
            v *= self.momentum
            v += g
            if self.nesterov:
                g += self.momentum * v
            else:
                g = v
        step = state.get("tmp")
        if step is None:
            step = state["tmp"] = np.empty_like(p)
        np.multiply(g, self.lr, out=step)
        p -= step  # w <- w - eta dE/dw


class RMSprop(Optimizer):
    r"""RMSprop (Hinton's lecture 6e): divide the gradient by a running RMS of its history.

    .. math::

        s \leftarrow \rho s + (1 - \rho) g^2, \qquad
        w \leftarrow w - \eta\, \frac{g}{\sqrt{s} + \epsilon}
    """

    name = "rmsprop"

    def __init__(
        self,
        lr: float = 0.001,
        rho: float = 0.9,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        clip_norm: float | None = None,
    ):
        super().__init__(lr, weight_decay, clip_norm)
        self.rho = check_scalar(rho, "rho", "RMSprop", low=0.0, high=1.0, high_open=True)
        self.eps = check_scalar(eps, "eps", "RMSprop", low=0.0, low_open=True)

    def _update(self, p, g, state) -> None:
        if self.weight_decay:
            g += self.weight_decay * p
        s = state.get("s")
        if s is None:
            s = state["s"] = np.zeros_like(p)
            state["tmp"] = np.empty_like(p)
        tmp = state["tmp"]
        s *= self.rho
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - self.rho
        s += tmp
        np.sqrt(s, out=tmp)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        tmp *= self.lr
        p -= tmp


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015) with bias correction; ``decoupled=True`` gives AdamW.

    .. math::

        m &\leftarrow \beta_1 m + (1-\beta_1) g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2 \\
        w &\leftarrow w - \eta\,\frac{\hat m}{\sqrt{\hat v} + \epsilon},
        \quad \hat m = \frac{m}{1-\beta_1^t},\ \hat v = \frac{v}{1-\beta_2^t}

    Plain Adam adds ``weight_decay * w`` to the gradient (L2); AdamW (Loshchilov & Hutter, 2019)
    instead shrinks the weights directly: :math:`w \leftarrow w - \eta\lambda w`.
    """

    name = "adam"
    decoupled = False
    #: The weight decay when ``weight_decay`` is left out: none for Adam, 0.01 for AdamW.
    default_weight_decay = 0.0

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float | None = None,
        clip_norm: float | None = None,
    ):
        if weight_decay is None:
            weight_decay = self.default_weight_decay
        super().__init__(lr, weight_decay, clip_norm)
        owner = type(self).__name__
        self.beta1 = check_scalar(beta1, "beta1", owner, low=0.0, high=1.0, high_open=True)
        self.beta2 = check_scalar(beta2, "beta2", owner, low=0.0, high=1.0, high_open=True)
        self.eps = check_scalar(eps, "eps", owner, low=0.0, low_open=True)

    def _update(self, p, g, state) -> None:
        if self.weight_decay:
            if self.decoupled:
                p *= 1.0 - self.lr * self.weight_decay
            else:
                g += self.weight_decay * p
        m = state.get("m")
        if m is None:
            m = state["m"] = np.zeros_like(p)
            state["v"] = np.zeros_like(p)
            state["tmp"] = np.empty_like(p)
        v, tmp = state["v"], state["tmp"]
        b1, b2 = self.beta1, self.beta2
        m *= b1
        np.multiply(g, 1.0 - b1, out=tmp)
        m += tmp
        v *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        v += tmp
        # Bias corrections folded into the step size and epsilon (Kingma & Ba, section 2).
        c1 = 1.0 - b1**self.t
        c2 = math.sqrt(1.0 - b2**self.t)
        np.sqrt(v, out=tmp)
        tmp += self.eps * c2
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr * c2 / c1
        p -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay, ``weight_decay=0.01`` when left out: the same
    constructor, two settings."""

    name = "adamw"
    decoupled = True
    default_weight_decay = 0.01


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, RMSprop, Adam, AdamW)}


def get(name_or_optimizer, **kwargs) -> Optimizer:
    """A fresh optimizer by name (``"sgd"``, ``"adam"``, ...) or class; an Optimizer as it is.

    ``kwargs`` go to the constructor: ``get("sgd", lr=0.1, momentum=0.9)``. An instance is
    returned as it is and takes no ``kwargs`` (set its attributes instead): the rule of every
    ``get`` in chainrule, see :mod:`chainrule._registry`.
    """
    return _registry.build(name_or_optimizer, kwargs, kind="optimizer", base=Optimizer,
                           registry=OPTIMIZERS, aliases={}, example="adam")


# --- learning-rate schedules (applied once per epoch) -------------------------------------------


class Schedule:
    """A learning-rate schedule: ``lr(epoch, base_lr, metric)`` is the rate of ``epoch``."""

    name = "schedule"

    def lr(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        return base_lr

    def get_config(self) -> dict:
        """The constructor's keyword arguments: ``type(s)(**s.get_config())``."""
        return _registry.constructor_config(self)

    def __repr__(self) -> str:
        return _registry.config_repr(self)


class ConstantLR(Schedule):
    r""":math:`\eta_t = \eta_0`."""

    name = "constant"


class StepLR(Schedule):
    r""":math:`\eta_t = \eta_0\,\gamma^{\lfloor t / s \rfloor}`."""

    name = "step"

    def __init__(self, step_size: int = 10, gamma: float = 0.1):
        self.step_size = check_scalar(step_size, "step_size", "StepLR", kind=int, low=1)
        self.gamma = check_scalar(gamma, "gamma", "StepLR", low=0.0, low_open=True)

    def lr(self, epoch, base_lr, metric=None):
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(Schedule):
    r""":math:`\eta_t = \eta_0\,\gamma^{t}`."""

    name = "exponential"

    def __init__(self, gamma: float = 0.95):
        self.gamma = check_scalar(gamma, "gamma", "ExponentialLR", low=0.0, low_open=True)

    def lr(self, epoch, base_lr, metric=None):
        return base_lr * self.gamma**epoch


class CosineLR(Schedule):
    r"""Cosine annealing (Loshchilov & Hutter, 2017) over ``t_max`` epochs:
    :math:`\eta_t = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})(1 + \cos(\pi t / T))`."""

    name = "cosine"

    def __init__(self, t_max: int = 50, eta_min: float = 0.0):
        self.t_max = check_scalar(t_max, "t_max", "CosineLR", kind=int, low=1)
        self.eta_min = check_scalar(eta_min, "eta_min", "CosineLR", low=0.0)

    def lr(self, epoch, base_lr, metric=None):
        t = min(epoch, self.t_max)
        return self.eta_min + 0.5 * (base_lr - self.eta_min) * (
            1.0 + math.cos(math.pi * t / self.t_max)
        )


class ReduceLROnPlateau(Schedule):
    """Multiply the rate by ``factor`` when ``metric`` (a loss) has not improved by more than
    ``threshold`` (relative) for ``patience`` epochs; never below ``min_lr``."""

    name = "plateau"

    def __init__(
        self, factor: float = 0.1, patience: int = 5, threshold: float = 1e-4, min_lr: float = 0.0
    ):
        owner = "ReduceLROnPlateau"
        self.factor = check_scalar(
            factor, "factor", owner, low=0.0, low_open=True, high=1.0, high_open=True
        )
        self.patience = check_scalar(patience, "patience", owner, kind=int, low=0)
        self.threshold = check_scalar(threshold, "threshold", owner, low=0.0)
        self.min_lr = check_scalar(min_lr, "min_lr", owner, low=0.0)
        self._best = math.inf
        self._bad = 0
        self._scale = 1.0

    def lr(self, epoch, base_lr, metric=None):
        if metric is not None and math.isfinite(metric):
            if metric < self._best * (1.0 - self.threshold):
                self._best, self._bad = metric, 0
            else:
                self._bad += 1
                if self._bad > self.patience:
                    self._scale *= self.factor
                    self._bad = 0
        return max(base_lr * self._scale, self.min_lr)


SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls for cls in (ConstantLR, StepLR, ExponentialLR, CosineLR, ReduceLROnPlateau)
}


def get_schedule(name_or_schedule, **kwargs) -> Schedule:
    """A fresh schedule by name (``"constant"``, ``"step"``, ``"exponential"``, ``"cosine"``,
    ``"plateau"``) or class; ``None`` means constant; a Schedule instance is returned as is
    (without ``kwargs``, as every ``get``)."""
    if name_or_schedule is None:
        name_or_schedule = "constant"
    return _registry.build(name_or_schedule, kwargs, kind="learning-rate schedule", base=Schedule,
                           registry=SCHEDULES, aliases={}, example="cosine")
