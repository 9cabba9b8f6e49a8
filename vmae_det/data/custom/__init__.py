"""Turn your own videos plus a simple annotation CSV into the AVA layout that
:func:`vmae_det.data.register_ava` reads. The CSV format and the output layout: ``docs/custom_dataset.md``.

Modules: :mod:`.annotations` (the CSV and label list, checked), :mod:`.video` (probe and convert to 30 fps),
:mod:`.ava_layout` (AVA rows and annotation files), :mod:`.spill` (rows on disk, so memory does not grow with the
CSV), :mod:`.summary` (what was written, and the code to use it), :mod:`.prepare` (the steps in order).
"""

from __future__ import annotations

from .annotations import ANNOTATION_COLUMNS, CustomDatasetError, read_label_names
from .prepare import prepare_custom_dataset
from .summary import CustomDatasetSummary, VideoInfo
from .video import resample_to_fps

__all__ = [
    "ANNOTATION_COLUMNS",
    "CustomDatasetError",
    "CustomDatasetSummary",
    "VideoInfo",
    "prepare_custom_dataset",
    "read_label_names",
    "resample_to_fps",
]
