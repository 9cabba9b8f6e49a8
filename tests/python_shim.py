"""``python`` of a preloaded interpreter (tests/preloaded_python.py): ``python SCRIPT.py ARGS`` runs in a process
forked from its server; anything else (``-c``, ``-m``, ``-``, an environment the libraries would import with
differently, no server) execs the real interpreter.

Run by ``bin/python`` as ``<interpreter> -IS python_shim.py ARGS`` (the standard library only, ~20 ms), from a
copy with ``REAL``, ``SOCKET``, ``SERVER_ENV`` and ``PREFIXES`` (the variables read on import) filled in.
"""

import array
import json
import os
import signal
import socket
import struct
import sys

REAL = "@REAL@"
SOCKET = "@SOCKET@"
SERVER_ENV = "@SERVER_ENV@"  # the server's variables of PREFIXES
PREFIXES = "@PREFIXES@"


def _exec_real(args):
    os.execv(REAL, [REAL, *args])  # argv[0] "python" would find this file on PATH, and no venv


def _line(conn):
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            return None
        data += chunk
    return data.decode()


def main(args):
    same_imports = {k: v for k, v in os.environ.items() if k.startswith(PREFIXES)} == SERVER_ENV
    if not args or args[0].startswith("-") or not args[0].endswith(".py") or not same_imports:
        _exec_real(args)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(SOCKET)
    except OSError:
        _exec_real(args)
    relayed = [s for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) if signal.getsignal(s) != signal.SIG_IGN]
    ignored = [int(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) if s not in relayed]
    request = json.dumps({"argv": args, "cwd": os.getcwd(), "env": dict(os.environ), "ignored": ignored}).encode()
    fds = array.array("i", [0, 1, 2])
    conn.sendmsg([struct.pack("!I", len(request)) + request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
    pid = int(_line(conn))
    for sig in relayed:  # a signal this process would ignore, the command ignores too
        signal.signal(sig, lambda n, _f: os.kill(pid, n))
    status = _line(conn)
    if status is None:  # the server died
        sys.exit(1)
    code = int(status)
    if code < 0:  # killed by a signal: die by the same one, as the real process did
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


main(sys.argv[1:])
