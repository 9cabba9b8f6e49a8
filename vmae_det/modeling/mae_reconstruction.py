"""Pixel reconstructions of a VideoMAE's predictions of the masked cubes, for pictures and the eval outputs."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch

from .mae_targets import cube_mean_std, patchify, unpatchify
from .vit import select_tokens

__all__ = ["expand_token_mask", "paste_predictions", "reconstruct_clips"]


def expand_token_mask(mask: torch.Tensor, grid: Sequence[int], tubelet_size: int, patch_size: int) -> torch.Tensor:
    """Token mask ``[B, N]`` -> pixel mask ``[B, 1, T, H, W]`` (for drawing masked frames)."""
    b = mask.shape[0]
    cubes = mask[:, :, None, None].expand(b, mask.shape[1], tubelet_size * patch_size**2, 1)
    return unpatchify(cubes, grid, tubelet_size, patch_size)


def paste_predictions(
    clips01: torch.Tensor,
    mask: torch.Tensor,
    pred: torch.Tensor,
    grid: Sequence[int],
    tubelet_size: int,
    patch_size: int,
    normalized: bool,
) -> torch.Tensor:
    """Paste predicted cubes into the original video -> ``[B, 3, T, H, W]`` float in 0-255.

    Args:
        mask: ``[B, N]``, True where ``pred`` has a cube.
        normalized: the predictions are normalised cubes (``norm_pix_loss``), un-normalised with the true
            cube's mean/std as the official visualisation script does.
    """
    cubes = patchify(clips01, tubelet_size, patch_size)  # [B, N, P, 3]
    b, _, p, c = cubes.shape
    pred = pred.reshape(b, -1, p, c).to(cubes.dtype)
    if normalized and pred.shape[1] > 0:
        true = select_tokens(cubes.flatten(2), mask).reshape(b, -1, p, c)
        mean, std = cube_mean_std(true)
        pred = pred * std + mean
    cubes = cubes.clone()
    cubes[mask] = pred.reshape(-1, p, c)
    return (unpatchify(cubes, grid, tubelet_size, patch_size) * 255.0).clamp(0, 255)


@torch.no_grad()
def reconstruct_clips(
    model, clip_batch: torch.Tensor, mask: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run a VideoMAE ``model`` on uint8 ``clip_batch`` -> (video, mask ``[B, N]``, reconstruction), videos float
    ``[B, 3, T, H, W]`` in 0-255. ``mask`` overrides the sampled masks; ``generator`` samples them instead of
    the model's stream."""
    raw = clip_batch.to(model.device).float()
    x, x01 = (raw - model.pixel_mean) / model.pixel_std, raw / 255.0
    grid = model.token_grid(x)
    mask = model.sample_masks(x.shape[0], grid, generator) if mask is None else mask.to(model.device)
    pred = model.predict(x, mask)
    return (
        raw,
        mask,
        paste_predictions(x01, mask, pred, grid, model.tubelet_size, model.patch_size, model.norm_pix_loss),
    )
