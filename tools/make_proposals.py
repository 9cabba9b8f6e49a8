#!/usr/bin/env python
"""Write SlowFast-style AVA person proposals with an off-the-shelf COCO person detector.

For every video of a dataset root (``frames/<id>/`` or ``videos/<id>.*``) and every keyframe second
from 902 whose frame exists, runs the detector on the keyframe and writes
``video_id,timestamp,x1,y1,x2,y2,,score`` rows (boxes normalised, person class only,
``score >= --min-score``) — the format of SlowFast's ``ava_{train,val}_predicted_boxes.csv``.

A video of ``--split`` with neither frames nor a video file, or one that cannot be decoded, stops
the tool with ``error: ...`` naming it (exit code 2): proposals that silently miss a video lower
its mAP without a word. ``--skip-bad-videos`` skips such videos instead, each logged and counted in
the summary line.

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
from vmae_det.cli import run_main  # noqa: E402
from vmae_det.data.ava.clip_source import (  # noqa: E402
    FramesClipSource,
    VideoClipSource,
    keyframe_index,
)
from vmae_det.data.person_detector import DETECTORS, build_person_detector  # noqa: E402

logger = logging.getLogger("make_proposals")

_VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".avi", ".mov")


def _videos(root: Path, source: str, only: Optional[set]) -> Tuple[List[Tuple[str, object]], List[str]]:
    """``(video_id, ClipSource factory)`` for each video under ``root``, and the ids of ``only``
    that have none."""
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
    missing: List[str] = []
    if only is not None:
        missing = sorted(only - set(found))
        found = {k: v for k, v in found.items() if k in only}
    return sorted(found.items()), missing


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


def collect_videos(
    root: Path, split: Optional[str] = None, source: str = "auto", skip_bad_videos: bool = False
) -> Tuple[List[Tuple[str, object]], List[str]]:
    """The videos to run on, each opened once to check it reads (before any detector is built),
    and the skipped ones as ``"<id> (<reason>)"``.

    Raises:
        FileNotFoundError: no videos at all, or (without ``skip_bad_videos``) a video of the split
            with neither ``frames/<id>/`` nor a video file.
        OSError: (without ``skip_bad_videos``) a video or frame folder that cannot be read; the
            message names the file.
    """
    videos, missing = _videos(root, source, _split_videos(root, split))
    where = f"{root}/frames/<id>/ or {root}/videos/<id>.* (--source {source})"
    if not videos and not missing:
        raise FileNotFoundError(f"no videos under {where} (split={split})")
    skipped: List[str] = []
    if missing:
        message = (f"{len(missing)} video(s) of split '{split}' have neither {where}: "
                   f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}")
        if not skip_bad_videos:
            raise FileNotFoundError(f"{message}; add them, or pass --skip-bad-videos to skip them")
        logger.warning(f"{message}; skipped (--skip-bad-videos)")
        skipped += [f"{vid} (missing)" for vid in missing]
    readable = []
    for vid, make_source in videos:
        try:
            with make_source() as src:
                src.get_frames([src.num_frames - 1])
        except OSError as e:  # VideoDecodeError, a missing or unreadable frame
            if not skip_bad_videos:
                raise type(e)(f"{e} (video '{vid}'; --skip-bad-videos skips such videos)") from e
            logger.warning(f"{vid}: skipped (--skip-bad-videos): {e}")
            skipped.append(f"{vid} ({e})")
            continue
        readable.append((vid, make_source))
    if not readable:
        raise FileNotFoundError(f"none of the {len(videos) + len(missing)} videos under {where} can be read: "
                                + "; ".join(skipped))
    return readable, skipped


def make_proposals(
    root: Path,
    output: Path,
    detector,
    split: Optional[str] = None,
    source: str = "auto",
    first_sec: int = 902,
    min_score: float = 0.0,
    skip_bad_videos: bool = False,
    videos: Optional[Tuple[List[Tuple[str, object]], List[str]]] = None,
) -> int:
    """Run ``detector`` on every keyframe; write the CSV; return the number of rows.

    ``videos``: the result of :func:`collect_videos` (computed here when not given); see there for
    the errors.
    """
    rows: List[str] = []
    readable, skipped = videos if videos is not None else collect_videos(root, split, source, skip_bad_videos)
    skipped = list(skipped)
    from tqdm import tqdm

    for vid, make_source in tqdm(readable, desc="videos", unit="video", dynamic_ncols=True):
        try:
            secs = _video_proposals(vid, make_source, detector, first_sec, min_score, rows)
        except OSError as e:  # a file that changed or broke after the check
            if not skip_bad_videos:
                raise
            logger.warning(f"{vid}: skipped (--skip-bad-videos): {e}")
            skipped.append(f"{vid} ({e})")
            continue
        logger.info(f"{vid}: {secs} keyframes")
    if skipped:
        logger.warning(f"skipped {len(skipped)} of {len(readable) + len(skipped)} videos: " + "; ".join(skipped))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("".join(r + "\n" for r in rows))
    return len(rows)


def _video_proposals(vid: str, make_source, detector, first_sec: int, min_score: float, rows: List[str]) -> int:
    """Append the proposal rows of one video; return its number of keyframes."""
    from tqdm import tqdm

    video_rows: List[str] = []  # kept only when the whole video reads
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
                video_rows.append(f"{vid},{sec:04d},{nb[0]:.3f},{nb[1]:.3f},{nb[2]:.3f},{nb[3]:.3f},,{float(sc):.6f}")
    rows.extend(video_rows)
    return len(secs)


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
    p.add_argument("--skip-bad-videos", action="store_true",
                   help="skip (log and count) videos of the split that are missing or cannot be decoded "
                        "instead of stopping with an error")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Every video is checked before the detector is built: a bad input ends in seconds.
    videos = collect_videos(Path(args.root), args.split, args.source, args.skip_bad_videos)
    detector = build_person_detector(args.detector, weights=args.weights, device=args.device,
                                     score_threshold=args.min_score)
    n = make_proposals(Path(args.root), Path(args.output), detector, split=args.split, source=args.source,
                       first_sec=args.first_sec, min_score=args.min_score, skip_bad_videos=args.skip_bad_videos,
                       videos=videos)
    print(f"wrote {n} proposals to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
