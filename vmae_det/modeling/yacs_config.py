"""yacs keys for building the models through detectron2's registries (``build_model(cfg)``), as detectron2's
own ``add_*_config`` functions; the recipes themselves are LazyConfigs (docs/architecture.md)."""

from __future__ import annotations

from detectron2.config import CfgNode

from ..constants import IMAGENET_PIXEL_MEAN, IMAGENET_PIXEL_STD

__all__ = ["add_ava_detector_config", "add_vit_config"]


def add_vit_config(cfg: CfgNode) -> None:
    """Add ``cfg.MODEL.VIT``: one key per :class:`~vmae_det.modeling.vit.VideoViT` argument (``in_chans``
    comes from ``len(cfg.MODEL.PIXEL_MEAN)``). ``SIZE`` names an entry of ``VIT_SIZES``; non-zero
    ``EMBED_DIM`` / ``DEPTH`` / ``NUM_HEADS`` override it."""
    cfg.MODEL.VIT = CfgNode()
    cfg.MODEL.VIT.SIZE = "base"
    cfg.MODEL.VIT.EMBED_DIM = 0  # 0: from SIZE
    cfg.MODEL.VIT.DEPTH = 0  # 0: from SIZE
    cfg.MODEL.VIT.NUM_HEADS = 0  # 0: from SIZE
    cfg.MODEL.VIT.IMG_SIZE = 224
    cfg.MODEL.VIT.NUM_FRAMES = 16
    cfg.MODEL.VIT.TUBELET_SIZE = 2
    cfg.MODEL.VIT.PATCH_SIZE = 16
    cfg.MODEL.VIT.MLP_RATIO = 4.0
    cfg.MODEL.VIT.QKV_BIAS = True
    cfg.MODEL.VIT.DROP_RATE = 0.0
    cfg.MODEL.VIT.ATTN_DROP_RATE = 0.0
    cfg.MODEL.VIT.DROP_PATH_RATE = 0.0
    cfg.MODEL.VIT.INIT_VALUES = 0.0
    cfg.MODEL.VIT.USE_LEARNABLE_POS_EMB = False
    cfg.MODEL.VIT.USE_CHECKPOINT = False
    cfg.MODEL.VIT.OUT_FEATURE = "last"
    cfg.MODEL.VIT.USE_MEAN_POOLING = False
    cfg.MODEL.VIT.TOKEN_KEEP_RATE = 1.0  # keyframe-centric token dropout (modeling/token_dropout.py); 1: none
    cfg.MODEL.VIT.TOKEN_DROP_BLOCKS = None  # None: EVAD's blocks
    cfg.MODEL.VIT.TOKEN_KEYFRAME_WEIGHT = 1.0


def add_ava_detector_config(cfg: CfgNode) -> None:
    """Add the keys of :class:`~vmae_det.modeling.action_detector.AVAActionDetector`.

    * ``cfg.MODEL.VIT``: the backbone (:func:`add_vit_config`, unless already there);
    * ``cfg.MODEL.AVA_HEAD``: one key per detector argument, defaults = the class's (VMAD's): ``NUM_CLASSES``,
      ``TEMPORAL_POOL``, ``ROI_SIZE``, ``ROI_SAMPLING_RATIO``, ``ROI_ALIGNED``, ``TEST_BOX_EXTENSION`` (``()``
      disables it), ``SPATIAL_POOL``, ``KIND`` (``head``), ``HIDDEN_DIM`` (``head_hidden_dim``), ``DROPOUT``,
      ``INIT_STD`` / ``INIT_SCALE`` (``head_init_*``), ``LOSS``, ``LOSS_REDUCTION``,
      ``MULTIPLY_BOX_SCORES``;
    * ``cfg.MODEL.PIXEL_MEAN`` / ``PIXEL_STD``: RGB on the 0-255 scale (ImageNet's), since detectron2's BGR
      Caffe defaults are wrong for these clips.

    ``META_ARCHITECTURE`` and ``BACKBONE.NAME`` are left to the caller, as detectron2's ``add_*_config`` do.
    """
    if "VIT" not in cfg.MODEL:
        add_vit_config(cfg)
    cfg.MODEL.AVA_HEAD = CfgNode()
    h = cfg.MODEL.AVA_HEAD
    h.NUM_CLASSES = 80
    h.TEMPORAL_POOL = "mean"
    h.ROI_SIZE = 7
    h.ROI_SAMPLING_RATIO = 0
    h.ROI_ALIGNED = False
    h.TEST_BOX_EXTENSION = (0.1, 0.05)
    h.SPATIAL_POOL = "max"
    h.KIND = "linear"
    h.HIDDEN_DIM = 1024
    h.DROPOUT = 0.0
    h.INIT_STD = 0.02
    h.INIT_SCALE = 0.001
    h.LOSS = "sigmoid_bce"  # "softmax_ce": single-label datasets (UCF101-24, JHMDB-21, MultiSports)
    h.LOSS_REDUCTION = "box_sum"
    h.MULTIPLY_BOX_SCORES = True
    cfg.MODEL.PIXEL_MEAN = list(IMAGENET_PIXEL_MEAN)
    cfg.MODEL.PIXEL_STD = list(IMAGENET_PIXEL_STD)
