"""Readers for the official AVA annotation files (and SlowFast's person-proposal files).

Formats (all CSV without header, timestamps in seconds of the movie, boxes normalised to [0, 1]):

* ``ava_{train,val}_v2.{1,2}.csv``: ``video_id,timestamp,x1,y1,x2,y2,action_id,person_id``, one
  row per (person, action) — a person with three actions appears on three rows with the same box.
* ``ava_{train,val}_excluded_timestamps_v2.{1,2}.csv``: ``video_id,timestamp``.
* ``ava_{train,val}_predicted_boxes.csv`` (SlowFast): ``video_id,timestamp,x1,y1,x2,y2,,score``;
  the action column is empty (or an id, ignored), the 8th column is the detector score.

The label map (pbtxt) reader is shared with the evaluator: :func:`vmae_det.evaluation.ava_io.read_labelmap`.

Every malformed row raises :class:`AVAFormatError` naming the file and the 1-based line, because a
silently misread row would turn into a wrong mAP much later.
"""
from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple, Union

import numpy as np

__all__ = [
    "AVAFormatError",
    "AVABox",
    "KeyframeKey",
    "read_annotations",
    "read_exclusions",
    "read_proposals",
]

PathLike = Union[str, Path]
KeyframeKey = Tuple[str, int]  # (video_id, timestamp in seconds)


class AVAFormatError(ValueError):
    """A malformed line in an AVA file; the message is ``file:line: reason``."""

    def __init__(self, path: PathLike, line: int, reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        super().__init__(f"{path}:{line}: {reason}")


@dataclass
class AVABox:
    """One annotated person at one keyframe: a normalised box and all its action ids."""

    bbox: List[float]  # [x1, y1, x2, y2] in [0, 1]
    person_id: int
    actions: List[int] = field(default_factory=list)


def _rows(path: PathLike) -> Iterator[Tuple[int, List[str]]]:
    """``(line_number, fields)`` for each non-blank line of a CSV file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"AVA file not found: {path}")
    with open(path, newline="") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or all(not c.strip() for c in row):
                continue
            yield lineno, [c.strip() for c in row]


def _parse_int(path: PathLike, lineno: int, value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise AVAFormatError(path, lineno, f"{what} must be an integer, got {value!r}") from None


def _parse_box(path: PathLike, lineno: int, values: List[str]) -> List[float]:
    try:
        box = [float(v) for v in values]
    except ValueError:
        raise AVAFormatError(path, lineno, f"box coordinates must be numbers, got {values}") from None
    x1, y1, x2, y2 = box
    if not all(math.isfinite(v) and -1e-3 <= v <= 1 + 1e-3 for v in box):
        raise AVAFormatError(path, lineno, f"box {box} is not normalised to [0, 1]")
    if x2 < x1 or y2 < y1:
        raise AVAFormatError(path, lineno, f"box {box} has x2 < x1 or y2 < y1 (expected x1,y1,x2,y2)")
    return [min(max(v, 0.0), 1.0) for v in box]


def _parse_key(path: PathLike, lineno: int, row: List[str]) -> KeyframeKey:
    if not row[0]:
        raise AVAFormatError(path, lineno, "empty video_id")
    return row[0], _parse_int(path, lineno, row[1], "timestamp")


def read_annotations(
    path: PathLike, class_whitelist: Optional[Set[int]] = None
) -> Dict[KeyframeKey, List[AVABox]]:
    """Read a ground-truth CSV into ``{(video_id, timestamp): [AVABox, ...]}``.

    Rows of the same person and box at a keyframe are merged into one :class:`AVABox` carrying all
    their actions. Actions outside ``class_whitelist`` (e.g. the 20 ids AVA v2.x does not evaluate)
    are dropped; a box left with no action is still kept as a person box.
    """
    out: Dict[KeyframeKey, Dict[Tuple, AVABox]] = defaultdict(dict)
    for lineno, row in _rows(path):
        if len(row) != 8:
            raise AVAFormatError(
                path, lineno,
                f"expected 8 columns video_id,timestamp,x1,y1,x2,y2,action_id,person_id, got {len(row)}",
            )
        key = _parse_key(path, lineno, row)
        box = _parse_box(path, lineno, row[2:6])
        action = _parse_int(path, lineno, row[6], "action_id")
        person = _parse_int(path, lineno, row[7], "person_id")
        ann = out[key].setdefault((person, tuple(row[2:6])), AVABox(bbox=box, person_id=person))
        if (class_whitelist is None or action in class_whitelist) and action not in ann.actions:
            ann.actions.append(action)
    return {k: list(v.values()) for k, v in out.items()}


def read_exclusions(path: Optional[PathLike]) -> Set[KeyframeKey]:
    """Read an excluded-timestamps CSV into a set of ``(video_id, timestamp)``; ``None`` → empty."""
    if path is None:
        return set()
    out: Set[KeyframeKey] = set()
    for lineno, row in _rows(path):
        if len(row) != 2:
            raise AVAFormatError(path, lineno, f"expected 2 columns video_id,timestamp, got {len(row)}")
        out.add(_parse_key(path, lineno, row))
    return out


def read_proposals(
    path: PathLike, min_score: float = 0.0
) -> Dict[KeyframeKey, Tuple[np.ndarray, np.ndarray]]:
    """Read a SlowFast-style predicted-boxes CSV, keeping boxes with ``score >= min_score``.

    Returns ``{(video_id, timestamp): (boxes float32 [K, 4] normalised, scores float32 [K])}``,
    boxes sorted by decreasing score. SlowFast's files repeat a box once per action for training
    files with labels; identical boxes are therefore merged (highest score kept).
    """
    acc: Dict[KeyframeKey, Dict[Tuple[str, ...], float]] = defaultdict(dict)
    for lineno, row in _rows(path):
        if len(row) != 8:
            raise AVAFormatError(
                path, lineno, f"expected 8 columns video_id,timestamp,x1,y1,x2,y2,action,score, got {len(row)}"
            )
        key = _parse_key(path, lineno, row)
        _parse_box(path, lineno, row[2:6])  # validate
        try:
            score = float(row[7])
        except ValueError:
            raise AVAFormatError(path, lineno, f"score must be a number, got {row[7]!r}") from None
        if not math.isfinite(score):
            raise AVAFormatError(path, lineno, f"score must be finite, got {row[7]!r}")
        if score < min_score:
            continue
        boxes = acc[key]
        box_key = tuple(row[2:6])
        boxes[box_key] = max(score, boxes.get(box_key, -math.inf))
    out = {}
    for key, boxes in acc.items():
        items = sorted(boxes.items(), key=lambda kv: -kv[1])
        out[key] = (
            np.array([[min(max(float(v), 0.0), 1.0) for v in b] for b, _ in items], np.float32).reshape(-1, 4),
            np.array([s for _, s in items], np.float32),
        )
    return out
