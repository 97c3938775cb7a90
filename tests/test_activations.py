"""Activations: backward against float64 central differences, conventions, dtypes, registry.

The oracle for every backward pass is a central difference of ``forward`` in float64, with the
step scaled to the point (``h = 1e-7 max(1, |z|)``) and a tolerance of ``1e-6`` relative error
plus the difference's own rounding noise (``16 eps (|f(z+h)| + |f(z-h)|) / 2h``): where ``f`` is
flat at the precision of a float (sigmoid at +30, say) the difference cannot resolve ``f'`` and
the noise term says so; everywhere else the check is 1e-6 relative. The SymPy oracle is in
``test_activations_sympy.py``.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule.nn as nn
from chainrule._erf import erf, erfc
from chainrule.nn.activations import (
    ACTIVATIONS,
    ALIASES,
    CUSTOM_BUILDERS,
    ELU,
    GELU,
    SELU,
    Activation,
    Identity,
    LeakyReLU,
    LogSoftmax,
    Mish,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Softsign,
    Tanh,
    from_config,
    get,
)

EPS = float(np.finfo(np.float64).eps)
NAMES = list(ACTIVATIONS)
ELEMENTWISE = [n for n in NAMES if ACTIVATIONS[n].elementwise]

# (id, factory, differentiable at 0): every default plus the non-default parameters that change
# the code path (negative and > 1 leaky slopes, an ELU whose kink is real, tanh-GELU).
KINKED = {"relu", "leaky_relu", "selu"}
CASES = [
    *[(name, ACTIVATIONS[name], name not in KINKED) for name in ELEMENTWISE],
    ("leaky_relu(0.2)", lambda: LeakyReLU(alpha=0.2), False),
    ("leaky_relu(-0.5)", lambda: LeakyReLU(alpha=-0.5), False),
    ("leaky_relu(3)", lambda: LeakyReLU(alpha=3.0), False),
    ("elu(0.5)", lambda: ELU(alpha=0.5), False),
    ("elu(0)", lambda: ELU(alpha=0.0), False),
    ("gelu(tanh)", lambda: GELU(approximate="tanh"), True),
]
CASE_IDS = [c[0] for c in CASES]
EXTREMES = np.array([-1e9, -1e3, -30.0, -5.0, -1e-3, 1e-3, 5.0, 30.0, 1e3, 1e9])


def central_difference(factory, z):
    """Elementwise f'(z) by central differences in float64, and the rounding noise bound."""
    h = 1e-7 * np.maximum(1.0, np.abs(z))
    zp, zm = z + h, z - h
    fp, fm = factory().forward(zp), factory().forward(zm)
    step = zp - zm  # the step actually taken, after rounding z +/- h
    return (fp - fm) / step, 16.0 * EPS * (np.abs(fp) + np.abs(fm)) / step


def assert_gradient_close(analytic, numeric, noise, rtol=1e-6, what=""):
    err = np.abs(analytic - numeric)
    bound = rtol * np.maximum(np.abs(analytic), np.abs(numeric)) + noise
    bad = ~(err <= bound)
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: {bad.sum()} of {bad.size} differ; first at {i}: analytic {analytic[i]!r}, "
            f"finite difference {numeric[i]!r}, allowed {bound[i]!r}"
        )


# --- backward against finite differences -------------------------------------------------------


@pytest.mark.parametrize(("case", "factory", "smooth_at_0"), CASES, ids=CASE_IDS)
def test_backward_matches_finite_differences(case, factory, smooth_at_0, rng):
    points = [rng.normal(0.0, 3.0, size=(6, 7)), EXTREMES.reshape(2, 5)]
    if smooth_at_0:
        points.append(np.zeros((1, 3)))
    for z in points:
        if not smooth_at_0:
            z = z[np.abs(z) > 1e-4].reshape(-1)  # keep clear of the kink at 0
        act = factory()
        act.forward(z)
        g = rng.uniform(0.5, 2.0, size=z.shape) * rng.choice([-1.0, 1.0], size=z.shape)
        analytic = act.backward(g)
        numeric, noise = central_difference(factory, z)
        assert_gradient_close(analytic, g * numeric, np.abs(g) * noise, what=f"{case} at {z}")
        # derivative(z), computed from z alone, agrees with the same oracle
        assert_gradient_close(factory().derivative(z), numeric, noise, what=f"{case}.derivative")


