"""Generate ``tiny_ava_kinetics``: a tiny synthetic AVA-Kinetics in the layout of docs/ava_kinetics.md.

The AVA part is :func:`~vmae_det.synthetic.ava.make_tiny_ava` (videos only); the Kinetics part is 4-second clips
``kinetics/<split>/<id>_<start:06d>_<end:06d>.mp4`` drawn by the same code, keyframes at fractional seconds of the
"YouTube video" written as the real files write them (``17.010000``), 7-column rows without a person id, one
validation clip without people (a ``video_id,timestamp`` row) and, per split, one listed clip that is not there
(a video gone from YouTube). The command line is ``datasets/make_tiny_ava_kinetics.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from ..formats.atomic import atomic_write_text
from ..formats.ava import KINETICS_CLIPS_DIR, format_ava_row, kinetics_file_names, write_ava_csv
from .ava import (
    FPS,
    detector_boxes,
    draw_background,
    make_tiny_ava,
    normalised_box,
    render_video,
    segment_of,
    write_mp4,
)

__all__ = ["make_tiny_ava_kinetics", "CLIP_SECONDS"]

CLIP_SECONDS = 4  # real Kinetics clips last 10 s; 4 keep the set small
_MARKER = ".complete_ava_kinetics.json"
_SPLITS = (("train", 1), ("val", 2))


def _clip_plan(seed: int, split_code: int, i: int):
    """``(youtube_id, start, keyframe offsets in seconds)`` of clip ``i``: offsets near whole seconds so the
    +-8 frames of a clip stay in one half-second action segment."""
    rng = np.random.default_rng([seed, split_code, i, 11])
    vid = f"tinykin{split_code}{i:03d}"  # 11 characters, as YouTube ids
    start = 5 + 13 * i + int(rng.integers(0, 5))
    offsets = [2.0 + (round(float(rng.uniform(0, 0.15)), 6) if rng.random() < 0.6 else 0.0)]
    if i == 0:
        offsets.insert(0, 1.0)  # ~1 keyframe per clip, sometimes 2
    return vid, start, offsets, rng


def _write_kinetics_split(root: Path, seed: int, split: str, split_code: int, num_clips: int) -> None:
    gt_rows, prop_rows = [], []
    num_frames = CLIP_SECONDS * FPS
    empty = split == "val"  # the last validation clip shows no one
    for i in range(num_clips + 1):  # the extra clip is listed but missing
        vid, start, offsets, rng = _clip_plan(seed, split_code, i)
        missing, nobody = i == num_clips, empty and i == num_clips - 1
        if nobody:
            frames, people = np.repeat(draw_background(rng, "plain")[None], num_frames, 0), []
        else:
            frames, people = render_video(int(rng.integers(2**31)), num_frames, int(rng.integers(1, 3)))
        if not missing:
            folder = root / KINETICS_CLIPS_DIR / split
            folder.mkdir(parents=True, exist_ok=True)
            write_mp4(folder / f"{vid}_{start:06d}_{start + CLIP_SECONDS:06d}.mp4", frames)
        for off in offsets:
            ts = f"{start + off:.6f}"
            if not people:
                gt_rows.append(format_ava_row(vid, ts))
            f = int(round(off * FPS))
            nboxes = [normalised_box(person["boxes"][f]) for person in people]
            for person, nbox in zip(people, nboxes):
                for act in sorted(person["actions"][segment_of(f)]):
                    gt_rows.append(format_ava_row(vid, ts, nbox, act))
            for row in detector_boxes(rng, nboxes, 0.5):
                prop_rows.append(format_ava_row(vid, ts, row[:4], None, row[4]))
    names = kinetics_file_names(split)
    write_ava_csv(root / "annotations" / names["groundtruth"], gt_rows)
    write_ava_csv(root / "annotations" / names["proposals"], prop_rows)


def make_tiny_ava_kinetics(
    root: str | Path = "datasets/tiny_ava_kinetics",
    seed: int = 0,
    num_ava_train: int = 2,
    num_ava_val: int = 1,
    num_kinetics_train: int = 8,
    num_kinetics_val: int = 4,
    force: bool = False,
) -> Path:
    """Generate the tiny AVA-Kinetics under ``root`` (deterministic from ``seed``) and return it; returns at once
    when ``root`` holds a complete set made with the same parameters."""
    if num_kinetics_val < 2:
        raise ValueError(f"num_kinetics_val must be >= 2 (one clip shows no one), got {num_kinetics_val}")
    root = Path(root)
    params = dict(
        seed=seed,
        num_ava_train=num_ava_train,
        num_ava_val=num_ava_val,
        num_kinetics_train=num_kinetics_train,
        num_kinetics_val=num_kinetics_val,
        version=1,
    )
    marker = root / _MARKER
    if not force and marker.is_file() and json.loads(marker.read_text() or "{}") == params:
        return root
    marker.unlink(missing_ok=True)
    make_tiny_ava(
        root,
        seed=seed,
        num_train_videos=num_ava_train,
        num_val_videos=num_ava_val,
        seconds=6,
        format="videos",
        force=True,
    )
    shutil.rmtree(root / KINETICS_CLIPS_DIR, ignore_errors=True)
    for split, code in _SPLITS:
        _write_kinetics_split(root, seed, split, code, num_kinetics_train if split == "train" else num_kinetics_val)
    readme = root / "README.txt"
    atomic_write_text(
        readme,
        readme.read_text()
        + (
            "\ntiny_ava_kinetics (datasets/make_tiny_ava_kinetics.py): the AVA part above (videos/, 6 s) plus\n"
            f"Kinetics clips kinetics/<split>/<id>_<start>_<end>.mp4 of {CLIP_SECONDS} s, keyframes at seconds of\n"
            "the source video (start < t < end; frame (t - start) * 30), annotations/kinetics_<split>_v1.0.csv\n"
            "(7 columns, no person id; a video_id,timestamp row for a keyframe without people) and\n"
            "kinetics_<split>_predicted_boxes.csv. One listed clip per split is missing on purpose.\n"
            f"parameters: {json.dumps(params, sort_keys=True)}\n"
        ),
    )
    atomic_write_text(marker, json.dumps(params, sort_keys=True))
    return root
