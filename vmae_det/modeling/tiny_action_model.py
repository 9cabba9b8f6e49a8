"""A tiny random-weight stand-in for ``AVAActionDetector``; in the package, not tests/, as benchmarks run on it too.

Same interface as the detector in eval mode: ``forward(list[dict]) -> [{"boxes", "scores"}]`` and the export
entry point ``forward_tensors(clip, rois) -> probs``, with the same RoIAlign (aligned=True), in milliseconds on CPU.
"""

from __future__ import annotations

from typing import Dict, List

import torch
from torch import nn
from torchvision.ops import roi_align

from vmae_det.constants import IMAGENET_PIXEL_MEAN, IMAGENET_PIXEL_STD

__all__ = ["TinyActionModel"]


class TinyActionModel(nn.Module):
    """Random-weight stand-in for the action detector.

    Args:
        num_classes: C, number of action classes (ids ``1..C``).
        width: channels of the conv stem.
        stride: spatial stride of the stem (RoIAlign's ``spatial_scale`` is ``1 / stride``).
    """

    def __init__(self, num_classes: int = 5, width: int = 8, stride: int = 4) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stride = stride
        self.stem = nn.Conv3d(3, width, kernel_size=(3, stride, stride), stride=(1, stride, stride), padding=(1, 0, 0))
        self.cls = nn.Linear(width * 2 * 2, num_classes)
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_PIXEL_MEAN).view(1, 3, 1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_PIXEL_STD).view(1, 3, 1, 1, 1), False)

    def forward_tensors(self, clip: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """Sigmoid action probabilities ``[K, C]`` for ``rois`` ``[K, 5]`` (batch index, xyxy in clip pixels)."""
        x = (clip.float() - self.pixel_mean) / self.pixel_std
        feats = torch.relu(self.stem(x)).mean(dim=2)  # [B, width, H/s, W/s]
        pooled = roi_align(
            feats, rois, output_size=(2, 2), spatial_scale=1.0 / self.stride, sampling_ratio=0, aligned=True
        )
        return torch.sigmoid(self.cls(pooled.flatten(1)))

    def forward(self, batched_inputs: List[Dict]) -> List[Dict[str, torch.Tensor]]:
        clips = torch.stack([d["clip"] for d in batched_inputs])
        rois = torch.cat(
            [
                torch.cat([torch.full((len(d["boxes"]), 1), float(i), device=clips.device), d["boxes"].float()], dim=1)
                for i, d in enumerate(batched_inputs)
            ]
        )
        probs = self.forward_tensors(clips, rois)
        outputs, start = [], 0
        for d in batched_inputs:
            n = len(d["boxes"])
            h, w = d["clip_size"]
            scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=clips.device)
            outputs.append(
                {"boxes": d["boxes"].float() / scale, "scores": probs[start : start + n] * d["box_scores"].view(-1, 1)}
            )
            start += n
        return outputs
