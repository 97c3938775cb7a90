"""The safetensors file format, read and written with NumPy and the standard library.

A safetensors file is::

    8 bytes   N, the length of the header, unsigned little-endian
    N bytes   a UTF-8 JSON object, padded with spaces to a multiple of 8 bytes:
              {"__metadata__": {"key": "value", ...},                      (optional, str -> str)
               "name": {"dtype": "F32", "shape": [out, in], "data_offsets": [begin, end]}, ...}
    the rest  the tensors' bytes, little-endian and C-contiguous; ``data_offsets`` count from
              the first byte after the header and together cover this buffer exactly

Nothing in it is executable, which is why chainrule stores models this way rather than in a
pickle. The files are the ones the `safetensors <https://github.com/huggingface/safetensors>`_
package reads and writes (``safetensors.numpy.load_file``, ``safetensors.torch.load_file``).

:func:`write_safetensors` is atomic: it writes a temporary file in the target's folder, flushes and
fsyncs it, then renames it over the target, so an interrupted save leaves the old file as it was.
:func:`read_safetensors` checks every field and raises :class:`ModelFileError` naming the file and
what is wrong with it; the arrays it returns are writable copies in native byte order.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import numpy as np

from chainrule._io import check_input_file

__all__ = ["DTYPES", "ModelFileError", "read_safetensors", "write_safetensors"]

#: safetensors dtype code -> little-endian NumPy dtype. The one list of supported types.
DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "F16": np.dtype("<f2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F64": np.dtype("<f8"),
}
_CODES = {(dt.kind, dt.itemsize): code for code, dt in DTYPES.items()}

# The safetensors reference implementation refuses headers above 100 MB; so do we, which also
# tells a foreign file (whose first 8 bytes read as an absurd length) from a truncated one.
MAX_HEADER_BYTES = 100_000_000
_METADATA_KEY = "__metadata__"


class ModelFileError(ValueError):
    """A model or tensor file that cannot be read: truncated, corrupted or not safetensors."""


# --- writing ---------------------------------------------------------------------------------


def _dtype_code(name: str, arr: np.ndarray) -> str:
    code = _CODES.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise ValueError(
            f"Tensor {name!r} has dtype {arr.dtype}, which safetensors cannot store; supported: "
            f"{', '.join(str(dt) for dt in DTYPES.values())} (as {', '.join(DTYPES)}). "
            "Convert it first, e.g. arr.astype(numpy.float32)."
        )
    return code


def _check_metadata(metadata) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValueError(
            f"metadata must be a dict of str -> str; got {type(metadata).__name__}."
        )
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise ValueError(f"metadata keys must be str; got {key!r} ({type(key).__name__}).")
        if not isinstance(value, str):
            raise ValueError(
                f"metadata[{key!r}] must be a str; got {type(value).__name__} {value!r}. "
                "safetensors metadata maps strings to strings: store structured values with "
                "json.dumps(...)."
            )
    return dict(metadata)


def _prepare(tensors) -> list[tuple[str, str, np.ndarray]]:
    """Validate the tensors; return (name, code, little-endian C-contiguous array) in file order.

    The order is the one of the reference implementation: larger items first, then by name, so
    that with the header padded to 8 bytes every tensor starts at a multiple of its item size.
    """
    if not isinstance(tensors, dict):
        raise ValueError(f"tensors must be a dict of name -> array; got {type(tensors).__name__}.")
    prepared = []
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise ValueError(f"Tensor names must be str; got {name!r} ({type(name).__name__}).")
        if name == _METADATA_KEY:
            raise ValueError(f"{_METADATA_KEY!r} is reserved for metadata; rename that tensor.")
        arr = np.asarray(value)
        code = _dtype_code(name, arr)
        arr = np.asarray(arr, dtype=DTYPES[code], order="C")  # keeps 0-d arrays 0-d
        prepared.append((name, code, arr))
    prepared.sort(key=lambda item: (-item[2].dtype.itemsize, item[0]))
    return prepared


def _header_bytes(prepared, metadata: dict[str, str]) -> bytes:
    header: dict[str, object] = {}
    if metadata:
        header[_METADATA_KEY] = metadata
    offset = 0
    for name, code, arr in prepared:
        header[name] = {"dtype": code, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + arr.nbytes]}
        offset += arr.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return raw + b" " * (-len(raw) % 8)


def _write_array(fh, arr: np.ndarray) -> None:
    if arr.size:
        fh.write(arr.reshape(-1).view(np.uint8).data)


def write_safetensors(path, tensors: dict[str, np.ndarray],
                      metadata: dict[str, str] | None = None, *, replace: bool = True) -> Path:
    """Write ``tensors`` (and string ``metadata``) to ``path`` in safetensors format, atomically.

    The file is written to a temporary file in the same folder, flushed and fsynced, then renamed
    over ``path`` with :func:`os.replace`. If anything fails on the way (an error, a full disk,
    Ctrl-C) the temporary file is removed and an existing ``path`` is left untouched.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder must exist.
    tensors : dict of str -> array
        Names and arrays of any of the dtypes in :data:`DTYPES` (bool, int8-64, uint8-64,
        float16/32/64). Arrays are stored C-contiguous and little-endian, whatever their layout.
    metadata : dict of str -> str, optional
        Stored under ``"__metadata__"``. Use ``json.dumps`` for structured values.
    replace : bool
        With False, an existing ``path`` is never overwritten (FileExistsError instead).

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> f = Path(tempfile.mkdtemp()) / "w.safetensors"
    >>> _ = write_safetensors(f, {"0.weight": np.eye(2, dtype=np.float32)}, {"note": "identity"})
    >>> tensors, meta = read_safetensors(f)
    >>> tensors["0.weight"].tolist(), meta
    ([[1.0, 0.0], [0.0, 1.0]], {'note': 'identity'})
    """
    from chainrule._io import atomic_write

    metadata = _check_metadata(metadata)
    prepared = _prepare(tensors)
    header = _header_bytes(prepared, metadata)

    def write(fh) -> None:
        fh.write(len(header).to_bytes(8, "little"))
        fh.write(header)
        for _, _, arr in prepared:
            _write_array(fh, arr)

    return atomic_write(path, write, what="the model", replace=replace)


# --- reading ---------------------------------------------------------------------------------

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"PK\x03\x04", "a ZIP archive (a PyTorch .pt/.pth checkpoint or a NumPy .npz?)"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\x89HDF", "an HDF5 file (a Keras .h5 model?)"),
    (b"GGUF", "a GGUF file"),
)


def _describe_foreign(head: bytes) -> str:
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return what
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle (chainrule never unpickles: a pickle can run code)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of an unknown kind"
    if all(c.isprintable() or c in "\r\n\t" for c in text):
        return f"text ({text!r}...)"
    return "binary data of an unknown kind"


#: Most dimensions and largest dimension of a tensor (NumPy allows 32 and 2**63 - 1 elements).
MAX_DIMS = 32
MAX_DIM = 2**48

#: Longest integer literal accepted in a header (Python refuses to convert integers of more than
#: 4300 digits, and no shape or offset needs more than 20).
MAX_INT_DIGITS = 30


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {digits:,} digits")
    return int(text)


def _parse_constant(text: str):
    raise ValueError(f"{text} is not a JSON number")


def bounded_json(text: str, object_pairs_hook=None):
    """``json.loads`` that refuses nesting deeper than the recursion limit, integers longer than
    :data:`MAX_INT_DIGITS` digits and NaN/Infinity, all as ValueError."""
    try:
        return json.loads(text, parse_int=_parse_int, parse_constant=_parse_constant,
                          object_pairs_hook=object_pairs_hook)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the header names {key!r} twice")
        seen[key] = value
    return seen


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _parse_entry(
    name: str, entry, fail: Callable[[str], NoReturn]
) -> tuple[np.dtype, tuple[int, ...], int, int]:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        fail(f"tensor {name!r}: expected an object with exactly dtype, shape and data_offsets; "
             f"got {str(entry)[:80]}")
    code = entry["dtype"]
    if code not in DTYPES:
        fail(f"tensor {name!r} has dtype {code!r}, which chainrule cannot read "
             f"(supported: {', '.join(DTYPES)})")
    shape = entry["shape"]
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        fail(f"tensor {name!r}: shape must be a list of non-negative integers; got {shape!r}")
    if len(shape) > MAX_DIMS or any(d > MAX_DIM for d in shape):
        fail(f"tensor {name!r}: shape {shape} is beyond what any file can hold (at most "
             f"{MAX_DIMS} dimensions of at most {MAX_DIM:,})")
    offsets = entry["data_offsets"]
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(_is_int(o) for o in offsets) or not 0 <= offsets[0] <= offsets[1]):
        fail(f"tensor {name!r}: data_offsets must be [begin, end] with 0 <= begin <= end; "
             f"got {offsets!r}")
    dtype = DTYPES[code]
    begin, end = offsets
    needed = math.prod(shape) * dtype.itemsize
    if end - begin != needed:
        fail(f"tensor {name!r}: shape {tuple(shape)} of {code} needs {needed:,} bytes but "
             f"data_offsets {offsets} span {end - begin:,}")
    return dtype, tuple(shape), begin, end


def read_safetensors(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file: ``(tensors, metadata)``, validating every field first.

    Returns
    -------
    tensors : dict of str -> ndarray
        Writable, C-contiguous copies in native byte order, in the file's order.
    metadata : dict of str -> str
        The ``"__metadata__"`` object, or ``{}``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ModelFileError
        The file is not safetensors (a PNG, a pickle, a text file...), or is truncated or
        corrupted: a header length beyond the file, a header that is not UTF-8 JSON, an unknown
        dtype, a shape that does not match its bytes, offsets that overlap, leave gaps or run
        past the end, or bytes after the last tensor. The message starts with the file's name.
    """
    path = check_input_file(path, "model file")

    def fail(message: str) -> NoReturn:
        raise ModelFileError(f"{path}: {message}.")

    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        n, header = _read_header(fh, size, fail)
        metadata = header.pop(_METADATA_KEY, {})
        if not isinstance(metadata, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            fail(f"corrupted: {_METADATA_KEY} must map strings to strings; got "
                 f"{str(metadata)[:80]}")
        entries = [(name, *_parse_entry(name, entry, fail)) for name, entry in header.items()]
        _check_layout(entries, size - 8 - n, fail)
        tensors = _read_tensors(fh, 8 + n, entries, fail)
    return tensors, dict(metadata)


def _read_header(fh, size: int, fail: Callable[[str], NoReturn]) -> tuple[int, dict]:
    """The header's length ``n`` and its JSON object, read from the start of ``fh`` (a file of
    ``size`` bytes); a foreign, truncated or corrupted header fails with what it looks like."""
    head = fh.read(8)
    if size < 8:
        what = "empty" if size == 0 else f"only {size} bytes long"
        fail(f"not a safetensors file: it is {what} (a safetensors file starts with an "
             "8-byte header length)")
    n = int.from_bytes(head, "little")
    start = fh.read(1)
    if start == b"" and n <= MAX_HEADER_BYTES:
        fail(f"truncated: the header says its JSON is {n:,} bytes but the file ends after "
             "the length field")
    if n > MAX_HEADER_BYTES or start != b"{":
        fail(f"not a safetensors file: it looks like {_describe_foreign(head + start)}")
    if n < 2:
        fail(f"corrupted: a header length of {n} cannot hold a JSON object")
    if n > size - 8:
        fail(f"truncated: the header says its JSON is {n:,} bytes but only {size - 8:,} "
             "bytes follow the length field")
    raw = start + fh.read(n - 1)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"corrupted: the header is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at "
             f"offset {8 + exc.start:,})")
    try:
        return n, bounded_json(text, object_pairs_hook=_no_duplicates)  # "{...}": a dict
    except ValueError as exc:  # JSONDecodeError and duplicate names
        fail(f"corrupted: the header is not valid JSON ({exc})")


