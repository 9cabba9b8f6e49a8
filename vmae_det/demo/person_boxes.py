"""Person boxes for the demo: an off-the-shelf detector, or a user's AVA-format box CSV.

Both sources answer the same question, "which people are in keyframe ``j``?", as absolute xyxy
boxes in frame pixels plus scores, through :meth:`PersonBoxSource.boxes_for`.

The detectors themselves live in ``vmae_det/data/person_detector.py`` (shared with the AVA data
tools); this module only adapts them. Any callable ``detector(frame_rgb) -> (boxes, scores)`` with
``frame_rgb`` uint8 ``[H, W, 3]``, ``boxes`` float32 ``[K, 4]`` absolute xyxy and ``scores`` ``[K]``
works, which is also how tests plug in fakes.
"""
from __future__ import annotations

import csv
import logging
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from vmae_det.data.ava.readers import AVAFormatError

from .keyframes import KeyframeSchedule

__all__ = [
    "BoxFileError",
    "PersonBoxSource",
    "DetectorBoxSource",
    "CsvBoxSource",
    "build_person_detector",
]

logger = logging.getLogger(__name__)

Detector = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]




class BoxFileError(AVAFormatError):
    """A malformed box CSV row; the message is ``file:line: reason`` (as the AVA readers' errors)."""


class PersonBoxSource:
    """Interface: person boxes of one keyframe."""

    def boxes_for(self, j: int, frame_rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Return ``(boxes float32 [K, 4] absolute xyxy, scores float32 [K])`` for keyframe ``j``."""
        raise NotImplementedError

    def finish(self, num_keyframes: int) -> Dict[str, int]:
        """Called after the last keyframe; returns counts worth reporting in the summary."""
        return {}


class DetectorBoxSource(PersonBoxSource):
    """Run a person detector on each keyframe and keep boxes scoring at least ``score_threshold``."""

    def __init__(self, detector: Detector, score_threshold: float = 0.8) -> None:
        self.detector = detector
        self.score_threshold = float(score_threshold)

    def boxes_for(self, j: int, frame_rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        boxes, scores = self.detector(frame_rgb)
        boxes = np.asarray(_to_numpy(boxes), dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(_to_numpy(scores), dtype=np.float32).reshape(-1)
        keep = scores >= self.score_threshold
        return boxes[keep], scores[keep]


def _to_numpy(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x


class CsvBoxSource(PersonBoxSource):
    """Boxes from a CSV in the official AVA format: ``video_id,timestamp,x1,y1,x2,y2[,action,score]``.

    Coordinates are normalised to [0, 1]. Ground-truth files repeat a box once per action; the
    repeats are merged (the box score is the row's score when given, else 1.0). Rows for other
    videos are ignored (so a whole ``ava_val_v2.2.csv`` can be passed) and counted.

    Policy for bad rows (documented in docs/demo.md): a malformed row, or a timestamp that is not
    on the keyframe grid, is a :class:`BoxFileError` naming the file and line, raised by
    :meth:`bind` before any decoding. A timestamp on the grid but past the end of the video is a
    logged, counted skip reported by :meth:`finish` (the true frame count is only known once the
    video has been decoded).

    Usage: ``source = CsvBoxSource(path, video_id)``, then ``source.bind(schedule)``.
    """

    def __init__(self, path: str, video_id: str) -> None:
        self.path = str(path)
        self.video_id = video_id
        self.rows_other_videos = 0
        self._rows: List[Tuple[int, float, Tuple[float, ...], float]] = []  # line, time, box, score
        with open(self.path, newline="") as f:
            for line_no, row in enumerate(csv.reader(f), start=1):
                if row and "".join(row).strip():
                    self._parse_row(row, line_no)
        if not self._rows:
            logger.warning("%s: no boxes for video '%s'", self.path, video_id)
        self._boxes: Dict[int, List[Tuple[Tuple[float, ...], float]]] = {}
        self._lines: Dict[int, int] = {}  # keyframe -> first line naming it (for messages)

    @property
    def min_timestamp(self) -> Optional[float]:
        return min((t for _, t, _, _ in self._rows), default=None)

    def _parse_row(self, row: List[str], line_no: int) -> None:
        if len(row) not in (6, 7, 8):
            raise BoxFileError(self.path, line_no, "expected 6-8 columns "
                               f"(video_id,timestamp,x1,y1,x2,y2[,action,score]), got {len(row)}")
        if row[0] != self.video_id:
            self.rows_other_videos += 1
            return
        try:
            t = float(row[1])
            box = tuple(float(v) for v in row[2:6])
            score = float(row[7]) if len(row) == 8 and row[7].strip() else 1.0
        except ValueError as e:
            raise BoxFileError(self.path, line_no, f"not a number ({e})") from e
        if not all(0.0 <= v <= 1.0 for v in box) or box[2] <= box[0] or box[3] <= box[1]:
            raise BoxFileError(self.path, line_no, f"box {box} is not a normalised xyxy box inside [0, 1]")
        self._rows.append((line_no, t, box, score))

    def bind(self, schedule: KeyframeSchedule) -> "CsvBoxSource":
        """Assign every row to a keyframe of ``schedule``; off-grid timestamps are errors."""
        self._boxes = defaultdict(list)
        self._lines = {}
        for line_no, t, box, score in self._rows:
            j = schedule.index_of_time(t)
            if j is None:
                raise BoxFileError(
                    self.path, line_no,
                    f"timestamp {t:g} is not a keyframe time (keyframes every {schedule.interval / schedule.fps:g} s "
                    f"from {schedule.time_offset:g} s); match --keyframe-interval/--time-offset to the file",
                )
            entries = self._boxes[j]
            for i, (b, s) in enumerate(entries):
                if np.allclose(b, box, atol=1e-4):
                    entries[i] = (b, max(s, score))  # the same person on another action row
                    break
            else:
                entries.append((box, score))
            self._lines.setdefault(j, line_no)
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
        counts = {"csv_keyframes_past_end": len(self._lines), "csv_rows_other_videos": self.rows_other_videos}
        self._boxes.clear()
        self._lines.clear()
        return counts


def build_person_detector(
    name: str, weights: Optional[str] = None, device: Optional[str] = None, score_threshold: float = 0.8
) -> Detector:
    """Build a COCO person detector by name: ``"torchvision"`` or ``"detectron2"``.

    Delegates to :func:`vmae_det.data.person_detector.build_person_detector` (weights from the
    local file ``weights``, else downloaded and cached by torchvision/detectron2; offline, that is
    an error saying to pass a local file). ``device`` defaults to CUDA when available.
    """
    import torch

    from vmae_det.data.person_detector import build_person_detector as build

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return build(name, weights=weights, device=device, score_threshold=score_threshold)
