"""Hundreds of bad inputs, each with its expected outcome, run as a careless or hostile user would.

Five areas: formulas, model files, data files, training faults, and command-line and API
arguments. Each case states the exit code, a pattern for the one line the user reads, and
(implicitly) that nothing in the working folder changes: no file replaced, no temporary file
left. Every case runs under a time limit and an address-space limit, so a hang or a memory
blow-up fails the case instead of stalling the suite. Most cases run in this process through
``chainrule.cli.main(argv)``; the ones that used to hang or fill memory (FIFOs, gzip bombs,
absurd tensor shapes, runaway constants) run in a subprocess with ``RLIMIT_AS`` and a timeout.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import resource
import signal
import struct
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import chainrule
from chainrule.cli import main

#: Words of Python, NumPy or the OS that must never reach a user.
FOREIGN = re.compile(
    r"Traceback|Errno|surrogates not allowed|array is too big|RuntimeWarning|Exceeds the limit|"
    r"[Ii]nternal error|has no attribute|unhashable|list index|tuple index|object is not|"
    r"codec can't|Is a directory|invalid literal|could not convert|NoneType|"
    r"unsupported operand|not subscriptable|KeyError|IndexError|AttributeError|TypeError"
)

IN_PROCESS_SECONDS = 60  # generous: SymPy on a loaded 2-core machine
SUBPROCESS_SECONDS = 90
MEMORY_HEADROOM = 2 * 2**30  # bytes of address space a case may add to this process
SUBPROCESS_MEMORY = 3 * 2**30


@dataclass
class Case:
    id: str
    argv: list[str]
    rc: int
    line: str  # a regex that the last line of stderr must match (search, case-insensitive)
    sub: bool = False  # run in a subprocess (for cases that used to hang or blow up)
    may_create: tuple[str, ...] = ()  # files the case is allowed to create (rc 0 only)
    stdout: str | None = None  # a regex the stdout must match, for rc 0


CASES: list[Case] = []


def case(id, argv, rc, line, **kw):
    CASES.append(Case(id, list(argv), rc, line, **kw))


# --- the files the cases use -------------------------------------------------------------------

GOOD_CSV = "a,b,c,label\n" + "".join(
    f"{i % 7 * 0.5},{(i * 3) % 5 - 2},{i % 3},{'cat' if i % 2 else 'dog'}\n" for i in range(40)
)


def _csv(header, rows):
    return header + "\n" + "".join(r + "\n" for r in rows)


def _idx(arr: np.ndarray, code: int = 0x08) -> bytes:
    dtype = {0x08: ">u1", 0x0D: ">f4"}[code]
    header = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.astype(dtype).tobytes()


def _gzip_bomb(total_mib: int) -> bytes:
    """``total_mib`` MiB of zeros as a multi-member gzip file of a few KB per 1 MiB member."""
    member = gzip.compress(b"\0" * 2**20, compresslevel=9)
    return member * total_mib


def _safetensors(tensors: dict, meta: dict | str | None, raw_header: bytes | None = None):
    """A safetensors file, optionally with a hand-made header."""
    if raw_header is None:
        header, offset, body = {}, 0, b""
        for name, arr in tensors.items():
            data = np.ascontiguousarray(arr, "<f4").tobytes()
            header[name] = {"dtype": "F32", "shape": list(arr.shape),
                            "data_offsets": [offset, offset + len(data)]}
            offset += len(data)
            body += data
        if meta is not None:
            header["__metadata__"] = {"chainrule": meta if isinstance(meta, str)
                                      else json.dumps(meta), "format": "pt"}
        raw_header = json.dumps(header).encode()
        raw_header += b" " * (-len(raw_header) % 8)
        return len(raw_header).to_bytes(8, "little") + raw_header + body
    return len(raw_header).to_bytes(8, "little") + raw_header


def _write_files(root: Path) -> None:
    (root / "good.csv").write_text(GOOD_CSV)
    (root / "sub").mkdir()
    # No dropout layer, so the model's layers are Dense, ReLU, Dense, Softmax (layers.3 below).
    assert main(["train", "--data", "good.csv", "--layers", "4", "--epochs", "2", "-q",
                 "--dropout", "0", "--out", "model.safetensors"]) == 0
    (root / "existing.csv").write_text("old predictions\n")
    (root / "existing.png").write_bytes(b"old image")
    (root / "existing.safetensors").write_bytes((root / "model.safetensors").read_bytes())
    for name, text in DATA_FILES.items():
        (root / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    for name, arrays in NPZ_FILES.items():
        np.savez(root / name, **arrays)
    for name, files in IDX_FOLDERS.items():
        (root / name).mkdir()
        for fname, data in files.items():
            (root / name / fname).write_bytes(data)
    model = (root / "model.safetensors").read_bytes()
    for name, make in MODEL_FILES.items():
        (root / name).write_bytes(make(model))
    os.symlink("/dev/zero", root / "zero.csv")
    os.symlink("/dev/null", root / "null.safetensors")
    os.mkfifo(root / "fifo.csv")
    os.mkfifo(root / "fifo.safetensors")
    (root / "lying.npz").write_bytes(_lying_npz())


def _lying_npz() -> bytes:
    """An archive whose X declares 2e9 x 1000 float64 elements but holds 8 bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        head = b"\x93NUMPY\x01\x00"
        text = "{'descr': '<f8', 'fortran_order': False, 'shape': (2000000000, 1000), }"
        text += " " * (-(len(head) + 2 + len(text) + 1) % 64) + "\n"
        zf.writestr("X.npy", head + struct.pack("<H", len(text)) + text.encode() + b"\0" * 8)
        y = io.BytesIO()
        np.save(y, np.zeros(3))
        zf.writestr("y.npy", y.getvalue())
    return buf.getvalue()


# --- data files ---------------------------------------------------------------------------------

_ROWS = [f"{i},{i % 3},{i % 2}" for i in range(20)]
DATA_FILES: dict[str, str | bytes] = {
    "empty.csv": "",
    "blank.csv": "\n\n\n",
    "header_only.csv": "a,b,label\n",
    "one_column.csv": "label\n1\n2\n",
    "numeric_header.csv": "1,2,3\n4,5,6\n",
    "ragged.csv": _csv("a,b,label", ["1,2,0", "1,2", "3,4,1"]),
    "text_feature.csv": _csv("a,b,label", ["1,x,0", "2,y,1", "3,z,0"]),
    "big_cell.csv": _csv("a,b,label", ["1," + "7" * 200_000 + ",0", "2,3,1", "4,5,0"]),
    "big_text_cell.csv": _csv("a,b,label", ["1," + "x" * 200_000 + ",0", "2,3,1"]),
    "nan_feature.csv": _csv("a,b,label", ["1,nan,0", "2,3,1", "4,5,0"]),
    "inf_feature.csv": _csv("a,b,label", ["1,inf,0", "2,3,1", "4,5,0"]),
    "inf_target.csv": _csv("a,b,y", ["1,2,inf", "2,3,1.5", "4,5,0.25"]),
    "empty_target.csv": _csv("a,b,label", ["1,2,", "2,3,1", "4,5,0"]),
    "empty_feature.csv": _csv("a,b,label", ["1,,0", "2,3,1", "4,5,0"]),
    "single_class.csv": _csv("a,b,label", [f"{i},{i * 2},same" for i in range(10)]),
    "two_rows.csv": _csv("a,b,label", ["1,2,0", "3,4,1"]),
    "one_row.csv": _csv("a,b,label", ["1,2,0"]),
    "duplicate_columns.csv": _csv("a,a,label", ["1,2,0", "3,4,1"]),
    "latin1.csv": "a,b,label\n1,2,caf\xe9\n".encode("latin-1"),
    "binary.csv": bytes(range(256)) * 4,
    "nul.csv": b"a,b,label\n1,\0,0\n2,3,1\n",
    "bad_gzip.csv.gz": b"\x1f\x8b\x08\x00garbage-not-deflate",
    "truncated.csv.gz": gzip.compress(GOOD_CSV.encode())[:-20],
    "huge_values.csv": _csv("a,b,y", [f"{1e308 if i % 2 else -1e308},{i},{i * 0.5}"
                                      for i in range(20)]),
    "tiny_spread.csv": _csv("a,b,label", [f"{1 + (i % 2) * 5e-324},{i},{i % 2}"
                                          for i in range(20)]),
    "huge_target.csv": _csv("a,b,y", [f"{i},{i % 3},{(i + 1) * 1e20}" for i in range(30)]),
    "negative_zero.csv": _csv("a,b,label", ["-0,0,0", "0,-0,1", "1,1,0", "2,2,1"]),
    "semicolons.csv": _csv("a;b;label", ["1;2;0", "3;4;1"]),
    "only_commas.csv": ",,,\n,,,\n",
    "quote.csv": 'a,b,label\n"1,2,0\n',
    "features_only.csv": _csv("a,b,c", _ROWS),
    "mismatch_features.csv": _csv("p,q,label", ["1,2,cat", "3,4,dog"]),
    "unknown_label.csv": _csv("a,b,c,label", ["1,2,3,bird", "2,3,4,fish"]),
    "bomb.csv.gz": _gzip_bomb(400),
    "no_suffix": "a,b\n1,2\n",
    "data.txt": "a,b\n1,2\n",
}

