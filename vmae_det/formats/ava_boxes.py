"""AVA annotations per keyframe ``(video_id, timestamp in seconds)``: ground-truth people with all their actions,
excluded keyframes, and person boxes in SlowFast's CSV or AlphAction's JSON, checked as the dataset needs them.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

import numpy as np

from .ava import AVAFormatError, checked_boxes, read_ava_csv, row_timestamps
from .vmad_layout import read_alphaction_boxes

__all__ = [
    "AVABox",
    "KeyframeKey",
    "PERSON_BOX_FORMATS",
    "person_box_format",
    "read_annotations",
    "read_excluded_keyframes",
    "read_proposals",
    "read_alphaction_boxes",  # from .vmad_layout
    "read_person_boxes",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
KeyframeKey = Tuple[str, Union[int, float]]  # (video_id, timestamp in seconds)

#: Boxes may stick out of [0, 1] by this much in the official files (rounding); they are clipped.
BOX_TOLERANCE = 1e-3


@dataclass
class AVABox:
    """One annotated person at one keyframe: a normalised box and all its action ids."""

    bbox: List[float]  # [x1, y1, x2, y2] in [0, 1]
    person_id: int
    actions: List[int] = field(default_factory=list)


def _person_ids(rows) -> List[int]:
    """Column 8 of ground-truth rows as integer person ids (an error names a line that has none)."""
    ids = rows.scores
    bad = np.flatnonzero(ids != np.floor(ids))
    if len(bad):
        raise rows.error(int(bad[0]), f"person id must be an integer, got {float(ids[bad[0]])!r}")
    return ids.astype(np.int64).tolist()


def read_annotations(
    path: PathLike,
    class_whitelist: Optional[Set[int]] = None,
    *,
    columns: Sequence[int] = (8,),
    integer_timestamps: bool = True,
) -> Dict[KeyframeKey, List[AVABox]]:
    """Read a ground-truth CSV into ``{(video_id, timestamp): [AVABox, ...]}`` (file order), one box per person
    with all its actions; actions outside ``class_whitelist`` are dropped, their boxes kept.

    ``columns=(2, 7, 8), integer_timestamps=False`` reads AVA-Kinetics' Kinetics files: seconds such as
    ``17.010000``, no person id (``-1``; a person is its box), ``video_id,timestamp`` rows for keyframes without
    people (skipped here)."""
    rows = read_ava_csv(path, columns=columns, strip=True)
    stamps = row_timestamps(rows, integer=integer_timestamps)
    boxes = checked_boxes(rows, tolerance=BOX_TOLERANCE).tolist()
    persons = _person_ids(rows) if 7 not in columns else [-1] * len(rows)
    out: Dict[KeyframeKey, Dict[Tuple, AVABox]] = defaultdict(dict)
    for vid, ts, raw, box, action, person in zip(
        rows.str_column("video_ids"), stamps, rows.boxes.tolist(), boxes, rows.action_ids.tolist(), persons
    ):
        ann = out[(vid, ts)].setdefault((person, tuple(raw)), AVABox(bbox=box, person_id=person))
        if (class_whitelist is None or action in class_whitelist) and action not in ann.actions:
            ann.actions.append(action)
    return {k: list(v.values()) for k, v in out.items()}


def read_excluded_keyframes(path: Optional[PathLike]) -> Set[KeyframeKey]:
    """The keyframes of an excluded-timestamps CSV as a set of ``(video_id, timestamp)``; ``None`` -> empty."""
    if path is None:
        return set()
    rows = read_ava_csv(path, columns=(2,), strip=True)
    out: Set[KeyframeKey] = set()
    for (vid, ts), line in zip(rows.empty_frames, rows.empty_frame_lines):
        try:
            out.add((vid, int(ts)))
        except ValueError:
            raise AVAFormatError(path, line, f"timestamp must be an integer, got {ts!r}") from None
    return out


def read_proposals(
    path: PathLike, min_score: float = 0.0, *, integer_timestamps: bool = True
) -> Dict[KeyframeKey, Tuple[np.ndarray, np.ndarray]]:
    """Read a SlowFast-style predicted-boxes CSV, keeping boxes with ``score >= min_score``.

    Returns ``{(video_id, timestamp): (boxes float32 [K, 4] normalised, scores float32 [K])}``, by decreasing
    score; a box repeated once per action (SlowFast's labelled files) is merged, keeping its highest score.
    ``integer_timestamps=False``: float seconds (AVA-Kinetics' Kinetics keyframes).
    """
    rows = read_ava_csv(path, columns=(8,), strip=True, optional_action=True)
    stamps = row_timestamps(rows, integer=integer_timestamps)
    boxes = checked_boxes(rows, tolerance=BOX_TOLERANCE)
    acc: Dict[KeyframeKey, Dict[Tuple[float, ...], Tuple[float, List[float]]]] = defaultdict(dict)
    for vid, ts, raw, box, score in zip(
        rows.str_column("video_ids"), stamps, rows.boxes.tolist(), boxes.tolist(), rows.scores.tolist()
    ):
        if score < min_score:
            continue
        kept = acc[(vid, ts)]
        key = tuple(raw)
        if score > kept.get(key, (-math.inf,))[0]:
            kept[key] = (score, box)
    out = {}
    for key, kept in acc.items():
        items = sorted(kept.values(), key=lambda sb: -sb[0])
        out[key] = (
            np.array([b for _, b in items], np.float32).reshape(-1, 4),
            np.array([s for s, _ in items], np.float32),
        )
    return out


PERSON_BOX_FORMATS = {".csv": "slowfast_csv", ".json": "alphaction_json"}


def person_box_format(path: PathLike) -> str:
    """``"slowfast_csv"`` for a ``.csv`` file, ``"alphaction_json"`` for a ``.json`` file."""
    suffix = Path(path).suffix.lower()
    if suffix not in PERSON_BOX_FORMATS:
        raise ValueError(
            f"{path}: unknown person-box file type {suffix!r}; expected .csv (SlowFast "
            f"video_id,timestamp,x1,y1,x2,y2,,score) or .json (AlphAction COCO-style detections)"
        )
    return PERSON_BOX_FORMATS[suffix]


def read_person_boxes(
    path: PathLike, min_score: float = 0.0, image_info: Optional[PathLike] = None, convention: str = "inclusive"
) -> Dict[KeyframeKey, Tuple[np.ndarray, np.ndarray]]:
    """Read SlowFast's ``.csv`` proposals or AlphAction's ``.json`` detections (pixel boxes read with
    ``convention``; needs ``image_info``, e.g. ``ava_val_v2.2_min.json``), by suffix."""
    fmt = person_box_format(path)
    if fmt == "slowfast_csv":
        return read_proposals(path, min_score)
    if image_info is None:
        raise ValueError(
            f"{path}: an AlphAction person-box JSON needs its image-info file (image_info=..., e.g. "
            f"annotations/ava_val_v2.2_min.json) to map image ids to keyframes and pixel sizes"
        )
    return read_alphaction_boxes(path, image_info, min_score, convention)
