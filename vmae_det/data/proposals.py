"""SlowFast-style AVA person proposals from an off-the-shelf person detector (``tools/make_proposals.py``).

Writes SlowFast's ``ava_{train,val}_predicted_boxes.csv`` format for every keyframe of an AVA-layout root. A
missing or unreadable video is an error unless ``skip_bad_videos``: a silently missed video lowers its mAP.
:func:`run_checkpointed` is the checkpointed loop of the registered-dataset modes (ACT, AVA-Kinetics).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..constants import AVA_FIRST_KEYFRAME_SEC
from ..formats.ava import annotation_file_names, format_ava_row, keyframe_index, write_ava_csv
from ..formats.ava_boxes import read_annotations
from .ava.catalog import video_index
from .ava.clip_source import FramesClipSource, VideoClipSource

__all__ = [
    "collect_videos",
    "detect_people",
    "make_proposals",
    "split_video_ids",
    "format_proposal_row",
    "partial_path",
    "run_checkpointed",
]

# Outside "vmae_det", whose console handler does not propagate, so callers' log captures see the messages.
logger = logging.getLogger("make_proposals")

#: ``(video_id, ClipSource factory)``: the factory opens the video (a context manager) when called.
Video = Tuple[str, Callable[[], object]]


def _videos(root: Path, source: str, only: Optional[set]) -> Tuple[List[Video], List[str]]:
    """``(video_id, ClipSource factory)`` for each video under ``root``, and the ids of ``only`` that have none."""
    found = {}
    if source in ("auto", "videos"):
        for vid, path in video_index(root).items():
            found[vid] = lambda p=path: VideoClipSource(p)
    if source in ("auto", "frames") and (root / "frames").is_dir():
        for d in sorted((root / "frames").iterdir()):
            if d.is_dir():
                found[d.name] = lambda d=d: FramesClipSource(d, d.name)  # frames win over videos
    missing: List[str] = []
    if only is not None:
        missing = sorted(only - set(found))
        found = {k: v for k, v in found.items() if k in only}
    return sorted(found.items()), missing


def split_video_ids(root: Path, split: Optional[str]) -> Optional[set]:
    """The video ids of ``split``: those of ``annotations/ava_<split>_v2.2.csv``, else of SlowFast's
    ``frame_lists/<split>.csv``; None (every video) without a split."""
    if not split:
        return None
    gt = root / "annotations" / annotation_file_names(split)["groundtruth"]
    lists = root / "frame_lists" / f"{split}.csv"
    if gt.is_file():
        return {vid for vid, _ in read_annotations(gt)}
    if lists.is_file():
        return {line.split(" ")[0] for line in lists.read_text().splitlines()[1:] if line}
    raise FileNotFoundError(f"--split {split}: neither {gt} nor {lists} exists")


def collect_videos(
    root: Path, split: Optional[str] = None, source: str = "auto", skip_bad_videos: bool = False
) -> Tuple[List[Video], List[str]]:
    """The videos to run on, each opened once before any detector is built, and the skipped ones as
    ``"<id> (<reason>)"``."""
    root = Path(root)
    videos, missing = _videos(root, source, split_video_ids(root, split))
    where = f"{root}/frames/<id>/ or {root}/videos/<id>.* (--source {source})"
    if not videos and not missing:
        raise FileNotFoundError(f"no videos under {where} (split={split})")
    skipped: List[str] = []
    if missing:
        message = (
            f"{len(missing)} video(s) of split '{split}' have neither {where}: "
            f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}"
        )
        if not skip_bad_videos:
            raise FileNotFoundError(f"{message}; add them, or pass --skip-bad-videos to skip them")
        logger.warning(f"{message}; skipped (--skip-bad-videos)")
        skipped += [f"{vid} (missing)" for vid in missing]
    readable = []
    for vid, make_source in videos:
        try:
            with make_source() as src:
                src.get_frames([src.num_frames - 1])
        except OSError as e:  # VideoDecodeError, a missing or unreadable frame
            if not skip_bad_videos:
                raise type(e)(f"{e} (video '{vid}'; --skip-bad-videos skips such videos)") from e
            logger.warning(f"{vid}: skipped (--skip-bad-videos): {e}")
            skipped.append(f"{vid} ({e})")
            continue
        readable.append((vid, make_source))
    if not readable:
        raise FileNotFoundError(
            f"none of the {len(videos) + len(missing)} videos under {where} can be read: " + "; ".join(skipped)
        )
    return readable, skipped


def format_proposal_row(video_id: str, second: Union[int, str], box: np.ndarray, score: float) -> str:
    """One row of SlowFast's predicted-boxes CSV: ``video_id,SSSS,x1,y1,x2,y2,,score`` (box normalised,
    three decimals as AVA's files; the action column empty; a ``str`` second is written as it is)."""
    return format_ava_row(video_id, second, box, None, float(score), decimals=3, score_decimals=6)


def detect_people(detector, frame: np.ndarray, min_score: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
    """``detector``'s people on an RGB ``frame`` as ``(boxes float32 [K, 4] x1 y1 x2 y2 normalised, scores [K])``:
    scores >= ``min_score``, boxes clipped to the frame, empty ones dropped."""
    h, w = frame.shape[:2]
    boxes, scores = detector(frame)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores).reshape(-1)
    boxes = np.clip(boxes / np.array([w, h, w, h], np.float32), 0, 1)
    keep = (scores >= min_score) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep], scores[keep]


