"""chainrule.losses: hand-worked numbers, finite differences, common mistakes, errors, registry.

The symbolic (SymPy), high-precision (mpmath) and property (Hypothesis) checks are in
tests/test_losses_oracles.py.
"""

import json
import math
import warnings

import numpy as np
import pytest

from chainrule import losses
from chainrule.losses import (
    ALIASES,
    LOSSES,
    MSE,
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    CrossEntropy,
    CrossEntropyWithLogits,
    Huber,
    Loss,
    get,
)

REDUCTIONS = ("mean", "sum", "none")
EPS64 = np.finfo(np.float64).eps

# (canonical name, constructor kwargs, target kind) covering every loss and its options.
CONFIGS = [
    ("mse", {}, "values"),
    ("mse", {"half": True}, "values"),
    ("huber", {"delta": 0.7}, "values"),
    ("bce", {}, "binary"),
    ("bce", {}, "soft"),
    ("bce_with_logits", {}, "soft"),
    ("bce_with_logits", {"pos_weight": 2.5}, "binary"),
    ("bce_with_logits", {"pos_weight": [0.5, 3.0, 1.5]}, "soft"),
    ("ce", {}, "labels"),
    ("ce", {}, "rows"),
    ("ce_with_logits", {}, "labels"),
    ("ce_with_logits", {}, "rows"),
    ("ce_with_logits", {"label_smoothing": 0.2}, "labels"),
    ("ce_with_logits", {"label_smoothing": 0.1, "class_weight": [0.2, 1.0, 3.0]}, "rows"),
    ("ce_with_logits", {"class_weight": [0.2, 1.0, 3.0]}, "labels"),
]
CONFIG_IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}-{t}" for n, kw, t in CONFIGS]


def softmax_rows(z):
    """Test-side softmax (float64, moderate inputs only): exp(z) / sum exp(z)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def random_case(name, target_kind, rng, m=4, k=3):
    """A random (pred, target) pair in float64 for the loss ``name``, away from any kink."""
    if name in ("ce", "ce_with_logits"):
        logits = rng.normal(scale=2.0, size=(m, k))
        pred = softmax_rows(logits) if name == "ce" else logits
        if target_kind == "labels":
            return pred, rng.integers(0, k, size=m)
        return pred, rng.dirichlet(np.ones(k), size=m)
    if name == "bce":
        pred = rng.uniform(0.05, 0.95, size=(m, k))
    elif name == "bce_with_logits":
        pred = rng.normal(scale=3.0, size=(m, k))
    else:
        pred = rng.normal(size=(m, k))
    if target_kind == "binary":
        return pred, rng.integers(0, 2, size=(m, k)).astype(np.float64)
    if target_kind == "soft":
        return pred, rng.uniform(0.0, 1.0, size=(m, k))
    target = rng.normal(size=(m, k))
    if name == "huber":  # keep |pred - target| clear of the kink at delta
        r = np.abs(pred - target)
        target[np.abs(r - 0.7) < 0.05] += 0.2
    return pred, target


def fd_step(name, pred):
    """Central-difference steps: relative to the distance from 0/1 for probabilities."""
    if name == "bce":
        return 1e-4 * np.minimum(pred, 1.0 - pred)
    if name == "ce":
        return 1e-4 * pred
    if name == "huber":  # smaller: the second derivative jumps at |r| = delta
        return 1e-7 * np.maximum(1.0, np.abs(pred))
    return 1e-5 * np.maximum(1.0, np.abs(pred))


def central_differences(f, x, h):
    """float64 central differences of the scalar ``f`` at ``x``, and a bound on their rounding.

    Steps are rounded down to powers of two, so ``x +/- h`` is exact (and a tie stays a tie), and
    the step actually taken, ``(x + h) - (x - h)``, is what is divided by. The bound is 8 ulps of
    the larger of ``f(x +/- h)`` over the step: where the loss is large and a partial derivative
    tiny, finite differences cannot resolve it, and the bound says so.
    """
    x = np.asarray(x, dtype=np.float64)
    h = 2.0 ** np.floor(np.log2(h))
    grad = np.zeros_like(x)
    err = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h[i]
        xm[i] -= h[i]
        fp, fm = f(xp), f(xm)
        step = xp[i] - xm[i]
        grad[i] = (fp - fm) / step
        err[i] = 8 * EPS64 * max(abs(fp), abs(fm)) / step
    return grad, err


def assert_gradient_close(analytic, fd, fd_err, rtol=1e-6):
    """Element-wise relative error <= rtol, allowing the finite differences' own rounding."""
    analytic = np.asarray(analytic, dtype=np.float64)
    bound = rtol * np.maximum(np.abs(analytic), np.abs(fd)) + fd_err
    bad = np.abs(analytic - fd) > bound
    assert not bad.any(), (
        f"gradient mismatch at {np.argwhere(bad)[:3].tolist()}:\n"
        f"analytic={analytic[bad][:3]}\nfinite differences={fd[bad][:3]}"
    )


