"""Checkpoint formats: MCG-NJU pretrain / fine-tune, HF transformers, ours; round trips and interpolation."""
import argparse
import importlib.util
import pathlib

import pytest
import torch
from torch import nn

from vmae_det.modeling import VideoMAE, VideoViT, build_videomae, build_vit, load_videomae_weights
from vmae_det.modeling.masking import TubeMasking
from vmae_det.modeling.vit import get_sinusoid_table, resize_pos_embed
from vmae_det.modeling.weight_loading import detect_format, export_state_dict, read_checkpoint

C, CD, DEPTH, DDEPTH = 64, 32, 2, 4  # tiny encoder / decoder widths and depths
ROOT = pathlib.Path(__file__).resolve().parents[1]


def tiny_mae(seed=0, **kw) -> VideoMAE:
    torch.manual_seed(seed)
    return build_videomae("tiny", encoder_kwargs=dict(img_size=32, num_frames=4, **kw)).eval()


def tiny_vit(seed=0, **kw) -> VideoViT:
    torch.manual_seed(seed)
    return build_vit("tiny", **{"img_size": 32, "num_frames": 4, **kw}).eval()


class Detector(nn.Module):
    """Stands in for the AVA detector: a VideoViT at ``backbone`` plus a head of its own."""

    def __init__(self):
        super().__init__()
        self.backbone = tiny_vit(seed=5)
        self.head = nn.Linear(C, 3)


def randomize(model: nn.Module) -> nn.Module:
    # Non-trivial LayerNorm/bias values so a mapping that drops or swaps them shows up in outputs.
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model


def mae_outputs(model: VideoMAE) -> torch.Tensor:
    clip = torch.randint(0, 256, (3, 4, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    mask = TubeMasking((2, 2, 2), 0.5)(1, generator=torch.Generator().manual_seed(0))
    x = (clip[None].float() - model.pixel_mean) / model.pixel_std
    with torch.no_grad():
        return model.predict(x, mask)


def vit_outputs(model: VideoViT) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.randn(1, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1)))["last"]


def hf_block(prefix: str, i: int, d: int) -> dict:
    """One HF ``VideoMAELayer`` with the names and shapes of transformers' modeling_videomae.py."""
    g = torch.Generator().manual_seed(i)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    p = f"{prefix}{i}."
    return {
        p + "attention.attention.query.weight": r(d, d), p + "attention.attention.key.weight": r(d, d),
        p + "attention.attention.value.weight": r(d, d), p + "attention.attention.q_bias": r(d),
        p + "attention.attention.v_bias": r(d), p + "attention.output.dense.weight": r(d, d),
        p + "attention.output.dense.bias": r(d), p + "intermediate.dense.weight": r(4 * d, d),
        p + "intermediate.dense.bias": r(4 * d), p + "output.dense.weight": r(d, 4 * d),
        p + "output.dense.bias": r(d), p + "layernorm_before.weight": r(d), p + "layernorm_before.bias": r(d),
        p + "layernorm_after.weight": r(d), p + "layernorm_after.bias": r(d),
    }


def hf_pretraining_state_dict() -> dict:
    sd = {"videomae.embeddings.patch_embeddings.projection.weight": torch.randn(C, 3, 2, 16, 16),
          "videomae.embeddings.patch_embeddings.projection.bias": torch.randn(C),
          "videomae.layernorm.weight": torch.randn(C), "videomae.layernorm.bias": torch.randn(C),
          "encoder_to_decoder.weight": torch.randn(CD, C), "mask_token": torch.randn(1, 1, CD),
          "decoder.norm.weight": torch.randn(CD), "decoder.norm.bias": torch.randn(CD),
          "decoder.head.weight": torch.randn(1536, CD), "decoder.head.bias": torch.randn(1536)}
    for i in range(DEPTH):
        sd.update(hf_block("videomae.encoder.layer.", i, C))
    for i in range(DDEPTH):
        sd.update(hf_block("decoder.decoder_layers.", i, CD))
    return sd