NPZ_FILES = {
    "zero_features.npz": {"X": np.zeros((10, 0)), "y": np.arange(10) % 2},
    "zero_samples.npz": {"X": np.zeros((0, 3)), "y": np.zeros(0)},
    "no_y.npz": {"X": np.zeros((4, 3))},
    "one_d.npz": {"X": np.zeros(4), "y": np.zeros(4)},
    "length_mismatch.npz": {"X": np.zeros((4, 3)), "y": np.zeros(5)},
    "text_X.npz": {"X": np.array([["a", "b"], ["c", "d"]]), "y": np.zeros(2)},
    "nan_X.npz": {"X": np.full((4, 3), np.nan), "y": np.arange(4) % 2},
    "test_only_X.npz": {"X": np.zeros((4, 3)), "y": np.arange(4) % 2, "X_test": np.zeros((2, 3))},
    "test_width.npz": {"X": np.zeros((4, 3)), "y": np.arange(4) % 2, "X_test": np.zeros((2, 2)),
                       "y_test": np.zeros(2)},
    "complex_X.npz": {"X": np.zeros((4, 3), complex), "y": np.arange(4) % 2},
    "2d_labels.npz": {"X": np.zeros((4, 3)), "y": np.zeros((4, 2, 2))},
}
DATA_FILES["not_a_zip.npz"] = b"this is not an archive"
DATA_FILES["truncated.npz"] = b"PK\x03\x04" + b"\0" * 30

_IMAGES = (np.arange(4 * 3 * 3) % 255).reshape(4, 3, 3)
_LABELS = np.array([0, 1, 0, 1])
_GOOD_IDX = {"train-images-idx3-ubyte": _idx(_IMAGES), "train-labels-idx1-ubyte": _idx(_LABELS)}
IDX_FOLDERS = {
    "idx_zero_images": {"train-images-idx3-ubyte": _idx(np.zeros((0, 3, 3))),
                        "train-labels-idx1-ubyte": _idx(np.zeros(0))},
    "idx_bad_magic": {"train-images-idx3-ubyte": b"\x01\x02\x03\x04" + b"\0" * 40,
                      "train-labels-idx1-ubyte": _idx(_LABELS)},
    "idx_truncated": {"train-images-idx3-ubyte": _idx(_IMAGES)[:-5],
                      "train-labels-idx1-ubyte": _idx(_LABELS)},
    "idx_extra": {"train-images-idx3-ubyte": _idx(_IMAGES) + b"junk",
                  "train-labels-idx1-ubyte": _idx(_LABELS)},
    "idx_swapped": {"train-images-idx3-ubyte": _idx(_LABELS),
                    "train-labels-idx1-ubyte": _idx(_IMAGES)},
    "idx_counts": {"train-images-idx3-ubyte": _idx(_IMAGES),
                   "train-labels-idx1-ubyte": _idx(np.array([0, 1, 0]))},
    "idx_missing_labels": {"train-images-idx3-ubyte": _idx(_IMAGES)},
    "idx_empty_file": {"train-images-idx3-ubyte": b"", "train-labels-idx1-ubyte": b""},
    "idx_huge_header": {"train-images-idx3-ubyte": bytes([0, 0, 8, 3]) + struct.pack(
        ">III", 4_000_000_000, 60000, 60000), "train-labels-idx1-ubyte": _idx(_LABELS)},
    "idx_zero_dims": {"train-images-idx3-ubyte": bytes([0, 0, 8, 0]),
                      "train-labels-idx1-ubyte": _idx(_LABELS)},
    "idx_float_labels": {**_GOOD_IDX, "train-labels-idx1-ubyte": _idx(_LABELS * 1.0, 0x0D)},
    "idx_test_width": {**_GOOD_IDX, "t10k-images-idx3-ubyte": _idx(np.zeros((2, 2, 2))),
                       "t10k-labels-idx1-ubyte": _idx(np.array([0, 1]))},
    "idx_bomb": {"train-images-idx3-ubyte.gz": gzip.compress(_idx(_IMAGES)) + _gzip_bomb(400),
                 "train-labels-idx1-ubyte": _idx(_LABELS)},
    "idx_bad_gzip": {"train-images-idx3-ubyte.gz": b"\x1f\x8b\x08\x00" + b"\xff" * 50,
                     "train-labels-idx1-ubyte": _idx(_LABELS)},
}

TRAIN = ["train", "--epochs", "1", "--layers", "3", "-q", "--data"]

# data files given to train: (file, expected line)
for name, line in {
    "empty.csv": r"empty\.csv: the file is empty",
    "blank.csv": r"blank\.csv: the file is empty",
    "header_only.csv": r"only a header row",
    "one_column.csv": r"found one column",
    "numeric_header.csv": r"looks like data.*header row",
    "ragged.csv": r"line 3 has 2 fields but the header has 3",
    "text_feature.csv": r"column 'b' is not numeric \(line 2: 'x'\)",
    "big_cell.csv": r"big_cell\.csv: line 2 holds a field longer than 131,072 characters",
    "big_text_cell.csv": r"big_text_cell\.csv: line 2 holds a field longer than 131,072",
    "nan_feature.csv": r"column 'a'|column 'b' holds nan on line 2",
    "inf_feature.csv": r"column 'b' holds inf on line 2",
    "inf_target.csv": r"target column 'y' holds inf on line 2",
    "empty_target.csv": r"target column 'label' is empty on line 2",
    "empty_feature.csv": r"column 'b' is empty on line 2",
    "single_class.csv": r"single_class\.csv: every sample has the label 'same'; a classifier "
                        r"needs at least two classes",
    "two_rows.csv": r"two_rows\.csv: 2 samples are too few: class 0 has a single sample",
    "one_row.csv": r"one_row\.csv: every sample has the label 0; a classifier needs at least",
    "duplicate_columns.csv": r"column names \['a'\] appear more than once",
    "latin1.csv": r"latin1\.csv: not a UTF-8 text file \(byte 0xe9 on line 2 is not UTF-8\)",
    "binary.csv": r"binary\.csv: not a UTF-8 text file",
    "nul.csv": r"nul\.csv: (line 2 holds a NUL byte|column 'b' is not numeric)",
    "bad_gzip.csv.gz": r"bad_gzip\.csv\.gz: corrupted or truncated gzip data",
    "truncated.csv.gz": r"truncated\.csv\.gz: corrupted or truncated gzip data",
    "semicolons.csv": r"semicolons\.csv: 2 samples are too few: class 0 has a single sample",
    "only_commas.csv": r"only_commas\.csv: .*(empty|name)",
    "quote.csv": r"quote\.csv: .*(only a header|field|quote)",
    "no_suffix": r"Cannot tell how to read no_suffix",
    "data.txt": r"Cannot tell how to read data\.txt",
    "missing.csv": r"missing\.csv: no such CSV file",
    "sub": r"sub: no IDX file for train_images",
    "zero_features.npz": r"zero_features\.npz: array 'X' has 0 features",
    "zero_samples.npz": r"zero_samples\.npz: no samples; training needs at least two",
    "no_y.npz": r"no array named 'y'",
    "one_d.npz": r"array 'X' must be 2-D",
    "length_mismatch.npz": r"X has 4 rows but y has 5",
    "text_X.npz": r"array 'X' has dtype <U1; features must be numeric",
    "nan_X.npz": r"array 'X' holds nan at row 0, column 0",
    "test_only_X.npz": r"X_test and y_test come together",
    "test_width.npz": r"X has 3 features but X_test has 2",
    "complex_X.npz": r"array 'X' has dtype complex128; features must be numeric",
    "2d_labels.npz": r"2d_labels\.npz: the targets have shape \(4, 2, 2\)",
    "not_a_zip.npz": r"not an NPZ archive",
    "truncated.npz": r"truncated\.npz: corrupted NPZ archive",
    "idx_zero_images": r"train-images-idx3-ubyte: holds no images \(shape \(0, 3, 3\)\)",
    "idx_bad_magic": r"not an IDX file: magic number 0x01020304",
    "idx_truncated": r"truncated: the header declares 4 items of 3x3",
    "idx_extra": r"4 bytes after the 4 items of 3x3 the header declares",
    "idx_swapped": r"expected images .*Are the image and label files swapped",
    "idx_counts": r"holds 4 images but train-labels-idx1-ubyte holds 3 labels",
    "idx_missing_labels": r"no IDX file for train_labels",
    "idx_empty_file": r"not an IDX file: only 0 bytes",
    "idx_zero_dims": r"not an IDX file: magic number 0x00000800",
    "idx_float_labels": r"expected labels \(a 1-D integer IDX file\)",
    "idx_test_width": r"training images have 9 pixels but test images have 4",
    "idx_bad_gzip": r"corrupted (or truncated )?gzip data",
    "/dev/null": r"/dev/null is a character device, not a regular file",
    "/dev/zero": r"/dev/zero is a character device, not a regular file",
}.items():
    case(f"data-train-{name}", [*TRAIN, name], 1, line)

