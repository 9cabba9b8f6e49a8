"""AVA annotations per keyframe: ground-truth people with all their actions, excluded keyframes, and
person boxes (proposals) in SlowFast's CSV or AlphAction's JSON.

The CSV files are read by :func:`vmae_det.formats.ava.read_ava_csv` (the one parser: its errors name
file and line); this module groups its rows by keyframe ``(video_id, timestamp in seconds)`` and checks
what the dataset needs on top (integer timestamps, normalised boxes, integer person ids).

AlphAction's person detections (the boxes VideoMAE's official AVA detector, VMAD, evaluates on) are
two JSON files, read by :func:`read_alphaction_boxes`:

* an image-info file (``ava_val_v2.2_min.json``): ``{"images": [{"id", "movie", "timestamp",
  "width", "height"}, ...], ...}``, one image per keyframe;
* a COCO-style results list (``ava_val_det_person_bbox.json``): ``[{"image_id", "bbox": [x, y, w,
  h] in pixels of that image, "score", "category_id"}, ...]``.

:func:`read_person_boxes` picks the reader from the file suffix (``.csv`` or ``.json``). Errors in a
JSON file name the file and the entry (its index in the list and its image id).
"""
from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple, Union

import numpy as np

from .ava import AVAFormatError, checked_boxes, read_ava_csv, row_timestamps

__all__ = [
    "AVABox",
    "KeyframeKey",
    "PERSON_BOX_FORMATS",
    "person_box_format",
    "read_annotations",
    "read_excluded_keyframes",
    "read_proposals",
    "read_alphaction_boxes",
    "read_person_boxes",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
KeyframeKey = Tuple[str, int]  # (video_id, timestamp in seconds)

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
    path: PathLike, class_whitelist: Optional[Set[int]] = None
) -> Dict[KeyframeKey, List[AVABox]]:
    """Read a ground-truth CSV into ``{(video_id, timestamp): [AVABox, ...]}`` (file order).

    Rows of the same person and box at a keyframe are merged into one :class:`AVABox` carrying all
    their actions. Actions outside ``class_whitelist`` (e.g. the 20 ids AVA v2.x does not evaluate)
    are dropped; a box left with no action is still kept as a person box.
    """
    rows = read_ava_csv(path, columns=(8,), strip=True)
    stamps = row_timestamps(rows)
    boxes = checked_boxes(rows, tolerance=BOX_TOLERANCE).tolist()
    persons = _person_ids(rows)
    out: Dict[KeyframeKey, Dict[Tuple, AVABox]] = defaultdict(dict)
    for vid, ts, raw, box, action, person in zip(
        rows.str_column("video_ids"), stamps, rows.boxes.tolist(), boxes, rows.action_ids.tolist(), persons
    ):
        ann = out[(vid, ts)].setdefault((person, tuple(raw)), AVABox(bbox=box, person_id=person))
        if (class_whitelist is None or action in class_whitelist) and action not in ann.actions:
            ann.actions.append(action)
    return {k: list(v.values()) for k, v in out.items()}


def read_excluded_keyframes(path: Optional[PathLike]) -> Set[KeyframeKey]:
    """The keyframes of an excluded-timestamps CSV as a set of ``(video_id, timestamp)``; ``None`` → empty.

    (:func:`vmae_det.formats.ava.read_exclusions` gives the rows as written, for the evaluation.)
    """
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
    path: PathLike, min_score: float = 0.0
) -> Dict[KeyframeKey, Tuple[np.ndarray, np.ndarray]]:
    """Read a SlowFast-style predicted-boxes CSV, keeping boxes with ``score >= min_score``.

    Returns ``{(video_id, timestamp): (boxes float32 [K, 4] normalised, scores float32 [K])}``,
    boxes sorted by decreasing score. SlowFast's files repeat a box once per action for training
    files with labels; identical boxes are therefore merged (highest score kept). The action column
    may be empty.
    """
    rows = read_ava_csv(path, columns=(8,), strip=True, optional_action=True)
    stamps = row_timestamps(rows)
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
