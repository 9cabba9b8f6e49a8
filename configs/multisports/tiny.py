"""MultiSports' tiny version (``datasets/tiny_multisports``, mp4 videos and a person-box pickle) on CPU in
minutes: configs/multisports/vit_b.py at configs/ava/tiny.py's scale, its person boxes at test.

    python tools/train_net.py --config-file configs/multisports/tiny.py
"""

from ..common.act import make_tiny
from .vit_b import dataloader, lr_multiplier, model, optimizer, train

make_tiny(
    model,
    dataloader,
    optimizer,
    lr_multiplier,
    train,
    train_name="multisports_tiny_train",
    test_name="multisports_tiny_val",
    num_classes=4,
    output_dir="./output/multisports_tiny",
)