# the ones that hung or filled memory, in a subprocess
case("data-train-zero-link", [*TRAIN, "zero.csv"], 1,
     r"zero\.csv is a character device, not a regular file", sub=True)
case("data-train-fifo", [*TRAIN, "fifo.csv"], 1, r"fifo\.csv is a FIFO \(named pipe\), not a "
     r"regular file", sub=True)
case("data-train-gzip-bomb", [*TRAIN, "bomb.csv.gz"], 1,
     r"bomb\.csv\.gz: decompresses to more than .* bytes", sub=True)
case("data-train-idx-bomb", [*TRAIN, "idx_bomb"], 1,
     r"holds far more bytes than the 4 x 3 x 3 items its header declares", sub=True)
case("data-train-idx-huge-header", [*TRAIN, "idx_huge_header"], 1,
     r"truncated: the header declares 4,000,000,000 items of 60000x60000", sub=True)
case("data-train-lying-npz", [*TRAIN, "lying.npz"], 1,
     r"lying\.npz: array 'X' declares shape \(2000000000, 1000\)", sub=True)

# the same data files given to predict and evaluate (model file good, data bad)
for cmd in ("predict", "evaluate"):
    for name, line in {
        "empty.csv": r"the file is empty",
        "text_feature.csv": r"column 'b' is not numeric",
        "nan_feature.csv": r"holds nan on line 2",
        "latin1.csv": r"not a UTF-8 text file",
        "bad_gzip.csv.gz": r"corrupted or truncated gzip data",
        "zero_features.npz": r"array 'X' has 0 features",
        "not_a_zip.npz": r"not an NPZ archive",
        "idx_bad_magic": r"not an IDX file",
        "mismatch_features.csv": r"mismatch_features\.csv has 2 features but the model "
                                 r"model\.safetensors expects 3",
        "/dev/zero": r"/dev/zero is a character device",
        "missing.csv": r"missing\.csv: no such CSV file",
        "": r"The data set name is empty",
    }.items():
        case(f"data-{cmd}-{name or 'empty-name'}", [cmd, "model.safetensors", "--data", name],
             1, line)
case("data-evaluate-unknown-label", ["evaluate", "model.safetensors", "--data",
                                     "unknown_label.csv"], 1,
     r"Label 'bird' does not occur in the training data")
case("data-evaluate-features-only", ["evaluate", "model.safetensors", "--data",
                                     "features_only.csv"], 1, r"has no targets to evaluate")


# --- model files --------------------------------------------------------------------------------

def _meta_of(model: bytes) -> tuple[dict, dict, bytes]:
    n = int.from_bytes(model[:8], "little")
    header = json.loads(model[8:8 + n])
    meta = json.loads(header["__metadata__"]["chainrule"])
    return header, meta, model[8 + n:]


def _with_meta(change):
    """A model file whose chainrule metadata is changed by ``change(meta)`` (returns new meta)."""

    def make(model: bytes) -> bytes:
        header, meta, body = _meta_of(model)
        new = change(meta)
        header["__metadata__"]["chainrule"] = new if isinstance(new, str) else json.dumps(new)
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        return len(raw).to_bytes(8, "little") + raw + body

    return make


def _with_header(change):
    def make(model: bytes) -> bytes:
        n = int.from_bytes(model[:8], "little")
        header = json.loads(model[8:8 + n])
        raw = change(header, model[8 + n:])
        if isinstance(raw, tuple):
            raw, body = raw
        else:
            body = model[8 + n:]
        return len(raw).to_bytes(8, "little") + raw + body

    return make


