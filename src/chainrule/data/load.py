"""One entry point: a data set from one string, as the command line's ``--data``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from chainrule._io import check_input_file
from chainrule.data.builtin import BUILTINS, load_builtin
from chainrule.data.csvfile import load_csv
from chainrule.data.dataset import Dataset
from chainrule.data.idx import NAMED_IDX, find_data_folder, load_idx_folder
from chainrule.data.npz import load_npz

__all__ = ["load_dataset"]


def load_dataset(spec, target: str | None = None, task: str | None = None,
                 download: bool = True, progress: bool = True) -> Dataset:
    """Load a data set from one string, as ``chainrule train --data`` does.

    ``spec`` is, in this order: a built-in name (:data:`BUILTINS`), ``"mnist"`` or
    ``"fashion-mnist"`` (:func:`find_data_folder`; downloaded on first use with
    :func:`chainrule.download.fetch` unless ``download=False``), a folder of IDX files, or a file
    ending in ``.csv`` (or ``.csv.gz``) or ``.npz``. ``target`` names a CSV's target column;
    ``progress=False`` downloads without the progress lines.
    """
    text = os.fspath(spec)
    if not str(text).strip():
        raise ValueError("The data set name is empty; give a built-in name such as digits, a "
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
            return load_idx_folder(_published_folder(name, download, progress), name=name)
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
        check_input_file(path, "data file")  # a device or a FIFO: say so
        raise ValueError(f"Cannot tell how to read {text}: expected {options}.")
    raise ValueError(f"Unknown data set {text!r} (no such file or folder either); use {options}.")


def _published_folder(name: str, download: bool, progress: bool) -> Path:
    """The folder of the named data set holding its published files: found, verified (each
    file hashed once, then known by its size and time) and completed by a download of what is
    missing or altered unless ``download=False``."""
    from chainrule import download as remote

    try:
        folder = find_data_folder(name)
    except FileNotFoundError:
        if not download:
            raise
        return remote.fetch(name, progress=progress)
    problems = remote.check_folder(name, folder)
    if not problems:
        return folder
    listed = "; ".join(f"{file}: {what}" for file, what in problems.items())
    home = remote.data_home()
    if not download or home is None or folder.resolve() != (home / name).resolve():
        raise ValueError(f"{folder} does not hold the published {name} files ({listed}). "
                         f"Fetch them with: chainrule data download {name}.")
    if progress:
        print(f"{folder}: {listed}; downloading again.", file=sys.stderr, flush=True)
    return remote.fetch(name, progress=progress)
