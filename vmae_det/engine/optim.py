"""Optimiser and learning-rate schedule shared by pretraining and fine-tuning (VideoMAE recipes)."""

from __future__ import annotations

import logging
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from fvcore.common.param_scheduler import (
    CompositeParamScheduler,
    CosineParamScheduler,
    LinearParamScheduler,
)
from torch import nn

__all__ = ["get_param_groups", "build_adamw", "cosine_with_warmup", "scaled_lr"]

logger = logging.getLogger(__name__)

# Never weight-decayed (VideoMAE/MAE convention), besides every 1-d parameter.
NO_DECAY_SUFFIXES = ("pos_embed", "cls_token", "mask_token", "q_bias", "v_bias")


def scaled_lr(base_lr: float, batch_size: int, reference_batch: int = 256) -> float:
    """The linear scaling rule of the VideoMAE recipes: lr = base_lr × batch / 256."""
    return base_lr * batch_size / reference_batch


def _find_layer_id_fn(model: nn.Module) -> Tuple[Optional[Callable[[str], int]], int, str]:
    """Find the ViT inside ``model`` and return (layer-id function, num layers, name prefix)."""
    for prefix, module in model.named_modules():
        if hasattr(module, "get_layer_id") and hasattr(module, "num_layers"):
            return module.get_layer_id, module.num_layers, (prefix + "." if prefix else "")
    return None, 0, ""


def get_param_groups(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    layer_decay: Optional[float] = None,
    extra_no_decay: Sequence[str] = (),
) -> List[Dict]:
    """Parameter groups without weight decay for norms, biases and tokens and, with ``layer_decay``, BEiT/VideoMAE's
    layer-wise lr decay ``lr * layer_decay ** (L + 1 - i)``; parameters outside the ViT count as the last layer."""
    layer_id_fn, num_layers, prefix = _find_layer_id_fn(model)
    if layer_decay is not None and layer_id_fn is None:
        raise ValueError("layer_decay was given but the model has no ViT with get_layer_id()/num_layers")
    no_decay_names = set(extra_no_decay)
    for mod_prefix, module in model.named_modules():
        if hasattr(module, "no_weight_decay"):
            no_decay_names |= {(mod_prefix + "." if mod_prefix else "") + n for n in module.no_weight_decay()}

    groups: Dict[Tuple[int, bool], Dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = param.ndim <= 1 or name in no_decay_names or name.endswith(NO_DECAY_SUFFIXES)
        if layer_decay is not None:
            if name.startswith(prefix):
                layer = layer_id_fn(name[len(prefix) :])
            else:
                layer = num_layers + 1
            scale = layer_decay ** (num_layers + 1 - layer)
        else:
            layer, scale = 0, 1.0
        key = (layer, no_decay)
        if key not in groups:
            groups[key] = {
                "params": [],
                "weight_decay": 0.0 if no_decay else weight_decay,
                "lr": lr * scale,
                "lr_scale": scale,
            }
        groups[key]["params"].append(param)
    return [groups[k] for k in sorted(groups)]


def build_adamw(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float = 0.05,
    betas: Sequence[float] = (0.9, 0.999),
    eps: float = 1e-8,
    layer_decay: Optional[float] = None,
) -> torch.optim.AdamW:
    """AdamW over :func:`get_param_groups`. ``lr`` is the peak lr of the last layer."""
    groups = get_param_groups(model, lr=lr, weight_decay=weight_decay, layer_decay=layer_decay)
    n_params = sum(p.numel() for g in groups for p in g["params"])
    logger.info(f"AdamW: {len(groups)} parameter groups, {n_params / 1e6:.2f}M trainable parameters, lr {lr:.3g}")
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)


def cosine_with_warmup(*, warmup_fraction: float, min_lr_ratio: float = 0.0, warmup_factor: float = 0.0):
    """The VideoMAE recipes' lr multiplier: linear warmup from ``warmup_factor``, then a cosine over the remaining
    iterations down to ``min_lr_ratio`` (detectron2's ``WarmupParamScheduler`` would span the whole schedule)."""
    cosine = CosineParamScheduler(1.0, min_lr_ratio)
    if warmup_fraction <= 0:
        return cosine
    if not 0 < warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    return CompositeParamScheduler(
        [LinearParamScheduler(warmup_factor, 1.0), cosine],
        lengths=[warmup_fraction, 1.0 - warmup_fraction],
        interval_scaling=["rescaled", "rescaled"],
    )
