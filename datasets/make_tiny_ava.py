#!/usr/bin/env python
"""Generate ``tiny_ava``: a tiny synthetic dataset in the exact AVA v2.2 layout.

The command line of :func:`vmae_det.synthetic.ava.make_tiny_ava` (layout and content: that module). Usage::

    python datasets/make_tiny_ava.py [--root datasets/tiny_ava] [--seed 0] [--force]
    # the quick start's unlabelled pretraining set: videos only, other seeds than the labelled set
    python datasets/make_tiny_ava.py --root datasets/tiny_ava_unlabelled --videos-only --seed 1 --num-train-videos 48
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from vmae_det.synthetic.ava import BACKGROUNDS, FIGURES, FORMAT_PARTS, make_tiny_ava


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="datasets/tiny_ava")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-train-videos", type=int, default=8)
    parser.add_argument("--num-val-videos", type=int, default=None, help="default 3 (0 with --videos-only)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each video in seconds")
    parser.add_argument("--format", choices=sorted(FORMAT_PARTS), default="both")
    parser.add_argument("--force", action="store_true", help="rebuild even if complete")
    parser.add_argument(
        "--videos-only",
        action="store_true",
        help="an unlabelled set for MAE pretraining: training videos only, no annotations",
    )
    parser.add_argument(
        "--figures", choices=list(FIGURES), default="small", help="large: 1-2 big, thick figures per video"
    )
    parser.add_argument(
        "--background",
        choices=BACKGROUNDS,
        default="texture",
        help="plain: one colour per video plus a gradient, no noise (the quick start's sets)",
    )
    args = parser.parse_args(argv)
    if args.num_val_videos is None:
        args.num_val_videos = 0 if args.videos_only else 3
    elif args.videos_only and args.num_val_videos:
        parser.error("--videos-only writes training videos only: leave --num-val-videos out (or 0)")
    root = make_tiny_ava(
        args.root,
        seed=args.seed,
        num_train_videos=args.num_train_videos,
        num_val_videos=args.num_val_videos,
        seconds=args.seconds,
        format=args.format,
        force=args.force,
        videos_only=args.videos_only,
        figures=args.figures,
        background=args.background,
    )
    print(f"tiny AVA dataset ready at {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
