r"""The training loop: mini-batch gradient descent with backpropagation.

One step on a batch :math:`(X_b, y_b)` of :math:`m` samples (:meth:`Trainer.step`):

1. forward through the layers (the output activation is fused with a probability loss, see
   :func:`fused_objective`);
2. the loss and :math:`\partial E/\partial(\text{output})`, averaged over :math:`m` (the mean's
   :math:`1/m`);
3. backward through the layers, last to first (the first layer skips :math:`\partial E/\partial X`,
   which nothing needs);
4. :math:`w \leftarrow w - \eta\,\partial E/\partial w` through the optimizer.

:class:`Trainer` takes these steps and :class:`Batches` draws an epoch's batches; :func:`fit`,
the scikit-learn estimators (:mod:`chainrule.sklearn`) and the benchmarks all train through
the two. A loop of one's own is three lines::

    trainer = Trainer(model, "ce", chainrule.optim.SGD(lr=0.05))
    for xb, yb, _ in Batches(X, y, batch_size=128)(rng.permutation(len(X))):
        loss, _ = trainer.step(xb, yb)

Everything that can be wrong with the data is checked once, before the first step.
"""

from __future__ import annotations

import copy
import inspect
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from chainrule import losses as _losses
from chainrule import optim as _optim
from chainrule._checks import as_float_array, check_finite, check_scalar
from chainrule._progress import Progress, StopFlag
from chainrule._threads import BlasThreads, check_threads
from chainrule.fusion import default_loss, fused_objective

__all__ = [
    "Batches",
    "BlasThreads",
    "EpochLoop",
    "EpochStats",
    "History",
    "LoopHooks",
    "Trainer",
    "TrainingDivergedError",
    "TrainingWarning",
    "default_loss",
    "evaluate",
    "fit",
    "fused_objective",
]


class TrainingDivergedError(FloatingPointError, ValueError):
    """Training diverged: the loss, the weights or the outputs became NaN or inf.

    Raised by :func:`fit` and by the scikit-learn estimators (a ValueError too, as scikit-learn
    raises). After a divergence found in an epoch the weights from its start, the last finite
    ones, are restored and :meth:`at` words the message; :func:`fit` attaches its
    :class:`History` as ``.history`` (None from the estimators)."""

    def __init__(self, message: str, history: History | None = None):
        super().__init__(message)
        self.history = history

    @classmethod
    def at(cls, epoch: int, what: str, hint: str, *, batch: int | None = None,
           history: History | None = None, lead: str = "") -> TrainingDivergedError:
        """The error for a divergence found in ``epoch`` (and ``batch``), both counted from 1:
        ``what`` happened, the epoch's starting weights were restored, ``hint`` is the fix;
        ``lead`` is a sentence put first."""
        where = f"epoch {epoch}" if batch is None else f"epoch {epoch}, batch {batch}"
        return cls(
            f"{lead}Training diverged at {where}: {what}. The weights from the start of epoch "
            f"{epoch} (the last finite ones) were restored. {hint}",
            history,
        )


@dataclass
class History:
    """What happened during :func:`fit`, one entry per epoch."""

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    samples_per_second: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    interrupted: bool = False

    @property
    def epochs_run(self) -> int:
        return len(self.epoch)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def __repr__(self) -> str:
        last = f", loss={self.loss[-1]:.4g}" if self.loss else ""
        return f"History(epochs={self.epochs_run}{last})"

    def _repr_html_(self) -> str:
        """In a notebook: the loss and accuracy curves (inline SVG) and a summary line."""
        from chainrule._display import history_html

        return history_html(self)

    def _repr_markdown_(self) -> str:
        from chainrule._display import history_markdown

        return history_markdown(self)


# --- data preparation -----------------------------------------------------------------------------


