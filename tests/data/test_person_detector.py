"""detectron2's COCO Faster R-CNN R50-FPN as the person detector, through its real loading path
(model-zoo config + DetectionCheckpointer) with weights this test creates."""

import numpy as np
import pytest
import torch

import vmae_det  # noqa: F401
from vmae_det.data.person_detector import build_person_detector

CONFIG = "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml"


@pytest.fixture(scope="module")
def person_biased_weights(tmp_path_factory):
    """Random R50-FPN weights whose classifier always prefers COCO class 0 (person)."""
    from detectron2 import model_zoo
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    cfg = model_zoo.get_config(CONFIG)
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():
        cls = model.roi_heads.box_predictor.cls_score
        cls.weight.zero_()
        cls.bias.fill_(-10.0)
        cls.bias[0] = 10.0  # "person" for every proposal
        model.roi_heads.box_predictor.bbox_pred.weight.zero_()
        model.roi_heads.box_predictor.bbox_pred.bias.zero_()
    out = tmp_path_factory.mktemp("d2w")
    DetectionCheckpointer(model, save_dir=str(out)).save("person_biased")
    return out / "person_biased.pth"


def test_detectron2_person_detector_loads_local_weights_and_returns_people(person_biased_weights):
    detector = build_person_detector("detectron2", weights=str(person_biased_weights), score_threshold=0.5)
    frame = (np.random.default_rng(0).random((96, 128, 3)) * 255).astype(np.uint8)
    boxes, scores = detector(frame)
    assert boxes.dtype == np.float32 and boxes.shape[1] == 4 and len(boxes) == len(scores) > 0
    assert np.all(scores > 0.99)  # softmax of the biased classifier
    assert np.all(boxes[:, 0] >= 0) and np.all(boxes[:, 2] <= 128) and np.all(boxes[:, 3] <= 96)
    assert np.all(boxes[:, 2] > boxes[:, 0])


def test_detectron2_person_detector_missing_weights_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        build_person_detector("detectron2", weights=str(tmp_path / "nope.pth"))


# ------------------------------------------------------------------------------------------ bad weights
@pytest.fixture(scope="module")
def bad_weights(person_biased_weights, tmp_path_factory):
    """Broken variants of the detectron2 weights: NaN, another class count, unrelated, text, bit-flipped."""
    out = tmp_path_factory.mktemp("bad_d2")
    ckpt = torch.load(person_biased_weights, weights_only=True)
    sd = ckpt["model"]
    nan = {**sd, "roi_heads.box_head.fc1.weight": sd["roi_heads.box_head.fc1.weight"].clone()}
    nan["roi_heads.box_head.fc1.weight"][0, 0] = float("nan")
    torch.save({**ckpt, "model": nan}, out / "nan.pth")
    other = {
        **sd,
        "roi_heads.box_predictor.cls_score.weight": torch.zeros(3, 1024),
        "roi_heads.box_predictor.cls_score.bias": torch.zeros(3),
    }
    torch.save({**ckpt, "model": other}, out / "two_classes.pth")
    torch.save(
        {"model": {"conv1.weight": torch.randn(8, 3, 3, 3), "fc.weight": torch.randn(10, 8)}}, out / "unrelated.pth"
    )
    (out / "notes.pth").write_text("not weights\n")
    data = bytearray(person_biased_weights.read_bytes())
    data[len(data) // 2] ^= 0x10
    (out / "flipped.pth").write_bytes(bytes(data))
    return out


@pytest.mark.parametrize(
    "name, message",
    [
        (
            "nan.pth",
            r"nan\.pth: person-detector weights: 1 tensor\(s\) hold NaN/inf values "
            r"\(roi_heads\.box_head\.fc1\.weight\)",
        ),
        (
            "two_classes.pth",
            r"two_classes\.pth: not weights of this detectron2 detector \(2 shape mismatch\(es\): "
            r"roi_heads\.box_predictor\.cls_score",
        ),
        ("unrelated.pth", r"unrelated\.pth: not weights of this detectron2 detector \(\d+ model tensor\(s\) missing"),
        ("notes.pth", r"notes\.pth: cannot read the person-detector weights"),
        ("flipped.pth", r"flipped\.pth: the file is corrupt \(Bad CRC-32"),
    ],
)
def test_detectron2_person_detector_refuses_broken_or_unrelated_weights(bad_weights, name, message):
    from vmae_det.data.person_detector import DetectorWeightsError

    with pytest.raises(DetectorWeightsError, match=message):
        build_person_detector("detectron2", weights=str(bad_weights / name))
    assert issubclass(DetectorWeightsError, ValueError)  # tools end with "error: ..." (vmae_det.cli.run_main)


def test_torchvision_person_detector_refuses_broken_or_unrelated_weights(bad_weights, tmp_path):
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    from vmae_det.data.person_detector import DetectorWeightsError

    with pytest.raises(DetectorWeightsError, match=r"unrelated\.pth: not a fasterrcnn_resnet50_fpn state dict"):
        build_person_detector("torchvision", weights=str(bad_weights / "unrelated.pth"))
    with pytest.raises(DetectorWeightsError, match=r"notes\.pth: cannot read the person-detector weights"):
        build_person_detector("torchvision", weights=str(bad_weights / "notes.pth"))
    torch.manual_seed(0)
    sd = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict()
    sd["roi_heads.box_predictor.cls_score.weight"] = sd["roi_heads.box_predictor.cls_score.weight"][:3]
    torch.save(sd, tmp_path / "three_classes.pth")
    with pytest.raises(
        DetectorWeightsError,
        match=r"three_classes\.pth: not a fasterrcnn.*1 shape mismatch\(es\): "
        r"roi_heads\.box_predictor\.cls_score\.weight",
    ):
        build_person_detector("torchvision", weights=str(tmp_path / "three_classes.pth"))
    sd["roi_heads.box_predictor.cls_score.weight"] = torch.full((91, 1024), float("inf"))
    torch.save(sd, tmp_path / "inf.pth")
    with pytest.raises(DetectorWeightsError, match=r"inf\.pth: person-detector weights: 1 tensor\(s\) hold NaN/inf"):
        build_person_detector("torchvision", weights=str(tmp_path / "inf.pth"))
