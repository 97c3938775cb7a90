"""IDX files (MNIST, Fashion-MNIST): one file, a folder of four, or a named data set's folder."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from chainrule._io import MAX_DATA_BYTES, read_bounded, read_head
from chainrule.data.dataset import Dataset

__all__ = ["FASHION_MNIST_CLASSES", "IDX_FILES", "IDX_TYPES", "NAMED_IDX", "find_data_folder",
           "images_to_features", "load_idx", "load_idx_folder"]

#: IDX type code (third byte of the magic number) -> big-endian element type.
IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _idx_bytes(path: Path) -> bytes:
    """An IDX file's bytes, decompressing no more than its header declares (plus one byte)."""
    head = read_head(path, 4, "IDX file")
    if len(head) < 4 or head[0] or head[1] or head[2] not in IDX_TYPES or head[3] == 0:
        return head  # _parse_idx names what is wrong
    start = 4 + 4 * head[3]
    head = read_head(path, start, "IDX file")
    if len(head) < start:
        return head
    dims = [int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(head[3])]
    declared = start + math.prod(dims) * IDX_TYPES[head[2]].itemsize
    _refuse_impossible(path, dims, declared)
    try:
        # A little more than declared, so that a few extra bytes are counted exactly.
        return read_bounded(path, min(declared + 2**16, MAX_DATA_BYTES), "IDX file")
    except ValueError as exc:
        if "more than" not in str(exc):
            raise
        shape = " x ".join(f"{d:,}" for d in dims)
        if declared > MAX_DATA_BYTES:
            raise ValueError(f"{path}: the header declares {shape} items ({declared:,} bytes), "
                             f"more than the {MAX_DATA_BYTES:,} chainrule reads.") from None
        raise ValueError(f"{path}: holds far more bytes than the {shape} items its header "
                         f"declares ({declared - start:,} bytes); the file is corrupted or not "
                         "IDX.") from None


#: Deflate's largest compression ratio (a run of one byte): no gzip file of n bytes holds more
#: than about 1032 n bytes, however many members it has.
_DEFLATE_MAX_RATIO = 1032


def _refuse_impossible(path: Path, dims: list[int], declared: int) -> None:
    """Refuse, from the header alone, a declared size that chainrule does not read or that the
    file cannot hold: nothing is decompressed for such a file (a gzip bomb stops here)."""
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
        size = os.fstat(fh.fileno()).st_size
    if not gzipped:
        return  # a raw file is read no further than its size: a short body says "truncated"
    shape = " x ".join(f"{d:,}" for d in dims)
    if declared > MAX_DATA_BYTES:
        raise ValueError(f"{path}: the header declares {shape} items ({declared:,} bytes), "
                         f"more than the {MAX_DATA_BYTES:,} chainrule reads.")
    if declared > _DEFLATE_MAX_RATIO * size + 1024:
        raise ValueError(f"{path}: the header declares {shape} items ({declared:,} bytes), more "
                         f"than a gzip file of {size:,} bytes can hold; the file is corrupted or "
                         "not IDX.")


def _parse_idx(path: Path) -> np.ndarray:
    """The IDX array of ``path``, possibly a read-only view of the file's bytes."""
    raw = _idx_bytes(path)
    expected = "0x00000803 for images or 0x00000801 for labels"
    if len(raw) < 4:
        raise ValueError(f"{path}: not an IDX file: only {len(raw)} bytes (expected a 4-byte "
                         f"magic number, {expected}).")
    magic = int.from_bytes(raw[:4], "big")
    code, ndim = raw[2], raw[3]
    if raw[0] or raw[1] or code not in IDX_TYPES or ndim == 0:
        raise ValueError(
            f"{path}: not an IDX file: magic number 0x{magic:08X} (expected {expected}; the "
            "third byte is the type, 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D "
            "float32, 0x0E float64, and the fourth the number of dimensions)."
        )
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise ValueError(f"{path}: truncated IDX header: {ndim} dimensions need {start} bytes, "
                         f"the file has {len(raw)}.")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_TYPES[code]
    per_item = math.prod(dims[1:]) * dtype.itemsize
    needed = dims[0] * per_item
    body = len(raw) - start
    shape = "x".join(map(str, dims[1:]))
    items = f"{dims[0]:,} items" + (f" of {shape}" if shape else "")
    if body < needed:
        complete = body // per_item if per_item else 0
        raise ValueError(f"{path}: truncated: the header declares {items} ({needed:,} bytes) "
                         f"but only {body:,} bytes follow ({complete:,} complete items).")
    if body > needed:
        raise ValueError(f"{path}: {body - needed:,} bytes after the {items} the header "
                         "declares; the file is corrupted or not IDX.")
    return np.frombuffer(raw, dtype=dtype, count=math.prod(dims), offset=start).reshape(dims)


