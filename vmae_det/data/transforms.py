"""Clip transforms that carry boxes, built on ``detectron2.data.transforms``.

Each augmentation is sampled once per clip and its transform applied to every frame and box. The AVA transforms
mirror VMAD's ``alphaction/dataset/transforms/video_transforms.py``, drawing from Python's ``random`` in VMAD's
order, so a seeded run gives VMAD's pixels (``tests/modeling/test_vmad_parity.py``). Boxes are float ``[N, 4]``
XYXY pixels.
"""

from __future__ import annotations

import random
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from detectron2.data import transforms as T
from fvcore.transforms.transform import NoOpTransform, Transform, TransformList

__all__ = [
    "CV2ResizeTransform",
    "HSVJitterTransform",
    "RandomFixedSizeCrop",
    "RandomHFlip",
    "RandomHSVJitter",
    "ShortSideResize",
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
    inclusive: bool = False,
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Augment a whole clip consistently.

    Args:
        frames: ``uint8 [T, H, W, C]``.
        inclusive: the boxes are VMAD's inclusive pixels, transformed by ``BoxList``'s rules: a horizontal
            flip maps ``x`` to ``W - 1 - x``, not ``W - x``; only a crop clamps (to ``[0, crop size]``).

    Returns:
        ``(frames uint8 [T, H', W', C], boxes float32 [N, 4] clipped to the new frame, or None)``.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise ValueError(f"frames must be [T, H, W, C] with T >= 1, got shape {frames.shape}")
    aug_input = T.AugInput(frames[0], boxes=None if boxes is None else np.asarray(boxes, np.float32).reshape(-1, 4))
    # Sample every random parameter once, on the first frame; then replay on the others.
    tfm = T.AugmentationList(list(augs))(aug_input)
    rest = frames[1:]
    for t in tfm.transforms if isinstance(tfm, TransformList) else [tfm]:
        rest = _apply_to_frames(t, rest)
    out = np.concatenate([aug_input.image[None], rest]) if len(rest) else aug_input.image[None]
    out_boxes = None
    if boxes is not None:
        if not inclusive:
            out_boxes = clip_boxes_to_image(aug_input.boxes, out.shape[1], out.shape[2])
        else:  # BoxList's rules: the crop clamps to [0, crop size], nothing clamps after a flip
            out_boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
            for t in tfm.transforms if isinstance(tfm, TransformList) else [tfm]:
                out_boxes = t.apply_box(out_boxes)
                if isinstance(t, T.CropTransform):
                    out_boxes = clip_boxes_to_image(out_boxes, t.h, t.w)
                elif isinstance(t, T.HFlipTransform):
                    out_boxes[:, 0::2] -= 1
    return np.ascontiguousarray(out), out_boxes


def _apply_to_frames(t: Transform, frames: np.ndarray) -> np.ndarray:
    """``t.apply_image`` on every frame, as one array operation where ``t`` allows it (crop, flip, colour)."""
    if len(frames) == 0 or isinstance(t, NoOpTransform):
        return frames
    if isinstance(t, T.CropTransform):
        return frames[:, t.y0 : t.y0 + t.h, t.x0 : t.x0 + t.w]
    if isinstance(t, T.HFlipTransform):
        return frames[:, :, ::-1]
    if isinstance(t, HSVJitterTransform):
        n, h, w, c = frames.shape
        return t.apply_image(np.ascontiguousarray(frames).reshape(n * h, w, c)).reshape(n, h, w, c)
    return np.stack([t.apply_image(f) for f in frames])


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
    """VideoMAE/TSN multi-scale crop (``GroupMultiScaleCrop``): a crop of side ``min(H, W) * s`` for a random
    ``s`` in ``scales`` (width and height scale indices differ by at most ``max_distort``), resized to ``size``;
    with ``fix_crop`` placed at one of 13 fixed positions, as the original."""

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
        pairs = [(ch, cw) for i, ch in enumerate(hs) for j, cw in enumerate(ws) if abs(i - j) <= self.max_distort]
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
        return TransformList([T.CropTransform(x0, y0, cw, ch), T.ResizeTransform(ch, cw, out_h, out_w, self.interp)])


class CV2ResizeTransform(Transform):
    """Resize with ``cv2.resize`` (``INTER_LINEAR``, no antialiasing), as VMAD; boxes scale per axis."""

    def __init__(self, h: int, w: int, new_h: int, new_w: int):
        super().__init__()
        self._set_attributes(locals())

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        if (img.shape[0], img.shape[1]) != (self.h, self.w):
            raise ValueError(f"CV2ResizeTransform built for {self.h}x{self.w}, got an image {img.shape[:2]}")
        if (self.new_h, self.new_w) == (self.h, self.w):
            return img
        return cv2.resize(img, (self.new_w, self.new_h), interpolation=cv2.INTER_LINEAR)

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        coords = np.asarray(coords, np.float32).copy()
        coords[:, 0] *= self.new_w / self.w
        coords[:, 1] *= self.new_h / self.h
        return coords

    def inverse(self) -> Transform:
        return CV2ResizeTransform(self.new_h, self.new_w, self.h, self.w)


class ShortSideResize(T.Augmentation):
    """Resize the short side to ``short_edge`` (an int or a ``(lo, hi)`` range sampled per clip), the long side
    truncated as VMAD's ``Resize``; ``max_size`` caps the long side (VMAD: no cap)."""

    def __init__(self, short_edge: Union[int, Sequence[int]], max_size: Optional[int] = None):
        super().__init__()
        if isinstance(short_edge, (int, np.integer)):
            short_edge = (int(short_edge), int(short_edge))
        short_edge = tuple(int(s) for s in short_edge)
        if len(short_edge) != 2 or not 0 < short_edge[0] <= short_edge[1]:
            raise ValueError(f"short_edge must be an int or (lo, hi) with 0 < lo <= hi, got {short_edge}")
        self._init(locals())
        self.short_edge = short_edge

    def output_size(self, h: int, w: int, size: int) -> Tuple[int, int]:
        """``(new_h, new_w)`` for a ``h x w`` frame and short side ``size``."""
        if self.max_size is not None and max(h, w) / min(h, w) * size > self.max_size:
            size = int(round(self.max_size * min(h, w) / max(h, w)))
        if min(h, w) == size:
            return h, w
        if w < h:
            return int(size * h / w), size
        return size, int(size * w / h)

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        lo, hi = self.short_edge
        size = lo if lo == hi else random.randint(lo, hi)
        return CV2ResizeTransform(h, w, *self.output_size(h, w, size))


class RandomFixedSizeCrop(T.Augmentation):
    """A ``size x size`` crop placed uniformly, as VMAD's ``RandomClip``; boxes cropped away are kept (the mapper
    decides what to drop)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = int(size)

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        if h < self.size or w < self.size:
            raise ValueError(f"cannot crop {self.size}x{self.size} from a {h}x{w} frame")
        u, v = random.random(), random.random()
        return T.CropTransform(int(u * (w - self.size)), int(v * (h - self.size)), self.size, self.size)


class RandomHFlip(T.Augmentation):
    """Horizontal flip with probability ``prob``, drawn with ``random.random()`` (VMAD's order)."""

    def __init__(self, prob: float = 0.5):
        super().__init__()
        self.prob = float(prob)

    def get_transform(self, image: np.ndarray) -> Transform:
        if random.random() < self.prob:
            return T.HFlipTransform(image.shape[1])
        return NoOpTransform()


class HSVJitterTransform(Transform):
    """Shift hue (OpenCV units, 0-179, circular), saturation and value (clipped) of RGB uint8 frames, as VMAD."""

    def __init__(self, hue: int = 0, saturation: int = 0, value: int = 0):
        super().__init__()
        self._set_attributes(locals())

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"HSV jitter needs RGB uint8 [H, W, 3], got {img.dtype} {img.shape}")
        # VMAD's integer arithmetic ((h + dh + 180) % 180, clip(s + ds), clip(v + dv)) as one lookup table
        v = np.arange(256)
        lut = np.stack(
            [(v + self.hue + 180) % 180, np.clip(v + self.saturation, 0, 255), np.clip(v + self.value, 0, 255)], -1
        ).astype(np.uint8)[None]
        return cv2.cvtColor(cv2.LUT(cv2.cvtColor(img, cv2.COLOR_RGB2HSV), lut), cv2.COLOR_HSV2RGB)

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return coords

    def inverse(self) -> Transform:
        return NoOpTransform()


class RandomHSVJitter(T.Augmentation):
    """VMAD's colour jitter on every clip: hue +-``hue_degrees``, saturation and value +-``fraction * 255``."""

    def __init__(self, hue_degrees: float = 20.0, saturation: float = 0.1, value: float = 0.1):
        super().__init__()
        self.bounds = (int(round(hue_degrees / 2)), int(round(saturation * 255)), int(round(value * 255)))

    def get_transform(self, image: np.ndarray) -> Transform:
        return HSVJitterTransform(*(random.randint(-b, b) for b in self.bounds))


def build_ava_train_augmentations(
    short_edge: Union[int, Sequence[int]] = 256,
    crop_size: Optional[int] = 224,
    max_size: Optional[int] = None,
    flip: bool = True,
    color_jitter: Union[bool, str, None] = "hsv",
) -> List[T.Augmentation]:
    """AVA training augmentations; the defaults are VMAD's.

    Args:
        color_jitter: ``"hsv"`` (VMAD), ``"bcs"`` (brightness/contrast/saturation, SlowFast style) or ``False``.
    """
    augs: List[T.Augmentation] = [ShortSideResize(short_edge, max_size)]
    if crop_size:
        augs.append(RandomFixedSizeCrop(crop_size))
    if color_jitter in (True, "hsv"):
        augs.append(RandomHSVJitter())
    elif color_jitter == "bcs":
        augs.append(RandomColorJitter())
    elif color_jitter not in (False, None):
        raise ValueError(f"color_jitter must be 'hsv', 'bcs' or False, got {color_jitter!r}")
    if flip:
        augs.append(RandomHFlip(0.5))
    return augs


def build_ava_test_augmentations(short_edge: int = 256, max_size: Optional[int] = None) -> List[T.Augmentation]:
    """AVA test: resize the short side only, no crop, so every box stays visible (the demo uses these too)."""
    return [ShortSideResize(int(short_edge), max_size)]


def build_pretrain_augmentations(size: int = 224, flip: bool = True) -> List[T.Augmentation]:
    """VideoMAE pretraining: multi-scale crop to ``size`` plus horizontal flip."""
    augs: List[T.Augmentation] = [MultiScaleCrop(size)]
    if flip:
        augs.append(T.RandomFlip(horizontal=True))
    return augs