def total(loss, pred, target):
    """The scalar whose gradient ``backward`` returns: the loss, or the sum for 'none'."""
    out = loss(pred, target)
    return float(np.sum(out)) if loss.reduction == "none" else out


# --- hand-worked numbers (at least one per loss) -------------------------------------------------


class TestHandWorked:
    def test_mse(self):
        pred = np.array([[1.0, 2.0], [3.0, 4.0]])
        target = np.array([[0.0, 2.0], [3.0, 6.0]])
        # per-sample sums: (1-0)^2 + 0^2 = 1 and 0^2 + (4-6)^2 = 4
        # mean = (1 + 4)/2 = 2.5; sum = 5; half=True halves both; none = [1, 4]
        assert MSE()(pred, target) == 2.5
        assert MSE(reduction="sum")(pred, target) == 5.0
        assert MSE(half=True)(pred, target) == 1.25
        np.testing.assert_array_equal(MSE(reduction="none")(pred, target), [1.0, 4.0])
        loss = MSE()
        loss(pred, target)
        # 2 (pred - target) / m = 2 [[1, 0], [0, -2]] / 2
        np.testing.assert_array_equal(loss.backward(), [[1.0, 0.0], [0.0, -2.0]])
        half = MSE(half=True, reduction="sum")
        half(pred, target)
        # half: the residual itself, pred - target
        np.testing.assert_array_equal(half.backward(), pred - target)

    def test_huber(self):
        loss = Huber(delta=1.0, reduction="sum")
        # r = 0.5 (quadratic): 0.5^2/2 = 0.125;  r = -3 (linear): 1 * (3 - 1/2) = 2.5
        assert loss(np.array([0.5, -3.0]), np.array([0.0, 0.0])) == pytest.approx(2.625)
        # h'(r) = clip(r, -1, 1) = [0.5, -1]
        np.testing.assert_array_equal(loss.backward(), [0.5, -1.0])
        # delta = 2, r = 3: 2 * (3 - 1) = 4, the mean over m = 1 sample
        assert Huber(delta=2.0)(np.array([3.0]), np.array([0.0])) == pytest.approx(4.0)

    def test_bce(self):
        loss = BinaryCrossEntropy()
        # -ln 0.8 = 0.22314355, -ln(1 - 0.4) = 0.51082562; mean over 2 = 0.36698459
        assert loss(np.array([0.8, 0.4]), np.array([1.0, 0.0])) == pytest.approx(
            0.36698459, abs=1e-8
        )
        # -(y/yhat - (1-y)/(1-yhat))/m: -(1/0.8)/2 = -0.625;  (1/0.6)/2 = 0.8333...
        np.testing.assert_allclose(loss.backward(), [-0.625, 5 / 6], rtol=1e-15)

    def test_bce_with_logits(self):
        x = np.array([0.0, np.log(3.0)])
        y = np.array([1.0, 0.0])
        loss = BinaryCrossEntropyWithLogits()
        # y=1, x=0: -ln sigma(0) = ln 2;  y=0, x=ln 3: -ln(1 - 3/4) = ln 4
        # mean = (ln 2 + ln 4)/2 = 1.5 ln 2 = 1.03972077
        assert loss(x, y) == pytest.approx(1.5 * np.log(2.0), rel=1e-15)
        # (sigma(x) - y)/m: (1/2 - 1)/2 = -0.25;  (3/4 - 0)/2 = 0.375
        np.testing.assert_allclose(loss.backward(), [-0.25, 0.375], rtol=1e-15)
        weighted = BinaryCrossEntropyWithLogits(pos_weight=2.0)
        # the positive term doubles: (2 ln 2 + ln 4)/2 = 2 ln 2
        assert weighted(x, y) == pytest.approx(2.0 * np.log(2.0), rel=1e-15)
        # ((2*1 + 0) * 1/2 - 2*1)/2 = -0.5;  the negative sample is unchanged: 0.375
        np.testing.assert_allclose(weighted.backward(), [-0.5, 0.375], rtol=1e-15)

    def test_ce(self):
        pred = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
        loss = CrossEntropy()
        # -ln 0.7 = 0.35667494, -ln 0.8 = 0.22314355; mean = 0.28990925
        assert loss(pred, np.array([0, 2])) == pytest.approx(0.28990925, abs=1e-8)
        # -t/p/m: -1/0.7/2 = -0.71428571 at class 0, -1/0.8/2 = -0.625 at class 2
        np.testing.assert_allclose(
            loss.backward(), [[-1 / 1.4, 0.0, 0.0], [0.0, 0.0, -0.625]], rtol=1e-15
        )
        # probability rows: the same loss from one-hot rows
        assert loss(pred, np.eye(3)[[0, 2]]) == pytest.approx(0.28990925, abs=1e-8)

    def test_ce_with_logits(self):
        x = np.log([[1.0, 2.0, 5.0]])  # softmax = [1, 2, 5]/8
        loss = CrossEntropyWithLogits()
        # label 2: -ln(5/8) = 0.47000363
        assert loss(x, np.array([2])) == pytest.approx(0.47000363, abs=1e-8)
        # softmax - onehot = [1/8, 2/8, 5/8 - 1]
        np.testing.assert_allclose(loss.backward(), [[0.125, 0.25, -0.375]], rtol=1e-14)

        smooth = CrossEntropyWithLogits(label_smoothing=0.3)
        # t' = 0.7 [0, 0, 1] + 0.3/3 = [0.1, 0.1, 0.8]
        # loss = 0.1 ln 8 + 0.1 ln 4 + 0.8 ln(8/5) = 0.20794415 + 0.13862944 + 0.37600290
        assert smooth(x, np.array([2])) == pytest.approx(0.72257649, abs=1e-8)
        # softmax - t' = [0.125 - 0.1, 0.25 - 0.1, 0.625 - 0.8] = [0.025, 0.15, -0.175]
        np.testing.assert_allclose(smooth.backward(), [[0.025, 0.15, -0.175]], rtol=1e-13)

        weighted = CrossEntropyWithLogits(class_weight=[1.0, 1.0, 3.0])
        x2 = np.vstack([x, x])
        # sample 0 (class 2, weight 3): 3 ln(8/5) = 1.41001089; sample 1 (class 0, weight 1):
        # ln 8 = 2.07944154; "mean" divides by m = 2: (1.41001089 + 2.07944154)/2 = 1.74472622
        assert weighted(x2, np.array([2, 0])) == pytest.approx(1.74472622, abs=1e-8)
        # 3 [1/8, 2/8, -3/8]/2 and 1 [1/8 - 1, 2/8, 5/8]/2
        np.testing.assert_allclose(
            weighted.backward(),
            [[0.1875, 0.375, -0.5625], [-0.4375, 0.125, 0.3125]],
            rtol=1e-13,
        )


