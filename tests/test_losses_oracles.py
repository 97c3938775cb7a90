"""chainrule.losses against oracles that share none of its code.

- SymPy: each loss written from its textbook definition (sigmoid and softmax spelled out as
  exponentials), differentiated symbolically, evaluated in 30-digit mpmath arithmetic;
- mpmath: loss values and gradients at logits up to +/-1e9, in float32 and float64, against
  50-digit evaluations of the definitions;
- Hypothesis: BCE-with-logits(x, y) == BCE(sigmoid(x), y); CE-with-logits gradient rows sum to 0.
"""

import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from chainrule.losses import (
    LOSSES,
    MSE,
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    CrossEntropyWithLogits,
    Huber,
    get,
)

# --- SymPy ---------------------------------------------------------------------------------------


def sym_sigmoid(x):
    return 1 / (1 + sympy.exp(-x))


def sym_loss(name, kwargs, X, T):
    """The loss summed over the batch, as SymPy builds it from the definitions.

    ``X`` is a matrix of symbols (the prediction); ``T`` the targets as exact rationals (for the
    cross-entropies: a one-hot or probability matrix).
    """
    m, k = X.shape
    terms = []
    for i in range(m):
        for j in range(k):
            x, t = X[i, j], T[i, j]
            if name == "mse":
                terms.append((x - t) ** 2 / (2 if kwargs.get("half") else 1))
            elif name == "huber":
                d = sympy.nsimplify(kwargs["delta"])
                r = x - t
                terms.append(
                    sympy.Piecewise(
                        (r**2 / 2, sympy.Abs(r) <= d), (d * (sympy.Abs(r) - d / 2), True)
                    )
                )
            elif name == "bce":
                terms.append(-(t * sympy.log(x) + (1 - t) * sympy.log(1 - x)))
            elif name == "bce_with_logits":
                w = kwargs.get("pos_weight", 1)
                w = sympy.nsimplify(w[j] if isinstance(w, list) else w)
                s = sym_sigmoid(x)
                terms.append(-(w * t * sympy.log(s) + (1 - t) * sympy.log(1 - s)))
    if name == "ce":
        terms = [-T[i, j] * sympy.log(X[i, j]) for i in range(m) for j in range(k)]
    if name == "ce_with_logits":
        ls = sympy.nsimplify(kwargs.get("label_smoothing", 0))
        cw = kwargs.get("class_weight")
        for i in range(m):
            denom = sum(sympy.exp(X[i, j]) for j in range(k))
            v = 1 if cw is None else sum(sympy.nsimplify(cw[j]) * T[i, j] for j in range(k))
            for j in range(k):
                t = (1 - ls) * T[i, j] + ls / k
                terms.append(-v * t * sympy.log(sympy.exp(X[i, j]) / denom))
    return sympy.Add(*terms)


SYMPY_CONFIGS = [
    ("mse", {}, "values"),
    ("mse", {"half": True}, "values"),
    ("huber", {"delta": 0.7}, "values"),
    ("bce", {}, "soft"),
    ("bce_with_logits", {}, "soft"),
    ("bce_with_logits", {"pos_weight": 2.5}, "binary"),
    ("bce_with_logits", {"pos_weight": [0.5, 3.0]}, "soft"),
    ("ce", {}, "labels"),
    ("ce", {}, "rows"),
    ("ce_with_logits", {}, "labels"),
    ("ce_with_logits", {}, "rows"),
    ("ce_with_logits", {"label_smoothing": 0.2, "class_weight": [0.2, 1.0, 3.0]}, "labels"),
    ("ce_with_logits", {"label_smoothing": 0.1, "class_weight": [0.2, 1.0, 3.0]}, "rows"),
]


