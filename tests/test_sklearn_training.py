"""The estimators' training: chainrule's epoch loop under scikit-learn's rules (random_state,
max_iter, tol, early stopping, schedules, divergence, verbose) and the BLAS threads it chooses."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_regression
from sklearn.exceptions import ConvergenceWarning

from chainrule.sklearn import MLPClassifier, MLPRegressor
from sklearn_fixtures import binary_fixture, iris_fixture, quiet_fit  # noqa: F401 (fixtures)

# --- the training loop's rules -----------------------------------------------------------------


def test_same_random_state_same_model_and_dropout_only_in_training(iris):
    X, y = iris
    make = lambda rs: MLPClassifier((16,), dropout=0.3, max_iter=20, random_state=rs)  # noqa: E731
    a, b, c = (quiet_fit(make(rs), X, y) for rs in (0, 0, 1))
    for ca, cb in zip(a.coefs_, b.coefs_, strict=True):
        np.testing.assert_array_equal(ca, cb)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])
    np.testing.assert_array_equal(a.predict_proba(X), a.predict_proba(X))  # no dropout at predict
    no_dropout = quiet_fit(clone(a).set_params(dropout=0.0), X, y)
    assert not np.array_equal(a.coefs_[1], no_dropout.coefs_[1])


def test_convergence_warning_at_max_iter(iris):
    X, y = iris
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        MLPClassifier((4,), max_iter=3, random_state=0).fit(X, y)


def test_tol_stops_training(iris):
    X, y = iris
    est = MLPClassifier((4,), max_iter=500, tol=1.0, n_iter_no_change=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
    assert est.n_iter_ == 4  # epoch 1 improves on inf; epochs 2-4 miss tol=1.0, and 3 > 2


def test_early_stopping_keeps_the_best_epoch(binary):
    X, y = binary
    est = quiet_fit(MLPClassifier((16,), early_stopping=True, n_iter_no_change=5, max_iter=200,
                               random_state=0), X, y)
    assert est.best_loss_ is None and len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    # the split is stratified (as scikit-learn's): its own error first, then the size check
    with pytest.raises(ValueError, match=r"test_size = 1 should be greater or equal to the "
                                         r"number of classes = 2.*early_stopping=False"):
        MLPClassifier(early_stopping=True, validation_fraction=0.01).fit(X[:20], y[:20])
    with pytest.raises(ValueError, match=r"validation set is too small.*leaves 1"):
        MLPRegressor(early_stopping=True, validation_fraction=0.01).fit(X[:20], y[:20])
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1])
    # switching early stopping on for a warm start
    warm = quiet_fit(MLPClassifier((8,), max_iter=5, warm_start=True, random_state=0), X, y)
    quiet_fit(warm.set_params(early_stopping=True), X, y)
    assert len(warm.validation_scores_) == warm.n_iter_


def test_learning_rate_schedules(iris):
    X, y = iris
    est = quiet_fit(MLPClassifier((4,), solver="sgd", learning_rate="invscaling", power_t=0.5,
                               learning_rate_init=0.1, max_iter=4, random_state=0), X, y)
    assert est._optimizer.learning_rate == pytest.approx(0.1 / (est.t_ + 1) ** 0.5)
    # "adaptive": every epoch after the first misses tol=1e9, so every second epoch divides the
    # rate by 5; at 0.1 / 5^8 = 2.56e-7 <= 1e-6 the next trigger stops: 1 + 2 * 9 epochs.
    est = MLPClassifier((4,), solver="sgd", learning_rate="adaptive", learning_rate_init=0.1,
                        tol=1e9, n_iter_no_change=1, max_iter=500, random_state=0).fit(X, y)
    assert est._optimizer.learning_rate == pytest.approx(0.1 / 5**8)
    assert est.n_iter_ == 19


@pytest.mark.parametrize("solver", ["sgd", "adam", "adamw", "rmsprop"])
def test_every_solver_learns(iris, solver):
    X, y = iris
    lr = 0.05 if solver == "sgd" else 0.01
    est = quiet_fit(MLPClassifier((16,), solver=solver, learning_rate_init=lr, max_iter=100,
                               random_state=0), X, y)
    assert est.score(X, y) > 0.9


def test_divergence_names_the_fix():
    X, y = make_regression(n_samples=50, n_features=3, random_state=0)
    est = MLPRegressor(solver="sgd", learning_rate_init=10.0, max_iter=50, random_state=0)
    with pytest.raises(ValueError, match=r"^Solver produced non-finite parameter weights\. The "
                                         r"input data may contain large values.*StandardScaler"):
        est.fit(X * 1e3, y * 1e3)


def test_divergence_is_fits_error_and_restores_the_weights_of_the_epoch():
    from chainrule.training import TrainingDivergedError

    X, y = make_regression(n_samples=50, n_features=3, random_state=0)
    est = MLPRegressor(solver="sgd", learning_rate_init=10.0, batch_size=10, max_iter=50,
                       random_state=0)
    with pytest.raises(TrainingDivergedError, match=r"Training diverged at epoch \d+, batch "
                                                    r"\d+: the loss became .* were restored\."):
        est.fit(X * 1e3, y * 1e3)
    assert all(np.isfinite(p).all() for p in (*est.coefs_, *est.intercepts_))


def test_verbose_prints_the_loss(iris, capsys):
    X, y = iris
    quiet_fit(MLPClassifier((4,), max_iter=2, verbose=True, random_state=0), X, y)
    assert "Iteration 1, loss = " in capsys.readouterr().out


# --- divergence -----------------------------------------------------------------------------------


def test_divergence_with_early_stopping_keeps_the_best_weights(iris):
    X, y = iris
    est = MLPRegressor(hidden_layer_sizes=(32,), activation="identity", solver="sgd",
                       learning_rate_init=1.0, max_iter=15, early_stopping=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert np.isnan(est.validation_scores_[-1]) and np.isnan(est.loss_curve_[-1])
    assert len(est.validation_scores_) == est.n_iter_ == 15  # NaN never counts as a stall
    assert est.best_validation_score_ == np.nanmax(est.validation_scores_)
    assert all(np.isfinite(c).all() for c in est.coefs_)
    assert np.isfinite(est.predict(X)).all()
    with pytest.raises(ValueError, match=r"non-finite parameter weights.*early_stopping=True"):
        quiet_fit(clone(est).set_params(early_stopping=False), X, y)


# --- one loop: training.EpochLoop, the BLAS threads measured as fit measures them ---------------


def _epochs_run_by_trainings_loop(monkeypatch) -> list[int]:
    from chainrule import training

    epochs, run_epoch = [], training.EpochLoop.epoch

    def counted(loop, epoch):
        epochs.append(epoch)
        return run_epoch(loop, epoch)

    monkeypatch.setattr(training.EpochLoop, "epoch", counted)
    return epochs


def test_fit_and_partial_fit_run_the_epochs_of_trainings_loop(iris, monkeypatch):
    X, y = iris
    epochs = _epochs_run_by_trainings_loop(monkeypatch)
    est = quiet_fit(MLPClassifier((8,), max_iter=3, random_state=0), X, y)
    assert epochs == [0, 1, 2] and est.n_iter_ == 3 == len(est.loss_curve_)
    est.partial_fit(X, y)
    assert epochs == [0, 1, 2, 0] and len(est.loss_curve_) == 4


def test_the_l2_term_is_part_of_the_reported_loss(iris):
    """alpha adds (alpha / 2s) sum ||W||^2 to each batch's objective, s its size: with one batch
    of all samples and a learning rate too small to move the weights, loss_ is the log loss of
    the starting weights plus that term."""
    from sklearn.metrics import log_loss

    X, y = iris
    est = quiet_fit(MLPClassifier((8,), alpha=3.0, solver="sgd", momentum=0.0,
                                  learning_rate_init=1e-300, batch_size=len(X), max_iter=1,
                                  random_state=0), X, y)
    term = 3.0 / (2 * len(X)) * sum(float(np.sum(W**2)) for W in est.coefs_)
    assert est.loss_ == pytest.approx(log_loss(y, est.predict_proba(X)) + term, rel=1e-10)
    assert term > 0.1


class _StepClock:
    """time.perf_counter for BlasThreads: each reading adds what the current BLAS threads cost."""

    def __init__(self, cost: dict):
        self.cost, self.now = cost, 0.0

    def __call__(self) -> float:
        from threadpoolctl import threadpool_info

        threads = max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
        self.now += self.cost[threads]
        return self.now


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
@pytest.mark.parametrize(("cost", "chosen"), [({1: 1e-3, 3: 4e-3}, 1), ({1: 4e-3, 3: 1e-3}, 3)])
def test_the_estimators_choose_blas_threads_by_measuring_their_steps(
    binary, monkeypatch, capsys, solver, cost, chosen
):
    from threadpoolctl import threadpool_limits

    from chainrule import _threads

    monkeypatch.setattr(_threads, "clock", _StepClock(cost))
    X, y = binary  # 300 samples: 2 batches of 200 an epoch, the L-BFGS runs a step an iteration
    with threadpool_limits(limits=3, user_api="blas"):
        quiet_fit(MLPClassifier((8,), solver=solver, max_iter=8, verbose=True, random_state=0),
                  X, y)
    said = (f"BLAS threads: {chosen} (a step took {cost[1] * 1e3:.2f} ms on 1 thread, "
            f"{cost[3] * 1e3:.2f} ms on 3)")
    assert said in capsys.readouterr().out
