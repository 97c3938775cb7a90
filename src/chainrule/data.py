"""Data sets in, arrays out: loaders, a stratified split, label encoding and feature scaling.

Loaders, each returning a :class:`Dataset`:

- :func:`load_idx` / :func:`load_idx_folder`: the IDX files of MNIST and Fashion-MNIST, gzipped
  or raw. ``"mnist"`` and ``"fashion-mnist"`` name such folders, searched for by
  :func:`find_data_folder`.
- :func:`load_csv`: a CSV file with a header row and a named target column.
- :func:`load_npz`: a NumPy ``.npz`` archive with arrays ``X`` and ``y``.
- :func:`load_builtin`: the small data sets that scikit-learn ships inside its package
  (:data:`BUILTINS`), read from its data files without importing scikit-learn.
- :func:`load_dataset`: any of the above from one string, as the command line's ``--data``.

Then :func:`train_test_split`, :func:`encode_labels`, :func:`one_hot` and the scalers of
:data:`SCALERS` (fitted on the training data; ``to_config()`` is JSON, so a saved model carries
its preprocessing and :func:`scaler_from_config` rebuilds it).

Only NumPy and the standard library are used; every error names the file and what to do.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from chainrule._checks import as_float_array

__all__ = [
    "BUILTINS",
    "NAMED_IDX",
    "SCALERS",
    "TASKS",
    "Dataset",
    "MinMaxScaler",
    "NoScaling",
    "Scaler",
    "Standardizer",
    "encode_labels",
    "find_data_folder",
    "load_builtin",
    "load_csv",
    "load_dataset",
    "load_idx",
    "load_idx_folder",
    "load_npz",
    "make_scaler",
    "one_hot",
    "scaler_from_config",
    "train_test_split",
]

TASKS = ("classification", "regression")

#: A numeric target with at most this many distinct integer values is read as class labels.
MAX_INFERRED_CLASSES = 20


@dataclass(repr=False)
class Dataset:
    """Features and targets, with an optional test split of their own.

    Attributes
    ----------
    X : ndarray, shape (n_samples, n_features)
        float32 in [0, 1] for images (IDX files: 28x28 pixels flattened to 784), float64
        otherwise.
    y : ndarray, shape (n_samples,) or (n_samples, n_outputs)
        Class labels for classification (integer indices for the built-in and IDX data, the
        strings themselves for a CSV's text column; :func:`encode_labels` turns any labels into
        indices), values for regression.
    X_test, y_test : ndarray or None
        A test split that came with the data (MNIST's 10,000 test images), else None.
    task : {"classification", "regression"}
    name : str
        The data set's name, or the file's.
    feature_names, class_names : list of str or None
        ``class_names[i]`` names the class with index ``i`` of ``encode_labels(y)``.
    """

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    task: str = "classification"
    name: str = ""
    feature_names: list[str] | None = None
    class_names: list[str] | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"Dataset task must be one of {', '.join(TASKS)}; got {self.task!r}.")
        for X, y, split in ((self.X, self.y, ""), (self.X_test, self.y_test, "_test")):
            if X is None and y is None:
                continue
            if X is None or y is None:
                raise ValueError(f"Dataset needs both X{split} and y{split}, or neither.")
            if np.ndim(X) != 2:
                raise ValueError(f"Dataset X{split} must be 2-D; got shape {np.shape(X)}.")
            if len(X) != len(y):
                raise ValueError(
                    f"Dataset X{split} has {len(X)} rows but y{split} has {len(y)}."
                )

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def __repr__(self) -> str:
        test = f", test {self.X_test.shape}" if self.X_test is not None else ""
        classes = f", {len(self.class_names)} classes" if self.class_names else ""
        return (f"Dataset({self.name!r}, {self.task}, X {self.X.shape} {self.X.dtype}"
                f"{test}{classes})")


# --- shared helpers ------------------------------------------------------------------------


def _is_integer_valued(y: np.ndarray) -> bool:
    return y.dtype.kind in "iub" or (
        y.dtype.kind == "f" and bool(np.isfinite(y).all()) and bool((y == np.round(y)).all())
    )


def _infer_task(y: np.ndarray, task: str | None, where: str) -> tuple[np.ndarray, str]:
    """Decide classification or regression for targets ``y``; integer-valued labels become int64.

    Text, booleans and integer dtypes are class labels; floats are class labels when they are
    whole numbers with at most :data:`MAX_INFERRED_CLASSES` distinct values, else regression
    targets. ``task`` overrides the guess.
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)} or None; got {task!r}.")
    text = y.dtype.kind in "USO"
    if task is None:
        if text or y.dtype.kind in "iub":
            task = "classification"
        elif (y.ndim == 1 and _is_integer_valued(y)
              and len(np.unique(y)) <= MAX_INFERRED_CLASSES):
            task = "classification"
        else:
            task = "regression"
    if task == "regression":
        if text:
            raise ValueError(f"{where}: regression needs numeric targets; got text such as "
                             f"{y.reshape(-1)[0]!r}.")
        return y.astype(np.float64), task
    if y.ndim != 1:
        raise ValueError(f"{where}: class labels must be 1-D; got shape {y.shape}.")
    if not text and _is_integer_valued(y):
        y = y.astype(np.int64)
    return y, task


