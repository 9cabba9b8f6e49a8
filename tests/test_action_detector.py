"""AVA action detector: shapes, loss, inference scores, RoIAlign semantics, empty boxes."""
import pytest
import torch

from vmae_det.modeling.action_detector import AVAActionDetector
from vmae_det.modeling.vit import build_vit


def make_model(**kw):
    torch.manual_seed(0)
    backbone = build_vit("tiny", img_size=32, num_frames=4, patch_size=8, tubelet_size=2)
    return AVAActionDetector(backbone=backbone, num_classes=5, **kw)


def make_input(n_boxes=2, h=32, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    boxes = torch.tensor([[2.0, 3.0, 20.0, 30.0], [10.0, 0.0, 47.0, 31.0], [0.0, 0.0, 8.0, 8.0]])[:n_boxes]
    return {
        "clip": torch.randint(0, 256, (3, 4, h, w), dtype=torch.uint8, generator=g),
        "boxes": boxes,
        "labels": (torch.rand(n_boxes, 5, generator=g) > 0.5).float(),
        "box_scores": torch.linspace(0.5, 1.0, n_boxes),
        "video_id": "v",
        "timestamp": 902,
        "clip_size": (h, w),
    }


def test_training_loss_and_gradients():
    model = make_model().train()
    loss = model([make_input(2), make_input(1, seed=1)])["loss_action"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.head.fc.weight.grad.abs().sum() > 0
    assert model.backbone.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_initial_loss_is_near_log2():
    # Small init of the classifier: logits ≈ 0, so BCE ≈ log 2.
    model = make_model().train()
    loss = model([make_input(2)])["loss_action"]
    assert abs(loss.item() - 0.6931) < 0.05


def test_inference_scores_are_sigmoid_times_box_score_and_boxes_normalised():
    model = make_model().eval()
    inp = make_input(3)
    out = model([inp])[0]
    assert out["boxes"].shape == (3, 4) and out["scores"].shape == (3, 5)
    torch.testing.assert_close(out["boxes"][1], torch.tensor([10 / 48, 0.0, 47 / 48, 31 / 32]))
    rois = torch.cat([torch.zeros(3, 1), inp["boxes"]], 1)
    probs = model.forward_tensors(inp["clip"][None].float(), rois)
    torch.testing.assert_close(out["scores"], probs * inp["box_scores"][:, None])
    plain = make_model(multiply_box_scores=False).eval()([inp])[0]
    torch.testing.assert_close(plain["scores"], probs)


def test_padding_to_patch_multiple_does_not_change_scores_of_unpadded_clip():
    model = make_model().eval()
    a = make_input(2, h=32, w=48)
    b = make_input(1, h=24, w=40, seed=3)  # padded to 24->24 (multiple of 8), 40->48 in a batch with a
    joint = model([a, b])
    alone = model([a])
    torch.testing.assert_close(joint[0]["scores"], alone[0]["scores"], atol=1e-5, rtol=1e-5)
    assert joint[1]["scores"].shape == (1, 5)


def test_empty_boxes():
    model = make_model().eval()
    inp = make_input(0)
    out = model([inp, make_input(1)])
    assert out[0]["scores"].shape == (0, 5) and out[0]["boxes"].shape == (0, 4)
    assert out[1]["scores"].shape == (1, 5)
    model.train()
    loss = model([make_input(0)])["loss_action"]
    loss.backward()  # connected graph, zero loss
    assert loss.item() == 0.0


def test_roi_features_depend_only_on_box_region():
    # RoIAlign (aligned, stride 8) must sample the box's region of the feature map and nothing else.
    model = make_model(spatial_pool="mean").eval()
    fmap = torch.zeros(1, model.backbone.embed_dim, 4, 6)
    fmap[..., :2, :3] = 1.0  # top-left 16x24 pixels at stride 8
    rois = torch.tensor([[0, 0.0, 0.0, 16.0, 24.0], [0, 32.0, 16.0, 48.0, 32.0]])
    pooled = model.roi_align(fmap, rois).mean((2, 3))
    assert torch.allclose(pooled[1], torch.zeros_like(pooled[1]))
    assert pooled[0].min() > 0.5


@pytest.mark.parametrize("kw", [dict(temporal_pool="max"), dict(head="mlp", head_hidden_dim=16, dropout=0.2)])
def test_options(kw):
    model = make_model(**kw).train()
    loss = model([make_input(2)])["loss_action"]
    loss.backward()
    assert torch.isfinite(loss)


def test_bad_option():
    with pytest.raises(ValueError, match="temporal_pool"):
        make_model(temporal_pool="median")
