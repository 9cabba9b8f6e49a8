"""VideoMAE masked-autoencoder pretraining model (META_ARCH_REGISTRY "VideoMAE").

Module names mirror the official ``modeling_pretrain.py`` so official checkpoints load by name; the loss is the
official MSE over the masked cubes' targets (:mod:`.mae_targets`).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from torch import nn

from ..constants import IMAGENET_PIXEL_MEAN, IMAGENET_PIXEL_STD
from .mae_reconstruction import expand_token_mask, paste_predictions, reconstruct_clips
from .mae_targets import cube_targets, patchify, unpatchify
from .masking import MaskSampler
from .vit import LN_EPS, VIT_SIZES, Block, VideoViT, build_vit, get_sinusoid_table, init_vit_weights, select_tokens

__all__ = [
    "DECODER_SIZES",
    "VideoMAE",
    "VideoMAEDecoder",
    "build_videomae",
    "expand_token_mask",
    "patchify",
    "unpatchify",
]

# (decoder_embed_dim, decoder_num_heads) paired with each encoder size, as the official code.
DECODER_SIZES: Dict[str, Dict[str, int]] = {
    "tiny": dict(decoder_embed_dim=32, decoder_num_heads=2),
    "small": dict(decoder_embed_dim=192, decoder_num_heads=3),
    "base": dict(decoder_embed_dim=384, decoder_num_heads=6),
    "large": dict(decoder_embed_dim=512, decoder_num_heads=8),
    "huge": dict(decoder_embed_dim=640, decoder_num_heads=8),
}


class VideoMAEDecoder(nn.Module):
    """Light transformer decoder: ``blocks.N``, ``norm``, ``head`` -> cube pixels."""

    def __init__(self, embed_dim: int, depth: int, num_heads: int, out_dim: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.head = nn.Linear(embed_dim, out_dim)

    def forward(self, x: torch.Tensor, num_predict: int) -> torch.Tensor:
        """Decode all tokens and predict pixels for the last ``num_predict`` (the mask tokens)."""
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x[:, x.shape[1] - num_predict :]))


@META_ARCH_REGISTRY.register()
class VideoMAE(nn.Module):
    """VideoMAE pretraining: encode visible cubes, reconstruct masked ones.

    Input: ``list[dict]`` with ``"clip"`` uint8 ``[3, T, H, W]``. Training returns ``{"loss_mae": loss}``;
    eval returns per sample ``{"loss_mae", "mask" [N], "reconstruction" float [3, T, H, W] in 0-255}``.
    """

    @configurable
    def __init__(
        self,
        *,
        encoder: VideoViT,
        decoder_embed_dim: int,
        decoder_depth: int = 4,
        decoder_num_heads: int,
        mask_type: str = "tube",
        mask_ratio: float = 0.9,
        norm_pix_loss: bool = True,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
    ):
        """
        Args:
            mask_type, mask_ratio: see :func:`~.masking.build_masking`.
            norm_pix_loss: per-cube normalised pixel targets (official default) instead of raw [0, 1].
            pixel_mean, pixel_std: 3 values on the 0-255 scale.
        """
        super().__init__()
        self.encoder = encoder
        self.tubelet_size = encoder.tubelet_size
        self.patch_size = encoder.patch_size
        self.encoder_to_decoder = nn.Linear(encoder.embed_dim, decoder_embed_dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        out_dim = 3 * self.tubelet_size * self.patch_size**2
        self.decoder = VideoMAEDecoder(decoder_embed_dim, decoder_depth, decoder_num_heads, out_dim)
        self.decoder_embed_dim = decoder_embed_dim
        self._pos_cache = None
        self.mask_sampler = MaskSampler(mask_type, mask_ratio, encoder.grid_size)
        self.norm_pix_loss = norm_pix_loss
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(-1, 1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(-1, 1, 1, 1), False)

        self.encoder_to_decoder.apply(init_vit_weights)
        self.decoder.apply(init_vit_weights)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    @classmethod
    def from_config(cls, cfg) -> dict:
        m = cfg.MODEL.MAE
        size = cfg.MODEL.VIT.SIZE
        return dict(
            encoder=VideoViT(cfg),
            decoder_embed_dim=m.get("DECODER_EMBED_DIM", DECODER_SIZES[size]["decoder_embed_dim"]),
            decoder_depth=m.get("DECODER_DEPTH", 4),
            decoder_num_heads=m.get("DECODER_NUM_HEADS", DECODER_SIZES[size]["decoder_num_heads"]),
            mask_type=m.get("MASK_TYPE", "tube"),
            mask_ratio=m.get("MASK_RATIO", 0.9),
            norm_pix_loss=m.get("NORM_PIX_LOSS", True),
            pixel_mean=cfg.MODEL.PIXEL_MEAN,
            pixel_std=cfg.MODEL.PIXEL_STD,
        )

    @property
    def device(self) -> torch.device:
        return self.mask_token.device

    def no_weight_decay(self) -> set:
        return {"mask_token"} | {f"encoder.{n}" for n in self.encoder.no_weight_decay()}

    @property
    def mask_type(self) -> str:
        return self.mask_sampler.kind

    @mask_type.setter
    def mask_type(self, kind: str) -> None:
        self.mask_sampler.kind = kind

    @property
    def mask_ratio(self) -> float:
        return self.mask_sampler.mask_ratio

    @mask_ratio.setter
    def mask_ratio(self, ratio: float) -> None:
        self.mask_sampler.mask_ratio = ratio

    @property
    def mask_generator(self) -> Optional[torch.Generator]:
        """``None``: masks come from the global torch RNG (seeded per worker by detectron2)."""
        return self.mask_sampler.generator

    @mask_generator.setter
    def mask_generator(self, generator: Optional[torch.Generator]) -> None:
        self.mask_sampler.generator = generator

    def set_mask_seed(self, seed: int) -> None:
        """Make mask sampling reproducible (a CPU generator owned by the model)."""
        self.mask_sampler.seed(seed)

    def token_grid(self, clips: torch.Tensor) -> Tuple[int, int, int]:
        _, _, t, h, w = clips.shape
        return (t // self.tubelet_size, h // self.patch_size, w // self.patch_size)

    def sample_masks(
        self, batch_size: int, grid: Sequence[int], generator: Optional[torch.Generator] = None
    ) -> torch.Tensor:
        """Per-sample masks ``[B, N]`` (True = masked) for a token grid (from ``generator`` when given)."""
        return self.mask_sampler(batch_size, grid, device=self.device, generator=generator)

    def targets(self, clips01: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Per-cube regression targets ``[B, N, tubelet*patch*patch*3]`` from [0, 1] pixels; with ``mask`` only
        the masked cubes'."""
        return cube_targets(clips01, self.tubelet_size, self.patch_size, self.norm_pix_loss, mask)

    def decoder_pos(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """The decoder's fixed sine table ``[n, D]`` on ``like``'s device and dtype, built once per size."""
        key = (n, like.device, like.dtype)
        if self._pos_cache is None or self._pos_cache[0] != key:
            self._pos_cache = (key, get_sinusoid_table(n, self.decoder_embed_dim).to(like))
        return self._pos_cache[1]

    def predict(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Normalised input ``[B, 3, T, H, W]`` + mask ``[B, N]`` -> predictions ``[B, N_mask, D]``."""
        visible = self.encoder_to_decoder(self.encoder.forward_tokens(x, mask))
        b = visible.shape[0]
        # Tokens stay in grid order within each group; the positions are gathered to match them.
        pos = self.decoder_pos(mask.shape[1], visible)[None].expand(b, -1, -1)
        pos_vis = select_tokens(pos, ~mask)
        pos_mask = select_tokens(pos, mask)
        full = torch.cat([visible + pos_vis, self.mask_token + pos_mask], dim=1)
        return self.decoder(full, pos_mask.shape[1])

    def preprocess(self, batched_inputs: List[Dict]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Stack ``"clip"`` uint8 tensors -> (normalised float clips, [0, 1] float clips)."""
        clips = []
        for i, d in enumerate(batched_inputs):
            clip = d["clip"]
            if clip.dim() != 4 or clip.shape[0] != 3:
                raise ValueError(f"input {i}: 'clip' must be [3, T, H, W], got {list(clip.shape)}")
            clips.append(clip)
        raw = torch.stack(clips).to(self.device, non_blocking=True).float()
        return (raw - self.pixel_mean) / self.pixel_std, raw / 255.0

    def forward(self, batched_inputs: List[Dict], mask: Optional[torch.Tensor] = None):
        """See class docstring; ``mask`` (bool [B, N]) overrides the sampled masks (tests, visualisation)."""
        x, x01 = self.preprocess(batched_inputs)
        grid = self.token_grid(x)
        if mask is None:
            mask = self.sample_masks(x.shape[0], grid)
        mask = mask.to(self.device)
        pred = self.predict(x, mask)
        if pred.shape[1] == 0:
            # Nothing is masked (mask_ratio 0): no reconstruction target; keep the graph connected.
            if self.training:
                return {"loss_mae": pred.sum() * 0.0}
            per_sample = pred.new_zeros(len(pred))
        else:
            target = self.targets(x01, mask)
            if self.training:
                return {"loss_mae": F.mse_loss(pred, target)}
            per_sample = ((pred - target) ** 2).flatten(1).mean(1)
        recon = self.to_pixels(x01, mask, pred, grid)
        return [
            {"loss_mae": per_sample[i], "mask": mask[i], "reconstruction": recon[i]} for i in range(len(batched_inputs))
        ]

    def to_pixels(
        self, clips01: torch.Tensor, mask: torch.Tensor, pred: torch.Tensor, grid: Sequence[int]
    ) -> torch.Tensor:
        """:func:`~.mae_reconstruction.paste_predictions` with this model's settings."""
        return paste_predictions(clips01, mask, pred, grid, self.tubelet_size, self.patch_size, self.norm_pix_loss)

    def reconstruct(
        self, clip_batch: torch.Tensor, mask: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:func:`~.mae_reconstruction.reconstruct_clips` with this model."""
        return reconstruct_clips(self, clip_batch, mask)


def build_videomae(size: str, *, encoder_kwargs: Optional[dict] = None, **kwargs) -> VideoMAE:
    """VideoMAE with the official encoder/decoder pairing for ``size``; ``encoder_kwargs`` go to :func:`build_vit`,
    ``kwargs`` override :class:`VideoMAE` arguments."""
    if size not in VIT_SIZES:
        raise ValueError(f"unknown ViT size {size!r}; choose from {sorted(VIT_SIZES)}")
    args = dict(
        DECODER_SIZES[size],
        pixel_mean=IMAGENET_PIXEL_MEAN,
        pixel_std=IMAGENET_PIXEL_STD,
    )
    args.update(kwargs)
    if "encoder" not in args:
        args["encoder"] = build_vit(size, **(encoder_kwargs or {}))
    return VideoMAE(**args)
