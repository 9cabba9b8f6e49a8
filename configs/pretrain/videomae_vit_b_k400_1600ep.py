"""VideoMAE ViT-B/16 pretraining on Kinetics-400, 1600 epochs.

Official script: MCG-NJU/VideoMAE
scripts/kinetics/videomae_vit_base_patch16_224_tubemasking_ratio_0.9_epoch_1600/pretrain.sh
(64 GPUs x 32 = total batch 2048, decoder depth 4).

Shared recipe (optimizer, schedule, masking, loss, data augmentation, epochs -> iterations):
see videomae_vit_b_k400_800ep.py. This file changes:
ViT-B/16 (768-d, 12 blocks, 12 heads; decoder 384-d, 6 heads), decoder depth 4, total batch 2048, 1600 epochs.
"""
from vmae_det.engine import scaled_lr

from .videomae_vit_b_k400_800ep import _BASE_LR, _NUM_TRAIN_VIDEOS, _WARMUP_EPOCHS
from .videomae_vit_b_k400_800ep import dataloader, lr_multiplier, model, optimizer, train

_TOTAL_BATCH = 2048
_EPOCHS = 1600
_ITERS_PER_EPOCH = _NUM_TRAIN_VIDEOS // _TOTAL_BATCH  # 117

model.size = "base"
model.decoder_depth = 4
dataloader.train.total_batch_size = _TOTAL_BATCH
optimizer.lr = scaled_lr(_BASE_LR, _TOTAL_BATCH)
lr_multiplier.warmup_fraction = _WARMUP_EPOCHS / _EPOCHS
train["output_dir"] = "./output/videomae_vit_b_k400_1600ep"
train["max_iter"] = _EPOCHS * _ITERS_PER_EPOCH  # 187,200
train["checkpointer"]["period"] = 20 * _ITERS_PER_EPOCH  # every 20 epochs