# --- common mistakes: a tanh output fed to BCE, sigmoid' applied by hand ----------------------


def test_bce_fed_a_tanh_output_says_what_and_how_to_fix(rng):
    yhat = np.tanh(rng.normal(size=(5, 1)) - 1.0)  # tanh outputs lie in (-1, 1)
    yhat[0, 0] = -0.76
    with pytest.raises(ValueError) as info:
        BinaryCrossEntropy()(yhat, np.ones((5, 1)))
    msg = str(info.value)
    assert "[0, 1]" in msg and "probabilities" in msg
    assert f"{yhat.min():.4g}" in msg  # what was received
    assert "(a tanh output?)" in msg
    assert "Sigmoid" in msg and "BinaryCrossEntropyWithLogits" in msg


def test_bce_above_one_reports_the_maximum_without_the_tanh_hint():
    with pytest.raises(ValueError, match=r"values up to 3\.5 at index 1") as info:
        BinaryCrossEntropy()(np.array([0.5, 3.5]), np.array([1.0, 0.0]))
    assert "tanh" not in str(info.value)


@pytest.mark.parametrize("m", [1, 5])
def test_sigmoid_then_bce_chained_by_hand_is_yhat_minus_y_over_m(rng, m):
    z = rng.normal(scale=2.0, size=(m, 3))
    y = rng.integers(0, 2, size=(m, 3)).astype(np.float64)
    s = 1.0 / (1.0 + np.exp(-z))  # the Sigmoid layer's output
    loss = BinaryCrossEntropy()
    loss(s, y)
    at_logits = loss.backward() * s * (1.0 - s)  # dJ/dyhat * dyhat/dz
    np.testing.assert_allclose(at_logits, (s - y) / m, rtol=1e-12, atol=1e-15)
    fused = BinaryCrossEntropyWithLogits()
    fused(z, y)
    np.testing.assert_allclose(fused.backward(), (s - y) / m, rtol=1e-12, atol=1e-15)


