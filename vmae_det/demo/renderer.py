"""Draw the demo's labels on its frames, encode them, and write the preview picture.

Labels are held from one keyframe to the next: frames ``frame_of(j) .. frame_of(j + 1) - 1`` show the
people of keyframe ``j``. So a frame can be drawn as soon as the labels of the keyframe it follows are
known; :class:`FrameRenderer` draws every frame it can, in grid order, and stops at the first keyframe
whose labels are still missing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional

import cv2
import numpy as np

from .visualizer import BoxLabels

if TYPE_CHECKING:
    from vmae_det.formats.video_writer import VideoWriter

    from .keyframes import KeyframeSchedule
    from .visualizer import ActionVisualizer

__all__ = ["top_labels", "FrameRenderer"]

logger = logging.getLogger(__name__)


def top_labels(
    boxes: np.ndarray,
    scores: np.ndarray,
    names: Mapping[int, str],
    top_k: int,
    threshold: float,
    track_ids: Optional[np.ndarray] = None,
) -> List[BoxLabels]:
    """What to draw for each person: its ``top_k`` best actions scoring at least ``threshold``.

    Args:
        boxes: ``[N, 4]`` absolute xyxy boxes.
        scores: ``[N, C]`` action scores, column ``k`` <-> action id ``k + 1``.
        names: action id -> name (missing ids are drawn as ``"action <id>"``).
        track_ids: ``[N]`` person ids across keyframes, drawn as ``#<id>``; ``None``: untracked.
    """
    people = []
    for i, (box, row) in enumerate(zip(boxes, scores)):
        order = np.argsort(-row)[:top_k]
        labels = [(names.get(int(k) + 1, f"action {int(k) + 1}"), float(row[k])) for k in order if row[k] >= threshold]
        track_id = None if track_ids is None else int(track_ids[i])
        people.append(BoxLabels(tuple(float(v) for v in box), labels, track_id))
    return people


class FrameRenderer:
    """Draws grid frames in order with the labels of the keyframe they follow, and encodes them.

    Args:
        schedule: where the keyframes are.
        visualizer: draws boxes and labels (and upscales small frames).
        preview_path: where the first drawn frame with a label goes as a PNG; ``None``: no preview.

    :attr:`video_writer` is set by the caller (the encoder is opened before decoding starts).
    """

    def __init__(
        self, schedule: KeyframeSchedule, visualizer: ActionVisualizer, preview_path: Optional[str] = None
    ) -> None:
        self.schedule = schedule
        self.visualizer = visualizer
        self.preview_path = preview_path
        self.preview_written = False
        self.video_writer: Optional[VideoWriter] = None
        self.next_frame = 0  # the next grid frame to draw
        self._labels: Dict[int, List[BoxLabels]] = {}  # keyframe j -> what to draw, until it is reached
        self._current: List[BoxLabels] = []
        self._next_j = 0  # the keyframe whose frame comes next
        self._boundary = schedule.frame_of(0)  # its frame

    def add_labels(self, j: int, people: List[BoxLabels]) -> None:
        """What to draw from keyframe ``j``'s frame on."""
        self._labels[j] = people

    def render(self, last: int, source) -> None:
        """Draw and encode frames ``next_frame .. last`` as far as their labels are known; frames come from
        ``source.take(index) -> (frame, may draw on it)`` (:mod:`.render_source`)."""
        while self.next_frame <= last:
            if self.next_frame == self._boundary:
                labels = self._labels.pop(self._next_j, None)
                if labels is None:
                    break  # its keyframe is still waiting for a clip or a batch
                self._current = labels
                self._next_j += 1
                self._boundary = self.schedule.frame_of(self._next_j)
            frame, owned = source.take(self.next_frame)
            self._draw(frame, owned)
            self.next_frame += 1

    def _draw(self, frame: np.ndarray, owned: bool) -> None:
        canvas = self.visualizer.draw(frame, self._current, inplace=owned)
        self.video_writer.write(canvas)
        if self.preview_path is not None and not self.preview_written and any(p.labels for p in self._current):
            if not cv2.imwrite(self.preview_path, cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)):
                raise OSError(f"cannot write the preview image {self.preview_path}")
            self.preview_written = True

    def finish(self, num_frames: int) -> None:
        """Check every frame was drawn and close the video."""
        if self.next_frame != num_frames:  # a bug, never bad input
            raise RuntimeError(f"rendered {self.next_frame} of {num_frames} frames")
        if self.preview_path is not None and not self.preview_written:
            logger.warning("no person with a label was drawn: no preview PNG written")
        self.video_writer.close()

    def abort(self) -> None:
        """Close the video after an error without finishing it; never raises."""
        if self.video_writer is not None:
            self.video_writer.abort()
