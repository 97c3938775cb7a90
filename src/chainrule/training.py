r"""The training loop: mini-batch gradient descent with backpropagation.

One step on a batch :math:`(X_b, y_b)` of :math:`m` samples:

1. forward through the layers (the output activation is fused with a probability loss, see
   :mod:`chainrule.nn.model`);
2. the loss and :math:`\partial E/\partial(\text{output})`, averaged over :math:`m` (the mean's
   :math:`1/m`);
3. backward through the layers, last to first (the first layer skips :math:`\partial E/\partial X`,
   which nothing needs);
4. :math:`w \leftarrow w - \eta\,\partial E/\partial w` through the optimizer.

Everything that can be wrong with the data is checked once, before the first step.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from chainrule import losses as _losses
from chainrule import optim as _optim
from chainrule._checks import as_float_array, check_finite

__all__ = ["History", "TrainingDivergedError", "evaluate", "fit"]


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or inf; the weights were restored (see ``.history``)."""

    def __init__(self, message: str, history: History):
        super().__init__(message)
        self.history = history


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
            if y.dtype.kind == "f" and not np.all(y == np.round(y)):
                raise ValueError(
                    f"{name} holds non-integer class labels; got {y[y != np.round(y)][0]}."
                )
            labels = y.astype(np.int64)
            bad = (labels < 0) | (labels >= n_out)
            if bad.any():
                raise ValueError(
                    f"{name} has the label {labels[bad][0]} but the model has {n_out} outputs, "
                    f"so labels must be in 0..{n_out - 1}. Encode the labels, or widen the "
                    "output layer."
                )
            return labels, "classification"
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
            f"(m,{' ' if n_out == 1 else ''}{n_out if n_out > 1 else ''}) or (m, {n_out})."
        )
    if lname in ("bce", "bce_with_logits"):
        if ((target < 0) | (target > 1)).any():
            raise ValueError(
                f"{name} must hold binary targets in [0, 1] for {type(loss).__name__}; got values "
                f"from {target.min():g} to {target.max():g}."
            )
        return target, "classification"
    return target, "regression"


def _prepare_inputs(model, X, name: str = "X") -> np.ndarray:
    X = as_float_array(X, name)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples x features); got shape {X.shape}.")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples); training needs at least one sample.")
    if X.shape[1] != model.in_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features but the model's first layer expects "
            f"{model.in_features}."
        )
    check_finite(X, name)
    return np.ascontiguousarray(X, dtype=model.dtype)


def _accuracy(out: np.ndarray, target: np.ndarray, threshold: float = 0.0) -> float:
    """Accuracy of scores ``out`` (logits when the output is fused, else probabilities)."""
    if out.shape[1] == 1:
        return float(np.mean((out[:, 0] > threshold) == (target[:, 0] > 0.5)))
    pred = np.argmax(out, axis=1)
    truth = target if target.ndim == 1 else np.argmax(target, axis=1)
    return float(np.mean(pred == truth))


# --- BLAS threads ---------------------------------------------------------------------------------

# Multiply-adds per batch (the forward products of the dense layers) below which training runs
# BLAS on one thread by default. OpenBLAS's threads wait for each other after every product: on
# a machine where another process holds a core, a product waits for a descheduled thread, and
# training on 2 threads ran 2-6x slower than on 1 (20x for small products), while on a quiet
# machine a second thread saves at most about a third of the time at this size
# (benchmarks/bench_threads.py measures both). Past 2**28 (about 10 ms of products per batch on
# one core) a lost time slice costs a smaller share, and BLAS's own setting is kept.
ONE_THREAD_WORK = 1 << 28


def matmul_work(model, batch_size: int) -> int:
    """Multiply-adds of one batch's forward products: ``batch_size * sum(in * out)``."""
    return int(batch_size) * sum(
        layer.in_features * layer.out_features
        for layer in model.layers
        if hasattr(layer, "in_features") and hasattr(layer, "out_features")
    )


