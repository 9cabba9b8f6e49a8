"""Video Vision Transformer (VideoMAE encoder) as a detectron2 backbone; one model in one file, as hiera.py.

Follows the official MCG-NJU VideoMAE ``modeling_finetune.py`` closely so that checkpoints map by name:
cube embedding ``patch_embed.proj`` (Conv3d, tubelet x patch x patch), pre-norm blocks
``blocks.N.{norm1,attn.{qkv,q_bias,v_bias,proj},norm2,mlp.{fc1,fc2},gamma_1,gamma_2}``, a final ``norm``
and, for classification-style mean pooling, an optional ``fc_norm``.

Two uses share one module:

* detection: ``forward(x)`` -> ``{"last": [B, C, T/tubelet, H/p, W/p]}``;
* MAE pretraining: ``forward_tokens(x, mask)`` -> visible tokens ``[B, N_vis, C]`` (``mask`` marks tokens
  to DROP, as in the official code and HF ``bool_masked_pos``).
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from detectron2.config import CfgNode, configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from torch import nn
from torchvision.ops import StochasticDepth

from .token_dropout import build_token_dropout, received_attention

__all__ = [
    "VIT_SIZES",
    "Attention",
    "Block",
    "PatchEmbed",
    "VideoViT",
    "build_vit",
    "get_sinusoid_table",
    "select_cubes",
    "select_tokens",
    "set_attention_impl",
]

# (embed_dim, depth, num_heads) of the standard sizes; "tiny" exists for fast tests only.
VIT_SIZES: Dict[str, Dict[str, int]] = {
    "tiny": dict(embed_dim=64, depth=2, num_heads=2),
    "small": dict(embed_dim=384, depth=12, num_heads=6),
    "base": dict(embed_dim=768, depth=12, num_heads=12),
    "large": dict(embed_dim=1024, depth=24, num_heads=16),
    "huge": dict(embed_dim=1280, depth=32, num_heads=16),
}

LN_EPS = 1e-6  # the official VideoMAE uses partial(nn.LayerNorm, eps=1e-6) everywhere


def get_sinusoid_table(n_position: int, dim: int) -> torch.Tensor:
    """The official 1-D sine/cosine table over the flattened (t, h, w) token index.

    Entry ``[pos, j] = sin/cos(pos / 10000 ** (2 * (j // 2) / dim))`` (sin for even ``j``, cos for odd).
    Computed in float64 (as the official numpy code) and returned as float32 ``[n_position, dim]``.
    """
    pos = torch.arange(n_position, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)
    angles = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.empty_like(angles)
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table.float()


class PatchEmbed(nn.Module):
    """Cube embedding: non-overlapping ``tubelet x patch x patch`` Conv3d, flattened to tokens."""

    def __init__(self, patch_size: int = 16, tubelet_size: int = 2, in_chans: int = 3, embed_dim: int = 768):
        super().__init__()
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)

    def grid(self, x: torch.Tensor) -> Tuple[int, int, int]:
        """Token grid (T', H', W') of a [B, C, T, H, W] input, which must divide into cubes."""
        _, _, t, h, w = x.shape
        ts, p = self.tubelet_size, self.patch_size
        if t % ts or h % p or w % p:
            raise ValueError(f"VideoViT input [T={t}, H={h}, W={w}] must be divisible by tubelet {ts} and patch {p}")
        return t // ts, h // p, w // p

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int, int]]:
        """[B, C, T, H, W] -> (tokens [B, T'*H'*W', D] in (t, h, w) order, grid (T', H', W'))."""
        self.grid(x)
        x = self.proj(x)
        grid = tuple(x.shape[2:])
        return x.flatten(2).transpose(1, 2), grid  # type: ignore[return-value]


class Attention(nn.Module):
    """Joint space-time multi-head self-attention.

    Bias layout as the official code: one ``qkv`` Linear without bias plus separate ``q_bias`` and
    ``v_bias`` (keys get no bias: it would cancel in the softmax anyway).
    ``use_sdpa`` selects ``F.scaled_dot_product_attention`` (default) or an explicit softmax path kept as a
    numerical reference and for benchmarking.
    """

    def __init__(
        self, dim: int, num_heads: int = 8, qkv_bias: bool = True, attn_drop: float = 0.0, proj_drop: float = 0.0
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = None
            self.v_bias = None
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.use_sdpa = True

    def forward(self, x: torch.Tensor, query_weights: Optional[torch.Tensor] = None):
        """``x`` [B, N, C] -> [B, N, C]; with ``query_weights`` [N] also each token's received attention
        ``[B, N]`` (weighted sum over queries, mean over heads), the ranking of token dropout."""
        b, n, c = x.shape
        bias = None
        if self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, N, head_dim]
        drop = self.attn_drop if self.training else 0.0
        if self.use_sdpa:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            attn = F.dropout(attn.softmax(dim=-1), p=drop, training=self.training)
            x = attn @ v
        x = self.proj_drop(self.proj(x.transpose(1, 2).reshape(b, n, c)))
        return x if query_weights is None else (x, received_attention(q, k, query_weights, self.scale))


class Mlp(nn.Module):
    """Two-layer GELU MLP with the official names ``fc1``/``fc2``."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.act(self.fc1(x))))


class Block(nn.Module):
    """Pre-norm transformer block with stochastic depth and optional layer scale (``gamma_1/2``)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        init_values: float = 0.0,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        # "row" mode drops the whole residual branch per sample, as timm's DropPath.
        self.drop_path = StochasticDepth(drop_path, mode="row") if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)
        if init_values > 0:
            self.gamma_1 = nn.Parameter(init_values * torch.ones(dim))
            self.gamma_2 = nn.Parameter(init_values * torch.ones(dim))
        else:
            self.gamma_1 = None
            self.gamma_2 = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp_residual(self.attn_residual(x))

    def attn_residual(self, x: torch.Tensor, query_weights: Optional[torch.Tensor] = None):
        """``x + attn(norm1(x))``; with ``query_weights`` also the scores of :meth:`Attention.forward`."""
        out = self.attn(self.norm1(x), query_weights)
        y, scores = out if query_weights is not None else (out, None)
        x = x + self.drop_path(y if self.gamma_1 is None else self.gamma_1 * y)
        return x if query_weights is None else (x, scores)

    def mlp_residual(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(self.norm2(x))
        return x + self.drop_path(y if self.gamma_2 is None else self.gamma_2 * y)


def set_attention_impl(module: nn.Module, impl: str) -> None:
    """Switch every :class:`Attention` inside ``module`` to ``"sdpa"`` or ``"math"`` (explicit softmax)."""
    if impl not in ("sdpa", "math"):
        raise ValueError(f"attention impl must be 'sdpa' or 'math', got {impl!r}")
    for m in module.modules():
        if isinstance(m, Attention):
            m.use_sdpa = impl == "sdpa"


def init_vit_weights(m: nn.Module) -> None:
    """MAE-style init: xavier-uniform Linear weights, zero biases, unit LayerNorm."""
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


@BACKBONE_REGISTRY.register()
class VideoViT(Backbone):
    """Video ViT with joint space-time attention over ``tubelet x patch x patch`` cubes.

    Build directly (keyword arguments below, LazyConfig-friendly), with :func:`build_vit`, or from a yacs
    config via ``BACKBONE_REGISTRY.get("VideoViT")(cfg, input_shape)`` (keys: :mod:`.yacs_config`).
    """

    @configurable
    def __init__(
        self,
        img_size: int = 224,
        num_frames: int = 16,
        tubelet_size: int = 2,
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        init_values: float = 0.0,
        use_learnable_pos_emb: bool = False,
        use_checkpoint: bool = False,
        out_feature: str = "last",
        use_mean_pooling: bool = False,
        token_keep_rate: float = 1.0,
        token_drop_blocks: Optional[Sequence[int]] = None,
        token_keyframe_weight: float = 1.0,
    ):
        """
        Args:
            img_size, num_frames: the input size the position table is built for (others are resized to).
            tubelet_size, patch_size: cube size in frames and pixels (the feature stride).
            embed_dim, depth, num_heads, mlp_ratio, qkv_bias: transformer shape (q/v bias as official).
            drop_rate, attn_drop_rate, drop_path_rate: dropout, attention dropout, max stochastic depth
                (linearly increasing over blocks).
            init_values: layer-scale init; 0 disables layer scale.
            use_learnable_pos_emb: learnable position table (trunc-normal init) instead of the fixed
                sinusoidal one.
            use_checkpoint: activation checkpointing of every block during training.
            out_feature: name of the single output feature map.
            use_mean_pooling: add ``fc_norm`` used by :meth:`forward_features` (official fine-tune head).
            token_keep_rate, token_drop_blocks, token_keyframe_weight: keyframe-centric token dropout of
                :meth:`forward` (EVAD, :mod:`.token_dropout`); keep rate 1: none; blocks ``None``: EVAD's.
        """
        super().__init__()
        self.img_size = img_size
        self.num_frames = num_frames
        self.tubelet_size = tubelet_size
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.num_layers = depth
        self.use_checkpoint = use_checkpoint
        self.out_feature = out_feature
        self.grid_size = (num_frames // tubelet_size, img_size // patch_size, img_size // patch_size)
        num_patches = math.prod(self.grid_size)

        self.patch_embed = PatchEmbed(patch_size, tubelet_size, in_chans, embed_dim)
        if use_learnable_pos_emb:
            self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, embed_dim))
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        else:
            # Fixed, so not part of the state dict (the official checkpoints do not carry it either).
            self.register_buffer("pos_embed", get_sinusoid_table(num_patches, embed_dim)[None], persistent=False)
        self.pos_drop = nn.Dropout(drop_rate)

        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linear, as official
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, dpr[i], init_values)
            for i in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=LN_EPS)
        self.fc_norm = nn.LayerNorm(embed_dim, eps=LN_EPS) if use_mean_pooling else None
        self.token_dropout = build_token_dropout(token_keep_rate, token_drop_blocks, depth, token_keyframe_weight)

        self.apply(init_vit_weights)

    @classmethod
    def from_config(cls, cfg: CfgNode, input_shape: Optional[ShapeSpec] = None) -> dict:
        v = cfg.MODEL.VIT
        if v.SIZE not in VIT_SIZES:
            raise ValueError(f"cfg.MODEL.VIT.SIZE: unknown ViT size {v.SIZE!r}; choose from {sorted(VIT_SIZES)}")
        kw = dict(VIT_SIZES[v.SIZE])
        for key, name in (("EMBED_DIM", "embed_dim"), ("DEPTH", "depth"), ("NUM_HEADS", "num_heads")):
            if v.get(key, 0):
                kw[name] = v.get(key)
        kw.update(
            img_size=v.IMG_SIZE,
            num_frames=v.NUM_FRAMES,
            tubelet_size=v.TUBELET_SIZE,
            patch_size=v.PATCH_SIZE,
            drop_path_rate=v.DROP_PATH_RATE,
            init_values=v.INIT_VALUES,
            use_learnable_pos_emb=v.USE_LEARNABLE_POS_EMB,
            use_checkpoint=v.USE_CHECKPOINT,
            use_mean_pooling=v.USE_MEAN_POOLING,
        )
        # Keys added after the first release: a config made by an older add_vit_config lacks them.
        for key, name in (
            ("MLP_RATIO", "mlp_ratio"),
            ("QKV_BIAS", "qkv_bias"),
            ("DROP_RATE", "drop_rate"),
            ("ATTN_DROP_RATE", "attn_drop_rate"),
            ("OUT_FEATURE", "out_feature"),
            ("TOKEN_KEEP_RATE", "token_keep_rate"),
            ("TOKEN_DROP_BLOCKS", "token_drop_blocks"),
            ("TOKEN_KEYFRAME_WEIGHT", "token_keyframe_weight"),
        ):
            if key in v:
                kw[name] = v.get(key)
        if input_shape is not None and input_shape.channels is not None:
            kw["in_chans"] = input_shape.channels
        return kw

    # ------------------------------------------------------------------ position table
    @property
    def learnable_pos_embed(self) -> bool:
        return isinstance(self.pos_embed, nn.Parameter)

    def pos_embed_for(self, grid: Sequence[int]) -> torch.Tensor:
        """Position table ``[1, T'*H'*W', C]`` for a token grid, resized if it differs from the built one.

        Fixed and learnable tables are resized alike, as VMAD's ``interpolate_pos_embed_online``: the
        table of the built grid (e.g. 8x14x14 at 224) is read as ``T`` frames of ``H x W`` and each
        frame's slice is resized bicubically to the new ``H' x W'`` (e.g. 16x29 at 256x464). So a token
        keeps the code of its place in the frame, not of its flattened index.
        """
        grid = tuple(grid)
        if grid == self.grid_size:
            return self.pos_embed
        return resize_pos_embed(self.pos_embed, self.grid_size, grid)

    # ------------------------------------------------------------------ forward paths
    def embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int, int]]:
        """Cube-embed ``[B, 3, T, H, W]`` and add positions -> (tokens [B, N, C], grid)."""
        tokens, grid = self.patch_embed(x)
        pos = self.pos_embed_for(grid)
        if not self.learnable_pos_embed:
            pos = pos.detach()
        return self.pos_drop(tokens + pos.to(tokens.dtype)), grid

    def encode(self, tokens: torch.Tensor, apply_norm: bool = True) -> torch.Tensor:
        """Run the blocks (checkpointed in training if enabled) and optionally the final norm."""
        for blk in self.blocks:
            tokens = self.run_block(blk, tokens)
        return self.norm(tokens) if apply_norm else tokens

    def run_block(self, fn, *args):
        """``fn(*args)``, activation-checkpointed in training if enabled."""
        if self.use_checkpoint and self.training and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False)
        return fn(*args)

    def forward_tokens(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Encode ``x`` [B, 3, T, H, W]; with ``mask`` (bool [B, N], True = drop) only visible tokens.

        Returns normalised tokens ``[B, N, C]``, or ``[B, N_vis, C]`` in original token order with a mask.
        Every sample must keep the same number of tokens (as the official MAE encoder).
        """
        if mask is None or not bool(mask.any()):
            return self.encode(self.embed(x)[0])
        return self.encode(self.embed_visible(x, ~mask))

    def embed_visible(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """:meth:`embed` of the kept tokens only (``keep`` bool [B, N]) -> ``[B, K, C]``; the cube embedding is
        a matmul over the gathered cubes, so dropped cubes cost nothing."""
        pe = self.patch_embed
        grid = pe.grid(x)
        cubes = select_cubes(x, keep, pe.tubelet_size, pe.patch_size, channels_last=False)
        tokens = F.linear(cubes, pe.proj.weight.flatten(1), pe.proj.bias)
        pos = self.pos_embed_for(grid)
        if not self.learnable_pos_embed:
            pos = pos.detach()
        pos = select_tokens(pos.expand(len(keep), -1, -1), keep)
        return self.pos_drop(tokens + pos.to(tokens.dtype))

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``x`` [B, 3, T, H, W] normalised -> ``{out_feature: [B, C, T', H', W']}`` after the final norm."""
        tokens, grid = self.embed(x)
        if self.token_dropout is not None:
            tokens = self.token_dropout.encode(self, tokens, grid)
        else:
            tokens = self.encode(tokens)
        b, _, c = tokens.shape
        fmap = tokens.transpose(1, 2).reshape(b, c, *grid)
        return {self.out_feature: fmap}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Classification-style pooled feature ``[B, C]``: ``fc_norm(mean(tokens))`` if mean pooling is
        enabled (official fine-tune head), else the mean of the normalised tokens."""
        tokens, _ = self.embed(x)
        if self.fc_norm is not None:
            return self.fc_norm(self.encode(tokens, apply_norm=False).mean(1))
        return self.encode(tokens).mean(1)

    # ------------------------------------------------------------------ detectron2 / engine hooks
    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {self.out_feature: ShapeSpec(channels=self.embed_dim, stride=self.patch_size)}

    @property
    def size_divisibility(self) -> int:
        return self.patch_size

    def no_weight_decay(self) -> set:
        """Names exempt from weight decay, as the official ``no_weight_decay``."""
        return {"pos_embed", "cls_token"}

    def get_layer_id(self, param_name: str) -> int:
        """Layer index for layer-wise lr decay: embeddings 0, ``blocks.i`` i + 1, the rest depth + 1.

        Accepts names with or without a prefix (e.g. ``backbone.blocks.3.mlp.fc1.weight`` -> 4).
        """
        parts = param_name.split(".")
        if "decoder" in parts or parts[0] in ("mask_token", "encoder_to_decoder"):
            return self.num_layers + 1  # an MAE decoder's blocks are not encoder layers
        for i, part in enumerate(parts):
            if part in ("pos_embed", "patch_embed", "cls_token"):
                return 0
            if part == "blocks" and i + 1 < len(parts) and parts[i + 1].isdigit():
                return int(parts[i + 1]) + 1
        return self.num_layers + 1


def _check_keep(keep: torch.Tensor, shape: Sequence[int]) -> None:
    if keep.dtype != torch.bool or keep.shape != tuple(shape):
        raise ValueError(f"mask must be bool {list(shape)}, got {keep.dtype} {list(keep.shape)}")
    counts = keep.sum(1)
    if bool((counts != counts[0]).any()):
        raise ValueError(f"every sample must keep the same number of tokens, got counts {counts.tolist()}")


def select_tokens(tokens: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Gather ``tokens[b, keep[b]]`` for every sample -> ``[B, K, C]``; ``keep`` must count K per row."""
    _check_keep(keep, tokens.shape[:2])
    b, _, c = tokens.shape
    return tokens[keep].reshape(b, -1, c)


def select_cubes(
    video: torch.Tensor, keep: torch.Tensor, tubelet_size: int, patch_size: int, channels_last: bool = True
) -> torch.Tensor:
    """The cubes of the kept tokens of ``video`` [B, C, T, H, W] -> ``[B, K, P, C]`` (``P = tubelet*patch*patch``),
    or ``[B, K, C * P]`` in Conv3d weight order with ``channels_last=False``.

    Gathered straight from the video: the cubes of dropped tokens are never copied.
    """
    b, c, t, h, w = video.shape
    ts, p = tubelet_size, patch_size
    gh, gw = h // p, w // p
    _check_keep(keep, (b, (t // ts) * gh * gw))
    x = video.reshape(b, c, t // ts, ts, gh, p, gw, p)
    order = (0, 2, 4, 6, 3, 5, 7, 1) if channels_last else (0, 2, 4, 6, 1, 3, 5, 7)
    bi, ni = keep.nonzero(as_tuple=True)  # row-major: grid order within each sample
    cubes = x.permute(order)[bi, ni // (gh * gw), (ni // gw) % gh, ni % gw]
    return cubes.reshape(b, -1, ts * p * p, c) if channels_last else cubes.reshape(b, -1, c * ts * p * p)


def resize_pos_embed(pos_embed: torch.Tensor, src_grid: Sequence[int], dst_grid: Sequence[int]) -> torch.Tensor:
    """Resize a ``[1, T*H*W, C]`` position table from grid ``src_grid`` to ``dst_grid`` (T, H, W).

    Space: every frame's ``H x W`` slice bicubically (``align_corners=False``), exactly as VMAD's
    ``interpolate_pos_embed_online`` and the official fine-tuning checkpoint interpolation. Time (VMAD
    never changes it; our extension): linear over the ``T`` slices first, when ``T`` differs.
    """
    t, h, w = src_grid
    t2, h2, w2 = dst_grid
    c = pos_embed.shape[-1]
    if pos_embed.shape[1] != t * h * w:
        raise ValueError(f"position table has {pos_embed.shape[1]} entries, grid {tuple(src_grid)} needs {t * h * w}")
    table = pos_embed.reshape(t, h * w, c).float()
    if t2 != t:
        table = F.interpolate(table.permute(1, 2, 0), size=t2, mode="linear", align_corners=False).permute(2, 0, 1)
    if (h2, w2) != (h, w):
        table = table.reshape(t2, h, w, c).permute(0, 3, 1, 2)
        table = F.interpolate(table, size=(h2, w2), mode="bicubic", align_corners=False)
        table = table.permute(0, 2, 3, 1)
    return table.reshape(1, t2 * h2 * w2, c).to(pos_embed.dtype)


def build_vit(size: str, **kwargs) -> VideoViT:
    """Build a :class:`VideoViT` of a named size (tiny/small/base/large/huge); ``kwargs`` override."""
    if size not in VIT_SIZES:
        raise ValueError(f"unknown ViT size {size!r}; choose from {sorted(VIT_SIZES)}")
    return VideoViT(**{**VIT_SIZES[size], **kwargs})