# ------------------------------------------------------------------------------------------ formats
def test_hf_names_load_into_official_layout():
    sd = hf_pretraining_state_dict()
    model = tiny_mae()
    report = load_videomae_weights(model, sd)
    assert report.source_format == "hf" and not report.missing and not report.unexpected
    blk = model.encoder.blocks[1].attn
    qkv = torch.cat([sd[f"videomae.encoder.layer.1.attention.attention.{n}.weight"] for n in ("query", "key", "value")])
    assert torch.equal(blk.qkv.weight, qkv)
    assert torch.equal(blk.v_bias, sd["videomae.encoder.layer.1.attention.attention.v_bias"])
    assert torch.equal(model.decoder.blocks[3].mlp.fc1.weight, sd["decoder.decoder_layers.3.intermediate.dense.weight"])
    assert torch.equal(model.encoder.norm.weight, sd["videomae.layernorm.weight"])
    # And back: our HF export reproduces the same names and tensors.
    back = export_state_dict(model, "hf")
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)


def test_hf_model_folder_with_safetensors(tmp_path):
    from safetensors.torch import save_file

    sd = hf_pretraining_state_dict()
    folder = tmp_path / "videomae-hf"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in sd.items()}, str(folder / "model.safetensors"))
    from_folder, from_dict = tiny_mae(seed=1), tiny_mae(seed=2)
    report = load_videomae_weights(from_folder, folder)
    load_videomae_weights(from_dict, sd)
    assert report.source_format == "hf" and not report.missing
    torch.testing.assert_close(mae_outputs(from_folder), mae_outputs(from_dict), rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match="neither model.safetensors"):
        load_videomae_weights(from_folder, tmp_path)


def test_hf_classification_checkpoint_into_backbone():
    sd = {k: v for k, v in hf_pretraining_state_dict().items() if k.startswith("videomae.") and "layernorm." not in k[:20]}
    sd.pop("videomae.layernorm.weight", None)
    sd.pop("videomae.layernorm.bias", None)
    sd.update({"fc_norm.weight": torch.randn(C), "fc_norm.bias": torch.randn(C),
               "classifier.weight": torch.randn(400, C), "classifier.bias": torch.randn(400)})
    vit = tiny_vit()
    report = load_videomae_weights(vit, sd)
    assert not report.missing and not report.unexpected
    assert set(report.ignored) == {"classifier.weight", "classifier.bias", "fc_norm.weight", "fc_norm.bias"}
    assert torch.equal(vit.norm.weight, sd["fc_norm.weight"])  # mean-pooling fine-tune: token norm from fc_norm


def test_mcg_pretrain_file_with_namespace_args(tmp_path):
    src = randomize(tiny_mae(seed=1))
    sd = export_state_dict(src, "mcg-pretrain")
    assert "encoder.blocks.0.attn.q_bias" in sd and "decoder.blocks.3.attn.qkv.weight" in sd
    assert sd["encoder_to_decoder.weight"].shape == (CD, C) and sd["mask_token"].shape == (1, 1, CD)
    path = tmp_path / "checkpoint-799.pth"
    torch.save({"model": sd, "epoch": 799, "args": argparse.Namespace(model="pretrain_videomae_tiny", mask_ratio=0.9)},
               path)
    dst = tiny_mae(seed=2)
    report = load_videomae_weights(dst, str(path))
    assert report.source_format == "mcg-pretrain" and not report.missing and not report.unexpected
    assert torch.equal(mae_outputs(dst), mae_outputs(src))
    # The same file into a bare backbone: the encoder loads, the decoder is reported as ignored.
    vit = tiny_vit(seed=3)
    r = load_videomae_weights(vit, path)
    assert not r.missing and not r.unexpected and "mask_token" in r.ignored
    assert torch.equal(vit_outputs(vit), vit_outputs(src.encoder))


def test_mcg_finetune_module_dict_with_head(tmp_path):
    src = randomize(tiny_vit(seed=1, use_mean_pooling=True))
    sd = {k: v for k, v in export_state_dict(src, "mcg-finetune").items() if not k.startswith("norm.")}
    sd.update({"head.weight": torch.randn(174, C), "head.bias": torch.randn(174)})
    path = tmp_path / "ssv2_finetuned.pth"
    torch.save({"module": {"module." + k: v for k, v in sd.items()}}, path)
    dst = tiny_vit(seed=2, use_mean_pooling=True)
    report = load_videomae_weights(dst, path)
    assert report.source_format == "mcg-finetune" and not report.missing and not report.unexpected
    assert set(report.ignored) == {"head.weight", "head.bias"}
    assert torch.equal(dst.forward_features(torch.ones(1, 3, 4, 32, 32)), src.forward_features(torch.ones(1, 3, 4, 32, 32)))