def load_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or raw.

    The magic number's third byte gives the element type and its fourth the number of
    dimensions; the sizes follow as big-endian uint32, then the row-major body. The declared
    size must match the body exactly.

    Returns
    -------
    ndarray
        A writable array in native byte order with the declared shape, e.g. ``(10000, 28, 28)``
        uint8 for MNIST's test images and ``(10000,)`` uint8 for its labels.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Not IDX (bad magic number), truncated, or followed by extra bytes; the message names
        the file.
    """
    arr = _parse_idx(Path(path))
    return arr.astype(arr.dtype.newbyteorder("="))  # a copy: writable, native order


#: The four files of an IDX data set, as published with MNIST.
IDX_FILES = {
    "train_images": ("train-images", "idx3"),
    "train_labels": ("train-labels", "idx1"),
    "test_images": ("t10k-images", "idx3"),
    "test_labels": ("t10k-labels", "idx1"),
}

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _idx_candidates(stem: str, kind: str) -> list[str]:
    # Raw files first (no decompression), then gzip; both the dashed and the dotted spelling.
    names = [f"{stem}-{kind}-ubyte", f"{stem}.{kind}-ubyte"]
    return names + [name + ".gz" for name in names]


def _find_idx(folder: Path, role: str) -> Path | None:
    for name in _idx_candidates(*IDX_FILES[role]):
        if (folder / name).is_file():
            return folder / name
    return None


def images_to_features(images: np.ndarray, path: Path) -> np.ndarray:
    """One row of pixels per image, in float32 (bytes divided by 255 into [0, 1], other types
    as they are); ``path`` names the file in the error for arrays that hold no images."""
    if images.ndim < 2:
        raise ValueError(f"{path}: expected images (an IDX file with 2 or more dimensions); got "
                         f"shape {images.shape}. Are the image and label files swapped?")
    if len(images) == 0 or images[0].size == 0:
        what = "no images" if len(images) == 0 else "images of 0 pixels"
        raise ValueError(f"{path}: holds {what} (shape {images.shape}); a data set needs at "
                         "least one image of at least one pixel.")
    flat = images.reshape(len(images), -1)
    out = np.empty(flat.shape, dtype=np.float32)
    if images.dtype == np.uint8:
        np.divide(flat, np.float32(255.0), out=out)
    else:
        out[...] = flat
    return out


def _labels(labels: np.ndarray, path: Path) -> np.ndarray:
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"{path}: expected labels (a 1-D integer IDX file); got shape "
                         f"{labels.shape} of {labels.dtype}. Are the image and label files "
                         "swapped?")
    return labels.astype(np.int64)


def load_idx_folder(folder, name: str | None = None) -> Dataset:
    """Load a folder of IDX files laid out as MNIST: training set and, if present, test set.

    The files are ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each raw or ``.gz``, with a dash
    or a dot before ``idx`` (``train-images.idx3-ubyte``). The test pair is optional.

    Images become float32 rows scaled to [0, 1] (uint8 pixels divided by 255; other element
    types are converted unscaled), labels int64. A folder whose name contains "fashion" gets
    Fashion-MNIST's class names.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of IDX files.")
    paths = {role: _find_idx(folder, role) for role in IDX_FILES}
    for split in ("train", "test"):
        found = [paths[f"{split}_{part}"] for part in ("images", "labels")]
        if split == "test" and found == [None, None]:
            continue
        missing = [role for role in (f"{split}_images", f"{split}_labels") if paths[role] is None]
        if missing:
            present = sorted(p.name for p in folder.iterdir())[:8]
            raise ValueError(
                f"{folder}: no IDX file for {', '.join(missing)}; looked for "
                f"{' / '.join(_idx_candidates(*IDX_FILES[missing[0]]))}. The folder holds: "
                f"{', '.join(present) or 'nothing'}."
            )

    def pair(split: str) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        images_path, labels_path = paths[f"{split}_images"], paths[f"{split}_labels"]
        if images_path is None:
            return None, None
        X = images_to_features(_parse_idx(images_path), images_path)
        y = _labels(_parse_idx(labels_path), labels_path)
        if len(X) != len(y):
            raise ValueError(f"{folder}: {images_path.name} holds {len(X):,} images but "
                             f"{labels_path.name} holds {len(y):,} labels.")
        return X, y

    X, y = pair("train")
    X_test, y_test = pair("test")
    if X_test is not None and X_test.shape[1] != X.shape[1]:
        raise ValueError(f"{folder}: training images have {X.shape[1]} pixels but test images "
                         f"have {X_test.shape[1]}.")
    name = name or folder.name
    if "fashion" in name.lower():
        class_names = list(FASHION_MNIST_CLASSES)
    else:
        present = np.flatnonzero(np.bincount(y, minlength=1)) if len(y) else []
        class_names = [str(c) for c in present]
    return Dataset(X, y, X_test, y_test, task="classification", name=name,
                   feature_names=None, class_names=class_names)


#: Names of IDX data sets found by :func:`find_data_folder` (aliases map to the folder name).
NAMED_IDX = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "fashion_mnist": "fashion-mnist"}


def find_data_folder(name: str) -> Path:
    """The folder of the named IDX data set, without downloading: ``$CHAINRULE_DATA_DIR/<name>``
    when that folder exists, else the download cache's ``<name>`` folder when it holds all four
    files (see :mod:`chainrule.download`).

    Raises FileNotFoundError naming the places searched, the download command and where to put
    the files by hand.
    """
    from chainrule import download

    folder_name = NAMED_IDX.get(name.lower(), name)
    env = os.environ.get(download.DATA_DIR_ENV)
    if env and (Path(env).expanduser() / folder_name).is_dir():
        return Path(env).expanduser() / folder_name
    cached = download.cached_folder(folder_name)
    if cached is not None:
        return cached
    home = download.data_home()
    raise FileNotFoundError(
        f"Cannot find the {name} data in {home / folder_name if home else 'CHAINRULE_DATA_DIR'}"
        f". Download it with: chainrule data download {folder_name}. Or: "
        + download.manual_instructions(folder_name)
    )
