"""Video decoding, one module: the readers, their header probe and :class:`FrameClock` define "frame i" together.

Every failure on a file raises :class:`VideoDecodeError`. ``backend="auto"`` is PyAV; decord runs only on request,
after :func:`probe_video` (why: docs/bad_input.md). Indices clamp to the decodable frames, as SlowFast/VideoMAE
clamp clips at the video ends.
"""

from __future__ import annotations

import heapq
import logging
import os
import re
import struct
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "VideoDecodeError",
    "VideoReader",
    "VideoProbe",
    "probe_video",
    "open_video",
    "BACKENDS",
    "FrameClock",
    "CHUNK_TIME_FORMATS",
    "stream_rate",
]

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "decord", "pyav")

# decord reserves 32 bytes per frame the header claims before reading a packet: more than 1 GiB of index is a lie.
_DECORD_MAX_CLAIMED_FRAMES = 1 << 25
# Every AVI frame is a chunk with an 8-byte header: a file of S bytes holds at most S // 8 frames.
_AVI_MIN_BYTES_PER_FRAME = 8


class VideoDecodeError(OSError):
    """A video file could not be opened or decoded; the message names the file and the reason."""

    def __init__(self, path: str, reason: Optional[str] = None):
        if reason is None:  # one message: re-raised by a DataLoader worker, or re-worded by a caller
            message = _from_worker(str(path))
            match = re.match(r"cannot decode video '(.*?)': (.*)", message, re.S)
            self.path, self.reason = (match.group(1), match.group(2)) if match else ("", message)
            super().__init__(message)
            return
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot decode video '{self.path}': {reason}")

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self):
        return (type(self), (self.path, self.reason) if self.path else (self.reason,))


def _from_worker(message: str) -> str:
    """Reduce a message re-raised by a DataLoader worker to the error's own text and where it happened,
    so ``error: ...`` stays one line."""
    head, _, rest = message.partition("\n")
    if not head.startswith("Caught ") or "Traceback" not in rest:
        return message
    lines = [ln for ln in rest.rstrip().splitlines() if ln and not ln.startswith((" ", "\t"))]
    last = lines[-1] if lines else ""
    name, sep, text = last.partition(": ")
    if not sep or "Error" not in name:
        return message
    where = head.split(" ", 2)[-1].rstrip(".")  # "in DataLoader worker process 0"
    return f"{text} ({where})"


