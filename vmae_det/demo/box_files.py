"""Person boxes from files: an AVA-format box CSV (ground truth or detections) or this demo's own
``<name>_actions.json``, checked before any decoding (:class:`BoxFileError` naming file and line)."""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

import numpy as np

from vmae_det.formats.ava import NO_ACTION, AVAFormatError, checked_boxes, read_ava_csv, row_timestamps

from .keyframes import KeyframeSchedule
from .person_boxes import PersonBoxSource
from .settings import BOX_FORMATS

__all__ = ["BoxFileError", "CsvBoxSource", "DemoJsonBoxSource", "box_source_from_file", "demo_json_twin"]

logger = logging.getLogger(__name__)

#: A malformed box CSV row; the message is ``file:line: reason``: the AVA readers' error itself.
BoxFileError = AVAFormatError

_INT = re.compile(r"^[+-]?\d+$")


class CsvBoxSource(PersonBoxSource):
    """Boxes from a CSV in the official AVA formats, coordinates normalised to [0, 1]:

    * ground truth (``ava_{train,val}_v2.x.csv``): ``video_id,timestamp,x1,y1,x2,y2,action_id,person_id``;
      a person is repeated once per action (merged by person id and box); person score 1.0;
    * detections / proposals (SlowFast's ``*_predicted_boxes.csv``, person boxes with their person score):
      ``video_id,timestamp,x1,y1,x2,y2[,action_id[,score]]``; identical boxes are merged (highest score
      kept); no score means 1.0. Scores must be finite and in [0, 1].

    ``box_format="auto"`` decides per *file* (logged): ground truth when every row has integers in columns 7
    and 8 (action and person id), else detections; a value above 1 in column 8 of detections is an error
    suggesting ``"gt"``. An *action*-detections file (this demo's own ``<name>_actions.csv``: column 8 is each
    action's score) is refused, naming the demo's JSON (:class:`DemoJsonBoxSource`) to pass instead.

    The file (UTF-8, a BOM accepted) is streamed and only this video's rows kept, so a whole
    ``ava_val_v2.2.csv`` can be passed (other videos' rows are counted). Boxes below ``score_threshold`` are
    dropped and counted. A malformed row or an off-grid timestamp is a :class:`BoxFileError` naming file and
    line, raised by ``__init__`` / :meth:`bind` before any decoding; a keyframe past the video's end is a
    counted skip reported by :meth:`finish` (docs/demo.md).

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
        video_ids: List[str] = []
        seen = {"rows": 0, "all_gt": True, "any_8": False, "any_8_action": False}

        def keep(r: List[str]) -> bool:
            """Every row of the file passes here once (streamed): the format is decided on every row, only this
            video's rows are kept (a whole ava_val_v2.2.csv costs memory for them alone)."""
            seen["rows"] += 1
            if len(r) == 8:
                seen["any_8"] = True
                seen["any_8_action"] = seen["any_8_action"] or bool(r[6])
            if seen["all_gt"] and not (len(r) == 8 and _INT.match(r[6]) and _INT.match(r[7])):
                seen["all_gt"] = False
            if r[0] == self.video_id:
                return True
            self.rows_other_videos += 1
            if len(video_ids) < 5 and r[0] not in video_ids:
                video_ids.append(r[0])
            return False

        rows = self._read(keep)
        self.is_ground_truth = self._decide_format(seen, box_format)
        if box_format == "auto" and not self.is_ground_truth:
            self._refuse_action_detections(rows, seen["any_8_action"])
        mine = list(range(len(rows)))
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

    def _read(self, keep):
        """This video's rows (``keep`` sees every row), by the AVA CSV reader (its errors name file and line).
        Rows of other videos are checked for their column count and video id only."""
        if not os.path.isfile(self.path):
            raise FileNotFoundError(
                f"box CSV '{self.path}' does not exist"
                if not os.path.exists(self.path)
                else f"box CSV '{self.path}' is not a file"
            )
        return read_ava_csv(
            self.path,
            columns=(6, 7, 8),
            strip=True,
            encoding="utf-8-sig",  # a BOM is no id
            optional_action=True,
            optional_score=True,
            keep_text=True,
            keep=keep,
        )

    def _decide_format(self, seen: dict, box_format: str) -> bool:
        """True for a ground-truth file (column 8 = person id), False for detections (column 8 = score);
        ``seen``: what the reader saw in every row of the file."""
        if box_format != "auto":
            return box_format == "gt"
        gt = bool(seen["rows"]) and seen["all_gt"]
        if gt:
            logger.info(
                "%s: read as AVA ground truth (every row has an integer action id in column 7 and an "
                "integer in column 8, taken as the person id; person score 1.0); pass "
                "--boxes-format detections if column 8 holds scores",
                self.path,
            )
        elif seen["any_8"]:
            logger.info("%s: read as detections (column 8 = person score)", self.path)
        return gt

    def _refuse_action_detections(self, rows, any_8_action: bool) -> None:
        """Raise :class:`BoxFileError` for an action-detections file, whose column 8 is each action's score, not
        the person's: a box with rows for two action ids and two different scores (a person has one score), or
        this demo's own ``<name>_actions.csv`` (its JSON twin next to it), so that action scores are never
        taken for person scores."""
        twin = demo_json_twin(self.path)
        first: Dict[Tuple[str, ...], Tuple[int, Dict[str, float]]] = {}
        found = None
        for i, r in enumerate(rows.text):
            if len(r) != 8 or not r[6] or not r[7]:
                continue
            at, scores = first.setdefault(tuple(r[:6]), (i, {}))
            scores.setdefault(r[6], float(rows.scores[i]))
            if len(scores) > 1 and len(set(scores.values())) > 1:
                found = at, scores
                break
        if found is None and (twin is None or not any_8_action):
            return
        instead = (
            f"pass the same run's {twin} as --boxes (its person boxes with their person scores)"
            if twin
            else "pass the demo's <name>_actions.json of that run as --boxes (its person boxes with their person "
            "scores)"
        )
        if found is not None:
            at, scores = found
            what = (
                f"the box on this line has rows for action ids {' and '.join(scores)} with scores "
                f"{' and '.join(f'{v:g}' for v in scores.values())}, and a person has one score: an "
                "action-detections file, like the demo's own <name>_actions.csv"
            )
        else:
            at, what = 0, f"the demo's own <name>_actions.csv (its {os.path.basename(twin)} is next to it)"
        raise rows.error(
            at,
            f"column 8 holds action scores, not person scores ({what}); {instead}, or a person-box "
            "file (video_id,timestamp,x1,y1,x2,y2,,person_score); --boxes-format detections reads "
            "column 8 as the person score anyway",
        )

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
                        raise rows.error(
                            i,
                            "a ground-truth row needs integer action_id and person_id "
                            f"in columns 7-8, got {text[6]!r}, {text[7]!r}",
                        )
                    person = int(text[7])
            elif len(text) == 8 and text[7]:
                score = float(rows.scores[i])
                if not 0.0 <= score <= 1.0:
                    hint = (
                        " (an integer in column 8: is this a ground-truth file with person ids? pass --boxes-format gt)"
                        if _INT.match(text[7])
                        else ""
                    )
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
                    self.path,
                    line_no,
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
            logger.info(
                "%s: skipped %d box row(s) scoring below the person score threshold %g (first: line %s)",
                self.path,
                len(below),
                self.score_threshold,
                below[0],
            )
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
            logger.warning(
                "%s:%s: skipped: keyframe %d is past the end of the video (%d keyframes)",
                self.path,
                line_no,
                j,
                num_keyframes,
            )
        counts = {
            "csv_keyframes_past_end": len(self._lines),
            "csv_rows_other_videos": self.rows_other_videos,
            "csv_boxes_below_threshold": self.boxes_below_threshold,
        }
        self._boxes.clear()
        self._lines.clear()
        return counts


