#!/usr/bin/env python
"""Generate ``tiny_vmad_ava``: a small synthetic dataset in VMAD's processed-AVA layout.

The layout is AlphAction's preprocessing, the data VideoMAE-Action-Detection (VMAD) trains and
evaluates on (see :mod:`vmae_det.formats.vmad_layout`)::

    clips/trainval/<movie>/<second>.mp4             one second each, 25 fps H.264, short side 360
    annotations/ava_{train,val}_v2.2.csv            ground truth (80 AVA action ids)
    annotations/ava_{train,val}_v2.2_min.json       image info + GT boxes (csv2COCO)
    annotations/ava_{train,val}_excluded_timestamps_v2.2.csv
    annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt   (the official 60 classes)
    annotations/ava_file_names_trainval_v2.1.txt    the movie list that numbers the image ids
    boxes/ava_val_det_person_bbox.json              person detections, scores on both sides of 0.8

Movies are 640x360 (16:9) and 480x360 (4:3), so a test batch mixes clip sizes and VMAD's padding matters.
Content: a panning, textured background and 2-3 textured figures that move; clips exist for the
seconds VMAD's reader needs around each keyframe (two on each side). ``tests/tools/test_vmad_end_to_end.py``
evaluates on the copy in ``tests/data/tiny_vmad_ava`` against numbers produced by VMAD's own code.

Usage::

    python datasets/make_tiny_vmad_ava.py --root tests/data/tiny_vmad_ava [--force]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Dict, List, Tuple

import cv2
import numpy as np

from vmae_det.evaluation.ava_io import DEFAULT_LABEL_MAP
from vmae_det.formats.ava import annotation_file_names, format_ava_row, read_labelmap, write_ava_csv, write_labelmap
from vmae_det.formats.video_writer import VideoWriter
from vmae_det.formats.vmad_layout import (
    PERSON_BOX_FILES,
    VMAD_FPS,
    clip_file,
    image_info_file,
    read_image_info,
    write_image_info,
    write_person_boxes,
)

__all__ = ["make_tiny_vmad_ava", "MOVIES"]

#: movie -> (split, (width, height), keyframe seconds)
MOVIES: Dict[str, Tuple[str, Tuple[int, int], List[int]]] = {
    "trnAAAAAAAA": ("train", (640, 360), [902, 903, 904, 905]),
    "trnBBBBBBBB": ("train", (480, 360), [902, 903, 904, 905]),  # VMAD needs >= 8 (one batch)
    "valCCCCCCCC": ("val", (640, 360), [902, 903, 904]),
    "valDDDDDDDD": ("val", (480, 360), [902, 903, 904]),  # with valCCCCCCCC: one test batch of 5 keyframes
}
EXCLUDED = {"val": [("valCCCCCCCC", 903)], "train": []}
LOW_SCORE_KEYFRAME = ("valDDDDDDDD", 903)  # only detections below 0.8: not in VMAD's test set


def _texture(rng: np.random.RandomState, h: int, w: int) -> np.ndarray:
    """Smooth multi-scale colour noise, float [h, w, 3] in 0..255."""
    out = np.zeros((h, w, 3), np.float32)
    for cell, amp in ((64, 90.0), (16, 50.0), (6, 20.0)):
        small = rng.rand(h // cell + 2, w // cell + 2, 3).astype(np.float32)
        out += amp * (cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) - 0.5)
    return np.clip(128 + out, 0, 255)


def _render_movie(movie: str, size: Tuple[int, int], seconds: range, seed: int) -> Dict[int, np.ndarray]:
    """Frames per second of the movie: ``{second: uint8 [25, H, W, 3]}`` and the figures' boxes per frame."""
    w, h = size
    rng = np.random.RandomState(seed)
    pad = 64
    background = _texture(rng, h + 2 * pad, w + 2 * pad)
    figures = []
    for _ in range(3):
        fw, fh = rng.randint(50, 110), rng.randint(140, 260)
        figures.append(
            {
                "x": rng.uniform(0, w - fw),
                "y": rng.uniform(0, h - fh),
                "w": fw,
                "h": fh,
                "vx": rng.uniform(-4, 4),
                "vy": rng.uniform(-1.5, 1.5),
                "tex": _texture(rng, fh, fw) * 0.6 + rng.randint(0, 256, 3) * 0.4,
            }
        )
    out = {}
    yy, xx = np.mgrid[0:h, 0:w]
    for sec in seconds:
        frames = np.zeros((VMAD_FPS, h, w, 3), np.uint8)
        for f in range(VMAD_FPS):
            t = (sec - seconds[0]) * VMAD_FPS + f
            ox = int(pad + 40 * np.sin(t / 20.0)), int(pad + 20 * np.cos(t / 31.0))  # camera pan
            img = background[ox[1] : ox[1] + h, ox[0] : ox[0] + w].copy()
            img[..., 0] += 30 * np.sin(xx / 29.0 + t / 6.0)  # moving light
            for fig in figures:
                x = int(np.clip(fig["x"] + fig["vx"] * t, 0, w - fig["w"]))
                y = int(np.clip(fig["y"] + fig["vy"] * t + 6 * np.sin(t / 3.0), 0, h - fig["h"]))
                img[y : y + fig["h"], x : x + fig["w"]] = fig["tex"]
            frames[f] = np.clip(img, 0, 255).astype(np.uint8)
        out[sec] = frames
    return out


