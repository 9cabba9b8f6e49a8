"""The ``train`` section with every key's default; configs change only the keys they need."""

import copy

from vmae_det.config_schema import TRAIN_DEFAULTS

train = copy.deepcopy(TRAIN_DEFAULTS)  # a config changing a nested value must not change the defaults
