"""UCF101-24 (split 1), ViT-B/16, K400 pretrain + fine-tune: the VideoMAE AVA recipe (configs/ava/vit_b.py, VMAD's
run.sh: AdamW, lr 5e-4 x batch/256, layer decay 0.75, drop path 0.2, batch 128) with the single-label softmax head
of the ACT datasets (configs/common/act.py), 16 frames at stride 4 centred on each annotated frame; evaluated on
every frame of the test videos, frame-mAP@0.5 and video-mAP@0.2/0.5 as the official evaluator (docs/datasets.md).

Target: none to match. The VideoMAE ViT-B numbers published on UCF101-24 (EVAD, STMixer) come from end-to-end
detectors with their own heads and no released UCF101-24 code (docs/datasets.md). Schedule (10 epochs, 2 warm-up)
is ours. Test boxes: detected people with score >= 0.8 (the AVA recipe's threshold) from
``datasets/ucf24/person_boxes/test.pkl`` when that file exists (``tools/make_proposals.py --dataset ucf24_test``),
else the ground-truth boxes, as UCF101-24 ships no person detections (the frame-mAP is then an upper bound of the
detection protocol's); ``dataloader.test.mapper.test_box_source`` says which.

    python tools/train_net.py --config-file configs/ucf24/vit_b.py --num-gpus 8 train.init_checkpoint=/path/to/ckpt.pth
"""

from vmae_det.data.act.catalog import person_box_file

from ..ava.vit_b import BATCH, dataloader, lr_multiplier, model, optimizer, train
from ..common.act import act_schedule, use_act_dataset

TARGET_FRAME_MAP = None  # see the docstring
NUM_CLASSES = 24
NUM_FRAMES, SAMPLING_RATE = 16, 4  # VideoMAE's K400 sampling, as the AVA recipe
TRAIN_FRAMES = 100_000  # an estimate of len(DatasetCatalog.get("ucf24_train")): docs/datasets.md, "Real runs"

use_act_dataset(
    model,
    dataloader,
    train,
    train_name="ucf24_train",
    test_name="ucf24_test",
    num_classes=NUM_CLASSES,
    num_frames=NUM_FRAMES,
    sampling_rate=SAMPLING_RATE,
    test_boxes="proposals" if person_box_file("ucf24_test") else "gt",
)
act_schedule(train, lr_multiplier, train_frames=TRAIN_FRAMES, batch=BATCH, output_dir="./output/ucf24_vit_b")
