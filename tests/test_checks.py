"""The shared validator for scalar arguments and the backward-before-forward error."""

import math

import numpy as np
import pytest

from chainrule._checks import backward_before_forward, check_scalar


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        (3, {"kind": int, "low": 1}, 3),
        (np.int64(7), {"kind": int, "low": 1}, 7),
        (0.5, {"low": 0.0, "low_open": True}, 0.5),
        (np.float32(2.0), {"high": 2.0}, 2.0),
        (1, {}, 1.0),
        (None, {"allow_none": True}, None),
    ],
)
def test_check_scalar_accepts_values_in_range(value, kwargs, expected):
    got = check_scalar(value, "x", "Owner", **kwargs)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    ("value", "kwargs", "range_text"),
    [
        (True, {"kind": int}, "(-inf, inf)"),
        (0, {"kind": int, "low": 1}, "[1, inf)"),
        (2.5, {"kind": int}, "(-inf, inf)"),
        (math.nan, {}, "(-inf, inf)"),
        (math.inf, {"low": 0.0}, "[0, inf)"),
        (-1e9, {"low": 0.0, "low_open": True}, "(0, inf)"),
        (0.0, {"low": 0.0, "low_open": True}, "(0, inf)"),
        (1.0, {"high": 1.0, "high_open": True}, "(-inf, 1)"),
        (1e3, {"high": 1.0}, "(-inf, 1]"),
        ("0.1", {}, "(-inf, inf)"),
        (None, {}, "(-inf, inf)"),
    ],
)
def test_check_scalar_names_value_range_and_owner(value, kwargs, range_text):
    with pytest.raises(ValueError) as info:
        check_scalar(value, "lr", "SGD", **kwargs)
    message = str(info.value)
    assert "'lr' parameter of SGD" in message
    assert range_text in message
    assert f"got {value!r} instead" in message


def test_backward_before_forward_names_owner_and_fix():
    error = backward_before_forward("Dense")
    assert isinstance(error, RuntimeError)
    assert str(error).startswith("Dense.backward() was called before forward()")
    assert "call forward(x) first" in str(error)
