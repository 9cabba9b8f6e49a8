"""JHMDB-21's tiny version (``datasets/tiny_jhmdb``, PNG frames) on CPU in minutes: configs/jhmdb/vit_b.py at
configs/ava/tiny.py's scale, its person boxes at test.

    python tools/train_net.py --config-file configs/jhmdb/tiny.py
"""

from ..common.act import make_tiny
from .vit_b import dataloader, lr_multiplier, model, optimizer, train

make_tiny(
    model,
    dataloader,
    optimizer,
    lr_multiplier,
    train,
    train_name="jhmdb_tiny_train",
    test_name="jhmdb_tiny_test",
    num_classes=4,
    output_dir="./output/jhmdb_tiny",
)