def _prepare_targets(model, y, loss, n_out: int, name: str = "y") -> tuple[np.ndarray, str]:
    """Check ``y`` against the loss and the output width; return the training form and the task."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must be numeric; got dtype {y.dtype}. Encode class names as integers "
            "0..K-1 first (chainrule.data.encode_labels)."
        )
    if y.dtype.kind == "f":
        check_finite(y, name)
    lname = loss.name
    if lname in ("ce", "ce_with_logits"):
        if y.ndim == 1:
            return _class_labels(y, n_out, name), "classification"
        if y.ndim != 2 or y.shape[1] != n_out:
            raise ValueError(
                f"{name} has shape {y.shape}; cross-entropy needs class labels of shape (m,) or "
                f"one-hot rows of shape (m, {n_out})."
            )
        return y.astype(model.dtype), "classification"
    target = y.astype(model.dtype)
    if target.ndim == 1:
        target = target.reshape(-1, 1)
    if target.ndim != 2 or target.shape[1] != n_out:
        raise ValueError(
            f"{name} has shape {y.shape} but the model has {n_out} outputs; it needs shape "
            f"{'(m,) or (m, 1)' if n_out == 1 else f'(m, {n_out})'}."
        )
    if lname in ("bce", "bce_with_logits"):
        if ((target < 0) | (target > 1)).any():
            raise ValueError(
                f"{name} must hold binary targets in [0, 1] for {type(loss).__name__}; got values "
                f"from {target.min():g} to {target.max():g}."
            )
        return target, "classification"
    return target, "regression"


def _class_labels(y: np.ndarray, n_out: int, name: str) -> np.ndarray:
    """``y`` of shape (m,) as int64 labels in 0..n_out-1; a non-integer or a label outside the
    outputs is an error that names it."""
    if y.dtype.kind == "f":
        fractional = y != np.round(y)
        if fractional.any():
            raise ValueError(f"{name} holds non-integer class labels; got {y[fractional][0]}.")
    labels = y.astype(np.int64)
    outside = labels[(labels < 0) | (labels >= n_out)]
    if outside.size:
        raise ValueError(
            f"{name} has the label {outside[0]} but the model has {n_out} outputs, so labels "
            f"must be in 0..{n_out - 1}. Encode the labels, or widen the output layer."
        )
    return labels


def _prepare_inputs(model, X, name: str = "X") -> np.ndarray:
    """``X`` checked (its shape by the model's ``prepare_input`` where it has one: rows, sequences
    or images), finite, non-empty, in the model's dtype."""
    if hasattr(model, "prepare_input"):
        X = model.prepare_input(X, name)
    else:
        X = as_float_array(X, name)
        if X.ndim != 2 or X.shape[-1] != model.in_features:
            raise ValueError(f"{name} must be 2-D (samples x {model.in_features} features); got "
                             f"shape {X.shape}.")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples); training needs at least one sample.")
    _check_all_finite(X, name)
    return np.ascontiguousarray(X, dtype=model.dtype)


def _check_all_finite(X: np.ndarray, name: str) -> None:
    """:func:`check_finite` at the cost of one sum: a NaN or an infinity makes the sum NaN or
    infinite, so a finite sum proves every value finite; only a sum that is not (a non-finite
    value, or finite values that overflow it) is searched for the value to name."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(X, axis=None)
    if not np.isfinite(total):
        check_finite(X, name)


def _accuracy(out: np.ndarray, target: np.ndarray, threshold: float = 0.0) -> float:
    """Accuracy of scores ``out`` (logits when the output is fused, else probabilities)."""
    if out.shape[1] == 1:
        return float(np.mean((out[:, 0] > threshold) == (target[:, 0] > 0.5)))
    pred = np.argmax(out, axis=1)
    truth = target if target.ndim == 1 else np.argmax(target, axis=1)
    return float(np.mean(pred == truth))


# --- the step and the batches --------------------------------------------------------------------


class Trainer:
    r"""The gradient step of every training loop, and the state it keeps between steps.

    ``Trainer(model, loss, optimizer, weighted=False)`` fuses the output activation with
    ``loss`` (:func:`fused_objective`); :meth:`step` trains on one batch. ``optimizer`` is an
    :class:`~chainrule.optim.Optimizer` or anything with its ``step(params, grads)``; a trainer
    that only scores (:meth:`scores`, :meth:`loss_of`) needs none. With ``weighted`` a batch's
    loss is :math:`\sum_i w_i \ell_i / \sum_i w_i`.
    """

    def __init__(self, model, loss, optimizer=None, weighted: bool = False):
        self.model = model
        self.n_body, self.objective = fused_objective(model, loss)
        self.weighted = weighted
        if weighted:  # per-sample losses, combined as sum(w_i l_i) / sum(w_i) in step()
            self.objective = copy.copy(self.objective)  # the caller's loss object stays as it was
            self.objective.reduction = "none"
        self.body = model.layers[: self.n_body]
        self.optimizer = optimizer
        self.params = model.parameters()
        self.grads = model.gradients()
        # A single output unit is a positive prediction above 0 as a logit, 0.5 as a probability.
        self.threshold = 0.0 if self.objective.from_logits else 0.5
        # The first layer with parameters needs no dL/dX: nothing uses it.
        self.first_param = next(
            (i for i, layer in enumerate(self.body) if layer.parameters()), len(self.body)
        )
        self.skip_input_grad = self.first_param < len(self.body) and "need_input_grad" in (
            inspect.signature(self.body[self.first_param].backward).parameters)

    def step(
        self, xb: np.ndarray, yb: np.ndarray, wb: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """Forward, loss, backward and update on one batch; returns the loss and the scores
        (logits when fused). A non-finite loss leaves the weights as they were."""
        h = xb
        for layer in self.body:
            h = layer.forward(h)
        loss = self.objective._forward(h, yb)
        g = self.objective._backward()
        if self.weighted:
            scale = wb / wb.sum()
            loss = float(scale @ loss)
            g *= scale.reshape(-1, *([1] * (g.ndim - 1))).astype(g.dtype, copy=False)
        for i in range(len(self.body) - 1, self.first_param, -1):
            g = self.body[i].backward(g)
        if self.first_param < len(self.body):
            first = self.body[self.first_param]
            if self.skip_input_grad:
                first.backward(g, need_input_grad=False)
            else:
                first.backward(g)
        if math.isfinite(loss):
            self.optimizer.step(self.params, self.grads)
        return loss, h

    def scores(self, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """The body's output (logits when fused), in chunks of ``batch_size`` rows."""
        outs = []
        for i in range(0, len(X), batch_size):
            h = X[i : i + batch_size]
            for layer in self.body:
                h = layer.forward(h)
            outs.append(np.array(h, copy=True))
        return np.concatenate(outs)

    def loss_of(self, scores: np.ndarray, target: np.ndarray) -> float:
        """The mean loss of ``scores`` against ``target``."""
        out = self.objective._forward(scores, target)
        return float(np.mean(out)) if self.weighted else float(out)

    def snapshot(self) -> list[np.ndarray]:
        """A copy of the parameters, for :meth:`restore`."""
        return [p.copy() for p in self.params]

    def restore(self, saved: list[np.ndarray]) -> None:
        """Put a :meth:`snapshot` back into the parameters, in place."""
        for p, s in zip(self.params, saved, strict=True):
            p[...] = s

    def weights_finite(self) -> bool:
        return all(np.isfinite(p).all() for p in self.params)


