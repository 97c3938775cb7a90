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

Attributes
----------
OPTIMIZERS
    Name -> optimizer class: the one list of names that :func:`get` and the command line read.
SCHEDULES
    Name -> learning-rate schedule class, for :func:`get_schedule`.

Examples
--------
>>> from chainrule.optim import OPTIMIZERS, SCHEDULES
>>> list(OPTIMIZERS), list(SCHEDULES)
(['sgd', 'rmsprop', 'adam', 'adamw'], ['constant', 'step', 'exponential', 'cosine', 'plateau'])
>>> OPTIMIZERS["adamw"]().weight_decay
0.01
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

    Parameters
    ----------
    grads : list of numpy.ndarray
        The gradients, scaled in place.
    max_norm : float
        The largest joint norm allowed.

    Returns
    -------
    float
        :math:`\lVert g \rVert_2` before clipping.

    Examples
    --------
    >>> g = [np.array([3.0]), np.array([4.0])]
    >>> clip_grad_norm(g, max_norm=1.0)  # the joint norm of (3, 4)
    5.0
    >>> [a.round(4) for a in g]
    [array([0.6]), array([0.8])]
    """
    total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    if total > max_norm > 0.0:
        scale = max_norm / (total + 1e-12)
        for g in grads:
            g *= scale
    return total


class Optimizer:
    r"""Base class: holds the learning rate ``lr`` (changed by schedules) and per-parameter state.

    Parameters
    ----------
    lr : float
        The learning rate :math:`\eta > 0`.
    weight_decay : float, default 0.0
        The weight decay :math:`\lambda \ge 0`.
    clip_norm : float or None
        Clip the gradients' joint norm to this before each step (see :func:`clip_grad_norm`).

    Examples
    --------
    >>> opt = SGD(lr=0.1)
    >>> isinstance(opt, Optimizer), opt.get_config()
    (True, {'lr': 0.1, 'momentum': 0.0, 'nesterov': False, 'weight_decay': 0.0, 'clip_norm': None})
    >>> w = np.array([1.0]); opt.step([w], [np.array([2.0])]); opt.t, w
    (1, array([0.8]))
    """

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

    Parameters
    ----------
    lr : float, default 0.01
        The learning rate :math:`\eta`.
    momentum : float, default 0.0
        :math:`\mu` in :math:`[0, 1)`.
    nesterov : bool, default False
        Nesterov's look-ahead (needs ``momentum > 0``).
    weight_decay : float, default 0.0
        The L2 coefficient :math:`\lambda`.
    clip_norm : float or None
        See :class:`Optimizer`.

    Examples
    --------
    >>> w = np.array([1.0, -2.0])
    >>> opt = SGD(lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.step([w], [np.array([0.5, 0.5])])
    >>> w  # steps of 0.05, then 0.1 * (0.9 * 0.5 + 0.5) = 0.095
    array([ 0.855, -2.145])
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

    Parameters
    ----------
    lr : float, default 0.001
        The learning rate :math:`\eta`.
    rho : float, default 0.9
        The decay :math:`\rho` of the running mean square, in :math:`[0, 1)`.
    eps : float, default 1e-8
        :math:`\epsilon > 0`.
    weight_decay : float, default 0.0
        The L2 coefficient :math:`\lambda`.
    clip_norm : float or None
        See :class:`Optimizer`.

    Examples
    --------
    >>> w = np.array([1.0, 1.0])
    >>> RMSprop(lr=0.01).step([w], [np.array([1e-3, 1e3])])
    >>> w.round(6)  # both steps are lr / sqrt(1 - rho): the scale of g cancels
    array([0.968378, 0.968377])
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

    Parameters
    ----------
    lr : float, default 0.001
        The learning rate :math:`\eta`.
    beta1, beta2 : float, default 0.9 and 0.999
        The moments' decays, in :math:`[0, 1)`.
    eps : float, default 1e-8
        :math:`\epsilon > 0`.
    weight_decay : float or None
        :math:`\lambda`; None for the class's default (0 for Adam, 0.01 for AdamW).
    clip_norm : float or None
        See :class:`Optimizer`.

    Examples
    --------
    >>> w = np.array([1.0, 1.0])
    >>> Adam(lr=0.1).step([w], [np.array([1e-3, 1e3])])
    >>> w.round(6)  # a first step of lr * sign(g): after bias correction m/sqrt(v) = +-1
    array([0.900001, 0.9     ])
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
    r"""Adam with decoupled weight decay: :class:`Adam`'s constructor, two settings changed.

    ``weight_decay`` is 0.01 when left out, and it shrinks the weights directly,
    :math:`w \leftarrow w - \eta\lambda w`, instead of adding :math:`\lambda w` to the
    gradient (Loshchilov & Hutter, 2019).

    Parameters
    ----------
    lr, beta1, beta2, eps, clip_norm
        As :class:`Adam`'s.
    weight_decay : float or None, default 0.01
        :math:`\lambda`; None for 0.01.

    Examples
    --------
    >>> w = np.array([1.0])
    >>> AdamW(lr=0.1).step([w], [np.array([0.0])])  # no gradient: only the decay
    >>> w  # 1 - lr * weight_decay = 1 - 0.1 * 0.01
    array([0.999])
    """

    name = "adamw"
    decoupled = True
    default_weight_decay = 0.01


OPTIMIZERS: dict[str, type[Optimizer]] = {cls.name: cls for cls in (SGD, RMSprop, Adam, AdamW)}


def get(name_or_optimizer, **kwargs) -> Optimizer:
    """A fresh optimizer by name (``"sgd"``, ``"adam"``, ...) or class; an Optimizer as it is.

    ``kwargs`` go to the constructor: ``get("sgd", lr=0.1, momentum=0.9)``. An instance is
    returned as it is and takes no ``kwargs`` (set its attributes instead): the rule of every
    ``get`` in chainrule, see :mod:`chainrule._registry`.

    Parameters
    ----------
    name_or_optimizer : str, type or Optimizer
        A key of :data:`OPTIMIZERS`, an optimizer class, or an instance.
    **kwargs
        The constructor's arguments, for a name or a class.

    Returns
    -------
    Optimizer
        A new optimizer, or ``name_or_optimizer`` itself when it is one.

    Examples
    --------
    >>> get("sgd", lr=0.1, momentum=0.9)
    SGD(lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0, clip_norm=None)
    """
    return _registry.build(name_or_optimizer, kwargs, kind="optimizer", base=Optimizer,
                           registry=OPTIMIZERS, aliases={}, example="adam")


# --- learning-rate schedules (applied once per epoch) -------------------------------------------


class Schedule:
    """A learning-rate schedule: ``lr(epoch, base_lr, metric)`` is the rate of ``epoch``.

    Examples
    --------
    A subclass implements ``lr``; the base class keeps the rate constant:

    >>> Schedule().lr(epoch=7, base_lr=0.1)
    0.1
    >>> isinstance(CosineLR(), Schedule)
    True
    """

    name = "schedule"

    def lr(self, epoch: int, base_lr: float, metric: float | None = None) -> float:
        return base_lr

    def get_config(self) -> dict:
        """The constructor's keyword arguments: ``type(s)(**s.get_config())``."""
        return _registry.constructor_config(self)

    def __repr__(self) -> str:
        return _registry.config_repr(self)


