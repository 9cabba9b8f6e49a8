"""Load VideoMAE weights from any of the known checkpoint layouts.

Formats (detected from the keys, or forced):

* ``"vmae_det"``: this project's files (``{"model": ..., "iteration"/"format"}``) holding a VideoViT, a
  VideoMAE (``encoder.*``) or a detector (``backbone.*``);
* ``"mcg-pretrain"``: official MCG-NJU pretraining (``encoder.*``, ``decoder.blocks.N``, ``decoder.norm``,
  ``decoder.head``, ``encoder_to_decoder.weight``, ``mask_token``; ``args`` holds an ``argparse.Namespace``);
* ``"mcg-finetune"``: official fine-tuned (``patch_embed.*``, ``blocks.N.*``, ``fc_norm``/``norm``, ``head.*``);
* ``"hf"``: HF transformers ``VideoMAEModel/ForPreTraining/ForVideoClassification``
  (``videomae.embeddings.patch_embeddings.projection``, ``videomae.encoder.layer.N`` with separate
  ``query/key/value`` weights, ``decoder.decoder_layers.N``, ``fc_norm``, ``classifier``).

Every format is first converted to a canonical pair of state dicts in this project's names: the backbone
(:class:`VideoViT` names, identical to the official fine-tune names) and the MAE extras (``decoder.*``,
``encoder_to_decoder.weight``, ``mask_token``, identical to the official pretraining names).
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from .vit import VideoViT, get_sinusoid_table, resize_pos_embed

__all__ = [
    "FORMATS",
    "CanonicalWeights",
    "LoadReport",
    "detect_format",
    "export_state_dict",
    "load_videomae_weights",
    "read_checkpoint",
    "to_canonical",
]

logger = logging.getLogger(__name__)

FORMATS = ("vmae_det", "mcg-pretrain", "mcg-finetune", "hf")
StateDict = Dict[str, torch.Tensor]

# Per-block names: ours (== official) -> HF. q/k/v weights are handled separately (one fused ``qkv``).
_HF_BLOCK = {
    "norm1": "layernorm_before",
    "norm2": "layernorm_after",
    "attn.q_bias": "attention.attention.q_bias",
    "attn.v_bias": "attention.attention.v_bias",
    "attn.proj": "attention.output.dense",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}
_HF_QKV = ("query", "key", "value")
_MAE_TOP = ("encoder_to_decoder.weight", "mask_token")


@dataclass
class CanonicalWeights:
    """Weights in this project's names: ``backbone`` (VideoViT) and ``mae`` (decoder side of VideoMAE)."""

    backbone: StateDict
    mae: StateDict
    source_format: str
    ignored: List[str] = field(default_factory=list)  # source keys deliberately not used (classifier...)


