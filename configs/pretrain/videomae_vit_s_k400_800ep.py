"""VideoMAE ViT-S/16 pretraining on Kinetics-400, 800 epochs: the official 1600-epoch recipe (MCG-NJU/VideoMAE
scripts/kinetics/videomae_vit_small_patch16_224_tubemasking_ratio_0.9_epoch_1600/pretrain.sh;
no 800-epoch script exists for this size) run for 800 epochs.
videomae_vit_b_k400_800ep.py with ViT-S/16, decoder depth 4, total batch 1024.
"""

from vmae_det.engine import scaled_lr

from .videomae_vit_b_k400_800ep import (
    _BASE_LR,
    _NUM_TRAIN_VIDEOS,
    _WARMUP_EPOCHS,
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)

_TOTAL_BATCH = 1024
_EPOCHS = 800
_ITERS_PER_EPOCH = _NUM_TRAIN_VIDEOS // _TOTAL_BATCH  # 234

model.size = "small"
model.decoder_depth = 4
dataloader.train.total_batch_size = _TOTAL_BATCH
optimizer.lr = scaled_lr(_BASE_LR, _TOTAL_BATCH)
lr_multiplier.warmup_fraction = _WARMUP_EPOCHS / _EPOCHS
train["output_dir"] = "./output/videomae_vit_s_k400_800ep"
train["max_iter"] = _EPOCHS * _ITERS_PER_EPOCH  # 187,200
train["checkpointer"]["period"] = 20 * _ITERS_PER_EPOCH  # every 20 epochs
