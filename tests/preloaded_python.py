"""A preloaded interpreter: torch, torchvision, detectron2, cv2 and PyAV are imported once, and every
``python SCRIPT.py ARGS`` run through its ``python`` (:func:`start`) is a process forked from it (~4 s of imports
saved per command). The doc blocks' commands and the tool rows of tests/cli that need a process use it.

What a command gets is a new process: its own pid and process group, its argv, cwd, environment,
stdin/stdout/stderr (the file descriptors themselves), ``sys.path[0]`` = the script's folder, ``__main__`` = the
script, its exit code or signal, atexit handlers and non-daemon threads joined at exit. What it shares is only
the import of those third-party libraries, done in the same environment: a command whose environment differs in a
variable those libraries read on import (``IMPORT_ENV``), or that is not ``python SCRIPT.py``, runs in a new
interpreter. vmae_det's own modules (``$VMAE_DET_DATASETS`` is read on import) are imported by the command itself.
``tests/docs/test_docs_commands.py`` checks a script gives what a new interpreter gives.

Usage: ``python tests/preloaded_python.py SOCKET_PATH`` serves until killed.
"""

from __future__ import annotations

import array
import importlib
import json
import os
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Mapping

SHIM = Path(__file__).with_name("python_shim.py")
_HERE = os.path.abspath(__file__)
#: Prefixes of the environment variables the preloaded libraries (or the interpreter) read when imported.
IMPORT_ENV = (
    "OMP_",
    "GOMP_",
    "KMP_",
    "MKL_",
    "OPENBLAS_",
    "TORCH",
    "PYTORCH_",
    "CUDA",
    "NCCL_",
    "MPL",
    "PYTHON",
    "LD_",
    "OPENCV_",
    "DETECTRON2_",
    "FVCORE_",
    "IOPATH_",
)


def _import_env(env: Mapping[str, str]) -> Dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_ENV)}


class PreloadedPython:
    """A server preloaded in ``env`` and the ``python`` (``self.python``, in ``folder/bin``) that runs scripts in
    processes forked from it. ``close()`` stops the server."""

    def __init__(self, env: Mapping[str, str], folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        sock = folder / "server.sock"
        with open(folder / "server.log", "w") as log:
            self.server = subprocess.Popen(
                [sys.executable, _HERE, str(sock)],
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + 120
        while not sock.exists() and self.server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not sock.exists():
            self.close()
            raise RuntimeError(
                f"the preloaded interpreter did not start: {(folder / 'server.log').read_text()[-3000:]}"
            )
        source = SHIM.read_text(encoding="utf-8")
        for key, value in (
            ('"@REAL@"', repr(sys.executable)),
            ('"@SOCKET@"', repr(str(sock))),
            ('"@SERVER_ENV@"', repr(_import_env(env))),
            ('"@PREFIXES@"', repr(IMPORT_ENV)),
        ):
            source = source.replace(key, value)
        self.python = folder / "bin" / "python"
        self.python.parent.mkdir(exist_ok=True)
        shim = folder / "python_shim.py"
        shim.write_text(source, encoding="utf-8")
        # sh, not a #! line to the interpreter: its path may hold spaces
        self.python.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -IS {shlex.quote(str(shim))} "$@"\n')
        self.python.chmod(0o755)

    def close(self) -> None:
        self.server.kill()
        self.server.wait()


_SHARED: Dict[str, PreloadedPython] = {}


def shared_python(env: Mapping[str, str]) -> Path:
    """The ``python`` of one server per environment (of ``IMPORT_ENV``) in this process, started on first use and
    stopped at exit."""
    key = json.dumps(_import_env(env), sort_keys=True)
    if key not in _SHARED:
        import atexit
        import shutil

        folder = Path(tempfile.mkdtemp(prefix="preloaded_python_"))
        _SHARED[key] = preloaded = PreloadedPython(env, folder)
        atexit.register(lambda: (preloaded.close(), shutil.rmtree(folder, ignore_errors=True)))
    return _SHARED[key].python


#: What every tool imports; vmae_det first, as its compat shims hook detectron2's import.
PRELOAD = (
    "vmae_det",
    "torch",
    "torchvision",
    "detectron2.checkpoint",
    "detectron2.config",
    "detectron2.data",
    "detectron2.engine",
    "detectron2.layers",
    "detectron2.modeling",
    "detectron2.utils.events",
    "fvcore.nn",
    "cv2",
    "av",
    "matplotlib.pyplot",
)


def _receive(conn: socket.socket):
    """One request: a 4-byte length, JSON ``{"argv", "cwd", "env", "ignored"}``, and the client's fds 0, 1, 2."""
    fds = array.array("i")
    msg, ancdata, _, _ = conn.recvmsg(1 << 20, socket.CMSG_LEN(3 * fds.itemsize))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    (size,) = struct.unpack("!I", msg[:4])
    body = msg[4:]
    while len(body) < size:
        body += conn.recv(size - len(body))
    return json.loads(body), list(fds)


def _run_child(request: dict, fds: list) -> None:
    """In the forked process: become the command, run it, exit as a new interpreter would."""
    import atexit
    import builtins
    import importlib.machinery
    import threading
    import types

    os.setpgid(0, 0)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # as a new interpreter started by the client
        ignored = int(sig) in request["ignored"]
        default = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
        signal.signal(sig, signal.SIG_IGN if ignored else default)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if os.isatty(1):  # stdout line-buffered on a terminal, as a new interpreter decides at start
        sys.stdout.reconfigure(line_buffering=True)
    sys.argv = list(request["argv"])
    path = os.path.abspath(sys.argv[0])  # __file__ and code paths absolute, argv[0] as given: as since Python 3.9
    sys.path[0] = os.path.dirname(path)
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=path, __cached__=None, __builtins__=builtins)
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
    sys.modules["__main__"] = main
    code = 0
    try:
        with open(path, "rb") as f:
            source = f.read()
        exec(compile(source, path, "exec"), main.__dict__)
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException as e:
        tb = e.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == _HERE:
            tb = tb.tb_next  # the traceback a new interpreter prints starts in the script
        sys.excepthook(type(e), e.with_traceback(tb), tb)
        code = -signal.SIGINT if isinstance(e, KeyboardInterrupt) else 1
    try:
        threading._shutdown()  # join non-daemon threads, as interpreter exit does
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        if code < 0:  # Python's exit on an uncaught KeyboardInterrupt: killed by SIGINT
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code & 0xFF)


def serve(socket_path: str) -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    sys.stdout.flush()
    sys.stderr.flush()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path + ".tmp")
    server.listen(16)
    os.replace(socket_path + ".tmp", socket_path)  # clients see the socket only when it listens
    parent = os.getppid()
    children = {}  # pid -> the client's connection
    while os.getppid() == parent:  # a test run that died does not leave its server behind
        ready, _, _ = select.select([server, *children.values()], [], [], 0.05)
        for conn in ready:
            if conn is server:
                client, _ = server.accept()
                request, fds = _receive(client)
                pid = os.fork()
                if pid == 0:
                    server.close()
                    client.close()
                    for other in children.values():
                        other.close()
                    _run_child(request, fds)
                for fd in fds:
                    os.close(fd)
                client.sendall(f"{pid}\n".encode())
                children[pid] = client
            else:  # a client that hung up (killed): its command goes with it
                pid = next(p for p, c in children.items() if c is conn)
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = children.pop(pid, None)
            if conn is not None:
                code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                try:
                    conn.sendall(f"{code}\n".encode())
                except OSError:
                    pass
                conn.close()
    for pid in children:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


if __name__ == "__main__":
    serve(sys.argv[1])
