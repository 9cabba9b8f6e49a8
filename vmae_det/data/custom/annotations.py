"""The user's annotation CSV and label list: read and check everything that does not need the videos.

Every problem is a :class:`CustomDatasetError` naming the file and the 1-based line.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Tuple, Union

from ...formats.ava import AVAFormatError, read_labelmap

__all__ = [
    "ANNOTATION_COLUMNS",
    "SPLITS",
    "AnnotationFacts",
    "AnnotationRow",
    "CustomDatasetError",
    "action_ids",
    "index_videos",
    "read_annotation_rows",
    "read_label_names",
]

PathLike = Union[str, Path]
ANNOTATION_COLUMNS = ("video", "split", "time", "x1", "y1", "x2", "y2", "action", "person")
SPLITS = ("train", "val")
_VIDEO_ID_RE = re.compile(r"^[^,\s/\\]+$")


class CustomDatasetError(AVAFormatError):
    """A problem in the user's input; ``file:line: reason`` when it comes from a line of a file."""

    def __init__(self, path: PathLike, line: Optional[int], reason: str):
        super().__init__(path, line, reason)


@dataclass(slots=True)
class AnnotationRow:
    """One checked row of the annotation CSV."""

    line: int
    video_id: str
    split: str
    time: int  # whole seconds from the video's first frame
    box: Tuple[float, float, float, float]  # as given: pixels, or [0, 1] with normalized=True
    action: str
    person: int


@dataclass
class AnnotationFacts:
    """What a streamed read of the CSV keeps of its rows."""

    sources: Dict[str, Path] = field(default_factory=dict)  # video id -> its file
    actions: Dict[str, int] = field(default_factory=dict)  # action name -> first line naming it
    splits_of_video: Dict[str, List[str]] = field(default_factory=dict)  # in order of first use
    rows: int = 0


def _not_utf8(path: PathLike) -> CustomDatasetError:
    """The error for a file that is not UTF-8, naming the line and byte of its first undecodable byte (found
    again in binary: ``UnicodeDecodeError.start`` counts from the reader's buffer, not the file)."""
    offset = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return CustomDatasetError(
                    path,
                    lineno,
                    f"not UTF-8 text: byte {e.start + 1} of the line (byte "
                    f"{offset + e.start} of the file) is 0x{raw[e.start]:02x}; "
                    "save the file as UTF-8",
                )
            offset += len(raw)
    return CustomDatasetError(path, None, "not UTF-8 text; save the file as UTF-8")


def read_label_names(path: PathLike) -> Dict[int, str]:
    """``{action id: name}`` from a ``.pbtxt`` label map, or a text file with one name per line (ids ``1..K``;
    blank and ``#`` lines ignored)."""
    path = Path(path)
    if path.suffix == ".pbtxt":
        names = read_labelmap(path)
    else:
        names = {}
        try:
            with open(path, encoding="utf-8-sig") as f:
                for lineno, raw in enumerate(f, start=1):
                    name = raw.strip()
                    if not name or name.startswith("#"):
                        continue
                    if '"' in name:
                        raise CustomDatasetError(path, lineno, f"action name {name!r} contains a double quote")
                    names[len(names) + 1] = name
        except UnicodeDecodeError:
            raise _not_utf8(path) from None
        if not names:
            raise CustomDatasetError(path, None, "no action names")
    seen: Dict[str, int] = {}
    for i, n in names.items():
        if n in seen:
            raise CustomDatasetError(path, None, f"action name {n!r} appears twice (ids {seen[n]} and {i})")
        seen[n] = i
    return names


def action_ids(actions: Mapping[str, int], annotations_csv: PathLike, labels: Optional[PathLike]) -> Dict[int, str]:
    """The label map ``{action id: name}``: ``labels`` (every action of the CSV must be in it), else the
    sorted action names of the CSV numbered from 1.

    Args:
        actions: the CSV's action names, each with the first line naming it.
    """
    if labels is None:
        return {i + 1: n for i, n in enumerate(sorted(actions))}
    classes = read_label_names(labels)
    known = set(classes.values())
    unknown = [(line, a) for a, line in actions.items() if a not in known]
    if unknown:
        line, a = min(unknown)
        raise CustomDatasetError(annotations_csv, line, f"action {a!r} is not in {labels}")
    return classes


def index_videos(videos_dir: Path) -> Tuple[Dict[str, List[Path]], Dict[str, Path]]:
    """The files of ``videos_dir`` (hidden ones excepted) by stem and by name."""
    if not videos_dir.is_dir():
        raise CustomDatasetError(videos_dir, None, "videos folder not found")
    by_stem: Dict[str, List[Path]] = defaultdict(list)
    by_name: Dict[str, Path] = {}
    for p in sorted(videos_dir.iterdir()):
        if p.is_file() and not p.name.startswith("."):
            by_stem[p.stem].append(p)
            by_name[p.name] = p
    return by_stem, by_name


