"""The shared engine: parameter groups, schedule, trainer step, hooks, train/resume from a config."""

import argparse
import json

import pytest
import torch
from cli_table import run_tool
from engine_toy_parts import ToyRegressor, toy_loader

from vmae_det.config import UnknownConfigKeyError, load_config
from vmae_det.engine import cosine_with_warmup, do_train, get_param_groups, plot_metrics, scaled_lr
from vmae_det.engine.trainer import Trainer

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


class RecordingRegressor(ToyRegressor):
    """ToyRegressor that saves, at every forward of every rank, its parameters (as the previous steps left
    them) and the batch it got: ``{record_dir}/rank{r}_step{k}.pt``."""

    def __init__(self, record_dir: str = ""):
        super().__init__()
        self.record_dir, self.calls = record_dir, 0

    def forward(self, batch):
        if self.record_dir:
            from detectron2.utils import comm

            params = {k: v.detach().clone() for k, v in self.state_dict().items()}
            torch.save(
                {"params": params, "x": torch.stack([d["x"] for d in batch])},
                os.path.join(self.record_dir, f"rank{comm.get_rank()}_step{self.calls}.pt"),
            )
            self.calls += 1
        return super().forward(batch)


def per_rank_loader(batch_size: int = 8, merge_ranks: int = 0):
    """Each DDP rank draws its own batches (seed = rank); ``merge_ranks=R``: one process drawing what R
    ranks would, concatenated into one batch per step."""
    from detectron2.utils import comm

    if not merge_ranks:
        yield from toy_loader(batch_size, seed=comm.get_rank())
    for parts in zip(*(toy_loader(batch_size, seed=r) for r in range(merge_ranks))):
        yield [d for part in parts for d in part]


DDP_CONFIG = (
    CONFIG.replace(
        "from engine_toy_parts import ToyRegressor, toy_loader",
        "from test_engine import RecordingRegressor, per_rank_loader",
    )
    .replace("model = L(ToyRegressor)()", "model = L(RecordingRegressor)()")
    .replace("dataloader.train = L(toy_loader)(batch_size=8)", "dataloader.train = L(per_rank_loader)(batch_size=8)")
)


def test_ddp_on_cpu_with_two_processes(tmp_path, monkeypatch):
    """--num-gpus 2 without CUDA: two gloo processes train through DDP on different data; rank 0 writes
    checkpoints/metrics. Gradients are synchronised: after every step both ranks hold the same parameters,
    which differ from one process training on rank 0's data alone and equal one process training on both
    ranks' batches at once (DDP averages the gradients of equal-sized batches of a mean loss)."""
    from vmae_det.engine import launch_from_args

    # Rendezvous through a file and gloo on loopback: no port races, no dependence on the hostname.
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    assert "RecordingRegressor" in DDP_CONFIG and "per_rank_loader" in DDP_CONFIG

    cfg_file = tmp_path / "toy.py"
    cfg_file.write_text(DDP_CONFIG)
    steps = 10

    def run(name: str, num_gpus: int, *opts):
        out, rec = tmp_path / name, tmp_path / f"{name}_records"
        rec.mkdir()
        launch_from_args(
            argparse.Namespace(
                config_file=str(cfg_file),
                resume=False,
                eval_only=False,
                num_gpus=num_gpus,
                num_machines=1,
                machine_rank=0,
                dist_url=f"file://{tmp_path / f'rendezvous_{name}'}",
                opts=[
                    f"train.output_dir={out}",
                    f"train.max_iter={steps}",
                    "train.checkpointer.period=5",
                    "train.seed=0",
                    f"model.record_dir={rec}",
                    *opts,
                ],
            )
        )
        load = lambda r, k: torch.load(rec / f"rank{r}_step{k}.pt", weights_only=True)  # noqa: E731
        return out, load

    out, ddp = run("ddp", 2)
    final = torch.load(out / "model_final.pth", weights_only=True)
    assert final["iteration"] == 9
    rows = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert rows[-1]["iteration"] == 9 and "total_loss" in rows[-1]

    assert not torch.equal(ddp(0, 0)["x"], ddp(1, 0)["x"])  # the ranks see different data
    for k in range(steps):
        p0, p1 = ddp(0, k)["params"], ddp(1, k)["params"]
        for name in p0:
            assert torch.equal(p0[name], p1[name]), (k, name)  # bit-identical on both ranks, every step
    for name, value in ddp(0, steps - 1)["params"].items():
        assert not torch.equal(value, ddp(0, 0)["params"][name]), name  # and they did train

    # One process on rank 0's batches only: other weights (rank 1's gradients were averaged in).
    out_alone, alone = run("rank0_alone", 1)
    assert torch.equal(alone(0, 0)["x"], ddp(0, 0)["x"])
    alone_final = torch.load(out_alone / "model_final.pth", weights_only=True)["model"]
    assert any(not torch.allclose(alone_final[k], final["model"][k], atol=1e-4) for k in final["model"])
    # One process on both ranks' batches concatenated: the DDP weights.
    out_merged, _ = run("merged", 1, "dataloader.train.merge_ranks=2")
    merged_final = torch.load(out_merged / "model_final.pth", weights_only=True)["model"]
    torch.testing.assert_close(final["model"], merged_final, atol=1e-5, rtol=0)


