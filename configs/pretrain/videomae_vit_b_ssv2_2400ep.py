"""VideoMAE ViT-B/16 pretraining on Something-Something v2, 2400 epochs (MCG-NJU/VideoMAE
scripts/ssv2/videomae_vit_base_patch16_224_tubemasking_ratio_0.9_epoch_2400/pretrain.sh):
videomae_vit_b_ssv2_800ep.py with more epochs.
"""

from .videomae_vit_b_ssv2_800ep import (
    _ITERS_PER_EPOCH,
    _WARMUP_EPOCHS,
    dataloader,
    lr_multiplier,
    model,
    optimizer,
    train,
)

_EPOCHS = 2400
lr_multiplier.warmup_fraction = _WARMUP_EPOCHS / _EPOCHS
train["output_dir"] = "./output/videomae_vit_b_ssv2_2400ep"
train["max_iter"] = _EPOCHS * _ITERS_PER_EPOCH