class Batches:
    """An epoch's mini-batches: ``for xb, yb, wb in Batches(X, y, 32, weights)(order): ...``.

    Called with an ``order`` (a permutation of the sample indices, or of some of them), it
    gathers each full batch into one buffer for X and one for y, kept across batches and epochs
    (a batch is valid until the next one is drawn: copy it to keep it); the last, shorter batch
    and a sparse X are indexed instead. Called without one, it slices X and y in their order
    (views, no copy). ``wb`` is None without ``weights``.
    """

    def __init__(self, X, y: np.ndarray, batch_size: int, weights: np.ndarray | None = None):
        self.X, self.y, self.weights = X, y, weights
        self.n = X.shape[0]
        self.batch_size = int(batch_size)
        dense = isinstance(X, np.ndarray)
        self._xbuf = np.empty((self.batch_size, *X.shape[1:]), X.dtype) if dense else None
        self._ybuf = np.empty((self.batch_size, *y.shape[1:]), y.dtype)

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __call__(self, order: np.ndarray | None = None) -> Iterator[tuple]:
        X, y, w, size = self.X, self.y, self.weights, self.batch_size
        if order is not None:
            order = self._checked(order)
        for start in range(0, self.n if order is None else len(order), size):
            if order is None:
                part = slice(start, start + size)
                xb, yb = X[part], y[part]
            else:
                part = order[start : start + size]
                if len(part) == size and self._xbuf is not None:
                    # mode="clip" writes straight into the buffer (mode="raise" with out= goes
                    # through a temporary copy); the indices were checked above.
                    xb = np.take(X, part, axis=0, out=self._xbuf, mode="clip")
                    yb = np.take(y, part, axis=0, out=self._ybuf, mode="clip")
                else:
                    xb, yb = X[part], y[part]
            yield xb, yb, None if w is None else w[part]

    def _checked(self, order) -> np.ndarray:
        """``order`` as integer indices into the samples, once per epoch (not per batch)."""
        order = np.asarray(order)
        if order.ndim != 1 or order.dtype.kind not in "iu":
            raise ValueError(
                f"Batches needs order as a 1-D array of integer sample indices; got dtype "
                f"{order.dtype} and shape {order.shape}."
            )
        if order.size and (order.min() < 0 or order.max() >= self.n):
            raise IndexError(
                f"Batches got a sample index outside [0, {self.n}) in order; there are "
                f"{self.n} samples, numbered from 0."
            )
        return order


# --- the epoch loop -------------------------------------------------------------------------------


@dataclass
class EpochStats:
    """One pass over the batches: the loss, the accuracy (None unless asked for), the samples
    trained on and the seconds it took."""

    loss: float
    accuracy: float | None
    seen: int
    time: float