def test_trainer_bfloat16_autocast_on_cpu():
    """train.amp.enabled with bfloat16 runs on CPU (no GradScaler needed) and still learns."""
    model = ToyRegressor()
    trainer = Trainer(
        model,
        toy_loader(),
        torch.optim.AdamW(model.parameters(), lr=0.05),
        amp=True,
        amp_dtype="bfloat16",
        device_type="cpu",
    )
    assert trainer.grad_scaler is None
    from detectron2.utils.events import EventStorage

    with EventStorage(0) as storage:
        for i in range(30):
            storage.iter = trainer.iter = i
            trainer.run_step()
        losses = [v for v, _ in storage.history("total_loss").values()]
    assert losses[-1] < 0.5 * losses[0]


# ----------------------------------------------------------------- one run per folder, resume, metrics.json
import logging  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402

from detectron2.evaluation import DatasetEvaluator  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

from vmae_det.engine.hooks import ResumableBestCheckpointer  # noqa: E402
from vmae_det.engine.resume import CorruptCheckpointsError  # noqa: E402
from vmae_det.formats.output_lock import LOCK_NAME, OutputDirBusyError, output_dir_lock  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def vmae_log():
    """Messages of the ``vmae_det`` logger (setup_logger turns its propagation off: caplog misses them)."""
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep(level=logging.INFO)
    log = logging.getLogger("vmae_det")
    old_level = log.level
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        yield records
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)


def _train(tmp_path, *opts, resume=False, config=CONFIG):
    cfg_file = tmp_path / "toy.py"
    cfg_file.write_text(config)
    cfg = load_config(str(cfg_file), list(opts))
    return do_train(cfg, _args(cfg_file, resume=resume))


_HOLD = (
    "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
    "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'pid %d held by a test' % os.getpid()); "
    "print('held', flush=True); time.sleep(600)"
)


def test_output_dir_lock_refuses_a_second_run_and_dies_with_its_holder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out / LOCK_NAME)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputDirBusyError) as err:
            _train(tmp_path, f"train.output_dir={out}", "train.max_iter=2")
        assert f"train.output_dir {out} is in use by another run" in str(err.value)
        assert f"pid {holder.pid} held by a test" in str(err.value)
        assert not (out / "metrics.json").exists()  # refused before anything was written
    finally:
        holder.kill()  # SIGKILL: no clean-up; the kernel drops the flock with the process
        holder.wait()
    trainer = _train(tmp_path, f"train.output_dir={out}", "train.max_iter=2")
    assert trainer.iter == 2 and (out / "model_final.pth").exists()
    # Re-entrant within one process, released at the end of the block.
    with output_dir_lock(str(out)):
        with output_dir_lock(str(out)):
            pass
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
                "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)",
                str(out / LOCK_NAME),
            ]
        )
        assert probe.returncode != 0  # held by this process
    free = subprocess.run(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
            "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)",
            str(out / LOCK_NAME),
        ]
    )
    assert free.returncode == 0


def test_output_dir_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        with output_dir_lock(str(tmp_path / "file")):
            pass


