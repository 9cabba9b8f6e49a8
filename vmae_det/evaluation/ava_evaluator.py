"""detectron2 ``DatasetEvaluator`` for AVA frame-mAP."""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections import OrderedDict
from typing import Optional

import numpy as np
import torch
from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

import vmae_det  # noqa: F401  (shims before detectron2)

from ..formats.ava import AVARows, read_ava_csv, read_exclusions, read_labelmap, write_detections_csv
from .ava_io import DEFAULT_LABEL_MAP, write_metrics
from .ava_map import (
    MAX_DETECTIONS_PER_KEYFRAME,
    AVAResult,
    check_max_detections_per_keyframe,
    describe_detections_per_keyframe,
    evaluate,
)
from .plot import plot_per_class_ap

__all__ = ["AVAEvaluator"]

logger = logging.getLogger(__name__)

_NONE_STRINGS = ("None", "none", "null")


class AVAEvaluator(DatasetEvaluator):
    """Collects detector outputs per keyframe and computes the official AVA frame-mAP.

    Outputs are ``boxes`` (``[N, 4]`` normalised xyxy) and ``scores`` (``[N, num_classes]``, column ``k`` is
    action id ``k + 1``); ``evaluate`` returns ``{"ava": {"mAP": ..., "AP/<name>": ...}}`` in percent.

    Every label-map class of a box is a row, so one box already exceeds the official cap of 50 rows per keyframe
    with the 60-class map; ``max_detections_per_keyframe=None`` keeps every row, as VMAD and SlowFast do.
    """

    def __init__(
        self,
        dataset_name: Optional[str] = None,
        *,
        label_map_file: Optional[str] = None,
        groundtruth_csv: Optional[str] = None,
        exclusions_csv: Optional[str] = None,
        protocol: str = "2019",
        output_dir: Optional[str] = None,
        distributed: bool = True,
        max_detections_per_keyframe: Optional[int] = MAX_DETECTIONS_PER_KEYFRAME,
    ) -> None:
        if isinstance(max_detections_per_keyframe, str) and max_detections_per_keyframe in _NONE_STRINGS:
            # Hydra's override grammar spells None as null, so "=None" arrives as the text 'None'.
            max_detections_per_keyframe = None
        self._max_detections_per_keyframe = check_max_detections_per_keyframe(max_detections_per_keyframe)
        if dataset_name is not None:
            meta = MetadataCatalog.get(dataset_name)
            label_map_file = label_map_file or meta.get("label_map_file", None)
            groundtruth_csv = groundtruth_csv or meta.get("groundtruth_csv", None)
            exclusions_csv = exclusions_csv or meta.get("exclusions_csv", None)
        if groundtruth_csv is None:
            raise ValueError("AVAEvaluator needs groundtruth_csv (argument or dataset metadata)")
        self._label_map_file = label_map_file or DEFAULT_LABEL_MAP
        self._label_map = read_labelmap(self._label_map_file)
        self._groundtruth_csv = groundtruth_csv
        self._exclusions_csv = exclusions_csv
        self._protocol = str(protocol)
        self._output_dir = output_dir
        self._distributed = distributed
        self._class_ids = np.array(sorted(self._label_map), dtype=np.int64)
        self.reset()

    @property
    def max_detections_per_keyframe(self) -> Optional[int]:
        """The per-keyframe detection cap passed to :func:`evaluate` (``None`` = keep all)."""
        return self._max_detections_per_keyframe

    def reset(self) -> None:
        self._predictions: list[dict] = []

    def process(self, inputs, outputs) -> None:
        for inp, out in zip(inputs, outputs):
            boxes = torch.as_tensor(out["boxes"]).detach().to("cpu", torch.float64).numpy().reshape(-1, 4)
            if inp.get("box_convention") == "inclusive":
                # VMAD's inclusive pixels: its detections CSV adds the last pixel back, (x2 + 1) / W
                h, w = inp["image_size"]
                boxes = np.clip(boxes + np.array([0.0, 0.0, 1.0 / w, 1.0 / h]), 0.0, 1.0)
            scores = torch.as_tensor(out["scores"]).detach().to("cpu", torch.float64).numpy()
            scores = scores.reshape(len(boxes), -1) if len(boxes) else np.zeros((0, 0))  # a keyframe without boxes
            cols = self._class_ids[self._class_ids <= scores.shape[1]] - 1
            n, c = len(boxes), len(cols)
            self._predictions.append(
                {
                    "video_id": str(inp["video_id"]),
                    # float seconds (Kinetics keyframes) keep their value for the 2020 protocol's keys
                    "timestamp": inp["timestamp"] if isinstance(inp["timestamp"], float) else int(inp["timestamp"]),
                    "boxes": np.repeat(boxes, c, axis=0),
                    "action_ids": np.tile(cols + 1, n),
                    "scores": scores[:, cols].reshape(-1),
                }
            )

    def detections(self) -> AVARows:
        """The collected predictions as official-format rows (this process only)."""
        return self._to_rows(self._predictions)

    @staticmethod
    def _to_rows(preds: list[dict]) -> AVARows:
        counts = [len(p["scores"]) for p in preds]
        return AVARows.from_arrays(
            video_ids=list(itertools.chain.from_iterable([p["video_id"]] * k for p, k in zip(preds, counts))),
            timestamps=list(itertools.chain.from_iterable([p["timestamp"]] * k for p, k in zip(preds, counts))),
            boxes=np.concatenate([p["boxes"] for p in preds]) if preds else np.zeros((0, 4)),
            action_ids=np.concatenate([p["action_ids"] for p in preds]) if preds else np.zeros(0),
            scores=np.concatenate([p["scores"] for p in preds]) if preds else np.zeros(0),
            source="<AVAEvaluator predictions>",
        )

    def evaluate(self):
        preds = self._predictions
        if self._distributed:
            comm.synchronize()
            preds = list(itertools.chain(*comm.gather(preds, dst=0)))
            if not comm.is_main_process():
                return {}
        if not preds:
            logger.warning("AVAEvaluator received no predictions")
        detections = self._to_rows(preds)
        exclusions = read_exclusions(self._exclusions_csv) if self._exclusions_csv else None
        result = evaluate(
            read_ava_csv(self._groundtruth_csv),
            detections,
            self._label_map,
            exclusions,
            self._protocol,
            max_detections_per_keyframe=self._max_detections_per_keyframe,
        )
        if self._output_dir:
            self.write_outputs(result, detections, self._output_dir)
        metrics = {"mAP": 100.0 * result.mAP}
        for name, ap in result.named_ap().items():
            if not math.isnan(ap):
                metrics[f"AP/{name}"] = 100.0 * ap
        logger.info(
            "AVA frame-mAP@0.5IoU (protocol %s, %s): %.2f",
            self._protocol,
            describe_detections_per_keyframe(self._max_detections_per_keyframe),
            metrics["mAP"],
        )
        return OrderedDict({"ava": metrics})

    @staticmethod
    def write_outputs(result: AVAResult, detections: Optional[AVARows], output_dir: str) -> None:
        """Write ``ava_detections.csv`` (if given), ``ava_metrics.json`` and ``ava_per_class_ap.png``."""
        os.makedirs(output_dir, exist_ok=True)
        cap = result.max_detections_per_keyframe
        cap_words = "all detections" if cap is None else f"top {cap}"
        if detections is not None:
            write_detections_csv(os.path.join(output_dir, "ava_detections.csv"), detections)
        write_metrics(result, os.path.join(output_dir, "ava_metrics.json"))
        plot_per_class_ap(
            result.named_ap(),
            os.path.join(output_dir, "ava_per_class_ap.png"),
            title=f"AVA per-class AP (protocol {result.protocol}, {cap_words} per keyframe)",
        )
