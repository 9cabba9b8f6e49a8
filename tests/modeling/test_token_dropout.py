"""Keyframe-centric token dropout (EVAD): keep rate 1 is the plain detector; below 1 the keyframe stays."""

import math
import pathlib

import pytest
import torch

from vmae_det.modeling import token_dropout as td
from vmae_det.modeling.action_detector import AVAActionDetector
from vmae_det.modeling.vit import build_vit

ROOT = next(p for p in pathlib.Path(__file__).resolve().parents if (p / "pyproject.toml").exists())
GRID = (4, 4, 6)  # 8 frames, tubelet 2, 32x48 at patch 8
N, N_KEY = 96, 24


def detector(seed=0, **vit_kw) -> AVAActionDetector:
    torch.manual_seed(seed)
    vit = build_vit("tiny", depth=4, img_size=32, num_frames=8, patch_size=8, init_values=0.1, **vit_kw)
    model = AVAActionDetector(backbone=vit, num_classes=5)
    with torch.no_grad():  # every weight and bias non-trivial
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def inputs(n_boxes=(2, 1)):
    g = torch.Generator().manual_seed(1)
    return [
        {
            "clip": torch.randint(0, 256, (3, 8, 32, 48), dtype=torch.uint8, generator=g),
            "boxes": torch.tensor([[2.0, 3.0, 20.0, 30.0], [10.0, 0.0, 47.0, 31.0]])[:n],
            "labels": (torch.rand(n, 5, generator=g) > 0.5).float(),
            "box_scores": torch.linspace(0.5, 1.0, n),
        }
        for n in n_boxes
    ]


def plain_backbone(vit, x):
    """The detector's ViT without token dropout, spelled out block by block."""
    tokens, grid = vit.embed(x)
    for blk in vit.blocks:
        tokens = tokens + blk.drop_path(blk.gamma_1 * blk.attn(blk.norm1(tokens)))
        tokens = tokens + blk.drop_path(blk.gamma_2 * blk.mlp(blk.norm2(tokens)))
    tokens = vit.norm(tokens)
    return tokens.transpose(1, 2).reshape(x.shape[0], -1, *grid)


def test_keep_rate_one_is_the_plain_detector_exactly():
    plain, kept = detector(), detector(token_keep_rate=1.0, token_drop_blocks=(1, 3))
    kept.load_state_dict(plain.state_dict())
    assert kept.backbone.token_dropout is None
    clip = plain._batch_clips(inputs())
    x = (clip - plain.pixel_mean) / plain.pixel_std
    with torch.no_grad():
        assert torch.equal(kept.backbone(x)["last"], plain_backbone(plain.backbone, x))
        for a, b in zip(plain.eval()(inputs()), kept.eval()(inputs())):
            assert torch.equal(a["scores"], b["scores"]) and torch.equal(a["boxes"], b["boxes"])
    plain.train(), kept.train()
    torch.manual_seed(3)
    loss_a = plain(inputs())["loss_action"]
    torch.manual_seed(3)
    loss_b = kept(inputs())["loss_action"]
    assert torch.equal(loss_a, loss_b)


def record_tokens(model, monkeypatch):
    """Per forward: the tokens each block's attention and MLP see, and the kept positions at the end."""
    seen = {"attn": [], "mlp": [], "pos": []}
    for blk in model.backbone.blocks:
        blk.attn.register_forward_pre_hook(lambda m, a: seen["attn"].append(a[0].shape[1]))
        blk.mlp.register_forward_pre_hook(lambda m, a: seen["mlp"].append(a[0].shape[1]))
    fill = td.fill_dropped

    def spy(x, pos, grid):
        seen["pos"].append(pos)
        return fill(x, pos, grid)

    monkeypatch.setattr(td, "fill_dropped", spy)
    return seen


def test_keep_rate_07_keeps_the_keyframe_and_the_expected_counts(monkeypatch):
    model = detector(token_keep_rate=0.7, token_drop_blocks=(1, 3)).eval()
    seen = record_tokens(model, monkeypatch)
    with torch.no_grad():
        model(inputs())
    after_1 = math.ceil(0.7 * N)  # 68
    after_3 = math.ceil(0.7 * after_1)  # 48
    assert seen["attn"] == [N, N, after_1, after_1]
    assert seen["mlp"] == [N, after_1, after_1, after_3]
    assert model.backbone.token_dropout.token_counts(GRID, 4) == seen["mlp"]
    (pos,) = seen["pos"]
    start, end = td.keyframe_range(GRID)
    assert (start, end) == (2 * 24, 3 * 24)
    assert pos.shape == (2, after_3)
    for row in pos:
        assert set(range(start, end)) <= set(row.tolist())  # every keyframe token kept
        assert len(set(row.tolist())) == after_3


def test_keep_rate_07_trains_and_is_deterministic_in_eval():
    model = detector(token_keep_rate=0.7, token_drop_blocks=(1, 3)).train()
    loss = model(inputs())["loss_action"]
    loss.backward()
    assert torch.isfinite(loss)
    for i, blk in enumerate(model.backbone.blocks):
        for name in ("attn.qkv.weight", "mlp.fc2.weight"):
            grad = blk.get_parameter(name).grad
            assert grad is not None and grad.abs().sum() > 0, f"block {i} {name}"
    model.eval()
    with torch.no_grad():
        a, b = model(inputs()), model(inputs())
    for ra, rb in zip(a, b):
        assert torch.equal(ra["scores"], rb["scores"])
    plain = detector().eval()
    with torch.no_grad():
        assert not torch.equal(plain(inputs())[0]["scores"], a[0]["scores"])


