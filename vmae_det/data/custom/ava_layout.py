"""The user's rows as AVA rows, and the annotation files of the AVA layout.

Time ``t`` becomes AVA timestamp ``900 + t`` (frame ``t * 30`` of the written video); a box is clipped to
its frame and normalised by the written (padded) frame size, so it keeps its pixel position; rows are
then those of an official ground-truth file, one per (person, action), written with four decimals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Set, Tuple

from ...constants import AVA_START_SEC
from ...formats.ava import annotation_file_names, format_ava_row, write_ava_csv, write_labelmap
from .annotations import SPLITS, AnnotationRow, CustomDatasetError
from .video import SourceVideo

__all__ = ["AVARowSet", "to_ava_rows", "write_annotation_files"]

logger = logging.getLogger(__name__)

#: ``(video_id, AVA timestamp, box as four 4-decimal strings, action id, person id)``.
AVARow = Tuple[str, int, Tuple[str, ...], int, int]


@dataclass
class AVARowSet:
    """The AVA ground-truth rows of both splits, and what was changed on the way."""

    rows: Dict[str, Set[AVARow]] = field(default_factory=lambda: {s: set() for s in SPLITS})
    splits_of_video: Dict[str, List[str]] = field(default_factory=dict)  # in order of first use
    clipped_boxes: int = 0
    duplicate_rows: int = 0

    def keyframes(self, split: str) -> int:
        return len({(v, ts) for v, ts, *_ in self.rows[split]})

    def boxes(self, split: str) -> int:
        return len({(v, ts, p) for v, ts, _, _, p in self.rows[split]})


def _normalised_box(r: AnnotationRow, src: SourceVideo, normalized: bool, csv_path: Path):
    """``(box as 4-decimal strings, clipped?)``: the row's box clipped to the frame, normalised by the
    written (padded) frame size."""
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
    nb = tuple(min(max(v, 0.0), 1.0) for v in (c[0] * sx, c[1] * sy, c[2] * sx, c[3] * sy))
    return tuple(f"{v:.4f}" for v in nb), c != r.box


def to_ava_rows(
    rows: List[AnnotationRow],
    videos: Mapping[str, SourceVideo],
    classes: Mapping[int, str],
    csv_path: Path,
    normalized: bool,
) -> AVARowSet:
    """Check every box against its frame and turn the rows into AVA rows.

    A box entirely outside its frame, or a person with two different boxes at one keyframe, is an
    error naming the line; boxes partly outside are clipped (counted, logged); exact duplicates are
    skipped (counted).
    """
    ids = {n: i for i, n in classes.items()}
    out = AVARowSet()
    clipped_lines: List[int] = []
    seen: Dict[Tuple, Tuple[int, Tuple[str, ...]]] = {}
    shared: Dict = {}  # one object per coordinate string and timestamp (they repeat: millions of rows are held)
    for r in rows:
        box, clipped = _normalised_box(r, videos[r.video_id], normalized, csv_path)
        box = tuple(shared.setdefault(x, x) for x in box)
        if clipped:
            out.clipped_boxes += 1
            if len(clipped_lines) < 5:
                clipped_lines.append(r.line)
        person_key = (r.split, r.video_id, r.time, r.person)
        if person_key in seen and seen[person_key][1] != box:
            raise CustomDatasetError(
                csv_path,
                r.line,
                f"person {r.person} of {r.video_id} at {r.time} s already has a different "
                f"box on line {seen[person_key][0]}; one box per person and keyframe",
            )
        seen.setdefault(person_key, (r.line, box))
        ts = AVA_START_SEC + r.time
        row = (r.video_id, shared.setdefault(ts, ts), box, ids[r.action], r.person)
        if row in out.rows[r.split]:
            out.duplicate_rows += 1
            logger.info(f"{csv_path}:{r.line}: duplicate row skipped")
            continue
        out.rows[r.split].add(row)
        splits = out.splits_of_video.setdefault(r.video_id, [])
        if r.split not in splits:
            splits.append(r.split)
    if out.clipped_boxes:
        logger.warning(
            f"{csv_path}: {out.clipped_boxes} boxes partly outside the frame clipped to it "
            f"(lines {', '.join(map(str, clipped_lines))}{', ...' if out.clipped_boxes > 5 else ''})"
        )
    return out


def write_annotation_files(ann_dir: Path, rows: AVARowSet, classes: Mapping[int, str]) -> None:
    """``ava_{train,val}_v2.2.csv`` (sorted by video, time, person, action), empty exclusion files and the
    label map. A ``ava_{split}_predicted_boxes.csv`` of an earlier run is kept, with a warning."""
    ann_dir.mkdir(parents=True, exist_ok=True)
    for s in SPLITS:
        names = annotation_file_names(s)
        ordered = sorted(rows.rows[s], key=lambda x: (x[0], x[1], x[4], x[3], x[2]))
        write_ava_csv(ann_dir / names["groundtruth"], (format_ava_row(v, ts, b, a, p) for v, ts, b, a, p in ordered))
        write_ava_csv(ann_dir / names["exclusions"], [])
        if (ann_dir / names["proposals"]).exists():
            logger.warning(f"{ann_dir}/{names['proposals']} is from an earlier run: remake it if the videos changed")
    write_labelmap(ann_dir / annotation_file_names(SPLITS[0])["label_map"], classes)
