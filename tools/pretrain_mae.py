#!/usr/bin/env python
"""VideoMAE self-supervised pretraining (detectron2 CLI conventions).

Launcher of :mod:`vmae_det.tools.pretrain_mae` (installed as the console script ``vmae-pretrain``);
``python tools/pretrain_mae.py --help`` shows the options."""

import sys

from vmae_det.tools.pretrain_mae import *  # noqa: F401,F403  (the module's names, for scripts that import this file)
from vmae_det.tools.pretrain_mae import cli, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(cli())
