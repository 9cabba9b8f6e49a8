"""Checkpoint formats: MCG-NJU pretrain / fine-tune, HF transformers, ours; round trips and interpolation."""

import argparse
import importlib.util
import pathlib

import pytest
import torch
from helpers import randomize, tiny_mae, tiny_vit
from torch import nn
from vmad_reference import vmad_key_shapes

from vmae_det.checkpoints import detect_format, export_state_dict, load_videomae_weights, read_checkpoint
from vmae_det.modeling import VideoMAE, VideoViT, build_vit
from vmae_det.modeling.masking import TubeMasking
from vmae_det.modeling.vit import get_sinusoid_table, resize_pos_embed

C, CD, DEPTH, DDEPTH = 64, 32, 2, 4  # tiny encoder / decoder widths and depths
ROOT = pathlib.Path(__file__).resolve().parents[2]


class Detector(nn.Module):
    """Stands in for the AVA detector: a VideoViT at ``backbone`` plus a head of its own."""

    def __init__(self):
        super().__init__()
        self.backbone = tiny_vit(5).eval()
        self.head = nn.Linear(C, 3)


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
        p + "attention.attention.query.weight": r(d, d),
        p + "attention.attention.key.weight": r(d, d),
        p + "attention.attention.value.weight": r(d, d),
        p + "attention.attention.q_bias": r(d),
        p + "attention.attention.v_bias": r(d),
        p + "attention.output.dense.weight": r(d, d),
        p + "attention.output.dense.bias": r(d),
        p + "intermediate.dense.weight": r(4 * d, d),
        p + "intermediate.dense.bias": r(4 * d),
        p + "output.dense.weight": r(d, 4 * d),
        p + "output.dense.bias": r(d),
        p + "layernorm_before.weight": r(d),
        p + "layernorm_before.bias": r(d),
        p + "layernorm_after.weight": r(d),
        p + "layernorm_after.bias": r(d),
    }


def hf_pretraining_state_dict() -> dict:
    sd = {
        "videomae.embeddings.patch_embeddings.projection.weight": torch.randn(C, 3, 2, 16, 16),
        "videomae.embeddings.patch_embeddings.projection.bias": torch.randn(C),
        "videomae.layernorm.weight": torch.randn(C),
        "videomae.layernorm.bias": torch.randn(C),
        "encoder_to_decoder.weight": torch.randn(CD, C),
        "mask_token": torch.randn(1, 1, CD),
        "decoder.norm.weight": torch.randn(CD),
        "decoder.norm.bias": torch.randn(CD),
        "decoder.head.weight": torch.randn(1536, CD),
        "decoder.head.bias": torch.randn(1536),
    }
    for i in range(DEPTH):
        sd.update(hf_block("videomae.encoder.layer.", i, C))
    for i in range(DDEPTH):
        sd.update(hf_block("decoder.decoder_layers.", i, CD))
    return sd


# ------------------------------------------------------------------------------------------ formats
def test_hf_names_load_into_official_layout():
    sd = hf_pretraining_state_dict()
    model = tiny_mae().eval()
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
    from_folder, from_dict = tiny_mae(1).eval(), tiny_mae(2).eval()
    report = load_videomae_weights(from_folder, folder)
    load_videomae_weights(from_dict, sd)
    assert report.source_format == "hf" and not report.missing
    torch.testing.assert_close(mae_outputs(from_folder), mae_outputs(from_dict), rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match="neither model.safetensors"):
        load_videomae_weights(from_folder, tmp_path)


def test_hf_classification_checkpoint_into_backbone():
    sd = {
        k: v for k, v in hf_pretraining_state_dict().items() if k.startswith("videomae.") and "layernorm." not in k[:20]
    }
    sd.pop("videomae.layernorm.weight", None)
    sd.pop("videomae.layernorm.bias", None)
    sd.update(
        {
            "fc_norm.weight": torch.randn(C),
            "fc_norm.bias": torch.randn(C),
            "classifier.weight": torch.randn(400, C),
            "classifier.bias": torch.randn(400),
        }
    )
    vit = tiny_vit().eval()
    report = load_videomae_weights(vit, sd)
    assert report.missing == ["norm.bias", "norm.weight"] and not report.unexpected
    assert set(report.ignored) == {"classifier.weight", "classifier.bias", "fc_norm.weight", "fc_norm.bias"}
    # Mean-pooling fine-tune: as VMAD, the token norm keeps its init (fc_norm is not copied into it).
    assert torch.equal(vit.norm.weight, torch.ones(C)) and torch.equal(vit.norm.bias, torch.zeros(C))
    assert any("fc_norm, no norm" in n for n in report.notes)


