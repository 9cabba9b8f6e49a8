"""AVA datasets as detectron2 dataset dicts, registered in DatasetCatalog / MetadataCatalog (one module: the
AVA, VMAD and AlphAction-box readers share one dict format and one registration).

One dict per keyframe::

    {"video_id", "timestamp", "fps": 30, "frames_dir" | "video_path",
     "annotations": [{"bbox": [x1, y1, x2, y2] normalised, "actions": [ids], "person_id"}],
     "proposals": {"boxes": float32 [K, 4] normalised, "scores": float32 [K]}}

The registered names and their folders are listed in :func:`register_all_ava`. Files are only read when a
dataset is first loaded, so registration works before the data exists.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.catalog import Metadata

from ...constants import AVA_FPS, VIDEO_EXTENSIONS
from ...formats.ava import annotation_file_names, read_labelmap
from ...formats.ava_boxes import person_box_format, read_annotations, read_excluded_keyframes, read_person_boxes
from ...formats.vmad_layout import (
    CLIPS_DIR,
    PERSON_BOX_FILES,
    VMAD_FPS,
    image_info_file,
    inclusive_boxes,
    is_vmad_layout,
    read_alphaction_boxes,
    read_image_annotations,
    read_image_info,
)
from ..catalog_names import datasets_root, set_metadata

__all__ = [
    "AVAMetadata",
    "ALPHACTION_BOX_FILES",
    "ava_split_files",
    "load_ava_dicts",
    "register_ava",
    "register_ava_root",
    "register_all_ava",
    "video_index",
    "load_vmad_dicts",
    "register_vmad",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]


# AlphAction's person detections in VMAD's processed AVA: split -> (detections, image info). Only val has them.
ALPHACTION_BOX_FILES = {split: (boxes, image_info_file(split)) for split, boxes in PERSON_BOX_FILES.items()}
#: VMAD's test set: keyframes with a person box of at least this score (``datasets.py`` ``box_thresh``).
VMAD_BOX_THRESHOLD = 0.8


class AVAMetadata(Metadata):
    """detectron2 ``Metadata`` that keeps ``class_names`` (an ``{id: name}`` dict) as its own field: plain
    ``Metadata`` renames it to ``thing_classes``."""

    _RENAMED: dict = {}


def ava_split_files(
    root: PathLike,
    split: str,
    version: str = "v2.2",
    *,
    proposal_file: Optional[PathLike] = None,
    proposal_image_info: Optional[PathLike] = None,
) -> Dict[str, Optional[Path]]:
    """Paths of the annotation files of one split under ``<root>/annotations`` (``None`` for absent optional
    ones). The person boxes are ``proposal_file``, else SlowFast's ``ava_{split}_predicted_boxes.csv``."""
    ann = Path(root) / "annotations"
    names = annotation_file_names(split, version)
    label_map = ann / names["label_map"]  # never another label map: it would change the evaluated classes
    excl = ann / names["exclusions"]
    if proposal_file is not None:
        props: Optional[Path] = Path(proposal_file)
        if person_box_format(props) == "alphaction_json" and proposal_image_info is None:
            raise ValueError(
                f"person-box file {props} is AlphAction JSON: also give proposal_image_info (its image-info "
                f"file, e.g. annotations/ava_{split}_{version}_min.json)"
            )
    else:
        props = ann / names["proposals"]
        props = props if props.is_file() else None
    image_info = (
        Path(proposal_image_info)
        if props is not None and proposal_image_info is not None and person_box_format(props) == "alphaction_json"
        else None
    )
    return {
        "groundtruth": ann / names["groundtruth"],
        "label_map": label_map,
        "exclusions": excl if excl.is_file() else None,
        "proposals": props,
        "proposal_image_info": image_info,
    }


def video_index(root: Path) -> Dict[str, Path]:
    """``video_id → file`` for raw videos under ``videos/`` or ``videos_15min/`` (any common ext)."""
    out: Dict[str, Path] = {}
    for sub in ("videos_15min", "videos"):
        d = root / sub
        if d.is_dir():
            for p in d.iterdir():
                if p.suffix.lower() in VIDEO_EXTENSIONS:
                    out[p.stem] = p
    return out


