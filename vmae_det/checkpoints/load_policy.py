"""Which checkpoints a model accepts, and how: the weights a training run starts from, and the trained model
that evaluation, the demo, the ONNX export and feature extraction use (:func:`build_trained_model`)."""

from __future__ import annotations

import logging
from typing import Mapping, Optional

from detectron2.config import instantiate
from torch import nn

from .files import CheckpointError, class_names_of, clip_fps_of, read_checkpoint
from .fit import StateMismatch, check_state_fits, compare_state
from .layouts import has_video_backbone
from .videomae_weights import load_videomae_state

__all__ = ["build_trained_model", "is_checkpoint_of", "load_init_weights"]

logger = logging.getLogger("vmae_det")


def is_checkpoint_of(model: nn.Module, state: Mapping) -> bool:
    """Whether ``state`` is this project's checkpoint of ``model``'s architecture: nearly all of its keys and
    nearly only those, with its shapes, and every key of its action head."""
    own = model.state_dict()
    found = compare_state(own, state)
    common = len(own) - len(found.missing)
    if not own or common < 0.9 * len(own) or common < 0.9 * len(state) or found.shapes:
        return False
    return not any(k.startswith("head.") for k in found.missing)


def load_init_weights(model: nn.Module, path: Optional[str], *, full_model: bool) -> Optional[float]:
    """Load the local file ``path`` into ``model``; return the clip rate it was trained on, or ``None``.

    Args:
        full_model: ``False`` at the start of training: VideoMAE weights in any layout; an empty ``path`` trains
            from scratch. ``True`` for a trained model: the weights must cover every tensor, the action head
            included (random weights give meaningless scores); sets ``model.weights_source``,
            ``weights_class_names`` and ``weights_clip_fps``.
    """
    if not path:
        if full_model:
            raise CheckpointError(
                "no weights to evaluate: train.init_checkpoint is empty (the --eval-only / demo / export model "
                "would keep its random initialisation and give meaningless scores). Pass "
                "train.init_checkpoint=PATH: this model's training output (model_final.pth) or a VMAD AVA "
                "fine-tuned checkpoint whose head has this model's class count"
            )
        return None
    state, extras = read_checkpoint(path)
    if not full_model:
        return load_videomae_state(model, state, extras).clip_fps
    # Our own checkpoint of this model; without a VideoViT inside, nothing else can fit it.
    if is_checkpoint_of(model, state) or not has_video_backbone(model):
        check_state_fits(model, state, str(path))
        model.load_state_dict(state, strict=True)
        logger.info(f"Loaded all {len(state)} tensors of {type(model).__name__} from {path}")
        clip_fps = clip_fps_of(extras)
    else:
        report = load_videomae_state(model, state, extras)
        if report.missing:
            notes = "".join(f"\n  note: {n}" for n in report.notes)
            why = "not its own checkpoint, and its converted weights leave tensors out"
            raise CheckpointError(
                StateMismatch(missing=report.missing).message(f"{path} ({report.source_format})", model, why)
                + ". Use this model's own training output (model_final.pth) or a VMAD AVA fine-tuned checkpoint "
                f"whose head has this model's class count{notes}"
            )
        clip_fps = report.clip_fps
    model.weights_source = str(path)
    model.weights_class_names = class_names_of(extras)
    model.weights_clip_fps = clip_fps
    return clip_fps


def build_trained_model(cfg, checkpoint: str) -> nn.Module:
    """The model of ``cfg.model`` on the CPU with the trained weights of the local file ``checkpoint``."""
    model = instantiate(cfg.model)
    load_init_weights(model, checkpoint, full_model=True)
    return model
