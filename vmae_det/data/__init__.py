"""Data: AVA and ACT-format (UCF101-24, JHMDB, MultiSports) datasets, the clip mapper, clip transforms, video
decoding, pretraining video lists.

Importing it registers the built-in datasets under ``$VMAE_DET_DATASETS`` (default ``datasets``).
"""

from . import transforms, video_dataset  # video_dataset registers the pretraining video lists
from .act import load_act_dicts, register_act_dataset, register_all_act
from .ava import AVAClipMapper, load_ava_dicts, register_all_ava, register_all_ava_kinetics, register_ava
from .transforms import apply_augmentations_to_clip

register_all_ava()
register_all_act()
register_all_ava_kinetics()

__all__ = [
    "AVAClipMapper",
    "apply_augmentations_to_clip",
    "load_act_dicts",
    "load_ava_dicts",
    "register_act_dataset",
    "register_all_act",
    "register_all_ava",
    "register_ava",
    "transforms",
    "video_dataset",
]
