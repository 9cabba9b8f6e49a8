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

Every format is first converted to canonical state dicts in this project's names: the backbone
(:class:`VideoViT` names, identical to the official fine-tune names), the MAE extras (``decoder.*``,
``encoder_to_decoder.weight``, ``mask_token``, identical to the official pretraining names) and the official
classification head (``head.weight`` / ``head.bias``, e.g. the 80-class AVA head of a VMAD checkpoint).

Loading (:func:`load_videomae_weights`) follows VMAD (``run_class_finetuning.py``) where it decides, and is
strict elsewhere:

* the official head is loaded into the model's action classifier ``model.head.fc`` when the shapes are
  equal (a VMAD AVA checkpoint into an 80-class linear head); otherwise (a Kinetics-400 fine-tune's 400-class
  head, a model without ``head.fc``, an MLP head) it is dropped and listed as ignored;
* a mean-pooling fine-tune (``fc_norm.*``, no ``norm.*``) leaves ``norm`` at its initialisation, as VMAD
  does (its AVA model has a token ``norm`` and no ``fc_norm``); ``fc_norm`` is ignored by a backbone without
  one. It is *not* copied into ``norm``;
* any other backbone tensor that is missing from the checkpoint, or any checkpoint tensor that has no place
  in the model, is an error (``allow_partial=True`` makes it a warning). Parts of the model outside the
  backbone that the checkpoint does not cover (the action head of a detector loaded from a pretraining
  checkpoint, the decoder of a VideoMAE loaded from a fine-tune) are only reported as missing.

HF transformers naming of the attention q/v biases (checked against the released wheels):

* transformers 4.x (e.g. 4.57.6) and 5.0.0 - 5.17.0: ``...attention.attention.q_bias`` / ``v_bias``
  (``query`` / ``key`` / ``value`` are bias-free ``nn.Linear``);
* transformers >= 5.18.0 (checked 5.18.0, 5.19.0, 5.21.1, 5.24.0): ``...attention.attention.query.bias`` /
  ``value.bias`` (config ``qv_bias``); ``key`` stays bias-free, so there is no ``key.bias``. Its
  ``save_pretrained`` writes the 4.x names by default (``save_original_format=True``); the new names appear in
  ``model.state_dict()`` files and with ``save_original_format=False``.

Both are read (a ``key.bias``, should one appear, is dropped when all zeros and an error otherwise). The
``"hf"`` export always writes the 4.x names ``q_bias`` / ``v_bias``, which every transformers version loads
(>= 5.18 renames them on load).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from ..formats.vmad_layout import VMAD_FPS
from ..weights_source import resolve_weights
from .vit import VideoViT, get_sinusoid_table, resize_pos_embed

