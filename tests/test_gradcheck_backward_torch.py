"""check_backward on PyTorch: custom ``torch.autograd.Function``\\ s and modules whose backward is
custom, with planted mistakes named by their kind and correct ones passed, in float64 and
float32, including float32 functions that ``torch.autograd.gradcheck`` reports as wrong."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch)")

from chainrule.gradient_check import check_backward  # noqa: E402
from chainrule.gradient_check.catalogue import MISTAKES  # noqa: E402


def _function(name, forward, backward, setup_context=None):
    """A torch.autograd.Function subclass from a forward(ctx, ...) and a backward(ctx, g)."""
    body = {"forward": staticmethod(forward), "backward": staticmethod(backward)}
    if setup_context is not None:
        body["setup_context"] = staticmethod(setup_context)
    return type(name, (torch.autograd.Function,), body)


def _save(ctx, *tensors):
    ctx.save_for_backward(*tensors)


def _matmul_forward(ctx, x, w):
    _save(ctx, x, w)
    return x @ w


def _affine_forward(ctx, x, w, b):
    _save(ctx, x, w, b)
    return x @ w + b


def _square_forward(ctx, x):
    _save(ctx, x)
    return x * x


def _tanh_forward(ctx, x):
    _save(ctx, x)
    return torch.tanh(x)


def _product_forward(ctx, x, y):
    _save(ctx, x, y)
    return x * y


def _float32_matmul_forward(ctx, x, w):
    _save(ctx, x, w)
    return x.float() @ w.float()


def _sigmoid_forward(ctx, z):
    _save(ctx, z)
    return torch.sigmoid(z)


def _tanh_in_place(ctx, g):
    (x,) = ctx.saved_tensors
    x.mul_(2.0)
    return g * (1 - torch.tanh(x / 2.0) ** 2)


def _sigmoid_twice(ctx, g):
    (z,) = ctx.saved_tensors
    s = torch.sigmoid(z)
    return g * (s * (1 - s)) ** 2


Transposed = _function("Transposed", _matmul_forward,
                       lambda ctx, g: (g @ ctx.saved_tensors[1].T, g.T @ ctx.saved_tensors[0]))
MatMul = _function("MatMul", _matmul_forward,
                   lambda ctx, g: (g @ ctx.saved_tensors[1].T, ctx.saved_tensors[0].T @ g))

MISTAKES_CORPUS = [
    ("transposed product", Transposed, [(4, 3), (3, 5)], "transposed", None),
    ("transposed square product", Transposed, [(4, 3), (3, 3)], "transposed", None),
    ("x * x with one use", _function("Square", _square_forward,
                                     lambda ctx, g: g * ctx.saved_tensors[0]),
     [(3, 4)], "path_missing", None),
    ("tanh with a flipped sign", _function(
        "Tanh", _tanh_forward, lambda ctx, g: -g * (1 - torch.tanh(ctx.saved_tensors[0]) ** 2)),
     [(3, 4)], "sign_flipped", None),
    ("None for a needed input", _function(
        "Product", _product_forward, lambda ctx, g: (g * ctx.saved_tensors[1], None)),
     [(3, 4), (3, 4)], "gradient_none", None),
    ("bias not summed", _function(
        "Affine", _affine_forward,
        lambda ctx, g: (g @ ctx.saved_tensors[1].T, ctx.saved_tensors[0].T @ g, g)),
     [(4, 3), (3, 5), (5,)], "bias_not_summed", None),
    ("backward changes a saved tensor", _function("Tanh", _tanh_forward, _tanh_in_place),
     [(3, 4)], "inputs_modified", None),
    ("gradients swapped", _function(
        "Product", _product_forward,
        lambda ctx, g: (g * ctx.saved_tensors[0], g * ctx.saved_tensors[1])),
     [(3, 4), (3, 4)], "gradients_swapped", None),
    ("float32-only forward, transposed", _function(
        "MatMul32", _float32_matmul_forward,
        lambda ctx, g: ((g @ ctx.saved_tensors[1].float().T).to(ctx.saved_tensors[0].dtype),
                        (g.T @ ctx.saved_tensors[0].float()).to(ctx.saved_tensors[1].dtype))),
     [(4, 3), (3, 3)], "transposed", None),
    ("sigmoid derivative twice", _function("Sigmoid", _sigmoid_forward, _sigmoid_twice),
     [(3, 4)], "derivative_twice", "sigmoid"),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", MISTAKES_CORPUS, ids=[c[0] for c in MISTAKES_CORPUS])
def test_a_planted_mistake_in_a_function_is_named(case, dtype):
    _, function, shapes, kind, layer = case
    report = check_backward(function, shapes=shapes, dtype=dtype, layer=layer)
    assert kind in MISTAKES
    assert not report.correct and report.kind == kind, str(report)
    assert report.framework == "PyTorch"


def test_a_gradient_in_another_dtype_is_named():
    Widened = _function("Widened", _tanh_forward,
                        lambda ctx, g: (g * (1 - torch.tanh(ctx.saved_tensors[0]) ** 2)).double())
    report = check_backward(Widened, shapes=[(3, 4)], dtype="float32")
    assert report.kind == "wrong_dtype", str(report)


class _SquareModule(torch.nn.Module):
    """A module whose backward is a custom Function's (that forgets one use of x)."""

    def forward(self, x):
        return _function("Square", _square_forward,
                         lambda ctx, g: g * ctx.saved_tensors[0]).apply(x)


