"""The one training engine behind ``tools/pretrain_mae.py`` and ``tools/train_net.py``.

Like detectron2's ``tools/lazyconfig_train_net.py``: a LazyConfig names the model, data loaders,
optimizer and schedule; this module builds them, runs :class:`~vmae_det.engine.trainer.Trainer` with
detectron2's hooks (checkpointing, LR schedule, evaluation, metric writers with ETA) and ours (loss
curve, best checkpoint, MAE reconstruction pictures).
"""
from __future__ import annotations

import logging
import os
from typing import Iterable, Optional

import torch

from .. import compat  # noqa: F401
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import LazyConfig, instantiate
from detectron2.engine import (
    create_ddp_model,
    default_argument_parser,
    default_setup,
    default_writers,
    hooks,
)
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.solver import LRMultiplier
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ..config import load_config
from .hooks import LossCurveHook, SkipCounterHook
from .launch import launch
from .trainer import Trainer

__all__ = [
    "default_argument_parser",
    "setup",
    "build_model",
    "load_init_weights",
    "do_test",
    "do_train",
    "main",
    "launch_from_args",
]

logger = logging.getLogger("vmae_det")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def setup(args):
    """Load the config strictly (unknown keys are errors), apply overrides, set up logging/seed."""
    cfg = load_config(args.config_file, args.opts)
    default_setup(cfg, args)
    # default_setup configures the detectron2/fvcore loggers; ours goes to the same console and log.txt.
    setup_logger(cfg.train.output_dir, distributed_rank=comm.get_rank(), name="vmae_det", abbrev_name="vmae")
    if cfg.train.float32_matmul_precision:
        torch.set_float32_matmul_precision(cfg.train.float32_matmul_precision)
    return cfg


def build_model(cfg) -> torch.nn.Module:
    model = instantiate(cfg.model)
    model.to(resolve_device(cfg.train.device))
    logger.info("Model:\n{}".format(model))
    return model


def _is_checkpoint_of(model: torch.nn.Module, path: str) -> bool:
    """Whether ``path`` is a detectron2 checkpoint of this very model (e.g. our own training output).

    That is: nearly all of the model's keys and nearly only those, each with the model's shape, and
    every key of its action head (``head.*``). A VMAD / MCG-NJU checkpoint (``patch_embed.*``,
    ``blocks.N.*``, ``head.weight``, without our ``backbone.`` prefix) shares no key with the detector
    (``backbone.*``, ``head.fc.*``) and is not one; nor is a checkpoint of this architecture with another
    class count or head. The file is read as ``load_videomae_weights`` reads it (weights only, with
    VMAD's ``args`` Namespace allowed; ``model`` / ``module`` / ``state_dict`` containers; DDP prefix).
    """
    from ..modeling.weight_loading import read_checkpoint

    state, _ = read_checkpoint(path)
    own = model.state_dict()
    common = set(own) & set(state)
    if not own or len(common) < 0.9 * len(own) or len(common) < 0.9 * len(state):
        return False
    if any(tuple(state[k].shape) != tuple(own[k].shape) for k in common):
        return False
    return all(k in state for k in own if k.startswith("head."))


def load_init_weights(model: torch.nn.Module, path: str, *, full_model: bool) -> None:
    """Load ``path`` into ``model``.

    ``full_model`` (evaluation, demo): a checkpoint of this very model, loaded with detectron2's
    checkpointer. Otherwise, and at the start of training, the file is read as VideoMAE weights in any
    supported format (ours, MCG-NJU / VMAD, HF), converted and position-interpolated by
    ``load_videomae_weights`` (strict for the backbone). With ``full_model``, a model with an action
    head must then get every tensor from the file, its head included (a VMAD AVA checkpoint whose head
    fits): otherwise ``ValueError``, since evaluating a random head gives a meaningless mAP. An empty
    ``path`` loads nothing (the model as built, e.g. an untrained baseline).
    """
    if not path:
        return
    if full_model and _is_checkpoint_of(model, path):
        DetectionCheckpointer(model).load(path)
        return
    from ..modeling import load_videomae_weights

    report = load_videomae_weights(model, path)
    if not full_model:
        return
    if hasattr(model, "head") and (not report.head_loaded or report.missing):
        more = len(report.missing) - 10
        shown = ", ".join(report.missing[:10]) + (f", ... (+{more})" if more > 0 else "")
        notes = "".join(f"\n  note: {n}" for n in report.notes)
        raise ValueError(
            f"{path} is not a checkpoint of this {type(model).__name__} and does not cover it: "
            f"action head {'loaded' if report.head_loaded else 'NOT loaded'}; missing ({len(report.missing)}): "
            f"{shown or '-'}. Evaluating would use randomly initialised weights. Use this model's own "
            "training output (model_final.pth) or a VMAD AVA fine-tuned checkpoint whose head has this "
            f"model's class count ({report.source_format} checkpoint read){notes}"
        )
    if not hasattr(model, "head"):
        logger.warning(f"{path} is not a checkpoint of this model: loaded its VideoMAE weights only")


