"""fit(): learning, reproducibility, divergence, Ctrl-C, bad data, early stopping, progress."""

import io
import json
import os
import re
import signal
import warnings

import numpy as np
import pytest

from chainrule import optim
from chainrule.nn import ACTIVATIONS, Dense, Sequential, get, mlp
from chainrule.training import TrainingDivergedError


def blobs(rng, n=300, k=3, d=4):
    centers = rng.normal(scale=4.0, size=(k, d))
    y = rng.integers(0, k, size=n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y


def test_learns_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array([0, 1, 1, 0])
    model = mlp([2, 8, 1], activation="tanh", output="sigmoid", dtype="float64", seed=0)
    history = model.fit(
        X, y, loss="bce", optimizer="adam", lr=0.05, epochs=300, batch_size=4, verbose=0, seed=0
    )
    assert history.loss[-1] < 0.05 < history.loss[0]
    np.testing.assert_array_equal(model.predict(X), y)


def test_multiclass_accuracy_and_history(rng):
    X, y = blobs(rng)
    model = mlp([4, 16, 3], output="softmax", seed=0)
    history = model.fit(
        X, y, loss="ce", lr=0.01, epochs=15, batch_size=32, validation_split=0.2, verbose=0, seed=1
    )
    assert history.epochs_run == 15
    assert len(history.val_loss) == len(history.val_accuracy) == len(history.lr) == 15
    assert history.val_accuracy[-1] > 0.9
    result = model.evaluate(X, y)
    assert result["accuracy"] > 0.9 and result["samples"] == 300


def test_regression_with_mse(rng):
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3
    model = mlp([3, 1], dtype="float64", seed=0)
    model.fit(X, y, loss="mse", optimizer="sgd", lr=0.1, epochs=100, batch_size=200, verbose=0)
    np.testing.assert_allclose(model.layers[0].W[:, 0], [1.0, -2.0, 0.5], atol=1e-3)
    assert model.predict(X).shape == (200, 1)


def test_same_seed_bit_identical_weights(rng):
    X, y = blobs(rng)

    def train():
        model = Sequential([Dense(4, 8), get("relu"), Dense(8, 3), get("softmax")], seed=3)
        model.fit(X, y, loss="ce", epochs=3, batch_size=16, verbose=0, seed=42)
        return model.parameters()

    for a, b in zip(train(), train(), strict=True):
        assert a.tobytes() == b.tobytes()


def test_divergence_restores_finite_weights_and_names_the_batch(rng):
    X, y = blobs(rng)
    X = X * 1e3
    model = mlp([4, 32, 3], output="softmax", seed=0)
    start = [p.copy() for p in model.parameters()]
    with pytest.raises(
        TrainingDivergedError,
        match=r"at epoch 1, batch \d+: the loss became (nan|inf).*Lower the learning rate",
    ) as info:
        model.fit(X, y, loss="ce", optimizer="sgd", lr=1e30, epochs=5, batch_size=10, verbose=0)
    assert "try 1e+29" in str(info.value)
    # it diverged in epoch 1, so the last finite weights are the initial ones
    for p, q in zip(model.parameters(), start, strict=True):
        np.testing.assert_array_equal(p, q)
    assert info.value.history.loss == []


def test_ctrl_c_stops_after_the_current_batch(rng):
    X, y = blobs(rng)
    calls = []

    class Interrupting(Dense):
        def forward(self, x):
            if not self.training:  # fit's closing check of the outputs, in evaluation mode
                return super().forward(x)
            calls.append(1)
            if len(calls) == 3:
                os.kill(os.getpid(), signal.SIGINT)
            return super().forward(x)

    model = Sequential([Interrupting(4, 3), get("softmax")], seed=0)
    history = model.fit(X, y, loss="ce", epochs=5, batch_size=10, verbose=0)
    assert history.interrupted
    assert len(calls) == 3  # the third batch finished, no fourth began
    assert all(np.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.array([[0.0, np.nan]]), np.array([0]), r"X contains NaN at index \(0, 1\)"),
        (np.ones((3, 2)), np.array([0, 1]), "X has 3 samples but y has 2"),
        (np.ones((2, 2)), np.array([0, 5]), "label 5 but the model has 3 outputs"),
        (np.empty((0, 2)), np.array([]), "empty"),
        (np.ones((2, 3)), np.array([0, 1]), "3 features but the model's first layer expects 2"),
        (np.array([[0.0, np.inf]]), np.array([0]), "X contains inf"),
    ],
)
def test_bad_data_is_refused_before_training(X, y, message):
    model = mlp([2, 4, 3], output="softmax", seed=0)
    before = [p.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match=message):
        model.fit(X, y, loss="ce", epochs=1, verbose=0)
    for a, b in zip(before, model.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bce_targets_outside_unit_interval():
    model = mlp([2, 1], output="sigmoid", seed=0)
    with pytest.raises(ValueError, match="binary targets in"):
        model.fit(np.ones((2, 2)), np.array([0.0, 2.0]), loss="bce", epochs=1, verbose=0)


def test_early_stopping_restores_best(rng):
    X, y = blobs(rng, n=100)
    model = mlp([4, 16, 3], output="softmax", seed=0)
    snapshots = []  # the weights at the end of each epoch, taken by a callback

    def keep(epoch, logs, model):
        snapshots.append([p.copy() for p in model.parameters()])

    history = model.fit(
        X,
        y,
        loss="ce",
        optimizer="sgd",
        lr=5.0,
        epochs=60,
        batch_size=100,
        validation_split=0.3,
        early_stopping=3,
        callbacks=[keep],
        verbose=0,
        seed=0,
    )
    # lr = 5 overshoots: the validation loss rises after its best epoch, so training must stop
    assert history.stopped_early
    assert history.epochs_run == history.best_epoch + 3 == len(snapshots)
    best = min(history.val_loss)
    X_val_loss = history.val_loss[history.best_epoch - 1]
    assert X_val_loss == best
    # restore_best put the best epoch's weights back, not the last epoch's
    for p, kept, last in zip(
        model.parameters(), snapshots[history.best_epoch - 1], snapshots[-1], strict=True
    ):
        np.testing.assert_array_equal(p, kept)
        assert not np.array_equal(p, last)


def test_callback_can_stop_and_schedule_changes_lr(rng):
    X, y = blobs(rng, n=60)
    model = mlp([4, 3], output="softmax", seed=0)
    seen = []

    def stop_at_three(epoch, logs, model):
        seen.append(logs["lr"])
        return epoch == 2

    history = model.fit(
        X,
        y,
        loss="ce",
        optimizer="sgd",
        lr=1.0,
        schedule="exponential",
        epochs=10,
        verbose=0,
        callbacks=[stop_at_three],
    )
    assert history.epochs_run == 3
    np.testing.assert_allclose(seen, [1.0, 0.95, 0.9025])


def test_progress_one_line_per_epoch_when_not_a_terminal(rng):
    X, y = blobs(rng, n=60)
    stream = io.StringIO()
    mlp([4, 3], output="softmax", seed=0).fit(X, y, loss="ce", epochs=3, stream=stream, verbose=1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("Epoch 1/3") and "loss" in lines[0] and "samples/s" in lines[0]


def test_live_bar_on_a_terminal(rng):
    X, y = blobs(rng, n=600)

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    mlp([4, 3], output="softmax", seed=0).fit(
        X, y, loss="ce", epochs=1, batch_size=8, stream=stream, verbose=1
    )
    text = stream.getvalue()
    assert "\r" in text and "ETA" in text and "75/75" in text


def test_fit_argument_errors(rng):
    X, y = blobs(rng, n=20)
    model = mlp([4, 3], output="softmax", seed=0)
    with pytest.raises(ValueError, match="epochs"):
        model.fit(X, y, loss="ce", epochs=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(X, y, loss="ce", validation_split=1.5)
    with pytest.raises(ValueError, match="Unknown optimizer"):
        model.fit(X, y, loss="ce", optimizer="newton")


def test_batches_follow_the_order_and_slice_without_one(rng):
    from chainrule.training import Batches

    X, y, w = np.arange(20.0).reshape(10, 2), np.arange(10), np.linspace(0.0, 1.0, 10)
    order = rng.permutation(10)
    drawn = [(xb.copy(), yb.copy(), wb) for xb, yb, wb in Batches(X, y, 4, w)(order)]
    assert [len(yb) for _, yb, _ in drawn] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([xb for xb, _, _ in drawn]), X[order])
    np.testing.assert_array_equal(np.concatenate([yb for _, yb, _ in drawn]), order)
    np.testing.assert_array_equal(np.concatenate([wb for _, _, wb in drawn]), w[order])
    in_order = list(Batches(X, y, 4)())
    assert all(np.shares_memory(xb, X) and wb is None for xb, _, wb in in_order)


@pytest.mark.parametrize(
    ("order", "error", "words"),
    [
        ([0, 1, 10], IndexError, r"outside \[0, 10\)"),
        ([0, -1, 2], IndexError, r"outside \[0, 10\)"),
        ([0.0, 1.0], ValueError, "integer sample indices"),
        ([[0, 1]], ValueError, "1-D array"),
    ],
)
def test_batches_refuse_an_order_that_is_not_sample_indices(order, error, words):
    # the full batches are gathered without NumPy's per-index bounds check: the order is checked
    # once, so an index past the end is an error, never a silently repeated last sample
    from chainrule.training import Batches

    X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    with pytest.raises(error, match=words):
        list(Batches(X, y, 2)(np.array(order)))


@pytest.mark.parametrize(("output", "y", "loss"), [
    ("softmax", np.array([0, 1, 2, 1]), "ce"),
    ("sigmoid", np.array([0.0, 1.0, 1.0, 0.0]), "bce"),
    (None, np.array([0.5, -1.0, 2.0, 0.0]), "mse"),
])
def test_evaluate_of_an_untrained_model_takes_the_loss_its_output_calls_for(output, y, loss):
    n_out = 3 if output == "softmax" else 1
    model = mlp([2, 4, n_out], output=output, dtype="float64", seed=0)
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.5, -0.5]])
    expected = model.evaluate(X, y, loss=loss)
    assert model.evaluate(X, y) == expected
    assert ("accuracy" in expected) == (loss != "mse")