class LoopHooks:
    """What a training loop does around :class:`EpochLoop`'s steps; each hook here does nothing.

    :func:`fit` keeps its history, schedule, callbacks and early stopping in its hooks; the
    scikit-learn estimators keep ``loss_curve_``, ``n_iter_no_change`` and ``tol``, the L2 term
    and their divergence message in theirs.
    """

    #: None, or ``penalty(s) -> float``: called before each step with the batch's weight sum
    #: :math:`s` (its size without weights); what it returns is added to the batch's loss, and
    #: it may prepare the step (the estimators' L2 term sets its gradient's coefficient there).
    penalty = None
    #: Each batch's loss counts this many times in the epoch's loss (the estimators average the
    #: squared error over the outputs too).
    loss_scale: float = 1.0

    def begin_epoch(self, epoch: int) -> None:
        """Before ``epoch`` (counted from 0): a schedule sets the learning rate here."""

    def end_epoch(self, epoch: int, stats: EpochStats) -> bool:
        """After ``epoch``: bookkeeping; True ends training."""
        return False

    def diverged(self, epoch: int, what: str, batch: int | None) -> Exception | None:
        """The loss (at ``batch``, from 1) or, after the epoch's last update, the weights became
        NaN or inf. The error returned is raised once the weights from the start of the epoch
        are restored; None carries on (the step is then the hook's to take or skip)."""
        return TrainingDivergedError.at(epoch + 1, what, "Lower the learning rate.", batch=batch)


class EpochLoop:
    r"""The one epoch loop: :func:`fit` and the scikit-learn estimators both train through it.

    Each epoch: ``hooks.begin_epoch``, a fresh shuffle drawn from ``rng`` (the samples in order
    without ``shuffle``), :meth:`Trainer.step` on each of the :class:`Batches`, then
    ``hooks.end_epoch``, which may end training. A step adds nothing to the trainer's work but
    a finiteness test of the loss, a running sum and the predicted class written into one array
    (with ``accuracy``); the accuracy and the epoch's loss are computed once per epoch. A
    non-finite loss (or, after the epoch, non-finite weights) goes to ``hooks.diverged``.
    With ``blas`` (an entered :class:`BlasThreads`) the threads are measured on the first steps
    of an epoch; with ``progress`` a live bar follows the batches; a ``flag`` whose ``stop``
    becomes true (Ctrl-C) ends the epoch after the current batch.
    """

    def __init__(self, trainer: Trainer, batches: Batches, hooks: LoopHooks | None = None, *,
                 rng: np.random.Generator | None = None, shuffle: bool = True,
                 accuracy: bool = False, blas: BlasThreads | None = None, progress=None,
                 flag=None):
        self.trainer, self.batches = trainer, batches
        self.hooks = hooks if hooks is not None else LoopHooks()
        self.rng, self.shuffle = (rng if rng is not None else np.random.default_rng()), shuffle
        self.blas, self.progress = blas, progress
        self.flag = flag if flag is not None else StopFlag()  # never set unless entered
        # under "mean" each batch's loss counts by its size; under "sum" the losses add up
        self.mean = trainer.weighted or getattr(trainer.objective, "reduction", "mean") == "mean"
        self._hits = _Hits(batches.y, trainer.threshold, batches.n) if accuracy else None
        self.start_weights: list[np.ndarray] = []
        self.last_batch, self.seen = None, 0

    def run(self, epochs: int) -> int:
        """Train up to ``epochs`` epochs; returns the epochs begun."""
        epoch = -1
        for epoch in range(epochs):
            self.hooks.begin_epoch(epoch)
            if self.hooks.end_epoch(epoch, self.epoch(epoch)):
                break
        return epoch + 1

    def epoch(self, epoch: int) -> EpochStats:
        """One pass over the batches (see the class)."""
        trainer, hooks, flag, blas, hits = (self.trainer, self.hooks, self.flag, self.blas,
                                            self._hits)
        order = self.rng.permutation(self.batches.n) if self.shuffle else None
        self.start_weights = trainer.snapshot()
        penalty, scale, step, mean = hooks.penalty, hooks.loss_scale, trainer.step, self.mean
        live = self.progress is not None and self.progress.live
        if blas is not None:
            blas.remeasure()
        total, seen, pos, b, skipped = 0.0, 0, 0, -1, []
        t0 = time.perf_counter()
        for b, (xb, yb, wb) in enumerate(self.batches(order)):
            m = len(yb)
            if wb is not None and not wb.any():
                skipped.append((pos, pos + m))  # a batch of zero-weight samples teaches nothing
                pos += m
                continue
            extra = 0.0 if penalty is None else penalty(m if wb is None else float(wb.sum()))
            probing = blas is not None and blas.probing
            if probing:
                blas.before()
            loss, scores = step(xb, yb, wb)
            if probing:
                blas.after()
            if not math.isfinite(loss):
                # Even finite weights that give an inf loss are not the "last finite" ones.
                self._diverged(epoch, f"the loss became {loss}", b + 1)
            total += (loss * scale + extra) * m if mean else loss * scale + extra
            if hits is not None:
                hits.record(scores, pos, m)
            pos += m
            seen += m
            if live:
                self.progress.batch(epoch, b, loss, seen, t0)
            if flag.stop:
                break
        elapsed = time.perf_counter() - t0
        self.seen, self.last_batch = seen, (xb if b >= 0 else None)
        # The loss is computed before each update, so the epoch's last update is checked here:
        # weights that became NaN or inf are never kept.
        if not trainer.weights_finite():
            self._diverged(epoch, "the weights became NaN or inf in its last update", None)
        accuracy = None if hits is None else hits.accuracy(order, pos, skipped, seen)
        return EpochStats(total / self.batches.n if mean else total, accuracy, seen, elapsed)

    def _diverged(self, epoch: int, what: str, batch: int | None) -> None:
        error = self.hooks.diverged(epoch, what, batch)
        if error is not None:
            self.trainer.restore(self.start_weights)
            raise error


