"""Gradient accumulation in the shared engine (``train.grad_accum_steps``).

N accumulated micro-batches must give exactly the update of one step on the N-times larger batch
(with AdamW, SGD, with and without clipping, plain and under DDP), and every counter that matters
(iteration, LR schedule, checkpoints) counts optimizer steps.
"""

import argparse
import copy
import json
import time
from pathlib import Path

import pytest
import torch
from detectron2.engine import HookBase
from detectron2.utils.events import EventStorage
from engine_toy_parts import ToyRegressor, toy_loader

from vmae_det.config import UnknownConfigKeyError, load_config
from vmae_det.config_schema import TRAIN_DEFAULTS
from vmae_det.engine import do_train
from vmae_det.engine.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]
ACCUM, MICRO = 4, 2  # 4 micro-batches of 2 samples == one batch of 8


class Counting:
    """An endless data loader over fixed batches that counts how many were drawn."""

    def __init__(self, batches):
        self.batches, self.drawn = batches, 0

    def __iter__(self):
        while True:
            self.drawn += 1
            yield self.batches[(self.drawn - 1) % len(self.batches)]


def big_batches(n_steps: int):
    """Deterministic float64 batches of ACCUM * MICRO samples (float64: no rounding noise in the comparison)."""
    it = toy_loader(batch_size=ACCUM * MICRO, seed=0)
    return [[{k: v.double() for k, v in d.items()} for d in next(it)] for _ in range(n_steps)]


def micro_batches(bigs):
    return [big[i : i + MICRO] for big in bigs for i in range(0, len(big), MICRO)]


def make_optimizer(kind: str, model):
    if kind == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.05)
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def run_steps(trainer, n_steps: int, storage: EventStorage, start: int = 0):
    """``n_steps`` optimizer steps, metrics written to ``storage`` (each trainer its own)."""
    with storage:
        for i in range(start, start + n_steps):
            storage.iter = trainer.iter = i
            trainer.run_step()


def manual_step(model, optimizer, batch, clip_grad: float):
    """The textbook step on the whole batch, without the Trainer: an independent reference."""
    optimizer.zero_grad()
    model(batch)["loss_mse"].backward()
    if clip_grad > 0:
        torch.nn.utils.clip_grad_norm_(list(model.parameters()), clip_grad)
    optimizer.step()


def params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


@pytest.mark.parametrize("optim", ["adamw", "sgd"])
@pytest.mark.parametrize("clip_grad", [0.0, 0.05])
def test_accumulated_steps_equal_one_big_batch(optim, clip_grad):
    torch.manual_seed(0)
    ref_model = ToyRegressor().double()
    acc_model = copy.deepcopy(ref_model)
    manual_model = copy.deepcopy(ref_model)
    manual_opt = make_optimizer(optim, manual_model)
    bigs = big_batches(3)
    ref = Trainer(ref_model, Counting(bigs), make_optimizer(optim, ref_model), clip_grad=clip_grad)
    acc = Trainer(
        acc_model,
        Counting(micro_batches(bigs)),
        make_optimizer(optim, acc_model),
        clip_grad=clip_grad,
        grad_accum_steps=ACCUM,
    )

    ref_storage, acc_storage = EventStorage(0), EventStorage(0)
    for step in range(3):
        run_steps(ref, 1, ref_storage, start=step)
        run_steps(acc, 1, acc_storage, start=step)
        manual_step(manual_model, manual_opt, bigs[step], clip_grad)
        if step in (0, 2):  # after 1 and after 3 optimizer steps
            torch.testing.assert_close(params(acc_model), params(ref_model), atol=1e-9, rtol=0)
            torch.testing.assert_close(params(acc_model), params(manual_model), atol=1e-9, rtol=0)
        if step == 0:
            after_one = params(acc_model)
        if clip_grad > 0:
            # Clipping saw the accumulated (full-batch) gradient, and really clipped it.
            assert acc.last_grad_norm == pytest.approx(ref.last_grad_norm, rel=1e-9)
            assert acc.last_grad_norm > clip_grad
    # Logged loss: the micro-batch losses averaged = the full batch's loss (mean-reduced MSE).
    ref_losses = [v for v, _ in ref_storage.history("total_loss").values()]
    acc_losses = [v for v, _ in acc_storage.history("total_loss").values()]
    assert acc_losses == pytest.approx(ref_losses, rel=1e-9) and len(acc_losses) == 3
    assert ref.data_loader.drawn == 3 and acc.data_loader.drawn == 3 * ACCUM

    # The comparison is sensitive: one step on the first micro-batch alone gives another update.
    torch.manual_seed(0)
    plain_model = ToyRegressor().double()
    plain = Trainer(plain_model, Counting(micro_batches(bigs)), make_optimizer(optim, plain_model), clip_grad=clip_grad)
    run_steps(plain, 1, EventStorage(0))
    diff = max((plain_model.state_dict()[k] - v).abs().max().item() for k, v in after_one.items())
    assert diff > 1e-4