def test_mcg_pretrain_file_with_namespace_args(tmp_path):
    src = randomize(tiny_mae(1).eval(), 123, scale=0.05)
    sd = export_state_dict(src, "mcg-pretrain")
    assert "encoder.blocks.0.attn.q_bias" in sd and "decoder.blocks.3.attn.qkv.weight" in sd
    assert sd["encoder_to_decoder.weight"].shape == (CD, C) and sd["mask_token"].shape == (1, 1, CD)
    path = tmp_path / "checkpoint-799.pth"
    torch.save(
        {"model": sd, "epoch": 799, "args": argparse.Namespace(model="pretrain_videomae_tiny", mask_ratio=0.9)}, path
    )
    dst = tiny_mae(2).eval()
    report = load_videomae_weights(dst, str(path))
    assert report.source_format == "mcg-pretrain" and not report.missing and not report.unexpected
    assert torch.equal(mae_outputs(dst), mae_outputs(src))
    # The same file into a bare backbone: the encoder loads, the decoder is reported as ignored.
    vit = tiny_vit(3).eval()
    r = load_videomae_weights(vit, path)
    assert not r.missing and not r.unexpected and "mask_token" in r.ignored
    assert torch.equal(vit_outputs(vit), vit_outputs(src.encoder))


def test_mcg_finetune_module_dict_with_head(tmp_path):
    src = randomize(tiny_vit(1, use_mean_pooling=True).eval(), 123, scale=0.05)
    sd = {k: v for k, v in export_state_dict(src, "mcg-finetune").items() if not k.startswith("norm.")}
    sd.update({"head.weight": torch.randn(174, C), "head.bias": torch.randn(174)})
    path = tmp_path / "ssv2_finetuned.pth"
    torch.save({"module": {"module." + k: v for k, v in sd.items()}}, path)
    dst = tiny_vit(2, use_mean_pooling=True).eval()
    report = load_videomae_weights(dst, path)
    assert report.source_format == "mcg-finetune" and not report.unexpected and not report.head_loaded
    assert report.missing == ["norm.bias", "norm.weight"]  # expected for a mean-pooling fine-tune: noted only
    assert set(report.ignored) == {"head.weight", "head.bias"}
    assert torch.equal(
        dst.forward_features(torch.ones(1, 3, 4, 32, 32)), src.forward_features(torch.ones(1, 3, 4, 32, 32))
    )


def test_round_trip_ours_mcg_hf_and_detector(tmp_path):
    """ours -> HF -> ours -> MCG pretrain -> ours, outputs identical at every hop; then into a detector."""
    src = randomize(tiny_mae(1).eval(), 123, scale=0.05)
    ref = mae_outputs(src)
    a = tiny_mae(2).eval()
    load_videomae_weights(a, export_state_dict(src, "hf"))
    assert torch.equal(mae_outputs(a), ref)
    b = tiny_mae(3).eval()
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
    # The detector's own head is not in a pretraining checkpoint: reported missing, not an error.
    assert report.missing == ["head.bias", "head.weight"] and not report.unexpected
    assert report.loaded[0].startswith("backbone.") and not report.head_loaded
    assert torch.equal(det.head.weight, head_before)
    assert torch.equal(vit_outputs(det.backbone), vit_outputs(src.encoder))
    # Detector -> fine-tune layout -> fresh backbone.
    c = tiny_vit(4).eval()
    load_videomae_weights(c, export_state_dict(det, "mcg-finetune"))
    assert torch.equal(vit_outputs(c), vit_outputs(src.encoder))


