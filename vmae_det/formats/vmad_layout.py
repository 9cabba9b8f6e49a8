"""VMAD's processed AVA (AlphAction's preprocessing, behind the VideoMAE paper's AVA numbers); one module, so the
JSON files are read and written with one box convention.

Layout (VMAD's ``alphaction/config/paths_catalog.py``)::

    <root>/clips/trainval/<movie>/<second>.mp4      one second each, 25 fps, short side 360 (H.264)
    <root>/annotations/ava_{train,val}_v2.2_min.json  image info (AlphAction's csv2COCO): one image per
                                                      second 902..1798 of every movie of that split's CSV,
                                                      id = movie index * 10000 + second; GT boxes of the CSV
    <root>/annotations/ava_{train,val}_v2.2.csv, ava_{train,val}_excluded_timestamps_v2.2.csv,
                       ava_action_list_v2.2_for_activitynet_2019.pbtxt      (as in every AVA layout)
    <root>/boxes/ava_val_det_person_bbox.json         person detections, COCO results: xywh pixels + score

Boxes in these JSON files are pixel ``[x, y, w, h]``, read as inclusive pixels (:func:`inclusive_boxes`); VMAD's
detections CSV adds the pixel back (``(x2 + 1) / W``), so the writers here give back the box given.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .atomic import atomic_write
from .ava import AVAFormatError

__all__ = [
    "VMAD_FPS",
    "VMAD_SHORT_SIDE",
    "CLIP_SECONDS",
    "KEYFRAME_SECONDS",
    "IMAGE_ID_STRIDE",
    "CLIPS_DIR",
    "PERSON_BOX_FILES",
    "BOX_CONVENTIONS",
    "VMADImage",
    "image_info_file",
    "clip_file",
    "is_vmad_layout",
    "read_image_info",
    "read_image_annotations",
    "inclusive_boxes",
    "read_alphaction_boxes",
    "write_image_info",
    "write_person_boxes",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

#: Frame rate and short side of AlphAction's clips (``tools/ava/process_ava_videos.py``).
VMAD_FPS = 25
VMAD_SHORT_SIDE = 360
#: Seconds cut into clips (inclusive) and keyframe seconds of the image-info files (inclusive).
CLIP_SECONDS = (895, 1805)
KEYFRAME_SECONDS = (902, 1798)
IMAGE_ID_STRIDE = 10000
CLIPS_DIR = "clips/trainval"
#: Person detections per split (only val has them), relative to the root.
PERSON_BOX_FILES = {"val": "boxes/ava_val_det_person_bbox.json"}
#: ``inclusive``: VMAD's reading of pixel boxes; ``continuous``: ``x2 = x + w``.
BOX_CONVENTIONS = ("inclusive", "continuous")


@dataclass(frozen=True)
class VMADImage:
    """One keyframe of an image-info file."""

    id: object
    movie: str
    timestamp: int
    width: float
    height: float


def image_info_file(split: str, version: str = "v2.2") -> str:
    """The image-info file of ``split``, relative to the root."""
    return f"annotations/ava_{split}_{version}_min.json"


def clip_file(root: PathLike, movie: str, second: int) -> Path:
    """The one-second clip of ``movie`` starting at ``second``."""
    return Path(root) / CLIPS_DIR / movie / f"{int(second)}.mp4"


def is_vmad_layout(root: PathLike) -> bool:
    """True when ``root`` holds VMAD's clips folder and at least one image-info file."""
    root = Path(root)
    return (root / CLIPS_DIR).is_dir() and any((root / image_info_file(s)).is_file() for s in ("train", "val"))


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


def _image_info_data(path: PathLike) -> dict:
    data = _load_json(path, "AVA image-info file")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        got = type(data).__name__ if not isinstance(data, dict) else f"an object with keys {sorted(data)[:5]}"
        raise AVAFormatError(
            path,
            "top level",
            f'expected an object with an "images" list (AlphAction image info, e.g. ava_val_v2.2_min.json), got {got}',
        )
    return data


