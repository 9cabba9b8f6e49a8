"""Action names for drawing: from an AVA label-map ``.pbtxt``, dataset metadata, or plain ids."""
from __future__ import annotations

from typing import Dict, Optional

from vmae_det.formats.ava import read_labelmap

__all__ = ["action_names"]


def action_names(
    num_classes: int, label_map: Optional[str] = None, dataset: Optional[str] = None
) -> Dict[int, str]:
    """Names for action ids ``1..num_classes``: label map file, else dataset metadata, else ``"action <id>"``."""
    names: Dict[int, str] = {}
    if label_map:
        names = read_labelmap(label_map)
    elif dataset:
        from detectron2.data import MetadataCatalog

        names = dict(MetadataCatalog.get(dataset).get("class_names", {}) or {})
    return {i: names.get(i, f"action {i}") for i in range(1, num_classes + 1)}
