"""ACT-format datasets (UCF101-24, JHMDB-21, MultiSports) as detectron2 dataset dicts, registered in
DatasetCatalog / MetadataCatalog.

One dict per frame (train: frames inside a ground-truth tube, every ``train_frame_stride``-th frame of the
video; test: every ``test_frame_stride``-th frame of each test video)::

    {"video_id": ACT video name, "timestamp": frame number (1-based), "frame_index": timestamp - 1,
     "fps", "nframes", "image_size": (h, w), "frames_dir" + "frame_pattern" | "video_path",
     "annotations": [{"bbox": [x1, y1, x2, y2] normalised, "actions": [label_index + 1], "person_id": tube id}],
     "proposals": {"boxes": float32 [K, 4] normalised, "scores": float32 [K]}}

The ground truth is read (and checked) by :mod:`vmae_det.formats.act` when a dataset is first loaded.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.catalog import Metadata

from ...formats.act import (
    TubeFormatError,
    check_groundtruth_file,
    load_groundtruth,
    load_person_box_pickle,
    split_videos,
)
from ...formats.act_layout import ACT_LAYOUTS, TINY_DATASETS, ACTLayout
from ..catalog_names import datasets_root, set_metadata

__all__ = [
    "ACTMetadata",
    "check_act_sources",
    "load_act_dicts",
    "person_box_file",
    "read_act_groundtruth",
    "register_act_dataset",
    "register_all_act",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]


@functools.lru_cache(maxsize=8)
def _read_groundtruth(path: str, mtime_ns: int, size: int) -> Dict[str, Any]:
    return load_groundtruth(path)


def read_act_groundtruth(path: PathLike) -> Dict[str, Any]:
    """The checked ground truth of ``path``, read once per process while the file is unchanged (do not modify
    it)."""
    path = os.fspath(path)
    check_groundtruth_file(path)
    st = os.stat(path)
    return _read_groundtruth(path, st.st_mtime_ns, st.st_size)


class ACTMetadata(Metadata):
    """detectron2 ``Metadata`` whose ``labels``, ``class_names`` (``{label_index + 1: name}``, as AVA's) and
    ``num_classes`` (when not given) are read from ``gt_file`` on first use, so registering reads nothing."""

    _RENAMED: dict = {}  # keep class_names (plain Metadata renames it to thing_classes)
    _LAZY = ("labels", "num_classes", "class_names")

    def __getattr__(self, key):
        gt_file = self.__dict__.get("gt_file")
        if key in self._LAZY and gt_file is not None and "labels" not in self.__dict__:
            if key == "class_names" and not os.path.isfile(gt_file):  # optional readers: meta.get(..., None)
                raise AttributeError(f"class_names of dataset {self.name!r}: {gt_file} not found")
            labels = list(read_act_groundtruth(gt_file)["labels"])
            object.__setattr__(self, "labels", labels)
            self.__dict__.setdefault("num_classes", len(labels))
            self.__dict__.setdefault("class_names", {i + 1: name for i, name in enumerate(labels)})
            return getattr(self, key)
        return super().__getattr__(key)

    def __setattr__(self, key, val):
        if key in self._LAZY and key not in self.__dict__:  # no read to compare with
            object.__setattr__(self, key, val)
        else:
            super().__setattr__(key, val)


def _layout(layout: Union[str, ACTLayout]) -> ACTLayout:
    if isinstance(layout, ACTLayout):
        return layout
    if layout not in ACT_LAYOUTS:
        raise ValueError(f"unknown ACT layout {layout!r}: one of {sorted(ACT_LAYOUTS)} or an ACTLayout")
    return ACT_LAYOUTS[layout]


def _pixel_source(root: Path, lay: ACTLayout, video: str, nframes: int) -> Dict[str, Any]:
    """The dict fields pointing at a video's pixels; raises FileNotFoundError naming the missing path."""
    if lay.frames is not None:
        folder = root / lay.frames / video
        for frame in (1, nframes):  # the first and last frame: a wrong pattern or a cut folder fail here
            path = folder / (lay.pattern % frame)
            if not path.is_file():
                raise FileNotFoundError(str(path if folder.is_dir() else folder))
        return {"frames_dir": str(folder), "frame_pattern": lay.pattern}
    path = root / lay.videos / f"{video}{lay.video_ext}"
    if not path.is_file():
        raise FileNotFoundError(str(path))
    return {"video_path": str(path)}


def _video_sources(
    gt: Dict[str, Any], gt_file: str, root: Path, lay: ACTLayout, split_kind: str, split: int
) -> Tuple[List[str], Dict[str, Dict[str, Any]]]:
    """The split's videos and each one's pixel-source fields; a missing one raises FileNotFoundError (it would
    silently shrink the split and change the AP)."""
    videos = split_videos(gt, gt_file, split_kind, split)
    sources, missing = {}, []
    for video in videos:
        try:
            sources[video] = _pixel_source(root, lay, video, int(gt["nframes"][video]))
        except FileNotFoundError as e:
            missing.append(str(e))
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of the {len(videos)} {split_kind} videos of {gt_file} have no "
            f"{'frames' if lay.frames else 'video file'} under {root}: first missing {missing[0]}"
        )
    return videos, sources


