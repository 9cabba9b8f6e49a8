"""Video decoding: one small reader interface over decord (fast) and PyAV (fallback).

``open_video(path)`` returns a :class:`VideoReader` with the file's frame count, fps and size, and
``get_frames(indices)`` gives RGB ``uint8 [T, H, W, 3]`` frames. Everything that goes wrong with a
file (missing, empty, corrupt, no video stream, no decodable frame) raises :class:`VideoDecodeError`
whose message names the file and the reason, so datasets can count and skip it.

Container metadata is not trusted on its own: decoders disagree on frame counts of real files, so
the PyAV reader counts frames by demuxing the stream, and both readers clamp requested indices to
the frames they can actually decode (as SlowFast/VideoMAE clamp clip indices at the video ends).
Nothing is cached globally; a reader holds its open file until :meth:`VideoReader.close`.
"""
from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from typing import List, Optional, Sequence

import numpy as np

__all__ = ["VideoDecodeError", "VideoReader", "open_video", "BACKENDS"]

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "decord", "pyav")


class VideoDecodeError(RuntimeError):
    """A video file could not be opened or decoded. The message names the file and the reason."""

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot decode video '{self.path}': {reason}")


class VideoReader(ABC):
    """Random access to the frames of one video file.

    Attributes:
        path: the file.
        num_frames: number of frames the reader can deliver (indices ``0 .. num_frames - 1``).
        fps: average frame rate from the container.
        height, width: frame size in pixels.
    """

    backend: str = ""

    def __init__(self, path: str):
        self.path = str(path)

    @property
    @abstractmethod
    def num_frames(self) -> int: ...

    # Subclasses set these while opening the file.
    _fps: float
    _h: int
    _w: int

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def height(self) -> int:
        return self._h

    @property
    def width(self) -> int:
        return self._w

    @abstractmethod
    def _read(self, indices: List[int]) -> np.ndarray:
        """Decode sorted unique in-range ``indices``; returns ``uint8 [len, H, W, 3]``."""

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as RGB ``uint8 [T, H, W, 3]``.

        Indices outside ``[0, num_frames - 1]`` are clamped to the nearest decodable frame.
        """
        idx = np.asarray(list(indices), dtype=np.int64).reshape(-1)
        if idx.size == 0:
            return np.zeros((0, self.height, self.width, 3), dtype=np.uint8)
        idx = np.clip(idx, 0, self.num_frames - 1)
        unique, inverse = np.unique(idx, return_inverse=True)
        frames = self._read([int(i) for i in unique])
        return frames[inverse.reshape(-1)]

    def close(self) -> None:
        """Release the underlying file handle (the reader is unusable afterwards)."""

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(path={self.path!r}, num_frames={self.num_frames}, "
            f"fps={self.fps:.3f}, size={self.height}x{self.width})"
        )


class DecordReader(VideoReader):
    """Reader on decord (frame-accurate random access; builds its index when opened)."""

    backend = "decord"

    def __init__(self, path: str, num_threads: int = 1, fallback_to_pyav: bool = False):
        super().__init__(path)
        self._fallback_to_pyav = fallback_to_pyav
        self._pyav: Optional["PyAVReader"] = None
        try:
            import decord
        except ImportError as e:  # pragma: no cover - decord is a listed dependency
            raise VideoDecodeError(path, f"decord is not installed ({e})") from e
        try:
            self._vr = decord.VideoReader(self.path, ctx=decord.cpu(0), num_threads=num_threads)
            n = len(self._vr)
            if n <= 0:
                raise VideoDecodeError(path, "the video stream has no frames")
            # Decoding frame 0 both validates the file and gives the true frame size.
            first = self._vr[0].asnumpy()
        except VideoDecodeError:
            raise
        except Exception as e:  # decord raises bare RuntimeError/DECORDError on bad files
            raise VideoDecodeError(path, f"decord: {_short(e)}") from e
        self._n = n
        self._h, self._w = int(first.shape[0]), int(first.shape[1])
        self._fps = float(self._vr.get_avg_fps())

    @property
    def num_frames(self) -> int:
        # After a fallback PyAV's count (from the frames it can decode) is the reliable one.
        return self._n if self._pyav is None else min(self._n, self._pyav.num_frames)

    def _read(self, indices: List[int]) -> np.ndarray:
        if self._pyav is not None:
            return self._pyav.get_frames(indices)
        try:
            frames = self._vr.get_batch(indices).asnumpy()
        except Exception as e:
            error = VideoDecodeError(self.path, f"decord failed on frames {_span(indices)}: {_short(e)}")
            if not self._fallback_to_pyav:
                raise error from e
            # decord gives up on a damaged packet; PyAV skips it and decodes the rest.
            logger.info("%s; reading it with PyAV from now on", error)
            self._pyav = PyAVReader(self.path)
            return self._pyav.get_frames(indices)
        return np.ascontiguousarray(frames, dtype=np.uint8)

    def close(self) -> None:
        self._vr = None
        if self._pyav is not None:
            self._pyav.close()
            self._pyav = None


class PyAVReader(VideoReader):
    """Reader on PyAV (FFmpeg). Seeks to the keyframe before the first wanted frame, then decodes
    forward, placing frames by their presentation time; frames past the decodable end are clamped
    to the last decoded one."""

    backend = "pyav"

    def __init__(self, path: str, num_threads: int = 1):
        super().__init__(path)
        try:
            import av
        except ImportError as e:  # pragma: no cover - av is a listed dependency
            raise VideoDecodeError(path, f"PyAV is not installed ({e})") from e
        self._av = av
        try:
            self._container = av.open(self.path)
        except Exception as e:
            raise VideoDecodeError(path, f"PyAV: {_short(e)}") from e
        if not self._container.streams.video:
            self.close()
            raise VideoDecodeError(path, "the file has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_count = num_threads
        self._stream = stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self._fps = float(rate) if rate else 0.0
        self._h = int(stream.codec_context.height)
        self._w = int(stream.codec_context.width)
        self._start_pts = stream.start_time if stream.start_time is not None else 0
        self._n: Optional[int] = None
        if self.num_frames <= 0:  # counts packets, see below
            self.close()
            raise VideoDecodeError(path, "the video stream has no frames")
        # Decode frame 0 to validate the file (a readable header with an undecodable stream
        # must fail here, not later inside a data loader worker).
        self._read([0])

    @property
    def num_frames(self) -> int:
        if self._n is None:
            self._n = self._count_packets()
        return self._n

    def _count_packets(self) -> int:
        # The header's ``stream.frames`` can be missing or wrong; counting demuxed packets is
        # cheap (no decoding) and is exact for the one-packet-per-frame video codecs.
        # _read() shrinks the count further if the tail turns out to be undecodable.
        count = 0
        try:
            self._container.seek(0)
            for packet in self._container.demux(self._stream):
                if packet.size > 0:
                    count += 1
        except self._av.error.FFmpegError as e:
            logger.warning("'%s': demuxing stopped after %d packets: %s", self.path, count, _short(e))
        except Exception as e:
            raise VideoDecodeError(self.path, f"PyAV demux: {_short(e)}") from e
        return count

    def _index_of(self, frame, sequential: int) -> int:
        """Frame index from the presentation time (sequential count when pts is unknown)."""
        if frame.pts is None or not self._fps:
            return sequential
        seconds = float((frame.pts - self._start_pts) * self._stream.time_base)
        return int(round(seconds * self._fps))

    def _frames_from(self, first: int):
        """Yield ``(index, frame)`` from the keyframe at or before ``first`` to the end.

        Goes packet by packet so that a corrupt packet (a damaged or cut-off file) is skipped and
        logged instead of ending the stream; the frames it held are filled in by :meth:`_read`.
        """
        if first > 0 and self._fps:
            target = self._start_pts + int(first / self._fps / self._stream.time_base)
            self._container.seek(max(target, self._start_pts), stream=self._stream, backward=True)
            know_position = False  # after a seek the index of the next frame is only known from pts
        else:
            self._container.seek(0)
            know_position = True
        seq = 0
        for packet in self._container.demux(self._stream):
            try:
                frames = packet.decode()  # the flush packet at the end (size 0) drains the decoder
            except self._av.error.FFmpegError as e:
                logger.warning("'%s': skipping an undecodable packet: %s", self.path, _short(e))
                continue
            for frame in frames:
                if frame.pts is None and not know_position:
                    raise _NeedSequential()
                yield self._index_of(frame, seq), frame
                seq += 1

    def _decode(self, first: int, last: int, wanted: set):
        """Decode from ``first`` to ``last``: (wanted frames by index, last decoded (index, frame))."""
        found: dict = {}
        last_decoded = None
        for i, frame in self._frames_from(first):
            if i in wanted:
                found[i] = frame.to_ndarray(format="rgb24")
            last_decoded = (i, frame)
            if i >= last:
                break
        return found, last_decoded

    def _read(self, indices: List[int]) -> np.ndarray:
        wanted = set(indices)
        try:
            try:
                found, last_decoded = self._decode(indices[0], indices[-1], wanted)
                if indices[0] > 0 and (not found or min(found) > indices[0]) and (
                    last_decoded is None or last_decoded[0] > indices[0]
                ):
                    raise _NeedSequential()  # the seek overshot (unreliable timestamps)
            except _NeedSequential:
                found, last_decoded = self._decode(0, indices[-1], wanted)
        except self._av.error.FFmpegError as e:
            raise VideoDecodeError(self.path, f"PyAV decode of frames {_span(indices)}: {_short(e)}") from e
        if last_decoded is None:
            raise VideoDecodeError(self.path, f"no decodable frame at or after index {indices[0]}")
        if last_decoded[0] < indices[-1]:
            # Ran out of frames before the largest index: the true count is smaller than the
            # packet count (e.g. a cut-off last packet). Later requests clamp to it.
            self._n = min(self.num_frames, last_decoded[0] + 1)
        out = np.empty((len(indices), self._h, self._w, 3), dtype=np.uint8)
        tail = None
        for k, i in enumerate(indices):
            if i in found:
                out[k] = found[i]
                continue
            # A gap (skipped packet, timestamp jitter): the nearest earlier decoded frame;
            # past the end: the last decoded frame.
            earlier = [j for j in found if j < i]
            if earlier:
                out[k] = found[max(earlier)]
            elif i > last_decoded[0] or not found:
                tail = tail if tail is not None else last_decoded[1].to_ndarray(format="rgb24")
                out[k] = tail
            else:
                out[k] = found[min(found)]
        return out

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None


class _NeedSequential(Exception):
    """Internal: timestamps are unusable after a seek; decode from the start instead."""


def open_video(path: str, backend: str = "auto") -> VideoReader:
    """Open a video file for frame access.

    Args:
        path: the video file.
        backend: ``"decord"``, ``"pyav"``, or ``"auto"`` (decord; PyAV when decord cannot open
            the file or later fails to decode frames of it).

    Raises:
        VideoDecodeError: missing/empty/corrupt file or no decodable video stream.
        ValueError: unknown ``backend``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend '{backend}', expected one of {BACKENDS}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "file does not exist")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")
    if backend == "decord":
        return DecordReader(path)
    if backend == "pyav":
        return PyAVReader(path)
    try:
        return DecordReader(path, fallback_to_pyav=True)
    except VideoDecodeError as decord_error:
        try:
            reader = PyAVReader(path)
        except VideoDecodeError as pyav_error:
            raise VideoDecodeError(
                path, f"{decord_error.reason}; fallback {pyav_error.reason}"
            ) from pyav_error
        logger.info("'%s': decord failed (%s), using PyAV", path, decord_error.reason)
        return reader


def _short(e: BaseException, limit: int = 200) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _span(indices: Sequence[int]) -> str:
    return f"{indices[0]}..{indices[-1]}" if len(indices) > 1 else str(indices[0])
