"""One way for every command-line tool to end on a bad input: ``error: <message>`` and exit code 2.

Expected failures (a missing or corrupt file, a bad value, an unknown config key) are raised as
``ValueError``/``OSError``/``KeyError`` subclasses with a message naming the file (and line) and what to
do; :func:`run_main` prints that message instead of a traceback. Set ``VMAE_DET_TRACEBACK=1`` to see the
traceback anyway. Any other exception is a bug and keeps its traceback.
"""
from __future__ import annotations

import os
import sys
from typing import Callable, Optional

__all__ = ["ERROR_EXIT_CODE", "EXPECTED_ERRORS", "run_main"]

ERROR_EXIT_CODE = 2
EXPECTED_ERRORS = (ValueError, OSError, KeyError)


def _message(e: BaseException) -> str:
    # KeyError quotes its argument; show the text as written.
    return str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)


def run_main(main: Callable[[], Optional[int]]) -> int:
    """Call ``main()`` and turn an expected error into ``error: ...`` on stderr and exit code 2."""
    try:
        rc = main()
    except EXPECTED_ERRORS as e:
        if os.environ.get("VMAE_DET_TRACEBACK"):
            raise
        print(f"error: {_message(e)}", file=sys.stderr)
        return ERROR_EXIT_CODE
    return int(rc or 0)
