#!/usr/bin/env python
"""Convert a VideoMAE checkpoint (MCG-NJU pretrain / fine-tune, HF transformers) to this project's format.

Launcher of :mod:`vmae_det.tools.convert_checkpoint` (installed as the console script ``vmae-convert-checkpoint``);
``python tools/convert_checkpoint.py --help`` shows the options."""

import sys

from vmae_det.tools.convert_checkpoint import *  # noqa: F401,F403  (the module's names, for scripts that import this file)
from vmae_det.tools.convert_checkpoint import cli, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(cli())
