"""Against the real HF transformers VideoMAE, on the same weights (small random configs, nothing downloaded):

* a ``VideoMAEForPreTraining`` saved by transformers (``save_pretrained`` and a plain ``state_dict()`` file:
  on transformers >= 5.18 these are the two namings of the q/v biases) loads into our VideoMAE and gives
  the same encoder features, the same decoder predictions on the same mask and the same loss;
* a mean-pooling ``VideoMAEForVideoClassification`` loads into our VideoViT: same tokens, same pooled
  feature (``forward_features``: ``fc_norm`` of the token mean) and, through its classifier, same logits;
* our ``"hf"`` export loads with ``from_pretrained`` with no missing, unexpected or mismatched key, and the
  loaded model gives our outputs.

LayerNorm epsilons: the official VideoMAE (and ours) uses 1e-6 everywhere. transformers builds ``fc_norm``
and the decoder's ``norm`` with PyTorch's default 1e-5 (and the blocks with ``config.layer_norm_eps``,
default 1e-12; the configs here set 1e-6). With the same weights that difference alone moves outputs by
about 1e-5 of their scale; the tests measure it, then compare exactly with the epsilons aligned.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

transformers = pytest.importorskip("transformers")  # its VideoMAE classes load when a test uses them

from helpers import randomize  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from vmae_det.checkpoints import export_state_dict, load_videomae_weights  # noqa: E402
from vmae_det.modeling import build_videomae, build_vit  # noqa: E402
from vmae_det.modeling.masking import build_masking  # noqa: E402

IMG, FRAMES, PATCH, TUBELET = 32, 4, 8, 2
GRID = (FRAMES // TUBELET, IMG // PATCH, IMG // PATCH)
ENCODER = dict(img_size=IMG, num_frames=FRAMES, patch_size=PATCH, tubelet_size=TUBELET)  # + size "tiny"
OFFICIAL_EPS = 1e-6
ATOL = 1e-5


def hf_config(**kwargs) -> transformers.VideoMAEConfig:
    """transformers' VideoMAE with the shape of our ``tiny`` ViT (64 wide, 2 blocks, 2 heads) and decoder."""
    return transformers.VideoMAEConfig(
        image_size=IMG,
        patch_size=PATCH,
        num_channels=3,
        num_frames=FRAMES,
        tubelet_size=TUBELET,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=256,
        layer_norm_eps=OFFICIAL_EPS,
        decoder_hidden_size=32,
        decoder_num_hidden_layers=2,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=128,
        norm_pix_loss=True,
        **kwargs,
    )


def inputs(batch: int = 2, seed: int = 0):
    """(uint8 clips [B, 3, T, H, W], our normalised input [B, 3, T, H, W], HF pixel_values [B, T, 3, H, W],
    a tube mask [B, N] with True = masked)."""
    g = torch.Generator().manual_seed(seed)
    clips = torch.randint(0, 256, (batch, 3, FRAMES, IMG, IMG), dtype=torch.uint8, generator=g)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1, 1) * 255
    x = (clips.float() - mean) / std
    mask = build_masking("tube", GRID, 0.75)(batch, generator=g)
    return clips, x, x.permute(0, 2, 1, 3, 4).contiguous(), mask


def _version() -> tuple:
    return tuple(int(p) for p in transformers.__version__.split(".")[:2])


def save_hf(model, tmp_path, how: str):
    """Write ``model`` as transformers does: a ``save_pretrained`` folder, or ``torch.save(state_dict())``."""
    if how == "save_pretrained":
        model.save_pretrained(tmp_path / "hf")
        path = tmp_path / "hf"
        keys = set(load_file(str(path / "model.safetensors")))
    else:
        path = tmp_path / "hf_state_dict.pth"
        sd = model.state_dict()
        torch.save(sd, path)
        keys = set(sd)
    return path, keys


