"""AVA v2.2 action detection, ViT-B/16 VideoMAE backbone — the official VideoMAE recipe.

Official recipe (VideoMAE paper, Table 8 / VideoMAE-Action-Detection): 16 frames at stride 4;
train: short side 256 jittered up to 464, random 224 crop, horizontal flip, colour jitter; test: short side
256, full frame; person boxes: ground truth (jittered) for training, detector proposals ≥ 0.8 for testing;
batch 128, 30 epochs with 5 warm-up, AdamW β (0.9, 0.999), weight decay 0.05,
lr 5e-4 × batch/256 (2.5e-4 for Kinetics-400-only pretraining), min lr 1e-6, layer decay 0.75, drop path 0.2.
Reported: 26.7 mAP (K400 pretrain + fine-tune, ViT-B, 1600 epochs).

Usage:
    python tools/train_net.py --config-file configs/ava/vit_b.py --num-gpus 8 \
        train.init_checkpoint=/path/to/videomae_vit_b_k400_pretrain.pth
"""
from detectron2.config import LazyCall as L
from detectron2.data import build_detection_train_loader, get_detection_dataset_dicts
from omegaconf import OmegaConf

from vmae_det.data.ava import AVAClipMapper
from vmae_det.data.loaders import build_batched_test_loader
from vmae_det.data.transforms import build_ava_test_augmentations, build_ava_train_augmentations
from vmae_det.engine import scaled_lr
from vmae_det.evaluation import AVAEvaluator
from vmae_det.modeling import AVAActionDetector, build_vit

from ..common.optim import AdamW as optimizer
from ..common.schedule import cosine_warmup as lr_multiplier
from ..common.train import train

# ---------------------------------------------------------------- recipe numbers
BATCH = 128
EPOCHS, WARMUP_EPOCHS = 30, 5
TRAIN_KEYFRAMES = 210_634  # labelled keyframes in ava_train_v2.2.csv (one "epoch")
BASE_LR, MIN_LR = 5e-4, 1e-6
NUM_FRAMES, SAMPLING_RATE = 16, 4
NUM_CLASSES = 80  # model outputs all 80 AVA actions; evaluation uses the 60-class label map

model = L(AVAActionDetector)(
    backbone=L(build_vit)(
        size="base", img_size=224, num_frames=NUM_FRAMES, patch_size=16, tubelet_size=2,
        drop_path_rate=0.2, use_learnable_pos_emb=False, use_checkpoint=False,
    ),
    num_classes=NUM_CLASSES,
    temporal_pool="mean",
    roi_size=7,
    spatial_pool="max",
    head="linear",
    dropout=0.0,
    multiply_box_scores=True,
)

dataloader = OmegaConf.create()
dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="ava_v2.2_train", filter_empty=False),
    mapper=L(AVAClipMapper)(
        is_train=True, num_classes=NUM_CLASSES, num_frames=NUM_FRAMES, sampling_rate=SAMPLING_RATE,
        augmentations=L(build_ava_train_augmentations)(
            short_edge=(256, 464), crop_size=224, flip=True, color_jitter=True
        ),
        train_box_source="gt", gt_box_jitter=0.05, max_boxes=100,
    ),
    total_batch_size=BATCH,
    num_workers=8,
    aspect_ratio_grouping=False,
)
dataloader.test = L(build_batched_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="ava_v2.2_val", filter_empty=False),
    mapper=L(AVAClipMapper)(
        is_train=False, num_classes=NUM_CLASSES, num_frames=NUM_FRAMES, sampling_rate=SAMPLING_RATE,
        augmentations=L(build_ava_test_augmentations)(short_edge=256),
        test_box_source="proposals", test_proposal_threshold=0.8, test_box_margin=0.0,
    ),
    batch_size=8,
    num_workers=8,
)
dataloader.evaluator = L(AVAEvaluator)(
    dataset_name="ava_v2.2_val", protocol="2019", output_dir="${train.output_dir}/inference"
)

optimizer.lr = scaled_lr(BASE_LR, BATCH)
optimizer.betas = (0.9, 0.999)
optimizer.weight_decay = 0.05
optimizer.layer_decay = 0.75

lr_multiplier.warmup_fraction = WARMUP_EPOCHS / EPOCHS
lr_multiplier.min_lr_ratio = MIN_LR / scaled_lr(BASE_LR, BATCH)

ITERS_PER_EPOCH = TRAIN_KEYFRAMES // BATCH
train.update(
    output_dir="./output/ava_vit_b",
    max_iter=EPOCHS * ITERS_PER_EPOCH,
    amp=dict(enabled=True, dtype="bfloat16"),
    clip_grad=0.0,
    checkpointer=dict(period=ITERS_PER_EPOCH, max_to_keep=3),
    eval_period=5 * ITERS_PER_EPOCH,
    best_metric="ava/mAP",
    log_period=20,
)
