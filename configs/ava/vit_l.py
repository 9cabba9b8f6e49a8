"""AVA v2.2, ViT-L/16 (embed 1024, depth 24, heads 16). Official: 20 epochs (5 warm-up),
layer decay 0.8, activation checkpointing to fit memory; other settings as vit_b.py."""
from .vit_b import BATCH, TRAIN_KEYFRAMES, dataloader, lr_multiplier, model, optimizer, train

EPOCHS, WARMUP_EPOCHS = 20, 5
model.backbone.size = "large"
model.backbone.use_checkpoint = True
optimizer.layer_decay = 0.8
lr_multiplier.warmup_fraction = WARMUP_EPOCHS / EPOCHS
train.max_iter = EPOCHS * (TRAIN_KEYFRAMES // BATCH)
train.output_dir = "./output/ava_vit_l"
