"""CSV files: a header row naming the columns, one of them the target."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from chainrule._io import read_bounded
from chainrule.data.dataset import Dataset, infer_task, label_names

__all__ = ["MAX_CSV_BYTES", "load_csv"]

#: The largest CSV text read (after decompression); a bigger table belongs in an .npz file.
MAX_CSV_BYTES = 256 * 2**20


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
    header, rows = _read_table(path)
    if target is None:
        target = header[-1]
    elif target not in header:
        raise ValueError(f"{path}: no column named {target!r}; the columns are: "
                         f"{', '.join(header)}.")
    t = header.index(target)
    columns = list(zip(*(row for _, row in rows), strict=True))
    lines = [line for line, _ in rows]
    feature_names = [h for j, h in enumerate(header) if j != t]
    X = _feature_matrix([columns[j] for j in range(len(header)) if j != t], feature_names,
                        lines, path)
    y, task = infer_task(_target_values(columns[t], target, lines, path), task, str(path))
    class_names = label_names(y) if task == "classification" else None
    return Dataset(X, y, task=task, name=path.name, feature_names=feature_names,
                   class_names=class_names)


def _read_table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header's column names and the data rows (with their line numbers) of a CSV file:
    UTF-8 text, its delimiter the one that splits the header into the most fields (commas win
    ties), named columns, every row as wide as the header."""
    raw = read_bounded(path, MAX_CSV_BYTES, "CSV file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"{path}: not a UTF-8 text file (byte 0x{raw[exc.start]:02x} on line "
                         f"{line} is not UTF-8); is it really a CSV? Save it as UTF-8.") from None
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=lambda d: len(next(csv.reader([first], delimiter=d))))
    lines = _csv_rows(text, delimiter, path)
    if not lines:
        raise ValueError(f"{path}: the file is empty; expected a header row and data rows.")
    header = [h.strip() for h in lines[0][1]]
    _check_header(header, path)
    rows = lines[1:]
    if not rows:
        raise ValueError(f"{path}: only a header row; no data.")
    for line, row in rows:
        if len(row) != len(header):
            raise ValueError(f"{path}: line {line} has {len(row)} fields but the header has "
                             f"{len(header)}.")
    return header, rows


def _check_header(header: list[str], path: Path) -> None:
    """A header names two or more columns, each once, and is not a row of numbers."""
    if all(_looks_numeric(h) for h in header):
        raise ValueError(f"{path}: the first row ({', '.join(header[:5])}...) looks like data; "
                         "the first row must name the columns. Add a header row.")
    if len(header) < 2:
        raise ValueError(f"{path}: found one column ({header[0]!r}); expected features and a "
                         "target separated by commas.")
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise ValueError(f"{path}: the column names {duplicates} appear more than once.")


def _feature_matrix(columns: list, names: list[str], lines: list[int], path: Path) -> np.ndarray:
    """The feature columns as one float64 matrix; every value a finite number."""
    X = np.column_stack([_to_floats(list(column), name, lines[0], path)
                         for column, name in zip(columns, names, strict=True)])
    if not np.isfinite(X).all():
        j, i = np.argwhere(~np.isfinite(X).T)[0]
        raise ValueError(f"{path}: column {names[j]!r} holds {X[i, j]} on line "
                         f"{lines[i]}; remove or impute non-finite values.")
    return X


def _target_values(column, target: str, lines: list[int], path: Path) -> np.ndarray:
    """The target column: finite floats when every value is a number, else the strings."""
    values = [v.strip() for v in column]
    empty = [i for i, v in enumerate(values) if v == ""]
    if empty:
        raise ValueError(f"{path}: the target column {target!r} is empty on line "
                         f"{lines[empty[0]]}; drop the rows without a target.")
    if not all(_looks_numeric(v) for v in values):
        return np.array(values)
    y = np.array([float(v) for v in values])
    if not np.isfinite(y).all():
        i = int(np.flatnonzero(~np.isfinite(y))[0])
        raise ValueError(f"{path}: the target column {target!r} holds {y[i]} on line "
                         f"{lines[i]}; drop that row.")
    return y