# ------------------------------------------------------------------------------------------ position tables
@pytest.mark.parametrize("img_size,num_frames,grid", [(48, 4, (2, 3, 3)), (32, 8, (4, 2, 2))])
def test_learnable_pos_embed_interpolated_to_new_grid(img_size, num_frames, grid):
    src = tiny_vit(1, use_learnable_pos_emb=True).eval()  # grid (2, 2, 2)
    dst = tiny_vit(2, use_learnable_pos_emb=True, img_size=img_size, num_frames=num_frames).eval()
    report = load_videomae_weights(dst, export_state_dict(src, "mcg-finetune"))
    expected = resize_pos_embed(src.pos_embed.detach(), (2, 2, 2), grid)
    assert torch.allclose(dst.pos_embed, expected) and any("interpolated" in n for n in report.notes)
    assert dst(torch.randn(1, 3, num_frames, img_size, img_size))["last"].shape == (1, C, *grid)
    # The model resizes its own table the same way at run time for other input sizes.
    assert torch.allclose(src.pos_embed_for(grid), expected)


def test_sinusoidal_checkpoint_into_learnable_model():
    dst = tiny_vit(use_learnable_pos_emb=True).eval()
    report = load_videomae_weights(dst, export_state_dict(tiny_vit(1).eval(), "mcg-finetune"))
    assert torch.allclose(dst.pos_embed, get_sinusoid_table(8, C)[None])
    assert not report.missing and any("sinusoidal" in n for n in report.notes)


# ------------------------------------------------------------------------------------------ bad input
def test_bad_checkpoints_give_clear_errors(tmp_path):
    sd = export_state_dict(tiny_vit().eval(), "mcg-finetune")
    sd["blocks.0.mlp.fc1.weight"] = torch.randn(10, C)
    with pytest.raises(ValueError, match=r"blocks\.0\.mlp\.fc1\.weight"):
        load_videomae_weights(tiny_vit().eval(), sd)
    with pytest.raises(ValueError, match="unrecognised"):
        load_videomae_weights(tiny_vit().eval(), {"conv1.weight": torch.zeros(1)})
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="broken.pth"):
        load_videomae_weights(tiny_vit().eval(), bad)
    with pytest.raises(TypeError, match="VideoViT"):
        load_videomae_weights(nn.Linear(2, 2), sd)


# ------------------------------------------------------------------------------------------ VMAD AVA checkpoints
NUM_CLASSES = 80


def tiny_detector(seed=0, num_classes=NUM_CLASSES, **head_kw):
    """The real AVA detector around the tiny ViT (same grid as ``tiny_vit``: 32 px, 4 frames, patch 16)."""
    from vmae_det.modeling.action_detector import AVAActionDetector

    torch.manual_seed(seed)
    return AVAActionDetector(
        backbone=build_vit("tiny", img_size=32, num_frames=4), num_classes=num_classes, **head_kw
    ).eval()


def vmad_state_dict(num_classes=NUM_CLASSES, seed=0, mean_pooling=False) -> dict:
    """Random weights in VMAD's key layout (:func:`vmad_key_shapes`) around the tiny ViT."""
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(shape, generator=g) for k, shape in vmad_key_shapes(C, DEPTH, num_classes, mean_pooling).items()
    }


def save_vmad(path, sd, container="model"):
    """As VMAD's utils.save_model (``model``) / a DeepSpeed-style file (``module``) / DDP-prefixed keys."""
    if container == "model":
        torch.save(
            {
                "model": sd,
                "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]},
                "epoch": 29,
                "scaler": {"scale": 65536.0, "growth_factor": 2.0},
                "args": argparse.Namespace(
                    model="vit_base_patch16_224",
                    nb_classes=NUM_CLASSES,
                    lr=2.5e-4,
                    finetune="checkpoint.pth",
                    data_set="ava",
                ),
            },
            path,
        )
    elif container == "module":
        torch.save({"module": sd, "epoch": 29}, path)
    else:  # DDP
        torch.save({"model": {"module." + k: v for k, v in sd.items()}, "epoch": 29}, path)
    return path