def _check_layout(entries, data_size: int, fail: Callable[[str], NoReturn]) -> None:
    """The tensors' byte ranges cover the ``data_size`` bytes after the header exactly: none
    runs past the end, none overlaps another, no gap between them and nothing after the last."""
    declared = max((e[4] for e in entries), default=0)
    if declared > data_size:
        fail(f"truncated: header says {declared:,} bytes of data but only {data_size:,} "
             "are present")
    position, previous = 0, None
    for name, _, _, begin, end in sorted(entries, key=lambda e: (e[3], e[4])):
        if begin < position:
            fail(f"corrupted: tensors {previous!r} and {name!r} overlap (bytes "
                 f"{begin:,} to {position:,})")
        if begin > position:
            where = (f"between {previous!r} and {name!r}" if previous is not None
                     else f"before {name!r}")
            fail(f"corrupted: {begin - position:,} bytes {where} belong to no tensor")
        position, previous = end, name
    if declared < data_size:
        fail(f"corrupted: {data_size - declared:,} bytes of trailing garbage after the "
             "last tensor")


def _read_tensors(fh, data_start: int, entries,
                  fail: Callable[[str], NoReturn]) -> dict[str, np.ndarray]:
    """Each tensor read straight into a new array, then put in native byte order."""
    tensors = {}
    for name, dtype, shape, begin, end in entries:
        try:
            arr = np.empty(shape, dtype=dtype)
        except MemoryError:
            total = sum(e - b for *_, b, e in entries)
            fail(f"too large for this machine's memory: tensor {name!r} of shape {shape} needs "
                 f"{end - begin:,} bytes ({total:,} for all tensors); load it on a machine with "
                 "more memory, or save a smaller model")
        if end > begin:
            fh.seek(data_start + begin)
            got = fh.readinto(arr.reshape(-1).view(np.uint8).data)
            if got != end - begin:  # the file shrank while we read it
                fail(f"truncated: tensor {name!r} needs {end - begin:,} bytes but only "
                     f"{got:,} could be read")
        native = dtype.newbyteorder("=")
        tensors[name] = arr if arr.dtype == native else arr.astype(native)
    return tensors
