"""tools/train_net.py end to end on the tiny default: training beats the untrained model,
--eval-only reproduces the reported mAP from the checkpoint, --resume continues after a kill.

The runs are in-process (``run_tool``), except the one killed with SIGKILL: a real process."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_table import command, run_tool

REPO = Path(__file__).resolve().parents[2]
CONFIG = ["--config-file", str(REPO / "configs/ava/tiny.py")]
FAST = [
    "dataloader.train.num_workers=0",
    "dataloader.test.num_workers=0",
    "train.log_period=10",
]


@pytest.fixture(scope="module")
def env(tiny_ava):
    return {"VMAE_DET_DATASETS": str(tiny_ava.parent)}


def run(args, env):
    return run_tool("train_net", CONFIG + args, env)


def metrics_map(out: Path) -> float:
    return json.loads((out / "inference" / "ava_metrics.json").read_text())["mAP"]


def untrained_checkpoint(path: Path) -> Path:
    """The model training starts from (configs/ava/tiny.py, train.seed=0, no init checkpoint), saved as a
    checkpoint: --eval-only refuses to evaluate without one."""
    import torch
    from detectron2.config import instantiate

    from vmae_det.config import load_config

    torch.manual_seed(0)  # train.seed of configs/ava/tiny.py: default_setup seeds torch with it before building
    model = instantiate(load_config(str(REPO / "configs/ava/tiny.py")).model)
    torch.save({"model": model.state_dict()}, path)
    return path


def test_training_beats_untrained_and_eval_only_reproduces(env, tmp_path):
    untrained = untrained_checkpoint(tmp_path / "untrained.pth")
    before = run(
        ["--eval-only", f"train.init_checkpoint={untrained}", f"train.output_dir={tmp_path / 'before'}", *FAST], env
    )
    assert before.returncode == 0, before.stderr[-3000:]
    out = tmp_path / "train"
    # the quick start's 300 steps: VMAD's tiny head init (x 0.001) makes the first ~100 steps slow
    trained = run(
        [
            f"train.output_dir={out}",
            "train.max_iter=300",
            "train.eval_period=0",
            "train.checkpointer.period=150",
            *FAST,
        ],
        env,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    map_before, map_after = metrics_map(tmp_path / "before"), metrics_map(out)
    assert map_after > map_before + 0.1, (map_before, map_after)
    assert (out / "loss_curve.png").exists() and (out / "inference" / "ava_per_class_ap.png").exists()
    import torch

    from vmae_det.checkpoints import clip_fps_of, read_checkpoint

    # the checkpoint says at which rate its training clips were sampled (the demo samples at it)
    assert clip_fps_of(read_checkpoint(str(out / "model_final.pth"))[1]) == 30.0
    assert torch.load(out / "model_final.pth", weights_only=True)["clip_fps"] == 30.0

    again = run(
        [
            "--eval-only",
            f"train.init_checkpoint={out / 'model_final.pth'}",
            f"train.output_dir={tmp_path / 'again'}",
            *FAST,
        ],
        env,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert metrics_map(tmp_path / "again") == pytest.approx(map_after, abs=1e-9)


def test_resume_after_kill_continues_from_saved_iteration(env, tmp_path):
    out = tmp_path / "run"
    args = [
        f"train.output_dir={out}",
        "train.max_iter=30",
        "train.checkpointer.period=10",
        "train.eval_period=0",
        *FAST,
    ]
    proc = subprocess.Popen(
        command("train_net") + CONFIG + args,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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


def test_eval_only_with_a_vmad_checkpoint(env, tmp_path):
    """An official VideoMAE-Action-Detection checkpoint ({"model", "optimizer", "epoch", "scaler",
    "args"}, VMAD key names, head included) evaluates through the CLI with the same mAP as the same
    weights saved as our own detectron2 checkpoint; one without the head is refused."""
    import argparse

    import torch
    from detectron2.config import instantiate

    from vmae_det.checkpoints import export_state_dict
    from vmae_det.config import load_config

    torch.manual_seed(3)
    model = instantiate(load_config(str(REPO / "configs/ava/tiny.py")).model)
    with torch.no_grad():
        model.head.fc.weight.normal_(0, 0.2)  # a head that discriminates, so mAPs are not all equal by chance
    vmad = export_state_dict(model, "mcg-finetune")
    assert "head.weight" in vmad and not any(k.startswith("backbone.") for k in vmad)
    torch.save(
        {"model": vmad, "optimizer": {}, "epoch": 29, "scaler": {}, "args": argparse.Namespace(nb_classes=5)},
        tmp_path / "vmad.pth",
    )
    torch.save({"model": model.state_dict(), "iteration": 0}, tmp_path / "ours.pth")
    maps = {}
    for name in ("vmad", "ours"):
        r = run(
            [
                "--eval-only",
                f"train.init_checkpoint={tmp_path / (name + '.pth')}",
                f"train.output_dir={tmp_path / name}",
                *FAST,
            ],
            env,
        )
        assert r.returncode == 0, r.stderr[-3000:]
        maps[name] = metrics_map(tmp_path / name)
    assert maps["vmad"] == pytest.approx(maps["ours"], abs=1e-12)
    headless = {k: v for k, v in vmad.items() if not k.startswith("head.")}
    torch.save({"model": headless}, tmp_path / "headless.pth")
    r = run(
        [
            "--eval-only",
            f"train.init_checkpoint={tmp_path / 'headless.pth'}",
            f"train.output_dir={tmp_path / 'headless'}",
            *FAST,
        ],
        env,
    )
    assert r.returncode != 0 and "head" in r.stderr