def assert_detector_equals_vmad(det, sd):
    own = det.state_dict()
    for k, v in sd.items():
        if k.startswith("head."):
            assert torch.equal(own["head.fc." + k[len("head.") :]], v), k
        else:
            assert torch.equal(own["backbone." + k], v), k


@pytest.mark.parametrize("container", ["model", "module", "ddp"])
def test_vmad_ava_checkpoint_loads_fully_with_head(tmp_path, container):
    sd = vmad_state_dict()
    path = save_vmad(tmp_path / "vmad_ava.pth", sd, container)
    det = tiny_detector()
    report = load_videomae_weights(det, path)
    assert report.source_format == "mcg-finetune" and report.head_loaded
    assert not report.missing and not report.unexpected and not report.ignored
    assert any("head.fc loaded" in n for n in report.notes) and "action head loaded" in str(report)
    assert_detector_equals_vmad(det, sd)
    # And back: the detector exported in the fine-tune layout is a VMAD-layout checkpoint again.
    back = export_state_dict(det, "mcg-finetune")
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)


def test_vmad_kinetics_head_is_dropped_with_note(tmp_path):
    sd = vmad_state_dict(num_classes=400)
    det = tiny_detector()
    head_before = det.head.fc.weight.clone()
    report = load_videomae_weights(det, save_vmad(tmp_path / "k400.pth", sd))
    assert not report.head_loaded and set(report.ignored) == {"head.weight", "head.bias"}
    assert any("(400, 64)" in n and "does not fit head.fc (80, 64)" in n for n in report.notes)
    assert report.missing == ["head.fc.bias", "head.fc.weight"] and not report.unexpected
    assert torch.equal(det.head.fc.weight, head_before)
    assert torch.equal(det.backbone.blocks[1].attn.qkv.weight, sd["blocks.1.attn.qkv.weight"])


def test_vmad_head_not_loaded_into_mlp_head(tmp_path):
    det = tiny_detector(head="mlp", head_hidden_dim=C)  # fc is (80, 64) too, but sits after a hidden layer
    report = load_videomae_weights(det, save_vmad(tmp_path / "vmad_ava.pth", vmad_state_dict()))
    assert not report.head_loaded and set(report.ignored) == {"head.weight", "head.bias"}
    assert any("MLP" in n for n in report.notes)


def test_kinetics_mean_pooling_finetune_keeps_norm_init(tmp_path):
    sd = vmad_state_dict(num_classes=400, mean_pooling=True)
    det = tiny_detector()
    with torch.no_grad():
        det.backbone.norm.weight.fill_(1.0), det.backbone.norm.bias.zero_()
    report = load_videomae_weights(det, save_vmad(tmp_path / "k400_ft.pth", sd))
    assert torch.equal(det.backbone.norm.weight, torch.ones(C)) and torch.equal(det.backbone.norm.bias, torch.zeros(C))
    assert {"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"} == set(report.ignored)
    assert report.missing == ["backbone.norm.bias", "backbone.norm.weight", "head.fc.bias", "head.fc.weight"]
    assert any("fc_norm, no norm" in n and "keeps its initialisation" in n for n in report.notes)
    assert torch.equal(det.backbone.blocks[0].mlp.fc1.weight, sd["blocks.0.mlp.fc1.weight"])


def test_missing_or_unexpected_backbone_tensor_is_an_error(tmp_path, caplog):
    sd = vmad_state_dict()
    sd.pop("blocks.1.mlp.fc2.bias")
    path = save_vmad(tmp_path / "cut.pth", sd)
    with pytest.raises(ValueError, match=r"cut\.pth \(mcg-finetune\).*backbone\.blocks\.1\.mlp\.fc2\.bias"):
        load_videomae_weights(tiny_detector(), path)
    # A deeper checkpoint (an extra block) or layer scale the model lacks: unexpected, also an error.
    extra = {**vmad_state_dict(), "blocks.2.norm1.weight": torch.ones(C), "blocks.0.gamma_1": torch.ones(C)}
    with pytest.raises(ValueError, match=r"blocks\.0\.gamma_1.*blocks\.2\.norm1\.weight"):
        load_videomae_weights(tiny_detector(), extra)
    # allow_partial: a warning naming the key, and the rest loads.
    det = tiny_detector()
    with caplog.at_level("WARNING", logger="vmae_det.checkpoints.videomae_weights"):
        report = load_videomae_weights(det, path, allow_partial=True)
    assert any(r.levelname == "WARNING" and "backbone.blocks.1.mlp.fc2.bias" in r.getMessage() for r in caplog.records)
    assert report.missing == ["backbone.blocks.1.mlp.fc2.bias"] and report.head_loaded
    assert_detector_equals_vmad(det, sd)


