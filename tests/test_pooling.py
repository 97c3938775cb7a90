"""MaxPool2D and AvgPool2D: hand-worked windows, backward against float64 central finite
differences, ties sent to the first maximum, PyTorch's pools where installed, and the backward
checker naming each planted pooling mistake."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.gradient_check import MISTAKES, check_backward
from chainrule.nn import AvgPool2D, MaxPool2D
from oracles import numeric_vjp

CASES = [  # (shape, kernel, stride)
    ((2, 1, 4, 4), 2, None),
    ((1, 3, 5, 5), 3, 2),        # overlapping windows
    ((2, 2, 7, 6), (3, 2), (2, 1)),
    ((1, 1, 5, 5), 2, None),     # the last row and column in no window
]


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize("shape, kernel, stride", CASES)
def test_pool_backward_matches_finite_differences(cls, shape, kernel, stride):
    # distinct values (a permutation) keep every maximum away from a tie
    x = np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape) / 7.0
    pool = cls(kernel, stride)
    y = pool.forward(x)
    G = np.random.default_rng(1).standard_normal(y.shape)
    dx = pool.backward(G)
    xc = x.copy()
    [numeric] = numeric_vjp(lambda: cls(kernel, stride).forward(xc), [xc], G)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)


def test_max_pool_by_hand():
    x = np.array([[[[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 9.0, 1.0], [0.0, 0.0, 1.0, 1.0],
                    [2.0, 0.0, 1.0, 3.0]]]])
    pool = MaxPool2D(2)
    np.testing.assert_array_equal(pool.forward(x)[0, 0], [[5.0, 9.0], [2.0, 3.0]])
    dx = pool.backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]))[0, 0]
    np.testing.assert_array_equal(dx, [[0, 10, 0, 0], [0, 0, 20, 0], [0, 0, 0, 0],
                                       [30, 0, 0, 40]])


def test_max_pool_sends_a_tie_to_the_first_maximum():
    pool = MaxPool2D(2)
    pool.forward(np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 1, 1)))[0, 0], [[1, 0], [0, 0]])


def test_average_pool_spreads_over_the_window_divided_by_its_size():
    pool = AvgPool2D(2)
    # mean of [[0, 1], [4, 5]] = 2.5; each of the 4 entries gets dY / 4
    assert pool.forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0, 0, 0] == 2.5
    dx = pool.backward(np.full((1, 1, 2, 2), 8.0))
    np.testing.assert_array_equal(dx, np.full((1, 1, 4, 4), 2.0))


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_float32_pool_backward_matches_float64_finite_differences_loosely(cls):
    shape, kernel, stride = CASES[1]  # 3 x 3 windows at stride 2, odd sizes, batch 1
    x = np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape) / 7.0
    pool = cls(kernel, stride)
    y = pool.forward(x.astype(np.float32))
    G = np.random.default_rng(1).standard_normal(y.shape)
    dx = pool.backward(G.astype(np.float32))
    [numeric] = numeric_vjp(lambda: cls(kernel, stride).forward(x), [x], G)
    assert dx.dtype == np.float32
    np.testing.assert_allclose(dx, numeric, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("value", [1e3, -1e3, 1e9, -1e9, 0.0])
def test_pools_of_extreme_and_zero_inputs(value):
    x = np.full((1, 2, 4, 4), value)
    for cls in (MaxPool2D, AvgPool2D):
        pool = cls(2)
        np.testing.assert_array_equal(pool.forward(x), np.full((1, 2, 2, 2), value))
        assert np.isfinite(pool.backward(np.ones((1, 2, 2, 2)))).all()


def test_nan_stays_in_its_window():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 0] = np.nan
    for cls in (MaxPool2D, AvgPool2D):
        y = cls(2).forward(x)
        assert np.isnan(y[0, 0, 0, 0]) and np.isfinite(y.ravel()[1:]).all()
        # the average spreads dY without reading x; the max sends it to the NaN (NumPy's
        # argmax, like PyTorch, takes NaN as the maximum): finite either way
        pool = cls(2)
        pool.forward(x)
        dx = pool.backward(np.ones((1, 1, 2, 2)))
        assert np.isfinite(dx).all()
        assert dx[0, 0, 0, 0] == (1.0 if cls is MaxPool2D else 0.25)


def test_pools_keep_float32():
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 4)).astype(np.float32)
    for cls in (MaxPool2D, AvgPool2D):
        pool = cls(2)
        y = pool.forward(x)
        assert y.dtype == pool.backward(np.ones_like(y)).dtype == np.float32


def test_pools_refuse_bad_settings_and_inputs():
    with pytest.raises(ValueError, match="kernel_size"):
        MaxPool2D(0)
    with pytest.raises(ValueError, match="stride"):
        AvgPool2D(2, stride=0)
    with pytest.raises(ValueError, match=r"at least 3 x 3 pixels; got shape \(1, 1, 2, 2\)"):
        MaxPool2D(3).forward(np.zeros((1, 1, 2, 2)))
    with pytest.raises(RuntimeError, match="before forward"):
        AvgPool2D(2).backward(np.zeros((1, 1, 1, 1)))


@pytest.mark.parametrize("shape, kernel, stride", CASES)
def test_pools_match_pytorch(shape, kernel, stride):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(2).standard_normal(shape)
    x[..., 0, :2] = 1.5  # a tie in the first window
    for ours, theirs in ((MaxPool2D(kernel, stride), torch.nn.MaxPool2d(kernel, stride)),
                         (AvgPool2D(kernel, stride), torch.nn.AvgPool2d(kernel, stride))):
        tx = torch.from_numpy(x).requires_grad_(True)
        ty = theirs(tx)
        G = np.random.default_rng(3).standard_normal(tuple(ty.shape))
        ty.backward(torch.from_numpy(G))
        np.testing.assert_allclose(ours.forward(x), ty.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.backward(G), tx.grad.numpy(), rtol=1e-12, atol=1e-15)


# --- planted mistakes, named by check_backward(layer="maxpool2d" / "avgpool2d") -----------------

def _windows(x):
    """(n, c, 2, 2, 9) windows of 3 x 3 at stride 2 over a 5 x 5 image, and their offsets."""
    view = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3))[:, :, ::2, ::2]
    return view.reshape(*view.shape[:4], 9)


def _spread(d, x, share):
    dx = np.zeros_like(x)
    for t in range(9):
        i, j = divmod(t, 3)
        dx[:, :, i: i + 3: 2, j: j + 3: 2] += d * share(t)
    return dx


def max_forward(x):
    return _windows(x).max(axis=-1)


def avg_forward(x):
    return _windows(x).mean(axis=-1)


def _max_to_every_entry(d, x):
    return (_spread(d, x, lambda t: 1.0),)


def _avg_not_divided(d, x):
    return (_spread(d, x, lambda t: 1.0),)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("forward, backward, layer, kind", [
    (max_forward, _max_to_every_entry, "maxpool2d", "pool_max_to_every_entry"),
    (avg_forward, _avg_not_divided, "avgpool2d", "pool_average_not_divided"),
])
def test_a_planted_pool_mistake_is_named(forward, backward, layer, kind, seed):
    assert kind in MISTAKES
    report = check_backward(forward, backward, layer=layer, seed=seed)
    assert not report.correct, str(report)
    assert report.kind == kind, str(report)


def test_the_right_pool_backwards_pass_the_checker():
    def max_right(d, x):
        arg = _windows(x).argmax(axis=-1)
        return (_spread(d, x, lambda t: arg == t),)

    assert check_backward(max_forward, max_right, layer="maxpool2d").correct
    assert check_backward(avg_forward, lambda d, x: (_spread(d, x, lambda t: 1 / 9),),
                          layer="avgpool2d").correct
