"""AVA files: the one CSV reader, the writers, the label map, exclusions and the dataset layout's names; one
module, because every AVA file is read and written here with the same ``file:line: reason`` errors.

CSV rows, without header (timestamps in seconds of the movie, boxes ``x1,y1,x2,y2`` normalised to [0, 1]): ground
truth ``video_id,timestamp,box,action_id,person_id`` (``video_id,timestamp`` alone: a keyframe without actions),
detections ``...,action_id,score``, SlowFast's proposals ``...,,score``, excluded timestamps ``video_id,timestamp``.

:func:`read_ava_csv` keeps rows in file order (the official evaluator's results depend on it when scores tie).
Uniform 7/8-column ASCII files take a ``np.loadtxt`` fast path, whose floats round as Python's ``float``;
anything else goes through the general reader, which gives the same rows or names the bad line.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..constants import AVA_FPS, AVA_START_SEC
from .atomic import atomic_write, atomic_write_text

__all__ = [
    "AVAFormatError",
    "AVARows",
    "NO_ACTION",
    "LABEL_MAP_FILES",
    "KINETICS_CLIPS_DIR",
    "annotation_file_names",
    "kinetics_file_names",
    "frame_file_name",
    "keyframe_index",
    "as_str",
    "read_ava_csv",
    "read_exclusions",
    "read_labelmap",
    "row_timestamps",
    "checked_boxes",
    "format_ava_row",
    "format_labelmap",
    "write_ava_csv",
    "write_detections_csv",
    "write_labelmap",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

#: Action id of a row whose action column is empty (proposals) or absent (6-column box rows).
NO_ACTION = -1

#: The official label-map file name per annotation version (v2.1's is the 2018 ActivityNet one).
LABEL_MAP_FILES = {
    "v2.2": "ava_action_list_v2.2_for_activitynet_2019.pbtxt",
    "v2.1": "ava_action_list_v2.1_for_activitynet_2018.pbtxt",
}
#: AVA-Kinetics' folder of Kinetics clips under the dataset root (searched at any depth: CVDF's split/class folders).
KINETICS_CLIPS_DIR = "kinetics"


def annotation_file_names(split: str, version: str = "v2.2") -> Dict[str, str]:
    """File names (under ``annotations/``) of one split: ``groundtruth``, ``exclusions``, ``proposals``
    (SlowFast's person boxes) and ``label_map``."""
    return {
        "groundtruth": f"ava_{split}_{version}.csv",
        "exclusions": f"ava_{split}_excluded_timestamps_{version}.csv",
        "proposals": f"ava_{split}_predicted_boxes.csv",
        "label_map": LABEL_MAP_FILES.get(version, f"ava_action_list_{version}_for_activitynet_2019.pbtxt"),
    }


def kinetics_file_names(split: str) -> Dict[str, str]:
    """File names under ``annotations/``: the Kinetics part as distributed (``groundtruth``), person boxes in
    SlowFast's CSV (``proposals``, optional) and the written scored ground truths (``scored``: Kinetics alone,
    ``scored_combined``: AVA + Kinetics)."""
    return {
        "groundtruth": f"kinetics_{split}_v1.0.csv",
        "proposals": f"kinetics_{split}_predicted_boxes.csv",
        "scored": f"kinetics_{split}_v1.0_scored.csv",
        "scored_combined": f"ava_kinetics_{split}_v1.0_scored.csv",
    }


def frame_file_name(video_id: str, index: int) -> str:
    """Name of the extracted frame of 0-based ``index``: ``<video_id>_<index + 1 as %06d>.jpg`` (ffmpeg's)."""
    return f"{video_id}_{index + 1:06d}.jpg"


def keyframe_index(timestamp: int, fps: float = AVA_FPS, start_sec: int = AVA_START_SEC) -> int:
    """0-based frame index of keyframe second ``timestamp`` in a crop starting at ``start_sec``."""
    return int(round((timestamp - start_sec) * fps))


class AVAFormatError(ValueError):
    """A malformed entry in an AVA file. ``line``: a 1-based line, a JSON entry's description such as
    ``"entry 3 (image_id 17)"``, or ``None`` for the whole file."""

    def __init__(self, path: PathLike, line: Union[int, str, None], reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        if line is None:
            where = f"{path}"
        elif isinstance(line, (int, np.integer)):
            where = f"{path}:{int(line)}"
        else:
            where = f"{path}: {line}"
        super().__init__(f"{where}: {reason}")


@dataclass
class AVARows:
    """AVA CSV rows, column-wise, in file order.

    Attributes:
        video_ids: ``[N]`` str (ASCII bytes when the fast reader read them: see :func:`as_str`).
        timestamps: ``[N]`` str, exactly as written.
        scores: ``[N]`` float64; column 8 when present (the person id in ground truth), else 1.0.
        empty_frames: ``(video_id, timestamp)`` of rows with only those two columns.
        text: the fields of every row as read, only with ``keep_text=True``.
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
    text: Optional[List[List[str]]] = None

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
            video_ids,
            timestamps,
            boxes,
            action_ids,
            scores,
            np.arange(1, n + 1),
            empty,
            list(range(1, len(empty) + 1)),
            source,
        )

    def location(self, i: int) -> str:
        """``"file:line"`` of row ``i``."""
        return f"{self.source}:{int(self.lines[i])}"

    def error(self, i: int, reason: str) -> AVAFormatError:
        """The :class:`AVAFormatError` of row ``i``."""
        return AVAFormatError(self.source, int(self.lines[i]), reason)

    def str_column(self, name: str) -> List[str]:
        """``video_ids`` or ``timestamps`` as a list of ``str``."""
        col = getattr(self, name)
        return col.astype(str).tolist() if col.dtype.kind == "S" else [str(v) for v in col]


def _string_column(values, n: int) -> np.ndarray:
    """A column of strings: numpy ``S``/``U`` arrays as they are, anything else as an object array of ``str``."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "SU":
        return values.reshape(n)
    return np.asarray([str(v) for v in values], dtype=object).reshape(n)


def as_str(value) -> str:
    """A value of an :class:`AVARows` string column as ``str`` (the fast reader keeps ASCII bytes)."""
    return value.decode("ascii") if isinstance(value, (bytes, np.bytes_)) else str(value)


_BLOCK_RE = re.compile(r"(\w+)\s*\{([^{}]*)\}", re.S)
_FIELD_RE = re.compile(r'(\w+)\s*:\s*(?:"((?:[^"\\]|\\.)*)"|([^\s"]+))')


def read_labelmap(path: PathLike) -> Dict[int, str]:
    """Read an AVA label map ``.pbtxt`` (2018 ``item`` or v2.2 ``label`` blocks) into ``{action_id: name}``."""
    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    labels: Dict[int, str] = {}
    pos = 0
    for m in _BLOCK_RE.finditer(text):
        line_no = text.count("\n", 0, m.start()) + 1
        gap = re.sub(r"#[^\n]*", "", text[pos : m.start()]).strip()
        if gap:
            raise AVAFormatError(path, line_no, f"unexpected text outside a label block: {gap[:40]!r}")
        pos = m.end()
        if m.group(1) not in ("item", "label"):
            raise AVAFormatError(path, line_no, f"unknown block {m.group(1)!r} (expected 'item' or 'label')")
        fields = {
            f.group(1): f.group(2) if f.group(2) is not None else f.group(3) for f in _FIELD_RE.finditer(m.group(2))
        }
        raw_id = fields.get("label_id", fields.get("id"))
        if "name" not in fields or raw_id is None:
            raise AVAFormatError(path, line_no, "label block without both a name and an id")
        try:
            class_id = int(raw_id)
        except ValueError:
            raise AVAFormatError(path, line_no, f"action id {raw_id!r} is not an integer") from None
        if class_id in labels:
            raise AVAFormatError(path, line_no, f"duplicate action id {class_id}")
        if class_id < 1:
            raise AVAFormatError(path, line_no, f"action ids must be >= 1 (got {class_id})")
        labels[class_id] = fields["name"]
    tail = re.sub(r"#[^\n]*", "", text[pos:]).strip()
    if tail:
        line_no = text.count("\n", 0, pos) + 1
        raise AVAFormatError(path, line_no, f"unexpected or unclosed text after the last label block: {tail[:40]!r}")
    if not labels:
        raise AVAFormatError(path, None, "label map has no labels")
    return labels


_ODD_TRAILING_BACKSLASHES = re.compile(r"(?<!\\)(\\\\)*\\$")


def format_labelmap(classes: Mapping[int, str], label_type: str = "PERSON_MOVEMENT") -> str:
    """The v2.2 ``.pbtxt`` text of ``{action id: name}`` (every label of ``label_type``)."""
    lines = []
    for class_id, name in classes.items():
        if '"' in name or "\n" in name or _ODD_TRAILING_BACKSLASHES.search(name):
            raise ValueError(
                f"action name {name!r} cannot be written to a label map (a quote, a newline or a "
                "trailing backslash would not read back)"
            )
        lines += ["label {", f'  name: "{name}"', f"  label_id: {int(class_id)}", f"  label_type: {label_type}", "}"]
    return "\n".join(lines) + "\n"


def write_labelmap(path: PathLike, classes: Mapping[int, str], label_type: str = "PERSON_MOVEMENT") -> None:
    """Write ``{action id: name}`` as a v2.2 label map that :func:`read_labelmap` reads back."""
    atomic_write_text(path, format_labelmap(classes, label_type))


def read_ava_csv(
    path: PathLike,
    *,
    columns: Sequence[int] = (2, 7, 8),
    strip: bool = False,
    encoding: str = "utf-8-sig",
    optional_action: bool = False,
    optional_score: bool = False,
    keep_text: bool = False,
    keep: Optional[Callable[[List[str]], bool]] = None,
) -> AVARows:
    """Read an AVA CSV: ground truth, detections, proposals, excluded timestamps or a box file.

    Args:
        columns: the column counts a row may have: 2, 6 (a box), 7 (and an action id), 8 (and a score or
            person id).
        encoding: ``"utf-8-sig"`` skips the byte-order mark spreadsheets write, which would begin a video id.
        optional_action: an empty action column is allowed (:data:`NO_ACTION`), as in SlowFast's proposals.
        optional_score: an empty 8th column is allowed (score 1.0).
        keep_text: also keep every row's fields as read (``rows.text``; uses the general reader).
        keep: called with each row's fields once its column count and video id are checked; a row it returns
            False for is dropped unparsed, so a large file costs memory only for the rows kept.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"AVA CSV not found: {path}")
    columns = tuple(columns)
    fast = None if keep_text or keep is not None else _read_fast(path, columns, strip, optional_action)
    if fast is not None:
        return fast
    return _read_general(path, columns, strip, encoding, optional_action, optional_score, keep_text, keep)


def _describe_counts(columns: Sequence[int]) -> str:
    counts = [str(c) for c in sorted(set(columns))]
    return counts[0] if len(counts) == 1 else ", ".join(counts[:-1]) + " or " + counts[-1]


_LAYOUT = ("video_id", "timestamp", "x1", "y1", "x2", "y2", "action_id", "score|person_id")

_SCAN_CHUNK = 1 << 24
_LONG_FIELD = 256  # second try when a row's id or timestamp is wider than those of the first chunk
_ACTION_FIELD = 32  # width of the action column read as text (optional_action)


def _scan_for_fast_path(path: str, strip: bool = False):
    """``(columns, video id width, timestamp width, lines)`` if ``path`` suits the fast reader (plain ASCII, no
    quotes, 7 or 8 columns), else ``None``; widths come from the first chunk, ``lines`` counts the file's lines
    (``np.loadtxt`` skips blank lines: fewer rows than lines sends the file to the general reader)."""
    widths, lines, last = None, 0, b"\n"
    with open(path, "rb") as f:
        while block := f.read(_SCAN_CHUNK):
            if not block.isascii() or b'"' in block:
                return None
            if strip and (b" " in block or b"\t" in block):
                return None
            if widths is None:
                cut = block.rfind(b"\n") + 1 if len(block) == _SCAN_CHUNK else len(block)
                widths = _field_widths(block[:cut]) if cut else None
                if widths is None:
                    return None
            lines += int(np.count_nonzero(np.frombuffer(block, np.uint8) == 10))
            last = block[-1:]
    return None if widths is None else (*widths, lines + (last != b"\n"))


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


def _read_fast(
    path: str, columns: Sequence[int] = (2, 7, 8), strip: bool = False, optional_action: bool = False
) -> Optional[AVARows]:
    """Rows of a uniform 7/8-column ASCII file via ``np.loadtxt``; ``None`` when it does not apply."""
    scan = _scan_for_fast_path(path, strip)
    if scan is None or scan[0] not in columns:
        return None
    ncols, vid_w, ts_w, lines = scan
    action_dtype = f"S{_ACTION_FIELD}" if optional_action else "i8"
    for vid_w, ts_w in ((vid_w + 1, ts_w + 1), (_LONG_FIELD, _LONG_FIELD)):
        fields = [
            ("video_id", f"S{vid_w}"),
            ("timestamp", f"S{ts_w}"),
            ("x1", "f8"),
            ("y1", "f8"),
            ("x2", "f8"),
            ("y2", "f8"),
            ("action_id", action_dtype),
        ] + ([("score", "f8")] if ncols == 8 else [])
        try:
            arr = np.loadtxt(path, delimiter=",", dtype=np.dtype(fields), comments=None, ndmin=1, encoding="ascii")
        except (ValueError, IndexError):
            return None  # ragged or malformed: the general reader names the line
        if len(arr) != lines:
            return None  # a blank line, whose skip would shift the line numbers of error messages
        vid_len = np.char.str_len(arr["video_id"])
        if not len(arr) or (vid_len.max() < vid_w and np.char.str_len(arr["timestamp"]).max() < ts_w):
            break  # no value fills its column, so none was cut
    else:
        return None
    action_ids = arr["action_id"]
    if optional_action:
        if len(arr) and np.char.str_len(action_ids).max() >= _ACTION_FIELD:
            return None
        try:
            action_ids = np.where(action_ids == b"", str(NO_ACTION).encode(), action_ids).astype(np.int64)
        except ValueError:
            return None
    from numpy.lib.recfunctions import structured_to_unstructured

    boxes = structured_to_unstructured(arr[["x1", "y1", "x2", "y2"]], copy=False)
    scores = arr["score"] if ncols == 8 else np.ones(len(arr))
    if len(arr) and (vid_len.min() == 0 or not np.isfinite(boxes).all() or not np.isfinite(scores).all()):
        return None
    return AVARows(
        video_ids=arr["video_id"],
        timestamps=arr["timestamp"],
        boxes=boxes,
        action_ids=action_ids,
        scores=scores,
        lines=np.arange(1, len(arr) + 1),
        source=str(path),
    )


def _csv_records(path: str, encoding: str) -> Iterator[List[str]]:
    """The CSV records of ``path``, streamed; undecodable text or a broken record names the line."""
    count = 0
    try:
        with open(path, newline="", encoding=encoding) as f:
            for row in csv.reader(f):
                count += 1
                yield row
    except UnicodeDecodeError as e:
        raise AVAFormatError(path, count + 1, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise AVAFormatError(path, count + 1, f"not a CSV row ({e})") from None


def _number_message(what: str, value: str, finite: bool) -> str:
    if finite:
        return f"{what} must be finite, got {value!r}"
    return f"{what} must be {'numbers' if what.endswith('s') else 'a number'}, got {value!r}"


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
            for v in row[cols]:
                try:
                    x = float(v)
                except ValueError:
                    raise AVAFormatError(path, line_no, _number_message(what, v, finite=False)) from None
                if not math.isfinite(x):
                    raise AVAFormatError(path, line_no, _number_message(what, v, finite=True))
    return out.reshape(len(rows), -1)


def _read_general(
    path: str,
    columns: Sequence[int] = (2, 7, 8),
    strip: bool = False,
    encoding: str = "utf-8-sig",
    optional_action: bool = False,
    optional_score: bool = False,
    keep_text: bool = False,
    keep: Optional[Callable[[List[str]], bool]] = None,
) -> AVARows:
    """The reader for any file (mixed column counts, quotes, blank lines, UTF-8); names bad lines."""
    rows, line_nos, empty, empty_lines = [], [], [], []
    blank = 0
    for line_no, row in enumerate(_csv_records(path, encoding), 1):
        if strip:
            row = [c.strip() for c in row]
        n = len(row)
        if not any(c.strip() for c in row):
            blank += 1
            continue
        if n not in columns:
            layout = ",".join(_LAYOUT[: max(columns)])
            raise AVAFormatError(path, line_no, f"expected {_describe_counts(columns)} columns ({layout}), got {n}")
        if not row[0]:
            raise AVAFormatError(path, line_no, "empty video id")
        if keep is not None and not keep(row):
            continue
        if n == 2:
            empty.append((row[0], row[1]))
            empty_lines.append(line_no)
        else:
            rows.append(row)
            line_nos.append(line_no)
    if blank:
        logger.warning("%s: skipped %d blank line(s)", path, blank)
    boxes = _parse_floats(path, rows, line_nos, slice(2, 6), "box coordinates")
    action_ids = np.full(len(rows), NO_ACTION, dtype=np.int64)
    for i, (row, line_no) in enumerate(zip(rows, line_nos)):
        if len(row) < 7 or (optional_action and not row[6]):
            continue
        try:
            action_ids[i] = int(row[6])
        except ValueError:
            raise AVAFormatError(path, line_no, f"action id must be an integer, got {row[6]!r}") from None
    scores = np.ones(len(rows))
    scored = [i for i, r in enumerate(rows) if len(r) == 8 and not (optional_score and not r[7])]
    if scored:
        scores[scored] = _parse_floats(
            path, [rows[i] for i in scored], [line_nos[i] for i in scored], slice(7, 8), "score"
        )[:, 0]
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
        text=rows if keep_text else None,
    )


def read_exclusions(path: PathLike, *, strip: bool = False) -> List[Tuple[str, str]]:
    """Read an excluded-timestamps CSV into ``[(video_id, timestamp)]`` (file order, timestamps as written)."""
    return list(read_ava_csv(path, columns=(2,), strip=strip).empty_frames)


def row_timestamps(rows: AVARows, indices: Optional[Sequence[int]] = None, integer: bool = True) -> List:
    """The timestamps of ``rows`` (of ``indices``) as ``int`` seconds (``integer``) or finite ``float``
    seconds; a value that is not one is an :class:`AVAFormatError` naming its line."""
    indices = range(len(rows)) if indices is None else indices
    parsed: Dict[str, Union[int, float]] = {}
    out = []
    for i in indices:
        text = as_str(rows.timestamps[i])
        value = parsed.get(text)
        if value is None:
            try:
                value = int(text) if integer else float(text)
            except ValueError:
                why = (
                    f"timestamp must be an integer, got {text!r}"
                    if integer
                    else _number_message("timestamp", text, False)
                )
                raise rows.error(i, why) from None
            if not integer and not math.isfinite(value):
                raise rows.error(i, _number_message("timestamp", text, True))
            parsed[text] = value
        out.append(value)
    return out


def checked_boxes(
    rows: AVARows, indices: Optional[Sequence[int]] = None, tolerance: float = 0.0, positive: bool = False
) -> np.ndarray:
    """The boxes of ``rows`` (of ``indices``), checked normalised ``x1,y1,x2,y2`` inside [0, 1] up to
    ``tolerance`` and ordered (strictly with ``positive``); otherwise an :class:`AVAFormatError`."""
    idx = np.arange(len(rows)) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
    boxes = rows.boxes[idx]
    inside = ((boxes >= -tolerance) & (boxes <= 1 + tolerance)).all(1)
    wh = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1)
    ordered = (wh > 0).all(1) if positive else (wh >= 0).all(1)
    bad = np.flatnonzero(~(inside & ordered))
    if len(bad):
        k = int(bad[0])
        box = boxes[k].tolist()
        if not inside[k]:
            raise rows.error(int(idx[k]), f"box {box} is not a normalised xyxy box inside [0, 1]")
        sign = "<=" if positive else "<"
        raise rows.error(int(idx[k]), f"box {box} has x2 {sign} x1 or y2 {sign} y1 (expected x1,y1,x2,y2)")
    return np.clip(boxes, 0.0, 1.0)


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def _quoted(value: str) -> str:
    """A field as Python's ``csv`` module writes it (quoted only when it must be)."""
    return '"' + value.replace('"', '""') + '"' if _NEEDS_QUOTES.search(value) else value


def _number(value, decimals: Optional[int]) -> str:
    if isinstance(value, str):
        return value
    return repr(float(value)) if decimals is None else f"{float(value):.{decimals}f}"


def format_ava_row(
    video_id: str,
    timestamp: Union[int, str],
    box: Optional[Sequence] = None,
    action_id: Optional[int] = None,
    last: Union[int, float, None] = None,
    *,
    decimals: Optional[int] = 3,
    score_decimals: Optional[int] = 6,
) -> str:
    """One AVA CSV row (without its newline).

    Args:
        video_id: quoted only if it holds a comma, quote or newline.
        timestamp: an ``int`` is zero-padded to four digits as in AVA's files (``0902``).
        box: ``x1, y1, x2, y2`` with ``decimals`` places (``None``: shortest round trip); no box gives
            ``video_id,timestamp``.
        action_id: ``None`` leaves the action column empty (SlowFast's proposals).
        last: the 8th column: an ``int`` person id (ground truth), a ``float`` score with
            ``score_decimals`` places (``None``: shortest round trip), or ``None`` for a 7-column row.
    """
    fields = [_quoted(str(video_id)), timestamp if isinstance(timestamp, str) else f"{int(timestamp):04d}"]
    if box is not None:
        fields += [_number(v, decimals) for v in box]
        fields.append("" if action_id is None else str(int(action_id)))
        if last is not None:
            if isinstance(last, (int, np.integer)) and not isinstance(last, (bool, np.bool_)):
                fields.append(str(int(last)))
            else:
                fields.append(_number(last, score_decimals))
    return ",".join(fields)


def write_ava_csv(path: PathLike, rows: Iterable[str]) -> None:
    """Write rows made by :func:`format_ava_row` (one per line; the folder is created)."""
    with atomic_write(path) as f:
        for row in rows:
            f.write(row + "\n")


def write_detections_csv(path: PathLike, rows: AVARows) -> None:
    """Write detections in the official format, floats with ``repr`` so the file evaluates exactly as memory;
    ``format_ava_row(..., decimals=None, score_decimals=None)`` spelled out for speed (tested equal)."""
    vids = rows.str_column("video_ids")
    quoted = {v: _quoted(v) for v in set(vids)}
    stamps = rows.str_column("timestamps")
    with atomic_write(path) as f:
        for vid, ts, box, aid, score in zip(
            vids, stamps, rows.boxes.tolist(), rows.action_ids.tolist(), rows.scores.tolist()
        ):
            f.write(f"{quoted[vid]},{ts},{box[0]!r},{box[1]!r},{box[2]!r},{box[3]!r},{aid},{score!r}\n")
