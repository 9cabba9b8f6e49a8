"""Run the command-line tools from tests, and tables of bad inputs through them (``tests/cli/``).

:func:`run_tool` runs a tool as ``python tools/<name>.py ARGS`` (or ``python -m module ARGS``) would, and returns
a ``CompletedProcess``. By default it calls the tool's entry point in this process, in the state a new process
starts in (:func:`fresh_process_state`): the ~4 s of imports are paid once per test worker instead of once per
run. ``process=True`` starts a real process, for what only a process shows: a crash of a native library, data
loader or launched worker processes (forked from a preloaded interpreter: tests/preloaded_python.py; ``fresh``: a
new interpreter). ``tests/cli/test_cli_in_process.py`` and each table run a sample of rows both ways (a new
interpreter and this process) and compare them.

A :class:`BadInput` names the tool (``train_net`` for ``tools/train_net.py``, or ``-m module``), its arguments,
and what must come out: the exit code (non-zero unless ``rc`` says otherwise) and substrings of stderr+stdout.
Arguments may contain ``{tmp}`` (the test's ``tmp_path``) and ``{data}`` (a fixture folder the table module
provides).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch
from preloaded_python import shared_python

REPO = Path(__file__).resolve().parents[1]


@dataclass
class BadInput:
    id: str
    tool: str  # "train_net" -> tools/train_net.py; "-m vmae_det.evaluation.ava_cli" -> module
    args: Sequence[str]
    expect: Sequence[str]  # substrings that must appear in stderr + stdout
    rc: Optional[int] = None  # exact exit code; None = any non-zero
    setup: Optional[Callable[[Path], None]] = None  # prepares files in tmp_path before the run
    timeout: float = 300  # a real process's limit (process=True)
    env: dict = field(default_factory=dict)
    process: bool = False  # a real process: see run_tool


def command(tool: str) -> list:
    if tool.startswith("-m "):
        return [sys.executable, "-m", tool[3:]]
    return [sys.executable, str(REPO / "tools" / f"{tool}.py")]


def _entry(tool: str):
    """The function ``command(tool)`` ends in (``tools/<name>.py`` is ``sys.exit(cli())``), and its ``sys.argv[0]``."""
    if tool.startswith("-m "):
        module = importlib.import_module(tool[3:])
        return module.main, module.__file__
    return importlib.import_module(f"vmae_det.tools.{tool}").cli, str(REPO / "tools" / f"{tool}.py")


# ------------------------------------------------------------------------------------------- a new process's state
# The loggers a run sets up (detectron2's ``setup_logger``), as a new process has them: no handlers, level NOTSET.
_RUN_LOGGERS = ("detectron2", "fvcore", "vmae_det")


def _logger_state() -> Dict[str, tuple]:
    loggers = {"": logging.getLogger()}
    loggers.update((n, lg) for n, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger))
    return {n: (lg, list(lg.handlers), lg.level, lg.propagate, lg.disabled) for n, lg in loggers.items()}


def _set_logger(lg: logging.Logger, handlers, level, propagate, disabled) -> None:
    lg.handlers[:] = handlers
    lg.setLevel(level)
    lg.propagate, lg.disabled = propagate, disabled


@contextlib.contextmanager
def _fresh_logging() -> Iterator[None]:
    """Logging as in a new process: the root without handlers (a warning before any set-up goes to stderr through
    ``logging.lastResort``), :data:`_RUN_LOGGERS` not set up, detectron2's once-only records and caches empty.
    On leaving, every logger is put back and the log files the run opened are closed."""
    from detectron2.utils import logger as d2_logger

    before = _logger_state()
    _set_logger(logging.getLogger(), [], logging.WARNING, True, False)
    for name in _RUN_LOGGERS:
        _set_logger(logging.getLogger(name), [], logging.NOTSET, True, False)
    saved_disable = logging.root.manager.disable
    logging.disable(logging.NOTSET)
    counter, timer = dict(d2_logger._LOG_COUNTER), dict(d2_logger._LOG_TIMER)
    d2_logger._LOG_COUNTER.clear()
    d2_logger._LOG_TIMER.clear()
    d2_logger.setup_logger.cache_clear()
    cached_stream, opened = d2_logger._cached_log_stream, []

    @functools.lru_cache(maxsize=None)
    def log_file(filename):  # the run's own log files, closed on leaving
        opened.append(cached_stream.__wrapped__(filename))
        return opened[-1]

    d2_logger._cached_log_stream = log_file
    try:
        yield
    finally:
        d2_logger._cached_log_stream = cached_stream
        d2_logger.setup_logger.cache_clear()
        for name, (lg, *state) in before.items():
            _set_logger(lg, *state)
        for f in opened:
            f.close()
        logging.disable(saved_disable)
        d2_logger._LOG_COUNTER.clear()
        d2_logger._LOG_COUNTER.update(counter)
        d2_logger._LOG_TIMER.clear()
        d2_logger._LOG_TIMER.update(timer)


def _fresh_datasets():
    """The dataset catalogs as a new process has them: the registrations that importing detectron2 and vmae_det
    makes run again, under this ``$DETECTRON2_DATASETS`` / ``$VMAE_DET_DATASETS``; returns what restores the
    earlier catalogs."""
    import detectron2.data.datasets.builtin as d2_builtin
    from detectron2.data import DatasetCatalog, MetadataCatalog

    import vmae_det.data
    from vmae_det.data import video_dataset

    datasets, metadata = dict(DatasetCatalog), {k: copy.copy(v) for k, v in MetadataCatalog.items()}
    DatasetCatalog.clear()
    MetadataCatalog.clear()
    importlib.reload(d2_builtin)
    video_dataset._register_builtin()
    importlib.reload(vmae_det.data)
    video_dataset.reset_skipped_videos()

    def restore():
        DatasetCatalog.clear()
        DatasetCatalog.update(datasets)
        MetadataCatalog.clear()
        MetadataCatalog.update(metadata)

    return restore


def _default_warning_filters() -> None:
    """Python's filters without ``-W`` options (pytest records warnings instead of printing them)."""
    warnings.resetwarnings()
    for category in (ResourceWarning, ImportWarning, PendingDeprecationWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
    warnings.showwarning = warnings._showwarning_orig
    warnings._showwarnmsg_impl = _print_warning


def _print_warning(msg: warnings.WarningMessage) -> None:
    sys.stderr.write(warnings._formatwarnmsg(msg))


@contextlib.contextmanager
def _redirected(fd: int, to) -> Iterator[None]:
    """File descriptor ``fd`` (1 or 2) written to ``to``: what native code prints (ffmpeg, OpenCV) is captured."""
    saved = os.dup(fd)
    os.dup2(to.fileno(), fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


@contextlib.contextmanager
def _saved(get: Callable[[], object], put: Callable[[object], object]) -> Iterator[None]:
    value = get()
    try:
        yield
    finally:
        put(value)


def _put_environ(env: Mapping[str, str]) -> None:
    os.environ.clear()
    os.environ.update(env)


def _put_set(target: set) -> Callable[[set], None]:
    return lambda value: (target.clear(), target.update(value))


def _put_std(streams) -> None:
    sys.stdout, sys.stderr = streams


@contextlib.contextmanager
def fresh_process_state(argv: Sequence[str], env: Mapping[str, str], cwd: Path, stdout, stderr) -> Iterator[None]:
    """Inside: this process looks to a tool as a new ``python`` process would, and what a run changes is put back
    on leaving.

    ``sys.argv``, the environment (``env`` replaces it), the folder, stdout/stderr (``sys`` and file descriptors 1
    and 2, to the binary files ``stdout``/``stderr``), logging (:func:`_fresh_logging`), the dataset catalogs
    (registered again under ``env``'s ``$VMAE_DET_DATASETS``), vmae_det's once-only warnings and skip counts,
    warning filters, urllib's proxies, SIGINT/SIGTERM handlers, torch's thread count (``env``'s
    ``$OMP_NUM_THREADS``), matmul precision, grad mode and the random number generators.
    """
    import urllib.request

    import vmae_det.resources as resources

    sys.stdout.flush()
    sys.stderr.flush()
    with contextlib.ExitStack() as stack:
        enter = stack.enter_context
        enter(_saved(lambda: list(sys.argv), lambda v: sys.argv.__setitem__(slice(None), v)))
        enter(_saved(lambda: dict(os.environ), _put_environ))
        enter(_saved(os.getcwd, os.chdir))
        for s in (signal.SIGINT, signal.SIGTERM):
            enter(_saved(lambda s=s: signal.getsignal(s), lambda h, s=s: signal.signal(s, h)))
        enter(_saved(torch.get_num_threads, torch.set_num_threads))
        enter(_saved(torch.get_float32_matmul_precision, torch.set_float32_matmul_precision))
        enter(_saved(torch.is_grad_enabled, torch.set_grad_enabled))
        enter(_saved(torch.random.get_rng_state, torch.random.set_rng_state))
        enter(_saved(np.random.get_state, np.random.set_state))
        enter(_saved(random.getstate, random.setstate))
        enter(_saved(lambda: set(resources._warned), _put_set(resources._warned)))
        enter(_saved(lambda: urllib.request._opener, urllib.request.install_opener))
        enter(warnings.catch_warnings())
        out = enter(open(stdout.fileno(), "w", encoding="utf-8", errors="backslashreplace", closefd=False))
        err = enter(open(stderr.fileno(), "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1))
        enter(_redirected(1, stdout))
        enter(_redirected(2, stderr))
        enter(_saved(lambda: (sys.stdout, sys.stderr), _put_std))
        sys.stdout, sys.stderr = out, err
        _put_environ(env)
        if env.get("OMP_NUM_THREADS", "").isdigit() and int(env["OMP_NUM_THREADS"]) > 0:
            torch.set_num_threads(int(env["OMP_NUM_THREADS"]))  # as a new process reads it at start
        os.chdir(cwd)
        sys.argv[:] = argv
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        resources._warned.clear()
        urllib.request.install_opener(None)
        _default_warning_filters()
        enter(_fresh_logging())
        stack.callback(_fresh_datasets())  # registered under env's $VMAE_DET_DATASETS
        try:
            yield
        finally:
            out.flush()
            err.flush()


def _call(entry) -> int:
    """``sys.exit(entry())`` as the interpreter ends it: the exit code, a traceback and 1 for an uncaught error."""
    try:
        code = entry()
    except SystemExit as e:
        code = e.code
    except BaseException:  # noqa: BLE001  (as the interpreter: any escaping exception is a traceback and exit 1)
        traceback.print_exc()
        return 1
    if code is None or isinstance(code, int):
        return int(code or 0)
    print(code, file=sys.stderr)
    return 1


def preloaded_python() -> Path:
    """The ``python`` of the preloaded interpreter the tools' processes fork from (tests/preloaded_python.py),
    imported in the environment :func:`run_tool` gives them."""
    return shared_python({**os.environ, "OMP_NUM_THREADS": "1"})


def run_tool(
    tool: str,
    args: Sequence[str],
    env: Optional[Mapping[str, str]] = None,
    *,
    process: bool = False,
    fresh: bool = False,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """``python tools/<tool>.py ARGS`` (``tool`` = ``-m module``: ``python -m module ARGS``) in the repository
    folder, with ``env`` added to this environment and one OpenMP thread; its exit code and text output.

    Args:
        process: a real process (``timeout`` applies), forked from a preloaded interpreter
            (tests/preloaded_python.py); otherwise the tool's entry point is called here, inside
            :func:`fresh_process_state`.
        fresh: with ``process``, a new interpreter.
    """
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    if process:
        cmd = command(tool)
        if not fresh:
            cmd[0] = str(preloaded_python())
        return subprocess.run(cmd + list(args), cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)
    entry, argv0 = _entry(tool)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        with fresh_process_state([argv0, *args], full_env, REPO, out, err):
            rc = _call(entry)
        texts = []
        for f in (out, err):
            f.seek(0)
            texts.append(f.read().decode("utf-8", errors="backslashreplace"))
    return subprocess.CompletedProcess(command(tool) + list(args), rc, *texts)


def run_case(
    case: BadInput,
    tmp_path: Path,
    data: Optional[Path] = None,
    env: Optional[dict] = None,
    process: bool = False,
    fresh: bool = False,
):
    """Run ``case`` (in a real process when ``process`` or ``case.process``; a new interpreter when ``fresh``) and
    assert its exit code and messages; returns the CompletedProcess."""
    if case.setup is not None:
        case.setup(tmp_path)
    args = [a.format(tmp=tmp_path, data=data) for a in case.args]
    env = {**(env or {}), **case.env}
    proc = run_tool(case.tool, args, env, process=process or case.process, fresh=fresh, timeout=case.timeout)
    out = proc.stderr + proc.stdout
    if case.rc is None:
        assert proc.returncode != 0, f"{case.id}: exit code 0\n{out[-3000:]}"
    else:
        assert proc.returncode == case.rc, f"{case.id}: exit code {proc.returncode} != {case.rc}\n{out[-3000:]}"
    for text in case.expect:
        assert text.format(tmp=tmp_path, data=data) in out, f"{case.id}: {text!r} not in output\n{out[-3000:]}"
    assert "Traceback" not in out or case.rc == 0, f"{case.id}: a traceback instead of a clear error\n{out[-3000:]}"
    return proc


def _messages(proc: subprocess.CompletedProcess, tmp: Path) -> list:
    """The lines a user reads as the outcome: errors, usage, interrupts, warnings (``tmp`` written as ``{tmp}``)."""
    keep = ("error:", "usage:", "interrupted", "Traceback")
    return [
        line.replace(str(tmp), "{tmp}")
        for line in (proc.stderr + proc.stdout).splitlines()
        if line.startswith(keep) or ": error: " in line or "Warning: " in line
    ]


def run_both_ways(case: BadInput, tmp_path: Path, data: Optional[Path] = None, env: Optional[dict] = None):
    """Run ``case`` in a new interpreter and in this one (:func:`run_case`, each in its own folder under
    ``tmp_path``): both pass, with the same exit code and the same error, usage and warning lines."""
    results = []
    for process in (True, False):
        tmp = tmp_path / ("process" if process else "in_process")
        tmp.mkdir()
        proc = run_case(case, tmp, data, env, process=process, fresh=True)
        results.append((proc.returncode, _messages(proc, tmp)))
    assert results[0] == results[1], f"{case.id}: a process gave {results[0]}, in-process {results[1]}"
    return results
