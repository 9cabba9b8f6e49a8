"""The ``train`` section's defaults and value schema, re-exported from :mod:`vmae_det.config_schema`
(where :mod:`vmae_det.config` reads them without importing the engine)."""

from ..config_schema import TRAIN_DEFAULTS, TRAIN_SCHEMA

__all__ = ["TRAIN_DEFAULTS", "TRAIN_SCHEMA"]
