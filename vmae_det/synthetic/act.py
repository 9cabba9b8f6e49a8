"""Generate the tiny ACT-format datasets in their real layouts: ``tiny_ucf24`` (JPEG frames, a Python-2-style
``UCF101v2-GT.pkl``), ``tiny_jhmdb`` (PNG frames, three splits) and ``tiny_multisports`` (mp4 videos in sport
folders, person-box pickles). Figures are :mod:`vmae_det.synthetic.ava`'s; a class is a motion and a colour.
Deterministic (a seed per video); the folders are committed; command line: ``datasets/make_tiny_act.py``.
"""

from __future__ import annotations

import json
import math
import pickle
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..formats.act import write_python2_pickle
from ..formats.act_layout import ACT_LAYOUTS, TINY_DATASETS
from ..formats.atomic import atomic_save, atomic_write_bytes, atomic_write_text
from .ava import (
    ARM_MAX,
    ARM_MIN,
    HEIGHT,
    JUMP_HEIGHT,
    JUMP_PERIOD,
    MARGIN,
    PALETTE,
    WAVE_PERIOD,
    WIDTH,
    Figure,
    detector_boxes,
    draw_background,
    draw_figure,
    figure_box,
    write_mp4,
)

__all__ = ["make_tiny_act", "render_act_video"]

WALK_SPEED, RUN_SPEED = 1.0, 2.0  # px / frame: a 40-frame tube stays inside the 128-pixel frame
NUM_FRAMES = 40
SEED = 23

SPORTS = {"aerobic_gymnastics": (0, 1), "football": (2, 3)}  # sport folder -> its label indices


def _motion(label: str) -> str:
    word = label.split()[-1].lower()
    return {"jumping": "jump", "running": "run", "walking": "walk", "waving": "wave"}.get(word, word)


def _track(rng: np.random.Generator, fig: Figure, n: int, motion: Optional[str], span: Tuple[int, int]):
    """Per-frame ``(cx, feet, arm)`` of a figure doing ``motion`` on 0-based frames ``span[0]..span[1]`` and
    standing still elsewhere."""
    first, last = span
    speed = {"walk": WALK_SPEED, "run": RUN_SPEED}.get(motion, 0.0)
    lo, hi = MARGIN + fig.half_extent, WIDTH - 1 - MARGIN - fig.half_extent
    travel = speed * (last - first)
    direction = 1.0 if rng.random() < 0.5 else -1.0
    x0 = float(rng.uniform(lo, max(lo, hi - travel)))
    if direction < 0:
        x0 = hi + lo - x0  # mirrored: room to the left
    jump_room = fig.lane_bottom - fig.lane_top - fig.height >= JUMP_HEIGHT
    base_feet = int(rng.integers(fig.lane_top + fig.height + JUMP_HEIGHT, fig.lane_bottom + 1))
    still_arm = float(rng.uniform(ARM_MIN, (ARM_MIN + ARM_MAX) / 2))
    phase = float(rng.uniform(0, 2 * math.pi))
    t = np.clip(np.arange(n) - first, 0, last - first).astype(np.float64)  # frames into the action, held after
    cx = x0 + direction * speed * t
    active = (np.arange(n) >= first) & (np.arange(n) <= last)
    hop = JUMP_HEIGHT * np.abs(np.sin(math.pi * t / JUMP_PERIOD)) if motion == "jump" and jump_room else 0 * t
    feet = base_feet - np.round(np.where(active, hop, 0)).astype(np.int64)
    mid, amp = (ARM_MIN + ARM_MAX) / 2, (ARM_MAX - ARM_MIN) / 2
    wave = mid + amp * np.sin(2 * math.pi * t / WAVE_PERIOD + phase)
    arm = np.where(active & (motion == "wave"), wave, still_arm)
    return cx, feet, arm


def render_act_video(seed: int, n: int, people: Sequence[Tuple[Optional[int], Tuple[int, int]]], labels, colors=None):
    """Render one video.

    Args:
        people: per person ``(label index or None, (first, last) 0-based frames of the action)``.
        colors: per person an RGB colour (default: distinct random palette colours).

    Returns:
        ``(frames uint8 [n, H, W, 3] RGB, boxes int [people, n, 4] pixels)``.
    """
    rng = np.random.default_rng(seed)
    bg = draw_background(rng, "plain")
    lane_h = HEIGHT // len(people)
    if colors is None:
        colors = [PALETTE[i] for i in rng.permutation(len(PALETTE))[: len(people)]]
    figs, tracks = [], []
    for p, (label, span) in enumerate(people):
        tallest = min(40, lane_h - JUMP_HEIGHT - 3)
        height = int(rng.integers(min(28, tallest - 4), tallest + 1))
        fig = Figure(color=colors[p], height=height, lane_top=p * lane_h + 1, lane_bottom=(p + 1) * lane_h - 2)
        figs.append(fig)
        tracks.append(_track(rng, fig, n, _motion(labels[label]) if label is not None else None, span))
    frames = np.empty((n, HEIGHT, WIDTH, 3), np.uint8)
    boxes = np.zeros((len(people), n, 4), np.int64)
    for f in range(n):
        img = bg.copy()
        for p, (fig, (cx, feet, arm)) in enumerate(zip(figs, tracks)):
            draw_figure(img, fig, cx[f], int(feet[f]), arm[f])
            boxes[p, f] = figure_box(fig, cx[f], int(feet[f]), arm[f])
        frames[f] = img
    return frames, boxes


