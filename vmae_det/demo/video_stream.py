"""Sequential video decoding on a presentation-time grid for the streaming demo (writing: the project's
one writer, :class:`vmae_det.formats.video_writer.VideoWriter`).

Decoding is strictly sequential (PyAV, one frame at a time) so hour-long videos run in bounded memory.

**Time axis.** Container frame counts and average rates are unreliable and VFR files have no frame period, so
every decoded frame gets its time by the data layer's one rule, :class:`vmae_det.data.video_io.FrameClock`
(the training reader's too): its presentation timestamp, or on AVI the ``i``-th smallest time for the
``i``-th decoded picture. The reader yields a constant-rate grid at the stream's nominal rate
(:func:`~vmae_det.data.video_io.stream_rate`): grid frame ``i`` (``i / rate`` s after the first frame) is the
decoded frame nearest to that time (ties to the earlier one), the rule ``vmae_det.data.custom`` resamples
with. A constant-rate file maps one to one (grid frame ``i`` is the training reader's frame ``i``); a sparse
or VFR file gets repeated or dropped grid frames, counted in :attr:`VideoStreamReader.stats`. So an output
written at ``rate`` lasts as long as the input.

**Rotation.** A display matrix (phone videos) is applied to every frame, as players do.

**Damaged files.** An undecodable packet is skipped (counted, logged); a stream ending well before its
header's duration is a damaged tail (warning + ``stats``); a file with no decodable frame is a
:class:`VideoStreamError`.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from fractions import Fraction
from typing import Dict, Iterator, Optional, Tuple

import numpy as np

from vmae_det.data.video_io import FrameClock, VideoDecodeError, stream_rate
from vmae_det.formats.video_writer import SMALL_FRAME_PIXELS

__all__ = [
    "VideoDecodeError",
    "VideoStreamError",
    "VideoStreamReader",
    "display_rotation",
]

logger = logging.getLogger(__name__)

#: A stream ending this much (and at least 3 frame periods) before its header's duration is a damaged tail.
DAMAGED_TAIL_MIN_SECONDS = 0.5


class VideoStreamError(VideoDecodeError, OSError):
    """An input video the demo cannot use; the message names the file (``cannot decode video '<path>': ...``).

    A :class:`~vmae_det.data.video_io.VideoDecodeError` that is also an ``OSError``, so command-line
    tools report it as a clear error (``vmae_det.cli.run_main``) rather than a traceback.
    """


#: Where a reader made with ``quiet=True`` logs: nowhere (the demo's second pass over a file would
#: otherwise repeat every warning of the first).
_quiet_logger = logging.getLogger(__name__ + ".quiet")
_quiet_logger.propagate = False
_quiet_logger.addHandler(logging.NullHandler())


def display_rotation(frame, log: logging.Logger = logger) -> Tuple[int, bool]:
    """``(quarter turns counter-clockwise, mirrored)`` a player applies to a decoded PyAV ``frame``.

    From the frame's display matrix (FFmpeg attaches the stream's one to every frame): PyAV's
    ``frame.rotation`` is the counter-clockwise angle; a negative determinant means a mirror.
    """
    degrees = float(getattr(frame, "rotation", 0) or 0)
    mirrored = False
    for side in getattr(frame, "side_data", ()) or ():
        if str(getattr(side, "type", "")).endswith("DISPLAYMATRIX"):
            m = np.frombuffer(bytes(side), dtype="<i4")
            if m.size >= 5 and float(m[0]) * float(m[4]) - float(m[1]) * float(m[3]) < 0:
                mirrored = True
    quarter = int(round(degrees / 90.0)) % 4
    if abs(degrees - 90.0 * round(degrees / 90.0)) > 1.0:
        log.warning("display rotation %.1f degrees is not a multiple of 90: using %d", degrees, quarter * 90)
    return quarter, mirrored


class VideoStreamReader:
    """Decode a video file on a constant-rate presentation-time grid (RGB uint8 ``[H, W, 3]``) with PyAV.

    Iterating yields ``(grid_index, frame_rgb)`` for grid indices ``0, 1, 2, ...`` (see the module
    docstring); repeated grid frames are the same array object. The first frame is decoded when the
    reader is opened, so a file without one fails here.

    Args:
        path: video file.
        quiet: log nothing (for a second pass over a file whose first pass reported its problems).

    Attributes:
        rate: the grid rate (the stream's nominal frame rate, :func:`~vmae_det.data.video_io.stream_rate`,
            ``Fraction``); ``fps``: the same as float.
        width, height: frame size in pixels, after the display rotation.
        rotation: counter-clockwise degrees applied to every frame (0, 90, 180, 270).
        estimated_num_frames: grid frames the header's duration implies, ``None`` when unknown. Only for
            progress bars: the decoded count may differ.
        header_seconds: the stream's duration according to the container, ``None`` when unknown.
        stats: counts filled while iterating: ``decoded`` frames, ``grid_frames``, ``repeated`` grid
            frames (gaps), ``dropped`` decoded frames (bursts, non-increasing timestamps),
            ``corrupt_packets_skipped``, ``decoded_seconds`` and ``damaged_tail_seconds`` (how much
            shorter than ``header_seconds`` the decodable stream is; 0 when it is not).
    """

    #: FFmpeg decoder threading (a live reader uses ``"SLICE"``: frame threads delay every frame).
    THREAD_TYPE = "AUTO"

    def __init__(self, path: str, quiet: bool = False) -> None:
        import av

        self.path = str(path)
        self._log = _quiet_logger if quiet else logger
        if not os.path.exists(self.path):
            raise VideoStreamError(self.path, "no such video file")
        if not os.path.isfile(self.path):
            raise VideoStreamError(self.path, "not a file")
        try:
            self._container = av.open(self.path)
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
            raise VideoStreamError(self.path, f"cannot open as a video ({e})") from e
        self._closed = False
        try:
            self._open_stream()
        except BaseException:
            self.close()
            raise

    def _open_stream(self) -> None:
        import av

        if not self._container.streams.video:
            raise VideoStreamError(self.path, "the file has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = self.THREAD_TYPE  # frame-level threading in FFmpeg; order is preserved
        self._stream = stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or not math.isfinite(float(rate)) or float(rate) <= 0:
            raise VideoStreamError(self.path, "the video stream has no frame rate")
        self.rate = stream_rate(stream)  # a constant-rate AVI's frames are at i / rate: one to one
        if self.rate is None:
            raise VideoStreamError(self.path, f"the video stream's frame rate {float(rate)} is unusable")
        self.fps = float(self.rate)
        if self.fps > 240:
            self._log.warning(
                "%s: nominal frame rate %.1f fps is unusually high; the demo's grid (and its "
                "output video) runs at that rate",
                self.path,
                self.fps,
            )
        self.header_seconds = self._header_seconds(stream)
        self.estimated_num_frames = int(round(self.header_seconds * self.fps)) if self.header_seconds else None
        self.stats: Dict[str, float] = {
            "decoded": 0,
            "grid_frames": 0,
            "repeated": 0,
            "dropped": 0,
            "corrupt_packets_skipped": 0,
            "decoded_seconds": 0.0,
            "damaged_tail_seconds": 0.0,
        }
        from av.video.reformatter import VideoReformatter

        self._reformatter = VideoReformatter()
        self._frame_clock = FrameClock(self._container, stream, rate=self.rate)
        self._frames = self._decoded_frames()
        try:
            self._first = next(self._frames)
        except StopIteration:
            raise VideoStreamError(self.path, "no frame could be decoded (zero frames or a damaged stream)") from None
        except av.error.FFmpegError as e:
            raise VideoStreamError(self.path, f"cannot decode any frame ({e})") from e
        first = self._first
        self.rotation_quarters, mirrored = display_rotation(first, self._log)
        self.rotation = 90 * self.rotation_quarters
        if mirrored:
            self._log.warning(
                "%s: the display matrix mirrors the picture; the demo applies its rotation only", self.path
            )
        if self.rotation:
            self._log.info("%s: display rotation %d degrees applied to every frame", self.path, self.rotation)
        h, w = int(first.height), int(first.width)
        if not h or not w:
            raise VideoStreamError(self.path, "the video stream has no frame size")
        self.height, self.width = (w, h) if self.rotation_quarters % 2 else (h, w)
        self._small = h * w <= SMALL_FRAME_PIXELS

    def _header_seconds(self, stream) -> Optional[float]:
        """The stream's duration by its header: frame count, else stream duration, else container's."""
        candidates = []
        if stream.frames:
            candidates.append(stream.frames / self.fps)
        if stream.duration is not None and stream.time_base is not None:
            candidates.append(float(stream.duration * stream.time_base))
        if candidates:
            return max(candidates)
        if self._container.duration:
            return self._container.duration / 1e6
        return None

    def _decoded_frames(self):
        """PyAV frames in presentation order; an undecodable packet is skipped, a demuxing error ends the stream."""
        import av

        try:
            for packet in self._container.demux(self._stream):
                try:
                    frames = packet.decode()  # the final empty packet drains the decoder
                except av.error.FFmpegError as e:
                    self.stats["corrupt_packets_skipped"] += 1
                    if self.stats["corrupt_packets_skipped"] <= 3:
                        self._log.warning("%s: skipped an undecodable packet (%s)", self.path, e)
                    continue
                for frame in frames:
                    yield frame
        except av.error.FFmpegError as e:
            if not hasattr(self, "_first"):
                raise
            self.stats["corrupt_packets_skipped"] += 1
            self._log.warning(
                "%s: demuxing stopped after %d frames (%s): damaged tail", self.path, self.stats["decoded"], e
            )

    def to_rgb(self, frame, index: int = -1) -> np.ndarray:
        """The RGB uint8 ``[H, W, 3]`` picture of a decoded PyAV ``frame`` (display rotation applied).

        ``frame.to_ndarray(format="rgb24")``; frames up to 640x480 (same pixels) through one swscale
        context kept for the whole stream, in one thread: PyAV otherwise builds a new, threaded context
        for every frame, which costs several times the conversion itself on small frames. (On large
        frames the kept context is the slower one: measured 5x more page faults at 4K.)
        """
        if self._small:
            img = self._reformatter.reformat(frame, format="rgb24", threads=1).to_ndarray()
        else:
            img = frame.to_ndarray(format="rgb24")
        if self.rotation_quarters:
            img = np.ascontiguousarray(np.rot90(img, self.rotation_quarters))
        if img.shape[:2] != (self.height, self.width):
            raise VideoStreamError(
                self.path,
                f"frame size changes mid-stream (decoded frame {index} is {img.shape[1]}x{img.shape[0]}, "
                f"the first {self.width}x{self.height}): not supported",
            )
        return img

    def _timed_frames(self) -> Iterator[Tuple[int, Fraction, object]]:
        """``(decoded index, time since the first frame, PyAV frame)`` per decoded frame, in the decoder's
        output (display) order, timed by the data layer's one rule (:class:`~vmae_det.data.video_io.FrameClock`)."""
        for k, t, frame in self._frame_clock.times(itertools.chain([self._first], self._frames)):
            self.stats["decoded"] = k + 1
            yield k, t, frame

    def _duration(self, frame) -> Optional[Fraction]:
        """How long ``frame`` lasts according to the file, ``None`` when it does not say."""
        tb = frame.time_base or self._stream.time_base
        return Fraction(frame.duration) * tb if (getattr(frame, "duration", None) and tb is not None) else None

    def __iter__(self) -> Iterator[Tuple[int, np.ndarray]]:
        """Yield ``(grid_index, frame_rgb)`` on the presentation-time grid, then close the file."""
        for i, img, _ in self.frames():
            yield i, img

    def frames(self) -> Iterator[Tuple[int, np.ndarray, object]]:
        """Yield ``(grid_index, frame_rgb, decoded)`` on the presentation-time grid, then close the file.

        ``decoded`` is the PyAV frame ``frame_rgb`` was converted from (:meth:`to_rgb` converts it
        again); a repeated grid frame yields the same objects as the grid frame before it.
        """
        rate, stats = self.rate, self.stats
        i = 0
        prev = prev_t = gap = None  # the decoded frame waiting for its grid slots
        prev_k, prev_img, prev_used = 0, None, False
        non_increasing = 0

        def emit():
            nonlocal prev_img, prev_used
            if prev_img is None:
                prev_img = self.to_rgb(prev, prev_k)
            elif prev_used:
                stats["repeated"] += 1
            prev_used = True
            return prev_img

        try:
            for k, t, frame in self._timed_frames():
                if prev is not None:
                    if t <= prev_t:
                        stats["dropped"] += 1
                        non_increasing += 1
                        if non_increasing == 1:
                            self._log.warning(
                                "%s: decoded frame %d has a timestamp (%.3f s) not after the previous "
                                "one: dropped (further ones are counted)",
                                self.path,
                                k,
                                float(t),
                            )
                        continue
                    gap = t - prev_t
                    # Grid frame i (at i / rate) takes the previous frame while i / rate <= the midpoint.
                    last = (prev_t + t) * rate / 2
                    last = last.numerator // last.denominator
                    while i <= last:
                        yield i, emit(), prev
                        i += 1
                    if not prev_used:
                        stats["dropped"] += 1  # another frame is nearer to every grid time it could take
                prev, prev_k, prev_t, prev_img, prev_used = frame, k, t, None, False
            if prev is None:
                return
            end = prev_t + (self._duration(prev) or gap or 1 / rate)
            stop = end * rate  # grid frames strictly before the end: i < end * rate
            stop = -((-stop.numerator) // stop.denominator)
            while i < stop:
                yield i, emit(), prev
                i += 1
            if not prev_used:
                stats["dropped"] += 1
            stats["grid_frames"] = i
            stats["decoded_seconds"] = round(float(end), 6)
            self._check_tail(float(end))
        finally:
            self.close()

    def _check_tail(self, decoded_seconds: float) -> None:
        header = self.header_seconds
        if not header:
            return
        missing = header - decoded_seconds
        if missing > max(DAMAGED_TAIL_MIN_SECONDS, 3.0 / self.fps):
            self.stats["damaged_tail_seconds"] = round(missing, 3)
            self._log.warning(
                "%s: damaged tail: the decodable stream ends at %.2f s but the header promises "
                "%.2f s (%.2f s missing); the results cover the decoded part only",
                self.path,
                decoded_seconds,
                header,
                missing,
            )

    def close(self) -> None:
        if not getattr(self, "_closed", True):
            self._closed = True
            self._container.close()