def _class_names(y: np.ndarray) -> list[str]:
    return [str(c) for c in np.unique(y).tolist()]


#: The largest CSV text read (after decompression); a bigger table belongs in an .npz file.
MAX_CSV_BYTES = 256 * 2**20


def _read_bytes(path: Path, limit: int = MAX_CSV_BYTES, what: str = "CSV file") -> bytes:
    """The file's bytes, decompressed when it is gzip (by content, whatever its name); at most
    ``limit`` of them (see :func:`chainrule._io.read_bounded`)."""
    from chainrule._io import read_bounded

    return read_bounded(path, limit, what)


def _idx_bytes(path: Path) -> bytes:
    """An IDX file's bytes, decompressing no more than its header declares (plus one byte)."""
    from chainrule._io import read_head

    head = read_head(path, 4, "IDX file")
    if len(head) < 4 or head[0] or head[1] or head[2] not in IDX_TYPES or head[3] == 0:
        return head  # _parse_idx names what is wrong
    start = 4 + 4 * head[3]
    head = read_head(path, start, "IDX file")
    if len(head) < start:
        return head
    dims = [int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(head[3])]
    from chainrule._io import MAX_DATA_BYTES

    declared = start + math.prod(dims) * IDX_TYPES[head[2]].itemsize
    try:
        # A little more than declared, so that a few extra bytes are counted exactly.
        return _read_bytes(path, min(declared + 2**16, MAX_DATA_BYTES), "IDX file")
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


# --- IDX (MNIST, Fashion-MNIST) ------------------------------------------------------------

#: IDX type code (third byte of the magic number) -> big-endian element type.
IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


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


def _images_to_features(images: np.ndarray, path: Path) -> np.ndarray:
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
        X = _images_to_features(_parse_idx(images_path), images_path)
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
    """The folder of the named IDX data set: the first of ``$CHAINRULE_DATA_DIR/<name>``,
    ``./shared/data/<name>`` and ``../shared/data/<name>`` that exists.

    Raises FileNotFoundError listing the places searched.
    """
    folder_name = NAMED_IDX.get(name.lower(), name)
    places = []
    env = os.environ.get("CHAINRULE_DATA_DIR")
    if env:
        places.append(Path(env) / folder_name)
    places += [Path("shared", "data", folder_name), Path("..", "shared", "data", folder_name)]
    for place in places:
        if place.is_dir():
            return place
    raise FileNotFoundError(
        f"Cannot find the {name} data: looked in {', '.join(str(p) for p in places)}. Put its "
        "IDX files (train-images-idx3-ubyte.gz, ...) in one of them, set CHAINRULE_DATA_DIR to "
        f"the folder that holds {folder_name}/, or pass the folder itself."
    )


# --- CSV -----------------------------------------------------------------------------------