def test_bce_gradient_is_exactly_the_textbook_expression(rng):
    yhat = rng.uniform(0.01, 0.99, size=(6, 2))
    y = rng.uniform(0.0, 1.0, size=(6, 2))
    loss = BinaryCrossEntropy()
    loss(yhat, y)
    np.testing.assert_array_equal(loss.backward(), -(y / yhat - (1 - y) / (1 - yhat)) / 6)


# --- finite differences --------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("name", "kwargs", "target_kind"), CONFIGS, ids=CONFIG_IDS)
def test_gradient_matches_finite_differences_at_random_points(
    rng, name, kwargs, target_kind, reduction
):
    pred, target = random_case(name, target_kind, rng)
    loss = get(name, reduction=reduction, **kwargs)
    total(loss, pred, target)
    analytic = loss.backward()
    fd, err = central_differences(
        lambda p: total(get(name, reduction=reduction, **kwargs), p, target),
        pred,
        fd_step(name, pred),
    )
    assert analytic.shape == pred.shape and analytic.dtype == np.float64
    assert_gradient_close(analytic, fd, err)


# Extreme points. Elementwise losses use one number per sample, CE one row per sample, and the
# finite differences are taken of each sample's own loss ("none"), so a sample with a loss of 1e9
# does not drown the rounding of its neighbours'.
EXTREMES = [
    ("mse", {}, [1e9, -1e9, 1e3, 0.0, -30.0], [0.0, 0.0, -1e3, 0.0, 30.0]),
    ("mse", {"half": True}, [1e9, 0.0, 2.5], [-1e9, 0.0, 2.5]),
    ("huber", {"delta": 0.7}, [0.7, -0.7, 1e9, -1e3, 0.0, 30.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
    ("bce", {}, [1e-6, 1 - 1e-6, 1e-6, 1 - 1e-6, 0.5], [1.0, 1.0, 0.0, 0.0, 0.5]),
    (
        "bce_with_logits",
        {},
        [30.0, -30.0, 30.0, -30.0, 1e3, -1e3, 1e3, 1e9, -1e9, 1e9, -1e9, 1e9, 0.0],
        [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.3, 1.0, 0.0, 0.0, 1.0, 0.3, 0.5],
    ),
    (
        "bce_with_logits",
        {"pos_weight": 3.0},
        [30.0, -30.0, -1e3, 1e9, -1e9, 0.0],
        [1.0, 1.0, 1.0, 0.3, 1.0, 1.0],
    ),
    (
        "ce",
        {},
        [[1 - 2e-6, 1e-6, 1e-6], [1e-6, 1 - 2e-6, 1e-6], [1 / 3, 1 / 3, 1 / 3]],
        [0, 0, 2],
    ),
]
CE_LOGITS = [
    [30.0, 0.0, -30.0],
    [-30.0, 0.0, 30.0],
    [1e3, -1e3, 0.0],
    [1e9, -1e9, 1e9],  # a tie at the maximum
    [-1e9, 1e9, 0.0],
    [0.0, 0.0, 0.0],  # all tied
    [-1e9, -1e9, -3e9],  # a tie at the maximum, far below 0
]
for _kw in ({}, {"label_smoothing": 0.2}, {"class_weight": [0.5, 2.0, 1.0]}):
    EXTREMES.append(("ce_with_logits", _kw, CE_LOGITS, [0, 2, 0, 1, 1, 2, 0]))
    EXTREMES.append(("ce_with_logits", _kw, CE_LOGITS, [2, 2, 2, 0, 0, 0, 1]))
    EXTREMES.append(("ce_with_logits", _kw, CE_LOGITS, np.eye(3)[[0, 2, 0, 1, 1, 2, 0]].tolist()))
    EXTREMES.append(("ce_with_logits", _kw, CE_LOGITS, [[0.5, 0.5, 0.0]] * 7))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("name", "kwargs", "pred", "target"), EXTREMES)
def test_gradient_matches_finite_differences_at_extreme_points(
    name, kwargs, pred, target, reduction
):
    pred = np.array(pred, dtype=np.float64)
    target = np.array(target)
    if target.dtype.kind == "f":
        target = target.astype(np.float64)
    loss = get(name, reduction=reduction, **kwargs)
    value = loss(pred, target)
    analytic = loss.backward()
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(analytic))
    m = pred.shape[0]
    h = fd_step(name, pred)
    fd = np.zeros_like(pred)
    err = np.zeros_like(pred)
    per_sample = get(name, reduction="none", **kwargs)
    for i in range(m):

        def sample_loss(p_i, i=i):
            p = pred.copy()
            p[i] = p_i
            return float(per_sample(p, target)[i])

        fd[i], err[i] = central_differences(sample_loss, pred[i], h[i])
    scale = 1.0 / m if reduction == "mean" else 1.0
    assert_gradient_close(analytic, fd * scale, err * scale)