def check_threads(threads, owner: str = "fit") -> int | None:
    """``threads`` as None or an int >= 1, else a ValueError that names the value."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(
            f"{owner} needs threads to be an integer >= 1 (BLAS threads), or None to choose by "
            f"the size of the products; got {threads!r}."
        )
    return int(threads)


def blas_threads(threads: int | None, work: int):
    """A context that limits BLAS to ``threads`` threads (and restores the limit on exit).

    ``threads=None`` chooses: one thread when ``work`` (multiply-adds per batch) is below
    :data:`ONE_THREAD_WORK`, otherwise BLAS's current setting is left as it is. The limit is set
    with threadpoolctl (``pip install "chainrule[threads]"``), imported only when a limit is
    applied; without it the default leaves BLAS as it is, and an explicit ``threads`` is refused.
    """
    explicit = check_threads(threads)
    if explicit is None and work >= ONE_THREAD_WORK:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        if explicit is None:
            return contextlib.nullcontext()
        raise ImportError(
            f"threads={explicit} needs threadpoolctl to set the BLAS threads; install it with "
            '`pip install threadpoolctl` (or "chainrule[threads]"), or leave threads unset.'
        ) from None
    return threadpool_limits(limits=explicit or 1, user_api="blas")


# --- the batch step ------------------------------------------------------------------------------


class _Trainer:
    """Holds the per-fit state of the hot loop: the trainable layers, the fused loss, buffers."""

    def __init__(self, model, loss, optimizer, weighted: bool = False):
        self.model = model
        self.n_body, self.objective = model._objective(loss)
        self.weighted = weighted
        if weighted:  # per-sample losses, combined as sum(w_i l_i) / sum(w_i) in step()
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

    def step(
        self, xb: np.ndarray, yb: np.ndarray, wb: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
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
            if hasattr(first, "in_features"):
                first.backward(g, need_input_grad=False)
            else:
                first.backward(g)
        if math.isfinite(loss):
            self.optimizer.step(self.params, self.grads)
        return loss, h

    def scores(self, X: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """The body's output (logits when fused) in evaluation mode."""
        outs = []
        for i in range(0, len(X), batch_size):
            h = X[i : i + batch_size]
            for layer in self.body:
                h = layer.forward(h)
            outs.append(np.array(h, copy=True))
        return np.concatenate(outs)

    def loss_of(self, scores: np.ndarray, target: np.ndarray) -> float:
        out = self.objective._forward(scores, target)
        return float(np.mean(out)) if self.weighted else float(out)


# --- progress -------------------------------------------------------------------------------------


class _Progress:
    """A live bar on a terminal; one line per epoch otherwise (or nothing when verbose=0)."""

    def __init__(self, verbose: int, epochs: int, n_batches: int, stream=None):
        self.stream = stream or sys.stderr
        self.verbose = verbose
        self.live = verbose >= 1 and getattr(self.stream, "isatty", lambda: False)()
        self.epochs = epochs
        self.n_batches = n_batches
        self._last = 0.0

    def batch(self, epoch: int, b: int, loss: float, seen: int, t0: float) -> None:
        if not self.live:
            return
        now = time.perf_counter()
        if now - self._last < 0.1 and b + 1 < self.n_batches:
            return
        self._last = now
        elapsed = now - t0
        frac = (b + 1) / self.n_batches
        eta = elapsed / frac - elapsed
        width = 24
        filled = int(width * frac)
        bar = "=" * filled + (">" if filled < width else "") + "." * (width - filled - 1)
        self.stream.write(
            f"\rEpoch {epoch + 1}/{self.epochs} [{bar}] {b + 1}/{self.n_batches} "
            f"loss {loss:.4f}  {seen / max(elapsed, 1e-9):,.0f} samples/s  ETA {eta:4.1f}s "
        )
        self.stream.flush()

    def epoch(self, epoch: int, logs: dict) -> None:
        if self.verbose < 1:
            return
        parts = [f"Epoch {epoch + 1}/{self.epochs}"]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if logs.get(key) is not None:
                parts.append(f"{key} {logs[key]:.4f}")
        parts.append(f"{logs['samples_per_second']:,.0f} samples/s")
        parts.append(f"{logs['time']:.2f}s")
        line = "  ".join(parts)
        self.stream.write(("\r" + line + " " * 20 + "\n") if self.live else line + "\n")
        self.stream.flush()


class _StopFlag:
    """Ctrl-C during fit: finish the current batch, then stop (a second Ctrl-C aborts at once)."""

    def __init__(self):
        self.stop = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.stop:  # second Ctrl-C
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


# --- fit ------------------------------------------------------------------------------------------


def _snapshot(params: list[np.ndarray]) -> list[np.ndarray]:
    return [p.copy() for p in params]