class _Hits:
    """Each batch's predicted class, written into one array as the batches go; compared with
    the targets, in the epoch's order, once at its end."""

    def __init__(self, target: np.ndarray, threshold: float, n: int):
        self.threshold = threshold
        self.binary = target.ndim == 2 and target.shape[1] == 1
        if self.binary:
            self.truth = target[:, 0] > 0.5
            self.pred = np.empty(n, dtype=bool)
        else:
            self.truth = target if target.ndim == 1 else np.argmax(target, axis=1)
            self.pred = np.empty(n, dtype=np.intp)

    def record(self, scores: np.ndarray, pos: int, m: int) -> None:
        if self.binary:
            np.greater(scores[:, 0], self.threshold, out=self.pred[pos : pos + m])
        else:
            scores.argmax(axis=1, out=self.pred[pos : pos + m])

    def accuracy(self, order, end: int, skipped: list[tuple[int, int]], seen: int) -> float:
        """The share of the ``seen`` samples in the first ``end`` positions predicted right."""
        truth = self.truth[:end] if order is None else self.truth[order[:end]]
        hit = self.pred[:end] == truth
        for a, b in skipped:
            hit[a:b] = False
        return float(np.count_nonzero(hit)) / max(seen, 1)


# --- fit ------------------------------------------------------------------------------------------


@dataclass
class _Data:
    """The checked training data, the held-out data and the generator that shuffles."""

    X: np.ndarray
    target: np.ndarray
    task: str
    weights: np.ndarray | None
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    rng: np.random.Generator

    @property
    def n(self) -> int:
        return len(self.X)


