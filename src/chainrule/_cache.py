"""Answers remembered on disk, so that a repeated derivation or check answers at once.

An entry is one JSON file named by the SHA-256 of its key: chainrule's version, a fingerprint
of the installed source (the size and time of each of its files, so an edited checkout never
reads an answer written by other code), what was asked (``"derive"``, ``"check"``) and the
request, the JSON of the canonical query. The file repeats its key; a file that is not JSON,
holds another key or lacks the answer is ignored (and overwritten by the next answer). Nothing
is ever unpickled or evaluated: an entry is read with :func:`json.loads` only.

The folder is ``$CHAINRULE_CACHE_DIR`` when set (set to the empty string, nothing is cached),
else ``answers`` in the user cache folder (platformdirs' ``user_cache_dir("chainrule")``, the
same rule without platformdirs: ``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux,
``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows). Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from functools import cache
from pathlib import Path

__all__ = ["CACHE_DIR_ENV", "cache_folder", "load", "store"]

CACHE_DIR_ENV = "CHAINRULE_CACHE_DIR"
_PACKAGE = Path(__file__).resolve().parent


def _user_cache() -> Path:
    try:
        import platformdirs
    except ImportError:
        home = Path.home()
        if sys.platform == "darwin":
            return home / "Library" / "Caches" / "chainrule"
        if os.name == "nt":
            return Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local")) / "chainrule"
        return Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "chainrule"
    return Path(platformdirs.user_cache_dir("chainrule", appauthor=False))


def cache_folder() -> Path | None:
    """Where answers are kept (None: ``$CHAINRULE_CACHE_DIR`` is set empty, no cache)."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env is not None:
        return Path(env).expanduser() if env.strip() else None
    return _user_cache() / "answers"


@cache
def _fingerprint() -> str:
    """The version and the size and time of every source file of the installed package."""
    from chainrule import __version__

    digest = hashlib.sha256(__version__.encode())
    for path in sorted(_PACKAGE.rglob("*")):
        if path.suffix in (".py", ".html", ".css") and "__pycache__" not in path.parts:
            info = path.stat()
            digest.update(f"{path.relative_to(_PACKAGE)}:{info.st_size}:{info.st_mtime_ns}"
                          .encode())
    return digest.hexdigest()


def _key(kind: str, request: dict) -> dict:
    from chainrule import __version__

    return {"version": __version__, "source": _fingerprint(), "kind": kind, "request": request}


def _path(folder: Path, key: dict) -> Path:
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return folder / name[:2] / f"{name}.json"


def load(kind: str, request: dict) -> dict | None:
    """The answer stored for ``request`` (a JSON-able dict), or None (not stored, no cache
    folder, or an entry that is unreadable or not this key's)."""
    folder = cache_folder()
    if folder is None:
        return None
    key = _key(kind, request)
    try:
        entry = json.loads(_path(folder, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None
    answer = entry.get("answer")
    return answer if isinstance(answer, dict) else None


def store(kind: str, request: dict, answer: dict) -> None:
    """Keep ``answer`` (a JSON-able dict) for ``request``; a folder that cannot be written
    leaves things as they are (the cache only saves time)."""
    folder = cache_folder()
    if folder is None:
        return
    from chainrule._io import atomic_write

    key = _key(kind, request)
    text = json.dumps({"key": key, "answer": answer}, ensure_ascii=False, sort_keys=True)
    path = _path(folder, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), what="a cached answer")
    except (OSError, ValueError):
        pass
