"""VideoMAE regression targets as the official code builds them: [0, 1] pixels cut into cubes, optionally
normalised per cube and channel (``norm_pix_loss``)."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch

from .vit import select_cubes

__all__ = ["CUBE_STD_EPS", "patchify", "unpatchify", "cube_mean_std", "cube_targets"]

#: Added to each cube's std before dividing by it (the official value).
CUBE_STD_EPS = 1e-6


def patchify(video: torch.Tensor, tubelet_size: int, patch_size: int) -> torch.Tensor:
    """``[B, C, T, H, W]`` -> cubes ``[B, N, tubelet*patch*patch, C]``, as the official
    ``rearrange('b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2) c')``."""
    b, c, t, h, w = video.shape
    ts, p = tubelet_size, patch_size
    x = video.reshape(b, c, t // ts, ts, h // p, p, w // p, p)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # b, t', h', w', ts, p, p, c
    return x.reshape(b, (t // ts) * (h // p) * (w // p), ts * p * p, c)


def unpatchify(cubes: torch.Tensor, grid: Sequence[int], tubelet_size: int, patch_size: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``[B, N, tubelet*patch*patch, C]`` -> ``[B, C, T, H, W]``."""
    b, _, _, c = cubes.shape
    t, h, w = grid
    ts, p = tubelet_size, patch_size
    x = cubes.reshape(b, t, h, w, ts, p, p, c).permute(0, 7, 1, 4, 2, 5, 3, 6)
    return x.reshape(b, c, t * ts, h * p, w * p)


def cube_mean_std(cubes: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased std + :data:`CUBE_STD_EPS` over the ``P`` pixels of ``[..., P, C]`` cubes."""
    var, mean = torch.var_mean(cubes, dim=-2, correction=1, keepdim=True)  # one pass
    return mean, var.sqrt_() + CUBE_STD_EPS


def cube_targets(
    clips01: torch.Tensor, tubelet_size: int, patch_size: int, normalize: bool, mask: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Per-cube regression targets ``[B, N, tubelet*patch*patch*C]`` from [0, 1] pixels ``[B, C, T, H, W]``;
    with ``mask`` (bool [B, N]) only the masked cubes' ``[B, N_mask, ...]``, the others never built."""
    if mask is None:
        cubes = patchify(clips01, tubelet_size, patch_size)
        if normalize:
            mean, std = cube_mean_std(cubes)
            cubes = (cubes - mean).div_(std)
        return cubes.flatten(2)
    # Gathered channel-first, so each cube's pixels are contiguous runs and the statistics reduce the last dim.
    b, c = clips01.shape[:2]
    cubes = select_cubes(clips01, mask, tubelet_size, patch_size, channels_last=False).view(
        b, -1, c, tubelet_size * patch_size**2
    )
    if normalize:
        var, mean = torch.var_mean(cubes, dim=-1, correction=1, keepdim=True)
        cubes = (cubes - mean).div_(var.sqrt_().add_(CUBE_STD_EPS))
    return cubes.transpose(-1, -2).reshape(b, cubes.shape[1], -1)
