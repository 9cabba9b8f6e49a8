"""The user's videos: probe them, and convert each to a 30 fps H.264 mp4 (and optionally JPEG frames).

Source frames are timed by :class:`vmae_det.data.video_io.FrameClock`; odd sizes are padded to even ones by
:class:`vmae_det.formats.video_writer.VideoWriter` (H.264 4:2:0 needs them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional, Tuple

import numpy as np

from ...constants import AVA_FPS
from ...formats.atomic import atomic_save, commit_file, temp_path_for
from ...formats.ava import frame_file_name
from ...formats.video_writer import VideoWriter
from ..video_io import FrameClock
from .annotations import CustomDatasetError

__all__ = ["SourceVideo", "convert_video", "probe_video", "resample_to_fps"]

logger = logging.getLogger(__name__)

#: libx264 settings of the written videos: near-lossless, and one keyframe a second for fast random access.
H264_CRF, H264_PRESET, H264_OPTIONS = 18, "veryfast", {"g": str(AVA_FPS)}


@dataclass
class SourceVideo:
    """A user's video as its container describes it."""

    path: Path
    width: int
    height: int
    fps: float  # average frame rate (0 when unknown)
    duration: Optional[float]  # seconds, None when unknown

    @property
    def padded_size(self) -> Tuple[int, int]:
        """``(width, height)`` of the written video: padded to even sizes."""
        return self.width + self.width % 2, self.height + self.height % 2


def probe_video(path: Path) -> SourceVideo:
    """Size, average fps and duration of the first video stream of ``path`` (PyAV)."""
    import av

    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise CustomDatasetError(path, None, "no video stream")
            s = c.streams.video[0]
            w, h = s.codec_context.width, s.codec_context.height
            fps = float(s.average_rate) if s.average_rate else 0.0
            if s.duration is not None and s.time_base is not None:
                duration = float(s.duration * s.time_base)
            elif c.duration is not None:
                duration = c.duration / av.time_base
            else:
                duration = None
    except CustomDatasetError:
        raise
    except Exception as e:
        raise CustomDatasetError(path, None, f"PyAV cannot open the video: {e}") from e
    if not w or not h:
        raise CustomDatasetError(path, None, "video stream without a frame size")
    return SourceVideo(Path(path), w, h, fps, duration)


def resample_to_fps(
    frames: Iterator[Tuple[Fraction, object]], fps: int = AVA_FPS, last_duration: Optional[Fraction] = None
) -> Iterator[Tuple[int, object]]:
    """Nearest-frame resampling of a time-ordered ``(time, frame)`` stream to ``fps``; yields ``(i, frame)``.

    Output frame ``i`` is the input frame nearest to ``i / fps`` (ties to the earlier one); the last input frame
    lasts ``last_duration`` (default: the previous gap, or ``1 / fps``). Non-increasing times are dropped.
    """
    i = 0
    prev_t, prev = None, None
    t0 = None
    gap = None
    for t, frame in frames:
        if t0 is None:
            t0 = t
        t = t - t0
        if prev_t is not None:
            if t <= prev_t:
                continue
            gap = t - prev_t
            mid = (prev_t + t) / 2
            while Fraction(i, fps) <= mid:
                yield i, prev
                i += 1
        prev_t, prev = t, frame
    if prev is None:
        return
    end = prev_t + (last_duration if last_duration else gap if gap else Fraction(1, fps))
    while Fraction(i, fps) < end:
        yield i, prev
        i += 1


def _timed_frames(path: Path):
    """``(time since the first frame, PyAV frame)`` of every decoded frame, in display order."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        clock = FrameClock(c, s, fallback_rate=AVA_FPS)
        for _, t, fr in clock.times(c.decode(s)):
            yield t, fr


def convert_video(src: SourceVideo, video_id: str, out_video: Path, frames_dir: Optional[Path], pbar=None) -> int:
    """Decode ``src``, resample to 30 fps and write ``out_video`` (and JPEG frames to ``frames_dir``) atomically.
    Returns the number of frames written."""
    size = (src.height, src.width)
    tmp = temp_path_for(out_video)  # hidden, same folder, .mp4 kept (the encoder picks the format by it)
    n = 0
    try:
        with VideoWriter(
            str(tmp), AVA_FPS, src.width, src.height, crf=H264_CRF, preset=H264_PRESET, options=dict(H264_OPTIONS)
        ) as writer:
            cache_fr, cache, bgr = None, None, None  # hold the frame: an id() could be reused once it is freed
            for i, fr in resample_to_fps(_timed_frames(src.path)):
                if fr is not cache_fr:  # convert each source frame once, however often it repeats
                    img = fr.to_ndarray(format="rgb24")
                    if img.shape[:2] != size:
                        raise CustomDatasetError(
                            src.path,
                            None,
                            "frame size changes mid-stream "
                            f"({img.shape[1]}x{img.shape[0]} after {src.width}x{src.height})",
                        )
                    cache_fr, cache, bgr = fr, img, None
                writer.write(cache)
                if frames_dir is not None:
                    if bgr is None:
                        bgr = _padded_bgr(cache, src.padded_size)
                    _write_jpeg(frames_dir / frame_file_name(video_id, i), bgr)
                n = i + 1
                if pbar is not None:
                    pbar.update(1)
    except (CustomDatasetError, KeyboardInterrupt):
        tmp.unlink(missing_ok=True)
        raise
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise CustomDatasetError(src.path, None, f"cannot convert the video: {e}") from e
    if n == 0:
        tmp.unlink(missing_ok=True)
        raise CustomDatasetError(src.path, None, "no decodable frame")
    commit_file(tmp, out_video)
    return n


def _write_jpeg(path: Path, bgr) -> None:
    """One extracted frame, whole or absent (temporary name, renamed; no fsync per frame)."""
    import cv2

    def write(tmp: str) -> None:
        if not cv2.imwrite(tmp, bgr, [cv2.IMWRITE_JPEG_QUALITY, 95]):
            raise OSError(f"cannot write {path}")

    atomic_save(path, write, fsync=False)


def _padded_bgr(rgb: np.ndarray, padded_size: Tuple[int, int]) -> np.ndarray:
    """The BGR picture of a frame, padded by edge pixels to the written video's size (as the video is)."""
    w, h = padded_size
    pad_h, pad_w = h - rgb.shape[0], w - rgb.shape[1]
    if pad_h or pad_w:
        rgb = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return np.ascontiguousarray(rgb[..., ::-1])
