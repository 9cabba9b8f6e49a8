"""Keyframe-centric token dropout for the detector's ViT (EVAD, Chen et al., ICCV 2023).

The rule of MCG-NJU/EVAD (``vit_model.py`` ``KTPAttention``/``KTPBlock``, ``video_model_builder.py``
``EVAD.forward``): the tokens of the keyframe (the centre tubelet slice ``T' // 2``) are always kept; in each
drop block, after the attention residual and before the MLP, only the ``ceil(keep_rate * N) - N_key``
non-keyframe tokens that receive the most attention (averaged over heads and over all queries, keyframe queries
weighted ``keyframe_weight``) stay, and later blocks see only those. EVAD's recipes drop at blocks 3, 6, 9 of
ViT-B (6, 12, 18 of ViT-L) with keep rate 0.7 (0.6 with keyframe weight 4 in its ``_EW`` config).

The feature map for RoIAlign differs from EVAD's: a dropped position takes the mean of the kept tokens at its
(h, w) (the keyframe's always among them) instead of EVAD's learned mask token read by its decoder, so the
detector's temporal mean (or max) pool equals pooling over the kept tokens alone, with no new parameters.
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch

__all__ = [
    "KeyframeTokenDropout",
    "build_token_dropout",
    "evad_drop_blocks",
    "fill_dropped",
    "keyframe_range",
    "num_kept_tokens",
    "received_attention",
]

SCORE_CHUNK = 64  # queries per softmax chunk: the [B, heads, 64, N] block stays in cache


def evad_drop_blocks(depth: int) -> Tuple[int, ...]:
    """EVAD's layout: drop at each quarter of the blocks (3, 6, 9 of 12; 6, 12, 18 of 24; 1 of 2)."""
    return tuple(sorted({depth * k // 4 for k in (1, 2, 3)} - {0}))


def keyframe_range(grid: Sequence[int]) -> Tuple[int, int]:
    """``[start, end)`` of the keyframe's tokens in the flattened (t, h, w) order: the centre slice ``T' // 2``
    (frame ``T // 2`` of a clip centred on its keyframe, with any tubelet size)."""
    t, h, w = grid
    return (t // 2) * h * w, (t // 2 + 1) * h * w


def num_kept_tokens(n: int, n_key: int, keep_rate: float) -> int:
    """Tokens left after a drop block that sees ``n``, ``n_key`` of them the keyframe's (EVAD's count)."""
    return max(math.ceil(keep_rate * n), n_key)


class KeyframeTokenDropout:
    """Runs a :class:`~vmae_det.modeling.vit.VideoViT`'s blocks with keyframe-centric token dropout."""

    def __init__(self, keep_rate: float, drop_blocks: Sequence[int], keyframe_weight: float = 1.0):
        """
        Args:
            keep_rate: fraction of the tokens each drop block keeps, keyframe tokens included (0 < rate < 1).
            drop_blocks: indices of the blocks whose MLP and all later blocks see only the kept tokens.
            keyframe_weight: weight of the keyframe's queries in the attention ranking (EVAD's
                ``ENHANCED_WEIGHT``; 1: all queries alike; ``inf``: the keyframe's queries alone, which
                costs ``1/T'`` of the full attention map the other weights need).
        """
        self.keep_rate = keep_rate
        self.drop_blocks = tuple(sorted(set(drop_blocks)))
        self.keyframe_weight = keyframe_weight

    def token_counts(self, grid: Sequence[int], depth: int) -> List[int]:
        """Tokens entering each block's MLP for a token grid (the attention of a drop block sees the
        previous count)."""
        start, end = keyframe_range(grid)
        n, counts = math.prod(grid), []
        for i in range(depth):
            if i in self.drop_blocks:
                n = num_kept_tokens(n, end - start, self.keep_rate)
            counts.append(n)
        return counts

    def encode(self, vit, tokens: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
        """Blocks and final norm of ``vit`` over ``tokens`` [B, N, C] of ``grid`` -> [B, N, C] on the full
        grid again (dropped positions filled as the module docstring says)."""
        start, end = keyframe_range(grid)
        n = tokens.shape[1]
        ar = torch.arange(n, device=tokens.device)
        # Keyframe tokens first (as EVAD), so every drop block keeps the leading n_key.
        order = torch.cat([ar[start:end], ar[:start], ar[end:]])
        x = tokens[:, order]
        pos = order.expand(x.shape[0], -1)
        for i, blk in enumerate(vit.blocks):
            if i in self.drop_blocks:
                x, pos = vit.run_block(self._drop_block, blk, x, pos, end - start)
            else:
                x = vit.run_block(blk, x)
        return fill_dropped(vit.norm(x), pos, grid)

    def _drop_block(self, blk, x: torch.Tensor, pos: torch.Tensor, n_key: int) -> Tuple[torch.Tensor, torch.Tensor]:
        b, n, c = x.shape
        keep = num_kept_tokens(n, n_key, self.keep_rate) - n_key
        if keep >= n - n_key:
            return blk(x), pos
        if math.isinf(self.keyframe_weight):
            weights = x.new_zeros(n)
            weights[:n_key] = 1.0
        else:
            weights = x.new_ones(n)
            weights[:n_key] = self.keyframe_weight
        x, scores = blk.attn_residual(x, query_weights=weights)
        # Sorted so that the kept tokens stay in clip order (the ranking itself is order-free).
        idx = scores[:, n_key:].topk(keep, dim=1).indices.sort(dim=1).values + n_key
        idx = torch.cat([torch.arange(n_key, device=x.device).expand(b, -1), idx], 1)
        x = x.gather(1, idx[..., None].expand(-1, -1, c))
        return blk.mlp_residual(x), pos.gather(1, idx)


@torch.no_grad()
def received_attention(q: torch.Tensor, k: torch.Tensor, query_weights: torch.Tensor, scale: float) -> torch.Tensor:
    """Attention each key receives, ``sum_i w_i softmax(scale * q_i . k)`` averaged over heads -> [B, N].

    ``q``, ``k`` [B, heads, N, head_dim]; queries of weight 0 are skipped. Computed apart from the attention
    output (which keeps its SDPA kernel) in chunks of queries, so the full [N, N] map never exists.
    """
    rows = query_weights.nonzero().flatten()
    if len(rows) < len(query_weights):
        q, query_weights = q[:, :, rows], query_weights[rows]
    q, kt, w = q * scale, k.transpose(-2, -1).contiguous(), query_weights.to(q.dtype)
    total = q.new_zeros(*q.shape[:2], k.shape[2])
    for i in range(0, q.shape[2], SCORE_CHUNK):
        total += w[i : i + SCORE_CHUNK] @ (q[:, :, i : i + SCORE_CHUNK] @ kt).softmax(-1)
    return total.mean(1)


def fill_dropped(x: torch.Tensor, pos: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """Kept tokens ``x`` [B, K, C] at flattened positions ``pos`` [B, K] -> [B, T'*H'*W', C], each dropped
    position set to the mean of the kept tokens at its (h, w)."""
    b, _, c = x.shape
    t, h, w = grid
    full = x.new_zeros(b, t * h * w, c).scatter(1, pos[..., None].expand(-1, -1, c), x)
    kept = x.new_zeros(b, t * h * w).scatter(1, pos, 1.0)
    full, kept = full.view(b, t, h * w, c), kept.view(b, t, h * w, 1)
    mean = full.sum(1, keepdim=True) / kept.sum(1, keepdim=True)
    return torch.where(kept.bool(), full, mean).view(b, t * h * w, c)


def build_token_dropout(
    keep_rate: float, drop_blocks: Optional[Sequence[int]], depth: int, keyframe_weight: float = 1.0
) -> Optional[KeyframeTokenDropout]:
    """Check the options; ``None`` at keep rate 1 (the plain ViT). ``drop_blocks=None``: EVAD's layout."""
    if not 0.0 < keep_rate <= 1.0:
        raise ValueError(f"token_keep_rate must be in (0, 1], got {keep_rate}")
    if keyframe_weight <= 0:
        raise ValueError(f"token_keyframe_weight must be > 0, got {keyframe_weight}")
    blocks = evad_drop_blocks(depth) if drop_blocks is None else tuple(int(i) for i in drop_blocks)
    bad = [i for i in blocks if not 0 <= i < depth]
    if bad:
        raise ValueError(f"token_drop_blocks {bad} out of range for a ViT of depth {depth}")
    if keep_rate == 1.0:
        return None
    if not blocks:
        raise ValueError(f"token_keep_rate={keep_rate} needs at least one block in token_drop_blocks")
    return KeyframeTokenDropout(keep_rate, blocks, keyframe_weight)
