"""VideoMAE ViT-L/16 pretraining on Kinetics-400, 1600 epochs.

Official script: MCG-NJU/VideoMAE
scripts/kinetics/videomae_vit_large_patch16_224_tubemasking_ratio_0.9_epoch_1600/pretrain.sh
(64 GPUs x 8 = total batch 512, decoder depth 12).

Shared recipe (optimizer, schedule, masking, loss, data augmentation, epochs -> iterations):
see videomae_vit_b_k400_800ep.py. This file changes:
ViT-L/16 (1024-d, 24 blocks, 16 heads; decoder 512-d, 8 heads), decoder depth 12, total batch 512, 1600 epochs.
"""
from vmae_det.engine import scaled_lr

from .videomae_vit_b_k400_800ep import _BASE_LR, _NUM_TRAIN_VIDEOS, _WARMUP_EPOCHS
from .videomae_vit_b_k400_800ep import dataloader, lr_multiplier, model, optimizer, train

_TOTAL_BATCH = 512
_EPOCHS = 1600
_ITERS_PER_EPOCH = _NUM_TRAIN_VIDEOS // _TOTAL_BATCH  # 469

model.size = "large"
model.decoder_depth = 12
dataloader.train.total_batch_size = _TOTAL_BATCH
optimizer.lr = scaled_lr(_BASE_LR, _TOTAL_BATCH)
lr_multiplier.warmup_fraction = _WARMUP_EPOCHS / _EPOCHS
train["output_dir"] = "./output/videomae_vit_l_k400_1600ep"
train["max_iter"] = _EPOCHS * _ITERS_PER_EPOCH  # 750,400
train["checkpointer"]["period"] = 20 * _ITERS_PER_EPOCH  # every 20 epochs
