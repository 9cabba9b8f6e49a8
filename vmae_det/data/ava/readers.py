"""Readers for the official AVA annotation files (and SlowFast's person-proposal files).

Formats (all CSV without header, timestamps in seconds of the movie, boxes normalised to [0, 1]):

* ``ava_{train,val}_v2.{1,2}.csv``: ``video_id,timestamp,x1,y1,x2,y2,action_id,person_id``, one
  row per (person, action) — a person with three actions appears on three rows with the same box.
* ``ava_{train,val}_excluded_timestamps_v2.{1,2}.csv``: ``video_id,timestamp``.
* ``ava_{train,val}_predicted_boxes.csv`` (SlowFast): ``video_id,timestamp,x1,y1,x2,y2,,score``;
  the action column is empty (or an id, ignored), the 8th column is the detector score.

AlphAction's person detections (the boxes VideoMAE's official AVA detector, VMAD, evaluates on) are
two JSON files instead, read by :func:`read_alphaction_boxes`:

* an image-info file (``ava_val_v2.2_min.json``): ``{"images": [{"id", "movie", "timestamp",
  "width", "height"}, ...], ...}``, one image per keyframe;
* a COCO-style results list (``ava_val_det_person_bbox.json``): ``[{"image_id", "bbox": [x, y, w,
  h] in pixels of that image, "score", "category_id"}, ...]``.

:func:`read_person_boxes` picks the reader from the file suffix (``.csv`` or ``.json``).

The label map (pbtxt) reader is shared with the evaluator: :func:`vmae_det.evaluation.ava_io.read_labelmap`.

Every malformed row raises :class:`AVAFormatError` naming the file and the 1-based line (for JSON
files: the index of the entry in its list and its image id), because a silently misread row would
turn into a wrong mAP much later.
"""
from __future__ import annotations

import csv
import json
import logging
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
    "read_alphaction_boxes",
    "read_person_boxes",
    "person_box_format",
    "PERSON_BOX_FORMATS",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
KeyframeKey = Tuple[str, int]  # (video_id, timestamp in seconds)


