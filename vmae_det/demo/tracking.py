"""Person ids across keyframes: IoU + Hungarian matching, and per-track smoothing of action scores.

Why matching last boxes, without a motion model by default: the demo's keyframes are about a second
apart (AVA's rate) and its boxes come from a person detector or a box file. Most people in films stand
or sit, and there the detector's jitter is all the "motion" there is: a constant-velocity prediction
extrapolates that jitter and switches more ids between people standing close together, while it
switches fewer between people walking past each other (both measured in ``tests/demo/test_tracking.py`` and
docs/tracking.md). So prediction is an option (``motion=True``: each track's box is moved by its mean
displacement over its last 3 keyframes), off by default; no Kalman filter. What matters most is the
assignment: the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) maximises the total
overlap of all pairs at once, so two people close by do not both grab the same neighbour, and pairs
overlapping less than ``iou_threshold`` are never linked.

Ids start at 1 and are never reused; a track not matched for more than ``max_missed`` keyframes ends,
and whoever shows up there later gets a new id.
"""

from __future__ import annotations

import numbers
from collections import deque
from typing import Deque, Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["PersonTracker", "box_iou", "count_id_switches"]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of xyxy boxes ``a`` ``[N, 4]`` and ``b`` ``[M, 4]``: ``[N, M]`` (0 for empty boxes)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


#: ``motion=True`` predicts from the mean displacement over this many keyframes (fewer: less jitter averaged).
MOTION_WINDOW = 3


class _Track:
    __slots__ = ("id", "boxes", "missed", "scores")

    def __init__(self, track_id: int, box: np.ndarray, window: int) -> None:
        self.id = track_id
        self.boxes: Deque[np.ndarray] = deque([box], maxlen=MOTION_WINDOW + 1)  # last seen boxes, newest last
        self.missed = 0
        self.scores: Deque[np.ndarray] = deque(maxlen=window)

    def predicted_box(self, motion: bool) -> np.ndarray:
        """Where to look for this person on the next keyframe: the last box, moved on at the track's mean
        velocity with ``motion``."""
        box = self.boxes[-1]
        if not motion or len(self.boxes) < 2:
            return box
        velocity = (box - self.boxes[0]) / (len(self.boxes) - 1)
        return box + velocity * (self.missed + 1)


