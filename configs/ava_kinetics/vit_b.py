"""AVA-Kinetics v1.0 action detection, ViT-B/16, K400 pretrain + K400 fine-tune: configs/ava/vit_b.py (the VMAD
recipe, every number VMAD's) with AVA-Kinetics' data: training on AVA v2.2 train + the Kinetics train clips
(``ava_kinetics_train``), scoring AVA v2.2 val + the Kinetics val clips (``ava_kinetics_val``) with ActivityNet's
2020 evaluator, the one the AVA-Kinetics challenge used (docs/ava_kinetics.md).

No VideoMAE-based AVA-Kinetics number exists for this detector: VMAD and the VideoMAE paper report AVA only. The
nearest published numbers use other heads: mmaction2's VideoMAE ViT-B (K400 pretrain + fine-tune, its FastRCNN
head, 20 epochs) trained on AVA-Kinetics train reaches 33.6 mAP on AVA v2.2 val alone (configs/detection/videomae).
VideoMAE V2 reports ViT-g on AVA-Kinetics without released detection code.
The schedule keeps the AVA recipe's iterations (fewer passes over the larger set); Kinetics val person boxes are
not distributed: make them (annotations/kinetics_val_predicted_boxes.csv, docs/ava_kinetics.md).

    python tools/train_net.py --config-file configs/ava_kinetics/vit_b.py --num-gpus 8 \
        train.init_checkpoint=/path/to/ckpt.pth
"""

from ..ava.vit_b import dataloader, lr_multiplier, model, optimizer, train

dataloader.train.dataset.names = "ava_kinetics_train"
dataloader.test.dataset.names = "ava_kinetics_val"
dataloader.evaluator.dataset_name = "ava_kinetics_val"
dataloader.evaluator.protocol = "2020"  # fractional Kinetics seconds, video_id,timestamp rows, no exclusions file

train.output_dir = "./output/ava_kinetics_vit_b"

__all__ = ["dataloader", "lr_multiplier", "model", "optimizer", "train"]
