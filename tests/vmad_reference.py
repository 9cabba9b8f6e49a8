"""Inputs and weights shared by the VMAD parity test and the script that made its reference numbers.

``tests/reference/make_vmad_reference.py`` runs the official VideoMAE-Action-Detection code (VMAD) on
exactly these weights and inputs and stores its outputs in ``tests/reference/vmad_reference.pt``;
``tests/modeling/test_vmad_parity.py`` runs ours on the same and compares. Everything here is deterministic
(seeded CPU generators), so nothing large is committed.
"""

from __future__ import annotations

import argparse
from typing import Dict, List, Tuple

import numpy as np
import torch

# VMAD's AVA normalisation (data/transforms.py TransformsCfg) and test box extension.
VMAD_PIXEL_MEAN = [122.7717, 115.9465, 102.9801]
VMAD_PIXEL_STD = [57.375, 57.375, 57.375]
NUM_CLASSES = 80
NUM_FRAMES = 16

# Name -> clip sizes (H, W) of one forward call. AVA test clips have short side 256: 341 (4:3),
# 455 (16:9), 464; "pair" is two clips of different widths in one call (padded to 464).
CASES: Dict[str, List[Tuple[int, int]]] = {
    "224x224": [(224, 224)],
    "256x464": [(256, 464)],
    "256x341": [(256, 341)],
    "256x455": [(256, 455)],
    "pair_341_455": [(256, 341), (256, 455)],
}


def vmad_key_shapes(embed_dim: int, depth: int, num_classes: int, mean_pooling: bool = False) -> Dict[str, tuple]:
    """Keys and shapes of VMAD's ``VisionTransformer`` (modeling_finetune.py: patch 16, tubelet 2, q/v biases)
    in its module order. ``mean_pooling``: a Kinetics fine-tune's ``fc_norm`` instead of the token ``norm``."""
    shapes = {"patch_embed.proj.weight": (embed_dim, 3, 2, 16, 16), "patch_embed.proj.bias": (embed_dim,)}
    for i in range(depth):
        p = f"blocks.{i}."
        shapes.update(
            {
                p + "norm1.weight": (embed_dim,),
                p + "norm1.bias": (embed_dim,),
                p + "attn.q_bias": (embed_dim,),
                p + "attn.v_bias": (embed_dim,),
                p + "attn.qkv.weight": (3 * embed_dim, embed_dim),
                p + "attn.proj.weight": (embed_dim, embed_dim),
                p + "attn.proj.bias": (embed_dim,),
                p + "norm2.weight": (embed_dim,),
                p + "norm2.bias": (embed_dim,),
                p + "mlp.fc1.weight": (4 * embed_dim, embed_dim),
                p + "mlp.fc1.bias": (4 * embed_dim,),
                p + "mlp.fc2.weight": (embed_dim, 4 * embed_dim),
                p + "mlp.fc2.bias": (embed_dim,),
            }
        )
    norm = "fc_norm." if mean_pooling else "norm."
    shapes.update({norm + "weight": (embed_dim,), norm + "bias": (embed_dim,)})
    shapes.update({"head.weight": (num_classes, embed_dim), "head.bias": (num_classes,)})
    return shapes


def vmad_state_dict(seed: int = 0, embed_dim: int = 384, depth: int = 12, num_classes: int = NUM_CLASSES):
    """A ViT-S AVA detector state dict in VMAD's key names, with weights that make every part matter
    (non-unit LayerNorms, xavier-scale matrices, a head whose logits spread over (0, 1))."""
    shapes = vmad_key_shapes(embed_dim, depth, num_classes)
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k in sorted(shapes):
        shape = shapes[k]
        x = torch.randn(shape, generator=g)
        if "norm" in k and k.endswith(".weight"):
            out[k] = 1 + 0.1 * x
        elif k == "head.weight":
            out[k] = 0.05 * x
        elif len(shape) == 1:
            out[k] = 0.02 * x
        else:
            fan_in = int(np.prod(shape[1:]))
            out[k] = x * fan_in**-0.5
    return out