def test_huber_kink_is_continuously_differentiable():
    # At |r| = delta both branches give the value delta^2/2 and the slope +/-delta.
    loss = Huber(delta=0.7, reduction="none")
    r = np.array([0.7 - 1e-12, 0.7, 0.7 + 1e-12])
    np.testing.assert_allclose(loss(r, np.zeros(3)), 0.245, rtol=1e-11)
    np.testing.assert_allclose(loss.backward(), 0.7, rtol=1e-11)


# --- extreme inputs: finite, no NaN, no RuntimeWarning -------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_at_exactly_zero_and_one_is_finite_and_uses_the_clamp(dtype):
    eps = float(np.finfo(dtype).epsneg)  # 2^-24 in float32, 2^-53 in float64
    assert dtype(1.0) - dtype(eps) != dtype(1.0)  # the clamp is representable next to 1
    pred = np.array([0.0, 1.0, 0.0, 1.0], dtype=dtype)
    y = np.array([0.0, 0.0, 1.0, 1.0], dtype=dtype)
    loss = BinaryCrossEntropy(reduction="none")
    value = loss(pred, y)
    grad = loss.backward()
    assert value.dtype == grad.dtype == dtype
    assert np.isfinite(value).all() and np.isfinite(grad).all()
    # wrong and certain: -log(eps), the documented bound (16.6 in float32, 36.7 in float64)
    np.testing.assert_allclose(value[[1, 2]], -math.log(eps), rtol=1e-6)
    assert value[[0, 3]].max() < 1e-6  # right and certain: about 0
    # the textbook gradient at the clamped prediction
    clamped = np.array([eps, 1 - eps, eps, 1 - eps])
    expected = -(y / clamped - (1 - y) / (1 - clamped))
    np.testing.assert_allclose(grad, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ce_on_a_predicted_zero_is_finite(dtype):
    pred = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
    loss = CrossEntropy(reduction="sum")
    value = loss(pred, np.array([0, 0]))
    grad = loss.backward()
    eps = float(np.finfo(dtype).epsneg)
    assert value == pytest.approx(-math.log(eps), rel=1e-6)  # 0 + (-log eps)
    np.testing.assert_allclose(grad, [[-1.0, 0, 0], [-1 / eps, 0, 0]], rtol=1e-6)
    assert grad.dtype == dtype


# --- reductions and shapes -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kwargs", "target_kind"), CONFIGS, ids=CONFIG_IDS)
def test_reductions_relate_by_m(rng, name, kwargs, target_kind):
    pred, target = random_case(name, target_kind, rng, m=5)
    per = get(name, reduction="none", **kwargs)(pred, target)
    s = get(name, reduction="sum", **kwargs)(pred, target)
    mean_loss = get(name, reduction="mean", **kwargs)
    mean = mean_loss(pred, target)
    assert per.shape == (5,) and per.dtype == np.float64
    assert isinstance(s, float) and isinstance(mean, float)
    assert s == pytest.approx(per.sum(), rel=1e-13)
    assert mean == pytest.approx(s / 5, rel=1e-13)
    for reduction, factor in (("sum", 1.0), ("none", 1.0)):
        other = get(name, reduction=reduction, **kwargs)
        other(pred, target)
        np.testing.assert_allclose(other.backward(), factor * 5 * mean_loss.backward(), rtol=1e-13)


def test_per_sample_loss_sums_over_every_non_sample_axis(rng):
    pred = rng.normal(size=(3, 2, 4))
    target = rng.normal(size=(3, 2, 4))
    per = MSE(reduction="none")(pred, target)
    np.testing.assert_allclose(per, ((pred - target) ** 2).sum(axis=(1, 2)), rtol=1e-14)
    # not PyTorch's element-wise mean: that would divide by 3*2*4, this divides by m = 3
    assert MSE()(pred, target) == pytest.approx(per.sum() / 3, rel=1e-14)
    y = rng.integers(0, 2, size=(3, 2, 4))
    per = BinaryCrossEntropyWithLogits(reduction="none")(pred, y)
    one_at_a_time = [BinaryCrossEntropyWithLogits(reduction="sum")(pred[i], y[i]) for i in range(3)]
    np.testing.assert_allclose(per, one_at_a_time, rtol=1e-14)


def test_zero_dimensional_pred_is_one_sample():
    loss = MSE(reduction="none")
    out = loss(np.float64(3.0), 1.0)
    assert out.shape == (1,) and out[0] == 4.0
    grad = loss.backward()
    assert isinstance(grad, np.ndarray) and grad.shape == () and grad == 4.0
    bce = BinaryCrossEntropy()
    assert bce(np.array(0.5), np.array(1.0)) == pytest.approx(math.log(2.0))
    assert bce.backward().shape == ()


@pytest.mark.parametrize("name", list(LOSSES))
def test_empty_batch(name):
    k = 3
    pred = np.zeros((0, k))
    target = np.zeros(0, dtype=int) if name.startswith("ce") else np.zeros((0, k))
    assert get(name, reduction="sum")(pred, target) == 0.0
    loss = get(name, reduction="none")
    assert loss(pred, target).shape == (0,)
    assert loss.backward().shape == (0, k)
    with pytest.raises(ValueError, match="empty batch"):
        get(name)(pred, target)


@pytest.mark.parametrize(("name", "kwargs", "target_kind"), CONFIGS, ids=CONFIG_IDS)
def test_backward_is_repeatable_and_a_fresh_array(rng, name, kwargs, target_kind):
    pred, target = random_case(name, target_kind, rng)
    loss = get(name, **kwargs)
    loss(pred, target)
    first = loss.backward()
    first[...] = 123.0
    second, third = loss.backward(), loss.backward()
    np.testing.assert_array_equal(second, third)
    assert not np.any(second == 123.0)


# --- dtypes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("name", "kwargs", "target_kind"), CONFIGS, ids=CONFIG_IDS)
def test_float32_stays_float32(rng, name, kwargs, target_kind, reduction):
    pred, target = random_case(name, target_kind, rng)
    pred32 = pred.astype(np.float32)
    if name == "ce":  # keep the rows summing to 1 in float32
        pred32 /= pred32.sum(axis=1, keepdims=True)
    loss = get(name, reduction=reduction, **kwargs)
    value = loss(pred32, target)  # a float64 (or integer) target must not upcast
    grad = loss.backward()
    assert grad.dtype == np.float32 and grad.shape == pred.shape
    if reduction == "none":
        assert value.dtype == np.float32
    else:
        assert isinstance(value, float)
    ref = get(name, reduction=reduction, **kwargs)
    ref_value = ref(pred32.astype(np.float64), target)
    np.testing.assert_allclose(value, ref_value, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(grad, ref.backward(), rtol=2e-4, atol=1e-6)


def test_integer_inputs_are_promoted_to_float64():
    loss = MSE()
    assert loss([1, 2, 3], [1, 1, 1]) == pytest.approx(5 / 3)
    assert loss.backward().dtype == np.float64


# --- the unchecked path the training loop uses ---------------------------------------------------


@pytest.mark.parametrize(("name", "kwargs", "target_kind"), CONFIGS, ids=CONFIG_IDS)
def test_unchecked_path_matches_forward(rng, name, kwargs, target_kind):
    pred, target = random_case(name, target_kind, rng)
    pred = pred.astype(np.float32)
    if name == "ce":
        pred /= pred.sum(axis=1, keepdims=True)
    # the trainer's form: int64 labels, or targets already in pred's dtype
    target = target.astype(np.int64 if target_kind == "labels" else np.float32)
    checked, unchecked = get(name, **kwargs), get(name, **kwargs)
    assert unchecked._forward(pred, target) == checked(pred, target)
    np.testing.assert_array_equal(unchecked._backward(), checked.backward())
    assert unchecked._backward().dtype == np.float32


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LOSSES))
def test_nan_and_inf_name_the_argument_and_the_position(name):
    pred = np.full((3, 2), 0.5)
    target = np.zeros(3, dtype=int) if name.startswith("ce") else np.full((3, 2), 0.5)
    bad_pred = pred.copy()
    bad_pred[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"pred contains NaN at index \(1, 0\)"):
        get(name)(bad_pred, target)
    bad_target = np.full((3, 2), 0.5)
    bad_target[2, 1] = np.inf
    if name.startswith("ce"):
        bad_target = np.array([0.0, np.inf, 1.0])
    with pytest.raises(ValueError, match=r"target contains inf at index"):
        get(name)(pred, bad_target)


