"""AVA v2.2, ViT-H/16, K400 pretrain + fine-tune: target **39.5 mAP** (VMAD
scripts/ava/videomae_vit_huge_k400_pretrain+finetune/run.sh); vit_l.py with 2 clips per GPU on 64 GPUs.
"""

from .vit_l import dataloader, lr_multiplier, model, optimizer, train

TARGET_MAP = 39.5
model.backbone.size = "huge"
dataloader.test.batch_size = 3
train.output_dir = "./output/ava_vit_h"
