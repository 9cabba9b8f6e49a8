"""Sequential video decoding and H.264 writing for the streaming demo.

The demo must run on hour-long videos in bounded memory, so decoding is strictly sequential
(PyAV, frames in presentation order, one at a time) and writing goes straight to the encoder.
Frame counts in container metadata are unreliable (see /work/shared/video-io-facts.md), so the
reader only *estimates* them for the progress bar; the real count is what was decoded.
"""
from __future__ import annotations

import logging
import os
from fractions import Fraction
from typing import Iterator, Optional, Tuple

import numpy as np

from vmae_det.data.video_io import VideoDecodeError

__all__ = ["VideoDecodeError", "VideoStreamReader", "VideoStreamWriter"]

logger = logging.getLogger(__name__)


class VideoStreamReader:
    """Decode a video file frame by frame (RGB uint8 ``[H, W, 3]``) with PyAV.

    Args:
        path: video file.

    Attributes:
        fps: average frame rate of the first video stream (frames per second).
        width, height: frame size in pixels.
        estimated_num_frames: the container's frame count (or duration × fps), ``None`` when
            unknown. Only for progress bars: the decoded count may differ.
    """

    def __init__(self, path: str) -> None:
        import av

        self.path = str(path)
        if not os.path.isfile(self.path):
            raise VideoDecodeError(self.path, "no such video file")
        try:
            self._container = av.open(self.path)
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
            raise VideoDecodeError(self.path, f"cannot open as a video ({e})") from e
        if not self._container.streams.video:
            self._container.close()
            raise VideoDecodeError(self.path, "the file has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"  # frame-level threading in FFmpeg; order is preserved
        self._stream = stream
        rate = stream.average_rate or stream.guessed_rate
        if not rate or float(rate) <= 0:
            self._container.close()
            raise VideoDecodeError(self.path, "the video stream has no frame rate")
        self.fps = float(rate)
        self.width = int(stream.codec_context.width)
        self.height = int(stream.codec_context.height)
        self.estimated_num_frames = self._estimate_frames(stream)

    def _estimate_frames(self, stream) -> Optional[int]:
        if stream.frames:
            return int(stream.frames)
        if stream.duration is not None and stream.time_base is not None:
            return int(round(float(stream.duration * stream.time_base) * self.fps))
        if self._container.duration:
            return int(round(self._container.duration / 1e6 * self.fps))
        return None

    def __iter__(self) -> Iterator[Tuple[int, np.ndarray]]:
        """Yield ``(frame_index, frame_rgb)`` in presentation order, then close the file."""
        import av

        index = 0
        try:
            for frame in self._container.decode(self._stream):
                yield index, frame.to_ndarray(format="rgb24")
                index += 1
        except av.error.FFmpegError as e:
            if index == 0:
                raise VideoDecodeError(self.path, f"cannot decode any frame ({e})") from e
            # A damaged tail is common in real recordings: keep what decoded, say so.
            logger.warning("%s: decoding stopped after %d frames: %s", self.path, index, e)
        finally:
            self.close()

    def close(self) -> None:
        self._container.close()


def _even(x: int) -> int:
    return x + (x % 2)


class VideoStreamWriter:
    """Write RGB frames to an mp4: H.264 (libx264, yuv420p) via PyAV, else OpenCV 'mp4v'.

    H.264 is what browsers play; ``mp4v`` is the fallback when this FFmpeg has no libx264.
    yuv420p needs even sizes, so odd frames are padded by one pixel (edge replicated).

    Args:
        path: output ``.mp4`` file.
        fps: frame rate.
        width, height: size of the frames that will be written.
        crf: libx264 constant rate factor (lower is better quality).
    """

    def __init__(self, path: str, fps: float, width: int, height: int, crf: int = 23) -> None:
        import av

        self.path = str(path)
        self.width, self.height = int(width), int(height)
        self.codec = "libx264" if "libx264" in av.codecs_available else "mp4v"
        if self.codec == "libx264":
            self._container = av.open(self.path, mode="w")
            rate = Fraction(fps).limit_denominator(1001)
            stream = self._container.add_stream("libx264", rate=rate)
            stream.width, stream.height = _even(self.width), _even(self.height)
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf), "preset": "veryfast"}
            self._stream = stream
        else:
            import cv2

            logger.warning("libx264 is unavailable in PyAV's FFmpeg: writing mp4v (not browser-playable)")
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._cv_writer = cv2.VideoWriter(self.path, fourcc, fps, (self.width, self.height))
            if not self._cv_writer.isOpened():
                raise OSError(f"{self.path}: OpenCV cannot open an mp4v writer")
        self.num_frames = 0

    def write(self, frame_rgb: np.ndarray) -> None:
        """Append one RGB uint8 ``[H, W, 3]`` frame of the size given at construction."""
        if frame_rgb.shape[:2] != (self.height, self.width):
            raise ValueError(
                f"{self.path}: frame size {frame_rgb.shape[:2]} != writer size {(self.height, self.width)}"
            )
        if self.codec == "libx264":
            import av

            pad_h, pad_w = _even(self.height) - self.height, _even(self.width) - self.width
            if pad_h or pad_w:
                frame_rgb = np.pad(frame_rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_rgb), format="rgb24")
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        else:
            import cv2

            self._cv_writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
        self.num_frames += 1

    def close(self) -> None:
        """Flush the encoder and close the file (idempotent)."""
        if self.codec == "libx264":
            if self._container is not None:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
                self._container.close()
                self._container = None
        elif self._cv_writer is not None:
            self._cv_writer.release()
            self._cv_writer = None

    def __enter__(self) -> "VideoStreamWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
