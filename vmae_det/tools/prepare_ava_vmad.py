"""Write VMAD's processed AVA (AlphAction's preprocessing) from the raw AVA movies (docs/ava_preprocessing.md).

    python tools/prepare_ava_vmad.py --movies ava/movies/trainval --annotations ava/annotations \\
        --person-boxes ava/annotations/ava_val_predicted_boxes.csv --out datasets/ava_vmad --workers 8

Writes ``<out>/clips/trainval/<movie>/<second>.mp4`` (seconds 895-1805, 25 fps, short side 360, H.264),
``<out>/annotations/ava_{train,val}_v2.2_min.json`` (image info), copies of the CSVs, exclusions and label
map, and ``<out>/boxes/ava_val_det_person_bbox.json`` from the person-box CSV. Rerunning the command resumes:
complete movies are skipped, an interrupted one gets its missing clips. A bad input is one ``error:`` line
(exit code 2); a movie that cannot be sliced is logged and counted, the others go on, and the exit code is 1;
Ctrl-C stops it with exit code 130, keeping what is complete.
The work is done by ``vmae_det.data.ava.vmad_preprocess``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

import vmae_det  # noqa: F401  (shims before detectron2)
from vmae_det.cli import check_output_dir, run_main
from vmae_det.data.ava.vmad_preprocess import SliceSettings, prepare_ava_vmad
from vmae_det.formats.vmad_layout import CLIP_SECONDS, VMAD_FPS, VMAD_SHORT_SIDE

__all__ = ["prepare_ava_vmad", "main"]

X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)


def _movie_ids(values: Optional[Sequence[str]]):
    if not values:
        return None
    return [m for v in values for m in v.replace(",", " ").split()]


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("--movies", required=True, help="folder of the raw AVA movies (<movie id>.<any extension>)")
    p.add_argument(
        "--annotations",
        required=True,
        help="folder of the official AVA v2.2 files: ava_{train,val}_v2.2.csv, "
        "ava_{train,val}_excluded_timestamps_v2.2.csv, ava_action_list_v2.2_for_activitynet_2019.pbtxt "
        "and optionally ava_file_names_trainval_v2.1.txt (the movie list that numbers the image ids)",
    )
    p.add_argument(
        "--person-boxes",
        default=None,
        help="person detections of val, SlowFast CSV video_id,timestamp,x1,y1,x2,y2,,score (normalised)",
    )
    p.add_argument("--out", required=True, help="dataset root to write (VMAD's layout)")
    p.add_argument(
        "--movie-ids",
        nargs="+",
        default=None,
        help="only these movies (ids, space- or comma-separated); default: every movie of both CSVs",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="movies sliced in parallel (processes; at most the CPU count)"
    )
    p.add_argument("--start-sec", type=int, default=CLIP_SECONDS[0], help="first clip's second (default %(default)s)")
    p.add_argument("--end-sec", type=int, default=CLIP_SECONDS[1], help="last clip's second (default %(default)s)")
    p.add_argument(
        "--time-offset",
        type=float,
        default=0.0,
        help="AVA second at the file's time 0 (default 0: raw movies; e.g. 900 for 15-minute crops that "
        "start at second 900, which then lack seconds 895-899)",
    )
    p.add_argument("--crf", type=int, default=23, help="libx264 CRF (default %(default)s: ffmpeg's, AlphAction's)")
    p.add_argument(
        "--preset",
        default="medium",
        choices=X264_PRESETS,
        help="libx264 preset (default %(default)s: ffmpeg's, AlphAction's)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    check_output_dir(args.out, "--out")  # before any movie is decoded
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    settings = SliceSettings(
        start_sec=args.start_sec,
        end_sec=args.end_sec,
        time_offset=args.time_offset,
        fps=VMAD_FPS,
        short_side=VMAD_SHORT_SIDE,
        crf=args.crf,
        preset=args.preset,
    )
    summary = prepare_ava_vmad(
        args.movies,
        args.annotations,
        args.out,
        person_boxes=args.person_boxes,
        movie_ids=_movie_ids(args.movie_ids),
        workers=args.workers,
        settings=settings,
        progress=not args.quiet,
    )
    print(summary.format())
    return 1 if summary.failed else 0


def cli() -> int:
    """Console-script entry point: exit code of :func:`main` (2 with one ``error:`` line on bad input, 1 when a
    movie failed)."""
    return run_main(main, interrupted="complete movies and clips are kept; run the same command again to resume")


if __name__ == "__main__":
    sys.exit(cli())
