"""Where the pixels of a clip come from: extracted JPEG frames (AVA's names or an ACT dataset's pattern), the raw
video file, or VMAD's per-second clips.

Frame numbering follows :mod:`vmae_det.formats.ava` (keyframe second ``s`` is frame ``(s - 900) * 30``).
:func:`clip_indices` is the one clip-index rule (the mapper's and the demo's).
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import cv2
import numpy as np

from ...constants import AVA_FPS, AVA_START_SEC
from ...formats.ava import frame_file_name, keyframe_index
from ...formats.vmad_layout import VMAD_FPS
from ..video_io import VideoDecodeError, open_video

__all__ = [
    "clip_indices",
    "ClipSource",
    "FramesClipSource",
    "PatternFramesClipSource",
    "VideoClipSource",
    "SecondClipsSource",
    "clip_source_for",
    "keyframe_center",
]

logger = logging.getLogger(__name__)


def clip_indices(center: int, num_frames: int, sampling_rate: int, video_length: int, offset: int = 0) -> np.ndarray:
    """Indices of a ``num_frames``-frame clip at stride ``sampling_rate`` centred on ``center + offset``, clamped
    to the video.

    ``offset=0`` is SlowFast's ``get_sequence``; VMAD's ``TemporalCrop`` is ``offset=(sampling_rate - 1) // 2``.
    """
    if num_frames < 1 or sampling_rate < 1:
        raise ValueError(f"num_frames and sampling_rate must be >= 1, got {num_frames}, {sampling_rate}")
    if video_length < 1:
        raise ValueError(f"video_length must be >= 1, got {video_length}")
    idx = center + int(offset) + (np.arange(num_frames) - num_frames // 2) * sampling_rate
    return np.clip(idx, 0, video_length - 1)


class ClipSource:
    """Random access to one video's frames: ``num_frames``, ``get_frames(indices)`` and the frame of a keyframe."""

    num_frames: int

    def keyframe_frame(self, timestamp: int, fps: float = AVA_FPS, start_sec: int = AVA_START_SEC) -> int:
        """0-based index of keyframe second ``timestamp`` among this source's frames."""
        return keyframe_index(timestamp, fps, start_sec)

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


class _ImageFilesSource(ClipSource):
    """Frames stored one image file each, named by :meth:`frame_path`."""

    frames_dir: str

    def frame_path(self, index: int) -> str:
        raise NotImplementedError

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


class FramesClipSource(_ImageFilesSource):
    """Extracted frames ``<frames_dir>/<video_id>_<nnnnnn>.jpg`` (1-based, contiguous)."""

    def __init__(self, frames_dir: Union[str, Path], video_id: str):
        self.frames_dir = str(frames_dir)
        self.video_id = video_id
        self.num_frames = _count_frames(self.frames_dir, video_id)

    def frame_path(self, index: int) -> str:
        return os.path.join(self.frames_dir, frame_file_name(self.video_id, index))


class PatternFramesClipSource(_ImageFilesSource):
    """The ACT datasets' frame folders: index ``k`` is the file ``pattern % (k + 1)`` (UCF101-24's
    ``rgb-images/<class>/<video>/%05d.jpg``, JHMDB's ``Frames/<class>/<video>/%05d.png``).

    Args:
        frames_dir: the video's folder.
        pattern: printf-style file name of frame ``n`` (1-based), e.g. ``"%05d.jpg"``.
        num_frames: frames of the video (the ground truth's ``nframes``).
    """

    def __init__(self, frames_dir: Union[str, Path], pattern: str, num_frames: int):
        self.frames_dir = str(frames_dir)
        self.pattern = pattern
        self.num_frames = int(num_frames)
        if not os.path.isdir(self.frames_dir):
            raise FileNotFoundError(f"frames folder not found: {self.frames_dir}")

    def frame_path(self, index: int) -> str:
        return os.path.join(self.frames_dir, self.pattern % (int(index) + 1))

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        return super().get_frames(np.clip(np.asarray(list(indices), np.int64), 0, self.num_frames - 1))


