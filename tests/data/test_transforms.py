"""Clip transforms: one sampled transform per clip, boxes follow resize/crop/flip exactly."""

from __future__ import annotations

import random

import numpy as np
import pytest
from detectron2.data import transforms as T

import vmae_det  # noqa: F401  (shims before detectron2)
from vmae_det.data.transforms import (
    ColorJitterTransform,
    MultiScaleCrop,
    RandomColorJitter,
    apply_augmentations_to_clip,
    build_ava_test_augmentations,
    build_ava_train_augmentations,
    build_pretrain_augmentations,
    clip_boxes_to_image,
)


def _clip_with_box(t=4, h=96, w=128, box=(30, 20, 60, 70)):
    """Grey clip with a white rectangle exactly covering ``box`` (x1, y1, x2 exclusive, y2 exclusive)."""
    frames = np.full((t, h, w, 3), 100, np.uint8)
    x1, y1, x2, y2 = box
    frames[:, y1:y2, x1:x2] = 255
    return frames, np.array([box], np.float32)


def _white_extent(img):
    ys, xs = np.nonzero(img[..., 0] > 200)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def test_resize_scales_boxes_exactly():
    frames, boxes = _clip_with_box()
    out, ob = apply_augmentations_to_clip([T.ResizeShortestEdge(48, sample_style="choice")], frames, boxes)
    assert out.shape == (4, 48, 64, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(ob, boxes * 0.5)


def test_flip_boxes_exactly_and_pixels_agree():
    frames, boxes = _clip_with_box()
    out, ob = apply_augmentations_to_clip([T.RandomFlip(prob=1.0, horizontal=True)], frames, boxes)
    np.testing.assert_allclose(ob, [[128 - 60, 20, 128 - 30, 70]])
    for f in out:
        np.testing.assert_allclose(_white_extent(f), ob[0])


def test_crop_shifts_and_clips_boxes():
    frames, boxes = _clip_with_box()
    boxes = np.concatenate([boxes, [[100, 80, 127, 95]]]).astype(np.float32)
    out, ob = apply_augmentations_to_clip([T.CropTransform(40, 10, 50, 40)], frames, boxes)
    assert out.shape == (4, 40, 50, 3)
    # First box partly outside on the left: clipped at 0; second fully outside: collapses to a line.
    np.testing.assert_allclose(ob[0], [0, 10, 20, 40])
    assert ob[1][0] == ob[1][2] == 50


@pytest.mark.parametrize("seed", range(6))
def test_random_train_augs_consistent_across_frames_and_boxes(seed):
    random.seed(seed)
    np.random.seed(seed)
    frames, boxes = _clip_with_box(t=5, box=(40, 30, 70, 66))
    augs = build_ava_train_augmentations(short_edge=(96, 140), crop_size=80, flip=True)
    out, ob = apply_augmentations_to_clip(augs, frames, boxes)
    assert out.shape == (5, 80, 80, 3)
    assert all(np.array_equal(out[0], f) for f in out[1:])  # one transform for the whole clip
    if (out[0, ..., 0] > 200).sum() > 20:  # the rectangle is (partly) in the crop
        # Interpolation blurs the edge by about a pixel.
        np.testing.assert_allclose(_white_extent(out[0]), ob[0], atol=1.5)


def test_test_augs_keep_aspect():
    frames, boxes = _clip_with_box()
    out, ob = apply_augmentations_to_clip(build_ava_test_augmentations(192), frames, boxes)
    assert out.shape == (4, 192, 256, 3)
    np.testing.assert_allclose(ob, boxes * 2)


@pytest.mark.parametrize("seed", range(4))
def test_multiscale_crop(seed):
    random.seed(seed)
    frames, boxes = _clip_with_box(h=96, w=128)
    aug = MultiScaleCrop(64)
    tfm = aug.get_transform(frames[0])
    crop, resize = tfm.transforms
    assert crop.h in {96, 84, 72, 63} and crop.w in {96, 84, 72, 63}
    # Crop positions are on the 5x5 quarter grid.
    assert crop.x0 in {k * ((128 - crop.w) // 4) for k in range(5)}
    assert crop.y0 in {k * ((96 - crop.h) // 4) for k in range(5)}
    out, ob = apply_augmentations_to_clip([aug], frames, boxes)
    assert out.shape == (4, 64, 64, 3)
    assert (ob >= 0).all() and (ob <= 64).all()
    out2, _ = apply_augmentations_to_clip(build_pretrain_augmentations(64), frames)
    assert out2.shape == (4, 64, 64, 3)


def test_color_jitter_same_for_all_frames_and_keeps_boxes():
    np.random.seed(0)
    frames = np.random.randint(0, 255, (1, 16, 16, 3), np.uint8).repeat(3, axis=0)
    boxes = np.array([[1, 2, 8, 9]], np.float32)
    out, ob = apply_augmentations_to_clip([RandomColorJitter(prob=1.0)], frames, boxes)
    assert not np.array_equal(out[0], frames[0])
    assert np.array_equal(out[0], out[1]) and np.array_equal(out[1], out[2])
    np.testing.assert_array_equal(ob, boxes)
    same = ColorJitterTransform(1.0, 1.0, 1.0).apply_image(frames[0])
    np.testing.assert_array_equal(same, frames[0])


def test_clip_boxes_and_errors():
    np.testing.assert_array_equal(clip_boxes_to_image(np.array([[-5, -1, 200, 50]]), 40, 100), [[0, 0, 100, 40]])
    with pytest.raises(ValueError, match="frames"):
        apply_augmentations_to_clip([], np.zeros((0, 4, 4, 3), np.uint8))