@dataclass
class LoadReport:
    """What :func:`load_videomae_weights` did; ``str()`` gives a readable summary."""

    source_format: str
    loaded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"VideoMAE weights ({self.source_format}): loaded {len(self.loaded)} tensors"]
        for name, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                           ("ignored", self.ignored)):
            if keys:
                shown = ", ".join(keys[:12]) + (f", ... (+{len(keys) - 12})" if len(keys) > 12 else "")
                lines.append(f"  {name} ({len(keys)}): {shown}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------- reading
def read_checkpoint(path_or_state_dict: Union[str, os.PathLike, Mapping]) -> Tuple[StateDict, dict]:
    """Load a file (``weights_only=True``) or take a dict -> (flat state dict, container extras).

    The state dict is taken from ``"model"``, ``"module"`` or ``"state_dict"`` if present, and a DDP
    ``module.`` prefix is removed. Official pretraining files keep an ``argparse.Namespace`` under
    ``"args"``; that class (only) is allow-listed for unpickling.
    """
    if isinstance(path_or_state_dict, Mapping):
        ckpt, where = dict(path_or_state_dict), "<state dict>"
    else:
        where = os.fspath(path_or_state_dict)
        if os.path.isdir(where):  # an HF model folder (save_pretrained / hub snapshot)
            for name in ("model.safetensors", "pytorch_model.bin"):
                if os.path.isfile(os.path.join(where, name)):
                    where = os.path.join(where, name)
                    break
            else:
                raise FileNotFoundError(f"{where}: folder has neither model.safetensors nor pytorch_model.bin")
        if where.endswith(".safetensors"):
            from safetensors.torch import load_file

            ckpt = load_file(where)
        else:
            try:
                with torch.serialization.safe_globals([argparse.Namespace]):
                    ckpt = torch.load(where, map_location="cpu", weights_only=True)
            except Exception as e:
                raise RuntimeError(f"{where}: cannot load as a weights-only torch checkpoint: {e}") from e
    if not isinstance(ckpt, Mapping):
        raise ValueError(f"{where}: expected a dict checkpoint, got {type(ckpt).__name__}")
    extras = {k: v for k, v in ckpt.items() if not isinstance(v, (torch.Tensor, Mapping))}
    sd = ckpt
    for key in ("model", "module", "state_dict"):
        if isinstance(ckpt.get(key), Mapping):
            sd = ckpt[key]
            break
    tensors = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ValueError(f"{where}: no tensors found (top-level keys: {sorted(ckpt)[:10]})")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    extras["__source__"] = where
    return tensors, extras


def detect_format(state_dict: Mapping[str, torch.Tensor], extras: Optional[dict] = None) -> str:
    """Guess the layout of a flat state dict (see module docstring for the names)."""
    extras = extras or {}
    keys = set(state_dict)
    if any(k.startswith(("videomae.", "embeddings.patch_embeddings.")) or ".decoder_layers." in k
           or k.startswith("encoder.layer.") for k in keys):
        return "hf"
    if extras.get("format") == "vmae_det" or "iteration" in extras or "backbone.patch_embed.proj.weight" in keys:
        return "vmae_det"
    if "encoder.patch_embed.proj.weight" in keys:
        return "mcg-pretrain"
    if "patch_embed.proj.weight" in keys:
        return "mcg-finetune"
    raise ValueError(
        f"{extras.get('__source__', '<state dict>')}: unrecognised VideoMAE checkpoint layout; "
        f"sample keys: {sorted(keys)[:8]}"
    )


# ---------------------------------------------------------------------------------------- conversion
def _split(sd: StateDict, prefix: str) -> StateDict:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def _from_hf(sd: StateDict) -> CanonicalWeights:
    sd = dict(sd)
    backbone: StateDict = {}
    mae: StateDict = {}
    ignored: List[str] = []
    # VideoMAEModel files have no "videomae." prefix; the task models have it.
    enc = "videomae." if any(k.startswith("videomae.") for k in sd) else ""

    def take_blocks(src_prefix: str, dst: StateDict, dst_prefix: str) -> None:
        pat = re.compile(re.escape(src_prefix) + r"(\d+)\.(.+)")
        qkv: Dict[int, Dict[str, torch.Tensor]] = {}
        for k in [k for k in sd if pat.match(k)]:
            i_str, rest = pat.match(k).groups()  # type: ignore[union-attr]
            i, v = int(i_str), sd.pop(k)
            m = re.fullmatch(r"attention\.attention\.(query|key|value)\.weight", rest)
            if m:
                qkv.setdefault(i, {})[m.group(1)] = v
                continue
            for ours, theirs in _HF_BLOCK.items():
                if rest == theirs or rest.startswith(theirs + "."):
                    dst[f"{dst_prefix}{i}.{ours}{rest[len(theirs):]}"] = v
                    break
            else:
                dst[f"{dst_prefix}{i}.{rest}"] = v  # unknown: surfaces as unexpected when loading
        for i, parts in qkv.items():
            if set(parts) != set(_HF_QKV):
                raise ValueError(f"HF checkpoint: layer {i} has only {sorted(parts)} of query/key/value")
            dst[f"{dst_prefix}{i}.attn.qkv.weight"] = torch.cat([parts[n] for n in _HF_QKV], dim=0)

    take_blocks(f"{enc}encoder.layer.", backbone, "blocks.")
    take_blocks("decoder.decoder_layers.", mae, "decoder.blocks.")
    for k in list(sd):
        v = sd.pop(k)
        if k.startswith(f"{enc}embeddings.patch_embeddings.projection."):
            backbone["patch_embed.proj." + k.rsplit(".", 1)[1]] = v
        elif k.startswith(f"{enc}embeddings.position_embeddings"):
            backbone["pos_embed"] = v
        elif k.startswith(f"{enc}layernorm."):
            backbone["norm." + k.rsplit(".", 1)[1]] = v
        elif k.startswith("fc_norm."):
            backbone[k] = v
        elif k.startswith(("decoder.norm.", "decoder.head.")) or k in _MAE_TOP:
            mae[k] = v
        elif k.startswith("classifier."):
            ignored.append(k)
        else:
            backbone[k] = v
    return CanonicalWeights(backbone, mae, "hf", ignored)


def to_canonical(state_dict: Mapping[str, torch.Tensor], fmt: str) -> CanonicalWeights:
    """Convert a flat state dict of layout ``fmt`` into this project's names."""
    sd = dict(state_dict)
    if fmt == "hf":
        cw = _from_hf(sd)
    elif fmt in ("mcg-pretrain", "mcg-finetune", "vmae_det"):
        mae = {k: v for k, v in sd.items() if k.startswith("decoder.") or k in _MAE_TOP}
        rest = {k: v for k, v in sd.items() if k not in mae}
        ignored: List[str] = []
        if any(k.startswith("encoder.") for k in rest):
            backbone = _split(rest, "encoder.")
            ignored = [k for k in rest if not k.startswith("encoder.")]
        elif any(k.startswith("backbone.") for k in rest):
            backbone = _split(rest, "backbone.")  # a detector: keep only its backbone
            ignored = [k for k in rest if not k.startswith("backbone.")]
        else:
            backbone = rest
        # The official classification head (fine-tune "head.*", pretrain encoder "head.*") is not ours.
        ignored += [k for k in backbone if k.startswith("head.")]
        backbone = {k: v for k, v in backbone.items() if not k.startswith("head.")}
        cw = CanonicalWeights(backbone, mae, fmt, ignored)
    else:
        raise ValueError(f"unknown checkpoint format {fmt!r}; choose from {FORMATS}")
    if fmt == "mcg-pretrain" and not cw.mae:
        logger.warning("mcg-pretrain checkpoint without decoder weights")
    return cw


def _to_hf(cw: CanonicalWeights) -> StateDict:
    out: StateDict = {}

    def put_blocks(src: StateDict, src_prefix: str, dst_prefix: str) -> None:
        pat = re.compile(re.escape(src_prefix) + r"(\d+)\.(.+)")
        for k, v in src.items():
            m = pat.match(k)
            if not m:
                continue
            i, rest = m.groups()
            if rest == "attn.qkv.weight":
                for name, part in zip(_HF_QKV, v.chunk(3, dim=0)):
                    out[f"{dst_prefix}{i}.attention.attention.{name}.weight"] = part.clone()
                continue
            for ours, theirs in _HF_BLOCK.items():
                if rest == ours or rest.startswith(ours + "."):
                    out[f"{dst_prefix}{i}.{theirs}{rest[len(ours):]}"] = v
                    break
            else:
                raise ValueError(f"{k} has no HF VideoMAE equivalent (HF has no layer scale)")

    put_blocks(cw.backbone, "blocks.", "videomae.encoder.layer.")
    put_blocks(cw.mae, "decoder.blocks.", "decoder.decoder_layers.")
    for k, v in cw.backbone.items():
        if k.startswith("patch_embed.proj."):
            out["videomae.embeddings.patch_embeddings.projection." + k.rsplit(".", 1)[1]] = v
        elif k.startswith("norm."):
            out["videomae.layernorm." + k.rsplit(".", 1)[1]] = v
        elif k.startswith("fc_norm."):
            out[k] = v
        elif k == "pos_embed":
            out["videomae.embeddings.position_embeddings"] = v
    out.update({k: v for k, v in cw.mae.items() if not k.startswith("decoder.blocks.")})
    return out


def export_state_dict(weights: Union[CanonicalWeights, nn.Module], fmt: str) -> StateDict:
    """Write weights (a model or :class:`CanonicalWeights`) in layout ``fmt``.

    ``vmae_det`` / ``mcg-pretrain`` give ``encoder.*`` + decoder keys when there are MAE weights, plain
    backbone keys otherwise; ``mcg-finetune`` gives the backbone only; ``hf`` the HF names.
    """
    cw = weights if isinstance(weights, CanonicalWeights) else _canonical_from_model(weights)
    if fmt == "hf":
        return _to_hf(cw)
    if fmt == "mcg-finetune":
        return dict(cw.backbone)
    if fmt in ("mcg-pretrain", "vmae_det"):
        if not cw.mae and fmt == "vmae_det":
            return dict(cw.backbone)
        return {**{"encoder." + k: v for k, v in cw.backbone.items()}, **cw.mae}
    raise ValueError(f"unknown checkpoint format {fmt!r}; choose from {FORMATS}")


def _canonical_from_model(model: nn.Module) -> CanonicalWeights:
    backbone, prefix = _find_backbone(model)
    full = model.state_dict()
    bb = {k: v for k, v in backbone.state_dict().items()}
    mae = {} if prefix != "encoder." else {k: v for k, v in full.items() if not k.startswith("encoder.")}
    return CanonicalWeights(bb, mae, "vmae_det")


# ---------------------------------------------------------------------------------------- loading
def _find_backbone(model: nn.Module) -> Tuple[VideoViT, str]:
    """The VideoViT inside ``model`` and its state-dict prefix."""
    if isinstance(model, VideoViT):
        return model, ""
    from .mae import VideoMAE  # local: mae imports vit, keep this module importable on its own

    if isinstance(model, VideoMAE):
        return model.encoder, "encoder."
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, VideoViT):
        return backbone, "backbone."
    raise TypeError(
        f"load_videomae_weights: {type(model).__name__} is not a VideoViT, a VideoMAE, or a model with a "
        "VideoViT `.backbone`"
    )


