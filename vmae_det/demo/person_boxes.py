"""Person boxes for the demo: "which people are in keyframe ``j``?", as absolute xyxy boxes in frame pixels plus
scores (:meth:`PersonBoxSource.boxes_for`), from a person detector here or from a box file (:mod:`.box_files`).

The detectors live in ``vmae_det/data/person_detector.py`` (shared with the AVA data tools); any callable
``detector(frame_rgb uint8 [H, W, 3]) -> (boxes float32 [K, 4] absolute xyxy, scores [K])`` works.
"""

from __future__ import annotations

import logging
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from vmae_det.constants import default_device

__all__ = ["PersonBoxSource", "DetectorBoxSource", "build_person_detector"]

logger = logging.getLogger(__name__)

Detector = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]


class PersonBoxSource:
    """Interface: person boxes of one keyframe."""

    def boxes_for(self, j: int, frame_rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Return ``(boxes float32 [K, 4] absolute xyxy, scores float32 [K])`` for keyframe ``j``."""
        raise NotImplementedError

    def finish(self, num_keyframes: int) -> Dict[str, int]:
        """Called after the last keyframe; returns counts worth reporting in the summary."""
        return {}


class DetectorBoxSource(PersonBoxSource):
    """Run a person detector on each keyframe and keep boxes scoring at least ``score_threshold``.

    A box with a non-finite score or coordinate (a broken detector) is dropped, logged and counted
    (``detector_boxes_nonfinite`` in the summary) instead of being silently lost in the comparison.
    """

    def __init__(self, detector: Detector, score_threshold: float = 0.8) -> None:
        self.detector = detector
        self.score_threshold = float(score_threshold)
        self.nonfinite = 0

    def boxes_for(self, j: int, frame_rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        boxes, scores = self.detector(frame_rgb)
        boxes = np.asarray(_to_numpy(boxes), dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(_to_numpy(scores), dtype=np.float32).reshape(-1)
        if len(boxes) != len(scores):
            raise ValueError(f"the person detector returned {len(boxes)} boxes but {len(scores)} scores")
        finite = np.isfinite(scores) & np.isfinite(boxes).all(1)
        if not finite.all():
            bad = int((~finite).sum())
            self.nonfinite += bad
            logger.warning(
                "keyframe %d: skipped %d person box(es) with a non-finite score or coordinate from the detector", j, bad
            )
        keep = finite & (scores >= self.score_threshold)
        return boxes[keep], scores[keep]

    def finish(self, num_keyframes: int) -> Dict[str, int]:
        return {"detector_boxes_nonfinite": self.nonfinite}


def _to_numpy(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x


def build_person_detector(
    name: str, weights: Optional[str] = None, device: Optional[str] = None, score_threshold: float = 0.8
) -> Detector:
    """Build a person detector by name: ``"torchvision"`` or ``"detectron2"`` (COCO Faster R-CNN), or
    ``"hog"`` (OpenCV's HOG pedestrian detector: no weights file, nothing downloaded, CPU only).

    Delegates to :func:`vmae_det.data.person_detector.build_person_detector` (Faster R-CNN weights from
    the local file ``weights``, else downloaded and cached by torchvision/detectron2; a failed download is a
    ``DetectorDownloadError``, an ``OSError`` of one line naming ``--person-weights`` and
    ``--person-detector hog``). ``device`` defaults to CUDA when available.
    """
    from vmae_det.data.person_detector import build_person_detector as build

    device = device or default_device()
    return build(
        name,
        weights=weights,
        device=device,
        score_threshold=score_threshold,
        weights_flag="--person-weights",
        detector_flag="--person-detector",
    )
