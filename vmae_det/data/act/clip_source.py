"""The clip source of ACT-format frame folders: ``<frames_dir>/<pattern % frame>`` with 1-based frame numbers
(UCF101-24's ``rgb-images/<class>/<video>/%05d.jpg``, JHMDB's ``Frames/<class>/<video>/%05d.png``)."""

from __future__ import annotations

import os
from typing import Sequence

import cv2
import numpy as np

from ..ava.clip_source import ClipSource

__all__ = ["PatternFramesClipSource"]


class PatternFramesClipSource(ClipSource):
    """Frames ``1..num_frames`` of a folder; index ``k`` (0-based) is the file ``pattern % (k + 1)``.

    Args:
        frames_dir: the video's folder.
        pattern: printf-style file name of frame ``n`` (1-based), e.g. ``"%05d.jpg"``.
        num_frames: frames of the video (the ground truth's ``nframes``).
    """

    def __init__(self, frames_dir: str, pattern: str, num_frames: int):
        self.frames_dir = str(frames_dir)
        self.pattern = pattern
        self.num_frames = int(num_frames)
        if not os.path.isdir(self.frames_dir):
            raise FileNotFoundError(f"frames folder not found: {self.frames_dir}")

    def frame_path(self, index: int) -> str:
        return os.path.join(self.frames_dir, self.pattern % (int(index) + 1))

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        cache = {}
        out = []
        for i in np.clip(np.asarray(list(indices), np.int64), 0, self.num_frames - 1):
            i = int(i)
            if i not in cache:
                path = self.frame_path(i)
                img = cv2.imread(path, cv2.IMREAD_COLOR)
                if img is None:
                    raise FileNotFoundError(f"cannot read frame {path} (missing or corrupt)")
                cache[i] = img[..., ::-1]
            out.append(cache[i])
        if len({f.shape for f in out}) > 1:
            raise ValueError(f"frames of {self.frames_dir} differ in size: {sorted({f.shape for f in out})}")
        return np.ascontiguousarray(np.stack(out))
