"""Streaming action-detection demo: point it at a video, get a labelled mp4 + AVA CSV/JSON.

Entry points: :func:`run_demo` with a :class:`DemoSettings` (Python API) and ``tools/demo.py`` (command line).
Names are imported on first use (PEP 562), so ``tools/demo.py`` can check its settings before torch loads.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "BOX_FORMATS": "settings",
    "DemoArgumentError": "settings",
    "DemoSettings": "settings",
    "KeyframeSchedule": "keyframes",
    "action_names": "labels",
    "DetectionWriter": "outputs",
    "KeyframeDetections": "outputs",
    "OutputFiles": "outputs",
    "OutputDirError": "outputs",
    "BoxFileError": "box_files",
    "CsvBoxSource": "box_files",
    "DetectorBoxSource": "person_boxes",
    "DemoJsonBoxSource": "box_files",
    "PersonBoxSource": "person_boxes",
    "build_person_detector": "person_boxes",
    "ActionPredictor": "predictor",
    "ClipRequest": "predictor",
    "DemoConfigError": "predictor",
    "DemoModelError": "predictor",
    "MODEL_FPS": "predictor",
    "VideoTooShortError": "run",
    "run_demo": "run",
    "VideoDecodeError": "video_stream",
    "VideoStreamError": "video_stream",
    "VideoStreamReader": "video_stream",
    "ActionVisualizer": "visualizer",
    "BoxLabels": "visualizer",
    "PersonTracker": "tracking",
    "count_id_switches": "tracking",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