def _to_floats(values: list[str], column: str, first_line: int, path: Path) -> np.ndarray:
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        pass
    for i, v in enumerate(values):
        try:
            float(v)
        except ValueError:
            line = first_line + i
            if v.strip() == "":
                raise ValueError(f"{path}: column {column!r} is empty on line {line}; fill in or "
                                 "drop the rows with missing values.") from None
            raise ValueError(
                f"{path}: column {column!r} is not numeric (line {line}: {v!r}). Features must "
                "be numbers: drop the column or encode it (one-hot) first, or name it with "
                "target= if it is the target."
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def _csv_rows(text: str, delimiter: str, path: Path) -> list[tuple[int, list[str]]]:
    """The non-empty rows of ``text`` with their line numbers; a malformed row is named."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return rows
        except csv.Error as exc:
            what = str(exc)
            if "field limit" in what:
                what = f"a field longer than {csv.field_size_limit():,} characters"
            elif "NUL" in what:
                what = "a NUL byte"
            raise ValueError(f"{path}: line {reader.line_num} holds {what}; is it really a "
                             "CSV?") from None
        if row:
            rows.append((reader.line_num, row))


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_csv(path, target: str | None = None, task: str | None = None) -> Dataset:
    """Load a CSV file whose first row names the columns; ``target`` names the target column.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv`` file (or ``.csv.gz``), comma-separated (semicolons or tabs are detected from
        the header). Blank lines are skipped.
    target : str, optional
        The target column; by default the last one. The other columns are the features and must
        all be numeric and finite.
    task : {"classification", "regression"}, optional
        By default, a text target is classification (its values become the class labels), as is
        a numeric one with at most 20 distinct whole-number values; any other numeric target is
        regression.
    """
    path = Path(path)
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"{path}: not a UTF-8 text file (byte 0x{raw[exc.start]:02x} on line "
                         f"{line} is not UTF-8); is it really a CSV? Save it as UTF-8.") from None
    first = text.split("\n", 1)[0]
    # The delimiter that splits the header into the most fields (commas win ties).
    delimiter = max((",", ";", "\t"), key=lambda d: len(next(csv.reader([first], delimiter=d))))
    lines = _csv_rows(text, delimiter, path)
    if not lines:
        raise ValueError(f"{path}: the file is empty; expected a header row and data rows.")
    header = [h.strip() for h in lines[0][1]]
    rows = lines[1:]
    if all(_looks_numeric(h) for h in header):
        raise ValueError(f"{path}: the first row ({', '.join(header[:5])}...) looks like data; "
                         "the first row must name the columns. Add a header row.")
    if len(header) < 2:
        raise ValueError(f"{path}: found one column ({header[0]!r}); expected features and a "
                         "target separated by commas.")
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise ValueError(f"{path}: the column names {duplicates} appear more than once.")
    if not rows:
        raise ValueError(f"{path}: only a header row; no data.")
    for line, row in rows:
        if len(row) != len(header):
            raise ValueError(f"{path}: line {line} has {len(row)} fields but the header has "
                             f"{len(header)}.")
    if target is None:
        target = header[-1]
    elif target not in header:
        raise ValueError(f"{path}: no column named {target!r}; the columns are: "
                         f"{', '.join(header)}.")
    t = header.index(target)
    columns = list(zip(*(row for _, row in rows), strict=True))
    first_line = rows[0][0]
    feature_names = [h for j, h in enumerate(header) if j != t]
    features = [_to_floats(list(columns[j]), header[j], first_line, path)
                for j in range(len(header)) if j != t]
    X = np.column_stack(features)
    if not np.isfinite(X).all():
        j, i = np.argwhere(~np.isfinite(X).T)[0]
        raise ValueError(f"{path}: column {feature_names[j]!r} holds {X[i, j]} on line "
                         f"{rows[i][0]}; remove or impute non-finite values.")

    values = [v.strip() for v in columns[t]]
    empty = [i for i, v in enumerate(values) if v == ""]
    if empty:
        raise ValueError(f"{path}: the target column {target!r} is empty on line "
                         f"{rows[empty[0]][0]}; drop the rows without a target.")
    if all(_looks_numeric(v) for v in values):
        y = np.array([float(v) for v in values])
        if not np.isfinite(y).all():
            i = int(np.flatnonzero(~np.isfinite(y))[0])
            raise ValueError(f"{path}: the target column {target!r} holds {y[i]} on line "
                             f"{rows[i][0]}; drop that row.")
    else:
        y = np.array(values)
    y, task = _infer_task(y, task, str(path))
    class_names = _class_names(y) if task == "classification" else None
    return Dataset(X, y, task=task, name=path.name, feature_names=feature_names,
                   class_names=class_names)


# --- NPZ -----------------------------------------------------------------------------------


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
            return _images_to_features(arr, path)
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
    from chainrule._io import MAX_DATA_BYTES

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
    from chainrule._io import check_input_file

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
    y, task = _infer_task(arrays["y"], task, str(path))
    X_test = y_test = None
    if "X_test" in arrays:
        X_test = _npz_features(arrays["X_test"], "X_test", path)
        y_test, _ = _infer_task(arrays["y_test"], task, str(path))
        if X_test.shape[1] != X.shape[1]:
            raise ValueError(f"{path}: X has {X.shape[1]} features but X_test has "
                             f"{X_test.shape[1]}.")
    for features, targets, split in ((X, y, ""), (X_test, y_test, "_test")):
        if targets is not None and len(targets) != len(features):
            raise ValueError(f"{path}: X{split} has {len(features)} rows but y{split} has "
                             f"{len(targets)}.")
    class_names = _class_names(y) if task == "classification" else None
    return Dataset(X, y, X_test, y_test, task=task, name=path.name, class_names=class_names)


# --- scikit-learn's bundled data sets --------------------------------------------------------


def _breast_cancer_features() -> list[str]:
    parts = ["radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity",
             "concave points", "symmetry", "fractal dimension"]
    return ([f"mean {p}" for p in parts] + [f"{p} error" for p in parts]
            + [f"worst {p}" for p in parts])


#: Built-in data sets: name -> (files in sklearn/datasets/data, shape of X, number of classes
#: (0 for regression), feature names, class names (None: read from the file's first line)).
BUILTINS = {
    "digits": (("digits.csv.gz",), (1797, 64), 10,
               [f"pixel_{r}_{c}" for r in range(8) for c in range(8)],
               [str(d) for d in range(10)]),
    "breast_cancer": (("breast_cancer.csv",), (569, 30), 2, _breast_cancer_features(), None),
    "iris": (("iris.csv",), (150, 4), 3,
             ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
             None),
    "wine": (("wine_data.csv",), (178, 13), 3,
             ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
              "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
              "od280/od315_of_diluted_wines", "proline"], None),
    "diabetes": (("diabetes_data_raw.csv.gz", "diabetes_target.csv.gz"), (442, 10), 0,
                 ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"], None),
}


def _sklearn_data_folder() -> Path:
    """scikit-learn's ``datasets/data`` folder, found without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The built-in data sets are the files that scikit-learn ships, and scikit-learn is "
            'not installed: pip install "chainrule[sklearn]", or pass a CSV or NPZ file.'
        )
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: this scikit-learn has no such data file; reinstall "
                                'it (pip install "chainrule[sklearn]") or pass a CSV or NPZ file.')
    return _read_bytes(path).decode("utf-8")


