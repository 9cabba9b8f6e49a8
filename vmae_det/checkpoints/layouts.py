"""Checkpoint layouts of VideoMAE weights, and the conversion to and from this project's names.

Layouts (detected from the keys, or forced):

* ``"vmae_det"``: this project's files (``{"model": ..., "iteration"/"format"}``);
* ``"mcg-pretrain"``: official MCG-NJU pretraining (``encoder.*``, ``decoder.*``, ``encoder_to_decoder.weight``,
  ``mask_token``);
* ``"mcg-finetune"``: official fine-tuned (``patch_embed.*``, ``blocks.N.*``, ``fc_norm``/``norm``, ``head.*``);
* ``"hf"``: transformers ``VideoMAEModel/ForPreTraining/ForVideoClassification``.

Canonical names are :class:`VideoViT`'s (== official fine-tune), the official pretraining's for the MAE extras, and
``head.weight`` / ``head.bias`` for the official classification head.

transformers < 5.18 names the attention q/v biases ``attention.attention.q_bias`` / ``v_bias``; >= 5.18 keeps them
in ``query.bias`` / ``value.bias`` (``key`` stays bias-free). Both are read; the export writes the older names,
which every version loads.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from ..modeling.mae import VideoMAE
from ..modeling.vit import VideoViT
from .files import CheckpointError, StateDict, some_names

__all__ = [
    "FORMATS",
    "CanonicalWeights",
    "detect_format",
    "export_state_dict",
    "action_classifier",
    "find_backbone",
    "has_video_backbone",
    "to_canonical",
    "validate_canonical",
]

logger = logging.getLogger(__name__)

FORMATS = ("vmae_det", "mcg-pretrain", "mcg-finetune", "hf")

# Per-block names: ours (== official) -> HF; q/k/v weights are split from the fused ``qkv``.
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
_HF5_BIAS = {"attention.attention.query.bias": "attn.q_bias", "attention.attention.value.bias": "attn.v_bias"}
_HF5_KEY_BIAS = "attention.attention.key.bias"
_OFFICIAL_HEAD = ("head.weight", "head.bias")
_MAE_TOP = ("encoder_to_decoder.weight", "mask_token")
# Every name a canonical backbone / MAE state dict can hold.
_BLOCK_KEY = (
    r"(norm1|norm2)\.(weight|bias)|attn\.(qkv\.(weight|bias)|q_bias|v_bias|proj\.(weight|bias))"
    r"|mlp\.fc[12]\.(weight|bias)|gamma_[12]"
)
_BACKBONE_KEY = re.compile(
    rf"patch_embed\.proj\.(weight|bias)|pos_embed|(norm|fc_norm)\.(weight|bias)"
    rf"|blocks\.\d+\.({_BLOCK_KEY})"
)
_MAE_KEY = re.compile(
    rf"decoder\.blocks\.\d+\.({_BLOCK_KEY})|decoder\.(norm|head)\.(weight|bias)"
    r"|encoder_to_decoder\.weight|mask_token"
)


@dataclass
class CanonicalWeights:
    """Weights in this project's names: ``backbone`` (VideoViT), ``mae`` (VideoMAE's decoder side) and ``head``
    (the official classification head, when the source has one)."""

    backbone: StateDict
    mae: StateDict
    source_format: str
    ignored: List[str] = field(default_factory=list)
    head: StateDict = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


def detect_format(state_dict: Mapping[str, torch.Tensor], extras: Optional[dict] = None) -> str:
    """Guess the layout of a flat state dict."""
    extras = extras or {}
    keys = set(state_dict)
    if any(
        k.startswith(("videomae.", "embeddings.patch_embeddings."))
        or ".decoder_layers." in k
        or k.startswith("encoder.layer.")
        for k in keys
    ):
        return "hf"
    if extras.get("format") == "vmae_det" or "iteration" in extras or "backbone.patch_embed.proj.weight" in keys:
        return "vmae_det"
    if "encoder.patch_embed.proj.weight" in keys:
        return "mcg-pretrain"
    if "patch_embed.proj.weight" in keys:
        return "mcg-finetune"
    raise CheckpointError(
        f"{extras.get('__source__', '<state dict>')}: unrecognised VideoMAE checkpoint layout (not a VideoMAE "
        f"checkpoint of a known format: {', '.join(FORMATS)}); sample keys: {sorted(keys)[:8]}"
    )


def _split(sd: StateDict, prefix: str) -> StateDict:
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


def _from_hf(sd: StateDict) -> CanonicalWeights:
    sd = dict(sd)
    backbone: StateDict = {}
    mae: StateDict = {}
    ignored: List[str] = []
    # VideoMAEModel files have no "videomae." prefix; the task models have it.
    enc = "videomae." if any(k.startswith("videomae.") for k in sd) else ""

    notes: List[str] = []
    key_biases: List[str] = []

    def put(dst: StateDict, name: str, v: torch.Tensor, src: str) -> None:
        if name in dst:  # e.g. both ``q_bias`` (transformers 4) and ``query.bias`` (transformers >= 5.18)
            raise ValueError(f"HF checkpoint: {src} and another key both map to {name}")
        dst[name] = v

    def take_blocks(src_prefix: str, dst: StateDict, dst_prefix: str) -> None:
        pat = re.compile(re.escape(src_prefix) + r"(\d+)\.(.+)")
        qkv: Dict[int, Dict[str, torch.Tensor]] = {}
        for k in [k for k in sd if pat.match(k)]:
            i_str, rest = pat.match(k).groups()
            i, v = int(i_str), sd.pop(k)
            m = re.fullmatch(r"attention\.attention\.(query|key|value)\.weight", rest)
            if m:
                qkv.setdefault(i, {})[m.group(1)] = v
                continue
            if rest in _HF5_BIAS:
                put(dst, f"{dst_prefix}{i}.{_HF5_BIAS[rest]}", v, k)
                continue
            if rest == _HF5_KEY_BIAS:
                # VideoMAE has no key bias (the official model adds zeros); a zero one carries nothing.
                if torch.count_nonzero(v):
                    raise ValueError(
                        f"HF checkpoint: {k} is not zero, but VideoMAE attention has no key bias "
                        "(q and v biases only); this checkpoint is not a VideoMAE"
                    )
                ignored.append(k)
                key_biases.append(k)
                continue
            for ours, theirs in _HF_BLOCK.items():
                if rest == theirs or rest.startswith(theirs + "."):
                    put(dst, f"{dst_prefix}{i}.{ours}{rest[len(theirs) :]}", v, k)
                    break
            else:
                dst[f"{dst_prefix}{i}.{rest}"] = v  # unknown: surfaces as unexpected when loading
        for i, parts in qkv.items():
            if set(parts) != set(_HF_QKV):
                raise ValueError(f"HF checkpoint: layer {i} has only {sorted(parts)} of query/key/value")
            dst[f"{dst_prefix}{i}.attn.qkv.weight"] = torch.cat([parts[n] for n in _HF_QKV], dim=0)

    take_blocks(f"{enc}encoder.layer.", backbone, "blocks.")
    take_blocks("decoder.decoder_layers.", mae, "decoder.blocks.")
    if key_biases:
        notes.append(f"{len(key_biases)} all-zero attention key biases dropped (VideoMAE has none)")
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
    return CanonicalWeights(backbone, mae, "hf", ignored, notes=notes)


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
        # The official head goes into the model's action classifier when the shapes fit (see videomae_weights).
        head = {k: v for k, v in backbone.items() if k in _OFFICIAL_HEAD}
        ignored += [k for k in backbone if k.startswith("head.") and k not in head]
        backbone = {k: v for k, v in backbone.items() if not k.startswith("head.")}
        cw = CanonicalWeights(backbone, mae, fmt, ignored, head=head)
    else:
        raise ValueError(f"unknown checkpoint format {fmt!r}; choose from {FORMATS}")
    if fmt == "mcg-pretrain" and not cw.mae:
        logger.warning("mcg-pretrain checkpoint without decoder weights")
    return cw


def validate_canonical(cw: CanonicalWeights, where: str = "<state dict>") -> None:
    """Raise :class:`CheckpointError` unless ``cw`` holds a VideoMAE backbone in this project's names.

    ``to_canonical`` with the wrong ``fmt`` keeps unknown names as they are; this catches that before they are
    written anywhere.
    """
    strange = sorted(k for k in cw.backbone if not _BACKBONE_KEY.fullmatch(k))
    strange += sorted(k for k in cw.mae if not _MAE_KEY.fullmatch(k))
    problems = []
    if strange:
        problems.append(f"{len(strange)} key(s) that are not VideoMAE names after conversion: {some_names(strange, 6)}")
    if "patch_embed.proj.weight" not in cw.backbone:
        problems.append("no patch embedding (patch_embed.proj.weight)")
    if not any(k.startswith("blocks.") for k in cw.backbone):
        problems.append("no transformer block (blocks.N.*)")
    if problems:
        raise CheckpointError(f"{where} read as '{cw.source_format}': " + "; ".join(problems))


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
                    out[f"{dst_prefix}{i}.{theirs}{rest[len(ours) :]}"] = v
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

    The plain-backbone layouts (``mcg-finetune``, ``vmae_det`` without MAE weights) also carry the official head,
    from a checkpoint or a detector's linear action classifier, so an exported detector is a VMAD-layout
    checkpoint.
    """
    cw = weights if isinstance(weights, CanonicalWeights) else _canonical_from_model(weights)
    if fmt == "hf":
        return _to_hf(cw)
    if fmt == "mcg-finetune":
        return {**cw.backbone, **cw.head}
    if fmt in ("mcg-pretrain", "vmae_det"):
        if not cw.mae and fmt == "vmae_det":
            return {**cw.backbone, **cw.head}
        return {**{"encoder." + k: v for k, v in cw.backbone.items()}, **cw.mae}
    raise ValueError(f"unknown checkpoint format {fmt!r}; choose from {FORMATS}")


