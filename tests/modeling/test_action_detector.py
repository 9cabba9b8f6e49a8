"""AVA action detector: shapes, loss, inference scores, RoIAlign semantics, empty boxes."""

import pytest
import torch
from torchvision.ops import roi_align

from vmae_det.modeling.action_detector import AVAActionDetector
from vmae_det.modeling.vit import build_vit
from vmae_det.modeling.vmad_boxes import extend_boxes


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


def test_initial_loss_is_near_log2_per_box():
    # VMAD's head init (trunc-normal 0.02 x 0.001): logits ≈ 0, so BCE ≈ log 2 per box and class;
    # VMAD's loss is the mean times the number of boxes in the batch ("box_sum").
    model = make_model().train()
    assert model.head.fc.weight.std() < 1e-4 and model.head.fc.weight.abs().max() > 0
    assert abs(model([make_input(2), make_input(1)])["loss_action"].item() - 3 * 0.6931) < 0.01
    mean = make_model(loss_reduction="mean").train()
    assert abs(mean([make_input(2), make_input(1)])["loss_action"].item() - 0.6931) < 0.01


def test_inference_scores_are_sigmoid_times_box_score_and_boxes_normalised():
    model = make_model().eval()
    inp = make_input(3)
    out = model([inp])[0]
    assert out["boxes"].shape == (3, 4) and out["scores"].shape == (3, 5)
    torch.testing.assert_close(out["boxes"][1], torch.tensor([10 / 48, 0.0, 47 / 48, 31 / 32]))
    # pooled over the test-time extended boxes (VMAD's BoxList.extend((0.1, 0.05))), reported on the given ones
    rois = torch.cat([torch.zeros(3, 1), extend_boxes(inp["boxes"], (0.1, 0.05), 32, 48)], 1)
    probs = model.forward_tensors(inp["clip"][None].float(), rois)
    torch.testing.assert_close(out["scores"], probs * inp["box_scores"][:, None])
    plain = make_model(multiply_box_scores=False).eval()([inp])[0]
    torch.testing.assert_close(plain["scores"], probs)
    unextended = make_model(test_box_extension=None).eval()([inp])[0]
    rois = torch.cat([torch.zeros(3, 1), inp["boxes"]], 1)
    expected = model.forward_tensors(inp["clip"][None].float(), rois) * inp["box_scores"][:, None]
    torch.testing.assert_close(unextended["scores"], expected)


def test_extension_is_clamped_to_each_clips_own_size_in_a_padded_batch():
    # b (24x40) is padded to 32x48 next to a; its extended boxes must stop at x=39, y=23 (VMAD's
    # BoxList knows each clip's own size), computed on b's slice of the padded batch.
    model = make_model().eval()
    a = make_input(2, h=32, w=48)
    b = make_input(1, h=24, w=40, seed=3)
    b["boxes"] = torch.tensor([[20.0, 10.0, 39.0, 23.0]])
    joint = model([a, b])[1]["scores"]
    fmap_rois = torch.cat([torch.zeros(1, 1), extend_boxes(b["boxes"], (0.1, 0.05), 24, 40)], 1)
    assert fmap_rois[0, 3] == 39.0 and fmap_rois[0, 4] == 23.0
    x = model._batch_clips([a, b])[1:2]
    expected = model.forward_tensors(x, fmap_rois) * b["box_scores"][:, None]
    torch.testing.assert_close(joint, expected)


def test_roi_align_is_torchvisions_unaligned_by_default():
    model = make_model()
    fmap = torch.randn(1, model.backbone.embed_dim, 4, 6)
    rois = torch.tensor([[0, 3.0, 5.0, 30.0, 27.0]])
    ref = roi_align(fmap, rois, (7, 7), spatial_scale=1 / 8, sampling_ratio=0, aligned=False)
    torch.testing.assert_close(model.roi_align(fmap, rois), ref)


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
    model = make_model(spatial_pool="mean", roi_aligned=True).eval()
    fmap = torch.zeros(1, model.backbone.embed_dim, 4, 6)
    fmap[..., :2, :3] = 1.0  # top-left 16x24 pixels at stride 8
    rois = torch.tensor([[0, 0.0, 0.0, 16.0, 24.0], [0, 32.0, 16.0, 48.0, 32.0]])
    pooled = model.roi_align(fmap, rois).mean((2, 3))
    assert torch.allclose(pooled[1], torch.zeros_like(pooled[1]))
    assert pooled[0].min() > 0.5


def one_hot_input(targets, seed=0):
    inp = make_input(len(targets), seed=seed)
    inp["labels"] = torch.zeros(len(targets), 5)
    for i, t in enumerate(targets):
        if t is not None:
            inp["labels"][i, t] = 1.0
    return inp