def load_builtin(name: str) -> Dataset:
    """Load one of the small data sets that scikit-learn ships: :data:`BUILTINS`.

    ============== ========= ======== =========================================
    name           samples   features target
    ============== ========= ======== =========================================
    digits         1797      64       10 classes (8x8 images, pixels 0-16)
    breast_cancer  569       30       2 classes (malignant, benign)
    iris           150       4        3 classes
    wine           178       13       3 classes
    diabetes       442       10       regression (disease progression, 25-346)
    ============== ========= ======== =========================================

    The values are those of scikit-learn's ``load_<name>()``, except diabetes: its features are
    the raw ones (age in years, sex 1/2, ...; scikit-learn's default centres and scales them),
    which a :class:`Standardizer` puts on a common scale. scikit-learn is never imported, only
    its data files are read (a few milliseconds, against about a second for the import).
    """
    key = name.lower().replace("-", "_")
    if key not in BUILTINS:
        raise ValueError(f"Unknown built-in data set {name!r}; choose one of "
                         f"{', '.join(BUILTINS)}.")
    files, shape, n_classes, feature_names, class_names = BUILTINS[key]
    folder = _sklearn_data_folder()
    if key == "diabetes":
        X = np.loadtxt(io.StringIO(_read_text(folder / files[0])))
        y = np.loadtxt(io.StringIO(_read_text(folder / files[1])))
    else:
        text = _read_text(folder / files[0])
        if class_names is None:  # first line: n_samples, n_features, class names...
            first, text = text.split("\n", 1)
            class_names = [c.strip() for c in first.split(",")[2:]]
        table = np.loadtxt(io.StringIO(text), delimiter=",")
        if table.ndim != 2 or table.shape[1] != shape[1] + 1:
            raise ValueError(f"{folder / files[0]}: expected {shape[1] + 1} columns; got "
                             f"shape {table.shape}. Is this scikit-learn's copy intact?")
        X, y = table[:, :-1], table[:, -1]
    if X.shape != shape or y.shape != (shape[0],):
        raise ValueError(f"scikit-learn's {name} data has shapes {X.shape} and {y.shape}; "
                         f"expected {shape} and ({shape[0]},). Is the installation intact?")
    if not n_classes:
        return Dataset(np.ascontiguousarray(X), y, task="regression", name=key,
                       feature_names=list(feature_names))
    y = y.astype(np.int64)
    if len(class_names) != n_classes or set(np.unique(y).tolist()) != set(range(n_classes)):
        raise ValueError(f"scikit-learn's {name} data should have {n_classes} classes "
                         f"0..{n_classes - 1}; found labels {np.unique(y).tolist()[:12]}.")
    return Dataset(np.ascontiguousarray(X), y, task="classification", name=key,
                   feature_names=list(feature_names), class_names=list(class_names))


