"""AVA v2.2, ViT-L/16 (embed 1024, depth 24, heads 16), K400 pretrain + K400 fine-tune — target
**37.0 mAP** (VMAD scripts/ava/videomae_vit_large_k400_pretrain+finetune/run.sh): as vit_b.py with
layer decay 0.8, 20 epochs (5 warm-up) and activation checkpointing.

Expects (train.init_checkpoint): the MCG-NJU VideoMAE ViT-L K400 pretrain + fine-tune checkpoint
(Google Drive id 1jX1CiqxSkCfc94y8FRW1YGHy-GNvHCuD).
"""

from .vit_b import ITERS_PER_EPOCH, WARMUP_EPOCHS, dataloader, lr_multiplier, model, optimizer, train

TARGET_MAP = 37.0
EPOCHS = 20
model.backbone.size = "large"
model.backbone.use_checkpoint = True
optimizer.layer_decay = 0.8
lr_multiplier.warmup_fraction = WARMUP_EPOCHS / EPOCHS
train.max_iter = EPOCHS * ITERS_PER_EPOCH
train.output_dir = "./output/ava_vit_l"