def _set(path: str, value):
    """Set a dotted path (``layers.0.config.in_features``) in the metadata to ``value``."""

    def change(meta):
        node = meta
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        last = keys[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return meta

    return change


def _drop(path: str):
    def change(meta):
        node = meta
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[keys[-1]]
        return meta

    return change


def _tensor(name_shape, data=None):
    def change(header, body):
        h = dict(header)
        name, shape = name_shape
        h[name] = {"dtype": "F32", "shape": shape, "data_offsets": h[name]["data_offsets"]}
        return json.dumps(h).encode()

    return change


def _bad_weights(value):
    def make(model: bytes) -> bytes:
        n = int.from_bytes(model[:8], "little")
        header = json.loads(model[8:8 + n])
        body = bytearray(model[8 + n:])
        begin, end = header["0.weight"]["data_offsets"]
        body[begin:end] = np.full((end - begin) // 4, value, "<f4").tobytes()
        return model[:8 + n] + bytes(body)

    return make


MODEL_FILES = {
    "trunc_0.safetensors": lambda m: b"",
    "trunc_4.safetensors": lambda m: m[:4],
    "trunc_8.safetensors": lambda m: m[:8],
    "trunc_9.safetensors": lambda m: m[:9],
    "trunc_half.safetensors": lambda m: m[: len(m) // 2],
    "trunc_minus1.safetensors": lambda m: m[:-1],
    "trunc_minus4.safetensors": lambda m: m[:-4],
    "trailing.safetensors": lambda m: m + b"\0" * 8,
    "huge_header_len.safetensors": lambda m: (2**63).to_bytes(8, "little") + m[8:],
    "header_len_2.safetensors": lambda m: (2).to_bytes(8, "little") + m[8:],
    "png.safetensors": lambda m: b"\x89PNG\r\n\x1a\n" + b"\0" * 40,
    "pickle.safetensors": lambda m: b"\x80\x04\x95" + b"\0" * 40,
    "zip.safetensors": lambda m: b"PK\x03\x04" + b"\0" * 40,
    "text.safetensors": lambda m: b"hello, this is a text file\n" * 3,
    "bad_utf8_header.safetensors": lambda m: (8).to_bytes(8, "little") + b"{\xff\xfe    }",
    "bad_json_header.safetensors": lambda m: (8).to_bytes(8, "little") + b"{not js}",
    "list_header.safetensors": lambda m: (8).to_bytes(8, "little") + b"[1,2,3] ",
    "dup_header.safetensors": lambda m: _safetensors({}, None, b'{"a":1,"a":2}   '),
    "deep_header.safetensors": lambda m: _safetensors(
        {}, None, (b'{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}") + b"  "),
    "bigint_header.safetensors": lambda m: _safetensors(
        {}, None, b'{"x":{"dtype":"F32","shape":[' + b"9" * 5000 + b'],"data_offsets":[0,0]}}'),
    "nan_offsets.safetensors": lambda m: _safetensors(
        {}, None, b'{"x":{"dtype":"F32","shape":[1],"data_offsets":[NaN,4]}}'),
    "unknown_dtype.safetensors": _with_header(lambda h, b: json.dumps(
        {**h, "0.weight": {**h["0.weight"], "dtype": "Q7"}}).encode()),
    "negative_shape.safetensors": _with_header(_tensor(("0.weight", [-3, 4]))),
    "float_shape.safetensors": _with_header(_tensor(("0.weight", [1.5, 4]))),
    "wrong_shape.safetensors": _with_header(_tensor(("0.weight", [5, 5]))),
    "huge_shape.safetensors": _with_header(lambda h, b: (json.dumps(
        {**h, "0.weight": {"dtype": "F32", "shape": [60000, 60000],
                           "data_offsets": [0, 60000 * 60000 * 4]}}).encode())),
    "3e9_shape.safetensors": _with_header(lambda h, b: (json.dumps(
        {**h, "0.weight": {"dtype": "F32", "shape": [3_000_000_000],
                           "data_offsets": [0, 12_000_000_000]}}).encode())),
    "2e40_shape.safetensors": _with_header(lambda h, b: (json.dumps(
        {**h, "0.weight": {"dtype": "F32", "shape": [1, 2 * 10**40],
                           "data_offsets": [0, 8 * 10**40]}}).encode())),
    "zero_2e40_shape.safetensors": _with_header(lambda h, b: (json.dumps(
        {**h, "x": {"dtype": "F32", "shape": [0, 2 * 10**40], "data_offsets": [0, 0]}}
    ).encode())),
    "zero_huge_dim.safetensors": _with_header(lambda h, b: (json.dumps(
        {**h, "x": {"dtype": "F32", "shape": [0, 10**29], "data_offsets": [0, 0]}}).encode())),
    "many_dims.safetensors": _with_header(lambda h, b: (json.dumps(
        {**h, "x": {"dtype": "F32", "shape": [0] * 40, "data_offsets": [0, 0]}}).encode())),
    "overlap.safetensors": _with_header(lambda h, b: json.dumps(
        {**h, "0.bias": {**h["0.bias"], "data_offsets": h["0.weight"]["data_offsets"]}}
    ).encode()),
    "meta_not_str.safetensors": _with_header(lambda h, b: json.dumps(
        {**h, "__metadata__": {"chainrule": {"format": 1}}}).encode()),
    "no_chainrule_meta.safetensors": _with_header(lambda h, b: json.dumps(
        {k: v for k, v in h.items() if k != "__metadata__"}).encode()),
    "nan_weight.safetensors": _bad_weights(np.nan),
    "inf_weight.safetensors": _bad_weights(np.inf),
    "huge_weight.safetensors": _bad_weights(3e38),
    "meta_not_json.safetensors": _with_meta(lambda m: "{not json"),
    "meta_list.safetensors": _with_meta(lambda m: "[1, 2]"),
    "meta_deep.safetensors": _with_meta(lambda m: '{"a":' + "[" * 100_000 + "]" * 100_000
                                        + "}"),
    "meta_bigint.safetensors": _with_meta(lambda m: json.dumps(m)[:-1] + ', "z": '
                                          + "9" * 5000 + "}"),
    "meta_nan.safetensors": _with_meta(lambda m: json.dumps(m)[:-1] + ', "z": NaN}'),
    "meta_format.safetensors": _with_meta(_set("format", "keras")),
    "meta_version.safetensors": _with_meta(_set("version", 99)),
    "meta_version_str.safetensors": _with_meta(_set("version", "1")),
    "meta_no_layers.safetensors": _with_meta(_set("layers", [])),
    "meta_layers_dict.safetensors": _with_meta(_set("layers", {"a": 1})),
    "meta_layer_str.safetensors": _with_meta(_set("layers.0", "Dense")),
    "meta_layer_type.safetensors": _with_meta(_set("layers.0.type", "Conv3D")),
    "meta_layer_config_list.safetensors": _with_meta(_set("layers.0.config", [1, 2])),
    "meta_in_features_huge.safetensors": _with_meta(_set("layers.0.config.in_features", 60000)),
    "meta_out_features_huge.safetensors": _with_meta(_set("layers.0.config.out_features",
                                                          3_000_000_000)),
    "meta_in_features_str.safetensors": _with_meta(_set("layers.0.config.in_features", "3")),
    "meta_in_features_neg.safetensors": _with_meta(_set("layers.0.config.in_features", -3)),
    "meta_in_features_float.safetensors": _with_meta(_set("layers.0.config.in_features", 3.5)),
    "meta_in_features_bool.safetensors": _with_meta(_set("layers.0.config.in_features", True)),
    "meta_dtype.safetensors": _with_meta(_set("layers.0.config.dtype", "int8")),
    "meta_init.safetensors": _with_meta(_set("layers.0.config.init", ["x"])),
    "meta_bias.safetensors": _with_meta(_set("layers.0.config.bias", "yes")),
    "meta_activation_unknown.safetensors": _with_meta(_set("layers.1.name", "swish2")),
    "meta_activation_name_list.safetensors": _with_meta(_set("layers.1.name", ["relu"])),
    "meta_activation_config.safetensors": _with_meta(_set("layers.1.config", {"bogus": 1})),
    "meta_softmax_axis.safetensors": _with_meta(_set("layers.3.config.axis", 7)),
    "meta_softmax_axis_str.safetensors": _with_meta(_set("layers.3.config.axis", "1")),
    "meta_formula_tower.safetensors": _with_meta(_set(
        "layers.1", {"type": "Activation", "name": "mine",
                     "config": {"formula": "((((9**64)**64)**64)**64)**64*x"}})),
    "meta_formula_code.safetensors": _with_meta(_set(
        "layers.1", {"type": "Activation", "name": "mine",
                     "config": {"formula": "__import__('os').system('true')"}})),
    "meta_formula_list.safetensors": _with_meta(_set(
        "layers.1", {"type": "Activation", "name": "mine", "config": {"formula": ["x"]}})),
    "meta_dropout_p.safetensors": _with_meta(lambda m: {
        **m, "layers": [*m["layers"][:2], {"type": "Dropout", "config": {"p": 2}},
                        *m["layers"][2:]]}),
    "meta_training_str.safetensors": _with_meta(_set("training", "adam")),
    "meta_classes_dict.safetensors": _with_meta(_set("classes", {"0": "cat"})),
    "meta_classes_short.safetensors": _with_meta(_set("classes", ["cat"])),
    "meta_classes_nested.safetensors": _with_meta(_set("classes", [["cat"], ["dog"]])),
    "meta_classes_mixed.safetensors": _with_meta(_set("classes", [1, "dog"])),
    "meta_task.safetensors": _with_meta(_set("task", "clustering")),
    "meta_preprocessing_list.safetensors": _with_meta(_set("preprocessing", [1, 2])),
    "meta_scaler_str.safetensors": _with_meta(_set("preprocessing.scaler", "standard")),
    "meta_scaler_type.safetensors": _with_meta(_set("preprocessing.scaler.type", "robust")),
    "meta_scaler_zero.safetensors": _with_meta(_set("preprocessing.scaler.scale", [0, 1, 1])),
    "meta_scaler_tiny.safetensors": _with_meta(_set("preprocessing.scaler.scale",
                                                    [1e-320, 1, 1])),
    "meta_scaler_width.safetensors": _with_meta(_set("preprocessing.scaler.mean", [0, 0])),
    "meta_scaler_nan.safetensors": _with_meta(_set("preprocessing.scaler.mean", "nan")),
    "meta_feature_names.safetensors": _with_meta(_set("preprocessing.feature_names", "abc")),
    "meta_missing_format.safetensors": _with_meta(_drop("format")),
}

MODEL_EXPECT = {
    "trunc_0.safetensors": r"not a safetensors file: it is empty",
    "trunc_4.safetensors": r"only 4 bytes long",
    "trunc_8.safetensors": r"truncated: the header says its JSON is",
    "trunc_9.safetensors": r"truncated: the header says its JSON is",
    "trunc_half.safetensors": r"truncated",
    "trunc_minus1.safetensors": r"truncated: header says .* bytes of data",
    "trunc_minus4.safetensors": r"truncated: header says .* bytes of data",
    "trailing.safetensors": r"8 bytes of trailing garbage",
    "huge_header_len.safetensors": r"not a safetensors file",
    "header_len_2.safetensors": r"corrupted: the header is not valid JSON",
    "png.safetensors": r"it looks like a PNG image",
    "pickle.safetensors": r"a Python pickle \(chainrule never unpickles",
    "zip.safetensors": r"a ZIP archive",
    "text.safetensors": r"not a safetensors file: it looks like text",
    "bad_utf8_header.safetensors": r"the header is not valid UTF-8",
    "bad_json_header.safetensors": r"the header is not valid JSON",
    "list_header.safetensors": r"not a safetensors file",
    "dup_header.safetensors": r"the header names 'a' twice",
    "deep_header.safetensors": r"not valid JSON \(nested too deeply\)",
    "bigint_header.safetensors": r"not valid JSON \(an integer of 5,000 digits\)",
    "nan_offsets.safetensors": r"not valid JSON \(NaN is not a JSON number\)",
    "unknown_dtype.safetensors": r"tensor '0\.weight' has dtype 'Q7'",
    "negative_shape.safetensors": r"shape must be a list of non-negative integers; got \[-3, 4\]",
    "float_shape.safetensors": r"shape must be a list of non-negative integers; got \[1\.5, 4\]",
    "wrong_shape.safetensors": r"tensor '0\.weight': shape \(5, 5\) of F32 needs 100 bytes",
    "huge_shape.safetensors": r"truncated: header says 14,400,000,000 bytes",
    "3e9_shape.safetensors": r"truncated: header says 12,000,000,000 bytes",
    "2e40_shape.safetensors": r"not valid JSON \(an integer of 41 digits\)",
    "zero_2e40_shape.safetensors": r"not valid JSON \(an integer of 41 digits\)",
    "zero_huge_dim.safetensors": r"tensor 'x': shape \[0, 1000.*\] is beyond what any file "
                                 r"can hold",
    "many_dims.safetensors": r"tensor 'x': shape \[0, .*\] is beyond what any file can hold "
                             r"\(at most 32 dimensions",
    "overlap.safetensors": r"(overlap|belong to no tensor|shape .* needs)",
    "meta_not_str.safetensors": r"__metadata__ must map strings to strings",
    "no_chainrule_meta.safetensors": r"not a chainrule model \(no 'chainrule' metadata\)",
    "nan_weight.safetensors": r"tensor '0\.weight' is not a finite floating array",
    "inf_weight.safetensors": r"tensor '0\.weight' is not a finite floating array",
    "meta_not_json.safetensors": r"the chainrule metadata is not valid JSON",
    "meta_list.safetensors": r"the chainrule metadata must be a JSON object; got a list",
    "meta_deep.safetensors": r"the chainrule metadata is not valid JSON \(nested too deeply\)",
    "meta_bigint.safetensors": r"not valid JSON \(an integer of 5,000 digits\)",
    "meta_nan.safetensors": r"not valid JSON \(NaN is not a JSON number\)",
    "meta_format.safetensors": r"unknown model format \"keras\"",
    "meta_version.safetensors": r"model format version 99; this chainrule reads version 1",
    "meta_version_str.safetensors": r"model format version \"1\"",
    "meta_no_layers.safetensors": r"the model lists no layers",
    "meta_layers_dict.safetensors": r"the model lists no layers",
    "meta_layer_str.safetensors": r"layers\[0\] must be a JSON object; got \"Dense\"",
    "meta_layer_type.safetensors": r"layers\[0\]\.type must be one of 'Dense', 'Dropout', "
                                   r"(.*, )?'Activation'; got \"Conv3D\"",
    "meta_layer_config_list.safetensors": r"layers\[0\]\.config must be a JSON object",
    "meta_in_features_huge.safetensors": r"tensor '0\.weight' has shape \(4, 3\); layer 0 "
                                         r"\(60000 -> 4\) needs \(4, 60000\)",
    "meta_out_features_huge.safetensors": r"layers\[0\]\.config\.out_features must be an "
                                          r"integer from 1 to 2,147,483,648; got 3000000000",
    "meta_in_features_str.safetensors": r"layers\[0\]\.config\.in_features must be an integer",
    "meta_in_features_neg.safetensors": r"layers\[0\]\.config\.in_features must be an integer "
                                        r"from 1",
    "meta_in_features_float.safetensors": r"in_features must be an integer .* got 3\.5",
    "meta_in_features_bool.safetensors": r"in_features must be an integer .* got true",
    "meta_dtype.safetensors": r"layers\[0\]\.config\.dtype must be one of",
    "meta_init.safetensors": r"layers\[0\]\.config\.init must be a string; got a list",
    "meta_bias.safetensors": r"layers\[0\]\.config\.bias must be one of True, False",
    "meta_activation_unknown.safetensors": r"layers\[1\]\.name names an unknown activation "
                                           r"\"swish2\"",
    "meta_activation_name_list.safetensors": r"layers\[1\]\.name must be an activation name",
    "meta_activation_config.safetensors": r"invalid layer .*bogus",
    "meta_softmax_axis.safetensors": r"layers\[3\]\.config\.axis must be -1 or 1 .* got 7",
    "meta_softmax_axis_str.safetensors": r"layers\[3\]\.config\.axis must be -1 or 1",
    "meta_formula_tower.safetensors": r"constant beyond the float range",
    "meta_formula_code.safetensors": r"unsupported call of|unknown function",
    "meta_formula_list.safetensors": r"layers\[1\]\.config\.formula must be a number or a "
                                     r"string; got a list",
    "meta_dropout_p.safetensors": r"layers\[2\]\.config\.p must be in \[0, 1\); got 2",
    "meta_training_str.safetensors": r"training must be a JSON object; got \"adam\"",
    "meta_classes_dict.safetensors": r"classes must be a list of class labels",
    "meta_classes_short.safetensors": r"classes lists 1 labels but the model has 1 output, so "
                                      r"it needs 2",
    "meta_classes_nested.safetensors": r"classes must be a list of class labels",
    "meta_classes_mixed.safetensors": r"classes mixes numbers and strings",
    "meta_task.safetensors": r"task must be one of 'classification', 'multilabel', "
                             r"'regression'",
    "meta_preprocessing_list.safetensors": r"preprocessing must be a JSON object; got a list",
    "meta_scaler_str.safetensors": r"preprocessing\.scaler must be a JSON object",
    "meta_scaler_type.safetensors": r"preprocessing\.scaler is invalid \(Unknown scaler config",
    "meta_scaler_zero.safetensors": r"preprocessing\.scaler is invalid .*every scale must be "
                                    r"positive",
    "meta_scaler_width.safetensors": r"preprocessing\.scaler is invalid .*same length",
    "meta_scaler_nan.safetensors": r"preprocessing\.scaler is invalid .*finite numbers",
    "meta_feature_names.safetensors": r"preprocessing\.feature_names must be a list of strings",
    "meta_missing_format.safetensors": r"unknown model format null",
}

SUB_MODELS = {"huge_shape.safetensors", "3e9_shape.safetensors", "2e40_shape.safetensors",
              "deep_header.safetensors", "meta_deep.safetensors",
              "meta_in_features_huge.safetensors", "meta_out_features_huge.safetensors",
              "meta_formula_tower.safetensors"}

for name, line in MODEL_EXPECT.items():
    sub = name in SUB_MODELS
    case(f"model-predict-{name}", ["predict", name, "--data", "good.csv"], 1,
         rf"{re.escape(name)}: .*{line}" if not line.startswith("invalid") else line, sub=sub)
    if not sub:
        case(f"model-evaluate-{name}", ["evaluate", name, "--data", "good.csv"], 1, line)

for cmd in ("predict", "evaluate"):
    case(f"model-{cmd}-huge-weights", [cmd, "huge_weight.safetensors", "--data", "good.csv"], 1,
         r"(output is -?(nan|inf)|loss .* (nan|inf)).*weights reach 3e\+38")
    case(f"model-{cmd}-tiny-scale", [cmd, "meta_scaler_tiny.safetensors", "--data", "good.csv"],
         1, r"Scaling overflowed float64: feature 0 .*finite")
    case(f"model-{cmd}-missing", [cmd, "nothing.safetensors", "--data", "good.csv"], 1,
         r"nothing\.safetensors: no such model file")
    case(f"model-{cmd}-folder", [cmd, "sub", "--data", "good.csv"], 1,
         r"sub is a folder, not a regular file")
    case(f"model-{cmd}-null-link", [cmd, "null.safetensors", "--data", "good.csv"], 1,
         r"null\.safetensors is a character device, not a regular file")
    case(f"model-{cmd}-dev-zero", [cmd, "/dev/zero", "--data", "good.csv"], 1,
         r"/dev/zero is a character device, not a regular file")
    case(f"model-{cmd}-empty-name", [cmd, "", "--data", "good.csv"], 1,
         r"The model file name is empty")
    case(f"model-{cmd}-csv-as-model", [cmd, "good.csv", "--data", "good.csv"], 1,
         r"good\.csv: not a safetensors file: it looks like text")
case("model-predict-fifo", ["predict", "fifo.safetensors", "--data", "good.csv"], 1,
     r"fifo\.safetensors is a FIFO \(named pipe\), not a regular file", sub=True)


# --- formulas -----------------------------------------------------------------------------------

FORMULAS = {
    "x.real": r"unsupported syntax \(Attribute\)",
    "x[0]": r"unsupported syntax \(Subscript\)",
    "lambda: x": r"unsupported syntax \(Lambda\)",
    "'x'": r"unsupported constant",
    "x if x else 1": r"unsupported syntax \(IfExp\)",
    "x < 1": r"unsupported syntax \(Compare\)",
    "__import__('os')": r"unknown function '__import__'",
    "f(x)": r"unknown function 'f'",
    "exp": r"function name without arguments 'exp'",
    "exp(x, 2)": r"exp takes 1 argument, got 2",
    "exp(x=1)": r"keyword arguments are not supported",
    "exp(*x)": r"starred arguments are not supported",
    "max(x, 1)": r"only max\(0, u\)",
    "x**1000": r"numeric power too large",
    "2**65*x": r"numeric power too large",
    "(x+1)**100": r"numeric power too large",
    "x**(-65)": r"numeric power too large",
    "1e400*x": r"number out of range",
    "1/0": r"division by zero",
    "x/0": r"division by zero",
    "log(0)*x": r"not a finite real expression|undefined",
    "log(-1)*x": r"not a finite real expression",
    "sqrt(-1)*x": r"not a finite real expression",
    "x**": r"cannot parse 'x\*\*': it ends too early at column 4",
    "(": r"cannot parse",
    ")": r"cannot parse",
    "": r"(?i)nothing to derive|the formula is empty",
    "   ": r"the formula is empty",
    "x" * 600: r"formula is 600 characters long; the limit is 500",
    "(" * 50 + "x" + ")" * 50: r"nested too deeply",
    "+-" * 30 + "x": r"nested too deeply",
    "9" * 40 + "*x": r"number too long",
    "0**x": r"raises 0 to the variable power x",
    "(-1)**x": r"raises -1 to the variable power x: \(-1\)\*\*u is not a real number",
    "(-2.5)**x": r"raises -5/2 to the variable power",
    "max(x, 0)**x": r"raises 0 to the .*power",
    "relu(x)**(x-1)": r"raises .* power",
    "1/(sin(x)**2+cos(x)**2-1)": r"divides by .*0 for every value of x",
    "x/(exp(x)-exp(x))": r"division by zero",
    "1e308*1e308*x": r"constant beyond the float range in '1e308\*1e308'",
    "1e200*1e200": r"constant beyond the float range",
    "((((9**64)**64)**64)**64)**64*x": r"constant beyond the float range in '\(9\*\*64\)\*\*64'",
    "exp(1000)*x": r"constant beyond the float range in 'exp\(1000\)'",
    "exp(exp(exp(10)))": r"constant beyond the float range",
    "10**64*10**64*10**64*10**64*10**64*x": r"constant beyond the float range",
    "x @ x": r"unsupported syntax \(BinOp\)",
    "x // 2": r"unsupported syntax \(BinOp\)",
    "x % 2": r"unsupported syntax \(BinOp\)",
    "not x": r"unsupported syntax \(UnaryOp\)",
    "~x": r"unsupported syntax \(UnaryOp\)",
    "x and x": r"unsupported syntax \(BoolOp\)",
    "{x}": r"unsupported syntax \(Set\)",
    "[x]": r"unsupported syntax \(List\)",
    "(x, x)": r"unsupported syntax \(Tuple\)",
    "f'{x}'": r"unsupported syntax \(JoinedStr\)",
    "x; x": r"cannot parse",
    "x\nx": r"cannot parse",
    "b'x'": r"unsupported constant",
    "1j*x": r"unsupported constant",
    "True*x": r"unsupported constant",
    "None": r"unsupported constant",
    "acos(x)": r"unknown function 'acos'",
    "x.__class__": r"unsupported syntax \(Attribute\)",
    "bce(yhat)": r"bce takes 2 arguments",
    "q": r"unknown name 'q'",
    "xx": r"unknown name 'xx'",
    "x = 1": r"cannot parse",
    "x\0": r"the formula holds a NUL character at column 2",
    "\u00e9": r"cannot parse|unknown name",
    "x ** x ** x ** x ** x ** x ** x ** x ** x": r"too large|nested|gave up",
    "sin(" * 41 + "x" + ")" * 41: r"nested too deeply",
}

for number, (formula, line) in enumerate(FORMULAS.items()):
    short = f"{number:02d}-" + (re.sub(r"\W", "_", formula)[:24] or "empty")
    sub = formula.startswith("((((9") or formula.startswith("x ** x ** x")
    # a formula that cannot be read is bad usage (2); one too large to work with is a limit
    # reached (1), like the time limit
    rc = 1 if re.search(r"too large|nested|gave up", line) else 2
    case(f"formula-derive-{short}", ["derive", formula], rc, line, sub=sub)
    if not sub:
        case(f"formula-plot-{short}",
             ["plot", formula, "--out", "existing.png"], rc, line)
        case(f"formula-check-{short}",
             ["check", "--function", formula, "1"], rc, line)

# a leading minus is a value, not an option
for formula in ("-x", "-(x)", "-sigmoid(x)", "-x**2", "-1e-3*x", "-.5*x"):
    case(f"formula-minus-{formula}", ["derive", formula], 0, r"^$", stdout=r"Result: d/dx")
case("formula-plot-minus", ["plot", "-x", "--out", "new.png"], 0, r"^$", may_create=("new.png",))
case("formula-plot-range-huge", ["plot", "x", "--range", "-1e308", "1e308", "--out",
                                 "wide.png"], 0, r"^$", may_create=("wide.png",))


# --- training faults ----------------------------------------------------------------------------

TRAIN_GOOD = ["train", "--data", "good.csv", "--epochs", "1", "--layers", "3", "-q"]
for opts, rc, line in [
    (["--lr", "0"], 2, r"argument --lr: expected a positive number; got 0"),
    (["--lr", "-1"], 2, r"argument --lr: expected a positive number"),
    (["--lr", "nan"], 2, r"argument --lr: expected a positive number"),
    (["--lr", "inf"], 2, r"argument --lr: expected a positive number"),
    (["--lr", "abc"], 2, r"argument --lr: expected a positive number; got 'abc'"),
    (["--lr", "1e30", "--epochs", "1", "--batch-size", "1000", "--out", "diverged.safetensors"],
     1, r"diverged"),
    (["--lr", "1e30", "--epochs", "3", "--batch-size", "4", "--out", "diverged.safetensors"],
     1, r"diverged"),
    (["--lr", "1e30", "--optimizer", "sgd", "--epochs", "2", "--batch-size", "1000", "--json",
      "--out", "diverged.safetensors"], 1, r"diverged"),
    (["--epochs", "0"], 2, r"argument --epochs: expected an integer >= 1; got 0"),
    (["--epochs", "-5"], 2, r"argument --epochs: expected an integer >= 1"),
    (["--epochs", "9" * 5000], 2,
     r"argument --epochs: expected an integer >= 1; got '9{20}\.\.\.'$"),
    (["--epochs", "1.5"], 2, r"argument --epochs: expected an integer >= 1; got '1.5'"),
    (["--batch-size", "0"], 2, r"argument --batch-size: expected an integer >= 1; got 0"),
    (["--layers", "a"], 2, r"--layers 'a': not a layer; the grammar is <n>"),
    (["--layers", "0"], 2, r"--layers '0': sizes, kernels and strides must be >= 1"),
    (["--layers", "1,,2"], 2, r"--layers '': not a layer; the grammar is <n>"),
    (["--layers", "9" * 5000], 2, r"--layers '99999999999999999999\.\.\.': too long"),
    (["--dropout", "1.5"], 2, r"argument --dropout: expected a fraction in \[0, 1\)"),
    (["--dropout", "nan"], 2, r"argument --dropout: expected a fraction in \[0, 1\)"),
    (["--validation-split", "1"], 2,
     r"argument --validation-split: expected a fraction in \[0, 1\)"),
    (["--validation-split", "-0.5"], 2, r"argument --validation-split: expected a fraction"),
    (["--validation-split", "nan"], 2, r"argument --validation-split: expected a fraction"),
    (["--test-size", "0"], 2, r"argument --test-size: expected a fraction in \(0, 1\)"),
    (["--test-size", "1"], 2, r"argument --test-size: expected a fraction in \(0, 1\)"),
    (["--test-size", "nan"], 2, r"argument --test-size: expected a fraction in \(0, 1\)"),
    (["--clip-norm", "0"], 2, r"argument --clip-norm: expected a positive number"),
    (["--clip-norm", "nan"], 2, r"argument --clip-norm: expected a positive number"),
    (["--early-stopping", "0"], 2, r"argument --early-stopping: expected an integer >= 1"),
    (["--loss", "nope"], 2, r"argument --loss: invalid choice: 'nope'"),
    (["--output-activation", "tanh", "--loss", "ce"], 1, r"needs predicted probabilities"),
    (["--activation", "nope"], 2, r"argument --activation: invalid choice"),
    (["--out", ""], 1, r"The model file name is empty"),
    (["--out", "   "], 1, r"The model file name is empty"),
    (["--out", "/dev/null"], 1, r"/dev/null is a character device, not a regular file; "
                                r"chainrule replaces only regular files"),
    (["--out", "sub"], 1, r"sub is a folder, not a regular file"),
    (["--out", "fifo.safetensors"], 1, r"fifo\.safetensors is a FIFO"),
    (["--out", "nowhere/m.safetensors"], 1, r"the folder nowhere does not exist"),
    (["--plot", ""], 1, r"The curves file name is empty"),
    (["--plot", "/dev/null"], 1, r"/dev/null is a character device"),
    (["--plot", "sub"], 1, r"sub is a folder"),
    (["--target", "nope"], 1, r"no column named 'nope'"),
    (["--target", "a"], 1, r"."),  # a numeric target with 7 values: trains? see below
]:
    if opts == ["--target", "a"]:
        continue
    case(f"train-{'_'.join(opts)[:60]}", TRAIN_GOOD + opts, rc, line)

case("train-huge-target", ["train", "--data", "huge_target.csv", "--epochs", "2", "--layers",
                           "3", "-q", "--out", "t.safetensors"], 1,
     r"targets reach 3e\+21.*scale them")
case("train-huge-values", ["train", "--data", "huge_values.csv", "--epochs", "1", "-q"], 1,
     r"Scaling overflowed float64|holds inf|overflow")
case("train-tiny-spread", ["train", "--data", "tiny_spread.csv", "--epochs", "1", "-q",
                           "--layers", "3"], 0, r"^$")


# --- command-line arguments ---------------------------------------------------------------------

for cmd, extra in (("derive", ["x"]), ("plot", ["x", "--out", "t.png"]),
                   ("check", ["--function", "x", "1"])):
    for value in ("inf", "-inf", "nan", "-1", "1e300", "abc", "", "1e6"):
        line = r"--timeout takes a number of seconds from 0 \(no limit\) to 604800"
        case(f"args-{cmd}-timeout-{value or 'empty'}", [cmd, *extra, "--timeout", value], 2,
             line)
for rng, line in (
    (["nan", "1"], r"the range must be two finite numbers"),
    (["0", "inf"], r"the range must be two finite numbers"),
    (["1", "0"], r"the range must be two finite numbers, low < high"),
    (["1", "1"], r"the range must be two finite numbers, low < high"),
    (["a", "1"], r"argument --range: invalid float value: 'a'"),
    (["-1e400", "1"], r"the range must be two finite numbers"),
):
    case(f"args-plot-range-{'_'.join(rng)}", ["plot", "x", "--range", *rng, "--out", "t.png"],
         2, line)
for out, line in (("", r"The image file name is empty"), ("/dev/null", r"character device"),
                  ("sub", r"sub is a folder"), ("nowhere/x.png", r"the folder nowhere does not"),
                  ("x.jpg", r"give a \.png file name, got 'x\.jpg'")):
    case(f"args-plot-out-{out or 'empty'}", ["plot", "x", "--out", out], 1, line)
for out, line in (("", r"The predictions file name is empty"),
                  ("/dev/null", r"/dev/null is a character device"), ("sub", r"sub is a folder"),
                  ("nowhere/p.csv", r"the folder nowhere does not exist"),
                  ("fifo.csv", r"fifo\.csv is a FIFO")):
    case(f"args-predict-out-{out or 'empty'}", ["predict", "model.safetensors", "--data",
                                               "good.csv", "--out", out], 1, line)
for argv, rc, line in (
    (["derive", "x\udcff"], 2, r"the argument 'x\\xff' is not valid UTF-8 text"),
    (["train", "--data", "\udcff.csv"], 2, r"not valid UTF-8 text"),
    (["nope"], 2, r"invalid choice: 'nope'"),
    (["derive"], 2, r"Nothing to derive"),
    (["derive", "x", "--format", "pdf"], 2, r"argument --format: invalid choice"),
    (["derive", "x", "--wrt", "q"], 2, r"unknown symbol 'q'|not a variable|wrt"),
    (["derive", "--activation", "nope"], 2, r"unknown activation|nope"),
    (["derive", "--loss", "nope"], 2, r"unknown loss|nope"),
    (["derive", "x", "--activation", "tanh"], 2, r"not both|either|."),
    (["predict"], 2, r"the following arguments are required"),
    (["predict", "model.safetensors"], 2, r"the following arguments are required: --data"),
    (["evaluate", "model.safetensors", "--data", "digits"], 1, r"features but the model"),
    (["plot"], 2, r"the following arguments are required: functions"),
    (["plot", "nope_activation", "--out", "t.png"], 2, r"unknown name|unknown"),
    (["train", "--data", "nope"], 1, r"Unknown data set 'nope'"),
    (["train", "--data", "good.csv", "--target", "a", "--target", "b", "--epochs", "0"], 2,
     r"argument --epochs: expected an integer >= 1"),
    (["check", "--function", "x"], 2, r"required|formula"),
    (["check", "--loss", "nope", "1"], 2, r"unknown loss|nope"),
):
    case(f"args-{'_'.join(argv)[:50]}", argv, rc, line)

# writing over an existing output only happens on success; a failed run leaves it alone
case("args-predict-existing-bad-model", ["predict", "trunc_half.safetensors", "--data",
                                         "good.csv", "--out", "existing.csv"], 1, r"truncated")
case("args-plot-existing-bad-formula", ["plot", "x.real", "--out", "existing.png"], 2,
     r"unsupported syntax")
case("args-train-existing-diverged", [*TRAIN_GOOD, "--lr", "1e30", "--batch-size", "1000",
                                      "--out", "existing.safetensors"], 1,
     r"diverged")


# --- API arguments ------------------------------------------------------------------------------
# (id, a call that must raise, the exception type, a pattern for its message)


def _api_cases():
    from chainrule import data as cdata
    from chainrule.derivation import derive
    from chainrule.derivation.parser import parse_expression
    from chainrule.nn import Dense, Dropout, mlp
    from chainrule.serialization import write_safetensors

    X = np.random.default_rng(0).normal(size=(12, 3))
    y = X @ np.array([1.0, -1.0, 0.5])

    def fit(**kw):
        return lambda: mlp([3, 4, 1], seed=0).fit(X, y, verbose=0, **kw)

    def gradcheck_wrong_shape():
        report = chainrule.gradcheck(lambda v: np.sum(v**2), lambda v: np.zeros(5), np.ones(3))
        raise ValueError(str(report))

    return [
        ("fit-callbacks-int", fit(callbacks=[5], epochs=1), ValueError,
         r"callbacks must be callables f\(epoch, logs, model\); got 5 \(int\)"),
        ("fit-callbacks-str", fit(callbacks=["stop"], epochs=1), ValueError,
         r"callbacks must be callables"),
        ("fit-epochs-str", fit(epochs="3"), ValueError,
         r"'epochs' parameter of fit must be an integer in the range \[1, inf\); got '3'"),
        ("fit-epochs-zero", fit(epochs=0), ValueError,
         r"'epochs' parameter of fit must be an integer in the range \[1, inf\); got 0"),
        ("fit-epochs-bool", fit(epochs=True), ValueError,
         r"'epochs' parameter of fit must be an integer"),
        ("fit-batch-float", fit(batch_size=2.5), ValueError,
         r"'batch_size' parameter of fit must be an integer"),
        ("fit-validation-2", fit(validation_split=2), ValueError,
         r"'validation_split' parameter of fit must be"),
        ("fit-patience-zero", fit(early_stopping=0), ValueError,
         r"'early_stopping' parameter of fit \(a patience in epochs\)"),
        ("fit-weights-negative", fit(sample_weight=-np.ones(12)), ValueError,
         r"sample_weight needs 12 non-negative values"),
        ("fit-weights-short", fit(sample_weight=np.ones(3)), ValueError,
         r"sample_weight needs 12"),
        ("fit-lr-huge", fit(lr=1e30, epochs=1, batch_size=12), FloatingPointError,
         r"Training diverged at epoch 1: after its last update the model's outputs overflow"),
        ("fit-lr-huge-sgd", fit(lr=1e30, optimizer="sgd", epochs=1, batch_size=12),
         FloatingPointError, r"Training diverged at epoch 1"),
        ("fit-targets-1e20", lambda: mlp([3, 4, 1], seed=0).fit(X, np.full(12, 1e20), verbose=0),
         FloatingPointError, r"targets reach 1e\+20"),
        ("fit-X-nan", lambda: mlp([3, 4, 1], seed=0).fit(np.full((12, 3), np.nan), y,
                                                         verbose=0),
         ValueError, r"X contains NaN at index \(0, 0\)"),
        ("fit-y-length", lambda: mlp([3, 4, 1], seed=0).fit(X, y[:5], verbose=0), ValueError,
         r"X has 12 samples but y has 5"),
        ("fit-X-text", lambda: mlp([3, 4, 1], seed=0).fit([["a", "b", "c"]], [1], verbose=0),
         ValueError, r"X must be a numeric array; got dtype <U1"),
        ("predict-width", lambda: mlp([3, 4, 1], seed=0).predict(np.ones((2, 5))), ValueError,
         r"expects X of shape \(m, 3\); got \(2, 5\)"),
        ("predict-nan", lambda: mlp([3, 4, 1], seed=0).predict(np.full((2, 3), np.nan)),
         ValueError, r"X contains NaN"),
        ("load-empty", lambda: chainrule.load(""), ValueError, r"The model file name is empty"),
        ("load-dev-zero", lambda: chainrule.load("/dev/zero"), ValueError,
         r"/dev/zero is a character device"),
        ("load-folder", lambda: chainrule.load("."), ValueError, r"\. is a folder"),
        ("load-missing", lambda: chainrule.load("no/such.safetensors"), FileNotFoundError,
         r"no/such\.safetensors: no such model file"),
        ("save-dev-null", lambda: mlp([2, 2], seed=0).save("/dev/null"), ValueError,
         r"/dev/null is a character device, not a regular file"),
        ("save-empty", lambda: mlp([2, 2], seed=0).save(""), ValueError,
         r"The model file name is empty"),
        ("write-bad-name", lambda: write_safetensors("t.safetensors", {1: np.ones(2)}),
         ValueError, r"Tensor names must be str"),
        ("write-object", lambda: write_safetensors("t.safetensors", {"a": np.array([None])}),
         ValueError, r"dtype object, which safetensors cannot store"),
        ("write-meta", lambda: write_safetensors("t.safetensors", {}, {"k": 1}), ValueError,
         r"metadata\['k'\] must be a str"),
        ("derive-int", lambda: derive(123), ValueError, r"."),
        ("parse-bytes", lambda: parse_expression(b"x"), ValueError,
         r"A formula must be a string; got bytes"),
        ("parse-surrogate", lambda: parse_expression("x\udcff"), ValueError,
         r"a byte that is not UTF-8 text at column 2"),
        ("gradcheck-shape", gradcheck_wrong_shape, ValueError,
         r"has shape \(5,\) but the variable has shape \(3,\)"),
        ("mlp-zero", lambda: mlp([0, 3]), ValueError, r"all >= 1; got \[0, 3\]"),
        ("dense-zero", lambda: Dense(0, 1), ValueError, r"in_features"),
        ("dropout-1", lambda: Dropout(1.0), ValueError, r"'p' parameter of Dropout"),
        ("scaler-config", lambda: cdata.scaler_from_config({"type": "standard", "mean": [0],
                                                             "scale": [-1]}),
         ValueError, r"every scale must be positive"),
        ("scaler-overflow", lambda: cdata.Standardizer().fit(np.array([[0.0], [1e-150]]))
         .transform(np.array([[1e300]])), ValueError, r"Scaling overflowed float64"),
        ("dataset-empty", lambda: cdata.load_dataset(""), ValueError, r"data set name is empty"),
        ("csv-dev-zero", lambda: cdata.load_csv("/dev/zero"), ValueError,
         r"/dev/zero is a character device"),
        ("npz-dev-zero", lambda: cdata.load_npz("/dev/zero"), ValueError,
         r"/dev/zero is a character device"),
        ("idx-dev-zero", lambda: cdata.load_idx("/dev/zero"), ValueError,
         r"/dev/zero is a character device"),
    ]


API_CASES = _api_cases()


@pytest.mark.parametrize("name,call,kind,pattern", API_CASES, ids=[c[0] for c in API_CASES])
def test_bad_api_argument(name, call, kind, pattern, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with _watchdog(IN_PROCESS_SECONDS), _memory_limit(MEMORY_HEADROOM):
        with pytest.raises(kind) as info:
            call()
    message = str(info.value)
    assert re.search(pattern, message), message
    assert not FOREIGN.search(message), message
    assert list(tmp_path.iterdir()) == []  # nothing written


# --- the runner ---------------------------------------------------------------------------------


class _Hung(BaseException):
    """Raised in the main thread by the watchdog when a case runs past its time limit."""


@contextlib.contextmanager
def _watchdog(seconds: float):
    """Interrupt the main thread (even inside a blocking system call) after ``seconds``."""
    main_id = threading.main_thread().ident
    done = threading.Event()

    def on_signal(signum, frame):
        raise _Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGUSR1, on_signal)

    def watch():
        if not done.wait(seconds):
            signal.pthread_kill(main_id, signal.SIGUSR1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        signal.signal(signal.SIGUSR1, previous)


@contextlib.contextmanager
def _memory_limit(extra: int):
    """Limit this process's address space to its current size plus ``extra`` bytes."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        current = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    limit = current + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _snapshot(root: Path) -> dict:
    state = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            st = os.lstat(p)
            state[str(p.relative_to(root))] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)
    return state


_SUBPROCESS = (
    "import resource, sys\n"
    "resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
    "from chainrule.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _run_subprocess(argv: list[str], cwd: Path) -> tuple[int, str, str]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    code = _SUBPROCESS.format(limit=SUBPROCESS_MEMORY)
    args = [sys.executable, "-c", code, *(os.fsencode(a) for a in argv)]
    try:
        proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True,
                              timeout=SUBPROCESS_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {SUBPROCESS_SECONDS} s")
    return (proc.returncode, proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"))


def _run_in_process(argv, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    with _watchdog(IN_PROCESS_SECONDS), _memory_limit(MEMORY_HEADROOM):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse
            rc = exc.code
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        _write_files(root)
    finally:
        os.chdir(cwd)
    return root


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input(c: Case, workdir, capsys, monkeypatch):
    monkeypatch.chdir(workdir)
    before = _snapshot(workdir)
    if c.sub:
        rc, out, err = _run_subprocess(c.argv, workdir)
    else:
        rc, out, err = _run_in_process(c.argv, capsys)
    after = _snapshot(workdir)
    for name in c.may_create:
        after.pop(name, None)
        (workdir / name).unlink(missing_ok=True)
    lines = [s for s in err.splitlines() if s.strip()]
    report = f"exit {rc}\nstderr:\n{err[-3000:]}\nstdout:\n{out[-1500:]}"
    assert not FOREIGN.search(err + out), report
    assert rc == c.rc, report
    assert after == before, f"files changed: {set(after) ^ set(before) or 'contents'}\n{report}"
    if c.rc in (1, 2):  # a failure (1) or bad usage (2): one line that names the command
        assert len(lines) == 1, report
        assert re.search(c.line, lines[0], re.IGNORECASE), report
        assert lines[0].startswith("chainrule"), report
    else:
        assert not lines, report
        if c.stdout:
            assert re.search(c.stdout, out), report


def test_the_corpus_is_large_and_covers_every_area():
    areas = {c.id.split("-")[0] for c in CASES}
    assert areas == {"data", "model", "formula", "train", "args"}
    assert len(CASES) + len(API_CASES) >= 300
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
