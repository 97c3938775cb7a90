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
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DATASETS", "DownloadError", "Remote", "cached_folder", "data_home", "fetch"]

DATA_DIR_ENV = "CHAINRULE_DATA_DIR"
MIRROR_ENV = "CHAINRULE_DATA_MIRROR"


@dataclass(frozen=True)
class Remote:
    """A data set's public mirrors (tried in order) and its files with their SHA-256."""

    mirrors: tuple[str, ...]
    files: dict[str, str]
    reference: str


DATASETS: dict[str, Remote] = {
    # The mirrors torchvision and TensorFlow Datasets download MNIST from; the SHA-256 are the
    # ones TensorFlow Datasets pins (their MD5 are LeCun's published ones).
    "mnist": Remote(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        files={
            "train-images-idx3-ubyte.gz":
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz":
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz":
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz":
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        reference="Y. LeCun, C. Cortes, C. J. C. Burges, The MNIST database of handwritten "
                  "digits (CC BY-SA 3.0)",
    ),
    # Zalando Research's own download location (the URLs of its README).
    "fashion-mnist": Remote(
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        files={
            "train-images-idx3-ubyte.gz":
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz":
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz":
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz":
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
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


def _progressbar(label: str, stream):
    try:
        import tqdm  # noqa: F401  (pooch draws its own bar with it)
    except ImportError:
        return _Bar(label, stream)
    return True if stream is sys.stderr else _Bar(label, stream)


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
        Show a progress bar per file on ``stream`` (tqdm's when it is installed).
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
    if target.is_file() and pooch.file_hash(str(target)) == sha256:
        return
    failures = []
    for base in _urls(name):
        url = base + file
        bar = _progressbar(f"{name}/{file}", stream) if progress else False
        downloader = pooch.HTTPDownloader(progressbar=bar, chunk_size=1 << 16, timeout=60)
        if progress:
            print(f"Downloading {url} into {folder}", file=stream, flush=True)
        try:
            path = pooch.retrieve(url, known_hash=f"sha256:{sha256}", fname=file,
                                  path=folder, downloader=downloader)
        except ValueError as exc:  # pooch's hash mismatch: the temporary file is already gone
            got = str(exc).split(" but got ")[-1].split()[0].rstrip(".")
            raise DownloadError(
                f"{url} has SHA-256 {got}, not the published {sha256}: the file is corrupted "
                "or not the original, and was not kept. Try again later or another mirror "
                f"(set {MIRROR_ENV}). " + manual_instructions(name)
            ) from None
        except requests.exceptions.RequestException as exc:
            failures.append(f"{url}: {_reason(exc)}")
            continue
        _follow_umask(Path(path))
        return
    raise DownloadError(f"Cannot download {name} ({'; '.join(failures)}). "
                        + manual_instructions(name))


def _reason(exc) -> str:
    response = getattr(exc, "response", None)
    if response is not None:
        return f"HTTP {response.status_code}"
    return "no connection" if "Connection" in type(exc).__name__ else type(exc).__name__
