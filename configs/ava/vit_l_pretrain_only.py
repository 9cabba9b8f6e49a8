"""AVA v2.2, ViT-L/16 from K400 MAE pretraining only: target **34.3 mAP** (VMAD
scripts/ava/videomae_vit_large_k400_pretrain/run.sh); vit_l.py with base lr 2.5e-4, layer decay 0.75, 30 epochs.
"""

from vmae_det.engine import scaled_lr

from .vit_b import BASE_MIN_LR, BATCH, ITERS_PER_EPOCH, WARMUP_EPOCHS
from .vit_l import dataloader, lr_multiplier, model, optimizer, train

TARGET_MAP = 34.3
EPOCHS = 30
BASE_LR = 2.5e-4
optimizer.lr = scaled_lr(BASE_LR, BATCH)
optimizer.layer_decay = 0.75
lr_multiplier.min_lr_ratio = scaled_lr(BASE_MIN_LR, BATCH) / optimizer.lr
lr_multiplier.warmup_fraction = WARMUP_EPOCHS / EPOCHS
train.max_iter = EPOCHS * ITERS_PER_EPOCH
train.output_dir = "./output/ava_vit_l_pretrain_only"
