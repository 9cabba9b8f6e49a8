#!/usr/bin/env python
"""Write VMAD's processed AVA (AlphAction's preprocessing) from the raw AVA movies (docs/ava_preprocessing.md).

Launcher of :mod:`vmae_det.tools.prepare_ava_vmad` (installed as the console script ``vmae-prepare-ava-vmad``);
``python tools/prepare_ava_vmad.py --help`` shows the options."""

import sys

from vmae_det.tools.prepare_ava_vmad import *  # noqa: F401,F403  (the module's names, for scripts that import this file)
from vmae_det.tools.prepare_ava_vmad import cli, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(cli())
