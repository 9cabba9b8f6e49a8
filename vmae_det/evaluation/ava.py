"""Command line AVA frame-mAP on the official CSV/pbtxt files.

    python -m vmae_det.evaluation.ava --labelmap L --groundtruth G --detections D \
        [--exclusions E] [--protocol 2019|2020] [--output-dir O] [--write-detections OUT.csv]
"""
from __future__ import annotations

import argparse
import os
import logging
import math
import sys
from typing import Optional, Sequence

from .ava_io import DEFAULT_LABEL_MAP, read_ava_csv, read_exclusions, read_labelmap, write_detections_csv, write_metrics
from .ava_map import PROTOCOLS, evaluate
from .plot import plot_per_class_ap

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vmae_det.evaluation.ava", description=__doc__.splitlines()[0])
    p.add_argument("-l", "--labelmap", default=DEFAULT_LABEL_MAP, help="label map .pbtxt (default: the 60-class one)")
    p.add_argument("-g", "--groundtruth", required=True, help="ground-truth CSV")
    p.add_argument("-d", "--detections", required=True, help="detections CSV")
    p.add_argument("-e", "--exclusions", default=None, help="excluded timestamps CSV (protocol 2019 only)")
    p.add_argument("--protocol", default="2019", choices=PROTOCOLS,
                   help="2019: v2.1/v2.2 evaluator with exclusions (default); 2020: current evaluator")
    p.add_argument("--output-dir", default=None, help="write ava_metrics.json and ava_per_class_ap.png here")
    p.add_argument("--write-detections", default=None, metavar="CSV",
                   help="re-write the detections in the official CSV format")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        label_map = read_labelmap(args.labelmap)
        gt = read_ava_csv(args.groundtruth)
        det = read_ava_csv(args.detections)
        exclusions = read_exclusions(args.exclusions) if args.exclusions else None
        result = evaluate(gt, det, label_map, exclusions, args.protocol)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    width = max(len(n) for n in label_map.values())
    for c, ap in result.per_class_ap.items():
        shown = "   n/a (no ground truth)" if math.isnan(ap) else f"{100 * ap:6.2f}"
        print(f"{c:3d} {label_map[c]:<{width}} {shown}")
    print(f"mAP@0.5IoU (protocol {args.protocol}): {100 * result.mAP:.4f}")
    if args.write_detections:
        write_detections_csv(args.write_detections, det)
    if args.output_dir:
        os.makedirs(args.output_dir, exist_ok=True)
        write_metrics(result, os.path.join(args.output_dir, "ava_metrics.json"))
        plot_per_class_ap(result.named_ap(), os.path.join(args.output_dir, "ava_per_class_ap.png"),
                          title=f"AVA per-class AP (protocol {args.protocol})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
