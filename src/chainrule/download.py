"""MNIST and Fashion-MNIST from their public mirrors: verified, cached, and found again.

:func:`fetch` downloads the four gzip IDX files of a data set with `pooch
<https://www.fatiando.org/pooch>`_, checks each against its published SHA-256 before keeping it
(pooch writes to a temporary file and renames it only when the hash matches), and stores it in
:func:`data_home`: ``$CHAINRULE_DATA_DIR`` when set, else the platform's user cache folder
(`platformdirs <https://platformdirs.readthedocs.io>`_), e.g. ``~/.cache/chainrule`` on Linux.
:func:`cached_folder` finds the files again without importing either library.

pooch and platformdirs are the optional extra ``data`` (``pip install ".[data]"`` from a clone,
``pip install "chainrule[data]"`` once published); they are imported only by :func:`fetch`.

``$CHAINRULE_DATA_MIRROR`` replaces the public mirrors by one base URL under which the files lie
as ``<base>/<name>/<file>`` (an institution's mirror, or a local server).

Examples
--------
>>> from chainrule.download import DATASETS
>>> list(DATASETS)
['mnist', 'fashion-mnist']
>>> sorted(DATASETS["mnist"].files)[:2]
['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DATASETS", "DownloadError", "Remote", "cached_folder", "check_folder", "data_home",
           "fetch"]

DATA_DIR_ENV = "CHAINRULE_DATA_DIR"
MIRROR_ENV = "CHAINRULE_DATA_MIRROR"

#: Seconds without a byte after which a download counts as stalled.
READ_TIMEOUT = 60.0
#: A file's whole download may take ``TOTAL_GRACE`` seconds plus its size over ``MIN_RATE``
#: (bytes per second); past that it is given up, whatever the mirror still sends.
TOTAL_GRACE = 120.0
MIN_RATE = 20_000
#: The memo of verified files in a data set's folder: name -> [size, mtime_ns].
VERIFIED_MEMO = ".verified.json"


@dataclass(frozen=True)
class Remote:
    """A data set's public mirrors (tried in order), its files with their SHA-256 and their
    published sizes in bytes (a download stops at the first byte past its size)."""

    mirrors: tuple[str, ...]
    files: dict[str, str]
    reference: str
    sizes: dict[str, int] = field(default_factory=dict)


#: The published files, as a checksum list: data set, file, SHA-256 and size in bytes. The
#: MNIST hashes are the ones TensorFlow Datasets pins (their MD5 are LeCun's published ones);
#: Fashion-MNIST's are those of Zalando Research's own download location.
_PUBLISHED = """
mnist train-images-idx3-ubyte.gz 440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609 9912422
mnist train-labels-idx1-ubyte.gz 3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c 28881
mnist t10k-images-idx3-ubyte.gz 8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6 1648877
mnist t10k-labels-idx1-ubyte.gz f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6 4542
fashion-mnist train-images-idx3-ubyte.gz 3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84 26421880
fashion-mnist train-labels-idx1-ubyte.gz a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845 29515
fashion-mnist t10k-images-idx3-ubyte.gz 346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073 4422102
fashion-mnist t10k-labels-idx1-ubyte.gz 67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5 5148
"""  # noqa: E501 (one file a line, as a checksum list is written)


def _checksums(name: str) -> dict:
    """``files`` (name -> SHA-256) and ``sizes`` (name -> bytes) of ``name`` in the list."""
    rows = [line.split() for line in _PUBLISHED.strip().splitlines()]
    ours = [row for row in rows if row[0] == name]
    return {"files": {row[1]: row[2] for row in ours},
            "sizes": {row[1]: int(row[3]) for row in ours}}


DATASETS: dict[str, Remote] = {
    # The mirrors torchvision and TensorFlow Datasets download MNIST from.
    "mnist": Remote(
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        **_checksums("mnist"),
        reference="Y. LeCun, C. Cortes, C. J. C. Burges, The MNIST database of handwritten "
                  "digits (CC BY-SA 3.0)",
    ),
    # Zalando Research's own download location (the URLs of its README).
    "fashion-mnist": Remote(
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        **_checksums("fashion-mnist"),
        reference="H. Xiao, K. Rasul, R. Vollgraf, Fashion-MNIST, arXiv:1708.07747 (MIT "
                  "License, Copyright (c) 2017 Zalando SE)",
    ),
}

_ALIASES = {"fashion_mnist": "fashion-mnist"}


class DownloadError(OSError):
    """A data set could not be downloaded or failed its checksum; the message says what to do."""


def _canonical(name: str) -> str:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise ValueError(f"Unknown downloadable data set {name!r}; choose one of "
                         f"{', '.join(DATASETS)}.")
    return key


def _platform_cache() -> Path | None:
    try:
        import platformdirs
    except ImportError:
        return None
    return Path(platformdirs.user_cache_dir("chainrule", appauthor=False))


def data_home() -> Path | None:
    """Where downloaded data sets live: ``$CHAINRULE_DATA_DIR``, else the user cache folder
    (None when that variable is unset and platformdirs is not installed)."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return _platform_cache()


