"""UCF101-24's tiny version (``datasets/tiny_ucf24``) on CPU in minutes: configs/ucf24/vit_b.py at
configs/ava/tiny.py's scale, its person boxes at test.

    python tools/train_net.py --config-file configs/ucf24/tiny.py
"""

from ..common.act import make_tiny
from .vit_b import dataloader, lr_multiplier, model, optimizer, train

make_tiny(
    model,
    dataloader,
    optimizer,
    lr_multiplier,
    train,
    train_name="ucf24_tiny_train",
    test_name="ucf24_tiny_test",
    num_classes=4,
    output_dir="./output/ucf24_tiny",
)