def test_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path):
    out = tmp_path / "out"
    _train(tmp_path, f"train.output_dir={out}", "train.max_iter=30", "train.checkpointer.period=10")
    final = out / "model_final.pth"
    final.write_bytes(final.read_bytes()[:1000])  # cut by a kill while writing
    assert (out / "last_checkpoint").read_text() == "model_final.pth"
    with vmae_log() as log:
        trainer = _train(tmp_path, f"train.output_dir={out}", "train.max_iter=35", resume=True)
    assert trainer.start_iter == 30 and trainer.iter == 35  # model_0000029.pth
    text = "\n".join(log)
    assert f"skipping checkpoint {final} named by last_checkpoint (corrupt" in text
    assert f"continuing from {out / 'model_0000029.pth'}" in text

    # Nothing readable at all: an error naming every file, not a silent fresh start.
    for p in out.glob("model_*.pth"):
        p.write_bytes(b"")
    with pytest.raises(CorruptCheckpointsError) as err:
        _train(tmp_path, f"train.output_dir={out}", "train.max_iter=40", resume=True)
    assert "no intact checkpoint" in str(err.value) and "model_0000029.pth (empty file)" in str(err.value)


def test_resume_into_a_mistyped_folder_warns_and_starts_fresh(tmp_path):
    with vmae_log() as log:
        trainer = _train(tmp_path, f"train.output_dir={tmp_path / 'typo'}", "train.max_iter=2", resume=True)
    assert trainer.start_iter == 0 and trainer.iter == 2
    assert any(
        "--resume: no checkpoint in train.output_dir=" in m
        and "the folder did not exist" in m
        and "starting a NEW run" in m
        for m in log
    ), log


def test_resume_says_which_optimizer_overrides_are_not_applied(tmp_path):
    out = tmp_path / "out"
    _train(tmp_path, f"train.output_dir={out}", "train.max_iter=20", "train.checkpointer.period=10")
    (out / "last_checkpoint").write_text("model_0000009.pth")
    with vmae_log() as log:
        trainer = _train(
            tmp_path,
            f"train.output_dir={out}",
            "train.max_iter=20",
            "optimizer.lr=0.01",
            "optimizer.weight_decay=0.1",
            resume=True,
        )
    warning = [m for m in log if "NOT applied" in m]
    assert len(warning) == 1, log
    assert "model_0000009.pth" in warning[0]
    assert "base lr (largest of the param groups) 0.01 (config) vs 0.05 (checkpoint)" in warning[0]
    assert "weight_decay 0.1 (config) vs 0.05 (checkpoint)" in warning[0]
    # the checkpoint's state is what trains on (detectron2's resume contract)
    sched = next(h for h in trainer._hooks if type(h).__name__ == "LRScheduler").scheduler
    assert max(sched.base_lrs) == pytest.approx(0.05)
    # no override, no warning
    (out / "last_checkpoint").write_text("model_0000009.pth")
    with vmae_log() as log:
        _train(tmp_path, f"train.output_dir={out}", "train.max_iter=20", resume=True)
    assert not any("NOT applied" in m for m in log)


def test_resume_with_a_checkpoint_of_another_model_is_an_error(tmp_path):
    out = tmp_path / "out"
    _train(tmp_path, f"train.output_dir={out}", "train.max_iter=2")
    other = CONFIG.replace(
        "model = L(ToyRegressor)()",
        "model = L(ToyRegressor)()\nfrom torch.nn import Linear\nmodel = L(Linear)(in_features=4, out_features=1)",
    )
    other = other.replace("layer_decay=0.5", "layer_decay=None")
    with pytest.raises(ValueError, match=r"--resume: .*\.pth does not fit this Linear \(was the model config"):
        _train(tmp_path, f"train.output_dir={out}", "train.max_iter=4", resume=True, config=other)


