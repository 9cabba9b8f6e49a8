#!/usr/bin/env python
"""Generate the tiny ACT-format datasets ``tiny_ucf24``, ``tiny_jhmdb`` and ``tiny_multisports`` (committed).

The command line of :func:`vmae_det.synthetic.act.make_tiny_act` (layout and content: that module). The output
is deterministic: regenerating writes the same ground truth. Usage::

    python datasets/make_tiny_act.py [--root datasets] [--datasets ucf24 jhmdb multisports]
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from vmae_det.formats.act_layout import TINY_DATASETS
from vmae_det.synthetic.act import make_tiny_act


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="datasets", help="the folder that gets tiny_ucf24/, tiny_jhmdb/, ...")
    parser.add_argument("--datasets", nargs="+", choices=list(TINY_DATASETS), default=list(TINY_DATASETS))
    args = parser.parse_args(argv)
    for folder in make_tiny_act(args.root, args.datasets):
        print(f"tiny dataset ready at {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
