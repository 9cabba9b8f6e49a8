"""Person boxes for the Kinetics keyframes of a registered AVA-Kinetics dataset (``tools/make_proposals.py --dataset
kinetics_ava_val``), written as AVA's predicted-boxes CSV ``youtube_id,timestamp,x1,y1,x2,y2,,score`` with each
timestamp as the annotation file writes it, so the dataset reads the file back as its Kinetics ``proposals``.

The detector sees the frame the mapper centres the keyframe's clip on (:func:`~.clip_source.keyframe_center`).
Keyframes of missing clips are skipped and counted as the dataset skips them. ``<output>.partial`` keeps the
finished clips (a keyframe without people as a ``youtube_id,timestamp`` row) for ``resume=True``.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

from detectron2.data import DatasetCatalog, MetadataCatalog

from ...formats.ava import KINETICS_CLIPS_DIR, checked_boxes, format_ava_row, read_ava_csv, write_ava_csv
from ...formats.ava_boxes import BOX_TOLERANCE
from ..proposals import detect_people, format_proposal_row, partial_path, run_checkpointed
from ..video_io import VideoDecodeError
from .clip_source import clip_source_for, keyframe_center
from .kinetics import (
    AVA_KINETICS_VERSION,
    KineticsClip,
    kinetics_clip_fields,
    kinetics_keyframes,
    log_missing_clips,
)

__all__ = ["KineticsClipJob", "ava_kinetics_dataset_names", "collect_kinetics_keyframes", "make_kinetics_person_boxes"]

logger = logging.getLogger("make_proposals")  # the AVA mode's logger: one tool, one log

Key = Tuple[str, str]  # (youtube_id, timestamp as written)


@dataclass
class KineticsClipJob:
    """One clip to run on and its keyframes' timestamps as the annotation file writes them."""

    clip: KineticsClip
    timestamps: List[str]


def ava_kinetics_dataset_names() -> List[str]:
    """The registered AVA-Kinetics names (``ava_kinetics_*``, ``kinetics_ava_*``, the tiny ones)."""
    return sorted(
        n for n in DatasetCatalog.list() if MetadataCatalog.get(n).get("version", None) == AVA_KINETICS_VERSION
    )


def collect_kinetics_keyframes(name: str) -> Tuple[List[KineticsClipJob], Dict[str, int]]:
    """The Kinetics keyframes of registered AVA-Kinetics dataset ``name`` grouped by clip (file order), and the
    counts ``keyframes``, ``missing_clips``, ``skipped_keyframes`` (keyframes whose clip is missing: logged and
    skipped, as the dataset skips them)."""
    if name not in ava_kinetics_dataset_names():
        raise KeyError(f"--dataset {name!r} is not a registered AVA-Kinetics dataset: {ava_kinetics_dataset_names()}")
    meta = MetadataCatalog.get(name)
    root, split = Path(meta.dataset_root), meta.split
    listed = kinetics_keyframes(root, split)
    jobs: Dict[str, KineticsClipJob] = {}
    missing = set()
    for (vid, text), clip in listed.items():
        if clip is None:
            missing.add(vid)
        else:
            jobs.setdefault(clip.path, KineticsClipJob(clip, [])).timestamps.append(text)
    kept = sum(len(j.timestamps) for j in jobs.values())
    log_missing_clips(root, split, missing, len(listed) - kept)
    if not jobs:
        raise FileNotFoundError(
            f"none of the {len(listed)} Kinetics keyframes of {name} has its clip under {root / KINETICS_CLIPS_DIR} "
            "(<youtube_id>_<start:06d>_<end:06d>.<ext>, docs/ava_kinetics.md)"
        )
    stats = dict(keyframes=kept, missing_clips=len(missing), skipped_keyframes=len(listed) - kept)
    return list(jobs.values()), stats


