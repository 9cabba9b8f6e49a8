"""The one video writer: RGB frames to an mp4, H.264 (libx264, yuv420p) via PyAV, else OpenCV 'mp4v'.

:mod:`vmae_det.synthetic.ava` asks for ``codec="mp4v"``: the tiny dataset's recorded numbers were made with it.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Dict, Optional

import numpy as np

__all__ = ["VideoWriter", "VideoWriteError", "MAX_H264_SIDE", "SMALL_FRAME_PIXELS", "h264_available"]

logger = logging.getLogger(__name__)

#: libx264 refuses frames with a side above this many pixels (measured: 16384 opens, 16386 does not).
MAX_H264_SIDE = 16384
#: Frames up to this many pixels are encoded by one thread: x264's frame threads cost more than they save.
SMALL_FRAME_PIXELS = 640 * 480
#: The codecs :class:`VideoWriter` can be asked for.
CODECS = ("auto", "libx264", "mp4v")


class VideoWriteError(OSError):
    """An output video cannot be encoded; the message names the output file and the frame size."""


def h264_available() -> bool:
    """Whether PyAV's FFmpeg has the libx264 encoder."""
    import av

    return "libx264" in av.codecs_available


def _even(x: int) -> int:
    return x + (x % 2)


class VideoWriter:
    """Write RGB frames to an mp4: H.264 (browser-playable) when PyAV has libx264, else OpenCV 'mp4v'.

    Odd sizes are padded by one edge pixel (yuv420p needs even ones). The encoder opens here, so a refused size
    fails before any frame is processed.

    Args:
        fps: frame rate (a ``Fraction`` keeps 30000/1001 exact).
        preset: libx264 speed preset; ``"ultrafast"`` because the demo's output is a preview and encoding is
            its largest cost per frame (docs/performance.md).
        options: further libx264 options, e.g. ``{"g": "30"}``.
        codec: ``"auto"`` (libx264, else mp4v with a warning), ``"libx264"`` or ``"mp4v"``.
    """

    def __init__(
        self,
        path: str,
        fps,
        width: int,
        height: int,
        crf: int = 23,
        preset: str = "ultrafast",
        options: Optional[Dict[str, str]] = None,
        codec: str = "auto",
    ) -> None:
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")
        self.path = str(path)
        self.width, self.height = int(width), int(height)
        if codec == "auto":
            self.codec = "libx264" if h264_available() else "mp4v"
        else:
            self.codec = codec
        self._container = None
        self._cv_writer = None
        size = f"{_even(self.width)}x{_even(self.height)}"
        if (
            self.width < 1
            or self.height < 1
            or (codec != "mp4v" and max(_even(self.width), _even(self.height)) > MAX_H264_SIDE)
        ):
            raise VideoWriteError(
                f"{self.path}: cannot encode {size} frames: H.264 (libx264) allows 1 to {MAX_H264_SIDE} pixels per side"
            )
        if self.codec == "libx264":
            import av

            rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
            try:
                self._container = av.open(self.path, mode="w", format="mp4")
                stream = self._container.add_stream("libx264", rate=rate)
                stream.width, stream.height = _even(self.width), _even(self.height)
                stream.pix_fmt = "yuv420p"
                threads = {"threads": "1"} if self.width * self.height <= SMALL_FRAME_PIXELS else {}
                stream.options = {"crf": str(crf), "preset": preset, **threads, **(options or {})}
                self._stream = stream
                stream.codec_context.open()
            except (av.error.FFmpegError, ValueError) as e:
                self.abort()
                raise VideoWriteError(
                    f"{self.path}: cannot open the H.264 encoder for {size} frames at {float(rate):g} fps ({e})"
                ) from e
        else:
            import cv2

            if codec == "auto":
                logger.warning("libx264 is unavailable in PyAV's FFmpeg: writing mp4v (not browser-playable)")
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._cv_writer = cv2.VideoWriter(self.path, fourcc, float(fps), (self.width, self.height))
            if not self._cv_writer.isOpened():
                self._cv_writer = None
                raise VideoWriteError(
                    f"{self.path}: OpenCV cannot open an mp4v writer for {self.width}x{self.height} frames"
                )
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
            # Wrapped, not copied: the encoder converts it to yuv420p before encode() returns.
            frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(frame_rgb), format="rgb24")
            frame.pts = self.num_frames
            try:
                for packet in self._stream.encode(frame):
                    self._container.mux(packet)
            except av.error.FFmpegError as e:
                raise VideoWriteError(f"{self.path}: encoding frame {self.num_frames} failed ({e})") from e
        else:
            import cv2

            self._cv_writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
        self.num_frames += 1

    def close(self) -> None:
        """Flush the encoder and close the file (idempotent)."""
        if self._container is not None:
            import av

            try:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
                self._container.close()
            except av.error.FFmpegError as e:
                self.abort()
                raise VideoWriteError(f"{self.path}: finishing the video failed ({e})") from e
            self._container = None
        if self._cv_writer is not None:
            self._cv_writer.release()
            self._cv_writer = None

    def abort(self) -> None:
        """Close without flushing, after an error (never raises; the caller removes the file)."""
        container, self._container = self._container, None
        if container is not None:
            try:
                container.close()
            except Exception as e:  # noqa: BLE001 - best effort while another error propagates
                logger.debug("%s: closing after an error: %s", self.path, e)
        writer, self._cv_writer = self._cv_writer, None
        if writer is not None:
            try:
                writer.release()
            except Exception as e:  # noqa: BLE001
                logger.debug("%s: releasing after an error: %s", self.path, e)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
