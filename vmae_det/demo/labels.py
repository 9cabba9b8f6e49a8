"""Action names for drawing: from an AVA label-map ``.pbtxt``, the checkpoint, dataset metadata, or plain ids;
and whether a model gives one action per person."""

from __future__ import annotations

import logging
from typing import Dict, Mapping, Optional

from vmae_det.formats.ava import read_labelmap

__all__ = ["action_names", "single_label_model"]

logger = logging.getLogger(__name__)


def single_label_model(model, dataset: Optional[str] = None) -> bool:
    """Whether ``model`` scores one action per person (softmax): its ``loss`` is ``"softmax_ce"``, or, for a model
    without a ``loss``, the metadata of ``dataset`` says ``multi_label=False`` (UCF101-24, JHMDB, MultiSports)."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, str):
        return loss == "softmax_ce"
    if dataset:
        from detectron2.data import MetadataCatalog

        return MetadataCatalog.get(dataset).get("multi_label", True) is False
    return False


def action_names(
    num_classes: int,
    label_map: Optional[str] = None,
    dataset: Optional[str] = None,
    checkpoint_names: Optional[Mapping[int, str]] = None,
    checkpoint: Optional[str] = None,
    dataset_first: bool = False,
) -> Dict[int, str]:
    """Names for action ids ``1..num_classes`` from the first source that has any: the ``label_map`` file,
    the names stored in the checkpoint (``checkpoint_names``, read by
    ``vmae_det.checkpoints.files.class_names_of``; ``checkpoint`` is its path, for messages), the
    metadata ``class_names`` of ``dataset`` (before the checkpoint's with ``dataset_first``: a dataset the
    user named), else ``"action <id>"``, with a warning. Ids the chosen source lacks are ``"action <id>"``."""
    names: Dict[int, str] = {}
    source = ""
    order = ("label map", "dataset", "checkpoint") if dataset_first else ("label map", "checkpoint", "dataset")
    given = {"label map": label_map, "dataset": dataset, "checkpoint": checkpoint_names}
    for kind in order:
        if not given[kind]:
            continue
        if kind == "label map":
            names, source = read_labelmap(label_map), f"the label map {label_map}"
        elif kind == "checkpoint":
            names, source = dict(checkpoint_names), f"the checkpoint {checkpoint or ''}".rstrip()
        else:
            from detectron2.data import MetadataCatalog

            names = dict(MetadataCatalog.get(dataset).get("class_names", None) or {})
            source = f"the metadata of dataset '{dataset}'"
        if names:
            break
    if names:
        logger.info("action names from %s", source)
    else:
        where = f"; dataset '{dataset}' has none" if dataset else ""
        logger.warning(
            "no action names: the checkpoint stores none (trained before checkpoints carried them, or "
            "not by this project)%s and no label map was given: actions are shown as 'action <id>'; "
            "pass --labelmap FILE.pbtxt to name them",
            where,
        )
    return {i: names.get(i, f"action {i}") for i in range(1, num_classes + 1)}