def load_ava_dicts(
    root: PathLike,
    split: str,
    version: str = "v2.2",
    *,
    is_train: Optional[bool] = None,
    source: str = "auto",
    proposal_min_score: float = 0.0,
    class_whitelist: Optional[Sequence[int]] = None,
    dataset_name: Optional[str] = None,
    proposal_file: Optional[PathLike] = None,
    proposal_image_info: Optional[PathLike] = None,
) -> List[dict]:
    """Build the per-keyframe dataset dicts of one AVA split.

    Args:
        root: dataset root holding ``annotations/``, ``frames/`` and/or ``videos/``.
        split: ``"train"`` or ``"val"``.
        version: annotation version suffix (``"v2.2"``, ``"v2.1"``).
        is_train: keep only keyframes with at least one GT box (default: ``split == "train"``).
            Otherwise keyframes are the union of those with GT and with proposals.
        source: ``"frames"``, ``"videos"`` or ``"auto"`` (frames when the folder exists).
        proposal_min_score: proposals below it are dropped to save memory (the mapper applies the real
            thresholds).
        class_whitelist: action ids to keep. Default: every id of the file when training (VMAD and
            SlowFast train all 80 AVA actions, so the 20 ids the 60-class label map does not
            evaluate still supervise the backbone), the label map's ids otherwise.
        dataset_name: fill this dataset's metadata (``class_names``, proposal files) as detectron2's
            ``load_coco_json`` does, for datasets registered before the files existed.
        proposal_file: a SlowFast ``.csv`` or AlphAction ``.json`` person-box file instead of the default.
        proposal_image_info: the image-info JSON an AlphAction box file needs.
    """
    root = Path(root)
    is_train = (split == "train") if is_train is None else is_train
    files = ava_split_files(root, split, version, proposal_file=proposal_file, proposal_image_info=proposal_image_info)
    names = read_labelmap(files["label_map"])
    if class_whitelist is not None:
        whitelist: Optional[set] = set(class_whitelist)
    else:
        whitelist = None if is_train else set(names)
    gt = read_annotations(files["groundtruth"], class_whitelist=whitelist)
    excluded = read_excluded_keyframes(files["exclusions"])
    sizes = {}  # AlphAction's boxes are VMAD's inclusive pixels of the image-info size
    if files["proposals"] is not None:
        proposals = read_person_boxes(files["proposals"], proposal_min_score, image_info=files["proposal_image_info"])
        if files["proposal_image_info"] is not None:
            sizes = {
                (i.movie, i.timestamp): (int(i.height), int(i.width))
                for i in read_image_info(files["proposal_image_info"]).values()
            }
    else:
        proposals = {}
        logger.info(f"No person proposals for {root}/{split} (ava_{split}_predicted_boxes.csv absent).")

    keys = set(gt) if is_train else set(gt) | set(proposals)
    num_excluded = len(keys & excluded)
    keys -= excluded
    if is_train and not keys:  # detectron2 would assert "Dataset ... is empty!" (a traceback)
        why = (
            f"every one of its {num_excluded} annotated keyframes is excluded by {files['exclusions']}"
            if num_excluded
            else "the file has no annotation rows"
        )
        raise ValueError(f"{files['groundtruth']}: nothing to train on: {why}")
    videos = video_index(root) if source in ("auto", "videos") else {}
    frames_root = root / "frames"
    dicts: List[dict] = []
    missing = set()
    for vid, ts in sorted(keys):
        d: dict = {"video_id": vid, "timestamp": ts, "fps": AVA_FPS}
        fdir = frames_root / vid
        if source in ("auto", "frames") and fdir.is_dir():
            d["frames_dir"] = str(fdir)
        elif vid in videos:
            d["video_path"] = str(videos[vid])
        else:
            missing.add(vid)
            continue
        anns = gt.get((vid, ts), [])
        d["annotations"] = [
            {"bbox": list(a.bbox), "actions": sorted(a.actions), "person_id": a.person_id} for a in anns
        ]
        boxes, scores = proposals.get((vid, ts), (np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)))
        d["proposals"] = {"boxes": boxes, "scores": scores}
        if (vid, ts) in sizes:
            d.update(box_convention="inclusive", image_size=sizes[(vid, ts)])
        dicts.append(d)
    if missing:
        # A missing video would silently shrink the val set and change mAP: refuse.
        raise FileNotFoundError(
            f"{len(missing)} video(s) of {files['groundtruth']} have neither {frames_root}/<id>/ nor a "
            f"file in {root}/videos/ (source={source!r}), e.g. {sorted(missing)[:3]}"
        )
    logger.info(
        f"Loaded {len(dicts)} keyframes of AVA {version} {split} from {root} "
        f"({num_excluded} excluded by {files['exclusions']}, "
        f"{sum(len(d['annotations']) for d in dicts)} GT boxes, "
        f"{sum(len(d['proposals']['scores']) for d in dicts)} proposals from {files['proposals']})."
    )
    if dataset_name is not None:
        meta = MetadataCatalog.get(dataset_name)
        if not hasattr(meta, "class_names"):
            meta.class_names = dict(names)
        if not hasattr(meta, "proposal_file"):  # registered before the default CSV existed
            meta.set(**_proposal_meta(files))
    return dicts


