"""Own data from the command line, without writing Python: ``--videos PATH`` and ``--ava-root ROOT``.

``--ava-root`` points the train and val splits of an AVA-layout root at the loaders and sets the head's width
from its label map unless the command line sets it. Every process calls :func:`apply_data_flags`, so the
datasets are registered in each.
"""

from __future__ import annotations

import logging
import os
from typing import Iterable, Optional, Set

from omegaconf import DictConfig

from ..cli import with_context
from ..formats.ava import annotation_file_names

__all__ = ["apply_data_flags"]

logger = logging.getLogger("vmae_det")


def _select(cfg, key: str):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return None, False
        node = node[part]
    return node, True


def _assign(cfg, key: str, value) -> None:
    parent, leaf = key.rsplit(".", 1)
    _select(cfg, parent)[0][leaf] = value


def _explicit(opts: Iterable[str]) -> Set[str]:
    return {o.split("=", 1)[0].strip() for o in opts or () if "=" in o}


def apply_data_flags(cfg, args) -> Optional[dict]:
    """Apply ``args.videos`` / ``args.ava_root`` to ``cfg``; returns what was set (``{key: value}``) or None."""
    videos, root = getattr(args, "videos", None), getattr(args, "ava_root", None)
    if videos is None and root is None:
        return None
    explicit = _explicit(getattr(args, "opts", ()))
    config = getattr(args, "config_file", "the config")
    changes = {}

    def point(flag: str, key: str, value, required: bool = True, own: bool = True) -> None:
        """Set ``key`` (a dataset key: ``own``, an explicit override of it is an error; else the override wins)."""
        current, exists = _select(cfg, key)
        if not exists:
            if required:
                raise ValueError(f"{flag}: {config} has no {key} to point at the data")
            return
        if key in explicit:
            if own:
                raise ValueError(f"{flag} and the override {key}=... both name the data: give one of them")
            return
        _assign(cfg, key, value)
        changes[key] = value

    if videos is not None:
        from ..constants import VIDEO_EXTENSIONS
        from ..data.video_dataset import register_video_path

        if os.path.isfile(videos) and videos.lower().endswith(VIDEO_EXTENSIONS):
            raise ValueError(
                f"--videos takes a folder of videos or a list file; {videos} is a video (put it "
                "in a folder and pass the folder)"
            )
        try:
            name = register_video_path(videos)
        except (OSError, ValueError) as e:
            raise with_context(e, f"--videos {videos}") from None
        point("--videos", "dataloader.train.dataset.names", name)
    if root is not None:
        _apply_ava_root(cfg, args, root, point)
    for key, value in changes.items():
        logger.info(f"{key} = {value!r} (from {'--videos' if videos is not None else '--ava-root'})")
    return changes


def _apply_ava_root(cfg, args, root: str, point) -> None:
    from detectron2.data import MetadataCatalog

    from ..data.ava.catalog import register_ava_root

    loaders = cfg.get("dataloader")
    has = lambda split: isinstance(loaders, DictConfig) and split in loaders  # noqa: E731
    # --eval-only builds no training loader; point at the train split only when the root has one, so the head's
    # width is checked against the root's label map.
    train_gt = any(
        os.path.isfile(os.path.join(os.path.expanduser(root), "annotations", f"ava_train_{v}.csv"))
        for v in ("v2.2", "v2.1")
    )
    splits = [
        s
        for s, loader in (("train", "train"), ("val", "test"))
        if has(loader) and not (loader == "train" and getattr(args, "eval_only", False) and not train_gt)
    ]
    if not splits:
        raise ValueError(
            f"--ava-root: {getattr(args, 'config_file', 'the config')} has no dataloader.train or "
            "dataloader.test to point at the data"
        )
    try:
        names = register_ava_root(root, splits)
    except (OSError, ValueError) as e:
        raise with_context(e, f"--ava-root {root}") from None
    if "train" in names:
        if not getattr(args, "eval_only", False):
            from ..data.ava.catalog import ava_split_files, check_has_rows

            train = MetadataCatalog.get(names["train"])
            groundtruth = ava_split_files(train.dataset_root, "train", train.get("version", "v2.2"))["groundtruth"]
            if os.path.isfile(groundtruth):
                check_has_rows(groundtruth)
        point("--ava-root", "dataloader.train.dataset.names", names["train"])
    if "val" in names:
        point("--ava-root", "dataloader.test.dataset.names", names["val"])
        point("--ava-root", "dataloader.evaluator.dataset_name", names["val"], required=False)
    meta = MetadataCatalog.get(next(iter(names.values())))
    num_classes = int(meta.num_classes)
    point("--ava-root", "model.num_classes", num_classes, required=False, own=False)
    for loader in ("train", "test"):
        point("--ava-root", f"dataloader.{loader}.mapper.num_classes", num_classes, required=False, own=False)
    # Missing person boxes would give a silent mAP of 0 (VMAD's box file is checked at registration).
    meta = MetadataCatalog.get(next(iter(names.values())))
    folder = meta.dataset_root
    for split, loader, key in (("val", "test", "test_box_source"), ("train", "train", "train_box_source")):
        source, found = _select(cfg, f"dataloader.{loader}.mapper.{key}")
        name = annotation_file_names(split)["proposals"]
        boxes = os.path.join(folder, "annotations", name)
        vmad = meta.get("layout", None) == "vmad"
        if split in names and found and "proposals" in str(source) and not vmad and not os.path.isfile(boxes):
            fix = (
                f"pass dataloader.{loader}.mapper.{key}=gt to use the ground-truth boxes"
                if split == "val"
                else f"pass dataloader.{loader}.mapper.{key}=gt"
            )
            raise FileNotFoundError(
                f"--ava-root {root}: dataloader.{loader}.mapper.{key}={source!r} needs person boxes for the {split} "
                f"split, but there is no annotations/{name}. Make them with "
                f"tools/make_proposals.py --root {root} --split {split} --output "
                f"{str(root).rstrip('/')}/annotations/{name}, or {fix}"
            )
