"""NumPy ``.npz`` archives holding ``X`` and ``y`` (and optionally ``X_test``, ``y_test``)."""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from chainrule._checks import as_float_array
from chainrule._io import MAX_DATA_BYTES, check_input_file
from chainrule.data.dataset import Dataset, infer_task, label_names
from chainrule.data.idx import images_to_features

__all__ = ["load_npz"]


def _npz_features(arr: np.ndarray, key: str, path: Path) -> np.ndarray:
    if arr.dtype.kind not in "iufb":
        raise ValueError(f"{path}: array {key!r} has dtype {arr.dtype}; features must be numeric.")
    if arr.ndim < 2:
        raise ValueError(f"{path}: array {key!r} must be 2-D (samples, features); got shape "
                         f"{arr.shape}. For one feature, save X.reshape(-1, 1).")
    if arr.ndim == 2 and arr.shape[1] == 0:
        raise ValueError(f"{path}: array {key!r} has 0 features (shape {arr.shape}); each sample "
                         "needs at least one feature.")
    if arr.ndim > 2 or arr.dtype == np.uint8:
        if arr.dtype == np.uint8:  # images: pixels 0-255 to [0, 1], as for IDX files
            return images_to_features(arr, path)
        arr = arr.reshape(len(arr), -1)
    X = as_float_array(arr, key)
    if X.dtype == np.float16:
        X = X.astype(np.float32)
    if not np.isfinite(X).all():
        i, j = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(f"{path}: array {key!r} holds {X[i, j]} at row {i}, column {j}; "
                         "remove or impute non-finite values.")
    return X


def _check_npz_members(path: Path) -> None:
    """Refuse an archive whose arrays declare more bytes than they hold, or more than
    :data:`chainrule._io.MAX_DATA_BYTES`, before NumPy allocates them."""
    total = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.removesuffix(".npy") not in ("X", "y", "X_test", "y_test"):
                    continue
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    else:
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                    header = member.tell()
                nbytes = math.prod(shape) * dtype.itemsize
                name = info.filename.removesuffix(".npy")
                if dtype.hasobject:
                    continue  # refused by np.load(allow_pickle=False) with its own message
                if nbytes != info.file_size - header:
                    raise ValueError(f"{path}: array {name!r} declares shape {shape} of "
                                     f"{dtype} ({nbytes:,} bytes) but holds "
                                     f"{info.file_size - header:,} bytes; the archive is "
                                     "corrupted.")
                total += nbytes
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: corrupted NPZ archive ({exc}).") from None
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: corrupted NPZ archive (an array header is invalid: "
                         f"{exc}).") from None
    if total > MAX_DATA_BYTES:
        raise ValueError(f"{path}: its arrays hold {total:,} bytes, more than the "
                         f"{MAX_DATA_BYTES:,} chainrule reads.")


def load_npz(path, task: str | None = None) -> Dataset:
    """Load a NumPy ``.npz`` archive holding arrays ``X`` and ``y`` (and optionally ``X_test``
    and ``y_test``). Never unpickles (``allow_pickle=False``).

    ``X`` of 3 or more dimensions is flattened per sample; uint8 ``X`` is read as images and
    scaled to float32 in [0, 1]. ``task`` is inferred as in :func:`load_csv` unless given.
    """
    path = check_input_file(path, "NPZ file")
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":
            raise ValueError(f"{path}: not an NPZ archive (save one with numpy.savez(path, X=X, "
                             "y=y)).")
    _check_npz_members(path)
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            for key in ("X", "y", "X_test", "y_test"):
                if key in keys:
                    arrays[key] = archive[key]
                    if not isinstance(arrays[key], np.ndarray):  # a member that is not .npy
                        raise ValueError(f"member {key!r} is not a NumPy array")
    except ValueError as exc:
        if "pickle" not in str(exc):
            raise ValueError(f"{path}: corrupted NPZ archive ({exc}).") from exc
        raise ValueError(f"{path}: an array holds Python objects, which chainrule does not "
                         "unpickle; save numeric arrays.") from exc
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: corrupted NPZ archive ({exc}).") from exc
    missing = [key for key in ("X", "y") if key not in arrays]
    if missing:
        raise ValueError(f"{path}: no array named {' or '.join(map(repr, missing))}; the archive "
                         f"holds {', '.join(map(repr, keys)) or 'no arrays'}. Save it with "
                         "numpy.savez(path, X=X, y=y).")
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise ValueError(f"{path}: X_test and y_test come together; the archive has only one.")
    X = _npz_features(arrays["X"], "X", path)
    y, task = infer_task(arrays["y"], task, str(path))
    X_test = y_test = None
    if "X_test" in arrays:
        X_test = _npz_features(arrays["X_test"], "X_test", path)
        y_test, _ = infer_task(arrays["y_test"], task, str(path))
        if X_test.shape[1] != X.shape[1]:
            raise ValueError(f"{path}: X has {X.shape[1]} features but X_test has "
                             f"{X_test.shape[1]}.")
    for features, targets, split in ((X, y, ""), (X_test, y_test, "_test")):
        if targets is not None and len(targets) != len(features):
            raise ValueError(f"{path}: X{split} has {len(features)} rows but y{split} has "
                             f"{len(targets)}.")
    class_names = label_names(y) if task == "classification" else None
    return Dataset(X, y, X_test, y_test, task=task, name=path.name, class_names=class_names)