class ConstantLR(Schedule):
    r""":math:`\eta_t = \eta_0`.

    Examples
    --------
    >>> s = ConstantLR()
    >>> [round(s.lr(t, 0.1), 4) for t in range(5)]
    [0.1, 0.1, 0.1, 0.1, 0.1]
    """

    name = "constant"


class StepLR(Schedule):
    r""":math:`\eta_t = \eta_0\,\gamma^{\lfloor t / s \rfloor}`.

    Parameters
    ----------
    step_size : int, default 10
        :math:`s`, the epochs between two drops.
    gamma : float, default 0.1
        :math:`\gamma`, the factor of each drop.

    Examples
    --------
    >>> s = StepLR(step_size=2, gamma=0.5)
    >>> [round(s.lr(t, 0.1), 4) for t in range(5)]
    [0.1, 0.1, 0.05, 0.05, 0.025]
    """

    name = "step"

    def __init__(self, step_size: int = 10, gamma: float = 0.1):
        self.step_size = check_scalar(step_size, "step_size", "StepLR", kind=int, low=1)
        self.gamma = check_scalar(gamma, "gamma", "StepLR", low=0.0, low_open=True)

    def lr(self, epoch, base_lr, metric=None):
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(Schedule):
    r""":math:`\eta_t = \eta_0\,\gamma^{t}`.

    Parameters
    ----------
    gamma : float, default 0.95
        :math:`\gamma`, the factor per epoch.

    Examples
    --------
    >>> s = ExponentialLR(gamma=0.5)
    >>> [round(s.lr(t, 0.1), 4) for t in range(5)]
    [0.1, 0.05, 0.025, 0.0125, 0.0063]
    """

    name = "exponential"

    def __init__(self, gamma: float = 0.95):
        self.gamma = check_scalar(gamma, "gamma", "ExponentialLR", low=0.0, low_open=True)

    def lr(self, epoch, base_lr, metric=None):
        return base_lr * self.gamma**epoch