@pytest.mark.parametrize("name", list(LOSSES))
def test_shape_mismatch_names_both_shapes(name):
    pred = np.full((4, 2), 0.5)
    target = np.full((4, 3), 0.5)
    with pytest.raises(ValueError, match=r"\(4, 2\).*\(4, 3\)"):
        get(name)(pred, target)


@pytest.mark.parametrize("loss", [CrossEntropy(), CrossEntropyWithLogits()])
def test_class_label_errors(loss):
    pred = np.full((3, 4), 0.25)
    with pytest.raises(ValueError, match=r"class label 4 at index 2.*K=4.*0\.\.3"):
        loss(pred, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"class label -1"):
        loss(pred, np.array([-1, 1, 2]))
    with pytest.raises(ValueError, match=r"non-integer 1\.5"):
        loss(pred, np.array([0.0, 1.5, 2.0]))
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(2,\)"):
        loss(pred, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        loss(np.full(4, 0.25), np.array([1]))
    with pytest.raises(ValueError, match=r"row 1 sums to 2"):
        loss(pred, np.array([[1.0, 0, 0, 0], [1.0, 1.0, 0, 0], [0, 0, 0, 1.0]]))
    assert loss(pred, np.array([0.0, 1.0, 3.0])) == pytest.approx(math.log(4.0))


def test_cross_entropy_refuses_non_probabilities():
    for bad, what in (
        (np.array([[0.5, -0.5, 1.0]]), r"values down to -0\.5"),
        (np.array([[0.5, 0.5, 0.5]]), r"row 0 of pred sums to 1\.5"),
    ):
        with pytest.raises(ValueError, match=what) as info:
            CrossEntropy()(bad, np.array([0]))
        assert "Softmax" in str(info.value) and "CrossEntropyWithLogits" in str(info.value)


@pytest.mark.parametrize("cls", [BinaryCrossEntropy, BinaryCrossEntropyWithLogits])
def test_binary_targets_outside_zero_one_raise(cls):
    with pytest.raises(ValueError, match=r"targets in \[0, 1\].*values up to 2"):
        cls()(np.array([0.5, 0.5]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"values down to -1"):
        cls()(np.array([0.5, 0.5]), np.array([-1.0, 0.0]))


def test_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match="forward"):
        MSE().backward()


@pytest.mark.parametrize("name", list(LOSSES))
def test_reduction_is_validated(name):
    with pytest.raises(ValueError, match=r"'reduction'.*'mean', 'sum', 'none'.*'avg'"):
        get(name, reduction="avg")


@pytest.mark.parametrize(
    ("build", "pattern"),
    [
        (lambda: MSE(half="yes"), "'half'"),
        (lambda: Huber(delta=0.0), r"'delta'.*\(0, inf\).*0\.0"),
        (lambda: Huber(delta=float("nan")), "'delta'"),
        (lambda: BinaryCrossEntropyWithLogits(pos_weight=-1.0), "'pos_weight'"),
        (lambda: BinaryCrossEntropyWithLogits(pos_weight=[[1.0]]), "'pos_weight'"),
        (lambda: CrossEntropyWithLogits(label_smoothing=1.5), r"'label_smoothing'.*1\.5"),
        (lambda: CrossEntropyWithLogits(class_weight=[1.0, -2.0]), "'class_weight'"),
    ],
)
def test_constructor_arguments_are_validated(build, pattern):
    with pytest.raises(ValueError, match=pattern):
        build()


def test_weights_must_match_the_columns():
    with pytest.raises(ValueError, match=r"class_weight has 2 entries.*K=3"):
        CrossEntropyWithLogits(class_weight=[1.0, 2.0])(np.zeros((2, 3)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"pos_weight has 2 entries.*\(4, 3\)"):
        BinaryCrossEntropyWithLogits(pos_weight=[1.0, 2.0])(np.zeros((4, 3)), np.zeros((4, 3)))


# --- registry ------------------------------------------------------------------------------------


def test_registry_names_and_flags():
    assert list(LOSSES) == ["mse", "bce", "bce_with_logits", "ce", "ce_with_logits", "huber"]
    for name, cls in LOSSES.items():
        assert issubclass(cls, Loss) and cls.name == name
        assert cls.from_logits == name.endswith("_with_logits")
    assert set(ALIASES.values()) <= set(LOSSES)
    assert ALIASES["squared_error"] == "mse"
    assert ALIASES["binary_cross_entropy"] == "bce"
    assert ALIASES["cross_entropy"] == "ce"


def test_get_by_name_alias_class_name_and_instance():
    assert type(get("mse")) is MSE
    assert type(get("Binary-Cross-Entropy")) is BinaryCrossEntropy
    assert type(get("BinaryCrossEntropyWithLogits")) is BinaryCrossEntropyWithLogits
    assert type(get(Huber, delta=2.0)) is Huber
    a, b = get("ce"), get("ce")
    assert a is not b  # fresh instances
    inst = CrossEntropyWithLogits(label_smoothing=0.1)
    assert get(inst) is inst
    assert get("ce_with_logits", label_smoothing=0.1).label_smoothing == 0.1
    with pytest.raises(ValueError, match="or the instance alone"):
        get(inst, reduction="sum")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as info:
        get("hinge")
    msg = str(info.value)
    assert "'hinge'" in msg
    assert all(name in msg for name in LOSSES)
    with pytest.raises(ValueError, match=r"loss name such as .*; got int 3"):
        get(3)


@pytest.mark.parametrize("name", list(LOSSES))
def test_config_round_trips_through_json(name):
    kwargs = {
        "mse": {"half": True},
        "huber": {"delta": 2.5},
        "bce_with_logits": {"pos_weight": [1.0, 2.0]},
        "ce_with_logits": {"label_smoothing": 0.1, "class_weight": [1.0, 3.0]},
    }.get(name, {})
    loss = get(name, reduction="sum", **kwargs)
    config = json.loads(json.dumps(loss.get_config()))
    assert config["reduction"] == "sum"
    for key, value in kwargs.items():
        assert config[key] == value
    clone = type(loss)(**config)
    assert clone.get_config() == loss.get_config()
    assert repr(clone) == repr(loss)
    assert repr(loss).startswith(f"{type(loss).__name__}(") and "reduction='sum'" in repr(loss)


def test_module_exports():
    assert set(losses.__all__) >= {
        "Loss",
        "MSE",
        "Huber",
        "BinaryCrossEntropy",
        "BinaryCrossEntropyWithLogits",
        "CrossEntropy",
        "CrossEntropyWithLogits",
        "LOSSES",
        "ALIASES",
        "get",
    }


# --- exact 0 and 1, logits of 1e9: finite, exact and without a floating-point warning -------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
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


@pytest.mark.parametrize("reduction", REDUCTIONS)
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


# --- each class is the one home of its names and its fusion ---------------------------------------


def test_registries_are_built_from_each_class_names():
    for name, cls in LOSSES.items():
        assert cls.name == name and cls.title
        for alias in cls.aliases:
            assert ALIASES[alias] == name
    assert set(ALIASES) == {a for cls in LOSSES.values() for a in cls.aliases}


def test_fusion_attributes_name_real_activations_and_siblings():
    from chainrule import nn

    for cls in LOSSES.values():
        if cls.fuses_with is not None:
            assert cls.fuses_with in nn.ACTIVATIONS
        if cls.logits_loss is not None:
            sibling = LOSSES[cls.logits_loss]
            assert sibling.from_logits and sibling.applies == cls.fuses_with
        assert (cls.applies is not None) == cls.from_logits
    assert (BinaryCrossEntropy.fuses_with, BinaryCrossEntropy.logits_loss) == (
        "sigmoid", "bce_with_logits")
    assert (CrossEntropy.fuses_with, CrossEntropy.logits_loss) == ("softmax", "ce_with_logits")
    assert (MSE.fuses_with, MSE.logits_loss) == ("identity", None)


@pytest.mark.parametrize("name", [n for n, c in LOSSES.items() if c.logits_loss])
@pytest.mark.parametrize("scale", [1.0, 1e3, 1e9])
def test_the_logits_sibling_is_the_loss_of_the_fused_activation(rng, name, scale):
    # the sibling on z equals the loss of fuses_with(z), and its gradient at the logits is
    # (yhat - y)/m: checked against central differences of loss(activation(z)) in float64
    from chainrule import nn

    cls = LOSSES[name]
    z = rng.normal(0.0, 1.0, (4, 3))
    y = (rng.uniform(size=(4, 3)) < 0.5).astype(float) if name == "bce" else rng.integers(0, 3, 4)
    act = nn.get(cls.fuses_with)
    sibling = get(cls.logits_loss)
    assert sibling(z, y) == pytest.approx(cls()(act(z), y), rel=1e-12)
    grad = sibling.backward()
    onehot = y if name == "bce" else np.eye(3)[y]
    np.testing.assert_allclose(grad, (act(z) - onehot) / 4, rtol=1e-10, atol=1e-15)
    h = 1e-6
    for idx in [(0, 0), (2, 1), (3, 2)]:
        up, down = z.copy(), z.copy()
        up[idx] += h
        down[idx] -= h
        numeric = (cls()(act(up), y) - cls()(act(down), y)) / (2 * h)
        assert grad[idx] == pytest.approx(numeric, rel=1e-6, abs=1e-10)
    big = get(cls.logits_loss)
    assert np.isfinite(big(z * scale, y)) and np.isfinite(big.backward()).all()
