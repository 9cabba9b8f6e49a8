"""AVA v2.2, ViT-S/16, K400 pretrain + fine-tune: target **28.4 mAP** (VMAD
scripts/ava/videomae_vit_small_k400_pretrain+finetune/run.sh); vit_b.py with layer decay 0.6, 8 clips per GPU.
"""

from .vit_b import dataloader, lr_multiplier, model, optimizer, train

TARGET_MAP = 28.4
model.backbone.size = "small"
optimizer.layer_decay = 0.6
dataloader.test.batch_size = 12
train.output_dir = "./output/ava_vit_s"
