"""Quick-start VideoMAE pretraining: a tiny ViT on the tiny AVA videos, about a minute on 2 CPU cores.

    python tools/pretrain_mae.py --config-file configs/pretrain/tiny.py

The paper recipe's shape, scaled down, with raw-pixel targets (see ``norm_pix_loss``).
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

_BATCH = 8
_FRAMES, _STRIDE, _SIZE = 8, 2, 64

model = L(build_videomae)(
    size="tiny",  # 64-d, 2 blocks, 2 heads; decoder 32-d
    encoder_kwargs=dict(img_size=_SIZE, num_frames=_FRAMES, patch_size=8, tubelet_size=2),
    decoder_depth=1,
    mask_type="tube",
    mask_ratio=0.9,
    # The synthetic videos are mostly flat colour, whose per-cube normalised targets are amplified compression
    # noise no model can predict; raw [0, 1] pixels make the loss fall clearly.
    norm_pix_loss=False,
)

dataloader = OmegaConf.create()
dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="tiny_ava_videos", filter_empty=False),
    mapper=L(MAEClipMapper)(num_frames=_FRAMES, sampling_rate=_STRIDE, input_size=_SIZE, flip=True),
    total_batch_size=_BATCH,
    num_workers=1,
    aspect_ratio_grouping=False,
)

# The paper's base lr would barely move a 200-iteration run at batch 8.
optimizer.lr = scaled_lr(base_lr=0.05, batch_size=_BATCH)
optimizer.betas = (0.9, 0.95)
optimizer.weight_decay = 0.05

lr_multiplier.warmup_fraction = 0.1

train.update(
    output_dir="./output/pretrain_tiny",
    max_iter=200,
    device="auto",
    seed=0,
    checkpointer=dict(period=100, max_to_keep=2),
    log_period=20,
    vis_period=0,  # reconstruction pictures at checkpoints
    hooks=_mae_hooks,  # reconstruction pictures, skipped-video count (configs/common/mae.py)
    eval_only=_mae_eval_only,  # --eval-only: reconstruction loss
)
