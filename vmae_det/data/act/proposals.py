"""Person boxes for a registered ACT-format dataset (``tools/make_proposals.py --dataset``), written as MultiSports'
person-box pickle ``{"<video>,<frame>": float32 (n, 5) x1 y1 x2 y2 score}`` (normalised, 1-based frames; a frame
without a person has an empty ``(0, 5)`` entry), which the registration reads back as the dicts' ``proposals``.

Long runs keep the finished videos in ``<output>.partial`` every few minutes and when stopped
(:func:`~vmae_det.data.proposals.run_checkpointed`); ``resume=True`` starts from it (and from ``output``), so only
unfinished videos are run again.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog

from ...formats.act import load_person_box_pickle, split_videos
from ...formats.act_layout import ACTLayout
from ...formats.atomic import atomic_write_bytes
from ..ava.clip_source import clip_source_for
from ..proposals import detect_people, partial_path, run_checkpointed
from .catalog import _layout, _pixel_source, read_act_groundtruth

__all__ = ["ACTVideo", "act_dataset_names", "collect_act_videos", "make_act_person_boxes", "partial_path"]

logger = logging.getLogger("make_proposals")  # the AVA mode's logger: one tool, one log

CHUNK = 8  # frames read at once (a video file decodes a run of frames faster than single seeks)


@dataclass
class ACTVideo:
    """One video to run on: its ACT name, the 1-based frames to detect on and its clip-source dict fields."""

    video: str
    frames: List[int]
    source: Dict[str, object]


def act_dataset_names() -> List[str]:
    """The registered names whose metadata says ``evaluator_type="act"``."""
    return sorted(n for n in DatasetCatalog.list() if MetadataCatalog.get(n).get("evaluator_type", None) == "act")


def _registered_layout(name: str, meta) -> ACTLayout:
    if meta.get("layout", None) != "custom":
        return _layout(meta.layout)
    loader = DatasetCatalog[name]  # register_act_dataset's partial holds the ACTLayout object
    if isinstance(loader, functools.partial) and isinstance(loader.keywords.get("layout"), ACTLayout):
        return loader.keywords["layout"]
    raise ValueError(f"dataset {name!r}: its custom ACTLayout cannot be recovered from the catalog")


def collect_act_videos(
    name: str, frame_stride: int = 1, skip_bad_videos: bool = False
) -> Tuple[List[ACTVideo], List[str]]:
    """The videos of registered ACT dataset ``name`` (all of its split's videos, frames ``1, 1 + s, ...``), each
    checked for its frames or video file before any detector is built, and the skipped ones as
    ``"<video> (<reason>)"``."""
    if isinstance(frame_stride, bool) or not isinstance(frame_stride, int) or frame_stride < 1:
        raise ValueError(f"--frame-stride must be an integer >= 1, got {frame_stride!r}")
    names = act_dataset_names()
    if name not in names:
        raise KeyError(
            f"--dataset {name!r} is not a registered ACT-format dataset (UCF101-24, JHMDB-21, MultiSports); "
            f"registered: {', '.join(names)}"
        )
    meta = MetadataCatalog.get(name)
    gt = read_act_groundtruth(meta.gt_file)
    lay, root = _registered_layout(name, meta), Path(meta.dataset_root)
    videos, missing = [], []
    for video in split_videos(gt, meta.gt_file, meta.split_kind, meta.split):
        n = int(gt["nframes"][video])
        try:
            fields = _pixel_source(root, lay, video, n)
        except FileNotFoundError as e:
            missing.append(f"{video} (missing {e})")
            continue
        source = {"video_id": video, "nframes": n, "frame_index": 0, **fields}
        videos.append(ACTVideo(video, list(range(1, n + 1, frame_stride)), source))
    if missing and not skip_bad_videos:
        raise FileNotFoundError(
            f"{len(missing)} of the {len(videos) + len(missing)} videos of {name} have no "
            f"{'frames' if lay.frames else 'video file'} under {root}: {'; '.join(missing[:3])}"
            f"{' ...' if len(missing) > 3 else ''}; add them, or pass --skip-bad-videos to skip them"
        )
    for m in missing:
        logger.warning(f"{m}: skipped (--skip-bad-videos)")
    if not videos:
        raise FileNotFoundError(f"none of the {len(missing)} videos of {name} can be read under {root}")
    return videos, missing


def _write(path: Path, boxes: Dict[Tuple[str, int], np.ndarray]) -> None:
    data = {f"{video},{frame}": rows for (video, frame), rows in boxes.items()}
    atomic_write_bytes(path, pickle.dumps(data, protocol=4))


def _finished(videos: Sequence[ACTVideo], output: Path) -> Dict[Tuple[str, int], np.ndarray]:
    """The boxes of ``videos`` already in ``output`` or its checkpoint, for the videos that have every frame."""
    names = [v.video for v in videos]
    found: Dict[Tuple[str, int], np.ndarray] = {}
    for path in (output, partial_path(output)):
        if path.is_file():
            found.update(load_person_box_pickle(path, names))
    done = {}
    for v in videos:
        keys = [(v.video, f) for f in v.frames]
        if all(k in found for k in keys):
            done.update((k, found[k]) for k in keys)
    return done


def _video_boxes(v: ACTVideo, detector, min_score: float) -> Dict[Tuple[str, int], np.ndarray]:
    from tqdm import tqdm

    out = {}
    with clip_source_for(v.source) as src:
        bar = tqdm(total=len(v.frames), desc=v.video, unit="frame", leave=False, dynamic_ncols=True)
        for i in range(0, len(v.frames), CHUNK):
            chunk = v.frames[i : i + CHUNK]
            for frame, pixels in zip(chunk, src.get_frames([f - 1 for f in chunk])):
                boxes, scores = detect_people(detector, pixels, min_score)
                out[(v.video, frame)] = np.concatenate([boxes, scores[:, None]], axis=1).astype(np.float32)
            bar.update(len(chunk))
        bar.close()
    return out


def make_act_person_boxes(
    name: str,
    output: Union[str, os.PathLike],
    detector,
    *,
    frame_stride: int = 1,
    min_score: float = 0.0,
    resume: bool = False,
    skip_bad_videos: bool = False,
    videos: Optional[Tuple[List[ACTVideo], List[str]]] = None,
    save_every_s: float = 300.0,
) -> Tuple[int, int, int]:
    """Run ``detector`` (RGB frame -> ``(boxes [K, 4] xyxy pixels, scores [K])``) on every ``frame_stride``-th frame
    of the videos of registered ACT dataset ``name``, write the person-box pickle to ``output`` and return
    ``(videos, frames, boxes)`` written.

    Args:
        resume: keep the videos already complete in ``output`` or its ``.partial`` checkpoint.
        videos: :func:`collect_act_videos`'s result, if done.
        save_every_s: seconds between checkpoints of the finished videos.
    """
    output = Path(output)
    todo, skipped = videos if videos is not None else collect_act_videos(name, frame_stride, skip_bad_videos)
    boxes = _finished(todo, output) if resume else {}
    done = {video for video, _ in boxes}
    if done:
        logger.info(f"--resume: {len(done)} of {len(todo)} videos already done in {output} or {partial_path(output)}")
    ran, _ = run_checkpointed(
        [(v.video, v) for v in todo if v.video not in done],
        functools.partial(_video_boxes, detector=detector, min_score=min_score),
        boxes,
        _write,
        output,
        dataset=name,
        total=len(todo),
        skip_bad_videos=skip_bad_videos,
        skipped=skipped,
        save_every_s=save_every_s,
    )
    return len(done) + len(ran), len(boxes), int(sum(len(b) for b in boxes.values()))