def do_test(cfg, model):
    """Run the configured evaluator, if any; return its results dict."""
    if "evaluator" not in cfg.dataloader:
        return {}
    results = inference_on_dataset(model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator))
    if comm.is_main_process() and results:
        print_csv_format(results)
    return results


def _extra_hooks(cfg, model, train_loader) -> list:
    """Model-specific hooks: MAE models get reconstruction pictures."""
    from ..modeling import VideoMAE

    if not isinstance(model, VideoMAE):
        return []
    from ..data.video_dataset import skipped_videos
    from .mae_visualization import MAEReconstructionHook

    period = cfg.train.vis_period or cfg.train.checkpointer.period
    return [
        MAEReconstructionHook(period, next(iter(train_loader)), cfg.train.output_dir),
        SkipCounterHook("videos", skipped_videos, cfg.train.log_period),
    ]


def do_train(cfg, args, extra_hooks: Iterable = ()):
    """Train ``cfg.model`` on ``cfg.dataloader.train``; resume when ``args.resume`` and a checkpoint exists."""
    device = resolve_device(cfg.train.device)
    model = build_model(cfg)
    cfg.optimizer.model = model
    optimizer = instantiate(cfg.optimizer)
    train_loader = instantiate(cfg.dataloader.train)

    ddp_kwargs = dict(cfg.train.ddp)
    if device.type == "cpu":
        ddp_kwargs["device_ids"] = None  # CPU DDP (gloo): no device placement
    ddp_model = create_ddp_model(model, **ddp_kwargs)
    trainer = Trainer(
        ddp_model,
        train_loader,
        optimizer,
        amp=cfg.train.amp.enabled,
        amp_dtype=cfg.train.amp.dtype,
        clip_grad=cfg.train.clip_grad,
        device_type=device.type,
        grad_accum_steps=cfg.train.grad_accum_steps,
    )
    if "total_batch_size" in cfg.dataloader.train:
        batch = cfg.dataloader.train.total_batch_size
        logger.info(
            f"Effective batch per optimizer step: {batch * trainer.grad_accum_steps} "
            f"(dataloader.train.total_batch_size={batch} x train.grad_accum_steps={trainer.grad_accum_steps})"
        )
    checkpointer = DetectionCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    scheduler = LRMultiplier(optimizer, multiplier=instantiate(cfg.lr_multiplier), max_iter=cfg.train.max_iter)
    eval_period = cfg.train.eval_period or cfg.train.max_iter
    has_eval = "evaluator" in cfg.dataloader

    hook_list = [
        hooks.IterationTimer(),
        hooks.LRScheduler(scheduler=scheduler),
    ]
    if comm.is_main_process():
        hook_list.append(
            hooks.PeriodicCheckpointer(
                checkpointer, cfg.train.checkpointer.period, max_to_keep=cfg.train.checkpointer.max_to_keep
            )
        )
    hook_list.extend(_extra_hooks(cfg, model, train_loader))
    hook_list.extend(extra_hooks)
    if has_eval:
        hook_list.append(hooks.EvalHook(eval_period, lambda: do_test(cfg, model)))
        if cfg.train.best_metric and comm.is_main_process():
            hook_list.append(hooks.BestCheckpointer(eval_period, checkpointer, cfg.train.best_metric, mode="max"))
    if comm.is_main_process():
        hook_list.append(
            hooks.PeriodicWriter(default_writers(cfg.train.output_dir, cfg.train.max_iter), period=cfg.train.log_period)
        )
        hook_list.append(LossCurveHook(cfg.train.output_dir, cfg.train.checkpointer.period))
    trainer.register_hooks(hook_list)

    start_iter = 0
    if args.resume and checkpointer.has_checkpoint():
        # Restores model, optimizer, scheduler and the iteration counter.
        start_iter = checkpointer.resume_or_load(cfg.train.init_checkpoint, resume=True).get("iteration", -1) + 1
        logger.info(f"Resuming from iteration {start_iter}")
    else:
        load_init_weights(model, cfg.train.init_checkpoint, full_model=False)
    trainer.train(start_iter, cfg.train.max_iter)
    return trainer


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = build_model(cfg)  # inference needs no DDP wrapper: each process evaluates its shard
        load_init_weights(model, cfg.train.init_checkpoint, full_model=True)
        return do_test(cfg, model)
    do_train(cfg, args)
    return None


def launch_from_args(args, main_func=main):
    """Run ``main_func(args)`` on ``args.num_gpus`` processes (GPUs; CPU processes with gloo without CUDA)."""
    return launch(
        main_func,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
