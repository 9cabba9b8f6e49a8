"""Where the ACT-format datasets keep their files: the frames or videos of each distribution (UCF101-24,
JHMDB-21, MultiSports) and the folders and files of their tiny synthetic copies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

__all__ = ["ACT_LAYOUTS", "TINY_DATASETS", "ACTLayout"]


@dataclass(frozen=True)
class ACTLayout:
    """Where a dataset's pixels are: ``<root>/<frames>/<video>/<pattern % frame>`` or
    ``<root>/<videos>/<video><video_ext>``; ``fps`` is the frame rate of its videos."""

    fps: float
    frames: Optional[str] = None
    pattern: Optional[str] = None
    videos: Optional[str] = None
    video_ext: str = ".mp4"


#: The layouts of the distributions (MOC's / ACT's frames of UCF101-24 and JHMDB, MultiSports' videos).
ACT_LAYOUTS: Dict[str, ACTLayout] = {
    "ucf24": ACTLayout(fps=25.0, frames="rgb-images", pattern="%05d.jpg"),
    "jhmdb": ACTLayout(fps=30.0, frames="Frames", pattern="%05d.png"),
    "multisports": ACTLayout(fps=25.0, videos="trainval"),
}


#: The tiny copies (made by :mod:`vmae_det.synthetic.act`): dataset -> (folder, ground-truth file, layout,
#: person-box files by split kind, labels in ACT order).
TINY_DATASETS: Dict[str, tuple] = {
    "ucf24": (
        "tiny_ucf24",
        "UCF101v2-GT.pkl",
        "ucf24",
        {"train": "person_boxes.pkl", "test": "person_boxes.pkl"},
        ["Jumping", "Running", "Walking", "Waving"],
    ),
    "jhmdb": (
        "tiny_jhmdb",
        "JHMDB-GT.pkl",
        "jhmdb",
        {"train": "person_boxes.pkl", "test": "person_boxes.pkl"},
        ["jump", "run", "walk", "wave"],
    ),
    "multisports": (
        "tiny_multisports",
        "annotations/multisports_GT.pkl",
        "multisports",
        {
            "train": "annotations/MultiSports_box/train.recall_96.13.pkl",
            "test": "annotations/MultiSports_box/val.recall_96.13.pkl",
        },
        ["aerobic jump", "aerobic wave", "football run", "football walk"],
    ),
}
