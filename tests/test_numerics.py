"""The shared stable primitives against float64 and mpmath-free closed forms."""

import math

import numpy as np
import pytest

from chainrule import _numerics as nx


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_extremes_and_dtype(dtype):
    x = np.array([-1e9, -1e3, -30.0, 0.0, 30.0, 1e3, 1e9], dtype=dtype)
    s = nx.sigmoid(x)
    assert s.dtype == dtype
    ref = [0.0, 0.0, 1 / (1 + math.exp(30.0)), 0.5, 1 / (1 + math.exp(-30.0)), 1.0, 1.0]
    np.testing.assert_allclose(s, np.asarray(ref, dtype=dtype), rtol=1e-6, atol=0)


def test_sigmoid_in_place_and_relative_accuracy():
    x = np.linspace(-700, 40, 4001)
    ref = np.array([1 / (1 + math.exp(-v)) for v in x])
    y = x.copy()
    out = nx.sigmoid(y, out=y)
    assert out is y
    np.testing.assert_allclose(out, ref, rtol=1e-14)


def test_sigmoid_propagates_nan():
    assert np.isnan(nx.sigmoid(np.array([np.nan]))[0])


def test_log_softmax_and_logsumexp_are_shifted():
    x = np.array([[1e9, 1e9 - 1.0, -1e9]])
    np.testing.assert_allclose(nx.logsumexp(x, axis=-1), [1e9 + math.log1p(math.exp(-1.0))])
    np.testing.assert_allclose(nx.softmax(x).sum(), 1.0)
    np.testing.assert_allclose(np.exp(nx.log_softmax(np.array([[0.0, 0.0]]))), [[0.5, 0.5]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_constant_like_gives_maximum_and_minimum_the_scalar_results_bit_for_bit(dtype):
    from chainrule._numerics import constant_like

    specials = [-0.0, 0.0, np.nan, -1.0, 1.0, 1e-45, -1e-45, np.inf, -np.inf, 1e9, -1e9]
    z = np.array(specials * 50, dtype=dtype).reshape(-1, 11)
    for op, value in ((np.maximum, 0.0), (np.minimum, 0.0), (np.minimum, 1.0)):
        const = constant_like(z, value)
        assert const.shape == z.shape and const.dtype == z.dtype and not const.flags.writeable
        assert op(z, const).tobytes() == op(z, value).tobytes()
    assert constant_like(z, 0.0) is constant_like(z.copy(), 0.0)  # cached by shape and dtype


def test_constant_like_cache_stays_bounded():
    from chainrule import _numerics

    for n in range(1, 200):
        _numerics.constant_like(np.empty((n, 1000), np.float32), 0.0)
    total = sum(a.nbytes for a in _numerics._CONSTANTS.values())
    assert 0 < total <= _numerics._CONSTANTS_MAX_BYTES
    big = _numerics.constant_like(np.empty((3000, 1000)), 1.0)  # 24 MB: made, not kept
    assert big.shape == (3000, 1000) and (big == 1.0).all()
    assert all(a.nbytes < big.nbytes for a in _numerics._CONSTANTS.values())
