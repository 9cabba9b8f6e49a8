"""VideoMAE pretraining model: targets/loss numerics, masking inside forward, overfitting, reconstruction."""

import pytest
import torch
import torch.nn.functional as F
from detectron2.config import CfgNode, get_cfg
from detectron2.modeling import build_model
from helpers import tiny_mae

from vmae_det.modeling import TubeMasking, VideoMAE, build_videomae
from vmae_det.modeling.mae import DECODER_SIZES, expand_token_mask, patchify, unpatchify
from vmae_det.modeling.yacs_config import add_vit_config


def clips(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 4, 32, 32), generator=g, dtype=torch.uint8)


def reference_targets(video01: torch.Tensor, ts: int, p: int, norm: bool) -> torch.Tensor:
    """Cube targets written out cube by cube: (t, h, w) token order, (t p p) pixel order, channel last."""
    b, c, t, h, w = video01.shape
    out = []
    for ti in range(t // ts):
        for hi in range(h // p):
            for wi in range(w // p):
                cube = video01[:, :, ti * ts : (ti + 1) * ts, hi * p : (hi + 1) * p, wi * p : (wi + 1) * p]
                cube = cube.permute(0, 2, 3, 4, 1).reshape(b, -1, c)  # [B, ts*p*p, C]
                if norm:
                    cube = (cube - cube.mean(1, keepdim=True)) / (cube.std(1, unbiased=True, keepdim=True) + 1e-6)
                out.append(cube.reshape(b, -1))
    return torch.stack(out, dim=1)


@pytest.mark.parametrize("norm", [True, False])
def test_targets_match_cube_by_cube_reference(norm):
    mae = tiny_mae(norm_pix_loss=norm)
    video01 = clips().float() / 255
    assert torch.allclose(mae.targets(video01), reference_targets(video01, 2, 16, norm), atol=1e-5)


def test_patchify_roundtrip_and_pixel_mask():
    video = torch.randn(2, 3, 4, 32, 48)
    cubes = patchify(video, 2, 16)
    assert cubes.shape == (2, 2 * 2 * 3, 512, 3)
    assert torch.equal(unpatchify(cubes, (2, 2, 3), 2, 16), video)
    mask = torch.zeros(2, 12, dtype=torch.bool)
    mask[0, 1] = True  # token (t=0, h=0, w=1)
    pix = expand_token_mask(mask, (2, 2, 3), 2, 16)
    assert pix.shape == (2, 1, 4, 32, 48) and pix.sum() == 2 * 16 * 16
    assert pix[0, 0, :2, :16, 16:32].all()


def test_training_loss_is_mse_on_masked_cubes():
    mae = tiny_mae().train()
    batch = [{"clip": c} for c in clips()]
    mask = TubeMasking((2, 2, 2), 0.5)(2, generator=torch.Generator().manual_seed(0))
    loss = mae(batch, mask=mask)["loss_mae"]
    x = (clips().float() - mae.pixel_mean) / mae.pixel_std
    pred = mae.predict(x, mask)
    target = reference_targets(clips().float() / 255, 2, 16, True)[mask].view(2, -1, 1536)
    assert pred.shape == (2, 4, 1536)
    assert torch.allclose(loss, F.mse_loss(pred, target), atol=1e-5)
    loss.backward()
    assert mae.mask_token.grad is not None and mae.encoder.patch_embed.proj.weight.grad is not None


def test_masks_sampled_per_sample_and_reproducible():
    mae = tiny_mae(mask_ratio=0.5)
    mae.set_mask_seed(3)
    a = mae.sample_masks(4, (2, 2, 2))
    mae.set_mask_seed(3)
    assert torch.equal(a, mae.sample_masks(4, (2, 2, 2)))
    assert a.sum(1).tolist() == [4] * 4
    assert (a.view(4, 2, 4)[:, 0] == a.view(4, 2, 4)[:, 1]).all()  # tube


def test_mask_ratio_zero_runs():
    mae = tiny_mae(mask_ratio=0.0).train()
    out = mae([{"clip": c} for c in clips()])
    assert out["loss_mae"].item() == 0.0
    out["loss_mae"].backward()
    outs = mae.eval()([{"clip": c} for c in clips()])
    assert outs[0]["loss_mae"].item() == 0.0 and not outs[0]["mask"].any()
    assert torch.allclose(outs[0]["reconstruction"], clips()[0].float())


def test_overfits_one_tiny_batch():
    mae = tiny_mae(mask_ratio=0.5).train()
    batch = [{"clip": c} for c in clips()]
    mask = TubeMasking((2, 2, 2), 0.5)(2, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(mae.parameters(), lr=2e-3)
    losses = []
    for _ in range(30):
        loss = mae(batch, mask=mask)["loss_mae"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_eval_outputs_and_reconstruct_keep_visible_pixels():
    mae = tiny_mae(mask_ratio=0.5).eval()
    mae.set_mask_seed(0)
    c = clips()
    outs = mae([{"clip": x} for x in c])
    assert len(outs) == 2 and set(outs[0]) == {"loss_mae", "mask", "reconstruction"}
    assert outs[0]["reconstruction"].shape == (3, 4, 32, 32) and outs[0]["mask"].shape == (8,)
    target, mask, recon = mae.reconstruct(c)
    assert target.shape == recon.shape == (2, 3, 4, 32, 32) and mask.shape == (2, 8)
    visible = ~expand_token_mask(mask, (2, 2, 2), 2, 16).expand_as(target)
    assert torch.allclose(recon[visible], target[visible], atol=1e-3)
    assert recon.min() >= 0 and recon.max() <= 255


def test_decoder_pairing_and_official_names():
    for size, dec in DECODER_SIZES.items():
        if size == "tiny":
            continue
        with torch.device("meta"):
            mae = build_videomae(size)
        assert mae.decoder.head.weight.shape == (1536, dec["decoder_embed_dim"])
        assert mae.decoder.blocks[0].attn.num_heads == dec["decoder_num_heads"] and len(mae.decoder.blocks) == 4
    names = set(tiny_mae().state_dict())
    for key in (
        "encoder.patch_embed.proj.weight",
        "encoder.blocks.0.attn.qkv.weight",
        "encoder.blocks.0.attn.q_bias",
        "encoder.norm.weight",
        "encoder_to_decoder.weight",
        "mask_token",
        "decoder.blocks.3.mlp.fc2.bias",
        "decoder.norm.weight",
        "decoder.head.weight",
    ):
        assert key in names, key
    assert "encoder.blocks.0.attn.qkv.bias" not in names and "encoder_to_decoder.bias" not in names
    assert tiny_mae().decoder.norm.eps == 1e-6


def test_meta_arch_registry_builds_from_cfg():
    cfg = get_cfg()
    add_vit_config(cfg)
    cfg.MODEL.META_ARCHITECTURE = "VideoMAE"
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.VIT.SIZE = "tiny"
    cfg.MODEL.VIT.IMG_SIZE = 32
    cfg.MODEL.VIT.NUM_FRAMES = 4
    cfg.MODEL.MAE = CfgNode({"MASK_RATIO": 0.5})
    model = build_model(cfg)
    assert isinstance(model, VideoMAE) and model.mask_ratio == 0.5 and model.decoder_embed_dim == 32


# ---------------------------------------------------------------- the pieces the model is made of
def test_targets_module_is_what_the_model_uses():
    from vmae_det.modeling import mae, mae_reconstruction, mae_targets

    assert mae.patchify is mae_targets.patchify and mae.unpatchify is mae_targets.unpatchify
    assert mae.expand_token_mask is mae_reconstruction.expand_token_mask
    video01 = clips().float() / 255
    for norm in (True, False):
        assert torch.equal(
            tiny_mae(norm_pix_loss=norm).targets(video01), mae_targets.cube_targets(video01, 2, 16, norm)
        )
    cubes = patchify(video01, 2, 16)
    mean, std = mae_targets.cube_mean_std(cubes)
    assert mean.shape == std.shape == (2, 8, 1, 3)
    torch.testing.assert_close(std, cubes.std(dim=-2, keepdim=True) + 1e-6)
    torch.testing.assert_close(mean, cubes.mean(dim=-2, keepdim=True))


def test_mask_sampler_validates_at_once_and_is_reproducible():
    from vmae_det.modeling.masking import MaskSampler

    with pytest.raises(ValueError, match="unknown mask type"):
        MaskSampler("checkerboard", 0.5, (2, 2, 2))
    with pytest.raises(ValueError, match="mask_ratio"):
        MaskSampler("tube", 1.0, (2, 2, 2))
    sampler = MaskSampler("random", 0.75)
    sampler.seed(5)
    a = sampler(3, (2, 2, 2))
    sampler.seed(5)
    assert torch.equal(a, sampler(3, (2, 2, 2))) and a.shape == (3, 8) and a.sum(1).tolist() == [6] * 3
    assert sampler(2, (1, 4, 4)).shape == (2, 16)  # any grid
    sampler.generator = None  # the global RNG
    torch.manual_seed(1)
    b = sampler(3, (2, 2, 2))
    torch.manual_seed(1)
    assert torch.equal(b, sampler(3, (2, 2, 2)))
    mae = tiny_mae(mask_type="frame", mask_ratio=0.5)  # the model's settings are its sampler's
    assert (mae.mask_type, mae.mask_ratio, mae.mask_generator) == ("frame", 0.5, None)
    mae.set_mask_seed(4)
    sampler = MaskSampler("frame", 0.5)
    sampler.seed(4)
    assert torch.equal(mae.sample_masks(2, (2, 2, 2)), sampler(2, (2, 2, 2)))


@pytest.mark.parametrize("norm", [True, False])
def test_pasting_the_true_targets_gives_the_video_back(norm):
    from vmae_det.modeling.mae_reconstruction import paste_predictions
    from vmae_det.modeling.mae_targets import cube_targets

    video01 = clips().float() / 255
    mask = TubeMasking((2, 2, 2), 0.5)(2, generator=torch.Generator().manual_seed(0))
    pred = cube_targets(video01, 2, 16, norm)[mask].view(2, -1, 1536)  # a perfect prediction
    out = paste_predictions(video01, mask, pred, (2, 2, 2), 2, 16, normalized=norm)
    torch.testing.assert_close(out, video01 * 255, atol=1e-3, rtol=0)
    out = paste_predictions(video01, mask, torch.zeros_like(pred) - 10, (2, 2, 2), 2, 16, normalized=False)
    visible = ~expand_token_mask(mask, (2, 2, 2), 2, 16).expand_as(out)
    assert torch.equal(out[visible], (video01 * 255)[visible]) and (out[~visible] == 0).all()  # clamped


def test_reconstruct_clips_is_the_model_reconstruction():
    from vmae_det.modeling.mae_reconstruction import reconstruct_clips

    mae = tiny_mae(mask_ratio=0.5).eval()
    mae.set_mask_seed(2)
    a = mae.reconstruct(clips())
    mae.set_mask_seed(2)
    b = reconstruct_clips(mae, clips())
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    mask = a[1]
    outs = mae([{"clip": c} for c in clips()], mask=mask)  # the eval outputs paste the same way
    assert torch.equal(torch.stack([o["reconstruction"] for o in outs]), a[2])


def test_modeling_does_not_import_engine():
    import ast
    from pathlib import Path

    import vmae_det.modeling as modeling

    for path in Path(modeling.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module] if node.module else [a.name for a in node.names]  # from .. import engine
                for name in (("." * node.level) + n for n in names):
                    assert not name.startswith(("..engine", "vmae_det.engine")), (path, name)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("vmae_det.engine") for a in node.names), path