def vmad_checkpoint(state_dict, layout: str = "model") -> dict:
    """The containers VMAD writes: ``utils.save_model`` (``model``) or DeepSpeed-style (``module``)."""
    if layout == "model":
        args = argparse.Namespace(
            model="vit_small_patch16_224", nb_classes=NUM_CLASSES, num_frames=NUM_FRAMES, data_set="ava"
        )
        return {
            "model": state_dict,
            "optimizer": {"state": {}, "param_groups": []},
            "epoch": 29,
            "scaler": {"scale": 65536.0},
            "args": args,
        }
    if layout == "module":
        return {"module": state_dict, "epoch": 29}
    raise ValueError(layout)


def case_inputs(name: str) -> List[dict]:
    """Per clip: ``clip`` uint8 [3, 16, H, W], ``boxes`` float32 [N, 4] xyxy clip pixels (some reach
    the right/bottom edge, so the extension's clamp matters), ``scores`` float32 [N]."""
    out = []
    for j, (h, w) in enumerate(CASES[name]):
        g = torch.Generator().manual_seed(1000 * h + w + 7 * j)
        clip = torch.randint(0, 256, (3, NUM_FRAMES, h, w), generator=g, dtype=torch.uint8)
        rand = torch.rand(4, 4, generator=g)
        x1 = rand[:, 0] * 0.6 * w
        y1 = rand[:, 1] * 0.5 * h
        x2 = x1 + (0.15 + 0.3 * rand[:, 2]) * w
        y2 = y1 + (0.2 + 0.4 * rand[:, 3]) * h
        boxes = torch.stack([x1, y1, x2.clamp(max=w - 1), y2.clamp(max=h - 1)], 1)
        edge = torch.tensor([[0.0, 0.0, 0.3 * w, h - 1.0], [0.7 * w, 0.4 * h, w - 1.0, h - 1.0]])
        boxes = torch.cat([boxes, edge]).float()
        scores = 0.5 + 0.5 * torch.rand(len(boxes), generator=g)
        out.append({"clip": clip, "boxes": boxes, "scores": scores})
    return out


def box_inputs() -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Boxes (xyxy pixels) and a clip size (H, W) for the box-arithmetic checks, edges included."""
    g = torch.Generator().manual_seed(5)
    h, w = 224, 224
    r = torch.rand(64, 4, generator=g)
    x1, y1 = r[:, 0] * 200, r[:, 1] * 200
    boxes = torch.stack([x1, y1, (x1 + 5 + r[:, 2] * 100).clamp(max=w), (y1 + 5 + r[:, 3] * 100).clamp(max=h)], 1)
    # cropped-away boxes (zero width at the right edge / left edge), as VMAD's crop leaves them
    boxes = torch.cat([boxes, torch.tensor([[224.0, 10.0, 224.0, 100.0], [0.0, 50.0, 0.0, 90.0]])])
    return boxes.float(), (h, w)


def raw_clip(num_frames: int = 64, height: int = 360, width: int = 640, seed: int = 3) -> np.ndarray:
    """A smooth synthetic RGB clip ``uint8 [T, H, W, 3]`` (gradients + moving squares), as decoded
    frames before any transform; ``frame t`` is recognisable by its top-left pixel ``(t, t, t)``."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.RandomState(seed)
    frames = []
    for t in range(num_frames):
        img = np.stack(
            [
                128 + 100 * np.sin(xx / 37.0 + t / 5.0),
                128 + 100 * np.cos(yy / 23.0 - t / 7.0),
                128 + 80 * np.sin((xx + yy) / 51.0),
            ],
            -1,
        )
        for _ in range(3):
            cx, cy = rng.randint(20, width - 60), rng.randint(20, height - 60)
            img[cy : cy + 40, cx : cx + 40] = rng.randint(0, 256, 3)
        img = img.clip(0, 255).astype(np.uint8)
        img[0, 0] = t
        frames.append(img)
    return np.stack(frames)


def raw_boxes(height: int = 360, width: int = 640) -> np.ndarray:
    """Person boxes ``float32 [N, 4]`` xyxy in raw-frame pixels for the transform checks."""
    return np.array([[20, 30, 200, 350], [300, 50, 420, 300], [500, 100, 639, 359], [250, 200, 330, 330]], np.float32)
