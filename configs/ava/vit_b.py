"""AVA v2.2 action detection, ViT-B/16, Kinetics-400 self-supervised pretraining + K400 supervised
fine-tuning — the official VideoMAE-Action-Detection (VMAD) recipe, target **31.8 mAP** (VideoMAE paper,
Table 9; VMAD MODEL_ZOO.md; script scripts/ava/videomae_vit_base_k400_pretrain+finetune/run.sh).

Expects (train.init_checkpoint): the MCG-NJU VideoMAE ViT-B K400 checkpoint pretrained 1600 epochs and
then fine-tuned on K400 labels (VMAD MODEL_ZOO "Extra Label ✓", Google Drive id
1MzwteHH-1yuMnFb8vRBQDvngV1Zl-d3z). It is a mean-pooling classifier: it has fc_norm and no token norm,
so the detector's `norm` starts at its LayerNorm init, as in VMAD. For the pretrain-only row see
vit_b_pretrain_only.py. Evaluating a released VMAD AVA checkpoint (head included):
    python tools/train_net.py --config-file configs/ava/vit_b.py --eval-only train.init_checkpoint=vmad_ava_vit_b.pth

Recipe, each number from VMAD (file in brackets):
  * data [data/transforms.py, data/ava.py, datasets.py]: 16 frames at stride 4 from the 64 frames
    around the keyframe (clip_offset 1, TemporalCrop); train: short side exactly 256 (cv2 bilinear,
    long side truncated, no max size), random 224x224 crop, HSV jitter (hue ±20°, sat/val ±0.1·255,
    every clip), horizontal flip p 0.5, ground-truth boxes only; test: short side 256, whole frame,
    person boxes with score >= 0.8; normalisation mean [122.7717, 115.9465, 102.9801], std 57.375;
  * boxes [modeling_finetune.py, alphaction/structures/bounding_box.py]: training GT boxes jittered by
    random_aug(0.2, 0.1, 0.1, 0.05) after the crop, boxes cut away by the crop kept (as 1-px boxes);
    at most 100 per clip; test boxes enlarged by (0.1 W, 0.05 H) for RoIAlign only;
  * model [modeling_finetune.py]: ViT (q/v bias, sinusoid table resized per frame), final norm,
    temporal mean, RoIAlign 7x7 (aligned=False), max pool, linear head (trunc-normal 0.02 × 0.001),
    BCE mean × boxes; test score sigmoid × person score; drop path 0.2;
  * optimisation [run_class_finetuning.py, optim_factory.py, utils.py, run.sh]: batch 128 (32 GPUs x 4),
    AdamW betas (0.9, 0.999), wd 0.05 (none on 1-d params and the position table), layer decay 0.75,
    lr 5e-4 x 128/256, min lr 1e-6 x 128/256, 5 warm-up epochs from 0 then cosine, 30 epochs, no
    gradient clipping; evaluation every 10 epochs;
  * person boxes: AlphAction's detections (ava_val_det_person_bbox.json), the ones the paper's number
    was measured with: dataset `ava_v2.2_val_alphaction_boxes` (datasets/README.md);
  * frame-mAP: VMAD's protocol, the one behind the target number: every detection of a keyframe kept
    (ActivityNet 2019 rules otherwise); `dataloader.evaluator.max_detections_per_keyframe=50` gives the
    official ActivityNet cap of 50;
  * data: `--ava-root` on VMAD's processed AVA (clips/trainval, *_min.json, boxes/) reads it as VMAD does:
    25-fps one-second clips, its keyframe list, its inclusive-pixel boxes (docs/datasets: datasets/README.md).

Deviations (docs/architecture.md "VMAD parity"): bf16 autocast instead of VMAD's fp16 + loss scaling
(`train.amp.dtype=float16` for VMAD's); on the frames/videos layouts (30 fps, full-resolution frames) the
clips differ from VMAD's 25-fps ones; VMAD evaluates on one process with batches of 6 clips padded to the
batch's largest, as one process does here (several processes shard the batches, and padding then differs);
paper batch on fewer GPUs: `dataloader.train.total_batch_size=32 train.grad_accum_steps=4`.

Usage:
    python tools/train_net.py --config-file configs/ava/vit_b.py --num-gpus 8 \
        train.init_checkpoint=/path/to/videomae_vit_b_k400_pretrain_finetune.pth
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
