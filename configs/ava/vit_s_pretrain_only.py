"""AVA v2.2, ViT-S/16 from K400 MAE pretraining only: target **22.5 mAP** (VMAD
scripts/ava/videomae_vit_small_k400_pretrain/run.sh); vit_s.py with base lr 1e-3.
"""

from vmae_det.engine import scaled_lr

from .vit_b import BASE_MIN_LR, BATCH
from .vit_s import dataloader, lr_multiplier, model, optimizer, train

TARGET_MAP = 22.5
BASE_LR = 1e-3
optimizer.lr = scaled_lr(BASE_LR, BATCH)
lr_multiplier.min_lr_ratio = scaled_lr(BASE_MIN_LR, BATCH) / optimizer.lr
train.output_dir = "./output/ava_vit_s_pretrain_only"