# --- one entry point -----------------------------------------------------------------------


def load_dataset(spec, target: str | None = None, task: str | None = None) -> Dataset:
    """Load a data set from one string, as ``chainrule train --data`` does.

    ``spec`` is, in this order: a built-in name (:data:`BUILTINS`), ``"mnist"`` or
    ``"fashion-mnist"`` (:func:`find_data_folder`), a folder of IDX files, or a file ending in
    ``.csv`` (or ``.csv.gz``) or ``.npz``. ``target`` names a CSV's target column.
    """
    text = os.fspath(spec)
    if not str(text).strip():
        raise ValueError("the data set name is empty; give a built-in name such as digits, a "
                         ".csv or .npz file, or a folder of IDX files.")
    key = text.lower().replace("-", "_")
    path = Path(text)
    if key in BUILTINS or text.lower() in NAMED_IDX or path.is_dir():
        if target is not None:
            raise ValueError(f"target={target!r} names a CSV column, but {text} is not a CSV "
                             "file; leave it out.")
        if key in BUILTINS:
            return load_builtin(key)
        if text.lower() in NAMED_IDX:
            name = NAMED_IDX[text.lower()]
            return load_idx_folder(find_data_folder(name), name=name)
        return load_idx_folder(path)
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] == [".csv"] or suffixes[-2:] == [".csv", ".gz"]:
        return load_csv(path, target=target, task=task)
    if suffixes[-1:] == [".npz"]:
        if target is not None:
            raise ValueError(f"target={target!r} names a CSV column; an NPZ file has its "
                             "targets in the array y.")
        return load_npz(path, task=task)
    options = (f"a built-in data set ({', '.join(BUILTINS)}), mnist or fashion-mnist, a folder "
               "of IDX files, a .csv file or a .npz file")
    if path.exists():
        from chainrule._io import check_input_file

        check_input_file(path, "data file")  # a device or a FIFO: say so
        raise ValueError(f"Cannot tell how to read {text}: expected {options}.")
    raise ValueError(f"Unknown data set {text!r} (no such file or folder either); use {options}.")


# --- splitting and labels ------------------------------------------------------------------


def _test_count(test_size, n: int) -> int:
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float, np.integer,
                                                                   np.floating)):
        raise ValueError(f"test_size must be a fraction in (0, 1) or a count; got {test_size!r}.")
    if isinstance(test_size, (float, np.floating)):
        if not 0.0 < test_size < 1.0:
            raise ValueError(f"test_size must be in (0, 1) as a fraction; got {test_size}.")
        n_test = math.ceil(test_size * n)
    else:
        n_test = int(test_size)
    if not 1 <= n_test <= n - 1:
        raise ValueError(f"test_size={test_size} leaves {n_test} of {n} samples for testing; "
                         "both the training and the test set need at least one.")
    return n_test


