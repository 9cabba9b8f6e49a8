"""AVA v2.2, ViT-H/16 (embed 1280, depth 32, heads 16), K400 pretrain + K400 fine-tune — target
**39.5 mAP** (VMAD scripts/ava/videomae_vit_huge_k400_pretrain+finetune/run.sh): as vit_l.py (lr 5e-4,
layer decay 0.8, 20 epochs, activation checkpointing) with 2 clips per GPU on 64 GPUs (batch 128,
test batches of 3).

Expects (train.init_checkpoint): the MCG-NJU VideoMAE ViT-H K400 pretrain + fine-tune checkpoint
(Google Drive id 104ouJZxSVPSAm0LwJXd6IzjdA_RGLqZi).
"""

from .vit_l import dataloader, lr_multiplier, model, optimizer, train

TARGET_MAP = 39.5
model.backbone.size = "huge"
dataloader.test.batch_size = 3
train.output_dir = "./output/ava_vit_h"
