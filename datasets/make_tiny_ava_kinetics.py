#!/usr/bin/env python
"""Generate ``tiny_ava_kinetics``: a tiny synthetic AVA-Kinetics (AVA part + Kinetics clips, docs/ava_kinetics.md).

The command line of :func:`vmae_det.synthetic.ava_kinetics.make_tiny_ava_kinetics`. Usage::

    python datasets/make_tiny_ava_kinetics.py [--root datasets/tiny_ava_kinetics] [--seed 0] [--force]
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from vmae_det.synthetic.ava_kinetics import make_tiny_ava_kinetics


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="datasets/tiny_ava_kinetics")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-kinetics-train", type=int, default=8, help="Kinetics training clips present")
    parser.add_argument("--num-kinetics-val", type=int, default=4, help="Kinetics validation clips present (>= 2)")
    parser.add_argument("--force", action="store_true", help="rebuild even if complete")
    args = parser.parse_args(argv)
    if args.num_kinetics_val < 2:
        parser.error("--num-kinetics-val must be >= 2 (one validation clip shows no one)")
    root = make_tiny_ava_kinetics(
        args.root,
        seed=args.seed,
        num_kinetics_train=args.num_kinetics_train,
        num_kinetics_val=args.num_kinetics_val,
        force=args.force,
    )
    print(f"tiny AVA-Kinetics dataset ready at {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