@pytest.mark.parametrize(("n_out", "needs"), [(1, r"needs shape \(m,\) or \(m, 1\)\."),
                                             (3, r"needs shape \(m, 3\)\.")])
def test_a_target_of_the_wrong_shape_names_the_shape_needed(n_out, needs):
    model = mlp([2, n_out], dtype="float64", seed=0)
    with pytest.raises(ValueError, match=needs):
        model.evaluate(np.zeros((4, 2)), np.zeros((4, 2)), loss="mse")


def test_weighted_fit_with_an_unfused_loss_reports_the_mean_and_leaves_the_loss_object_alone():
    from chainrule import losses

    rng = np.random.default_rng(0)
    X, y, w = rng.normal(size=(40, 3)), rng.normal(size=40), rng.uniform(0.5, 2.0, size=40)
    model = mlp([3, 4, 1], dtype="float64", seed=0)
    pred = model.forward(X)[:, 0]  # lr 1e-12: the weights do not move within the epoch
    loss = losses.MSE()
    history = model.fit(X, y, loss=loss, optimizer="sgd", lr=1e-12, epochs=1, batch_size=8,
                        sample_weight=w, shuffle=False, verbose=0)
    assert loss.reduction == "mean"
    per = (pred - y) ** 2
    batches = [slice(i, i + 8) for i in range(0, 40, 8)]
    expected = sum(np.sum(w[b] * per[b]) / np.sum(w[b]) * 8 / 40 for b in batches)
    assert history.loss[0] == pytest.approx(expected, rel=1e-9)


