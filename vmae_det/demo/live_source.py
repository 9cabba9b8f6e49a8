"""Cameras and stream URLs for the demo: a decoding thread, a bounded queue, frames dropped when behind.

:class:`LiveStreamReader` decodes a live source in a thread, as fast as it comes, into a queue of at most
``ceil(max_latency * fps)`` frames (at least 2):

* **Dropping.** When the demo falls behind and the queue is full, the *oldest* waiting frame is dropped and
  counted (``live_dropped_frames``), so a frame waits at most about ``max_latency``
  (``live_max_frame_age_seconds``; ``live_max_lag_seconds``: how far behind the live edge it was taken).
* **Time.** Frames keep their presentation time on the same constant-rate grid as a file's
  (:class:`~.video_stream.VideoStreamReader`): a dropped frame's slots show the nearest kept frame, so the
  output lasts as long as the stream and keyframes are at their times.
* **Keyframes among dropped frames** have no picture of their own: no people are looked for, they are written
  with none (``live_skipped_keyframes``). This is what lets a demo slower than real time keep up.
* A URL whose container states a duration (a recorded file over HTTP) is **not live**: nothing is dropped.
* **Stopping.** The first Ctrl-C or SIGTERM stops reading and the outputs are finished up to there
  (``stopped_by``); a second one aborts. :meth:`LiveStreamReader.stop` does the same from code (``--show``'s q).
* **Timeouts.** Opening and every read give up after ``timeout`` seconds without data (a URL that never answers
  is a :class:`~.video_stream.VideoStreamError`); a stream that stops later ends the input there (a warning).

Decoding uses FFmpeg's slice threads only: frame threads delay every frame by one per thread.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import signal
import threading
import time
from collections import deque
from fractions import Fraction
from typing import Deque, Dict, Iterator, List, Optional, Tuple

import numpy as np

from .input_spec import InputSpec, redact
from .person_boxes import PersonBoxSource
from .video_stream import VideoStreamError, VideoStreamReader

__all__ = [
    "LiveStreamReader",
    "SkipDroppedKeyframes",
    "check_video_input",
    "open_video_input",
]

logger = logging.getLogger(__name__)

#: FFmpeg options per URL scheme, under the user's own: RTSP over TCP (over UDP, lost packets are
#: broken pictures).
SCHEME_OPTIONS = {"rtsp": {"rtsp_transport": "tcp"}, "rtsps": {"rtsp_transport": "tcp"}}
#: FFmpeg options per device format, under the user's own: avfoundation's default rate (29.97) is one
#: most Mac cameras refuse.
DEVICE_OPTIONS = {"avfoundation": {"framerate": "30"}}


def check_camera(spec: InputSpec) -> None:
    """A ``v4l2`` camera's device file must exist: else :class:`VideoStreamError` naming the cameras there are."""
    if spec.kind == "webcam" and spec.format in ("v4l2", "video4linux2") and not os.path.exists(spec.location):
        found = sorted(p for p in os.listdir("/dev") if p.startswith("video")) if os.path.isdir("/dev") else []
        raise VideoStreamError(
            spec.shown,
            f"no camera: {spec.location} does not exist (cameras here: "
            f"{', '.join('/dev/' + p for p in found) or 'none'})",
        )


def check_video_input(spec: InputSpec) -> None:
    """Check ``--input`` before any model is built, as far as it can be without reading it: a file opens as a
    video with a video stream (its header only), a Linux camera's device exists. A URL is not contacted
    (a sender may serve one connection only): it is checked when :func:`open_video_input` opens it.
    Raises :class:`VideoStreamError` (an ``OSError``) naming the input."""
    if not spec.live:
        VideoStreamReader(spec.location, quiet=True).close()
    else:
        check_camera(spec)


def open_video_input(
    spec: InputSpec,
    *,
    max_latency: float,
    timeout: float,
    options: Optional[Dict[str, str]] = None,
) -> VideoStreamReader:
    """A :class:`VideoStreamReader` for a file, a :class:`LiveStreamReader` for a camera or a URL."""
    if not spec.live:
        return VideoStreamReader(spec.location)
    return LiveStreamReader(spec, max_latency=max_latency, timeout=timeout, options=options)


class _Item:
    __slots__ = ("t", "frame", "wall", "dropped_before")

    def __init__(self, t: Fraction, frame, wall: float) -> None:
        self.t, self.frame, self.wall, self.dropped_before = t, frame, wall, 0