def _figure_box(rng: np.random.RandomState) -> List[float]:
    x1, y1 = rng.uniform(0.0, 0.7), rng.uniform(0.0, 0.4)
    return [x1, y1, min(1.0, x1 + rng.uniform(0.1, 0.3)), min(1.0, y1 + rng.uniform(0.3, 0.6))]


def make_tiny_vmad_ava(root: Path, force: bool = False, seed: int = 0) -> Path:
    """Write the dataset under ``root`` (refused if it exists, unless ``force``); return ``root``."""
    root = Path(root)
    if root.exists():
        if not force:
            raise FileExistsError(f"{root} exists (pass --force to replace it)")
        shutil.rmtree(root)
    rng = np.random.RandomState(seed)
    ann = root / "annotations"
    labels = read_labelmap(DEFAULT_LABEL_MAP)
    write_labelmap(ann / annotation_file_names("val")["label_map"], labels)
    movies = sorted(MOVIES)
    (ann / "ava_file_names_trainval_v2.1.txt").write_text("".join(f"{m}.mp4\n" for m in movies))
    for i, movie in enumerate(movies):
        split, size, keyframes = MOVIES[movie]
        seconds = range(keyframes[0] - 2, keyframes[-1] + 2)
        for sec, frames in _render_movie(movie, size, seconds, seed * 1000 + i).items():
            path = clip_file(root, movie, sec)
            path.parent.mkdir(parents=True, exist_ok=True)
            with VideoWriter(
                str(path),
                VMAD_FPS,
                size[0],
                size[1],
                crf=32,
                preset="veryfast",
                options={"threads": "1", "x264-params": "asm=0"},  # x264's SIMD: run-to-run bytes differ at 480x360
                codec="libx264",
            ) as writer:
                for frame in frames:
                    writer.write(frame)
    action_ids = np.array(sorted(range(1, 81)))
    detections = []
    for split in ("train", "val"):
        gt_rows, gt_tuples = [], []
        for movie in movies:
            msplit, size, keyframes = MOVIES[movie]
            if msplit != split:
                continue
            for sec in keyframes:
                for person in range(rng.randint(1, 4)):
                    box = _figure_box(rng)
                    acts = sorted(rng.choice(action_ids, size=rng.randint(1, 4), replace=False).tolist())
                    for a in acts:
                        gt_rows.append(format_ava_row(movie, sec, box, a, person, decimals=3))
                        gt_tuples.append((movie, sec, [round(v, 3) for v in box], a, person))
                    if split == "val":  # a detection near each person, some under 0.8
                        jitter = np.clip(np.array(box) + rng.normal(0, 0.02, 4), 0, 1)
                        score = rng.uniform(0.5, 0.79) if (movie, sec) == LOW_SCORE_KEYFRAME else rng.uniform(0.6, 1.0)
                        detections.append((movie, sec, jitter.tolist(), score))
                if split == "val" and (movie, sec) != LOW_SCORE_KEYFRAME:
                    # a false positive, and a box reaching the right/bottom edge
                    detections.append((movie, sec, _figure_box(rng), rng.uniform(0.8, 1.0)))
                    detections.append((movie, sec, [0.8, 0.5, 1.0, 1.0], rng.uniform(0.85, 1.0)))
        names = annotation_file_names(split)
        write_ava_csv(ann / names["groundtruth"], gt_rows)
        write_ava_csv(ann / names["exclusions"], [format_ava_row(v, t) for v, t in EXCLUDED[split]])
        sizes = {m: MOVIES[m][1] for m in movies}
        write_image_info(root / image_info_file(split), gt_tuples, {m: i for i, m in enumerate(movies)}, sizes)
    write_person_boxes(root / PERSON_BOX_FILES["val"], detections, read_image_info(root / image_info_file("val")))
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="datasets/tiny_vmad_ava")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    print(make_tiny_vmad_ava(Path(args.root), args.force, args.seed))


if __name__ == "__main__":
    main()
