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

import vmae_det  # noqa: F401  (shims before detectron2)
from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from .ava_io import (
    DEFAULT_LABEL_MAP, AVARows, read_ava_csv, read_exclusions, read_labelmap, write_detections_csv, write_metrics,
)
from .ava_map import AVAResult, evaluate
from .plot import plot_per_class_ap

__all__ = ["AVAEvaluator"]

logger = logging.getLogger(__name__)


class AVAEvaluator(DatasetEvaluator):
    """Collects detector outputs per keyframe and computes the official AVA frame-mAP.

    ``process`` reads ``inputs[i]["video_id"]``, ``inputs[i]["timestamp"]`` (int seconds) and
    ``outputs[i]["boxes"]`` (``[N, 4]`` xyxy normalised to [0, 1]) and ``outputs[i]["scores"]``
    (``[N, num_classes]``, column ``k`` is action id ``k + 1``). Only action ids in the label map are
    kept. ``evaluate`` returns ``{"ava": {"mAP": …, "AP/<name>": …}}`` in **percent** (detectron2's
    convention); classes without ground truth are left out of that dict (their AP is undefined) but
    appear as ``null`` in ``ava_metrics.json``. With ``output_dir`` it also writes
    ``ava_detections.csv`` (official format), ``ava_metrics.json`` and ``ava_per_class_ap.png``.
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
    ) -> None:
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

    def reset(self) -> None:
        self._predictions: list[dict] = []

    def process(self, inputs, outputs) -> None:
        for inp, out in zip(inputs, outputs):
            boxes = torch.as_tensor(out["boxes"]).detach().to("cpu", torch.float64).numpy().reshape(-1, 4)
            scores = torch.as_tensor(out["scores"]).detach().to("cpu", torch.float64).numpy()
            scores = scores.reshape(len(boxes), -1)
            cols = self._class_ids[self._class_ids <= scores.shape[1]] - 1
            n, c = len(boxes), len(cols)
            self._predictions.append({
                "video_id": str(inp["video_id"]),
                "timestamp": int(inp["timestamp"]),
                "boxes": np.repeat(boxes, c, axis=0),
                "action_ids": np.tile(cols + 1, n),
                "scores": scores[:, cols].reshape(-1),
            })

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
        result = evaluate(read_ava_csv(self._groundtruth_csv), detections, self._label_map, exclusions,
                          self._protocol)
        if self._output_dir:
            self.write_outputs(result, detections, self._output_dir)
        metrics = {"mAP": 100.0 * result.mAP}
        for name, ap in result.named_ap().items():
            if not math.isnan(ap):
                metrics[f"AP/{name}"] = 100.0 * ap
        logger.info("AVA frame-mAP@0.5IoU (protocol %s): %.2f", self._protocol, metrics["mAP"])
        return OrderedDict({"ava": metrics})

    @staticmethod
    def write_outputs(result: AVAResult, detections: Optional[AVARows], output_dir: str) -> None:
        """Write ``ava_detections.csv`` (if given), ``ava_metrics.json`` and ``ava_per_class_ap.png``."""
        os.makedirs(output_dir, exist_ok=True)
        if detections is not None:
            write_detections_csv(os.path.join(output_dir, "ava_detections.csv"), detections)
        write_metrics(result, os.path.join(output_dir, "ava_metrics.json"))
        plot_per_class_ap(result.named_ap(), os.path.join(output_dir, "ava_per_class_ap.png"),
                          title=f"AVA per-class AP (protocol {result.protocol})")