def test_activation_checkpointing_gives_the_same_gradients():
    grads = []
    for use_checkpoint in (False, True):
        model = detector(token_keep_rate=0.7, token_drop_blocks=(1, 3), use_checkpoint=use_checkpoint).train()
        model(inputs())["loss_action"].backward()
        grads.append(model.backbone.blocks[0].attn.qkv.weight.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_dropped_positions_make_the_temporal_pool_the_kept_tokens_pool():
    x = torch.randn(1, 5, 3)
    pos = torch.tensor([[0, 3, 4, 2, 5]])  # grid (3, 1, 2): position 1 (t 0, w 1) dropped
    full = td.fill_dropped(x, pos, (3, 1, 2)).view(1, 3, 2, 3)
    kept_w1 = x[0, [1, 4]]  # positions 3 and 5 are w=1 at t=1, 2
    torch.testing.assert_close(full[0, :, 1].mean(0), kept_w1.mean(0))
    torch.testing.assert_close(full[0, 0, 1], kept_w1.mean(0))
    torch.testing.assert_close(full[0, 0, 0], x[0, 0])


def test_ranking_is_the_weighted_attention_each_token_receives():
    torch.manual_seed(0)
    blk = build_vit("tiny", depth=1).blocks[0].eval()
    with torch.no_grad():
        blk.attn.q_bias.normal_(), blk.attn.v_bias.normal_()
    x = torch.randn(2, 150, 64)  # more queries than one chunk
    bias = torch.cat((blk.attn.q_bias, 0 * blk.attn.v_bias, blk.attn.v_bias))
    qkv = torch.nn.functional.linear(blk.norm1(x), blk.attn.qkv.weight, bias)
    q, k, _ = qkv.reshape(2, 150, 3, 2, 32).permute(2, 0, 3, 1, 4)
    probs = ((q * blk.attn.scale) @ k.transpose(-2, -1)).softmax(-1)  # [B, heads, queries, keys]
    for key_weight in (1.0, 4.0, float("inf")):  # EVAD's weights; inf: the keyframe's 40 queries alone
        w = torch.ones(150) if key_weight != float("inf") else torch.zeros(150)
        w[:40] = 1.0 if key_weight == float("inf") else key_weight
        _, scores = blk.attn_residual(x, query_weights=w)
        torch.testing.assert_close(scores, (w[:, None] * probs).sum(2).mean(1), rtol=1e-5, atol=1e-6)
    model = detector(token_keep_rate=0.7, token_drop_blocks=(1, 3), token_keyframe_weight=float("inf")).eval()
    with torch.no_grad():
        assert model(inputs())[0]["scores"].shape == (2, 5)


def test_evad_layout_and_option_checks():
    assert td.evad_drop_blocks(12) == (3, 6, 9)
    assert td.evad_drop_blocks(24) == (6, 12, 18)
    assert td.evad_drop_blocks(2) == (1,)
    assert build_vit("small", token_keep_rate=0.7).token_dropout.drop_blocks == (3, 6, 9)
    assert td.num_kept_tokens(10, 8, 0.5) == 8  # never below the keyframe's
    with pytest.raises(ValueError, match="token_keep_rate"):
        build_vit("tiny", token_keep_rate=0.0)
    with pytest.raises(ValueError, match="token_keep_rate"):
        build_vit("tiny", token_keep_rate=1.5)
    with pytest.raises(ValueError, match="out of range"):
        build_vit("tiny", token_keep_rate=0.7, token_drop_blocks=(2,))
    with pytest.raises(ValueError, match="at least one block"):
        build_vit("tiny", token_keep_rate=0.7, token_drop_blocks=())


def test_config_options():
    from detectron2.config import LazyConfig, get_cfg, instantiate
    from detectron2.modeling import build_backbone

    from vmae_det.modeling.yacs_config import add_vit_config

    cfg = LazyConfig.load(str(ROOT / "configs/ava/tiny.py"))
    assert cfg.model.backbone.token_keep_rate == 1.0
    cfg = LazyConfig.apply_overrides(cfg, ["model.backbone.token_keep_rate=0.7"])
    assert instantiate(cfg.model).backbone.token_dropout.drop_blocks == (1,)
    yacs = get_cfg()
    add_vit_config(yacs)
    yacs.MODEL.BACKBONE.NAME, yacs.MODEL.VIT.SIZE = "VideoViT", "tiny"
    assert build_backbone(yacs).token_dropout is None
    yacs.merge_from_list(["MODEL.VIT.TOKEN_KEEP_RATE", 0.5, "MODEL.VIT.TOKEN_DROP_BLOCKS", [0]])
    dropout = build_backbone(yacs).token_dropout
    assert (dropout.keep_rate, dropout.drop_blocks, dropout.keyframe_weight) == (0.5, (0,), 1.0)
