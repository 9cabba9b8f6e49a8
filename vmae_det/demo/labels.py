"""Action names for drawing: from an AVA label-map ``.pbtxt``, dataset metadata, or plain ids."""
from __future__ import annotations

from typing import Dict, Optional

from vmae_det.data.ava.readers import read_label_map

__all__ = ["action_names"]


def action_names(
    num_classes: int, label_map: Optional[str] = None, dataset: Optional[str] = None
) -> Dict[int, str]:
    """Names for action ids ``1..num_classes``: label map file, else dataset metadata, else ``"action <id>"``."""
    names: Dict[int, str] = {}
    if label_map:
        names = read_label_map(label_map)[0]
    elif dataset:
        from detectron2.data import MetadataCatalog

        names = dict(MetadataCatalog.get(dataset).get("class_names", {}) or {})
    return {i: names.get(i, f"action {i}") for i in range(1, num_classes + 1)}