def cached_folder(name: str) -> Path | None:
    """The folder of ``name`` under :func:`data_home` if it holds all four files, else None."""
    home = data_home()
    if home is None:
        return None
    folder = home / _canonical(name)
    files = DATASETS[_canonical(name)].files
    return folder if all((folder / f).is_file() for f in files) else None


def _urls(name: str) -> list[str]:
    override = os.environ.get(MIRROR_ENV)
    if override:
        return [override.rstrip("/") + f"/{name}/"]
    return list(DATASETS[name].mirrors)


def manual_instructions(name: str) -> str:
    """One sentence: where to get the files by hand and where to put them."""
    name = _canonical(name)
    home = data_home()
    where = (f"{home / name}" if home is not None
             else f"$CHAINRULE_DATA_DIR/{name} (set CHAINRULE_DATA_DIR first)")
    return (f"Download {', '.join(DATASETS[name].files)} from {' or '.join(_urls(name))} by "
            f"hand and put them in {where}.")


class _Bar:
    """A plain progress bar on a stream, with the interface pooch expects (total, update,
    reset, close). Redrawn in place on a terminal; one line at the end otherwise."""

    def __init__(self, label: str, stream):
        self.label, self.stream = label, stream
        self.total, self.done = 0, 0
        self.live = bool(getattr(stream, "isatty", lambda: False)())

    def _line(self) -> str:
        mb = 1e6
        if self.total:
            frac = min(self.done / self.total, 1.0)
            filled = int(frac * 30)
            return (f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {frac:4.0%} "
                    f"{min(self.done, self.total) / mb:.1f}/{self.total / mb:.1f} MB")
        return f"{self.label} {self.done / mb:.1f} MB"

    def update(self, n: int) -> None:
        self.done += n
        if self.live:
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def reset(self) -> None:
        self.done = 0

    def close(self) -> None:
        self.stream.write(("\r" if self.live else "") + self._line() + "\n")
        self.stream.flush()


def _follow_umask(path: Path) -> None:
    # pooch's temporary file is created with mode 0600; give the kept file the usual mode.
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def fetch(name: str, progress: bool = True, stream=None) -> Path:
    """Download the data set ``name`` ("mnist" or "fashion-mnist") unless it is already cached,
    and return its folder (for :func:`chainrule.data.load_idx_folder`).

    Each file is verified against its SHA-256 before it is kept; a file that fails is deleted
    and :class:`DownloadError` names the URL and both hashes. Files already present are
    verified too and downloaded again when they fail. Mirrors are tried in order. Without a
    connection, :class:`DownloadError` says where to get the files and where to put them.

    Parameters
    ----------
    progress : bool
        Show a progress bar per file on ``stream``.
    stream : file-like, optional
        Where progress goes; default ``sys.stderr``.
    """
    name = _canonical(name)
    stream = sys.stderr if stream is None else stream
    try:
        import platformdirs  # noqa: F401
        import pooch
        import requests
    except ImportError as exc:
        raise ImportError(
            f"Downloading {name} needs the optional dependencies pooch and platformdirs "
            f"({exc.name} is missing): pip install \".[data]\" from a clone of chainrule, or "
            "pip install \"chainrule[data]\" once it is published. Or: "
            + manual_instructions(name)
        ) from None
    folder = data_home() / name
    existed = folder.exists()
    remote = DATASETS[name]
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")
    try:
        for file, sha256 in remote.files.items():
            _fetch_one(name, file, sha256, folder, progress, stream, pooch, requests)
    except BaseException:
        # A failed first download leaves no empty folder behind to be taken for the data.
        if not existed and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise
    finally:
        logger.setLevel(level)
    return folder


def _fetch_one(name, file, sha256, folder, progress, stream, pooch, requests) -> None:
    target = folder / file
    if target.is_file() and _is_published(target, sha256):
        return
    failures = []
    size = DATASETS[name].sizes.get(file)
    for base in _urls(name):
        url = base + file
        bar = _Bar(f"{name}/{file}", stream) if progress else None
        if progress:
            print(f"Downloading {url} into {folder}", file=stream, flush=True)
        try:
            path = pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=file, path=folder,
                                  downloader=_CappedDownload(size, bar, requests))
        except ValueError as exc:  # pooch's hash mismatch: the temporary file is already gone
            got = str(exc).split(" but got ")[-1].split()[0].rstrip(".")
            raise DownloadError(
                f"{url} has SHA-256 {got}, not the published {sha256}: the file is corrupted "
                "or not the original, and was not kept. Try again later or another mirror "
                f"(set {MIRROR_ENV}). " + manual_instructions(name)
            ) from None
        except _Refused as exc:  # pooch removed the partial file
            failures.append(f"{url}: {exc}")
            continue
        except requests.exceptions.RequestException as exc:
            failures.append(f"{url}: {_reason(exc)}")
            continue
        _follow_umask(Path(path))
        _remember(target, sha256)
        return
    raise DownloadError(f"Cannot download {name} ({'; '.join(failures)}). "
                        + manual_instructions(name))