def sympy_case(name, target_kind, rng, m=3):
    """Random float64 pred and exact-rational targets (float64 copy for chainrule)."""
    k = 3 if name.startswith("ce") else 2
    if name == "ce":
        e = np.exp(rng.normal(size=(m, k)))
        pred = e / e.sum(axis=1, keepdims=True)
    elif name == "bce":
        pred = rng.uniform(0.05, 0.95, size=(m, k))
    else:
        pred = rng.normal(scale=2.0, size=(m, k))
    if target_kind == "labels":
        labels = rng.integers(0, k, size=m)
        return pred, labels, sympy.Matrix(np.eye(k, dtype=int)[labels].tolist())
    if target_kind == "rows":
        q = rng.integers(1, 5, size=(m, k))
        T = sympy.Matrix(m, k, lambda i, j: sympy.Rational(int(q[i, j]), int(q[i].sum())))
    elif target_kind == "binary":
        T = sympy.Matrix(rng.integers(0, 2, size=(m, k)).tolist())
    elif target_kind == "soft":
        T = sympy.Matrix(m, k, lambda i, j: sympy.Rational(int(rng.integers(0, 9)), 8))
    else:
        T = sympy.Matrix(m, k, lambda i, j: sympy.Rational(int(rng.integers(-16, 17)), 8))
    return pred, np.array(T.tolist(), dtype=np.float64), T


@pytest.mark.parametrize(("name", "kwargs", "target_kind"), SYMPY_CONFIGS)
def test_gradient_matches_sympy(rng, name, kwargs, target_kind):
    pred, target, T = sympy_case(name, target_kind, rng)
    m, k = pred.shape
    X = sympy.Matrix(m, k, lambda i, j: sympy.Symbol(f"x_{i}_{j}", real=True))
    expr = sym_loss(name, kwargs, X, T)
    grads = [sympy.diff(expr, X[i, j]) for i in range(m) for j in range(k)]
    f = sympy.lambdify(list(X), [expr, *grads], modules="mpmath")
    with mpmath.workdps(30):
        value, *g = f(*[mpmath.mpf(float(v)) for v in pred.ravel()])
        value = float(value)
        g = np.array([float(v) for v in g]).reshape(m, k)
    for reduction, scale in (("sum", 1.0), ("mean", 1.0 / m), ("none", 1.0)):
        loss = get(name, reduction=reduction, **kwargs)
        out = loss(pred, target)
        np.testing.assert_allclose(np.sum(out), value * scale, rtol=1e-12)
        np.testing.assert_allclose(loss.backward(), g * scale, rtol=1e-10, atol=1e-300)


# --- mpmath at extreme logits, float32 and float64 -----------------------------------------------


def mp_bce_logits(x, y, w=1):
    """50-digit -(w y log sigma(x) + (1 - y) log(1 - sigma(x))) and its derivative.

    With -log sigma(x) = log(1 + e^{-x}) and 1 - sigma(x) = sigma(-x), written with log1p: 50
    digits of log(1 + 1e-46) would keep only 4 of them.
    """
    x, y = mpmath.mpf(float(x)), mpmath.mpf(float(y))

    def f(u):
        return w * y * mpmath.log1p(mpmath.exp(-u)) + (1 - y) * mpmath.log1p(mpmath.exp(u))

    return f(x), mpmath.diff(f, x)


def mp_ce_logits(row, label):
    """50-digit -log softmax(row)[label] and its gradient exp(x_k)/sum - [k == label]."""
    xs = [mpmath.mpf(float(v)) for v in row]
    denom = mpmath.fsum(mpmath.exp(v) for v in xs)
    value = -mpmath.log(mpmath.exp(xs[label]) / denom)
    grad = [mpmath.exp(v) / denom - (1 if k == label else 0) for k, v in enumerate(xs)]
    return value, grad


def close(actual, exact, rtol):
    """|actual - exact| <= rtol |exact|, with exact a 50-digit mpmath number (0 only if 0)."""
    exact = mpmath.mpf(exact)
    return abs(mpmath.mpf(float(actual)) - exact) <= rtol * abs(exact)


@pytest.mark.parametrize(("dtype", "rtol"), [(np.float32, 1e-6), (np.float64, 1e-13)])
def test_bce_with_logits_is_exact_at_extreme_logits(dtype, rtol):
    x = np.array([1e9, 1e9, -1e9, -1e9, 1e3, -1e3, 30, 30, -30, -30, 88, -104, 0.5, 0], dtype)
    y = np.array([1, 0, 1, 0, 1, 1, 1, 0, 1, 0.25, 1, 0, 1, 0.5], dtype)
    for w in (1, 3):
        loss = BinaryCrossEntropyWithLogits(reduction="none", pos_weight=None if w == 1 else w)
        values = loss(x, y)
        grads = loss.backward()
        assert values.dtype == grads.dtype == dtype
        with mpmath.workdps(50):
            for xi, yi, v, g in zip(x, y, values, grads, strict=True):
                ev, eg = mp_bce_logits(xi, yi, w)
                # float32 flushes below ~1e-45: there the exact value must be that small
                assert close(v, ev, rtol) or abs(ev) < np.finfo(dtype).smallest_subnormal, (xi, yi)
                assert close(g, eg, rtol) or abs(eg) < np.finfo(dtype).smallest_subnormal, (xi, yi)


