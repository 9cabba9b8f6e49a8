"""Shared helpers of the demo tests: a tiny predictor, synthetic videos, a fixed person detector, the demo config."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import torch

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.demo import ActionPredictor, VideoStreamReader
from vmae_det.modeling.tiny_action_model import TinyActionModel

REPO = Path(__file__).resolve().parents[1]
NAMES = {1: "walk", 2: "stand", 3: "jump"}
BOXES = np.array([[4, 6, 30, 44], [40, 2, 90, 60]], np.float32)  # absolute, 96x64 frames


def make_video(path: Path, num_frames: int, size=(96, 64), fps: float = 30.0) -> Path:
    """A moving block on a gradient; each frame is distinct so clip-centring errors change scores."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    base = np.tile(np.linspace(0, 255, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
    for i in range(num_frames):
        frame = base.copy()
        x = (3 * i) % (w - 16)
        frame[10:40, x : x + 16] = (30, 200, 250)
        writer.write(frame)
    writer.release()
    return path


def make_predictor(num_frames=4, stride=2, short_side=32, seed=0) -> ActionPredictor:
    torch.manual_seed(seed)
    return ActionPredictor(
        TinyActionModel(num_classes=3),
        num_frames=num_frames,
        sampling_rate=stride,
        test_short_side=short_side,
        class_names=NAMES,
        device="cpu",
    )


def fixed_detector(frame):
    return BOXES.copy(), np.array([0.9, 0.8], np.float32)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def read_video(path) -> list:
    return [f for _, f in VideoStreamReader(str(path))]


#: An action-detector LazyConfig for ActionPredictor.from_config / tools/demo.py: the tiny model, 4-frame clips.
CONFIG = """
from detectron2.config import LazyCall as L
from vmae_det.data.ava import AVAClipMapper
from vmae_det.data.transforms import build_ava_test_augmentations
from vmae_det.modeling.tiny_action_model import TinyActionModel

model = L(TinyActionModel)(num_classes=3)
dataloader = dict(test=dict(mapper=L(AVAClipMapper)(
    is_train=False, num_classes=3, num_frames=4, sampling_rate=2,
    augmentations=L(build_ava_test_augmentations)(short_edge=32),
)))
"""


def tiny_model_checkpoint(path: Path, num_classes: int = 3, seed: int = 3) -> Path:
    """A random TinyActionModel's weights for :data:`CONFIG`, saved at ``path``."""
    torch.manual_seed(seed)
    torch.save({"model": TinyActionModel(num_classes=num_classes).state_dict()}, path)
    return path


def make_timed_video(path: Path, pts, rate, size=(64, 48), codec="mpeg4", rotation=None) -> Path:
    """Frame ``k`` is flat grey ``level(k)`` and has presentation time ``pts[k]`` (in units of ``1/rate``)."""
    from fractions import Fraction

    import av

    w, h = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.bit_rate = 20_000_000  # grey levels 3 apart must survive the encoder
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for k, p in enumerate(pts):
            img = np.full((h, w, 3), level(k), np.uint8)
            img[: h // 4, : w // 4] = 255  # top-left marker, to see rotations
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = int(p), Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def level(k: int) -> int:
    return 10 + 3 * (k % 80)


def which_frame(img: np.ndarray) -> int:
    """The ``k`` of a frame written by :func:`make_timed_video` (its grey level, away from the marker)."""
    return int(round((float(np.median(img[img.shape[0] // 2 :, img.shape[1] // 2 :])) - 10) / 3))


def nearest(pts, t) -> int:
    """Index of the timestamp nearest to ``t``, ties to the earlier frame (an independent re-statement)."""
    return min(range(len(pts)), key=lambda k: (abs(pts[k] - t), k))


SPARSE_PTS = sorted(set([0] + list(np.random.RandomState(0).choice(np.arange(1, 444), 67, replace=False))))
VFR_PTS = list(range(0, 30)) + list(range(30, 90, 3))  # 1 s at 30 fps, then 2 s at 10 fps
