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