def test_blas_threads_name_their_caller_in_the_error():
    from chainrule.training import BlasThreads

    with pytest.raises(ValueError, match="'threads' parameter of MyLoop must be an integer"):
        BlasThreads(0, owner="MyLoop")


@pytest.mark.parametrize("threads", [10**24, 4097, -3])
def test_a_thread_count_out_of_range_is_refused_before_blas_sees_it(threads):
    # A 25-digit count used to reach the C library and fail with a ctypes overflow.
    from chainrule.training import BlasThreads

    with pytest.raises(ValueError, match=r"range \[1, 4096\] or None; got -?\d+ instead"):
        BlasThreads(threads)


def test_blas_stays_as_it_is_without_threadpoolctl_when_the_count_is_only_a_wish(monkeypatch):
    import sys

    from chainrule.training import BlasThreads

    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    with BlasThreads(1, required=False) as blas:
        assert blas.choice == 1
    with pytest.raises(ImportError, match="threads=1 needs threadpoolctl"), BlasThreads(1):
        pass


def test_sample_weight_equals_repeating_samples(rng):
    """Weight 2 on a sample is the same objective as that sample appearing twice."""
    from chainrule import losses, optim
    from chainrule.training import Trainer

    X = rng.normal(size=(5, 3))
    y = rng.integers(0, 2, size=5).astype(float).reshape(-1, 1)
    w = np.array([1.0, 2.0, 1.0, 3.0, 1.0])
    a = mlp([3, 4, 1], output="sigmoid", dtype="float64", seed=0)
    b = mlp([3, 4, 1], output="sigmoid", dtype="float64", seed=0)
    ta = Trainer(a, losses.BinaryCrossEntropy(), optim.SGD(lr=1e-300), weighted=True)
    tb = Trainer(b, losses.BinaryCrossEntropy(), optim.SGD(lr=1e-300))
    reps = np.repeat(np.arange(5), w.astype(int))
    la, _ = ta.step(X, y, w)
    lb, _ = tb.step(X[reps], y[reps])
    assert la == pytest.approx(lb, rel=1e-12)
    for ga, gb in zip(a.gradients(), b.gradients(), strict=True):
        np.testing.assert_allclose(ga, gb, rtol=1e-10)


def test_bad_sample_weight(rng):
    X, y = blobs(rng, n=10)
    with pytest.raises(ValueError, match="sample_weight needs 10 non-negative"):
        mlp([4, 3], output="softmax").fit(X, y, loss="ce", sample_weight=-np.ones(10), verbose=0)


def test_validation_data_is_scored_each_epoch(rng):
    X, y = blobs(rng, n=200)
    Xv, yv = blobs(np.random.default_rng(99), n=50)
    model = mlp([4, 8, 3], output="softmax", seed=0)
    history = model.fit(X, y, loss="ce", lr=0.01, epochs=4, validation_data=(Xv, yv), verbose=0)
    assert len(history.val_loss) == 4
    # the last recorded validation loss is the model's loss on (Xv, yv) after training
    assert history.val_loss[-1] == pytest.approx(model.evaluate(Xv, yv)["loss"], rel=1e-5)
    with pytest.raises(ValueError, match="not both"):
        model.fit(X, y, loss="ce", validation_split=0.1, validation_data=(Xv, yv), verbose=0)


# --- BLAS threads --------------------------------------------------------------------------------


def _blas_threads_now() -> list[int]:
    from threadpoolctl import threadpool_info

    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def _fit_recording_threads(model, X, y, **kwargs) -> list[list[int]]:
    seen = []
    model.fit(X, y, loss="ce", epochs=2, batch_size=32, verbose=0, seed=0,
              callbacks=[lambda epoch, logs, m: seen.append(_blas_threads_now())], **kwargs)
    return seen


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_limit_blas_during_fit_and_the_limit_is_restored(rng, threads):
    from threadpoolctl import threadpool_limits

    X, y = blobs(rng)
    with threadpool_limits(limits=3, user_api="blas"):
        before = _blas_threads_now()
        seen = _fit_recording_threads(mlp([4, 8, 3], output="softmax", seed=0), X, y,
                                      threads=threads)
        assert seen == [[threads] * len(before)] * 2
        assert _blas_threads_now() == before == [3] * len(before)