def test_iteration_counts_optimizer_steps_and_consumes_n_micro_batches():
    model = ToyRegressor().double()
    loader = Counting(micro_batches(big_batches(3)))
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    trainer = Trainer(model, loader, opt, grad_accum_steps=ACCUM)

    seen = []

    class RecordIter(HookBase):
        def after_step(self):
            seen.append(self.trainer.iter)

    trainer.register_hooks([RecordIter()])
    trainer.train(0, 3)
    assert trainer.iter == 3 and seen == [0, 1, 2]
    assert loader.drawn == 3 * ACCUM
    assert all(opt.state[p]["step"] == 3 for p in model.parameters())  # three optimizer steps


def test_data_time_is_summed_over_micro_batches():
    def slow_loader():
        for batch in toy_loader(batch_size=MICRO):
            time.sleep(0.02)
            yield batch

    model = ToyRegressor()
    trainer = Trainer(model, slow_loader(), torch.optim.SGD(model.parameters(), lr=0.0), grad_accum_steps=3)
    storage = EventStorage(0)
    run_steps(trainer, 1, storage)
    assert storage.history("data_time").latest() >= 3 * 0.02


@pytest.mark.parametrize("bad", [0, -1, 2.0, "2", True])
def test_grad_accum_steps_must_be_a_positive_int(bad):
    model = ToyRegressor()
    with pytest.raises(ValueError, match="grad_accum_steps must be an integer >= 1"):
        Trainer(model, toy_loader(), torch.optim.SGD(model.parameters(), lr=0.1), grad_accum_steps=bad)


def test_config_key_exists_and_is_strict():
    assert TRAIN_DEFAULTS["grad_accum_steps"] == 1
    tiny = str(REPO / "configs" / "ava" / "tiny.py")
    assert load_config(tiny).train.grad_accum_steps == 1
    assert load_config(tiny, ["train.grad_accum_steps=2"]).train.grad_accum_steps == 2
    with pytest.raises(UnknownConfigKeyError) as err:
        load_config(tiny, ["train.grad_acum_steps=2"])
    assert "train.grad_acum_steps" in str(err.value)


def test_ddp_no_sync_on_all_but_last_micro_batch(tmp_path):
    """A real (one-process, gloo) DDP model: no_sync on N-1 micro-batches, same update as the big batch."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    assert not dist.is_initialized()
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        ref_model = ToyRegressor().double()
        ddp = DistributedDataParallel(copy.deepcopy(ref_model))
        entered = []
        real_no_sync = ddp.no_sync
        ddp.no_sync = lambda: (entered.append(1), real_no_sync())[1]
        bigs = big_batches(2)
        ref = Trainer(ref_model, Counting(bigs), make_optimizer("adamw", ref_model), clip_grad=0.05)
        acc = Trainer(
            ddp, Counting(micro_batches(bigs)), make_optimizer("adamw", ddp), clip_grad=0.05, grad_accum_steps=ACCUM
        )
        run_steps(ref, 2, EventStorage(0))
        run_steps(acc, 2, EventStorage(0))
        assert len(entered) == 2 * (ACCUM - 1)
        torch.testing.assert_close(params(ddp.module), params(ref_model), atol=1e-9, rtol=0)
    finally:
        dist.destroy_process_group()


CONFIG = """
from detectron2.config import LazyCall as L
from omegaconf import OmegaConf
from engine_toy_parts import ToyRegressor, toy_loader
from vmae_det.engine import build_adamw, cosine_with_warmup

