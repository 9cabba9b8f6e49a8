"""The error boundary of every command-line tool (:func:`run_main`), and output-path checks.

Expected failures (``ValueError`` / ``OSError`` / ``KeyError``) become one ``error: <message>`` line and exit
code 2; Ctrl-C and SIGTERM one ``interrupted ...`` line and exit code 130. ``VMAE_DET_TRACEBACK=1`` shows the
traceback; any other exception is a bug and keeps it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import threading
from typing import Callable, Iterator, Optional

__all__ = [
    "ERROR_EXIT_CODE",
    "EXPECTED_ERRORS",
    "INTERRUPTED_EXIT_CODE",
    "OutputPathError",
    "check_output_dir",
    "check_output_file",
    "run_main",
    "sigterm_as_interrupt",
    "with_context",
]

ERROR_EXIT_CODE = 2
INTERRUPTED_EXIT_CODE = 130
EXPECTED_ERRORS = (ValueError, OSError, KeyError)


class OutputPathError(ValueError):
    """An output path a tool cannot write (checked before the work)."""


def _message(e: BaseException) -> str:
    # KeyError quotes its argument; show the text as written.
    return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)


def with_context(e: BaseException, prefix: str) -> BaseException:
    """``e`` of the same class with ``<prefix>: `` before its message, its attributes kept.

    Built without calling the constructor, which may take other arguments than one message
    (``AVAFormatError(path, line, reason)``).
    """
    new = type(e).__new__(type(e))
    new.__dict__.update(getattr(e, "__dict__", {}))
    new.args = (f"{prefix}: {_message(e)}",)
    return new


SIGTERM_MESSAGE = "SIGTERM"


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(SIGTERM_MESSAGE)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises ``KeyboardInterrupt("SIGTERM")`` in the main thread, so clean-ups run as for
    Ctrl-C. The previous handler is restored on leaving."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def run_main(main: Callable[[], Optional[int]], interrupted: str = "", *, worker: str = "") -> int:
    """Call ``main()`` and turn expected errors and interrupts into a message and an exit code.

    Args:
        interrupted: what the tool leaves behind when interrupted.
        worker: names a launched run's worker process (``rank 1``); its signals are left to the launcher.
    """
    try:
        with sigterm_as_interrupt() if not worker else contextlib.nullcontext():
            rc = main()
    except EXPECTED_ERRORS as e:
        if os.environ.get("VMAE_DET_TRACEBACK"):
            raise
        print(f"error: {f'[{worker}] ' if worker else ''}{_message(e)}", file=sys.stderr, flush=True)
        return ERROR_EXIT_CODE
    except KeyboardInterrupt as e:
        if worker or os.environ.get("VMAE_DET_TRACEBACK"):
            raise
        how = " (SIGTERM)" if e.args == (SIGTERM_MESSAGE,) else ""
        print("interrupted" + how + (f": {interrupted}" if interrupted else how or " (Ctrl-C)"), file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    return int(rc or 0)


def _existing_ancestor(path: str, what: str) -> str:
    """The nearest folder of ``path`` (``path`` excluded) that exists; a file on the way is an error."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise OutputPathError(f"{what} {path}: {parent} is a file, not a folder")
    return parent


def _check_writable(folder: str, what: str, path: str) -> None:
    """Raise unless ``folder`` takes a new file: ``os.access`` and a real probe (root passes ``os.access`` also on a
    read-only mount)."""
    reason = None
    if not os.access(folder, os.W_OK | os.X_OK):
        reason = "permission denied"
    else:
        try:
            fd, probe = tempfile.mkstemp(prefix=".vmae_det_write_test_", dir=folder)
        except OSError as e:
            reason = e.strerror or str(e)
        else:
            os.close(fd)
            os.unlink(probe)
    if reason is not None:
        raise OutputPathError(f"{what} {path}: the folder {folder} is not writable ({reason})")


def check_output_file(path: str, what: str = "output") -> None:
    """Refuse an output file that is a folder, lies under a file, or whose folder cannot be written."""
    if os.path.isdir(path):
        raise OutputPathError(f"{what} {path} is a folder; give the file to write")
    _check_writable(_existing_ancestor(path, what), what, path)


def check_output_dir(path: str, what: str = "output folder") -> None:
    """Refuse an output folder that is a file, lies under a file, or cannot be written in (or created)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputPathError(f"{what} {path} is a file, not a folder")
    folder = path if os.path.isdir(path) else _existing_ancestor(path, what)
    _check_writable(folder, what, path)