def test_threads_limit_is_restored_when_training_diverges(rng):
    from threadpoolctl import threadpool_limits

    X, y = blobs(rng)
    model = mlp([4, 32, 3], output="softmax", seed=0)
    with threadpool_limits(limits=3, user_api="blas"):
        with pytest.raises(TrainingDivergedError):
            model.fit(X * 1e3, y, loss="ce", optimizer="sgd", lr=1e30, epochs=2, batch_size=10,
                      verbose=0, threads=1)
        assert set(_blas_threads_now()) == {3}


class _StepClock:
    """A stand-in for time.perf_counter: each reading adds ``cost[threads]`` seconds, the BLAS
    threads set at that moment, so that a measured step takes what its setting costs."""

    def __init__(self, cost: dict):
        self.cost, self.now = cost, 0.0

    def __call__(self) -> float:
        self.now += self.cost[max(_blas_threads_now())]
        return self.now


def _fit_under_clock(monkeypatch, cost, epochs=2, **kwargs):
    from chainrule import _threads

    clock = _StepClock(cost)
    monkeypatch.setattr(_threads, "clock", clock)
    monkeypatch.setattr(_threads.BlasThreads, "remeasure_after", 0.0)  # measure every epoch
    X, y = blobs(np.random.default_rng(0))  # 300 samples: 10 batches of 32 an epoch
    seen = []
    history = mlp([4, 8, 3], output="softmax", seed=0).fit(
        X, y, loss="ce", epochs=epochs, batch_size=32, seed=0,
        callbacks=[lambda epoch, logs, m: seen.append(max(_blas_threads_now()))], **kwargs)
    return seen, history, clock


@pytest.mark.parametrize(("cost", "chosen"), [({1: 1.0, 3: 5.0}, 1), ({1: 5.0, 3: 1.0}, 3)])
def test_default_threads_keep_the_faster_of_one_and_all_measured_on_the_steps(
    monkeypatch, cost, chosen
):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=3, user_api="blas"):
        seen, _, _ = _fit_under_clock(monkeypatch, cost, verbose=0)
        assert seen == [chosen, chosen]
        assert _blas_threads_now() == [3] * len(_blas_threads_now())  # restored


def test_default_threads_are_measured_again_each_epoch_and_follow_a_machine_that_gets_busy(
    monkeypatch,
):
    from threadpoolctl import threadpool_limits

    from chainrule import _threads

    quiet, busy = {1: 5.0, 3: 1.0}, {1: 1.0, 3: 5.0}
    clock = _StepClock(quiet)
    monkeypatch.setattr(_threads, "clock", clock)
    monkeypatch.setattr(_threads.BlasThreads, "remeasure_after", 0.0)
    X, y = blobs(np.random.default_rng(0))
    seen = []

    def record_then_get_busy(epoch, logs, model):
        seen.append(max(_blas_threads_now()))
        clock.cost = busy  # another process takes a core after the first epoch

    with threadpool_limits(limits=3, user_api="blas"):
        mlp([4, 8, 3], output="softmax", seed=0).fit(
            X, y, loss="ce", epochs=2, batch_size=32, verbose=0, callbacks=[record_then_get_busy])
    assert seen == [3, 1]


@pytest.mark.parametrize(("cost", "words"), [({1: 1.0, 3: 4.0}, "  1 BLAS thread"),
                                             ({1: 4.0, 3: 1.0}, "  3 BLAS threads")])