def test_metrics_json_after_a_kill(tmp_path):
    out = tmp_path / "out"
    _train(tmp_path, f"train.output_dir={out}", "train.max_iter=20", "train.checkpointer.period=10")
    metrics = out / "metrics.json"
    with open(metrics, "a") as f:
        f.write('{"iteration": 20, "total_los')  # a kill in the middle of a write
    (out / "last_checkpoint").write_text("model_0000009.pth")
    (out / "model_final.pth").unlink()
    with vmae_log() as log:
        assert plot_metrics(str(metrics), str(tmp_path / "curve.png")) is not None  # the reader skips it
    assert any("skipped 1 unreadable line" in m for m in log)
    _train(tmp_path, f"train.output_dir={out}", "train.max_iter=20", resume=True)
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]  # every line parses
    iters = [r["iteration"] for r in rows if "total_loss" in r]
    assert iters == sorted(iters) and len(iters) == len(set(iters)) and iters[-1] == 19  # no rows run twice

    # A kill before the first write leaves an empty file: resuming and plotting still work.
    metrics.write_text("")
    (out / "last_checkpoint").write_text("model_0000009.pth")
    _train(tmp_path, f"train.output_dir={out}", "train.max_iter=20", resume=True)
    assert [json.loads(x)["iteration"] for x in metrics.read_text().splitlines()][-1] == 19

    # A new run (no --resume) into the folder keeps the earlier run's rows aside instead of appending.
    before = metrics.read_text()
    with vmae_log() as log:
        _train(tmp_path, f"train.output_dir={out}", "train.max_iter=5")
    assert (out / "metrics.previous.json").read_text() == before
    assert [json.loads(x)["iteration"] for x in metrics.read_text().splitlines()][-1] == 4
    assert any("holds checkpoints of an earlier run" in m for m in log)


class ToyEvaluator(DatasetEvaluator):
    """Score = minus the mean loss of the toy regressor on the test batches (higher is better)."""

    def reset(self):
        self.losses = []

    def process(self, inputs, outputs):
        self.losses.append(float(outputs["loss_mse"]))

    def evaluate(self):
        return {"toy": {"score": -sum(self.losses) / len(self.losses)}}


def toy_test_batches(n: int = 4):
    it = toy_loader(batch_size=8, seed=123)
    return [next(it) for _ in range(n)]


EVAL_CONFIG = (
    CONFIG
    + """
from test_engine import ToyEvaluator, toy_test_batches
dataloader.test = L(toy_test_batches)()
dataloader.evaluator = L(ToyEvaluator)()
train["eval_period"] = 5
train["best_metric"] = "toy/score"
"""
)


def test_best_checkpoint_record_survives_resume(tmp_path):
    out = tmp_path / "out"
    _train(
        tmp_path,
        f"train.output_dir={out}",
        "train.max_iter=20",
        "train.checkpointer.period=5",
        "train.checkpointer.max_to_keep=10",
        config=EVAL_CONFIG,
    )
    saved = torch.load(out / "model_0000014.pth", weights_only=True)["trainer"]["hooks"]["ResumableBestCheckpointer"]
    assert saved["metric"] == "toy/score" and saved["best_iter"] <= 9  # evaluations at 4, 9 before this save
    best = torch.load(out / "model_best.pth", weights_only=True)
    record = best["trainer"]["hooks"]["ResumableBestCheckpointer"]
    assert record["best_iter"] == best["iteration"]  # model_best.pth carries its own value

    (out / "last_checkpoint").write_text("model_0000014.pth")
    with vmae_log() as log:
        trainer = _train(tmp_path, f"train.output_dir={out}", "train.max_iter=20", config=EVAL_CONFIG, resume=True)
    assert any(
        f"Best-checkpoint record restored: toy/score={saved['best_metric']:.5f} @ iteration {saved['best_iter']}" in m
        for m in log
    ), log
    hook = next(h for h in trainer._hooks if isinstance(h, ResumableBestCheckpointer))
    assert hook.best_metric >= saved["best_metric"]


class _CountingCheckpointer:
    def __init__(self, hook):
        self.hook, self.saved = hook, []

    def save(self, name, **extra):
        self.saved.append((name, dict(self.hook.state_dict()), extra))


