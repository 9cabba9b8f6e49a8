#!/usr/bin/env python
"""Turn your own videos plus an annotation CSV into the AVA layout (docs/custom_dataset.md).

Launcher of :mod:`vmae_det.tools.prepare_custom_dataset` (installed as the console script
``vmae-prepare-custom-dataset``);
``python tools/prepare_custom_dataset.py --help`` shows the options."""

import sys

from vmae_det.tools.prepare_custom_dataset import *  # noqa: F401,F403  (the module's names, for scripts that import this file)
from vmae_det.tools.prepare_custom_dataset import cli, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(cli())