def test_nothing_fits_is_an_error_even_with_allow_partial(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"model": {"stem.conv.weight": torch.zeros(8, 3, 3, 3)}, "format": "vmae_det"}, path)
    for allow in (False, True):
        with pytest.raises(ValueError, match=r"other\.pth \(vmae_det\): no tensor of the checkpoint fits"):
            load_videomae_weights(tiny_detector(), path, allow_partial=allow)


# ------------------------------------------------------------------------------------------ transformers 5 names
def to_transformers5_names(sd: dict) -> dict:
    """transformers >= 5.18 (modeling_videomae.py): q/v biases live in ``query.bias`` / ``value.bias``."""
    out = {}
    for k, v in sd.items():
        k = k.replace("attention.attention.q_bias", "attention.attention.query.bias")
        out[k.replace("attention.attention.v_bias", "attention.attention.value.bias")] = v
    return out


def test_transformers5_bias_names_load_like_transformers4():
    sd4 = hf_pretraining_state_dict()
    sd5 = to_transformers5_names(sd4)
    assert sum(".query.bias" in k for k in sd5) == DEPTH + DDEPTH and not any("q_bias" in k for k in sd5)
    m4, m5 = tiny_mae(1).eval(), tiny_mae(2).eval()
    load_videomae_weights(m4, sd4)
    report = load_videomae_weights(m5, sd5)
    assert report.source_format == "hf" and not report.missing and not report.unexpected and not report.ignored
    for (k, a), (_, b) in zip(m4.state_dict().items(), m5.state_dict().items()):
        assert torch.equal(a, b), k
    assert torch.equal(m5.encoder.blocks[0].attn.q_bias, sd4["videomae.encoder.layer.0.attention.attention.q_bias"])
    # Export writes one naming, transformers 4's (which transformers >= 5.18 renames when loading).
    back = export_state_dict(m5, "hf")
    assert set(back) == set(sd4) and not any(k.endswith((".query.bias", ".value.bias")) for k in back)


def test_transformers5_key_bias_zero_dropped_nonzero_refused():
    sd = to_transformers5_names(hf_pretraining_state_dict())
    zero = {**sd, **{f"videomae.encoder.layer.{i}.attention.attention.key.bias": torch.zeros(C) for i in range(DEPTH)}}
    report = load_videomae_weights(tiny_mae().eval(), zero)
    assert not report.missing and not report.unexpected
    assert sorted(report.ignored) == [f"videomae.encoder.layer.{i}.attention.attention.key.bias" for i in range(DEPTH)]
    assert any("key biases dropped" in n for n in report.notes)
    bad = {**sd, "videomae.encoder.layer.1.attention.attention.key.bias": torch.ones(C)}
    with pytest.raises(ValueError, match=r"layer\.1\.attention\.attention\.key\.bias is not zero"):
        load_videomae_weights(tiny_mae().eval(), bad)
    both = {**sd, "videomae.encoder.layer.0.attention.attention.q_bias": torch.zeros(C)}
    with pytest.raises(ValueError, match=r"blocks\.0\.attn\.q_bias"):
        load_videomae_weights(tiny_mae().eval(), both)


