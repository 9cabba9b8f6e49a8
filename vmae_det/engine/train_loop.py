"""The one training engine behind ``tools/pretrain_mae.py`` and ``tools/train_net.py`` (one module: setup, the
train/test loop and the launcher share one flow).

Like detectron2's ``tools/lazyconfig_train_net.py``: a LazyConfig names the model, data loaders, optimizer and
schedule; this module builds them and runs :class:`~vmae_det.engine.trainer.Trainer` with detectron2's hooks and
ours. What depends on the model is declared in the config (``train.hooks``, ``train.eval_only``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from typing import Iterable, Optional

import torch
from detectron2.config import instantiate
from detectron2.engine import HookBase, create_ddp_model, default_setup, default_writers, hooks
from detectron2.evaluation import inference_on_dataset, print_csv_format
from detectron2.solver import LRMultiplier
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger
from omegaconf import ListConfig, OmegaConf
from torch.multiprocessing import ProcessExitedException

from ..checkpoints import build_trained_model, check_state_fits, is_hub_id, load_init_weights, resolve_weights
from ..checkpoints.checkpointer import AtomicCheckpointer
from ..checkpoints.files import check_finite_weights
from ..cli import ERROR_EXIT_CODE, run_main
from ..config import load_config
from ..constants import default_device
from ..formats.output_lock import output_dir_lock
from .arguments import default_argument_parser
from .checks import check_run
from .data_flags import apply_data_flags
from .hooks import GuardedWriters, LossCurveHook, ResumableBestCheckpointer
from .launch import check_launch_args, launch, torchrun_env, uses_env_rendezvous
from .resume import (
    checkpoint_candidates,
    find_resume_checkpoint,
    optimizer_settings,
    prepare_metrics_json,
    unapplied_optimizer_settings,
)
from .trainer import Trainer

__all__ = [
    "default_argument_parser",
    "load_run_config",
    "setup",
    "build_model",
    "build_config_hooks",
    "do_test",
    "do_train",
    "main",
    "launch_from_args",
]

logger = logging.getLogger("vmae_det")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device(default_device())
    return torch.device(device)


def load_run_config(args):
    """The run's config: loaded strictly with the overrides, the datasets of ``--videos`` / ``--ava-root``
    registered, and checked against the machine and the datasets."""
    cfg = load_config(args.config_file, args.opts)
    apply_data_flags(cfg, args)
    check_run(cfg, args)
    return cfg


def setup(args):
    """:func:`load_run_config`, then detectron2's ``default_setup`` and logging; an ``hf://``
    ``train.init_checkpoint`` is resolved (the saved config copy keeps the id)."""
    cfg = load_run_config(args)
    if getattr(args, "output_dir_existed", None) is None:  # for the --resume warning (a mistyped folder)
        args.output_dir_existed = os.path.isdir(cfg.train.output_dir)
    default_setup(cfg, args)
    # default_setup configures the detectron2/fvcore loggers; ours goes to the same console and log.txt. No
    # abbreviation: detectron2's formatter would rename the records every other handler sees.
    setup_logger(cfg.train.output_dir, distributed_rank=comm.get_rank(), name="vmae_det")
    if is_hub_id(cfg.train.init_checkpoint):
        spec = cfg.train.init_checkpoint
        cfg.train.init_checkpoint = resolve_weights(spec)
        logger.info(f"train.init_checkpoint {spec} -> {cfg.train.init_checkpoint}")
    if cfg.train.float32_matmul_precision:
        torch.set_float32_matmul_precision(cfg.train.float32_matmul_precision)
    return cfg


def build_model(cfg) -> torch.nn.Module:
    model = instantiate(cfg.model)
    model.to(resolve_device(cfg.train.device))
    logger.info("Model:\n{}".format(model))
    return model


class _Constant:
    """A checkpointable value: saved as it is, ignored when loaded."""

    def __init__(self, value) -> None:
        self.value = value

    def state_dict(self):
        return self.value

    def load_state_dict(self, _value) -> None:
        pass


def _train_clip_fps(cfg) -> Optional[float]:
    """The frame rate of the training datasets' clips (their metadata's ``fps``), if they all state the same."""
    from detectron2.data import MetadataCatalog

    names = OmegaConf.select(cfg, "dataloader.train.dataset.names", default=None)
    names = [names] if isinstance(names, str) else list(names or [])
    rates = {MetadataCatalog.get(n).get("fps", None) for n in names}
    return float(rates.pop()) if len(rates) == 1 and None not in rates else None


def _train_class_names(cfg) -> Optional[list]:
    """The training datasets' action names as ``[[id, name], ...]`` (what ``weights_only`` loading reads back), if
    they all have the same ones."""
    from detectron2.data import MetadataCatalog

    names = OmegaConf.select(cfg, "dataloader.train.dataset.names", default=None)
    names = [names] if isinstance(names, str) else list(names or [])
    found = set()
    for d in names:
        meta = MetadataCatalog.get(d).get("class_names", None) or {}
        found.add(tuple(sorted((int(i), str(n)) for i, n in meta.items())))
    return [list(p) for p in found.pop()] if len(found) == 1 and () not in found else None


def do_test(cfg, model):
    """Run the configured evaluator, if any; return its results dict."""
    if "evaluator" not in cfg.dataloader:
        return {}
    results = inference_on_dataset(model, instantiate(cfg.dataloader.test), instantiate(cfg.dataloader.evaluator))
    if comm.is_main_process() and results:
        print_csv_format(results)
    return results


def build_config_hooks(cfg) -> list:
    """The hooks the config declares in ``train.hooks``, in their order; a node may build one hook, a list or None."""
    built = []
    for i, node in enumerate(cfg.train.hooks):
        made = instantiate(node)
        for hook in made if isinstance(made, (list, tuple, ListConfig)) else [made]:
            if hook is None:
                continue
            if not isinstance(hook, HookBase):
                target = node.get("_target_")
                name = target if isinstance(target, str) else getattr(target, "__qualname__", repr(target))
                raise ValueError(f"train.hooks.{i} ({name}) built a {type(hook).__name__}, not a detectron2 HookBase")
            built.append(hook)
    return built


def _run_lock(cfg, owner: Optional[bool] = None):
    """The lock of ``train.output_dir``, held by the process that owns the run (re-entrant)."""
    if owner is None:
        owner = comm.is_main_process()
    return output_dir_lock(cfg.train.output_dir) if owner else contextlib.nullcontext()


def do_train(cfg, args, extra_hooks: Iterable = ()):
    """Train ``cfg.model`` on ``cfg.dataloader.train``; resume when ``args.resume`` and a checkpoint exists
    (see :mod:`vmae_det.engine.resume`)."""
    if getattr(args, "output_dir_existed", None) is None:
        args.output_dir_existed = os.path.isdir(cfg.train.output_dir)
    with _run_lock(cfg):
        return _do_train(cfg, args, extra_hooks)


def _do_train(cfg, args, extra_hooks: Iterable = ()):
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
    checkpointer = AtomicCheckpointer(model, cfg.train.output_dir, trainer=trainer)
    fps = _train_clip_fps(cfg)
    if fps is not None:  # the demo samples clips at the rate the model was trained on
        checkpointer.add_checkpointable("clip_fps", _Constant(fps))
    names = _train_class_names(cfg)
    if names is not None:  # every tool names the actions as in training (checkpoints.class_names_of)
        checkpointer.add_checkpointable("class_names", _Constant(names))
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
    hook_list.extend(build_config_hooks(cfg))
    hook_list.extend(extra_hooks)
    if has_eval:
        hook_list.append(hooks.EvalHook(eval_period, lambda: do_test(cfg, model)))
        if cfg.train.best_metric and comm.is_main_process():
            hook_list.append(ResumableBestCheckpointer(eval_period, checkpointer, cfg.train.best_metric, mode="max"))
    if comm.is_main_process():
        hook_list.append(
            hooks.PeriodicWriter(  # a full disk: one error, not one per hook
                # made at the first write, after prepare_metrics_json has replaced metrics.json
                [
                    GuardedWriters(
                        lambda: default_writers(cfg.train.output_dir, cfg.train.max_iter), cfg.train.output_dir
                    )
                ],
                period=cfg.train.log_period,
            )
        )
        hook_list.append(LossCurveHook(cfg.train.output_dir, cfg.train.checkpointer.period))
    trainer.register_hooks(hook_list)

    start_iter = _resume_or_load(cfg, args, model, checkpointer, optimizer, scheduler)
    if comm.is_main_process():
        prepare_metrics_json(cfg.train.output_dir, start_iter)
    trainer.train(start_iter, cfg.train.max_iter)
    return trainer


def _resume_or_load(cfg, args, model, checkpointer, optimizer, scheduler) -> int:
    """Load the last intact checkpoint of ``train.output_dir`` (``--resume``) or ``train.init_checkpoint``;
    return the iteration to start at."""
    out = cfg.train.output_dir
    if args.resume:
        path, saved = find_resume_checkpoint(out)
        if path is not None:
            check_state_fits(
                model,
                saved["model"],
                f"--resume: {path}",
                why="was the model config changed, e.g. model.num_classes?",
                advice="Resume with the config it was trained with, or start a new run in another train.output_dir",
            )
            # A diverged run's NaN/inf weights would train on, then stop on a FloatingPointError: refuse them now.
            check_finite_weights(saved["model"], f"--resume: {path}")
            del saved
            wanted = optimizer_settings(optimizer, scheduler)
            try:
                start_iter = checkpointer.load(path).get("iteration", -1) + 1
            except (ValueError, KeyError) as e:  # e.g. other optimizer parameter groups
                raise ValueError(
                    f"--resume: cannot restore the training state of {path}: {e} (was the optimizer config "
                    "changed, e.g. optimizer.layer_decay? resume with the config it was trained with)"
                ) from e
            unapplied = unapplied_optimizer_settings(wanted, optimizer_settings(optimizer, scheduler))
            if unapplied:
                logger.warning(
                    f"--resume restores the optimizer and LR schedule state of {path}; these config values "
                    f"differ and are NOT applied: {'; '.join(unapplied)}. To train with them, start a new run "
                    "(another train.output_dir) from train.init_checkpoint."
                )
            logger.info(f"Resuming from iteration {start_iter} ({path})")
            if start_iter >= cfg.train.max_iter:
                logger.warning(
                    f"--resume: {path} is at iteration {start_iter - 1} and train.max_iter="
                    f"{cfg.train.max_iter}: nothing left to train (raise train.max_iter to go on)"
                )
            return start_iter
        existed = getattr(args, "output_dir_existed", True)
        why = (
            "the folder did not exist: is train.output_dir mistyped?"
            if not existed
            else "it has no last_checkpoint or model_*.pth"
        )
        init = cfg.train.init_checkpoint or "random initialisation"
        logger.warning(
            f"--resume: no checkpoint in train.output_dir={out} ({why}); starting a NEW run at iteration 0 from {init}"
        )
    else:
        earlier = [p for p in checkpoint_candidates(out) if os.path.isfile(p)]
        if earlier:
            logger.warning(
                f"train.output_dir={out} holds checkpoints of an earlier run ({os.path.basename(earlier[0])}"
                f"{f' and {len(earlier) - 1} more' if len(earlier) > 1 else ''}); this new run "
                "overwrites them. Use --resume to continue that run instead."
            )
    load_init_weights(model, cfg.train.init_checkpoint, full_model=False)
    return 0


def _eval_checkpoint(cfg, args) -> str:
    """The weights ``--eval-only`` evaluates: with ``--resume`` the last intact checkpoint of
    ``train.output_dir``, else ``train.init_checkpoint``; none is an error."""
    out, init = cfg.train.output_dir, cfg.train.init_checkpoint
    if args.resume:
        path, _ = find_resume_checkpoint(out)
        if path is None:
            raise FileNotFoundError(
                f"--eval-only --resume: no checkpoint in train.output_dir={out} to evaluate "
                f"({'the folder does not exist' if not os.path.isdir(out) else 'no last_checkpoint or model_*.pth'})"
            )
        if init and os.path.abspath(init) != os.path.abspath(path):
            logger.warning(
                f"--eval-only --resume: evaluating {path} (the last checkpoint of train.output_dir), "
                f"not train.init_checkpoint={init}"
            )
        return path
    if not init:
        raise ValueError(
            "--eval-only needs weights: set train.init_checkpoint=FILE, or add --resume to evaluate the last "
            f"checkpoint of train.output_dir={out}"
        )
    return init


def main(args):
    cfg = setup(args)
    with _run_lock(cfg):
        if args.eval_only:
            path = _eval_checkpoint(cfg, args)
            model = build_trained_model(cfg, path)  # no DDP wrapper: each process evaluates its shard
            model.to(resolve_device(cfg.train.device))
            logger.info("Model:\n{}".format(model))
            if "evaluator" in cfg.dataloader:
                return do_test(cfg, model)
            if cfg.train.eval_only is not None:  # e.g. pretraining configs: the reconstruction loss
                return instantiate(cfg.train.eval_only)(cfg, model, path)
            raise ValueError(
                f"--eval-only: {args.config_file} has neither dataloader.evaluator nor train.eval_only: "
                "nothing to evaluate"
            )
        do_train(cfg, args)
    return None


class DistributedRunError(ValueError):
    """A worker process ended on an expected error (printed by that process)."""


def _run_worker(main_func, *args) -> None:
    """In a worker process: :func:`vmae_det.cli.run_main` as its error boundary (``error: [rank N] ...``)."""

    def work() -> None:
        main_func(*args)

    code = run_main(work, worker=f"rank {comm.get_rank()}")
    if code:
        sys.exit(code)


def launch_from_args(args, main_func=main):
    """Run ``main_func(args)`` on ``args.num_gpus`` processes per machine (gloo CPU processes without CUDA), or as
    torchrun's process ``RANK`` of ``WORLD_SIZE`` when torchrun started this one.

    The launch arguments and the config are checked and the output-folder lock is taken before any process
    starts. A worker that ends on an expected error makes this raise :class:`DistributedRunError`.
    """
    check_launch_args(args.num_gpus, args.num_machines, args.machine_rank, args.dist_url)
    cfg = load_run_config(args)
    out = cfg.train.output_dir
    if args.eval_only and (
        (not args.resume and not cfg.train.init_checkpoint)
        or (args.resume and not any(os.path.isfile(p) for p in checkpoint_candidates(out)))
    ):
        _eval_checkpoint(cfg, args)  # raises: nothing to evaluate (before the folder is created)
    if getattr(args, "output_dir_existed", None) is None:
        args.output_dir_existed = os.path.isdir(cfg.train.output_dir)
    env = torchrun_env() if uses_env_rendezvous(args.dist_url) else None
    world = env["world_size"] if env else args.num_gpus * args.num_machines
    first = env["rank"] == 0 if env else args.machine_rank == 0
    func = functools.partial(_run_worker, main_func) if world > 1 else main_func
    with _run_lock(cfg, owner=first):
        try:
            return launch(
                func,
                args.num_gpus,
                num_machines=args.num_machines,
                machine_rank=args.machine_rank,
                dist_url=args.dist_url,
                args=(args,),
            )
        except ProcessExitedException as e:
            if e.exit_code != ERROR_EXIT_CODE:
                raise
            raise DistributedRunError(
                f"process {e.error_index} of {args.num_gpus} on this machine stopped on the error above "
                f"(exit code {e.exit_code}); the others were stopped"
            ) from None