def test_best_checkpointer_compares_with_the_restored_record():
    hook = ResumableBestCheckpointer(5, None, "toy/score", mode="max")
    hook._checkpointer = _CountingCheckpointer(hook)
    hook.load_state_dict({"metric": "toy/score", "mode": "max", "best_metric": 0.9, "best_iter": 9})
    with EventStorage(20) as storage:
        hook.trainer = type("T", (), {"storage": storage})()
        storage.put_scalar("toy/score", 0.5, smoothing_hint=False)
        hook._best_checking()  # worse than the restored record: model_best.pth stays
        assert hook._checkpointer.saved == []
        storage.iter = 25
        storage.put_scalar("toy/score", 0.95, smoothing_hint=False)
        hook._best_checking()
    name, state, extra = hook._checkpointer.saved[0]
    assert name == "model_best" and extra == {"iteration": 25}
    assert state["best_metric"] == 0.95 and state["best_iter"] == 25  # recorded before the file is written
    other = ResumableBestCheckpointer(5, None, "toy/other", mode="max")
    other.load_state_dict({"metric": "toy/score", "mode": "max", "best_metric": 0.9, "best_iter": 9})
    assert other.best_metric is None  # a record of another metric is not restored


def _cli_args(cfg_file, *opts, eval_only=False, resume=False):
    from vmae_det.engine import default_argument_parser

    argv = (
        ["--config-file", str(cfg_file)]
        + (["--eval-only"] if eval_only else [])
        + (["--resume"] if resume else [])
        + list(opts)
    )
    return default_argument_parser().parse_args(argv)


def test_eval_only_resume_evaluates_the_last_checkpoint(tmp_path):
    from vmae_det.engine import main

    cfg_file = tmp_path / "toy.py"
    cfg_file.write_text(EVAL_CONFIG)
    out = tmp_path / "out"
    _train(tmp_path, f"train.output_dir={out}", "train.max_iter=10", "train.checkpointer.period=5", config=EVAL_CONFIG)
    (out / "last_checkpoint").write_text("model_0000004.pth")
    at4 = main(_cli_args(cfg_file, f"train.output_dir={out}", eval_only=True, resume=True))
    final = main(
        _cli_args(
            cfg_file, f"train.output_dir={out}", f"train.init_checkpoint={out / 'model_final.pth'}", eval_only=True
        )
    )
    assert at4["toy"]["score"] != final["toy"]["score"]  # it evaluated model_0000004.pth, not the final weights
    with pytest.raises(ValueError, match="--eval-only needs weights"):
        main(_cli_args(cfg_file, f"train.output_dir={tmp_path / 'x'}", eval_only=True))
    with pytest.raises(FileNotFoundError, match="--eval-only --resume: no checkpoint in train.output_dir="):
        main(_cli_args(cfg_file, f"train.output_dir={tmp_path / 'empty'}", eval_only=True, resume=True))


def test_pretrain_eval_only_prints_the_reconstruction_loss(tmp_path, capsys, tiny_ava_videos):
    """pretrain_mae.py --eval-only: the MAE loss of a checkpoint on a few batches (a number, not a no-op)."""
    from detectron2.config import instantiate
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from vmae_det.data.video_dataset import register_video_list
    from vmae_det.engine import main

    name = "test_engine_mae_eval_videos"
    register_video_list(name, str(tiny_ava_videos / "videos"))
    config = str(REPO / "configs/pretrain/tiny.py")
    opts = [
        f"dataloader.train.dataset.names={name}",
        "dataloader.train.num_workers=0",
        "dataloader.train.total_batch_size=2",
        f"train.output_dir={tmp_path / 'eval'}",
        "train.device=cpu",
    ]
    try:
        model = instantiate(load_config(config, opts).model)
        torch.save({"model": model.state_dict(), "iteration": 0}, tmp_path / "mae.pth")
        result = main(_cli_args(config, *opts, f"train.init_checkpoint={tmp_path / 'mae.pth'}", eval_only=True))
        again = main(_cli_args(config, *opts, f"train.init_checkpoint={tmp_path / 'mae.pth'}", eval_only=True))
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    assert 0 < result["mae/loss_mae"] < 10 and result["mae/clips"] == 20
    assert again["mae/loss_mae"] == pytest.approx(result["mae/loss_mae"])  # seeded masks and clips
    assert "MAE reconstruction loss (loss_mae) of" in capsys.readouterr().out
    assert json.loads((tmp_path / "eval" / "inference" / "mae_eval.json").read_text())["mae/clips"] == 20


