"""Load VideoMAE weights of any layout (:mod:`~vmae_det.checkpoints.layouts`) into a VideoViT, a VideoMAE or a
detector with a VideoViT backbone.

Follows VMAD's ``run_class_finetuning.py`` where it decides, and is strict elsewhere: the official head is loaded
only when its shape fits ``model.head.fc``; a mean-pooling fine-tune leaves ``norm`` at its initialisation
(``fc_norm`` is never copied into it); any other missing or unexpected backbone tensor is an error.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Tuple, Union

from torch import nn

from ..modeling.vit import VideoViT, get_sinusoid_table, resize_pos_embed
from .files import CheckpointError, StateDict, clip_fps_of, read_checkpoint, some_names
from .fit import StateMismatch
from .hub import is_hub_id, resolve_weights
from .layouts import CanonicalWeights, action_classifier, detect_format, find_backbone, to_canonical

__all__ = ["LoadReport", "load_videomae_state", "load_videomae_weights"]

logger = logging.getLogger(__name__)


@dataclass
class LoadReport:
    """What :func:`load_videomae_weights` did; ``str()`` gives a readable summary."""

    source_format: str
    loaded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    head_loaded: bool = False  # the model's action classifier (``head.fc``) came from the checkpoint
    clip_fps: Optional[float] = None  # frame rate of the clips the checkpoint was trained on (:func:`clip_fps_of`)

    def __str__(self) -> str:
        head = "; action head loaded" if self.head_loaded else ""
        lines = [f"VideoMAE weights ({self.source_format}): loaded {len(self.loaded)} tensors{head}"]
        for name, keys in (("missing", self.missing), ("unexpected", self.unexpected), ("ignored", self.ignored)):
            if keys:
                lines.append(f"  {name} ({len(keys)}): {some_names(keys, 12)}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _infer_grid(n: int, like: Tuple[int, int, int]) -> Tuple[int, int, int]:
    """Token grid of a source position table with ``n`` entries: ``like``'s spatial grid, else ``like``'s frames
    with a square grid, else 16 frames / tubelet 2 with a square grid."""
    t, h, w = like
    if n % (h * w) == 0:
        return n // (h * w), h, w
    for tt in (t, 8):
        s = math.isqrt(n // tt) if n % tt == 0 else 0
        if s and tt * s * s == n:
            return tt, s, s
    raise ValueError(f"cannot infer the token grid of a {n}-entry position table (model grid {like})")


def _prepare_pos_embed(backbone: VideoViT, cw: CanonicalWeights, report: LoadReport) -> None:
    src = cw.backbone.get("pos_embed")
    if not backbone.learnable_pos_embed:
        if src is not None:
            cw.backbone.pop("pos_embed")
            report.ignored.append("pos_embed")
            report.notes.append("checkpoint has a learned pos_embed but the model uses the fixed sinusoidal table")
        return
    dst_shape = tuple(backbone.pos_embed.shape)
    if src is None:
        # Pretrained with the fixed table: start the learnable one from it rather than from noise.
        cw.backbone["pos_embed"] = get_sinusoid_table(dst_shape[1], dst_shape[2])[None]
        report.notes.append("pos_embed initialised from the sinusoidal table (checkpoint has none)")
        return
    src = src.reshape(1, -1, src.shape[-1])
    if tuple(src.shape) != dst_shape:
        src_grid = _infer_grid(src.shape[1], backbone.grid_size)
        cw.backbone["pos_embed"] = resize_pos_embed(src, src_grid, backbone.grid_size)
        report.notes.append(f"pos_embed interpolated from grid {src_grid} to {backbone.grid_size}")
    else:
        cw.backbone["pos_embed"] = src


def _reconcile_fc_norm(backbone: VideoViT, cw: CanonicalWeights, report: LoadReport) -> set:
    """``fc_norm`` / ``norm`` of mean-pooling checkpoints and models, as VMAD handles them.

    Returns the backbone keys whose absence from the checkpoint is expected.
    """
    optional: set = set()
    has_fc_norm = any(k.startswith("fc_norm.") for k in cw.backbone)
    has_norm = any(k.startswith("norm.") for k in cw.backbone)
    if has_fc_norm and not has_norm:
        optional |= {k for k in backbone.state_dict() if k.startswith("norm.")}
        report.notes.append(
            "mean-pooling fine-tuned checkpoint (fc_norm, no norm): norm is not in it and keeps "
            "its initialisation (LayerNorm weight 1, bias 0), as in VMAD"
        )
    if has_fc_norm and backbone.fc_norm is None:
        dropped = sorted(k for k in cw.backbone if k.startswith("fc_norm."))
        report.ignored += dropped
        cw.backbone = {k: v for k, v in cw.backbone.items() if not k.startswith("fc_norm.")}
        report.notes.append(
            "fc_norm.* ignored: this backbone has no fc_norm (it feeds token features to the "
            "detector head, not a pooled classifier)"
        )
    if not has_fc_norm and backbone.fc_norm is not None:
        optional |= {k for k in backbone.state_dict() if k.startswith("fc_norm.")}
        report.notes.append("checkpoint has no fc_norm: the model's fc_norm keeps its initialisation")
    return optional


def _prepare_head(model: nn.Module, cw: CanonicalWeights, report: LoadReport) -> StateDict:
    """Map the official ``head.weight`` / ``head.bias`` onto the model's action classifier when the shapes fit
    (as VMAD's fine-tuning does); otherwise it is dropped."""
    if not cw.head:
        return {}
    keys = sorted(cw.head)
    desc = ", ".join(f"{k} {tuple(v.shape)}" for k, v in sorted(cw.head.items()))
    found = action_classifier(model)
    if found is None:  # a VideoViT / VideoMAE: no action classifier
        report.ignored += keys
        return {}
    name, fc, mlp = found
    if mlp:
        report.ignored += keys
        report.notes.append(
            f"checkpoint classification head ({desc}) not loaded: this model's action head is an "
            f"MLP, so {name} does not take backbone features as the checkpoint's linear head does"
        )
        return {}
    want = {"head.weight": fc.weight}
    if fc.bias is not None:
        want["head.bias"] = fc.bias
    if set(cw.head) == set(want) and all(cw.head[k].shape == want[k].shape for k in want):
        report.head_loaded = True
        report.notes.append(
            f"action head {name} loaded from the checkpoint's {'/'.join(keys)} ({fc.out_features} classes)"
        )
        return {f"{name}.{k.split('.', 1)[1]}": v for k, v in cw.head.items()}
    report.ignored += keys
    report.notes.append(
        f"checkpoint classification head ({desc}) does not fit {name} {tuple(fc.weight.shape)}: "
        "dropped, as VMAD does; the action head keeps its initialisation"
    )
    return {}


def load_videomae_weights(
    model: nn.Module,
    path_or_state_dict: Union[str, os.PathLike, Mapping],
    format: str = "auto",
    *,
    allow_partial: bool = False,
) -> LoadReport:
    """Load VideoMAE weights of any supported layout into ``model`` and return (and log) a report.

    Args:
        model: a :class:`VideoViT`, a VideoMAE (encoder and, if present, decoder), or any model with a
            VideoViT ``.backbone`` (a detector: the checkpoint's official head goes into its ``head.fc`` when
            the shapes fit).
        path_or_state_dict: a file, an HF folder, a Hub id ``hf://ORG/NAME[@REVISION][/FILE]`` or a state dict.
        format: one of :data:`~vmae_det.checkpoints.layouts.FORMATS`, or ``"auto"`` (from the keys).
        allow_partial: a missing or unexpected backbone tensor is a warning, not an error.

    Shape mismatches, and a checkpoint of which no backbone tensor fits, raise :class:`CheckpointError`.
    """
    if is_hub_id(path_or_state_dict):
        path_or_state_dict = resolve_weights(path_or_state_dict)
    state, extras = read_checkpoint(path_or_state_dict)
    return load_videomae_state(model, state, extras, format, allow_partial=allow_partial)


def load_videomae_state(
    model: nn.Module, sd: StateDict, extras: Mapping, format: str = "auto", *, allow_partial: bool = False
) -> LoadReport:
    """:func:`load_videomae_weights` of a checkpoint already read (:func:`read_checkpoint`)."""
    backbone, prefix = find_backbone(model)
    src = extras.get("__source__", "<state dict>")
    fmt = detect_format(sd, extras) if format == "auto" else format
    report = LoadReport(source_format=fmt, clip_fps=clip_fps_of(extras))
    try:
        cw = to_canonical(sd, fmt)
        report.ignored, report.notes = list(cw.ignored), list(cw.notes)
        _prepare_pos_embed(backbone, cw, report)
    except (ValueError, RuntimeError) as e:
        raise CheckpointError(f"{src} ({fmt}): {e}") from e
    optional = {prefix + k for k in _reconcile_fc_norm(backbone, cw, report)}

    incoming = {prefix + k: v for k, v in cw.backbone.items()}
    if prefix == "encoder.":
        incoming.update(cw.mae)
    else:
        report.ignored += sorted(cw.mae)  # a backbone has no decoder
    incoming.update(_prepare_head(model, cw, report))

    own = model.state_dict()
    backbone_keys = {prefix + k for k in backbone.state_dict()}
    required = set(backbone_keys)
    if prefix == "encoder.":
        if cw.mae:
            required |= {k for k in own if not k.startswith("encoder.")}
        else:
            report.notes.append("checkpoint has no MAE decoder: only the encoder was loaded")
    to_load = {k: v for k, v in incoming.items() if k in own}
    found = StateMismatch(
        missing=sorted(k for k in required if k not in to_load and k not in optional),
        unexpected=sorted(k for k in incoming if k not in own),
        shapes=[
            f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
            for k, v in to_load.items()
            if v.shape != own[k].shape
        ],
    )
    why = "another size, depth, patch/tubelet, layer scale or q/v bias?"
    if found.shapes:
        raise CheckpointError(found.message(f"{src} ({fmt})", model, why))
    if not any(k in backbone_keys and k != prefix + "pos_embed" for k in to_load):
        raise CheckpointError(
            f"{src} ({fmt}): no tensor of the checkpoint fits the backbone of {type(model).__name__} (wrong format, "
            f"or not a VideoMAE checkpoint); checkpoint keys: {some_names(sorted(sd))}"
        )
    if found:
        msg = found.message(f"{src} ({fmt})", model, why)
        if not allow_partial:
            raise CheckpointError(msg + ". Pass allow_partial=True to load the tensors that fit anyway.")
        logger.warning("%s. allow_partial=True: loading the tensors that fit.", msg)
        report.notes.append(f"allow_partial: {len(found.missing)} missing, {len(found.unexpected)} unexpected")
    model.load_state_dict(to_load, strict=False)
    report.loaded = sorted(to_load)
    report.unexpected = found.unexpected
    report.missing = sorted(k for k in own if k not in to_load)
    logger.info("%s from %s\n%s", type(model).__name__, src, report)
    return report
