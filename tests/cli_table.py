"""Run tables of bad inputs through the real command-line tools (``tests/cli/test_cli_bad_inputs_*.py``).

A :class:`BadInput` names the tool (``tools/<name>.py`` or ``-m module``), its arguments, and what must
come out: the exit code (non-zero unless ``rc`` says otherwise) and substrings of stderr+stdout. Arguments
may contain ``{tmp}`` (the test's ``tmp_path``) and ``{data}`` (a fixture folder the table module provides).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]


@dataclass
class BadInput:
    id: str
    tool: str  # "train_net" -> tools/train_net.py; "-m vmae_det.evaluation.ava_cli" -> module
    args: Sequence[str]
    expect: Sequence[str]  # substrings that must appear in stderr + stdout
    rc: Optional[int] = None  # exact exit code; None = any non-zero
    setup: Optional[Callable[[Path], None]] = None  # prepares files in tmp_path before the run
    timeout: float = 300
    env: dict = field(default_factory=dict)


def command(tool: str) -> list:
    if tool.startswith("-m "):
        return [sys.executable, "-m", tool[3:]]
    return [sys.executable, str(REPO / "tools" / f"{tool}.py")]


def run_case(case: BadInput, tmp_path: Path, data: Optional[Path] = None, env: Optional[dict] = None):
    """Run ``case`` and assert its exit code and messages; returns the CompletedProcess."""
    if case.setup is not None:
        case.setup(tmp_path)
    args = [a.format(tmp=tmp_path, data=data) for a in case.args]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {}), **case.env}
    proc = subprocess.run(
        command(case.tool) + args, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=case.timeout
    )
    out = proc.stderr + proc.stdout
    if case.rc is None:
        assert proc.returncode != 0, f"{case.id}: exit code 0\n{out[-3000:]}"
    else:
        assert proc.returncode == case.rc, f"{case.id}: exit code {proc.returncode} != {case.rc}\n{out[-3000:]}"
    for text in case.expect:
        assert text.format(tmp=tmp_path, data=data) in out, f"{case.id}: {text!r} not in output\n{out[-3000:]}"
    assert "Traceback" not in out or case.rc == 0, f"{case.id}: a traceback instead of a clear error\n{out[-3000:]}"
    return proc
