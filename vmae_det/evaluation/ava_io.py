"""Readers and writers for the official AVA evaluation files.

* label map ``.pbtxt`` (ActivityNet 2018 ``item { name: "…" id: N }`` and the v2.2
  ``label { name: "…" label_id: N label_type: … }`` format);
* ground-truth / detection CSV: ``video_id,timestamp,x1,y1,x2,y2,action_id[,score]`` with boxes
  normalised to [0, 1] (in ground-truth files the 8th column is the person id; the official reader
  parses it as a "score" anyway, and it decides the order of ground-truth boxes, so we keep it);
  rows with only ``video_id,timestamp`` mark keyframes without actions (2020+ ground truth);
* excluded-timestamps CSV: ``video_id,timestamp``.

Rows are kept column-wise (:class:`AVARows`) in file order: the official evaluator's results depend
on that order when scores tie, so the evaluator needs it. Malformed rows raise ``ValueError`` naming
the file and line; blank lines are skipped and counted.

Reading is C-speed for the common case (a plain-ASCII file whose rows all have 7 or all 8 columns, as
every detections file): ``np.loadtxt`` with a structured dtype, whose float parser rounds exactly as
Python's ``float`` (tested). Anything else — 2-column rows, quotes, blank lines, non-ASCII, a value that
does not parse — goes through the general reader, which gives the same rows or names the bad line.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import numpy as np

__all__ = [
    "AVARows",
    "DEFAULT_LABEL_MAP",
    "as_str",
    "read_labelmap",
    "read_ava_csv",
    "read_exclusions",
    "write_detections_csv",
    "write_metrics",
]

logger = logging.getLogger(__name__)

#: The official 60-class AVA label map (ActivityNet 2018 challenge), shipped with the package.
DEFAULT_LABEL_MAP = os.path.join(
    os.path.dirname(__file__), "labelmaps", "ava_action_list_v2.1_for_activitynet_2018.pbtxt"
)


@dataclass
class AVARows:
    """AVA CSV rows, column-wise, in file order.

    Attributes:
        video_ids: ``[N]`` str.
        timestamps: ``[N]`` str, exactly as written (how they become keys depends on the protocol).
        boxes: ``[N, 4]`` float64 ``x1, y1, x2, y2`` normalised to [0, 1].
        action_ids: ``[N]`` int64.
        scores: ``[N]`` float64; column 8 when present (the person id in ground truth), else 1.0.
        lines: ``[N]`` int64 line numbers, for error messages.
        empty_frames: ``(video_id, timestamp)`` of rows with only those two columns.
        empty_frame_lines: their line numbers.
        source: file name (or a description) for error messages.
    """

    video_ids: np.ndarray
    timestamps: np.ndarray
    boxes: np.ndarray
    action_ids: np.ndarray
    scores: np.ndarray
    lines: np.ndarray
    empty_frames: list = field(default_factory=list)
    empty_frame_lines: list = field(default_factory=list)
    source: str = "<memory>"

    def __post_init__(self) -> None:
        n = len(self.video_ids)
        self.video_ids = _string_column(self.video_ids, n)
        self.timestamps = _string_column(self.timestamps, n)
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(n, 4)
        self.action_ids = np.asarray(self.action_ids, dtype=np.int64).reshape(n)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(n)
        self.lines = np.asarray(self.lines, dtype=np.int64).reshape(n)

    def __len__(self) -> int:
        return len(self.video_ids)

    @classmethod
    def from_arrays(
        cls,
        video_ids: Sequence[str],
        timestamps: Sequence,
        boxes,
        action_ids,
        scores=None,
        *,
        empty_frames: Iterable = (),
        source: str = "<memory>",
    ) -> "AVARows":
        """Build rows from in-memory arrays (``lines`` are then 1-based row indices)."""
        n = len(video_ids)
        scores = np.ones(n) if scores is None else scores
        empty = [(str(v), str(t)) for v, t in empty_frames]
        return cls(
            video_ids, timestamps, boxes, action_ids, scores, np.arange(1, n + 1),
            empty, list(range(1, len(empty) + 1)), source,
        )

    def location(self, i: int) -> str:
        """``"file:line"`` of row ``i``."""
        return f"{self.source}:{int(self.lines[i])}"


def _string_column(values, n: int) -> np.ndarray:
    """A column of strings: numpy ``S``/``U`` arrays as they are (the fast reader's ASCII bytes),
    anything else as an object array of ``str``."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "SU":
        return values.reshape(n)
    return np.asarray([str(v) for v in values], dtype=object).reshape(n)


def as_str(value) -> str:
    """A value of an :class:`AVARows` string column as ``str`` (the fast reader keeps ASCII bytes)."""
    return value.decode("ascii") if isinstance(value, (bytes, np.bytes_)) else str(value)


# --------------------------------------------------------------------------- label map
_BLOCK_RE = re.compile(r"(\w+)\s*\{([^{}]*)\}", re.S)
_FIELD_RE = re.compile(r'(\w+)\s*:\s*(?:"((?:[^"\\]|\\.)*)"|([^\s"]+))')


def read_labelmap(path: str) -> dict[int, str]:
    """Read an AVA label map ``.pbtxt`` into ``{action_id: name}`` (file order).

    Accepts the 2018 ``item { name id }`` format and the v2.2 ``label { name label_id label_type }``
    format, blocks on one line or several; other fields (``label_type``, ``display_name``) are
    ignored. Errors name the file and the line where the offending block starts.
    """
    with open(path, encoding="utf-8") as f:
        text = f.read()
    labels: dict[int, str] = {}
    pos = 0
    for m in _BLOCK_RE.finditer(text):
        line_no = text.count("\n", 0, m.start()) + 1
        gap = re.sub(r"#[^\n]*", "", text[pos : m.start()]).strip()
        if gap:
            raise ValueError(f"{path}:{line_no}: unexpected text outside a label block: {gap[:40]!r}")
        pos = m.end()
        if m.group(1) not in ("item", "label"):
            raise ValueError(f"{path}:{line_no}: unknown block {m.group(1)!r} (expected 'item' or 'label')")
        fields = {f.group(1): f.group(2) if f.group(2) is not None else f.group(3) for f in _FIELD_RE.finditer(m.group(2))}
        raw_id = fields.get("label_id", fields.get("id"))
        if "name" not in fields or raw_id is None:
            raise ValueError(f"{path}:{line_no}: label block without both a name and an id")
        try:
            class_id = int(raw_id)
        except ValueError:
            raise ValueError(f"{path}:{line_no}: action id {raw_id!r} is not an integer") from None
        if class_id in labels:
            raise ValueError(f"{path}:{line_no}: duplicate action id {class_id}")
        if class_id < 1:
            raise ValueError(f"{path}:{line_no}: action ids must be >= 1 (got {class_id})")
        labels[class_id] = fields["name"]
    tail = re.sub(r"#[^\n]*", "", text[pos:]).strip()
    if tail:
        line_no = text.count("\n", 0, pos) + 1
        raise ValueError(f"{path}:{line_no}: unexpected or unclosed text after the last label block: {tail[:40]!r}")
    if not labels:
        raise ValueError(f"{path}: label map has no labels")
    return labels


# --------------------------------------------------------------------------- CSV
def _bad_row(path: str, line_no: int, row: list, why: str) -> ValueError:
    return ValueError(f"{path}:{line_no}: {why}: {','.join(row)!r}")


def _parse_floats(path: str, rows: list, line_nos: list, cols: slice, what: str) -> np.ndarray:
    """Convert string columns to float64 (Python ``float``, as the official reader), naming a bad line."""
    if not rows:
        return np.zeros((0, cols.stop - cols.start))
    try:
        out = np.array([[float(v) for v in r[cols]] for r in rows], dtype=np.float64)
    except ValueError:
        out = None
    if out is None or not np.isfinite(out).all():
        for row, line_no in zip(rows, line_nos):
            try:
                values = [float(v) for v in row[cols]]
            except ValueError:
                raise _bad_row(path, line_no, row, f"{what} must be numbers") from None
            if not all(math.isfinite(v) for v in values):
                raise _bad_row(path, line_no, row, f"{what} must be finite")
    return out.reshape(len(rows), -1)


_SCAN_CHUNK = 1 << 24
_LONG_FIELD = 256  # second try when a row's id or timestamp is wider than those of the first chunk


def _scan_for_fast_path(path: str):
    """``(columns, video id width, timestamp width)`` if ``path`` suits the fast reader — plain ASCII,
    no quotes, no blank lines, a first row of 7 or 8 columns — else ``None``. Reads the file in chunks
    of whole lines with C-speed bytes checks; the widths are measured on the first chunk (the reader
    re-reads wider if a later row is longer)."""
    widths, carry = None, b""
    with open(path, "rb") as f:
        while True:
            block = f.read(_SCAN_CHUNK)
            data = carry + block
            if block:
                cut = data.rfind(b"\n") + 1
                data, carry = data[:cut], data[cut:]
            if data:
                if not data.isascii() or b'"' in data:
                    return None
                # a blank line (also at a chunk border: chunks end with a newline) would shift the line
                # numbers of error messages
                if b"\n\n" in data or b"\n\r\n" in data or data.startswith((b"\n", b"\r\n")):
                    return None
                if widths is None:
                    widths = _field_widths(data)
                    if widths is None:
                        return None
            if not block:
                break
    return None if widths is None else widths


def _field_widths(data: bytes):
    """``(columns, widest video id, widest timestamp)`` of whole lines ``data``; ``None`` unless every
    line has the same 7 or 8 columns."""
    if not data.endswith(b"\n"):
        data += b"\n"
    b = np.frombuffer(data, np.uint8)
    nl = np.flatnonzero(b == 10)
    starts = np.r_[0, nl[:-1] + 1]
    commas = np.flatnonzero(b == 44)
    at = np.searchsorted(commas, starts)
    per_line = np.diff(np.r_[at, len(commas)])
    columns = int(per_line[0]) + 1
    if columns not in (7, 8) or (per_line != columns - 1).any():
        return None
    first, second = commas[at], commas[at + 1]
    return columns, int((first - starts).max()), int((second - first - 1).max())


def _read_fast(path: str) -> Optional[AVARows]:
    """Rows of a uniform 7/8-column ASCII file via ``np.loadtxt``; ``None`` when it does not apply."""
    scan = _scan_for_fast_path(path)
    if scan is None:
        return None
    columns, vid_w, ts_w = scan
    for vid_w, ts_w in ((vid_w + 1, ts_w + 1), (_LONG_FIELD, _LONG_FIELD)):
        fields = [("video_id", f"S{vid_w}"), ("timestamp", f"S{ts_w}"), ("x1", "f8"), ("y1", "f8"),
                  ("x2", "f8"), ("y2", "f8"), ("action_id", "i8")] + ([("score", "f8")] if columns == 8 else [])
        try:
            arr = np.loadtxt(path, delimiter=",", dtype=np.dtype(fields), comments=None, ndmin=1, encoding="ascii")
        except (ValueError, IndexError):
            return None  # ragged or malformed: the general reader names the line
        vid_len = np.char.str_len(arr["video_id"])
        if not len(arr) or (vid_len.max() < vid_w and np.char.str_len(arr["timestamp"]).max() < ts_w):
            break  # no value fills its column, so none was cut
    else:
        return None
    from numpy.lib.recfunctions import structured_to_unstructured

    boxes = structured_to_unstructured(arr[["x1", "y1", "x2", "y2"]], copy=False)
    scores = arr["score"] if columns == 8 else np.ones(len(arr))
    if len(arr) and (vid_len.min() == 0 or not np.isfinite(boxes).all() or not np.isfinite(scores).all()):
        return None
    return AVARows(
        video_ids=arr["video_id"], timestamps=arr["timestamp"], boxes=boxes, action_ids=arr["action_id"],
        scores=scores, lines=np.arange(1, len(arr) + 1), source=str(path),
    )


def read_ava_csv(path: str) -> AVARows:
    """Read an AVA ground-truth or detections CSV (2, 7 or 8 columns per row)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"AVA CSV not found: {path}")
    fast = _read_fast(path)
    return fast if fast is not None else _read_general(path)


def _read_general(path: str) -> AVARows:
    """The reader for any file (mixed 2/7/8 columns, quotes, blank lines, UTF-8); names bad lines."""
    with open(path, newline="", encoding="utf-8") as f:
        all_rows = list(csv.reader(f))
    rows, line_nos, empty, empty_lines = [], [], [], []
    blank = 0
    for line_no, row in enumerate(all_rows, 1):
        n = len(row)
        if n in (7, 8):
            rows.append(row)
            line_nos.append(line_no)
        elif n == 2:
            empty.append((row[0], row[1]))
            empty_lines.append(line_no)
        elif n == 0 or (n == 1 and not row[0].strip()):
            blank += 1
        else:
            raise _bad_row(path, line_no, row, f"expected 2, 7 or 8 columns, got {n}")
    if blank:
        logger.warning("%s: skipped %d blank line(s)", path, blank)
    for row, line_no in zip(rows, line_nos):
        if not row[0]:
            raise _bad_row(path, line_no, row, "empty video id")
    boxes = _parse_floats(path, rows, line_nos, slice(2, 6), "box coordinates")
    try:
        action_ids = np.array([int(r[6]) for r in rows], dtype=np.int64)
    except ValueError:
        for row, line_no in zip(rows, line_nos):
            try:
                int(row[6])
            except ValueError:
                raise _bad_row(path, line_no, row, "action id must be an integer") from None
        raise
    scores = np.ones(len(rows))
    has_score = np.array([len(r) == 8 for r in rows], dtype=bool)
    if has_score.any():
        idx = np.flatnonzero(has_score)
        scored = [rows[i] for i in idx]
        scores[idx] = _parse_floats(path, scored, [line_nos[i] for i in idx], slice(7, 8), "score")[:, 0]
    return AVARows(
        video_ids=[r[0] for r in rows],
        timestamps=[r[1] for r in rows],
        boxes=boxes,
        action_ids=action_ids,
        scores=scores,
        lines=line_nos,
        empty_frames=empty,
        empty_frame_lines=empty_lines,
        source=str(path),
    )


def read_exclusions(path: str) -> list[tuple[str, str]]:
    """Read an excluded-timestamps CSV into ``[(video_id, timestamp)]``."""
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.reader(f), 1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != 2:
                raise _bad_row(path, line_no, row, f"expected 2 columns (video_id,timestamp), got {len(row)}")
            out.append((row[0], row[1]))
    return out


def write_detections_csv(path: str, rows: AVARows) -> None:
    """Write detections in the official format ``video_id,timestamp,x1,y1,x2,y2,action_id,score``.

    Floats are written with ``repr`` (shortest round-trip form), so evaluating the written file gives
    exactly the numbers computed from memory; the official format does not fix a precision.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    vids = rows.video_ids.astype(str) if rows.video_ids.dtype.kind == "S" else rows.video_ids
    stamps = rows.timestamps.astype(str) if rows.timestamps.dtype.kind == "S" else rows.timestamps
    with open(path, "w", newline="", encoding="utf-8") as f:
        for vid, ts, box, aid, score in zip(
            vids, stamps, rows.boxes.tolist(), rows.action_ids.tolist(), rows.scores.tolist()
        ):
            f.write(f"{vid},{ts},{box[0]!r},{box[1]!r},{box[2]!r},{box[3]!r},{aid},{score!r}\n")


def write_metrics(result, path: str) -> None:
    """Write an :class:`~vmae_det.evaluation.AVAResult` as JSON (fractions; NaN written as null).

    Besides ``protocol`` it records ``max_detections_per_keyframe`` (50 = official ActivityNet,
    ``null`` = every detection kept, as VMAD/SlowFast) and ``detections_per_keyframe``, the same
    setting in words.
    """
    def num(x: float):
        return None if math.isnan(x) else x

    from .ava_map import MAX_DETECTIONS_PER_KEYFRAME, describe_detections_per_keyframe  # ava_map imports us

    cap = getattr(result, "max_detections_per_keyframe", MAX_DETECTIONS_PER_KEYFRAME)
    payload = {
        "protocol": result.protocol,
        "max_detections_per_keyframe": cap,
        "detections_per_keyframe": describe_detections_per_keyframe(cap),
        "mAP": num(result.mAP),
        "per_class": [
            {"id": c, "name": result.class_names[c], "AP": num(ap),
             "num_groundtruth": result.num_groundtruth[c], "num_detections": result.num_detections[c]}
            for c, ap in result.per_class_ap.items()
        ],
        "stats": result.stats,
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2)
