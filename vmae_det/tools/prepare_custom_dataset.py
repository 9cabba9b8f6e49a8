"""Turn your own videos plus an annotation CSV into the AVA layout (docs/custom_dataset.md).

    python tools/prepare_custom_dataset.py --videos raw/ --annotations labels.csv \\
        --output datasets/my_ava [--extract-frames] [--normalized] [--labels actions.txt]

labels.csv has a header and the columns ``video,split,time,x1,y1,x2,y2,action,person``: ``time`` in
whole seconds of the video, boxes in pixels (``--normalized``: in [0, 1]), ``split`` train/val.
Videos are re-encoded to 30 fps H.264 (nearest-frame resampling: AVA timestamp 900 + t is frame
t * 30), annotations written with AVA's 900-second offset. Every problem in the CSV is reported
as ``file:line: reason`` before any video is converted. The format details are in
``vmae_det/data/custom/__init__.py``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

import vmae_det  # noqa: F401  (shims before detectron2)
from vmae_det.cli import check_output_dir, run_main
from vmae_det.data.custom import prepare_custom_dataset


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("--videos", required=True, help="folder with your videos (any container PyAV reads)")
    p.add_argument("--annotations", required=True, help="CSV: video,split,time,x1,y1,x2,y2,action,person")
    p.add_argument("--output", required=True, help="dataset root to write (e.g. datasets/my_ava)")
    p.add_argument("--normalized", action="store_true", help="boxes are already in [0, 1], not pixels")
    p.add_argument("--extract-frames", action="store_true", help="also write frames/<id>/<id>_%%06d.jpg")
    p.add_argument(
        "--labels",
        default=None,
        help="action names, one per line (ids 1..K in that order), or an AVA .pbtxt label map; "
        "default: the sorted names of the CSV",
    )
    p.add_argument("--name", default=None, help="dataset name prefix in the printed code (default: output folder name)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    check_output_dir(args.output, "--output")  # before the CSV is read and any video converted
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    summary = prepare_custom_dataset(
        args.videos,
        args.annotations,
        args.output,
        normalized=args.normalized,
        extract_frames=args.extract_frames,
        labels=args.labels,
        progress=not args.quiet,
    )
    print(summary.format(args.name))
    return 0


def cli() -> int:
    """Console-script entry point: exit code of :func:`main` (2 with one ``error:`` line on bad input)."""
    return run_main(main, interrupted="the files written so far are whole; run it again to finish")


if __name__ == "__main__":
    sys.exit(cli())
