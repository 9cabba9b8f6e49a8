"""Off-the-shelf COCO person detectors for AVA proposals (tools/make_proposals.py) and the demo.

``build_person_detector(name, weights=None, ...)`` returns a callable
``detector(frame_rgb uint8 [H, W, 3]) -> (boxes float32 [K, 4] absolute xyxy, scores float32 [K])``
keeping only the COCO "person" class above ``score_threshold``.

* ``"torchvision"``: ``fasterrcnn_resnet50_fpn`` (COCO).
* ``"detectron2"``: a detectron2 model-zoo config (default Faster R-CNN R50-FPN 3x).

``weights`` is a local file; without it the libraries' own download/cache is used, and being
offline gives an error saying to pass ``--weights``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Optional, Tuple

import numpy as np
import torch

__all__ = ["build_person_detector", "TorchvisionPersonDetector", "Detectron2PersonDetector", "DETECTORS"]

logger = logging.getLogger(__name__)

DETECTORS = ("torchvision", "detectron2")
Detector = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]


def _offline_error(what: str, err: Exception) -> RuntimeError:
    return RuntimeError(
        f"could not download {what} ({type(err).__name__}: {err}). This machine may be offline: "
        "download the weights elsewhere and pass a local file with --weights PATH."
    )


def _load_state_dict(path: str) -> dict:
    if not Path(path).is_file():
        raise FileNotFoundError(f"detector weights not found: {path}")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]  # a training checkpoint {"model": ..., ...}
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(sd).__name__}")
    return sd


class TorchvisionPersonDetector:
    """torchvision ``fasterrcnn_resnet50_fpn`` (COCO) restricted to people (COCO label 1)."""

    PERSON_LABEL = 1  # torchvision's COCO category ids: 0 background, 1 person

    def __init__(
        self, weights: Optional[str] = None, device: str = "cpu", score_threshold: float = 0.7, min_size: int = 800
    ):
        from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights, fasterrcnn_resnet50_fpn

        self.score_threshold = score_threshold
        if weights:
            model = fasterrcnn_resnet50_fpn(
                weights=None, weights_backbone=None, box_score_thresh=score_threshold, min_size=min_size
            )
            missing, unexpected = model.load_state_dict(_load_state_dict(weights), strict=False)
            if missing or unexpected:
                raise ValueError(
                    f"{weights}: not a fasterrcnn_resnet50_fpn state dict "
                    f"(missing {missing[:3]}..., unexpected {unexpected[:3]}...)"
                )
        else:
            try:
                model = fasterrcnn_resnet50_fpn(
                    weights=FasterRCNN_ResNet50_FPN_Weights.COCO_V1, box_score_thresh=score_threshold,
                    min_size=min_size,
                )
            except (OSError, RuntimeError) as e:  # URLError is an OSError
                raise _offline_error("torchvision fasterrcnn_resnet50_fpn COCO weights", e) from e
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)

    @torch.no_grad()
    def __call__(self, frame_rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(frame_rgb)).to(self.device).permute(2, 0, 1).float() / 255.0
        out = self.model([x])[0]
        keep = (out["labels"] == self.PERSON_LABEL) & (out["scores"] >= self.score_threshold)
        return (
            out["boxes"][keep].cpu().numpy().astype(np.float32).reshape(-1, 4),
            out["scores"][keep].cpu().numpy().astype(np.float32),
        )


class Detectron2PersonDetector:
    """A detectron2 model-zoo detector restricted to people (class 0 of COCO's contiguous ids)."""

    PERSON_CLASS = 0

    def __init__(
        self,
        weights: Optional[str] = None,
        device: str = "cpu",
        score_threshold: float = 0.7,
        config: str = "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
    ):
        import vmae_det  # noqa: F401  (shims)
        from detectron2 import model_zoo
        from detectron2.engine import DefaultPredictor

        cfg = model_zoo.get_config(config)
        cfg.MODEL.DEVICE = device
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = score_threshold
        if weights:
            if not Path(weights).is_file():
                raise FileNotFoundError(f"detector weights not found: {weights}")
            cfg.MODEL.WEIGHTS = str(weights)
        else:
            cfg.MODEL.WEIGHTS = model_zoo.get_checkpoint_url(config)
        try:
            self.predictor = DefaultPredictor(cfg)
        except (OSError, RuntimeError) as e:
            if weights:
                raise
            raise _offline_error(f"detectron2 model-zoo weights for {config}", e) from e
        self.input_format = cfg.INPUT.FORMAT
        self.score_threshold = score_threshold

    @torch.no_grad()
    def __call__(self, frame_rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        img = frame_rgb[..., ::-1] if self.input_format == "BGR" else frame_rgb
        inst = self.predictor(np.ascontiguousarray(img))["instances"].to("cpu")
        keep = (inst.pred_classes == self.PERSON_CLASS) & (inst.scores >= self.score_threshold)
        return (
            inst.pred_boxes.tensor[keep].numpy().astype(np.float32).reshape(-1, 4),
            inst.scores[keep].numpy().astype(np.float32),
        )


def build_person_detector(
    name: str, weights: Optional[str] = None, device: str = "cpu", score_threshold: float = 0.7
) -> Detector:
    """Build a person detector: ``name`` in :data:`DETECTORS`, ``weights`` a local file or None."""
    if name == "torchvision":
        return TorchvisionPersonDetector(weights, device=device, score_threshold=score_threshold)
    if name == "detectron2":
        return Detectron2PersonDetector(weights, device=device, score_threshold=score_threshold)
    raise ValueError(f"unknown person detector {name!r}, expected one of {DETECTORS}")
