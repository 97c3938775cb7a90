"""RNN and LSTM: backpropagation through time against float64 central finite differences
(sequences of length 1 and 5, batch 1 and 3), PyTorch's nn.RNN and nn.LSTM with copied weights
where installed, model files, and the backward checker naming each planted recurrent mistake."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.gradient_check import MISTAKES, check_backward
from chainrule.nn import LSTM, RNN, DenseOverTime, MeanOverTime, Sequential, load
from oracles import numeric_vjp, rnn_forward
from oracles import sigmoid as _sig

NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


@pytest.mark.parametrize("cls", [RNN, LSTM])
@pytest.mark.parametrize("batch, steps", [(1, 1), (3, 5), (1, 5)])
def test_backward_through_time_matches_finite_differences(cls, batch, steps):
    layer = cls(3, 4, dtype="float64", seed=0)
    x = np.random.default_rng(1).standard_normal((batch, steps, 3))
    y = layer.forward(x)
    assert y.shape == (batch, steps, 4)
    G = np.random.default_rng(2).standard_normal(y.shape)
    dx = layer.backward(G)
    claimed = [dx, *(g.copy() for g in layer.gradients())]
    numeric = numeric_vjp(lambda: layer.forward(x), [x, *layer.parameters()], G)
    for name, got, want in zip(("x", *NAMES), claimed, numeric, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_the_first_step_gets_gradient_from_the_last_output(cls):
    layer = cls(2, 3, dtype="float64", seed=0)
    x = np.random.default_rng(0).standard_normal((1, 4, 2))
    y = layer.forward(x)
    G = np.zeros_like(y)
    G[:, -1] = 1.0  # only the last output matters
    assert np.abs(layer.backward(G)[:, 0]).max() > 1e-6


@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_float32_stays_float32_and_agrees_with_float64(cls):
    x = np.random.default_rng(0).standard_normal((2, 5, 3))
    small, big = cls(3, 4, seed=0), cls(3, 4, dtype="float64", seed=0)
    y = small.forward(x.astype(np.float32))
    dx = small.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == small.gradients()[0].dtype == np.float32
    big.load_state_dict(small.state_dict())
    big.forward(x)
    np.testing.assert_allclose(dx, big.backward(np.ones(y.shape)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls", [RNN, LSTM])
@pytest.mark.parametrize("value", [1e3, -1e3, 1e9, -1e9, 0.0])
def test_extreme_inputs_saturate_without_overflow(cls, value):
    layer = cls(2, 3, dtype="float64", seed=0)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = layer.forward(np.full((2, 3, 2), value))
        dx = layer.backward(np.ones_like(y))
    assert np.isfinite(y).all() and np.isfinite(dx).all() and np.abs(y).max() <= 1.0


@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_nan_in_one_sample_stays_in_that_sample(cls):
    layer = cls(2, 3, dtype="float64", seed=0)
    x = np.zeros((2, 3, 2))
    x[0, 1, 0] = np.nan
    y = layer.forward(x)
    assert np.isfinite(y[0, 0]).all() and np.isnan(y[0, 1:]).all() and np.isfinite(y[1]).all()


def test_recurrent_layers_refuse_bad_settings_and_inputs():
    with pytest.raises(ValueError, match="hidden_size"):
        RNN(3, 0)
    with pytest.raises(ValueError, match=r"time, 3\) with at least one step; got \(2, 3\)"):
        LSTM(3, 2).forward(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="before forward"):
        RNN(3, 2).backward(np.zeros((1, 1, 2)))
    with pytest.raises(ValueError, match=r"'weight_ih_l0' has shape \(8, 3\); it needs \(16, 3\)"):
        LSTM(3, 4).load_state_dict(LSTM(3, 2).state_dict())


def test_a_recurrent_model_saves_and_loads(tmp_path):
    model = Sequential([LSTM(3, 4), RNN(4, 5), MeanOverTime(), DenseOverTime(5, 2)], seed=0)
    x = np.random.default_rng(0).standard_normal((2, 6, 3)).astype(np.float32)
    again = load(model.save(tmp_path / "rnn.safetensors"))
    np.testing.assert_array_equal(again.forward(x), model.forward(x))
    with pytest.raises(ValueError, match=r"shape \(m, time, 3\); got \(2, 6, 4\)"):
        model.forward(np.zeros((2, 6, 4)))


@pytest.mark.parametrize("batch, steps, features", [(2, 5, 3), (1, 1, 1)])
@pytest.mark.parametrize("cls, name", [(RNN, "RNN"), (LSTM, "LSTM")])
def test_matches_pytorch_with_copied_weights(cls, name, batch, steps, features):
    torch = pytest.importorskip("torch")
    layer = cls(features, 4, dtype="float64", seed=0)
    ref = getattr(torch.nn, name)(features, 4, batch_first=True).double()
    with torch.no_grad():
        for key in NAMES:
            getattr(ref, key).copy_(torch.from_numpy(getattr(layer, key)))
    x = np.random.default_rng(1).standard_normal((batch, steps, features))
    tx = torch.from_numpy(x).requires_grad_(True)
    ty = ref(tx)[0]
    G = np.random.default_rng(2).standard_normal(tuple(ty.shape))
    ty.backward(torch.from_numpy(G))
    np.testing.assert_allclose(layer.forward(x), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.backward(G), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for key, grad in zip(NAMES, layer.gradients(), strict=True):
        np.testing.assert_allclose(grad, getattr(ref, key).grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=key)


# --- planted mistakes, named by check_backward(layer="rnn" / "lstm") ---------------------------

def rnn_backward_one_step(d, x, W_ih, W_hh, b_ih, b_hh):
    """Each step's dz from its own output only: the dh from step t + 1 is never added."""
    hs = rnn_forward(x, W_ih, W_hh, b_ih, b_hh)
    dx, dWi, dWh, db = np.zeros_like(x), np.zeros_like(W_ih), np.zeros_like(W_hh), 0.0
    for t in range(x.shape[1]):
        dz = d[:, t] * (1 - hs[:, t] ** 2)
        h_prev = hs[:, t - 1] if t else np.zeros_like(hs[:, 0])
        dx[:, t] = dz @ W_ih
        dWi, dWh, db = dWi + dz.T @ x[:, t], dWh + dz.T @ h_prev, db + dz.sum(axis=0)
    return dx, dWi, dWh, db, db