__all__ = [
    "FORMATS",
    "MAX_ABS_WEIGHT",
    "CanonicalWeights",
    "CheckpointError",
    "LoadReport",
    "check_finite_weights",
    "check_state_fits",
    "detect_format",
    "class_names_of",
    "clip_fps_of",
    "export_state_dict",
    "has_video_backbone",
    "load_videomae_weights",
    "read_checkpoint",
    "to_canonical",
    "validate_canonical",
    "verify_file_checksums",
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
# transformers >= 5.18 keeps the q/v biases in the query/value Linear layers (see module docstring).
_HF5_BIAS = {"attention.attention.query.bias": "attn.q_bias", "attention.attention.value.bias": "attn.v_bias"}
_HF5_KEY_BIAS = "attention.attention.key.bias"
# The official classification head (fine-tune ``head.*``): loaded into ``model.head.fc`` when it fits.
_OFFICIAL_HEAD = ("head.weight", "head.bias")
_MAE_TOP = ("encoder_to_decoder.weight", "mask_token")
# Every name a canonical backbone / MAE state dict can hold (any depth, layer scale, q/v bias, fc_norm).
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
#: Largest magnitude accepted in a checkpoint's floating-point tensors. Trained ViT weights stay far below
#: it (|w| < 100); values beyond it come from a corrupt file (a flipped exponent bit) or a diverged run.
MAX_ABS_WEIGHT = 1e6


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable or corrupt, NaN/inf or absurd values, or weights that
    do not fit the model. The message names the file. A ``ValueError``, so the command-line tools end with
    ``error: <message>`` (``vmae_det.cli.run_main``)."""


@dataclass
class CanonicalWeights:
    """Weights in this project's names: ``backbone`` (VideoViT), ``mae`` (decoder side of VideoMAE) and
    ``head`` (the official classification head, ``head.weight`` / ``head.bias``, when the source has one)."""

    backbone: StateDict
    mae: StateDict
    source_format: str
    ignored: List[str] = field(default_factory=list)  # source keys deliberately not used (classifier...)
    head: StateDict = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


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
                shown = ", ".join(keys[:12]) + (f", ... (+{len(keys) - 12})" if len(keys) > 12 else "")
                lines.append(f"  {name} ({len(keys)}): {shown}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------- reading
def verify_file_checksums(path: Union[str, os.PathLike]) -> None:
    """Check the CRC-32 of every record of a zip-format file (what ``torch.save`` writes since PyTorch 1.6).

    ``torch.load`` does not check them, so a checkpoint with flipped bits in its tensor data loads without
    complaint and gives garbage weights; this reads the file once more and raises :class:`CheckpointError`
    naming the file and the damaged record. Records saved without a checksum (CRC 0, from
    ``torch.serialization.set_crc32_options(False)``) and files that are not zip archives (legacy
    ``torch.save``, detectron2 ``.pkl``, safetensors) are not checked.
    """
    where = os.fspath(path)
    if not zipfile.is_zipfile(where):
        return
    try:
        with zipfile.ZipFile(where) as zf:
            for info in zf.infolist():
                if info.CRC == 0:  # written without checksums
                    continue
                crc = 0
                with zf.open(info) as f:  # raises on a bad CRC or a damaged record header
                    for chunk in iter(lambda: f.read(1 << 22), b""):
                        crc = zlib.crc32(chunk, crc)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, ValueError) as e:
        raise CheckpointError(
            f"{where}: the file is corrupt ({e}): its stored checksums do not match its contents (a partial "
            "download or copy, or a damaged disk). Download or copy it again."
        ) from e


def check_finite_weights(state: Mapping[str, torch.Tensor], where: str, max_abs: float = MAX_ABS_WEIGHT) -> None:
    """Raise :class:`CheckpointError` naming ``where`` and the tensors when a floating-point tensor of
    ``state`` holds NaN/inf or a value with ``|x| > max_abs`` (a corrupt file or a diverged run)."""
    bad: List[str] = []
    huge: List[str] = []
    largest = 0.0
    for k, v in state.items():
        if not isinstance(v, torch.Tensor) or not v.is_floating_point() or v.numel() == 0:
            continue
        m = float(v.detach().abs().amax())  # NaN propagates through amax
        if not math.isfinite(m):
            bad.append(k)
        elif m > max_abs:
            huge.append(k)
            largest = max(largest, m)
    if bad:
        raise CheckpointError(
            f"{where}: {len(bad)} tensor(s) hold NaN/inf values ({_some(bad, 5)}): the weights are broken "
            "(a diverged training run or a corrupt file); every output computed from them would be NaN. "
            "Use a checkpoint saved before the run diverged."
        )
    if huge:
        raise CheckpointError(
            f"{where}: {len(huge)} tensor(s) hold implausibly large values (|x| up to {largest:.3g} > "
            f"{max_abs:g}: {_some(huge, 5)}): the file is probably corrupt (flipped bits) or the run diverged."
        )


def _load_error_detail(e: BaseException) -> str:
    """The informative part of a ``torch.load`` error (its weights-only errors are long and suggest
    ``weights_only=False``, which is not the way out for a corrupt or foreign file)."""
    text = str(e)
    m = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", text, re.S)
    if m:
        text = m.group(1).split(". Please use")[0]
    text = " ".join(text.split())
    text = text.split(". ")[0].rstrip(".")  # e.g. miniz's advice after the first sentence
    return f"{type(e).__name__}: {text[:300]}" if text else type(e).__name__


def read_checkpoint(
    path_or_state_dict: Union[str, os.PathLike, Mapping], *, check_values: bool = True
) -> Tuple[StateDict, dict]:
    """Load a file (``weights_only=True``) or take a dict -> (flat state dict, container extras).

    A path may be a Hugging Face Hub id ``hf://ORG/NAME[@REVISION][/FILE]``: fetched or found in the hub
    cache by :func:`vmae_det.weights_source.resolve_weights`, the one place that resolves weights.

    The state dict is taken from ``"model"``, ``"module"`` or ``"state_dict"`` if present, and a DDP
    ``module.`` prefix is removed. Official pretraining files keep an ``argparse.Namespace`` under
    ``"args"``; that class (only) is allow-listed for unpickling.

    A missing file is a ``FileNotFoundError``; a corrupt one (bad zip checksums, see
    :func:`verify_file_checksums`; not loadable) or one without tensors a :class:`CheckpointError`, and so
    are NaN/inf or absurdly large weights (``check_values``, :func:`check_finite_weights`). Every message
    names the file.
    """
    if isinstance(path_or_state_dict, Mapping):
        ckpt, where = dict(path_or_state_dict), "<state dict>"
    else:
        where = resolve_weights(path_or_state_dict)  # hf://ORG/NAME -> the cached file (vmae_det.weights_source)
        if not os.path.exists(where):
            raise FileNotFoundError(f"checkpoint {where} does not exist")
        if os.path.isdir(where):  # an HF model folder (save_pretrained / hub snapshot)
            for name in ("model.safetensors", "pytorch_model.bin"):
                if os.path.isfile(os.path.join(where, name)):
                    where = os.path.join(where, name)
                    break
            else:
                raise FileNotFoundError(f"{where}: folder has neither model.safetensors nor pytorch_model.bin")
        if where.endswith(".safetensors"):
            from safetensors.torch import load_file

            try:
                ckpt = load_file(where)
            except Exception as e:  # safetensors raises its own SafetensorError on a damaged header
                raise CheckpointError(
                    f"{where}: cannot read as a safetensors file ({type(e).__name__}: {e}); "
                    "the file is corrupt or not a safetensors checkpoint"
                ) from e
        else:
            if os.path.getsize(where) == 0:
                raise CheckpointError(f"{where}: the checkpoint file is empty (0 bytes)")
            verify_file_checksums(where)
            try:
                with torch.serialization.safe_globals([argparse.Namespace]):
                    ckpt = torch.load(where, map_location="cpu", weights_only=True)
            except Exception as e:
                raise CheckpointError(
                    f"{where}: cannot load as a weights-only torch checkpoint ({_load_error_detail(e)}). "
                    "The file is corrupt, truncated, or not a PyTorch checkpoint of tensors."
                ) from e
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"{where}: expected a dict checkpoint, got {type(ckpt).__name__}")
    extras = {k: v for k, v in ckpt.items() if not isinstance(v, (torch.Tensor, Mapping))}
    if isinstance(ckpt.get("class_names"), Mapping):  # {id: name}, a dict but not a state dict
        extras["class_names"] = dict(ckpt["class_names"])
    sd = ckpt
    for key in ("model", "module", "state_dict"):
        if isinstance(ckpt.get(key), Mapping):
            sd = ckpt[key]
            break
    tensors = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{where}: no tensors found (top-level keys: {sorted(map(str, ckpt))[:10]})")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    if check_values:
        check_finite_weights(tensors, where)
    extras["__source__"] = where
    return tensors, extras


def clip_fps_of(extras: Mapping) -> Optional[float]:
    """Frame rate of the clips a checkpoint was trained on, from its non-tensor entries: ``clip_fps`` (this
    project's training output), 25 for a VMAD AVA checkpoint (its ``args.data_set == "ava"``: AlphAction's
    25-fps clips), else ``None`` (unknown)."""
    fps = extras.get("clip_fps")
    if isinstance(fps, (int, float)) and not isinstance(fps, bool) and math.isfinite(fps) and fps > 0:
        return float(fps)
    if getattr(extras.get("args"), "data_set", None) == "ava":
        return float(VMAD_FPS)
    return None


def class_names_of(extras: Mapping) -> Optional[Dict[int, str]]:
    """Action names ``{id: name}`` a checkpoint was trained with, from its non-tensor entries: ``class_names``
    (this project's training output: ``[[id, name], ...]`` pairs, read with ``weights_only=True``; an
    ``{id: name}`` dict is read too), else ``None`` (none stored, or not ids and names)."""
    value = extras.get("class_names")
    pairs = list(value.items()) if isinstance(value, Mapping) else value
    if not isinstance(pairs, (list, tuple)):
        return None
    names: Dict[int, str] = {}
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not isinstance(pair[1], str):
            return None
        key = pair[0]
        if isinstance(key, str) and key.strip().isdigit():
            key = int(key)
        if not isinstance(key, int) or isinstance(key, bool):
            return None
        names[key] = pair[1]
    return names or None


def detect_format(state_dict: Mapping[str, torch.Tensor], extras: Optional[dict] = None) -> str:
    """Guess the layout of a flat state dict (see module docstring for the names)."""
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


# ---------------------------------------------------------------------------------------- conversion
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
            i_str, rest = pat.match(k).groups()  # type: ignore[union-attr]
            i, v = int(i_str), sd.pop(k)
            m = re.fullmatch(r"attention\.attention\.(query|key|value)\.weight", rest)
            if m:
                qkv.setdefault(i, {})[m.group(1)] = v
                continue
            if rest in _HF5_BIAS:  # transformers >= 5.18 names
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
        # The official classification head (fine-tune "head.*") is kept apart: the loader puts it into
        # the model's action classifier when the shapes fit. Anything else under "head." is not ours.
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

    ``to_canonical`` with the wrong ``fmt`` (an HF file read as ``mcg-finetune``, ...) keeps names it does
    not know as they are; this catches that before they are written anywhere: every backbone key must be a
    :class:`VideoViT` name (``patch_embed.proj``, ``blocks.N.*``, ``norm``/``fc_norm``, ``pos_embed``),
    every MAE key a decoder name, and the patch embedding and at least one block must be there.
    """
    strange = sorted(k for k in cw.backbone if not _BACKBONE_KEY.fullmatch(k))
    strange += sorted(k for k in cw.mae if not _MAE_KEY.fullmatch(k))
    problems = []
    if strange:
        problems.append(f"{len(strange)} key(s) that are not VideoMAE names after conversion: {_some(strange, 6)}")
    if "patch_embed.proj.weight" not in cw.backbone:
        problems.append("no patch embedding (patch_embed.proj.weight)")
    if not any(k.startswith("blocks.") for k in cw.backbone):
        problems.append("no transformer block (blocks.N.*)")
    if problems:
        raise CheckpointError(f"{where} read as '{cw.source_format}': " + "; ".join(problems))


def check_state_fits(model: nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    """Raise :class:`CheckpointError` unless ``state`` has exactly ``model``'s state-dict keys and shapes
    (a checkpoint of this very model: loading it leaves nothing at its initialisation)."""
    own = model.state_dict()
    missing = sorted(k for k in own if k not in state)
    unexpected = sorted(k for k in state if k not in own)
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(own)
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    parts = []
    if missing:
        parts.append(
            f"{len(missing)} model tensor(s) missing from the checkpoint (they would keep their "
            f"random initialisation): {_some(missing, 8)}"
        )
    if unexpected:
        parts.append(f"{len(unexpected)} checkpoint tensor(s) with no place in the model: {_some(unexpected, 8)}")
    if mismatched:
        parts.append(f"{len(mismatched)} shape mismatch(es): {_some(mismatched, 5)}")
    if parts:
        raise CheckpointError(
            f"{where} does not fit this {type(model).__name__} (another config, class count or architecture?): "
            + "; ".join(parts)
        )


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

    ``vmae_det`` / ``mcg-pretrain`` give ``encoder.*`` + decoder keys when there are MAE weights, plain
    backbone keys otherwise; ``mcg-finetune`` gives the backbone; ``hf`` the HF names (transformers 4.x
    ``q_bias`` / ``v_bias``, see the module docstring). The plain-backbone layouts (``mcg-finetune``, and
    ``vmae_det`` without MAE weights) also carry the official head ``head.weight`` / ``head.bias`` when there
    is one (from a checkpoint, or a detector's linear action classifier ``head.fc``): a detector exported
    that way is a VMAD-layout checkpoint. ``hf`` and the ``encoder.*`` layouts have no such head.
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
    backbone, prefix = _find_backbone(model)
    full = model.state_dict()
    bb = {k: v for k, v in backbone.state_dict().items()}
    mae = {} if prefix != "encoder." else {k: v for k, v in full.items() if not k.startswith("encoder.")}
    head: StateDict = {}
    found = _action_classifier(model)
    if found is not None and not found[2]:  # a linear action head is the official head's equivalent
        fc = found[1]
        head = {"head.weight": fc.weight.detach()}
        if fc.bias is not None:
            head["head.bias"] = fc.bias.detach()
    return CanonicalWeights(bb, mae, "vmae_det", head=head)


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


def has_video_backbone(model: nn.Module) -> bool:
    """Whether :func:`load_videomae_weights` can load into ``model``: a :class:`VideoViT`, a VideoMAE, or a
    model with a VideoViT ``.backbone``."""
    try:
        _find_backbone(model)
    except TypeError:
        return False
    return True


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


def _reconcile_fc_norm(backbone: VideoViT, cw: CanonicalWeights, report: LoadReport) -> set:
    """``fc_norm`` / ``norm`` of mean-pooling checkpoints and models, as VMAD handles them.

    Returns the backbone keys (VideoViT names) whose absence from the checkpoint is expected: ``norm.*``
    for a mean-pooling fine-tune (it has ``fc_norm`` after pooling and no token norm; VMAD leaves its
    AVA model's ``norm`` at init then), ``fc_norm.*`` for a model with a pooled-classifier norm loaded from
    a checkpoint without one. ``fc_norm`` is never copied into ``norm``: they normalise different things.
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


def _action_classifier(model: nn.Module) -> Optional[Tuple[str, nn.Linear, bool]]:
    """The final linear layer of the model's action head: ``(state-dict name, layer, head is an MLP)``.

    Only ``model.head.fc`` (an ``nn.Linear``) is looked for; ``model.head.hidden`` with parameters means the
    classifier sits on top of hidden layers (an MLP head), so it is not the official linear head.
    """
    head = getattr(model, "head", None)
    fc = getattr(head, "fc", None) if isinstance(head, nn.Module) else None
    if not isinstance(fc, nn.Linear):
        return None
    name = next(n for n, m in model.named_modules() if m is fc)
    hidden = getattr(head, "hidden", None)
    mlp = isinstance(hidden, nn.Module) and any(True for _ in hidden.parameters())
    return name, fc, mlp


def _prepare_head(model: nn.Module, cw: CanonicalWeights, report: LoadReport) -> StateDict:
    """Map the official ``head.weight`` / ``head.bias`` onto the model's action classifier when they fit.

    As VMAD's fine-tuning: a head whose shapes differ from the model's (a Kinetics-400 fine-tune's
    400-class head, another class count) is dropped; so is one the model has no place for.
    """
    if not cw.head:
        return {}
    keys = sorted(cw.head)
    desc = ", ".join(f"{k} {tuple(v.shape)}" for k, v in sorted(cw.head.items()))
    found = _action_classifier(model)
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


def _some(keys: List[str], n: int = 10) -> str:
    return ", ".join(keys[:n]) + (f", ... (+{len(keys) - n} more)" if len(keys) > n else "")


def load_videomae_weights(
    model: nn.Module,
    path_or_state_dict: Union[str, os.PathLike, Mapping],
    format: str = "auto",
    *,
    allow_partial: bool = False,
) -> LoadReport:
    """Load VideoMAE weights of any supported layout into ``model`` and return (and log) a report.

    ``model`` may be a :class:`VideoViT`, a :class:`VideoMAE` (encoder and, if present, decoder), or any
    model with a VideoViT ``.backbone`` (a detector; the official classification head of the checkpoint
    goes into its ``head.fc`` when the shapes fit, see the module docstring). A learnable position table
    is interpolated when the checkpoint grid differs.

    Strict: a backbone tensor (or, for a VideoMAE loaded from a checkpoint with a decoder, a decoder
    tensor) missing from the checkpoint, or a checkpoint tensor with no place in the model, raises
    ``ValueError`` naming the checkpoint, its format and the keys; ``allow_partial=True`` logs a warning
    instead and loads what fits. Expected gaps are only noted: ``norm`` of a mean-pooling fine-tune,
    the MAE decoder and an unfitting official head (ignored), model parts outside the backbone that the
    checkpoint does not cover (listed in ``missing``). A checkpoint of which no backbone tensor fits
    is always an error, and so is any shape mismatch.
    """
    backbone, prefix = _find_backbone(model)
    sd, extras = read_checkpoint(path_or_state_dict)
    src = extras["__source__"]
    fmt = detect_format(sd, extras) if format == "auto" else format
    report = LoadReport(source_format=fmt, clip_fps=clip_fps_of(extras))
    try:
        cw = to_canonical(sd, fmt)
        report.ignored, report.notes = list(cw.ignored), list(cw.notes)
        _prepare_pos_embed(backbone, cw, report)
    except (ValueError, RuntimeError) as e:  # e.g. a position table of another width or token count
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
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in incoming.items()
        if k in own and v.shape != own[k].shape
    ]
    if mismatched:
        raise CheckpointError(
            f"{src} ({fmt}) does not fit this {type(model).__name__} (another size or "
            f"patch/tubelet?): {len(mismatched)} shape mismatch(es): {_some(mismatched, 5)}"
        )
    to_load = {k: v for k, v in incoming.items() if k in own}
    unexpected = sorted(k for k in incoming if k not in own)
    missing_required = sorted(k for k in required if k not in to_load and k not in optional)
    if not any(k in backbone_keys and k != prefix + "pos_embed" for k in to_load):
        raise CheckpointError(
            f"{src} ({fmt}): no tensor of the checkpoint fits the backbone of {type(model).__name__} (wrong format, "
            f"or not a VideoMAE checkpoint); checkpoint keys: {_some(sorted(sd))}"
        )
    if missing_required or unexpected:
        parts = []
        if missing_required:
            parts.append(
                f"{len(missing_required)} model tensor(s) missing from the checkpoint: {_some(missing_required)}"
            )
        if unexpected:
            parts.append(f"{len(unexpected)} checkpoint tensor(s) with no place in the model: {_some(unexpected)}")
        msg = (
            f"{src} ({fmt}) does not match this {type(model).__name__} (depth, layer scale, q/v bias...?): "
            + "; ".join(parts)
        )
        if not allow_partial:
            raise CheckpointError(msg + ". Pass allow_partial=True to load the tensors that fit anyway.")
        logger.warning("%s. allow_partial=True: loading the tensors that fit.", msg)
        report.notes.append(f"allow_partial: {len(missing_required)} missing, {len(unexpected)} unexpected")
    model.load_state_dict(to_load, strict=False)
    report.loaded = sorted(to_load)
    report.unexpected = unexpected
    report.missing = sorted(k for k in own if k not in to_load)
    logger.info("%s from %s\n%s", type(model).__name__, src, report)
    return report
