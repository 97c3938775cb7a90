"""Files in and out: one atomic writer for everything chainrule writes, and checks on the files
it reads.

Writing: :func:`atomic_write` writes to a new temporary file in the target's folder (so the
rename stays on one filesystem), flushes and fsyncs it, then renames it over the target with
:func:`os.replace`. If anything fails on the way (an error, a full disk, Ctrl-C) the temporary
file is removed and an existing target is left byte for byte as it was. The new file gets the
permissions of any new file (``0o666`` less the umask). A target that exists but is not a
regular file (a folder, a device such as ``/dev/null``, a FIFO) is refused: renaming over it
would replace the device itself.

Reading: :func:`check_input_file` refuses what is not a regular file before it is opened (a
FIFO would block forever, ``/dev/zero`` never ends), and :func:`read_bounded` reads a file,
gzip-compressed or not, refusing to hold more than a stated number of bytes after
decompression (a small gzip file can inflate to gigabytes).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "MAX_DATA_BYTES",
    "atomic_write",
    "check_input_file",
    "check_output_path",
    "free_name",
    "read_bounded",
    "read_head",
]

#: The most bytes a data file may hold once decompressed (4 GiB; MNIST's training images are
#: 47 MB). Larger files are refused before they fill memory.
MAX_DATA_BYTES = 4 * 2**30

_GZIP_MAGIC = b"\x1f\x8b"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_output_path(path, what: str = "the output") -> Path:
    """``path`` as a Path, refused when it cannot name a new or replaceable regular file: empty,
    a folder, a device, a FIFO, or inside a folder that does not exist."""
    text = os.fspath(path)
    if str(text).strip() == "":
        example = {"the model": "model.safetensors", "the predictions": "predictions.csv"}
        raise ValueError(f"{what[:1].upper()}{what[1:]} file name is empty; give a file name "
                         f"such as {example.get(what, 'figure.png')}.")
    path = Path(text)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise OSError(f"{path}: cannot write {what} there ({exc.strerror}).") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise ValueError(
            f"{path} is {_kind(mode)}, not a regular file; chainrule replaces only regular "
            f"files. Choose another name for {what}."
        )
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"{path}: cannot write {what}: the folder {folder} does not exist.")
    return path


def _temporary_file(path: Path) -> tuple[Path, int]:
    """Create a new, empty file next to ``path``; 0o666 and the umask give its permissions."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); harmless to skip where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write: Callable[[BinaryIO], object], *, what: str = "the output",
                 replace: bool = True) -> Path:
    """Write a file through ``write(fh)`` (``fh`` a binary file object) all at once or not at all.

    With ``replace=False`` an existing ``path`` is never overwritten: FileExistsError instead.
    A full disk is reported as an OSError naming the file; the temporary file is removed and
    any existing ``path`` is left unchanged in every case.
    """
    path = check_output_path(path, what)
    with _ctrl_c_deferred():
        return _write_and_rename(path, write, what, replace)


