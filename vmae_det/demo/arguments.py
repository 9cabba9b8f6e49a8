"""Up-front checks of the demo's settings (light: no torch), shared by ``run_demo`` and ``tools/demo.py``.

Every bad value is a :class:`DemoArgumentError` (a ``ValueError``) naming the setting, its command-line
flag and the value, raised before any file is opened or model loaded.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional

__all__ = ["DemoArgumentError", "check_demo_arguments"]


class DemoArgumentError(ValueError):
    """A demo setting out of range; the message names the setting and its flag."""


def _name(key: str) -> str:
    return f"{key} (--{key.replace('_', '-')})"


def _real(
    key: str,
    value,
    *,
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_open: bool = False,
    what: str = "a number",
) -> None:
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


def check_demo_arguments(
    *,
    keyframe_interval=None,
    time_offset=None,
    top_k=3,
    score_threshold=0.0,
    draw_threshold=0.0,
    batch_size=4,
    person_score_threshold=0.8,
    render_min_short_side=360,
    model_fps=None,
    boxes_format="auto",
    track=True,
    track_iou=0.3,
    smooth_window=1,
    output_dir: Optional[str] = None,
    max_seconds=None,
    max_latency=1.0,
    stream_timeout=10.0,
) -> None:
    """Raise :class:`DemoArgumentError` for the first setting out of range (see ``run_demo`` for their meaning)."""
    if keyframe_interval is not None:
        _real("keyframe_interval", keyframe_interval, low=1, what="a finite number of frames >= 1")
    if time_offset is not None:
        _real("time_offset", time_offset, what="a finite number of seconds")
    _int("top_k", top_k, 0)
    _real("score_threshold", score_threshold, low=0, high=1, what="a number in [0, 1]")
    _real("draw_threshold", draw_threshold, low=0, high=1, what="a number in [0, 1]")
    _int("batch_size", batch_size, 1)
    if person_score_threshold is not None:
        _real("person_score_threshold", person_score_threshold, low=0, high=1, what="a number in [0, 1]")
    _int("render_min_short_side", render_min_short_side, 0)
    if model_fps is not None:
        _real("model_fps", model_fps, low=0, low_open=True, what="a finite frame rate > 0")
    if boxes_format not in ("auto", "gt", "detections"):
        raise DemoArgumentError(f"{_name('boxes_format')} must be auto, gt or detections, got {boxes_format!r}")
    _real("track_iou", track_iou, low=0, low_open=True, high=1, what="a number in (0, 1]")
    _int("smooth_window", smooth_window, 1)
    if not track and smooth_window != 1:
        raise DemoArgumentError(
            f"{_name('smooth_window')} averages scores along tracks: it needs tracking, "
            f"got {smooth_window!r} with track=False (--no-track)"
        )
    if max_seconds is not None:
        _real("max_seconds", max_seconds, low=0, low_open=True, what="a finite number of seconds > 0")
    _real("max_latency", max_latency, low=0, low_open=True, what="a finite number of seconds > 0")
    _real("stream_timeout", stream_timeout, low=0, low_open=True, what="a finite number of seconds > 0")
    if output_dir is not None:
        from .outputs import check_output_dir

        check_output_dir(output_dir)
