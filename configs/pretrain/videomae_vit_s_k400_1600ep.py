"""VideoMAE ViT-S/16 pretraining on Kinetics-400, 1600 epochs (MCG-NJU/VideoMAE
scripts/kinetics/videomae_vit_small_patch16_224_tubemasking_ratio_0.9_epoch_1600/pretrain.sh):
videomae_vit_s_k400_800ep.py with more epochs.
"""

from .videomae_vit_s_k400_800ep import (
    _ITERS_PER_EPOCH,
    _WARMUP_EPOCHS,
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)

_EPOCHS = 1600
lr_multiplier.warmup_fraction = _WARMUP_EPOCHS / _EPOCHS
train["output_dir"] = "./output/videomae_vit_s_k400_1600ep"
train["max_iter"] = _EPOCHS * _ITERS_PER_EPOCH
