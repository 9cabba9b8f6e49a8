"""JHMDB-21's tiny version (``datasets/tiny_jhmdb``, PNG frames) on CPU in minutes: configs/ava/tiny.py (model,
clips, schedule) with the ACT pieces of configs/jhmdb/vit_b.py (configs/common/act.py), scored on its person-box pickle.

    python tools/train_net.py --config-file configs/jhmdb/tiny.py
"""

from ..ava.tiny import NUM_FRAMES, SAMPLING_RATE, dataloader, lr_multiplier, model, optimizer, train
from ..common.act import use_act_dataset

use_act_dataset(
    model,
    dataloader,
    train,
    train_name="jhmdb_tiny_train",
    test_name="jhmdb_tiny_test",
    num_classes=4,
    num_frames=NUM_FRAMES,
    sampling_rate=SAMPLING_RATE,
    test_boxes="proposals",
)
dataloader.test.mapper.test_proposal_threshold = 0.5  # the tiny person boxes: figures 0.8-1, false positives < 0.6
train.update(output_dir="./output/jhmdb_tiny", eval_period=300)
