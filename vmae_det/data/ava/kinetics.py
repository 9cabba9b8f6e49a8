"""AVA-Kinetics (Li et al. 2020): AVA v2.2 plus the AVA-annotated Kinetics-700 clips, as dataset dicts in AVA's
format (:mod:`.catalog`), registered in detectron2's catalogs. Layout, timestamps and scoring: docs/ava_kinetics.md.

A Kinetics keyframe ``(youtube_id, t)`` lies in the clip ``<youtube_id>_<start:06d>_<end:06d>.<ext>`` with
``start < t < end``; ``t`` is seconds of the YouTube video (``17.010000``), so the clip's frame is ``(t - start) *
fps``: the dict's ``start_sec`` is the clip's ``start``. Clips that are gone (removed from YouTube) are a counted,
logged skip; the ground truth the evaluator scores (:func:`write_scored_groundtruth`) leaves their keyframes out.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog

from ...constants import AVA_FPS, VIDEO_EXTENSIONS
from ...formats.atomic import atomic_write_text
from ...formats.ava import KINETICS_CLIPS_DIR, annotation_file_names, kinetics_file_names, read_ava_csv, read_labelmap
from ...formats.ava_boxes import read_annotations, read_excluded_keyframes, read_proposals
from ..catalog_names import datasets_root, set_metadata
from .catalog import AVAMetadata, load_ava_dicts

__all__ = [
    "AVA_KINETICS_VERSION",
    "KineticsClip",
    "kinetics_clip_index",
    "find_clip",
    "kinetics_keyframes",
    "kinetics_clip_fields",
    "log_missing_clips",
    "load_kinetics_dicts",
    "load_ava_kinetics_dicts",
    "write_scored_groundtruth",
    "register_ava_kinetics",
    "register_all_ava_kinetics",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

#: The registered metadata's ``version``: how tools tell an AVA-Kinetics name.
AVA_KINETICS_VERSION = "ava_kinetics_v1.0"
#: AVA's keyframe seconds (``ava_included_timestamps_v2.2.txt``).
AVA_KEYFRAME_SECONDS = range(902, 1799)
_CLIP_NAME = re.compile(r"^(?P<id>.+)_(?P<start>\d{6})_(?P<end>\d{6})$")
_KINETICS_COLUMNS = (2, 7, 8)  # video_id,timestamp rows (no person) and box rows, with or without a person id


@dataclass(frozen=True)
class KineticsClip:
    """One Kinetics clip file: seconds ``start``..``end`` of YouTube video ``youtube_id``."""

    youtube_id: str
    start: int
    end: int
    path: str


def kinetics_clip_index(folder: PathLike) -> Dict[str, List[KineticsClip]]:
    """``youtube_id -> clips`` for every ``<id>_<start:06d>_<end:06d>.<ext>`` video under ``folder`` (any depth);
    an absent folder gives ``{}``."""
    out: Dict[str, List[KineticsClip]] = {}
    if not os.path.isdir(folder):
        return out
    for dirpath, _, files in os.walk(folder):
        for name in files:
            stem, ext = os.path.splitext(name)
            m = _CLIP_NAME.match(stem)
            if m and ext.lower() in VIDEO_EXTENSIONS:
                clip = KineticsClip(m["id"], int(m["start"]), int(m["end"]), os.path.join(dirpath, name))
                out.setdefault(clip.youtube_id, []).append(clip)
    for clips in out.values():
        clips.sort(key=lambda c: (c.start, c.end, c.path))
    return out


def find_clip(clips: Sequence[KineticsClip], timestamp: float) -> Optional[KineticsClip]:
    """The clip holding second ``timestamp`` (``start < t < end``, mmaction2's rule); of several (a video in more
    than one Kinetics release) the one whose middle is nearest, the earlier on ties."""
    inside = [c for c in clips if c.start < timestamp < c.end]
    return min(inside, key=lambda c: abs((c.start + c.end) / 2 - timestamp)) if inside else None


def kinetics_keyframes(root: PathLike, split: str) -> Dict[Tuple[str, str], Optional[KineticsClip]]:
    """Every keyframe of the split's Kinetics file (box rows and ``video_id,timestamp`` rows, file order), its
    timestamp as written, with the clip holding it (:func:`find_clip`; ``None``: the clip is missing)."""
    root = Path(root)
    rows = read_ava_csv(_split_paths(root, split)["groundtruth"], columns=_KINETICS_COLUMNS, strip=True)
    clips = kinetics_clip_index(root / KINETICS_CLIPS_DIR)
    every = dict.fromkeys(zip(rows.str_column("video_ids"), rows.str_column("timestamps")))
    every.update(dict.fromkeys(rows.empty_frames))
    for vid, text in every:
        try:
            ts = float(text)
        except ValueError:
            raise ValueError(f"{rows.source}: timestamp {text!r} of {vid} is not a number") from None
        every[(vid, text)] = find_clip(clips.get(vid, ()), ts)
    return every


def kinetics_clip_fields(video_id: str, timestamp: float, clip: KineticsClip) -> dict:
    """The dataset-dict fields that place keyframe ``(video_id, timestamp)`` in ``clip`` (what
    :func:`~.clip_source.clip_source_for` and :func:`~.clip_source.keyframe_center` read): the clip is read on
    the 30-fps annotation grid, ``start_sec`` is its first second."""
    return {
        "video_id": video_id,
        "timestamp": float(timestamp),
        "fps": AVA_FPS,
        "start_sec": clip.start,
        "video_path": clip.path,
    }


def log_missing_clips(root: Path, split: str, missing: set, keyframes: int, boxes: Optional[int] = None) -> None:
    """The one warning for Kinetics videos without a clip (the dataset's and the proposal tool's)."""
    if missing:
        lost = f"{keyframes} keyframe(s)" + (f" and {boxes} GT box(es)" if boxes is not None else "")
        logger.warning(
            f"AVA-Kinetics {split}: {len(missing)} Kinetics video(s) have no clip under "
            f"{root / KINETICS_CLIPS_DIR} (e.g. {sorted(missing)[:3]}); skipped their {lost}"
        )


def _empty_proposals() -> dict:
    return {"boxes": np.zeros((0, 4), np.float32), "scores": np.zeros((0,), np.float32)}


def _split_paths(root: Path, split: str) -> Dict[str, Path]:
    names = kinetics_file_names(split)
    return {k: root / "annotations" / v for k, v in names.items()}


def _whitelist(root: Path, is_train: bool, class_whitelist: Optional[Sequence[int]]) -> Optional[set]:
    if class_whitelist is not None:
        return set(class_whitelist)
    if is_train:  # every action supervises the backbone, as for AVA (load_ava_dicts)
        return None
    return set(read_labelmap(root / "annotations" / annotation_file_names("val")["label_map"]))


def load_kinetics_dicts(
    root: PathLike,
    split: str,
    *,
    is_train: Optional[bool] = None,
    proposal_min_score: float = 0.0,
    class_whitelist: Optional[Sequence[int]] = None,
    stats: Optional[dict] = None,
) -> List[dict]:
    """The Kinetics keyframes of one split as AVA dataset dicts (``video_path``, ``fps`` 30: the clip is read on
    the 30-fps annotation grid, ``start_sec``: the clip's first second).

    Args:
        is_train: keep keyframes with GT boxes only (default ``split == "train"``); otherwise those with GT or
            person boxes.
        stats: filled with ``keyframes``, ``missing_clips``, ``skipped_keyframes``, ``skipped_boxes``.
    """
    root = Path(root)
    is_train = (split == "train") if is_train is None else is_train
    files = _split_paths(root, split)
    whitelist = _whitelist(root, is_train, class_whitelist)
    gt = read_annotations(files["groundtruth"], whitelist, columns=_KINETICS_COLUMNS, integer_timestamps=False)
    proposals = (
        read_proposals(files["proposals"], proposal_min_score, integer_timestamps=False)
        if files["proposals"].is_file()
        else {}
    )
    keys = set(gt) if is_train else set(gt) | set(proposals)
    clips = kinetics_clip_index(root / KINETICS_CLIPS_DIR)
    dicts, missing, skipped_boxes = [], set(), 0
    for vid, ts in sorted(keys):
        clip = find_clip(clips.get(vid, ()), ts)
        if clip is None:
            missing.add(vid)
            skipped_boxes += len(gt.get((vid, ts), []))
            continue
        anns = gt.get((vid, ts), [])
        boxes, scores = proposals.get((vid, ts), (_empty_proposals()["boxes"], _empty_proposals()["scores"]))
        dicts.append(
            {
                **kinetics_clip_fields(vid, ts, clip),
                "annotations": [
                    {"bbox": list(a.bbox), "actions": sorted(a.actions), "person_id": a.person_id} for a in anns
                ],
                "proposals": {"boxes": boxes, "scores": scores},
            }
        )
    skipped = len(keys) - len(dicts)
    counts = dict(keyframes=len(dicts), missing_clips=len(missing), skipped_keyframes=skipped)
    counts["skipped_boxes"] = skipped_boxes
    if stats is not None:
        stats.update(counts)
    log_missing_clips(root, split, missing, skipped, skipped_boxes)
    logger.info(
        f"Loaded {len(dicts)} Kinetics keyframes of AVA-Kinetics {split} from {root} "
        f"({sum(len(d['annotations']) for d in dicts)} GT boxes, {len(missing)} videos missing)."
    )
    return dicts


def _kept_kinetics_keys(root: Path, split: str) -> Tuple[set, set]:
    """``(keyframes whose clip exists, all keyframes)`` of the split's Kinetics file, timestamps as written."""
    every = kinetics_keyframes(root, split)
    return {key for key, clip in every.items() if clip is not None}, set(every)


def _kinetics_lines(root: Path, split: str, kept: set) -> List[str]:
    rows = read_ava_csv(_split_paths(root, split)["groundtruth"], columns=_KINETICS_COLUMNS, strip=True, keep_text=True)
    lines = [",".join(r) for r in rows.text if (r[0], r[1]) in kept]
    return lines + [f"{v},{t}" for v, t in rows.empty_frames if (v, t) in kept]


def _ava_lines(root: Path, split: str) -> List[str]:
    """AVA v2.2's rows for the 2020 protocol: excluded keyframes dropped, every other keyframe second of each
    movie without GT as a ``video_id,timestamp`` row, so the 2020 evaluator scores AVA as the 2019 one with
    exclusions does (detections there stay false positives)."""
    names = annotation_file_names(split)
    ann = root / "annotations"
    excl_file = ann / names["exclusions"]
    excluded = read_excluded_keyframes(excl_file if excl_file.is_file() else None)
    rows = read_ava_csv(ann / names["groundtruth"], columns=(8,), strip=True, keep_text=True)
    lines, annotated = [], set()
    for r in rows.text:
        key = (r[0], int(r[1]))
        annotated.add(key)
        if key not in excluded:
            lines.append(",".join(r))
    skip = annotated | excluded
    for vid in sorted({v for v, _ in annotated}):
        lines += [f"{vid},{s:04d}" for s in AVA_KEYFRAME_SECONDS if (vid, s) not in skip]
    return lines


def write_scored_groundtruth(root: PathLike, split: str, *, with_ava: bool = True) -> Path:
    """Write (if its content changed) the ground truth the AVA evaluator scores with protocol 2020:
    ``annotations/ava_kinetics_<split>_v1.0_scored.csv`` (AVA v2.2 converted by :func:`_ava_lines` + the Kinetics
    rows whose clip exists), or with ``with_ava=False`` ``kinetics_<split>_v1.0_scored.csv``. Returns its path."""
    root = Path(root)
    kept, every = _kept_kinetics_keys(root, split)
    lines = (_ava_lines(root, split) if with_ava else []) + _kinetics_lines(root, split, kept)
    path = _split_paths(root, split)["scored_combined" if with_ava else "scored"]
    text = "".join(line + "\n" for line in lines)
    if not path.is_file() or path.read_text() != text:
        atomic_write_text(path, text)
    if len(kept) < len(every):
        logger.warning(
            f"{path}: {len(every) - len(kept)} of {len(every)} Kinetics keyframes left out (clip missing); "
            "the mAP is on the clips present"
        )
    return path


def load_ava_kinetics_dicts(
    root: PathLike,
    split: str,
    *,
    with_ava: bool = True,
    dataset_name: Optional[str] = None,
    **kwargs,
) -> List[dict]:
    """AVA v2.2 (:func:`~.catalog.load_ava_dicts`, ``with_ava``) then Kinetics (:func:`load_kinetics_dicts`)
    dicts of one split; writes the scored ground truth of a non-training split and records the skip counts in the
    dataset's metadata (``kinetics_skips``)."""
    root = Path(root)
    is_train = kwargs.get("is_train")
    is_train = (split == "train") if is_train is None else is_train
    dicts = load_ava_dicts(root, split, "v2.2", **kwargs) if with_ava else []
    stats: dict = {}
    kin_kwargs = {k: v for k, v in kwargs.items() if k in ("is_train", "proposal_min_score", "class_whitelist")}
    dicts += load_kinetics_dicts(root, split, stats=stats, **kin_kwargs)
    if not is_train:
        write_scored_groundtruth(root, split, with_ava=with_ava)
    if dataset_name is not None:
        meta = MetadataCatalog.get(dataset_name)
        if hasattr(meta, "kinetics_skips"):  # a reload after the clips or box files changed counts anew
            delattr(meta, "kinetics_skips")
        meta.kinetics_skips = stats
        if not hasattr(meta, "class_names"):
            meta.class_names = dict(read_labelmap(root / "annotations" / annotation_file_names(split)["label_map"]))
    return dicts


def register_ava_kinetics(
    name: str, root: PathLike, split: str, *, with_ava: bool = True, num_classes: int = 80, **load_kwargs
) -> None:
    """Register one split as ``name`` (read lazily). Metadata: the scored ground truth (written when the dataset
    is loaded), no exclusions, ``protocol="2020"``, the 2019 label map, ``evaluator_type="ava"``."""
    root = Path(root)
    DatasetCatalog.register(
        name, lambda: load_ava_kinetics_dicts(root, split, with_ava=with_ava, dataset_name=name, **load_kwargs)
    )
    ann = root / "annotations"
    label_map = ann / annotation_file_names(split)["label_map"]
    ava_props = ann / annotation_file_names(split)["proposals"]
    meta = {
        "label_map_file": str(label_map),
        "groundtruth_csv": str(_split_paths(root, split)["scored_combined" if with_ava else "scored"]),
        "exclusions_csv": None,
        "protocol": "2020",
        "num_classes": num_classes,
        "evaluator_type": "ava",
        "dataset_root": str(root),
        "split": split,
        "version": AVA_KINETICS_VERSION,
        "fps": AVA_FPS,
        "proposal_file": str(ava_props) if with_ava and ava_props.is_file() else None,
        "proposal_format": "slowfast_csv",
    }
    if label_map.is_file():
        try:
            names = read_labelmap(label_map)
            meta["class_names"] = names
            meta["num_classes"] = max(num_classes, max(names))
        except ValueError as e:  # importing vmae_det.data must not fail; loading will raise it
            logger.warning(f"Dataset {name}: {e}")
    set_metadata(name, AVAMetadata, **meta)


def register_all_ava_kinetics(root: Optional[PathLike] = None) -> None:
    """Register ``ava_kinetics_{train,val}`` (AVA + Kinetics, ``ava_kinetics/``), ``kinetics_ava_{train,val}``
    (the Kinetics part alone) and ``ava_kinetics_tiny_{train,val}`` (``tiny_ava_kinetics/``) under ``root``
    (default ``$VMAE_DET_DATASETS`` or ``datasets``)."""
    root = Path(root if root is not None else datasets_root())
    registered = set(DatasetCatalog.list())
    for split in ("train", "val"):
        specs = [
            (f"ava_kinetics_{split}", root / "ava_kinetics", True, 80),
            (f"kinetics_ava_{split}", root / "ava_kinetics", False, 80),
            (f"ava_kinetics_tiny_{split}", root / "tiny_ava_kinetics", True, 5),
        ]
        for name, r, with_ava, num_classes in specs:
            if name not in registered:
                register_ava_kinetics(name, r, split, with_ava=with_ava, num_classes=num_classes)