def check_bias_names(keys: set, how: str) -> None:
    """The file holds the q/v bias names of this transformers version (4.x / < 5.18: ``q_bias``; >= 5.18:
    ``query.bias`` in ``state_dict()``, ``q_bias`` again from ``save_pretrained``'s original format)."""
    old = any(k.endswith("attention.attention.q_bias") for k in keys)
    new = any(k.endswith("attention.attention.query.bias") for k in keys)
    assert old != new, sorted(k for k in keys if "bias" in k)[:6]
    if _version() >= (5, 18) and how == "state_dict":
        assert new
    if _version() < (5, 18):
        assert old


# ------------------------------------------------------------------------------------------ pretraining
@pytest.mark.parametrize("how", ["save_pretrained", "state_dict"])
def test_pretraining_model_from_transformers_gives_the_same_outputs(tmp_path, how):
    hf = randomize(transformers.VideoMAEForPreTraining(hf_config(use_mean_pooling=False)), 1).eval()
    path, keys = save_hf(hf, tmp_path, how)
    check_bias_names(keys, how)

    ours = build_videomae("tiny", encoder_kwargs=ENCODER, decoder_depth=2).eval()
    report = load_videomae_weights(ours, path)
    assert report.source_format == "hf" and not report.unexpected and not report.missing, report

    clips, x, pixel_values, mask = inputs()
    with torch.no_grad():
        # Encoder: all tokens, and the visible tokens of a mask (both after the final norm).
        torch.testing.assert_close(
            ours.encoder.forward_tokens(x), hf.videomae(pixel_values).last_hidden_state, atol=ATOL, rtol=0
        )
        torch.testing.assert_close(
            ours.encoder.forward_tokens(x, mask),
            hf.videomae(pixel_values, bool_masked_pos=mask).last_hidden_state,
            atol=ATOL,
            rtol=0,
        )
        # Decoder predictions of the masked cubes: equal up to the decoder norm's epsilon (HF 1e-5) ...
        out = hf(pixel_values, bool_masked_pos=mask)
        pred = ours.predict(x, mask)
        assert pred.shape == out.logits.shape == (2, int(mask[0].sum()), 3 * TUBELET * PATCH * PATCH)
        assert (pred - out.logits).abs().max() < 1e-4
        # ... and equal once it is aligned.
        assert hf.decoder.norm.eps == 1e-5 and ours.decoder.norm.eps == OFFICIAL_EPS
        ours.decoder.norm.eps = hf.decoder.norm.eps
        torch.testing.assert_close(ours.predict(x, mask), out.logits, atol=ATOL, rtol=0)
        # Same normalised-pixel targets, same loss (ours from the uint8 clips, HF from pixel_values).
        ours.train()
        loss = ours([{"clip": c} for c in clips], mask=mask)["loss_mae"]
        torch.testing.assert_close(loss, out.loss, atol=1e-4, rtol=1e-5)


# ------------------------------------------------------------------------------------------ classification
def test_mean_pooling_classifier_from_transformers_gives_the_same_outputs(tmp_path):
    hf = randomize(
        transformers.VideoMAEForVideoClassification(hf_config(use_mean_pooling=True, num_labels=7)), 2
    ).eval()
    assert hf.videomae.layernorm is None and hf.fc_norm is not None  # HF's mean pooling: no token norm
    hf.save_pretrained(tmp_path / "cls")

    ours = build_vit("tiny", use_mean_pooling=True, **ENCODER).eval()
    report = load_videomae_weights(ours, tmp_path / "cls")
    assert sorted(report.ignored) == ["classifier.bias", "classifier.weight"], report
    # A mean-pooling checkpoint has no token norm: ours keeps its init and does not use it (fc_norm path).
    assert not report.unexpected and report.missing == ["norm.bias", "norm.weight"], report
    classifier = load_file(str(tmp_path / "cls" / "model.safetensors"))

    _, x, pixel_values, _ = inputs(seed=3)
    with torch.no_grad():
        tokens, _ = ours.embed(x)
        torch.testing.assert_close(
            ours.encode(tokens, apply_norm=False), hf.videomae(pixel_values).last_hidden_state, atol=ATOL, rtol=0
        )
        out = hf(pixel_values)
        hf_feature = hf.fc_norm(hf.videomae(pixel_values).last_hidden_state.mean(1))
        logits = lambda f: F.linear(f, classifier["classifier.weight"], classifier["classifier.bias"])  # noqa: E731
        feature = ours.forward_features(x)
        assert (feature - hf_feature).abs().max() < 1e-4  # fc_norm: ours 1e-6 (official), HF 1e-5
        assert (logits(feature) - out.logits).abs().max() < 1e-4
        assert hf.fc_norm.eps == 1e-5 and ours.fc_norm.eps == OFFICIAL_EPS
        ours.fc_norm.eps = hf.fc_norm.eps
        torch.testing.assert_close(ours.forward_features(x), hf_feature, atol=ATOL, rtol=0)
        torch.testing.assert_close(logits(ours.forward_features(x)), out.logits, atol=ATOL, rtol=0)


