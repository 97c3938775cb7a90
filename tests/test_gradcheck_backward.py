"""check_backward on NumPy backward passes: a corpus of planted mistakes, each named by its kind,
correct passes that pass (float64 and float32), where a difference lies, extreme inputs and bad
usage. The oracle is float64 central differences of the forward, which shares no code with the
backward passes under test."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chainrule.gradient_check import check_backward
from chainrule.gradient_check.backward import LAYERS, get_layer
from chainrule.gradient_check.backward.relations import locate
from chainrule.gradient_check.catalogue import MISTAKES


def matmul(x, W):
    return x @ W


def affine_forward(x, w, b):
    return x @ w + b, (x, w, b)


def _affine(db):
    def affine_backward(dout, cache):
        x, w, _ = cache
        return dout @ w.T, x.T @ dout, db(dout)
    return affine_backward


def dense(x, W, b):
    return x @ W + b


def relu(z):
    return np.maximum(z, 0.0)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def square(x):
    return x * x


def x_sin_x(x):
    return x * np.sin(x)


def product(x, y):
    return x * y


def scaled_by_batch(x):
    return x / len(x)


def _relu_in_place(dout, cache):
    x = cache
    x *= x > 0  # changes the saved input
    return dout * (x > 0)


_NOISE = np.random.default_rng(0)  # seeded: each call of _noisy still draws another factor


def _noisy(dout, z):
    return dout * (1 - np.tanh(z) ** 2) * _NOISE.uniform(0.5, 1.5)


def _relu_forward(z):
    return np.maximum(z, 0.0), z


def _sigmoid_twice(dout, z):
    s = sigmoid(z)
    return dout * (s * (1 - s)) ** 2


def _tanh_at_output(dout, z):
    return dout * (1 - np.tanh(np.tanh(z)) ** 2)


def _inf_backward(dout, x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return dout * 2 * x / (x - x)


# (id, forward, backward, keywords, kind): every kind is a key of MISTAKES.
MISTAKE_CORPUS = [
    ("dW transposed, square", matmul, lambda d, x, W: (d @ W.T, d.T @ x),
     dict(shapes=[(4, 3), (3, 3)]), "transposed"),
    ("dW transposed, its shape", matmul, lambda d, x, W: (d @ W.T, d.T @ x),
     dict(shapes=[(4, 3), (3, 5)]), "transposed"),
    ("db not summed", affine_forward, _affine(lambda d: d),
     dict(shapes=[(4, 3), (3, 5), (5,)]), "bias_not_summed"),
    ("db divided by m again", affine_forward, _affine(lambda d: d.sum(axis=0) / len(d)),
     dict(shapes=[(4, 3), (3, 5), (5,)]), "mean_twice"),
    ("db over the wrong axis", affine_forward, _affine(lambda d: d.sum(axis=1)),
     dict(shapes=[(4, 3), (3, 5), (5,)], layer="dense"), "bias_wrong_axis"),
    ("tanh with a flipped sign", np.tanh, lambda d, z: -d * (1 - np.tanh(z) ** 2),
     dict(shapes=[(3, 4)]), "sign_flipped"),
    ("x * x with one use", square, lambda d, x: d * x, dict(shapes=[(3, 4)]), "path_missing"),
    ("x sin x without the sin path", x_sin_x, lambda d, x: d * x * np.cos(x),
     dict(shapes=[(5,)]), "path_missing"),
    ("x ** 2 with a factor 4", lambda x: x ** 2, lambda d, x: 4 * d * x,
     dict(shapes=[(6,)]), "scaled"),
    ("x * y gradients swapped", product, lambda d, x, y: (d * x, d * y),
     dict(shapes=[(3, 4), (3, 4)]), "gradients_swapped"),
    ("dx and dW swapped", matmul, lambda d, x, W: (x.T @ d, d @ W.T),
     dict(shapes=[(4, 3), (3, 5)]), "gradients_swapped"),
    ("None for x", product, lambda d, x, y: (None, d * x),
     dict(shapes=[(3, 4), (3, 4)]), "gradient_none"),
    ("a flattened gradient of a wrong size", matmul, lambda d, x, W: (d @ W.T, (x.T @ d)[:, :2]),
     dict(shapes=[(4, 3), (3, 5)]), "shape"),
    ("float64 gradient of a float32 input", np.tanh,
     lambda d, z: (d * (1 - np.tanh(z) ** 2)).astype(np.float64),
     dict(shapes=[(3, 4)], dtype="float32"), "wrong_dtype"),
    ("relu backward changes its cache", _relu_forward, _relu_in_place,
     dict(shapes=[(3, 4)], style="cache"), "inputs_modified"),
    ("a random factor in the backward", np.tanh, _noisy, dict(shapes=[(3, 4)]),
     "nondeterministic"),
    ("relu without its derivative", relu, lambda d, z: d, dict(shapes=[(3, 4)], layer="relu"),
     "derivative_missing"),
    ("sigmoid derivative twice", sigmoid, _sigmoid_twice, dict(shapes=[(3, 4)], layer="sigmoid"),
     "derivative_twice"),
    ("tanh derivative at the output", np.tanh, _tanh_at_output,
     dict(shapes=[(3, 4)], layer="tanh"), "derivative_wrong_array"),
    ("softmax taken as diagonal", softmax,
     lambda d, z: d * softmax(z) * (1 - softmax(z)), dict(shapes=[(3, 4)], layer="softmax"),
     "softmax_diagonal"),
    ("no gradient at all", np.tanh, lambda d, z: np.zeros_like(z), dict(shapes=[(3, 4)]), "zero"),
    ("a division by zero", square, _inf_backward, dict(shapes=[(3,)]), "non_finite"),
    ("the 1/m forgotten", scaled_by_batch, lambda d, x: d, dict(shapes=[(8, 3)]),
     "mean_forgotten"),
    ("dx with W for Wᵀ", dense, lambda d, x, W, b: (d @ W, x.T @ d, d.sum(axis=0)),
     dict(shapes=[(4, 3), (3, 3), (3,)], layer="dense"), "transposed"),
]


# Each mistake in float64 and in float32 (a gradient promoted to float64 needs float32 inputs).
_MISTAKE_PARAMS = [pytest.param(case, dtype, id=f"{case[0]}-{dtype}")
                   for case in MISTAKE_CORPUS for dtype in ("float64", "float32")
                   if case[3].get("dtype", dtype) == dtype]


@pytest.mark.parametrize("case, dtype", _MISTAKE_PARAMS)
def test_a_planted_mistake_is_named_by_its_kind(case, dtype):
    _, forward, backward, keywords, kind = case
    assert kind in MISTAKES
    keywords = {**keywords, "dtype": dtype}
    report = check_backward(forward, backward, **keywords)
    assert not report.correct, str(report)
    assert report.kind == kind, str(report)
    assert report.mistake is MISTAKES[kind]


CORRECT_CORPUS = [
    ("matmul", matmul, lambda d, x, W: (d @ W.T, x.T @ d), dict(shapes=[(4, 3), (3, 5)])),
    ("affine, course style", affine_forward, _affine(lambda d: d.sum(axis=0)),
     dict(shapes=[(4, 3), (3, 5), (5,)])),
    ("dense layer", dense, lambda d, x, W, b: (d @ W.T, x.T @ d, d.sum(axis=0)),
     dict(layer="dense")),
    ("relu", relu, lambda d, z: d * (z > 0), dict(shapes=[(3, 4)])),
    ("tanh", np.tanh, lambda d, z: d * (1 - np.tanh(z) ** 2), dict(shapes=[(3, 4)])),
    ("softmax", softmax,
     lambda d, z: softmax(z) * (d - (d * softmax(z)).sum(axis=-1, keepdims=True)),
     dict(shapes=[(3, 4)], layer="softmax")),
    ("x * x", square, lambda d, x: 2 * d * x, dict(shapes=[(3, 4)])),
    ("x * y", product, lambda d, x, y: (d * y, d * x), dict(shapes=[(3, 4), (3, 4)])),
    ("a constant input", lambda x, c: x * 2.0, lambda d, x, c: (2 * d, None),
     dict(shapes=[(3,), (3,)])),
    ("a float32-only forward", lambda x: np.tanh(x.astype(np.float32)),
     lambda d, x: (d * (1 - np.tanh(x.astype(np.float32)) ** 2)).astype(x.dtype),
     dict(shapes=[(3, 4)])),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CORRECT_CORPUS, ids=[c[0] for c in CORRECT_CORPUS])
def test_a_correct_backward_passes(case, dtype):
    _, forward, backward, keywords = case
    report = check_backward(forward, backward, dtype=dtype, **keywords)
    assert report.correct, str(report)
    assert report.kind is None and all(c.correct for c in report.inputs)


def test_float32_inputs_of_a_float64_forward_are_checked_through_float64_copies():
    report = check_backward(np.tanh, lambda d, z: d * (1 - np.tanh(z) ** 2),
                            shapes=[(3, 4)], dtype="float32")
    assert report.correct and report.computed_in == "float64"
    assert "float64 copies" in report.notes[0]


def test_a_float32_only_forward_has_its_rounding_allowed_for_but_not_a_mistake():
    def forward(x):
        return np.tanh(x.astype(np.float32))

    def wrong(d, x):
        return (d * (1 - np.tanh(x.astype(np.float32)) ** 2) * 1.002).astype(x.dtype)

    right = check_backward(forward, lambda d, x: (d * (1 - np.tanh(x.astype(np.float32)) ** 2))
                           .astype(x.dtype), shapes=[(3, 4)])
    assert right.correct and right.computed_in == "float32"
    assert "float32 rounding" in right.inputs[0].sentence
    report = check_backward(forward, wrong, shapes=[(3, 4)])
    assert not report.correct and "times the float32 rounding" in report.inputs[0].sentence
    way_off = check_backward(forward, lambda d, x: -d.astype(x.dtype), shapes=[(3, 4)])
    assert "far beyond float32 rounding" in way_off.inputs[0].sentence


def test_the_report_names_the_input_and_holds_one_result_per_input():
    report = check_backward(matmul, lambda d, x, W: (d @ W.T, d.T @ x), shapes=[(4, 3), (3, 3)])
    assert report.where == "input 1 (W)" and report["W"].kind == "transposed"
    assert report[0].correct and report[0].name == "x"
    data = json.loads(report.to_json())
    assert data["kind"] == "transposed" and len(data["inputs"]) == 2
    assert "claimed" not in data["inputs"][1]
    html = report._repr_html_()
    assert "FAILED" in html and "<table>" in html


def test_the_json_report_is_strict_json_even_for_infinite_errors():
    report = check_backward(square, _inf_backward, shapes=[(3,)])
    data = json.loads(report.to_json(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert data["kind"] == "non_finite" and data["inputs"][0]["max_abs_error"] == "inf"


def test_the_html_report_escapes_the_names():
    def forward(x):
        return x * 3.0

    forward.__name__ = "<b>"

    def backward(d, x):
        return d * 3.0

    backward.__name__ = "<script>"
    html = check_backward(forward, backward, shapes=[(2,)])._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_a_large_dense_layer_is_checked_along_directions_and_still_named():
    shapes = [(8, 256), (256, 256), (256,)]
    right = check_backward(dense, lambda d, x, W, b: (d @ W.T, x.T @ d, d.sum(axis=0)),
                           shapes=shapes)
    assert right.correct and "random directions" in right["W"].method
    wrong = check_backward(dense, lambda d, x, W, b: (d @ W.T, d.T @ x, d.sum(axis=0)),
                           shapes=shapes)
    assert wrong.kind == "transposed" and wrong.where == "input 1 (W)"


@pytest.mark.parametrize("value", [1e3, -1e3, 1e9, -1e9, 0.0])
def test_extreme_inputs(value):
    x = np.full((2, 3), value)
    W = np.full((3, 2), 0.5)
    report = check_backward(matmul, lambda d, x, W: (d @ W.T, x.T @ d), inputs=[x, W])
    assert report.correct, str(report)
    tanh = check_backward(np.tanh, lambda d, z: d * (1 - np.tanh(z) ** 2), inputs=[x])
    assert tanh.correct, str(tanh)
    flipped = check_backward(matmul, lambda d, x, W: (-(d @ W.T), x.T @ d), inputs=[x, W])
    assert flipped.kind == "sign_flipped"


@pytest.mark.parametrize("shape", [(), (1,), (0, 3)])
def test_scalar_one_element_and_empty_inputs(shape):
    report = check_backward(np.tanh, lambda d, z: d * (1 - np.tanh(z) ** 2), shapes=[shape])
    assert report.correct, str(report)
    flipped = check_backward(np.tanh, lambda d, z: -d * (1 - np.tanh(z) ** 2), shapes=[shape])
    assert flipped.correct is (shape == (0, 3))


@given(factor=st.sampled_from([-1.0, 2.0, 3.0, 0.5]), rows=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_a_planted_constant_factor_is_named_at_any_point(factor, rows, seed):
    A = np.random.default_rng(seed).standard_normal((3, 2))
    report = check_backward(lambda x: x @ A, lambda d, x: factor * (d @ A.T),
                            shapes=[(rows, 3)], seed=seed)
    expected = {-1.0: "sign_flipped"}.get(factor, "scaled")
    if rows > 1 and factor == rows:
        expected = "mean_forgotten"
    if rows > 1 and factor == 1 / rows:
        expected = "mean_twice"
    assert report.kind == expected, str(report)
    assert report.inputs[0].location == "every element"


def test_a_forward_that_changes_its_input_is_refused():
    def forward(x):
        x *= 2.0
        return x

    with pytest.raises(ValueError, match="changed input 0 in place"):
        check_backward(forward, lambda d, x: 2 * d, shapes=[(3,)])


def test_a_random_forward_is_refused():
    rng = np.random.default_rng(0)  # one stream: each call draws a new mask of 64 entries

    def dropout(x):
        return x * (rng.random(x.shape) > 0.5)

    with pytest.raises(ValueError, match="different outputs for the same inputs"):
        check_backward(dropout, lambda d, x: d, shapes=[(64,)])


def test_the_new_kinds_are_in_the_one_catalogue():
    for kind in ("gradients_swapped", "path_missing", "wrong_dtype", "gradient_none",
                 "inputs_modified", "nondeterministic"):
        assert MISTAKES[kind].meaning and MISTAKES[kind].fix


@pytest.mark.parametrize("mask, where", [
    (np.ones((4, 5), bool), "every element"),
    (np.eye(4, dtype=bool), "the diagonal"),
    (np.zeros((4, 5), bool) | (np.arange(5) == 2), "column 2"),
    (np.zeros((4, 5), bool) | (np.arange(4) == 1)[:, None], "row 1"),
    (np.pad(np.zeros((4, 4), bool), 1, constant_values=True), "the border (1 element wide"),
    (np.arange(12) % 3 == 1, "every 3rd element, from 1 (a stride of 3)"),
    (np.arange(12) == 5, "1 of 12 elements: 5"),
])
def test_where_a_difference_lies_is_said_in_words(mask, where):
    assert locate(mask, np.ones_like(mask)).startswith(where)


def test_a_stride_mistake_is_located():
    def backward(d, x):
        g = 2 * d * x
        g[:, ::2] = 0.0  # only every other column gets its gradient
        return g

    report = check_backward(square, backward, shapes=[(3, 6)])
    assert "every 2nd index along axis 1" in report.inputs[0].location


def test_a_padding_mistake_is_located_at_the_border():
    def backward(d, x):
        g = 2 * d * x
        g[..., 0, :] = g[..., -1, :] = g[..., :, 0] = g[..., :, -1] = 0.0
        return g

    report = check_backward(square, backward, shapes=[(2, 6, 6)])
    assert report.inputs[0].location.startswith("the border (1 element wide")


def test_the_examples_in_the_docstrings_run():
    import doctest

    from chainrule.gradient_check import backward
    from chainrule.gradient_check.backward import check

    for module in (backward, check):
        assert doctest.testmod(module).failed == 0


def test_layers_form_a_registry_of_candidate_mistakes():
    assert {"dense", "softmax"} <= set(LAYERS)
    assert get_layer("TanH").name == "tanh" and get_layer("tanh").candidates
    for spec in (get_layer("dense"), get_layer("softmax"), get_layer("relu")):
        assert all(c.kind in MISTAKES for c in spec.candidates)


@pytest.mark.parametrize("call, message", [
    (lambda: check_backward(matmul, lambda d, x, W: (d, d)), "shapes=[(4, 3), (3, 5)]"),
    (lambda: check_backward(matmul, lambda d, x, W: (d, d), shapes=[(2, 2)], inputs=[1.0]),
     "not both"),
    (lambda: check_backward(np.tanh, lambda d, z: d, shapes=[(2,)], layer="conv"),
     "layer= must be one of"),
    (lambda: check_backward(np.tanh, lambda d, z: d, shapes=[("a",)]), "shapes[0]"),
    (lambda: check_backward(np.tanh, lambda d, z: d, shapes=[(2,)], dtype="int8"), "dtype="),
    (lambda: check_backward(np.tanh, lambda d, z: d, inputs=[np.array([np.nan])]), "NaN"),
    (lambda: check_backward(np.tanh, lambda d, z: d, shapes=[(2,)], rtol=-1), "rtol"),
    (lambda: check_backward(matmul, lambda d, x, W: d, shapes=[(2, 2), (2, 2)]),
     "one gradient per input"),
    (lambda: check_backward(matmul, lambda d, x, W: (d, d, d), shapes=[(2, 2), (2, 2)]),
     "3 gradients for 2 inputs"),
    (lambda: check_backward(np.tanh, shapes=[(2,)]), "no backward"),
    (lambda: check_backward(np.tanh, 3, shapes=[(2,)]), "can be called"),
    (lambda: check_backward(np.log, lambda d, z: d / z, inputs=[np.array([-1.0])]),
     "finite"),
])
def test_bad_usage_names_the_value_and_the_fix(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
