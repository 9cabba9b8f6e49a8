"""Box arithmetic of the official VideoMAE AVA detector (VMAD), in its maskrcnn-benchmark convention.

VMAD (``alphaction/structures/bounding_box.py``) treats a box ``x1..x2`` as inclusive pixels: its
width is ``x2 - x1 + 1`` and the last valid coordinate of a ``W``-wide image is ``W - 1``. Both
helpers below reproduce its numbers exactly on float32 xyxy boxes in clip pixels (checked against
VMAD's own code in ``tests/modeling/test_vmad_parity.py``); they are the only place this convention lives.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

__all__ = ["extend_boxes", "jitter_boxes"]

TO_REMOVE = 1.0  # the "+1" of inclusive pixel widths


def _check(boxes: torch.Tensor) -> torch.Tensor:
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be [N, 4] xyxy, got shape {tuple(boxes.shape)}")
    return boxes.float()


def extend_boxes(boxes: torch.Tensor, scale: Sequence[float], height: int, width: int) -> torch.Tensor:
    """Enlarge boxes by ``scale = (sx, sy)`` of their width/height in total, then clamp to the image.

    VMAD's ``BoxList.extend``: each side moves out by ``s * (size + 1) / 2``; coordinates are clamped
    to ``[0, W - 1] x [0, H - 1]`` (no box is removed). Used at test time for RoIAlign only: the
    reported and scored boxes stay the original ones.
    """
    b = _check(boxes)
    sx, sy = (float(scale[0]), float(scale[0])) if len(scale) < 2 else (float(scale[0]), float(scale[1]))
    x1, y1, x2, y2 = b.unbind(-1)
    pad_w = sx * (x2 - x1 + TO_REMOVE) / 2
    pad_h = sy * (y2 - y1 + TO_REMOVE) / 2
    out = torch.stack([x1 - pad_w, y1 - pad_h, x2 + pad_w, y2 + pad_h], dim=-1)
    out[:, 0::2] = out[:, 0::2].clamp(0, width - TO_REMOVE)
    out[:, 1::2] = out[:, 1::2].clamp(0, height - TO_REMOVE)
    return out


def jitter_boxes(
    boxes: torch.Tensor, jitter: Sequence[float], height: int, width: int, generator: Optional[torch.Generator] = None
) -> torch.Tensor:
    """Random box jitter of VMAD's training (``BoxList.random_aug(x_out, x_in, y_out, y_in)``).

    Each side moves by a uniform fraction of the box size (inclusive widths): ``x1`` by
    ``[-x_out, x_in]``, ``x2`` by ``[-x_in, x_out]`` (``y`` alike), so with VMAD's
    ``(0.2, 0.1, 0.1, 0.05)`` boxes grow more often than they shrink. Then ``x1 <= W - 2``,
    ``x2 <= W - 1`` and ``x2 >= x1 + 1`` (a box squeezed to nothing, e.g. cropped away, becomes a
    one-pixel box at the edge, as in VMAD). Draws ``torch.rand`` four times in VMAD's order, so a
    seeded run reproduces VMAD's boxes.
    """
    b = _check(boxes)
    if len(jitter) != 4:
        raise ValueError(f"jitter must be (x_out, x_in, y_out, y_in), got {tuple(jitter)}")
    x_out, x_in, y_out, y_in = (float(j) for j in jitter)
    n = b.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, 1, dtype=torch.float32, generator=generator).to(b.device) * (hi - lo) + lo

    x1, y1, x2, y2 = b.split(1, dim=-1)
    bw, bh = x2 - x1 + TO_REMOVE, y2 - y1 + TO_REMOVE
    jx1 = x1 + bw * uniform(-x_out, x_in)
    jy1 = y1 + bh * uniform(-y_out, y_in)
    jx2 = x2 + bw * uniform(-x_in, x_out)
    jy2 = y2 + bh * uniform(-y_in, y_out)
    jx1 = jx1.clamp(0, width - TO_REMOVE - 1)
    jy1 = jy1.clamp(0, height - TO_REMOVE - 1)
    jx2 = torch.max(jx2.clamp(max=width - TO_REMOVE), jx1 + 1)
    jy2 = torch.max(jy2.clamp(max=height - TO_REMOVE), jy1 + 1)
    out = torch.cat([jx1, jy1, jx2, jy2], dim=-1)
    out[:, 0::2] = out[:, 0::2].clamp(0, width - TO_REMOVE)
    out[:, 1::2] = out[:, 1::2].clamp(0, height - TO_REMOVE)
    return out
