"""The frames the demo's clips still read, kept in the model's input size.

The model sees frames after the evaluation's test transform (AVA: short side 256). When that transform
is the same for every frame (:meth:`~.predictor.ActionPredictor.frame_transform`), each frame is shrunk
once, as it is decoded, and only the small copy is kept: the same clips bit for bit
(:class:`~.predictor.FrameTransform`). Otherwise (a random test transform) the full frames are kept and
clips are transformed whole.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Deque, List, Optional, Sequence

import numpy as np

if TYPE_CHECKING:
    from .predictor import FrameTransform

__all__ = ["ClipFrameBuffer"]


class ClipFrameBuffer:
    """Grid frames ``base .. base + len - 1`` in the model's input size, for building clips.

    Frames are pushed in grid order (indices are contiguous, so a deque and a base index suffice) and
    forgotten from the front once no clip will read them.

    Args:
        transform: the per-frame test transform, or ``None`` to keep the frames as pushed.
    """

    def __init__(self, transform: Optional[FrameTransform]) -> None:
        self.transform = transform
        self.base = 0  # grid index of the oldest frame held
        self._frames: Deque[np.ndarray] = deque()
        self._last_in = self._last_out = None  # a repeated grid frame is not transformed again

    def __len__(self) -> int:
        return len(self._frames)

    def push(self, frame: np.ndarray) -> None:
        """Add the next grid frame (RGB ``[H, W, 3]``), transformed."""
        if frame is self._last_in:  # a repeated grid frame: the reader yields the same array again
            small = self._last_out
        else:
            small = self.transform.apply(frame) if self.transform is not None else frame
            self._last_in, self._last_out = frame, small
        self._frames.append(small)

    def frames(self, indices: Sequence[int]) -> List[np.ndarray]:
        """The held frames at grid ``indices`` (each in ``base .. base + len - 1``)."""
        base, frames = self.base, self._frames
        return [frames[i - base] for i in indices]

    def forget_before(self, index: int) -> None:
        """Drop the frames before grid ``index``."""
        frames = self._frames
        while self.base < index and frames:
            frames.popleft()
            self.base += 1

    def clear(self) -> None:
        """Drop every frame (at the end of a run or after an error)."""
        self._frames.clear()
        self._last_in = self._last_out = None