def demo_json_twin(path: str) -> Optional[str]:
    """The demo's ``<name>_actions.json`` next to its ``<name>_actions.csv`` ``path``, if there is one."""
    if not path.endswith("_actions.csv"):
        return None
    twin = path[: -len(".csv")] + ".json"
    try:
        with open(twin, encoding="utf-8") as f:
            head = f.readline()
    except (OSError, UnicodeDecodeError):
        return None
    return twin if head.startswith('{"video_id": ') and head.rstrip().endswith('"keyframes": [') else None


class DemoJsonBoxSource(CsvBoxSource):
    """Person boxes from this demo's own ``<name>_actions.json``: each keyframe's people (``box``, normalised
    xyxy of the displayed frame, and ``person_score``) at the keyframe's exact ``time``, for the video of the
    file's ``video_id``. So a run can be repeated on the people of an earlier one, with their person scores
    (the ``<name>_actions.csv`` holds action scores only). Checked as a box CSV is (finite numbers, boxes in
    [0, 1], scores in [0, 1]: :class:`BoxFileError` naming the file and the keyframe's line), then used as
    :class:`CsvBoxSource` uses its rows: ``bind``, ``boxes_for``, ``finish``, the same counts."""

    def __init__(self, path: str, video_id: str, score_threshold: float = 0.0) -> None:
        if not (math.isfinite(float(score_threshold)) and 0.0 <= float(score_threshold) <= 1.0):
            raise ValueError(f"person score threshold must be in [0, 1], got {score_threshold}")
        self.path = str(path)
        self.video_id = video_id
        self.score_threshold = float(score_threshold)
        self.is_ground_truth = False
        self.rows_other_videos = 0
        self.boxes_below_threshold = 0
        self._boxes = {}
        self._lines = {}
        if not os.path.isfile(self.path):
            raise FileNotFoundError(
                f"box file '{self.path}' does not exist"
                if not os.path.exists(self.path)
                else f"box file '{self.path}' is not a file"
            )
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
            data = json.loads(text)
        except UnicodeDecodeError as e:
            raise BoxFileError(self.path, None, f"not UTF-8 text ({e.reason} at byte {e.start})") from e
        except ValueError as e:  # json.JSONDecodeError
            raise BoxFileError(
                self.path, None, f"not JSON ({e}); --boxes takes an AVA CSV or the demo's <name>_actions.json"
            ) from e
        keyframes = data.get("keyframes") if isinstance(data, dict) else None
        if not isinstance(keyframes, list):
            raise BoxFileError(
                self.path,
                None,
                "not the demo's <name>_actions.json (no 'keyframes' list); "
                "--boxes takes an AVA CSV or the demo's <name>_actions.json",
            )
        lines = text.split("\n")  # the demo writes one keyframe a line, from line 2
        layout = len(lines) > len(keyframes) and all(lines[k + 1].startswith("{") for k in range(len(keyframes)))
        file_video = str(data.get("video_id", ""))
        self._rows = []
        for k, entry in enumerate(keyframes):  # rows named by their line, else by their place in the file
            self._rows += self._people(entry, k + 2 if layout else f"keyframes[{k}]")
        if file_video != video_id:
            self.rows_other_videos, self._rows = len(self._rows), []
            logger.warning(
                "%s: no boxes for video '%s' (the file is of video '%s': pass --video-id)",
                self.path,
                video_id,
                file_video,
            )

    def _people(self, entry, where) -> List[Tuple]:
        if not isinstance(entry, dict) or not isinstance(entry.get("people"), list):
            raise BoxFileError(self.path, where, "a keyframe needs 'time' and a 'people' list")
        t = entry.get("time")
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t):
            raise BoxFileError(self.path, where, f"keyframe time must be a finite number, got {t!r}")
        out = []
        for person in entry["people"]:
            box = person.get("box") if isinstance(person, dict) else None
            score = person.get("person_score") if isinstance(person, dict) else None
            if (
                not isinstance(box, list)
                or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)
            ):
                raise BoxFileError(self.path, where, f"a person's 'box' must be 4 finite numbers, got {box!r}")
            if not (all(0.0 <= v <= 1.0 for v in box) and box[2] > box[0] and box[3] > box[1]):
                raise BoxFileError(
                    self.path, where, f"box {box} is not a normalised xyxy box inside [0, 1] with x1 < x2, y1 < y2"
                )
            if (
                not isinstance(score, (int, float))
                or isinstance(score, bool)
                or not math.isfinite(score)
                or not 0.0 <= score <= 1.0
            ):
                raise BoxFileError(self.path, where, f"person_score must be a number in [0, 1], got {score!r}")
            out.append((where, float(t), tuple(float(v) for v in box), float(score), None))
        return out


def box_source_from_file(
    path: str, video_id: str, score_threshold: float = 0.0, box_format: str = "auto"
) -> CsvBoxSource:
    """:class:`DemoJsonBoxSource` for a ``.json`` file (``box_format`` must then be ``"auto"`` or
    ``"detections"``), else :class:`CsvBoxSource`."""
    if str(path).lower().endswith(".json"):
        if box_format == "gt":
            raise ValueError(
                f"--boxes-format gt: {path} is the demo's JSON (person boxes with person scores), "
                "not an AVA ground-truth CSV"
            )
        return DemoJsonBoxSource(path, video_id, score_threshold=score_threshold)
    return CsvBoxSource(path, video_id, score_threshold=score_threshold, box_format=box_format)
