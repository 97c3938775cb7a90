"""Writing matplotlib figures (used by ``chainrule plot`` and ``chainrule train --plot``)."""

from __future__ import annotations

from pathlib import Path

from chainrule._io import atomic_write


def save_png(fig, path, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` as PNG atomically (see :func:`chainrule._io.atomic_write`), so
    an interrupted write never leaves a partial image over an existing one."""
    return atomic_write(path, lambda fh: fig.savefig(fh, dpi=dpi, format="png"), what="the image")