def _proposal_meta(files: Dict[str, Optional[Path]]) -> dict:
    props = files["proposals"]
    return {
        "proposal_file": str(props) if props is not None else None,
        "proposal_format": person_box_format(props) if props is not None else None,
        "proposal_image_info": str(files["proposal_image_info"]) if files["proposal_image_info"] else None,
    }


def register_ava(
    name: str,
    root: PathLike,
    split: str,
    version: str = "v2.2",
    num_classes: int = 80,
    proposal_file: Optional[PathLike] = None,
    proposal_image_info: Optional[PathLike] = None,
    **load_kwargs,
) -> None:
    """Register one AVA split as ``name``; data is read lazily on ``DatasetCatalog.get``.

    ``proposal_file`` / ``proposal_image_info``: see :func:`load_ava_dicts`. The metadata holds the annotation
    files, ``num_classes`` (the largest action id: column ``k`` is action id ``k + 1``), ``class_names``, the
    proposal file and format, and ``evaluator_type="ava"``.
    """
    root = Path(root)
    files = ava_split_files(root, split, version, proposal_file=proposal_file, proposal_image_info=proposal_image_info)
    DatasetCatalog.register(
        name,
        lambda: load_ava_dicts(
            root,
            split,
            version,
            dataset_name=name,
            proposal_file=proposal_file,
            proposal_image_info=proposal_image_info,
            **load_kwargs,
        ),
    )
    meta = {
        "label_map_file": str(files["label_map"]),
        "groundtruth_csv": str(files["groundtruth"]),
        "exclusions_csv": str(files["exclusions"]) if files["exclusions"] else None,
        "num_classes": num_classes,
        "evaluator_type": "ava",
        "dataset_root": str(root),
        "split": split,
        "version": version,
        "fps": AVA_FPS,
    }
    if files["proposals"] is not None:  # else: set by load_ava_dicts once known
        meta.update(_proposal_meta(files))
    if files["label_map"].is_file():
        try:
            names = read_labelmap(files["label_map"])
            meta["class_names"] = names
            meta["num_classes"] = max(num_classes, max(names))
        except ValueError as e:  # importing vmae_det.data must not fail; loading will raise it
            logger.warning(f"Dataset {name}: {e}")
    set_metadata(name, AVAMetadata, **meta)