def _clip_rows(job: KineticsClipJob, detector, min_score: float) -> Dict[Key, List[str]]:
    clip, out = job.clip, {}
    fields = [kinetics_clip_fields(clip.youtube_id, float(t), clip) for t in job.timestamps]
    with clip_source_for(fields[0]) as src:
        for text, d in zip(job.timestamps, fields):
            center = keyframe_center(d, src)
            if not 0 <= center < src.num_frames:
                raise VideoDecodeError(
                    clip.path,
                    f"keyframe {clip.youtube_id},{text} is frame {center} of a clip of {src.num_frames} frames (a "
                    "truncated download? delete it and its keyframes count as missing)",
                )
            boxes, scores = detect_people(detector, src.get_frames([center])[0], min_score)
            out[(clip.youtube_id, text)] = [
                format_proposal_row(clip.youtube_id, text, b, s) for b, s in zip(boxes, scores)
            ]
    return out


def _write(path: Path, rows: Dict[Key, List[str]], order: List[Key]) -> None:
    """The CSV of the keyframes in ``order``; the checkpoint also lists those without people."""
    checkpoint = path.name.endswith(".partial")
    lines: List[str] = []
    for key in order:
        if key in rows:
            lines += rows[key] or ([format_ava_row(*key)] if checkpoint else [])
    write_ava_csv(path, lines)


def _finished(jobs: List[KineticsClipJob], output: Path) -> Dict[Key, List[str]]:
    """The rows of the clips whose every keyframe is in ``output`` or its checkpoint."""
    found: Dict[Key, List[str]] = {}
    for path in (output, partial_path(output)):
        if not path.is_file():
            continue
        rows = read_ava_csv(path, columns=(2, 8), strip=True, optional_action=True, keep_text=True)
        checked_boxes(rows, tolerance=BOX_TOLERANCE)
        here: Dict[Key, List[str]] = {key: [] for key in rows.empty_frames}
        for r in rows.text:
            here.setdefault((r[0], r[1]), []).append(format_ava_row(r[0], r[1], r[2:6], None, r[7]))
        found.update(here)
    done = {}
    for job in jobs:
        keys = [(job.clip.youtube_id, t) for t in job.timestamps]
        if all(k in found for k in keys):
            done.update((k, found[k]) for k in keys)
    return done


def make_kinetics_person_boxes(
    name: str,
    output: Union[str, os.PathLike],
    detector,
    *,
    min_score: float = 0.0,
    resume: bool = False,
    skip_bad_videos: bool = False,
    jobs: Optional[Tuple[List[KineticsClipJob], Dict[str, int]]] = None,
    save_every_s: float = 300.0,
) -> Dict[str, int]:
    """Run ``detector`` (RGB frame -> ``(boxes [K, 4] xyxy pixels, scores [K])``) on the keyframe frame of every
    Kinetics keyframe of registered AVA-Kinetics dataset ``name`` whose clip is present, write the predicted-boxes
    CSV to ``output`` and return :func:`collect_kinetics_keyframes`'s counts plus ``clips``, ``detected_keyframes``
    (keyframes with a person), ``boxes`` and ``skipped_clips`` (undecodable, with ``skip_bad_videos``).

    Args:
        resume: keep the clips already complete in ``output`` or its ``.partial`` checkpoint.
        jobs: :func:`collect_kinetics_keyframes`'s result, if done.
        save_every_s: seconds between checkpoints of the finished clips.
    """
    output = Path(output)
    todo, stats = jobs if jobs is not None else collect_kinetics_keyframes(name)
    order = [(j.clip.youtube_id, t) for j in todo for t in j.timestamps]
    rows = _finished(todo, output) if resume else {}
    left = [(os.path.basename(j.clip.path), j) for j in todo if (j.clip.youtube_id, j.timestamps[0]) not in rows]
    already = len(todo) - len(left)
    if already:
        logger.info(f"--resume: {already} of {len(todo)} clips already done in {output} or {partial_path(output)}")
    ran, bad = run_checkpointed(
        left,
        functools.partial(_clip_rows, detector=detector, min_score=min_score),
        rows,
        functools.partial(_write, order=order),
        output,
        dataset=name,
        total=len(todo),
        unit="clip",
        skip_bad_videos=skip_bad_videos,
        save_every_s=save_every_s,
    )
    written = [k for k in order if rows.get(k)]
    return {
        **stats,
        "clips": already + len(ran),
        "detected_keyframes": len(written),
        "boxes": sum(len(rows[k]) for k in written),
        "skipped_clips": len(bad),
    }