# ------------------------------------------------------------------------------------------ our export
def _write_hf_folder(folder, state_dict, config: transformers.VideoMAEConfig):
    """What an "hf" export becomes on disk: config.json + model.safetensors (as ``save_pretrained``)."""
    folder.mkdir()
    config.save_pretrained(folder)
    save_file(
        {k: v.contiguous() for k, v in state_dict.items()}, str(folder / "model.safetensors"), metadata={"format": "pt"}
    )


def _assert_clean(info: dict) -> None:
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        assert not info.get(kind), (kind, info.get(kind))


def test_our_hf_export_loads_in_transformers_without_missing_or_unexpected_keys(tmp_path):
    torch.manual_seed(4)
    ours = randomize(build_videomae("tiny", encoder_kwargs=ENCODER, decoder_depth=2), 4).eval()
    exported = export_state_dict(ours, "hf")
    _write_hf_folder(tmp_path / "export", exported, hf_config(use_mean_pooling=False))

    hf, info = transformers.VideoMAEForPreTraining.from_pretrained(tmp_path / "export", output_loading_info=True)
    _assert_clean(info)
    hf.eval()
    # Every exported tensor went somewhere: transformers' own state dict, in our names again, is the export.
    back = export_state_dict(copy.deepcopy(ours), "hf")
    hf_sd = hf.state_dict()
    renamed = {
        k.replace("attention.attention.query.bias", "attention.attention.q_bias").replace(
            "attention.attention.value.bias", "attention.attention.v_bias"
        ): v
        for k, v in hf_sd.items()
    }
    assert set(renamed) == set(back)
    for k, v in back.items():
        assert torch.equal(renamed[k], v), k

    _, x, pixel_values, mask = inputs(seed=5)
    ours.decoder.norm.eps = hf.decoder.norm.eps  # see module docstring
    with torch.no_grad():
        torch.testing.assert_close(
            hf.videomae(pixel_values).last_hidden_state, ours.encoder.forward_tokens(x), atol=ATOL, rtol=0
        )
        torch.testing.assert_close(
            hf(pixel_values, bool_masked_pos=mask).logits, ours.predict(x, mask), atol=ATOL, rtol=0
        )


def test_our_backbone_hf_export_loads_as_videomae_model(tmp_path):
    ours = randomize(build_vit("tiny", **ENCODER), 6).eval()
    _write_hf_folder(tmp_path / "export", export_state_dict(ours, "hf"), hf_config(use_mean_pooling=False))
    hf, info = transformers.VideoMAEModel.from_pretrained(tmp_path / "export", output_loading_info=True)
    _assert_clean(info)
    _, x, pixel_values, _ = inputs(seed=7)
    with torch.no_grad():
        torch.testing.assert_close(hf.eval()(pixel_values).last_hidden_state, ours.forward_tokens(x), atol=ATOL, rtol=0)
