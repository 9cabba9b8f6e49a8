"""VideoMAE ViT-B/16 pretraining on Something-Something v2, 800 epochs (MCG-NJU/VideoMAE
scripts/ssv2/videomae_vit_base_patch16_224_tubemasking_ratio_0.9_epoch_800/pretrain.sh):
the K400 recipe with stride 2 (short clips, fast motion) and no flip (classes such as
'pushing something from left to right').
"""

from vmae_det.engine import scaled_lr

from .videomae_vit_b_k400_800ep import _BASE_LR, _WARMUP_EPOCHS, dataloader, lr_multiplier, model, optimizer, train

_NUM_TRAIN_VIDEOS = 168_913  # lines of VideoMAE's SSV2 train.csv
_TOTAL_BATCH = 2048
_EPOCHS = 800
_ITERS_PER_EPOCH = _NUM_TRAIN_VIDEOS // _TOTAL_BATCH  # 82

model.size = "base"
model.decoder_depth = 4
dataloader.train.dataset.names = "ssv2_train"  # $VMAE_DET_DATASETS/ssv2/train.csv
dataloader.train.mapper.sampling_rate = 2
dataloader.train.mapper.flip = False
dataloader.train.total_batch_size = _TOTAL_BATCH
optimizer.lr = scaled_lr(_BASE_LR, _TOTAL_BATCH)
lr_multiplier.warmup_fraction = _WARMUP_EPOCHS / _EPOCHS
train["output_dir"] = "./output/videomae_vit_b_ssv2_800ep"
train["max_iter"] = _EPOCHS * _ITERS_PER_EPOCH  # 65,600
train["checkpointer"]["period"] = 20 * _ITERS_PER_EPOCH  # every 20 epochs
