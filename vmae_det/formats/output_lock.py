"""One run per output folder: an exclusive ``fcntl.flock`` on ``<folder>/.vmae_det.lock`` held for the run.

Every tool that writes a run's folder takes it (training, ``--eval-only``, feature extraction, the VMAD
preparation), so a second run is refused at once, naming the holder written into the file. The kernel drops
the lock with its process however it ends, so a file left behind never blocks. Forked workers close their
inherited copy at once (``os.register_at_fork``), so an orphaned worker does not keep it after a ``kill -9``;
the holder marks it in the environment, so its workers and a re-entry in one process do not take it again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
from typing import Dict, Iterator, Set

__all__ = ["LOCK_NAME", "OutputDirBusyError", "output_dir_lock"]

logger = logging.getLogger("vmae_det")

LOCK_NAME = ".vmae_det.lock"
_ENV = "VMAE_DET_OUTPUT_DIR_LOCK"
_held: Dict[str, int] = {}  # real path -> times entered in this process
_fds: Set[int] = set()  # descriptors of the locks this process took


def _close_inherited() -> None:
    """In a forked child: close the copies of the lock descriptors (a flock lives while any copy is open)."""
    for fd in _fds:
        try:
            os.close(fd)
        except OSError:
            pass
    _fds.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited)


class OutputDirBusyError(OSError):
    """Another run holds the lock of this output folder."""


def _holder(lock_file: str) -> str:
    try:
        with open(lock_file) as f:
            text = f.read().strip()
    except OSError:
        text = ""
    return text or "holder unknown"


@contextlib.contextmanager
def output_dir_lock(output_dir: str, what: str = "train.output_dir") -> Iterator[None]:
    """Hold the lock of ``output_dir`` (created if needed) for the ``with`` block.

    Raises :class:`OutputDirBusyError` at once when another process holds it; ``NotADirectoryError``
    when ``output_dir`` is a file. ``what`` names the folder's argument in the messages (``--output``).
    """
    path = os.path.realpath(output_dir)
    if path in _held or os.environ.get(_ENV) == path:
        _held[path] = _held.get(path, 0) + 1
        try:
            yield
        finally:
            _held[path] -= 1
            if not _held[path]:
                del _held[path]
        return
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"{what} {output_dir} is a file, not a folder")
    os.makedirs(path, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, say so once
        logger.warning(f"Cannot lock {output_dir} on this platform: make sure no other run writes into it")
        yield
        return
    lock_file = os.path.join(path, LOCK_NAME)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # BlockingIOError: held by another process
        os.close(fd)
        raise OutputDirBusyError(
            f"{what} {output_dir} is in use by another run ({_holder(lock_file)}; lock file "
            f"{lock_file}). Two runs in one folder would overwrite each other's files (checkpoints, "
            "metrics.json, feature shards): wait for that run to end (the lock goes with its process), or set "
            f"{what} to another folder."
        ) from None
    command = " ".join([os.path.basename(sys.argv[0] or "python"), *sys.argv[1:]])
    info = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}: {command}\n"
    _fds.add(fd)
    os.ftruncate(fd, 0)
    os.write(fd, info.encode())
    previous = os.environ.get(_ENV)
    os.environ[_ENV] = path  # worker processes started now inherit it: they run under this lock
    _held[path] = 1
    try:
        yield
    finally:
        del _held[path]
        if previous is None:
            os.environ.pop(_ENV, None)
        else:
            os.environ[_ENV] = previous
        if fd in _fds:  # not in a forked child, which closed its copy when it started
            _fds.discard(fd)
            os.close(fd)  # releases the flock