def _tube(boxes: np.ndarray, span: Tuple[int, int]) -> np.ndarray:
    """ACT tube ``(n, 5) frame x1 y1 x2 y2`` (1-based frames) of one person's boxes over ``span``."""
    frames = np.arange(span[0], span[1] + 1)
    return np.concatenate([frames[:, None] + 1, boxes[frames]], axis=1).astype(np.float32)


def _person_boxes(rng: np.random.Generator, boxes: np.ndarray) -> Dict[int, np.ndarray]:
    """Detector-like person boxes ``{frame: (k, 5) normalised x1 y1 x2 y2 score}`` of every frame."""
    scale = np.array([WIDTH, HEIGHT, WIDTH, HEIGHT], np.float64)
    return {f + 1: np.round(detector_boxes(rng, boxes[:, f] / scale, 0.3), 4) for f in range(boxes.shape[1])}


def _write_frames(folder: Path, frames: np.ndarray, pattern: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 85] if pattern.endswith(".jpg") else [cv2.IMWRITE_PNG_COMPRESSION, 9]
    for f, img in enumerate(frames):
        atomic_save(
            folder / (pattern % (f + 1)), lambda tmp, img=img: cv2.imwrite(tmp, img[..., ::-1], params), fsync=False
        )


def _video_plan(rng: np.random.Generator, dataset: str, label):
    """``[(label or None, span)]`` of one video of ``label`` (MultiSports: the sport's labels): UCF101-24 1-2
    people, one action, tubes inside the video; JHMDB one person over every frame; MultiSports 2-3 people, each
    acting during part of the video."""
    n = NUM_FRAMES
    if dataset == "jhmdb":
        return [(label, (0, n - 1))]
    if dataset == "ucf24":
        first, last = int(rng.integers(0, 8)), int(rng.integers(n - 8, n))
        return [(label, (first, last)) for _ in range(int(rng.integers(1, 3)))]
    people = []
    for p in range(int(rng.integers(2, 4))):
        if p == 2 and rng.random() < 0.5:
            people.append((None, (0, -1)))  # a bystander without action
            continue
        length = int(rng.integers(14, 24))
        first = int(rng.integers(0, n - length))
        people.append((int(rng.choice(label)), (first, first + length - 1)))
    return people


def _video_names(dataset: str, labels: List[str]) -> List[Tuple[str, object]]:
    """``[(ACT video name, label or the sport's labels)]`` in generation order."""
    if dataset == "ucf24":
        return [(f"{lab}/v_{lab}_g{g:02d}_c01", i) for i, lab in enumerate(labels) for g in (1, 2, 3)]
    if dataset == "jhmdb":
        return [(f"{lab}/tiny_{lab}_u_nm_np1_fr_goo_{k}", i) for i, lab in enumerate(labels) for k in range(3)]
    return [(f"{sport}/v_tiny{sport[:3]}{k:02d}_c001", labs) for sport, labs in SPORTS.items() for k in range(6)]


def _splits(dataset: str, names: List[str]) -> Tuple[List[List[str]], List[List[str]]]:
    """ACT ``train_videos``, ``test_videos``: UCF101-24 group 3 tests; JHMDB three splits, video ``k`` of each
    class tests in split ``k``; MultiSports the last two videos of each sport are the val set."""
    if dataset == "ucf24":
        return [[v for v in names if "_g03_" not in v]], [[v for v in names if "_g03_" in v]]
    if dataset == "jhmdb":
        tests = [[v for v in names if v.endswith(f"_{k}")] for k in range(3)]
        return [[v for v in names if v not in t] for t in tests], tests
    val = [v for v in names if int(v.rsplit("_c", 1)[0][-2:]) >= 4]
    return [[v for v in names if v not in val]], [val]


