"""AVA v2.2, ViT-L/16, K400 pretrain + fine-tune: target **37.0 mAP** (VMAD
scripts/ava/videomae_vit_large_k400_pretrain+finetune/run.sh); vit_b.py with layer decay 0.8, 20 epochs.
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
