"""VideoMAE ViT-B/16 pretraining on Kinetics-400, 800 epochs: MCG-NJU/VideoMAE
scripts/kinetics/videomae_vit_base_patch16_224_tubemasking_ratio_0.9_epoch_800/pretrain.sh.

The released script's batch, 64 GPUs x 32 = 2048 (the paper's table lists 1024), and lr rule (base lr, min lr and
warm-up lr per 256 clips). Epochs become iterations as the official sampler counts them: set ``_NUM_TRAIN_VIDEOS``
to your train.csv's readable lines. Data: ``kinetics400_train`` ($VMAE_DET_DATASETS/kinetics400/train.csv).

    python tools/pretrain_mae.py --config-file THIS --num-gpus 8 --num-machines 8 ...
"""

from detectron2.config import LazyCall as L
from detectron2.data import build_detection_train_loader, get_detection_dataset_dicts
from omegaconf import OmegaConf

from vmae_det.data.video_dataset import MAEClipMapper
from vmae_det.engine import scaled_lr
from vmae_det.modeling import build_videomae

from ..common.mae import mae_eval_only as _mae_eval_only
from ..common.mae import mae_hooks as _mae_hooks
from ..common.optim import AdamW as optimizer
from ..common.schedule import cosine_warmup as lr_multiplier
from ..common.train import train

# ---- recipe numbers (derived configs import and change these, then recompute below) ----
_NUM_TRAIN_VIDEOS = 240_436
_TOTAL_BATCH = 2048  # 64 GPUs x 32
_EPOCHS = 800
_WARMUP_EPOCHS = 40
_BASE_LR, _MIN_LR, _WARMUP_LR = 1.5e-4, 1e-5, 1e-6  # per 256 clips
_ITERS_PER_EPOCH = _NUM_TRAIN_VIDEOS // _TOTAL_BATCH  # 117

model = L(build_videomae)(
    size="base",  # encoder 768-d x 12 blocks x 12 heads; decoder 384-d, 6 heads
    encoder_kwargs=dict(img_size=224, num_frames=16, tubelet_size=2, patch_size=16, drop_path_rate=0.0),
    decoder_depth=4,
    mask_type="tube",
    mask_ratio=0.9,
    norm_pix_loss=True,
)

dataloader = OmegaConf.create()
dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="kinetics400_train", filter_empty=False),
    mapper=L(MAEClipMapper)(num_frames=16, sampling_rate=4, input_size=224, scales=(1.0, 0.875, 0.75, 0.66), flip=True),
    total_batch_size=_TOTAL_BATCH,
    num_workers=10,  # per GPU, as the official script
    aspect_ratio_grouping=False,
)

optimizer.lr = scaled_lr(_BASE_LR, _TOTAL_BATCH)  # 1.2e-3
optimizer.betas = (0.9, 0.95)
optimizer.weight_decay = 0.05

lr_multiplier.warmup_fraction = _WARMUP_EPOCHS / _EPOCHS
lr_multiplier.min_lr_ratio = _MIN_LR / _BASE_LR  # the scaling rule cancels in the ratio
lr_multiplier.warmup_factor = _WARMUP_LR / _BASE_LR

train.update(
    output_dir="./output/videomae_vit_b_k400_800ep",
    max_iter=_EPOCHS * _ITERS_PER_EPOCH,  # 93,600
    device="auto",
    seed=0,
    # the official fp16 + loss scaling is train.amp.dtype=float16; bfloat16 needs no scaler
    amp=dict(enabled=True, dtype="bfloat16"),
    clip_grad=0.0,
    checkpointer=dict(period=20 * _ITERS_PER_EPOCH, max_to_keep=3),
    log_period=20,
    vis_period=0,  # reconstruction pictures at checkpoints
    hooks=_mae_hooks,  # reconstruction pictures, skipped-video count (configs/common/mae.py)
    eval_only=_mae_eval_only,  # --eval-only: reconstruction loss
)
