"""The pretrained-vs-scratch comparison's MAE pretraining (`make quickstart-compare`): tiny.py on an unlabelled
set, 9600 iterations, so its checkpoint loads into configs/ava/tiny.py (what it measured: docs/experiments.md).

    python datasets/make_tiny_ava.py --root datasets/tiny_ava_unlabelled --videos-only --seed 1 \\
        --num-train-videos 48 --background plain
    python tools/pretrain_mae.py --config-file configs/pretrain/tiny_quickstart.py \\
        --videos datasets/tiny_ava_unlabelled/videos
"""

from .tiny import dataloader, lr_multiplier, model, optimizer, train

train.update(
    output_dir="./output/pretrain_tiny_quickstart",
    max_iter=9600,
    checkpointer=dict(period=1200, max_to_keep=2),
)
