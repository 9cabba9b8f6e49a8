"""AVA v2.2, ViT-B/16 from K400 MAE pretraining only: target **26.7 mAP** (VMAD
scripts/ava/videomae_vit_base_k400_pretrain/run.sh); vit_b.py with base lr 2.5e-4.
"""

from vmae_det.engine import scaled_lr

from .vit_b import BASE_MIN_LR, BATCH, dataloader, lr_multiplier, model, optimizer, train

TARGET_MAP = 26.7
BASE_LR = 2.5e-4
optimizer.lr = scaled_lr(BASE_LR, BATCH)
lr_multiplier.min_lr_ratio = scaled_lr(BASE_MIN_LR, BATCH) / optimizer.lr
train.output_dir = "./output/ava_vit_b_pretrain_only"