# ------------------------------------------------------------------------------------------ eval-only loading
def test_eval_only_refuses_a_checkpoint_without_the_action_head(tmp_path):
    from vmae_det.checkpoints.load_policy import is_checkpoint_of, load_init_weights

    pretrain = tmp_path / "checkpoint-799.pth"
    torch.save(
        {
            "model": export_state_dict(randomize(tiny_mae(1).eval(), 123, scale=0.05), "mcg-pretrain"),
            "epoch": 799,
            "args": argparse.Namespace(model="pretrain_videomae_tiny"),
        },
        pretrain,
    )
    with pytest.raises(ValueError, match=r"checkpoint-799\.pth \(mcg-pretrain\) does not fit.*missing.*head\.fc\.bias"):
        load_init_weights(tiny_detector(), str(pretrain), full_model=True)
    load_init_weights(tiny_detector(), str(pretrain), full_model=False)  # training init: fine
    # A Kinetics fine-tune: its 400-class head does not fit, which the error says.
    k400 = save_vmad(tmp_path / "k400.pth", vmad_state_dict(num_classes=400))
    with pytest.raises(ValueError, match=r"does not fit head\.fc \(80, 64\)"):
        load_init_weights(tiny_detector(), str(k400), full_model=True)
    # Our own checkpoint of a detector with another class count is not "this model" either.
    other = tmp_path / "model_final_5cls.pth"
    torch.save({"model": tiny_detector(num_classes=5).state_dict(), "iteration": 99}, other)
    assert not is_checkpoint_of(tiny_detector(), read_checkpoint(other)[0])
    with pytest.raises(ValueError, match=r"missing from the checkpoint.*head\.fc\.weight"):
        load_init_weights(tiny_detector(), str(other), full_model=True)


@pytest.mark.parametrize("container", ["model", "module"])
def test_eval_only_loads_vmad_checkpoint_with_head(tmp_path, container):
    from vmae_det.checkpoints.load_policy import is_checkpoint_of, load_init_weights

    sd = vmad_state_dict()
    path = save_vmad(tmp_path / "vmad_ava.pth", sd, container)
    det = tiny_detector()
    assert not is_checkpoint_of(det, read_checkpoint(path)[0])  # VMAD keys have no "backbone." prefix: not ours
    load_init_weights(det, str(path), full_model=True)
    assert_detector_equals_vmad(det, sd)


def test_eval_only_loads_our_own_detector_checkpoint(tmp_path):
    from vmae_det.checkpoints.load_policy import is_checkpoint_of, load_init_weights

    src = randomize(tiny_detector(seed=1), 123, scale=0.05)
    path = tmp_path / "model_final.pth"
    torch.save({"model": src.state_dict(), "iteration": 99}, path)  # as detectron2's Checkpointer writes it
    det = tiny_detector(seed=2)
    assert is_checkpoint_of(det, read_checkpoint(path)[0])
    load_init_weights(det, str(path), full_model=True)
    for (k, a), (_, b) in zip(det.state_dict().items(), src.state_dict().items()):
        assert torch.equal(a, b), k


