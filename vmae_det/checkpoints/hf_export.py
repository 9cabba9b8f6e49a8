"""VideoMAE weights as a Hugging Face transformers model: the state dict, the ``config.json`` and the class.

The class follows the weights: MAE weights -> ``VideoMAEForPreTraining``; a mean-pooling fine-tune with its head
-> ``VideoMAEForVideoClassification``; any other backbone (detectors included: transformers has no RoI action
head) -> ``VideoMAEModel``. Weights transformers cannot hold (layer scale, a learned position table) are refused,
not exported wrong. See ``docs/weights.md``. No transformers import: the config is written as 4.x and 5.x read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..modeling.mae import DECODER_SIZES
from ..modeling.vit import VIT_SIZES, get_sinusoid_table
from .files import CheckpointError, StateDict
from .layouts import CanonicalWeights, export_state_dict

__all__ = ["HF_CLASSES", "HFExport", "hf_export"]

HF_CLASSES = ("VideoMAEForPreTraining", "VideoMAEForVideoClassification", "VideoMAEModel")
#: LayerNorm epsilon of the official VideoMAE blocks (transformers' default 1e-12 would change outputs).
OFFICIAL_LAYER_NORM_EPS = 1e-6


@dataclass
class HFExport:
    architecture: str
    state_dict: StateDict  # transformers names (``q_bias`` / ``v_bias``, read by transformers 4 and 5)
    config: dict
    dropped: List[str] = field(default_factory=list)  # source tensors transformers has no place for
    notes: List[str] = field(default_factory=list)


def _count(keys, pattern: str) -> int:
    found = {int(m.group(1)) for k in keys for m in [re.match(pattern, k)] if m}
    return max(found) + 1 if found else 0


def _heads(
    dim: int, depth: int, table: Dict[str, Dict[str, int]], dim_key: str, heads_key: str, depth_key: Optional[str]
) -> Optional[int]:
    for size in table.values():
        if size[dim_key] == dim and (depth_key is None or size[depth_key] == depth):
            return size[heads_key]
    return None


def hf_export(
    cw: CanonicalWeights,
    *,
    image_size: int = 224,
    num_frames: int = 16,
    num_heads: Optional[int] = None,
    decoder_num_heads: Optional[int] = None,
) -> HFExport:
    """The transformers class, state dict and config for ``cw``.

    Raises :class:`CheckpointError` for weights transformers cannot hold and ``ValueError`` for a clip size or
    head count that does not fit the weights.
    """
    bb = cw.backbone
    dropped: List[str] = list(cw.ignored)
    notes: List[str] = []
    w = bb["patch_embed.proj.weight"]  # [C, 3, tubelet, p, p]
    hidden, channels, tubelet, patch = int(w.shape[0]), int(w.shape[1]), int(w.shape[2]), int(w.shape[3])
    depth = _count(bb, r"blocks\.(\d+)\.")
    if image_size % patch or num_frames % tubelet:
        raise ValueError(
            f"image size {image_size} / {num_frames} frames are not multiples of the patch {patch} / "
            f"tubelet {tubelet} of these weights"
        )
    if any(re.fullmatch(r"(decoder\.)?blocks\.\d+\.gamma_[12]", k) for k in [*bb, *cw.mae]):
        raise CheckpointError(
            "the weights use layer scale (gamma_1/gamma_2), which transformers' VideoMAE does "
            "not have: they cannot be exported as a transformers model"
        )
    if num_heads is None:
        num_heads = _heads(hidden, depth, VIT_SIZES, "embed_dim", "num_heads", "depth") or max(1, hidden // 64)
        notes.append(f"{num_heads} attention heads assumed for width {hidden}, depth {depth} (--num-heads)")
    if hidden % num_heads:
        raise ValueError(f"width {hidden} is not divisible by {num_heads} attention heads")
    qv_bias = "blocks.0.attn.q_bias" in bb

    bb = dict(bb)
    if "pos_embed" in bb:  # transformers always adds the fixed sinusoidal table: fine when it is that table
        n = (image_size // patch) ** 2 * (num_frames // tubelet)
        pos = bb.pop("pos_embed").reshape(-1, hidden).float()
        table = get_sinusoid_table(n, hidden)
        if pos.shape != table.shape or (pos - table).abs().max() > 1e-5:
            raise CheckpointError(
                f"the weights have a learned position table ({tuple(pos.shape)}) other than the sinusoidal "
                f"table of {image_size}x{image_size}x{num_frames} clips, and transformers' VideoMAE only has the "
                "sinusoidal one: they cannot be exported as a transformers model (wrong --image-size / "
                "--num-frames?)"
            )
        notes.append("pos_embed is the sinusoidal table transformers builds: not stored")

    has_fc_norm = any(k.startswith("fc_norm.") for k in bb)
    if cw.mae:
        architecture, mean_pooling = "VideoMAEForPreTraining", False
    elif cw.head and has_fc_norm:
        architecture, mean_pooling = "VideoMAEForVideoClassification", True
    else:
        architecture, mean_pooling = "VideoMAEModel", has_fc_norm and not any(k.startswith("norm.") for k in bb)
    drop = [k for k in bb if k.startswith("fc_norm.")] if architecture != "VideoMAEForVideoClassification" else []
    if mean_pooling:  # transformers then has no token norm (a mean-pooling model does not use it)
        drop += [k for k in bb if k.startswith("norm.")]
    if drop:
        notes.append(f"{', '.join(sorted(drop))}: no place in {architecture} (use_mean_pooling={mean_pooling})")
    rest = sorted(set(cw.ignored) | (set(cw.head) if architecture != "VideoMAEForVideoClassification" else set()))
    if rest:
        what = (
            "an action detector's head (RoI pooling + classifier)"
            if any(k.startswith("head.") for k in rest)
            else "the parts outside the backbone"
        )
        notes.append(
            f"transformers has no class for {what}: {architecture} holds the backbone only, "
            f"{len(rest)} tensor(s) not exported"
        )
    dropped += sorted(drop)
    head_keys = sorted(cw.head) if architecture != "VideoMAEForVideoClassification" else []
    dropped += head_keys
    kept = CanonicalWeights({k: v for k, v in bb.items() if k not in drop}, dict(cw.mae), cw.source_format)
    try:
        sd = export_state_dict(kept, "hf")
    except ValueError as e:
        raise CheckpointError(f"cannot export as a transformers model: {e}") from e

    config = {
        "architectures": [architecture],
        "model_type": "videomae",
        "image_size": image_size,
        "num_frames": num_frames,
        "patch_size": patch,
        "tubelet_size": tubelet,
        "num_channels": channels,
        "hidden_size": hidden,
        "num_hidden_layers": depth,
        "num_attention_heads": num_heads,
        "intermediate_size": int(bb["blocks.0.mlp.fc1.weight"].shape[0]),
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "initializer_range": 0.02,
        "layer_norm_eps": OFFICIAL_LAYER_NORM_EPS,
        # transformers >= 5.18 reads qv_bias (and renames qkv_bias to it), 4.x reads qkv_bias.
        "qkv_bias": qv_bias,
        "qv_bias": qv_bias,
        "use_mean_pooling": mean_pooling,
        "norm_pix_loss": True,
        "torch_dtype": "float32",
    }
    if cw.mae:
        mae = cw.mae
        dec_dim = int(mae["encoder_to_decoder.weight"].shape[0])
        dec_depth = _count(mae, r"decoder\.blocks\.(\d+)\.")
        if ("decoder.blocks.0.attn.q_bias" in mae) != qv_bias:
            raise CheckpointError(
                "the encoder and the decoder differ in q/v biases; transformers' VideoMAE has one setting for both"
            )
        if decoder_num_heads is None:
            decoder_num_heads = _heads(
                dec_dim, dec_depth, DECODER_SIZES, "decoder_embed_dim", "decoder_num_heads", None
            ) or max(1, dec_dim // 64)
            notes.append(
                f"{decoder_num_heads} decoder attention heads assumed for decoder width {dec_dim} (--decoder-num-heads)"
            )
        if dec_dim % decoder_num_heads:
            raise ValueError(f"decoder width {dec_dim} is not divisible by {decoder_num_heads} attention heads")
        config.update(
            decoder_hidden_size=dec_dim,
            decoder_num_hidden_layers=dec_depth,
            decoder_num_attention_heads=decoder_num_heads,
            decoder_intermediate_size=int(mae["decoder.blocks.0.mlp.fc1.weight"].shape[0]),
        )
    if architecture == "VideoMAEForVideoClassification":
        sd["classifier.weight"] = cw.head["head.weight"]
        if "head.bias" in cw.head:
            sd["classifier.bias"] = cw.head["head.bias"]
        labels = int(cw.head["head.weight"].shape[0])
        config["id2label"] = {str(i): f"LABEL_{i}" for i in range(labels)}
        config["label2id"] = {f"LABEL_{i}": i for i in range(labels)}
    if architecture == "VideoMAEModel":  # the base model's own names, as its save_pretrained writes them
        sd = {k[len("videomae.") :] if k.startswith("videomae.") else k: v for k, v in sd.items()}
    sd = {k: v.detach().contiguous() for k, v in sd.items()}
    return HFExport(architecture, sd, config, dropped, notes)
