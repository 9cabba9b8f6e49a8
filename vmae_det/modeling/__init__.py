"""VideoMAE models: backbone, masking, pretraining model, action detector."""

from .action_detector import AVAActionDetector
from .mae import VideoMAE, build_videomae
from .masking import FrameMasking, RandomMasking, TubeMasking, build_masking
from .vit import VideoViT, build_vit

__all__ = [
    "FrameMasking",
    "RandomMasking",
    "TubeMasking",
    "build_masking",
    "VideoViT",
    "build_vit",
    "VideoMAE",
    "build_videomae",
    "AVAActionDetector",
]
