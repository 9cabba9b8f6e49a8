"""VideoViT backbone and masking generators."""

import math

import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY

from vmae_det.modeling import FrameMasking, RandomMasking, TubeMasking, VideoViT, build_masking, build_vit
from vmae_det.modeling.vit import VIT_SIZES, Attention, get_sinusoid_table, resize_pos_embed, set_attention_impl
from vmae_det.modeling.yacs_config import add_vit_config


def tiny(**kw) -> VideoViT:
    torch.manual_seed(0)
    return build_vit("tiny", img_size=32, num_frames=4, **kw).eval()


# ------------------------------------------------------------------------------------------ backbone
def test_feature_map_shape_and_output_shape():
    vit = tiny()
    out = vit(torch.randn(2, 3, 4, 32, 32))
    assert list(out) == ["last"] and out["last"].shape == (2, 64, 2, 2, 2)
    assert vit.output_shape() == {"last": ShapeSpec(channels=64, stride=16)}
    assert vit.num_layers == 2


def test_other_input_sizes_resize_position_table():
    vit = tiny()
    out = vit(torch.randn(1, 3, 8, 48, 64))["last"]
    assert out.shape == (1, 64, 4, 3, 4)
    # Fixed table resized as VMAD's interpolate_pos_embed_online: time linearly (4 -> 4 here: kept),
    # each frame's 2x2 slice bicubically to 3x4.
    table = vit.pos_embed.reshape(2, 2, 2, 64).permute(0, 3, 1, 2)
    frame = torch.nn.functional.interpolate(table, size=(3, 4), mode="bicubic", align_corners=False)
    assert torch.allclose(vit.pos_embed_for((2, 3, 4)), frame.permute(0, 2, 3, 1).reshape(1, 24, 64))
    assert vit.pos_embed_for((4, 3, 4)).shape == (1, 48, 64)
    learn = tiny(use_learnable_pos_emb=True)
    assert learn(torch.randn(1, 3, 4, 48, 48))["last"].shape == (1, 64, 2, 3, 3)
    with pytest.raises(ValueError, match="divisible"):
        vit(torch.randn(1, 3, 3, 32, 32))


