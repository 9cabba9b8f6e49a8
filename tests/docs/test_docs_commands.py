"""Docs as tests: the command blocks of README.md, docs/*.md and datasets/README.md run as pasted.

CONTRIBUTING: marking a command block
-------------------------------------
Every fenced ```bash block of those files has an HTML comment on the line right before its fence (it does
not show on GitHub):

* ``<!-- doc-test -->``: the block is run, as pasted, by ``bash -eo pipefail`` (a ```python block by
  ``python -``), in a folder laid out like the repository after the documented set-up;
* ``<!-- doc-test: setup -->``: the documented set-up itself (one block: ``make quickstart`` step by step in
  docs/quickstart.md). It runs first, and every page starts from a copy of its result: the repository's
  ``tools/``, ``configs/``, ``scripts/``, ``benchmarks/``, ``datasets/*.py`` (``tests/`` linked) plus what the
  set-up writes, ``datasets/tiny_ava/`` and ``output/quickstart/`` (``ava/model_final.pth`` among them);
* ``<!-- doc-test: skip (REASON) -->``: not run; REASON says what no test machine has (real AVA, GPUs,
  several machines, a download, a camera, minutes of CPU). Skipped blocks are test cases too, reported
  as skipped with their reason (``pytest -rs``), so they stay visible.

A page's blocks run in the page's order in one folder (a block may use what an earlier block of the same
page wrote, never another page's); two pages run at a time (about 75 s for the whole file on 2 cores; keep
new blocks cheap or skip them with a reason). ``python SCRIPT.py`` runs in a process forked from one that
has imported torch and detectron2 (tests/preloaded_python.py, checked against a new interpreter below;
``VMAE_DET_DOCS_FRESH=1``: a new interpreter each time). Paths are never rewritten:
the folder is laid out as the docs say and the environment has what the docs document (``python`` = this
interpreter first on ``PATH``; ``VMAE_DET_DATASETS`` unset, so ``./datasets``; ``HF_HUB_OFFLINE=1``, so a
block that would download fails instead of waiting; one OpenMP thread). For speed, the commands of ``TINY``
get documented options appended (fewer training iterations); everything else runs exactly as written. A
```python block may carry the same markers; other fences (``text``, plain ```) are never run.

Cheap checks on every block, run or skipped, and on inline code in the prose: every ``--flag`` written
after ``tools/<name>.py`` (also ``scripts/``, ``datasets/``, ``benchmarks/`` scripts and ``python -m
vmae_det.evaluation.ava_cli``) appears in that program's ``--help``; every relative link and ``#anchor`` of those
files resolves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from preloaded_python import PreloadedPython

REPO = Path(__file__).resolve().parents[2]
DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "datasets" / "README.md"]
# documented options appended to these commands (README "Usage", docs/quickstart.md): seconds, not minutes
TINY = {
    "tools/pretrain_mae.py": "train.max_iter=4",
    "tools/train_net.py": "train.max_iter=4",
    "scripts/quickstart_compare.py": "train.max_iter=4",
}
BLOCK_TIMEOUT = 300
MARKER = re.compile(r"^\s*<!--\s*doc-test(?::\s*(?P<kind>setup|skip)\s*(?:\((?P<reason>.*)\))?)?\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>[\w+-]*)\s*$")


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    info: str
    text: str
    kind: Optional[str]  # "run", "setup", "skip" or None (unmarked)
    reason: str = ""

    @property
    def doc(self) -> str:
        return self.path.relative_to(REPO).as_posix()

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"


def parse_blocks(path: Path) -> List[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            if MARKER.match(lines[i]) and not (i + 1 < len(lines) and FENCE.match(lines[i + 1])):
                raise AssertionError(f"{path.relative_to(REPO)}:{i + 1}: doc-test marker not followed by a fence")
            i += 1
            continue
        start, indent = i, len(m.group("indent"))
        i += 1
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            i += 1
        body = "\n".join(line[indent:] if line[:indent].strip() == "" else line for line in lines[start + 1 : i])
        kind, reason = None, ""
        marker = MARKER.match(lines[start - 1]) if start else None
        if marker:
            kind = marker.group("kind") or "run"
            reason = (marker.group("reason") or "").strip()
        blocks.append(Block(path, start + 1, m.group("info"), body + "\n", kind, reason))
        i += 1
    return blocks


ALL_BLOCKS = [b for f in DOC_FILES for b in parse_blocks(f)]
MARKED = [b for b in ALL_BLOCKS if b.kind is not None]
SETUP = [b for b in MARKED if b.kind == "setup"]


# ------------------------------------------------------------------------------------------- markers


def test_every_bash_block_is_run_or_skipped_with_a_reason():
    unmarked = [b.id for b in ALL_BLOCKS if b.info == "bash" and b.kind is None]
    assert not unmarked, f"```bash blocks without <!-- doc-test --> / <!-- doc-test: skip (reason) -->: {unmarked}"
    no_reason = [b.id for b in MARKED if b.kind == "skip" and not b.reason]
    assert not no_reason, f"skipped without a reason: {no_reason}"
    assert len(SETUP) == 1, f"exactly one <!-- doc-test: setup --> block, found {[b.id for b in SETUP]}"
    wrong = [b.id for b in MARKED if b.info not in ("bash", "python")]
    assert not wrong, f"only ```bash and ```python blocks can be run: {wrong}"
    run = [b for b in MARKED if b.kind in ("run", "setup")]
    skipped = [b for b in MARKED if b.kind == "skip"]
    print(f"\ndoc command blocks: {len(run)} run, {len(skipped)} skipped")
    for reason in sorted({b.reason for b in skipped}):
        print(f"  skipped ({reason}): {', '.join(b.id for b in skipped if b.reason == reason)}")


# ------------------------------------------------------------------------------------------- flags

PROGRAM = re.compile(
    r"(?:(?<![\w/.-])|(?<=\./))((?:tools|scripts|datasets|benchmarks)/\w+\.py|-m vmae_det\.evaluation\.ava_cli)\b"
)
FLAG = re.compile(r"(?<![\w-])(--[a-zA-Z][\w-]*)")


def _segments(text: str) -> List[str]:
    """Logical command lines (backslash continuations joined); a comment's text is a segment of its own."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        if line.lstrip().startswith("#"):
            out.append(line.lstrip()[1:])
        else:
            code, _, comment = line.partition(" #")
            out += [code, comment]
    return [s for s in out if s.strip()]


