"""JHMDB-21 (split 1), ViT-B/16, K400 pretrain + fine-tune: configs/ucf24/vit_b.py on ``jhmdb_{train,test}_split1``,
21 classes, 16 frames at stride 2 (JHMDB's clips are 15-40 frames long: a 64-frame window would be mostly the
clamped first and last frames). Splits 2 and 3: the ``_split2`` / ``_split3`` names in
``dataloader.{train,test}.dataset.names`` and ``dataloader.evaluator.dataset_name``; papers report the mean of the
three. Target: none to match (docs/model_card.md). Test boxes as configs/ucf24/vit_b.py, from
``datasets/jhmdb/person_boxes/test_split1.pkl``.

    python tools/train_net.py --config-file configs/jhmdb/vit_b.py --num-gpus 8 train.init_checkpoint=/path/to/ckpt.pth
"""

from vmae_det.data.act.catalog import person_box_file

from ..common.act import act_schedule, use_act_dataset
from ..ucf24.vit_b import BATCH, dataloader, lr_multiplier, model, optimizer, train

TARGET_FRAME_MAP = None
NUM_CLASSES = 21
NUM_FRAMES, SAMPLING_RATE = 16, 2
TRAIN_FRAMES = 20_000  # an estimate of len(DatasetCatalog.get("jhmdb_train_split1"))

use_act_dataset(
    model,
    dataloader,
    train,
    train_name="jhmdb_train_split1",
    test_name="jhmdb_test_split1",
    num_classes=NUM_CLASSES,
    num_frames=NUM_FRAMES,
    sampling_rate=SAMPLING_RATE,
    test_boxes="proposals" if person_box_file("jhmdb_test_split1") else "gt",
)
act_schedule(train, lr_multiplier, train_frames=TRAIN_FRAMES, batch=BATCH, output_dir="./output/jhmdb_vit_b")