def train_test_split(X, y, test_size: float = 0.2, stratify: bool = True, seed: int = 0):
    """Split ``X`` and ``y`` into training and test sets: ``X_train, X_test, y_train, y_test``.

    ``test_size`` is a fraction (the test set gets ``ceil(test_size * n)`` samples, as in
    scikit-learn) or a count. With ``stratify`` (for class labels) each class gets its share of
    the test set, ``n_c * n_test / n`` rounded down or up, so the proportions hold within one
    sample; the shares left over after rounding down go to the classes with the largest
    remainders. The same ``seed`` gives the same split.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)}; they must be equal.")
    n_test = _test_count(test_size, n)
    rng = np.random.default_rng(seed)
    if not stratify:
        order = rng.permutation(n)
        test, train = order[:n_test], order[n_test:]
        return X[train], X[test], y[train], y[test]

    if y.ndim != 1:
        raise ValueError(f"stratify=True needs 1-D class labels; y has shape {y.shape}. Pass "
                         "stratify=False.")
    if y.dtype.kind == "f" and not _is_integer_valued(y):
        raise ValueError(f"stratify=True needs class labels, but y holds values such as "
                         f"{y[~(y == np.round(y))][0]}; for regression targets pass "
                         "stratify=False.")
    _, labels = np.unique(y, return_inverse=True)
    labels = labels.reshape(-1)
    counts = np.bincount(labels)
    ideal = counts * (n_test / n)
    share = np.floor(ideal).astype(np.int64)
    # The largest remainders get the samples that rounding down left over (ties: random).
    tie_break = rng.random(len(counts))
    order = np.lexsort((tie_break, -(ideal - share)))
    share[order[: n_test - share.sum()]] += 1

    by_class = np.split(np.argsort(labels, kind="stable"), np.cumsum(counts)[:-1])
    test_parts, train_parts = [], []
    for members, k in zip(by_class, share, strict=True):
        members = rng.permutation(members)
        test_parts.append(members[:k])
        train_parts.append(members[k:])
    test = rng.permutation(np.concatenate(test_parts))
    train = rng.permutation(np.concatenate(train_parts))
    return X[train], X[test], y[train], y[test]


def encode_labels(y) -> tuple[np.ndarray, np.ndarray]:
    """Map class labels to indices: ``classes, indices`` with ``classes[indices] == y``.

    ``classes`` are the sorted distinct labels (numbers or strings); ``indices`` are int64 in
    ``0..len(classes) - 1``.

    >>> encode_labels(["cat", "dog", "cat"])
    (array(['cat', 'dog'], dtype='<U3'), array([0, 1, 0]))
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"encode_labels needs 1-D labels; got shape {y.shape}.")
    if len(y) == 0:
        raise ValueError("encode_labels got no labels (an empty array).")
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError(f"labels contain NaN at index {int(np.flatnonzero(np.isnan(y))[0])}; "
                         "drop the unlabelled samples.")
    if y.dtype.kind not in "iufbUS":
        raise ValueError(f"labels must be numbers or strings; got dtype {y.dtype}.")
    classes, indices = np.unique(y, return_inverse=True)
    return classes, indices.reshape(-1).astype(np.int64)


