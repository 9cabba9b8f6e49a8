"""AVA v2.2, ViT-S/16 (embed 384, depth 12, heads 6): as vit_b.py with layer decay 0.6 (official)."""
from .vit_b import dataloader, lr_multiplier, model, optimizer, train

model.backbone.size = "small"
optimizer.layer_decay = 0.6
train.output_dir = "./output/ava_vit_s"
