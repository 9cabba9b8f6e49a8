"""AVA v2.2, ViT-H/16 (embed 1280, depth 32, heads 16): as vit_l.py (20 epochs, layer decay 0.8,
activation checkpointing)."""
from .vit_l import dataloader, lr_multiplier, model, optimizer, train

model.backbone.size = "huge"
train.output_dir = "./output/ava_vit_h"
