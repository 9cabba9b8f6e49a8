"""The demo's settings: one object, checked when built, before any file is opened or model loaded (no torch).

``tools/demo.py`` builds it from its flags (each field is the flag of the same name); :func:`~.run.run_demo`
takes it. A bad value is a :class:`DemoArgumentError` naming the setting, its flag and the value.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Dict, Optional

__all__ = ["BOX_FORMATS", "DemoArgumentError", "DemoSettings"]

#: How a box CSV's 8th column is read (``--boxes-format``, :class:`~.box_files.CsvBoxSource`).
BOX_FORMATS = ("auto", "gt", "detections")


class DemoArgumentError(ValueError):
    """A demo setting out of range; the message names the setting and its flag."""


@dataclass(frozen=True)
class DemoSettings:
    """What one demo run is asked to do.

    Args:
        video: a video file, camera index or stream URL (:mod:`.input_spec`, docs/live_input.md).
        output_dir: created if missing; outputs replace earlier ones only when the run succeeds.
        keyframe_interval: frames of the video's grid between keyframes (``None``: its fps, once a second).
        time_offset: time of frame 0 in seconds (``None``: 900 for a box CSV whose timestamps are all
            >= 900, AVA's crops, else 0).
        top_k: labels drawn per person.
        score_threshold: (box, action) pairs below it are neither written nor drawn.
        draw_threshold: labels below it are not drawn.
        batch_size: keyframes per model call.
        person_score_threshold: person boxes below it are dropped (GT rows score 1); 0.8 is the
            evaluation's ``test_proposal_threshold``.
        boxes_format: how a box CSV's 8th column is read, one of :data:`BOX_FORMATS`.
        model_fps: frame rate of the model's training clips (``None``: the predictor's).
        video_id: first CSV column (``None``: the input's name).
        render_min_short_side: smaller videos are upscaled to this short side (0: never).
        track: link people across keyframes (docs/tracking.md).
        track_iou: IoU with a track's last box for a box to continue it, in (0, 1].
        smooth_window: average each person's scores over their track's last N keyframes (needs ``track``).
        preview: also write ``<name>_preview.png``.
        progress: show a progress bar.
        max_seconds: stop after this many seconds of input (``None``: the whole input).
        show: also show the rendered frames in a window.
        max_latency: camera/stream: seconds of frames queued before the oldest is dropped.
        stream_timeout: camera/stream: seconds without data before giving up.
        stream_options: camera/stream: FFmpeg input options.
    """

    video: str
    output_dir: str
    keyframe_interval: Optional[float] = None
    time_offset: Optional[float] = None
    top_k: int = 3
    score_threshold: float = 0.0
    draw_threshold: float = 0.0
    batch_size: int = 4
    person_score_threshold: float = 0.8
    boxes_format: str = "auto"
    model_fps: Optional[float] = None
    video_id: Optional[str] = None
    render_min_short_side: int = 360
    track: bool = True
    track_iou: float = 0.3
    smooth_window: int = 1
    preview: bool = True
    progress: bool = True
    max_seconds: Optional[float] = None
    show: bool = False
    max_latency: float = 1.0
    stream_timeout: float = 10.0
    stream_options: Optional[Dict[str, str]] = None

    def __post_init__(self) -> None:
        if self.keyframe_interval is not None:
            _real("keyframe_interval", self.keyframe_interval, low=1, what="a finite number of frames >= 1")
        if self.time_offset is not None:
            _real("time_offset", self.time_offset, what="a finite number of seconds")
        _int("top_k", self.top_k, 0)
        _real("score_threshold", self.score_threshold, low=0, high=1, what="a number in [0, 1]")
        _real("draw_threshold", self.draw_threshold, low=0, high=1, what="a number in [0, 1]")
        _int("batch_size", self.batch_size, 1)
        _real("person_score_threshold", self.person_score_threshold, low=0, high=1, what="a number in [0, 1]")
        _int("render_min_short_side", self.render_min_short_side, 0)
        if self.model_fps is not None:
            _real("model_fps", self.model_fps, low=0, low_open=True, what="a finite frame rate > 0")
        if self.boxes_format not in BOX_FORMATS:
            raise DemoArgumentError(
                f"{_name('boxes_format')} must be auto, gt or detections, got {self.boxes_format!r}"
            )
        _real("track_iou", self.track_iou, low=0, low_open=True, high=1, what="a number in (0, 1]")
        _int("smooth_window", self.smooth_window, 1)
        if not self.track and self.smooth_window != 1:
            raise DemoArgumentError(
                f"{_name('smooth_window')} averages scores along tracks: it needs tracking, "
                f"got {self.smooth_window!r} with track=False (--no-track)"
            )
        if self.max_seconds is not None:
            _real("max_seconds", self.max_seconds, low=0, low_open=True, what="a finite number of seconds > 0")
        _real("max_latency", self.max_latency, low=0, low_open=True, what="a finite number of seconds > 0")
        _real("stream_timeout", self.stream_timeout, low=0, low_open=True, what="a finite number of seconds > 0")
        from .outputs import check_output_dir

        check_output_dir(self.output_dir)


def _name(key: str) -> str:
    return f"{key} (--{key.replace('_', '-')})"


def _real(key, value, *, low=None, high=None, low_open=False, what="a number") -> None:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok and low is not None:
        ok = float(value) > low if low_open else float(value) >= low
    if ok and high is not None:
        ok = float(value) <= high
    if not ok:
        raise DemoArgumentError(f"{_name(key)} must be {what}, got {value!r}")


def _int(key: str, value, low: int) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or int(value) < low:
        raise DemoArgumentError(f"{_name(key)} must be an integer >= {low}, got {value!r}")