def test_num_classes_checked_against_mappers_before_anything_is_built():
    from vmae_det.engine.checks import check_num_classes

    cfg = load_config(str(REPO / "configs/ava/tiny.py"), ["dataloader.test.mapper.num_classes=4"])
    with pytest.raises(ValueError, match=r"dataloader.test.mapper.num_classes=4 differs from model.num_classes=5"):
        check_num_classes(cfg)
    check_num_classes(load_config(str(REPO / "configs/ava/tiny.py")))


# ----------------------------------------------------------------- hooks and --eval-only declared in the config
from detectron2.engine import HookBase  # noqa: E402

from vmae_det.config import ConfigValueError  # noqa: E402


class RecordingHook(HookBase):
    """Test hook: records the iterations it saw (every ``period``) and the model class it reached."""

    seen: list = []

    def __init__(self, period: int, tag: str = ""):
        self.period, self.tag = period, tag

    def before_train(self):
        RecordingHook.seen.append(
            (self.tag, "model", type(getattr(self.trainer.model, "module", self.trainer.model)).__name__)
        )

    def after_step(self):
        if (self.trainer.iter + 1) % self.period == 0:
            RecordingHook.seen.append((self.tag, self.trainer.iter))


def recording_hooks(tags=("a", "b")):
    """A factory building several hooks (a list) and nothing (None) is allowed too."""
    return [RecordingHook(period=10, tag=t) for t in tags] + [None]


def toy_eval_only(scale: float = 1.0):
    def run(cfg, model, checkpoint):
        return {
            "toy_eval": {
                "scale": scale,
                "checkpoint": checkpoint,
                "max_iter": cfg.train.max_iter,
                "model": type(model).__name__,
            }
        }

    return run


HOOKS_CONFIG = (
    CONFIG
    + """
from test_engine import RecordingHook, recording_hooks, toy_eval_only
train["hooks"] = [L(RecordingHook)(period="${train.log_period}", tag="log"), L(recording_hooks)()]
train["eval_only"] = L(toy_eval_only)(scale=2.0)
"""
)


def test_config_declared_hooks_run_with_interpolated_values(tmp_path):
    """train.hooks: LazyCall hook factories, built after the trainer (they reach the model through it),
    values interpolated from train.*, items overridable by index; no model switch in the engine."""
    import inspect

    import vmae_det.engine.train_loop as train_loop

    source = inspect.getsource(train_loop)
    assert "isinstance(model" not in source and "import VideoMAE" not in source and "video_dataset" not in source
    RecordingHook.seen = []
    _train(
        tmp_path,
        f"train.output_dir={tmp_path / 'out'}",
        "train.max_iter=20",
        "train.log_period=5",
        "train.hooks.1.tags=[c]",
        config=HOOKS_CONFIG,
    )
    seen = RecordingHook.seen
    assert ("log", "model", "ToyRegressor") in seen and ("c", "model", "ToyRegressor") in seen
    assert [s[1] for s in seen if s[0] == "log" and s[1] != "model"] == [4, 9, 14, 19]  # ${train.log_period}
    assert [s[1] for s in seen if s[0] == "c" and s[1] != "model"] == [9, 19] and not [s for s in seen if s[0] == "a"]