@pytest.mark.parametrize(("dtype", "rtol"), [(np.float32, 1e-6), (np.float64, 1e-13)])
def test_ce_with_logits_is_exact_at_extreme_logits(dtype, rtol):
    rows = np.array(
        [
            [1e9, 1e9, -1e9],  # a tie at 1e9: float32 spacing there is 64, log 2 must survive
            [1e9, 1e9 + 64, 0],
            [-1e9, 1e9, 0],
            [1e3, -1e3, 0],
            [30, 0, -30],
            [-1e9, -1e9, -3e9],
            [0, 0, 0],
        ],
        dtype=dtype,
    )
    tiny = np.finfo(dtype).smallest_subnormal
    for label, as_rows in ((0, False), (1, False), (2, False), (0, True), (2, True)):
        labels = np.full(len(rows), label)
        loss = CrossEntropyWithLogits(reduction="none")
        values = loss(rows, np.eye(3, dtype=dtype)[labels] if as_rows else labels)
        grads = loss.backward()
        assert values.dtype == grads.dtype == dtype
        with mpmath.workdps(50):
            for row, v, g in zip(rows, values, grads, strict=True):
                ev, eg = mp_ce_logits(row, label)
                assert close(v, ev, rtol) or abs(ev) < tiny, (row, label, v, ev)
                for gk, egk in zip(g, eg, strict=True):
                    assert close(gk, egk, rtol) or abs(egk) < tiny, (row, label, g, eg)


# --- Hypothesis properties -----------------------------------------------------------------------

moderate_logits = st.floats(-20.0, 20.0, allow_nan=False)
probability = st.floats(0.0, 1.0, allow_nan=False)


@given(
    hnp.arrays(
        np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=5), elements=moderate_logits
    ),
    st.data(),
)
def test_bce_with_logits_equals_bce_of_sigmoid(x, data):
    y = data.draw(hnp.arrays(np.float64, x.shape, elements=probability))
    s = 1.0 / (1.0 + np.exp(-x))  # test-side sigmoid; |x| <= 20 keeps it inside the clamp
    fused, plain = (
        BinaryCrossEntropyWithLogits(reduction="none"),
        BinaryCrossEntropy(reduction="none"),
    )
    a, b = fused(x, y), plain(s, y)
    assert np.isfinite(a).all() and np.isfinite(b).all()
    np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-12)
    # and the gradients through the chain rule: dJ/dyhat * s(1 - s) == dJ/dx
    np.testing.assert_allclose(
        plain.backward() * s * (1.0 - s), fused.backward(), rtol=1e-7, atol=1e-12
    )


@st.composite
def ce_batches(draw):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    m, k = draw(st.integers(1, 5)), draw(st.integers(2, 6))
    scale = draw(st.sampled_from([1.0, 30.0, 1e3, 1e9]))
    x = draw(hnp.arrays(dtype, (m, k), elements=st.floats(-1.0, 1.0, width=32))) * dtype(scale)
    labels = draw(hnp.arrays(np.int64, (m,), elements=st.integers(0, k - 1)))
    smoothing = draw(st.sampled_from([0.0, 0.1, 0.5]))
    weights = draw(st.one_of(st.none(), hnp.arrays(np.float64, (k,), elements=st.floats(0, 5))))
    as_rows = draw(st.booleans())
    return x, (np.eye(k, dtype=dtype)[labels] if as_rows else labels), smoothing, weights


