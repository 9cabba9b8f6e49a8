"""detectron2's registries for real: VideoViT (BACKBONE_REGISTRY) and AVAActionDetector (META_ARCH_REGISTRY)
build from a yacs CfgNode through ``detectron2.modeling.build_model(cfg)`` and give the model the LazyConfig
recipe gives: same module structure, same state-dict keys and shapes, same initialisation under the same
seed, same outputs on the same weights."""

import inspect

import pytest
import torch
from detectron2.config import LazyConfig, get_cfg, instantiate
from detectron2.modeling import BACKBONE_REGISTRY, META_ARCH_REGISTRY, build_backbone, build_model
from omegaconf import DictConfig, ListConfig, OmegaConf

from vmae_det.modeling import AVAActionDetector, VideoViT, build_vit
from vmae_det.modeling.vit import VIT_SIZES
from vmae_det.modeling.yacs_config import add_ava_detector_config, add_vit_config

# LazyConfig argument -> yacs key. A recipe argument missing here fails the tests below: every option of
# the LazyConfig path must have a yacs key.
VIT_KEYS = {
    "size": "SIZE",
    "embed_dim": "EMBED_DIM",
    "depth": "DEPTH",
    "num_heads": "NUM_HEADS",
    "img_size": "IMG_SIZE",
    "num_frames": "NUM_FRAMES",
    "tubelet_size": "TUBELET_SIZE",
    "patch_size": "PATCH_SIZE",
    "mlp_ratio": "MLP_RATIO",
    "qkv_bias": "QKV_BIAS",
    "drop_rate": "DROP_RATE",
    "attn_drop_rate": "ATTN_DROP_RATE",
    "drop_path_rate": "DROP_PATH_RATE",
    "init_values": "INIT_VALUES",
    "use_learnable_pos_emb": "USE_LEARNABLE_POS_EMB",
    "use_checkpoint": "USE_CHECKPOINT",
    "out_feature": "OUT_FEATURE",
    "use_mean_pooling": "USE_MEAN_POOLING",
    "token_keep_rate": "TOKEN_KEEP_RATE",
    "token_drop_blocks": "TOKEN_DROP_BLOCKS",
    "token_keyframe_weight": "TOKEN_KEYFRAME_WEIGHT",
}
HEAD_KEYS = {
    "num_classes": "NUM_CLASSES",
    "temporal_pool": "TEMPORAL_POOL",
    "roi_size": "ROI_SIZE",
    "roi_sampling_ratio": "ROI_SAMPLING_RATIO",
    "roi_aligned": "ROI_ALIGNED",
    "test_box_extension": "TEST_BOX_EXTENSION",
    "spatial_pool": "SPATIAL_POOL",
    "head": "KIND",
    "head_hidden_dim": "HIDDEN_DIM",
    "dropout": "DROPOUT",
    "head_init_std": "INIT_STD",
    "head_init_scale": "INIT_SCALE",
    "loss": "LOSS",
    "loss_reduction": "LOSS_REDUCTION",
    "multiply_box_scores": "MULTIPLY_BOX_SCORES",
}


def _plain(v):
    if isinstance(v, (DictConfig, ListConfig)):
        v = OmegaConf.to_container(v, resolve=True)
    return tuple(v) if isinstance(v, list) else v


def detector_cfg():
    cfg = get_cfg()
    add_ava_detector_config(cfg)
    cfg.MODEL.META_ARCHITECTURE = "AVAActionDetector"
    cfg.MODEL.BACKBONE.NAME = "VideoViT"
    cfg.MODEL.DEVICE = "cpu"
    return cfg


def yacs_like(lazy_model) -> "CfgNode":  # noqa: F821
    """The yacs config with the same settings as a LazyConfig ``model`` node (``L(AVAActionDetector)`` over
    ``L(build_vit)``)."""
    assert lazy_model._target_ is AVAActionDetector and lazy_model.backbone._target_ is build_vit
    cfg = detector_cfg()
    for name, value in lazy_model.backbone.items():
        if name != "_target_":
            cfg.MODEL.VIT[VIT_KEYS[name]] = _plain(value)
    for name, value in lazy_model.items():
        if name in ("_target_", "backbone"):
            continue
        if name in ("pixel_mean", "pixel_std"):
            cfg.MODEL[name.upper()] = list(_plain(value))
        else:
            value = _plain(value)
            cfg.MODEL.AVA_HEAD[HEAD_KEYS[name]] = () if value is None and name == "test_box_extension" else value
    return cfg


