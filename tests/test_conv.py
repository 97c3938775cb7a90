"""Conv2D and Flatten: forward against a direct sum over the windows, every backward against
float64 central finite differences, PyTorch's nn.Conv2d where installed, and the backward
checker naming each planted convolution mistake."""

from __future__ import annotations

import numpy as np
import pytest

from chainrule.gradient_check import MISTAKES, check_backward
from chainrule.nn import Conv2D, Dense, Flatten, Sequential, load
from chainrule.nn.conv import conv2d, conv2d_backward
from oracles import numeric_vjp


def direct_conv(x, W, b, stride, padding):
    """The definition, one output pixel at a time: sum over c, i, j of x_pad * W, plus b."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    kh, kw = W.shape[2:]
    ho, wo = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    y = np.zeros((len(x), len(W), ho, wo))
    for r in range(ho):
        for c in range(wo):
            window = xp[:, :, r * sh: r * sh + kh, c * sw: c * sw + kw]
            y[:, :, r, c] = np.einsum("ncij,ocij->no", window, W) + b
    return y


CASES = [  # (batch, in, out, image (h, w), kernel, stride, padding)
    (2, 1, 1, (5, 5), 3, 1, 0),
    (1, 3, 2, (5, 7), 3, 2, 1),
    (2, 2, 3, (6, 5), 3, 2, 1),
    (1, 2, 2, (7, 6), (3, 2), (2, 3), (0, 1)),
    (2, 1, 2, (4, 4), 1, 1, 0),
    (1, 2, 1, (5, 5), 5, 1, 2),
    (1, 1, 1, (5, 7), 3, 2, 1),  # one channel in and out, batch 1, stride 2, padding 1
]


def _layer(case, dtype="float64"):
    n, cin, cout, image, k, s, p = case
    layer = Conv2D(cin, cout, k, stride=s, padding=p, dtype=dtype, seed=1)
    x = np.random.default_rng(2).standard_normal((n, cin, *image)).astype(dtype)
    return layer, x


@pytest.mark.parametrize("case", CASES)
def test_conv2d_forward_is_the_sum_over_each_window(case):
    layer, x = _layer(case)
    expected = direct_conv(x, layer.weight, layer.bias, layer.stride, layer.padding)
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_conv2d_backward_matches_finite_differences(case):
    layer, x = _layer(case)
    y = layer.forward(x)
    G = np.random.default_rng(3).standard_normal(y.shape)
    dX = layer.backward(G)
    W, b = layer.weight.copy(), layer.bias.copy()
    f = lambda x_, W_, b_: conv2d(x_, W_, b_, layer.stride, layer.padding)  # noqa: E731
    arrays = [x.copy(), W, b]
    nx, nW, nb = numeric_vjp(lambda: f(*arrays), arrays, G)
    np.testing.assert_allclose(dX, nx, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(layer.dweight, nW, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(layer.dbias, nb, rtol=1e-6, atol=1e-8)


def test_conv2d_in_float32_stays_float32_and_agrees_with_float64():
    layer, x = _layer(CASES[2], "float32")
    y = layer.forward(x)
    dX = layer.backward(np.ones_like(y))
    assert y.dtype == dX.dtype == layer.dweight.dtype == np.float32
    ref = Conv2D(2, 3, 3, stride=2, padding=1, dtype="float64", seed=1)
    ref.forward(x.astype(np.float64))
    np.testing.assert_allclose(dX, ref.backward(np.ones(y.shape)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.dweight, ref.dweight, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", [CASES[1], CASES[-1]])
def test_conv2d_float32_backward_matches_float64_finite_differences_loosely(case):
    layer, x = _layer(case, "float32")
    y = layer.forward(x)
    G = np.random.default_rng(3).standard_normal(y.shape)
    dX = layer.backward(G.astype(np.float32))
    arrays = [x.astype(np.float64), layer.weight.astype(np.float64), layer.bias.astype(np.float64)]
    f = lambda: conv2d(*arrays, layer.stride, layer.padding)  # noqa: E731
    for got, want in zip((dX, layer.dweight, layer.dbias), numeric_vjp(f, arrays, G), strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("scale", [1e3, -1e3, 1e9, -1e9])
def test_conv2d_is_linear_for_extreme_inputs(scale):
    layer, x = _layer(CASES[1])
    y0 = layer.forward(x) - layer.bias[:, None, None]
    y = layer.forward(scale * x) - layer.bias[:, None, None]
    np.testing.assert_allclose(y, scale * y0, rtol=1e-9)
    assert np.all(np.isfinite(layer.backward(np.full(y.shape, scale))))


def test_conv2d_of_zeros_is_the_bias_and_nan_stays_in_its_windows():
    layer, x = _layer(CASES[0])
    y = layer.forward(np.zeros_like(x))
    np.testing.assert_array_equal(y, np.broadcast_to(layer.bias[:, None, None], y.shape))
    x[0, 0, 0, 0] = np.nan
    y = layer.forward(x)
    assert np.isnan(y[0, :, 0, 0]).all() and np.isfinite(y[1]).all()
    assert np.isfinite(y[0, :, 2:]).all()
    # backward: dX never reads x (finite); dW sums x over the batch, so the NaN reaches the
    # kernel entries that saw it, and the bias gradient stays finite
    dX = layer.backward(np.ones_like(y))
    assert np.isfinite(dX).all() and np.isnan(layer.dweight).any()
    assert np.isfinite(layer.dbias).all()


def test_dx_is_the_full_convolution_with_the_rotated_kernel():
    # 1 x 1 image channel, kernel [[1, 2], [3, 4]], stride 1, dY = [[1]] on a 2 x 2 input:
    # dX = dY * W at the window's position, i.e. W itself.
    W = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    dX, dW, db = conv2d_backward(np.ones((1, 1, 1, 1)), np.arange(4.0).reshape(1, 1, 2, 2), W)
    np.testing.assert_array_equal(dX[0, 0], W[0, 0])
    np.testing.assert_array_equal(dW[0, 0], [[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(db, [1.0])


@pytest.mark.parametrize("kwargs, message", [
    (dict(in_channels=0, out_channels=1, kernel_size=3), "in_channels"),
    (dict(in_channels=1, out_channels=1, kernel_size=(3, 3, 3)), "kernel_size="),
    (dict(in_channels=1, out_channels=1, kernel_size=3, stride=0), "stride"),
    (dict(in_channels=1, out_channels=1, kernel_size=3, padding=-1), "padding"),
    (dict(in_channels=1, out_channels=1, kernel_size=3, dtype="int32"), "floating dtype"),
])
def test_conv2d_refuses_bad_settings_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Conv2D(**kwargs)


def test_conv2d_refuses_images_of_the_wrong_shape_naming_it():
    layer = Conv2D(3, 2, 5)
    with pytest.raises(ValueError, match=r"\(batch, 3, height, width\); got \(2, 1, 8, 8\)"):
        layer.forward(np.zeros((2, 1, 8, 8)))
    with pytest.raises(ValueError, match="smaller than the kernel 5 x 5"):
        layer.forward(np.zeros((2, 3, 4, 8)))
    with pytest.raises(RuntimeError, match="before forward"):
        Conv2D(1, 1, 1).backward(np.zeros((1, 1, 1, 1)))


def test_flatten_reshapes_forward_and_back():
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    flat = Flatten()
    y = flat.forward(x)
    assert y.shape == (2, 12)
    np.testing.assert_array_equal(flat.backward(y), x)


def test_conv2d_state_dict_round_trips_and_checks_shapes():
    layer, _ = _layer(CASES[2])
    other = Conv2D(2, 3, 3, stride=2, padding=1, dtype="float64", seed=9)
    other.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(other.weight, layer.weight)
    with pytest.raises(ValueError, match=r"'weight' has shape \(3, 2, 3, 3\); it needs"):
        Conv2D(2, 3, 2).load_state_dict(layer.state_dict())


def test_a_cnn_saves_and_loads_with_pytorch_names(tmp_path):
    from chainrule.nn import MaxPool2D, ReLU

    model = Sequential([Conv2D(1, 2, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(),
                        Dense(2 * 3 * 3, 4)], seed=0)
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32)
    path = model.save(tmp_path / "cnn.safetensors")
    again = load(path)
    np.testing.assert_array_equal(again.forward(x), model.forward(x))
    assert again.layers[0].stride == (1, 1) and again.layers[0].padding == (1, 1)


def test_conv2d_matches_pytorch():
    torch = pytest.importorskip("torch")
    for case in CASES:
        layer, x = _layer(case)
        ref = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                              stride=layer.stride, padding=layer.padding).double()
        with torch.no_grad():
            ref.weight.copy_(torch.from_numpy(layer.weight))
            ref.bias.copy_(torch.from_numpy(layer.bias))
        tx = torch.from_numpy(x).requires_grad_(True)
        ty = ref(tx)
        G = np.random.default_rng(5).standard_normal(tuple(ty.shape))
        ty.backward(torch.from_numpy(G))
        np.testing.assert_allclose(layer.forward(x), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.backward(G), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.dweight, ref.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.dbias, ref.bias.grad.numpy(), rtol=1e-10, atol=1e-12)


# --- planted mistakes, named by check_backward(layer="conv2d") ---------------------------------

S, P = 2, 1


def conv_forward(x, W, b):
    return conv2d(x, W, b, S, P)


def _right(d, x, W, b):
    return conv2d_backward(d, x, W, S, P)


def _not_flipped(d, x, W, b):
    return conv2d_backward(d, x, W[:, :, ::-1, ::-1], S, P)[0], *_right(d, x, W, b)[1:]


def _valid(d, x, W, b, keep_shape):
    """dX as the valid correlation of the dilated dY with the rotated kernel."""
    n, o, ho, wo = d.shape
    k = W.shape[2]
    dilated = np.zeros((n, o, (ho - 1) * S + 1, (wo - 1) * S + 1))
    dilated[:, :, ::S, ::S] = d
    windows = np.lib.stride_tricks.sliding_window_view(dilated, (k, k), axis=(2, 3))
    valid = np.einsum("noyxij,ocij->ncyx", windows, W[:, :, ::-1, ::-1])
    if keep_shape:  # put it where it belongs, zeros around
        dx = np.zeros_like(x)
        lo = k - 1 - P
        dx[:, :, lo: lo + valid.shape[2], lo: lo + valid.shape[3]] = valid
        valid = dx
    return valid, *_right(d, x, W, b)[1:]


def _stride_ignored_dx(d, x, W, b):
    return conv2d_backward(d, x, W, 1, P)[0], *_right(d, x, W, b)[1:]


def _stride_ignored_dw(d, x, W, b):
    xp = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    dW = np.zeros_like(W)
    for i in range(W.shape[2]):
        for j in range(W.shape[3]):
            patch = xp[:, :, i: i + d.shape[2], j: j + d.shape[3]]
            dW[:, :, i, j] = np.einsum("ncyx,noyx->oc", patch, d)
    dX, _, db = _right(d, x, W, b)
    return dX, dW, db


CONV_MISTAKES = [
    ("kernel not flipped", _not_flipped, "conv_kernel_not_flipped", "x"),
    ("valid convolution, zero border", lambda *a: _valid(*a, True), "conv_valid_not_full", "x"),
    ("valid convolution, its own shape", lambda *a: _valid(*a, False), "conv_valid_not_full",
     "x"),
    ("stride ignored in dx", _stride_ignored_dx, "conv_stride_ignored", "x"),
    ("stride ignored in dW", _stride_ignored_dw, "conv_stride_ignored", "W"),
]


@pytest.mark.parametrize("name, backward, kind, where", CONV_MISTAKES,
                         ids=[c[0] for c in CONV_MISTAKES])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_planted_conv_mistake_is_named(name, backward, kind, where, seed):
    assert kind in MISTAKES
    report = check_backward(conv_forward, backward, layer="conv2d", seed=seed)
    assert not report.correct, str(report)
    assert report.kind == kind, str(report)
    assert not report[where].correct and report[where].kind == kind


def test_the_right_conv_backward_passes_the_checker_in_float64_and_float32():
    assert check_backward(conv_forward, _right, layer="conv2d").correct
    assert check_backward(conv_forward, lambda d, x, W, b: tuple(
        g.astype(x.dtype) for g in _right(d, x, W, b)), layer="conv2d", dtype="float32").correct


def test_a_model_file_whose_conv_tensors_disagree_with_its_config_is_refused(tmp_path):
    import json

    from chainrule.serialization import ModelFileError, read_safetensors, write_safetensors

    model = Sequential([Conv2D(1, 2, 3), Flatten(), Dense(2 * 4 * 4, 3)], seed=0)
    tensors, meta = read_safetensors(model.save(tmp_path / "cnn.safetensors"))
    config = json.loads(meta["chainrule"])
    config["layers"][0]["config"]["kernel_size"] = [5, 5]
    write_safetensors(tmp_path / "bad.safetensors", tensors, {"chainrule": json.dumps(config)})
    with pytest.raises(ModelFileError, match=r"tensor '0.weight' has shape \(2, 1, 3, 3\); "
                                             r"layer 0 \(Conv2D\) needs \(2, 1, 5, 5\)"):
        load(tmp_path / "bad.safetensors")
    config["layers"][0]["config"]["kernel_size"] = 3
    write_safetensors(tmp_path / "bad.safetensors", tensors, {"chainrule": json.dumps(config)})
    with pytest.raises(ModelFileError, match=r"kernel_size must be a list of two integers"):
        load(tmp_path / "bad.safetensors")
