"""Writing matplotlib figures (used by ``chainrule plot`` and ``chainrule train --plot``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def save_png(fig, path, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` as PNG atomically: a temporary file in the same folder, then a
    rename, so an interrupted write never leaves a partial image over an existing one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=dpi, format="png")
        umask = os.umask(0)  # mkstemp made the file 0600: give it the mode open() would
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
