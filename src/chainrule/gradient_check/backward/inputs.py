"""The point of a backward check: the user's arrays, or standard normal draws of given shapes."""

from __future__ import annotations

import numpy as np

__all__ = ["input_arrays", "parse_dtype"]

_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16}


def parse_dtype(dtype):
    """``dtype=`` as a NumPy floating dtype (None stays None)."""
    if dtype is None:
        return None
    name = getattr(dtype, "__name__", None) or str(dtype).replace("torch.", "")
    try:
        found = np.dtype(_DTYPES.get(name, name))
    except TypeError:
        found = None
    if found is None or found.kind != "f":
        raise ValueError(f"dtype= must be 'float32' or 'float64'; got {dtype!r}.")
    return found


def _as_numpy(value, k: int) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        arr = np.array(value, copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"inputs[{k}] must be an array; got {type(value).__name__}.") from exc
    if arr.dtype.kind in "iub":
        arr = arr.astype(np.float64)
    if arr.dtype.kind != "f":
        raise ValueError(f"inputs[{k}] must hold floating-point numbers; got dtype {arr.dtype}. "
                         "Pass float arrays (numpy.asarray(x, dtype=float)).")
    if not np.all(np.isfinite(arr)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"inputs[{k}] holds {arr[bad]} at index {bad}; a gradient check needs "
                         "finite inputs: replace NaN and infinities.")
    return arr


def _shape(value, k: int) -> tuple[int, ...]:
    if isinstance(value, int | np.integer):
        value = (value,)
    try:
        shape = tuple(int(n) for n in value)
    except (TypeError, ValueError):
        shape = None
    if shape is None or any(n < 0 for n in shape) or any(
            not isinstance(n, int | np.integer) for n in value):
        raise ValueError(f"shapes[{k}] must be a tuple of sizes such as (4, 3); got {value!r}.")
    return shape


def input_arrays(inputs, shapes, spec, dtype, rng) -> list[np.ndarray]:
    """The inputs to check at, as NumPy arrays in the dtype the user works in."""
    dtype = parse_dtype(dtype)
    if inputs is not None and shapes is not None:
        raise ValueError("Pass inputs= (arrays) or shapes= (to draw them), not both.")
    if inputs is not None:
        if isinstance(inputs, np.ndarray) or hasattr(inputs, "detach"):
            inputs = [inputs]
        xs = [_as_numpy(v, k) for k, v in enumerate(inputs)]
        return [x.astype(dtype) for x in xs] if dtype is not None else xs
    if shapes is None and spec is not None:
        shapes = spec.shapes
    if shapes is None:
        raise ValueError(
            "check_backward needs the point to check at: pass shapes=[(4, 3), (3, 5)] (one "
            "shape per input, drawn standard normal) or inputs=[x, W] (arrays).")
    if isinstance(shapes, tuple) and all(isinstance(n, int) for n in shapes):
        shapes = [shapes]
    shapes = [_shape(s, k) for k, s in enumerate(shapes)]
    if not shapes:
        raise ValueError("shapes= is empty; give one shape per input of the forward.")
    return [rng.standard_normal(s).astype(dtype or np.float64) for s in shapes]
