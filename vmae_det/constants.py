"""Constants shared by every layer; this module imports nothing of vmae_det."""

from __future__ import annotations

__all__ = [
    "AVA_FPS",
    "AVA_START_SEC",
    "AVA_FIRST_KEYFRAME_SEC",
    "IMAGENET_PIXEL_MEAN",
    "IMAGENET_PIXEL_STD",
    "VIDEO_EXTENSIONS",
    "default_device",
]

#: Frame rate of AVA's annotation grid (and of the videos ``tools/prepare_custom_dataset.py`` writes).
AVA_FPS: int = 30
#: Second of the movie at frame 0 of an AVA 15-minute crop: keyframe second ``s`` is frame ``(s - 900) * 30``,
#: as in SlowFast and pytorchvideo.
AVA_START_SEC: int = 900
#: First annotated keyframe second of AVA.
AVA_FIRST_KEYFRAME_SEC: int = 902

#: ImageNet RGB mean and std on the 0-255 scale, every model's default (the AVA recipes use VMAD's).
IMAGENET_PIXEL_MEAN = (123.675, 116.28, 103.53)
IMAGENET_PIXEL_STD = (58.395, 57.12, 57.375)

#: Video file extensions (lower case) recognised in video folders.
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv")


def default_device() -> str:
    """``"cuda"`` when a CUDA device is available, else ``"cpu"`` (torch is imported on first call)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