class LiveStreamReader(VideoStreamReader):
    """A camera or stream URL on the presentation-time grid, decoded by a thread (module docstring).

    Args:
        spec: the input (:func:`~.input_spec.parse_input`), a camera or a URL.
        max_latency: seconds of frames queued before the oldest is dropped.
        timeout: seconds without data after which opening or a read gives up.
        options: FFmpeg options for the input (``{"rtsp_transport": "udp"}`` ...), over :data:`SCHEME_OPTIONS`
            and :data:`DEVICE_OPTIONS`.

    Attributes (besides :class:`VideoStreamReader`'s): ``drops`` (whether frames are dropped: live, not a
    recorded file over a URL), ``queue_size``, ``num_dropped``, ``max_frame_age``, ``slot_dropped``
    (whether the grid frame just yielded fell among dropped frames), ``stop_reason``.
    """

    THREAD_TYPE = "SLICE"

    def __init__(
        self,
        spec: InputSpec,
        *,
        max_latency: float,
        timeout: float,
        options: Optional[Dict[str, str]] = None,
    ) -> None:
        import av

        self.spec = spec
        self.path = spec.shown  # in every message: never a URL's password
        self._log = logger
        self._closed = True
        self._thread: Optional[threading.Thread] = None
        self.timeout = float(timeout)
        check_camera(spec)
        scheme = spec.location.split("://", 1)[0].lower() if spec.kind == "url" else ""
        opts = {**SCHEME_OPTIONS.get(scheme, {}), **DEVICE_OPTIONS.get(spec.format or "", {}), **(options or {})}
        try:
            self._container = av.open(
                spec.location, format=spec.format, options=opts, timeout=(self.timeout, self.timeout)
            )
        except av.error.ExitError as e:  # FFmpeg's interrupt callback: the timeout
            raise VideoStreamError(
                self.path,
                f"no answer within {self.timeout:g} s (--stream-timeout): "
                "nothing is sending there, or not a video stream",
            ) from e
        except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as e:
            what = "camera" if spec.kind == "webcam" else "stream"
            raise VideoStreamError(self.path, f"cannot open the {what} ({redact(str(e))})") from e
        self._closed = False
        try:
            self._open_stream()
        except VideoStreamError as e:
            self.close()
            if isinstance(e.__cause__, av.error.ExitError):
                raise VideoStreamError(self.path, f"no frame within {self.timeout:g} s (--stream-timeout)") from e
            raise
        except BaseException:
            self.close()
            raise
        # A stated duration means a recorded file behind the URL: read it whole, like a file.
        self.drops = self.header_seconds is None
        self.queue_size = max(2, int(math.ceil(float(max_latency) * self.fps)))
        self.max_latency = float(max_latency)
        self.num_dropped = 0
        self.max_frame_age = 0.0
        self.max_lag = 0.0
        # arrival time - presentation time, smallest so far: the live edge's clock (see _take)
        self._clock_offset = time.monotonic()
        self.slot_dropped = False
        self.stop_reason: Optional[str] = None
        self.stream_error: Optional[str] = None
        self._num_decoded = 1
        self._queue: Deque[_Item] = deque()
        self._cond = threading.Condition()
        self._ended = self._quit = False
        self._gaps: Deque[Tuple[float, float]] = deque()  # (t kept before, t kept after) around drops
        self._thread = threading.Thread(target=self._decode_loop, name=f"live-decode {self.path}", daemon=True)
        self._thread.start()
        logger.info(
            "%s: %s, %dx%d at %.3f fps; %s",
            self.path,
            "live" if self.drops else "recorded (has a duration)",
            self.width,
            self.height,
            self.fps,
            f"frames older than {self.queue_size} frames ({self.max_latency:g} s) are dropped when the demo "
            "falls behind"
            if self.drops
            else "every frame is used",
        )

    # ---- decoding thread ----------------------------------------------------------------
    def _decoded_frames(self):
        """PyAV frames; an undecodable packet is skipped, a read error or timeout ends the stream."""
        import av

        for packet in self._container.demux(self._stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError as e:
                self.stats["corrupt_packets_skipped"] += 1
                if self.stats["corrupt_packets_skipped"] <= 3:
                    self._log.warning("%s: skipped an undecodable packet (%s)", self.path, e)
                continue
            yield from frames

    def _decode_loop(self) -> None:
        import av

        try:  # frame times: the data layer's one rule (FrameClock), as for a file
            for k, t, frame in self._frame_clock.times(itertools.chain([self._first], self._frames)):
                if self._quit:
                    break
                if k == 0:  # the first frame: taken by _timed_frames at time 0
                    continue
                self._num_decoded += 1
                now = time.monotonic()
                self._clock_offset = min(self._clock_offset, now - float(t))
                self._put(_Item(t, frame, now))
        except av.error.ExitError:
            self.stream_error = f"no data for {self.timeout:g} s (--stream-timeout)"
        except (av.error.FFmpegError, OSError) as e:
            self.stream_error = redact(str(e))
        except BaseException as e:  # never lose a bug in a thread
            self.stream_error = f"{type(e).__name__}: {e}"
            logger.exception("%s: the decoding thread failed", self.path)
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()
            try:
                self._container.close()
            except Exception as e:  # noqa: BLE001  (closing after an error)
                logger.debug("closing %s: %s", self.path, e)

    def _put(self, item: _Item) -> None:
        with self._cond:
            queue = self._queue
            while len(queue) >= self.queue_size and not self._quit:
                if self.drops:
                    old = queue.popleft()
                    self.num_dropped += 1
                    (queue[0] if queue else item).dropped_before += old.dropped_before + 1
                else:
                    self._cond.wait(0.1)
            queue.append(item)
            self._cond.notify_all()

    # ---- the demo's side ----------------------------------------------------------------
    def _take(self) -> Optional[_Item]:
        """The oldest queued frame, waiting for one; ``None`` once the stream ended or a stop was asked."""
        with self._cond:
            while not self._queue and not self._ended and self.stop_reason is None:
                self._cond.wait(0.1)  # short: a signal's flag is seen soon
            if self.stop_reason is not None or not self._queue:
                return None
            item = self._queue.popleft()
            self._cond.notify_all()
        now = time.monotonic()
        self.max_frame_age = max(self.max_frame_age, now - item.wall)
        # How far behind the live edge: now against the time the frame would have arrived had it come as
        # early as the earliest-arriving frame (so probing, socket backlog and decoding delays count too).
        self.max_lag = max(self.max_lag, now - float(item.t) - self._clock_offset)
        return item

    def _timed_frames(self) -> Iterator[Tuple[int, Fraction, object]]:
        yield 0, Fraction(0), self._first
        k, t_prev = 1, Fraction(0)
        while True:
            item = self._take()
            if item is None:
                break
            if item.dropped_before:
                self._gaps.append((float(t_prev), float(item.t)))
            self.stats["decoded"] = self._num_decoded
            yield k, item.t, item.frame
            k, t_prev = k + 1, item.t
        self.stats["decoded"] = self._num_decoded
        if self.stop_reason is None and self.stream_error is not None:
            logger.warning(
                "%s: the stream stopped after %.2f s (%s); the outputs cover what came",
                self.path,
                float(t_prev),
                self.stream_error,
            )

    def frames(self) -> Iterator[Tuple[int, np.ndarray, object]]:
        """:meth:`VideoStreamReader.frames`, with :attr:`slot_dropped` set for each grid frame and Ctrl-C /
        SIGTERM turned into :meth:`stop` while frames are read (module docstring)."""
        restore = self._catch_stop_signals()
        half = 0.5 / self.fps
        gaps = self._gaps
        n = 0
        try:
            for i, img, decoded in super().frames():
                t = i / self.fps
                while gaps and gaps[0][1] <= t:
                    gaps.popleft()
                self.slot_dropped = bool(gaps) and gaps[0][0] + half < t < gaps[0][1] - half
                n = i + 1
                yield i, img, decoded
        finally:
            self.stats["grid_frames"] = n
            restore()

    def stop(self, reason: str) -> None:
        """End the input at the next frame (the outputs are finished up to there)."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def _catch_stop_signals(self):
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {}

        def handler(signum, frame):
            if self.stop_reason is None:
                self.stop(signal.Signals(signum).name)
                logger.warning(
                    "%s: %s: stopping; the outputs are finished up to here (again to abort and discard them)",
                    self.path,
                    signal.Signals(signum).name,
                )
                return
            old = previous.get(signum)
            if callable(old):
                old(signum, frame)
            raise KeyboardInterrupt(f"signal {signum}")

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)

        def restore():
            for sig, old in previous.items():
                signal.signal(sig, old if old is not None else signal.SIG_DFL)

        return restore

    def summary(self) -> Dict:
        """What the demo's summary reports about the live input."""
        return {
            "live": self.drops,
            "live_queue_frames": self.queue_size,
            "live_max_latency_seconds": self.max_latency,
            "live_dropped_frames": self.num_dropped,
            "live_max_frame_age_seconds": round(self.max_frame_age, 3),
            "live_max_lag_seconds": round(self.max_lag, 3),
            "stream_error": self.stream_error,
        }

    def close(self) -> None:
        """Stop the decoding thread (it closes the container); never waits longer than the read timeout."""
        thread = getattr(self, "_thread", None)
        if thread is None:
            super().close()
            return
        if self._closed:
            return
        self._closed = True
        with self._cond:
            self._quit = True
            self._queue.clear()
            self._cond.notify_all()
        if thread is not threading.current_thread():
            thread.join(self.timeout + 1.0)
            if thread.is_alive():
                logger.warning(
                    "%s: the decoding thread did not stop within %.0f s; left behind", self.path, self.timeout + 1.0
                )


class SkipDroppedKeyframes(PersonBoxSource):
    """``persons``, except for keyframes whose grid frame fell among dropped frames: no people, counted.

    Wraps the demo's person source for a :class:`LiveStreamReader` (see its module docstring).
    """

    def __init__(self, persons: PersonBoxSource, reader: LiveStreamReader) -> None:
        self.persons = persons
        self.reader = reader
        self.skipped: List[int] = []

    def boxes_for(self, j: int, frame_rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        if self.reader.slot_dropped:
            self.skipped.append(j)
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        return self.persons.boxes_for(j, frame_rgb)

    def finish(self, num_keyframes: int) -> Dict[str, int]:
        return {**self.persons.finish(num_keyframes), "live_skipped_keyframes": len(self.skipped)}