@contextlib.contextmanager
def _ctrl_c_deferred():
    """Hold back SIGINT while a file is written: Ctrl-C then takes effect once the new file is
    complete or removed, never between creating the temporary file and cleaning it up."""
    usable = (hasattr(signal, "pthread_sigmask")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _write_and_rename(path: Path, write, what: str, replace: bool) -> Path:
    tmp, fd = _temporary_file(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            _rename_no_replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in _DISK_FULL:
            raise OSError(exc.errno, f"{path}: the disk is full; {what} was not written "
                          "(an existing file of that name is unchanged). Free some space or "
                          "choose another folder.") from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _rename_no_replace(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path``; FileExistsError if ``path`` exists (never replaced)."""
    try:
        os.link(tmp, path)  # atomic, and fails instead of replacing
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: claim the name, then rename over it
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.replace(tmp, path)
    else:
        tmp.unlink()


def free_name(path, tag: str) -> Path:
    """A name beside ``path`` that does not exist yet: ``model.<tag>.safetensors``, then
    ``model.<tag>-2.safetensors``, ..."""
    path = Path(path)
    suffix = "".join(path.suffixes[-1:])
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    n = 1
    while True:
        name = f"{stem}.{tag}{'' if n == 1 else f'-{n}'}{suffix}"
        candidate = path.with_name(name)
        if not os.path.lexists(candidate):
            return candidate
        n += 1


def check_input_file(path, what: str = "file") -> Path:
    """``path`` as a Path if it names a regular file; FileNotFoundError or ValueError otherwise
    (a folder, a FIFO or a device is refused before it is opened: reading one can block forever
    or never end)."""
    text = os.fspath(path)
    if str(text).strip() == "":
        raise ValueError(f"The {what} name is empty; give the path of a {what}.")
    path = Path(text)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such {what}.") from None
    except OSError as exc:
        raise OSError(f"{path}: cannot read the {what} ({exc.strerror}).") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path} is {_kind(mode)}, not a regular file; give the path of a "
                         f"{what}.")
    return path


def read_bounded(path, limit: int = MAX_DATA_BYTES, what: str = "file") -> bytes:
    """The bytes of a regular file, decompressed when it is gzip (by content), refused with a
    ValueError once they would exceed ``limit`` bytes."""
    path = check_input_file(path, what)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(2)
        if head != _GZIP_MAGIC:
            if size > limit:
                raise ValueError(f"{path}: {size:,} bytes, more than the {limit:,} a {what} may "
                                 "hold.")
            rest = fh.read(min(limit, size) + 1 - len(head))  # read(n) allocates n bytes
            if len(head) + len(rest) > limit:
                raise ValueError(f"{path}: more than the {limit:,} bytes a {what} may hold.")
            return head + rest
        fh.seek(0)
        return _gunzip_bounded(fh, path, limit, what)


def read_head(path, n: int, what: str = "file") -> bytes:
    """The first ``n`` bytes of a regular file, after decompression when it is gzip."""
    path = check_input_file(path, what)
    with open(path, "rb") as fh:
        raw = fh.read(max(n, 2))
        if raw[:2] != _GZIP_MAGIC:
            return raw[:n]
        decoder = zlib.decompressobj(wbits=31)
        out = bytearray()
        try:
            while len(out) < n and raw:
                out += decoder.decompress(decoder.unconsumed_tail or raw, n - len(out))
                if decoder.eof:
                    break
                raw = decoder.unconsumed_tail or fh.read(1 << 16)
        except zlib.error as exc:
            raise ValueError(f"{path}: corrupted gzip data ({exc}).") from None
        return bytes(out[:n])


def _gunzip_bounded(fh: BinaryIO, path: Path, limit: int, what: str) -> bytes:
    """Decompress a gzip stream (possibly of several members) into at most ``limit`` bytes."""
    out = bytearray()
    decoder, fed, pending = zlib.decompressobj(wbits=31), False, b""
    try:
        while True:
            if decoder.unconsumed_tail:
                chunk = decoder.unconsumed_tail
            elif pending:
                chunk, pending = pending, b""
            else:
                chunk = fh.read(1 << 20)
            if not chunk:
                break
            fed = True
            out += decoder.decompress(chunk, limit + 1 - len(out))
            if len(out) > limit:
                raise ValueError(
                    f"{path}: decompresses to more than {limit:,} bytes, more than a {what} may "
                    "hold (a damaged or deliberately inflated gzip file?)."
                )
            if decoder.eof:  # another gzip member may follow
                pending = decoder.unused_data
                decoder, fed = zlib.decompressobj(wbits=31), False
    except zlib.error as exc:
        raise ValueError(f"{path}: corrupted or truncated gzip data ({exc}).") from None
    if fed and not decoder.eof:
        raise ValueError(f"{path}: corrupted or truncated gzip data (it ends in the middle of "
                         "the compressed stream).")
    return bytes(out)
