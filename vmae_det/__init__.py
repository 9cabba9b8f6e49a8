"""vmae_det: VideoMAE spatio-temporal action detection on detectron2."""

from . import compat as _compat  # noqa: F401  (must run before detectron2 is imported)

__version__ = "0.1.0"