def test_verbose_ends_each_epoch_line_with_the_threads_chosen(monkeypatch, cost, words):
    from threadpoolctl import threadpool_limits

    out = io.StringIO()
    with threadpool_limits(limits=3, user_api="blas"):
        _fit_under_clock(monkeypatch, cost, verbose=1, stream=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all(line.endswith(words) for line in lines)


def test_blas_threads_report_the_measured_step_times(monkeypatch):
    from threadpoolctl import threadpool_limits

    from chainrule import _threads

    monkeypatch.setattr(_threads, "clock", _StepClock({1: 1e-3, 3: 4e-3}))
    said = []
    with threadpool_limits(limits=3, user_api="blas"):
        with _threads.BlasThreads(None, report=said.append) as blas:
            blas.remeasure()
            while blas.probing:
                blas.before()
                blas.after()
    assert blas.choice == 1
    assert said == ["BLAS threads: 1 (a step took 1.00 ms on 1 thread, 4.00 ms on 3)"]


@pytest.mark.parametrize(("cost", "steps"), [({1: 1.0, 3: 5.0}, 3), ({1: 1.0, 3: 1.2}, 7)])
def test_blas_threads_stop_measuring_once_one_setting_is_clearly_slower(monkeypatch, cost, steps):
    """A warm-up step, then pairs (1 thread, 3 threads): one pair decides when one side is
    more than 1.5 times slower; otherwise all three pairs run."""
    from threadpoolctl import threadpool_limits

    from chainrule import _threads

    monkeypatch.setattr(_threads, "clock", _StepClock(cost))
    measured = 0
    with threadpool_limits(limits=3, user_api="blas"):
        with _threads.BlasThreads(None) as blas:
            blas.remeasure()
            while blas.probing:
                blas.before()
                blas.after()
                measured += 1
    assert measured == steps and blas.choice == 1


@pytest.mark.parametrize(("threads", "batch_size"), [(2, 64), (None, 16)])
def test_every_thread_setting_trains_the_same_model_to_rounding(rng, threads, batch_size):
    """Threads split the products' output blocks, not their sums, and the measured default only
    picks which BLAS threads run them: the results agree with one thread's to rounding
    (float64, so that the check does not depend on float32's resolution)."""
    X, y = blobs(rng)

    def train(threads):
        model = mlp([4, 64, 32, 3], output="softmax", dtype="float64", seed=0)
        history = model.fit(X, y, loss="ce", optimizer="sgd", lr=0.05, epochs=3,
                            batch_size=batch_size, verbose=0, seed=0, threads=threads)
        return history.loss, model.parameters()

    loss1, params1 = train(1)
    loss2, params2 = train(threads)
    np.testing.assert_allclose(loss1, loss2, rtol=1e-12)
    for a, b in zip(params1, params2, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_bad_threads_are_refused(rng, threads):
    X, y = blobs(rng, n=20)
    with pytest.raises(ValueError, match=r"'threads' parameter of fit must be an integer .*None"):
        mlp([4, 3], output="softmax").fit(X, y, loss="ce", verbose=0, threads=threads)


def test_without_threadpoolctl_the_default_trains_and_explicit_threads_are_refused(
    rng, monkeypatch
):
    import sys

    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # as if it were not installed
    X, y = blobs(rng, n=40)
    model = mlp([4, 3], output="softmax", seed=0)
    assert model.fit(X, y, loss="ce", epochs=1, verbose=0).epochs_run == 1
    with pytest.raises(ImportError, match=r"threads=2 needs threadpoolctl .*pip install"):
        model.fit(X, y, loss="ce", epochs=1, verbose=0, threads=2)


# --- inputs of 1e9, schedules, seeds, history, divergence, early stopping, Ctrl-C, bad data -------


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_a_training_step_at_1e9_inputs_is_finite_and_silent(activation):
    X = np.array([[1e9, -1e9], [-1e9, 1e9], [0.0, 0.0], [1e3, -1e3]], dtype=np.float32)
    y = np.array([0, 1, 2, 1])
    model = mlp([2, 4, 3], activation=activation, output="softmax", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow in sigmoid, softplus, exp of the softmax
        history = model.fit(X, y, loss="ce", optimizer="sgd", lr=1e-12, epochs=1, batch_size=4,
                            verbose=0)
    assert np.isfinite(history.loss[0]) and history.loss[0] > 0.0
    assert all(np.isfinite(p).all() for p in model.parameters())


def test_fit_applies_a_schedule_each_epoch_and_records_it(rng):
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, size=20)
    model = mlp([3, 2], output="softmax", seed=0)
    history = model.fit(X, y, loss="ce", optimizer="sgd", lr=0.8,
                        schedule=optim.StepLR(step_size=2, gamma=0.5), epochs=5, verbose=0)
    assert history.lr == [0.8, 0.8, 0.4, 0.4, 0.2]


def test_same_seed_is_bit_identical_and_the_seed_matters(rng):
    X, y = blobs(rng, n=120)

    def train(seed):
        model = mlp([4, 8, 3], activation="relu", output="softmax", dropout=0.3, seed=3)
        start = [p.copy() for p in model.parameters()]
        model.fit(X, y, loss="ce", epochs=2, batch_size=16, validation_split=0.2, seed=seed,
                  verbose=0)
        return start, model.parameters()

    start, a = train(42)
    _, b = train(42)
    _, c = train(43)
    assert all(p.tobytes() == q.tobytes() for p, q in zip(a, b, strict=True))
    # not vacuous: training moved the weights, and another seed (shuffle, dropout, split) differs
    assert not all(np.array_equal(p, q) for p, q in zip(a, start, strict=True))
    assert not all(np.array_equal(p, q) for p, q in zip(a, c, strict=True))


def test_history_has_one_entry_per_epoch_for_every_field(rng):
    X, y = blobs(rng, n=120)
    history = mlp([4, 3], output="softmax", seed=0).fit(
        X, y, loss="ce", epochs=3, validation_split=0.25, verbose=0, seed=0)
    for field in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "time",
                  "samples_per_second"):
        assert len(getattr(history, field)) == 3, field
    assert history.epoch == [1, 2, 3]
    assert all(t > 0 for t in history.time) and all(s > 0 for s in history.samples_per_second)
    assert all(0.0 <= a <= 1.0 for a in history.accuracy + history.val_accuracy)
    json.dumps(history.to_dict())  # plain Python numbers only


def test_divergence_restores_the_weights_from_the_start_of_the_epoch(rng):
    # epoch 1 trains normally; the schedule then multiplies lr by 1e40 and epoch 2 diverges
    X, y = blobs(rng, n=120)
    X *= 1e3
    model = mlp([4, 16, 3], output="softmax", seed=0)
    after_epoch_1 = []

    def keep(epoch, logs, model):
        after_epoch_1.append([p.copy() for p in model.parameters()])

    with pytest.raises(TrainingDivergedError) as info:
        model.fit(X, y, loss="ce", optimizer="sgd", lr=1e-6, epochs=3, batch_size=10,
                  schedule=optim.ExponentialLR(gamma=1e40), shuffle=False, callbacks=[keep],
                  verbose=0)
    message = str(info.value)
    assert re.search(r"epoch 2, batch \d+", message), message
    assert "Lower the learning rate" in message and "try 1e+33" in message
    assert info.value.history.epochs_run == 1
    for p, q in zip(model.parameters(), after_epoch_1[0], strict=True):
        assert p.tobytes() == q.tobytes()


def test_divergence_with_finite_weights_but_an_infinite_loss_still_restores():
    # the first step leaves W finite (2e200) but the next batch's squared error is inf: the
    # weights that produced it are not the "last finite" ones the error promises to restore
    X = np.ones((4, 1))
    y = np.full(4, 1e100)
    model = mlp([1, 1], dtype="float64", seed=0)
    start = [p.copy() for p in model.parameters()]
    with pytest.raises(TrainingDivergedError, match=r"epoch 1, batch 2: the loss became inf"):
        model.fit(X, y, loss="mse", optimizer="sgd", lr=1e100, epochs=2, batch_size=2,
                  shuffle=False, verbose=0)
    for p, q in zip(model.parameters(), start, strict=True):
        assert p.tobytes() == q.tobytes()


def test_early_stopping_stops_and_restores_the_best_weights(rng):
    # validating on the flipped labels: the better the fit, the worse the validation loss, so the
    # best epoch is the first and training stops `patience` epochs later
    X = rng.normal(size=(80, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    flipped = 1 - y
    results = {}
    for restore in (True, False):
        model = mlp([2, 1], output="sigmoid", dtype="float64", seed=0)
        history = model.fit(X, y, loss="bce", optimizer="sgd", lr=0.5, epochs=30, batch_size=80,
                            validation_data=(X, flipped), early_stopping=2,
                            restore_best=restore, verbose=0)
        results[restore] = (history, model.evaluate(X, flipped)["loss"])
    history, restored = results[True]
    assert history.stopped_early and history.best_epoch == 1 and history.epochs_run == 3
    assert history.val_loss[0] < history.val_loss[1] < history.val_loss[2]
    assert restored == pytest.approx(history.val_loss[0], rel=1e-12)
    history, kept = results[False]
    assert kept == pytest.approx(history.val_loss[-1], rel=1e-12) and kept > restored


def test_ctrl_c_in_a_later_epoch_keeps_the_trained_weights_and_the_history(rng):
    X, y = blobs(rng, n=40)
    calls = []

    class Interrupting(Dense):
        def forward(self, x):
            if self.training:
                calls.append(1)
                if len(calls) == 6:  # batch 2 of epoch 2 (4 batches an epoch)
                    os.kill(os.getpid(), signal.SIGINT)
            return super().forward(x)

    model = Sequential([Interrupting(4, 3), get("softmax")], seed=0)
    start = [p.copy() for p in model.parameters()]
    history = model.fit(X, y, loss="ce", lr=0.1, epochs=5, batch_size=10, verbose=0)
    assert history.interrupted and history.epochs_run == 1 and len(calls) == 6
    assert not np.array_equal(model.parameters()[0], start[0])
    assert all(np.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"y": np.array([0.0, np.nan, 1.0, 2.0])}, "y contains NaN at index 1"),
        ({"y": np.array([0, 1, 2, 1.5])}, "non-integer class labels"),
        ({"y": np.array([0, 1, 2, -1])}, "label -1 but the model has 3 outputs"),
        ({"validation_data": (np.array([[np.inf, 0.0]]), np.array([0]))}, "X_val contains inf"),
        ({"validation_data": (np.zeros((2, 2)), np.array([0, 7]))}, "y_val has the label 7"),
        ({"X": np.zeros(4)}, "must be 2-D"),
        ({"X": np.full((4, 2), 1e309)}, "X contains inf"),
    ],
)
def test_bad_labels_validation_data_and_shapes_are_refused_before_training(kwargs, message):
    model = mlp([2, 4, 3], output="softmax", seed=0)
    before = [p.copy() for p in model.parameters()]
    args = {"X": np.zeros((4, 2)), "y": np.array([0, 1, 2, 1]), **kwargs}
    X, y = args.pop("X"), args.pop("y")
    with pytest.raises(ValueError, match=message):
        model.fit(X, y, loss="ce", epochs=1, verbose=0, **args)
    for a, b in zip(before, model.parameters(), strict=True):
        assert a.tobytes() == b.tobytes()