def load_vmad_dicts(
    root: PathLike,
    split: str,
    version: str = "v2.2",
    *,
    is_train: Optional[bool] = None,
    box_threshold: float = VMAD_BOX_THRESHOLD,
    dataset_name: Optional[str] = None,
) -> List[dict]:
    """The keyframes of one split of VMAD's processed AVA (:mod:`vmae_det.formats.vmad_layout`), as VMAD's
    ``AVAVideoDataset`` lists them: for training those with ground-truth boxes in the image-info JSON, otherwise
    those with a person box of score >= ``box_threshold`` (excluded keyframes stay: the evaluation ignores them).
    """
    root = Path(root)
    is_train = (split == "train") if is_train is None else is_train
    info = root / image_info_file(split, version)
    images, gt = read_image_annotations(info)
    proposals = {}
    if not is_train:
        boxes_file = root / PERSON_BOX_FILES.get(split, f"boxes/ava_{split}_det_person_bbox.json")
        proposals = read_alphaction_boxes(boxes_file, info, min_score=box_threshold, convention="inclusive")
    dicts: List[dict] = []
    missing = set()
    for img_id in sorted(images):
        img = images[img_id]
        key = (img.movie, img.timestamp)
        if (is_train and img_id not in gt) or (not is_train and key not in proposals):
            continue
        clips = root / CLIPS_DIR / img.movie
        if not clips.is_dir():
            missing.add(str(clips))
            continue
        anns = []
        for xywh, actions, person in gt.get(img_id, []):
            norm, keep = inclusive_boxes(np.array([xywh]), img.width, img.height)
            if keep[0]:
                anns.append({"bbox": norm[0].tolist(), "actions": sorted(set(actions)), "person_id": person})
        boxes, scores = proposals.get(key, (np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)))
        dicts.append(
            {
                "video_id": img.movie,
                "timestamp": img.timestamp,
                "image_id": img_id,
                "fps": VMAD_FPS,
                "clips_dir": str(clips),
                "box_convention": "inclusive",
                "image_size": (int(img.height), int(img.width)),
                "annotations": anns,
                "proposals": {"boxes": boxes, "scores": scores},
            }
        )
    if missing:
        raise FileNotFoundError(f"{len(missing)} movie folder(s) of {info} missing, e.g. {sorted(missing)[:3]}")
    logger.info(
        f"Loaded {len(dicts)} keyframes of VMAD's AVA {version} {split} from {root} "
        f"({sum(len(d['annotations']) for d in dicts)} GT boxes, "
        f"{sum(len(d['proposals']['scores']) for d in dicts)} person boxes >= {box_threshold})."
    )
    if dataset_name is not None and not hasattr(MetadataCatalog.get(dataset_name), "class_names"):
        files = ava_split_files(root, split, version)
        MetadataCatalog.get(dataset_name).class_names = dict(read_labelmap(files["label_map"]))
    return dicts


def register_vmad(name: str, root: PathLike, split: str, version: str = "v2.2", num_classes: int = 80) -> None:
    """Register one split of VMAD's processed AVA as ``name`` (see :func:`load_vmad_dicts`)."""
    root = Path(root)
    DatasetCatalog.register(name, lambda: load_vmad_dicts(root, split, version, dataset_name=name))
    files = ava_split_files(root, split, version)
    boxes = root / PERSON_BOX_FILES.get(split, f"boxes/ava_{split}_det_person_bbox.json")
    meta = {
        "label_map_file": str(files["label_map"]),
        "groundtruth_csv": str(files["groundtruth"]),
        "exclusions_csv": str(files["exclusions"]) if files["exclusions"] else None,
        "num_classes": num_classes,
        "evaluator_type": "ava",
        "dataset_root": str(root),
        "split": split,
        "version": version,
        "layout": "vmad",
        "fps": VMAD_FPS,
        "proposal_file": str(boxes) if boxes.is_file() else None,
        "proposal_format": "alphaction_json",
        "proposal_image_info": str(root / image_info_file(split, version)),
    }
    if files["label_map"].is_file():
        names = read_labelmap(files["label_map"])
        meta["class_names"] = names
        meta["num_classes"] = max(num_classes, max(names))
    set_metadata(name, AVAMetadata, **meta)


def check_has_rows(groundtruth: PathLike) -> None:
    """Refuse a training ground-truth CSV without any row, reading only up to its first row."""
    with open(groundtruth, "rb") as f:
        for line in f:
            if line.strip().lstrip(b"\xef\xbb\xbf").strip():
                return
    raise ValueError(f"{groundtruth}: nothing to train on: the file has no annotation rows")


