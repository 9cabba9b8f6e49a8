"""The ACT-format datasets (UCF101-24, JHMDB-21, MultiSports) on the VideoMAE detector: what differs from the AVA
recipe (configs/ava/vit_b.py, or configs/ava/tiny.py for the tiny variants), applied to its nodes."""

from detectron2.config import LazyCall as L

from vmae_det.evaluation.act_evaluator import ACTEvaluator

EPOCHS, WARMUP_EPOCHS, EVAL_EPOCHS = 10, 2, 5  # ours: no VideoMAE recipe for these datasets publishes a schedule


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


def act_schedule(train, lr_multiplier, *, train_frames, batch, output_dir):
    """:data:`EPOCHS` over ``train_frames`` (an estimate of the training frames) at ``batch`` clips per step."""
    iters_per_epoch = train_frames // batch
    lr_multiplier.warmup_fraction = WARMUP_EPOCHS / EPOCHS
    train.update(
        output_dir=output_dir,
        max_iter=EPOCHS * iters_per_epoch,
        checkpointer=dict(period=iters_per_epoch, max_to_keep=3),
        eval_period=EVAL_EPOCHS * iters_per_epoch,
    )