# --- which output activation fuses with which loss: read from the loss classes --------------------


@pytest.mark.parametrize(("output", "loss"), [("softmax", "ce"), ("sigmoid", "bce"),
                                              ("identity", "mse"), ("relu", "mse"), (None, "mse")])
def test_evaluate_scores_with_the_loss_that_fuses_with_the_output(output, loss):
    from chainrule.training import default_loss

    assert default_loss(output) == loss


@pytest.mark.parametrize(("output", "loss", "trained"), [
    ("sigmoid", "bce", "bce_with_logits"), ("softmax", "ce", "ce_with_logits"),
    ("identity", "mse", "mse")])
def test_a_fused_pair_trains_the_logits_sibling_without_the_output_layer(output, loss, trained):
    from chainrule.training import fused_objective

    model = mlp([3, 4, 2], activation="tanh", output=output)
    n, objective = fused_objective(model, loss)
    assert n == len(model.layers) - 1 and objective.name == trained


@pytest.mark.parametrize(("output", "loss", "fix"), [
    ("softmax", "ce_with_logits", "loss='ce'"), ("sigmoid", "bce_with_logits", "loss='bce'"),
    ("log_softmax", "ce_with_logits", "loss='ce'"), ("softmax", "bce_with_logits", "loss='ce'")])
