"""The ACT-format datasets (UCF101-24, JHMDB-21, MultiSports) on the VideoMAE detector: the pieces that differ
from the AVA recipe, applied to its nodes, and the tiny CPU variant of each."""

from detectron2.config import LazyCall as L

from vmae_det.data.transforms import build_ava_test_augmentations, build_ava_train_augmentations
from vmae_det.engine import scaled_lr
from vmae_det.evaluation.act_evaluator import ACTEvaluator


def use_act_dataset(
    model, dataloader, train, *, train_name, test_name, num_classes, num_frames, sampling_rate, test_boxes
):
    """Single-label softmax head over ``num_classes``, ``train_name`` / ``test_name`` at ``num_frames`` x
    ``sampling_rate``, test boxes ``"proposals"`` (the dataset's person boxes) or ``"gt"``, frame-AP and video-AP
    (``ACTEvaluator``) as the metric that keeps the best checkpoint."""
    model.num_classes = num_classes
    model.loss = "softmax_ce"  # one action per person box (mmaction2's BBoxHeadAVA(multilabel=False))
    model.multiply_box_scores = False  # mmaction2's MultiSportsMetric scores the softmax alone
    model.loss_reduction = "mean"
    model.backbone.num_frames = num_frames
    for split, name in (("train", train_name), ("test", test_name)):
        loader = dataloader[split]
        loader.dataset.names = name
        loader.mapper.num_classes = num_classes
        loader.mapper.num_frames = num_frames
        loader.mapper.sampling_rate = sampling_rate
        loader.mapper.clip_offset = 0  # centred on the frame (VMAD's offset is its AVA window's)
    dataloader.test.mapper.test_box_source = test_boxes
    dataloader.evaluator = L(ACTEvaluator)(
        dataset_name=test_name, output_dir="${train.output_dir}/inference", video_ap=True, labels_per_box="argmax"
    )
    train.best_metric = "act/frame_mAP@0.5"


def make_tiny(model, dataloader, optimizer, lr_multiplier, train, *, train_name, test_name, num_classes, output_dir):
    """The CPU variant on a tiny dataset: configs/ava/tiny.py's model, clips and schedule (a few minutes)."""
    size = 64
    model.num_classes = num_classes
    model.backbone.update(size="tiny", img_size=size, num_frames=8, patch_size=8, drop_path_rate=0.0)
    for split, name in (("train", train_name), ("test", test_name)):
        loader = dataloader[split]
        loader.dataset.names = name
        loader.mapper.num_classes = num_classes
        loader.mapper.num_frames = 8
        loader.mapper.sampling_rate = 2
        loader.num_workers = 1
    dataloader.train.mapper.augmentations = L(build_ava_train_augmentations)(
        short_edge=(64, 80), crop_size=size, flip=False, color_jitter=False
    )
    dataloader.train.mapper.gt_box_jitter = 0.05
    dataloader.train.total_batch_size = 8
    dataloader.test.mapper.augmentations = L(build_ava_test_augmentations)(short_edge=size)
    dataloader.test.mapper.test_box_source = "proposals"  # every tiny set has a person-box pickle
    dataloader.test.mapper.test_proposal_threshold = 0.5  # its true boxes score 0.8-1
    dataloader.test.batch_size = 8
    dataloader.evaluator.dataset_name = test_name
    optimizer.lr = scaled_lr(0.2, 8)
    lr_multiplier.warmup_fraction = 0.1
    lr_multiplier.min_lr_ratio = 0.01
    train.update(
        output_dir=output_dir,
        init_checkpoint="",
        max_iter=300,
        device="auto",
        seed=0,
        amp=dict(enabled=False),
        checkpointer=dict(period=150, max_to_keep=2),
        eval_period=300,
        log_period=20,
    )