def lstm_forward(x, W_ih, W_hh, b_ih, b_hh, keep=None):
    n, hidden = len(x), W_hh.shape[1]
    h, c, out = np.zeros((n, hidden)), np.zeros((n, hidden)), []
    for t in range(x.shape[1]):
        i, f, g, o = np.split(x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh, 4, axis=1)
        i, f, g, o = _sig(i), _sig(f), np.tanh(g), _sig(o)
        if keep is not None:
            keep.append((i, f, g, o, c, h))
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out, axis=1)


def lstm_backward_without_cell_path(d, x, W_ih, W_hh, b_ih, b_hh, through_h=True):
    """BPTT through h (unless ``through_h`` is False: each step on its own), but
    dc_t = dh_t * o * (1 - tanh(c_t)**2) only."""
    keep = []
    lstm_forward(x, W_ih, W_hh, b_ih, b_hh, keep)
    dx, dWi, dWh, db = np.zeros_like(x), np.zeros_like(W_ih), np.zeros_like(W_hh), 0.0
    dh_next = 0.0
    for t in reversed(range(x.shape[1])):
        i, f, g, o, c_prev, h_prev = keep[t]
        c = f * c_prev + i * g
        dh = d[:, t] + dh_next
        dc = dh * o * (1 - np.tanh(c) ** 2)
        dz = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                             dc * i * (1 - g ** 2), dh * np.tanh(c) * o * (1 - o)], axis=1)
        dx[:, t] = dz @ W_ih
        dWi, dWh, db = dWi + dz.T @ x[:, t], dWh + dz.T @ h_prev, db + dz.sum(axis=0)
        dh_next = dz @ W_hh if through_h else 0.0
    return dx, dWi, dWh, db, db


def lstm_backward_one_step(d, x, W_ih, W_hh, b_ih, b_hh):
    return lstm_backward_without_cell_path(d, x, W_ih, W_hh, b_ih, b_hh, through_h=False)


def _layer_backward(cls):
    """The layer's own backward as a check_backward pair."""
    def backward(d, x, W_ih, W_hh, b_ih, b_hh):
        layer = cls(x.shape[2], W_hh.shape[1], dtype=x.dtype)
        layer.load_state_dict(dict(zip(NAMES, (W_ih, W_hh, b_ih, b_hh), strict=True)))
        layer.forward(x)
        return layer.backward(d), *(g.copy() for g in layer.gradients())
    return backward


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("forward, backward, layer, kind", [
    (rnn_forward, rnn_backward_one_step, "rnn", "bptt_truncated"),
    (lstm_forward, lstm_backward_without_cell_path, "lstm", "lstm_cell_path_dropped"),
    (lstm_forward, lstm_backward_one_step, "lstm", "bptt_truncated"),
])
def test_a_planted_recurrent_mistake_is_named(forward, backward, layer, kind, seed):
    assert kind in MISTAKES
    report = check_backward(forward, backward, layer=layer, seed=seed)
    assert not report.correct, str(report)
    assert report.kind == kind, str(report)


@pytest.mark.parametrize("forward, cls, layer", [(rnn_forward, RNN, "rnn"),
                                                 (lstm_forward, LSTM, "lstm")])
def test_the_layers_own_backward_passes_the_checker(forward, cls, layer):
    assert check_backward(forward, _layer_backward(cls), layer=layer).correct