def test_eval_only_without_evaluator_runs_train_eval_only(tmp_path):
    from vmae_det.engine import main

    cfg_file = tmp_path / "toy.py"
    cfg_file.write_text(HOOKS_CONFIG)
    out = tmp_path / "out"
    _train(tmp_path, f"train.output_dir={out}", "train.max_iter=2", config=HOOKS_CONFIG)
    result = main(
        _cli_args(
            cfg_file, f"train.output_dir={out}", f"train.init_checkpoint={out / 'model_final.pth'}", eval_only=True
        )
    )
    assert result == {
        "toy_eval": {"scale": 2.0, "checkpoint": str(out / "model_final.pth"), "max_iter": 40, "model": "ToyRegressor"}
    }
    with pytest.raises(ValueError, match="has neither dataloader.evaluator nor train.eval_only: nothing to evaluate"):
        main(
            _cli_args(
                cfg_file,
                f"train.output_dir={out}",
                f"train.init_checkpoint={out / 'model_final.pth'}",
                "train.eval_only=null",
                eval_only=True,
            )
        )


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.hooks=5", "train.hooks=5 from the command line is not valid: expected a list of LazyCall nodes"),
        ("train.hooks=[1]", "train.hooks.0=1 from the command line is not valid: expected a LazyCall node"),
        (
            "train.hooks.0._target_=no_such_module.Hook",
            "train.hooks.0 (no_such_module.Hook) from the command line is "
            "not valid: its _target_ 'no_such_module.Hook' cannot be imported",
        ),
        ("train.eval_only=abc", "train.eval_only='abc' from the command line is not valid: expected a LazyCall node"),
    ],
)
def test_bad_hook_declarations_are_refused_at_load_time(tmp_path, override, message):
    cfg_file = tmp_path / "toy.py"
    cfg_file.write_text(HOOKS_CONFIG)
    with pytest.raises(ConfigValueError) as err:
        load_config(str(cfg_file), [override])
    assert message in str(err.value)


def test_bad_hook_arguments_name_the_file_and_line(tmp_path):
    cfg_file = tmp_path / "toy.py"
    cfg_file.write_text(HOOKS_CONFIG + 'train["hooks"] = [L(RecordingHook)(perod=3)]\n')
    with pytest.raises(ConfigValueError) as err:
        load_config(str(cfg_file))
    line = HOOKS_CONFIG.count("\n") + 1
    assert (
        f"train.hooks.0 (test_engine.RecordingHook) from {cfg_file}:{line} is not valid: "
        "RecordingHook() takes no argument 'perod'" in str(err.value)
    )
    with pytest.raises(UnknownConfigKeyError, match=r"'train.hooks.2' in command line: 'train.hooks' has 2 item"):
        load_config(str(_write(tmp_path, HOOKS_CONFIG)), ["train.hooks.2.period=1"])
    with pytest.raises(
        ValueError, match=r"train.hooks.0 \(.*toy_eval_only\) built a function, not a detectron2 HookBase"
    ):
        _train(
            tmp_path,
            f"train.output_dir={tmp_path / 'o'}",
            "train.max_iter=1",
            config=HOOKS_CONFIG + 'train["hooks"] = [L(toy_eval_only)()]\n',
        )


def _write(tmp_path, text):
    p = tmp_path / "toy2.py"
    p.write_text(text)
    return p


def test_pretraining_configs_declare_the_mae_hooks():
    """The MAE extras come from the configs (configs/common/mae.py), not from a model switch."""
    from detectron2.config import instantiate

    from vmae_det.data.video_dataset import skipped_videos
    from vmae_det.engine.hooks import SkipCounterHook
    from vmae_det.engine.mae_eval import MAELossEvaluation
    from vmae_det.engine.mae_visualization import MAEReconstructionHook

    for name in (
        "tiny.py",
        "videomae_vit_b_k400_800ep.py",
        "videomae_vit_s_k400_1600ep.py",
        "videomae_vit_b_ssv2_2400ep.py",
    ):
        cfg = load_config(str(REPO / "configs/pretrain" / name), ["train.log_period=7", "train.checkpointer.period=9"])
        pictures, skips = (instantiate(h) for h in cfg.train.hooks)
        assert isinstance(pictures, MAEReconstructionHook) and pictures._period == 9  # vis_period 0: at checkpoints
        assert pictures._output_dir == cfg.train.output_dir
        assert isinstance(skips, SkipCounterHook) and skips.count is skipped_videos and skips.period == 7
        assert isinstance(instantiate(cfg.train.eval_only), MAELossEvaluation)
    cfg = load_config(str(REPO / "configs/pretrain/tiny.py"), ["train.vis_period=3"])
    assert instantiate(cfg.train.hooks[0])._period == 3
    assert load_config(str(REPO / "configs/ava/tiny.py")).train.hooks == []