def register_ava_root(root: PathLike, splits: Sequence[str] = ("train", "val")) -> Dict[str, str]:
    """Register the ``splits`` of an AVA-layout folder (``--ava-root``) as ``ava:<absolute root>:<split>``, once;
    return ``{split: name}``.

    The layout (VMAD's processed AVA or frames/videos) and the annotation version (v2.2, else v2.1) are
    detected; ``num_classes`` is the largest action id of the root's label map.

    Raises:
        FileNotFoundError: naming what is missing (another label map is never taken instead).
    """
    root = Path(os.path.abspath(os.path.expanduser(os.fspath(root))))
    if not root.is_dir():
        raise FileNotFoundError(f"AVA dataset root '{root}' {'is not a folder' if root.exists() else 'does not exist'}")
    ann = root / "annotations"
    version = next((v for v in ("v2.2", "v2.1") if any((ann / f"ava_{s}_{v}.csv").is_file() for s in splits)), "v2.2")
    vmad = is_vmad_layout(root)
    files = {s: ava_split_files(root, s, version) for s in splits}
    missing = [str(f["groundtruth"]) for f in files.values() if not f["groundtruth"].is_file()]
    label_map = ava_split_files(root, "train", version)["label_map"]
    if not label_map.is_file():
        others = sorted(p.name for p in ann.glob("ava_action_list_*.pbtxt")) if ann.is_dir() else []
        found = f"; found {', '.join(others)}, which would score other classes" if others else ""
        missing.insert(0, f"{label_map} (the label map of the evaluated classes{found})")
    if vmad:
        missing += [
            str(root / image_info_file(s, version))
            for s in splits
            if not (root / image_info_file(s, version)).is_file()
        ]
        if "val" in splits and not (root / PERSON_BOX_FILES["val"]).is_file():
            missing.append(f"{root / PERSON_BOX_FILES['val']} (the person boxes)")
    elif not (root / "frames").is_dir() and not video_index(root):
        missing.append(f"{root}/frames/<id>/ or {root}/videos/<id>.* (the videos)")
    if missing:
        raise FileNotFoundError(
            f"'{root}' is not an AVA-layout dataset root: missing {'; '.join(missing)}. "
            "tools/prepare_custom_dataset.py "
            "writes this layout from your videos and an annotation table (docs/custom_dataset.md)"
        )
    num_classes = max(read_labelmap(label_map))
    names = {}
    for split in splits:
        names[split] = f"ava:{root}:{split}"
        if names[split] not in DatasetCatalog.list():
            if vmad:
                register_vmad(names[split], root, split, version, num_classes=num_classes)
            else:
                register_ava(names[split], root, split, version, num_classes=num_classes)
    return names


def register_all_ava(root: Optional[PathLike] = None) -> None:
    """Register the built-in AVA names under ``root`` (default ``$VMAE_DET_DATASETS`` or ``datasets``):
    ``ava_vmad_{train,val}``, ``ava_v2.2_*``, ``ava_v2.1_*``, ``ava_tiny_*`` and ``ava_v2.2_val_alphaction_boxes``
    (AlphAction's boxes, with which VideoMAE's AVA numbers were measured)."""
    root = Path(root if root is not None else datasets_root())
    specs = [(f"ava_{v}_{s}", root / "ava", s, v, 80, {}) for v in ("v2.2", "v2.1") for s in ("train", "val")] + [
        (f"ava_tiny_{s}", root / "tiny_ava", s, "v2.2", 5, {}) for s in ("train", "val")
    ]
    for split, (dets, info) in ALPHACTION_BOX_FILES.items():
        specs.append(
            (
                f"ava_v2.2_{split}_alphaction_boxes",
                root / "ava",
                split,
                "v2.2",
                80,
                {"proposal_file": root / "ava" / dets, "proposal_image_info": root / "ava" / info},
            )
        )
    registered = set(DatasetCatalog.list())
    for name, r, split, version, num_classes, boxes in specs:
        if name not in registered:
            register_ava(name, r, split, version, num_classes=num_classes, **boxes)
    for split in ("train", "val"):  # VMAD's processed AVA (its data/AVA folder, or a link to it)
        if f"ava_vmad_{split}" not in registered:
            register_vmad(f"ava_vmad_{split}", root / "ava_vmad", split)
