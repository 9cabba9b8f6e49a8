"""Data: AVA datasets and mapper, clip transforms, video decoding, pretraining video lists.

Importing it registers the built-in datasets under ``$VMAE_DET_DATASETS`` (default ``datasets``).
"""

from . import transforms, video_dataset  # video_dataset registers the pretraining video lists
from .ava import AVAClipMapper, load_ava_dicts, register_all_ava, register_ava
from .transforms import apply_augmentations_to_clip

register_all_ava()

__all__ = [
    "AVAClipMapper",
    "apply_augmentations_to_clip",
    "load_ava_dicts",
    "register_all_ava",
    "register_ava",
    "transforms",
    "video_dataset",
]
