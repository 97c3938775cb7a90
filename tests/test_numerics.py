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
