"""Helpers shared by the test modules: tiny models, perturbed weights, a small synthetic video.

The shared data are fixtures (``tests/conftest.py``); the demo tests' own helpers are ``tests/demo_helpers.py``,
the bad-input tables' runner ``tests/cli_table.py``, the engine tests' LazyConfig targets
``tests/engine_toy_parts.py``, VMAD's key layout and reference inputs ``tests/vmad_reference.py``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from vmae_det.modeling import VideoMAE, VideoViT, build_videomae, build_vit

#: the tiny models' input: 4 frames of 32 x 32
TINY_INPUT = dict(img_size=32, num_frames=4)


def tiny_mae(seed: int = 0, encoder: dict | None = None, **kwargs) -> VideoMAE:
    """A ViT-tiny VideoMAE on :data:`TINY_INPUT`, initialised from ``seed`` (train mode).

    Args:
        encoder: more keyword arguments of the encoder (``patch_size``, ``use_mean_pooling``, ...).
        kwargs: keyword arguments of :func:`build_videomae` (``mask_ratio``, ``decoder_depth``, ...).
    """
    torch.manual_seed(seed)
    return build_videomae("tiny", encoder_kwargs={**TINY_INPUT, **(encoder or {})}, **kwargs)


def tiny_vit(seed: int = 0, **kwargs) -> VideoViT:
    """A ViT-tiny encoder on :data:`TINY_INPUT`, initialised from ``seed`` (train mode)."""
    torch.manual_seed(seed)
    return build_vit("tiny", **{**TINY_INPUT, **kwargs})


def randomize(model: nn.Module, seed: int, scale: float = 0.1) -> nn.Module:
    """Add ``scale`` x N(0, 1) to every parameter, in place, and return ``model``.

    After init, LayerNorms, q/v biases and the mask token are 0 or 1: a conversion that drops or swaps them
    would not change any output until they are perturbed.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return model


def write_square_video(path: str | Path, n: int = 24, h: int = 48, w: int = 64, seed: int = 0) -> str:
    """An mp4v video of ``n`` frames: a flat background with a coloured square moving right (easy to
    reconstruct); ``seed`` picks the colours."""
    rng = np.random.RandomState(seed)
    bg, colour = rng.randint(40, 200, 3), rng.randint(0, 256, 3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (w, h))
    for i in range(n):
        f = np.empty((h, w, 3), np.uint8)
        f[:] = bg
        x = (2 * i) % (w - 12)
        f[18:30, x : x + 12] = colour
        writer.write(f)
    writer.release()
    return str(path)