class AVAFormatError(ValueError):
    """A malformed entry in an AVA file.

    ``line`` is the 1-based line of a CSV file (message ``file:line: reason``) or, for a JSON file,
    a description of the entry such as ``"entry 3 (image_id 17)"`` (message ``file: entry 3
    (image_id 17): reason``).
    """

    def __init__(self, path: PathLike, line: Union[int, str], reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        where = f"{path}:{line}" if isinstance(line, int) else f"{path}: {line}"
        super().__init__(f"{where}: {reason}")


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


# ------------------------------------------------------------------ AlphAction person boxes (JSON)
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


def _load_json(path: PathLike, what: str):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise AVAFormatError(path, e.lineno, f"not valid JSON: {e.msg} (column {e.colno})") from None
    except UnicodeDecodeError:
        raise AVAFormatError(path, "top level", "not UTF-8 JSON text") from None


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _as_int(v) -> Optional[int]:
    """``v`` as an int when it is one (an int, an integral float, a decimal string), else ``None``."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and math.isfinite(v) and v == int(v):
        return int(v)
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    return None


def _read_image_info(path: PathLike) -> Dict[object, Tuple[str, int, float, float]]:
    """``{image id: (movie, timestamp in seconds, width, height)}`` of an AlphAction image-info file."""
    data = _load_json(path, "AVA image-info file")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        got = type(data).__name__ if not isinstance(data, dict) else f"an object with keys {sorted(data)[:5]}"
        raise AVAFormatError(
            path, "top level",
            f'expected an object with an "images" list (AlphAction image info, e.g. ava_val_v2.2_min.json), got {got}',
        )
    out: Dict[object, Tuple[str, int, float, float]] = {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict):
            raise AVAFormatError(path, f"images[{i}]", f"expected an object, got {type(img).__name__}")
        img_id = img.get("id")
        where = f"images[{i}] (id {img_id!r})"
        if img_id is None or isinstance(img_id, (bool, float, list, dict)):
            raise AVAFormatError(path, where, f'"id" must be an integer or a string, got {img_id!r}')
        movie = img.get("movie")
        if not isinstance(movie, str) or not movie:
            raise AVAFormatError(path, where, f'"movie" must be a non-empty string, got {movie!r}')
        ts = _as_int(img.get("timestamp"))
        if ts is None:
            raise AVAFormatError(path, where, f'"timestamp" must be an integer (seconds), got {img.get("timestamp")!r}')
        size = []
        for k in ("width", "height"):
            v = img.get(k)
            if not _is_number(v) or not math.isfinite(v) or v <= 0:
                raise AVAFormatError(path, where, f'"{k}" must be a positive number of pixels, got {v!r}')
            size.append(float(v))
        info = (movie, ts, size[0], size[1])
        if img_id in out and out[img_id] != info:
            raise AVAFormatError(path, where, f"id {img_id!r} appears twice with different values: {out[img_id]} and {info}")
        out[img_id] = info
    return out


def read_alphaction_boxes(
    detections_json: PathLike, image_info_json: PathLike, min_score: float = 0.0
) -> Dict[KeyframeKey, Tuple[np.ndarray, np.ndarray]]:
    """Read AlphAction's person detections (COCO-style JSON) as AVA proposals.

    Args:
        detections_json: ``[{"image_id", "bbox": [x, y, w, h] pixels, "score", ...}, ...]``, e.g.
            ``ava_val_det_person_bbox.json``. ``category_id`` is ignored (the file holds persons only).
        image_info_json: ``{"images": [{"id", "movie", "timestamp", "width", "height"}, ...]}``,
            e.g. ``ava_val_v2.2_min.json``; maps image ids to keyframes and gives the pixel size.
        min_score: boxes with ``score < min_score`` are dropped (VMAD keeps ``score >= 0.8`` at test).

    Returns the structure of :func:`read_proposals`: ``{(video_id, timestamp): (boxes float32
    [K, 4] normalised x1,y1,x2,y2, scores float32 [K])}``, boxes sorted by decreasing score, with
    ``x1 = x / width, y1 = y / height, x2 = (x + w) / width, y2 = (y + h) / height``. Boxes partly
    outside the image are clipped to [0, 1]; boxes empty after clipping (outside the image, or of
    zero width/height) are skipped; both are counted in one log line. Identical boxes are kept
    (VMAD does not merge them either).

    Raises :class:`AVAFormatError` naming the file and the entry (list index and image id) for an
    image id absent from the image-info file, a bbox that is not 4 finite numbers or has a negative
    width/height, a non-finite score, a non-positive image width/height, or a malformed top level.
    """
    images = _read_image_info(image_info_json)
    dets = _load_json(detections_json, "AVA person-box file")
    if not isinstance(dets, list):
        hint = (
            " (this looks like an image-info file: pass it as image_info)"
            if isinstance(dets, dict) and "images" in dets else ""
        )
        raise AVAFormatError(
            detections_json, "top level",
            f'expected a list of {{"image_id", "bbox", "score"}} detections, got {type(dets).__name__}{hint}',
        )
    acc: Dict[KeyframeKey, List[Tuple[float, List[float]]]] = defaultdict(list)
    below = clipped = empty = 0
    for i, det in enumerate(dets):
        if not isinstance(det, dict):
            raise AVAFormatError(detections_json, f"entry {i}", f"expected an object, got {type(det).__name__}")
        img_id = det.get("image_id")
        where = f"entry {i} (image_id {img_id!r})"
        try:
            known = img_id in images
        except TypeError:  # unhashable
            known = False
        if not known:
            raise AVAFormatError(detections_json, where, f"image_id not found in image-info file {image_info_json}")
        bbox = det.get("bbox")
        if (
            not isinstance(bbox, (list, tuple)) or len(bbox) != 4
            or not all(_is_number(v) and math.isfinite(v) for v in bbox)
        ):
            raise AVAFormatError(detections_json, where, f"bbox must be 4 finite numbers [x, y, w, h], got {bbox!r}")
        x, y, w, h = (float(v) for v in bbox)
        if w < 0 or h < 0:
            raise AVAFormatError(
                detections_json, where, f"bbox {bbox} has a negative width/height (expected COCO [x, y, w, h])"
            )
        score = det.get("score")
        if not _is_number(score) or not math.isfinite(score):
            raise AVAFormatError(detections_json, where, f"score must be a finite number, got {score!r}")
        if score < min_score:
            below += 1
            continue
        movie, ts, width, height = images[img_id]
        raw = [x / width, y / height, (x + w) / width, (y + h) / height]
        box = [min(max(v, 0.0), 1.0) for v in raw]
        if box[2] <= box[0] or box[3] <= box[1]:
            empty += 1
            continue
        if box != raw:
            clipped += 1
        acc[(movie, ts)].append((float(score), box))
    out = {}
    for key, items in acc.items():
        items.sort(key=lambda sb: -sb[0])
        out[key] = (
            np.array([b for _, b in items], np.float32).reshape(-1, 4),
            np.array([s for s, _ in items], np.float32),
        )
    kept = sum(len(v[1]) for v in out.values())
    logger.info(
        f"Read {kept} person boxes on {len(out)} keyframes from {detections_json} (image info "
        f"{image_info_json}; {len(dets)} entries): {below} below score {min_score}, {clipped} clipped "
        f"to the image, {empty} skipped as empty after clipping."
    )
    return out


def read_person_boxes(
    path: PathLike, min_score: float = 0.0, image_info: Optional[PathLike] = None
) -> Dict[KeyframeKey, Tuple[np.ndarray, np.ndarray]]:
    """Read a person-box (proposal) file, choosing the reader from its suffix.

    ``.csv``: SlowFast's ``ava_{split}_predicted_boxes.csv`` via :func:`read_proposals`
    (``image_info`` is not needed and ignored). ``.json``: AlphAction's detections via
    :func:`read_alphaction_boxes`, which needs ``image_info`` (e.g. ``ava_val_v2.2_min.json``).
    """
    fmt = person_box_format(path)
    if fmt == "slowfast_csv":
        return read_proposals(path, min_score)
    if image_info is None:
        raise ValueError(
            f"{path}: an AlphAction person-box JSON needs its image-info file (image_info=..., e.g. "
            f"annotations/ava_val_v2.2_min.json) to map image ids to keyframes and pixel sizes"
        )
    return read_alphaction_boxes(path, image_info, min_score)
