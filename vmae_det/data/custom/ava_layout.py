"""The user's rows as AVA ground-truth rows (time ``t`` -> timestamp ``900 + t``, boxes normalised by the
padded frame size), and the annotation files of the AVA layout."""

from __future__ import annotations

import logging
import shutil
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ...constants import AVA_START_SEC
from ...formats.atomic import atomic_write
from ...formats.ava import annotation_file_names, format_ava_row, write_ava_csv, write_labelmap
from .annotations import SPLITS, AnnotationRow, CustomDatasetError
from .spill import ExternalSort
from .video import SourceVideo

__all__ = ["AVARowSet", "to_ava_rows", "write_annotation_files"]

logger = logging.getLogger(__name__)

#: ``(split index, video rank, AVA timestamp, person id, action id, box as four 4-decimal strings, line)``: the
#: order of the written files (video ids ranked by name), then of the CSV.
SortedRow = Tuple[int, int, int, int, int, Tuple[str, str, str, str], int]


@dataclass
class AVARowSet:
    """The AVA ground-truth rows of both splits (sorted, deduplicated, in temporary files) and their counts."""

    files: Dict[str, Path]
    keyframes: Dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    boxes: Dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))  # (video, keyframe, person)
    rows: Dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))  # one per person and action
    times: Dict[str, Dict[int, int]] = field(default_factory=dict)  # video -> {second: first line naming it}
    clipped_boxes: int = 0
    duplicate_rows: int = 0


class _FirstError:
    """The error of the smallest line offered, as a check in file order would raise."""

    def __init__(self):
        self.line: Optional[int] = None
        self.error: Optional[CustomDatasetError] = None

    def offer(self, line: int, error: CustomDatasetError) -> None:
        if self.line is None or line < self.line:
            self.line, self.error = line, error


def _normalised_box(r: AnnotationRow, src: SourceVideo, normalized: bool, csv_path: Path):
    """``(box as 4-decimal strings, clipped?)``: the box clipped to the frame, normalised by the padded size."""
    w0, h0 = src.width, src.height
    fw, fh = (1.0, 1.0) if normalized else (float(w0), float(h0))
    x1, y1, x2, y2 = r.box
    if x2 <= 0 or y2 <= 0 or x1 >= fw or y1 >= fh:
        unit = "normalised [0, 1]" if normalized else f"{w0}x{h0} px"
        raise CustomDatasetError(csv_path, r.line, f"box {list(r.box)} is entirely outside the frame ({unit})")
    c = (max(x1, 0.0), max(y1, 0.0), min(x2, fw), min(y2, fh))
    width, height = src.padded_size
    sx = (w0 if normalized else 1.0) / width
    sy = (h0 if normalized else 1.0) / height
    box = (
        f"{min(max(c[0] * sx, 0.0), 1.0):.4f}",
        f"{min(max(c[1] * sy, 0.0), 1.0):.4f}",
        f"{min(max(c[2] * sx, 0.0), 1.0):.4f}",
        f"{min(max(c[3] * sy, 0.0), 1.0):.4f}",
    )
    return box, c != r.box


def to_ava_rows(
    rows: Iterable[AnnotationRow],
    videos: Mapping[str, SourceVideo],
    classes: Mapping[int, str],
    csv_path: Path,
    normalized: bool,
    tmp_dir: Path,
    chunk_rows: int = 200_000,
) -> AVARowSet:
    """Check every box against its frame and write the AVA rows sorted to ``tmp_dir``.

    A box entirely outside its frame, or two boxes of one person at one keyframe, is an error naming the first
    such line; boxes partly outside are clipped and exact duplicates skipped (both counted).
    """
    ids = {n: i for i, n in classes.items()}
    names = sorted(videos)
    rank = {v: i for i, v in enumerate(names)}
    sorter = ExternalSort(tmp_dir, chunk_rows)
    out = AVARowSet({s: tmp_dir / f"ava_{s}.csv" for s in SPLITS})
    first = _FirstError()
    clipped_lines: List[int] = []
    shared = {}.setdefault  # one object per coordinate string (a chunk holds many rows)
    for r in rows:
        try:
            box, clipped = _normalised_box(r, videos[r.video_id], normalized, csv_path)
        except CustomDatasetError as e:
            # Rows past this one can only be wrong on later lines (a conflicting box is found below).
            first.offer(r.line, e)
            break
        if clipped:
            out.clipped_boxes += 1
            if len(clipped_lines) < 5:
                clipped_lines.append(r.line)
        out.times.setdefault(r.video_id, {}).setdefault(r.time, r.line)
        box = (shared(box[0], box[0]), shared(box[1], box[1]), shared(box[2], box[2]), shared(box[3], box[3]))
        s = SPLITS.index(r.split)
        sorter.add((s, rank[r.video_id], AVA_START_SEC + r.time, r.person, ids[r.action], box, r.line))
    duplicates = _write_sorted(sorter.sorted(), out, names, first, csv_path)
    if first.error is not None:
        _log_duplicates(csv_path, [d for d in duplicates if d < first.line])
        raise first.error
    _log_duplicates(csv_path, duplicates)
    if out.clipped_boxes:
        logger.warning(
            f"{csv_path}: {out.clipped_boxes} boxes partly outside the frame clipped to it "
            f"(lines {', '.join(map(str, clipped_lines))}{', ...' if out.clipped_boxes > 5 else ''})"
        )
    return out