def _parse_number(path: Path, lineno: int, value: str, what: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise CustomDatasetError(path, lineno, f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise CustomDatasetError(path, lineno, f"{what} must be finite, got {value!r}")
    return v


def _header_columns(path: Path, lineno: int, raw: List[str]) -> Dict[str, int]:
    header = [c.strip().lower() for c in raw]
    missing = [c for c in ANNOTATION_COLUMNS if c not in header]
    if missing:
        raise CustomDatasetError(
            path, lineno, f"header lacks column(s) {missing}; expected {','.join(ANNOTATION_COLUMNS)}"
        )
    return {c: header.index(c) for c in ANNOTATION_COLUMNS}


def _find_video(path: Path, lineno: int, name: str, videos_dir: Path, by_stem, by_name) -> Path:
    """The file a row's ``video`` names: by file name, else by stem (then it must be unique)."""
    if name in by_name:
        return by_name[name]
    if len(by_stem.get(name, [])) == 1:
        return by_stem[name][0]
    if name in by_stem:
        raise CustomDatasetError(
            path,
            lineno,
            f"video {name!r} is ambiguous in {videos_dir}: {[p.name for p in by_stem[name]]}; give the file name",
        )
    raise CustomDatasetError(path, lineno, f"unknown video {name!r}: no such file in {videos_dir}")


def _check_row(path: Path, lineno: int, v: Dict[str, str], vid: str, shared: Dict[str, str]) -> AnnotationRow:
    """The values of one row, checked. ``shared`` interns the strings that repeat on every row."""
    split = v["split"].lower()
    if split not in SPLITS:
        raise CustomDatasetError(path, lineno, f"unknown split {v['split']!r} (expected train or val)")
    t = _parse_number(path, lineno, v["time"], "time")
    if t < 0 or abs(t - round(t)) > 1e-6:
        raise CustomDatasetError(
            path,
            lineno,
            f"time {v['time']!r} must be a whole, non-negative number of seconds "
            "(AVA keyframes are at integer seconds)",
        )
    box = tuple(_parse_number(path, lineno, v[c], c) for c in ("x1", "y1", "x2", "y2"))
    if box[2] <= box[0] or box[3] <= box[1]:
        raise CustomDatasetError(path, lineno, f"box {list(box)} needs x2 > x1 and y2 > y1")
    if not v["action"]:
        raise CustomDatasetError(path, lineno, "empty action")
    if '"' in v["action"]:
        raise CustomDatasetError(path, lineno, f"action {v['action']!r} contains a double quote")
    try:
        person = int(v["person"])
    except ValueError:
        raise CustomDatasetError(path, lineno, f"person must be an integer id, got {v['person']!r}") from None
    if person < 0:
        raise CustomDatasetError(path, lineno, f"person must be >= 0, got {person}")
    return AnnotationRow(
        lineno,
        shared.setdefault(vid, vid),
        shared.setdefault(split, split),
        int(round(t)),
        box,
        shared.setdefault(v["action"], v["action"]),
        person,
    )


def read_annotation_rows(path: Path, videos_dir: Path, facts: AnnotationFacts) -> Iterator[AnnotationRow]:
    """The rows of the annotation CSV, streamed in file order and checked for what does not need the video.
    ``facts`` is filled in on the way.

    Raises:
        CustomDatasetError: at the first bad row; after the last row when there were none.
    """
    if not path.is_file():
        raise CustomDatasetError(path, None, "annotation CSV not found")
    try:
        yield from _read_rows(path, videos_dir, facts)
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    if not facts.rows:
        raise CustomDatasetError(path, None, "no annotation rows")


def _read_rows(path: Path, videos_dir: Path, facts: AnnotationFacts) -> Iterator[AnnotationRow]:
    by_stem, by_name = index_videos(videos_dir)
    col: Optional[Dict[str, int]] = None
    shared: Dict[str, str] = {}
    sources = facts.sources
    with open(path, newline="", encoding="utf-8-sig") as f:
        for lineno, raw in enumerate(csv.reader(f), start=1):
            if not raw or all(not c.strip() for c in raw):
                continue
            if col is None:
                col, width = _header_columns(path, lineno, raw), len(raw)
                continue
            if len(raw) != width:
                raise CustomDatasetError(path, lineno, f"expected {width} columns as the header, got {len(raw)}")
            v = {c: raw[i].strip() for c, i in col.items()}
            src = _find_video(path, lineno, v["video"], videos_dir, by_stem, by_name)
            vid = src.stem
            if not _VIDEO_ID_RE.match(vid):
                raise CustomDatasetError(path, lineno, f"video id {vid!r} must not contain commas, spaces or slashes")
            if sources.setdefault(vid, src) != src:
                raise CustomDatasetError(
                    path, lineno, f"video id {vid!r} refers to both {sources[vid].name} and {src.name}"
                )
            row = _check_row(path, lineno, v, vid, shared)
            facts.rows += 1
            facts.actions.setdefault(row.action, lineno)
            splits = facts.splits_of_video.setdefault(vid, [])
            if row.split not in splits:
                splits.append(row.split)
            yield row
    if col is None:
        raise CustomDatasetError(path, None, "empty annotation CSV (no header)")
