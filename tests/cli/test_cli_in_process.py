"""The in-process runs of tests/cli_table.py: a tool called in this process finds what a new process would, and
leaves this process as it found it. The tables' ``test_in_process_as_in_a_process`` compare rows both ways."""

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from cli_table import REPO, fresh_process_state, run_tool

CATALOG = """
def catalog():
    from detectron2.data import DatasetCatalog, MetadataCatalog

    return {
        name: sorted((k, str(v)) for k, v in MetadataCatalog.get(name).as_dict().items())
        for name in sorted(DatasetCatalog.list())
    }
"""
TOOLS = [f"vmae_det.tools.{p.stem}" for p in sorted((REPO / "vmae_det" / "tools").glob("[a-z]*.py"))]


def test_a_run_finds_the_datasets_of_a_new_process(tmp_path):
    """The built-in datasets, registered under the run's ``$VMAE_DET_DATASETS`` as importing the tools does."""
    script = f"import json\nimport {', '.join(TOOLS)}\n{CATALOG}\nprint(json.dumps(catalog()))"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VMAE_DET_DATASETS": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = json.loads(proc.stdout.splitlines()[-1])
    names = {}
    exec(CATALOG, names)
    with open(tmp_path / "out", "w+b") as out, open(tmp_path / "err", "w+b") as err:
        with fresh_process_state(["x"], env, REPO, out, err):
            found = json.loads(json.dumps(names["catalog"]()))
    assert found == expected
    assert str(tmp_path / "tiny_ava") in str(found["ava_tiny_train"])


def test_a_run_leaves_this_process_as_it_found_it(tmp_path, tiny_ava):
    """A training run (loggers set up, a log file opened, datasets registered, threads set) and a failed one."""
    from detectron2.data import DatasetCatalog

    def state():
        loggers = [logging.getLogger(n) for n in ("", "detectron2", "fvcore", "vmae_det")]
        return (
            dict(os.environ),
            os.getcwd(),
            list(sys.argv),
            [(list(lg.handlers), lg.level, lg.propagate) for lg in loggers],
            sorted(DatasetCatalog.list()),
            torch.get_num_threads(),
            signal.getsignal(signal.SIGINT),
            signal.getsignal(signal.SIGTERM),
            sys.stdout,
            sys.stderr,
            torch.random.get_rng_state(),
        )

    before = state()
    out = tmp_path / "out"
    args = ["--config-file", "configs/pretrain/tiny.py", "train.max_iter=1", f"train.output_dir={out}"]
    proc = run_tool(
        "pretrain_mae", [*args, "dataloader.train.num_workers=0"], {"VMAE_DET_DATASETS": str(tiny_ava.parent)}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Starting training" in proc.stdout + proc.stderr and (out / "model_final.pth").is_file()
    assert run_tool("pretrain_mae", [*args, "train.max_iter=x"]).returncode == 2
    after = state()
    assert after[:-1] == before[:-1] and torch.equal(after[-1], before[-1])
    open_files = [os.readlink(f.path) for f in os.scandir(f"/proc/{os.getpid()}/fd")]
    assert str(out / "log.txt") not in open_files, "the run's log file is still open"


def test_in_process_runs_call_what_the_launchers_and_console_scripts_call():
    """``tools/<name>.py`` ends in ``sys.exit(cli())`` and the console script ``vmae-*`` names the same function
    that run_tool calls; one console script, run for real, gives what the in-process run gives."""
    import importlib

    import tomllib
    from cli_table import _entry

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    for script, target in scripts.items():
        module, attr = target.split(":")
        function = getattr(importlib.import_module(module), attr)
        if module.startswith("vmae_det.tools."):
            name = module.rsplit(".", 1)[1]
            assert (REPO / "tools" / f"{name}.py").read_text().rstrip().endswith("sys.exit(cli())"), name
            assert _entry(name)[0] is function, script
        elif (REPO / module.replace(".", "/")).with_suffix(".py").read_text().rstrip().endswith("sys.exit(main())"):
            assert _entry(f"-m {module}")[0] is function, script
    args = ["-l", "labels.pbtxt", "-g", "nope.csv"]
    real = subprocess.run(
        [str(Path(sys.executable).parent / "vmae-ava-eval"), *args], cwd=REPO, capture_output=True, text=True
    )
    here = run_tool("-m vmae_det.evaluation.ava_cli", args)
    assert real.returncode == here.returncode == 2
    assert real.stderr.splitlines()[-1] == here.stderr.splitlines()[-1]
    assert "error: the following arguments are required: -d/--detections" in here.stderr