def make_proposals(
    root: Path,
    output: Path,
    detector,
    split: Optional[str] = None,
    source: str = "auto",
    first_sec: int = AVA_FIRST_KEYFRAME_SEC,
    min_score: float = 0.0,
    skip_bad_videos: bool = False,
    videos: Optional[Tuple[List[Video], List[str]]] = None,
) -> int:
    """Run ``detector`` (RGB frame -> ``(boxes [K, 4] xyxy pixels, scores [K])``) on every keyframe, write the
    CSV to ``output`` and return its number of rows. ``videos``: :func:`collect_videos`'s result, if done."""
    root, output = Path(root), Path(output)
    rows: List[str] = []
    readable, skipped = videos if videos is not None else collect_videos(root, split, source, skip_bad_videos)
    skipped = list(skipped)
    from tqdm import tqdm

    for vid, make_source in tqdm(readable, desc="videos", unit="video", dynamic_ncols=True):
        try:
            secs = _video_proposals(vid, make_source, detector, first_sec, min_score, rows)
        except OSError as e:  # a file that changed or broke after the check
            if not skip_bad_videos:
                raise
            logger.warning(f"{vid}: skipped (--skip-bad-videos): {e}")
            skipped.append(f"{vid} ({e})")
            continue
        logger.info(f"{vid}: {secs} keyframes")
    if skipped:
        logger.warning(f"skipped {len(skipped)} of {len(readable) + len(skipped)} videos: " + "; ".join(skipped))
    write_ava_csv(output, rows)
    return len(rows)


def _video_proposals(vid: str, make_source, detector, first_sec: int, min_score: float, rows: List[str]) -> int:
    """Append the proposal rows of one video; return its number of keyframes."""
    from tqdm import tqdm

    video_rows: List[str] = []  # kept only when the whole video reads
    with make_source() as src:
        secs = []
        s = first_sec
        while keyframe_index(s) < src.num_frames:
            secs.append(s)
            s += 1
        for sec in tqdm(secs, desc=vid, unit="keyframe", leave=False, dynamic_ncols=True):
            frame = src.get_frames([keyframe_index(sec)])[0]
            for nb, sc in zip(*detect_people(detector, frame, min_score)):
                video_rows.append(format_proposal_row(vid, sec, nb, sc))
    rows.extend(video_rows)
    return len(secs)


def partial_path(output: Union[str, os.PathLike]) -> Path:
    """The checkpoint of a run writing ``output``: the finished videos so far."""
    output = Path(output)
    return output.with_name(output.name + ".partial")


def run_checkpointed(
    todo: Sequence[Tuple[str, object]],
    run_one: Callable[[object], Dict],
    results: Dict,
    write: Callable[[Path, Dict], None],
    output: Union[str, os.PathLike],
    *,
    dataset: str,
    total: int,
    unit: str = "video",
    skip_bad_videos: bool = False,
    skipped: Sequence[str] = (),
    save_every_s: float = 300.0,
) -> Tuple[List[str], List[str]]:
    """Run ``run_one(job) -> {key: boxes}`` on each ``(name, job)`` of ``todo`` into ``results``, then
    ``write(output, results)`` and remove the checkpoint. ``write(partial_path(output), results)`` keeps the
    finished jobs every ``save_every_s`` seconds and when the run stops (an error, Ctrl-C), for ``--resume``.

    An ``OSError`` of a job stops the run naming it; with ``skip_bad_videos`` the job is logged and skipped.
    Returns ``(names done, "<name> (<reason>)" of the skipped)``, those also counted in the summary line with
    ``skipped`` (skipped before the run); ``total`` (jobs with those done before) is for the log.
    """
    from tqdm import tqdm

    output = Path(output)
    done: List[str] = []
    skipped = list(skipped)
    last_save, unsaved = time.monotonic(), False
    try:
        for name, job in tqdm(todo, desc=f"{unit}s", unit=unit, dynamic_ncols=True):
            try:
                found = run_one(job)
            except OSError as e:  # a frame or video that broke after the check
                if not skip_bad_videos:
                    raise type(e)(f"{e} ({unit} '{name}' of {dataset}; --skip-bad-videos skips such videos)") from e
                logger.warning(f"{name}: skipped (--skip-bad-videos): {e}")
                skipped.append(f"{name} ({e})")
                continue
            results.update(found)
            done.append(name)
            unsaved = True
            if time.monotonic() - last_save > save_every_s:
                write(partial_path(output), results)
                logger.info(
                    f"checkpoint: {total - len(todo) + len(done)} of {total} {unit}s in {partial_path(output)} "
                    "(--resume goes on)"
                )
                last_save, unsaved = time.monotonic(), False
    except BaseException:
        if unsaved:
            write(partial_path(output), results)
        raise
    if skipped:
        logger.warning(f"skipped {len(skipped)} {unit}s of {dataset}: " + "; ".join(skipped))
    write(output, results)
    partial_path(output).unlink(missing_ok=True)
    return done, skipped