def test_a_module_whose_backward_is_custom_is_checked():
    report = check_backward(_SquareModule(), shapes=[(3, 4)])
    assert report.kind == "path_missing", str(report)


CORRECT = [
    ("matmul", MatMul, [(4, 3), (3, 5)]),
    ("matmul through apply", MatMul.apply, [(4, 3), (3, 5)]),
    ("affine", _function(
        "Affine", _affine_forward,
        lambda ctx, g: (g @ ctx.saved_tensors[1].T, ctx.saved_tensors[0].T @ g, g.sum(0))),
     [(4, 3), (3, 5), (5,)]),
    ("float32-only tanh", _function(
        "Tanh32", lambda ctx, x: (_save(ctx, x), torch.tanh(x.float()))[1],
        lambda ctx, g: (g * (1 - torch.tanh(ctx.saved_tensors[0].float()) ** 2)).to(
            ctx.saved_tensors[0].dtype)), [(3, 4)]),
    ("setup_context style", _function(
        "Square2", lambda x: x * x, lambda ctx, g: 2 * g * ctx.saved_tensors[0],
        setup_context=lambda ctx, inputs, output: ctx.save_for_backward(*inputs)), [(5,)]),
    ("a module", torch.nn.Tanh(), [(3, 4)]),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CORRECT, ids=[c[0] for c in CORRECT])
def test_a_correct_function_passes(case, dtype):
    _, function, shapes = case
    report = check_backward(function, shapes=shapes, dtype=dtype)
    assert report.correct, str(report)


@pytest.mark.filterwarnings("ignore:Input #:UserWarning")
def test_a_float32_function_that_torch_gradcheck_fails_passes():
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), requires_grad=True)
    w = torch.randn(3, 5, generator=torch.Generator().manual_seed(1), requires_grad=True)
    with pytest.raises(RuntimeError, match="Jacobian mismatch"):
        torch.autograd.gradcheck(MatMul.apply, (x, w))
    report = check_backward(MatMul, inputs=[x, w])
    assert report.correct, str(report)
    assert report.computed_in == "float64" and "float64 copies" in report.notes[0]


@pytest.mark.parametrize("value", [1e3, -1e3, 1e9, -1e9, 0.0])
def test_extreme_inputs(value):
    x = np.full((2, 3), value)
    report = check_backward(MatMul, inputs=[x, np.full((3, 2), 0.5)])
    assert report.correct, str(report)
