#!/usr/bin/env python
"""Detect and render person actions on any video (streaming, bounded memory).

Launcher of :mod:`vmae_det.tools.demo` (installed as the console script ``vmae-demo``);
``python tools/demo.py --help`` shows the options."""

import sys

from vmae_det.tools.demo import *  # noqa: F401,F403  (the module's names, for scripts that import this file)
from vmae_det.tools.demo import cli, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(cli())
