"""``--eval-only`` for MAE pretraining: the reconstruction loss of a checkpoint on a few batches.

Pretraining has no labelled validation set, so a checkpoint is measured by its training objective on batches of
``dataloader.train``, with masks seeded by ``train.seed``; written to ``<output_dir>/inference/mae_eval.json``.
"""

from __future__ import annotations

import json
import logging
import os
from itertools import islice

import torch
from detectron2.config import instantiate
from detectron2.utils import comm

from ..formats.atomic import atomic_write_text

__all__ = ["MAE_EVAL_BATCHES", "evaluate_mae", "MAELossEvaluation"]

logger = logging.getLogger("vmae_det")

MAE_EVAL_BATCHES = 10


def evaluate_mae(cfg, model, checkpoint: str, num_batches: int = MAE_EVAL_BATCHES) -> dict:
    """Mean per-clip ``loss_mae`` of ``model`` (weights of ``checkpoint``) over ``num_batches`` batches."""
    seed = cfg.train.seed if cfg.train.seed >= 0 else 0
    model.set_mask_seed(seed + comm.get_rank())
    loader = instantiate(cfg.dataloader.train)
    was_training = model.training
    model.eval()
    total, clips = 0.0, 0
    try:
        with torch.no_grad():
            for batch in islice(iter(loader), num_batches):
                for out in model(batch):
                    total += float(out["loss_mae"])
                    clips += 1
    finally:
        model.train(was_training)
    parts = comm.all_gather((total, clips))
    total, clips = sum(p[0] for p in parts), sum(p[1] for p in parts)
    if clips == 0:
        raise ValueError("--eval-only: dataloader.train gave no clips to evaluate the reconstruction loss on")
    result = {"mae/loss_mae": total / clips, "mae/clips": clips}
    if comm.is_main_process():
        names = cfg.dataloader.train.get("dataset", {}).get("names", "dataloader.train")
        print(
            f"MAE reconstruction loss (loss_mae) of {checkpoint}: {result['mae/loss_mae']:.6f} "
            f"(mean over {clips} clips, {num_batches} batches per process of {names}, mask seed {seed})",
            flush=True,
        )
        out_dir = os.path.join(cfg.train.output_dir, "inference")
        record = {**result, "checkpoint": checkpoint, "batches_per_process": num_batches, "seed": seed}
        atomic_write_text(os.path.join(out_dir, "mae_eval.json"), json.dumps(record, indent=2))
    return result


class MAELossEvaluation:
    """``train.eval_only`` of the pretraining configs: :func:`evaluate_mae` on ``num_batches`` per process."""

    def __init__(self, num_batches: int = MAE_EVAL_BATCHES):
        if isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1:
            raise ValueError(f"MAELossEvaluation(num_batches={num_batches!r}): expected an integer >= 1")
        self.num_batches = num_batches

    def __call__(self, cfg, model, checkpoint: str) -> dict:
        return evaluate_mae(cfg, model, checkpoint, self.num_batches)