def test_the_finite_difference_oracle_catches_a_wrong_derivative(rng):
    # the check above is not vacuous: sigmoid's derivative mistaken for s (not s(1-s)) fails it
    z = rng.normal(size=10)
    numeric, noise = central_difference(Sigmoid, z)
    with pytest.raises(AssertionError):
        assert_gradient_close(Sigmoid().forward(z), numeric, noise)


def numeric_vjp(factory, z, g, axis=-1):
    """g^T J for a row-wise map by central differences, one column at a time, with its noise.

    The step is 1e-7, or 64 ulps of the entry where that is larger (so that z +/- h differs from
    z at 1e9): the softmax's curvature does not grow with |z|, so a relative step would be wrong.
    """
    zt = np.moveaxis(z, axis, -1)
    gt = np.moveaxis(g, axis, -1)
    hs = np.maximum(1e-7, 64.0 * np.spacing(np.abs(zt)))
    out = np.empty_like(zt)
    noise = np.empty_like(zt)
    for i in range(zt.shape[-1]):
        zp, zm = zt.copy(), zt.copy()
        zp[..., i] += hs[..., i]
        zm[..., i] -= hs[..., i]
        step = zp[..., i] - zm[..., i]
        fp = np.moveaxis(factory().forward(np.moveaxis(zp, -1, axis)), axis, -1)
        fm = np.moveaxis(factory().forward(np.moveaxis(zm, -1, axis)), axis, -1)
        out[..., i] = np.sum(gt * (fp - fm), axis=-1) / step
        noise[..., i] = 16.0 * EPS * np.sum(np.abs(gt) * (np.abs(fp) + np.abs(fm)), axis=-1) / step
        # truncation allowance h^2 |f'''|: tiny against the O(|g|) size of a real mistake
        noise[..., i] += 1e-9 * np.abs(gt).max(axis=-1)
    return np.moveaxis(out, -1, axis), np.moveaxis(noise, -1, axis)


SOFTMAX_ROWS = np.array([
    [1e9, -1e9, 0.0, 1.0],
    [30.0, -30.0, 0.0, 0.0],
    [1e3, 1e3, -1e3, 0.0],  # a tie at the top
    [1.0, 1.0, 1.0, 1.0],  # exact ties everywhere
    [0.0, 0.0, 0.0, 0.0],
    [-1e9, -1e9, -1e9, -1e9],
    [2.0, -1.0, 0.5, 3.0],
])


@pytest.mark.parametrize("cls", [Softmax, LogSoftmax])
@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_backward_matches_finite_differences(cls, axis, rng):
    for z in (rng.normal(0.0, 3.0, size=(5, 4)), SOFTMAX_ROWS):
        z = z if axis == -1 else z.T.copy()
        g = rng.normal(size=z.shape)
        act = cls(axis=axis)
        act.forward(z)
        numeric, noise = numeric_vjp(lambda a=axis: cls(axis=a), z, g, axis=axis)
        assert_gradient_close(act.backward(g), numeric, noise, what=f"{cls.__name__} {z}")