def test_a_logits_loss_after_a_probability_output_is_refused_with_the_fix(output, loss, fix):
    from chainrule.training import fused_objective

    model = mlp([3, 4, 2], activation="tanh", output=output)
    with pytest.raises(ValueError, match="applied twice") as err:
        fused_objective(model, loss)
    assert fix in str(err.value)


# --- the epoch loop as a public piece ---------------------------------------------------------


class _Frozen:
    """An optimizer whose step changes nothing: the loop then scores fixed weights."""

    lr = 0.0

    def step(self, params, grads):
        pass


@pytest.mark.parametrize(("sizes", "output", "loss", "k"), [
    ([4, 8, 3], "softmax", "ce", 3),
    ([4, 8, 1], "sigmoid", "bce", 2),
])
def test_epoch_loop_reports_the_loss_and_accuracy_of_the_batches_it_ran(sizes, output, loss, k):
    """With weights that do not move, the epoch's loss is the mean loss over all samples and its
    accuracy the model's accuracy, whatever the shuffle (both computed here from the outputs)."""
    from chainrule.training import Batches, EpochLoop, Trainer

    X, y = blobs(np.random.default_rng(3), n=100, k=k)
    model = mlp(sizes, output=output, dtype="float64", seed=0)
    target = y.reshape(-1, 1).astype(float) if k == 2 else y
    trainer = Trainer(model, loss, _Frozen())
    loop = EpochLoop(trainer, Batches(X.astype(np.float64), target, 32), accuracy=True,
                     rng=np.random.default_rng(0))
    stats = loop.epoch(0)
    model.eval()
    p = model.forward(X.astype(np.float64))
    if k == 2:
        p = p[:, 0]
        expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        right = np.mean((p > 0.5) == (y == 1))
    else:
        expected = -np.mean(np.log(p[np.arange(len(y)), y]))
        right = np.mean(np.argmax(p, axis=1) == y)
    assert stats.loss == pytest.approx(expected, rel=1e-12)
    assert stats.accuracy == pytest.approx(right, abs=1e-12) and stats.seen == 100


def test_epoch_loop_leaves_zero_weight_batches_out_of_the_accuracy():
    from chainrule.training import Batches, EpochLoop, Trainer

    X, y = blobs(np.random.default_rng(4), n=64)
    model = mlp([4, 3], output="softmax", dtype="float64", seed=0)
    weights = np.r_[np.zeros(32), np.ones(32)]  # in order: the first batch weighs nothing
    trainer = Trainer(model, "ce", _Frozen(), weighted=True)
    stats = EpochLoop(trainer, Batches(X.astype(np.float64), y, 32, weights), shuffle=False,
                      accuracy=True).epoch(0)
    model.eval()
    kept = np.argmax(model.forward(X[32:].astype(np.float64)), axis=1) == y[32:]
    assert stats.seen == 32 and stats.accuracy == pytest.approx(np.mean(kept), abs=1e-12)


def test_epoch_loop_restores_the_epoch_start_and_raises_what_the_hooks_return(rng):
    from chainrule.training import Batches, EpochLoop, LoopHooks, Trainer

    class Overflow:  # each step multiplies the weights by 1e30: the loss soon overflows
        lr = 1.0

        def step(self, params, grads):
            for p in params:
                p *= 1e30

    class Hooks(LoopHooks):
        def diverged(self, epoch, what, batch):
            return RuntimeError(f"{what} at batch {batch}")

    X, y = blobs(rng, n=200)
    model = mlp([4, 8, 3], output="softmax", dtype="float64", seed=0)
    start = [p.copy() for p in model.parameters()]
    loop = EpochLoop(Trainer(model, "ce", Overflow()), Batches(X, y, 10), Hooks())
    with pytest.raises(RuntimeError, match=r"the loss became (inf|nan) at batch \d+"):
        with np.errstate(all="ignore"):
            loop.run(3)
    for p, s in zip(model.parameters(), start, strict=True):
        np.testing.assert_array_equal(p, s)


def test_epoch_loop_carries_on_when_the_hooks_return_nothing(rng):
    from chainrule.training import Batches, EpochLoop, LoopHooks, Trainer

    class Keep(LoopHooks):
        def __init__(self):
            self.calls = []

        def diverged(self, epoch, what, batch):
            self.calls.append(batch)

    X, y = blobs(rng, n=40)
    X[5, 0] = np.inf  # the batch holding sample 5 gives a NaN loss; the others train
    model = mlp([4, 3], output="softmax", dtype="float64", seed=0)
    hooks = Keep()
    with np.errstate(all="ignore"):
        epochs = EpochLoop(Trainer(model, "ce", optim.SGD(lr=0.01)), Batches(X, y, 10), hooks,
                           shuffle=False).run(2)
    assert epochs == 2 and hooks.calls == [1, 1]
    assert all(np.isfinite(p).all() for p in model.parameters())


