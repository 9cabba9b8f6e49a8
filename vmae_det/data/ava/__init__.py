"""AVA: clip sources, dataset registration and the clip mapper (the file readers are
:mod:`vmae_det.formats.ava` / :mod:`vmae_det.formats.ava_boxes`)."""

from .catalog import ALPHACTION_BOX_FILES, ava_split_files, load_ava_dicts, register_all_ava, register_ava
from .clip_source import ClipSource, FramesClipSource, VideoClipSource, clip_indices, clip_source_for
from .kinetics import load_ava_kinetics_dicts, register_all_ava_kinetics
from .mapper import AVAClipMapper, box_iou_labels

__all__ = [
    "ALPHACTION_BOX_FILES",
    "AVAClipMapper",
    "ClipSource",
    "FramesClipSource",
    "VideoClipSource",
    "ava_split_files",
    "box_iou_labels",
    "clip_indices",
    "clip_source_for",
    "load_ava_dicts",
    "load_ava_kinetics_dicts",
    "register_all_ava",
    "register_all_ava_kinetics",
    "register_ava",
]
