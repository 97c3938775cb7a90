"""chainrule._figures.save_png: an interrupted write keeps the old image and leaves no temp file."""

from __future__ import annotations

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
