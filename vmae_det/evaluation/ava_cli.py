"""Command line AVA frame-mAP on the official CSV/pbtxt files.

    python -m vmae_det.evaluation.ava_cli --labelmap L --groundtruth G --detections D \
        [--exclusions E] [--protocol 2019|2020] [--output-dir O] [--write-detections OUT.csv] \
        [--keep-all-detections | --max-detections-per-keyframe N]

By default only the top 50 detection rows per keyframe count (official ActivityNet protocol);
``--keep-all-detections`` keeps them all, as the evaluators in VMAD (the VideoMAE paper's AVA
code) and SlowFast do.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from typing import Optional, Sequence

from ..cli import check_output_dir, check_output_file, run_main
from ..formats.ava import read_ava_csv, read_exclusions, read_labelmap, write_detections_csv
from .ava_io import DEFAULT_LABEL_MAP, write_metrics
from .ava_map import (
    MAX_DETECTIONS_PER_KEYFRAME,
    PROTOCOLS,
    check_max_detections_per_keyframe,
    describe_detections_per_keyframe,
    evaluate,
)
from .plot import plot_per_class_ap

__all__ = ["main", "build_parser"]


def _positive_int(text: str) -> int:
    try:
        return check_max_detections_per_keyframe(int(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 1 (use --keep-all-detections for no cap), got {text!r}"
        ) from e


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vmae_det.evaluation.ava_cli", description=__doc__.splitlines()[0])
    p.add_argument("-l", "--labelmap", default=DEFAULT_LABEL_MAP, help="label map .pbtxt (default: the 60-class one)")
    p.add_argument("-g", "--groundtruth", required=True, help="ground-truth CSV")
    p.add_argument("-d", "--detections", required=True, help="detections CSV")
    p.add_argument("-e", "--exclusions", default=None, help="excluded timestamps CSV (protocol 2019 only)")
    p.add_argument(
        "--protocol",
        default="2019",
        choices=PROTOCOLS,
        help="2019: v2.1/v2.2 evaluator with exclusions (default); 2020: current evaluator",
    )
    p.add_argument("--output-dir", default=None, help="write ava_metrics.json and ava_per_class_ap.png here")
    p.add_argument(
        "--write-detections", default=None, metavar="CSV", help="re-write the detections in the official CSV format"
    )
    cap = p.add_mutually_exclusive_group()
    cap.add_argument(
        "--keep-all-detections",
        action="store_true",
        help="keep every detection row of each keyframe (no top-50 cap), as the AVA evaluators "
        "in VMAD (VideoMAE paper) and SlowFast do; default: official top "
        f"{MAX_DETECTIONS_PER_KEYFRAME}",
    )
    cap.add_argument(
        "--max-detections-per-keyframe",
        type=_positive_int,
        default=None,
        metavar="N",
        help=f"keep the top N detection rows, i.e. (box, class) pairs, per keyframe "
        f"(default {MAX_DETECTIONS_PER_KEYFRAME}, the official ActivityNet protocol)",
    )
    return p


def detection_cap(args: argparse.Namespace) -> Optional[int]:
    """The per-keyframe cap the parsed arguments ask for (``None`` = keep all)."""
    if args.keep_all_detections:
        return None
    return MAX_DETECTIONS_PER_KEYFRAME if args.max_detections_per_keyframe is None else args.max_detections_per_keyframe


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse outputs that cannot be written before the evaluation runs, not after it."""
    if args.output_dir:
        check_output_dir(args.output_dir, "--output-dir")
    if args.write_detections:
        check_output_file(args.write_detections, "--write-detections")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line (console script ``vmae-ava-eval``)."""
    return run_main(lambda: _main(argv), interrupted="nothing written")


def _main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    cap = detection_cap(args)
    check_outputs(args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    label_map = read_labelmap(args.labelmap)
    gt = read_ava_csv(args.groundtruth)
    det = read_ava_csv(args.detections)
    exclusions = read_exclusions(args.exclusions) if args.exclusions else None
    result = evaluate(gt, det, label_map, exclusions, args.protocol, max_detections_per_keyframe=cap)
    width = max(len(n) for n in label_map.values())
    for c, ap in result.per_class_ap.items():
        shown = "   n/a (no ground truth)" if math.isnan(ap) else f"{100 * ap:6.2f}"
        print(f"{c:3d} {label_map[c]:<{width}} {shown}")
    print(
        f"mAP@0.5IoU (protocol {args.protocol}): {100 * result.mAP:.4f} "
        f"[{describe_detections_per_keyframe(cap)}; {result.stats['capped_detections']} detection(s) capped]"
    )
    print(f"mAP (fraction, all digits): {result.mAP!r}")
    if args.write_detections:
        write_detections_csv(args.write_detections, det)
    if args.output_dir:
        write_metrics(result, os.path.join(args.output_dir, "ava_metrics.json"))
        plot_per_class_ap(
            result.named_ap(),
            os.path.join(args.output_dir, "ava_per_class_ap.png"),
            title=f"AVA per-class AP (protocol {args.protocol}, "
            f"{'all detections' if cap is None else f'top {cap}'} per keyframe)",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
