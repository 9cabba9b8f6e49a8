"""Write the demo's detections as they are produced: an AVA-format CSV and a JSON twin.

CSV rows follow the official AVA detection format ``video_id,timestamp,x1,y1,x2,y2,action_id,score``
with boxes normalised to [0, 1]. AVA timestamps are integer seconds and the official evaluator
parses them with ``int``, so the CSV carries the keyframe time rounded to the nearest second,
zero-padded to four digits as in the AVA files (``0902``); the JSON keeps the exact time and frame
index as well (several keyframes can share a CSV second when the interval is under a second).

Both files are streamed (one keyframe at a time) so an hour-long video never holds its results.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import Dict, List, Optional, TextIO

import numpy as np

__all__ = ["KeyframeDetections", "DetectionWriter"]


@dataclass
class KeyframeDetections:
    """Results of one keyframe.

    Attributes:
        index: keyframe number ``j``; frame: its frame index; time: its time in seconds.
        boxes: float32 ``[N, 4]`` xyxy normalised to [0, 1]; box_scores: ``[N]`` person scores.
        scores: float32 ``[N, C]`` action scores, column ``k`` <-> action id ``k + 1``.
    """

    index: int
    frame: int
    time: float
    boxes: np.ndarray
    box_scores: np.ndarray
    scores: np.ndarray


class DetectionWriter:
    """Stream :class:`KeyframeDetections` to ``csv_path`` and ``json_path``.

    Args:
        video_id: first CSV column.
        score_threshold: (box, action) pairs scoring below it are not written.
        meta: extra fields for the JSON header (fps, sizes, model, ...).
    """

    def __init__(self, csv_path: str, json_path: str, video_id: str, score_threshold: float = 0.0,
                 meta: Optional[Dict] = None) -> None:
        self.video_id = video_id
        self.score_threshold = float(score_threshold)
        self.num_rows = 0
        self._csv_file: Optional[TextIO] = open(csv_path, "w", newline="")
        self._csv = csv.writer(self._csv_file)
        self._json: Optional[TextIO] = open(json_path, "w")
        header = {"video_id": video_id, "score_threshold": self.score_threshold, **(meta or {})}
        # Hand-written framing so keyframes can be appended one by one.
        self._json.write(json.dumps(header)[:-1] + ', "keyframes": [\n')
        self._first = True

    def write(self, det: KeyframeDetections) -> None:
        timestamp = int(round(det.time))
        people: List[Dict] = []
        for box, box_score, row in zip(det.boxes, det.box_scores, det.scores):
            box_txt = [f"{v:.3f}" for v in box]
            actions = {}
            for k in np.flatnonzero(row >= self.score_threshold):
                score = float(row[k])
                self._csv.writerow([self.video_id, f"{timestamp:04d}", *box_txt, int(k) + 1, f"{score:.6f}"])
                actions[str(int(k) + 1)] = round(score, 6)
                self.num_rows += 1
            people.append({"box": [round(float(v), 6) for v in box],
                           "person_score": round(float(box_score), 6), "actions": actions})
        entry = {"timestamp": timestamp, "time": round(det.time, 6), "frame": det.frame, "people": people}
        self._json.write(("" if self._first else ",\n") + json.dumps(entry))
        self._first = False

    def close(self, summary: Optional[Dict] = None) -> None:
        """Finish both files; ``summary`` is added to the JSON after the keyframes."""
        if self._json is not None:
            tail = "\n]" + (", " + json.dumps({"summary": summary})[1:-1] if summary else "") + "}\n"
            self._json.write(tail)
            self._json.close()
            self._json = None
        if self._csv_file is not None:
            self._csv_file.close()
            self._csv_file = None
