"""check_backward on JAX: ``jax.custom_vjp`` functions and JAX functions with a hand-written
vjp, with planted mistakes named by their kind and correct ones passed, in float64 and
float32. JAX is a development dependency, so these run in every test run."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chainrule.gradient_check import check_backward
from chainrule.gradient_check.catalogue import MISTAKES


def _custom(name, fun, fwd, bwd):
    fun.__name__ = name
    f = jax.custom_vjp(fun)
    f.defvjp(fwd, bwd)
    return f


def _matmul(bwd):
    return _custom("matmul", lambda x, w: x @ w, lambda x, w: (x @ w, (x, w)), bwd)


def _affine(bwd):
    return _custom("affine", lambda x, w, b: x @ w + b,
                   lambda x, w, b: (x @ w + b, (x, w)), bwd)


def _square(bwd):
    return _custom("square", lambda x: x * x, lambda x: (x * x, x), bwd)


def _product(bwd):
    return _custom("product", lambda x, y: x * y, lambda x, y: (x * y, (x, y)), bwd)


MISTAKES_CORPUS = [
    ("transposed product", _matmul(lambda r, g: (g @ r[1].T, g.T @ r[0])), dict(
        shapes=[(4, 3), (3, 5)]), "transposed"),
    ("flipped sign", _square(lambda x, g: (-2 * g * x,)), dict(shapes=[(3, 4)]), "sign_flipped"),
    ("a factor 2 too many", _square(lambda x, g: (4 * g * x,)), dict(shapes=[(3, 4)]), "scaled"),
    ("one use of x forgotten", _square(lambda x, g: (g * x,)), dict(shapes=[(3, 4)]),
     "path_missing"),
    ("gradients swapped", _product(lambda r, g: (g * r[0], g * r[1])),
     dict(shapes=[(3, 4), (3, 4)]), "gradients_swapped"),
    ("bias not summed", _affine(lambda r, g: (g @ r[1].T, r[0].T @ g, g)),
     dict(shapes=[(4, 3), (3, 5), (5,)]), "bias_not_summed"),
    ("None for a needed input", _product(lambda r, g: (g * r[1], None)),
     dict(shapes=[(3, 4), (3, 4)]), "gradient_none"),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", MISTAKES_CORPUS, ids=[c[0] for c in MISTAKES_CORPUS])
def test_a_planted_mistake_in_a_custom_vjp_is_named(case, dtype):
    _, function, keywords, kind = case
    report = check_backward(function, dtype=dtype, **keywords)
    assert kind in MISTAKES
    assert not report.correct and report.kind == kind, str(report)
    assert report.framework == "JAX"


def test_a_jax_function_with_a_handwritten_vjp_is_checked_like_a_numpy_pair():
    def mean_rows(x):
        return jnp.tanh(x) / x.shape[0]

    right = check_backward(mean_rows, lambda d, x: d * (1 - jnp.tanh(x) ** 2) / x.shape[0],
                           shapes=[(4, 3)])
    assert right.correct and right.framework == "JAX", str(right)
    twice = check_backward(mean_rows, lambda d, x: d * (1 - jnp.tanh(x) ** 2) / x.shape[0] ** 2,
                           shapes=[(4, 3)])
    assert twice.kind == "mean_twice", str(twice)


CORRECT = [
    ("matmul", _matmul(lambda r, g: (g @ r[1].T, r[0].T @ g)), [(4, 3), (3, 5)]),
    ("affine", _affine(lambda r, g: (g @ r[1].T, r[0].T @ g, g.sum(axis=0))),
     [(4, 3), (3, 5), (5,)]),
    ("square", _square(lambda x, g: (2 * g * x,)), [(3, 4)]),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CORRECT, ids=[c[0] for c in CORRECT])
def test_a_correct_custom_vjp_passes(case, dtype):
    _, function, shapes = case
    report = check_backward(function, shapes=shapes, dtype=dtype)
    assert report.correct, str(report)


def test_a_custom_vjp_without_a_backward_is_refused():
    f = jax.custom_vjp(lambda x: x * 2)
    with pytest.raises(ValueError, match="defvjp"):
        check_backward(f, shapes=[(3,)])


@pytest.mark.parametrize("value", [1e3, -1e3, 1e9, -1e9, 0.0])
def test_extreme_inputs(value):
    f = _matmul(lambda r, g: (g @ r[1].T, r[0].T @ g))
    report = check_backward(f, inputs=[np.full((2, 3), value), np.full((3, 2), 0.5)])
    assert report.correct, str(report)
