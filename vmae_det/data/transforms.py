"""Clip transforms that carry boxes, built on ``detectron2.data.transforms``.

A clip is augmented by sampling each augmentation **once** (on its first frame) and applying the
resulting deterministic :class:`~detectron2.data.transforms.Transform` to every frame and to the
boxes, so all frames and boxes stay aligned. detectron2 provides resize/crop/flip; we add the two
video-specific ones: VideoMAE's multi-scale corner crop and a clip-consistent colour jitter.

Boxes are float ``[N, 4]`` XYXY in pixels of the frames they are given with; the result is clipped
to the output frame (dropping degenerate boxes is the caller's decision, see the AVA mapper).
"""
from __future__ import annotations

import random
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from detectron2.data import transforms as T
from fvcore.transforms.transform import NoOpTransform, Transform, TransformList

__all__ = [
    "apply_augmentations_to_clip",
    "clip_boxes_to_image",
    "MultiScaleCrop",
    "RandomColorJitter",
    "ColorJitterTransform",
    "build_ava_train_augmentations",
    "build_ava_test_augmentations",
    "build_pretrain_augmentations",
]


def clip_boxes_to_image(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Clamp XYXY pixel boxes into ``[0, width] x [0, height]`` (returns a new float32 array)."""
    out = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    out[:, 0::2] = out[:, 0::2].clip(0, width)
    out[:, 1::2] = out[:, 1::2].clip(0, height)
    return out


def apply_augmentations_to_clip(
    augs: Sequence[Union[T.Augmentation, Transform]],
    frames: np.ndarray,
    boxes: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Augment a whole clip consistently.

    Args:
        augs: detectron2 augmentations (or fixed transforms), applied in order.
        frames: ``uint8 [T, H, W, C]``.
        boxes: optional float ``[N, 4]`` XYXY pixel boxes in the frames' coordinates.

    Returns:
        ``(frames uint8 [T, H', W', C], boxes float32 [N, 4] clipped to the new frame or None)``.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise ValueError(f"frames must be [T, H, W, C] with T >= 1, got shape {frames.shape}")
    aug_input = T.AugInput(frames[0], boxes=None if boxes is None else np.asarray(boxes, np.float32).reshape(-1, 4))
    # Sample every random parameter once, on the first frame; then replay on the others.
    tfm = T.AugmentationList(list(augs))(aug_input)
    out = np.stack([aug_input.image] + [tfm.apply_image(f) for f in frames[1:]])
    out_boxes = None
    if boxes is not None:
        out_boxes = clip_boxes_to_image(aug_input.boxes, out.shape[1], out.shape[2])
    return np.ascontiguousarray(out), out_boxes


class ColorJitterTransform(Transform):
    """Brightness / contrast / saturation scaling with fixed factors (identity on geometry)."""

    def __init__(self, brightness: float = 1.0, contrast: float = 1.0, saturation: float = 1.0):
        super().__init__()
        self._set_attributes(locals())

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        x = img.astype(np.float32)
        x = x * self.brightness
        if self.contrast != 1.0:
            # Blend with the mean grey level, as torchvision's adjust_contrast.
            mean = (x @ np.array([0.299, 0.587, 0.114], np.float32)).mean()
            x = (x - mean) * self.contrast + mean
        if self.saturation != 1.0 and x.shape[-1] == 3:
            grey = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
            x = (x - grey) * self.saturation + grey
        return x.clip(0, 255).astype(img.dtype) if img.dtype == np.uint8 else x

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return coords

    def inverse(self) -> Transform:
        return NoOpTransform()


class RandomColorJitter(T.Augmentation):
    """Colour jitter sampled once per clip: factors uniform in ``[1 - s, 1 + s]``, with prob ``prob``."""

    def __init__(self, brightness: float = 0.4, contrast: float = 0.4, saturation: float = 0.4, prob: float = 0.8):
        super().__init__()
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        if random.random() >= self.prob:
            return NoOpTransform()
        f = lambda s: float(np.random.uniform(max(0.0, 1 - s), 1 + s))  # noqa: E731
        return ColorJitterTransform(f(self.brightness), f(self.contrast), f(self.saturation))


class MultiScaleCrop(T.Augmentation):
    """VideoMAE/TSN multi-scale crop: a corner/centre crop of a random scale, resized to ``size``.

    Crop side lengths are ``min(H, W) * s`` for ``s`` in ``scales``; width and height scales are
    drawn as a pair whose indices differ by at most ``max_distort`` (mild aspect change). With
    ``fix_crop`` the crop is placed at one of 13 fixed positions (corners, centre, edge centres and
    quarter points) instead of anywhere, as in the original implementation.
    """

    def __init__(
        self,
        size: Union[int, Tuple[int, int]],
        scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66),
        max_distort: int = 1,
        fix_crop: bool = True,
        more_fix_crop: bool = True,
        interp=None,
    ):
        super().__init__()
        size = (size, size) if isinstance(size, int) else tuple(size)  # (h, w)
        self._init(locals())
        self.size = size

    def _crop_size(self, h: int, w: int) -> Tuple[int, int]:
        base = min(h, w)
        sizes = [int(base * s) for s in self.scales]
        out_h, out_w = self.size
        # Snap near-output sizes to the output size (avoids a useless 1-2 px resize).
        hs = [out_h if abs(s - out_h) < 3 else s for s in sizes]
        ws = [out_w if abs(s - out_w) < 3 else s for s in sizes]
        pairs = [
            (ch, cw) for i, ch in enumerate(hs) for j, cw in enumerate(ws) if abs(i - j) <= self.max_distort
        ]
        ch, cw = random.choice(pairs)
        return min(max(ch, 1), h), min(max(cw, 1), w)

    def _offset(self, h: int, w: int, ch: int, cw: int) -> Tuple[int, int]:
        if not self.fix_crop:
            return random.randint(0, h - ch), random.randint(0, w - cw)
        hs, ws = (h - ch) // 4, (w - cw) // 4
        grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]
        if self.more_fix_crop:
            grid += [(2, 0), (2, 4), (4, 2), (0, 2), (1, 1), (1, 3), (3, 1), (3, 3)]
        gy, gx = random.choice(grid)
        return gy * hs, gx * ws

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        ch, cw = self._crop_size(h, w)
        y0, x0 = self._offset(h, w, ch, cw)
        out_h, out_w = self.size
        return TransformList(
            [T.CropTransform(x0, y0, cw, ch), T.ResizeTransform(ch, cw, out_h, out_w, self.interp)]
        )


def build_ava_train_augmentations(
    short_edge: Sequence[int] = (256, 320),
    crop_size: Optional[int] = 224,
    max_size: int = 1333,
    flip: bool = True,
    color_jitter: bool = False,
) -> List[T.Augmentation]:
    """SlowFast-style AVA train augmentations: short-side jitter, random crop, h-flip (+ jitter)."""
    augs: List[T.Augmentation] = [T.ResizeShortestEdge(tuple(short_edge), max_size, sample_style="range")]
    if crop_size:
        augs.append(T.RandomCrop("absolute", (crop_size, crop_size)))
    if flip:
        augs.append(T.RandomFlip(horizontal=True))
    if color_jitter:
        augs.append(RandomColorJitter())
    return augs


def build_ava_test_augmentations(short_edge: int = 256, max_size: int = 1333) -> List[T.Augmentation]:
    """AVA test: resize the short side to ``short_edge`` (no crop: every box must stay visible)."""
    return [T.ResizeShortestEdge(short_edge, max_size, sample_style="choice")]


def build_pretrain_augmentations(size: int = 224, flip: bool = True) -> List[T.Augmentation]:
    """VideoMAE pretraining: multi-scale crop to ``size`` plus horizontal flip."""
    augs: List[T.Augmentation] = [MultiScaleCrop(size)]
    if flip:
        augs.append(T.RandomFlip(horizontal=True))
    return augs
