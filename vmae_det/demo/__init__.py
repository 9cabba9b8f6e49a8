"""Streaming action-detection demo: point it at a video, get a labelled mp4 + AVA CSV/JSON.

Entry points: :func:`run_demo` (Python API), ``tools/demo.py`` (command line), and
``tools/export_onnx.py`` (ONNX export of the action detector, see :mod:`.onnx_export`).
"""
from .keyframes import KeyframeSchedule
from .labels import action_names
from .outputs import DetectionWriter, KeyframeDetections
from .person_boxes import (
    BoxFileError,
    CsvBoxSource,
    DetectorBoxSource,
    PersonBoxSource,
    build_person_detector,
)
from .predictor import ActionPredictor, ClipRequest, DemoConfigError
from .run import VideoTooShortError, run_demo
from .video_stream import VideoDecodeError, VideoStreamReader, VideoStreamWriter
from .visualizer import ActionVisualizer, BoxLabels

__all__ = [k for k in dir() if not k.startswith("_")]