def _write_sorted(
    rows: Iterable[SortedRow], out: AVARowSet, names: Sequence[str], first: _FirstError, csv_path: Path
) -> List[int]:
    """Write the sorted, deduplicated rows to ``out.files``; return the lines of the duplicates."""
    duplicates = array("q")
    files = [open(out.files[s], "w", encoding="utf-8", newline="") for s in SPLITS]
    group: Optional[Tuple[int, int, int, int]] = None  # (split, video, timestamp, person)
    group_boxes: Dict[Tuple[str, ...], int] = {}  # box -> its first line
    prev = None
    try:
        for r in rows:
            key = r[:6]
            if key == prev:
                duplicates.append(r[6])
                continue
            prev = key
            s, v, ts, person, action, box, line = r
            if r[:4] != group:
                _check_person(group, group_boxes, names, first, csv_path)
                split = SPLITS[s]
                if group is None or r[:3] != group[:3]:
                    out.keyframes[split] += 1
                out.boxes[split] += 1
                group, group_boxes = r[:4], {}
            if group_boxes.get(box, line) >= line:
                group_boxes[box] = line
            out.rows[split] += 1
            files[s].write(format_ava_row(names[v], ts, box, action, person) + "\n")
        _check_person(group, group_boxes, names, first, csv_path)
    finally:
        for f in files:
            f.close()
    out.duplicate_rows = len(duplicates)
    return sorted(duplicates)


def _check_person(group, group_boxes: Dict, names: Sequence[str], first: _FirstError, csv_path: Path) -> None:
    """One box per person and keyframe: a box other than the first one is an error on its first line."""
    if len(group_boxes) < 2:
        return
    line0, box0 = min((line, box) for box, line in group_boxes.items())
    line = min(line for box, line in group_boxes.items() if box != box0)
    _, v, ts, person = group
    first.offer(
        line,
        CustomDatasetError(
            csv_path,
            line,
            f"person {person} of {names[v]} at {ts - AVA_START_SEC} s already has a different "
            f"box on line {line0}; one box per person and keyframe",
        ),
    )


def _log_duplicates(csv_path: Path, lines: Iterable[int]) -> None:
    if logger.isEnabledFor(logging.INFO):
        for line in lines:
            logger.info(f"{csv_path}:{line}: duplicate row skipped")


def write_annotation_files(ann_dir: Path, rows: AVARowSet, classes: Mapping[int, str]) -> None:
    """Write the ground-truth CSVs, empty exclusion files and the label map; an existing
    ``ava_{split}_predicted_boxes.csv`` is kept, with a warning."""
    ann_dir.mkdir(parents=True, exist_ok=True)
    for s in SPLITS:
        names = annotation_file_names(s)
        with atomic_write(ann_dir / names["groundtruth"], "wb") as f, open(rows.files[s], "rb") as src:
            shutil.copyfileobj(src, f, 1 << 20)
        write_ava_csv(ann_dir / names["exclusions"], [])
        if (ann_dir / names["proposals"]).exists():
            logger.warning(f"{ann_dir}/{names['proposals']} is from an earlier run: remake it if the videos changed")
    write_labelmap(ann_dir / annotation_file_names(SPLITS[0])["label_map"], classes)