def test_convert_tool_keeps_the_vmad_head(tmp_path):
    spec = importlib.util.spec_from_file_location("convert_checkpoint", ROOT / "tools" / "convert_checkpoint.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    sd = vmad_state_dict()
    summary = tool.convert(str(save_vmad(tmp_path / "vmad_ava.pth", sd)), str(tmp_path / "ours.pth"))
    assert "classification head head.bias (80,), head.weight (80, 64)" in summary
    det = tiny_detector()
    report = load_videomae_weights(det, tmp_path / "ours.pth")
    assert report.source_format == "vmae_det" and report.head_loaded and not report.missing
    assert_detector_equals_vmad(det, sd)


# ------------------------------------------------------------------------------------------ broken files and weights
def test_nan_inf_and_absurd_weights_are_refused_naming_the_file_and_tensor(tmp_path):
    from vmae_det.checkpoints import CheckpointError

    for value, what in ((float("nan"), "NaN/inf"), (float("-inf"), "NaN/inf"), (3e30, "implausibly large")):
        sd = export_state_dict(tiny_vit().eval(), "mcg-finetune")
        sd["blocks.1.attn.proj.weight"][2, 3] = value
        path = tmp_path / "bad.pth"
        torch.save({"model": sd}, path)
        for call in (lambda: read_checkpoint(path), lambda: load_videomae_weights(tiny_vit().eval(), path)):
            with pytest.raises(
                CheckpointError, match=rf"bad\.pth: 1 tensor\(s\) hold {what}.*blocks\.1\.attn\.proj\.weight"
            ):
                call()
    assert read_checkpoint(path, check_values=False)[0]["blocks.1.attn.proj.weight"][2, 3] == 3e30
    assert issubclass(CheckpointError, ValueError)  # the tools end with "error: ..." (vmae_det.cli.run_main)


def test_bit_flipped_truncated_empty_and_missing_files_are_clear_errors(tmp_path):
    from vmae_det.checkpoints import CheckpointError

    sd = export_state_dict(tiny_vit().eval(), "mcg-finetune")
    good = tmp_path / "good.pth"
    torch.save({"model": sd}, good)
    data = good.read_bytes()
    at = data.find(sd["blocks.0.mlp.fc1.weight"].numpy().tobytes()[:64]) + 100
    flipped = tmp_path / "flipped.pth"
    flipped.write_bytes(data[:at] + bytes([data[at] ^ 0x04]) + data[at + 1 :])  # one mantissa bit: plausible values
    assert (
        torch.load(flipped, weights_only=True)["model"]["blocks.0.mlp.fc1.weight"].abs().max() < 10
    )  # torch is silent
    with pytest.raises(CheckpointError, match=r"flipped\.pth: the file is corrupt \(Bad CRC-32"):
        read_checkpoint(flipped)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pth: cannot load"):
        read_checkpoint(truncated)
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pth: the checkpoint file is empty"):
        read_checkpoint(tmp_path / "empty.pth")
    with pytest.raises(FileNotFoundError, match=r"nope\.pth does not exist"):
        read_checkpoint(tmp_path / "nope.pth")
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointError, match=r"bad\.safetensors: cannot read as a safetensors file"):
        read_checkpoint(tmp_path / "bad.safetensors")
    # A file written without checksums (CRC 0) is read as before: no false alarm.
    torch.serialization.set_crc32_options(False)
    try:
        torch.save({"model": sd}, tmp_path / "no_crc.pth")
    finally:
        torch.serialization.set_crc32_options(True)
    assert torch.equal(
        read_checkpoint(tmp_path / "no_crc.pth")[0]["blocks.0.mlp.fc1.weight"], sd["blocks.0.mlp.fc1.weight"]
    )
    assert torch.equal(read_checkpoint(good)[0]["blocks.0.mlp.fc1.weight"], sd["blocks.0.mlp.fc1.weight"])


def test_position_table_that_cannot_be_resized_names_the_file(tmp_path):
    from vmae_det.checkpoints import CheckpointError

    sd = export_state_dict(tiny_vit().eval(), "mcg-finetune")
    sd["pos_embed"] = torch.zeros(1, 37, C)  # no token grid has 37 entries
    torch.save({"model": sd}, tmp_path / "odd_pos.pth")
    with pytest.raises(CheckpointError, match=r"odd_pos\.pth \(mcg-finetune\): cannot infer the token grid"):
        load_videomae_weights(tiny_vit(use_learnable_pos_emb=True).eval(), tmp_path / "odd_pos.pth")


def test_validate_canonical_catches_a_wrong_format():
    from vmae_det.checkpoints import CheckpointError
    from vmae_det.checkpoints.layouts import to_canonical, validate_canonical

    hf = export_state_dict(tiny_vit().eval(), "hf")
    validate_canonical(to_canonical(hf, "hf"), "hf.pth")
    with pytest.raises(
        CheckpointError,
        match=r"hf\.pth read as 'mcg-finetune': \d+ key\(s\) that are not VideoMAE "
        r"names.*videomae\.embeddings.*no patch embedding",
    ):
        validate_canonical(to_canonical(hf, "mcg-finetune"), "hf.pth")
    for layout in ("mcg-finetune", "mcg-pretrain"):
        src = tiny_mae().eval() if layout == "mcg-pretrain" else tiny_vit().eval()
        validate_canonical(to_canonical(export_state_dict(src, layout), layout))


