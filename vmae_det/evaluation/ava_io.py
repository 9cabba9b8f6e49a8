"""The evaluation's own files: the official label map shipped with the package, and the metrics JSON.

The AVA CSV / label-map / exclusion readers and writers are :mod:`vmae_det.formats.ava`.
"""

from __future__ import annotations

import json
import math
import os

from ..formats.atomic import atomic_write_text
from .ava_map import MAX_DETECTIONS_PER_KEYFRAME, describe_detections_per_keyframe

__all__ = ["DEFAULT_LABEL_MAP", "write_metrics"]

#: The official 60-class AVA label map (ActivityNet 2018 challenge), shipped with the package.
DEFAULT_LABEL_MAP = os.path.join(
    os.path.dirname(__file__), "labelmaps", "ava_action_list_v2.1_for_activitynet_2018.pbtxt"
)


def write_metrics(result, path: str) -> None:
    """Write an :class:`~vmae_det.evaluation.AVAResult` as JSON (fractions; NaN as null), with the detection cap."""

    def num(x: float):
        return None if math.isnan(x) else x

    cap = getattr(result, "max_detections_per_keyframe", MAX_DETECTIONS_PER_KEYFRAME)
    payload = {
        "protocol": result.protocol,
        "max_detections_per_keyframe": cap,
        "detections_per_keyframe": describe_detections_per_keyframe(cap),
        "mAP": num(result.mAP),
        "per_class": [
            {
                "id": c,
                "name": result.class_names[c],
                "AP": num(ap),
                "num_groundtruth": result.num_groundtruth[c],
                "num_detections": result.num_detections[c],
            }
            for c, ap in result.per_class_ap.items()
        ],
        "stats": result.stats,
    }
    atomic_write_text(path, json.dumps(payload, indent=2))
