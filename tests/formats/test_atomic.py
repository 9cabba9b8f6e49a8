"""vmae_det/formats/atomic.py: a file appears whole under its final name or not at all, and a write that
fails midway (a full disk, an exception, Ctrl-C) leaves the earlier file intact and no temporary file."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from vmae_det.formats.atomic import atomic_save, atomic_write, atomic_write_bytes, atomic_write_text, commit_file

ENOSPC = OSError(errno.ENOSPC, "No space left on device")


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("error", [ENOSPC, KeyboardInterrupt()], ids=["full_disk", "ctrl_c"])
def test_atomic_write_failing_midway_keeps_the_earlier_file(tmp_path, error):
    path = tmp_path / "metrics.json"
    path.write_text("earlier\n")
    with pytest.raises(type(error)):
        with atomic_write(path) as f:
            f.write("half of the new ")
            f.flush()
            raise error
    assert path.read_text() == "earlier\n" and _names(tmp_path) == ["metrics.json"]


@pytest.mark.parametrize("error", [ENOSPC, KeyboardInterrupt()], ids=["full_disk", "ctrl_c"])
def test_atomic_save_failing_midway_keeps_the_earlier_file(tmp_path, error):
    """A path-based writer (torch.save, savefig, onnx export) that wrote part of its file, then failed."""
    path = tmp_path / "model_final.pth"
    path.write_bytes(b"the earlier checkpoint")
    seen = []

    def save(tmp):
        seen.append(tmp)
        with open(tmp, "wb") as f:
            f.write(b"PK\x03\x04 truncated")
        raise error

    with pytest.raises(type(error)):
        atomic_save(path, save)
    assert path.read_bytes() == b"the earlier checkpoint" and _names(tmp_path) == ["model_final.pth"]
    # The temporary file was beside the target, hidden, with the target's extension (encoders need it).
    assert os.path.dirname(seen[0]) == str(tmp_path)
    assert os.path.basename(seen[0]).startswith(".model_final.") and seen[0].endswith(".tmp.pth")


def test_atomic_save_writes_creates_folders_and_returns(tmp_path):
    path = tmp_path / "new" / "folder" / "x.png"
    assert atomic_save(path, lambda tmp: open(tmp, "wb").write(b"png") and "done") == "done"
    assert path.read_bytes() == b"png" and _names(path.parent) == ["x.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_whole_file_writers_and_commit(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "text")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    (tmp_path / ".c.partial").write_text("streamed")
    commit_file(tmp_path / ".c.partial", tmp_path / "c.csv")
    assert (tmp_path / "a.txt").read_text() == "text" and (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert _names(tmp_path) == ["a.txt", "b.bin", "c.csv"]
    with pytest.raises(ValueError, match="mode must be"):
        with atomic_write(tmp_path / "d", "a"):
            pass