def _make_one(root: Path, dataset: str) -> Path:
    folder, gt_name, layout, box_files, labels = TINY_DATASETS[dataset]
    out = root / folder
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    fps = ACT_LAYOUTS[layout].fps
    gt = {"labels": list(labels), "gttubes": {}, "nframes": {}, "resolution": {}}
    person_boxes: Dict[str, np.ndarray] = {}
    names = _video_names(dataset, labels)
    for k, (video, label) in enumerate(names):
        rng = np.random.default_rng([SEED, list(TINY_DATASETS).index(dataset), k])
        people = _video_plan(rng, dataset, label)
        # The class is in the colour too (a bystander has one of its own), so a tiny model learns it quickly.
        colors = [PALETTE[lab if lab is not None else len(PALETTE) - 1] for lab, _ in people]
        frames, boxes = render_act_video(int(rng.integers(2**31)), NUM_FRAMES, people, labels, colors)
        tubes: Dict[int, list] = {}
        for p, (lab, span) in enumerate(people):
            if lab is not None:
                tubes.setdefault(lab, []).append(_tube(boxes[p], span))
        gt["gttubes"][video] = tubes
        gt["nframes"][video] = NUM_FRAMES
        gt["resolution"][video] = (HEIGHT, WIDTH)
        key = video.rsplit("/", 1)[-1] if dataset == "multisports" else video  # MultiSports' files: no sport folder
        for frame, rows in _person_boxes(rng, boxes).items():
            person_boxes[f"{key},{frame}"] = rows
        if dataset == "ucf24":
            _write_frames(out / "rgb-images" / video, frames, "%05d.jpg")
        elif dataset == "jhmdb":
            _write_frames(out / "Frames" / video, frames, "%05d.png")
        else:
            write_mp4(out / "trainval" / f"{video}.mp4", frames, fps)
    video_names = [v for v, _ in names]
    gt["train_videos"], gt["test_videos"] = _splits(dataset, video_names)
    if dataset == "multisports":
        # Python 3 pickles; box files per video set, their keys without the sport folder, as distributed.
        (out / "annotations").mkdir()
        atomic_write_bytes(out / gt_name, pickle.dumps(gt, protocol=4))
        for kind, videos in (("train", gt["train_videos"][0]), ("test", gt["test_videos"][0])):
            keep = {v.rsplit("/", 1)[-1] for v in videos}
            part = {k: v for k, v in person_boxes.items() if k.rsplit(",", 1)[0] in keep}
            (out / box_files[kind]).parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(out / box_files[kind], pickle.dumps(part, protocol=4))
    else:
        write_python2_pickle(out / gt_name, gt)
        write_python2_pickle(out / box_files["train"], person_boxes)
    _write_readme(out, dataset, labels, fps)
    return out


def _write_readme(out: Path, dataset: str, labels: List[str], fps: float) -> None:
    folder, gt_name, layout, box_files, _ = TINY_DATASETS[dataset]
    pixels = {
        "ucf24": "rgb-images/<class>/<video>/%05d.jpg",
        "jhmdb": "Frames/<class>/<video>/%05d.png",
        "multisports": "trainval/<sport>/<video>.mp4 (mp4v)",
    }[dataset]
    text = (
        f"{folder}: a synthetic copy of the {dataset} layout, generated by datasets/make_tiny_act.py (do not edit).\n\n"
        f"Pixels: {pixels}; {WIDTH}x{HEIGHT}, {NUM_FRAMES} frames per video, {fps:g} fps.\n"
        f"Ground truth: {gt_name} (ACT format{'' if dataset == 'multisports' else ', a Python-2-style pickle'}).\n"
        f"Person boxes: {', '.join(sorted(set(box_files.values())))} "
        "({'video,frame': (n, 5) normalised x1 y1 x2 y2 score}: every figure with noise, plus false positives).\n"
        f"Classes (label index: name): {json.dumps(dict(enumerate(labels)))}.\n"
        f"Motions: walk {WALK_SPEED} px/frame, run {RUN_SPEED} px/frame, jump {JUMP_HEIGHT} px every {JUMP_PERIOD} "
        f"frames, wave: the arm swings (period {WAVE_PERIOD} frames); outside its tube a figure stands still.\n"
    )
    atomic_write_text(out / "README.txt", text)


def make_tiny_act(root="datasets", datasets: Sequence[str] = tuple(TINY_DATASETS)) -> List[Path]:
    """(Re)generate the tiny ``datasets`` (names of :data:`TINY_DATASETS`) under ``root``; returns the folders."""
    unknown = [d for d in datasets if d not in TINY_DATASETS]
    if unknown:
        raise ValueError(f"unknown tiny dataset(s) {unknown}: one of {list(TINY_DATASETS)}")
    return [_make_one(Path(root), d) for d in datasets]