def program_flags(text: str) -> List[Tuple[str, str]]:
    """(program, --flag) for every flag written after a program of this repository, up to the end of
    that command (a shell operator, a closing quote or the next program)."""
    found = []
    for seg in _segments(text):
        matches = list(PROGRAM.finditer(seg))
        for k, m in enumerate(matches):
            end = matches[k + 1].start() if k + 1 < len(matches) else len(seg)
            rest = re.split(r"&&|\|\||[|;&'`)]", seg[m.end() : end])[0]
            found += [(m.group(1), f) for f in FLAG.findall(rest)]
    return found


def _inline_code(path: Path) -> List[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return re.findall(r"`([^`\n]+)`", text)


def _uses() -> Dict[str, Dict[str, List[str]]]:
    uses: Dict[str, Dict[str, List[str]]] = {}
    for b in ALL_BLOCKS:
        if b.info in ("bash", "sh", "shell", ""):
            for prog, flag in program_flags(b.text):
                uses.setdefault(prog, {}).setdefault(flag, []).append(b.id)
    for f in DOC_FILES:
        for span in _inline_code(f):
            for prog, flag in program_flags(span):
                uses.setdefault(prog, {}).setdefault(flag, []).append(f"{f.relative_to(REPO).as_posix()} (inline)")
    return uses


# Every program's --help in one process (torch is imported once: seconds, not a minute of subprocesses).
_HELPS = """
import contextlib, io, json, runpy, sys
out = {}
for prog in sys.argv[1:]:
    buf, argv = io.StringIO(), sys.argv
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
            sys.argv = [prog, "--help"]
            if prog.startswith("-m "):
                runpy.run_module(prog[3:], run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(prog, run_name="__main__")
        out[prog] = buf.getvalue()
    except SystemExit as e:
        out[prog] = buf.getvalue() if e.code in (0, None) else None
    finally:
        sys.argv = argv
print(json.dumps(out))
"""


def helps(programs: List[str], env: Dict[str, str], folder: Path) -> Dict[str, Optional[str]]:
    script = folder / "helps.py"
    script.write_text(_HELPS)
    r = subprocess.run(
        ["python", str(script), *programs],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "COLUMNS": "200"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_every_flag_a_doc_uses_is_in_the_programs_help(block_env, tmp_path):
    uses = _uses()
    missing_programs = [p for p in uses if not p.startswith("-m") and not (REPO / p).is_file()]
    assert not missing_programs, f"the docs name programs that do not exist: {missing_programs}"
    texts = helps(sorted(uses), block_env, tmp_path)
    no_help = [p for p, t in texts.items() if t is None]
    assert not no_help, f"--help failed: {no_help}"
    unknown = [
        f"{prog} {flag} ({', '.join(sorted(set(where)))})"
        for prog, flags in uses.items()
        for flag, where in flags.items()
        if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", texts[prog])
    ]
    assert not unknown, "flags the docs use that the program's --help does not list:\n" + "\n".join(unknown)


def test_the_flag_finder():
    text = (
        "python tools/demo.py --config-file C \\\n    --input 0 --max-seconds 30  # or --show\n"
        "srun bash -c 'python tools/pretrain_mae.py --num-gpus 8' --ignored\n"
        "torchrun --nnodes 2 tools/train_net.py --config-file C && ls --all\n"
    )
    assert program_flags(text) == [
        ("tools/demo.py", "--config-file"),
        ("tools/demo.py", "--input"),
        ("tools/demo.py", "--max-seconds"),
        ("tools/pretrain_mae.py", "--num-gpus"),
        ("tools/train_net.py", "--config-file"),
    ]


# ------------------------------------------------------------------------------------------- links


def _anchors(path: Path) -> set:
    """GitHub's heading ids: lower case, punctuation other than '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.*)$", text, re.M)}


def test_relative_links_and_anchors_resolve():
    broken = []
    for f in DOC_FILES:
        text = re.sub(r"```.*?```", "", f.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (f.parent / path).resolve() if path else f
            if not dest.exists():
                broken.append(f"{f.relative_to(REPO)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{f.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


# ------------------------------------------------------------------------------------------- running


def tiny(text: str) -> str:
    """The block with TINY's documented options appended to the commands they are for."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        for prog, extra in TINY.items():
            if re.search(rf"\bpython3?\s+{re.escape(prog)}(\s|$)", line) and not line.lstrip().startswith("#"):
                j = i
                while lines[j].rstrip().endswith("\\"):
                    j += 1
                code, hash_, comment = lines[j].partition(" #")
                lines[j] = f"{code.rstrip()} {extra}" + (f"  #{comment}" if hash_ else "")
    return "\n".join(lines)


def environment() -> Dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "VMAE_DET_DATASETS",
            "PYTHONPATH",
            "QUICKSTART_OUT",
            "COMPARE_OUT",
            "COMPARE_SEEDS",
            "COMPARE_PRETRAIN_ITERS",
            "VIRTUAL_ENV",
        )
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(OMP_NUM_THREADS="1", MPLBACKEND="Agg", HF_HUB_OFFLINE="1")
    return env


@pytest.fixture(scope="session")
def block_env(tmp_path_factory):
    """``environment()``, with ``python`` on PATH served by a preloaded interpreter (tests/preloaded_python.py)
    unless ``VMAE_DET_DOCS_FRESH=1``."""
    env = environment()
    if os.environ.get("VMAE_DET_DOCS_FRESH") == "1":
        yield env
        return
    preloaded = PreloadedPython(env, tmp_path_factory.mktemp("python"))
    env["PATH"] = f"{preloaded.python.parent}{os.pathsep}{env['PATH']}"
    yield env
    preloaded.close()


def run_block(block: Block, cwd: Path, env: Dict[str, str]) -> subprocess.CompletedProcess:
    if block.info == "python":
        cmd, stdin, shown = [sys.executable, "-"], block.text, block.text
    else:
        shown = tiny(block.text)
        cmd, stdin = ["bash", "-eo", "pipefail", "-c", shown], None
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(stdin, timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        out = "(timed out)"
    finally:
        try:  # background jobs of the block (a stream server) end with it
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, "")
    result.seconds = time.monotonic() - t0
    result.shown = shown
    return result


def check(block: Block, result: subprocess.CompletedProcess) -> None:
    print(f"{block.id}: {result.seconds:.1f} s\n{result.shown}")
    assert result.returncode == 0, (
        f"{block.id} failed (exit {result.returncode}) as run:\n{result.shown}\n"
        f"--- output (tail) ---\n{result.stdout[-6000:]}"
    )


def _copy_repo_files(dst: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("tools", "configs", "scripts", "benchmarks"):
        shutil.copytree(REPO / name, dst / name, ignore=ignore)
    (dst / "datasets").mkdir()
    for f in [*(REPO / "datasets").glob("*.py"), REPO / "datasets" / "README.md"]:
        shutil.copy2(f, dst / "datasets" / f.name)
    (dst / "tests").symlink_to(REPO / "tests")


@pytest.fixture(scope="session")
def set_up(tmp_path_factory, block_env):
    """A folder laid out like the repository after the documented set-up (SETUP's block, tiny settings)."""
    root = tmp_path_factory.mktemp("docs") / "set_up"
    root.mkdir()
    _copy_repo_files(root)
    return root, run_block(SETUP[0], root, block_env)


RUN_ORDER = SETUP + [b for b in MARKED if b.kind != "setup"]
NOT_RUN = "not run: an earlier block of its page failed"


def run_page(blocks: List[Block], folder: Path, env: Dict[str, str]) -> Dict[str, object]:
    results: Dict[str, object] = {}
    for block in blocks:
        results[block.id] = (
            NOT_RUN
            if any(not isinstance(r, str) and r.returncode for r in results.values())
            else run_block(block, folder, env)
        )
    return results


@pytest.fixture(scope="session")
def page_results(set_up, block_env, tmp_path_factory, request):
    """The selected blocks' pages, each in its own copy of the set-up, two pages at a time (their blocks in
    page order; a page is run whole when any of its blocks is selected)."""
    root, result = set_up
    selected = {
        item.callspec.params["block"].doc
        for item in request.session.items
        if item.originalname == "test_doc_block" and item.callspec.params["block"].kind == "run"
    }
    pages = {doc: [b for b in RUN_ORDER if b.doc == doc and b.kind == "run"] for doc in sorted(selected)}
    if result.returncode != 0:
        return {}

    def one(doc: str) -> Dict[str, object]:
        folder = tmp_path_factory.mktemp("page") / "repo"
        shutil.copytree(root, folder, symlinks=True)
        return run_page(pages[doc], folder, block_env)

    out: Dict[str, object] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:  # the larger pages first
        for res in pool.map(one, sorted(pages, key=lambda d: -len(pages[d]))):
            out.update(res)
    return out


@pytest.mark.parametrize("block", RUN_ORDER, ids=lambda b: b.id)
def test_doc_block(block, set_up, page_results):
    if block.kind == "skip":
        pytest.skip(f"{block.id}: {block.reason}")
    check(SETUP[0], set_up[1])  # everything else starts from it
    if block.kind == "run":
        result = page_results[block.id]
        if isinstance(result, str):
            pytest.fail(result)
        check(block, result)


# ------------------------------------------------------------------------------------------- the preloaded python

SCRIPT = """
import atexit, os, sys, threading, time
print("argv", sys.argv, "file", __file__, "name", __name__, "path0", sys.path[0], "cwd", os.getcwd())
print("env", os.environ.get("DOC_TEST_VALUE"), "stdin", sys.stdin.read())
atexit.register(lambda: print("atexit"))
mode = sys.argv[1]
if mode == "torch":  # threads and a fork pool in a process forked from one that imported torch
    import multiprocessing
    import torch
    torch.set_num_threads(2)
    print("torch", float((torch.ones(256, 256) @ torch.ones(256, 256)).sum()))
    with multiprocessing.get_context("fork").Pool(2) as pool:
        print("pool", pool.map(abs, [-1, -2, 3]))
elif mode == "threads":
    import torch
    print("threads", torch.get_num_threads())
elif mode == "raise":
    raise ValueError("boom")
elif mode == "message":
    sys.exit("a message")
elif mode == "sleep":
    print("pid", os.getpid(), flush=True)
    time.sleep(60)
threading.Thread(target=lambda: (time.sleep(0.2), print("thread"))).start()  # joined before exit
sys.exit(int(mode) if mode.isdigit() else 0)
"""


def _start(preloaded: bool, env: Dict[str, str], folder: Path, mode: str, **kwargs) -> subprocess.Popen:
    (folder / "script.py").write_text(SCRIPT)
    return subprocess.Popen(
        ["python" if preloaded else sys.executable, "script.py", mode],
        cwd=folder,
        env={"DOC_TEST_VALUE": "x y", **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.fixture
def preloaded(block_env):
    if os.environ.get("VMAE_DET_DOCS_FRESH") == "1":
        pytest.skip("VMAE_DET_DOCS_FRESH=1: every command runs in a new interpreter")
    return block_env


@pytest.mark.parametrize("mode", ["3", "raise", "message", "torch", "threads"])
def test_a_preloaded_python_runs_a_script_as_a_new_interpreter(preloaded, tmp_path, mode):
    """Exit code, stdout and stderr (tracebacks included) equal those of a new interpreter; "threads" with a
    thread count the server was not imported with (a new interpreter then)."""
    env = {**preloaded, "OMP_NUM_THREADS": "2"} if mode == "threads" else preloaded
    results = []
    for use in (False, True):
        proc = _start(use, env, tmp_path, mode)
        out, err = proc.communicate("some input", timeout=60)
        results.append((proc.returncode, out, err))
    assert results[0] == results[1]
    ending = "input\natexit\n" if mode in ("raise", "message") else "thread\natexit\n"
    assert "stdin some input" in results[0][1] and results[0][1].endswith(ending)


@pytest.mark.parametrize("ignored", [False, True])
def test_a_preloaded_python_takes_signals_as_a_new_interpreter(preloaded, tmp_path, ignored):
    """SIGINT: a KeyboardInterrupt traceback and death by SIGINT; ignored by the parent, ignored by the command."""
    results = []
    for use in (False, True):
        disposition = signal.SIG_IGN if ignored else signal.SIG_DFL  # a test worker may ignore SIGINT itself
        proc = _start(use, preloaded, tmp_path, "sleep", preexec_fn=lambda: signal.signal(signal.SIGINT, disposition))
        proc.stdin.close()
        assert [proc.stdout.readline() for _ in range(3)][2].startswith("pid ")
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=1 if ignored else 30)
        except subprocess.TimeoutExpired:
            proc.terminate()
        err = proc.stderr.read().splitlines()  # the traceback's line: wherever the signal came
        results.append((proc.wait(timeout=30), proc.stdout.read(), err[:1] + err[-1:]))
    assert results[0] == results[1]
    assert results[0][0] == (-signal.SIGTERM if ignored else -signal.SIGINT)


def test_a_killed_preloaded_python_takes_its_command_with_it(preloaded, tmp_path):
    proc = _start(True, preloaded, tmp_path, "sleep")
    proc.stdin.close()
    pid = int([proc.stdout.readline() for _ in range(3)][2].split()[1])
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), "the command outlived its python"
