"""tools/train_net.py end to end on the tiny default: training beats the untrained model,
--eval-only reproduces the reported mAP from the checkpoint, --resume continues after a kill."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOL = [sys.executable, str(REPO / "tools" / "train_net.py"), "--config-file", str(REPO / "configs/ava/tiny.py")]
FAST = [
    "dataloader.train.num_workers=0",
    "dataloader.test.num_workers=0",
    "train.log_period=10",
]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from datasets_tiny import make_tiny

    root = tmp_path_factory.mktemp("datasets")
    make_tiny(root / "tiny_ava")
    return {**os.environ, "VMAE_DET_DATASETS": str(root), "OMP_NUM_THREADS": "1"}


def run(args, env, **kw):
    return subprocess.run(TOOL + args, env=env, cwd=REPO, capture_output=True, text=True, **kw)


def metrics_map(out: Path) -> float:
    return json.loads((out / "inference" / "ava_metrics.json").read_text())["mAP"]


def test_training_beats_untrained_and_eval_only_reproduces(env, tmp_path):
    before = run(["--eval-only", f"train.output_dir={tmp_path / 'before'}", *FAST], env)
    assert before.returncode == 0, before.stderr[-3000:]
    out = tmp_path / "train"
    # the quick start's 300 steps: VMAD's tiny head init (x 0.001) makes the first ~100 steps slow
    trained = run([f"train.output_dir={out}", "train.max_iter=300", "train.eval_period=0",
                   "train.checkpointer.period=150", *FAST], env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    map_before, map_after = metrics_map(tmp_path / "before"), metrics_map(out)
    assert map_after > map_before + 0.1, (map_before, map_after)
    assert (out / "loss_curve.png").exists() and (out / "inference" / "ava_per_class_ap.png").exists()

    again = run(["--eval-only", f"train.init_checkpoint={out / 'model_final.pth'}",
                 f"train.output_dir={tmp_path / 'again'}", *FAST], env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert metrics_map(tmp_path / "again") == pytest.approx(map_after, abs=1e-9)


def test_resume_after_kill_continues_from_saved_iteration(env, tmp_path):
    out = tmp_path / "run"
    args = [f"train.output_dir={out}", "train.max_iter=30", "train.checkpointer.period=10",
            "train.eval_period=0", *FAST]
    proc = subprocess.Popen(TOOL + args, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (out / "model_0000009.pth").exists():
        assert proc.poll() is None and time.time() < deadline, "training ended before the first checkpoint"
        time.sleep(0.2)
    time.sleep(0.5)  # let the checkpoint file be completely written
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "model_final.pth").exists()

    resumed = run(["--resume", *args], env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = (out / "log.txt").read_text()
    start = int(log.split("Resuming from iteration ")[-1].split()[0])
    assert start >= 10 and start % 10 == 0
    rows = [json.loads(x) for x in (out / "metrics.json").read_text().splitlines()]
    train_iters = [r["iteration"] for r in rows if "total_loss" in r]
    assert train_iters[-1] == 29
    # The resumed run logged only iterations after the checkpoint it started from.
    assert log.count("Resuming from iteration") == 1 and "eta:" in log.split("Resuming from iteration")[-1]
    assert (out / "model_final.pth").exists()


def test_unknown_override_fails_clearly(env, tmp_path):
    bad = run(["--eval-only", "train.max_iters=3"], env)
    assert bad.returncode != 0
    assert "Unknown config key 'train.max_iters'" in bad.stderr and "max_iter" in bad.stderr
