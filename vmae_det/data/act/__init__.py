"""ACT-format datasets (UCF101-24, JHMDB-21, MultiSports): per-frame dataset dicts and registration (the files are
read by :mod:`vmae_det.formats.act`; the clips by :class:`~vmae_det.data.ava.clip_source.PatternFramesClipSource`
and mapped by :class:`~vmae_det.data.ava.AVAClipMapper`)."""

from .catalog import ACTMetadata, load_act_dicts, register_act_dataset, register_all_act

__all__ = [
    "ACTMetadata",
    "load_act_dicts",
    "register_act_dataset",
    "register_all_act",
]
