"""Person boxes for the demo: an off-the-shelf detector, or a user's AVA-format box CSV.

Both sources answer the same question, "which people are in keyframe ``j``?", as absolute xyxy
boxes in frame pixels plus scores, through :meth:`PersonBoxSource.boxes_for`.

The detectors themselves live in ``vmae_det/data/person_detector.py`` (shared with the AVA data
tools); this module only adapts them. Any callable ``detector(frame_rgb) -> (boxes, scores)`` with
``frame_rgb`` uint8 ``[H, W, 3]``, ``boxes`` float32 ``[K, 4]`` absolute xyxy and ``scores`` ``[K]``
works, which is also how tests plug in fakes.
"""
from __future__ import annotations

import logging
import math
import os
import re
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from vmae_det.constants import default_device
from vmae_det.formats.ava import NO_ACTION, AVAFormatError, checked_boxes, read_ava_csv, row_timestamps

from .keyframes import KeyframeSchedule

__all__ = [
    "BoxFileError",
    "PersonBoxSource",
    "DetectorBoxSource",
    "CsvBoxSource",
    "BOX_FORMATS",
    "build_person_detector",
]

logger = logging.getLogger(__name__)

Detector = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]


#: A malformed box CSV row; the message is ``file:line: reason``: the AVA readers' error itself.
BoxFileError = AVAFormatError


