"""Where the keyframes are, and which frames each keyframe's clip is made of.

Frames here are those of the reader's presentation-time grid (:class:`~.video_stream.VideoStreamReader`):
frame ``i`` is at ``i / fps`` seconds after the first decoded frame, whatever the file's timestamps.
Keyframe ``j`` sits at frame ``round(j * interval)`` and at time ``time_offset + j * interval / fps``
seconds. With the default interval (``fps`` frames, possibly fractional such as 29.97) the
keyframes fall on whole seconds, which is what AVA's keyframe timestamps are.

A clip spans a fixed *time*, the one the model was trained on: ``num_frames`` frames taken every
``stride`` frames *of the model's frame rate* ``model_fps`` (30 for AVA and custom datasets), centred on
the keyframe and shifted by ``offset`` model frames. When the video's grid runs at ``model_fps`` the
indices are the evaluation's own ``vmae_det.data.ava.clip_source.clip_indices`` (frames
``k + offset + stride * (i - num_frames // 2)``, clamped to the video's first/last frame; ``offset`` is the
test mapper's ``clip_offset``: VMAD's recipe uses 1 at stride 4), so demo and evaluation take the same
frames. At another rate the clip is resampled: model frame ``m`` (same formula) is the video frame
nearest to its time, ``k + round(m * fps / model_fps)``, clamped the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

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
        offset: model frames added to every clip index (the evaluation's ``clip_offset``).
        model_fps: the frame rate the model's clips were sampled at in training; ``None`` means
            ``fps`` (no resampling).
    """

    fps: float
    interval: Optional[float] = None
    num_frames: int = 16
    stride: int = 4
    time_offset: float = 0.0
    offset: int = 0
    model_fps: Optional[float] = None

    def __post_init__(self) -> None:
        if not _finite(self.fps) or self.fps <= 0:
            raise ValueError(f"fps must be a finite number > 0, got {self.fps}")
        if self.interval is None:
            object.__setattr__(self, "interval", float(self.fps))
        if not _finite(self.interval) or self.interval < 1:
            raise ValueError(f"keyframe interval must be a finite number of frames >= 1, got {self.interval}")
        if not _finite(self.time_offset):
            raise ValueError(f"time offset must be a finite number of seconds, got {self.time_offset}")
        if self.model_fps is None:
            object.__setattr__(self, "model_fps", float(self.fps))
        if not _finite(self.model_fps) or self.model_fps <= 0:
            raise ValueError(f"model fps must be a finite number > 0, got {self.model_fps}")
        if self.num_frames < 1 or self.stride < 1:
            raise ValueError(f"bad clip geometry: num_frames={self.num_frames}, stride={self.stride}")

    @property
    def resampled(self) -> bool:
        """Whether clips are resampled from ``fps`` to ``model_fps``."""
        return abs(self.fps - self.model_fps) > 1e-9

    @property
    def clip_seconds(self) -> float:
        """Time one clip spans: ``num_frames * stride / model_fps``."""
        return self.num_frames * self.stride / self.model_fps

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
        """Video frames covered by one clip (the minimum video length): ``num_frames * stride`` at
        ``model_fps``, ``round(num_frames * stride * fps / model_fps)`` otherwise."""
        if not self.resampled:
            return self.num_frames * self.stride
        return max(1, int(round(self.num_frames * self.stride * self.fps / self.model_fps)))

    def clip_indices(self, keyframe_frame: int, num_video_frames: Optional[int] = None) -> List[int]:
        """Frame indices of the clip of ``keyframe_frame``, clamped to the video (to frame 0 only
        while the video's length is not known yet): ``clip_source.clip_indices`` with ``offset``,
        resampled to ``fps`` when it differs from ``model_fps`` (module docstring)."""
        length = num_video_frames if num_video_frames is not None else _UNKNOWN_LENGTH
        if not self.resampled:
            idx = _clip_indices(int(keyframe_frame), self.num_frames, self.stride, length, self.offset)
            return [int(i) for i in idx]
        model = self.offset + (np.arange(self.num_frames) - self.num_frames // 2) * self.stride
        idx = int(keyframe_frame) + np.round(model * (self.fps / self.model_fps)).astype(np.int64)
        return [int(i) for i in np.clip(idx, 0, length - 1)]

    def first_needed(self, keyframe_frame: int) -> int:
        """Earliest frame the clip of ``keyframe_frame`` reads."""
        return self.clip_indices(keyframe_frame)[0]

    def last_needed(self, keyframe_frame: int) -> int:
        """Latest frame the clip of ``keyframe_frame`` reads (before clamping to the video's end)."""
        return self.clip_indices(keyframe_frame)[-1]


def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


#: Stands for "not known yet" as a video length (clip indices are then clamped at frame 0 only).
_UNKNOWN_LENGTH = 2**62