class _Refused(Exception):
    """A mirror's answer that is given up: too long, stalled or too slow."""


class _CappedDownload:
    """A pooch downloader that streams one file with requests and stops at the first byte past
    the file's published ``size``, after :data:`READ_TIMEOUT` seconds without a byte, or when
    the whole download outlasts :data:`TOTAL_GRACE` plus ``size / MIN_RATE`` seconds. pooch
    writes into a temporary file and removes it when this raises."""

    def __init__(self, size: int | None, bar, requests):
        self.size = size if size is not None else 2**28
        self.bar, self.requests = bar, requests

    def __call__(self, url, output_file, pooch_obj=None, check_only=False):
        import urllib3  # requests' own transport

        limit = TOTAL_GRACE + self.size / MIN_RATE
        deadline = time.monotonic() + limit
        received = 0
        try:
            with self.requests.get(url, stream=True, timeout=(30, READ_TIMEOUT)) as response:
                response.raise_for_status()
                if self.bar is not None:
                    self.bar.total = self.size
                with open(output_file, "wb") as out:
                    for chunk in _arriving(response.raw):
                        received += len(chunk)
                        if received > self.size:
                            raise _Refused(f"sent more than the published {self.size:,} bytes; "
                                           "stopped there and removed the partial file")
                        out.write(chunk)
                        if self.bar is not None:
                            self.bar.update(len(chunk))
                        if time.monotonic() > deadline:
                            raise _Refused(f"took longer than {limit:.0f} s for {received:,} of "
                                           f"{self.size:,} bytes; gave up and removed the "
                                           "partial file")
        except (self.requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
            if getattr(exc, "response", None) is not None:
                raise  # an HTTP status, reported as such
            if received:
                raise _Refused(f"stalled after {received:,} of {self.size:,} bytes (nothing for "
                               f"{READ_TIMEOUT:g} s); removed the partial file") from None
            if isinstance(exc, urllib3.exceptions.HTTPError):
                raise _Refused(_reason(exc)) from None
            raise
        finally:
            if self.bar is not None:
                self.bar.close()


def _arriving(raw):
    """The bytes of a streamed response as they arrive (urllib3's ``read1``), so that what a
    mirror sent before it stalled is counted."""
    read = getattr(raw, "read1", None) or raw.read
    while True:
        chunk = read(1 << 16, decode_content=True)
        if not chunk:
            return
        yield chunk


def _reason(exc) -> str:
    response = getattr(exc, "response", None)
    if response is not None:
        return f"HTTP {response.status_code}"
    if "Timeout" in type(exc).__name__ or "timed out" in str(exc):
        return f"no answer within {READ_TIMEOUT:g} s"
    return "no connection" if "Connection" in type(exc).__name__ else type(exc).__name__


# --- verification, once per file version ----------------------------------------------------------


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path, sha256: str) -> list:
    """What the memo keeps of a verified file: its size, its modification time and the hash it
    was verified against (so a memo copied beside other files vouches for nothing)."""
    info = path.stat()
    return [info.st_size, info.st_mtime_ns, sha256]


def _memo(folder: Path) -> dict:
    try:
        memo = json.loads((folder / VERIFIED_MEMO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def _remember(path: Path, sha256: str) -> None:
    """Note in the folder's memo that ``path``, as it is now, is the file of ``sha256``; a
    folder without its owner's write permission (a shared, read-only copy) is left as it is,
    even for a user allowed to write anyway."""
    from chainrule._io import atomic_write

    if not path.parent.stat().st_mode & stat.S_IWUSR:
        return
    memo = _memo(path.parent)
    memo[path.name] = _stamp(path, sha256)
    try:
        atomic_write(path.parent / VERIFIED_MEMO, lambda fh: fh.write(json.dumps(memo).encode()),
                     what="the memo of verified files")
    except OSError:
        pass  # a read-only folder is verified again next time


def _is_published(path: Path, sha256: str) -> bool:
    """Whether ``path`` is the published file: by the memo when its size and mtime are those
    verified before, else by its SHA-256 (then remembered)."""
    if _memo(path.parent).get(path.name) == _stamp(path, sha256):
        return True
    if _sha256_of(path) != sha256:
        return False
    _remember(path, sha256)
    return True


def _known_as(sha256: str) -> str:
    for name, remote in DATASETS.items():
        for file, sha in remote.files.items():
            if sha == sha256:
                return f" (it is {name}'s {file})"
    return ""


def check_folder(name: str, folder) -> dict[str, str]:
    """The files of the data set ``name`` that ``folder`` lacks or holds in another version:
    file name -> what is wrong (empty when all are the published files). Each file is hashed
    once; its size and modification time are remembered in the folder (where writable)."""
    name = _canonical(name)
    folder = Path(folder)
    problems = {}
    for file, sha256 in DATASETS[name].files.items():
        path = folder / file
        if not path.is_file():
            problems[file] = "missing"
        elif not _is_published(path, sha256):
            got = _sha256_of(path)
            problems[file] = (f"SHA-256 {got[:12]}..., not the published {sha256[:12]}..."
                              + _known_as(got))
    return problems
