"""detectron2 ``DatasetEvaluator`` for the ACT-format datasets (UCF101-24, JHMDB-21, MultiSports): frame-AP and
video-AP of :mod:`vmae_det.evaluation.tubes`, and the official-format detection pickles."""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import pickle
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np
import torch
from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from ..formats.act import load_groundtruth, split_videos
from ..formats.atomic import atomic_write_bytes, atomic_write_text
from .tubes import AP_AREAS, frame_ap, video_ap, video_ap_all

__all__ = ["ACTEvaluator", "LABELS_PER_BOX", "frame_detections"]

logger = logging.getLogger(__name__)

LABELS_PER_BOX = ("argmax", "all")
VIDEO_THRESHOLDS = (0.2, 0.5)


def frame_detections(
    predictions: Sequence[Mapping[str, Any]],
    videos: Sequence[str],
    resolution: Mapping[str, Sequence[int]],
    labels_per_box: str = "argmax",
) -> np.ndarray:
    """The official ``(N, 8)`` frame-detection array ``[video_index, frame, label_index, score, x1, y1, x2, y2]``
    (pixels of ``resolution[video] = (h, w)``, video index into ``videos``) from per-frame predictions
    ``{"video_id", "timestamp" (ACT frame), "boxes" [N, 4] normalised, "scores" [N, C]}``.

    ``labels_per_box="argmax"`` gives each box one row, its best class (mmaction2's ``MultiSportsMetric``, the
    MultiSports baselines); ``"all"`` one row per class."""
    if labels_per_box not in LABELS_PER_BOX:
        raise ValueError(f"labels_per_box must be one of {LABELS_PER_BOX}, got {labels_per_box!r}")
    index = {v: i for i, v in enumerate(videos)}
    parts = []
    for p in predictions:
        video = p["video_id"]
        if video not in index:
            raise ValueError(f"prediction for video {video!r} (frame {p['timestamp']}), which is not a test video")
        boxes = np.asarray(p["boxes"], np.float64).reshape(-1, 4)
        if not len(boxes):
            continue
        scores = np.asarray(p["scores"], np.float64).reshape(len(boxes), -1)
        h, w = resolution[video]
        pixels = boxes * np.array([w, h, w, h], np.float64)
        if labels_per_box == "argmax":
            label = scores.argmax(1)
            score = scores[np.arange(len(boxes)), label]
        else:
            label = np.tile(np.arange(scores.shape[1]), len(boxes))
            score = scores.reshape(-1)
            pixels = np.repeat(pixels, scores.shape[1], axis=0)
        rows = np.empty((len(label), 8), np.float64)
        rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3] = index[video], int(p["timestamp"]), label, score
        rows[:, 4:] = pixels
        parts.append(rows)
    dets = np.concatenate(parts) if parts else np.zeros((0, 8))
    return dets.astype(np.float32)