def test_tools_are_thin_command_lines():
    """No sys.path edits in tools/ (the package is installed); make_proposals' work lives in vmae_det.data."""
    import re

    for tool in sorted((REPO / "tools").glob("*.py")):
        assert not re.search(r"sys\.path\.(insert|append)", tool.read_text()), tool
    import importlib.util

    from vmae_det.data import proposals

    spec = importlib.util.spec_from_file_location("make_proposals_thin", REPO / "tools" / "make_proposals.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.make_proposals is proposals.make_proposals and tool.collect_videos is proposals.collect_videos
    # in this process (a real process of a tool runs from a folder without the package in tests/docs)
    proc = run_tool("make_proposals", ["--root", "/nonexistent", "--output", "/nonexistent/p.csv"])
    assert proc.returncode == 2 and proc.stderr.startswith("error: no videos under /nonexistent/frames/<id>/"), (
        proc.stderr
    )


# ----------------------------------------------------------------- atomic checkpoints, earlier metrics kept
def _save_half_then(error):
    """torch.save that leaves half of its file written, then fails with ``error`` (a full disk, a kill)."""
    real = torch.save

    def save(obj, f, *args, **kwargs):
        real(obj, f, *args, **kwargs)
        data = Path(f).read_bytes()
        Path(f).write_bytes(data[: len(data) // 2])
        raise error

    return save


@pytest.mark.parametrize(
    "error", [OSError(28, "No space left on device"), KeyboardInterrupt()], ids=["full_disk", "killed"]
)
def test_checkpoint_save_that_fails_midway_keeps_the_earlier_checkpoints(tmp_path, monkeypatch, error):
    """detectron2 wrote checkpoints in place: a full disk left a truncated model_0000009.pth under its final
    name, a kill during model_final.pth's save a truncated model_final.pth. Now each is written to a
    temporary name and renamed: the earlier files (and last_checkpoint) stay as they were."""
    out = tmp_path / "out"
    opts = (f"train.output_dir={out}", "train.max_iter=20", "train.checkpointer.period=10")
    _train(tmp_path, *opts)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".pth" or p.name == "last_checkpoint"}
    assert {"model_0000009.pth", "model_final.pth", "last_checkpoint"} <= set(before)
    monkeypatch.setattr(torch, "save", _save_half_then(error))
    with pytest.raises(type(error)):
        _train(tmp_path, *opts)  # a new run into the folder: its first save (model_0000009.pth) fails
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name in before} == before
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]  # no temporary file left behind
    trainer = _train(tmp_path, f"train.output_dir={out}", "train.max_iter=25", resume=True)
    assert trainer.start_iter == 20  # model_final.pth reads back


def test_new_runs_keep_every_earlier_runs_metrics(tmp_path):
    """A new run into a folder moved the earlier metrics.json to metrics.previous.json, overwriting the one
    a run before had put there; now each earlier run keeps a file of its own."""
    out = tmp_path / "out"
    runs = []
    for max_iter in (5, 10, 15):
        _train(tmp_path, f"train.output_dir={out}", f"train.max_iter={max_iter}")
        runs.append((out / "metrics.json").read_text())
    assert [json.loads(x)["iteration"] for x in runs[2].splitlines()][-1] == 14
    assert (out / "metrics.previous.json").read_text() == runs[0]
    assert (out / "metrics.previous.1.json").read_text() == runs[1]
    assert sorted(p.name for p in out.glob("metrics*.json")) == [
        "metrics.json",
        "metrics.previous.1.json",
        "metrics.previous.json",
    ]


def test_a_full_disk_ends_training_with_one_error_naming_the_output_folder(tmp_path, monkeypatch):
    """Every event writer failing with ENOSPC (metrics.json, TensorBoard) used to raise again from every hook
    and at the end of training: now the first failure ends it, once, naming train.output_dir."""
    import errno

    from detectron2.utils import events

    calls = {"n": 0}

    def full_disk(self):
        calls["n"] += 1
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(events.JSONWriter, "write", full_disk)
    monkeypatch.setattr(events.TensorboardXWriter, "write", full_disk)
    out = tmp_path / "out"
    with pytest.raises(OSError, match=rf"train.output_dir {out}: cannot write the JSONWriter output: No space left"):
        _train(tmp_path, f"train.output_dir={out}", "train.max_iter=6", "train.log_period=2")
    assert calls["n"] == 1  # no second attempt, not even when training ends