def check_act_sources(name: str) -> None:
    """Refuse dataset ``name`` (of :func:`register_act_dataset`; other names pass) before any work when its
    ground truth or a video of its split is missing: existence checks of each video's first and last frame file
    or its video file, nothing decoded."""
    loader = DatasetCatalog[name] if name in DatasetCatalog.list() else None
    if not (isinstance(loader, functools.partial) and loader.func is load_act_dicts):
        return
    gt_file, root = loader.args
    kw = loader.keywords
    gt = read_act_groundtruth(gt_file)
    _video_sources(gt, os.fspath(gt_file), Path(root), _layout(kw["layout"]), kw["split_kind"], kw["split"])


def _frame_annotations(gttubes: Dict[int, list], h: int, w: int, stride: int, stats: Dict[str, int]):
    """``{frame: [annotation]}`` of one video's tubes at frames ``1 + k * stride``."""
    out: Dict[int, List[dict]] = {}
    scale = np.array([w, h, w, h], np.float64)
    tube_id = 0
    for label in sorted(gttubes):
        for tube in gttubes[label]:
            rows = np.asarray(tube, np.float64)
            rows = rows[(rows[:, 0].astype(np.int64) - 1) % stride == 0]
            boxes = np.clip(rows[:, 1:5] / scale, 0.0, 1.0)
            ok = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            stats["degenerate_boxes_skipped"] += int((~ok).sum())
            for frame, box in zip(rows[ok, 0].astype(np.int64), boxes[ok]):
                ann = {"bbox": box.tolist(), "actions": [int(label) + 1], "person_id": tube_id}
                out.setdefault(int(frame), []).append(ann)
            tube_id += 1
    return out


