"""Atomic file writes: a file appears whole under its final name or not at all.

A temporary file in the same folder is fsynced and renamed over the final name, so a kill, a full disk or an
exception mid-write leaves an earlier file untouched (``kill -9`` may leave a hidden ``.<name>.<random>.tmp<ext>``).
Every file a tool writes goes through here.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Union

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_save", "commit_file", "temp_path_for"]

PathLike = Union[str, Path]


def temp_path_for(path: PathLike) -> Path:
    """A new, empty, hidden file beside ``path`` (same folder, so the rename is atomic), keeping its extension
    because encoders pick the format by it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would outlive the rename
    return Path(tmp)


def _fsync_path(path: PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: PathLike) -> None:
    """Make a rename in ``folder`` durable (not possible on every platform / file system: then skipped)."""
    try:
        _fsync_path(folder)
    except OSError:
        pass


def commit_file(tmp: PathLike, path: PathLike, *, fsync: bool = True) -> None:
    """Fsync ``tmp``, rename it over ``path``, fsync the folder. ``fsync=False`` (many small files) still
    survives a process crash, not a power cut."""
    os.chmod(tmp, 0o666 & ~_umask())  # what a plain open() gives (some writers recreate the file as 0600)
    if fsync:
        _fsync_path(tmp)
    os.replace(tmp, path)
    if fsync:
        _fsync_dir(os.path.dirname(os.path.abspath(path)))


def _remove_quietly(path: PathLike) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: str = "utf-8", newline: str = "") -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing (``mode`` ``"w"`` or ``"wb"``); on a clean exit it
    is fsynced and renamed to ``path`` (the folder is created), on an exception it is removed."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        text = {} if mode == "wb" else {"encoding": encoding, "newline": newline}
        with open(tmp, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        _remove_quietly(tmp)
        raise


def atomic_save(path: PathLike, save: Callable[[str], Any], *, fsync: bool = True) -> Any:
    """Call ``save(tmp)`` for a writer that wants a path (``torch.save``, ``cv2.imwrite``, ...), then commit
    ``tmp`` over ``path``; returns what ``save`` returned. ``save`` may check the file before it is committed."""
    tmp = temp_path_for(path)
    try:
        result = save(str(tmp))
        commit_file(tmp, path, fsync=fsync)
    except BaseException:
        _remove_quietly(tmp)
        raise
    return result


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)
