"""Quick-start AVA fine-tuning on the tiny dataset (datasets/make_tiny_ava.py), CPU, ~1-2 min; its backbone
matches configs/pretrain/tiny.py, so that MAE checkpoint loads directly:

    python tools/train_net.py --config-file configs/ava/tiny.py \
        train.init_checkpoint=output/pretrain_tiny/model_final.pth
"""

from detectron2.config import LazyCall as L

from vmae_det.data.transforms import build_ava_test_augmentations, build_ava_train_augmentations
from vmae_det.engine import scaled_lr

from .vit_b import dataloader, lr_multiplier, model, optimizer, train

NUM_FRAMES, SAMPLING_RATE, SIZE = 8, 2, 64
NUM_CLASSES = 5
BATCH = 8

model.backbone.size = "tiny"
model.backbone.img_size = SIZE
model.backbone.num_frames = NUM_FRAMES
model.backbone.patch_size = 8
model.backbone.drop_path_rate = 0.0
model.num_classes = NUM_CLASSES

for _split, _name in (("train", "ava_tiny_train"), ("test", "ava_tiny_val")):
    _loader = dataloader[_split]
    _loader.dataset.names = _name
    _loader.mapper.num_classes = NUM_CLASSES
    _loader.mapper.num_frames = NUM_FRAMES
    _loader.mapper.sampling_rate = SAMPLING_RATE
    _loader.num_workers = 1
dataloader.train.mapper.augmentations = L(build_ava_train_augmentations)(
    short_edge=(64, 80),
    crop_size=SIZE,
    flip=False,
    color_jitter=False,  # flip would swap walk left/right
)
dataloader.train.mapper.gt_box_jitter = 0.05
dataloader.train.total_batch_size = BATCH
dataloader.test.mapper.augmentations = L(build_ava_test_augmentations)(short_edge=SIZE)
dataloader.test.batch_size = 4
dataloader.evaluator.dataset_name = "ava_tiny_val"

optimizer.lr = scaled_lr(0.2, BATCH)  # far above the paper's 5e-4: a 300-step run on CPU
optimizer.layer_decay = 0.75
lr_multiplier.warmup_fraction = 0.1
lr_multiplier.min_lr_ratio = 0.01

train.update(
    output_dir="./output/ava_tiny",
    max_iter=300,
    device="auto",
    seed=0,
    amp=dict(enabled=False),
    checkpointer=dict(period=150, max_to_keep=2),
    eval_period=150,
    log_period=20,
)
