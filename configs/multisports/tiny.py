"""MultiSports' tiny version (``datasets/tiny_multisports``, mp4 videos) on CPU in minutes: configs/ava/tiny.py
(model, clips, schedule) with the ACT pieces of configs/multisports/vit_b.py (configs/common/act.py), scored on its
person-box pickle.

    python tools/train_net.py --config-file configs/multisports/tiny.py
"""

from ..ava.tiny import NUM_FRAMES, SAMPLING_RATE, dataloader, lr_multiplier, model, optimizer, train
from ..common.act import use_act_dataset

use_act_dataset(
    model,
    dataloader,
    train,
    train_name="multisports_tiny_train",
    test_name="multisports_tiny_val",
    num_classes=4,
    num_frames=NUM_FRAMES,
    sampling_rate=SAMPLING_RATE,
    test_boxes="proposals",
)
dataloader.test.mapper.test_proposal_threshold = 0.5  # the tiny person boxes: figures 0.8-1, false positives < 0.6
train.update(output_dir="./output/multisports_tiny", eval_period=300)
