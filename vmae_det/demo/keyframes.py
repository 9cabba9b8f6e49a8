"""Where the keyframes are, and which frames each keyframe's clip is made of.

Keyframe ``j`` sits at frame ``round(j * interval)`` and at time ``offset + j * interval / fps``
seconds. With the default interval (``fps`` frames, possibly fractional such as 29.97) the
keyframes fall on whole seconds, which is what AVA's keyframe timestamps are.

A clip of ``num_frames`` frames taken every ``stride`` frames is centred on its keyframe, shifted
by ``offset`` frames: frames ``k + offset + stride * (i - num_frames // 2)``, clamped to the
video's first/last frame. The indices come from the evaluation's own
``vmae_det.data.ava.clip_source.clip_indices`` (``offset`` is the test mapper's ``clip_offset``:
VMAD's recipe uses 1 at stride 4), so demo and evaluation take the same frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from vmae_det.data.ava.clip_source import clip_indices as _clip_indices

__all__ = ["KeyframeSchedule"]


@dataclass(frozen=True)
class KeyframeSchedule:
    """Keyframe grid plus clip geometry.

    Args:
        fps: video frame rate.
        interval: frames between keyframes (>= 1, may be fractional); ``None`` means ``fps``
            (one keyframe a second).
        num_frames: frames per clip (T).
        stride: sampling stride between clip frames (tau).
        time_offset: time in seconds of frame 0 (AVA's 15-minute crops start at 900 s).
        offset: frames added to every clip index (the evaluation's ``clip_offset``).
    """

    fps: float
    interval: Optional[float] = None
    num_frames: int = 16
    stride: int = 4
    time_offset: float = 0.0
    offset: int = 0

    def __post_init__(self) -> None:
        if self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.interval is None:
            object.__setattr__(self, "interval", float(self.fps))
        if self.interval < 1:
            raise ValueError(f"keyframe interval must be at least 1 frame, got {self.interval}")
        if self.num_frames < 1 or self.stride < 1:
            raise ValueError(f"bad clip geometry: num_frames={self.num_frames}, stride={self.stride}")

    # ---- keyframe grid -------------------------------------------------------------------
    def frame_of(self, j: int) -> int:
        """Frame index of keyframe ``j``."""
        return int(round(j * self.interval))

    def time_of(self, j: int) -> float:
        """Time in seconds of keyframe ``j`` (nominal grid time, not the rounded frame's)."""
        return self.time_offset + j * self.interval / self.fps

    def index_of_time(self, t: float) -> Optional[int]:
        """Keyframe index whose time is ``t`` (within half a frame), else ``None``."""
        j_float = (t - self.time_offset) * self.fps / self.interval
        j = int(round(j_float))
        if j < 0 or abs(j_float - j) * self.interval > 0.5:
            return None
        return j

    # ---- clip geometry -------------------------------------------------------------------
    @property
    def span(self) -> int:
        """Frames covered by one clip (the minimum video length)."""
        return self.num_frames * self.stride

    def clip_indices(self, keyframe_frame: int, num_video_frames: Optional[int] = None) -> List[int]:
        """Frame indices of the clip of ``keyframe_frame``, clamped to the video (to frame 0 only
        while the video's length is not known yet): ``clip_source.clip_indices`` with ``offset``."""
        length = num_video_frames if num_video_frames is not None else _UNKNOWN_LENGTH
        idx = _clip_indices(int(keyframe_frame), self.num_frames, self.stride, length, self.offset)
        return [int(i) for i in idx]

    def first_needed(self, keyframe_frame: int) -> int:
        """Earliest frame the clip of ``keyframe_frame`` reads."""
        return self.clip_indices(keyframe_frame)[0]

    def last_needed(self, keyframe_frame: int) -> int:
        """Latest frame the clip of ``keyframe_frame`` reads (before clamping to the video's end)."""
        return self.clip_indices(keyframe_frame)[-1]


#: Stands for "not known yet" as a video length (clip indices are then clamped at frame 0 only).
_UNKNOWN_LENGTH = 2 ** 62
