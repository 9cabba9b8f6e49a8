"""Where the pixels of an AVA clip come from: extracted JPEG frames or the raw video file.

AVA's convention (SlowFast, pytorchvideo): the 15-minute crops start at second 900 of the movie and
are decoded at 30 fps, so keyframe second ``s`` is the 0-based frame ``(s - 900) * 30``; extracted
frames are named with ffmpeg's 1-based ``%06d``: ``frames/<vid>/<vid>_<(s-900)*30+1>.jpg``.

pytorchvideo's ``AvaLabeledVideoFramePaths`` encodes the same convention (we take its constants),
but its dataset is an iterable over SlowFast frame lists with its own box files: it has no
exclusions, no scored proposals with train/test thresholds and no raw-video path, and detectron2
wants map-style dicts. So we only share the constants and index arithmetic here.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Mapping, Sequence, Union

import cv2
import numpy as np
from pytorchvideo.data.ava import AvaLabeledVideoFramePaths

from ..video_io import VideoDecodeError, open_video

__all__ = [
    "AVA_FPS",
    "AVA_START_SEC",
    "keyframe_index",
    "clip_indices",
    "ClipSource",
    "FramesClipSource",
    "VideoClipSource",
    "clip_source_for",
]

AVA_FPS: int = AvaLabeledVideoFramePaths.FPS  # 30
AVA_START_SEC: int = AvaLabeledVideoFramePaths.AVA_VIDEO_START_SEC  # 900


def keyframe_index(timestamp: int, fps: float = AVA_FPS, start_sec: int = AVA_START_SEC) -> int:
    """0-based frame index of keyframe second ``timestamp`` in a crop starting at ``start_sec``."""
    return int(round((timestamp - start_sec) * fps))


def clip_indices(center: int, num_frames: int, sampling_rate: int, video_length: int, offset: int = 0) -> np.ndarray:
    """Indices of a ``num_frames``-frame clip at stride ``sampling_rate`` centred on ``center``.

    ``center + offset + (k - num_frames // 2) * sampling_rate`` for ``k = 0 .. num_frames-1``, clamped
    to ``[0, video_length - 1]`` (the clip repeats the first/last frame at the video ends). With
    ``offset=0`` this is SlowFast's ``get_sequence``; VMAD's ``TemporalCrop`` of its 64-frame window
    around the keyframe is ``offset=(sampling_rate - 1) // 2`` (1 at stride 4).
    """
    if num_frames < 1 or sampling_rate < 1:
        raise ValueError(f"num_frames and sampling_rate must be >= 1, got {num_frames}, {sampling_rate}")
    if video_length < 1:
        raise ValueError(f"video_length must be >= 1, got {video_length}")
    idx = center + int(offset) + (np.arange(num_frames) - num_frames // 2) * sampling_rate
    return np.clip(idx, 0, video_length - 1)


class ClipSource:
    """Random access to one video's frames: ``num_frames`` and ``get_frames(indices)``."""

    num_frames: int

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """RGB ``uint8 [T, H, W, 3]`` frames at ``indices``."""
        raise NotImplementedError

    def close(self) -> None:
        """Release open files (nothing to do for JPEG folders)."""

    def __enter__(self) -> "ClipSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@functools.lru_cache(maxsize=1024)
def _count_frames(frames_dir: str, video_id: str) -> int:
    """Number of frames in an extracted-frames folder (cached: a worker asks for every keyframe)."""
    prefix = f"{video_id}_"
    try:
        names = os.listdir(frames_dir)
    except FileNotFoundError:
        raise FileNotFoundError(f"frames folder not found: {frames_dir}") from None
    n = sum(1 for f in names if f.startswith(prefix) and f.endswith(".jpg"))
    if n == 0:
        raise FileNotFoundError(f"no '{prefix}NNNNNN.jpg' frames in {frames_dir}")
    return n


class FramesClipSource(ClipSource):
    """Extracted frames ``<frames_dir>/<video_id>_<nnnnnn>.jpg`` (1-based, contiguous)."""

    def __init__(self, frames_dir: Union[str, Path], video_id: str):
        self.frames_dir = str(frames_dir)
        self.video_id = video_id
        self.num_frames = _count_frames(self.frames_dir, video_id)

    def frame_path(self, index: int) -> str:
        return os.path.join(self.frames_dir, f"{self.video_id}_{index + 1:06d}.jpg")

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        cache = {}
        out = []
        for i in indices:
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


class VideoClipSource(ClipSource):
    """A raw video file decoded with :func:`vmae_det.data.video_io.open_video`.

    Open it for one clip and :meth:`close` it after (the mapper does), so no decoder state
    lives on in dataloader workers.
    ``fps`` must be the rate the annotations assume; AVA's crops are 30 fps. A file whose container
    reports another rate would need re-encoding (see datasets/README.md), so we refuse it rather
    than return frames from the wrong time.
    """

    def __init__(self, path: Union[str, Path], fps: float = AVA_FPS, backend: str = "auto"):
        self.path = str(path)
        self.backend = backend
        self._reader = open_video(self.path, backend=backend)
        self.num_frames = self._reader.num_frames
        if fps and self._reader.fps and abs(self._reader.fps - fps) > 0.5:
            actual = self._reader.fps
            self.close()
            raise VideoDecodeError(self.path, f"video is {actual:.2f} fps but annotations assume {fps} fps")

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        return self._reader.get_frames(indices)

    def close(self) -> None:
        self._reader.close()


def clip_source_for(dataset_dict: Mapping, backend: str = "auto") -> ClipSource:
    """The clip source a dataset dict points at: ``frames_dir`` (preferred) or ``video_path``."""
    if dataset_dict.get("frames_dir"):
        return FramesClipSource(dataset_dict["frames_dir"], dataset_dict["video_id"])
    if dataset_dict.get("video_path"):
        return VideoClipSource(dataset_dict["video_path"], fps=dataset_dict.get("fps", AVA_FPS), backend=backend)
    raise KeyError(
        f"dataset dict for {dataset_dict.get('video_id')!r} has neither 'frames_dir' nor 'video_path'"
    )