def _public_attrs(model):
    return {k: v for k, v in vars(model).items() if not k.startswith("_") and not isinstance(v, torch.Tensor)}


def assert_same_model(a, b):
    assert type(a) is type(b) is AVAActionDetector
    assert repr(a) == repr(b)  # module tree with every layer's hyper-parameters
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert {k: tuple(v.shape) for k, v in sa.items()} == {k: tuple(v.shape) for k, v in sb.items()}
    for ma, mb in zip(a.modules(), b.modules()):  # plain attributes and non-persistent buffers too
        assert _public_attrs(ma) == _public_attrs(mb), type(ma).__name__
        for (na, ba), (nb, bb) in zip(ma.named_buffers(recurse=False), mb.named_buffers(recurse=False)):
            assert na == nb and torch.equal(ba, bb), na


def _inputs(num_classes, h=32, w=48, t=16):
    g = torch.Generator().manual_seed(3)
    clip = lambda: torch.randint(0, 256, (3, t, h, w), dtype=torch.uint8, generator=g)  # noqa: E731
    boxes = torch.tensor([[2.0, 3.0, 30.0, 28.0], [10.0, 1.0, 44.0, 31.0]])
    labels = (torch.rand(2, num_classes, generator=g) > 0.7).float()
    return [
        {"clip": clip(), "boxes": boxes, "labels": labels, "box_scores": torch.tensor([0.9, 0.8]), "clip_size": (h, w)},
        {
            "clip": clip()[:, :, :24],
            "boxes": boxes[:1] * 0.5,
            "labels": labels[:1],
            "box_scores": torch.tensor([1.0]),
            "clip_size": (24, w),
        },
    ]


def assert_same_outputs(a, b, frames):
    b.load_state_dict(a.state_dict())  # strict: the same keys
    inputs = _inputs(a.num_classes, t=frames)
    a.eval(), b.eval()
    with torch.no_grad():
        for oa, ob in zip(a(inputs), b(inputs)):
            assert torch.equal(oa["boxes"], ob["boxes"]) and torch.equal(oa["scores"], ob["scores"])
    a.train(), b.train()
    torch.manual_seed(5)  # same stochastic depth draws
    la = a(inputs)["loss_action"]
    torch.manual_seed(5)
    lb = b(inputs)["loss_action"]
    assert torch.equal(la, lb)


@pytest.mark.parametrize("recipe", ["configs/ava/vit_b.py", "configs/ava/tiny.py"])
def test_build_model_from_yacs_equals_lazyconfig(recipe):
    lazy = LazyConfig.load(recipe).model
    cfg = yacs_like(lazy)
    torch.manual_seed(0)
    from_lazy = instantiate(lazy)
    torch.manual_seed(0)
    from_yacs = build_model(cfg)
    assert_same_model(from_lazy, from_yacs)
    # Same construction order: the same seed gives the same initial weights.
    for (k, va), vb in zip(from_lazy.state_dict().items(), from_yacs.state_dict().values()):
        assert torch.equal(va, vb), k
    # Other weights (as if a checkpoint were loaded into both): the same outputs.
    torch.manual_seed(1)
    from_lazy = instantiate(lazy)
    assert_same_outputs(from_lazy, from_yacs, frames=lazy.backbone.num_frames)


def test_registries_hold_both_names():
    assert BACKBONE_REGISTRY.get("VideoViT") is VideoViT
    assert META_ARCH_REGISTRY.get("AVAActionDetector") is AVAActionDetector