def test_softmax_ce_loss_is_cross_entropy_of_the_labelled_boxes():
    # mmaction2 BBoxHeadAVA(multilabel=False): CE against label rows normalised to 1, unlabelled rows left out
    inputs = [one_hot_input([3, None]), one_hot_input([0, 4, 1], seed=1)]
    inputs[1]["labels"][2, 2] = 1.0  # a box with two labels targets half of each
    model = make_model(loss="softmax_ce", loss_reduction="mean").train()
    torch.manual_seed(1)
    loss = model(inputs)["loss_action"]
    model.eval()  # same logits without stochastic depth: the tiny ViT has none, so train == eval features
    rois = model._rois(inputs)
    logits = model.forward_logits(model._batch_clips(inputs), rois)
    labels = torch.cat([d["labels"] for d in inputs])
    keep = labels.sum(1) > 0
    target = labels[keep] / labels[keep].sum(1, keepdim=True)
    expected = -(target * logits[keep].log_softmax(-1)).sum(1).mean()
    torch.testing.assert_close(loss, expected)
    box_sum = make_model(loss="softmax_ce").train()(inputs)["loss_action"]
    torch.testing.assert_close(box_sum, 4 * expected)  # four labelled boxes
    # near-zero initial logits: CE ~ log(num_classes) per box
    assert abs(loss.item() - torch.log(torch.tensor(5.0)).item()) < 0.01
    loss.backward()
    assert model.head.fc.weight.grad.abs().sum() > 0


def test_softmax_ce_without_labelled_boxes_is_zero_with_a_connected_graph():
    model = make_model(loss="softmax_ce").train()
    loss = model([one_hot_input([None, None])])["loss_action"]
    assert loss.item() == 0.0
    loss.backward()
    assert model.head.fc.weight.grad is not None


def test_softmax_ce_inference_scores_are_softmax_times_box_score():
    model = make_model(loss="softmax_ce").eval()
    with torch.no_grad():
        model.head.fc.weight.normal_(0, 1.0)  # away from the uniform start
    inp = make_input(3)
    out = model([inp])[0]
    rois = torch.cat([torch.zeros(3, 1), extend_boxes(inp["boxes"], (0.1, 0.05), 32, 48)], 1)
    logits = model.forward_logits(inp["clip"][None].float(), rois)
    torch.testing.assert_close(model.forward_tensors(inp["clip"][None].float(), rois), logits.softmax(-1))
    torch.testing.assert_close(out["scores"], logits.softmax(-1) * inp["box_scores"][:, None])
    torch.testing.assert_close(out["scores"].sum(1), inp["box_scores"])


def test_default_loss_is_sigmoid_bce():
    model = make_model()
    assert model.loss == "sigmoid_bce"
    inputs = [make_input(2), make_input(1, seed=1)]
    loss = model.train()(inputs)["loss_action"]
    logits = model.eval().forward_logits(model._batch_clips(inputs), model._rois(inputs))
    labels = torch.cat([d["labels"] for d in inputs])
    torch.testing.assert_close(loss, 3 * torch.nn.functional.binary_cross_entropy_with_logits(logits, labels))


@pytest.mark.parametrize("kw", [dict(temporal_pool="max"), dict(head="mlp", head_hidden_dim=16, dropout=0.2)])
def test_options(kw):
    model = make_model(**kw).train()
    loss = model([make_input(2)])["loss_action"]
    loss.backward()
    assert torch.isfinite(loss)


def test_bad_option():
    with pytest.raises(ValueError, match="temporal_pool"):
        make_model(temporal_pool="median")
    with pytest.raises(ValueError, match="loss must be one of"):
        make_model(loss="softmax")
    with pytest.raises(ValueError, match="loss_reduction"):
        make_model(loss_reduction="sum")
    with pytest.raises(ValueError, match="test_box_extension"):
        make_model(test_box_extension=(0.1, -0.2))


def test_non_finite_scores_are_refused_naming_the_weights_and_the_input():
    from vmae_det.modeling.action_detector import NonFiniteScoresError

    model = make_model().eval()
    with torch.no_grad():
        model.backbone.blocks[1].mlp.fc2.bias[0] = float("nan")
    model.weights_source = "broken/model_final.pth"
    with pytest.raises(
        NonFiniteScoresError,
        match=r"broken/model_final\.pth: NaN/inf action scores for 3 of 3 "
        r"boxes \(first: video_id=v timestamp=902\).*weights are broken",
    ):
        model([make_input(3)])
    assert isinstance(NonFiniteScoresError("x"), ValueError)  # tools end with "error: ..." (vmae_det.cli)
    nan_box = make_input(2)
    nan_box["boxes"] = nan_box["boxes"].clone()
    nan_box["boxes"][1, 2] = float("nan")
    with pytest.raises(NonFiniteScoresError, match=r"NaN/inf person boxes for 1 of 3 boxes.*boxes given"):
        make_model().eval()([make_input(1), nan_box])
    assert torch.isfinite(make_model().eval()([make_input(3)])[0]["scores"]).all()  # finite: unchanged path
