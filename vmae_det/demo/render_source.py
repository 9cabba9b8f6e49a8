"""Where the demo's renderer gets its full-resolution frames from.

A frame is drawn once the labels of the keyframe it follows are known, i.e. once that keyframe's clip is
complete and its batch has been classified. Until then the frame waits:

* :class:`HeldFrames` keeps the decoded RGB frames in memory until they are drawn;
* :class:`SecondDecodePass` keeps none: a second, quiet reader decodes the file again, one frame behind
  the renderer. Used when even one keyframe's wait would hold more than the backlog budget (4K frames).

:func:`open_render_source` picks one from the first frame's size.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Deque, Tuple, Union

import numpy as np

from .video_stream import VideoStreamError, VideoStreamReader

if TYPE_CHECKING:
    from .keyframes import KeyframeSchedule

__all__ = ["HeldFrames", "SecondDecodePass", "open_render_source"]

logger = logging.getLogger(__name__)


class HeldFrames:
    """The decoded RGB frames not drawn yet, in grid order.

    Args:
        frame_bytes: bytes of one frame, for :attr:`backlog_bytes`.
    """

    #: What the summary's ``render_source`` says.
    name = "frames held"

    def __init__(self, frame_bytes: int) -> None:
        self.frame_bytes = int(frame_bytes)
        self._frames: Deque[np.ndarray] = deque()

    def push(self, frame: np.ndarray) -> None:
        """Keep the next decoded grid frame until it is drawn."""
        self._frames.append(frame)

    def take(self, index: int) -> Tuple[np.ndarray, bool]:
        """The oldest frame (grid ``index``) and ``False``: the array is shared, do not draw on it."""
        return self._frames.popleft(), False

    @property
    def num_alive(self) -> int:
        """Full-resolution frames held."""
        return len(self._frames)

    @property
    def backlog_bytes(self) -> int:
        """Bytes of the frames waiting to be drawn."""
        return len(self._frames) * self.frame_bytes

    def close(self) -> None:
        self._frames.clear()


class SecondDecodePass:
    """Frames decoded again from ``video_path`` as the renderer asks for them, in grid order.

    Nothing waits in memory: the first reader's frames are not kept, this quiet reader (no warnings, the
    first one gave them) yields the same grid.
    """

    name = "second decoding pass"
    #: The frame being decoded and the one being drawn.
    num_alive = 2
    backlog_bytes = 0

    def __init__(self, video_path: str) -> None:
        self.video_path = video_path
        self.reader = VideoStreamReader(video_path, quiet=True)
        self._frames = self.reader.frames()
        self._last = None

    def push(self, frame: np.ndarray) -> None:
        """Nothing is kept (the frame is decoded again when it is drawn)."""

    def take(self, index: int) -> Tuple[np.ndarray, bool]:
        """Grid frame ``index`` (the next one) and ``True``: a new array the caller may draw on."""
        try:
            idx, frame, decoded = next(self._frames)
        except StopIteration:
            idx = frame = decoded = None
        if idx != index:  # the file changed under us, or a bug; never bad input
            raise VideoStreamError(
                self.video_path, f"the second decoding pass gave grid frame {idx} where {index} was expected"
            )
        if frame is self._last:  # a repeated grid frame: the array was drawn on already
            return self.reader.to_rgb(decoded, idx), True
        self._last = frame
        return frame, True

    def close(self) -> None:
        self._frames = self._last = None
        self.reader.close()


RenderSource = Union[HeldFrames, SecondDecodePass]


def open_render_source(
    first_frame: np.ndarray, schedule: KeyframeSchedule, video_path: str, budget_bytes: int, replayable: bool = True
) -> RenderSource:
    """:class:`HeldFrames`, unless the frames one keyframe's labels keep waiting (from frame 0 to the last
    frame of keyframe 0's clip, at least one) would hold more than ``budget_bytes``: then
    :class:`SecondDecodePass`. A source that cannot be decoded again (``replayable=False``: a camera, a
    stream) always holds its frames, past the budget too (a warning)."""
    backlog = max(1, schedule.last_needed(0) + 1)
    nbytes = first_frame.nbytes
    if backlog * nbytes <= budget_bytes:
        return HeldFrames(nbytes)
    if not replayable:
        logger.warning(
            "%dx%d frames from a live source: the %d frames waiting for their keyframe's labels hold "
            "%.0f MB (more than the %.0f MB budget); a live source cannot be decoded a second time, so "
            "they are held",
            first_frame.shape[1],
            first_frame.shape[0],
            backlog,
            backlog * nbytes / 2**20,
            budget_bytes / 2**20,
        )
        return HeldFrames(nbytes)
    logger.info(
        "%dx%d frames: %d frames waiting for their keyframe's labels would hold %.0f MB: "
        "decoding the video a second time for rendering instead",
        first_frame.shape[1],
        first_frame.shape[0],
        backlog,
        backlog * nbytes / 2**20,
    )
    return SecondDecodePass(video_path)