class VideoClipSource(ClipSource):
    """A raw video file decoded with :func:`vmae_det.data.video_io.open_video`, seen on the annotations' frame grid.

    Grid frame ``k`` is the video frame shown nearest to ``k / fps`` s, as ``ffmpeg -r 30`` (the extracted-frames
    route) would put it: a 29.97 fps file taken frame for frame would drift 0.9 s by the end of a 15-minute crop.
    ``fps=None``: the file's own frames, frame ``k`` is the ``k``-th decoded one (ACT-format frame numbers count
    them, whatever the timestamps). Open it for one clip and :meth:`close` it after, so no decoder state lives on in
    dataloader workers.
    """

    def __init__(self, path: Union[str, Path], fps: Optional[float] = AVA_FPS, backend: str = "auto"):
        self.path = str(path)
        self.backend = backend
        self._reader = open_video(self.path, backend=backend)
        try:
            self._grid_fps = float(fps) if fps else self._reader.fps
            if fps:
                self._map, self.num_frames, how = _grid_mapping(self._reader, self._grid_fps)
            else:
                self._map, self.num_frames, how = None, self._reader.num_frames, ""
        except Exception:
            self.close()
            raise
        if how and self.path not in _REPORTED:
            _REPORTED.add(self.path)
            logger.info(f"{self.path}: {how}; read on the {self._grid_fps:g} fps annotation grid by timestamp")

    @property
    def video_num_frames(self) -> int:
        """Frames in the file (``num_frames`` counts grid frames)."""
        return self._reader.num_frames

    def video_indices(self, indices: Sequence[int]) -> np.ndarray:
        """The file's frame index for each grid frame index (clamped to the grid)."""
        k = np.clip(np.asarray(list(indices), dtype=np.int64).reshape(-1), 0, self.num_frames - 1)
        return k if self._map is None else self._map(k)

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        return self._reader.get_frames(self.video_indices(indices))

    def close(self) -> None:
        self._reader.close()


_REPORTED: set = set()


def _grid_mapping(reader, grid_fps: float):
    """``(map grid index -> file index or None for identity, grid frame count, log line or "")``."""
    n, fps = reader.num_frames, float(reader.fps or 0.0)
    if grid_fps <= 0:
        raise VideoDecodeError(reader.path, "the annotation frame rate must be > 0")
    if fps <= 0:
        raise VideoDecodeError(
            reader.path,
            f"the container gives no frame rate, so the {grid_fps:g} fps annotation grid cannot be "
            f"placed; re-encode it at {grid_fps:g} fps (ffmpeg -i IN -r {grid_fps:g} -c:v libx264 OUT.mp4, see "
            "datasets/README.md)",
        )
    times = np.asarray(reader.frame_times, dtype=np.float64)[:n]
    period = 1.0 / fps
    constant = len(times) == n and bool(np.all(np.abs(times - np.arange(n) * period) < 0.25 * period))
    if constant:
        if abs(fps - grid_fps) <= 1e-6 * grid_fps:
            return None, n, ""
        ratio = fps / grid_fps
        count = int(np.ceil((n - 0.5) / ratio))
        return (lambda k: np.floor(k * ratio + 0.5).astype(np.int64)), count, f"{fps:.3f} fps"
    # Variable frame rate: the frame whose time is nearest (ties: the earlier one).
    count = int(np.floor(times[-1] * grid_fps + 0.5)) + 1  # grid times up to the last frame's

    def nearest(k: np.ndarray) -> np.ndarray:
        t = k / grid_fps
        later = np.clip(np.searchsorted(times, t), 0, n - 1)
        earlier = np.maximum(later - 1, 0)
        return np.where(np.abs(times[earlier] - t) <= np.abs(times[later] - t), earlier, later).astype(np.int64)

    return nearest, count, f"variable frame rate (average {fps:.3f} fps)"


