"""AVA: clip sources, dataset registration and the clip mapper (the file readers are
:mod:`vmae_det.formats.ava` / :mod:`vmae_det.formats.ava_boxes`, re-exported here)."""

from ...formats.ava import AVAFormatError
from ...formats.ava_boxes import (
    AVABox,
    person_box_format,
    read_alphaction_boxes,
    read_annotations,
    read_excluded_keyframes,
    read_person_boxes,
    read_proposals,
)
from .catalog import ALPHACTION_BOX_FILES, ava_split_files, load_ava_dicts, register_all_ava, register_ava
from .clip_source import (
    AVA_FPS,
    AVA_START_SEC,
    ClipSource,
    FramesClipSource,
    VideoClipSource,
    clip_indices,
    clip_source_for,
    keyframe_index,
)
from .mapper import AVAClipMapper, box_iou_labels

__all__ = [
    "ALPHACTION_BOX_FILES",
    "AVA_FPS",
    "AVA_START_SEC",
    "AVABox",
    "AVAClipMapper",
    "AVAFormatError",
    "ClipSource",
    "FramesClipSource",
    "VideoClipSource",
    "ava_split_files",
    "box_iou_labels",
    "clip_indices",
    "clip_source_for",
    "keyframe_index",
    "load_ava_dicts",
    "person_box_format",
    "read_alphaction_boxes",
    "read_annotations",
    "read_excluded_keyframes",
    "read_person_boxes",
    "read_proposals",
    "register_all_ava",
    "register_ava",
]