class CosineLR(Schedule):
    r"""Cosine annealing (Loshchilov & Hutter, 2017) over ``t_max`` epochs.

    .. math:: \eta_t = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})(1 + \cos(\pi t / T))

    Parameters
    ----------
    t_max : int, default 50
        :math:`T`, the epochs from :math:`\eta_0` down to :math:`\eta_{min}`; constant after.
    eta_min : float, default 0.0
        :math:`\eta_{min}`.

    Examples
    --------
    >>> s = CosineLR(t_max=4)
    >>> [round(s.lr(t, 0.1), 4) for t in range(5)]
    [0.1, 0.0854, 0.05, 0.0146, 0.0]
    """

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
    """Reduce the rate when the loss stops improving.

    The rate is multiplied by ``factor`` when ``metric`` (a loss) has not improved by more than
    ``threshold`` (relative) for ``patience`` epochs; never below ``min_lr``.

    Parameters
    ----------
    factor : float, default 0.1
        The factor of each reduction, in :math:`(0, 1)`.
    patience : int, default 5
        The epochs without improvement tolerated before reducing.
    threshold : float, default 1e-4
        The relative improvement that counts.
    min_lr : float, default 0.0
        The floor of the rate.

    Examples
    --------
    >>> s = ReduceLROnPlateau(factor=0.5, patience=1)
    >>> [s.lr(t, 0.1, metric=loss) for t, loss in enumerate([1.0, 0.5, 0.5, 0.5, 0.5])]
    [0.1, 0.1, 0.1, 0.05, 0.05]
    """

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
    """A fresh learning-rate schedule by name or class; ``None`` means constant.

    Names: ``"constant"``, ``"step"``, ``"exponential"``, ``"cosine"``, ``"plateau"``. A
    Schedule instance is returned as is (without ``kwargs``, as every ``get``).

    Parameters
    ----------
    name_or_schedule : str, type, Schedule or None
        A key of :data:`SCHEDULES`, a schedule class, an instance, or None.
    **kwargs
        The constructor's arguments, for a name or a class.

    Returns
    -------
    Schedule
        A new schedule, or ``name_or_schedule`` itself when it is one.

    Examples
    --------
    >>> get_schedule("cosine", t_max=10), get_schedule(None)
    (CosineLR(t_max=10, eta_min=0.0), ConstantLR())
    """
    if name_or_schedule is None:
        name_or_schedule = "constant"
    return _registry.build(name_or_schedule, kwargs, kind="learning-rate schedule", base=Schedule,
                           registry=SCHEDULES, aliases={}, example="cosine")
