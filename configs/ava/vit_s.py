"""AVA v2.2, ViT-S/16 (embed 384, depth 12, heads 6), K400 pretrain + K400 fine-tune — target
**28.4 mAP** (VMAD scripts/ava/videomae_vit_small_k400_pretrain+finetune/run.sh): as vit_b.py with
layer decay 0.6 and 8 clips per GPU on 16 GPUs (batch 128, test batches of 12).

Expects (train.init_checkpoint): the MCG-NJU VideoMAE ViT-S K400 pretrain + fine-tune checkpoint
(Google Drive id 1ygjLRm1kvs9mwGsP3lLxUExhRo6TWnrx), or a VMAD ViT-S AVA checkpoint for --eval-only.
"""

from .vit_b import dataloader, lr_multiplier, model, optimizer, train

TARGET_MAP = 28.4
model.backbone.size = "small"
optimizer.layer_decay = 0.6
dataloader.test.batch_size = 12
train.output_dir = "./output/ava_vit_s"
