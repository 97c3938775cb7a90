"""The one-line layer grammar of chainrule.nn.spec: c32k3,p2,c64k3,p2,128."""

import numpy as np
import pytest

from chainrule.nn import AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Softmax
from chainrule.nn.spec import LAYER_GRAMMAR, LayerToken, network, parse_layers


def test_tokens_of_a_layer_line():
    assert parse_layers("c32k3,p2,c64k3s2p1,a2,128") == [
        LayerToken("conv", 32, 3, 1, 0, "c32k3"),
        LayerToken("maxpool", 2, text="p2"),
        LayerToken("conv", 64, 3, 2, 1, "c64k3s2p1"),
        LayerToken("avgpool", 2, text="a2"),
        LayerToken("dense", 128, text="128"),
    ]
    assert parse_layers("none") == [] and parse_layers("") == []
    assert parse_layers(" C8K5 , 16 ") == [LayerToken("conv", 8, 5, 1, 0, "c8k5"),
                                           LayerToken("dense", 16, text="16")]


@pytest.mark.parametrize(("text", "bad"), [
    ("c32", "'c32'"), ("k3", "'k3'"), ("c32k3,x", "'x'"), ("c8k3p", "'c8k3p'"),
    ("-4", "'-4'"), ("c8k3,,16", "''"), ("p2.5", "'p2.5'"),
])
def test_a_bad_token_is_named_with_the_grammar(text, bad):
    with pytest.raises(ValueError) as info:
        parse_layers(text)
    message = str(info.value)
    assert f"layers={bad}: not a layer" in message and LAYER_GRAMMAR in message


@pytest.mark.parametrize("text", ["0", "c0k3", "c8k0", "c8k3s0", "p0"])
def test_zero_sizes_are_refused(text):
    with pytest.raises(ValueError, match=r"must be >= 1; the grammar is <n>"):
        parse_layers(text)


def test_convolutions_after_a_dense_layer_are_refused():
    with pytest.raises(ValueError, match=r"c8k3 follows a dense layer; convolutions and pools "
                                         r"come before"):
        parse_layers("16,c8k3")


def test_the_network_of_a_line_flattens_before_the_first_dense_layer():
    model = network(parse_layers("c4k3,p2,16"), (1, 8, 8), 3, output="softmax", dropout=0.5,
                    seed=0)
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [Conv2D, ReLU, MaxPool2D, Flatten, Dense, ReLU, Dropout, Dense, Softmax]
    # 8x8 -> conv 3x3 -> 6x6 -> pool 2 -> 3x3; 4 channels: 36 features
    assert model.layers[4].in_features == 36 and model.input_shape == (1, 8, 8)
    assert model.forward(np.zeros((2, 64), np.float32)).shape == (2, 3)  # flat rows too


def test_a_line_of_pools_only_flattens_before_the_output():
    model = network(parse_layers("a2"), (1, 4, 4), 2, seed=0)
    assert [type(layer) for layer in model.layers] == [AvgPool2D, Flatten, Dense]
    assert model.layers[-1].in_features == 4


def test_the_same_seed_gives_the_same_network():
    a = network(parse_layers("c4k3,8"), (1, 6, 6), 2, seed=3)
    b = network(parse_layers("c4k3,8"), (1, 6, 6), 2, seed=3)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)


def test_images_smaller_than_a_window_are_refused():
    with pytest.raises(ValueError, match=r"p2 gets images of 1 x 1 pixels, smaller than its "
                                         r"window"):
        network(parse_layers("c4k3,p2,p2"), (1, 3, 3), 2)