class PersonTracker:
    """Links the person boxes of consecutive keyframes into tracks with persistent ids.

    Args:
        iou_threshold: a box continues a track only if it overlaps the track's last box by at least
            this IoU, in (0, 1].
        max_missed: a track survives this many keyframes without a box (a person occluded or missed
            by the detector for a keyframe or two keeps their id); one keyframe more and it ends.
        smooth_window: each person's action scores are replaced by the mean of their track's last
            ``smooth_window`` scored keyframes, this one included (causal, so it works while streaming;
            keyframes the track was missed on are skipped). 1: scores unchanged.
        motion: match against each track's box moved on at its mean velocity over its last
            :data:`MOTION_WINDOW` keyframes (see the module docstring for when it helps).
    """

    def __init__(
        self, iou_threshold: float = 0.3, max_missed: int = 2, smooth_window: int = 1, motion: bool = False
    ) -> None:
        if (
            not isinstance(iou_threshold, numbers.Real)
            or isinstance(iou_threshold, bool)
            or not 0.0 < float(iou_threshold) <= 1.0
        ):
            raise ValueError(f"iou_threshold must be a number in (0, 1], got {iou_threshold!r}")
        for name, value, low in (("max_missed", max_missed, 0), ("smooth_window", smooth_window, 1)):
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or int(value) < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        self.iou_threshold = float(iou_threshold)
        self.max_missed = int(max_missed)
        self.smooth_window = int(smooth_window)
        self.motion = bool(motion)
        self._tracks: List[_Track] = []
        self._next_id = 1
        self._num_classes: Optional[int] = None

    @property
    def num_tracks(self) -> int:
        """How many ids were handed out so far."""
        return self._next_id - 1

    def update(self, boxes: np.ndarray, scores: Optional[np.ndarray] = None) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Track the people of the next keyframe.

        Args:
            boxes: ``[N, 4]`` xyxy boxes of ONE keyframe (any unit, the same on every call); keyframes
                must come in time order.
            scores: ``[N, C]`` action scores of these boxes, or ``None``.

        Returns:
            ``(track_ids, smoothed)``: int64 ``[N]`` ids (>= 1), and ``[N, C]`` scores averaged over each
            track's window, of the scores' float dtype (``None`` when ``scores`` is ``None``).
        """
        boxes = self._check_boxes(boxes)
        if scores is not None:
            scores = self._check_scores(scores, len(boxes))
        ids = np.zeros(len(boxes), np.int64)
        matched_tracks = set()
        if self._tracks and len(boxes):
            iou = box_iou(np.stack([t.predicted_box(self.motion) for t in self._tracks]), boxes)
            iou[iou < self.iou_threshold] = 0.0  # pairs that cannot be linked must not steer the others
            rows, cols = linear_sum_assignment(iou, maximize=True)
            for r, c in zip(rows, cols):
                if iou[r, c] > 0:
                    track = self._tracks[r]
                    track.boxes.append(boxes[c])
                    track.missed = 0
                    ids[c] = track.id
                    matched_tracks.add(r)
        for r, track in enumerate(self._tracks):
            if r not in matched_tracks:
                track.missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]
        by_id: Dict[int, _Track] = {t.id: t for t in self._tracks}
        for c in np.flatnonzero(ids == 0):
            track = _Track(self._next_id, boxes[c], self.smooth_window)
            self._next_id += 1
            self._tracks.append(track)
            by_id[track.id] = track
            ids[c] = track.id
        if scores is None:
            return ids, None
        smoothed = np.empty_like(scores)
        for c, track_id in enumerate(ids):
            history = by_id[int(track_id)].scores
            history.append(scores[c])
            smoothed[c] = scores[c] if len(history) == 1 else np.mean(np.stack(history), axis=0)
        return ids, smoothed

    @staticmethod
    def _check_boxes(boxes) -> np.ndarray:
        boxes = np.asarray(boxes, np.float64)
        if boxes.size == 0:
            return boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"boxes must be an [N, 4] xyxy array, got shape {boxes.shape}")
        if not np.isfinite(boxes).all():
            raise ValueError("boxes must be finite")
        if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
            raise ValueError("boxes must be xyxy with x2 >= x1 and y2 >= y1")
        return boxes

    def _check_scores(self, scores, n: int) -> np.ndarray:
        scores = np.asarray(scores)
        if scores.dtype.kind != "f":
            scores = scores.astype(np.float32)
        if scores.ndim != 2 or scores.shape[0] != n:
            raise ValueError(f"scores must be an [N, C] array with N = {n} boxes, got shape {scores.shape}")
        if n == 0:  # a keyframe without people may come with [0, 0] scores
            return scores
        if self._num_classes is None:
            self._num_classes = scores.shape[1]
        elif scores.shape[1] != self._num_classes:
            raise ValueError(f"scores have {scores.shape[1]} classes, earlier keyframes had {self._num_classes}")
        return scores


def count_id_switches(true_ids: Sequence[Sequence[Hashable]], track_ids: Sequence[Sequence[int]]) -> int:
    """ID switches (CLEAR MOT's IDSW) of a tracker that was given the true boxes.

    ``true_ids[k][i]`` is the identity (any hashable) of box ``i`` on keyframe ``k`` and ``track_ids[k][i]`` the id the
    tracker gave it. A switch is counted each time a person gets another track id than the last one they
    had (keyframes where they are absent do not reset it).
    """
    if len(true_ids) != len(track_ids):
        raise ValueError(f"{len(true_ids)} keyframes of true ids but {len(track_ids)} of track ids")
    last: Dict[Hashable, int] = {}
    switches = 0
    for k, (truth, got) in enumerate(zip(true_ids, track_ids)):
        if len(truth) != len(got):
            raise ValueError(f"keyframe {k}: {len(truth)} true ids but {len(got)} track ids")
        for person, track_id in zip(truth, got):
            track_id = int(track_id)
            if person in last and last[person] != track_id:
                switches += 1
            last[person] = track_id
    return switches