def _infer_grid(n: int, like: Tuple[int, int, int]) -> Tuple[int, int, int]:
    """Token grid of a source position table with ``n`` entries (the checkpoint does not store it).

    Tried in order: same spatial grid as ``like`` (frames differ), same frames with a square spatial grid
    (resolution differs), the standard 16 frames / tubelet 2 with a square spatial grid.
    """
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


def _fill_norm_from_fc_norm(backbone: VideoViT, cw: CanonicalWeights, report: LoadReport) -> None:
    # Official mean-pooling fine-tunes have no token norm (``norm`` is Identity), only ``fc_norm`` after
    # pooling; our feature map needs a token norm, and ``fc_norm`` is the closest trained one.
    if "norm.weight" not in cw.backbone and "fc_norm.weight" in cw.backbone:
        cw.backbone["norm.weight"] = cw.backbone["fc_norm.weight"]
        cw.backbone["norm.bias"] = cw.backbone["fc_norm.bias"]
        report.notes.append("norm initialised from fc_norm (mean-pooling fine-tuned checkpoint)")
    if backbone.fc_norm is None and "fc_norm.weight" in cw.backbone:
        report.ignored += [k for k in cw.backbone if k.startswith("fc_norm.")]
        cw.backbone = {k: v for k, v in cw.backbone.items() if not k.startswith("fc_norm.")}