def ce_row_sum_tolerance(x, target, weights):
    """Bound on |sum_k g_ik| for a rounded CE-with-logits gradient g ("mean" reduction).

    Row i is g_ik = (v_i / m) (p_ik - t'_ik): v_i the sample's class weight, p_i the softmax,
    t'_i the smoothed target, both in [0, 1] and each summing to 1. The row sums to 0 only in
    exact arithmetic; in floating point every operation rounds relative to the operands it
    combines, which are of size v_i / m, not |g_ik|: with label smoothing p_ik - t'_ik cancels
    (p_ik ~ t'_ik), and a row can be all rounding noise (e.g. s = 1 and equal logits). So the K
    entries' errors sum to a few eps * v_i / m, however small g is; a bound relative to
    max_k |g_ik| fails (x = [[0, -3.75]], one-hot row [1, 0], s = 0.1, float64: the row sums to
    -7.3e-17 against 8 eps max|g| = 4.8e-17). Measured over random batches the row sums stay
    below 0.75 K eps v_i / m; 4 K eps v_i / m leaves margin. Weights multiply and "mean"
    divides the entries, which can round into the subnormals with an absolute error of up to
    one smallest subnormal per entry: hence the K * smallest_subnormal term. A gradient that
    is wrong by O(v_i / m) still fails, e.g. softmax(x) without the target, whose rows sum to
    v_i / m.
    """
    m, k = x.shape
    labels = target if target.ndim == 1 else target.argmax(axis=1)
    v = np.ones(m) if weights is None else weights.astype(x.dtype).astype(np.float64)[labels]
    finfo = np.finfo(x.dtype)
    return 4 * k * float(finfo.eps) * v / m + k * float(finfo.smallest_subnormal)


@given(ce_batches())
# found by Hypothesis: row sums of 7.3e-17 (float64) and 7.5e-9 (float32) from cancellation in
# p - t' under label smoothing, beyond the old bound 4 K eps (max|g_row| + eps)
@example((np.array([[0.0, -3.75]]), np.array([[1.0, 0.0]]), 0.1, None))
@example(
    (np.array([[-0.6875, 0.46875], [0.0, 0.0]], dtype=np.float32), np.array([1, 0]), 0.5, None)
)
@example(
    (
        np.array([[-19.6875, -22.5], [0.0, 0.0]], dtype=np.float32),
        np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32),
        0.1,
        None,
    )
)
def test_ce_with_logits_gradient_rows_sum_to_zero(batch):
    x, target, smoothing, weights = batch
    loss = CrossEntropyWithLogits(label_smoothing=smoothing, class_weight=weights)
    value = loss(x, target)
    g = loss.backward()
    assert np.isfinite(value) and np.isfinite(g).all() and g.dtype == x.dtype
    tol = ce_row_sum_tolerance(x, target, weights)
    assert (np.abs(g.sum(axis=1, dtype=np.float64)) <= tol).all()


def test_ce_row_sum_tolerance_rejects_a_gradient_without_the_target():
    # the bound is loose enough for rounding but not for a gradient missing its "- t'" term
    x = np.array([[0.0, -3.75], [2.0, 1.0]], dtype=np.float32)
    for target in (np.array([0, 1]), np.eye(2, dtype=np.float32)[[0, 1]]):
        for weights in (None, np.array([0.5, 3.0])):
            v = np.ones(2) if weights is None else weights[[0, 1]]
            p = np.exp(x - x.max(axis=1, keepdims=True))
            wrong = (p / p.sum(axis=1, keepdims=True)) * (v / 2)[:, None]
            tol = ce_row_sum_tolerance(x, target, weights)
            assert (np.abs(wrong.sum(axis=1, dtype=np.float64)) > tol).all()


@given(
    hnp.arrays(np.float64, st.integers(1, 8), elements=st.floats(-1e3, 1e3)),
    st.floats(0.1, 10.0),
)
def test_huber_lies_between_its_linear_and_quadratic_pieces(r, delta):
    huber = Huber(delta=delta, reduction="none")(r, np.zeros_like(r))
    half_mse = MSE(half=True, reduction="none")(r, np.zeros_like(r))
    assert (huber <= half_mse * (1 + 1e-12) + 1e-300).all()
    assert (huber >= delta * np.abs(r) - delta**2 / 2 - 1e-9 * (1 + np.abs(r))).all()


def test_engine_and_losses_share_their_names():
    library = pytest.importorskip("chainrule.derivation.library")
    assert set(library.loss_names()) == set(LOSSES)