def test_sinusoid_table_matches_official_formula():
    n, d = 7, 10
    ref = np.array([[p / np.power(10000, 2 * (j // 2) / d) for j in range(d)] for p in range(n)])
    ref[:, 0::2] = np.sin(ref[:, 0::2])
    ref[:, 1::2] = np.cos(ref[:, 1::2])
    assert torch.allclose(get_sinusoid_table(n, d), torch.tensor(ref, dtype=torch.float32), atol=1e-7)


def test_resize_pos_embed_identity_bicubic_space_linear_time():
    table = torch.randn(1, 2 * 3 * 3, 8)
    assert torch.allclose(resize_pos_embed(table, (2, 3, 3), (2, 3, 3)), table, atol=1e-6)
    # A table that is constant along h/w stays constant when upsampled spatially.
    const = torch.arange(2.0).repeat_interleave(9)[None, :, None].expand(1, 18, 4)
    up = resize_pos_embed(const, (2, 3, 3), (2, 5, 5)).reshape(2, 25, 4)
    assert torch.allclose(up[0], torch.zeros(25, 4)) and torch.allclose(up[1], torch.ones(25, 4))
    # ... and a table constant in space interpolates linearly in time (0, 1 -> 0, 1/3, 2/3, 1 ends clamped)
    longer = resize_pos_embed(const, (2, 3, 3), (4, 3, 3)).reshape(4, 9, 4)[:, 0, 0]
    assert torch.allclose(longer, torch.tensor([0.0, 0.25, 0.75, 1.0]))


def test_attention_matches_separate_qkv_reference_and_math_path():
    torch.manual_seed(1)
    attn = Attention(16, num_heads=4).eval()
    torch.nn.init.normal_(attn.q_bias)
    torch.nn.init.normal_(attn.v_bias)
    x = torch.randn(2, 5, 16)
    wq, wk, wv = attn.qkv.weight.chunk(3)
    q = (x @ wq.T + attn.q_bias).view(2, 5, 4, 4).transpose(1, 2)
    k = (x @ wk.T).view(2, 5, 4, 4).transpose(1, 2)  # no key bias, as the official code
    v = (x @ wv.T + attn.v_bias).view(2, 5, 4, 4).transpose(1, 2)
    w = torch.softmax(q @ k.transpose(-1, -2) / 2.0, dim=-1)
    ref = attn.proj((w @ v).transpose(1, 2).reshape(2, 5, 16))
    assert torch.allclose(attn(x), ref, atol=1e-5)
    set_attention_impl(attn, "math")
    assert not attn.use_sdpa
    assert torch.allclose(attn(x), ref, atol=1e-5)
    with pytest.raises(ValueError):
        set_attention_impl(attn, "flash")


def test_sdpa_and_math_give_same_backbone_output():
    vit = tiny()
    x = torch.randn(1, 3, 4, 32, 32)
    a = vit(x)["last"]
    set_attention_impl(vit, "math")
    assert torch.allclose(vit(x)["last"], a, atol=1e-5)


def test_forward_tokens_with_mask():
    vit = tiny()
    x = torch.randn(2, 3, 4, 32, 32)
    full = vit.forward_tokens(x)
    assert full.shape == (2, 8, 64)
    assert torch.allclose(full.transpose(1, 2).reshape(2, 64, 2, 2, 2), vit(x)["last"], atol=1e-6)
    none_dropped = vit.forward_tokens(x, torch.zeros(2, 8, dtype=torch.bool))
    assert torch.allclose(none_dropped, full, atol=1e-6)
    mask = TubeMasking((2, 2, 2), 0.5)(2, generator=torch.Generator().manual_seed(0))
    assert vit.forward_tokens(x, mask).shape == (2, 4, 64)
    with pytest.raises(ValueError, match="same number"):
        vit.forward_tokens(x, torch.tensor([[True] + [False] * 7, [False] * 8]))


def test_pooled_features_and_fc_norm():
    vit = tiny(use_mean_pooling=True)
    assert vit.fc_norm is not None and tiny().fc_norm is None
    assert vit.forward_features(torch.randn(2, 3, 4, 32, 32)).shape == (2, 64)


def test_drop_path_layer_scale_and_checkpointing():
    vit = tiny(drop_path_rate=0.5, init_values=0.1)
    assert torch.allclose(vit.blocks[0].gamma_1, torch.full((64,), 0.1))
    x = torch.randn(4, 3, 4, 32, 32)
    a, b = vit(x)["last"], vit(x)["last"]
    assert torch.equal(a, b)  # eval: deterministic
    vit.train()
    torch.manual_seed(3)
    outs = [vit(x)["last"] for _ in range(3)]
    assert not all(torch.equal(outs[0], o) for o in outs[1:])  # stochastic depth active
    # Activation checkpointing changes memory, not the gradients.
    plain = tiny()
    ckpt = tiny(use_checkpoint=True)
    ckpt.load_state_dict(plain.state_dict())
    plain.train()
    ckpt.train()
    plain(x)["last"].square().sum().backward()
    ckpt(x)["last"].square().sum().backward()
    for (n, p1), p2 in zip(plain.named_parameters(), ckpt.parameters()):
        assert torch.allclose(p1.grad, p2.grad, atol=1e-5), n


def test_layer_ids_and_no_weight_decay():
    vit = tiny()
    assert vit.get_layer_id("pos_embed") == 0
    assert vit.get_layer_id("patch_embed.proj.weight") == 0
    assert vit.get_layer_id("blocks.0.attn.qkv.weight") == 1
    assert vit.get_layer_id("backbone.blocks.1.mlp.fc1.bias") == 2
    assert vit.get_layer_id("norm.weight") == 3
    assert vit.get_layer_id("encoder.blocks.1.attn.proj.weight") == 2
    assert vit.get_layer_id("decoder.blocks.0.attn.proj.weight") == 3
    assert vit.no_weight_decay() == {"pos_embed", "cls_token"}
    assert "pos_embed" not in vit.state_dict()  # the fixed table is not a weight
    assert "pos_embed" in tiny(use_learnable_pos_emb=True).state_dict()


def test_standard_sizes_parameter_counts():
    # Built on the meta device: shapes only, no memory or init cost.
    expected_millions = {"small": 21.9, "base": 86.2, "large": 303.9, "huge": 631.6}
    for size, millions in expected_millions.items():
        with torch.device("meta"):
            vit = build_vit(size)
        cfg = VIT_SIZES[size]
        assert (vit.embed_dim, len(vit.blocks), vit.blocks[0].attn.num_heads) == (
            cfg["embed_dim"],
            cfg["depth"],
            cfg["num_heads"],
        )
        n = sum(p.numel() for p in vit.parameters()) / 1e6
        assert abs(n - millions) < 0.1, (size, n)  # 12*d*d + 12*d per block + cube embedding
    with pytest.raises(ValueError):
        build_vit("giant")


def test_backbone_registry_builds_from_cfg():
    cfg = get_cfg()
    add_vit_config(cfg)
    cfg.MODEL.VIT.SIZE = "tiny"
    cfg.MODEL.VIT.IMG_SIZE = 32
    cfg.MODEL.VIT.NUM_FRAMES = 4
    vit = BACKBONE_REGISTRY.get("VideoViT")(cfg, ShapeSpec(channels=3))
    assert isinstance(vit, VideoViT) and vit.grid_size == (2, 2, 2) and vit.embed_dim == 64


# ------------------------------------------------------------------------------------------ masking
@pytest.mark.parametrize(
    "kind,ratio,grid,expected",
    [
        ("tube", 0.9, (8, 14, 14), 8 * 176),  # official ViT-B 16x224 setting
        ("random", 0.75, (8, 14, 14), 1176),
        ("frame", 0.5, (8, 14, 14), 4 * 196),
        ("tube", 0.0, (2, 3, 3), 0),
        ("random", 0.0, (2, 3, 3), 0),
        ("frame", 0.0, (2, 3, 3), 0),
    ],
)
def test_mask_counts(kind, ratio, grid, expected):
    gen = build_masking(kind, grid, ratio)
    masks = gen(5, generator=torch.Generator().manual_seed(0))
    assert masks.dtype == torch.bool and masks.shape == (5, math.prod(grid))
    assert masks.sum(1).tolist() == [expected] * 5 and gen.num_masks == expected
    assert gen().shape == (math.prod(grid),)


def test_tube_and_frame_structure():
    t, h, w = 4, 5, 6
    tube = TubeMasking((t, h, w), 0.6)(3, generator=torch.Generator().manual_seed(0)).view(3, t, h * w)
    assert (tube == tube[:, :1]).all()  # same spatial mask in every temporal slice
    assert not (tube[0] == tube[1]).all()  # independent per sample
    frame = FrameMasking((t, h, w), 0.5)(3, generator=torch.Generator().manual_seed(0)).view(3, t, h * w)
    assert ((frame.all(2)) | (~frame.any(2))).all()  # whole slices only
    rnd = RandomMasking((t, h, w), 0.5)(1, generator=torch.Generator().manual_seed(0)).view(t, h * w)
    assert not (rnd == rnd[:1]).all()


def test_masks_reproducible_and_validated():
    gen = TubeMasking((2, 4, 4), 0.75)
    a = gen(4, generator=torch.Generator().manual_seed(7))
    b = gen(4, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    with pytest.raises(ValueError):
        TubeMasking((2, 4, 4), 1.0)
    with pytest.raises(ValueError):
        build_masking("block", (2, 4, 4), 0.5)
    assert "masked=24/32" in repr(gen)
