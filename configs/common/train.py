"""The ``train`` section: every key the engine understands, with its default.

Configs start from ``train = dict(...)`` of only the keys they change (missing keys take these
defaults; unknown keys are an error): see ``vmae_det/config_schema.py``.
"""

import copy

from vmae_det.config_schema import TRAIN_DEFAULTS

train = copy.deepcopy(TRAIN_DEFAULTS)  # a config changing a nested value must not change the defaults