def test_eval_only_without_a_checkpoint_is_refused_training_from_scratch_is_not():
    from vmae_det.checkpoints import CheckpointError, load_init_weights

    for empty in ("", None):
        with pytest.raises(CheckpointError, match="train.init_checkpoint is empty"):
            load_init_weights(tiny_detector(), empty, full_model=True)
        load_init_weights(tiny_detector(), empty, full_model=False)  # training from scratch


def test_eval_only_needs_an_exact_fit_of_our_own_checkpoint(tmp_path):
    from vmae_det.checkpoints import CheckpointError, load_init_weights

    sd = tiny_detector(seed=1).state_dict()
    extra = {**sd, "backbone.blocks.2.norm1.weight": torch.ones(C), "backbone.blocks.2.norm1.bias": torch.zeros(C)}
    torch.save({"model": extra, "iteration": 9}, tmp_path / "deeper.pth")
    with pytest.raises(
        CheckpointError,
        match=r"deeper\.pth does not fit this AVAActionDetector.*2 checkpoint "
        r"tensor\(s\) with no place in the model: backbone\.blocks\.2\.norm1",
    ):
        load_init_weights(tiny_detector(), str(tmp_path / "deeper.pth"), full_model=True)
    fewer = {k: v for k, v in sd.items() if k != "backbone.blocks.1.attn.proj.bias"}
    torch.save({"model": fewer, "iteration": 9}, tmp_path / "fewer.pth")
    with pytest.raises(
        CheckpointError,
        match=r"fewer\.pth does not fit.*1 model tensor\(s\) missing.*"
        r"random initialisation\): backbone\.blocks\.1\.attn\.proj\.bias",
    ):
        load_init_weights(tiny_detector(), str(tmp_path / "fewer.pth"), full_model=True)
    torch.save({"model": sd, "iteration": 9}, tmp_path / "ok.pth")
    det = tiny_detector()
    load_init_weights(det, str(tmp_path / "ok.pth"), full_model=True)
    assert det.weights_source == str(tmp_path / "ok.pth")  # named by errors about its outputs


def test_eval_only_of_a_model_without_videomae_backbone_refuses_foreign_weights(tmp_path):
    """The demo / export test model (no VideoViT): an unrelated checkpoint is a CheckpointError, not a TypeError."""
    from vmae_det.checkpoints import CheckpointError, load_init_weights
    from vmae_det.modeling.tiny_action_model import TinyActionModel

    torch.save({"model": export_state_dict(tiny_vit().eval(), "mcg-finetune")}, tmp_path / "vit.pth")
    with pytest.raises(CheckpointError, match=r"vit\.pth does not fit this TinyActionModel.*missing"):
        load_init_weights(TinyActionModel(num_classes=3), str(tmp_path / "vit.pth"), full_model=True)
    torch.save({"model": TinyActionModel(num_classes=3).state_dict()}, tmp_path / "own.pth")
    load_init_weights(TinyActionModel(num_classes=3), str(tmp_path / "own.pth"), full_model=True)


def test_convert_tool_refuses_wrong_format_and_overwriting_its_input(tmp_path):
    from vmae_det.checkpoints import CheckpointError

    spec = importlib.util.spec_from_file_location("convert_checkpoint", ROOT / "tools" / "convert_checkpoint.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    hf = tmp_path / "hf.pth"
    torch.save(export_state_dict(tiny_vit().eval(), "hf"), hf)
    with pytest.raises(CheckpointError, match=r"not VideoMAE names.*use --format hf or auto; nothing written"):
        tool.convert(str(hf), str(tmp_path / "out.pth"), "mcg-finetune")
    assert not (tmp_path / "out.pth").exists()
    before = hf.read_bytes()
    with pytest.raises(CheckpointError, match="would overwrite it"):
        tool.convert(str(hf), str(hf))
    assert hf.read_bytes() == before
    assert "hf.pth (hf) -> " in tool.convert(str(hf), str(tmp_path / "out.pth"), "hf")
    assert tool.main([str(hf), str(tmp_path / "out2.pth")]) == 0