def test_round_trip_ours_mcg_hf_and_detector(tmp_path):
    """ours -> HF -> ours -> MCG pretrain -> ours, outputs identical at every hop; then into a detector."""
    src = randomize(tiny_mae(seed=1))
    ref = mae_outputs(src)
    a = tiny_mae(seed=2)
    load_videomae_weights(a, export_state_dict(src, "hf"))
    assert torch.equal(mae_outputs(a), ref)
    b = tiny_mae(seed=3)
    load_videomae_weights(b, export_state_dict(a, "mcg-pretrain"))
    assert torch.equal(mae_outputs(b), ref)
    # Converted with the tool to our format, then into the detector backbone.
    spec = importlib.util.spec_from_file_location("convert_checkpoint", ROOT / "tools" / "convert_checkpoint.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    torch.save(export_state_dict(b, "hf"), tmp_path / "pytorch_model.bin")
    assert tool.main([str(tmp_path / "pytorch_model.bin"), str(tmp_path / "ours.pth")]) == 0
    sd, extras = read_checkpoint(tmp_path / "ours.pth")
    assert detect_format(sd, extras) == "vmae_det" and extras["converted_from"] == "hf"
    det = Detector()
    head_before = det.head.weight.clone()
    report = load_videomae_weights(det, tmp_path / "ours.pth")
    assert not report.missing and not report.unexpected and report.loaded[0].startswith("backbone.")
    assert torch.equal(det.head.weight, head_before)
    assert torch.equal(vit_outputs(det.backbone), vit_outputs(src.encoder))
    # Detector -> fine-tune layout -> fresh backbone.
    c = tiny_vit(seed=4)
    load_videomae_weights(c, export_state_dict(det, "mcg-finetune"))
    assert torch.equal(vit_outputs(c), vit_outputs(src.encoder))


# ------------------------------------------------------------------------------------------ position tables
@pytest.mark.parametrize("img_size,num_frames,grid", [(48, 4, (2, 3, 3)), (32, 8, (4, 2, 2))])
def test_learnable_pos_embed_interpolated_to_new_grid(img_size, num_frames, grid):
    src = tiny_vit(seed=1, use_learnable_pos_emb=True)  # grid (2, 2, 2)
    dst = tiny_vit(seed=2, use_learnable_pos_emb=True, img_size=img_size, num_frames=num_frames)
    report = load_videomae_weights(dst, export_state_dict(src, "mcg-finetune"))
    expected = resize_pos_embed(src.pos_embed.detach(), (2, 2, 2), grid)
    assert torch.allclose(dst.pos_embed, expected) and any("interpolated" in n for n in report.notes)
    assert dst(torch.randn(1, 3, num_frames, img_size, img_size))["last"].shape == (1, C, *grid)
    # The model resizes its own table the same way at run time for other input sizes.
    assert torch.allclose(src.pos_embed_for(grid), expected)


def test_sinusoidal_checkpoint_into_learnable_model():
    dst = tiny_vit(use_learnable_pos_emb=True)
    report = load_videomae_weights(dst, export_state_dict(tiny_vit(seed=1), "mcg-finetune"))
    assert torch.allclose(dst.pos_embed, get_sinusoid_table(8, C)[None])
    assert not report.missing and any("sinusoidal" in n for n in report.notes)


# ------------------------------------------------------------------------------------------ bad input
def test_bad_checkpoints_give_clear_errors(tmp_path):
    sd = export_state_dict(tiny_vit(), "mcg-finetune")
    sd["blocks.0.mlp.fc1.weight"] = torch.randn(10, C)
    with pytest.raises(ValueError, match=r"blocks\.0\.mlp\.fc1\.weight"):
        load_videomae_weights(tiny_vit(), sd)
    with pytest.raises(ValueError, match="unrecognised"):
        load_videomae_weights(tiny_vit(), {"conv1.weight": torch.zeros(1)})
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="broken.pth"):
        load_videomae_weights(tiny_vit(), bad)
    with pytest.raises(TypeError, match="VideoViT"):
        load_videomae_weights(nn.Linear(2, 2), sd)