def load_act_dicts(
    gt_file: PathLike,
    root: PathLike,
    split_kind: str = "train",
    split: int = 0,
    *,
    layout: Union[str, ACTLayout] = "ucf24",
    proposal_file: Optional[PathLike] = None,
    proposal_file_optional: bool = False,
    train_frame_stride: int = 1,
    test_frame_stride: int = 1,
) -> List[dict]:
    """The per-frame dataset dicts of ``train_videos[split]`` / ``test_videos[split]`` (see the module doc).

    Args:
        gt_file: the ACT ground-truth pickle.
        root: the dataset folder holding the frames or videos of ``layout``.
        layout: a name of :data:`ACT_LAYOUTS` or an :class:`ACTLayout`.
        proposal_file: a person-box pickle (:func:`~vmae_det.formats.act.load_person_box_pickle`).
        proposal_file_optional: no person boxes, instead of an error, when ``proposal_file`` does not exist.
        train_frame_stride, test_frame_stride: keep frames ``1, 1 + s, 1 + 2s, ...`` (of the split's kind).
    """
    gt_file, root, lay = os.fspath(gt_file), Path(root), _layout(layout)
    stride = train_frame_stride if split_kind == "train" else test_frame_stride
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"{split_kind}_frame_stride must be an integer >= 1, got {stride!r}")
    gt = read_act_groundtruth(gt_file)
    videos, sources = _video_sources(gt, gt_file, root, lay, split_kind, split)
    if split_kind == "train" and not videos:
        raise TubeFormatError(f"{gt_file}: nothing to train on: train_videos[{split}] is empty")
    if proposal_file is not None and proposal_file_optional and not os.path.isfile(proposal_file):
        proposal_file = None
    proposals = load_person_box_pickle(proposal_file, videos) if proposal_file is not None else {}
    no_boxes = np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
    stats = {"degenerate_boxes_skipped": 0}
    dicts: List[dict] = []
    for video in videos:
        n = int(gt["nframes"][video])
        h, w = (int(x) for x in gt["resolution"][video])
        source = sources[video]
        anns = _frame_annotations(gt["gttubes"].get(video, {}), h, w, stride, stats)
        frames = sorted(anns) if split_kind == "train" else range(1, n + 1, stride)
        for frame in frames:
            boxes = proposals.get((video, frame))
            d = {
                "video_id": video,
                "timestamp": frame,
                "frame_index": frame - 1,
                "fps": lay.fps,
                "nframes": n,
                "image_size": (h, w),
                **source,
                "annotations": anns.get(frame, []),
                "proposals": (
                    {"boxes": boxes[:, :4].copy(), "scores": boxes[:, 4].copy()}
                    if boxes is not None
                    else {"boxes": no_boxes[0], "scores": no_boxes[1]}
                ),
            }
            dicts.append(d)
    if split_kind == "train" and not dicts:
        raise TubeFormatError(f"{gt_file}: nothing to train on: no box in the tubes of train_videos[{split}]")
    if stats["degenerate_boxes_skipped"]:
        logger.warning(
            f"{gt_file}: skipped {stats['degenerate_boxes_skipped']} ground-truth boxes of zero area inside the "
            "frame (the evaluation still counts them)"
        )
    logger.info(
        f"Loaded {len(dicts)} frames of {len(videos)} videos of {gt_file} {split_kind}_videos[{split}] "
        f"(stride {stride}, {sum(len(d['annotations']) for d in dicts)} GT boxes, "
        f"{sum(len(d['proposals']['scores']) for d in dicts)} person boxes from {proposal_file})."
    )
    return dicts


def register_act_dataset(
    name: str,
    gt_file: PathLike,
    root: PathLike,
    split_kind: str = "train",
    split: int = 0,
    *,
    layout: Union[str, ACTLayout] = "ucf24",
    proposal_file: Optional[PathLike] = None,
    proposal_file_optional: bool = False,
    train_frame_stride: int = 1,
    test_frame_stride: int = 1,
    num_classes: Optional[int] = None,
) -> None:
    """Register one split of an ACT-format dataset as ``name``; files are read on ``DatasetCatalog.get``.

    Metadata: ``evaluator_type="act"``, ``gt_file``, ``split``, ``split_kind``, ``labels`` and ``class_names``
    (read from ``gt_file`` on first use), ``num_classes``, ``multi_label=False``, ``dataset_root``, ``layout``, ``fps``,
    ``frame_stride``, ``proposal_file``. Arguments: :func:`load_act_dicts`.
    """
    if split_kind not in ("train", "test"):
        raise ValueError(f"split_kind must be 'train' or 'test', got {split_kind!r}")
    lay = _layout(layout)
    kwargs = dict(
        split_kind=split_kind,
        split=split,
        layout=lay,
        proposal_file=proposal_file,
        proposal_file_optional=proposal_file_optional,
        train_frame_stride=train_frame_stride,
        test_frame_stride=test_frame_stride,
    )
    DatasetCatalog.register(name, functools.partial(load_act_dicts, gt_file, root, **kwargs))
    meta = {
        "evaluator_type": "act",
        "gt_file": os.fspath(gt_file),
        "split": split,
        "split_kind": split_kind,
        "multi_label": False,
        "dataset_root": os.fspath(root),
        "layout": layout if isinstance(layout, str) else "custom",
        "fps": lay.fps,
        "frame_stride": train_frame_stride if split_kind == "train" else test_frame_stride,
        "proposal_file": os.fspath(proposal_file) if proposal_file is not None else None,
    }
    if num_classes is not None:
        meta["num_classes"] = int(num_classes)
    set_metadata(name, ACTMetadata, **meta)