def _images(path: PathLike, data: dict) -> Dict[object, VMADImage]:
    out: Dict[object, VMADImage] = {}
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
        info = VMADImage(img_id, movie, ts, size[0], size[1])
        if img_id in out and out[img_id] != info:
            raise AVAFormatError(
                path, where, f"id {img_id!r} appears twice with different values: {out[img_id]} and {info}"
            )
        out[img_id] = info
    return out


def read_image_info(path: PathLike) -> Dict[object, VMADImage]:
    """``{image id: VMADImage}`` of an image-info file, in file order."""
    return _images(path, _image_info_data(path))


def _checked_xywh(path, where: str, bbox) -> Tuple[float, float, float, float]:
    if (
        not isinstance(bbox, (list, tuple))
        or len(bbox) != 4
        or not all(_is_number(v) and math.isfinite(v) for v in bbox)
    ):
        raise AVAFormatError(path, where, f"bbox must be 4 finite numbers [x, y, w, h], got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    if w < 0 or h < 0:
        raise AVAFormatError(path, where, f"bbox {bbox} has a negative width/height (expected COCO [x, y, w, h])")
    return x, y, w, h


def _image_entry(path, entry: str, obj, images: Mapping, where_images: str) -> Tuple[object, str]:
    """``(image id, location for errors)`` of one JSON entry that must be an object naming a known image."""
    if not isinstance(obj, dict):
        raise AVAFormatError(path, entry, f"expected an object, got {type(obj).__name__}")
    img_id = obj.get("image_id")
    where = f"{entry} (image_id {img_id!r})"
    try:
        known = img_id in images
    except TypeError:  # unhashable
        known = False
    if not known:
        raise AVAFormatError(path, where, f"image_id not found in {where_images}")
    return img_id, where


def read_image_annotations(
    path: PathLike,
) -> Tuple[Dict[object, VMADImage], Dict[object, List[Tuple[Tuple[float, float, float, float], List[int], int]]]]:
    """Images and ground truth of an image-info file: ``(images, {image id: [(xywh, action ids, person id)]})``,
    both in file order (VMAD trains on these boxes, not on the CSV's)."""
    data = _image_info_data(path)
    images = _images(path, data)
    anns = data.get("annotations", [])
    if not isinstance(anns, list):
        raise AVAFormatError(path, "top level", f'"annotations" must be a list, got {type(anns).__name__}')
    out: Dict[object, list] = defaultdict(list)
    for i, ann in enumerate(anns):
        img_id, where = _image_entry(path, f"annotations[{i}]", ann, images, "this file's images")
        actions = ann.get("action_ids")
        if not isinstance(actions, list) or not actions or any(_as_int(a) is None or _as_int(a) < 1 for a in actions):
            raise AVAFormatError(path, where, f'"action_ids" must be a non-empty list of ids >= 1, got {actions!r}')
        person = _as_int(ann.get("person_id", -1))
        out[img_id].append(
            (_checked_xywh(path, where, ann.get("bbox")), [int(a) for a in actions], -1 if person is None else person)
        )
    return images, dict(out)


def inclusive_boxes(xywh: np.ndarray, width: float, height: float) -> Tuple[np.ndarray, np.ndarray]:
    """VMAD's reading of pixel ``[x, y, w, h]`` boxes: ``(boxes float32 [K, 4] xyxy normalised by the image
    size, keep bool [K])``: ``x2 = x + max(w - 1, 0)``, every coordinate clamped to ``[0, W - 1]`` (``[0, H - 1]``),
    kept when ``x2 > x1`` and ``y2 > y1`` (``BoxList.convert("xyxy").clip_to_image(remove_empty=True)``)."""
    b = np.asarray(xywh, np.float32).reshape(-1, 4)
    xyxy = np.stack([b[:, 0], b[:, 1], b[:, 0] + np.maximum(b[:, 2] - 1, 0), b[:, 1] + np.maximum(b[:, 3] - 1, 0)], 1)
    xyxy[:, 0::2] = xyxy[:, 0::2].clip(0, np.float32(width) - 1)
    xyxy[:, 1::2] = xyxy[:, 1::2].clip(0, np.float32(height) - 1)
    keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    norm = xyxy / np.array([width, height, width, height], np.float32)
    return norm.astype(np.float32), keep


def read_alphaction_boxes(
    detections_json: PathLike, image_info_json: PathLike, min_score: float = 0.0, convention: str = "inclusive"
) -> Dict[Tuple[str, int], Tuple[np.ndarray, np.ndarray]]:
    """Read AlphAction's person detections (COCO-style JSON) as AVA proposals.

    Args:
        detections_json: ``[{"image_id", "bbox": [x, y, w, h] pixels, "score"}, ...]`` (persons only).
        image_info_json: e.g. ``ava_val_v2.2_min.json``: maps image ids to keyframes and pixel sizes.
        min_score: boxes with ``score < min_score`` are dropped (VMAD keeps ``score >= 0.8`` at test).
        convention: ``"inclusive"`` (VMAD's, :func:`inclusive_boxes`; boxes in file order, as VMAD keeps
            them) or ``"continuous"`` (``x2 = (x + w) / W``, clipped to [0, 1]; boxes by decreasing score).

    Returns:
        ``{(video_id, timestamp): (boxes float32 [K, 4] normalised xyxy, scores float32 [K])}``; boxes empty
        after clamping are skipped (counted in one log line), identical ones kept as VMAD keeps them.
    """
    if convention not in BOX_CONVENTIONS:
        raise ValueError(f"box convention must be one of {BOX_CONVENTIONS}, got {convention!r}")
    images = read_image_info(image_info_json)
    dets = _load_json(detections_json, "AVA person-box file")
    if not isinstance(dets, list):
        hint = (
            " (this looks like an image-info file: pass it as image_info)"
            if isinstance(dets, dict) and "images" in dets
            else ""
        )
        raise AVAFormatError(
            detections_json,
            "top level",
            f'expected a list of {{"image_id", "bbox", "score"}} detections, got {type(dets).__name__}{hint}',
        )
    acc: Dict[Tuple[str, int], List[Tuple[float, List[float]]]] = defaultdict(list)
    below = clipped = empty = 0
    for i, det in enumerate(dets):
        img_id, where = _image_entry(detections_json, f"entry {i}", det, images, f"image-info file {image_info_json}")
        x, y, w, h = _checked_xywh(detections_json, where, det.get("bbox"))
        score = det.get("score")
        if not _is_number(score) or not math.isfinite(score):
            raise AVAFormatError(detections_json, where, f"score must be a finite number, got {score!r}")
        if score < min_score:
            below += 1
            continue
        img = images[img_id]
        if convention == "inclusive":
            norm, keep = inclusive_boxes(np.array([[x, y, w, h]]), img.width, img.height)
            box = norm[0].tolist()
            raw_outside = x < 0 or y < 0 or x + max(w - 1, 0) > img.width - 1 or y + max(h - 1, 0) > img.height - 1
            ok = bool(keep[0])
        else:
            raw = [x / img.width, y / img.height, (x + w) / img.width, (y + h) / img.height]
            box = [min(max(v, 0.0), 1.0) for v in raw]
            raw_outside = box != raw
            ok = box[2] > box[0] and box[3] > box[1]
        if not ok:
            empty += 1
            continue
        clipped += int(raw_outside)
        acc[(img.movie, img.timestamp)].append((float(score), box))
    out = {}
    for key, items in acc.items():
        if convention == "continuous":
            items.sort(key=lambda sb: -sb[0])
        out[key] = (
            np.array([b for _, b in items], np.float32).reshape(-1, 4),
            np.array([s for s, _ in items], np.float32),
        )
    kept = sum(len(v[1]) for v in out.values())
    logger.info(
        f"Read {kept} person boxes on {len(out)} keyframes from {detections_json} (image info "
        f"{image_info_json}; {len(dets)} entries; {convention} pixels): {below} below score {min_score}, "
        f"{clipped} clipped to the image, {empty} skipped as empty after clipping."
    )
    return out


def write_image_info(
    path: PathLike,
    groundtruth: Iterable[Tuple[str, int, Sequence[float], int, int]],
    movie_index: Mapping[str, int],
    sizes: Mapping[str, Tuple[int, int]],
) -> int:
    """Write an image-info file as AlphAction's ``csv2COCOJson`` does; return the number of images.

    Args:
        groundtruth: ``(movie, second, (x1, y1, x2, y2) normalised, action id, person id)`` rows of a
            ground-truth CSV, in file order.
        movie_index: ``movie -> index`` (its line in AVA's file list; ids are ``index * 10000 + second``).
        sizes: ``movie -> (width, height)`` of its clips.

    Every movie with a row gets one image per second of :data:`KEYFRAME_SECONDS`; a person's box is its first
    row's, in pixels rounded to 2 decimals, with every action of its rows.
    """
    movies: Dict[str, Dict[int, dict]] = {}
    first, last = KEYFRAME_SECONDS
    for movie, second, box, action, person in groundtruth:
        if movie not in movies:
            if movie not in movie_index or movie not in sizes:
                raise ValueError(
                    f"{path}: movie {movie!r} has no {'index' if movie not in movie_index else 'clip size'}"
                )
            width, height = sizes[movie]
            base = movie_index[movie] * IMAGE_ID_STRIDE
            movies[movie] = {
                t: {
                    "id": base + t,
                    "img_path": f"{movie}/{t}.jpg",
                    "video_path": f"{movie}/{t}.mp4",
                    "height": int(height),
                    "width": int(width),
                    "movie": movie,
                    "timestamp": t,
                    "annotations": {},
                }
                for t in range(first, last + 1)
            }
        second = int(second)
        if second not in movies[movie]:
            raise ValueError(f"{path}: {movie},{second} is outside the keyframe seconds {first}-{last}")
        img = movies[movie][second]
        person = int(person)
        if person not in img["annotations"]:
            x1, y1, x2, y2 = (float(v) for v in box)
            w, h = img["width"], img["height"]
            bw, bh = (x2 - x1) * w, (y2 - y1) * h
            img["annotations"][person] = {
                "id": img["id"] * 1000 + person,
                "image_id": img["id"],
                "category_id": 1,
                "action_ids": [],
                "person_id": person,
                "bbox": [round(v, 2) for v in (x1 * w, y1 * h, bw, bh)],
                "area": round(bw * bh, 5),
                "keypoints": [],
                "iscrowd": 0,
            }
        img["annotations"][person]["action_ids"].append(int(action))
    images = [img for per_movie in movies.values() for img in per_movie.values()]
    annotations = [a for img in images for a in img.pop("annotations").values()]
    data = {
        "categories": [{"supercategory": "person", "id": 1, "name": "person"}],
        "annotations": annotations,
        "images": images,
    }
    with atomic_write(path) as f:
        json.dump(data, f)
    return len(images)


def write_person_boxes(
    path: PathLike,
    boxes: Iterable[Tuple[str, int, Sequence[float], float]],
    image_info: Mapping[object, VMADImage],
) -> int:
    """Write person detections ``(movie, second, normalised xyxy, score)`` as the box JSON that VMAD's reading
    and detections CSV give back as the same box; returns the number written."""
    ids = {(img.movie, img.timestamp): img for img in image_info.values()}
    out = []
    for movie, second, box, score in boxes:
        img = ids.get((movie, int(second)))
        if img is None:
            raise ValueError(f"{path}: no image {movie},{int(second)} in the image info")
        x1, y1, x2, y2 = (float(v) for v in box)
        out.append(
            {
                "image_id": img.id,
                "category_id": 1,
                "bbox": [x1 * img.width, y1 * img.height, (x2 - x1) * img.width, (y2 - y1) * img.height],
                "score": float(score),
            }
        )
    with atomic_write(path) as f:
        json.dump(out, f)
    return len(out)
