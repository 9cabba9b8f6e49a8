#!/usr/bin/env python
"""Train or evaluate an action detector (detectron2 CLI conventions).

Launcher of :mod:`vmae_det.tools.train_net` (installed as the console script ``vmae-train``);
``python tools/train_net.py --help`` shows the options."""

import sys

from vmae_det.tools.train_net import *  # noqa: F401,F403  (the module's names, for scripts that import this file)
from vmae_det.tools.train_net import cli, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(cli())