class PersonBoxSource:
    """Interface: person boxes of one keyframe."""

    def boxes_for(self, j: int, frame_rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Return ``(boxes float32 [K, 4] absolute xyxy, scores float32 [K])`` for keyframe ``j``."""
        raise NotImplementedError

    def finish(self, num_keyframes: int) -> Dict[str, int]:
        """Called after the last keyframe; returns counts worth reporting in the summary."""
        return {}


class DetectorBoxSource(PersonBoxSource):
    """Run a person detector on each keyframe and keep boxes scoring at least ``score_threshold``.

    A box with a non-finite score or coordinate (a broken detector) is dropped, logged and counted
    (``detector_boxes_nonfinite`` in the summary) instead of being silently lost in the comparison.
    """

    def __init__(self, detector: Detector, score_threshold: float = 0.8) -> None:
        self.detector = detector
        self.score_threshold = float(score_threshold)
        self.nonfinite = 0

    def boxes_for(self, j: int, frame_rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        boxes, scores = self.detector(frame_rgb)
        boxes = np.asarray(_to_numpy(boxes), dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(_to_numpy(scores), dtype=np.float32).reshape(-1)
        if len(boxes) != len(scores):
            raise ValueError(f"the person detector returned {len(boxes)} boxes but {len(scores)} scores")
        finite = np.isfinite(scores) & np.isfinite(boxes).all(1)
        if not finite.all():
            bad = int((~finite).sum())
            self.nonfinite += bad
            logger.warning("keyframe %d: skipped %d person box(es) with a non-finite score or coordinate "
                           "from the detector", j, bad)
        keep = finite & (scores >= self.score_threshold)
        return boxes[keep], scores[keep]

    def finish(self, num_keyframes: int) -> Dict[str, int]:
        return {"detector_boxes_nonfinite": self.nonfinite}


def _to_numpy(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x


#: ``box_format`` values of :class:`CsvBoxSource`.
BOX_FORMATS = ("auto", "gt", "detections")

_INT = re.compile(r"^[+-]?\d+$")


class CsvBoxSource(PersonBoxSource):
    """Boxes from a CSV in the official AVA formats, coordinates normalised to [0, 1]:

    * ground truth (``ava_{train,val}_v2.x.csv``): ``video_id,timestamp,x1,y1,x2,y2,action_id,person_id``;
      a person is repeated once per action (merged by person id and box); person score 1.0;
    * detections / proposals (SlowFast's ``*_predicted_boxes.csv``, this demo's own output):
      ``video_id,timestamp,x1,y1,x2,y2[,action_id[,score]]``; identical boxes are merged (highest score
      kept); no score means 1.0. Scores must be finite and in [0, 1].

    ``box_format="auto"`` decides per *file*: it is ground truth when every row has 8 columns with an
    integer in column 7 (action id) and an integer in column 8 (person id), otherwise detections (a
    proposals file has an empty action column or a fractional score). The decision is logged; pass
    ``"gt"`` or ``"detections"`` to force it. A detections file whose column 8 holds a value above 1 is
    an error suggesting ``"gt"``.

    Rows for other videos are ignored (so a whole ``ava_val_v2.2.csv`` can be passed) and counted. Boxes
    scoring below ``score_threshold`` are dropped and counted (GT boxes score 1.0). The file is read as
    UTF-8 (a byte-order mark is accepted); fields are stripped.

    Policy for bad rows (documented in docs/demo.md): a malformed row (column count, a number that is not
    finite, a box outside [0, 1], a score outside [0, 1]), or a timestamp that is not on the keyframe grid,
    is a :class:`BoxFileError` naming the file and line, raised by ``__init__`` / :meth:`bind` before any
    decoding. A timestamp on the grid but past the end of the video is a logged, counted skip reported by
    :meth:`finish` (the true length is only known once the video has been decoded).

    Usage: ``source = CsvBoxSource(path, video_id)``, then ``source.bind(schedule)``.
    """

    def __init__(self, path: str, video_id: str, score_threshold: float = 0.0, box_format: str = "auto") -> None:
        if box_format not in BOX_FORMATS:
            raise ValueError(f"box_format must be one of {BOX_FORMATS}, got {box_format!r}")
        if not (math.isfinite(float(score_threshold)) and 0.0 <= float(score_threshold) <= 1.0):
            raise ValueError(f"person score threshold must be in [0, 1], got {score_threshold}")
        self.path = str(path)
        self.video_id = video_id
        self.score_threshold = float(score_threshold)
        self.rows_other_videos = 0
        self.boxes_below_threshold = 0
        rows = self._read()
        self.is_ground_truth = self._decide_format(rows, box_format)
        video_ids = []
        mine = []
        for i, vid in enumerate(rows.str_column("video_ids")):
            if vid != self.video_id:
                self.rows_other_videos += 1
                if len(video_ids) < 5 and vid not in video_ids:
                    video_ids.append(vid)
                continue
            mine.append(i)
        self._rows: List[Tuple[int, float, Tuple[float, ...], float, Optional[int]]] = self._parse_rows(rows, mine)
        if not self._rows:
            others = ""
            if video_ids:
                more = ", ..." if self.rows_other_videos > len(video_ids) else ""
                others = f" (its rows name {', '.join(repr(v) for v in video_ids)}{more}: pass --video-id)"
            logger.warning("%s: no boxes for video '%s'%s", self.path, video_id, others)
        self._boxes: Dict[int, List[Tuple[Tuple[float, ...], float]]] = {}
        self._lines: Dict[int, int] = {}  # keyframe -> first line naming it (for messages)

    @property
    def min_timestamp(self) -> Optional[float]:
        return min((r[1] for r in self._rows), default=None)

    def _read(self):
        """The file's rows, by the AVA CSV reader (its errors name file and line)."""
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"box CSV '{self.path}' does not exist" if not os.path.exists(self.path)
                                    else f"box CSV '{self.path}' is not a file")
        return read_ava_csv(self.path, columns=(6, 7, 8), strip=True, encoding="utf-8-sig",  # a BOM is no id
                            optional_action=True, optional_score=True, keep_text=True)

    def _decide_format(self, rows, box_format: str) -> bool:
        """True for a ground-truth file (column 8 = person id), False for detections (column 8 = score)."""
        if box_format != "auto":
            return box_format == "gt"
        gt = bool(len(rows)) and all(len(r) == 8 and _INT.match(r[6]) and _INT.match(r[7]) for r in rows.text)
        if gt:
            logger.info("%s: read as AVA ground truth (every row has an integer action id in column 7 and an "
                        "integer in column 8, taken as the person id; person score 1.0); pass "
                        "--boxes-format detections if column 8 holds scores", self.path)
        elif any(len(r) == 8 for r in rows.text):
            logger.info("%s: read as detections (column 8 = person score)", self.path)
        return gt

    def _parse_rows(self, rows, mine: List[int]) -> List[Tuple[int, float, Tuple[float, ...], float, Optional[int]]]:
        """``(line, time, box, score, person id or None)`` of this video's rows, checked."""
        times = row_timestamps(rows, mine, integer=False)
        boxes = checked_boxes(rows, mine, positive=True)
        out = []
        for i, t, box in zip(mine, times, boxes.tolist()):
            text = rows.text[i]
            person: Optional[int] = None
            score = 1.0
            if self.is_ground_truth:
                if len(text) == 8:
                    if rows.action_ids[i] == NO_ACTION or not _INT.match(text[7]):
                        raise rows.error(i, "a ground-truth row needs integer action_id and person_id "
                                            f"in columns 7-8, got {text[6]!r}, {text[7]!r}")
                    person = int(text[7])
            elif len(text) == 8 and text[7]:
                score = float(rows.scores[i])
                if not 0.0 <= score <= 1.0:
                    hint = (" (an integer in column 8: is this a ground-truth file with person ids? pass "
                            "--boxes-format gt)" if _INT.match(text[7]) else "")
                    raise rows.error(i, f"person score {text[7]} is outside [0, 1]{hint}")
            out.append((int(rows.lines[i]), t, tuple(box), score, person))
        return out

    def bind(self, schedule: KeyframeSchedule) -> "CsvBoxSource":
        """Assign every row to a keyframe of ``schedule``; off-grid timestamps are errors."""
        self._boxes = defaultdict(list)
        self._lines = {}
        below: List[int] = []
        people: Dict[int, Dict[Tuple, int]] = defaultdict(dict)  # keyframe -> (person, box) -> entry index
        for line_no, t, box, score, person in self._rows:
            j = schedule.index_of_time(t)
            if j is None:
                raise BoxFileError(
                    self.path, line_no,
                    f"timestamp {t:g} is not a keyframe time (keyframes every {schedule.interval / schedule.fps:g} s "
                    f"from {schedule.time_offset:g} s); match --keyframe-interval/--time-offset to the file",
                )
            if score < self.score_threshold:
                below.append(line_no)
                continue
            entries = self._boxes[j]
            if person is not None:  # ground truth: one entry per (person, box), whatever its actions
                key = (person, box)
                if key not in people[j]:
                    people[j][key] = len(entries)
                    entries.append((box, score))
            else:
                for i, (b, s) in enumerate(entries):
                    if np.allclose(b, box, atol=1e-4):
                        entries[i] = (b, max(s, score))  # the same person on another action row
                        break
                else:
                    entries.append((box, score))
            self._lines.setdefault(j, line_no)
        self.boxes_below_threshold = len(below)
        if below:
            logger.info("%s: skipped %d box row(s) scoring below the person score threshold %g (first: line %d)",
                        self.path, len(below), self.score_threshold, below[0])
        return self

    def boxes_for(self, j: int, frame_rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        entries = self._boxes.pop(j, [])
        self._lines.pop(j, None)
        if not entries:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        h, w = frame_rgb.shape[:2]
        boxes = np.array([b for b, _ in entries], dtype=np.float32) * np.array([w, h, w, h], np.float32)
        return boxes, np.array([s for _, s in entries], dtype=np.float32)

    def finish(self, num_keyframes: int) -> Dict[str, int]:
        # Whatever was not consumed names keyframes past the end of the video.
        for j, line_no in sorted(self._lines.items()):
            logger.warning("%s:%d: skipped: keyframe %d is past the end of the video (%d keyframes)",
                           self.path, line_no, j, num_keyframes)
        counts = {"csv_keyframes_past_end": len(self._lines), "csv_rows_other_videos": self.rows_other_videos,
                  "csv_boxes_below_threshold": self.boxes_below_threshold}
        self._boxes.clear()
        self._lines.clear()
        return counts


def build_person_detector(
    name: str, weights: Optional[str] = None, device: Optional[str] = None, score_threshold: float = 0.8
) -> Detector:
    """Build a person detector by name: ``"torchvision"`` or ``"detectron2"`` (COCO Faster R-CNN), or
    ``"hog"`` (OpenCV's HOG pedestrian detector: no weights file, nothing downloaded, CPU only).

    Delegates to :func:`vmae_det.data.person_detector.build_person_detector` (Faster R-CNN weights from
    the local file ``weights``, else downloaded and cached by torchvision/detectron2; a failed download is a
    ``DetectorDownloadError``, an ``OSError`` of one line naming ``--person-weights`` and
    ``--person-detector hog``). ``device`` defaults to CUDA when available.
    """
    from vmae_det.data.person_detector import build_person_detector as build

    device = device or default_device()
    return build(name, weights=weights, device=device, score_threshold=score_threshold,
                 weights_flag="--person-weights", detector_flag="--person-detector")
