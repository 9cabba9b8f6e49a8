"""Keyframes on their way from "decoded" to "scored": people first, then clip, then a batched model call.

* :class:`KeyframeFinder` looks for the people on each keyframe in its full-resolution frame as soon as
  that frame is decoded (the frame is not kept for it);
* :class:`KeyframeBatcher` holds each keyframe until the last frame of its clip has been decoded, builds
  the model's request from the :class:`~.clip_buffer.ClipFrameBuffer`, and calls the model once per
  batch of up to ``batch_size`` keyframes with people. Results go out in keyframe order, and they do not
  depend on how keyframes were batched.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Deque, List, Optional, Tuple

import numpy as np

if TYPE_CHECKING:  # annotations only: this module imports neither torch nor the readers
    from .clip_buffer import ClipFrameBuffer
    from .keyframes import KeyframeSchedule
    from .person_boxes import PersonBoxSource
    from .predictor import ActionPredictor, ClipRequest

__all__ = ["PendingKeyframe", "KeyframeFinder", "KeyframeBatcher"]


@dataclass
class PendingKeyframe:
    """A keyframe whose people are known, waiting for its clip to complete."""

    j: int
    frame: int
    boxes: np.ndarray  # absolute xyxy in the full-resolution frame
    box_scores: np.ndarray
    last_needed: int  # the clip's last frame (before clamping at the end of the video)


class KeyframeFinder:
    """Calls ``persons`` on each keyframe's frame as frames are pushed; hands each keyframe to ``found``.

    Args:
        schedule: where the keyframes are and which frames their clips read.
        persons: gives the boxes of keyframe ``j`` from its RGB frame.
        found: receives every :class:`PendingKeyframe`, in keyframe order.
    """

    def __init__(
        self, schedule: KeyframeSchedule, persons: PersonBoxSource, found: Callable[[PendingKeyframe], None]
    ) -> None:
        self.schedule = schedule
        self.persons = persons
        self.found = found
        self.num_found = 0  # keyframe j of the next keyframe
        self.next_frame = schedule.frame_of(0)  # its frame

    def push(self, idx: int, frame: np.ndarray) -> None:
        """Grid frame ``idx`` (RGB, full resolution) was decoded."""
        while self.next_frame <= idx:
            s, j, k = self.schedule, self.num_found, self.next_frame
            boxes, scores = self.persons.boxes_for(j, frame)
            self.found(PendingKeyframe(j, k, boxes, scores, s.last_needed(k)))
            self.num_found = j + 1
            self.next_frame = s.frame_of(j + 1)


class KeyframeBatcher:
    """Keyframes waiting for their clip, then for a full batch; scores out through ``scored``.

    A batch runs when it holds ``batch_size`` keyframes with people, when it holds none with people
    (nothing to wait for), at the end of the video, and early when the caller says the frames waiting
    for its labels hold too much memory (:attr:`num_early_batches` counts those).

    Args:
        schedule: clip geometry.
        predictor: the action model; ``predictor(requests)`` gives one ``[N, C]`` score array per request.
        clips: the frames clips are built from (and its per-frame transform, if any).
        video_id: passed to the model with each clip.
        batch_size: keyframes with people per model call (at least 1).
        scored: receives ``(keyframe, scores [N, C])`` per keyframe in keyframe order (``[0, 0]`` scores
            for a keyframe without people).
    """

    def __init__(
        self,
        schedule: KeyframeSchedule,
        predictor: ActionPredictor,
        clips: ClipFrameBuffer,
        video_id: str,
        batch_size: int,
        scored: Callable[[PendingKeyframe, np.ndarray], None],
    ) -> None:
        self.schedule = schedule
        self.predictor = predictor
        self.clips = clips
        self.video_id = video_id
        self.batch_size = max(1, int(batch_size))
        self.scored = scored
        self.waiting: Deque[PendingKeyframe] = deque()  # people known, clip incomplete
        self.batch: List[Tuple[PendingKeyframe, Optional[ClipRequest]]] = []  # in keyframe order
        self.batch_requests = 0  # keyframes of the batch with people
        self.num_early_batches = 0

    def add(self, keyframe: PendingKeyframe) -> None:
        """A keyframe whose people are known (in keyframe order)."""
        self.waiting.append(keyframe)

    def oldest_frame(self, default: int) -> int:
        """Frame of the oldest keyframe waiting for its clip (``default`` when none is)."""
        return self.waiting[0].frame if self.waiting else default

    def advance(self, last: int, num_frames: Optional[int] = None, over_budget: bool = False) -> None:
        """Frames ``<= last`` are in ``clips``; ``num_frames`` is set once the video has ended (every clip is
        then complete, clamped at the end). ``over_budget``: run a partial batch now."""
        complete = num_frames is not None
        waiting = self.waiting
        while waiting and (complete or waiting[0].last_needed <= last):
            p = waiting.popleft()
            request = None
            if len(p.boxes):
                request = self._request(p, num_frames)
                self.batch_requests += 1
            self.batch.append((p, request))
            if self.batch_requests >= self.batch_size:
                self.run()
        if self.batch:
            if complete or self.batch_requests == 0:
                self.run()
            elif over_budget:
                self.num_early_batches += 1
                self.run()

    def _request(self, p: PendingKeyframe, num_frames: Optional[int]) -> ClipRequest:
        s = self.schedule
        frames = self.clips.frames(s.clip_indices(p.frame, num_frames))
        timestamp = int(round(s.time_of(p.j)))
        transform = self.clips.transform
        if transform is not None:
            return self.predictor.make_request_from_transformed(
                frames, transform, p.boxes, p.box_scores, self.video_id, timestamp
            )
        return self.predictor.make_request(frames, p.boxes, p.box_scores, self.video_id, timestamp)

    def run(self) -> None:
        """Score the batch (one model call) and hand its keyframes to ``scored``."""
        batch, self.batch, self.batch_requests = self.batch, [], 0
        requests = [r for _, r in batch if r is not None]
        scores = iter(self.predictor(requests) if requests else [])
        for p, r in batch:
            self.scored(p, next(scores) if r is not None else np.zeros((0, 0), np.float32))
