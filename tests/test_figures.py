"""chainrule._figures.save_png: an interrupted write keeps the old image and leaves no temp file."""

from __future__ import annotations

import os

import pytest

from chainrule._figures import save_png


class _FailingFigure:
    def savefig(self, fh, **kwargs):
        fh.write(b"\x89PNG half")  # a partial image, then the failure
        raise OSError("disk full")


class _Figure:
    def savefig(self, fh, **kwargs):
        fh.write(b"\x89PNG whole")


def test_a_failed_write_keeps_the_existing_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "act.png"
    target.write_bytes(b"old image")
    with pytest.raises(OSError, match="disk full"):
        save_png(_FailingFigure(), target)
    assert target.read_bytes() == b"old image"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["act.png"]


def test_a_successful_write_replaces_the_file(tmp_path):
    target = tmp_path / "act.png"
    target.write_bytes(b"old image")
    assert save_png(_Figure(), target) == target
    assert target.read_bytes() == b"\x89PNG whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["act.png"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_the_png_gets_the_mode_the_umask_gives(tmp_path, umask, mode):
    # The temporary file starts as 0600; the image must end as any file open() would write.
    old = os.umask(umask)
    try:
        target = save_png(_Figure(), tmp_path / "act.png")
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == mode
