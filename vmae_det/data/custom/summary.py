"""What :func:`~vmae_det.data.custom.prepare_custom_dataset` wrote, and the code it prints to register and
train on it (a ``register_ava`` snippet and a LazyConfig file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from .annotations import SPLITS

__all__ = ["CustomDatasetSummary", "VideoInfo"]


@dataclass
class VideoInfo:
    """One converted video."""

    video_id: str
    source: str
    width: int  # of the written video (source size, padded to even)
    height: int
    source_fps: float
    num_frames: int  # written at 30 fps
    splits: List[str] = field(default_factory=list)


@dataclass
class CustomDatasetSummary:
    """What :func:`prepare_custom_dataset` wrote."""

    output_root: Path
    classes: Dict[int, str]  # action id -> name (the label map)
    num_classes: int  # largest action id: the model's / mapper's num_classes
    videos: Dict[str, VideoInfo]
    keyframes: Dict[str, int]  # per split
    boxes: Dict[str, int]  # per split: (video, keyframe, person) boxes
    rows: Dict[str, int]  # per split: AVA rows written (one per person and action)
    clipped_boxes: int = 0
    duplicate_rows: int = 0
    unused_videos: List[str] = field(default_factory=list)
    frames_extracted: bool = False

    def registration_code(self, prefix: Optional[str] = None) -> str:
        """Python lines registering both splits (``<prefix>_train`` / ``<prefix>_val``)."""
        prefix = prefix or self.output_root.name
        return "\n".join(
            [
                "from detectron2.data import DatasetCatalog",
                "from vmae_det.data import register_ava",
                "",
                'for _split in ("train", "val"):',
                f'    if f"{prefix}_{{_split}}" not in DatasetCatalog.list():',
                f'        register_ava(f"{prefix}_{{_split}}", "{self.output_root}", _split, '
                f"num_classes={self.num_classes})",
            ]
        )

    def config_code(self, prefix: Optional[str] = None, base: str = "vit_b") -> str:
        """A LazyConfig file (to save as ``configs/ava/<prefix>.py``) training on this dataset."""
        prefix = prefix or self.output_root.name
        k = self.num_classes
        return "\n".join(
            [
                f'"""Fine-tune on {self.output_root} (written by tools/prepare_custom_dataset.py)."""',
                self.registration_code(prefix),
                "",
                f"from .{base} import dataloader, lr_multiplier, model, optimizer, train",
                "",
                f"model.num_classes = {k}",
                f'dataloader.train.dataset.names = "{prefix}_train"',
                f'dataloader.test.dataset.names = "{prefix}_val"',
                f"dataloader.train.mapper.num_classes = {k}",
                f"dataloader.test.mapper.num_classes = {k}",
                'dataloader.test.mapper.test_box_source = "gt"  # until you make proposals (tools/make_proposals.py)',
                f'dataloader.evaluator.dataset_name = "{prefix}_val"',
                f'train.output_dir = "./output/{prefix}"',
            ]
        )

    def format(self, prefix: Optional[str] = None) -> str:
        """Human-readable summary plus the lines to register and train."""
        prefix = prefix or self.output_root.name
        lines = [
            f"Custom AVA dataset written to {self.output_root}",
            f"  videos:    {len(self.videos)} (30 fps H.264 mp4{', JPEG frames' if self.frames_extracted else ''})",
        ]
        for s in SPLITS:
            lines.append(
                f"  {s + ':':<10} {self.keyframes[s]} keyframes, {self.boxes[s]} person boxes, "
                f"{self.rows[s]} (person, action) rows"
            )
        lines.append(
            f"  classes:   {len(self.classes)} (num_classes={self.num_classes}): "
            + ", ".join(f"{i}={n}" for i, n in self.classes.items())
        )
        if self.clipped_boxes:
            lines.append(f"  clipped:   {self.clipped_boxes} boxes partly outside the frame were clipped to it")
        if self.duplicate_rows:
            lines.append(f"  skipped:   {self.duplicate_rows} exact duplicate rows")
        if self.unused_videos:
            lines.append(
                f"  unused:    {len(self.unused_videos)} videos without annotations were not converted: "
                + ", ".join(self.unused_videos[:5])
                + (" ..." if len(self.unused_videos) > 5 else "")
            )
        for s in SPLITS:
            if not self.keyframes[s]:
                lines.append(f"  note:      the {s} split is empty")
        lines += [
            "",
            "Register it (Python; e.g. at the top of a config file):",
            "",
            self.registration_code(prefix),
            "",
            f"and train with a config, e.g. configs/ava/{prefix}.py:",
            "",
            self.config_code(prefix),
            "",
            f"    python tools/train_net.py --config-file configs/ava/{prefix}.py "
            "train.init_checkpoint=/path/to/videomae_pretrain.pth",
        ]
        return "\n".join(lines)
