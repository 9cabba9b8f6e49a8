"""ACT-format datasets (UCF101-24, JHMDB-21, MultiSports): per-frame dataset dicts, registration and the frame
folders' clip source (the files are read by :mod:`vmae_det.formats.act`; the clips are mapped by
:class:`~vmae_det.data.ava.AVAClipMapper`)."""

from .catalog import ACT_LAYOUTS, ACTLayout, ACTMetadata, load_act_dicts, register_act_dataset, register_all_act
from .clip_source import PatternFramesClipSource

__all__ = [
    "ACT_LAYOUTS",
    "ACTLayout",
    "ACTMetadata",
    "PatternFramesClipSource",
    "load_act_dicts",
    "register_act_dataset",
    "register_all_act",
]
