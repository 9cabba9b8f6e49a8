"""The shared engine: parameter groups, schedule, trainer step, hooks, train/resume from a config."""
import argparse
import json

import pytest
import torch

from vmae_det.config import load_config
from vmae_det.engine import cosine_with_warmup, do_train, get_param_groups, plot_metrics, scaled_lr
from vmae_det.engine.trainer import Trainer

from engine_toy_parts import ToyRegressor, toy_loader

CONFIG = """
from detectron2.config import LazyCall as L
from omegaconf import OmegaConf
from engine_toy_parts import ToyRegressor, toy_loader
from vmae_det.engine import build_adamw, cosine_with_warmup

model = L(ToyRegressor)()
dataloader = OmegaConf.create()
dataloader.train = L(toy_loader)(batch_size=8)
optimizer = L(build_adamw)(lr=0.05, weight_decay=0.05, betas=(0.9, 0.999), layer_decay=0.5)
lr_multiplier = L(cosine_with_warmup)(warmup_fraction=0.1, min_lr_ratio=0.01)
train = dict(max_iter=40, device="cpu", clip_grad=1.0, log_period=5, checkpointer=dict(period=20))
"""


def test_param_groups_no_decay_and_layer_decay():
    model = ToyRegressor()
    groups = get_param_groups(model, lr=1.0, weight_decay=0.05, layer_decay=0.5)
    by_param = {id(p): g for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    g = lambda n: by_param[id(named[n])]  # noqa: E731
    assert g("backbone.pos_embed")["weight_decay"] == 0.0 and g("backbone.pos_embed")["lr"] == 0.5**3
    assert g("backbone.blocks.0.weight")["weight_decay"] == 0.05 and g("backbone.blocks.0.weight")["lr"] == 0.5**2
    assert g("backbone.blocks.0.bias")["weight_decay"] == 0.0
    assert g("backbone.blocks.1.weight")["lr"] == 0.5
    assert g("head.weight")["lr"] == 1.0 and g("backbone.norm.weight")["weight_decay"] == 0.0
    assert sum(len(x["params"]) for x in groups) == len(named)


def test_layer_decay_needs_a_vit():
    with pytest.raises(ValueError, match="layer_decay"):
        get_param_groups(torch.nn.Linear(2, 2), lr=1.0, weight_decay=0.0, layer_decay=0.75)


def test_cosine_with_warmup_shape():
    s = cosine_with_warmup(warmup_fraction=0.2, min_lr_ratio=0.1)
    assert s(0.0) == pytest.approx(0.0)
    assert s(0.1) == pytest.approx(0.5)
    assert s(0.2) == pytest.approx(1.0)
    assert s(0.6) == pytest.approx(0.55)  # cosine half-way over the remaining 80 %
    assert s(0.999999) == pytest.approx(0.1, abs=1e-4)
    assert scaled_lr(1.5e-4, 1024) == pytest.approx(6e-4)


def test_trainer_clips_gradients():
    model = ToyRegressor()
    data = ([{"x": torch.full((4,), 100.0), "y": torch.tensor(-1e4)}] for _ in iter(int, 1))
    trainer = Trainer(model, data, torch.optim.SGD(model.parameters(), lr=0.0), clip_grad=0.5)
    from detectron2.utils.events import EventStorage

    with EventStorage(0):
        trainer.iter = 0
        trainer.run_step()
    total = torch.sqrt(sum((p.grad**2).sum() for p in model.parameters()))
    assert trainer.last_grad_norm > 0.5 and total.item() == pytest.approx(0.5, rel=1e-4)


def _args(cfg_file, resume=False):
    return argparse.Namespace(config_file=str(cfg_file), opts=[], resume=resume, eval_only=False)


def test_train_writes_metrics_checkpoints_curve_and_resumes(tmp_path):
    cfg_file = tmp_path / "toy.py"
    cfg_file.write_text(CONFIG)
    out = tmp_path / "out"
    cfg = load_config(str(cfg_file), [f"train.output_dir={out}"])
    trainer = do_train(cfg, _args(cfg_file))
    assert trainer.iter == 40  # detectron2 leaves iter = max_iter after the loop
    rows = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    losses = [r["total_loss"] for r in rows if "total_loss" in r]
    assert len(losses) == 8 and losses[-1] < 0.7 * losses[0]
    assert (out / "model_0000019.pth").exists() and (out / "model_final.pth").exists()
    assert (out / "loss_curve.png").stat().st_size > 1000
    # Cosine ends at min_lr_ratio × each group's own (layer-decayed) peak lr.
    for group in trainer.optimizer.param_groups:
        assert group["lr"] == pytest.approx(0.05 * group["lr_scale"] * 0.01, rel=0.05)

    # Resume after "a kill" at iteration 20: start from the saved step, finish at max_iter.
    (out / "last_checkpoint").write_text("model_0000019.pth")
    (out / "model_final.pth").unlink()
    cfg = load_config(str(cfg_file), [f"train.output_dir={out}", "train.max_iter=30"])
    trainer = do_train(cfg, _args(cfg_file, resume=True))
    assert trainer.start_iter == 20 and trainer.iter == 30


def test_plot_metrics_handles_missing_file(tmp_path):
    assert plot_metrics(str(tmp_path / "nope.json"), str(tmp_path / "x.png")) is None


def test_ddp_on_cpu_with_two_processes(tmp_path, monkeypatch):
    """--num-gpus 2 without CUDA: two gloo processes train through DDP; rank 0 writes checkpoints/metrics."""
    from vmae_det.engine import launch_from_args

    # Rendezvous through a file and gloo on loopback: no port races, no dependence on the hostname.
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")

    cfg_file = tmp_path / "toy.py"
    cfg_file.write_text(CONFIG)
    out = tmp_path / "ddp"
    args = argparse.Namespace(
        config_file=str(cfg_file), resume=False, eval_only=False, num_gpus=2, num_machines=1, machine_rank=0,
        dist_url=f"file://{tmp_path / 'rendezvous'}", opts=[f"train.output_dir={out}", "train.max_iter=10", "train.checkpointer.period=5"],
    )
    launch_from_args(args)
    final = torch.load(out / "model_final.pth", weights_only=True)
    assert final["iteration"] == 9
    rows = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert rows[-1]["iteration"] == 9 and "total_loss" in rows[-1]


def test_trainer_bfloat16_autocast_on_cpu():
    """train.amp.enabled with bfloat16 runs on CPU (no GradScaler needed) and still learns."""
    model = ToyRegressor()
    trainer = Trainer(model, toy_loader(), torch.optim.AdamW(model.parameters(), lr=0.05),
                      amp=True, amp_dtype="bfloat16", device_type="cpu")
    assert trainer.grad_scaler is None
    from detectron2.utils.events import EventStorage

    with EventStorage(0) as storage:
        for i in range(30):
            storage.iter = trainer.iter = i
            trainer.run_step()
        losses = [v for v, _ in storage.history("total_loss").values()]
    assert losses[-1] < 0.5 * losses[0]