def test_softmax_backward_is_the_full_jacobian_product_not_the_diagonal():
    # z = log(1, 2, 3) gives s = (1/6, 2/6, 3/6); with g = (1, 0, 0), sum(g s) = 1/6 and
    #   full:      s (g - 1/6)      = (1/6 * 5/6, 2/6 * -1/6, 3/6 * -1/6) = (5, -2, -3) / 36
    #   diagonal:  g s (1 - s)      = (1/6 * 5/6, 0, 0)                   = (5,  0,  0) / 36
    act = Softmax()
    s = act.forward(np.log([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(s, [1 / 6, 2 / 6, 3 / 6], rtol=1e-15)
    g = np.array([1.0, 0.0, 0.0])
    got = act.backward(g)
    np.testing.assert_allclose(got, np.array([5.0, -2.0, -3.0]) / 36.0, rtol=1e-14, atol=1e-17)
    assert not np.allclose(got, g * s * (1.0 - s))


def test_log_softmax_backward_hand_worked():
    # z = log(1, 2, 3): softmax s = (1, 2, 3)/6; g = (1, 1, 0) sums to 2, so
    # g - s * 2 = (1 - 2/6, 1 - 4/6, 0 - 6/6) = (4/6, 2/6, -1)
    act = LogSoftmax()
    out = act.forward(np.log([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(out, np.log([1 / 6, 2 / 6, 3 / 6]), rtol=1e-14)
    np.testing.assert_allclose(act.backward([1.0, 1.0, 0.0]), [4 / 6, 2 / 6, -1.0], rtol=1e-14)


def test_softmax_axis_zero_is_the_transpose_of_axis_minus_one(rng):
    z, g = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    for cls in (Softmax, LogSoftmax):
        a0, a1 = cls(axis=0), cls()
        np.testing.assert_allclose(a0.forward(z), a1.forward(z.T).T, rtol=1e-15)
        np.testing.assert_allclose(a0.backward(g), a1.backward(g.T).T, rtol=1e-14)


# --- conventions at the kink and hand-worked values -----------------------------------------------

KINKS = [
    ("relu", ReLU, 0.0),
    ("leaky_relu", LeakyReLU, 0.01),
    ("leaky_relu(0.2)", lambda: LeakyReLU(0.2), 0.2),
    ("elu(0.5)", lambda: ELU(0.5), 0.5),
    ("elu", ELU, 1.0),
    ("selu", SELU, 1.0507009873554805 * 1.6732632423543772),
]


@pytest.mark.parametrize(("case", "factory", "expected"), KINKS, ids=[k[0] for k in KINKS])
def test_derivative_at_zero_is_the_left_branch(case, factory, expected):
    z = np.zeros(3)
    act = factory()
    assert act.forward(z).tolist() == [0.0, 0.0, 0.0]
    np.testing.assert_allclose(act.backward(np.ones(3)), expected, rtol=1e-15)
    np.testing.assert_allclose(factory().derivative(z), expected, rtol=1e-15)
    # the left one-sided difference agrees: the convention is the left branch's slope
    h = 1e-8
    left = (factory().forward(np.array([0.0])) - factory().forward(np.array([-h]))) / h
    np.testing.assert_allclose(left, expected, rtol=1e-6)


def test_relu_derivative_at_zero_is_zero_and_one_just_right_of_it():
    assert ReLU().derivative([0.0, -0.0, 5e-324, -5e-324]).tolist() == [0.0, 0.0, 1.0, 0.0]


def test_hand_worked_values():
    # sigmoid(0) = 1/2, sigmoid'(0) = 1/2 * 1/2; tanh'(0) = 1 - 0^2
    s = Sigmoid()
    assert s.forward([0.0]).tolist() == [0.5]
    assert s.backward([1.0]).tolist() == [0.25]
    t = Tanh()
    t.forward([0.0])
    assert t.backward([3.0]).tolist() == [3.0]
    # softplus(0) = log 2, softplus'(0) = sigmoid(0) = 1/2; softsign(1) = 1/2, softsign'(1) = 1/4
    sp = Softplus()
    np.testing.assert_allclose(sp.forward([0.0]), [math.log(2.0)], rtol=1e-15)
    np.testing.assert_allclose(sp.backward([1.0]), [0.5], rtol=1e-15)
    ss = Softsign()
    assert ss.forward([1.0]).tolist() == [0.5]
    assert ss.backward([1.0]).tolist() == [0.25]
    # GELU(1) = Phi(1) = (1 + erf(1/sqrt 2))/2; GELU'(0) = Phi(0) + 0 = 1/2
    g = GELU()
    np.testing.assert_allclose(g.forward([1.0]), [0.5 * (1 + math.erf(math.sqrt(0.5)))], rtol=1e-15)
    assert g.derivative([0.0]).tolist() == [0.5]
    # SiLU'(0) = sigmoid(0) = 1/2; Mish'(0) = tanh(log 2) = (4 - 1)/(4 + 1) = 3/5
    assert SiLU().derivative([0.0]).tolist() == [0.5]
    np.testing.assert_allclose(Mish().derivative([0.0]), [0.6], rtol=1e-15)


def test_gelu_tanh_equals_the_usual_formula(rng):
    z = rng.normal(0.0, 3.0, size=200)
    usual = 0.5 * z * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (z + 0.044715 * z**3)))
    np.testing.assert_allclose(GELU(approximate="tanh").forward(z), usual, rtol=1e-12, atol=1e-15)


def test_gelu_tanh_is_close_to_the_exact_gelu(rng):
    z = rng.normal(0.0, 3.0, size=200)
    np.testing.assert_allclose(GELU("tanh").forward(z), GELU().forward(z), atol=1e-3)


# --- the error function behind GELU ---------------------------------------------------------------


def test_erf_and_erfc_match_math_to_double_precision():
    x = np.concatenate([
        np.linspace(-7.0, 7.0, 4001),
        [0.0, -0.0, 1e-300, -1e-300, 1e-9, 0.46875, -0.46875, np.nextafter(0.46875, 1.0),
         4.0, -4.0, np.nextafter(4.0, 5.0), 10.0, 26.0, -26.0, 27.0, 1e9, -1e9],
    ])
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(erf(x), expected, rtol=2e-15, atol=0.0)
    tail = np.linspace(-6.0, 26.0, 3201)  # erfc down to 1e-296, still a normal float64
    expected = np.array([math.erfc(v) for v in tail])
    np.testing.assert_allclose(erfc(tail), expected, rtol=4e-15, atol=0.0)


@given(st.floats(-40.0, 40.0))
def test_erf_matches_math_erf_anywhere(x):
    assert erf(np.array([x]))[0] == pytest.approx(math.erf(x), rel=2e-15, abs=0.0)
    if x < 26.0:
        assert erfc(np.array([x]))[0] == pytest.approx(math.erfc(x), rel=4e-15, abs=0.0)


def test_erf_special_values_and_float32():
    assert erf(np.array([np.inf, -np.inf])).tolist() == [1.0, -1.0]
    assert erfc(np.array([np.inf, -np.inf, 40.0])).tolist() == [0.0, 2.0, 0.0]
    assert np.isnan(erf(np.array([np.nan]))[0]) and np.isnan(erfc(np.array([np.nan]))[0])
    x32 = np.linspace(-5, 5, 101, dtype=np.float32)
    assert erf(x32).dtype == np.float32 and erfc(x32).dtype == np.float32
    np.testing.assert_allclose(erf(x32), [math.erf(v) for v in x32.astype(float)], atol=3e-7)


def test_erf_of_a_0d_array_is_a_0d_array():
    assert erf(np.float64(0.5)).shape == () and erf(0.5) == pytest.approx(math.erf(0.5), rel=2e-15)
    assert erfc(np.array(30.0)).shape == () and erfc(np.array(-30.0)) == 2.0


# --- stability, NaN and dtypes --------------------------------------------------------------------

BIG = {np.float32: 1e30, np.float64: 1e300}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_are_finite_and_silent(name, dtype):
    big = BIG[dtype]
    z = np.array([[-big, -1e9, -1e3, -30.0, 0.0, 30.0, 1e3, 1e9, big]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning (overflow, invalid) fails the test
        act = get(name)
        out = act.forward(z)
        grad = act.backward(np.ones_like(z))
        deriv = None if not act.elementwise else act.derivative(z)
    assert np.isfinite(out).all() and np.isfinite(grad).all()
    assert deriv is None or np.isfinite(deriv).all()


def test_sigmoid_saturates_exactly_without_overflow():
    out = Sigmoid().forward([-1e9, 1e9, -800.0, 800.0])
    assert out.tolist() == [0.0, 1.0, 0.0, 1.0]


def test_log_softmax_at_huge_logits_is_exact():
    # softmax([1e9, -1e9, 0]) = (1, 0, 0) to double precision, so log-softmax is z - 1e9 and
    # its backward g - s sum(g) = (g0 - (g0 + g1 + g2), g1, g2) = (-5, 2, 4) for g = (1, 2, 4)
    act = LogSoftmax()
    assert act.forward([[1e9, -1e9, 0.0]]).tolist() == [[0.0, -2e9, -1e9]]
    assert act.backward([[1.0, 2.0, 4.0]]).tolist() == [[-6.0, 2.0, 4.0]]


@pytest.mark.parametrize("name", NAMES)
def test_nan_propagates_and_is_not_hidden(name):
    z = np.array([[np.nan, -2.0, 0.5, 3.0], [-1.0, 0.0, 2.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        act = get(name)
        out = act.forward(z)
        back = act.backward(np.ones_like(z))
        nan_grad = np.ones_like(z)
        nan_grad[1, 0] = np.nan
        act.forward(z)
        back_nan_grad = act.backward(nan_grad)
    if act.elementwise:
        assert np.isnan(out[0, 0]) and np.isfinite(out.flat[1:]).all()
        # f' at a NaN input is NaN (identity's f' = 1 does not depend on z at all)
        assert np.isnan(back[0, 0]) != (name == "identity") and np.isfinite(back.flat[1:]).all()
        assert np.isnan(back_nan_grad[1, 0])  # a NaN gradient is never multiplied away
    else:
        assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()
        assert np.isnan(back[0]).all() and np.isfinite(back[1]).all()
        assert np.isnan(back_nan_grad[1]).any()


@pytest.mark.parametrize(("case", "factory", "smooth_at_0"), CASES, ids=CASE_IDS)
def test_nan_grad_propagates_even_where_f_prime_is_zero(case, factory, smooth_at_0):
    # ReLU at z < 0 has f' = 0; 0 * NaN must stay NaN (np.where would silently give 0)
    act = factory()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = act.forward(np.array([-3.0, 3.0, np.nan], dtype=np.float32))
        back = act.backward(np.array([np.nan, np.nan, 1.0]))
        deriv = factory().derivative(np.array([np.nan, 1.0]))
    assert np.isnan(back[:2]).all() and np.isnan(out[2])
    assert np.isnan(back[2]) != (case == "identity")  # f' at a NaN input is NaN
    assert np.isnan(deriv[0]) != (case == "identity") and np.isfinite(deriv[1])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.float32, np.float32), (np.float64, np.float64), (np.int64, np.float64),
     (np.int32, np.float64), (bool, np.float64)],
)
def test_dtype_in_dtype_out(name, dtype, expected):
    z = np.array([[-2, 0, 1, 3]]).astype(dtype)
    act = get(name)
    assert act.forward(z).dtype == expected
    for grad_dtype in (np.float32, np.float64, np.int64):
        assert act.backward(np.ones(z.shape, dtype=grad_dtype)).dtype == expected
    if act.elementwise:
        assert act.derivative(z).dtype == expected


@pytest.mark.parametrize(("case", "factory", "smooth_at_0"), CASES, ids=CASE_IDS)
def test_float32_agrees_with_float64(case, factory, smooth_at_0, rng):
    z = rng.normal(0.0, 3.0, size=300)
    g = rng.normal(size=300)
    a32, a64 = factory(), factory()
    f32, f64 = a32.forward(z.astype(np.float32)), a64.forward(z)
    np.testing.assert_allclose(f32, f64, rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(a32.backward(g.astype(np.float32)), a64.backward(g),
                               rtol=1e-5, atol=1e-5)


def test_python_scalars_and_lists_are_accepted():
    assert Tanh().forward(0.0).shape == ()
    assert ReLU().forward([-1, 2]).tolist() == [0.0, 2.0]


class _Float32Spy(np.ndarray):
    """A float32 array that records the dtype of every ufunc result computed from it."""

    results: list

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [np.asarray(x) if isinstance(x, _Float32Spy) else x for x in inputs]
        outs = kwargs.get("out")
        if outs:
            kwargs["out"] = tuple(np.asarray(o) if isinstance(o, _Float32Spy) else o for o in outs)
        result = getattr(ufunc, method)(*plain, **kwargs)
        many = result if isinstance(result, tuple) else (result,)
        _Float32Spy.results.extend(
            (ufunc.__name__, r.dtype) for r in many if isinstance(r, np.ndarray | np.generic)
        )
        if outs:
            return outs[0] if len(outs) == 1 else outs
        if isinstance(result, np.ndarray) and result.dtype.kind == "f":
            return result.view(_Float32Spy)
        return result


@pytest.mark.parametrize(
    ("case", "factory", "smooth_at_0"),
    [*CASES, ("softmax", Softmax, True), ("log_softmax", LogSoftmax, True)],
    ids=[*CASE_IDS, "softmax", "log_softmax"],
)
def test_no_float64_temporaries_for_float32_input(case, factory, smooth_at_0, rng):
    _Float32Spy.results = []
    z = rng.normal(0.0, 8.0, size=(4, 50)).astype(np.float32).view(_Float32Spy)
    g = np.ones((4, 50), dtype=np.float32).view(_Float32Spy)
    act = factory()
    act.forward(z)
    act.backward(g)
    if act.elementwise:
        act.derivative(z)
    seen = _Float32Spy.results
    assert len(seen) >= 2 or case == "identity"  # the spy did see the computation (identity copies)
    wide = [(name, dt) for name, dt in seen if dt == np.float64]
    assert not wide, f"{case} computed float64 temporaries from float32 input: {wide}"


def test_the_float32_spy_sees_an_upcast():
    _Float32Spy.results = []
    z = np.ones(3, dtype=np.float32).view(_Float32Spy)
    z * np.float64(2.0)  # NEP 50: a NumPy float64 scalar upcasts a float32 array
    assert ("multiply", np.float64) in _Float32Spy.results


# --- backward's contract --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_backward_returns_a_new_array_and_leaves_grad_alone(name, rng):
    z = rng.normal(size=(3, 4))
    g = rng.normal(size=(3, 4))
    g_before = g.copy()
    act = get(name)
    out = act.forward(z)
    back = act.backward(g)
    assert np.array_equal(g, g_before)
    assert back is not g and not np.shares_memory(back, g)
    assert not np.shares_memory(back, out) and not np.shares_memory(back, z)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "identity"])  # identity's f' is 1
def test_backward_uses_what_forward_cached(name, rng):
    z1, z2 = rng.normal(size=5), rng.normal(size=5) + 1.0
    act, reference = get(name), get(name)
    act.forward(z1)
    reference.forward(z1)
    if act.elementwise:
        act.derivative(z2)  # derivative() caches nothing
    act2 = get(name)
    act2.forward(z2)
    g = rng.normal(size=5)
    np.testing.assert_array_equal(act.backward(g), reference.backward(g))
    assert not np.allclose(act.backward(g), act2.backward(g))


@pytest.mark.parametrize("name", NAMES)
def test_backward_before_forward_and_shape_mismatch_raise(name):
    act = get(name)
    with pytest.raises(RuntimeError, match="before forward"):
        act.backward(np.ones(3))
    act.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        act.backward(np.ones(3))


@pytest.mark.parametrize("cls", [Softmax, LogSoftmax])
def test_softmax_has_no_elementwise_derivative(cls):
    with pytest.raises(TypeError, match=r"Jacobian.*backward"):
        cls().derivative(np.zeros(3))


# --- Hypothesis properties ------------------------------------------------------------------------

_rows = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=6),
    elements=st.floats(-1e9, 1e9, allow_nan=False),
)


@given(_rows)
def test_softmax_rows_sum_to_one(z):
    s = Softmax().forward(z)
    assert (s >= 0.0).all() and (s <= 1.0).all()
    np.testing.assert_allclose(s.sum(axis=-1), 1.0, rtol=0.0, atol=8 * EPS * z.shape[-1])
    s32 = Softmax().forward(z.astype(np.float32))
    np.testing.assert_allclose(s32.sum(axis=-1), 1.0, rtol=0.0, atol=1e-6 * z.shape[-1])


@given(_rows)
def test_log_softmax_is_log_of_softmax_where_finite(z):
    ls = LogSoftmax().forward(z)
    s = Softmax().forward(z)
    normal = s > np.finfo(np.float64).tiny  # log of a subnormal has lost relative precision
    shifted = np.abs(z - z.max(axis=-1, keepdims=True))  # log-softmax's own rounding scales so
    np.testing.assert_array_less(np.abs(ls - np.log(np.where(normal, s, 1.0)))[normal],
                                 (1e-13 + 4 * EPS * shifted)[normal])
    assert (ls <= 0.0).all()


@given(_rows, st.integers(0, 2**32 - 1))
def test_softmax_gradient_is_orthogonal_to_ones(z, seed):
    # sum_i s_i (g_i - s.g) = s.g - s.g = 0: adding a constant to a row changes nothing
    g = np.random.default_rng(seed).normal(size=z.shape)
    act = Softmax()
    act.forward(z)
    back = act.backward(g)
    np.testing.assert_allclose(back.sum(axis=-1), 0.0, atol=1e-12 * (1 + np.abs(g).sum()))


@given(st.sampled_from(CASES), hnp.arrays(np.float64, st.integers(1, 20),
                                          elements=st.floats(-60, 60, allow_nan=False)))
def test_backward_of_ones_equals_derivative(case, z):
    _, factory, _ = case
    act = factory()
    act.forward(z)
    np.testing.assert_allclose(act.backward(np.ones_like(z)), factory().derivative(z),
                               rtol=1e-6, atol=1e-15)


# --- the registry ---------------------------------------------------------------------------------


def test_registry_names_are_the_documented_ones_and_match_the_classes():
    assert NAMES == ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu",
                     "softplus", "softsign", "gelu", "silu", "mish", "softmax", "log_softmax"]
    for name, cls in ACTIVATIONS.items():
        assert cls.name == name and issubclass(cls, Activation)
        assert cls.elementwise == (name not in {"softmax", "log_softmax"})
        assert getattr(nn, cls.__name__) is cls
    assert all(target in ACTIVATIONS for target in ALIASES.values())


def test_get_returns_a_fresh_instance_each_time():
    a, b = get("tanh"), get("tanh")
    assert isinstance(a, Tanh) and a is not b
    assert nn.get("relu") is not nn.get("relu")
    custom = LeakyReLU(alpha=0.3)
    assert get(custom) is custom


@pytest.mark.parametrize(
    ("alias", "cls"),
    [("identity", Identity), ("logistic", Sigmoid), ("tanh", Tanh), ("relu", ReLU),  # sklearn
     ("linear", Identity), ("swish", SiLU), ("ReLU", ReLU), ("Leaky-ReLU", LeakyReLU),
     ("LeakyReLU", LeakyReLU), (" GELU ", GELU), ("LogSoftmax", LogSoftmax)],
)
def test_aliases_and_spellings(alias, cls):
    assert type(get(alias)) is cls


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="Unknown activation 'relux'") as info:
        get("relux")
    message = str(info.value)
    assert all(name in message for name in ACTIVATIONS)
    assert "Did you mean 'relu'" in message


def test_get_rejects_bad_arguments():
    with pytest.raises(ValueError, match="takes no parameters"):
        get("tanh", alpha=0.1)
    with pytest.raises(ValueError, match="accepts only alpha"):
        get("elu", beta=2)
    with pytest.raises(ValueError, match="instance alone"):
        get(Tanh(), alpha=1)
    with pytest.raises(ValueError, match="got int 3"):
        get(3)


@pytest.mark.parametrize(
    ("make", "message"),
    [(lambda: LeakyReLU(alpha="0.1"), "'alpha' parameter of LeakyReLU"),
     (lambda: LeakyReLU(alpha=float("nan")), "got nan instead"),
     (lambda: ELU(alpha=-1.0), r"range \[0, inf\); got -1.0"),
     (lambda: GELU(approximate="fast"), "got 'fast' instead"),
     (lambda: Softmax(axis=1.5), "'axis' parameter of Softmax")],
)
def test_parameter_validation_names_the_value(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    ("act", "text"),
    [(LeakyReLU(), "LeakyReLU(alpha=0.01)"), (Tanh(), "Tanh()"), (ELU(0.5), "ELU(alpha=0.5)"),
     (GELU("tanh"), "GELU(approximate='tanh')"), (Softmax(axis=0), "Softmax(axis=0)"),
     (SELU(), "SELU()")],
)
def test_repr(act, text):
    assert repr(act) == text


@pytest.mark.parametrize("act", [*(cls() for cls in ACTIVATIONS.values()), LeakyReLU(0.2),
                                 ELU(0.3), GELU("tanh"), Softmax(axis=0)], ids=repr)
def test_config_round_trip_through_json(act):
    config = json.loads(json.dumps(act.get_config()))
    again = from_config(act.name, config)
    assert type(again) is type(act) and repr(again) == repr(act) and again is not act
    assert act.parameters() == [] and act.gradients() == [] and act.training is True


def test_call_is_forward(rng):
    z = rng.normal(size=4)
    np.testing.assert_array_equal(Mish()(z), Mish().forward(z))


def test_from_config_builds_activations_registered_from_outside(monkeypatch):
    seen = {}

    def build(formula, name=None):
        seen.update(formula=formula, name=name)
        return Tanh()

    monkeypatch.setitem(CUSTOM_BUILDERS, "formula", build)
    assert isinstance(from_config("t", {"formula": "tanh(z)", "name": "t"}), Tanh)
    assert seen == {"formula": "tanh(z)", "name": "t"}
    assert type(from_config("elu", {"alpha": 0.5})) is ELU  # a built-in's own config
    seen.clear()
    from_config("tanh", {"formula": "tanh(z)", "name": "tanh"})  # named like a built-in
    assert seen == {"formula": "tanh(z)", "name": "tanh"}


def test_from_config_loads_the_module_of_a_missing_optional_builder(monkeypatch):
    from chainrule import _registry

    asked = []

    def provide(key):
        asked.append(key)
        if key == "formula":
            CUSTOM_BUILDERS["formula"] = lambda formula, name=None: Tanh()

    saved = dict(CUSTOM_BUILDERS)  # restored whole: later tests load real formula models
    try:
        CUSTOM_BUILDERS.pop("formula", None)
        monkeypatch.setattr(_registry, "load_optional_builder", provide)
        assert isinstance(from_config("t", {"formula": "tanh(z)", "name": "t"}), Tanh)
        assert asked == ["formula"]
        del CUSTOM_BUILDERS["formula"]
        with pytest.raises(ValueError, match="Unknown activation 'mine'"):
            from_config("mine", {"slope": 2.0})  # nothing provides "slope": get() names it
    finally:
        CUSTOM_BUILDERS.clear()
        CUSTOM_BUILDERS.update(saved)


def test_only_the_fixed_list_of_builder_modules_is_ever_imported(monkeypatch):
    import importlib

    from chainrule import _registry

    imported = []
    monkeypatch.setattr(importlib, "import_module", imported.append)
    _registry.load_optional_builder("chainrule.derivation.custom")  # a key, not a module path
    _registry.load_optional_builder("os")
    assert imported == []
    _registry.load_optional_builder("formula")
    assert imported == ["chainrule.derivation.custom"]


def test_nn_never_imports_the_package_root():
    import ast
    import pathlib

    import chainrule

    root = pathlib.Path(chainrule.__file__).parent
    modules = {p.stem for p in root.glob("*.py")} | {p.name for p in root.iterdir() if p.is_dir()}
    for path in (root / "nn").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                assert all(a.name != "chainrule" for a in node.names), path.name
            if isinstance(node, ast.ImportFrom) and node.module == "chainrule":
                for a in node.names:
                    assert a.name in modules, f"{path.name} takes {a.name} from the package root"


def test_the_core_never_imports_the_derivation_engine():
    import ast
    import pathlib

    import chainrule

    root = pathlib.Path(chainrule.__file__).parent
    for path in (*(root / "nn").glob("*.py"), root / "losses.py", root / "optim.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [
                    a.name for a in node.names]
                assert not any(n.startswith(("chainrule.derivation", "sympy")) for n in names), (
                    f"{path.name} imports {names}")


def test_module_examples_run():
    import doctest

    import chainrule._erf
    import chainrule.nn.activations

    for module in (chainrule.nn.activations, chainrule._erf):
        assert doctest.testmod(module).failed == 0


# --- each class is the one home of its names and texts -------------------------------------------

WITH_OUTPUT_FORM = [n for n, c in ACTIVATIONS.items() if c.output_form_text is not None]


def test_registries_are_built_from_each_class_names():
    for name, cls in ACTIVATIONS.items():
        assert cls.name == name
        assert cls.title and cls.formula and cls.derivative_text
        for alias in cls.aliases:
            assert ALIASES[alias] == name
            assert nn.canonical_name(alias) == name
    assert set(ALIASES) == {a for cls in ACTIVATIONS.values() for a in cls.aliases}
    assert ALIASES["logistic"] == "sigmoid" and ALIASES["swish"] == "silu"


def test_output_form_texts_of_the_textbooks():
    assert Sigmoid.output_form_text == "yhat(1 - yhat)"
    assert Tanh.output_form_text == "1 - yhat²"
    assert Sigmoid.derivative_text == "σ'(z) = σ(z)(1 - σ(z))"
    assert GELU.output_form_text is None and Softmax.output_form_text is None


@pytest.mark.parametrize("name", WITH_OUTPUT_FORM)
def test_output_form_at_the_output_is_the_derivative_by_finite_differences(name):
    # central differences of forward in float64, never the class's own derivative code
    z = np.array([-3.0, -1.2, -0.4, 0.3, 0.9, 2.5, 4.0])
    act = nn.get(name)
    h = 1e-6 * np.maximum(1.0, np.abs(z))
    numeric = (nn.get(name)(z + h) - nn.get(name)(z - h)) / (2 * h)
    np.testing.assert_allclose(act.output_form(act(z)), numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", WITH_OUTPUT_FORM)
def test_output_form_at_extreme_inputs_is_finite_and_propagates_nan(name):
    act = nn.get(name)
    z = np.array([-1e9, -1e3, 0.0, 1e3, 1e9, np.nan])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = act.output_form(act(z))
    assert np.isfinite(d[:-1]).all()
    # NaN in gives what derivative(z) gives: NaN, or 1 for the identity, whose slope is constant
    np.testing.assert_allclose(d, act.derivative(z), rtol=1e-6, atol=1e-12, equal_nan=True)
    assert np.isnan(d[-1]) == (name != "identity")


def test_output_form_is_refused_where_the_derivative_needs_the_input():
    with pytest.raises(TypeError, match="derivative\\(z\\)"):
        GELU().output_form(np.zeros(2))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("value", [0.5, -2.0, 0.0, 1e3, -1e9])
def test_a_scalar_is_the_one_element_vector_it_stands_for(name, value):
    # Python floats and 0-d arrays go through the in-place primitives as one-element vectors
    # and come back as 0-d arrays, equal to the vector's one entry.
    scalar, vector = get(name), get(name)
    as_vector = np.array([value])
    np.testing.assert_array_equal(scalar.forward(value), vector.forward(as_vector)[0])
    assert np.ndim(scalar.forward(np.array(value))) == 0
    np.testing.assert_array_equal(scalar.backward(1.0), vector.backward(np.ones(1))[0])
    if scalar.elementwise:
        np.testing.assert_array_equal(scalar.derivative(value), vector.derivative(as_vector)[0])
