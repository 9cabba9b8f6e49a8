"""AVA v2.2, ViT-H/16 pretrained by VideoMAE on Kinetics-400 without labels — target **36.5 mAP**
(VMAD scripts/ava/videomae_vit_huge_k400_pretrain/run.sh): the same numbers as vit_h.py (lr 5e-4,
layer decay 0.8, 20 epochs); only the checkpoint differs.

Expects (train.init_checkpoint): the MCG-NJU VideoMAE ViT-H K400 pretraining checkpoint
(Google Drive id 1AJQR1Rsi2N1pDn9tLyJ8DQrUREiBA1bO).
"""

from .vit_h import dataloader, lr_multiplier, model, optimizer, train

TARGET_MAP = 36.5
train.output_dir = "./output/ava_vit_h_pretrain_only"
