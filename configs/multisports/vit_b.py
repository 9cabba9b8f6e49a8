"""MultiSports v1, ViT-B/16, K400 pretrain + fine-tune: configs/ucf24/vit_b.py on ``multisports_{train,val}``,
66 classes, 16 frames at stride 4; test boxes: MultiSports' released person boxes (Faster R-CNN R101-FPN) with
score >= 0.9 (mmaction2's AVADataset default, used by its MultiSports configs). Targets: the MultiSports baselines
of mmaction2's configs (docs/model_card.md); no VideoMAE number is published for this pipeline; schedule ours.

    python tools/train_net.py --config-file configs/multisports/vit_b.py --num-gpus 8 \
        train.init_checkpoint=/path/to/ckpt.pth
"""

from ..common.act import act_schedule, use_act_dataset
from ..ucf24.vit_b import BATCH, dataloader, lr_multiplier, model, optimizer, train

TARGET_FRAME_MAP = 36.88  # mmaction2's SlowFast R50 baseline, the stronger one
NUM_CLASSES = 66
NUM_FRAMES, SAMPLING_RATE = 16, 4
TRAIN_FRAMES = 300_000  # an estimate of len(DatasetCatalog.get("multisports_train"))

use_act_dataset(
    model,
    dataloader,
    train,
    train_name="multisports_train",
    test_name="multisports_val",
    num_classes=NUM_CLASSES,
    num_frames=NUM_FRAMES,
    sampling_rate=SAMPLING_RATE,
    test_boxes="proposals",
)
dataloader.test.mapper.test_proposal_threshold = 0.9
act_schedule(train, lr_multiplier, train_frames=TRAIN_FRAMES, batch=BATCH, output_dir="./output/multisports_vit_b")
