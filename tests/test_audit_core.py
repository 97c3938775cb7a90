"""The core's promises: the ones that had no test, or only a test that could not fail.

Every derivative here is checked against an oracle that shares no code with chainrule (float64
central differences of the public forward pass, or an update rule written out from the paper),
and the extreme inputs (+/-1e3, +/-1e9, 0, NaN) are part of each group.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest

import chainrule
from chainrule import losses, optim
from chainrule.cli import main
from chainrule.nn import ACTIVATIONS, Dense, Dropout, Sequential, get, mlp
from chainrule.serialization import ModelFileError, read_safetensors, write_safetensors
from chainrule.training import TrainingDivergedError

ROOT = Path(__file__).resolve().parents[1]
EPS = float(np.finfo(np.float64).eps)


# --- the package ----------------------------------------------------------------------------------


def test_readme_starts_with_the_two_commands():
    block = re.search(r"```\w*\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    lines = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert lines == ["pip install uv && uv run chainrule train", "pip install uv && uv run pytest"]


def test_readme_loss_example_shows_the_textbook_gradient():
    # tests/test_readme.py runs the block as a doctest; here its numbers are checked by hand.
    text = (ROOT / "README.md").read_text()
    section = text.split("## A loss and its gradient", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    # yhat = (0.9, 0.2), y = (1, 0), m = 2: -(1/0.9)/2 = -0.5556 and (1/0.8)/2 = 0.625;
    # loss = (-ln 0.9 - ln 0.8)/2 = (0.1053605 + 0.2231436)/2 = 0.1642520
    assert "\n0.16425...\n" in code
    assert "array([-0.55555556,  0.625     ])" in code


def test_pyproject_console_script_numpy_only_and_mit_license():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["chainrule"] == "chainrule.cli:main"
    assert [re.split(r"[<>=~ ]", d)[0] for d in project["dependencies"]] == ["numpy"]
    assert project["requires-python"] == ">=3.11"
    assert (ROOT / "uv.lock").is_file()
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


@pytest.mark.parametrize(("fake_rc", "expect_fail"), [(0, False), (3, True)])
def test_ci_script_runs_the_readme_test_command_and_fails_with_it(tmp_path, fake_rc, expect_fail):
    # a stand-in `uv` records its arguments and exits as a failing (or passing) test run would
    log = tmp_path / "args"
    fake = tmp_path / "bin" / "uv"
    fake.parent.mkdir()
    fake.write_text(f'#!/usr/bin/env bash\necho "$@" >> "{log}"\nexit {fake_rc}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True,
                          timeout=30)
    assert (proc.returncode != 0) == expect_fail
    assert log.read_text().split() == ["run", "pytest"]


# --- losses: exact 0 and 1, huge logits, no warnings ----------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_at_exact_zero_and_one_raises_no_warning(dtype, reduction):
    pred = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=dtype)
    y = np.array([[0.0, 1.0], [0.0, 1.0]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # divide-by-zero or invalid in log would fail here
        loss = losses.BinaryCrossEntropy(reduction=reduction)
        value = loss(pred, y)
        grad = loss.backward()
    assert np.isfinite(value).all() and np.isfinite(grad).all()
    # row 0 is right and certain (about 0), row 1 wrong and certain: 2 (-log eps)
    per = losses.BinaryCrossEntropy(reduction="none")(pred, y)
    assert per[0] < 1e-6 and per[1] == pytest.approx(-2 * np.log(np.finfo(dtype).epsneg), 1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_with_logits_losses_at_1e9_are_finite_silent_and_exact(dtype, reduction):
    x = np.array([[1e9, -1e9], [-1e9, 1e9], [1e3, -1e3], [0.0, 0.0]], dtype=dtype)
    y = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=dtype)
    m = 4 if reduction == "mean" else 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bce = losses.BinaryCrossEntropyWithLogits(reduction=reduction)
        v = bce(x, y)
        g = bce.backward()
        ce = losses.CrossEntropyWithLogits(reduction=reduction)
        cv = ce(x, np.array([0, 0, 1, 1]))
        cg = ce.backward()
    # BCE per sample: 0; 2e9 (two terms of 1e9); 2e3; 2 ln 2. Gradient: (sigmoid(x) - y)/m.
    per = [0.0, 2e9, 2e3, 2 * np.log(2.0)]
    expected = per if reduction == "none" else sum(per) / m
    np.testing.assert_allclose(v, expected, rtol=1e-6)
    np.testing.assert_array_equal(g[:3], np.array([[0, 0], [-1, 1], [1, -1]], dtype) / m)
    np.testing.assert_allclose(g[3], np.array([-0.5, 0.5]) / m, rtol=1e-7)
    # CE per sample: 0; 2e9; 2e3; ln 2. Gradient: (softmax(x) - onehot)/m.
    cper = [0.0, 2e9, 2e3, np.log(2.0)]
    np.testing.assert_allclose(cv, cper if reduction == "none" else sum(cper) / m, rtol=1e-6)
    np.testing.assert_array_equal(cg[:3], np.array([[0, 0], [-1, 1], [1, -1]], dtype) / m)
    assert g.dtype == cg.dtype == dtype


# --- backprop through depth -----------------------------------------------------------------------


def fd_gradients(model, X, y, loss_name, h=1e-6):
    """float64 central differences of the loss through forward() only, and their rounding noise."""
    grads, noise = [], []
    for p in model.parameters():
        g, n = np.zeros_like(p), np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            fp = float(losses.get(loss_name)(model.forward(X), y))
            p[i] = old - h
            fm = float(losses.get(loss_name)(model.forward(X), y))
            p[i] = old
            g[i] = (fp - fm) / (2 * h)
            n[i] = 16 * EPS * (abs(fp) + abs(fm)) / (2 * h)
        grads.append(g)
        noise.append(n)
    return grads, noise


def backprop_gradients(model, X, y, loss_name):
    loss = losses.get(loss_name)
    loss(model.forward(X), y)
    model.backward(loss.backward())
    return [g.copy() for g in model.gradients()]


def assert_close(analytic, numeric, noise, rtol=1e-5, atol=1e-9):
    for a, n, e in zip(analytic, numeric, noise, strict=True):
        bound = rtol * np.maximum(np.abs(a), np.abs(n)) + e + atol
        assert (np.abs(a - n) <= bound).all(), (a, n)


@pytest.mark.parametrize("hidden", ["softmax", "log_softmax"])
def test_three_layer_network_with_a_row_wise_hidden_activation(hidden, rng):
    # the existing depth test covers the element-wise activations; these two mix the units
    model = Sequential([Dense(4, 5, dtype="float64"), get(hidden), Dense(5, 4, dtype="float64"),
                        get(hidden), Dense(4, 2, dtype="float64")], seed=2).eval()
    X, y = rng.normal(size=(6, 4)), rng.normal(size=(6, 2))
    analytic = backprop_gradients(model, X, y, "mse")
    assert_close(analytic, *fd_gradients(model, X, y, "mse"))


def test_gradient_reaches_the_first_layer_without_biases_and_through_dropout_in_eval(rng):
    model = Sequential([Dense(3, 4, bias=False, dtype="float64"), get("tanh"), Dropout(0.5),
                        Dense(4, 4, dtype="float64"), get("sigmoid"),
                        Dense(4, 1, bias=False, dtype="float64")], seed=5).eval()
    X, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 1))
    analytic = backprop_gradients(model, X, y, "mse")
    assert len(analytic) == 4 and np.abs(analytic[0]).max() > 1e-3  # the first W is reached
    assert_close(analytic, *fd_gradients(model, X, y, "mse"))


# SELU is left out: its slope jumps at 0 (lambda alpha vs lambda), where the all-zero row sits
SATURATING = ["tanh", "sigmoid", "softplus", "elu", "gelu", "silu", "mish", "softsign"]


@pytest.mark.parametrize("activation", SATURATING)
def test_model_gradients_at_extreme_inputs_match_finite_differences(activation):
    # inputs of +/-1e3, +/-30 and 0 drive hidden units deep into saturation (and 0 onto the
    # origin); the gradient there is tiny but must still be the true one, and finite
    X = np.array([[1e3, -1e3, 0.0], [-30.0, 30.0, 0.0], [0.0, 0.0, 0.0], [0.5, -1.5, 2.0]])
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    model = mlp([3, 4, 3, 1], activation=activation, output="sigmoid", dtype="float64", seed=1)
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        analytic = backprop_gradients(model, X, y, "bce")
    assert all(np.isfinite(g).all() for g in analytic)
    assert_close(analytic, *fd_gradients(model, X, y, "bce"))


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


def test_fused_softmax_ce_delta_is_softmax_minus_onehot_at_huge_logits():
    from chainrule.training import Trainer

    model = Sequential([Dense(2, 3, dtype="float64"), get("softmax")], seed=0)
    model.layers[0].W[...] = [[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]
    X = np.array([[1e3, 0.0], [-1e3, 0.0], [0.0, 1e9], [0.0, 0.0]])
    labels = np.array([1, 1, 0, 2])
    trainer = Trainer(model, losses.CrossEntropy(), optim.SGD(lr=1e-300))
    value, _ = trainer.step(X, labels)
    # logits: (1e3, -1e3, 0) -> softmax (1, 0, 0); (-1e3, 1e3, 0) -> (0, 1, 0);
    # (0, 0, 1e9) -> (0, 0, 1); (0, 0, 0) -> 1/3 each. Losses 2e3, 0, 1e9, ln 3 over m = 4.
    assert value == pytest.approx((2e3 + 1e9 + np.log(3.0)) / 4, rel=1e-12)
    s = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1 / 3, 1 / 3, 1 / 3]])
    delta = (s - np.eye(3)[labels]) / 4
    np.testing.assert_allclose(model.layers[0].db, delta.sum(0), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(model.layers[0].dW, X.T @ delta, rtol=1e-12, atol=1e-300)


def test_predict_refuses_nan_and_predict_proba_rows_are_probabilities(rng):
    model = mlp([3, 5, 4], output="softmax", seed=0)
    model.task, model.classes_ = "classification", np.array(["a", "b", "c", "d"])
    X = rng.normal(size=(7, 3)).astype(np.float32)
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert list(model.predict(X)) == list(model.classes_[proba.argmax(axis=1)])
    X[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN at index \(4, 2\)"):
        model.predict(X)


# --- model files ----------------------------------------------------------------------------------


def test_float64_model_without_biases_and_with_dropout_round_trips(tmp_path, rng):
    model = Sequential([Dense(3, 4, bias=False, dtype="float64"), get("elu"), Dropout(0.3),
                        Dense(4, 2, dtype="float64"), get("softmax")], seed=4)
    path = model.save(tmp_path / "m.safetensors")
    loaded = chainrule.load(path)
    assert repr(loaded) == repr(model) and loaded.dtype == np.float64
    assert loaded.layers[0].b is None and loaded.layers[2].p == 0.3
    for a, b in zip(loaded.parameters(), model.parameters(), strict=True):
        assert a.dtype == np.float64 and a.tobytes() == b.tobytes()
    X = rng.normal(size=(5, 3))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_model_file_with_non_finite_weights_is_refused_by_name(tmp_path, bad):
    path = mlp([2, 3, 1], seed=0).save(tmp_path / "m.safetensors")
    tensors, meta = read_safetensors(path)
    tensors["0.weight"][1, 0] = bad
    write_safetensors(path, tensors, meta)
    with pytest.raises(ModelFileError, match=r"m\.safetensors: tensor '0\.weight'.*finite"):
        chainrule.load(path)


def test_a_model_file_with_a_wrongly_shaped_weight_is_refused_by_name(tmp_path):
    path = mlp([2, 3, 1], seed=0).save(tmp_path / "m.safetensors")
    tensors, meta = read_safetensors(path)
    tensors["2.weight"] = np.zeros((1, 4), np.float32)
    write_safetensors(path, tensors, meta)
    with pytest.raises(ModelFileError, match=r"m\.safetensors: tensor '2\.weight' has shape"):
        chainrule.load(path)


# --- optimizers against the update rules written out from the papers ------------------------------


def _run(opt, w, grads):
    for g in grads:
        opt.step([w], [g.copy()])
    return w


def test_sgd_nesterov_with_weight_decay_matches_the_pytorch_recurrence(rng):
    w0, grads = rng.normal(size=6), rng.normal(size=(5, 6))
    lr, mu, wd = 0.1, 0.9, 0.01
    w, v = w0.copy(), np.zeros(6)
    for g in grads:  # torch.optim.SGD: d = g + wd w; v = mu v + d; step = d + mu v
        d = g + wd * w
        v = mu * v + d
        w = w - lr * (d + mu * v)
    got = _run(optim.SGD(lr=lr, momentum=mu, nesterov=True, weight_decay=wd), w0.copy(), grads)
    np.testing.assert_allclose(got, w, rtol=1e-13)


def test_rmsprop_with_weight_decay_matches_the_recurrence(rng):
    w0, grads = rng.normal(size=6), rng.normal(size=(5, 6))
    lr, rho, eps, wd = 0.01, 0.8, 1e-8, 0.1
    w, s = w0.copy(), np.zeros(6)
    for g in grads:
        d = g + wd * w
        s = rho * s + (1 - rho) * d * d
        w = w - lr * d / (np.sqrt(s) + eps)
    got = _run(optim.RMSprop(lr=lr, rho=rho, eps=eps, weight_decay=wd), w0.copy(), grads)
    np.testing.assert_allclose(got, w, rtol=1e-12)


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
def test_adam_and_adamw_with_weight_decay_match_the_papers(cls, rng):
    w0, grads = rng.normal(size=6), rng.normal(size=(6, 6))
    lr, b1, b2, eps, wd = 0.02, 0.85, 0.99, 1e-7, 0.3
    w, m, v = w0.copy(), np.zeros(6), np.zeros(6)
    for t, g in enumerate(grads, start=1):
        if cls is optim.AdamW:  # Loshchilov & Hutter: shrink w, the gradient is untouched
            w = w - lr * wd * w
        else:  # Kingma & Ba with L2: the decay joins the gradient
            g = g + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    opt = cls(lr=lr, beta1=b1, beta2=b2, eps=eps, weight_decay=wd)
    np.testing.assert_allclose(_run(opt, w0.copy(), grads), w, rtol=1e-11)


def test_clip_norm_inside_the_optimizer_clips_the_joint_norm():
    w1, w2 = np.zeros(1), np.zeros(1)
    # joint norm of (3, 4) is 5; clipped to 1 the gradient is (0.6, 0.8) and w = -lr g
    optim.SGD(lr=1.0, clip_norm=1.0).step([w1, w2], [np.array([3.0]), np.array([4.0])])
    np.testing.assert_allclose([w1[0], w2[0]], [-0.6, -0.8], rtol=1e-10)


@pytest.mark.parametrize("name", list(optim.OPTIMIZERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optimizers_at_extreme_gradients(name, dtype):
    g = np.array([1e9, -1e9, 1e3, -1e3, 0.0, 1e-30], dtype=dtype)
    w = np.ones(6, dtype=dtype)
    opt = optim.get(name, lr=1e-6 if name == "sgd" else 1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step([w], [g.copy()])
    assert w.dtype == dtype and np.isfinite(w).all()
    assert np.all(np.sign(1.0 - w.astype(np.float64))[:4] == np.sign(g[:4]))  # downhill
    nan = np.array([np.nan, 1.0], dtype=dtype)
    w = np.ones(2, dtype=dtype)
    optim.get(name).step([w], [nan])
    assert np.isnan(w[0])  # a NaN gradient is never hidden


def test_every_schedule_by_name_and_cosine_holds_after_t_max():
    names = {"constant": optim.ConstantLR, "step": optim.StepLR, "exponential": optim.ExponentialLR,
             "cosine": optim.CosineLR, "plateau": optim.ReduceLROnPlateau}
    for name, cls in names.items():
        assert type(optim.get_schedule(name)) is cls
    assert optim.get_schedule("constant").lr(99, 0.3) == 0.3
    cos = optim.CosineLR(t_max=4, eta_min=0.01)
    assert cos.lr(4, 1.0) == cos.lr(40, 1.0) == pytest.approx(0.01)


def test_fit_applies_a_schedule_each_epoch_and_records_it(rng):
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, size=20)
    model = mlp([3, 2], output="softmax", seed=0)
    history = model.fit(X, y, loss="ce", optimizer="sgd", lr=0.8,
                        schedule=optim.StepLR(step_size=2, gamma=0.5), epochs=5, verbose=0)
    assert history.lr == [0.8, 0.8, 0.4, 0.4, 0.2]


# --- training -------------------------------------------------------------------------------------


def blobs(rng, n=120, k=3, d=4):
    centers = rng.normal(scale=4.0, size=(k, d))
    y = rng.integers(0, k, size=n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y


def test_same_seed_is_bit_identical_and_the_seed_matters(rng):
    X, y = blobs(rng)

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
    X, y = blobs(rng)
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
    X, y = blobs(rng)
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
    import signal

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
def test_more_bad_data_is_refused_before_training(kwargs, message):
    model = mlp([2, 4, 3], output="softmax", seed=0)
    before = [p.copy() for p in model.parameters()]
    args = {"X": np.zeros((4, 2)), "y": np.array([0, 1, 2, 1]), **kwargs}
    X, y = args.pop("X"), args.pop("y")
    with pytest.raises(ValueError, match=message):
        model.fit(X, y, loss="ce", epochs=1, verbose=0, **args)
    for a, b in zip(before, model.parameters(), strict=True):
        assert a.tobytes() == b.tobytes()


# --- the CLI --------------------------------------------------------------------------------------

# the built-in data sets are the files scikit-learn ships (read without importing it)
needs_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                                   reason="scikit-learn is not installed")


def _one_line_error(capsys, code, argv, *fragments):
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


@needs_sklearn
def test_cli_divergence_is_one_line_exit_1(capsys):
    _one_line_error(capsys, 1, ["train", "--data", "iris", "--optimizer", "sgd", "--lr", "1e30",
                                "--epochs", "3", "--quiet"],
                    "diverged", "Lower the learning rate")


@needs_sklearn
def test_cli_refuses_tanh_with_bce_and_bce_on_three_classes(capsys):
    _one_line_error(capsys, 1, ["train", "--data", "breast_cancer", "--output-activation", "tanh",
                                "--epochs", "1", "--quiet"], "Sigmoid", "bce_with_logits")
    _one_line_error(capsys, 1, ["train", "--data", "iris", "--loss", "bce", "--epochs", "1"],
                    "--loss bce is for two classes")


@needs_sklearn
def test_cli_options_reach_the_model_and_the_summary(tmp_path, capsys):
    argv = ["train", "--data", "iris", "--layers", "8,6", "--activation", "tanh",
            "--output-activation", "softmax", "--loss", "ce", "--optimizer", "sgd", "--lr", "0.05",
            "--epochs", "6", "--batch-size", "16", "--validation-split", "0.2",
            "--early-stopping", "50", "--seed", "3", "--json", "--out", str(tmp_path / "m.st")]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["architecture"]["sizes"] == [4, 8, 6, 3]
    assert first["architecture"]["activation"] == "tanh"
    assert first["architecture"]["layers"][1] == "Tanh()"
    assert first["optimizer"] == "sgd" and first["lr"] == 0.05 and first["loss"] == "ce"
    assert first["epochs_run"] == 6 and first["validation"] is not None
    assert first["samples"] == {"train": 120, "test": 30}
    model = chainrule.load(tmp_path / "m.st")
    assert model.training_config["batch_size"] == 16 and model.training_config["seed"] == 3
    assert model.training_config["optimizer"].startswith("SGD(lr=0.05")
    # same seed, same data: the same numbers again
    assert main(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["train"] == first["train"] and second["test"] == first["test"]


def test_cli_trains_on_an_npz_and_an_idx_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--epochs", "3", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["architecture"]["sizes"][0] == 3 and summary["samples"]["test"] == 12

    folder = tmp_path / "idx"
    folder.mkdir()
    for stem, n in (("train", 20), ("t10k", 10)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for kind, arr, code in (("images-idx3", images, 3), ("labels-idx1", labels, 1)):
            head = bytes([0, 0, 0x08, code]) + b"".join(d.to_bytes(4, "big") for d in arr.shape)
            (folder / f"{stem}-{kind}-ubyte").write_bytes(head + arr.tobytes())
    model = tmp_path / "m.safetensors"
    assert main(["train", "--data", str(folder), "--layers", "8", "--epochs", "1", "--json",
                 "--out", str(model)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["architecture"]["sizes"] == [784, 8, 10]
    assert summary["samples"] == {"train": 20, "test": 10}
    assert main(["evaluate", str(model), "--data", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == 10


def test_cli_predict_and_evaluate_errors_are_one_line(tmp_path, capsys):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"not a model at all, just text\n")
    _one_line_error(capsys, 1, ["predict", str(path), "--data", "iris"], "junk.safetensors")
    model = mlp([5, 2], output="softmax", seed=0)
    model.task = "classification"
    good = model.save(tmp_path / "five.safetensors")
    np.savez(tmp_path / "three.npz", X=np.zeros((4, 3)), y=np.zeros(4, dtype=int))
    _one_line_error(capsys, 1, ["evaluate", str(good), "--data", str(tmp_path / "three.npz")],
                    "expects 5")


def test_cli_real_subprocess_exit_codes(tmp_path):
    for argv, code in ((["train", "--layers", "x"], 2), (["evaluate", "nope.st", "--data", "iris"],
                                                         1)):
        proc = subprocess.run([sys.executable, "-m", "chainrule.cli", *argv], capture_output=True,
                              text=True, timeout=60, cwd=tmp_path)
        assert proc.returncode == code, proc.stderr
        assert "Traceback" not in proc.stderr
