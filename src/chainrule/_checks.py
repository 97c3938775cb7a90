"""Input validation shared by every module: errors name the value received and the fix.

Nothing here uses ``assert``: these checks guard user input and must survive ``python -O``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "as_float_array",
    "check_finite",
    "check_same_shape",
    "describe_position",
]


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
