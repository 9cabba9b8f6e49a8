#!/usr/bin/env python
"""Per-box RoI features of the AVA action detector (the action head's input), for long-term models.

Launcher of :mod:`vmae_det.tools.extract_features` (installed as the console script ``vmae-extract-features``);
``python tools/extract_features.py --help`` shows the options; docs/features.md the output format."""

import sys

from vmae_det.tools.extract_features import *  # noqa: F401,F403  (the module's names, for scripts that import this file)
from vmae_det.tools.extract_features import cli, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(cli())
