import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

import vmae_det  # noqa: E402,F401  (shims before detectron2)

torch.set_num_threads(1)
