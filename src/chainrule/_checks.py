"""Input validation shared by every module: errors name the value received and the fix.

Nothing here uses ``assert``: these checks guard user input and must survive ``python -O``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "UnreadableFormulaError",
    "as_float_array",
    "backward_before_forward",
    "check_finite",
    "check_same_shape",
    "check_scalar",
    "describe_position",
]


class UnreadableFormulaError(ValueError):
    """A formula that cannot be read at all: empty, not text, or not parseable as an expression
    (``X.T @@ Y``, ``x +* 2``). Every formula reader raises a subclass of it, so that a face can
    treat an unreadable formula as bad usage, apart from a formula that reads but is refused or
    wrong."""


def check_scalar(
    value,
    name: str,
    owner: str,
    *,
    kind: type = float,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
):
    """``value`` as a Python ``int`` or ``float`` inside the given range, else one ValueError.

    The one validator for scalar arguments (in the manner of scikit-learn's ``check_scalar``):
    ``kind`` is ``int`` (integers only, booleans refused) or ``float`` (any finite real number,
    booleans refused); ``low``/``high`` bound it, closed unless ``low_open``/``high_open``;
    ``allow_none`` lets ``None`` through unchanged. The message names the parameter, its owner,
    the range and the value received, e.g. "The 'lr' parameter of SGD must be a float in the
    range (0, inf); got -1 instead."

    >>> check_scalar(3, "units", "Dense", kind=int, low=1)
    3
    """
    if value is None and allow_none:
        return None
    if kind is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
        number = int(value) if ok else None
    else:
        ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
        number = float(value) if ok else None
        ok = ok and math.isfinite(number)
    if ok and low is not None:
        ok = number > low if low_open else number >= low
    if ok and high is not None:
        ok = number < high if high_open else number <= high
    if not ok:
        left = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
        right = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
        noun = "an integer" if kind is int else "a finite float"
        also = " or None" if allow_none else ""
        raise ValueError(
            f"The {name!r} parameter of {owner} must be {noun} in the range {left}, {right}{also}; "
            f"got {value!r} instead."
        )
    return number


def backward_before_forward(owner: str) -> RuntimeError:
    """The one error for a backward pass with no forward pass to differentiate (raise it)."""
    return RuntimeError(
        f"{owner}.backward() was called before forward(); call forward(x) first, then "
        "backward(grad) with dL/d(output)."
    )


def as_float_array(x, name: str = "input") -> np.ndarray:
    """Return ``x`` as a floating ndarray without copying when it already is one.

    float16/float32/float64 are kept as they are (float32 in, float32 out); integers and
    booleans are promoted to float64. Anything that is not numeric raises ValueError.
    """
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return x
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be a numeric array; got {type(x).__name__}: {exc}") from exc
    if arr.dtype.kind == "f":
        return arr
    if arr.dtype.kind in "iub":
        return arr.astype(np.float64)
    raise ValueError(
        f"{name} must be a numeric array; got dtype {arr.dtype}. "
        "Convert it with numpy.asarray(..., dtype=float)."
    )


def describe_position(mask: np.ndarray) -> str:
    """Name the first True position of ``mask`` as an index tuple, for error messages."""
    idx = np.argwhere(mask)
    if idx.size == 0:
        return "nowhere"
    first = tuple(int(i) for i in idx[0])
    where = first[0] if len(first) == 1 else first
    more = f" (and {len(idx) - 1} more)" if len(idx) > 1 else ""
    return f"at index {where}{more}"


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise ValueError naming ``name`` and the first NaN/inf position if ``arr`` is not finite."""
    if arr.dtype.kind not in "fc":
        return
    if np.isfinite(arr).all():
        return
    bad = ~np.isfinite(arr)
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    value = arr[first]
    kind = "NaN" if np.isnan(value) else "inf"
    raise ValueError(
        f"{name} contains {kind} {describe_position(bad)}; "
        "remove or impute non-finite values before computing the loss or training."
    )


def check_same_shape(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> None:
    """Raise ValueError with both shapes when ``a`` and ``b`` differ in shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"Shape mismatch: {names[0]} has shape {a.shape} and {names[1]} has shape {b.shape}; "
            "they must be equal."
        )
