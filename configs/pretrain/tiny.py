"""Quick-start VideoMAE pretraining: a tiny ViT on the videos of the tiny AVA default.

Runs in about a minute on 2 CPU cores and the loss falls clearly (see tests/test_pretrain.py):
    python tools/pretrain_mae.py --config-file configs/pretrain/tiny.py
Same recipe shape as the paper configs (tube masking 0.9, AdamW β=(0.9, 0.95), wd 0.05, cosine with
warmup, lr scaled by batch/256), scaled down: 8 frames at stride 2, 64 px, 8 px patches, a 1-block
decoder, raw-pixel targets (see the comment at ``norm_pix_loss``). Measured on 2 CPU cores: 200
iterations in ~25 s, loss_mae 0.27 (iter 20) -> 0.005 (iter 200).
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
    # The synthetic videos are flat colour almost everywhere: per-cube normalised targets of a flat
    # cube are amplified compression noise, which no model can predict (the loss would stay near 1).
    # Raw [0, 1] pixel targets make the quick start's loss fall clearly; the paper configs keep True.
    norm_pix_loss=False,
)

dataloader = OmegaConf.create()
dataloader.train = L(build_detection_train_loader)(
    # detectron2's loader of DatasetCatalog entries (a plain function, so a saved config reloads)
    dataset=L(get_detection_dataset_dicts)(names="tiny_ava_videos", filter_empty=False),
    mapper=L(MAEClipMapper)(num_frames=_FRAMES, sampling_rate=_STRIDE, input_size=_SIZE, flip=True),
    total_batch_size=_BATCH,
    num_workers=1,
    aspect_ratio_grouping=False,
)

# The paper's base lr (1.5e-4 per 256 clips) would barely move a 200-iteration run at batch 8;
# the tiny run uses a larger base lr, still scaled by the same rule.
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