@dataclass
class VideoProbe:
    """What a file's first bytes say: the container (``"avi"``, ``"mp4"``, ``"matroska"`` or ``"other"``) and, for
    AVI, the header's frame count, whether an index exists and whether the RIFF and ``movi`` sizes fit the file."""

    container: str
    size: int
    claimed_frames: Optional[int] = None
    indexed: Optional[bool] = None
    complete: Optional[bool] = None

    @property
    def decord_unsafe_reason(self) -> str:
        """Why decord would abort the process on this file (``""`` when the probe sees no reason)."""
        if self.container != "avi" or self.claimed_frames is None:
            return ""
        limit = min(self.size // _AVI_MIN_BYTES_PER_FRAME, _DECORD_MAX_CLAIMED_FRAMES)
        if self.claimed_frames > limit:
            return (
                f"its AVI header claims {self.claimed_frames} frames, more than {self.size} bytes can hold "
                f"(an AVI whose header was never finalised: written to a pipe or by a recorder that "
                f"stopped; indexed={self.indexed}); decord would abort the whole process on it "
                f"(std::bad_alloc)"
            )
        return ""


def probe_video(path: str) -> VideoProbe:
    """The container type and, for AVI, its frame-count claim and index state (a few small reads, no decoding)."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(12)
            if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
                return _probe_avi(f, size)
    except OSError as e:
        raise VideoDecodeError(path, f"cannot read the file ({e.strerror or e})") from e
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"):
        return VideoProbe("mp4", size)
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return VideoProbe("matroska", size)
    return VideoProbe("other", size)


def _probe_avi(f, size: int) -> VideoProbe:
    probe = VideoProbe("avi", size, indexed=False, complete=True)
    f.seek(4)
    riff_size = struct.unpack("<I", f.read(4))[0]
    if riff_size in (0, 0xFFFFFFFF) or riff_size + 8 > size:
        probe.complete = False
    pos = 12
    while pos + 8 <= size:
        f.seek(pos)
        cid, csize = struct.unpack("<4sI", f.read(8))
        if cid == b"LIST":
            ltype = f.read(4)
            if ltype == b"hdrl":
                _parse_hdrl(f.read(min(csize - 4, 1 << 16)), probe)
            elif ltype == b"movi" and (csize in (0, 0xFFFFFFFF) or pos + 8 + csize > size):
                probe.complete = False  # unknown length: nothing after it can be located
                break
        elif cid == b"idx1":
            probe.indexed = True
        if pos + 8 + csize > size:
            probe.complete = False
            break
        pos += 8 + csize + (csize & 1)
    return probe


def _parse_hdrl(data: bytes, probe: VideoProbe) -> None:
    """The first video stream's ``strh.dwLength`` and whether an OpenDML index (``indx``) exists."""
    pos, in_video = 0, False
    while pos + 8 <= len(data):
        cid, csize = struct.unpack("<4sI", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + csize]
        if cid == b"LIST":  # strl / odml: descend
            pos += 12
            continue
        if cid == b"strh" and len(body) >= 36:
            in_video = body[:4] == b"vids"
            if in_video and probe.claimed_frames is None:
                probe.claimed_frames = struct.unpack("<I", body[32:36])[0]
        elif cid == b"indx" and in_video:
            probe.indexed = True
        pos += 8 + csize + (csize & 1)


#: FFmpeg demuxers whose timestamps belong to chunks, not to pictures (see :class:`FrameClock`).
CHUNK_TIME_FORMATS = frozenset({"avi"})
#: Decoded frames a sequential reader looks ahead to re-sort chunk times (a packed B-frame's time comes late).
REORDER_WINDOW = 8


def stream_rate(stream) -> Optional[Fraction]:
    """A PyAV stream's nominal rate (average, else guessed, else base) as a ``Fraction`` with denominator <= 1001
    (``30000/1001`` stays exact); ``None`` when the stream states no usable rate."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    try:
        value = float(rate) if rate else 0.0
    except (OverflowError, ZeroDivisionError):
        return None
    if not value > 0 or value == float("inf"):
        return None
    rate = Fraction(rate).limit_denominator(1001)
    return rate if rate > 0 else None


class FrameClock:
    """The one definition of "frame ``i`` at time ``t``" for a video stream, shared by every reader (training,
    demo, custom-dataset conversion), so frame ``i`` is the same picture everywhere.

    Frame ``i`` is the ``i``-th picture the decoder puts out from the file's start (display order). Its time ``t``
    (seconds after frame 0) is its timestamp minus frame 0's, except in :data:`CHUNK_TIME_FORMATS` (AVI), whose
    timestamps are chunk numbers that FFmpeg attaches to the wrong pictures with packed B-frames
    (``Megamind.avi``: pts 1, 2, 3, 5, 4, 6, ...): there frame ``i`` takes the ``i``-th smallest timestamp
    (``i / rate`` on a constant-rate AVI; chunks without a picture stay gaps). A frame without a timestamp comes
    one period after the frame before it.

    Args:
        container, stream: the open PyAV container and its video stream.
        rate: the rate for frames without a timestamp (default :func:`stream_rate`, else ``fallback_rate``).
    """

    def __init__(self, container, stream, rate=None, fallback_rate=1) -> None:
        names = set((getattr(container.format, "name", "") or "").split(","))
        self.ranked = bool(names & CHUNK_TIME_FORMATS)
        rate = rate or stream_rate(stream) or fallback_rate
        self.rate = rate if isinstance(rate, Fraction) else Fraction(rate).limit_denominator(1001)
        self.time_base = Fraction(stream.time_base) if stream.time_base else None

    @property
    def period(self) -> Fraction:
        return 1 / self.rate

    def times(self, frames: Iterable) -> Iterator[Tuple[int, Fraction, object]]:
        """``(i, t, frame)`` for decoded ``frames`` in output order, ``t`` an exact ``Fraction``. Where times are
        ranked, a frame is yielded once :data:`REORDER_WINDOW` later ones were decoded. Times need not increase."""
        pending: "deque" = deque()  # ranked: decoded frames waiting for their time
        heap: List[int] = []  # ranked: the timestamps of the pending frames and of those past
        origin: Optional[Fraction] = None
        prev: Optional[Fraction] = None
        k = 0

        def stamp(frame, pts) -> Fraction:
            nonlocal origin, prev
            tb = getattr(frame, "time_base", None) or self.time_base
            if pts is not None and tb is not None:
                t_abs = pts * Fraction(tb)
                if origin is None:
                    origin = t_abs if k == 0 else Fraction(0)  # frame 0 without a pts: later pts as they are
                t = t_abs - origin
            else:
                t = Fraction(0) if prev is None else prev + self.period
            prev = t
            return t

        def pop():
            frame = pending.popleft()
            has_pts = getattr(frame, "pts", None) is not None
            return frame, (heapq.heappop(heap) if has_pts and heap else None)

        for frame in frames:
            if not self.ranked:
                yield k, stamp(frame, getattr(frame, "pts", None)), frame
                k += 1
                continue
            pending.append(frame)
            if getattr(frame, "pts", None) is not None:
                heapq.heappush(heap, int(frame.pts))
            if len(pending) > REORDER_WINDOW:
                out, pts = pop()
                yield k, stamp(out, pts), out
                k += 1
        while pending:
            out, pts = pop()
            yield k, stamp(out, pts), out
            k += 1

    def index_times(self, pts: Sequence[Optional[int]]) -> Tuple[Optional[np.ndarray], np.ndarray]:
        """The same rule from one demux pass (``pts`` of every non-empty packet, in file order): ``(sorted_pts,
        times)``, ``sorted_pts`` only where frames can be found by timestamp after a seek."""
        n = len(pts)
        if n > 0 and None not in pts and len(set(pts)) == n and self.time_base:
            order = np.sort(np.asarray(pts, dtype=np.int64))
            times = (order - order[0]).astype(np.float64) * float(self.time_base)
            return (None if self.ranked else order), times
        return None, np.arange(n, dtype=np.float64) / float(self.rate)


class VideoReader(ABC):
    """Random access to the frames of one video file; ``frame_times`` are seconds from the first frame, by
    :class:`FrameClock`."""

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
    _times: np.ndarray

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def height(self) -> int:
        return self._h

    @property
    def width(self) -> int:
        return self._w

    @property
    def frame_times(self) -> np.ndarray:
        return self._times[: self.num_frames]

    @abstractmethod
    def _read(self, indices: List[int]) -> np.ndarray:
        """Decode sorted unique in-range ``indices``; returns ``uint8 [len, H, W, 3]``."""

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """RGB ``uint8 [T, H, W, 3]`` frames at ``indices`` (any order, repeats allowed, out-of-range ones clamped)."""
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
    """Reader on decord; only for files :func:`probe_video` allows, as some make decord abort the process."""

    backend = "decord"

    def __init__(self, path: str, num_threads: int = 1):
        super().__init__(path)
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
            starts = np.asarray(self._vr.get_frame_timestamp(np.arange(n)), dtype=np.float64).reshape(n, 2)[:, 0]
        except VideoDecodeError:
            raise
        except Exception as e:  # decord raises bare RuntimeError/DECORDError on bad files
            raise VideoDecodeError(path, f"decord: {_short(e)}") from e
        self._n = n
        self._h, self._w = int(first.shape[0]), int(first.shape[1])
        self._fps = float(self._vr.get_avg_fps())
        self._times = starts - starts[0]

    @property
    def num_frames(self) -> int:
        return self._n

    def _read(self, indices: List[int]) -> np.ndarray:
        try:
            frames = self._vr.get_batch(indices).asnumpy()
        except Exception as e:
            raise VideoDecodeError(self.path, f"decord failed on frames {_span(indices)}: {_short(e)}") from e
        return np.ascontiguousarray(frames, dtype=np.uint8)

    def close(self) -> None:
        self._vr = None


@dataclass
class _PacketIndex:
    """One demux pass's result: frames found by pts (``by_pts``), or on AVI counted from a keyframe."""

    n: int
    by_pts: bool
    sorted_pts: Optional[np.ndarray]
    times: np.ndarray
    key_index: np.ndarray
    key_seek: np.ndarray
    key_pts: np.ndarray


# Keyed by (real path, size, mtime): a loader that reopens a long video for every clip demuxes it once per
# process. About 16 bytes per frame.
_INDEX_CACHE: "OrderedDict[tuple, _PacketIndex]" = OrderedDict()
_INDEX_CACHE_SIZE = 64


class _Resync(Exception):
    """Internal: after a seek the decoded frames cannot be placed; decode from the start instead."""


class PyAVReader(VideoReader):
    """Reader on PyAV (FFmpeg): one demux pass at open counts, indexes and times the frames (container metadata is
    not trusted); a read seeks to the keyframe before the first wanted frame and decodes forward."""

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
        try:
            self._index_packets()
        except VideoDecodeError:
            self.close()
            raise
        if self._n <= 0:
            self.close()
            raise VideoDecodeError(path, "the video stream has no frames")
        # Decode frame 0 so an undecodable stream fails here, not inside a data loader worker.
        try:
            self._read([0])
        except VideoDecodeError:
            self.close()
            raise

    @property
    def num_frames(self) -> int:
        return self._n

    def _index_packets(self) -> None:
        """The stream's :class:`_PacketIndex`, from the per-process cache or one demux pass."""
        try:
            st = os.stat(self.path)
            cache_key = (os.path.realpath(self.path), st.st_size, st.st_mtime_ns)
        except OSError:
            cache_key = None
        index = _INDEX_CACHE.get(cache_key) if cache_key is not None else None
        if index is None:
            index = self._demux_index()
            if cache_key is not None and index.n > 0:
                _INDEX_CACHE[cache_key] = index
                while len(_INDEX_CACHE) > _INDEX_CACHE_SIZE:
                    _INDEX_CACHE.popitem(last=False)
        else:
            _INDEX_CACHE.move_to_end(cache_key)
        self._index = index
        self._n = index.n
        self._times = index.times

    def _demux_index(self) -> "_PacketIndex":
        """One demux pass (no decoding): frame count, keyframes, frame times."""
        pts: List[Optional[int]] = []
        dts: List[Optional[int]] = []
        key: List[bool] = []
        try:
            for packet in self._container.demux(self._stream):
                if packet.size == 0:  # the flush packet at the end (or an empty AVI chunk): no picture
                    continue
                pts.append(packet.pts)
                dts.append(packet.dts)
                key.append(bool(packet.is_keyframe))
        except self._av.error.FFmpegError as e:
            logger.warning("'%s': demuxing stopped after %d packets: %s", self.path, len(pts), _short(e))
        except Exception as e:
            raise VideoDecodeError(self.path, f"PyAV demux: {_short(e)}") from e
        n = len(pts)
        distinct = n > 0 and None not in pts and len(set(pts)) == n
        order = np.sort(np.asarray(pts, dtype=np.int64)) if distinct else None
        sorted_pts, times = FrameClock(self._container, self._stream).index_times(pts)
        by_pts = sorted_pts is not None
        keys: Dict[int, tuple] = {}  # output index of a keyframe -> (timestamp to seek to, its pts)
        for q in range(n):
            if not key[q]:
                continue
            if by_pts:
                keys[int(np.searchsorted(order, pts[q]))] = (pts[q], pts[q])
            elif pts[q] is not None:
                # AVI: the rank of its pts (B-frames after an I-frame can be shown first), else its chunk number.
                index = int(np.searchsorted(order, pts[q])) if order is not None else q
                keys[index] = (dts[q] if dts[q] is not None else pts[q], pts[q])
        key_index = np.asarray(sorted(keys), dtype=np.int64)
        return _PacketIndex(
            n=n,
            by_pts=by_pts,
            sorted_pts=sorted_pts,
            times=times,
            key_index=key_index,
            key_seek=np.asarray([keys[i][0] for i in key_index], dtype=np.int64),
            key_pts=np.asarray([keys[i][1] for i in key_index], dtype=np.int64),
        )

    def _rank(self, pts: Optional[int]) -> Optional[int]:
        """Index of the frame with presentation timestamp ``pts`` (``None`` if there is none)."""
        order = self._index.sorted_pts
        if pts is None or order is None:
            return None
        i = int(np.searchsorted(order, pts))
        return i if i < len(order) and order[i] == pts else None

    def _key_by_pts(self, pts: Optional[int]) -> Optional[int]:
        """Index of the keyframe with timestamp ``pts`` (AVI after a seek)."""
        hits = np.flatnonzero(self._index.key_pts == pts) if pts is not None else []
        return int(self._index.key_index[hits[0]]) if len(hits) else None

    def _run(self, k: Optional[int]):
        """Yield ``(index, frame)`` from keyframe ``k`` (``None``: the start), packet by packet, so a corrupt
        packet is skipped and logged instead of ending the stream."""
        if k is None:
            self._container.seek(0)
            counter: Optional[int] = 0
        else:
            self._container.seek(int(self._index.key_seek[k]), stream=self._stream, backward=True)
            counter = None  # set from the first decoded frame
        prev: Optional[int] = None
        for packet in self._container.demux(self._stream):
            try:
                frames = packet.decode()  # the flush packet at the end (size 0) drains the decoder
            except self._av.error.FFmpegError as e:
                logger.warning("'%s': skipping an undecodable packet: %s", self.path, _short(e))
                continue
            for frame in frames:
                if self._index.by_pts:
                    index = self._rank(frame.pts)
                    if index is None:
                        if prev is None:
                            raise _Resync()
                        index = prev + 1
                else:
                    if counter is None:
                        counter = self._key_by_pts(frame.pts) if frame.key_frame else None
                        if counter is None:
                            raise _Resync()  # landed somewhere we cannot name
                    index = counter
                    counter += 1
                prev = index
                yield index, frame

    def _decode(self, k: Optional[int], first: int, last: int, wanted: set):
        """Decode from keyframe ``k``: (wanted frames by index, last decoded (index, frame))."""
        found: dict = {}
        last_decoded = None
        for i, frame in self._run(k):
            if last_decoded is None and k is not None and i > first:
                raise _Resync()  # the seek overshot
            if i in wanted:
                found[i] = frame.to_ndarray(format="rgb24")
            last_decoded = (i, frame)
            if i >= last:
                break
        return found, last_decoded

    def _read(self, indices: List[int]) -> np.ndarray:
        wanted = set(indices)
        first, last = indices[0], indices[-1]
        key_index = self._index.key_index
        k = int(np.searchsorted(key_index, first, side="right")) - 1
        # The keyframe before the first wanted frame; if nothing decodes from there (a cut-off
        # packet) or the frames cannot be placed, the keyframe before it; then the file's start.
        starts: List[Optional[int]] = [s for s in (k, k - 1) if s >= 0 and key_index[s] > 0]
        found: dict = {}
        last_decoded = None
        for start in starts + [None]:
            try:
                found, last_decoded = self._decode(start, first, last, wanted)
            except _Resync:
                if start is None:
                    raise VideoDecodeError(self.path, f"PyAV: cannot place decoded frames {_span(indices)}") from None
                continue
            except self._av.error.FFmpegError as e:
                raise VideoDecodeError(self.path, f"PyAV decode of frames {_span(indices)}: {_short(e)}") from e
            if last_decoded is not None:
                break
        if last_decoded is None:
            raise VideoDecodeError(self.path, f"no decodable frame at or after index {first}")
        if last_decoded[0] < last:
            # Fewer frames decode than there are packets (a cut-off last packet): later requests clamp.
            self._n = min(self._n, last_decoded[0] + 1)
        out = np.empty((len(indices), self._h, self._w, 3), dtype=np.uint8)
        tail = None
        for j, i in enumerate(indices):
            if i in found:
                out[j] = found[i]
                continue
            # A skipped packet's gap: the nearest earlier frame; past the end: the last decoded one.
            earlier = [x for x in found if x < i]
            if earlier:
                out[j] = found[max(earlier)]
            elif i > last_decoded[0] or not found:
                tail = tail if tail is not None else last_decoded[1].to_ndarray(format="rgb24")
                out[j] = tail
            else:
                out[j] = found[min(found)]
        return out

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None


def open_video(path: str, backend: str = "auto") -> VideoReader:
    """Open a video file for frame access with ``backend`` ``"auto"``/``"pyav"`` or ``"decord"``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend '{backend}', expected one of {BACKENDS}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "file does not exist")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(path, "file is empty (0 bytes)")
    if backend == "decord":
        unsafe = probe_video(path).decord_unsafe_reason
        if unsafe:
            raise VideoDecodeError(path, f"{unsafe}; read it with video backend 'auto' or 'pyav'")
        return DecordReader(path)
    return PyAVReader(path)


def _short(e: BaseException, limit: int = 200) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _span(indices: Sequence[int]) -> str:
    return f"{indices[0]}..{indices[-1]}" if len(indices) > 1 else str(indices[0])
