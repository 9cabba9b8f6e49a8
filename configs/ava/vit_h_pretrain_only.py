"""AVA v2.2, ViT-H/16 from K400 MAE pretraining only: target **36.5 mAP** (VMAD
scripts/ava/videomae_vit_huge_k400_pretrain/run.sh); vit_h.py with another checkpoint.
"""

from .vit_h import dataloader, lr_multiplier, model, optimizer, train

TARGET_MAP = 36.5
train.output_dir = "./output/ava_vit_h_pretrain_only"