def test_non_default_options_reach_the_model():
    cfg = detector_cfg()
    cfg.MODEL.VIT.SIZE = "tiny"
    cfg.MODEL.VIT.EMBED_DIM, cfg.MODEL.VIT.DEPTH, cfg.MODEL.VIT.NUM_HEADS = 48, 3, 3
    cfg.MODEL.VIT.IMG_SIZE, cfg.MODEL.VIT.NUM_FRAMES, cfg.MODEL.VIT.PATCH_SIZE = 32, 4, 8
    cfg.MODEL.VIT.MLP_RATIO, cfg.MODEL.VIT.INIT_VALUES, cfg.MODEL.VIT.USE_LEARNABLE_POS_EMB = 2.0, 0.1, True
    cfg.MODEL.VIT.DROP_PATH_RATE, cfg.MODEL.VIT.QKV_BIAS = 0.3, False
    h = cfg.MODEL.AVA_HEAD
    h.NUM_CLASSES, h.TEMPORAL_POOL, h.SPATIAL_POOL, h.ROI_SIZE, h.ROI_ALIGNED = 5, "max", "mean", 3, True
    h.TEST_BOX_EXTENSION, h.KIND, h.HIDDEN_DIM, h.DROPOUT = (), "mlp", 16, 0.5
    h.LOSS, h.LOSS_REDUCTION, h.MULTIPLY_BOX_SCORES = "softmax_ce", "mean", False
    cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]
    torch.manual_seed(0)
    got = build_model(cfg)
    torch.manual_seed(0)
    want = AVAActionDetector(
        backbone=VideoViT(
            embed_dim=48,
            depth=3,
            num_heads=3,
            img_size=32,
            num_frames=4,
            patch_size=8,
            mlp_ratio=2.0,
            init_values=0.1,
            use_learnable_pos_emb=True,
            drop_path_rate=0.3,
            qkv_bias=False,
        ),
        num_classes=5,
        temporal_pool="max",
        spatial_pool="mean",
        roi_size=3,
        roi_aligned=True,
        test_box_extension=None,
        head="mlp",
        head_hidden_dim=16,
        dropout=0.5,
        loss="softmax_ce",
        loss_reduction="mean",
        multiply_box_scores=False,
        pixel_mean=[1.0, 2.0, 3.0],
        pixel_std=[4.0, 5.0, 6.0],
    )
    assert_same_model(want, got)
    assert got.test_box_extension is None and got.backbone.blocks[0].attn.q_bias is None
    assert_same_outputs(want, got, frames=4)


def _defaults(fn):
    return {
        k: p.default for k, p in inspect.signature(fn).parameters.items() if p.default is not inspect.Parameter.empty
    }


def test_yacs_defaults_are_the_class_defaults():
    """add_ava_detector_config / add_vit_config defaults = the constructors' defaults (no silent drift)."""
    cfg = detector_cfg()
    det = _defaults(AVAActionDetector.__init__)
    for name, key in HEAD_KEYS.items():
        assert _plain(cfg.MODEL.AVA_HEAD[key]) == det[name], name
    assert tuple(cfg.MODEL.PIXEL_MEAN) == tuple(det["pixel_mean"])
    assert tuple(cfg.MODEL.PIXEL_STD) == tuple(det["pixel_std"])
    vit = {**_defaults(VideoViT.__init__), **VIT_SIZES["base"], "size": "base"}
    for name, key in VIT_KEYS.items():
        value = cfg.MODEL.VIT[key]
        if key in ("EMBED_DIM", "DEPTH", "NUM_HEADS"):
            assert value == 0  # 0: from SIZE
        else:
            assert value == vit[name], name
    assert set(cfg.MODEL.VIT) == set(VIT_KEYS.values()) and set(cfg.MODEL.AVA_HEAD) == set(HEAD_KEYS.values())
    assert set(VIT_KEYS) - {"size"} == set(_defaults(VideoViT.__init__)) - {"in_chans"}
    assert set(HEAD_KEYS) | {"pixel_mean", "pixel_std"} == set(_defaults(AVAActionDetector.__init__))


def test_backbone_from_yacs_equals_build_vit():
    cfg = detector_cfg()
    cfg.MODEL.VIT.SIZE, cfg.MODEL.VIT.IMG_SIZE, cfg.MODEL.VIT.NUM_FRAMES = "small", 64, 8
    cfg.MODEL.VIT.USE_MEAN_POOLING = True
    torch.manual_seed(0)
    got = build_backbone(cfg)
    torch.manual_seed(0)
    want = build_vit("small", img_size=64, num_frames=8, use_mean_pooling=True)
    assert repr(got) == repr(want)
    for (k, a), b in zip(want.state_dict().items(), got.state_dict().values()):
        assert torch.equal(a, b), k


def test_add_ava_detector_config_keeps_existing_vit_keys_and_refuses_wrong_backbone():
    cfg = get_cfg()
    add_vit_config(cfg)
    cfg.MODEL.VIT.SIZE = "tiny"
    add_ava_detector_config(cfg)
    assert cfg.MODEL.VIT.SIZE == "tiny"
    cfg.MODEL.META_ARCHITECTURE = "AVAActionDetector"
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.RESNETS.DEPTH, cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 18, 64  # BACKBONE.NAME left at ResNet
    with pytest.raises(ValueError, match="VideoViT backbone"):
        build_model(cfg)
    bare = get_cfg()
    bare.MODEL.META_ARCHITECTURE = "AVAActionDetector"
    with pytest.raises(KeyError, match="add_ava_detector_config"):
        build_model(bare)
