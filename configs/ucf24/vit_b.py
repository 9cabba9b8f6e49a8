"""UCF101-24 (split 1), ViT-B/16, K400 pretrain + fine-tune: the VideoMAE AVA recipe (configs/ava/vit_b.py) with
the ACT datasets' softmax head and evaluator (configs/common/act.py), 16 frames at stride 4 centred on each
annotated frame. Target: none to match; schedule ours (docs/model_card.md). Test boxes: the detected people of
``datasets/ucf24/person_boxes/test.pkl`` (score >= 0.8) when that file exists, else the ground-truth boxes, an
upper bound (docs/datasets.md).

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