model = L(ToyRegressor)()
dataloader = OmegaConf.create()
dataloader.train = L(toy_loader)(batch_size=4)
optimizer = L(build_adamw)(lr=0.05, weight_decay=0.05, betas=(0.9, 0.999), layer_decay=0.5)
lr_multiplier = L(cosine_with_warmup)(warmup_fraction=0.1, min_lr_ratio=0.01)
train = dict(max_iter=6, device="cpu", clip_grad=1.0, log_period=2, checkpointer=dict(period=3), grad_accum_steps=2)
"""


def test_do_train_with_accumulation_counts_optimizer_steps(tmp_path):
    cfg_file = tmp_path / "toy.py"
    cfg_file.write_text(CONFIG)
    out = tmp_path / "out"
    cfg = load_config(str(cfg_file), [f"train.output_dir={out}"])
    args = argparse.Namespace(config_file=str(cfg_file), opts=[], resume=False, eval_only=False)
    trainer = do_train(cfg, args)
    assert trainer.grad_accum_steps == 2 and trainer.iter == 6
    assert (out / "model_0000002.pth").exists() and (out / "model_0000005.pth").exists()
    assert torch.load(out / "model_final.pth", weights_only=True)["iteration"] == 5
    rows = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert [r["iteration"] for r in rows if "total_loss" in r] == [1, 3, 5]
    for group in trainer.optimizer.param_groups:  # the schedule ran over optimizer steps, to its end
        assert group["lr"] == pytest.approx(0.05 * group["lr_scale"] * 0.01, rel=0.1)


def ranked_loader(batch_size: int = 4, merge_ranks: int = 0):
    """Each DDP rank draws its own toy batches (seed = rank); ``merge_ranks=R``: one process drawing what
    R ranks would draw, concatenated into one batch per step."""
    from detectron2.utils import comm

    if not merge_ranks:
        yield from toy_loader(batch_size, seed=comm.get_rank())
    for parts in zip(*(toy_loader(batch_size, seed=r) for r in range(merge_ranks))):
        yield [d for part in parts for d in part]


DDP_CONFIG = CONFIG.replace(
    "dataloader.train = L(toy_loader)(batch_size=4)",
    "from test_grad_accum import ranked_loader\ndataloader.train = L(ranked_loader)(batch_size=4)",
)


def test_two_process_ddp_accumulation_matches_one_process(tmp_path, monkeypatch):
    """--num-gpus 2 (CPU, gloo) with grad_accum_steps=2 (no_sync across real processes, ranks on different
    data) ends with the weights of one process accumulating the same micro-batches of both ranks."""
    from vmae_det.engine import launch_from_args

    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    cfg_file = tmp_path / "toy.py"
    cfg_file.write_text(DDP_CONFIG)
    assert "ranked_loader" in DDP_CONFIG

    def run(num_gpus: int, *opts):
        out = tmp_path / f"out{num_gpus}"
        launch_from_args(
            argparse.Namespace(
                config_file=str(cfg_file),
                resume=False,
                eval_only=False,
                num_gpus=num_gpus,
                num_machines=1,
                machine_rank=0,
                dist_url=f"file://{tmp_path / f'rendezvous{num_gpus}'}",
                opts=[f"train.output_dir={out}", "train.max_iter=4", "train.seed=0", *opts],
            )
        )
        return torch.load(out / "model_final.pth", weights_only=True)

    two = run(2)
    one = run(1, "dataloader.train.merge_ranks=2")
    assert one["iteration"] == two["iteration"] == 3
    torch.testing.assert_close(two["model"], one["model"], atol=1e-5, rtol=0)
