"""AVA v2.2 action detection, ViT-B/16, K400 pretrain + K400 fine-tune: the official VideoMAE-Action-Detection
(VMAD) recipe, target **31.8 mAP** (VideoMAE paper, Table 9; VMAD
scripts/ava/videomae_vit_base_k400_pretrain+finetune/run.sh).

Every number is VMAD's (where each comes from: docs/architecture.md "VMAD parity"); train.init_checkpoint takes the
K400 pretrain + fine-tune checkpoint (docs/real_ava.md). Deviations: bf16 autocast (`train.amp.dtype=float16` for
VMAD's fp16); 30-fps clips on the frames/videos layouts (`--ava-root` on VMAD's processed layout reads its 25-fps
clips as VMAD does); test padding differs when several processes shard the batches.

    python tools/train_net.py --config-file configs/ava/vit_b.py --num-gpus 8 train.init_checkpoint=/path/to/ckpt.pth
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

# ---------------------------------------------------------------- recipe numbers (VMAD run.sh)
TARGET_MAP = 31.8  # AVA v2.2 val frame-mAP of the paper / VMAD MODEL_ZOO
BATCH = 128
EPOCHS, WARMUP_EPOCHS, EVAL_EPOCHS = 30, 5, 10
TRAIN_KEYFRAMES = 210_634  # labelled keyframes in ava_train_v2.2.csv (one "epoch")
ITERS_PER_EPOCH = TRAIN_KEYFRAMES // BATCH  # VMAD: len(dataset) // total batch (drop last)
BASE_LR, BASE_MIN_LR = 5e-4, 1e-6  # both scaled by BATCH / 256, as run_class_finetuning.py
NUM_FRAMES, SAMPLING_RATE = 16, 4
CLIP_OFFSET = (SAMPLING_RATE - 1) // 2  # VMAD's TemporalCrop of its 64-frame window
NUM_CLASSES = 80  # model outputs all 80 AVA actions; evaluation uses the 60-class label map
VMAD_PIXEL_MEAN, VMAD_PIXEL_STD = [122.7717, 115.9465, 102.9801], [57.375, 57.375, 57.375]

model = L(AVAActionDetector)(
    backbone=L(build_vit)(
        size="base",
        img_size=224,
        num_frames=NUM_FRAMES,
        patch_size=16,
        tubelet_size=2,
        drop_path_rate=0.2,
        use_learnable_pos_emb=False,
        use_checkpoint=False,
        # EVAD's keyframe-centric token dropout (docs/performance.md): 1.0 = none (VMAD); its recipe is 0.7
        token_keep_rate=1.0,
        token_drop_blocks=None,  # None: EVAD's blocks (3, 6, 9 of 12; 6, 12, 18 of 24)
        token_keyframe_weight=1.0,  # EVAD's ENHANCED_WEIGHT; inf: rank by the keyframe's queries alone
    ),
    num_classes=NUM_CLASSES,
    temporal_pool="mean",
    roi_size=7,
    roi_sampling_ratio=0,
    roi_aligned=False,
    test_box_extension=(0.1, 0.05),
    spatial_pool="max",
    head="linear",
    dropout=0.0,
    head_init_std=0.02,
    head_init_scale=0.001,
    loss_reduction="box_sum",
    multiply_box_scores=True,
    pixel_mean=VMAD_PIXEL_MEAN,
    pixel_std=VMAD_PIXEL_STD,
)

dataloader = OmegaConf.create()
dataloader.train = L(build_detection_train_loader)(
    dataset=L(get_detection_dataset_dicts)(names="ava_v2.2_train", filter_empty=False),
    mapper=L(AVAClipMapper)(
        is_train=True,
        num_classes=NUM_CLASSES,
        num_frames=NUM_FRAMES,
        sampling_rate=SAMPLING_RATE,
        clip_offset=CLIP_OFFSET,
        augmentations=L(build_ava_train_augmentations)(
            short_edge=256, crop_size=224, max_size=None, flip=True, color_jitter="hsv"
        ),
        train_box_source="gt",
        gt_box_jitter=(0.2, 0.1, 0.1, 0.05),
        max_boxes=100,
        min_box_size=0.0,
    ),
    total_batch_size=BATCH,
    num_workers=8,
    aspect_ratio_grouping=False,
)
dataloader.test = L(build_batched_test_loader)(
    dataset=L(get_detection_dataset_dicts)(names="ava_v2.2_val_alphaction_boxes", filter_empty=False),
    mapper=L(AVAClipMapper)(
        is_train=False,
        num_classes=NUM_CLASSES,
        num_frames=NUM_FRAMES,
        sampling_rate=SAMPLING_RATE,
        clip_offset=CLIP_OFFSET,
        augmentations=L(build_ava_test_augmentations)(short_edge=256, max_size=None),
        test_box_source="proposals",
        test_proposal_threshold=0.8,
    ),
    batch_size=6,  # VMAD: 1.5 x the per-GPU training batch
    num_workers=8,
)
dataloader.evaluator = L(AVAEvaluator)(
    dataset_name="ava_v2.2_val_alphaction_boxes",
    protocol="2019",
    output_dir="${train.output_dir}/inference",
    max_detections_per_keyframe=None,  # VMAD's protocol (the target's); 50 = official ActivityNet
)

optimizer.lr = scaled_lr(BASE_LR, BATCH)
optimizer.betas = (0.9, 0.999)
optimizer.weight_decay = 0.05
optimizer.layer_decay = 0.75

lr_multiplier.warmup_fraction = WARMUP_EPOCHS / EPOCHS
lr_multiplier.warmup_factor = 0.0  # VMAD's cosine_scheduler starts the warm-up at 0
lr_multiplier.min_lr_ratio = scaled_lr(BASE_MIN_LR, BATCH) / optimizer.lr

train.update(
    output_dir="./output/ava_vit_b",
    init_checkpoint="",  # the K400 pretrain + fine-tune ViT-B checkpoint named above
    max_iter=EPOCHS * ITERS_PER_EPOCH,
    amp=dict(enabled=True, dtype="bfloat16"),
    clip_grad=0.0,
    checkpointer=dict(period=ITERS_PER_EPOCH, max_to_keep=3),
    eval_period=EVAL_EPOCHS * ITERS_PER_EPOCH,
    best_metric="ava/mAP",
    log_period=20,
)