class ACTEvaluator(DatasetEvaluator):
    """Collects detector outputs per frame; ``evaluate`` returns ``{"act": {"frame_mAP@0.5", "video_mAP@0.2",
    "video_mAP@0.5", "video_mAP@0.50:0.95", "frameAP/<label>"}}`` in percent and, with ``output_dir``, writes
    ``frame_detections.pkl``, ``video_detections.pkl`` (the official layouts, rescored by ``python -m
    vmae_det.evaluation.tubes``) and ``act_metrics.json`` (fractions at full precision).

    Args:
        dataset_name: a registered ACT dataset; its metadata gives ``gt_file`` and ``split``.
        gt_file, split: instead of (or over) the metadata's; ``split`` indexes ``test_videos``.
        video_ap: link the frame detections into tubes (:func:`vmae_det.evaluation.tube_linking.link_tubes`) and
            score video-AP.
        labels_per_box: ``"argmax"`` or ``"all"`` (see :func:`frame_detections`).
        ap: precision-recall area, ``"voc"`` (MultiSports' evaluator) or ``"act"`` (ACT's original).
        linking: keyword options of ``link_tubes``.
    """

    def __init__(
        self,
        dataset_name: Optional[str] = None,
        *,
        gt_file: Optional[str] = None,
        split: Optional[int] = None,
        output_dir: Optional[str] = None,
        video_ap: bool = True,
        frame_iou: float = 0.5,
        labels_per_box: str = "argmax",
        ap: str = "voc",
        linking: Optional[Mapping[str, Any]] = None,
        distributed: bool = True,
    ) -> None:
        if dataset_name is not None:
            meta = MetadataCatalog.get(dataset_name)
            gt_file = gt_file or meta.get("gt_file", None)
            split = meta.get("split", 0) if split is None else split
        if gt_file is None:
            raise ValueError("ACTEvaluator needs gt_file (argument or the dataset's metadata)")
        if labels_per_box not in LABELS_PER_BOX:
            raise ValueError(f"labels_per_box must be one of {LABELS_PER_BOX}, got {labels_per_box!r}")
        if ap not in AP_AREAS:
            raise ValueError(f"ap must be one of {tuple(AP_AREAS)}, got {ap!r}")
        self._ap = ap
        self._gt_file = str(gt_file)
        self._split = int(split or 0)
        self._output_dir = output_dir
        self._video_ap = bool(video_ap)
        self._frame_iou = float(frame_iou)
        self._labels_per_box = labels_per_box
        self._linking = dict(linking or {})
        self._distributed = distributed
        self.reset()

    def reset(self) -> None:
        self._predictions: list[dict] = []

    def process(self, inputs, outputs) -> None:
        for inp, out in zip(inputs, outputs):
            boxes = torch.as_tensor(out["boxes"]).detach().to("cpu", torch.float32).numpy().reshape(-1, 4)
            scores = torch.as_tensor(out["scores"]).detach().to("cpu", torch.float32).numpy()
            self._predictions.append(
                {"video_id": str(inp["video_id"]), "timestamp": int(inp["timestamp"]), "boxes": boxes, "scores": scores}
            )

    def evaluate(self):
        preds = self._predictions
        if self._distributed:
            comm.synchronize()
            preds = list(itertools.chain(*comm.gather(preds, dst=0)))
            if not comm.is_main_process():
                return {}
        if not preds:
            logger.warning("ACTEvaluator received no predictions")
        gt = load_groundtruth(self._gt_file)
        videos = split_videos(gt, self._gt_file, "test", self._split)
        # tubes.py scores test_videos[0], as the official evaluator: the split's videos take its place
        gt_split = dict(gt, test_videos=[videos])
        dets = frame_detections(preds, videos, gt["resolution"], self._labels_per_box)
        _warn_unscored_frames(gt["gttubes"], videos, preds)
        if preds and not len(dets):
            logger.warning(
                "ACTEvaluator: %d frames and not one box scored: the test set has no person boxes "
                "(test_box_source='proposals' without the dataset's person-box file?)",
                len(preds),
            )
        report: Dict[str, Any] = {
            "gt_file": self._gt_file,
            "split": self._split,
            "labels_per_box": self._labels_per_box,
            "ap": self._ap,
            "frame_detections": int(len(dets)),
            "frameAP": {"threshold": self._frame_iou, **frame_ap(gt_split, dets, self._frame_iou, self._ap)},
        }
        tubes = None
        if self._video_ap:
            from .tube_linking import LINKING_DEFAULTS, link_tubes  # only when video-AP is asked for

            tubes = link_tubes(dets, videos, gt["nframes"], **{"num_labels": len(gt["labels"]), **self._linking})
            report["linking"] = {**LINKING_DEFAULTS, **self._linking}
            report["videoAP"] = {f"{t:g}": video_ap(gt_split, tubes, t, self._ap) for t in VIDEO_THRESHOLDS}
            everything = video_ap_all(gt_split, tubes, self._ap)
            report["videoAP_all"] = {k: v for k, v in everything.items() if k != "thresholds"}
        if self._output_dir:
            self.write_outputs(report, dets, tubes, self._output_dir)
        return OrderedDict({"act": self._metrics(report, gt["labels"])})

    @staticmethod
    def _metrics(report: Mapping[str, Any], labels: Sequence[str]) -> Dict[str, float]:
        found = {f"frame_mAP@{report['frameAP']['threshold']:g}": report["frameAP"]["mAP"]}
        for t, r in report.get("videoAP", {}).items():
            found[f"video_mAP@{t}"] = r["mAP"]
        if "videoAP_all" in report:
            found["video_mAP@0.50:0.95"] = report["videoAP_all"]["mAP_0.50:0.95"]
        for label, ap in report["frameAP"]["per_class"].items():
            found[f"frameAP/{label}"] = ap
        metrics = {k: 100.0 * v for k, v in found.items() if v is not None and not math.isnan(v)}
        logger.info(
            "ACT frame-mAP@%g: %s; video-mAP@0.2/0.5: %s",
            report["frameAP"]["threshold"],
            _pct(report["frameAP"]["mAP"]),
            " / ".join(_pct(r["mAP"]) for r in report.get("videoAP", {}).values()) or "not computed",
        )
        return metrics

    @staticmethod
    def write_outputs(report: Mapping[str, Any], dets: np.ndarray, tubes: Optional[dict], output_dir: str) -> None:
        """Write ``frame_detections.pkl``, ``video_detections.pkl`` (if linked) and ``act_metrics.json``."""
        os.makedirs(output_dir, exist_ok=True)
        atomic_write_bytes(os.path.join(output_dir, "frame_detections.pkl"), pickle.dumps(dets, protocol=4))
        if tubes is not None:
            atomic_write_bytes(os.path.join(output_dir, "video_detections.pkl"), pickle.dumps(tubes, protocol=4))
        atomic_write_text(os.path.join(output_dir, "act_metrics.json"), json.dumps(report, indent=1) + "\n")


def _warn_unscored_frames(gttubes: Mapping[str, Any], videos: Sequence[str], preds: Sequence[Mapping]) -> None:
    """Ground-truth frames the model never saw (a test frame stride, a partial run) count as missed: say so."""
    seen = {(p["video_id"], int(p["timestamp"])) for p in preds}
    annotated = {(v, int(f)) for v in videos for tubes in gttubes.get(v, {}).values() for t in tubes for f in t[:, 0]}
    unseen = annotated - seen
    if unseen:
        v, f = min(unseen)
        logger.warning(
            f"ACTEvaluator: {len(unseen)} of {len(annotated)} annotated test frames were not evaluated (e.g. {v} "
            f"frame {f}); their ground truth counts as missed, as in the official evaluator"
        )


def _pct(v: Optional[float]) -> str:
    return "nan" if v is None else f"{100 * v:.2f}"
