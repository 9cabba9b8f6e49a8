"""Quick-start AVA-Kinetics fine-tuning on the tiny set (datasets/make_tiny_ava_kinetics.py), CPU: configs/ava/tiny.py
on ``ava_kinetics_tiny_{train,val}``, scored with the 2020 protocol as configs/ava_kinetics/vit_b.py.

    python tools/train_net.py --config-file configs/ava_kinetics/tiny.py
"""

from ..ava.tiny import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "ava_kinetics_tiny_train"
dataloader.test.dataset.names = "ava_kinetics_tiny_val"
dataloader.evaluator.dataset_name = "ava_kinetics_tiny_val"
dataloader.evaluator.protocol = "2020"

train.output_dir = "./output/ava_kinetics_tiny"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