#: MultiSports' person boxes (its README's "Download Person Boxes"), under ``annotations/MultiSports_box``.
MULTISPORTS_BOX_FILES = {"train": "train.recall_96.13.pkl", "test": "val.recall_96.13.pkl"}
#: UCF101-24 / JHMDB-21 ship none: ``tools/make_proposals.py --dataset <name>`` writes them here.
PERSON_BOX_FOLDER = "person_boxes"


def _builtin_specs(root: Path) -> List[tuple]:
    """``(name, gt_file, dataset root, split_kind, split, layout, proposal_file, num_classes)``."""
    specs = []
    for kind in ("train", "test"):
        ucf, boxes = root / "ucf24", root / "ucf24" / PERSON_BOX_FOLDER / f"{kind}.pkl"
        specs.append((f"ucf24_{kind}", ucf / "UCF101v2-GT.pkl", ucf, kind, 0, "ucf24", boxes, 24))
        for s in (1, 2, 3):
            jhmdb, boxes = root / "jhmdb", root / "jhmdb" / PERSON_BOX_FOLDER / f"{kind}_split{s}.pkl"
            specs.append((f"jhmdb_{kind}_split{s}", jhmdb / "JHMDB-GT.pkl", jhmdb, kind, s - 1, "jhmdb", boxes, 21))
        ms = root / "multisports"
        boxes = ms / "annotations" / "MultiSports_box" / MULTISPORTS_BOX_FILES[kind]
        ms_name = "multisports_train" if kind == "train" else "multisports_val"
        specs.append((ms_name, ms / "annotations" / "multisports_GT.pkl", ms, kind, 0, "multisports", boxes, 66))
    for dataset, (folder, gt_name, layout, boxes, labels) in TINY_DATASETS.items():
        tiny = root / folder
        for kind, suffix in (("train", "train"), ("test", "val" if dataset == "multisports" else "test")):
            name = f"{dataset}_tiny_{suffix}"
            specs.append((name, tiny / gt_name, tiny, kind, 0, layout, tiny / boxes[kind], len(labels)))
    return specs


def person_box_file(name: str) -> Optional[str]:
    """The person-box file registered for dataset ``name`` if it exists now, else None (the recipes of UCF101-24
    and JHMDB-21 score their ground-truth boxes without one)."""
    path = MetadataCatalog.get(name).get("proposal_file", None)
    return path if path is not None and os.path.isfile(path) else None


def register_all_act(root: Optional[PathLike] = None) -> None:
    """Register the built-in ACT-format names under ``root`` (default ``$VMAE_DET_DATASETS`` or ``datasets``):
    ``ucf24_{train,test}``, ``jhmdb_{train,test}_split{1,2,3}``, ``multisports_{train,val}`` and the tiny
    ``ucf24_tiny_{train,test}``, ``jhmdb_tiny_{train,test}`` (split 1), ``multisports_tiny_{train,val}``. Their
    person-box files are used when present at load time: MultiSports' own, and for UCF101-24 / JHMDB-21
    ``<dataset>/person_boxes/<split>.pkl`` (``ucf24/person_boxes/test.pkl``, ``jhmdb/person_boxes/test_split1.pkl``),
    written by ``tools/make_proposals.py --dataset <name>``."""
    root = Path(root if root is not None else datasets_root())
    registered = set(DatasetCatalog.list())
    for name, gt_file, droot, kind, split, layout, boxes, num_classes in _builtin_specs(root):
        if name not in registered:
            register_act_dataset(
                name,
                gt_file,
                droot,
                kind,
                split,
                layout=layout,
                proposal_file=boxes,
                proposal_file_optional=True,
                num_classes=num_classes,
            )