def _canonical_from_model(model: nn.Module) -> CanonicalWeights:
    backbone, prefix = find_backbone(model)
    full = model.state_dict()
    bb = {k: v for k, v in backbone.state_dict().items()}
    mae = {} if prefix != "encoder." else {k: v for k, v in full.items() if not k.startswith("encoder.")}
    head: StateDict = {}
    found = action_classifier(model)
    if found is not None and not found[2]:  # a linear action head is the official head's equivalent
        fc = found[1]
        head = {"head.weight": fc.weight.detach()}
        if fc.bias is not None:
            head["head.bias"] = fc.bias.detach()
    return CanonicalWeights(bb, mae, "vmae_det", head=head)


def find_backbone(model: nn.Module) -> Tuple[VideoViT, str]:
    """The VideoViT inside ``model`` and its state-dict prefix."""
    if isinstance(model, VideoViT):
        return model, ""
    if isinstance(model, VideoMAE):
        return model.encoder, "encoder."
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, VideoViT):
        return backbone, "backbone."
    raise TypeError(
        f"load_videomae_weights: {type(model).__name__} is not a VideoViT, a VideoMAE, or a model with a "
        "VideoViT `.backbone`"
    )


def has_video_backbone(model: nn.Module) -> bool:
    """Whether :func:`load_videomae_weights` can load into ``model``."""
    try:
        find_backbone(model)
    except TypeError:
        return False
    return True


def action_classifier(model: nn.Module) -> Optional[Tuple[str, nn.Linear, bool]]:
    """The final linear layer of the action head: ``(state-dict name, layer, head is an MLP)``, or ``None``."""
    head = getattr(model, "head", None)
    fc = getattr(head, "fc", None) if isinstance(head, nn.Module) else None
    if not isinstance(fc, nn.Linear):
        return None
    name = next(n for n, m in model.named_modules() if m is fc)
    hidden = getattr(head, "hidden", None)
    mlp = isinstance(hidden, nn.Module) and any(True for _ in hidden.parameters())
    return name, fc, mlp