def fit(
    model,
    X,
    y,
    loss="mse",
    optimizer="adam",
    epochs: int = 10,
    batch_size: int = 32,
    validation_split: float = 0.0,
    validation_data=None,
    shuffle: bool = True,
    seed: int | None = None,
    early_stopping: int | None = None,
    restore_best: bool = True,
    callbacks=(),
    verbose: int = 1,
    lr: float | None = None,
    schedule=None,
    sample_weight=None,
    stream=None,
    threads: int | None = None,
) -> History:
    r"""Train ``model`` on ``(X, y)`` by mini-batch gradient descent; returns a :class:`History`.

    In order: the settings are checked, then the data against the model and the loss (the
    validation samples held out); each epoch then takes :meth:`Trainer.step` over the
    :class:`Batches` of a fresh shuffle, records its losses and accuracies, and lets the
    callbacks and early stopping end training.

    Parameters
    ----------
    loss : a loss name (``"mse"``, ``"bce"``, ``"ce"``, ...) or instance. Sigmoid + ``"bce"`` and
        Softmax + ``"ce"`` are trained from the logits with the fused delta :math:`\hat y - y`.
    optimizer : a name (``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``) or an Optimizer;
        ``lr`` overrides a named optimizer's default learning rate.
    schedule : a learning-rate schedule name or :class:`chainrule.optim.Schedule` (per epoch).
    validation_split : the fraction of samples held out (drawn with ``seed``), or
    validation_data : ``(X_val, y_val)``.
    early_stopping : patience in epochs on the validation loss (the training loss without
        validation data); with ``restore_best`` the best epoch's weights are put back.
    callbacks : callables ``f(epoch, logs, model)``; one that returns True stops training.
    sample_weight : optional per-sample weights (>= 0); a batch's loss is then
        :math:`\sum_i w_i \ell_i / \sum_i w_i`.
    seed : shuffling and dropout draw from ``numpy.random.default_rng(seed)``: the same seed and
        data give bit-identical weights on the same BLAS threads (``threads=1`` fixes them).
    threads : BLAS threads for the matrix products during training (restored afterwards). The
        default, None, measures: the first steps of an epoch alternate between one thread and
        BLAS's own setting, and the faster is kept for the rest of it (measured again at the
        next epoch, so a machine that becomes busy goes back to one thread; ``verbose`` ends
        each epoch's line with the choice). Setting threads, and measuring them, needs threadpoolctl
        (``chainrule[threads]``); without it BLAS is left as it is.

    If the loss becomes NaN or inf, or the weights do in an epoch's last update (after which no
    loss is computed), training stops, the weights from the start of that epoch (the last known
    to be finite) are restored, and :class:`TrainingDivergedError` says where; it names the
    targets instead of the learning rate when they are too large to square in the model's type.
    ``callbacks`` that are not callable are refused before training starts.
    Ctrl-C stops after the current batch and returns the history so far (``interrupted=True``).
    """
    loss_fn, opt, sched = _objective_and_optimizer(loss, optimizer, lr, schedule)
    threads, callbacks = _check_options(epochs, batch_size, validation_split, early_stopping,
                                        threads, callbacks)
    trainer = Trainer(model, loss_fn, opt, weighted=sample_weight is not None)
    data = _training_data(model, X, y, loss_fn, sample_weight, seed, validation_split,
                          validation_data)
    model.task = data.task
    model.training_config = {"loss": loss_fn.name, "optimizer": repr(opt), "epochs": epochs,
                             "batch_size": batch_size, "seed": seed, "schedule": repr(sched)}
    batches = Batches(data.X, data.target, min(int(batch_size), data.n), data.weights)
    progress = Progress(verbose, epochs, len(batches), stream)
    # Overflow during a diverging step is reported by the loss check, not as warnings.
    with (
        StopFlag() as flag,
        np.errstate(over="ignore", invalid="ignore"),
        BlasThreads(threads) as blas,
    ):
        start = _loss_before_training(model, trainer, data)
        run = _FitRun(model, trainer, data, sched, early_stopping, restore_best, callbacks,
                      progress, flag, blas)
        loop = EpochLoop(trainer, batches, run, rng=data.rng, shuffle=shuffle,
                         accuracy=run.classification, blas=blas, progress=progress, flag=flag)
        run.train(loop, epochs)
    model.eval()
    _warn_if_the_loss_grew(run.history, start, opt)
    return run.history


class TrainingWarning(UserWarning):
    """Training finished, but how it went calls for a look: the loss ended far above where it
    started (a learning rate too large for the optimizer, most often)."""


def _loss_before_training(model, trainer, data) -> float:
    """The loss of the untrained model on up to 1024 training rows (evaluation mode, so no
    dropout and no running statistics move)."""
    model.eval()
    try:
        n = min(len(data.X), 1024)
        return trainer.loss_of(trainer.scores(data.X[:n]), data.target[:n])
    finally:
        model.train()


def _warn_if_the_loss_grew(history: History, start: float, opt) -> None:
    """A :class:`TrainingWarning` naming the learning rate when the last epoch's loss is over
    ten times the loss before the first step."""
    end = history.loss[-1] if history.loss else math.nan
    if math.isfinite(start) and start > 0 and math.isfinite(end) and end > 10 * start:
        warnings.warn(
            f"The training loss ended at {end:.4g}, {end / start:,.0f} times the loss before the "
            f"first step ({start:.4g}): the learning rate lr={opt.lr:g} is most likely too large "
            f"for {type(opt).__name__}; try one 10 to 100 times smaller.",
            TrainingWarning, stacklevel=4,  # the caller of model.fit
        )


def _objective_and_optimizer(loss, optimizer, lr, schedule):
    """The loss, the optimizer (``lr`` overriding its learning rate) and the schedule."""
    loss_fn = _losses.get(loss)
    if isinstance(optimizer, _optim.Optimizer):
        opt = optimizer
        if lr is not None:
            opt.lr = float(lr)
    else:
        opt = _optim.get(optimizer, **({} if lr is None else {"lr": lr}))
    return loss_fn, opt, _optim.get_schedule(schedule)


