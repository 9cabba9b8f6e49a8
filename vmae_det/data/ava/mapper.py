"""``AVAClipMapper``: AVA keyframe dataset dict -> model input dict.

Output::

    {"clip": uint8 [3, T, H, W], "boxes": float32 [N, 4] clip pixels, "labels": float32 [N, C]
     (when GT is known), "box_scores": float32 [N], "video_id", "timestamp", "clip_size": (H, W)}

plus ``"box_convention"`` and ``"image_size"`` for VMAD's inclusive-pixel boxes.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from detectron2.data import transforms as T
from detectron2.structures import Boxes, pairwise_iou
from detectron2.utils.logger import log_every_n_seconds

from ...modeling.vmad_boxes import jitter_boxes
from ..transforms import apply_augmentations_to_clip, build_ava_test_augmentations, build_ava_train_augmentations
from .clip_source import clip_indices, clip_source_for, keyframe_center

__all__ = ["AVAClipMapper", "box_iou_labels"]

logger = logging.getLogger(__name__)

TRAIN_BOX_SOURCES = ("gt", "gt+proposals")
TEST_BOX_SOURCES = ("proposals", "gt")


def box_iou_labels(
    boxes: np.ndarray, gt_boxes: np.ndarray, gt_labels: np.ndarray, iou_threshold: float = 0.5
) -> np.ndarray:
    """Labels of the best-overlapping GT box with IoU >= ``iou_threshold``, else an all-zero row (SlowFast)."""
    out = np.zeros((len(boxes), gt_labels.shape[1]), np.float32)
    if len(boxes) == 0 or len(gt_boxes) == 0:
        return out
    iou = pairwise_iou(Boxes(torch.as_tensor(boxes)), Boxes(torch.as_tensor(gt_boxes))).numpy()
    best = iou.argmax(1)
    hit = iou[np.arange(len(boxes)), best] >= iou_threshold
    out[hit] = gt_labels[best[hit]]
    return out


class AVAClipMapper:
    """Map one AVA keyframe dict to the detector's input dict.

    Args:
        is_train: training mode (train box source, GT jitter, train augmentations).
        num_classes: width of the multi-hot labels; column ``k`` is action id ``k + 1``.
        num_frames, sampling_rate: clip length and stride.
        clip_offset: see :func:`~vmae_det.data.ava.clip_source.clip_indices`.
        augmentations: detectron2 augmentations (default: the AVA ones for ``is_train``).
        train_box_source: ``"gt"`` or ``"gt+proposals"`` (proposals take the labels of a GT box with IoU >=
            ``match_iou``).
        test_box_source: ``"proposals"`` (0.8 is the official AVA threshold) or ``"gt"``.
        gt_box_jitter: ``(x_out, x_in, y_out, y_in)`` fractions, see
            ``vmae_det.modeling.vmad_boxes.jitter_boxes``; a float ``s`` means ``(s, s, s, s)``.
        max_boxes: keep at most this many boxes (highest score first; GT boxes score 1.0).
        min_box_size: drop boxes narrower or lower than this after the augmentations; 0 keeps boxes the
            crop cut away, as VMAD does.
        video_backend: decoder for ``video_path`` dicts.
    """

    def __init__(
        self,
        *,
        is_train: bool,
        num_classes: int,
        num_frames: int = 16,
        sampling_rate: int = 4,
        clip_offset: int = 0,
        augmentations: Optional[Sequence[T.Augmentation]] = None,
        train_box_source: str = "gt",
        train_proposal_threshold: float = 0.9,
        test_box_source: str = "proposals",
        test_proposal_threshold: float = 0.8,
        gt_box_jitter: Union[float, Sequence[float], None] = None,
        match_iou: float = 0.5,
        max_boxes: int = 100,
        min_box_size: float = 1.0,
        video_backend: str = "auto",
    ):
        if train_box_source not in TRAIN_BOX_SOURCES:
            raise ValueError(f"train_box_source must be one of {TRAIN_BOX_SOURCES}, got {train_box_source!r}")
        if test_box_source not in TEST_BOX_SOURCES:
            raise ValueError(f"test_box_source must be one of {TEST_BOX_SOURCES}, got {test_box_source!r}")
        self.is_train = is_train
        self.num_classes = num_classes
        self.num_frames = num_frames
        self.sampling_rate = sampling_rate
        self.clip_offset = int(clip_offset)
        if augmentations is None:
            augmentations = build_ava_train_augmentations() if is_train else build_ava_test_augmentations()
        self.augmentations = list(augmentations)
        self.train_box_source = train_box_source
        self.train_proposal_threshold = train_proposal_threshold
        self.test_box_source = test_box_source
        self.test_proposal_threshold = test_proposal_threshold
        if isinstance(gt_box_jitter, (int, float)):
            gt_box_jitter = (float(gt_box_jitter),) * 4 if gt_box_jitter else None
        if gt_box_jitter is not None:
            gt_box_jitter = tuple(float(v) for v in gt_box_jitter)
            if len(gt_box_jitter) != 4 or min(gt_box_jitter) < 0:
                raise ValueError(
                    f"gt_box_jitter must be a fraction or (x_out, x_in, y_out, y_in) >= 0, got {gt_box_jitter}"
                )
        self.gt_box_jitter = gt_box_jitter
        self.match_iou = match_iou
        self.max_boxes = max_boxes
        self.min_box_size = min_box_size
        self.video_backend = video_backend
        # Counted per process (each dataloader worker has its own) and logged periodically.
        self.stats: Counter = Counter()

    def _gt(self, dataset_dict: dict) -> Tuple[np.ndarray, np.ndarray]:
        anns = dataset_dict.get("annotations") or []
        boxes = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        labels = np.zeros((len(anns), self.num_classes), np.float32)
        for i, a in enumerate(anns):
            for act in a["actions"]:
                if not 1 <= act <= self.num_classes:
                    raise ValueError(
                        f"{dataset_dict['video_id']},{dataset_dict['timestamp']}: action id {act} "
                        f"outside 1..{self.num_classes} (num_classes)"
                    )
                labels[i, act - 1] = 1.0
        return boxes, labels

    def _proposals(self, dataset_dict: dict, threshold: float) -> Tuple[np.ndarray, np.ndarray]:
        props = dataset_dict.get("proposals") or {}
        boxes = np.asarray(props.get("boxes", np.zeros((0, 4))), np.float32).reshape(-1, 4)
        scores = np.asarray(props.get("scores", np.zeros((0,))), np.float32).reshape(-1)
        keep = scores >= threshold
        return boxes[keep], scores[keep]

    def _select_boxes(self, dataset_dict: dict) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        """Normalised boxes, their scores, and labels (``None`` when GT is unknown)."""
        has_gt = "annotations" in dataset_dict
        gt_boxes, gt_labels = self._gt(dataset_dict)
        if self.is_train:
            boxes, scores, labels = gt_boxes, np.ones(len(gt_boxes), np.float32), gt_labels
            if self.train_box_source == "gt+proposals":
                pb, ps = self._proposals(dataset_dict, self.train_proposal_threshold)
                pl = box_iou_labels(pb, gt_boxes, gt_labels, self.match_iou)
                boxes, scores, labels = (
                    np.concatenate([boxes, pb]),
                    np.concatenate([scores, ps]),
                    np.concatenate([labels, pl]),
                )
            return boxes, scores, labels
        if self.test_box_source == "gt":
            return gt_boxes, np.ones(len(gt_boxes), np.float32), gt_labels if has_gt else None
        boxes, scores = self._proposals(dataset_dict, self.test_proposal_threshold)
        labels = box_iou_labels(boxes, gt_boxes, gt_labels, self.match_iou) if has_gt else None
        return boxes.astype(np.float32), scores, labels

    def __call__(self, dataset_dict: dict) -> dict:
        d = copy.copy(dataset_dict)  # shallow: we never mutate nested values
        video_id, ts = d["video_id"], d["timestamp"]
        ts = float(ts) if isinstance(ts, float) else int(ts)  # AVA-Kinetics: Kinetics keyframes at x.xxxxxx s
        span = self.num_frames * self.sampling_rate
        with clip_source_for(d, backend=self.video_backend, span=span) as source:
            center = keyframe_center(d, source)
            if not 0 <= center < source.num_frames:
                path = d.get("video_path") or d.get("frames_dir") or d.get("clips_dir")
                short = " (shorter than the seconds its name gives?)" if "start_sec" in d else ""
                raise ValueError(
                    f"{video_id},{ts}: keyframe frame {center} outside the video's {source.num_frames} frames: "
                    f"{path}{short}"
                )
            frames = source.get_frames(
                clip_indices(center, self.num_frames, self.sampling_rate, source.num_frames, self.clip_offset)
            )
        h0, w0 = frames.shape[1:3]

        boxes, scores, labels = self._select_boxes(d)
        if len(boxes) > self.max_boxes:
            order = np.argsort(-scores, kind="stable")[: self.max_boxes]
            boxes, scores = boxes[order], scores[order]
            labels = labels[order] if labels is not None else None
            self.stats["boxes_over_max"] += 1
        inclusive = d.get("box_convention") == "inclusive"
        pix = boxes * np.array([w0, h0, w0, h0], np.float32)
        frames, pix = apply_augmentations_to_clip(self.augmentations, frames, pix, inclusive=inclusive)
        if self.is_train and self.gt_box_jitter is not None and len(pix):
            pix = jitter_boxes(torch.from_numpy(pix), self.gt_box_jitter, frames.shape[1], frames.shape[2]).numpy()
        wh = pix[:, 2:] - pix[:, :2]
        # Boxes cropped away or squashed to a line; VMAD drops no inclusive box after loading.
        keep = (wh >= (0.0 if inclusive else self.min_box_size)).all(axis=1)
        if not keep.all():
            self.stats["degenerate_boxes_dropped"] += int((~keep).sum())
        pix, scores = pix[keep], scores[keep]
        labels = labels[keep] if labels is not None else None
        if len(pix) == 0:
            self.stats["keyframes_without_boxes"] += 1
            log_every_n_seconds(
                logging.INFO,
                f"AVAClipMapper (this worker): a keyframe has no box left; counts so far: {dict(self.stats)}",
                n=60,
                name=__name__,
            )

        clip = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)
        out = {
            "clip": clip,
            "boxes": torch.from_numpy(pix.astype(np.float32)).reshape(-1, 4),
            "box_scores": torch.from_numpy(scores.astype(np.float32)).reshape(-1),
            "video_id": video_id,
            "timestamp": ts,
            "clip_size": (int(clip.shape[2]), int(clip.shape[3])),
        }
        if labels is not None:
            out["labels"] = torch.from_numpy(labels.astype(np.float32)).reshape(-1, self.num_classes)
        if inclusive:
            out["box_convention"] = "inclusive"
            out["image_size"] = tuple(int(v) for v in d.get("image_size", (h0, w0)))
        return out
