#!/usr/bin/env python
"""Write SlowFast-style AVA person proposals with an off-the-shelf COCO person detector.

Launcher of :mod:`vmae_det.tools.make_proposals` (installed as the console script ``vmae-make-proposals``);
``python tools/make_proposals.py --help`` shows the options."""

import sys

from vmae_det.tools.make_proposals import *  # noqa: F401,F403  (the module's names, for scripts that import this file)
from vmae_det.tools.make_proposals import cli, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(cli())
