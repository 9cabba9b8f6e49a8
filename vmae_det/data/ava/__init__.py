"""AVA: file readers, clip sources, dataset registration and the clip mapper."""
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
from .readers import (
    AVABox,
    AVAFormatError,
    person_box_format,
    read_alphaction_boxes,
    read_annotations,
    read_exclusions,
    read_person_boxes,
    read_proposals,
)

__all__ = [k for k in globals() if not k.startswith("_")]