def one_hot(indices, n_classes: int | None = None, dtype=np.float32) -> np.ndarray:
    """Rows of zeros with a one at each index: shape ``(len(indices), n_classes)``.

    ``n_classes`` defaults to ``max(indices) + 1``.

    >>> one_hot([0, 2], 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    idx = np.asarray(indices)
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise ValueError(f"one_hot needs a 1-D array of integer class indices; got shape "
                         f"{idx.shape} of {idx.dtype}. Map labels to indices with "
                         "encode_labels first.")
    if n_classes is None:
        n_classes = int(idx.max()) + 1 if len(idx) else 0
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer; got {n_classes!r}.")
    bad = (idx < 0) | (idx >= n_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"class index {idx[i]} at position {i} is outside 0..{n_classes - 1}.")
    out = np.zeros((len(idx), int(n_classes)), dtype=dtype)
    out[np.arange(len(idx)), idx] = 1
    return out


# --- feature scaling -----------------------------------------------------------------------


def _features(X, who: str) -> np.ndarray:
    X = as_float_array(X, "X")
    if X.ndim != 2:
        raise ValueError(f"{who} needs a 2-D array (samples, features); got shape {X.shape}.")
    return X


def _number_list(config: dict, key: str, who: str) -> np.ndarray:
    value = config.get(key)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 1 or not np.isfinite(arr).all():
        raise ValueError(f"{who} config: {key!r} must be a list of finite numbers; got "
                         f"{str(value)[:60]}.")
    return arr


class Scaler:
    """Base class: ``fit`` on training features, then ``transform`` any features alike.

    Subclasses set ``name`` (their key in :data:`SCALERS`) and implement ``fit``, ``transform``,
    ``to_config`` and ``from_config``. Fitted state ends in ``_``; ``fit`` returns ``self``.
    float32 features stay float32.
    """

    name = ""

    def fit(self, X) -> Scaler:
        raise NotImplementedError

    def transform(self, X) -> np.ndarray:
        raise NotImplementedError

    def fit_transform(self, X) -> np.ndarray:
        return self.fit(X).transform(X)

    def to_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> Scaler:
        raise NotImplementedError

    def _check_fitted(self, X=None) -> np.ndarray | None:
        if getattr(self, "n_features_", None) is None:
            raise ValueError(f"{type(self).__name__} is not fitted yet; call fit(X_train) first.")
        if X is None:
            return None
        X = _features(X, f"{type(self).__name__}.transform")
        if X.shape[1] != self.n_features_:
            raise ValueError(f"{type(self).__name__} was fitted on {self.n_features_} features; "
                             f"got {X.shape[1]}.")
        return X

    def _check_fit_input(self, X) -> np.ndarray:
        X = _features(X, f"{type(self).__name__}.fit")
        if len(X) == 0:
            raise ValueError(f"{type(self).__name__}.fit got no samples.")
        if not np.isfinite(X).all():
            i, j = np.argwhere(~np.isfinite(X))[0]
            raise ValueError(f"X holds {X[i, j]} at row {i}, column {j}; remove or impute "
                             "non-finite values before scaling.")
        return X

    def __repr__(self) -> str:
        n = getattr(self, "n_features_", None)
        return f"{type(self).__name__}({'unfitted' if n is None else f'{n} features'})"


def _check_scaled(scaler: Scaler, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """``Z``, or a ValueError naming the feature whose finite values overflowed when scaled."""
    if np.isfinite(Z).all():
        return Z
    bad = ~np.isfinite(Z)
    if not np.isfinite(X).all():
        i, j = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(f"X holds {X[i, j]} at row {i}, column {j}; remove or impute "
                         "non-finite values before scaling.")
    i, j = np.argwhere(bad)[0]
    raise ValueError(
        f"Scaling overflowed {Z.dtype}: feature {j} of sample {i} is {X[i, j]:.6g}, finite, but "
        f"{type(scaler).__name__} maps it beyond the largest {Z.dtype} (its training values were "
        "nearly constant or the values are too large for this type). Rescale that column, or "
        "use another scaling (minmax or none)."
    )


class Standardizer(Scaler):
    r"""Centre each feature and divide by its standard deviation: :math:`(x - \mu) / \sigma`.

    A constant feature (all values equal) gets :math:`\sigma = 1`, so it becomes 0 instead of
    dividing by zero.
    """

    name = "standard"

    def __init__(self):
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.n_features_: int | None = None

    def fit(self, X) -> Standardizer:
        X = self._check_fit_input(X)
        self.mean_ = X.mean(axis=0, dtype=np.float64)
        std = X.std(axis=0, dtype=np.float64)
        constant = X.max(axis=0) == X.min(axis=0)
        self.scale_ = np.where(constant | (std == 0), 1.0, std)
        self.n_features_ = X.shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        X = self._check_fitted(X)
        with np.errstate(over="ignore", invalid="ignore"):
            Z = (X - self.mean_.astype(X.dtype)) / self.scale_.astype(X.dtype)
        return _check_scaled(self, X, Z)

    def inverse_transform(self, Z) -> np.ndarray:
        Z = self._check_fitted(Z)
        return Z * self.scale_.astype(Z.dtype) + self.mean_.astype(Z.dtype)

    def to_config(self) -> dict:
        self._check_fitted()
        return {"type": self.name, "mean": self.mean_.tolist(), "scale": self.scale_.tolist()}

    @classmethod
    def from_config(cls, config: dict) -> Standardizer:
        mean = _number_list(config, "mean", "Standardizer")
        scale = _number_list(config, "scale", "Standardizer")
        if mean.shape != scale.shape or (scale <= 0).any():
            raise ValueError("Standardizer config: 'mean' and 'scale' must have the same length "
                             "and every scale must be positive.")
        self = cls()
        self.mean_, self.scale_, self.n_features_ = mean, scale, len(mean)
        return self


class MinMaxScaler(Scaler):
    r"""Map each feature's training range onto ``feature_range``:
    :math:`lo + (x - x_{min}) (hi - lo) / (x_{max} - x_{min})`.

    A constant feature maps to ``lo``.
    """

    name = "minmax"

    def __init__(self, feature_range: tuple[float, float] = (0.0, 1.0)):
        lo, hi = (float(v) for v in feature_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"feature_range must be (low, high) with low < high; got "
                             f"{tuple(feature_range)}.")
        self.feature_range = (lo, hi)
        self.data_min_: np.ndarray | None = None
        self.data_max_: np.ndarray | None = None
        self.n_features_: int | None = None

    def _coefficients(self, dtype) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.feature_range
        span = self.data_max_ - self.data_min_
        scale = (hi - lo) / np.where(span == 0, 1.0, span)
        return scale.astype(dtype), (lo - self.data_min_ * scale).astype(dtype)

    def fit(self, X) -> MinMaxScaler:
        X = self._check_fit_input(X)
        self.data_min_ = X.min(axis=0).astype(np.float64)
        self.data_max_ = X.max(axis=0).astype(np.float64)
        self.n_features_ = X.shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        X = self._check_fitted(X)
        with np.errstate(over="ignore", invalid="ignore"):
            scale, shift = self._coefficients(X.dtype)
            Z = X * scale + shift
        return _check_scaled(self, X, Z)

    def inverse_transform(self, Z) -> np.ndarray:
        Z = self._check_fitted(Z)
        scale, shift = self._coefficients(Z.dtype)
        return (Z - shift) / scale

    def to_config(self) -> dict:
        self._check_fitted()
        return {"type": self.name, "feature_range": list(self.feature_range),
                "data_min": self.data_min_.tolist(), "data_max": self.data_max_.tolist()}

    @classmethod
    def from_config(cls, config: dict) -> MinMaxScaler:
        bounds = _number_list(config, "feature_range", "MinMaxScaler")
        if bounds.shape != (2,):
            raise ValueError(f"MinMaxScaler config: 'feature_range' must be [low, high]; got "
                             f"{config.get('feature_range')}.")
        self = cls(tuple(bounds))
        data_min = _number_list(config, "data_min", "MinMaxScaler")
        data_max = _number_list(config, "data_max", "MinMaxScaler")
        if data_min.shape != data_max.shape or (data_max < data_min).any():
            raise ValueError("MinMaxScaler config: 'data_min' and 'data_max' must have the same "
                             "length, with data_min <= data_max.")
        self.data_min_, self.data_max_, self.n_features_ = data_min, data_max, len(data_min)
        return self


class NoScaling(Scaler):
    """Leave the features as they are (``--scale none``)."""

    name = "none"

    def __init__(self):
        self.n_features_: int | None = None

    def fit(self, X) -> NoScaling:
        self.n_features_ = _features(X, "NoScaling.fit").shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        return _features(X, "NoScaling.transform")

    def to_config(self) -> dict:
        return {"type": self.name}

    @classmethod
    def from_config(cls, config: dict) -> NoScaling:
        return cls()


#: Scaler name -> class: the one list of names (``--scale`` choices, error messages).
SCALERS: dict[str, type[Scaler]] = {cls.name: cls for cls in (Standardizer, MinMaxScaler,
                                                               NoScaling)}


def make_scaler(name: str | None) -> Scaler:
    """A new, unfitted scaler by name: ``"standard"``, ``"minmax"`` or ``"none"`` (or None)."""
    key = "none" if name is None else str(name).lower()
    if key not in SCALERS:
        raise ValueError(f"Unknown scaler {name!r}; choose one of {', '.join(SCALERS)}.")
    return SCALERS[key]()


def scaler_from_config(config: dict) -> Scaler:
    """Rebuild a fitted scaler from its ``to_config()`` (as stored in a model file)."""
    if not isinstance(config, dict) or config.get("type") not in SCALERS:
        kind = config.get("type") if isinstance(config, dict) else config
        raise ValueError(f"Unknown scaler config {str(kind)[:60]!r}; the type must be one of "
                         f"{', '.join(SCALERS)}.")
    return SCALERS[config["type"]].from_config(config)
