"""AVA v2.2, ViT-B pretrained by VideoMAE on Kinetics-400 without supervised K400 fine-tuning:
the official recipe uses base lr 2.5e-4 instead of 5e-4 (everything else as vit_b.py)."""
from vmae_det.engine import scaled_lr

from .vit_b import BATCH, MIN_LR, dataloader, lr_multiplier, model, optimizer, train

BASE_LR = 2.5e-4
optimizer.lr = scaled_lr(BASE_LR, BATCH)
lr_multiplier.min_lr_ratio = MIN_LR / optimizer.lr
train.output_dir = "./output/ava_vit_b_k400only"