def _check_options(epochs, batch_size, validation_split, early_stopping, threads, callbacks):
    """Refuse bad settings before anything is done; returns the threads and the callbacks."""
    threads = check_threads(threads)
    check_scalar(epochs, "epochs", "fit", kind=int, low=1)
    check_scalar(batch_size, "batch_size", "fit", kind=int, low=1)
    check_scalar(validation_split, "validation_split", "fit", low=0, high=1, high_open=True)
    check_scalar(early_stopping, "early_stopping", "fit (a patience in epochs)", kind=int, low=1,
                 allow_none=True)
    callbacks = list(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise ValueError(
                f"callbacks must be callables f(epoch, logs, model); got {cb!r} "
                f"({type(cb).__name__})."
            )
    return threads, callbacks


def _training_data(model, X, y, loss_fn, sample_weight, seed, validation_split,
                   validation_data) -> _Data:
    """Check the data against the model and the loss; hold out the validation samples."""
    X = _prepare_inputs(model, X)
    target, task = _prepare_targets(model, y, loss_fn, model.out_features)
    if len(target) != len(X):
        raise ValueError(f"X has {len(X)} samples but y has {len(target)}; they must match.")
    weights = None if sample_weight is None else _prepare_weights(model, sample_weight, len(X))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if hasattr(layer, "rng") and seed is not None:
            layer.rng = np.random.default_rng(rng.integers(2**63))
    Xv = yv = None
    if validation_data is not None:
        if validation_split:
            raise ValueError("Pass validation_split or validation_data, not both.")
        Xv = _prepare_inputs(model, validation_data[0], "X_val")
        yv, _ = _prepare_targets(model, validation_data[1], loss_fn, model.out_features, "y_val")
        if len(yv) != len(Xv):
            raise ValueError(f"X_val has {len(Xv)} samples but y_val has {len(yv)}.")
    elif validation_split:
        order = rng.permutation(len(X))
        n_val = max(1, round(len(X) * validation_split))
        if n_val >= len(X):
            raise ValueError(f"validation_split={validation_split} leaves no training samples.")
        held, kept = order[:n_val], order[n_val:]
        Xv, yv, X, target = X[held], target[held], X[kept], target[kept]
        weights = None if weights is None else weights[kept]
    return _Data(X, target, task, weights, Xv, yv, rng)


def _prepare_weights(model, sample_weight, n: int) -> np.ndarray:
    weights = as_float_array(sample_weight, "sample_weight").astype(model.dtype).ravel()
    check_finite(weights, "sample_weight")
    if len(weights) != n or (weights < 0).any() or not weights.any():
        raise ValueError(
            f"sample_weight needs {n} non-negative values, not all zero; got {len(weights)} "
            f"values from {weights.min(initial=0):g} to {weights.max(initial=0):g}."
        )
    return weights


class _FitRun(LoopHooks):
    """:func:`fit`'s hooks into the :class:`EpochLoop`: the schedule, the history and its
    progress lines, the validation scores, callbacks and early stopping, the divergence message,
    and what it keeps from one epoch to the next."""

    def __init__(self, model, trainer: Trainer, data: _Data, sched, early_stopping,
                 restore_best, callbacks, progress: Progress, flag: StopFlag,
                 blas: BlasThreads):
        self.model, self.trainer, self.data, self.sched = model, trainer, data, sched
        self.early_stopping, self.restore_best = early_stopping, restore_best
        self.callbacks, self.progress, self.flag, self.blas = callbacks, progress, flag, blas
        self.classification = data.task == "classification"
        self.history = History()
        self.base_lr = trainer.optimizer.lr
        self.best: tuple[float, list[np.ndarray] | None] = (math.inf, None)
        self.bad_epochs = 0

    def train(self, loop: EpochLoop, epochs: int) -> None:
        """Epoch after epoch until the last one, a stop, Ctrl-C or a divergence; then the best
        epoch's weights back, or a check of the last update."""
        self.model.train()
        begun = loop.run(epochs)
        # Ctrl-C between the last batch of an epoch and the end of its bookkeeping counts too.
        self.history.interrupted = self.history.interrupted or self.flag.stop
        if self._restoring_best():
            self.trainer.restore(self.best[1])
        elif self.history.epochs_run or loop.seen:
            self._check_last_update(loop, begun - 1)

    def begin_epoch(self, epoch: int) -> None:
        self.trainer.optimizer.lr = self.sched.lr(epoch, self.base_lr, self._monitor())

    def end_epoch(self, epoch: int, stats: EpochStats) -> bool:
        if self.flag.stop:
            self.history.interrupted = True
            if stats.seen < self.data.n:
                return True  # a part of an epoch is not recorded
        logs = self._logs(stats)
        _record(self.history, epoch, logs)
        self.progress.epoch(epoch, logs, self.blas.choice if self.blas.adaptive else None)
        return self._should_stop(epoch, logs) or self.flag.stop

    def diverged(self, epoch: int, what: str, batch: int | None) -> TrainingDivergedError:
        self.model.eval()
        hint = _divergence_hint(self.trainer.optimizer, self.data.target, self.model)
        return TrainingDivergedError.at(epoch + 1, what, hint, batch=batch, history=self.history)

    def _monitor(self) -> float | None:
        """The value a plateau schedule watches: the last validation loss, else training loss."""
        history = self.history
        return history.val_loss[-1] if history.val_loss else (
            history.loss[-1] if history.loss else None)

    def _logs(self, stats: EpochStats) -> dict:
        """The epoch's figures, the validation loss and accuracy included."""
        logs = {
            "loss": stats.loss,
            "lr": self.trainer.optimizer.lr,
            "time": stats.time,
            "samples_per_second": stats.seen / max(stats.time, 1e-12),
        }
        if self.classification:
            logs["accuracy"] = stats.accuracy  # running accuracy over the epoch
        if self.data.X_val is not None:
            self.model.eval()
            scores = self.trainer.scores(self.data.X_val)
            logs["val_loss"] = self.trainer.loss_of(scores, self.data.y_val)
            if self.classification:
                logs["val_accuracy"] = _accuracy(scores, self.data.y_val, self.trainer.threshold)
            self.model.train()
        return logs

    def _should_stop(self, epoch: int, logs: dict) -> bool:
        """Keep the best epoch; True when a callback or early stopping ends training."""
        monitor = logs.get("val_loss", logs["loss"])
        if monitor < self.best[0]:
            self.best = (monitor, self.trainer.snapshot() if self.early_stopping else None)
            self.history.best_epoch = epoch + 1
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        stop = any(cb(epoch, logs, self.model) is True for cb in self.callbacks)
        if self.early_stopping is not None and self.bad_epochs >= self.early_stopping:
            self.history.stopped_early = True
            stop = True
        return stop

    def _restoring_best(self) -> bool:
        return bool(self.early_stopping and self.restore_best and self.best[1] is not None)

    def _check_last_update(self, loop: EpochLoop, epoch: int) -> None:
        """Finite weights can still be so large that the outputs overflow: the last update is
        followed by no loss, so one forward pass over the last batch checks it."""
        self.model.eval()
        last = loop.last_batch
        if last is not None and not np.isfinite(self.trainer.scores(last)).all():
            self.trainer.restore(loop.start_weights)
            raise self.diverged(
                epoch, "after its last update the model's outputs overflow to inf or NaN", None)


def _divergence_hint(opt, target: np.ndarray, model) -> str:
    """What to change after a divergence: the targets when they are too large for the model's
    float type to square, else the learning rate or gradient clipping."""
    if target.dtype.kind == "f" and target.size:
        largest = float(np.max(np.abs(target)))
        # A squared error of targets beyond sqrt(max float) overflows at any learning rate.
        if largest > math.sqrt(float(np.finfo(model.dtype).max)) / 1e3:
            return (
                f"The targets reach {largest:.3g}, too large to square in {model.dtype.name} "
                "whatever the learning rate: scale them first (e.g. divide by their standard "
                "deviation) and undo the scaling on the predictions."
            )
    return (
        f"Lower the learning rate (it was {opt.lr:g}; try {opt.lr / 10:g}) or clip gradients "
        "(clip_norm)."
    )


def _record(history: History, epoch: int, logs: dict) -> None:
    history.epoch.append(epoch + 1)
    history.loss.append(float(logs["loss"]))
    history.lr.append(float(logs["lr"]))
    history.time.append(float(logs["time"]))
    history.samples_per_second.append(float(logs["samples_per_second"]))
    for key in ("accuracy", "val_loss", "val_accuracy"):
        if key in logs:
            getattr(history, key).append(float(logs[key]))


def evaluate(model, X, y, loss=None) -> dict:
    """Loss (and accuracy for classifiers) of ``model`` on ``(X, y)`` in evaluation mode.

    The loss is ``loss``, else the one the model was trained with, else the one its output
    calls for: cross-entropy after a softmax, binary cross-entropy after a sigmoid, squared
    error otherwise.
    """
    default = default_loss(model.output_activation)
    loss_fn = _losses.get(loss or model.training_config.get("loss") or default)
    trainer = Trainer(model, loss_fn)
    X = _prepare_inputs(model, X)
    target, task = _prepare_targets(model, y, loss_fn, model.out_features)
    if len(target) != len(X):
        raise ValueError(f"X has {len(X)} samples but y has {len(target)}; they must match.")
    model.eval()
    with np.errstate(over="ignore", invalid="ignore"):
        scores = trainer.scores(X)
    if not np.isfinite(scores).all():
        raise ValueError(model._nonfinite_output(scores))
    result = {"loss": trainer.loss_of(scores, target), "samples": len(X)}
    if task == "classification":
        result["accuracy"] = _accuracy(scores, target, trainer.threshold)
    return result
