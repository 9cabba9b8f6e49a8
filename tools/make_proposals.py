#!/usr/bin/env python
"""Write SlowFast-style AVA person proposals with an off-the-shelf COCO person detector.

For every video of a dataset root (``frames/<id>/`` or ``videos/<id>.*``) and every keyframe second
from 902 whose frame exists, runs the detector on the keyframe and writes
``video_id,timestamp,x1,y1,x2,y2,,score`` rows (boxes normalised, person class only,
``score >= --min-score``) — the format of SlowFast's ``ava_{train,val}_predicted_boxes.csv``.

Example::

    python tools/make_proposals.py --root datasets/tiny_ava --split val \\
        --detector torchvision --weights fasterrcnn_resnet50_fpn_coco.pth \\
        --output datasets/tiny_ava/annotations/ava_val_predicted_boxes.csv
"""
from __future__ import annotations

import argparse
import csv
import logging
import sys
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import vmae_det  # noqa: E402,F401  (shims before detectron2)
from vmae_det.data.ava.clip_source import (  # noqa: E402
    FramesClipSource,
    VideoClipSource,
    keyframe_index,
)
from vmae_det.data.person_detector import DETECTORS, build_person_detector  # noqa: E402

logger = logging.getLogger("make_proposals")

_VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".avi", ".mov")


def _videos(root: Path, source: str, only: Optional[set]) -> List[Tuple[str, object]]:
    """``(video_id, ClipSource factory)`` for each video under ``root``."""
    found = {}
    if source in ("auto", "videos"):
        for sub in ("videos_15min", "videos"):
            if (root / sub).is_dir():
                for p in sorted((root / sub).iterdir()):
                    if p.suffix.lower() in _VIDEO_EXTS:
                        found[p.stem] = lambda p=p: VideoClipSource(p)
    if source in ("auto", "frames") and (root / "frames").is_dir():
        for d in sorted((root / "frames").iterdir()):
            if d.is_dir():
                found[d.name] = lambda d=d: FramesClipSource(d, d.name)  # frames win over videos
    if only is not None:
        found = {k: v for k, v in found.items() if k in only}
    return sorted(found.items())


def _split_videos(root: Path, split: Optional[str]) -> Optional[set]:
    if not split:
        return None
    gt = root / "annotations" / f"ava_{split}_v2.2.csv"
    lists = root / "frame_lists" / f"{split}.csv"
    if gt.is_file():
        with open(gt, newline="") as f:
            return {row[0] for row in csv.reader(f) if row}
    if lists.is_file():
        return {line.split(" ")[0] for line in lists.read_text().splitlines()[1:] if line}
    raise FileNotFoundError(f"--split {split}: neither {gt} nor {lists} exists")


def make_proposals(
    root: Path,
    output: Path,
    detector,
    split: Optional[str] = None,
    source: str = "auto",
    first_sec: int = 902,
    min_score: float = 0.0,
) -> int:
    """Run ``detector`` on every keyframe; write the CSV; return the number of rows."""
    rows: List[str] = []
    videos = _videos(root, source, _split_videos(root, split))
    if not videos:
        raise FileNotFoundError(f"no videos under {root}/frames or {root}/videos (split={split})")
    from tqdm import tqdm

    for vid, make_source in tqdm(videos, desc="videos", unit="video", dynamic_ncols=True):
        with make_source() as src:
            secs = []
            s = first_sec
            while keyframe_index(s) < src.num_frames:
                secs.append(s)
                s += 1
            for sec in tqdm(secs, desc=vid, unit="keyframe", leave=False, dynamic_ncols=True):
                frame = src.get_frames([keyframe_index(sec)])[0]
                h, w = frame.shape[:2]
                boxes, scores = detector(frame)
                for b, sc in zip(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores).reshape(-1)):
                    if sc < min_score:
                        continue
                    nb = np.clip(b / np.array([w, h, w, h], np.float32), 0, 1)
                    if nb[2] <= nb[0] or nb[3] <= nb[1]:
                        continue
                    rows.append(f"{vid},{sec:04d},{nb[0]:.3f},{nb[1]:.3f},{nb[2]:.3f},{nb[3]:.3f},,{float(sc):.6f}")
        logger.info(f"{vid}: {len(secs)} keyframes")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("".join(r + "\n" for r in rows))
    return len(rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="datasets/tiny_ava", help="dataset root with frames/ or videos/")
    p.add_argument("--split", default=None, help="only videos of annotations/ava_<split>_v2.2.csv")
    p.add_argument("--source", choices=("auto", "frames", "videos"), default="auto")
    p.add_argument("--detector", choices=DETECTORS, default="torchvision")
    p.add_argument("--weights", default=None, help="local weights file (default: library download/cache)")
    p.add_argument("--min-score", type=float, default=0.5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--first-sec", type=int, default=902)
    p.add_argument("--output", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    detector = build_person_detector(args.detector, weights=args.weights, device=args.device,
                                     score_threshold=args.min_score)
    n = make_proposals(Path(args.root), Path(args.output), detector, split=args.split, source=args.source,
                       first_sec=args.first_sec, min_score=args.min_score)
    print(f"wrote {n} proposals to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
