"""Write the demo's detections as they are produced: an AVA-format CSV and a JSON twin, streamed one keyframe at
a time so an hour-long video never holds its results.

CSV rows are the official AVA detection format ``video_id,timestamp,x1,y1,x2,y2,action_id,score`` (boxes
normalised to [0, 1]). The official evaluator parses timestamps with ``int``, so the CSV carries the keyframe
time rounded to the second, zero-padded as in AVA's files (``0902``); the JSON keeps the exact time and frame.
With tracking, each person in the JSON has a ``"track_id"`` and a sidecar ``<name>_tracks.csv``
(``video_id,timestamp,x1,y1,x2,y2,track_id``) keeps the detections CSV official (docs/tracking.md).

:class:`OutputFiles` makes a run all-or-nothing: outputs are written under hidden temporary names
(``.<name>_actions.partial-<pid>.csv`` ...) and renamed over the final names only when the whole run succeeded,
so an error, Ctrl-C or ``kill -9`` never leaves a complete-looking file nor touches an earlier run's results.
The next run into the folder removes temporary files of runs whose process is gone.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, TextIO

import numpy as np

from vmae_det.formats.atomic import commit_file
from vmae_det.formats.ava import format_ava_row

__all__ = ["KeyframeDetections", "DetectionWriter", "OutputFiles", "OutputDirError", "check_output_dir"]

logger = logging.getLogger(__name__)


class OutputDirError(OSError):
    """The output folder cannot be used (a file is in the way, not writable); the message names it."""


def check_output_dir(output_dir: str) -> None:
    """Raise :class:`OutputDirError` when ``output_dir`` exists but is not a folder (or cannot be made)."""
    path = os.fspath(output_dir)
    if not path:
        raise OutputDirError("the output folder name is empty")
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputDirError(f"output folder '{path}' is an existing file, not a folder: pass a folder")
    parent = os.path.dirname(os.path.abspath(path))
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if parent and not os.path.isdir(parent):
        raise OutputDirError(f"output folder '{path}' cannot be created: '{parent}' is a file")


class OutputFiles:
    """Final and temporary paths of one run's outputs in ``output_dir``; see the module docstring.

    Args:
        output_dir: created if missing.
        name: the input's file stem.
        suffixes: ``{kind: "actions.mp4", ...}``: the final file of ``kind`` is ``<name>_<suffix>``.
    """

    PARTIAL = ".partial-"

    def __init__(self, output_dir: str, name: str, suffixes: Dict[str, str]) -> None:
        check_output_dir(output_dir)
        try:
            os.makedirs(output_dir, exist_ok=True)
        except OSError as e:
            raise OutputDirError(f"cannot create output folder '{output_dir}': {e.strerror or e}") from e
        if not os.access(output_dir, os.W_OK | os.X_OK):
            raise OutputDirError(f"output folder '{output_dir}' is not writable")
        self.output_dir = output_dir
        self.name = name
        self.final = {k: os.path.join(output_dir, f"{name}_{sfx}") for k, sfx in suffixes.items()}
        pid = os.getpid()
        self.tmp = {}
        for k, sfx in suffixes.items():
            stem, ext = os.path.splitext(sfx)  # keep the extension: encoders pick the format by it
            self.tmp[k] = os.path.join(output_dir, f".{name}_{stem}{self.PARTIAL}{pid}{ext}")
        self.removed_stale = self._remove_stale()

    def _remove_stale(self) -> int:
        """Remove temporary files of earlier runs on this input whose process no longer exists."""
        pattern = os.path.join(glob.escape(self.output_dir), glob.escape(f".{self.name}_") + "*" + self.PARTIAL + "*")
        removed = 0
        for path in glob.glob(pattern):
            m = re.search(re.escape(self.PARTIAL) + r"(\d+)\.[^.]*$", path)
            if not m or int(m.group(1)) == os.getpid() or _process_alive(int(m.group(1))):
                continue
            try:
                os.remove(path)
                removed += 1
            except OSError as e:
                logger.warning("cannot remove the leftover partial output %s: %s", path, e)
        if removed:
            logger.warning(
                "%s: removed %d partial output file(s) left by an interrupted earlier run", self.output_dir, removed
            )
        return removed

    def commit(self, produced: Iterable[str]) -> Dict[str, str]:
        """Rename the temporary files of ``produced`` kinds over their final names; remove final files of
        the other kinds (left by an earlier run, they would not match these results). Returns the
        final paths of ``produced``."""
        produced = [k for k in self.final if k in set(produced)]
        for k in produced:
            commit_file(self.tmp[k], self.final[k])  # fsync, rename
        for k in self.final:
            if k not in produced:
                if os.path.exists(self.final[k]):
                    logger.info("removing %s from an earlier run (this run has no %s)", self.final[k], k)
                    os.remove(self.final[k])
                self._remove(self.tmp[k])
        return {k: self.final[k] for k in produced}

    def discard(self) -> None:
        """Remove every temporary file of this run (after an error); final files are not touched."""
        for path in self.tmp.values():
            self._remove(path)

    @staticmethod
    def _remove(path: str) -> None:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            logger.warning("cannot remove partial output %s: %s", path, e)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


@dataclass
class KeyframeDetections:
    """Results of one keyframe.

    Attributes:
        index: keyframe number ``j``; frame: its frame index; time: its time in seconds.
        boxes: float32 ``[N, 4]`` xyxy normalised to [0, 1]; box_scores: ``[N]`` person scores.
        scores: float32 ``[N, C]`` action scores, column ``k`` <-> action id ``k + 1``.
        track_ids: int ``[N]`` person ids across keyframes (:mod:`.tracking`), or ``None`` untracked.
    """

    index: int
    frame: int
    time: float
    boxes: np.ndarray
    box_scores: np.ndarray
    scores: np.ndarray
    track_ids: Optional[np.ndarray] = None


class DetectionWriter:
    """Stream :class:`KeyframeDetections` to ``csv_path`` and ``json_path``.

    Args:
        video_id: first CSV column.
        score_threshold: (box, action) pairs scoring below it are not written.
        meta: extra fields for the JSON header (fps, sizes, model, ...).
        tracks_path: the sidecar CSV of track ids (one row per person box), or ``None``: none written.
    """

    def __init__(
        self,
        csv_path: str,
        json_path: str,
        video_id: str,
        score_threshold: float = 0.0,
        meta: Optional[Dict] = None,
        tracks_path: Optional[str] = None,
    ) -> None:
        self.video_id = video_id
        self.score_threshold = float(score_threshold)
        self.num_rows = 0
        self._tracks: Optional[TextIO] = open(tracks_path, "w", newline="") if tracks_path else None
        self._csv_file: Optional[TextIO] = open(csv_path, "w", newline="")
        self._json: Optional[TextIO] = open(json_path, "w")
        header = {"video_id": video_id, "score_threshold": self.score_threshold, **(meta or {})}
        # Hand-written framing so keyframes can be appended one by one.
        self._json.write(json.dumps(header)[:-1] + ', "keyframes": [\n')
        self._first = True

    def write(self, det: KeyframeDetections) -> None:
        for what, values in (("action scores", det.scores), ("person scores", det.box_scores), ("boxes", det.boxes)):
            if not np.isfinite(np.asarray(values, np.float64)).all():
                raise ValueError(
                    f"keyframe at {det.time:g} s (frame {det.frame}): non-finite {what}; "
                    "nothing is written for this run"
                )
        timestamp = int(round(det.time))
        people: List[Dict] = []
        track_ids = [None] * len(det.boxes) if det.track_ids is None else [int(t) for t in det.track_ids]
        for box, box_score, row, track_id in zip(det.boxes, det.box_scores, det.scores, track_ids):
            actions = {}
            for k in np.flatnonzero(row >= self.score_threshold):
                score = float(row[k])
                # CRLF line ends: the demo's CSV has always been written by Python's csv module.
                self._csv_file.write(format_ava_row(self.video_id, timestamp, box, int(k) + 1, score) + "\r\n")
                actions[str(int(k) + 1)] = round(score, 6)
                self.num_rows += 1
            people.append(
                {
                    "box": [round(float(v), 6) for v in box],
                    "person_score": round(float(box_score), 6),
                    "actions": actions,
                }
            )
            if track_id is not None:
                people[-1]["track_id"] = track_id
                if self._tracks is not None:
                    # The track id sits where the detections have the action id: 7 columns, AVA's box format.
                    self._tracks.write(format_ava_row(self.video_id, timestamp, box, track_id) + "\r\n")
        entry = {"timestamp": timestamp, "time": round(det.time, 6), "frame": det.frame, "people": people}
        self._json.write(("" if self._first else ",\n") + json.dumps(entry))
        self._first = False

    def abort(self) -> None:
        """Close the files after an error without finishing them (never raises)."""
        for f in (self._json, self._csv_file, self._tracks):
            if f is not None:
                try:
                    f.close()
                except OSError as e:
                    logger.debug("closing after an error: %s", e)
        self._json = self._csv_file = self._tracks = None

    def close(self, summary: Optional[Dict] = None) -> None:
        """Finish the files; ``summary`` is added to the JSON after the keyframes."""
        if self._json is not None:
            tail = "\n]" + (", " + json.dumps({"summary": summary})[1:-1] if summary else "") + "}\n"
            self._json.write(tail)
            self._json.close()
            self._json = None
        if self._csv_file is not None:
            self._csv_file.close()
            self._csv_file = None
        if self._tracks is not None:
            self._tracks.close()
            self._tracks = None