class SecondClipsSource(ClipSource):
    """VMAD's one-second clips ``<clips_dir>/<second>.mp4`` around one keyframe, joined as VMAD's
    ``AVAVideoDataset._decode_video_data`` joins them; frame ``m`` of the result is the keyframe.

    Args:
        clips_dir: the movie's folder of per-second clips.
        timestamp: the keyframe second.
        span: frames the clip needs around the keyframe (VMAD: 16 frames x stride 4 = 64).
    """

    def __init__(self, clips_dir: Union[str, Path], timestamp: int, span: int, backend: str = "auto"):
        self.clips_dir = Path(clips_dir)
        right = self._collect(int(timestamp), +1, span // 2, backend)
        left = self._collect(int(timestamp) - 1, -1, span - span // 2, backend)
        m = min(len(left), len(right))
        self._frames = left[len(left) - m :] + right[:m]
        self._keyframe = m
        self.num_frames = len(self._frames)

    def _collect(self, second: int, step: int, need: int, backend: str) -> list:
        frames: list = []
        while len(frames) < max(need, 1):
            path = self.clips_dir / f"{second}.mp4"
            if not path.is_file():
                raise FileNotFoundError(
                    f"one-second clip not found: {path} (VMAD's layout needs the clips on both sides of a keyframe)"
                )
            with open_video(str(path), backend=backend) as reader:
                got = list(reader.get_frames(range(reader.num_frames)))
            frames = frames + got if step > 0 else got + frames
            second += step
        return frames

    def keyframe_frame(self, timestamp: int, fps: float = VMAD_FPS, start_sec: int = AVA_START_SEC) -> int:
        return self._keyframe

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        idx = np.clip(np.asarray(list(indices), np.int64), 0, self.num_frames - 1)
        return np.ascontiguousarray(np.stack([self._frames[i] for i in idx]))


def keyframe_center(dataset_dict: Mapping, source: ClipSource) -> int:
    """The frame of ``source`` a dict's clip is centred on: an ACT dict's ``frame_index``, else its keyframe
    second's frame (``fps``, ``start_sec``: an AVA movie's 900 or a Kinetics clip's first second)."""
    if "frame_index" in dataset_dict:  # ACT-format datasets: every annotated frame is a keyframe
        return int(dataset_dict["frame_index"])
    ts = dataset_dict["timestamp"]
    ts = float(ts) if isinstance(ts, float) else int(ts)  # AVA-Kinetics: Kinetics keyframes at x.xxxxxx s
    return source.keyframe_frame(ts, dataset_dict.get("fps", AVA_FPS), dataset_dict.get("start_sec", AVA_START_SEC))


def clip_source_for(dataset_dict: Mapping, backend: str = "auto", span: int = 64) -> ClipSource:
    """The clip source a dataset dict points at: ``clips_dir``, ``frames_dir`` (+ ``frame_pattern``) or
    ``video_path``."""
    if dataset_dict.get("clips_dir"):
        return SecondClipsSource(dataset_dict["clips_dir"], dataset_dict["timestamp"], span, backend=backend)
    if dataset_dict.get("frame_pattern"):
        return PatternFramesClipSource(
            dataset_dict["frames_dir"], dataset_dict["frame_pattern"], dataset_dict["nframes"]
        )
    if dataset_dict.get("frames_dir"):
        return FramesClipSource(dataset_dict["frames_dir"], dataset_dict["video_id"])
    if dataset_dict.get("video_path"):
        # ACT-format frame numbers count the file's frames: read it frame for frame.
        fps = None if "frame_index" in dataset_dict else dataset_dict.get("fps", AVA_FPS)
        return VideoClipSource(dataset_dict["video_path"], fps=fps, backend=backend)
    raise KeyError(
        f"dataset dict for {dataset_dict.get('video_id')!r} has none of 'clips_dir', 'frames_dir', 'video_path'"
    )