def load_videomae_weights(model: nn.Module, path_or_state_dict: Union[str, os.PathLike, Mapping],
                          format: str = "auto") -> LoadReport:
    """Load VideoMAE weights of any supported layout into ``model`` and return (and log) a report.

    ``model`` may be a :class:`VideoViT`, a :class:`VideoMAE` (encoder and, if present, decoder), or any
    model with a VideoViT ``.backbone``. A learnable position table is interpolated when the checkpoint
    grid differs. Shape mismatches of any other tensor raise ``ValueError`` naming the key.
    """
    sd, extras = read_checkpoint(path_or_state_dict)
    fmt = detect_format(sd, extras) if format == "auto" else format
    cw = to_canonical(sd, fmt)
    backbone, prefix = _find_backbone(model)
    report = LoadReport(source_format=fmt, ignored=list(cw.ignored))
    _prepare_pos_embed(backbone, cw, report)
    _fill_norm_from_fc_norm(backbone, cw, report)

    incoming = {prefix + k: v for k, v in cw.backbone.items()}
    if prefix == "encoder.":
        incoming.update(cw.mae)
    else:
        report.ignored += sorted(cw.mae)  # a backbone has no decoder

    own = model.state_dict()
    scope = [k for k in own if k.startswith(prefix)] if prefix == "backbone." else list(own)
    if prefix == "encoder." and not cw.mae:
        scope = [k for k in own if k.startswith("encoder.")]
        report.notes.append("checkpoint has no MAE decoder: only the encoder was loaded")
    report.unexpected = sorted(k for k in incoming if k not in own)
    mismatched = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                  for k, v in incoming.items() if k in own and v.shape != own[k].shape]
    if mismatched:
        raise ValueError(f"{extras['__source__']} ({fmt}): shape mismatch for " + "; ".join(mismatched))
    to_load = {k: v for k, v in incoming.items() if k in own}
    model.load_state_dict(to_load, strict=False)
    report.loaded = sorted(to_load)
    report.missing = sorted(k for k in scope if k not in to_load)
    logger.info("%s from %s\n%s", type(model).__name__, extras["__source__"], report)
    return report
