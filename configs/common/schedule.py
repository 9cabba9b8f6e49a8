"""LR multiplier over training progress: linear warmup then cosine to a floor (VideoMAE recipes)."""

from detectron2.config import LazyCall as L

from vmae_det.engine import cosine_with_warmup

cosine_warmup = L(cosine_with_warmup)(warmup_fraction=0.05, min_lr_ratio=0.0)