def test_a_loss_that_ends_far_above_its_start_warns_naming_the_learning_rate(rng):
    # Adam at lr=100 ends with a loss thousands of times the untrained model's, with no NaN to
    # stop it: the warning names the learning rate.
    from chainrule.training import TrainingWarning

    X, y = rng.normal(size=(300, 16)), rng.integers(0, 3, 300)
    model = mlp([16, 64, 3], output="softmax", seed=0)
    with pytest.warns(TrainingWarning, match=r"lr=100 is most likely too large for Adam"):
        model.fit(X, y, loss="ce", optimizer="adam", lr=100, epochs=5, verbose=0, seed=0)


def test_an_ordinary_fit_gives_no_training_warning(rng):
    import warnings

    from chainrule.training import TrainingWarning

    X, y = blobs(rng, n=300)
    model = mlp([4, 32, 3], output="softmax", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)
        model.fit(X, y, loss="ce", optimizer="adam", lr=1e-2, epochs=5, verbose=0, seed=0)


# --- fit on images and sequences -------------------------------------------------------------


def _stripes(n=96, seed=0):
    """Images of 8 x 8 pixels with a bright row in the top (class 0) or bottom (class 1) half."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(0.0, 0.3, (n, 1, 8, 8)).astype(np.float32)
    X[np.arange(n), 0, 1 + 4 * y + rng.integers(0, 3, n)] += 2.0
    return X, y


def _tiny_cnn(input_shape=None):
    from chainrule.nn import Conv2D, Flatten, MaxPool2D, ReLU, Softmax

    return Sequential([Conv2D(1, 4, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(),
                       Dense(64, 2), Softmax()], seed=0, input_shape=input_shape)


def test_a_cnn_fits_images_in_batches_with_validation_and_early_stopping():
    X, y = _stripes()
    model = _tiny_cnn()
    history = model.fit(X, y, loss="ce", lr=0.01, epochs=8, batch_size=16, validation_split=0.25,
                        early_stopping=3, seed=0, verbose=0)
    assert history.loss[-1] < 0.5 * history.loss[0] and len(history.val_loss) == history.epochs_run
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert model.input_shape == (1, 8, 8)  # recorded by fit: now flat rows are understood
    assert model.evaluate(X.reshape(len(X), 64), y)["accuracy"] > 0.9
    assert model.predict(X[:5]).shape == (5,)


def test_a_cnn_fit_is_reproducible_with_a_seed():
    X, y = _stripes()
    runs = [_tiny_cnn().fit(X, y, loss="ce", epochs=2, batch_size=16, seed=1, verbose=0).loss
            for _ in range(2)]
    assert runs[0] == runs[1]


def test_an_lstm_fits_sequences():
    from chainrule.nn import LSTM, MeanOverTime, Softmax

    rng = np.random.default_rng(0)
    y = np.arange(64) % 2
    X = rng.normal(0.0, 0.5, (64, 6, 2)).astype(np.float32)
    X[:, :, 0] += np.where(y == 1, 1.0, -1.0)[:, None]  # the sign of the first feature
    model = Sequential([LSTM(2, 8), MeanOverTime(), Dense(8, 2), Softmax()], seed=0)
    history = model.fit(X, y, loss="ce", lr=0.05, epochs=25, batch_size=16, shuffle=True,
                        validation_split=0.25, seed=0, verbose=0)
    assert history.loss[-1] < 0.5 * history.loss[0] and history.val_accuracy[-1] > 0.9
    assert model.predict(X).shape == (64,)


@pytest.mark.parametrize(("X", "message"), [
    (np.zeros((4, 2, 8, 8)), r"The model expects X of shape \(m, 1, \?, \?\); got \(4, 2, 8, 8\)"),
    (np.zeros((4, 64)), r"X must be 4-D \(samples x channels x height x width\); got shape "
                        r"\(4, 64\)\. The model expects X of shape \(m, 1, \?, \?\); got "
                        r"\(4, 64\); reshape flat rows to \(m, 1, height, width\)"),
    (np.zeros((4, 1, 6, 6)), r"Dense\(64, 2\) expects input of shape \(m, 64\); got \(4, 36\)"),
])
def test_images_of_the_wrong_shape_are_refused_naming_the_shape(X, message):
    model = _tiny_cnn()
    with pytest.raises(ValueError, match=message):
        model.fit(X, np.zeros(4, int), loss="ce", epochs=1, verbose=0)


def test_sequences_of_the_wrong_width_are_refused_naming_the_shape():
    from chainrule.nn import LSTM, MeanOverTime, Softmax

    model = Sequential([LSTM(2, 3), MeanOverTime(), Dense(3, 2), Softmax()], seed=0)
    with pytest.raises(ValueError, match=r"X has 5 features but the model's first layer expects "
                                         r"2\. The model expects X of shape \(m, time, 2\)"):
        model.fit(np.zeros((4, 6, 5)), np.zeros(4, int), loss="ce", epochs=1, verbose=0)
