#!/usr/bin/env python
"""Export the AVA action detector (clip + person RoIs -> action scores, RoIAlign included) to ONNX.

Launcher of :mod:`vmae_det.tools.export_onnx` (installed as the console script ``vmae-export-onnx``);
``python tools/export_onnx.py --help`` shows the options."""

import sys

from vmae_det.tools.export_onnx import *  # noqa: F401,F403  (the module's names, for scripts that import this file)
from vmae_det.tools.export_onnx import cli, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(cli())
