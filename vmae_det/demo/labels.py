"""Action names for drawing: from an AVA label-map ``.pbtxt``, dataset metadata, or plain ids."""
from __future__ import annotations

import re
from typing import Dict, Optional

__all__ = ["read_label_map", "action_names"]

_ITEM = re.compile(r"item\s*\{(.*?)\}", re.S)
_NAME = re.compile(r'name:\s*"([^"]*)"')
_ID = re.compile(r"(?:label_)?id:\s*(\d+)")


def read_label_map(path: str) -> Dict[int, str]:
    """Parse an AVA label map (``item { name: "bend/bow (at the waist)" id: 1 }``) to ``{id: name}``.

    Raises ValueError naming the file and the item when an item lacks a name or an id.
    """
    with open(path) as f:
        text = f.read()
    names: Dict[int, str] = {}
    for n, match in enumerate(_ITEM.finditer(text), start=1):
        body = match.group(1)
        name, idx = _NAME.search(body), _ID.search(body)
        if name is None or idx is None:
            line = text.count("\n", 0, match.start()) + 1
            raise ValueError(f"{path}:{line}: label-map item {n} has no name or no id")
        names[int(idx.group(1))] = name.group(1)
    if not names:
        raise ValueError(f"{path}: no 'item {{ name: ... id: ... }}' entries")
    return names


def action_names(
    num_classes: int, label_map: Optional[str] = None, dataset: Optional[str] = None
) -> Dict[int, str]:
    """Names for action ids ``1..num_classes``: label map file, else dataset metadata, else ``"action <id>"``."""
    names: Dict[int, str] = {}
    if label_map:
        names = read_label_map(label_map)
    elif dataset:
        from detectron2.data import MetadataCatalog

        names = dict(MetadataCatalog.get(dataset).get("class_names", {}) or {})
    return {i: names.get(i, f"action {i}") for i in range(1, num_classes + 1)}
