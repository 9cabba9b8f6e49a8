"""The tiny dataset generator as a module for tests (datasets/ is a folder of scripts, not a package)."""

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "datasets" / "make_tiny_ava.py"


def load_generator():
    if "make_tiny_ava" not in sys.modules:
        spec = importlib.util.spec_from_file_location("make_tiny_ava", _PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules["make_tiny_ava"] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
    return sys.modules["make_tiny_ava"]


def make_tiny(root, **kwargs):
    return load_generator().make_tiny_ava(root, **kwargs)
