"""AdamW with the VideoMAE parameter groups; the engine sets ``optimizer.model`` before instantiating."""

from detectron2.config import LazyCall as L

from vmae_det.engine import build_adamw

AdamW = L(build_adamw)(lr=1e-3, weight_decay=0.05, betas=(0.9, 0.999), layer_decay=None)