def _restore(params: list[np.ndarray], saved: list[np.ndarray]) -> None:
    for p, s in zip(params, saved, strict=True):
        p[...] = s


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
        data give bit-identical weights.
    threads : BLAS threads for the matrix products during training (restored afterwards). The
        default, None, is one thread when a batch's products are small (fewer than
        :data:`ONE_THREAD_WORK` multiply-adds), where threads cost more than they save, and
        BLAS's own setting otherwise. Setting threads needs threadpoolctl
        (``chainrule[threads]``).

    If the loss becomes NaN or inf, or the weights do in an epoch's last update (after which no
    loss is computed), training stops, the weights from the start of that epoch (the last known
    to be finite) are restored, and :class:`TrainingDivergedError` says where; it names the
    targets instead of the learning rate when they are too large to square in the model's type.
    ``callbacks`` that are not callable are refused before training starts.
    Ctrl-C stops after the current batch and returns the history so far (``interrupted=True``).
    """
    loss_fn = _losses.get(loss)
    if isinstance(optimizer, _optim.Optimizer):
        opt = optimizer
        if lr is not None:
            opt.lr = float(lr)
    else:
        opt = _optim.get(optimizer, **({} if lr is None else {"lr": lr}))
    sched = _optim.get_schedule(schedule)
    threads = check_threads(threads)
    for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"fit needs {name} to be an integer >= {low}; got {value!r}.")
    if not 0.0 <= float(validation_split) < 1.0:
        raise ValueError(f"validation_split must be in [0, 1); got {validation_split!r}.")
    if early_stopping is not None and (not isinstance(early_stopping, int) or early_stopping < 1):
        raise ValueError(
            f"early_stopping is a patience in epochs (an integer >= 1); got {early_stopping!r}."
        )

    trainer = _Trainer(model, loss_fn, opt, weighted=sample_weight is not None)
    X = _prepare_inputs(model, X)
    target, task = _prepare_targets(model, y, loss_fn, model.out_features)
    if len(target) != len(X):
        raise ValueError(f"X has {len(X)} samples but y has {len(target)}; they must match.")
    weights = None
    if sample_weight is not None:
        weights = as_float_array(sample_weight, "sample_weight").astype(model.dtype).ravel()
        check_finite(weights, "sample_weight")
        if len(weights) != len(X) or (weights < 0).any() or not weights.any():
            raise ValueError(
                f"sample_weight needs {len(X)} non-negative values, not all zero; got "
                f"{len(weights)} values from {weights.min(initial=0):g} to "
                f"{weights.max(initial=0):g}."
            )
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if hasattr(layer, "rng") and seed is not None:
            layer.rng = np.random.default_rng(rng.integers(2**63))

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
        Xv, yv = X[order[:n_val]], target[order[:n_val]]
        X, target = X[order[n_val:]], target[order[n_val:]]
        if weights is not None:
            weights = weights[order[n_val:]]
    else:
        Xv = yv = None

    model.task = task
    model.training_config = {
        "loss": loss_fn.name,
        "optimizer": repr(opt),
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "schedule": repr(sched),
    }
    n = len(X)
    batch_size = min(int(batch_size), n)
    n_batches = math.ceil(n / batch_size)
    history = History()
    progress = _Progress(verbose, epochs, n_batches, stream)
    base_lr = opt.lr
    best = (math.inf, None)
    bad_epochs = 0
    xb_full = np.empty((batch_size, X.shape[1]), dtype=X.dtype)
    yb_full = np.empty((batch_size, *target.shape[1:]), dtype=target.dtype)
    callbacks = list(callbacks)
    for cb in callbacks:
        if not callable(cb):
            raise ValueError(
                f"callbacks must be callables f(epoch, logs, model); got {cb!r} "
                f"({type(cb).__name__})."
            )
    model.train()
    # Overflow during a diverging step is reported by the loss check below, not as warnings.
    with (
        _StopFlag() as flag,
        np.errstate(over="ignore", invalid="ignore"),
        blas_threads(threads, matmul_work(model, batch_size)),
    ):
        for epoch in range(epochs):
            monitor_prev = (
                history.val_loss[-1]
                if history.val_loss
                else (history.loss[-1] if history.loss else None)
            )
            opt.lr = sched.lr(epoch, base_lr, monitor_prev)
            start_weights = _snapshot(trainer.params)
            order = rng.permutation(n) if shuffle else np.arange(n)
            t0 = time.perf_counter()
            total, seen, correct = 0.0, 0, 0.0
            for b in range(n_batches):
                idx = order[b * batch_size : (b + 1) * batch_size]
                if len(idx) == batch_size:
                    xb, yb = xb_full, yb_full
                    np.take(X, idx, axis=0, out=xb)
                    np.take(target, idx, axis=0, out=yb)
                else:
                    xb, yb = X[idx], target[idx]
                wb = None if weights is None else weights[idx]
                if wb is not None and not wb.any():
                    continue  # a batch of zero-weight samples teaches nothing
                batch_loss, scores = trainer.step(xb, yb, wb)
                if not math.isfinite(batch_loss):
                    # Even finite weights that give an inf loss are not the "last finite" ones.
                    _restore(trainer.params, start_weights)
                    model.eval()
                    raise TrainingDivergedError(
                        f"Training diverged at epoch {epoch + 1}, batch {b + 1}: the loss became "
                        f"{batch_loss}. The weights from the start of epoch {epoch + 1} (the last "
                        f"finite ones) were restored. {_divergence_hint(opt, target, model)}",
                        history,
                    )
                weight = len(idx) / n
                total += batch_loss * weight if loss_fn.reduction == "mean" else batch_loss
                seen += len(idx)
                if task == "classification":
                    correct += _accuracy(scores, yb, trainer.threshold) * len(idx)
                progress.batch(epoch, b, batch_loss, seen, t0)
                if flag.stop:
                    break
            elapsed = time.perf_counter() - t0
            # The loss is computed before each update, so the last update of the epoch is
            # checked here: weights that became NaN or inf are never kept.
            if not all(np.isfinite(p).all() for p in trainer.params):
                _restore(trainer.params, start_weights)
                model.eval()
                raise TrainingDivergedError(
                    f"Training diverged at epoch {epoch + 1}: the weights became NaN or inf in "
                    f"its last update. The weights from the start of epoch {epoch + 1} (the last "
                    f"finite ones) were restored. {_divergence_hint(opt, target, model)}",
                    history,
                )
            if flag.stop:
                history.interrupted = True
                if seen < n:
                    break
            logs = {
                "loss": total,
                "lr": opt.lr,
                "time": elapsed,
                "samples_per_second": seen / max(elapsed, 1e-12),
            }
            if task == "classification":
                logs["accuracy"] = correct / max(seen, 1)  # running accuracy over the epoch
            model.eval()
            if Xv is not None:
                scores = trainer.scores(Xv)
                logs["val_loss"] = trainer.loss_of(scores, yv)
                if task == "classification":
                    logs["val_accuracy"] = _accuracy(scores, yv, trainer.threshold)
            model.train()
            _record(history, epoch, logs)
            progress.epoch(epoch, logs)
            monitor = logs.get("val_loss", logs["loss"])
            if monitor < best[0]:
                best = (monitor, _snapshot(trainer.params) if early_stopping else None)
                history.best_epoch = epoch + 1
                bad_epochs = 0
            else:
                bad_epochs += 1
            stop = any(cb(epoch, logs, model) is True for cb in callbacks)
            if early_stopping is not None and bad_epochs >= early_stopping:
                history.stopped_early = True
                stop = True
            if stop or flag.stop:
                break
        # Ctrl-C between the last batch of an epoch and the end of its bookkeeping counts too.
        history.interrupted = history.interrupted or flag.stop
        # Finite weights can still be so large that the outputs overflow: the last update is
        # followed by no loss, so one forward pass over the last batch checks it.
        restoring_best = early_stopping and restore_best and best[1] is not None
        if (history.epochs_run or seen) and not restoring_best:
            model.eval()
            if not np.isfinite(trainer.scores(xb)).all():
                _restore(trainer.params, start_weights)
                raise TrainingDivergedError(
                    f"Training diverged at epoch {epoch + 1}: after its last update the model's "
                    "outputs overflow to inf or NaN. The weights from the start of epoch "
                    f"{epoch + 1} (the last finite ones) were restored. "
                    f"{_divergence_hint(opt, target, model)}",
                    history,
                )
    if early_stopping and restore_best and best[1] is not None:
        _restore(trainer.params, best[1])
    model.eval()
    return history


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
    """Loss (and accuracy for classifiers) of ``model`` on ``(X, y)`` in evaluation mode."""
    loss = loss or model.training_config.get("loss") or "mse"
    loss_fn = _losses.get(loss)
    trainer = _Trainer(model, loss_fn, _optim.SGD(lr=1.0))
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
